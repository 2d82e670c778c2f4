// Over 600 lines because its unit tests reach the private key schedule.
//! The record layer of the data streams (streams 1..n).
//!
//! Every message on a data stream is one record, sealed with AES-256-GCM under a
//! key that belongs to one (direction, stream) pair:
//!
//! ```text
//! TLS exporter (label EXPORTER_LABEL, 32 bytes)
//!   └─ HKDF-Extract(salt = HKDF_SALT)                          = PRK
//!        ├─ HKDF-Expand(PRK, "sfs v1 key" | dir | stream, 32) = key
//!        └─ HKDF-Expand(PRK, "sfs v1 iv"  | dir | stream, 12) = IV
//! nonce = IV XOR (0^4 | seq:u64)
//! AAD   = version | dir | stream:u16 | seq:u64 | type | plaintext length:u32
//! ```
//!
//! A record on the wire:
//!
//! ```text
//! version:u8  type:u8  seq:u64  ciphertext[plaintext length]  tag[16]
//! Chunk plaintext: transfer:u32  offset:u64  data
//! End plaintext:   transfer:u32  length:u64  sha256[32]
//! ```
//!
//! The [`Opener`] requires exactly the next sequence number (SCTP keeps each stream
//! in order, so anything else is a replay, a loss or an attack), and its first
//! failure is sticky: it never opens another record, and no plaintext of a failed
//! record is returned. Both sides count the AES blocks under each key and refuse to
//! go past [`CONFIDENTIALITY_LIMIT_BLOCKS`].
//!
//! Sealing is in place: the caller builds the record in one buffer (header room,
//! then data, typically read straight from a file into it), and [`Sealer`]
//! encrypts it there and appends the tag. Opening is in place too.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf::{KeyType, Prk, Salt, HKDF_SHA256};
use thiserror::Error;

use crate::control::{TransferEnd, TransferId, PROTOCOL_VERSION};

/// The TLS exporter label (RFC 8446 section 7.5). Private labels must start with
/// `EXPERIMENTAL` (RFC 5705 section 4).
pub const EXPORTER_LABEL: &[u8] = b"EXPERIMENTAL-sfs-v1-data-streams";
/// Bytes taken from the exporter.
pub const EXPORTER_LEN: usize = 32;
/// The HKDF salt, fixed per protocol version.
pub const HKDF_SALT: &[u8] = b"sfs v1 record salt";
/// Header in front of the ciphertext: version, type, sequence number.
pub const RECORD_HEADER_LEN: usize = 1 + 1 + 8;
/// The AEAD tag after the ciphertext.
pub const TAG_LEN: usize = 16;
/// Header plus the chunk fields (transfer id, offset) in front of chunk data.
pub const CHUNK_PREFIX_LEN: usize = RECORD_HEADER_LEN + 4 + 8;
/// The largest record, which is also the largest message on a data stream. It is
/// 64 KiB so that one record never blocks other streams for long at the sender.
pub const MAX_RECORD_LEN: usize = 64 * 1024;
/// The most file data one chunk record carries.
pub const MAX_CHUNK_DATA: usize = MAX_RECORD_LEN - CHUNK_PREFIX_LEN - TAG_LEN;
/// AES blocks one key may encrypt. TLS 1.3 (RFC 8446 section 5.5) allows 2^24.5
/// full 2^14-byte records for AES-GCM, about 2^34.5 blocks, for an attacker
/// advantage of 2^-60; this limit stays under it, counting one extra block per
/// record for the tag.
pub const CONFIDENTIALITY_LIMIT_BLOCKS: u64 = 1 << 34;

/// Which way a record travels; part of the key derivation and the AAD, so that a
/// record cannot be reflected back to its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by the client.
    ClientToServer,
    /// Sent by the server.
    ServerToClient,
}

impl Direction {
    fn byte(self) -> u8 {
        match self {
            Self::ClientToServer => 0,
            Self::ServerToClient => 1,
        }
    }
}

