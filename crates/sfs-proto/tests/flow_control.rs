//! Two-level flow control and the stall timer: the credit granted over all
//! incoming transfers stays within the connection window, chunks held ahead of a
//! gap never stop a transfer from completing, a transfer that makes no progress
//! is aborted on both sides, and a sender that ignores its credit is cut off.

use std::collections::HashMap;
use std::time::Duration;

use sha2::{Digest, Sha256};

use sfs_proto::control::{Command, ErrorCode, Reply, TransferId};
use sfs_proto::record::{chunk_buffer, MAX_CHUNK_DATA};
use sfs_proto::session::{Event, Initiator, SessionConfig, StreamCounts};
use sfs_proto::testing::{End, Pair, TestPki};

const CHUNK: u64 = MAX_CHUNK_DATA as u64;

/// A logged-in pair with two data streams each way and the given windows.
fn pair(transfer_window: u64, connection_window: u64) -> Pair {
    let pki = TestPki::new(&["localhost"]);
    let mut config = SessionConfig::new(StreamCounts {
        outbound: 3,
        inbound: 3,
    });
    config.transfer_window = transfer_window;
    config.connection_window = connection_window;
    config.transfer_stall_timeout = Some(Duration::from_secs(60));
    config.idle_timeout = None;
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

fn test_data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Opens an upload of `len` bytes over both data streams.
fn start_upload(pair: &mut Pair, name: &str, len: usize) -> TransferId {
    let id = pair
        .client
        .send_command(Command::Stor {
            path: name.into(),
            size: len as u64,
        })
        .unwrap();
    pair.drive();
    let transfer = pair.server.open_transfer(id, 0, len as u64, 2).unwrap();
    pair.drive();
    transfer
}

/// The client sends every chunk its credit allows; records on data stream 1 are
/// held back in `held`, in order (as if that stream lost a packet), the others
/// delivered.
fn send_holding_stream_1(
    pair: &mut Pair,
    uploads: &[(TransferId, Vec<u8>)],
    held: &mut Vec<Vec<u8>>,
) {
    loop {
        let mut sent = false;
        for (transfer, data) in uploads {
            let allowance = pair.client.chunk_allowance(*transfer);
            let Some(offset) = pair.client.next_chunk_offset(*transfer) else {
                continue;
            };
            if allowance == 0 {
                continue;
            }
            let start = offset as usize;
            let n = allowance.min(data.len() - start);
            let mut buf = chunk_buffer(n);
            buf.extend_from_slice(&data[start..start + n]);
            let t = pair.client.send_chunk(*transfer, buf).unwrap();
            if t.stream == 1 {
                held.push(t.bytes);
            } else {
                pair.link.send(End::Client, t.stream, t.bytes).unwrap();
            }
            sent = true;
        }
        pair.drive();
        if !sent {
            return;
        }
    }
}

fn finished(events: &[Event]) -> HashMap<TransferId, [u8; 32]> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::TransferFinished {
                transfer, sha256, ..
            } => Some((*transfer, *sha256)),
            _ => None,
        })
        .collect()
}

fn failure(events: &[Event], transfer: TransferId) -> Option<(Initiator, ErrorCode, String)> {
    events.iter().find_map(|e| match e {
        Event::TransferFailed {
            transfer: t,
            by,
            code,
            reason,
        } if *t == transfer => Some((*by, *code, reason.clone())),
        _ => None,
    })
}

#[test]
fn gaps_in_several_uploads_stay_within_the_connection_window_and_complete() {
    let window = 4 * CHUNK;
    let connection = 6 * CHUNK;
    let mut pair = pair(window, connection);
    let uploads: Vec<(TransferId, Vec<u8>)> = (0..4u8)
        .map(|i| {
            let data = test_data(12 * MAX_CHUNK_DATA + 77, i);
            (start_upload(&mut pair, &format!("f{i}"), data.len()), data)
        })
        .collect();
    let mut held = Vec::new();
    send_holding_stream_1(&mut pair, &uploads, &mut held);

    // Stream 1 is stuck behind its first record, so every transfer is stuck
    // behind a gap; what the server holds ahead of those gaps lies inside the
    // credit it granted, and that never exceeds the connection window.
    assert!(!held.is_empty());
    assert!(pair.server.outstanding_credit() <= connection);
    let ahead: usize = pair.server_chunks.iter().map(|(_, _, d)| d.len()).sum();
    assert!(ahead as u64 <= connection, "{ahead} bytes ahead of gaps");
    assert!(finished(&pair.server_events).is_empty());
    // The transfers beyond the window's share were told they exist (a first
    // credit) but were given no bytes yet.
    let credited: Vec<bool> = uploads
        .iter()
        .map(|(t, _)| pair.client.chunk_allowance(*t) > 0)
        .collect();
    assert_eq!(credited, vec![false; 4], "everything granted was sent");

    // The lost records arrive; everything completes, with the right digests.
    for bytes in held.drain(..) {
        pair.link.send(End::Client, 1, bytes).unwrap();
    }
    pair.drive();
    assert!(pair.server.outstanding_credit() <= connection);
    for (transfer, data) in &uploads {
        pair.send_file(End::Client, *transfer, data, MAX_CHUNK_DATA);
        assert!(pair.server.outstanding_credit() <= connection);
    }
    let done = finished(&pair.server_events);
    for (transfer, data) in &uploads {
        let digest: [u8; 32] = Sha256::digest(data).into();
        assert_eq!(done.get(transfer), Some(&digest), "{transfer:?}");
    }
    assert_eq!(pair.server.outstanding_credit(), 0);
    assert!(pair.server.is_connected());
}

