//! SHA-256 of a whole file or stream, as the client checks a transfer and the
//! server answers a digest request.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

/// Bytes read per call: large enough that hashing, not reading, dominates.
const BUFFER_BYTES: usize = 256 * 1024;

/// Reads `reader` to its end and returns how many bytes it gave and their
/// SHA-256. A file is read from its current position.
///
/// # Errors
///
/// Any error of `reader` other than [`io::ErrorKind::Interrupted`], which is retried.
///
/// ```
/// let (bytes, digest) = sfs_proto::digest::sha256_reader(&b"abc"[..]).unwrap();
/// assert_eq!(bytes, 3);
/// assert_eq!(digest[..4], [0xba, 0x78, 0x16, 0xbf]);
/// ```
pub fn sha256_reader(mut reader: impl Read) -> io::Result<(u64, [u8; 32])> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; BUFFER_BYTES];
    let mut total = 0u64;
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        hasher.update(buffer.get(..read).unwrap_or_default());
        total += read as u64;
    }
    Ok((total, hasher.finalize().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_one_shot_digest_across_buffer_boundaries() {
        let data: Vec<u8> = (0..BUFFER_BYTES * 2 + 17).map(|i| i as u8).collect();
        let (bytes, digest) = sha256_reader(data.as_slice()).unwrap();
        assert_eq!(bytes, data.len() as u64);
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));
    }

    #[test]
    fn empty_input_has_the_empty_digest() {
        let (bytes, digest) = sha256_reader(io::empty()).unwrap();
        assert_eq!(bytes, 0);
        assert_eq!(digest[..4], [0xe3, 0xb0, 0xc4, 0x42]);
    }
}
