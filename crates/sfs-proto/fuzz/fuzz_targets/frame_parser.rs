//! A TLS plaintext byte stream cut into pieces: the frame decoder must never
//! panic, never buffer more than a frame plus one piece, and stop at the first
//! error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfs_proto::control::{FrameDecoder, FRAME_HEADER_LEN, MAX_CONTROL_MESSAGE};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the piece size, so the fuzzer explores partial frames.
    let Some((&piece, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(piece).max(1);
    let mut decoder = FrameDecoder::new();
    for chunk in stream.chunks(piece) {
        decoder.push(chunk);
        loop {
            match decoder.next_message() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(decoder.buffered() < FRAME_HEADER_LEN + MAX_CONTROL_MESSAGE + piece);
    }
});
