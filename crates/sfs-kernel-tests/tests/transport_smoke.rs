//! The first check of `sfs-sctp` on a real kernel: a multi-homed association over
//! two loopback addresses, stream negotiation, and whole messages on several
//! streams in both directions.

mod transport_util;

use std::net::SocketAddr;

use sfs_sctp::{AssocState, Notification};
use transport_util::*;

#[tokio::test]
async fn bindx_connectx_streams_and_messages() {
    let config = config_with_streams(16);
    let (listener, server_addrs) = two_address_listener(&config);
    assert_eq!(server_addrs.len(), 2, "{server_addrs:?}");
    let port = server_addrs[0].port();
    assert_ne!(port, 0);
    assert!(server_addrs.iter().all(|a| a.port() == port));

    let (client, server) = pair(&listener, &server_addrs, &config).await;

    // Both sides asked for 16; at least 8 each way is the requirement.
    for (side, assoc) in [("client", &client), ("server", &server)] {
        assert_eq!(assoc.outbound_streams(), 16, "{side} outbound");
        assert_eq!(assoc.inbound_streams(), 16, "{side} inbound");
        let status = assoc.status().expect("status");
        assert!(status.is_established());
        assert_eq!(status.outbound_streams, 16);
        assert_eq!(status.inbound_streams, 16);
    }
    let mut client_sees: Vec<SocketAddr> = client.peer_addrs().expect("peer addrs");
    client_sees.sort();
    let mut expected = server_addrs.clone();
    expected.sort();
    assert_eq!(
        client_sees, expected,
        "the client sees both server addresses"
    );

    // Messages on 8 streams each way, with distinct sizes and PPIDs.
    for stream in 0..8u16 {
        let data = vec![stream as u8; 100 + usize::from(stream) * 1000];
        client
            .send(stream, 1000 + u32::from(stream), false, &data)
            .await
            .expect("client send");
    }
    let mut first_notifications = None;
    for stream in 0..8u16 {
        let (msg, notes) = next_message(&server).await;
        first_notifications.get_or_insert(notes);
        assert_eq!(msg.stream, stream);
        assert_eq!(msg.ppid, 1000 + u32::from(stream));
        assert!(!msg.unordered);
        assert_eq!(
            msg.data,
            vec![stream as u8; 100 + usize::from(stream) * 1000]
        );
    }
    // The server's first event was COMM_UP with the negotiated counts.
    let notes = first_notifications.unwrap_or_default();
    assert!(
        notes.iter().any(|n| matches!(
            n,
            Notification::AssocChange(c) if c.state == AssocState::CommUp
                && c.outbound_streams == 16 && c.inbound_streams == 16
        )),
        "server notifications: {notes:?}"
    );

    for stream in (8..16u16).rev() {
        server
            .send(
                stream,
                7,
                stream % 2 == 0,
                format!("reply on {stream}").as_bytes(),
            )
            .await
            .expect("server send");
    }
    for stream in (8..16u16).rev() {
        let (msg, _) = next_message(&client).await;
        assert_eq!((msg.stream, msg.ppid), (stream, 7));
        assert_eq!(msg.unordered, stream % 2 == 0);
        assert_eq!(msg.data, format!("reply on {stream}").as_bytes());
    }

    // A stream beyond the negotiated count is a typed error, not a panic.
    let err = client
        .send(16, 0, false, b"x")
        .await
        .expect_err("stream 16");
    assert!(
        matches!(
            err,
            sfs_sctp::Error::NoSuchStream {
                stream: 16,
                outbound_streams: 16
            }
        ),
        "{err:?}"
    );
}
