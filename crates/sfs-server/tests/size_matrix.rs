//! The size matrix over the in-memory pair: files of 0, 1, 65 535, 65 536,
//! 65 537 bytes and 10 MiB, uploaded and downloaded through the real connection
//! handler with 1, 2 and 8 data streams negotiated. Every file comes back with
//! the same SHA-256, and the larger ones use every data stream both ways.
//! (`sfs-kernel-tests` runs the same matrix over kernel SCTP.)

// Not every helper the support module re-exports is used here.
#[allow(unused_imports)]
mod support;

use sfs_proto::control::{Command, Reply};
use sfs_proto::record::Direction;
use sha2::{Digest, Sha256};
use support::{pattern, Fixture};

/// The file sizes: empty, one byte, around one 64 KiB record, and many records.
const SIZES: [usize; 6] = [0, 1, 65_535, 65_536, 65_537, 10 * 1024 * 1024];

async fn round_trips_over(data_streams: u16) {
    let fx = Fixture::new();
    let mut c = fx.connect_with_streams(data_streams + 1).await;
    let reply = c.login("alice", support::PASSWORD).await;
    assert!(matches!(reply, Reply::Limits { .. }), "{reply:?}");
    // Records as large as the record layer allows, so sizes around 64 KiB cross
    // record boundaries.
    c.max_chunk = sfs_proto::record::MAX_CHUNK_DATA;
    for (i, &size) in SIZES.iter().enumerate() {
        let data = pattern(size, i as u8);
        let digest = Sha256::digest(&data);
        let name = format!("f{size}");
        c.streams_used.clear();
        assert_eq!(c.upload(&name, &data).await, Reply::Ok, "upload {size}");
        let stored = std::fs::read(fx.home("alice").join(&name)).unwrap();
        assert_eq!(Sha256::digest(&stored), digest, "stored {size}");
        let remote = c.request(Command::Digest { path: name.clone() }).await;
        assert_eq!(
            remote,
            Reply::Digest {
                size: size as u64,
                sha256: digest.into()
            },
            "DIGEST of {size}"
        );
        let back = c.download(&name).await.expect("download");
        assert_eq!(back.len(), size);
        assert_eq!(Sha256::digest(&back), digest, "downloaded {size}");
        if size >= 8 * sfs_proto::record::MAX_CHUNK_DATA {
            let all: std::collections::HashSet<u16> = (1..=data_streams).collect();
            assert_eq!(c.streams_used, all, "upload of {size}");
        }
    }
    for stream in 1..=data_streams {
        for direction in [Direction::ClientToServer, Direction::ServerToClient] {
            assert!(
                c.session.key_epoch(direction, stream).is_some(),
                "{direction:?}: no record on stream {stream}"
            );
        }
    }
    c.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_round_trip_over_one_data_stream() {
    round_trips_over(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_round_trip_over_two_data_streams() {
    round_trips_over(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_round_trip_over_eight_data_streams() {
    round_trips_over(8).await;
}
