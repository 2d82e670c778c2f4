//! The record layer under attack: bit flips at every offset, replay, loss,
//! reordering, and splicing across streams, directions, transfers and sessions.

use sfs_proto::control::{ErrorCode, TransferEnd, TransferId};
use sfs_proto::record::{
    chunk_buffer, Direction, Record, RecordError, RecordSecret, Sealer, CHUNK_PREFIX_LEN,
    RECORD_HEADER_LEN, TAG_LEN,
};
use sfs_proto::session::Event;
use sfs_proto::testing::{End, Fault, Pair, TestPki};

fn secret(seed: u8) -> RecordSecret {
    RecordSecret::from_exporter(&[seed; 32])
}

fn chunk(sealer: &mut Sealer, transfer: u32, offset: u64, data: &[u8]) -> Vec<u8> {
    let mut buf = chunk_buffer(data.len());
    buf.extend_from_slice(data);
    sealer
        .seal_chunk(TransferId(transfer), offset, &mut buf)
        .unwrap();
    buf
}

#[test]
fn flipping_any_bit_is_fatal_and_yields_no_plaintext() {
    let s = secret(1);
    let data = b"attack at dawn, bring the file".to_vec();
    let mut sealer = s.sealer(Direction::ServerToClient, 0, 1);
    let good = chunk(&mut sealer, 4, 0, &data);
    let mut end_sealer = s.sealer(Direction::ServerToClient, 0, 1);
    let mut good_end = Vec::new();
    end_sealer
        .seal_end(
            &TransferEnd {
                transfer: TransferId(4),
                length: 30,
                sha256: [9; 32],
            },
            &mut good_end,
        )
        .unwrap();
    for record in [&good, &good_end] {
        for bit in 0..record.len() * 8 {
            let mut bad = record.clone();
            bad[bit / 8] ^= 0x80 >> (bit % 8);
            let mut opener = s.opener(Direction::ServerToClient, 0, 1);
            let result = opener.open(&mut bad);
            assert!(result.is_err(), "bit {bit} accepted");
            assert!(bad.iter().all(|&b| b == 0), "bit {bit}: buffer not wiped");
            // Sticky: the genuine record is refused afterwards too.
            let mut genuine = record.clone();
            assert!(opener.open(&mut genuine).is_err(), "bit {bit}: not sticky");
        }
    }
}

#[test]
fn replay_loss_and_reorder_are_refused() {
    let s = secret(2);
    let mut sealer = s.sealer(Direction::ClientToServer, 0, 1);
    let r0 = chunk(&mut sealer, 1, 0, b"zero");
    let r1 = chunk(&mut sealer, 1, 4, b"one!");
    let r2 = chunk(&mut sealer, 1, 8, b"two!");

    let mut opener = s.opener(Direction::ClientToServer, 0, 1);
    assert!(opener.open(&mut r0.clone()).is_ok());
    assert_eq!(
        opener.open(&mut r0.clone()),
        Err(RecordError::OutOfOrder {
            expected: 1,
            got: 0
        }),
        "replay"
    );

    let mut opener = s.opener(Direction::ClientToServer, 0, 1);
    assert!(opener.open(&mut r0.clone()).is_ok());
    assert_eq!(
        opener.open(&mut r2.clone()),
        Err(RecordError::OutOfOrder {
            expected: 1,
            got: 2
        }),
        "loss or reorder"
    );
    assert!(
        opener.open(&mut r1.clone()).is_err(),
        "sticky after the gap"
    );

    // Rewriting the sequence number in the header to the expected one does not
    // help: it is bound into the nonce and the AAD.
    let mut opener = s.opener(Direction::ClientToServer, 0, 1);
    let mut forged = r1.clone();
    forged[2..RECORD_HEADER_LEN].copy_from_slice(&0u64.to_be_bytes());
    assert_eq!(opener.open(&mut forged), Err(RecordError::Authentication));
}

