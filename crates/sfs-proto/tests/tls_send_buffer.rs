//! The bounded rustls send buffer: application bytes beyond it wait in the TLS
//! driver and go out, in order and whole, as messages are polled; a `Close`
//! written while it is full still comes before the `close_notify`.

use rustls::pki_types::ServerName;

use sfs_proto::control::{
    Command, Entry, EntryKind, Message, Reply, RequestId, MAX_CONTROL_MESSAGE,
};
use sfs_proto::session::Event;
use sfs_proto::testing::{Pair, TestPki};
use sfs_proto::tls::{TlsDriver, MAX_TLS_MESSAGE, TLS_SEND_BUFFER};

/// A client and a server TLS driver after the handshake.
fn connected() -> (TlsDriver, TlsDriver) {
    let pki = TestPki::new(&["localhost"]);
    let name = ServerName::try_from("localhost").unwrap();
    let mut client = TlsDriver::client(pki.client_config(), name).unwrap();
    let mut server = TlsDriver::server(pki.server_config()).unwrap();
    let mut sink = Vec::new();
    for _ in 0..20 {
        while let Some(msg) = client.poll_message() {
            server.handle_message(&msg, &mut sink).unwrap();
        }
        while let Some(msg) = server.poll_message() {
            client.handle_message(&msg, &mut sink).unwrap();
        }
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    assert!(sink.is_empty());
    (client, server)
}

/// Moves every message from `from` to `to`, returning the plaintext `to` read.
fn deliver(from: &mut TlsDriver, to: &mut TlsDriver) -> Vec<u8> {
    let mut plaintext = Vec::new();
    while let Some(msg) = from.poll_message() {
        assert!(
            msg.len() <= MAX_TLS_MESSAGE,
            "message of {} bytes",
            msg.len()
        );
        to.handle_message(&msg, &mut plaintext).unwrap();
    }
    plaintext
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn bytes_over_the_send_buffer_wait_and_arrive_whole_and_in_order() {
    let (mut client, mut server) = connected();
    let data = pattern(8 * TLS_SEND_BUFFER + 12_345);
    for piece in data.chunks(MAX_CONTROL_MESSAGE) {
        server.write_plaintext(piece).unwrap();
    }
    // rustls took its limit and refused the rest with short writes.
    assert!(
        server.unsent_plaintext() >= data.len() - TLS_SEND_BUFFER,
        "only {} bytes wait",
        server.unsent_plaintext()
    );
    assert_eq!(deliver(&mut server, &mut client), data);
    assert_eq!(server.unsent_plaintext(), 0);
    // Later bytes follow normally.
    server.write_plaintext(b"after").unwrap();
    assert_eq!(deliver(&mut server, &mut client), b"after");
}

#[test]
fn close_notify_comes_after_the_bytes_still_waiting() {
    let (mut client, mut server) = connected();
    let data = pattern(3 * TLS_SEND_BUFFER);
    server.write_plaintext(&data).unwrap();
    assert!(server.unsent_plaintext() > 0);
    server.send_close_notify();
    assert_eq!(deliver(&mut server, &mut client), data);
    assert!(client.peer_has_closed());
}

/// A `Listing` reply as large as one control message may be.
fn largest_listing(id: RequestId) -> Reply {
    let entry = |i: usize| Entry {
        name: format!("{i:0>200}"),
        kind: EntryKind::File,
        size: i as u64,
        mtime: 0,
        mode: 0o600,
    };
    let mut entries: Vec<Entry> = Vec::new();
    loop {
        entries.push(entry(entries.len()));
        let reply = Reply::Listing {
            entries: entries.clone(),
            more: true,
        };
        if (Message::Response { id, reply }).to_frame().is_err() {
            entries.pop();
            return Reply::Listing {
                entries,
                more: true,
            };
        }
    }
}

#[test]
fn many_largest_replies_queued_at_once_all_arrive() {
    let pki = TestPki::new(&["localhost"]);
    let mut pair = Pair::new(&pki, "localhost", 2);
    pair.drive();
    pair.login("alice");
    let id = pair
        .client
        .send_command(Command::List { path: "/".into() })
        .unwrap();
    pair.drive();
    let part = largest_listing(id);
    let frame = Message::Response {
        id,
        reply: part.clone(),
    }
    .to_frame()
    .unwrap();
    assert!(frame.len() > MAX_CONTROL_MESSAGE - 300, "{}", frame.len());
    // Far more than rustls may hold, written before anything is polled.
    let parts = 4 * TLS_SEND_BUFFER / frame.len() + 2;
    for _ in 0..parts {
        pair.server.respond(id, part.clone()).unwrap();
    }
    pair.server
        .respond(
            id,
            Reply::Listing {
                entries: Vec::new(),
                more: false,
            },
        )
        .unwrap();
    pair.drive();
    let received: Vec<&Reply> = pair
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::Response { id: got, reply } if *got == id => Some(reply),
            _ => None,
        })
        .collect();
    assert_eq!(received.len(), parts + 1);
    assert!(received[..parts].iter().all(|r| **r == part));
    assert!(pair.client.is_connected() && pair.server.is_connected());
}