#[test]
fn a_transfer_held_back_forever_times_out_on_both_sides() {
    let mut pair = pair(4 * CHUNK, 16 * CHUNK);
    let data = test_data(8 * MAX_CHUNK_DATA, 1);
    let transfer = start_upload(&mut pair, "stuck", data.len());
    let mut held = Vec::new();
    send_holding_stream_1(&mut pair, &[(transfer, data)], &mut held);
    assert!(!held.is_empty());
    assert!(
        pair.server.poll_timeout().is_some(),
        "a stall timer is armed"
    );

    pair.advance(Duration::from_secs(59));
    assert_eq!(failure(&pair.server_events, transfer), None);
    pair.advance(Duration::from_secs(2));
    let (by, code, reason) = failure(&pair.server_events, transfer).expect("server gave up");
    assert_eq!((by, code), (Initiator::Local, ErrorCode::TIMED_OUT));
    assert!(reason.contains("no progress for 60 s"), "{reason}");
    let (by, code, _) = failure(&pair.client_events, transfer).expect("client was told");
    assert_eq!((by, code), (Initiator::Remote, ErrorCode::TIMED_OUT));
    // The session lives on, and the credit went back to the window.
    assert!(pair.server.is_connected() && pair.client.is_connected());
    assert_eq!(pair.server.outstanding_credit(), 0);
}

#[test]
fn a_transfer_that_keeps_moving_does_not_time_out() {
    let mut pair = pair(4 * CHUNK, 16 * CHUNK);
    let data = test_data(6 * MAX_CHUNK_DATA, 2);
    let transfer = start_upload(&mut pair, "slow", data.len());
    let mut offset = 0;
    while offset < data.len() {
        pair.advance(Duration::from_secs(50));
        let n = MAX_CHUNK_DATA.min(data.len() - offset);
        let mut buf = chunk_buffer(n);
        buf.extend_from_slice(&data[offset..offset + n]);
        let t = pair.client.send_chunk(transfer, buf).unwrap();
        pair.link.send(End::Client, t.stream, t.bytes).unwrap();
        pair.drive();
        offset += n;
    }
    assert_eq!(failure(&pair.server_events, transfer), None);
    assert!(finished(&pair.server_events).contains_key(&transfer));
}

#[test]
fn a_transfer_starved_by_the_connection_window_waits_without_timing_out() {
    // One transfer's window fills the whole connection window.
    let window = 4 * CHUNK;
    let mut pair = pair(window, window);
    let stuck_data = test_data(8 * MAX_CHUNK_DATA, 3);
    let stuck = start_upload(&mut pair, "stuck", stuck_data.len());
    let mut held = Vec::new();
    send_holding_stream_1(&mut pair, &[(stuck, stuck_data)], &mut held);
    pair.advance(Duration::from_secs(30));
    let data = test_data(3 * MAX_CHUNK_DATA, 4);
    let starved = start_upload(&mut pair, "starved", data.len());
    assert_eq!(pair.client.chunk_allowance(starved), 0, "no credit left");

    // The stuck transfer times out; its credit goes to the starved one, which
    // then completes although it waited for longer than the stall timeout.
    pair.advance(Duration::from_secs(31));
    assert!(failure(&pair.server_events, stuck).is_some());
    pair.advance(Duration::from_secs(45));
    assert_eq!(failure(&pair.server_events, starved), None);
    // The held records of the dead transfer arrive late and are dropped.
    for bytes in held.drain(..) {
        pair.link.send(End::Client, 1, bytes).unwrap();
    }
    pair.send_file(End::Client, starved, &data, MAX_CHUNK_DATA);
    let digest: [u8; 32] = Sha256::digest(&data).into();
    assert_eq!(finished(&pair.server_events).get(&starved), Some(&digest));
}

#[test]
fn a_sender_exceeding_its_credit_is_cut_off() {
    let mut pair = pair(4 * CHUNK, 16 * CHUNK);
    let data = test_data(8 * MAX_CHUNK_DATA, 5);
    let transfer = start_upload(&mut pair, "greedy", data.len());
    assert!(pair.client.assume_credit(transfer, data.len() as u64));
    // Stream 1 is held back, so the chunks on stream 2 run ahead of the gap,
    // past the credit the server granted.
    for offset in (0..data.len()).step_by(MAX_CHUNK_DATA) {
        let n = MAX_CHUNK_DATA.min(data.len() - offset);
        let mut buf = chunk_buffer(n);
        buf.extend_from_slice(&data[offset..offset + n]);
        let t = pair.client.send_chunk(transfer, buf).unwrap();
        if t.stream != 1 {
            pair.link.send(End::Client, t.stream, t.bytes).unwrap();
        }
    }
    pair.drive();
    let reason = pair
        .server_events
        .iter()
        .find_map(|e| match e {
            Event::Closed(reason) => Some(reason.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the server did not close: {:?}", pair.server_events));
    assert_eq!(reason.code, ErrorCode::FLOW_CONTROL);
    assert!(reason.reason.contains("beyond the flow-control credit"));
    assert!(!matches!(
        pair.client_events.last(),
        Some(Event::Response {
            reply: Reply::Ok,
            ..
        })
    ));
}
