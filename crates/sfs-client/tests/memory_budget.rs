//! Peak memory with 20 transfers in flight stays within the client's and the
//! server's memory budgets plus a fixed overhead. Its own test binary with one
//! test, so no other test's allocations count: the peak is the process's
//! VmHWM, reset (through `/proc/self/clear_refs`) once the files are written
//! and the session is up.

mod real_server;

use real_server::Server;
use sfs_client::connection::{ClientOptions, TransferSpec};
use sfs_server::context::SessionSettings;

const MIB: u64 = 1024 * 1024;
/// Transfers in flight: the server's limit, and the number of downloads and of
/// uploads (the queue keeps 20 of the 40 running, both directions at once).
const IN_FLIGHT: usize = 20;
const FILE_SIZE: usize = 4 * MIB as usize;
/// The client's budget and the server's (per session).
const BUDGET: u64 = 8 * MIB;
/// What the budgets do not cover: the in-memory transport's queues (64
/// messages of up to 64 KiB each way, as a socket's buffers would be), the
/// allocator's slack, thread stacks of the blocking pool, TLS and runtime state.
const OVERHEAD: u64 = 16 * MIB;

/// A `kB` line of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_transfers_in_flight_stay_within_the_memory_budgets() {
    let settings = SessionSettings {
        max_transfers: IN_FLIGHT,
        ..SessionSettings::default()
    }
    .with_memory_budget(BUDGET);
    let server = Server::new(settings);
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(server.home().join("up")).unwrap();
    let mut data = vec![0u8; FILE_SIZE];
    for i in 0..IN_FLIGHT {
        for (j, byte) in data.iter_mut().enumerate() {
            *byte = (j % 251) as u8 ^ i as u8;
        }
        std::fs::write(server.home().join(format!("down{i}")), &data).unwrap();
        std::fs::write(local.path().join(format!("up{i}")), &data).unwrap();
    }
    drop(data);
    let options = ClientOptions {
        memory_budget: BUDGET,
        ..ClientOptions::default()
    };
    let (mut remote, _, task) = server.connect_with(options).await;
    let mut specs = Vec::new();
    for i in 0..IN_FLIGHT {
        specs.push(TransferSpec::Download {
            remote: format!("down{i}"),
            dest: local.path().join(format!("down{i}")),
            resume: false,
        });
        specs.push(TransferSpec::Upload {
            local: local.path().join(format!("up{i}")),
            remote: format!("up/up{i}"),
            resume: false,
        });
    }

    // The peak from here on.
    let reset = std::fs::write("/proc/self/clear_refs", "5");
    let before = status_bytes("VmRSS:");
    let results = remote.transfer_all(&specs).await;
    let peak = status_bytes("VmHWM:");
    if let Some(Err(err)) = results.iter().find(|r| r.is_err()) {
        let summary = task.await.unwrap();
        panic!("{err}; the server closed with {:?}", summary.code);
    }
    for result in &results {
        assert_eq!(result.as_ref().unwrap().bytes, FILE_SIZE as u64);
    }
    remote.quit().await;
    let summary = task.await.unwrap();
    assert_eq!(summary.peak_transfers, IN_FLIGHT, "20 in flight");

    let moved = 2 * IN_FLIGHT as u64 * FILE_SIZE as u64;
    let grown = peak.saturating_sub(before);
    eprintln!(
        "memory: rss before {} KiB, peak {} KiB, grown {} KiB for {} MiB moved; \
         budgets {} MiB + overhead {} MiB (reset: {reset:?})",
        before / 1024,
        peak / 1024,
        grown / 1024,
        moved / MIB,
        2 * BUDGET / MIB,
        OVERHEAD / MIB,
    );
    if reset.is_ok() {
        assert!(
            grown <= 2 * BUDGET + OVERHEAD,
            "peak grew by {} KiB, over {} MiB",
            grown / 1024,
            (2 * BUDGET + OVERHEAD) / MIB
        );
    } else {
        // Without clear_refs the peak includes the setup: bound it absolutely.
        assert!(
            peak <= 2 * BUDGET + OVERHEAD + before,
            "peak {} KiB",
            peak / 1024
        );
    }
}
