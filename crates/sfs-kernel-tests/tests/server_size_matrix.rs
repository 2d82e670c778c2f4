//! The size matrix over kernel SCTP: files of 0, 1, 65 535, 65 536, 65 537 bytes
//! and 10 MiB, uploaded to and downloaded from the real `sfs-server` with 1, 2 and
//! 8 data streams negotiated (limited once by the client's INITMSG, once by the
//! server's, once by neither). Every file comes back with the same SHA-256.

mod server_util;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};

use server_util::*;
use sfs_kernel_tests::workspace_binary;
use sfs_proto::control::{Command, Reply};
use sfs_proto::record::{Direction, MAX_CHUNK_DATA};
use sfs_sctp::SctpConfig;
use sha2::{Digest, Sha256};

/// The file sizes: empty, one byte, around one 64 KiB record, and many records.
const SIZES: [usize; 6] = [0, 1, 65_535, 65_536, 65_537, 10 * 1024 * 1024];

fn loopback() -> Vec<IpAddr> {
    vec!["127.0.0.1".parse().unwrap()]
}

/// Runs the matrix against a server offering `server_streams` data streams, from
/// a client asking for `client_streams`; `expected` data streams must result.
async fn matrix(port: u16, server_streams: u16, client_streams: u16, expected: u16) {
    let dir = ServerDir::new(
        &format!("size-matrix-{expected}"),
        &loopback(),
        &[("alice", "user")],
    );
    let command = std::process::Command::new(workspace_binary("sfs-server"));
    let server = ServerProcess::start(dir.server_command_with_streams(
        command,
        &loopback(),
        port,
        server_streams,
    ));
    let mut config = SctpConfig::default();
    // Stream 0 carries the control channel; the rest are data streams.
    config.outbound_streams = client_streams + 1;
    config.max_inbound_streams = client_streams + 1;
    let addrs = [SocketAddr::new(loopback()[0], port)];
    let mut c = connect_with(&addrs, None, &dir, &config).await;
    let reply = c.login("alice", PASSWORD).await;
    assert!(matches!(reply, Reply::Limits { .. }), "{reply:?}");
    let association = c.driver.transport();
    assert_eq!(
        (
            association.outbound_streams(),
            association.inbound_streams()
        ),
        (expected + 1, expected + 1),
        "negotiated streams"
    );
    c.max_chunk = MAX_CHUNK_DATA;

    for (i, &size) in SIZES.iter().enumerate() {
        let data = pattern(size, i as u8);
        let digest = Sha256::digest(&data);
        let name = format!("f{size}");
        c.streams_used.clear();
        assert_eq!(c.upload(&name, &data).await, Reply::Ok, "upload {size}");
        let stored = std::fs::read(dir.home("alice").join(&name)).expect("stored file");
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
        if size >= 8 * MAX_CHUNK_DATA {
            let all: HashSet<u16> = (1..=expected).collect();
            assert_eq!(c.streams_used, all, "upload of {size}");
        }
    }
    for stream in 1..=expected {
        for direction in [Direction::ClientToServer, Direction::ServerToClient] {
            assert!(
                c.session.key_epoch(direction, stream).is_some(),
                "{direction:?}: no record on stream {stream}"
            );
        }
    }
    drop(c);
    let stderr = server.stderr();
    assert!(server.terminate().success(), "{stderr}");
}

#[tokio::test]
async fn sizes_round_trip_over_one_data_stream() {
    // The client's INITMSG limits the association.
    matrix(17411, 8, 1, 1).await;
}

#[tokio::test]
async fn sizes_round_trip_over_two_data_streams() {
    // The server's offer limits the association.
    matrix(17412, 2, 8, 2).await;
}

#[tokio::test]
async fn sizes_round_trip_over_eight_data_streams() {
    matrix(17413, 8, 8, 8).await;
}
