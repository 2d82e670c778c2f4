//! Data records: random bytes, and genuine records with fuzzer-chosen edits, must
//! never panic the opener and must never open unless unmodified.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfs_proto::control::TransferId;
use sfs_proto::record::{chunk_buffer, Direction, RecordSecret};

fuzz_target!(|data: &[u8]| {
    // Random bytes go to an opener whose key never seals anything here. (With one
    // key for both parts, libFuzzer lifts genuine records from the comparison
    // below into its dictionary and replays them: a valid record, not a forgery.)
    let never_seals = RecordSecret::from_exporter(&[0x17; 32]);
    let secret = RecordSecret::from_exporter(&[0x42; 32]);

    // Random bytes as a record.
    let mut opener = never_seals.opener(Direction::ServerToClient, 0, 1);
    let mut raw = data.to_vec();
    assert!(opener.open(&mut raw).is_err(), "random bytes opened");

    // A genuine record of the input, then the input's first bytes as edits.
    let mut sealer = secret.sealer(Direction::ServerToClient, 0, 1);
    let payload = data.get(..data.len().min(1000)).unwrap_or_default();
    let mut record = chunk_buffer(payload.len());
    record.extend_from_slice(payload);
    if sealer.seal_chunk(TransferId(1), 0, &mut record).is_err() {
        return;
    }
    let mut edited = record.clone();
    for pair in data.chunks_exact(2).take(4) {
        let at = usize::from(pair[0]) % edited.len();
        edited[at] ^= pair[1];
    }
    let changed = edited != record;
    let mut opener = secret.opener(Direction::ServerToClient, 0, 1);
    let opened = opener.open(&mut edited).is_ok();
    assert_eq!(
        opened, !changed,
        "an edited record opened, or a genuine one failed"
    );
});
