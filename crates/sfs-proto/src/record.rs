// Over 600 lines because its unit tests reach the private key schedule.
//! The record layer of the data streams (streams 1..n).
//!
//! Every message on a data stream is one record, sealed with AES-256-GCM under a
//! key that belongs to one (direction, association, stream) and one key epoch
//! (association 0 is the first association of the session, 1.. its extra data
//! associations):
//!
//! ```text
//! TLS exporter (label EXPORTER_LABEL, 32 bytes)
//!   └─ HKDF-Extract(salt = HKDF_SALT)                                = PRK
//!        ├─ HKDF-Expand(PRK, "sfs v1 traffic" | dir | association:u8 | stream:u16, 32)
//!        │                                                             = secret[0]
//!        └─ HKDF-Expand(PRK, "sfs v1 bind", 32)                      = bind key
//! secret[e + 1] = HKDF-Expand(secret[e], "sfs v1 ku", 32)   (key update)
//! key[e]        = HKDF-Expand(secret[e], "sfs v1 key", 32)
//! IV[e]         = HKDF-Expand(secret[e], "sfs v1 iv", 12)
//! epoch e       = seq / RECORDS_PER_KEY
//! nonce = IV[e] XOR (0^4 | seq:u64)
//! AAD   = version | dir | association:u8 | stream:u16 | seq:u64 | type
//!         | plaintext length:u32
//! bind proof = HMAC-SHA256(bind key, "sfs v1 bind" | index:u8 | ticket[16])
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
//! Keys change on a deterministic schedule, like TLS 1.3's KeyUpdate (RFC 8446
//! section 7.2) without its message: the record with sequence number `seq` is
//! sealed under the key of epoch `seq / RECORDS_PER_KEY`, and both sides step to
//! the next secret when the sequence number crosses an epoch boundary, dropping
//! the old one (a key found later does not open earlier records). An epoch holds
//! at most [`RECORDS_PER_KEY`] records of at most [`MAX_BLOCKS_PER_RECORD`] AES
//! blocks, so no key ever encrypts more than [`CONFIDENTIALITY_LIMIT_BLOCKS`]
//! (checked at compile time). Only the 64-bit sequence space ends a stream.
//!
//! The [`Opener`] requires exactly the next sequence number (SCTP keeps each stream
//! in order, so anything else is a replay, a loss or an attack), and its first
//! failure is sticky: it never opens another record, and no plaintext of a failed
//! record is returned.
//!
//! Sealing is in place: the caller builds the record in one buffer (header room,
//! then data, typically read straight from a file into it), and [`Sealer`]
//! encrypts it there and appends the tag. Opening is in place too.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf::{KeyType, Prk, Salt, HKDF_SHA256};
use ring::hmac;
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
/// AES blocks the largest record costs: its plaintext in 16-byte blocks, plus one
/// for the tag.
pub const MAX_BLOCKS_PER_RECORD: u64 =
    (MAX_RECORD_LEN - RECORD_HEADER_LEN - TAG_LEN).div_ceil(16) as u64 + 1;
/// Records sealed under one key before the next key takes over (2^22, about
/// 256 GiB of full records): the most that can never exceed
/// [`CONFIDENTIALITY_LIMIT_BLOCKS`], whatever the record sizes.
pub const RECORDS_PER_KEY: u64 = CONFIDENTIALITY_LIMIT_BLOCKS / MAX_BLOCKS_PER_RECORD;

// The schedule, not a counter, keeps every key under its limit.
const _: () = assert!(RECORDS_PER_KEY * MAX_BLOCKS_PER_RECORD <= CONFIDENTIALITY_LIMIT_BLOCKS);
const _: () = assert!(RECORDS_PER_KEY == 1 << 22);

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
    /// The stream used up its sequence space (2^64 - 1 records).
    #[error("record sequence space exhausted")]
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
    records_per_key: u64,
}

impl std::fmt::Debug for RecordSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordSecret")
            .field("records_per_key", &self.records_per_key)
            .finish_non_exhaustive()
    }
}

struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand of `secret` with `info` into a new HKDF secret of one hash length.
fn expand_secret(secret: &Prk, info: &[&[u8]]) -> Prk {
    // HKDF-Expand fails only if the output is over 255 hash lengths; this is one.
    Prk::from(
        secret
            .expand(info, HKDF_SHA256)
            .expect("32-byte HKDF output"),
    )
}

impl RecordSecret {
    /// Takes the exporter output ([`EXPORTER_LABEL`], no context, [`EXPORTER_LEN`] bytes).
    pub fn from_exporter(exported: &[u8; EXPORTER_LEN]) -> Self {
        let prk = Salt::new(HKDF_SHA256, HKDF_SALT).extract(exported);
        Self {
            prk,
            records_per_key: RECORDS_PER_KEY,
        }
    }

    /// Changes keys every `records` records instead of every [`RECORDS_PER_KEY`]:
    /// values are clamped to `1..=RECORDS_PER_KEY`. Both peers must use the same
    /// value, or the first record after a key update fails authentication; tests
    /// lower it to exercise key updates.
    #[must_use]
    pub fn with_records_per_key(mut self, records: u64) -> Self {
        self.records_per_key = records.clamp(1, RECORDS_PER_KEY);
        self
    }

    /// The first traffic secret of one (direction, association, stream).
    fn traffic_secret(&self, direction: Direction, association: u8, stream: u16) -> Prk {
        let dir = [direction.byte()];
        let association = [association];
        let stream_be = stream.to_be_bytes();
        expand_secret(
            &self.prk,
            &[b"sfs v1 traffic", &dir, &association, &stream_be],
        )
    }

    fn key_state(&self, direction: Direction, association: u8, stream: u16) -> KeyState {
        KeyState::new(
            self.traffic_secret(direction, association, stream),
            Lane {
                direction,
                association,
                stream,
            },
            self.records_per_key,
        )
    }

    /// The sealer for records sent in `direction` on `stream` of association
    /// `association` (0 = the first association).
    pub fn sealer(&self, direction: Direction, association: u8, stream: u16) -> Sealer {
        Sealer {
            state: self.key_state(direction, association, stream),
        }
    }

    /// The opener for records received from `direction` on `stream` of
    /// association `association`.
    pub fn opener(&self, direction: Direction, association: u8, stream: u16) -> Opener {
        Opener {
            state: self.key_state(direction, association, stream),
            failure: None,
        }
    }

    /// The proof of a `BIND` for association `index` with `ticket`:
    /// `HMAC-SHA256(bind_key, "sfs v1 bind" | index | ticket)`.
    pub fn bind_proof(&self, index: u8, ticket: &[u8; 16]) -> [u8; 32] {
        let tag = hmac::sign(&self.bind_key(), &bind_input(index, ticket));
        let mut proof = [0; 32];
        proof.copy_from_slice(tag.as_ref());
        proof
    }

    /// Checks a `BIND` proof in constant time.
    pub fn verify_bind_proof(&self, index: u8, ticket: &[u8; 16], proof: &[u8; 32]) -> bool {
        hmac::verify(&self.bind_key(), &bind_input(index, ticket), proof).is_ok()
    }

    fn bind_key(&self) -> hmac::Key {
        // HKDF-Expand fails only if the output is over 255 hash lengths; this is one.
        hmac::Key::from(
            self.prk
                .expand(&[crate::bind::BIND_LABEL], hmac::HMAC_SHA256)
                .expect("32-byte HKDF output"),
        )
    }

    /// A SHA-256 fingerprint of the first key and IV of one (direction,
    /// association, stream), so tests can compare keys without seeing them.
    #[cfg(feature = "testing")]
    pub fn fingerprint(&self, direction: Direction, association: u8, stream: u16) -> [u8; 32] {
        use sha2::Digest;
        let secret = self.traffic_secret(direction, association, stream);
        let mut key = [0; 32];
        secret
            .expand(&[b"sfs v1 key"], Len(32))
            .and_then(|okm| okm.fill(&mut key))
            .expect("32-byte HKDF output");
        let (_, iv) = key_and_iv(&secret);
        let mut h = sha2::Sha256::new();
        h.update(key);
        h.update(iv);
        h.finalize().into()
    }
}

