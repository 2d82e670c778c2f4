//! SHA-256: the hash state every transfer carries ([`Sha256`]), and the digest
//! of a whole file or stream, as the client checks a transfer and the server
//! answers a digest request.

use std::io::{self, Read, Write};

use ring::digest::{Context, SHA256, SHA256_OUTPUT_LEN};

/// A SHA-256 hash state, computed by `ring` (assembly using the CPU's SHA
/// extensions, AVX or SSSE3 where it has them): on the development machine it
/// hashes about twice as fast as the `sha2` crate, and every byte a transfer
/// moves is hashed once on each side. Cloning copies the state, so the hash of
/// a file's first bytes can be continued by a resumed transfer.
///
/// The state is boxed: `ring`'s holds a partial block sized for SHA-512 (over
/// 200 bytes in all), and this one travels by value inside commands' results.
#[derive(Clone)]
pub struct Sha256(Box<Context>);

impl Sha256 {
    /// The state of no bytes hashed.
    pub fn new() -> Self {
        Self(Box::new(Context::new(&SHA256)))
    }

    /// The state after hashing `data`.
    pub fn new_with_prefix(data: impl AsRef<[u8]>) -> Self {
        Self::new().chain_update(data)
    }

    /// Hashes `data` after what was hashed so far.
    pub fn update(&mut self, data: impl AsRef<[u8]>) {
        self.0.update(data.as_ref());
    }

    /// [`Self::update`], by value.
    #[must_use]
    pub fn chain_update(mut self, data: impl AsRef<[u8]>) -> Self {
        self.update(data);
        self
    }

    /// The digest of every byte hashed.
    pub fn finalize(self) -> [u8; SHA256_OUTPUT_LEN] {
        let mut out = [0; SHA256_OUTPUT_LEN];
        out.copy_from_slice((*self.0).finish().as_ref());
        out
    }

    /// The digest of `data`.
    pub fn digest(data: impl AsRef<[u8]>) -> [u8; SHA256_OUTPUT_LEN] {
        Self::new_with_prefix(data).finalize()
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Sha256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sha256").finish_non_exhaustive()
    }
}

/// Hashes what is written, so a reader can be hashed with [`io::copy`].
impl Write for Sha256 {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

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
    Ok((total, hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    #[test]
    fn matches_a_one_shot_digest_across_buffer_boundaries() {
        let data: Vec<u8> = (0..BUFFER_BYTES * 2 + 17).map(|i| i as u8).collect();
        let (bytes, digest) = sha256_reader(data.as_slice()).unwrap();
        assert_eq!(bytes, data.len() as u64);
        assert_eq!(digest, <[u8; 32]>::from(sha2::Sha256::digest(&data)));
    }

    #[test]
    fn agrees_with_the_sha2_crate_across_clones_and_pieces() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let expected = <[u8; 32]>::from(sha2::Sha256::digest(&data));
        assert_eq!(Sha256::digest(&data), expected);
        let prefix = Sha256::new_with_prefix(&data[..777]);
        let mut rest = prefix.clone();
        for piece in data[777..].chunks(4_099) {
            rest.update(piece);
        }
        assert_eq!(rest.finalize(), expected);
        assert_eq!(prefix.chain_update(&data[777..]).finalize(), expected);
        let mut written = Sha256::default();
        io::copy(&mut data.as_slice(), &mut written).unwrap();
        assert_eq!(written.finalize(), expected);
    }

    #[test]
    fn empty_input_has_the_empty_digest() {
        let (bytes, digest) = sha256_reader(io::empty()).unwrap();
        assert_eq!(bytes, 0);
        assert_eq!(digest[..4], [0xe3, 0xb0, 0xc4, 0x42]);
    }
}
