//! Seal+open throughput of 64 KiB data records against raw `ring` AES-256-GCM on
//! the same buffer sizes. Prints medians and the ratio (the goal is >= 0.9).
//!
//! Run with `cargo bench -p sfs-proto --bench record`.

use std::hint::black_box;
use std::time::Instant;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};

use sfs_proto::control::TransferId;
use sfs_proto::record::{
    chunk_buffer, Direction, Record, RecordSecret, MAX_CHUNK_DATA, MAX_RECORD_LEN, TAG_LEN,
};

const RECORDS_PER_SAMPLE: usize = 200;
const SAMPLES: usize = 21;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let secret = RecordSecret::from_exporter(&[42; 32]);
    let mut sealer = secret.sealer(Direction::ServerToClient, 0, 1);
    let mut opener = secret.opener(Direction::ServerToClient, 0, 1);
    let mut record = chunk_buffer(MAX_CHUNK_DATA);
    record.resize(MAX_RECORD_LEN - TAG_LEN, 0x5a);
    let mut offset = 0u64;

    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).expect("key"));
    // The raw AEAD protects the same number of bytes as a record's ciphertext.
    let raw_len = MAX_RECORD_LEN - TAG_LEN - 10;
    let mut raw = vec![0x5au8; raw_len];
    raw.reserve(TAG_LEN);
    let mut counter = 0u64;

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for sample in 0..SAMPLES + 1 {
        let start = Instant::now();
        for _ in 0..RECORDS_PER_SAMPLE {
            record.truncate(MAX_RECORD_LEN - TAG_LEN);
            sealer
                .seal_chunk(TransferId(1), offset, &mut record)
                .expect("seal");
            offset += MAX_CHUNK_DATA as u64;
            match opener.open(black_box(&mut record)).expect("open") {
                Record::Chunk { data, .. } => {
                    black_box(data);
                }
                Record::End(_) => unreachable!(),
            }
        }
        let ours_secs = start.elapsed().as_secs_f64();

        let start = Instant::now();
        for _ in 0..RECORDS_PER_SAMPLE {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&counter.to_be_bytes());
            counter += 1;
            raw.truncate(raw_len);
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from([0u8; 17]),
                    &mut raw,
                )
                .expect("seal");
            raw.extend_from_slice(tag.as_ref());
            let plaintext = key
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from([0u8; 17]),
                    black_box(&mut raw),
                )
                .expect("open");
            black_box(plaintext);
        }
        let raw_secs = start.elapsed().as_secs_f64();
        // The first sample warms caches and is not counted.
        if sample > 0 {
            let bytes = (RECORDS_PER_SAMPLE * MAX_CHUNK_DATA) as f64;
            ours.push(bytes / ours_secs / 1e6);
            theirs.push(bytes / raw_secs / 1e6);
        }
    }
    let ours = median(ours);
    let raw = median(theirs);
    println!("record seal+open, 64 KiB records ({MAX_CHUNK_DATA} bytes of file data each)");
    println!("  sfs-proto records: {ours:8.1} MB/s of file data (median of {SAMPLES})");
    println!("  raw ring AES-256-GCM: {raw:8.1} MB/s on the same sizes");
    println!("  ratio: {:.3} (goal >= 0.9)", ours / raw);
}