/// The kinds of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// File data at an offset of a transfer.
    Chunk,
    /// The end of a transfer: total length and digest.
    End,
}

impl RecordType {
    fn byte(self) -> u8 {
        match self {
            Self::Chunk => 1,
            Self::End => 2,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Chunk),
            2 => Some(Self::End),
            _ => None,
        }
    }
}

/// Why a record could not be sealed or opened. Every error from an [`Opener`] is
/// fatal for the session.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// Shorter than a header and a tag, or longer than [`MAX_RECORD_LEN`].
    #[error("record length {0} out of bounds")]
    BadLength(usize),
    /// A record version this build does not speak.
    #[error("unsupported record version {0}")]
    UnsupportedVersion(u8),
    /// An unknown record type.
    #[error("unknown record type {0}")]
    UnknownType(u8),
    /// Not the next sequence number: replayed, dropped, reordered or spliced.
    #[error("record sequence {got}, expected {expected}")]
    OutOfOrder {
        /// The only acceptable sequence number.
        expected: u64,
        /// The one in the record.
        got: u64,
    },
    /// The AEAD refused the record: corrupted, forged, or from another stream,
    /// direction or session.
    #[error("record failed authentication")]
    Authentication,
    /// An authenticated record whose plaintext is malformed.
    #[error("malformed record plaintext")]
    Malformed,
    /// The key reached its confidentiality limit or sequence space.
    #[error("record key exhausted")]
    KeyExhausted,
    /// Chunk data over [`MAX_CHUNK_DATA`], or a buffer without header room.
    #[error("record too large or badly prepared buffer")]
    BadBuffer,
}

/// One opened record. Chunk data borrows the received buffer: no copy.
#[derive(Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// File data.
    Chunk {
        /// The transfer it belongs to.
        transfer: TransferId,
        /// Its file offset.
        offset: u64,
        /// The bytes.
        data: &'a [u8],
    },
    /// The end of a transfer.
    End(TransferEnd),
}

/// The secret all stream keys of one session come from.
pub struct RecordSecret {
    prk: Prk,
}

impl std::fmt::Debug for RecordSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordSecret(..)")
    }
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl RecordSecret {
    /// Takes the exporter output ([`EXPORTER_LABEL`], no context, [`EXPORTER_LEN`] bytes).
    pub fn from_exporter(exported: &[u8; EXPORTER_LEN]) -> Self {
        let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(exported);
        Self { prk }
    }

    fn key_and_iv(&self, direction: Direction, stream: u16) -> (LessSafeKey, [u8; NONCE_LEN]) {
        let dir = [direction.byte()];
        let stream_be = stream.to_be_bytes();
        let key_info: [&[u8]; 3] = [b"sfs v1 key", &dir, &stream_be];
        let iv_info: [&[u8]; 3] = [b"sfs v1 iv", &dir, &stream_be];
        // HKDF-Expand fails only if the output is over 255 hash lengths; 32 and 12
        // bytes are far below.
        let okm = self
            .prk
            .expand(&key_info, &AES_256_GCM)
            .expect("32-byte HKDF output");
        let key = LessSafeKey::new(UnboundKey::from(okm));
        let mut iv = [0; NONCE_LEN];
        self.prk
            .expand(&iv_info, Len(NONCE_LEN))
            .and_then(|okm| okm.fill(&mut iv))
            .expect("12-byte HKDF output");
        (key, iv)
    }

    /// The sealer for records sent in `direction` on `stream`.
    pub fn sealer(&self, direction: Direction, stream: u16) -> Sealer {
        let (key, iv) = self.key_and_iv(direction, stream);
        Sealer {
            state: KeyState::new(key, iv, direction, stream),
        }
    }

    /// The opener for records received from `direction` on `stream`.
    pub fn opener(&self, direction: Direction, stream: u16) -> Opener {
        let (key, iv) = self.key_and_iv(direction, stream);
        Opener {
            state: KeyState::new(key, iv, direction, stream),
            failure: None,
        }
    }

    /// A SHA-256 fingerprint of the key and IV of one (direction, stream), so tests
    /// can compare keys without seeing them.
    #[cfg(feature = "testing")]
    pub fn fingerprint(&self, direction: Direction, stream: u16) -> [u8; 32] {
        use sha2::Digest;
        let dir = [direction.byte()];
        let stream_be = stream.to_be_bytes();
        let key_info: [&[u8]; 3] = [b"sfs v1 key", &dir, &stream_be];
        let mut key = [0; 32];
        self.prk
            .expand(&key_info, Len(32))
            .and_then(|okm| okm.fill(&mut key))
            .expect("32-byte HKDF output");
        let (_, iv) = self.key_and_iv(direction, stream);
        let mut h = sha2::Sha256::new();
        h.update(key);
        h.update(iv);
        h.finalize().into()
    }
}

