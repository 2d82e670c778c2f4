//! Multi-homing on loopback: two addresses per side, address lists, per-path
//! information and the primary path. Failover over real separate paths is in
//! `transport_failover.rs`.

mod transport_util;

use std::net::SocketAddr;
use std::time::Duration;

use sfs_sctp::{PathState, SctpAssociation, SctpListener};
use transport_util::*;

fn sorted(mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    addrs.sort();
    addrs
}

#[tokio::test]
async fn both_sides_see_both_peer_addresses() {
    let config = config_with_streams(8);
    let (listener, server_addrs) = two_address_listener(&config);
    let local = [addr("127.0.0.3:0"), addr("127.0.0.4:0")];
    let (client, server) = tokio::join!(
        SctpAssociation::connect(&server_addrs, Some(&local), &config, STEP),
        listener.accept()
    );
    let (client, server) = (client.expect("connect"), server.expect("accept"));

    let client_local = sorted(client.local_addrs().expect("client local"));
    assert_eq!(client_local.len(), 2, "{client_local:?}");
    let client_port = client_local[0].port();
    assert_eq!(
        client_local,
        vec![
            addr(&format!("127.0.0.3:{client_port}")),
            addr(&format!("127.0.0.4:{client_port}"))
        ]
    );
    assert_eq!(
        sorted(server.peer_addrs().expect("server peers")),
        client_local
    );
    assert_eq!(
        sorted(client.peer_addrs().expect("client peers")),
        sorted(server_addrs.clone())
    );
    assert_eq!(
        sorted(server.local_addrs().expect("server local")),
        sorted(server_addrs.clone())
    );

    // Every path gets confirmed by a heartbeat and reports sane figures.
    let deadline = tokio::time::Instant::now() + STEP;
    let paths = loop {
        let paths = client.paths().expect("paths");
        if paths.iter().all(|p| p.state == PathState::Active) {
            break paths;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "paths never all active: {paths:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(paths.len(), 2);
    for path in &paths {
        assert!(server_addrs.contains(&path.addr), "{path:?}");
        assert!(path.mtu >= 1280, "{path:?}");
        assert!(path.cwnd > 0, "{path:?}");
        assert!(path.rto >= Duration::from_millis(100), "{path:?}");
        println!("client path: {path:?}");
    }

    // Primary path: read it, move it to the other address, read it back.
    let primary = client.primary_addr().expect("primary");
    assert!(server_addrs.contains(&primary));
    let other = *server_addrs
        .iter()
        .find(|a| **a != primary)
        .expect("two addresses");
    client.set_primary_addr(other).expect("set primary");
    assert_eq!(client.primary_addr().expect("primary"), other);
    let status = client.status().expect("status");
    assert_eq!(status.primary.map(|p| p.addr), Some(other));
    client
        .send(3, 9, false, b"over the new primary")
        .await
        .expect("send");
    let (msg, _) = next_message(&server).await;
    assert_eq!(msg.data, b"over the new primary");

    // A peer address that is not in the association is an error.
    assert!(client.set_primary_addr(addr("127.0.0.9:1")).is_err());
    assert!(client.path_info(addr("127.0.0.9:1")).is_err());
}

#[tokio::test]
async fn ipv6_and_ipv4_on_one_listener() {
    let config = config_with_streams(4);
    let listener = SctpListener::bind(&[addr("[::1]:0"), addr("127.0.0.1:0")], &config)
        .expect("bind ::1 and 127.0.0.1");
    let addrs = sorted(listener.local_addrs().expect("local"));
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert!(addrs.iter().any(SocketAddr::is_ipv6) && addrs.iter().any(SocketAddr::is_ipv4));
    let v6 = *addrs.iter().find(|a| a.is_ipv6()).expect("v6");
    let v4 = *addrs.iter().find(|a| a.is_ipv4()).expect("v4");

    for target in [v6, v4] {
        let targets = [target];
        let (client, server) = tokio::join!(
            SctpAssociation::connect(&targets, None, &config, STEP),
            listener.accept()
        );
        let (client, server) = (client.expect("connect"), server.expect("accept"));
        assert!(client.peer_addrs().expect("peers").contains(&target));
        client.send(1, 1, false, b"v6 socket").await.expect("send");
        let (msg, _) = next_message(&server).await;
        assert_eq!(msg.data, b"v6 socket");
        // IPv4 peers of the AF_INET6 listener come back as IPv4, not ::ffff:a.b.c.d.
        // (A client bound to the wildcard offers all its addresses, of both
        // families, so the server sees more than the one it connected from.)
        let server_peers = server.peer_addrs().expect("server peers");
        assert!(
            server_peers.iter().all(|a| match a {
                SocketAddr::V6(v6) => v6.ip().to_ipv4_mapped().is_none(),
                SocketAddr::V4(_) => true,
            }),
            "{target} -> {server_peers:?}"
        );
        assert!(
            server_peers.iter().any(|a| a.is_ipv4() == target.is_ipv4()),
            "{target} -> {server_peers:?}"
        );
    }
}
