//! Extra data associations, sans-IO: binding (and every refusal), transfers
//! spread over several associations, per-association keys, the limit, the loss
//! of one association, and DETACH.

use std::time::Duration;

use sha2::{Digest, Sha256};

use sfs_proto::bind::{BindError, BindRequest, BIND_TICKET_LIFETIME};
use sfs_proto::control::{Command, ErrorCode, Reply, RequestId, TransferId, TransferOpen};
use sfs_proto::record::Direction;
use sfs_proto::session::{ApiError, Event, Initiator, SessionConfig, StreamCounts};
use sfs_proto::testing::{End, Pair, TestPki};
use sfs_proto::transfer::Lane;

fn pair_allowing(max_associations: u8) -> Pair {
    let pki = TestPki::new(&["localhost"]);
    let mut config = SessionConfig::new(StreamCounts {
        outbound: 3,
        inbound: 3,
    });
    config.max_associations = max_associations;
    let mut pair = Pair::with_configs(
        pki.client_config(),
        pki.server_config(),
        "localhost",
        config,
    );
    pair.drive();
    pair.login("alice");
    pair
}

fn test_data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + i / 509) as u8).collect()
}

fn reply_to(pair: &Pair, id: RequestId) -> Option<Reply> {
    pair.client_events.iter().find_map(|e| match e {
        Event::Response { id: i, reply } if *i == id => Some(reply.clone()),
        _ => None,
    })
}

fn counts(streams: u16) -> StreamCounts {
    StreamCounts {
        outbound: streams,
        inbound: streams,
    }
}

/// Sends RETR and opens its transfer on the server; returns it and its open.
fn open_download(pair: &mut Pair, len: usize) -> (TransferId, TransferOpen) {
    let retr = pair
        .client
        .send_command(Command::Retr {
            path: "f".into(),
            offset: 0,
        })
        .unwrap();
    pair.drive();
    let transfer = pair.server.open_transfer(retr, 0, len as u64, 8).unwrap();
    pair.drive();
    match reply_to(pair, retr) {
        Some(Reply::TransferOpen(open)) => (transfer, open),
        other => panic!("no transfer open: {other:?}"),
    }
}

fn finished(events: &[Event], transfer: TransferId) -> Option<[u8; 32]> {
    events.iter().find_map(|e| match e {
        Event::TransferFinished {
            transfer: t,
            sha256,
            ..
        } if *t == transfer => Some(*sha256),
        _ => None,
    })
}

fn failed(events: &[Event], transfer: TransferId) -> Option<(Initiator, ErrorCode)> {
    events.iter().find_map(|e| match e {
        Event::TransferFailed {
            transfer: t,
            by,
            code,
            ..
        } if *t == transfer => Some((*by, *code)),
        _ => None,
    })
}

fn close_code(events: &[Event]) -> Option<ErrorCode> {
    events.iter().find_map(|e| match e {
        Event::Closed(reason) => Some(reason.code),
        _ => None,
    })
}

#[test]
fn a_download_spread_over_three_associations_round_trips_on_every_lane() {
    let mut pair = pair_allowing(3);
    assert_eq!(pair.bind_association(3), Ok(1));
    assert_eq!(pair.bind_association(3), Ok(2));
    assert_eq!(pair.client.associations(), 0b111);
    assert_eq!(pair.server.associations(), 0b111);
    let data = test_data(1_500_000);
    let (transfer, open) = open_download(&mut pair, data.len());
    assert_eq!(open.associations, 0b111);
    assert_eq!(open.streams, 2);
    pair.sent_on.clear();
    // Small chunks, so each of the 6 lanes carries several.
    pair.send_file(End::Server, transfer, &data, 20_000);
    let digest: [u8; 32] = Sha256::digest(&data).into();
    assert_eq!(finished(&pair.client_events, transfer), Some(digest));
    for association in 0..3 {
        assert!(
            pair.sent_on.get(&association).copied().unwrap_or(0) > 10,
            "association {association} carried chunks: {:?}",
            pair.sent_on
        );
        for stream in 1..=2 {
            let lane = Lane::new(association, stream);
            assert!(
                pair.client
                    .key_epoch_on(Direction::ServerToClient, lane)
                    .is_some(),
                "{lane:?} was used"
            );
        }
    }
    let mut received = vec![0; data.len()];
    for (_, offset, chunk) in &pair.client_chunks {
        received[*offset as usize..*offset as usize + chunk.len()].copy_from_slice(chunk);
    }
    assert_eq!(received, data);
}

