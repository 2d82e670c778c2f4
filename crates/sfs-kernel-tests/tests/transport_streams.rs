//! Stream negotiation, concurrent senders on many streams, message sizes up to the
//! limit, and the receive-side size bound.

mod transport_util;

use std::collections::HashMap;
use std::sync::Arc;

use sfs_sctp::{Error, SctpConfig};
use transport_util::*;

#[tokio::test]
async fn negotiation_takes_the_smaller_offer_each_way() {
    // The server offers 5 outbound streams and accepts at most 10 inbound.
    let mut server_config = SctpConfig::default();
    server_config.outbound_streams = 5;
    server_config.max_inbound_streams = 10;
    // The client asks for far more than the server allows.
    let client_config = config_with_streams(64);
    let (listener, addrs) = two_address_listener(&server_config);
    let (client, server) = tokio::join!(
        sfs_sctp::SctpAssociation::connect(&addrs, None, &client_config, STEP),
        listener.accept()
    );
    let (client, server) = (client.expect("connect"), server.expect("accept"));

    assert_eq!(
        client.outbound_streams(),
        10,
        "capped by the server's max inbound"
    );
    assert_eq!(client.inbound_streams(), 5, "the server's outbound offer");
    assert_eq!(server.outbound_streams(), 5);
    assert_eq!(server.inbound_streams(), 10);

    client
        .send(9, 1, false, b"last stream")
        .await
        .expect("stream 9 exists");
    let (msg, _) = next_message(&server).await;
    assert_eq!((msg.stream, msg.data.as_slice()), (9, &b"last stream"[..]));

    for (assoc, stream, count) in [(&client, 10, 10), (&server, 5, 5), (&server, u16::MAX, 5)] {
        match assoc.send(stream, 0, false, b"x").await {
            Err(Error::NoSuchStream {
                stream: s,
                outbound_streams,
            }) => assert_eq!((s, outbound_streams), (stream, count)),
            other => panic!("stream {stream}: expected NoSuchStream, got {other:?}"),
        }
    }
    // The association is still fine after those refusals.
    server.send(4, 2, false, b"still up").await.expect("send");
    let (msg, _) = next_message(&client).await;
    assert_eq!(msg.data, b"still up");
}

/// The payload of message `seq` on `stream`: its size cycles through 1 byte,
/// 64 KiB and just under the limit, and its bytes depend on (stream, seq).
fn payload(stream: u16, seq: u32, limit: usize) -> Vec<u8> {
    let len = match seq % 3 {
        0 => 1,
        1 => 64 * 1024,
        _ => limit - 1,
    };
    let seed = (u32::from(stream) * 31 + seq) as u8;
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_keep_per_stream_order_and_whole_messages() {
    const STREAMS: u16 = 10;
    const PER_STREAM: u32 = 9;
    let limit = 256 * 1024;
    let mut config = config_with_streams(16);
    config.max_message_size = limit;
    let (listener, addrs) = two_address_listener(&config);
    let (client, server) = pair(&listener, &addrs, &config).await;
    assert_eq!(client.max_send_size(), limit);
    let client = Arc::new(client);

    let senders: Vec<_> = (0..STREAMS)
        .map(|stream| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                for seq in 0..PER_STREAM {
                    // The PPID carries the sequence number.
                    client
                        .send(stream, seq, false, &payload(stream, seq, limit))
                        .await
                        .expect("send");
                }
            })
        })
        .collect();

    let mut next_seq: HashMap<u16, u32> = HashMap::new();
    let total = u32::from(STREAMS) * PER_STREAM;
    for _ in 0..total {
        let (msg, _) = next_message(&server).await;
        let expected = next_seq.entry(msg.stream).or_insert(0);
        assert_eq!(msg.ppid, *expected, "stream {} out of order", msg.stream);
        assert!(
            msg.data == payload(msg.stream, msg.ppid, limit),
            "stream {} message {}: {} bytes, not the ones sent",
            msg.stream,
            msg.ppid,
            msg.data.len()
        );
        *expected += 1;
    }
    for sender in senders {
        sender.await.expect("sender task");
    }
    assert_eq!(next_seq.len(), usize::from(STREAMS));
    assert!(next_seq.values().all(|&n| n == PER_STREAM), "{next_seq:?}");

    // Exactly at the limit is accepted; one byte more is refused before sending.
    client
        .send(0, 0, false, &vec![1; limit])
        .await
        .expect("at limit");
    let (msg, _) = next_message(&server).await;
    assert_eq!(msg.data.len(), limit);
    assert!(matches!(
        client.send(0, 0, false, &vec![1; limit + 1]).await,
        Err(Error::MessageTooLarge { len, limit: l }) if len == limit + 1 && l == limit
    ));
    assert!(matches!(
        client.send(0, 0, false, b"").await,
        Err(Error::EmptyMessage)
    ));
}