struct KeyState {
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    direction: Direction,
    stream: u16,
    next_seq: u64,
    blocks_left: u64,
}

impl KeyState {
    fn new(key: LessSafeKey, iv: [u8; NONCE_LEN], direction: Direction, stream: u16) -> Self {
        Self {
            key,
            iv,
            direction,
            stream,
            next_seq: 0,
            blocks_left: CONFIDENTIALITY_LIMIT_BLOCKS,
        }
    }

    fn nonce(&self, seq: u64) -> Nonce {
        let mut nonce = self.iv;
        for (n, s) in nonce[NONCE_LEN - 8..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        Nonce::assume_unique_for_key(nonce)
    }

    fn aad(&self, seq: u64, ty: RecordType, plaintext_len: usize) -> [u8; 17] {
        let mut aad = [0; 17];
        aad[0] = PROTOCOL_VERSION;
        aad[1] = self.direction.byte();
        aad[2..4].copy_from_slice(&self.stream.to_be_bytes());
        aad[4..12].copy_from_slice(&seq.to_be_bytes());
        aad[12] = ty.byte();
        // plaintext_len <= MAX_RECORD_LEN, checked by both callers.
        aad[13..17].copy_from_slice(&(plaintext_len as u32).to_be_bytes());
        aad
    }

    /// Charges one record of `plaintext_len` bytes against the key's limits.
    fn charge(&mut self, plaintext_len: usize) -> Result<u64, RecordError> {
        let blocks = (plaintext_len as u64).div_ceil(16) + 1;
        if self.next_seq == u64::MAX || blocks > self.blocks_left {
            return Err(RecordError::KeyExhausted);
        }
        self.blocks_left -= blocks;
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(seq)
    }
}

/// Seals the records of one (direction, stream).
pub struct Sealer {
    state: KeyState,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("direction", &self.state.direction)
            .field("stream", &self.state.stream)
            .field("next_seq", &self.state.next_seq)
            .finish_non_exhaustive()
    }
}

/// A buffer ready for [`Sealer::seal_chunk`]: `CHUNK_PREFIX_LEN` bytes of header
/// room, with capacity for `data_len` bytes of data and the tag, so that sealing
/// never reallocates. Append the data, then seal.
pub fn chunk_buffer(data_len: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(CHUNK_PREFIX_LEN + data_len + TAG_LEN);
    buf.resize(CHUNK_PREFIX_LEN, 0);
    buf
}

impl Sealer {
    /// Seals a chunk in place. `buf` holds [`CHUNK_PREFIX_LEN`] bytes of room
    /// (any content; see [`chunk_buffer`]) followed by the data. The tag is
    /// appended. Returns the record's sequence number.
    ///
    /// # Errors
    ///
    /// [`RecordError::BadBuffer`] if `buf` lacks the prefix room or carries more than
    /// `MAX_CHUNK_DATA` bytes; [`RecordError::KeyExhausted`] once the key reached its
    /// limit (the session must end).
    pub fn seal_chunk(
        &mut self,
        transfer: TransferId,
        offset: u64,
        buf: &mut Vec<u8>,
    ) -> Result<u64, RecordError> {
        let data_len = buf
            .len()
            .checked_sub(CHUNK_PREFIX_LEN)
            .ok_or(RecordError::BadBuffer)?;
        if data_len > MAX_CHUNK_DATA {
            return Err(RecordError::BadBuffer);
        }
        buf[RECORD_HEADER_LEN..RECORD_HEADER_LEN + 4].copy_from_slice(&transfer.0.to_be_bytes());
        buf[RECORD_HEADER_LEN + 4..CHUNK_PREFIX_LEN].copy_from_slice(&offset.to_be_bytes());
        self.seal(RecordType::Chunk, buf)
    }