#[test]
fn an_upload_spread_over_two_associations_round_trips() {
    let mut pair = pair_allowing(2);
    pair.bind_association(3).unwrap();
    let data = test_data(400_000);
    let stor = pair
        .client
        .send_command(Command::Stor {
            path: "up".into(),
            size: data.len() as u64,
        })
        .unwrap();
    pair.drive();
    let transfer = pair
        .server
        .open_transfer(stor, 0, data.len() as u64, 2)
        .unwrap();
    pair.drive();
    pair.sent_on.clear();
    pair.send_file(End::Client, transfer, &data, 10_000);
    let digest: [u8; 32] = Sha256::digest(&data).into();
    assert_eq!(finished(&pair.server_events, transfer), Some(digest));
    assert!(pair.sent_on.get(&1).copied().unwrap_or(0) > 10);
}

#[test]
fn keys_differ_per_association_and_match_between_the_peers() {
    let mut pair = pair_allowing(3);
    pair.bind_association(3).unwrap();
    pair.bind_association(3).unwrap();
    for dir in [Direction::ClientToServer, Direction::ServerToClient] {
        let mut seen = Vec::new();
        for association in 0..3 {
            let lane = Lane::new(association, 1);
            let client = pair.client.key_fingerprint_on(dir, lane).unwrap();
            let server = pair.server.key_fingerprint_on(dir, lane).unwrap();
            assert_eq!(client, server, "{dir:?} {lane:?}");
            assert!(!seen.contains(&client), "{lane:?} reuses a key");
            seen.push(client);
        }
    }
}

#[test]
fn a_ticket_of_another_session_is_refused() {
    let mut a = pair_allowing(4);
    let mut b = pair_allowing(4);
    let (index, ticket) = a.request_ticket();
    let bind = a.client.bind_association(index, ticket, counts(3)).unwrap();
    assert_eq!(
        b.server.verify_bind(&bind, counts(3), b.now),
        Err(BindError::UnknownTicket)
    );
    // The refusal does not spend A's ticket, which A still accepts.
    assert_eq!(a.server.verify_bind(&bind, counts(3), a.now), Ok(index));
}

#[test]
fn a_proof_made_with_another_sessions_keys_is_refused() {
    let mut a = pair_allowing(4);
    let mut b = pair_allowing(4);
    let (index, ticket) = b.request_ticket();
    // A's client holds B's ticket but only A's exporter.
    let forged = a.client.bind_association(index, ticket, counts(3)).unwrap();
    assert_eq!(
        b.server.verify_bind(&forged, counts(3), b.now),
        Err(BindError::BadProof)
    );
    // The ticket was spent by the attempt: the genuine BIND now fails too.
    let genuine = b.client.bind_association(index, ticket, counts(3)).unwrap();
    assert_eq!(
        b.server.verify_bind(&genuine, counts(3), b.now),
        Err(BindError::UnknownTicket)
    );
    assert_eq!(BindError::BadProof.code(), ErrorCode::AUTH_FAILED);
}

#[test]
fn a_replayed_bind_is_refused() {
    let mut pair = pair_allowing(4);
    let (index, ticket) = pair.request_ticket();
    let bind = pair
        .client
        .bind_association(index, ticket, counts(3))
        .unwrap();
    assert_eq!(
        pair.server.verify_bind(&bind, counts(3), pair.now),
        Ok(index)
    );
    assert_eq!(
        pair.server.verify_bind(&bind, counts(3), pair.now),
        Err(BindError::UnknownTicket)
    );
}