/// The AEAD key and IV of one epoch's traffic secret.
fn key_and_iv(secret: &Prk) -> (LessSafeKey, [u8; NONCE_LEN]) {
    // HKDF-Expand fails only if the output is over 255 hash lengths; 32 and 12
    // bytes are far below.
    let okm = secret
        .expand(&[b"sfs v1 key"], &AES_256_GCM)
        .expect("32-byte HKDF output");
    let key = LessSafeKey::new(UnboundKey::from(okm));
    let mut iv = [0; NONCE_LEN];
    secret
        .expand(&[b"sfs v1 iv"], Len(NONCE_LEN))
        .and_then(|okm| okm.fill(&mut iv))
        .expect("12-byte HKDF output");
    (key, iv)
}

/// The input of a `BIND` proof.
fn bind_input(index: u8, ticket: &[u8; 16]) -> Vec<u8> {
    let mut input = Vec::with_capacity(crate::bind::BIND_LABEL.len() + 1 + ticket.len());
    input.extend_from_slice(crate::bind::BIND_LABEL);
    input.push(index);
    input.extend_from_slice(ticket);
    input
}

/// What one key belongs to, bound into every record's AAD.
#[derive(Clone, Copy)]
struct Lane {
    direction: Direction,
    association: u8,
    stream: u16,
}

/// The keys of one (direction, association, stream) and where it is in its
/// sequence space.
struct KeyState {
    /// The current epoch's traffic secret, kept only to derive the next one.
    secret: Prk,
    key: LessSafeKey,
    iv: [u8; NONCE_LEN],
    lane: Lane,
    next_seq: u64,
    records_per_key: u64,
}

impl KeyState {
    fn new(secret: Prk, lane: Lane, records_per_key: u64) -> Self {
        let (key, iv) = key_and_iv(&secret);
        Self {
            secret,
            key,
            iv,
            lane,
            next_seq: 0,
            records_per_key,
        }
    }

    /// The key epoch of the next record.
    fn epoch(&self) -> u64 {
        self.next_seq / self.records_per_key
    }

    fn nonce(&self, seq: u64) -> Nonce {
        let mut nonce = self.iv;
        for (n, s) in nonce[NONCE_LEN - 8..].iter_mut().zip(seq.to_be_bytes()) {
            *n ^= s;
        }
        Nonce::assume_unique_for_key(nonce)
    }

    fn aad(&self, seq: u64, ty: RecordType, plaintext_len: usize) -> [u8; 18] {
        let mut aad = [0; 18];
        aad[0] = PROTOCOL_VERSION;
        aad[1] = self.lane.direction.byte();
        aad[2] = self.lane.association;
        aad[3..5].copy_from_slice(&self.lane.stream.to_be_bytes());
        aad[5..13].copy_from_slice(&seq.to_be_bytes());
        aad[13] = ty.byte();
        // plaintext_len <= MAX_RECORD_LEN, checked by both callers.
        aad[14..18].copy_from_slice(&(plaintext_len as u32).to_be_bytes());
        aad
    }