    /// Seals an End record into `out` (cleared first). Returns its sequence number.
    ///
    /// # Errors
    ///
    /// [`RecordError::KeyExhausted`] once the key reached its limit.
    pub fn seal_end(&mut self, end: &TransferEnd, out: &mut Vec<u8>) -> Result<u64, RecordError> {
        out.clear();
        out.reserve(RECORD_HEADER_LEN + TransferEnd::LEN + TAG_LEN);
        out.resize(RECORD_HEADER_LEN, 0);
        end.encode(out);
        self.seal(RecordType::End, out)
    }

    /// Encrypts `buf[RECORD_HEADER_LEN..]` in place, writes the header, appends the tag.
    fn seal(&mut self, ty: RecordType, buf: &mut Vec<u8>) -> Result<u64, RecordError> {
        let plaintext_len = buf.len() - RECORD_HEADER_LEN;
        if buf.len() + TAG_LEN > MAX_RECORD_LEN {
            return Err(RecordError::BadBuffer);
        }
        let seq = self.state.charge(plaintext_len)?;
        buf[0] = PROTOCOL_VERSION;
        buf[1] = ty.byte();
        buf[2..RECORD_HEADER_LEN].copy_from_slice(&seq.to_be_bytes());
        let aad = self.state.aad(seq, ty, plaintext_len);
        let tag = self
            .state
            .key
            .seal_in_place_separate_tag(
                self.state.nonce(seq),
                Aad::from(aad),
                &mut buf[RECORD_HEADER_LEN..],
            )
            // AES-GCM sealing fails only for inputs over 2^36 bytes; ours are 64 KiB.
            .map_err(|_| RecordError::BadBuffer)?;
        buf.extend_from_slice(tag.as_ref());
        Ok(seq)
    }

    /// The sequence number the next record will carry.
    pub fn next_sequence(&self) -> u64 {
        self.state.next_seq
    }

    /// Lowers the block budget of this key (never raises it). For tests of the
    /// confidentiality limit, and for deployments that want to close sooner.
    pub fn limit_blocks(&mut self, blocks: u64) {
        self.state.blocks_left = self.state.blocks_left.min(blocks);
    }
}

