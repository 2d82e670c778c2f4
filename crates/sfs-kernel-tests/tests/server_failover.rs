//! A download from the real `sfs-server` survives the loss of the primary path:
//! the server runs in the server namespace of the two-path topology, bound to
//! both of its addresses; the client connects from the client namespace, path A
//! first, and path A is cut mid-transfer.

mod server_util;

use std::net::SocketAddr;
use std::time::Duration;

use server_util::*;
use sfs_kernel_tests::netns::{Path, Side, Topology};
use sfs_kernel_tests::workspace_binary;
use sfs_proto::control::Reply;

#[tokio::test]
async fn server_download_survives_a_path_cut() {
    let topo = Topology::two_paths()
        .rtt(Duration::from_millis(10))
        .build()
        .expect("topology");
    let server_ips = topo.addresses(Side::Server);
    let dir = ServerDir::new("failover", &server_ips, &[("alice", "user")]);
    let port = 17404;
    let file = pattern(8_000_000, 3);
    std::fs::create_dir_all(dir.home("alice")).unwrap();
    std::fs::write(dir.home("alice").join("big.bin"), &file).unwrap();

    let command = topo.command(Side::Server, workspace_binary("sfs-server"));
    let server = ServerProcess::start(dir.server_command(command, &server_ips, port));

    let server_addrs: Vec<SocketAddr> = server_ips
        .iter()
        .map(|ip| SocketAddr::new(*ip, port))
        .collect();
    let client_local: Vec<SocketAddr> = topo
        .addresses(Side::Client)
        .iter()
        .map(|ip| SocketAddr::new(*ip, 0))
        .collect();
    let mut c = {
        let _inside = topo
            .enter(Side::Client)
            .expect("enter the client namespace");
        connect(&server_addrs, Some(&client_local), &dir).await
    };
    assert!(matches!(
        c.login("alice", PASSWORD).await,
        Reply::Limits { .. }
    ));

    let id = c.send_retr("big.bin", 0);
    // Let the transfer get going on path A, then cut it.
    let received = c
        .download_with_hook(id, file.len() / 8, || {
            topo.cut(Path::A).expect("cut path A")
        })
        .await
        .expect("the download completes over path B");
    assert_eq!(received.len(), file.len());
    assert!(received == file, "the bytes differ");

    // The session is still usable after the failover.
    assert_eq!(
        c.request(sfs_proto::control::Command::Pwd).await,
        Reply::Path { path: "/".into() }
    );
    let log = dir.log();
    assert!(
        log.contains("event=path-change"),
        "no failover in server.log:\n{log}\n{}",
        server.stderr()
    );
    assert!(log.contains("event=retrieve result=ok user=alice"), "{log}");
    drop(server);
}
