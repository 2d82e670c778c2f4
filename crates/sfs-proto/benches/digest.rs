//! SHA-256 throughput of the two implementations in the dependency tree, the
//! `sha2` crate and `ring::digest`, over 64 KiB pieces (one chunk record's
//! data), and AES-256-GCM sealing of the same pieces for scale. Prints MiB/s
//! (medians). Run with `cargo bench -p sfs-proto --bench digest`; the binary
//! also runs in the VM, where it shows what the emulated CPU makes of each.

use std::hint::black_box;
use std::time::Instant;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use sha2::Digest as _;

const PIECE: usize = 64 * 1024;
const PIECES_PER_SAMPLE: usize = 64;
const SAMPLES: usize = 9;

fn mib_per_s(mut run: impl FnMut(&[u8])) -> f64 {
    let data = vec![0x5au8; PIECE];
    let mut rates = Vec::new();
    for _ in 0..SAMPLES {
        let start = Instant::now();
        for _ in 0..PIECES_PER_SAMPLE {
            run(black_box(&data));
        }
        let secs = start.elapsed().as_secs_f64();
        rates.push((PIECE * PIECES_PER_SAMPLE) as f64 / secs / (1 << 20) as f64);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    rates[rates.len() / 2]
}

fn main() {
    let mut sha2 = sha2::Sha256::new();
    let sha2_rate = mib_per_s(|piece| sha2.update(piece));
    black_box(sha2.finalize());

    let mut ring = ring::digest::Context::new(&ring::digest::SHA256);
    let ring_rate = mib_per_s(|piece| ring.update(piece));
    black_box(ring.finish());

    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).expect("key"));
    let mut buffer = vec![0u8; PIECE];
    let mut counter = 0u64;
    let aes_rate = mib_per_s(|piece| {
        buffer.copy_from_slice(piece);
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&counter.to_be_bytes());
        counter += 1;
        let tag = black_box(
            key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut buffer,
            )
            .expect("seal"),
        );
        black_box(tag.as_ref());
    });

    println!("SHA-256, sha2 crate:   {sha2_rate:8.1} MiB/s");
    println!("SHA-256, ring::digest: {ring_rate:8.1} MiB/s");
    println!("AES-256-GCM seal (ring, with a 64 KiB copy): {aes_rate:8.1} MiB/s");
}
