//! Time of a 64 MiB download and upload by the client library against the
//! test-double server over the in-memory transport, printed (never asserted):
//! how much the client's per-byte work costs. Run with `cargo test -p
//! sfs-client --test client_timing -- --ignored --nocapture`.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use sfs_client::connection::TransferSpec;
use sfs_proto::testing::TestPki;
use support::{pattern, State};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a timing, not a check: run it by hand"]
async fn time_a_64_mib_download_and_upload() {
    let data = pattern(64 << 20);
    let mut state = State::default();
    state.files.insert("big".into(), data.clone());
    let pki = TestPki::new(&["localhost"]);
    let state = Arc::new(Mutex::new(state));
    let transport = support::start(&pki, state.clone());
    let (mut connection, _) = support::log_in(transport, &pki).await;
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    std::fs::write(&local, &data).unwrap();
    let mut down = Vec::new();
    let mut up = Vec::new();
    for round in 0..5 {
        let start = Instant::now();
        let done = connection
            .transfer_all(&[TransferSpec::Download {
                remote: "big".into(),
                dest: dir.path().join(format!("down{round}")),
                resume: false,
            }])
            .await;
        assert!(done[0].is_ok(), "{done:?}");
        down.push(start.elapsed().as_millis());
        let start = Instant::now();
        let done = connection
            .transfer_all(&[TransferSpec::Upload {
                local: local.clone(),
                remote: format!("up{round}"),
                resume: false,
            }])
            .await;
        assert!(done[0].is_ok(), "{done:?}");
        up.push(start.elapsed().as_millis());
    }
    down.sort_unstable();
    up.sort_unstable();
    println!(
        "client, 64 MiB: download median {} ms {down:?}; upload median {} ms {up:?}",
        down[2], up[2]
    );
}
