//! Key updates of the data-stream record layer: with the epoch lowered to a few
//! records, long transfers go through many key changes in both directions, and a
//! record under any key but the epoch's own is refused.

use sha2::{Digest, Sha256};

use sfs_proto::control::{Command, ErrorCode, Reply, TransferId};
use sfs_proto::record::{chunk_buffer, Direction, RecordError, RecordSecret, Sealer};
use sfs_proto::session::{Event, ServerSession, SessionConfig, StreamCounts};
use sfs_proto::testing::{End, Pair, TestPki};

/// Records per key in these tests.
const EPOCH: u64 = 3;

fn secret(records_per_key: u64) -> RecordSecret {
    RecordSecret::from_exporter(&[0x5e; 32]).with_records_per_key(records_per_key)
}

fn chunk(sealer: &mut Sealer, offset: u64) -> Vec<u8> {
    let mut buf = chunk_buffer(16);
    buf.extend_from_slice(&[0xab; 16]);
    sealer.seal_chunk(TransferId(1), offset, &mut buf).unwrap();
    buf
}

#[test]
fn a_record_sealed_under_the_old_key_after_the_switch_is_refused() {
    let mut sealer = secret(EPOCH).sealer(Direction::ClientToServer, 0, 1);
    // The same stream's keys, but switching later: at sequence EPOCH it still
    // seals under the key of epoch 0.
    let mut stale = secret(2 * EPOCH).sealer(Direction::ClientToServer, 0, 1);
    let mut opener = secret(EPOCH).opener(Direction::ClientToServer, 0, 1);
    for seq in 0..EPOCH {
        let mut record = chunk(&mut sealer, seq);
        assert_eq!(record, chunk(&mut stale, seq), "epoch 0 is shared");
        assert!(opener.open(&mut record).is_ok());
    }
    let mut old_key = chunk(&mut stale, EPOCH);
    assert_eq!(opener.key_epoch(), 1);
    assert_eq!(opener.open(&mut old_key), Err(RecordError::Authentication));
    assert!(old_key.iter().all(|&b| b == 0), "buffer wiped");
    // Sticky: the genuine record under the new key is refused too.
    let mut genuine = chunk(&mut sealer, EPOCH);
    assert_eq!(opener.open(&mut genuine), Err(RecordError::Authentication));
}

#[test]
fn a_receiver_asked_to_skip_a_key_epoch_refuses() {
    // A sender updating its key after every record is at epoch EPOCH when it
    // seals sequence EPOCH, where the receiver steps only to epoch 1: the record
    // asks it to skip epochs 2..=EPOCH of its own schedule.
    let mut hasty = secret(1).sealer(Direction::ServerToClient, 0, 2);
    let mut opener = secret(EPOCH).opener(Direction::ServerToClient, 0, 2);
    let mut honest = secret(EPOCH).sealer(Direction::ServerToClient, 0, 2);
    for seq in 0..EPOCH {
        chunk(&mut hasty, seq);
        let mut record = chunk(&mut honest, seq);
        assert!(opener.open(&mut record).is_ok());
    }
    assert_eq!(hasty.key_epoch(), EPOCH);
    assert_eq!(opener.key_epoch(), 1);
    let mut skipped = chunk(&mut hasty, EPOCH);
    assert_eq!(opener.open(&mut skipped), Err(RecordError::Authentication));

    // Jumping the sequence number into a later epoch is refused before any key
    // is derived for it.
    let mut sealer = secret(EPOCH).sealer(Direction::ServerToClient, 0, 2);
    let mut opener = secret(EPOCH).opener(Direction::ServerToClient, 0, 2);
    let mut first = chunk(&mut sealer, 0);
    assert!(opener.open(&mut first).is_ok());
    let mut later = Vec::new();
    for seq in 1..=2 * EPOCH {
        later = chunk(&mut sealer, seq);
    }
    assert_eq!(
        opener.open(&mut later),
        Err(RecordError::OutOfOrder {
            expected: 1,
            got: 2 * EPOCH
        })
    );
    assert_eq!(opener.key_epoch(), 0);
}