#[test]
fn a_bind_after_the_session_closed_or_before_login_is_refused() {
    let mut pair = pair_allowing(4);
    let (index, ticket) = pair.request_ticket();
    let bind = pair
        .client
        .bind_association(index, ticket, counts(3))
        .unwrap();
    pair.server.close(ErrorCode::NO_ERROR, "bye");
    pair.drive();
    assert_eq!(
        pair.server.verify_bind(&bind, counts(3), pair.now),
        Err(BindError::Closed)
    );
    assert_eq!(pair.server.associations(), 0);

    let pki = TestPki::new(&["localhost"]);
    let mut fresh = Pair::new(&pki, "localhost", 3);
    fresh.drive();
    assert_eq!(
        fresh.server.verify_bind(&bind, counts(3), fresh.now),
        Err(BindError::NotLoggedIn)
    );
    // ASSOC itself is refused before login.
    let assoc = fresh.client.send_command(Command::Assoc).unwrap();
    fresh.drive();
    assert!(matches!(
        reply_to(&fresh, assoc),
        Some(Reply::Error {
            code: ErrorCode::NOT_LOGGED_IN,
            ..
        })
    ));
}

#[test]
fn an_expired_ticket_is_refused() {
    let mut pair = pair_allowing(4);
    let granted_at = pair.now;
    let (index, ticket) = pair.request_ticket();
    let bind = pair
        .client
        .bind_association(index, ticket, counts(3))
        .unwrap();
    let expiry = granted_at + BIND_TICKET_LIFETIME;
    assert!(pair.server.poll_timeout().is_some_and(|t| t <= expiry));
    assert_eq!(
        pair.server.verify_bind(&bind, counts(3), expiry),
        Err(BindError::Expired)
    );
    // A ticket left to expire is dropped by the timer.
    let (index, ticket) = pair.request_ticket();
    pair.client.handle_association_lost(1);
    let late = pair
        .client
        .bind_association(index, ticket, counts(3))
        .unwrap();
    pair.advance(BIND_TICKET_LIFETIME + Duration::from_secs(1));
    assert_eq!(
        pair.server.verify_bind(&late, counts(3), pair.now),
        Err(BindError::UnknownTicket)
    );
    assert!(pair.server.is_connected());
}

#[test]
fn a_ticket_for_another_index_is_refused() {
    let mut pair = pair_allowing(4);
    let (index, ticket) = pair.request_ticket();
    assert_eq!(index, 1);
    let bind = pair.client.bind_association(2, ticket, counts(3)).unwrap();
    assert_eq!(
        pair.server.verify_bind(&bind, counts(3), pair.now),
        Err(BindError::WrongIndex)
    );
}

#[test]
fn a_malformed_bind_is_refused_with_bad_request() {
    let good = BindRequest {
        index: 1,
        ticket: [3; 16],
        proof: [4; 32],
    }
    .encode();
    let error = BindRequest::decode(&good[..40]).unwrap_err();
    assert_eq!(error, BindError::Malformed);
    assert_eq!(error.code(), ErrorCode::BAD_REQUEST);
}

#[test]
fn a_record_for_an_association_that_is_not_bound_closes_the_session() {
    let mut pair = pair_allowing(4);
    let mut record = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    pair.server.handle_message_on(3, 1, &mut record, pair.now);
    pair.drive();
    assert_eq!(
        close_code(&pair.server_events),
        Some(ErrorCode::PROTOCOL_VIOLATION)
    );
    assert_eq!(
        close_code(&pair.client_events),
        Some(ErrorCode::PROTOCOL_VIOLATION)
    );
}

#[test]
fn a_message_on_stream_0_of_a_bound_extra_association_closes_the_session() {
    let mut pair = pair_allowing(4);
    let index = pair.bind_association(3).unwrap();
    let mut message = b"SFSB\x01".to_vec();
    pair.client
        .handle_message_on(index, 0, &mut message, pair.now);
    pair.drive();
    assert_eq!(
        close_code(&pair.client_events),
        Some(ErrorCode::PROTOCOL_VIOLATION)
    );
}

#[test]
fn the_limit_refuses_more_associations() {
    let mut pair = pair_allowing(2);
    let limits = pair.client_events.iter().find_map(|e| match e {
        Event::Response {
            reply: Reply::Limits {
                max_associations, ..
            },
            ..
        } => Some(*max_associations),
        _ => None,
    });
    assert_eq!(limits, Some(2));
    pair.bind_association(3).unwrap();
    let assoc = pair.client.send_command(Command::Assoc).unwrap();
    pair.drive();
    assert_eq!(
        pair.server.grant_association(assoc, [1; 16], pair.now),
        Err(ApiError::TooManyAssociations)
    );
    // The default allows none.
    let mut one = pair_allowing(SessionConfig::new(counts(3)).max_associations);
    let assoc = one.client.send_command(Command::Assoc).unwrap();
    one.drive();
    assert_eq!(
        one.server.grant_association(assoc, [1; 16], one.now),
        Err(ApiError::TooManyAssociations)
    );
    // Only a pending ASSOC can be granted.
    let pwd = one.client.send_command(Command::Pwd).unwrap();
    one.drive();
    assert_eq!(
        one.server.grant_association(pwd, [1; 16], one.now),
        Err(ApiError::WrongRequest(pwd))
    );
}