/// Opens the records of one (direction, stream), strictly in sequence.
pub struct Opener {
    state: KeyState,
    failure: Option<RecordError>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("direction", &self.state.direction)
            .field("stream", &self.state.stream)
            .field("next_seq", &self.state.next_seq)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Authenticates and decrypts one record in place. After any error this opener
    /// returns that same error forever.
    ///
    /// # Errors
    ///
    /// A [`RecordError`] for a record that is malformed, fails authentication,
    /// comes out of sequence or exceeds the key's limit; the stream is unusable after it.
    pub fn open<'a>(&mut self, msg: &'a mut [u8]) -> Result<Record<'a>, RecordError> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        match self.open_inner(msg) {
            Ok(Parsed::Chunk {
                transfer,
                offset,
                data_len,
            }) => {
                let start = CHUNK_PREFIX_LEN;
                Ok(Record::Chunk {
                    transfer,
                    offset,
                    // open_inner checked that these bytes are the chunk data.
                    data: &msg[start..start + data_len],
                })
            }
            Ok(Parsed::End(end)) => Ok(Record::End(end)),
            Err(error) => {
                // Whatever the AEAD left in the buffer is not for anyone's eyes.
                msg.fill(0);
                self.failure = Some(error.clone());
                Err(error)
            }
        }
    }

    fn open_inner(&mut self, msg: &mut [u8]) -> Result<Parsed, RecordError> {
        if msg.len() < RECORD_HEADER_LEN + TAG_LEN || msg.len() > MAX_RECORD_LEN {
            return Err(RecordError::BadLength(msg.len()));
        }
        let (header, body) = msg.split_at_mut(RECORD_HEADER_LEN);
        if header[0] != PROTOCOL_VERSION {
            return Err(RecordError::UnsupportedVersion(header[0]));
        }
        let ty = RecordType::from_byte(header[1]).ok_or(RecordError::UnknownType(header[1]))?;
        let mut seq_bytes = [0; 8];
        seq_bytes.copy_from_slice(&header[2..RECORD_HEADER_LEN]);
        let seq = u64::from_be_bytes(seq_bytes);
        if seq != self.state.next_seq {
            return Err(RecordError::OutOfOrder {
                expected: self.state.next_seq,
                got: seq,
            });
        }
        let plaintext_len = body.len() - TAG_LEN;
        self.state.charge(plaintext_len)?;
        let aad = self.state.aad(seq, ty, plaintext_len);
        let plaintext = self
            .state
            .key
            .open_in_place(self.state.nonce(seq), Aad::from(aad), body)
            .map_err(|_| RecordError::Authentication)?;
        parse_plaintext(ty, plaintext)
    }

    /// The sequence number the next record must carry.
    pub fn next_sequence(&self) -> u64 {
        self.state.next_seq
    }

    /// The error that stopped this opener, if any.
    pub fn failure(&self) -> Option<&RecordError> {
        self.failure.as_ref()
    }

    /// Lowers the block budget of this key (never raises it).
    pub fn limit_blocks(&mut self, blocks: u64) {
        self.state.blocks_left = self.state.blocks_left.min(blocks);
    }
}

/// An opened record, as positions in the buffer, so that [`Opener::open`] can
/// still wipe the buffer when parsing fails.
enum Parsed {
    Chunk {
        transfer: TransferId,
        offset: u64,
        data_len: usize,
    },
    End(TransferEnd),
}