fn pair_with_epoch(streams: u16, records_per_key: u64) -> Pair {
    let pki = TestPki::new(&["localhost"]);
    let config = SessionConfig {
        records_per_key,
        ..SessionConfig::new(StreamCounts {
            outbound: streams,
            inbound: streams,
        })
    };
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

fn finished(events: &[Event], transfer: TransferId) -> Option<(u64, [u8; 32])> {
    events.iter().find_map(|e| match e {
        Event::TransferFinished {
            transfer: t,
            length,
            sha256,
        } if *t == transfer => Some((*length, *sha256)),
        _ => None,
    })
}

/// Checks that every data stream went through at least `min` key updates, with
/// the sender's and receiver's epochs equal.
fn assert_epochs(pair: &Pair, direction: Direction, streams: u16, min: u64) {
    for stream in 1..streams {
        let (sent, received) = match direction {
            Direction::ClientToServer => (
                pair.client.key_epoch(direction, stream),
                pair.server.key_epoch(direction, stream),
            ),
            Direction::ServerToClient => (
                pair.server.key_epoch(direction, stream),
                pair.client.key_epoch(direction, stream),
            ),
        };
        assert_eq!(sent, received, "{direction:?} stream {stream}");
        let epoch = sent.unwrap_or_else(|| panic!("{direction:?}: stream {stream} unused"));
        assert!(epoch >= min, "{direction:?} stream {stream}: epoch {epoch}");
    }
}

#[test]
fn multi_mib_transfers_both_ways_across_many_key_updates() {
    const STREAMS: u16 = 5;
    let mut pair = pair_with_epoch(STREAMS, EPOCH);
    let data = test_data(4 * 1024 * 1024 + 4321);
    let digest: [u8; 32] = Sha256::digest(&data).into();
    // 16 KiB chunks over 4 data streams: about 65 records, 21 epochs per stream.
    let chunk = 16 * 1024;

    let stor = pair
        .client
        .send_command(Command::Stor {
            path: "up".into(),
            size: data.len() as u64,
        })
        .unwrap();
    pair.drive();
    let up = pair
        .server
        .open_transfer(stor, 0, data.len() as u64, STREAMS - 1)
        .unwrap();
    pair.drive();
    pair.send_file(End::Client, up, &data, chunk);
    assert_eq!(
        finished(&pair.server_events, up),
        Some((data.len() as u64, digest))
    );
    assert_epochs(&pair, Direction::ClientToServer, STREAMS, 15);
    pair.server.respond(stor, Reply::Ok).unwrap();
    pair.drive();

    let retr = pair
        .client
        .send_command(Command::Retr {
            path: "up".into(),
            offset: 0,
        })
        .unwrap();
    pair.drive();
    let down = pair
        .server
        .open_transfer(retr, 0, data.len() as u64, STREAMS - 1)
        .unwrap();
    pair.drive();
    pair.send_file(End::Server, down, &data, chunk);
    assert_eq!(
        finished(&pair.client_events, down),
        Some((data.len() as u64, digest))
    );
    assert_epochs(&pair, Direction::ServerToClient, STREAMS, 15);
    let mut received = vec![0; data.len()];
    for (_, offset, bytes) in &pair.client_chunks {
        received[*offset as usize..*offset as usize + bytes.len()].copy_from_slice(bytes);
    }
    assert_eq!(received, data);
    assert!(pair.client.is_connected() && pair.server.is_connected());
}

#[test]
fn peers_with_different_epochs_fail_at_the_first_key_update() {
    const STREAMS: u16 = 2;
    let pki = TestPki::new(&["localhost"]);
    let counts = StreamCounts {
        outbound: STREAMS,
        inbound: STREAMS,
    };
    let mut pair = Pair::new(&pki, "localhost", STREAMS);
    // The server changes keys after every EPOCH records, the client never does
    // within this test: the epoch is not negotiated, so the mismatch must end in
    // a record failure, never in accepting a record under the wrong key.
    let config = SessionConfig {
        records_per_key: EPOCH,
        ..SessionConfig::new(counts)
    };
    pair.server =
        ServerSession::new(pki.server_config(), config, std::time::Instant::now()).unwrap();
    pair.drive();
    pair.login("alice");
    let stor = pair
        .client
        .send_command(Command::Stor {
            path: "up".into(),
            size: 100_000,
        })
        .unwrap();
    pair.drive();
    let up = pair.server.open_transfer(stor, 0, 100_000, 1).unwrap();
    pair.drive();
    pair.send_file(End::Client, up, &test_data(100_000), 1000);
    let closed = pair.server_events.iter().find_map(|e| match e {
        Event::Closed(reason) => Some(reason.clone()),
        _ => None,
    });
    let closed = closed.expect("the server closed the session");
    assert_eq!(closed.code, ErrorCode::RECORD_FAILURE, "{closed:?}");
    assert_eq!(pair.server.key_epoch(Direction::ClientToServer, 1), Some(1));
    let received: usize = pair.server_chunks.iter().map(|(_, _, d)| d.len()).sum();
    assert_eq!(received, EPOCH as usize * 1000, "only epoch 0 was accepted");
}