#[tokio::test]
async fn unfinished_messages_past_the_reassembly_bound_abort_the_association() {
    // Messages up to 1 MiB are fine one by one, but this association may hold
    // only 160 KiB of unfinished messages: the kernel hands a 600 KiB message
    // over in pieces (128 KiB reads), and the pieces pass the bound.
    let mut bounded = config_with_streams(8);
    bounded.max_message_size = 1 << 20;
    bounded.max_reassembly_bytes = 160 * 1024;
    let budget = bounded.reassembly_budget.clone();
    let mut large = config_with_streams(8);
    large.max_message_size = 1 << 20;
    let (listener, addrs) = two_address_listener(&bounded);
    let (client, server) = tokio::join!(
        sfs_sctp::SctpAssociation::connect(&addrs, None, &large, STEP),
        listener.accept()
    );
    let (client, server) = (client.expect("connect"), server.expect("accept"));
    client.send(1, 0, false, b"fine").await.expect("send");
    client
        .send(2, 0, false, &vec![7; 600 * 1024])
        .await
        .expect("send big");
    let (msg, _) = next_message(&server).await;
    assert_eq!(msg.data, b"fine");
    let err = loop {
        match tokio::time::timeout(STEP, server.recv())
            .await
            .expect("in time")
        {
            Ok(sfs_sctp::Received::Notification(_)) => continue,
            Ok(sfs_sctp::Received::Message(m)) => panic!("{} bytes got through", m.data.len()),
            Err(err) => break err,
        }
    };
    assert!(matches!(err, Error::ReassemblyOverflow), "{err:?}");
    // What the association held goes back to the shared budget when it goes.
    drop(server);
    assert_eq!(budget.used(), 0);
    let lost = wait_notification(
        &client,
        STEP,
        |n| matches!(n, sfs_sctp::Notification::AssocChange(c) if c.state.is_terminal()),
    )
    .await;
    lost.expect("the sender learns the association is gone");
}

#[tokio::test]
async fn an_oversize_incoming_message_aborts_the_association() {
    let mut small = config_with_streams(8);
    small.max_message_size = 64 * 1024;
    let mut large = config_with_streams(8);
    large.max_message_size = 512 * 1024;
    let (listener, addrs) = two_address_listener(&small);
    let (client, server) = tokio::join!(
        sfs_sctp::SctpAssociation::connect(&addrs, None, &large, STEP),
        listener.accept()
    );
    let (client, server) = (client.expect("connect"), server.expect("accept"));

    client.send(1, 0, false, b"fine").await.expect("send");
    client
        .send(1, 0, false, &vec![7; 200 * 1024])
        .await
        .expect("send big");
    let (msg, _) = next_message(&server).await;
    assert_eq!(msg.data, b"fine");
    let err = loop {
        match tokio::time::timeout(STEP, server.recv())
            .await
            .expect("in time")
        {
            Ok(sfs_sctp::Received::Notification(_)) => continue,
            Ok(sfs_sctp::Received::Message(m)) => panic!("{} bytes got through", m.data.len()),
            Err(err) => break err,
        }
    };
    assert!(
        matches!(err, Error::ReceivedMessageTooLarge { limit: 65536 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("aborted"));
    // Sticky: later calls say the same.
    assert!(matches!(
        server.recv().await,
        Err(Error::ReceivedMessageTooLarge { .. })
    ));

    // The ABORT leaves when the refusing side drops the association, and the
    // sender learns that it is gone.
    drop(server);
    let lost = wait_notification(
        &client,
        STEP,
        |n| matches!(n, sfs_sctp::Notification::AssocChange(c) if c.state.is_terminal()),
    )
    .await;
    assert!(
        matches!(&lost, Ok(sfs_sctp::Notification::AssocChange(c)) if c.state == sfs_sctp::AssocState::CommLost),
        "{lost:?}"
    );
    assert!(matches!(client.recv().await, Err(Error::Aborted(_))));
}