    /// Takes the next sequence number, first stepping to the next key when it
    /// starts an epoch. The old secret and key are dropped here.
    fn take_sequence(&mut self) -> Result<u64, RecordError> {
        let seq = self.next_seq;
        // The last number stays unused, so `next_seq` never wraps.
        if seq == u64::MAX {
            return Err(RecordError::KeyExhausted);
        }
        if seq != 0 && seq % self.records_per_key == 0 {
            self.secret = expand_secret(&self.secret, &[b"sfs v1 ku"]);
            (self.key, self.iv) = key_and_iv(&self.secret);
        }
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
            .field("direction", &self.state.lane.direction)
            .field("association", &self.state.lane.association)
            .field("stream", &self.state.lane.stream)
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
    /// `MAX_CHUNK_DATA` bytes; [`RecordError::KeyExhausted`] once the stream's
    /// sequence space is used up (the session must end).
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
    /// [`RecordError::KeyExhausted`] once the stream's sequence space is used up.
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
        let seq = self.state.take_sequence()?;
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

    /// The key epoch the next record is sealed in (how many key updates it follows).
    pub fn key_epoch(&self) -> u64 {
        self.state.epoch()
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
            .field("direction", &self.state.lane.direction)
            .field("association", &self.state.lane.association)
            .field("stream", &self.state.lane.stream)
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
    /// comes out of sequence or past the sequence space; the stream is unusable after it.
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
        self.state.take_sequence()?;
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

    /// The key epoch the next record must be sealed in.
    pub fn key_epoch(&self) -> u64 {
        self.state.epoch()
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
        let mut sealer = s.sealer(Direction::ClientToServer, 0, 3);
        let mut opener = s.opener(Direction::ClientToServer, 0, 3);
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
        let mut sealer = s.sealer(Direction::ServerToClient, 0, 1);
        let mut opener = s.opener(Direction::ServerToClient, 0, 1);
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
        let mut sealer = secret(1).sealer(Direction::ClientToServer, 0, 1);
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
    fn keys_change_every_epoch_on_both_sides() {
        let s = secret(4).with_records_per_key(3);
        let mut sealer = s.sealer(Direction::ClientToServer, 0, 1);
        let mut opener = s.opener(Direction::ClientToServer, 0, 1);
        let mut keys = Vec::new();
        for seq in 0..20u64 {
            assert_eq!(sealer.key_epoch(), seq / 3);
            let mut record = sealed_chunk(&mut sealer, 1, seq * 20, &[0; 20]);
            // The key the record was just sealed under.
            keys.push(sealer.state.iv);
            assert!(opener.open(&mut record).is_ok(), "record {seq}");
            assert_eq!(opener.key_epoch(), sealer.key_epoch());
        }
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 7, "one key per epoch");
    }

    #[test]
    fn the_default_epoch_never_exceeds_the_confidentiality_limit() {
        let s = secret(4);
        assert_eq!(s.records_per_key, RECORDS_PER_KEY);
        assert_eq!(
            s.with_records_per_key(u64::MAX).records_per_key,
            RECORDS_PER_KEY
        );
        assert_eq!(secret(4).with_records_per_key(0).records_per_key, 1);
        // The largest record: 64 KiB less header and tag, rounded up, plus the tag.
        let largest = (MAX_RECORD_LEN - RECORD_HEADER_LEN - TAG_LEN) as u64;
        assert_eq!(MAX_BLOCKS_PER_RECORD, largest.div_ceil(16) + 1);
        assert_eq!(
            RECORDS_PER_KEY.checked_mul(MAX_BLOCKS_PER_RECORD),
            Some(CONFIDENTIALITY_LIMIT_BLOCKS)
        );
    }

    #[test]
    fn sequence_space_enforced_on_both_sides() {
        let s = secret(4);
        let mut sealer = s.sealer(Direction::ClientToServer, 0, 1);
        let mut opener = s.opener(Direction::ClientToServer, 0, 1);
        // Both ends jump to the end of the sequence space (in one epoch, as
        // u64::MAX - 1 is not a multiple of RECORDS_PER_KEY).
        sealer.state.next_seq = u64::MAX - 1;
        opener.state.next_seq = u64::MAX - 1;
        let mut last = sealed_chunk(&mut sealer, 1, 0, &[0; 20]);
        assert!(opener.open(&mut last.clone()).is_ok());
        let mut buf = chunk_buffer(20);
        buf.extend_from_slice(&[0; 20]);
        assert_eq!(
            sealer.seal_chunk(TransferId(1), 20, &mut buf),
            Err(RecordError::KeyExhausted)
        );
        // A record claiming the last number is refused before it is opened.
        last[2..RECORD_HEADER_LEN].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(opener.open(&mut last), Err(RecordError::KeyExhausted));
    }

    #[test]
    fn failure_is_sticky() {
        let s = secret(5);
        let mut sealer = s.sealer(Direction::ClientToServer, 0, 1);
        let mut opener = s.opener(Direction::ClientToServer, 0, 1);
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
        let mut sealer = s.sealer(Direction::ClientToServer, 0, 1);
        let a = sealed_chunk(&mut sealer, 1, 0, &[0; 32]);
        let b = sealed_chunk(&mut sealer, 1, 0, &[0; 32]);
        assert_ne!(a[RECORD_HEADER_LEN..], b[RECORD_HEADER_LEN..]);
    }
}