fn parse_plaintext(ty: RecordType, plaintext: &[u8]) -> Result<Parsed, RecordError> {
    let mut r = crate::codec::Reader::new(plaintext);
    match ty {
        RecordType::Chunk => {
            let transfer = TransferId(r.u32().map_err(|_| RecordError::Malformed)?);
            let offset = r.u64().map_err(|_| RecordError::Malformed)?;
            Ok(Parsed::Chunk {
                transfer,
                offset,
                data_len: r.remaining(),
            })
        }
        RecordType::End => {
            let end = TransferEnd::decode(&mut r).map_err(|_| RecordError::Malformed)?;
            r.finish().map_err(|_| RecordError::Malformed)?;
            Ok(Parsed::End(end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> RecordSecret {
        RecordSecret::from_exporter(&[byte; EXPORTER_LEN])
    }

    fn sealed_chunk(sealer: &mut Sealer, transfer: u32, offset: u64, data: &[u8]) -> Vec<u8> {
        let mut buf = chunk_buffer(data.len());
        buf.extend_from_slice(data);
        sealer
            .seal_chunk(TransferId(transfer), offset, &mut buf)
            .unwrap();
        buf
    }

    #[test]
    fn chunk_round_trip_without_reallocation() {
        let s = secret(1);
        let mut sealer = s.sealer(Direction::ClientToServer, 3);
        let mut opener = s.opener(Direction::ClientToServer, 3);
        let data = vec![7u8; MAX_CHUNK_DATA];
        let mut buf = chunk_buffer(data.len());
        buf.extend_from_slice(&data);
        let ptr = buf.as_ptr();
        sealer.seal_chunk(TransferId(9), 4096, &mut buf).unwrap();
        assert_eq!(buf.as_ptr(), ptr, "sealing must not reallocate");
        assert_eq!(buf.len(), MAX_RECORD_LEN);
        let record = opener.open(&mut buf).unwrap();
        assert_eq!(
            record,
            Record::Chunk {
                transfer: TransferId(9),
                offset: 4096,
                data: &data
            }
        );
    }

    #[test]
    fn end_round_trip() {
        let s = secret(2);
        let mut sealer = s.sealer(Direction::ServerToClient, 1);
        let mut opener = s.opener(Direction::ServerToClient, 1);
        let end = TransferEnd {
            transfer: TransferId(5),
            length: 77,
            sha256: [3; 32],
        };
        let mut buf = Vec::new();
        sealer.seal_end(&end, &mut buf).unwrap();
        assert_eq!(opener.open(&mut buf).unwrap(), Record::End(end));
    }

    #[test]
    fn oversized_chunk_refused() {
        let mut sealer = secret(1).sealer(Direction::ClientToServer, 1);
        let mut buf = chunk_buffer(MAX_CHUNK_DATA + 1);
        buf.resize(CHUNK_PREFIX_LEN + MAX_CHUNK_DATA + 1, 0);
        assert_eq!(
            sealer.seal_chunk(TransferId(1), 0, &mut buf),
            Err(RecordError::BadBuffer)
        );
        let mut short = vec![0; 3];
        assert_eq!(
            sealer.seal_chunk(TransferId(1), 0, &mut short),
            Err(RecordError::BadBuffer)
        );
    }

    #[test]
    fn confidentiality_limit_enforced_on_both_sides() {
        let s = secret(4);
        let mut sealer = s.sealer(Direction::ClientToServer, 1);
        // 32 bytes of plaintext (12 of fields + 20 of data) = 2 blocks + 1 for the tag.
        sealer.limit_blocks(6);
        sealed_chunk(&mut sealer, 1, 0, &[0; 20]);
        sealed_chunk(&mut sealer, 1, 20, &[0; 20]);
        let mut buf = chunk_buffer(20);
        buf.extend_from_slice(&[0; 20]);
        assert_eq!(
            sealer.seal_chunk(TransferId(1), 40, &mut buf),
            Err(RecordError::KeyExhausted)
        );

        let mut sealer = s.sealer(Direction::ClientToServer, 1);
        let mut opener = s.opener(Direction::ClientToServer, 1);
        opener.limit_blocks(3);
        let mut first = sealed_chunk(&mut sealer, 1, 0, &[0; 20]);
        let mut second = sealed_chunk(&mut sealer, 1, 20, &[0; 20]);
        assert!(opener.open(&mut first).is_ok());
        assert_eq!(opener.open(&mut second), Err(RecordError::KeyExhausted));
    }

    #[test]
    fn failure_is_sticky() {
        let s = secret(5);
        let mut sealer = s.sealer(Direction::ClientToServer, 1);
        let mut opener = s.opener(Direction::ClientToServer, 1);
        let mut good = sealed_chunk(&mut sealer, 1, 0, b"hello");
        let mut bad = good.clone();
        bad[RECORD_HEADER_LEN] ^= 1;
        assert_eq!(opener.open(&mut bad), Err(RecordError::Authentication));
        assert!(bad[RECORD_HEADER_LEN..].iter().all(|&b| b == 0));
        assert_eq!(opener.open(&mut good), Err(RecordError::Authentication));
        assert_eq!(opener.failure(), Some(&RecordError::Authentication));
    }

    #[test]
    fn nonce_differs_per_sequence() {
        let s = secret(6);
        let mut sealer = s.sealer(Direction::ClientToServer, 1);
        let a = sealed_chunk(&mut sealer, 1, 0, &[0; 32]);
        let b = sealed_chunk(&mut sealer, 1, 0, &[0; 32]);
        assert_ne!(a[RECORD_HEADER_LEN..], b[RECORD_HEADER_LEN..]);
    }
}
