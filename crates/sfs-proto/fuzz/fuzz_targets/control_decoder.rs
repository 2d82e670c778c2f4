//! One control-message body: decoding must never panic, and whatever decodes must
//! re-encode to exactly the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sfs_proto::control::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(message) = Message::decode(data) {
        let frame = message.to_frame().expect("a decoded message re-encodes");
        assert_eq!(&frame[4..], data, "one encoding per message");
    }
});