#[test]
fn losing_an_association_fails_only_the_transfers_that_use_it() {
    let mut pair = pair_allowing(3);
    let data = test_data(600_000);
    // Opened before any extra association: it uses association 0 only.
    let (alone, open) = open_download(&mut pair, data.len());
    assert_eq!(open.associations, 1);
    pair.bind_association(3).unwrap();
    pair.bind_association(3).unwrap();
    let (spread, open) = open_download(&mut pair, data.len());
    assert_eq!(open.associations, 0b111);
    // Part of the spread transfer goes out, then association 2 fails.
    let chunk = pair.server.chunk_allowance(spread).min(50_000);
    let mut buf = sfs_proto::record::chunk_buffer(chunk);
    buf.extend_from_slice(&data[..chunk]);
    let transmit = pair.server.send_chunk(spread, buf).unwrap();
    pair.send_transmit(End::Server, transmit);
    pair.drive();
    pair.lose_association(2);
    for events in [&pair.client_events, &pair.server_events] {
        assert_eq!(
            failed(events, spread),
            Some((Initiator::Local, ErrorCode::ASSOCIATION_LOST))
        );
        assert_eq!(failed(events, alone), None);
    }
    assert!(pair.client.is_connected() && pair.server.is_connected());
    assert_eq!(pair.client.associations(), 0b011);
    // The transfer on association 0 goes on to the end.
    pair.send_file(End::Server, alone, &data, 30_000);
    let digest: [u8; 32] = Sha256::digest(&data).into();
    assert_eq!(finished(&pair.client_events, alone), Some(digest));
    // New transfers use what remains.
    let (_, open) = open_download(&mut pair, 10);
    assert_eq!(open.associations, 0b011);
}

#[test]
fn detach_is_answered_once_no_transfer_uses_the_association() {
    let mut pair = pair_allowing(2);
    let index = pair.bind_association(3).unwrap();
    let data = test_data(300_000);
    let (transfer, open) = open_download(&mut pair, data.len());
    assert_eq!(open.associations, 0b11);
    let detach = pair.client.send_command(Command::Detach { index }).unwrap();
    pair.drive();
    assert_eq!(reply_to(&pair, detach), None, "a transfer still uses it");
    // A transfer opened now leaves it out.
    let (_, later) = open_download(&mut pair, 10);
    assert_eq!(later.associations, 1);
    pair.send_file(End::Server, transfer, &data, 20_000);
    let digest: [u8; 32] = Sha256::digest(&data).into();
    assert_eq!(finished(&pair.client_events, transfer), Some(digest));
    assert_eq!(reply_to(&pair, detach), Some(Reply::Ok));
    let ok_at = pair
        .client_events
        .iter()
        .position(|e| matches!(e, Event::Response { id, .. } if *id == detach));
    let done_at = pair
        .client_events
        .iter()
        .position(|e| matches!(e, Event::TransferFinished { transfer: t, .. } if *t == transfer));
    assert!(ok_at > done_at, "the Ok comes after the transfer's end");
    assert_eq!(pair.client.associations(), 1);
    assert_eq!(pair.server.associations(), 1);
    // Closing it now is no loss.
    let before = pair.client_events.len();
    pair.lose_association(index);
    assert!(pair.client_events[before..]
        .iter()
        .all(|e| !matches!(e, Event::TransferFailed { .. })));
    // DETACH of association 0, of an unbound index or of one out of range is
    // a bad request (never a panic on the shift).
    for index in [0, 5, 16, 255] {
        let id = pair.client.send_command(Command::Detach { index }).unwrap();
        pair.drive();
        assert!(matches!(
            reply_to(&pair, id),
            Some(Reply::Error {
                code: ErrorCode::BAD_REQUEST,
                ..
            })
        ));
    }
    // The index is free again.
    assert_eq!(pair.bind_association(3), Ok(index));
}
