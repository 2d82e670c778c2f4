//! Time of a 64 MiB upload and download through the connection handler over
//! the in-memory transport, printed (never asserted): how much the server's
//! per-byte work costs. Run with `cargo test -p sfs-server --test timing --
//! --ignored --nocapture`.

// Only the fixture and the pattern are used here.
#[allow(unused_imports)]
mod support;

use std::time::Instant;

use sfs_proto::control::Reply;
use support::{pattern, Fixture};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a timing, not a check: run it by hand"]
async fn time_a_64_mib_upload_and_download() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let data = pattern(64 << 20, 1);
    let mut up = Vec::new();
    let mut down = Vec::new();
    for round in 0..5 {
        let path = format!("big{round}.bin");
        let start = Instant::now();
        assert_eq!(c.upload(&path, &data).await, Reply::Ok);
        up.push(start.elapsed().as_millis());
        let start = Instant::now();
        assert_eq!(c.download(&path).await.unwrap().len(), data.len());
        down.push(start.elapsed().as_millis());
    }
    up.sort_unstable();
    down.sort_unstable();
    println!(
        "server, 64 MiB: upload median {} ms {up:?}; download median {} ms {down:?}",
        up[2], down[2]
    );
}