#[test]
fn splices_from_other_streams_directions_and_sessions_are_refused() {
    let s = secret(3);
    let other_session = secret(4);
    let record_from = |secret: &RecordSecret, dir, stream| {
        let mut sealer = secret.sealer(dir, 0, stream);
        chunk(&mut sealer, 1, 0, b"payload")
    };
    let cases = [
        (
            "other stream",
            record_from(&s, Direction::ServerToClient, 2),
        ),
        (
            "other direction (reflection)",
            record_from(&s, Direction::ClientToServer, 1),
        ),
        (
            "other session",
            record_from(&other_session, Direction::ServerToClient, 1),
        ),
    ];
    for (what, mut record) in cases {
        let mut opener = s.opener(Direction::ServerToClient, 0, 1);
        assert_eq!(
            opener.open(&mut record),
            Err(RecordError::Authentication),
            "{what}"
        );
    }
}

#[test]
fn splice_from_another_transfer_on_the_same_stream_is_refused() {
    let s = secret(5);
    let mut sealer = s.sealer(Direction::ServerToClient, 0, 1);
    let t1 = chunk(&mut sealer, 1, 0, b"transfer one");
    let t2 = chunk(&mut sealer, 2, 0, b"transfer two");
    // Putting transfer 2's record where transfer 1's was is a reordering.
    let mut opener = s.opener(Direction::ServerToClient, 0, 1);
    assert!(matches!(
        opener.open(&mut t2.clone()),
        Err(RecordError::OutOfOrder { .. })
    ));
    // And the genuine order opens, each naming its own transfer.
    let mut opener = s.opener(Direction::ServerToClient, 0, 1);
    let mut a = t1;
    let mut b = t2;
    assert!(matches!(
        opener.open(&mut a),
        Ok(Record::Chunk {
            transfer: TransferId(1),
            ..
        })
    ));
    assert!(matches!(
        opener.open(&mut b),
        Ok(Record::Chunk {
            transfer: TransferId(2),
            ..
        })
    ));
}

#[test]
fn truncated_and_extended_records_are_refused() {
    let s = secret(6);
    let mut sealer = s.sealer(Direction::ServerToClient, 0, 1);
    let good = chunk(&mut sealer, 1, 0, b"some data here");
    for len in 0..good.len() {
        let mut opener = s.opener(Direction::ServerToClient, 0, 1);
        assert!(
            opener.open(&mut good[..len].to_vec()).is_err(),
            "cut to {len}"
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    let mut opener = s.opener(Direction::ServerToClient, 0, 1);
    assert!(opener.open(&mut longer).is_err());
    assert_eq!(good.len(), CHUNK_PREFIX_LEN + 14 + TAG_LEN);
}

/// The same attack through whole sessions: every bit of one small data record
/// flipped in flight closes the receiving session, and no chunk is delivered.
#[test]
fn flipping_any_bit_of_a_record_in_flight_closes_the_session() {
    let pki = TestPki::new(&["localhost"]);
    // 1 byte of data: 10 + 12 + 1 + 16 = 39 bytes = 312 bits.
    let record_bits = (CHUNK_PREFIX_LEN + 1 + TAG_LEN) * 8;
    for bit in 0..record_bits {
        let mut pair = Pair::new(&pki, "localhost", 2);
        pair.drive();
        pair.login("alice");
        let retr = pair
            .client
            .send_command(sfs_proto::control::Command::Retr {
                path: "f".into(),
                offset: 0,
            })
            .unwrap();
        pair.drive();
        let transfer = pair.server.open_transfer(retr, 0, 1, 1).unwrap();
        pair.drive();
        pair.link.inject(Fault::Corrupt {
            from: End::Server,
            stream: 1,
            bit,
        });
        pair.send_file(End::Server, transfer, b"x", 1);
        assert!(pair.client_chunks.is_empty(), "bit {bit}: chunk delivered");
        let closed = pair.client_events.iter().find_map(|e| match e {
            Event::Closed(reason) => Some(reason.code),
            _ => None,
        });
        assert_eq!(closed, Some(ErrorCode::RECORD_FAILURE), "bit {bit}");
        assert!(!pair
            .client_events
            .iter()
            .any(|e| matches!(e, Event::TransferFinished { .. })));
    }
}
