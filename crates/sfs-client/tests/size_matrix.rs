//! The size matrix through the client's shell commands: files of 0, 1, 65 535,
//! 65 536, 65 537 bytes and 10 MiB, with `put`/`get` one by one and
//! `mput`/`mget` all at once, over 1, 2 and 8 data streams of the in-memory pair
//! (the test-double server spreads each transfer over all of them). Every file
//! arrives with the same SHA-256 on the other side.

mod support;

use std::sync::{Arc, Mutex};

use sfs_client::command::parse_line;
use sfs_client::shell::Shell;
use sfs_net::memory::MemoryTransport;
use sfs_proto::testing::TestPki;
use support::{pattern, sha256, Shared, State};

/// The file sizes: empty, one byte, around one 64 KiB record, and many records.
const SIZES: [usize; 6] = [0, 1, 65_535, 65_536, 65_537, 10 * 1024 * 1024];

async fn shell_over(data_streams: u16, work: &std::path::Path) -> (Shell<MemoryTransport>, Shared) {
    let pki = TestPki::new(&["localhost"]);
    let state = Arc::new(Mutex::new(State {
        transfer_streams: Some(data_streams),
        ..State::default()
    }));
    let transport = support::start_with_streams(&pki, state.clone(), data_streams + 1);
    let (remote, cwd) = support::log_in(transport, &pki).await;
    let shell = Shell::new(
        remote,
        cwd,
        work.to_owned(),
        Box::new(std::io::sink()),
        false,
    );
    (shell, state)
}

async fn run(shell: &mut Shell<MemoryTransport>, line: &str) {
    let command = parse_line(line).unwrap().unwrap();
    shell
        .execute(command)
        .await
        .unwrap_or_else(|e| panic!("{line}: {e}"));
}

async fn matrix(data_streams: u16) {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let (mut shell, state) = shell_over(data_streams, work).await;
    let files: Vec<(String, Vec<u8>)> = SIZES
        .iter()
        .enumerate()
        // Shifted by the index, so no two files share their first bytes.
        .map(|(i, &size)| (format!("f{size}"), pattern(size + i)[i..].to_vec()))
        .collect();
    for (name, data) in &files {
        std::fs::write(work.join(name), data).unwrap();
    }

    // One by one, each direction.
    for (name, data) in &files {
        run(&mut shell, &format!("put {name} up-{name}")).await;
        let uploaded = state.lock().unwrap().uploads[&format!("up-{name}")].clone();
        assert_eq!(sha256(&uploaded), sha256(data), "put {name}");
        state
            .lock()
            .unwrap()
            .files
            .insert(format!("down-{name}"), uploaded);
        run(&mut shell, &format!("get down-{name}")).await;
        let local = std::fs::read(work.join(format!("down-{name}"))).unwrap();
        assert_eq!(sha256(&local), sha256(data), "get {name}");
    }

    // All at once, each direction.
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    state.lock().unwrap().uploads.clear();
    run(&mut shell, &format!("mput {}", names.join(" "))).await;
    for (name, data) in &files {
        let uploaded = state.lock().unwrap().uploads[name].clone();
        assert_eq!(sha256(&uploaded), sha256(data), "mput {name}");
        std::fs::remove_file(work.join(name)).unwrap();
        state.lock().unwrap().files.insert(name.clone(), uploaded);
    }
    run(&mut shell, &format!("mget {}", names.join(" "))).await;
    for (name, data) in &files {
        let local = std::fs::read(work.join(name)).unwrap();
        assert_eq!(sha256(&local), sha256(data), "mget {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_round_trip_over_one_data_stream() {
    matrix(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_round_trip_over_two_data_streams() {
    matrix(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_round_trip_over_eight_data_streams() {
    matrix(8).await;
}
