//! The per-byte cost of one large transfer each way between the real client and
//! the real server over the in-memory transport: one `get` and one `put` of
//! `SFS_BULK_MIB` MiB (32 by default). Ignored by default; run one at a time
//! under a profiler, in release mode, for instruction counts that do not depend
//! on a noisy machine:
//!
//! ```sh
//! cargo test --release -p sfs-client --test bulk_cost --no-run
//! valgrind --tool=callgrind target/release/deps/bulk_cost-* --ignored --exact download
//! ```

mod real_server;

use real_server::Server;
use sfs_client::connection::{ClientOptions, TransferSpec};
use sfs_server::context::SessionSettings;

const MIB: usize = 1024 * 1024;

fn size() -> usize {
    std::env::var("SFS_BULK_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32)
        * MIB
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 16) as u8)
        .collect()
}

async fn one(download: bool) {
    let server = Server::new(SessionSettings::default());
    let local = tempfile::tempdir().unwrap();
    let data = pattern(size());
    std::fs::create_dir_all(server.home()).unwrap();
    let spec = if download {
        std::fs::write(server.home().join("big"), &data).unwrap();
        TransferSpec::Download {
            remote: "big".into(),
            dest: local.path().join("big"),
            resume: false,
        }
    } else {
        std::fs::write(local.path().join("big"), &data).unwrap();
        TransferSpec::Upload {
            local: local.path().join("big"),
            remote: "big".into(),
            resume: false,
        }
    };
    let (mut remote, _, task) = server.connect_with(ClientOptions::default()).await;
    let started = std::time::Instant::now();
    let results = remote.transfer_all(std::slice::from_ref(&spec)).await;
    let elapsed = started.elapsed();
    let result = results.into_iter().next().unwrap().unwrap();
    assert_eq!(result.bytes, data.len() as u64);
    remote.quit().await;
    task.await.unwrap();
    let arrived = if download {
        std::fs::read(local.path().join("big")).unwrap()
    } else {
        std::fs::read(server.home().join("big")).unwrap()
    };
    assert!(arrived == data, "the bytes arrived unchanged");
    eprintln!(
        "{} of {} MiB in {:.3} s",
        if download { "download" } else { "upload" },
        data.len() / MIB,
        elapsed.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a profiling aid: one large transfer, no assertion beyond its bytes"]
async fn download() {
    one(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a profiling aid: one large transfer, no assertion beyond its bytes"]
async fn upload() {
    one(false).await;
}
