//! TLS over the in-memory pair: handshake, certificate checks, key agreement.

use sfs_proto::control::ErrorCode;
use sfs_proto::record::Direction;
use sfs_proto::session::{Event, Initiator};
use sfs_proto::testing::{Pair, TestPki};

fn closed(events: &[Event]) -> Option<&sfs_proto::session::CloseReason> {
    events.iter().find_map(|e| match e {
        Event::Closed(reason) => Some(reason),
        _ => None,
    })
}

#[test]
fn handshake_connects_both_sides() {
    let pki = TestPki::new(&["localhost"]);
    let mut pair = Pair::new(&pki, "localhost", 4);
    assert_eq!(pair.client.tls_negotiated(), None);
    pair.drive();
    assert!(pair.client.is_connected());
    assert!(pair.server.is_connected());
    let negotiated = pair
        .client
        .tls_negotiated()
        .expect("negotiated after the handshake");
    assert_eq!(negotiated.0, "TLS 1.3");
    assert!(negotiated.1.starts_with("TLS13_"), "{negotiated:?}");
    assert_eq!(pair.server.tls_negotiated(), Some(negotiated));
    assert_eq!(pair.client_events, vec![Event::Connected]);
    assert_eq!(pair.server_events, vec![Event::Connected]);
}

#[test]
fn ip_address_san_accepted() {
    let pki = TestPki::new(&["127.0.0.1", "::1"]);
    let mut pair = Pair::new(&pki, "127.0.0.1", 2);
    pair.drive();
    assert!(pair.client.is_connected());
    let mut pair = Pair::new(&pki, "::1", 2);
    pair.drive();
    assert!(pair.client.is_connected());
}

fn assert_refused(mut pair: Pair, what: &str) {
    pair.drive();
    assert!(!pair.client.is_connected(), "{what}: client connected");
    assert!(!pair.server.is_connected(), "{what}: server connected");
    let client = closed(&pair.client_events).expect("client closed");
    assert_eq!(client.code, ErrorCode::TLS_FAILURE, "{what}");
    assert_eq!(client.by, Initiator::Local, "{what}");
    let tls = client.tls.as_ref().expect("TLS error kept");
    assert!(tls.to_string().contains("certificate"), "{what}: {tls}");
    // The alert reached the server: it closed too, blaming the client.
    let server = closed(&pair.server_events).expect("server closed");
    assert_eq!(server.code, ErrorCode::TLS_FAILURE, "{what}");
    assert_eq!(server.by, Initiator::Remote, "{what}");
}

#[test]
fn wrong_ca_refused() {
    let pki = TestPki::new(&["localhost"]);
    let other = TestPki::new(&["localhost"]);
    let pair = Pair::with_configs(
        other.client_config(),
        pki.server_config(),
        "localhost",
        sfs_proto::session::SessionConfig::new(sfs_proto::session::StreamCounts {
            outbound: 2,
            inbound: 2,
        }),
    );
    assert_refused(pair, "wrong CA");
}

#[test]
fn wrong_name_refused() {
    let pki = TestPki::new(&["localhost", "127.0.0.1"]);
    assert_refused(Pair::new(&pki, "sfs.example", 2), "wrong DNS name");
    assert_refused(Pair::new(&pki, "127.0.0.2", 2), "wrong IP address");
}

#[test]
fn expired_certificate_refused() {
    let pki = TestPki::expired(&["localhost"]);
    assert_refused(Pair::new(&pki, "localhost", 2), "expired");
}

#[test]
fn both_sides_derive_the_same_keys_and_they_differ_per_stream_and_session() {
    let pki = TestPki::new(&["localhost"]);
    let mut a = Pair::new(&pki, "localhost", 4);
    a.drive();
    let mut b = Pair::new(&pki, "localhost", 4);
    b.drive();
    let mut seen = std::collections::HashSet::new();
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        for stream in 1..4 {
            let client = a.client.key_fingerprint(dir, stream).unwrap();
            let server = a.server.key_fingerprint(dir, stream).unwrap();
            assert_eq!(client, server, "{dir:?} stream {stream}");
            assert!(
                seen.insert(client),
                "key reused for {dir:?} stream {stream}"
            );
            let other_session = b.client.key_fingerprint(dir, stream).unwrap();
            assert_eq!(
                other_session,
                b.server.key_fingerprint(dir, stream).unwrap()
            );
            assert!(seen.insert(other_session), "key shared across sessions");
        }
    }
}

#[test]
fn handshake_timeout_closes() {
    let pki = TestPki::new(&["localhost"]);
    let mut pair = Pair::new(&pki, "localhost", 2);
    // Nothing is delivered: the server never hears from the client.
    let deadline = pair.server.poll_timeout().expect("a pre-auth deadline");
    pair.server.handle_timeout(deadline);
    assert!(pair.server.is_closed());
    let Some(Event::Closed(reason)) = pair.server.poll_event() else {
        panic!("no close event");
    };
    assert_eq!(reason.code, ErrorCode::TIMED_OUT);
}
