// Over 600 lines with its tests: both ends of a transfer and their unit tests, which exercise them together.
//! Transfer bookkeeping: what a sender may send next, and what a receiver has,
//! hashed, and still buffers.
//!
//! A transfer is `length` bytes starting at file offset `offset`, sent as chunk
//! records spread round-robin over its *lanes*, and closed by one `End` record
//! on *each* lane. A lane is one data stream (`1..=streams`) of one association
//! of the transfer's mask (`associations`, bit k = association k; several when
//! the session has extra data associations). The round robin interleaves the
//! associations, so consecutive chunks go on different ones. Because every
//! stream is strictly sequenced, once the `End` of a lane is in, every chunk
//! sent before it on that lane is in too; so when all `End`s are in, a gap means
//! truncation, not delay.
//!
//! The receiver writes each chunk at its offset at once (zero copy), hashes in
//! offset order, and keeps copies only of the chunks that arrived ahead of a gap,
//! until the gap fills. The sender may send only below the credit limit the
//! receiver granted, so those copies never exceed the receiver's window.
//!
//! A transfer starts with no credit: the sender sends nothing on the data streams,
//! not even the `End` of an empty transfer, before the receiver's first
//! `TransferCredit`. That first credit is also the receiver's proof that it knows
//! the transfer id, since the `TransferOpen` (stream 0) and the chunks (other
//! streams) are not ordered with respect to each other.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::control::{TransferCredit, TransferEnd, TransferId, TransferOpen};
use crate::record::MAX_CHUNK_DATA;

/// The smallest receive window: one full chunk, so a transfer can always move.
pub const MIN_WINDOW: u64 = MAX_CHUNK_DATA as u64;
/// The receive window when the configuration does not say otherwise.
pub const DEFAULT_WINDOW: u64 = 4 * 1024 * 1024;

/// Why a transfer failed at the receiver.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransferError {
    /// A chunk outside `[offset, offset + length)`.
    #[error("chunk at {offset}+{len} outside the transfer")]
    OutOfRange {
        /// The chunk's offset.
        offset: u64,
        /// The chunk's length.
        len: usize,
    },
    /// A chunk overlapping bytes already received.
    #[error("chunk at {offset} overlaps data already received")]
    Overlap {
        /// The chunk's offset.
        offset: u64,
    },
    /// A chunk beyond the granted credit.
    #[error("chunk beyond the flow-control credit")]
    BeyondCredit,
    /// An empty chunk.
    #[error("empty chunk")]
    EmptyChunk,
    /// A chunk or `End` on a stream the transfer does not use.
    #[error("record on stream {0}, which the transfer does not use")]
    WrongStream(u16),
    /// A chunk or `End` on an association the transfer does not use.
    #[error("record on association {0}, which the transfer does not use")]
    WrongAssociation(u8),
    /// A second `End` on one stream, or a chunk after it.
    #[error("record after the end of the transfer on stream {0}")]
    AfterEnd(u16),
    /// The `End` records disagree with the announced length or with each other.
    #[error("end says {got} bytes, expected {expected}")]
    LengthMismatch {
        /// The announced length.
        expected: u64,
        /// The length in the `End` record.
        got: u64,
    },
    /// Every `End` is in but bytes are missing.
    #[error("transfer truncated: {received} of {expected} bytes")]
    Truncated {
        /// Bytes received in order.
        received: u64,
        /// The announced length.
        expected: u64,
    },
    /// The `End` records disagree with each other about the digest.
    #[error("end records disagree")]
    InconsistentEnd,
    /// All bytes arrived but their SHA-256 differs from the sender's.
    #[error("SHA-256 mismatch")]
    DigestMismatch,
}

/// One (association, data stream) a transfer's records travel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lane {
    /// The association (0 = the first association of the session).
    pub association: u8,
    /// The data stream (1 and up).
    pub stream: u16,
}

impl Lane {
    /// A lane of association `association`, stream `stream`.
    pub fn new(association: u8, stream: u16) -> Self {
        Self {
            association,
            stream,
        }
    }
}

/// The associations of a mask, in increasing order.
fn mask_associations(mask: u16) -> Vec<u8> {
    // Bit positions are below 16, so they fit a u8.
    (0..16u8).filter(|k| mask & (1 << k) != 0).collect()
}

/// Every lane of `open`, in the order the round robin first uses them.
pub fn lanes(open: &TransferOpen) -> Vec<Lane> {
    let associations = mask_associations(open.associations | 1);
    (1..=open.streams.max(1))
        .flat_map(|stream| associations.iter().map(move |&a| Lane::new(a, stream)))
        .collect()
}

/// The sender's side of one transfer.
#[derive(Debug, Clone)]
pub struct OutgoingTransfer {
    open: TransferOpen,
    next: u64,
    credit: u64,
    credited: bool,
    hasher: Sha256,
    lanes: Vec<Lane>,
    next_lane: usize,
}

impl OutgoingTransfer {
    /// Starts sending what `open` announced.
    pub fn new(open: TransferOpen) -> Self {
        Self {
            open,
            next: open.offset,
            credit: open.offset,
            credited: false,
            hasher: Sha256::new(),
            lanes: lanes(&open),
            next_lane: 0,
        }
    }

    /// Continues `prefix`, the SHA-256 state of the file's bytes before
    /// `open.offset`, so that the End digest covers the whole file from byte 0
    /// (a resumed transfer). Call before the first chunk.
    #[must_use]
    pub fn with_prefix(mut self, prefix: Sha256) -> Self {
        self.hasher = prefix;
        self
    }

    /// The announcement.
    pub fn open(&self) -> &TransferOpen {
        &self.open
    }

    /// The file offset of the next chunk.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// How many bytes the next chunk may carry now: 0 when done, or when waiting
    /// for credit.
    pub fn allowance(&self) -> usize {
        let end = self.open.offset.saturating_add(self.open.length);
        let room = end.min(self.credit).saturating_sub(self.next);
        usize::try_from(room).map_or(MAX_CHUNK_DATA, |r| r.min(MAX_CHUNK_DATA))
    }

    /// True when every byte was handed out.
    pub fn is_complete(&self) -> bool {
        self.next == self.open.offset.saturating_add(self.open.length)
    }

    /// Takes `data` as the next chunk: returns its offset and the lane it goes
    /// on. The caller checked `data.len() <= allowance()`.
    pub fn take_chunk(&mut self, data: &[u8]) -> (u64, Lane) {
        let offset = self.next;
        self.hasher.update(data);
        self.next += data.len() as u64;
        (offset, self.advance_lane())
    }

    fn advance_lane(&mut self) -> Lane {
        let lane = self.lanes[self.next_lane % self.lanes.len()];
        self.next_lane = (self.next_lane + 1) % self.lanes.len();
        lane
    }

    /// Every lane of the transfer: its `End` goes on each.
    pub fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    /// Makes the digest in this transfer's `End` records disagree with the data
    /// sent, as a faulty or hostile sender would, so tests can check receivers.
    #[cfg(feature = "testing")]
    pub fn falsify_digest(&mut self) {
        self.hasher.update(b"not part of the file");
    }

    /// Raises the credit limit; lower limits are ignored.
    pub fn apply_credit(&mut self, credit: &TransferCredit) {
        self.credited = true;
        self.credit = self.credit.max(credit.limit);
    }

    /// True once the receiver granted its first credit, and so knows the
    /// transfer: only then may records of this transfer go out.
    pub fn is_credited(&self) -> bool {
        self.credited
    }

    /// The End record's contents. Call once, when complete.
    pub fn end(&self) -> TransferEnd {
        TransferEnd {
            transfer: self.open.transfer,
            length: self.open.length,
            sha256: self.hasher.clone().finalize().into(),
        }
    }
}

/// What an accepted record did to a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More is expected.
    Pending,
    /// All bytes and all `End`s are in and the digest matches.
    Finished {
        /// Bytes received.
        length: u64,
        /// Their SHA-256.
        sha256: [u8; 32],
    },
}

/// The receiver's side of one transfer.
#[derive(Debug, Clone)]
pub struct IncomingTransfer {
    open: TransferOpen,
    window: u64,
    hashed_to: u64,
    hasher: Sha256,
    ahead: BTreeMap<u64, Vec<u8>>,
    ahead_bytes: usize,
    granted: u64,
    announced: bool,
    end: Option<TransferEnd>,
    /// The transfer's associations, in the order of `ended_lanes`.
    associations: Vec<u8>,
    /// Whether the `End` of each lane is in: association position times
    /// `streams`, plus stream - 1.
    ended_lanes: Vec<bool>,
}

impl IncomingTransfer {
    /// Starts receiving what `open` announced, buffering at most `window` bytes
    /// ahead of a gap (at least [`MIN_WINDOW`]). Send [`Self::credit_update`]
    /// right away: the sender waits for it.
    pub fn new(open: TransferOpen, window: u64) -> Self {
        let window = window.max(MIN_WINDOW);
        Self {
            open,
            window,
            hashed_to: open.offset,
            hasher: Sha256::new(),
            ahead: BTreeMap::new(),
            ahead_bytes: 0,
            granted: open.offset,
            announced: false,
            end: None,
            associations: mask_associations(open.associations | 1),
            ended_lanes: vec![false; lanes(&open).len()],
        }
    }

    /// Continues `prefix`, the SHA-256 state of the file's bytes before
    /// `open.offset`, so that the digest checked against End covers the whole
    /// file from byte 0 (a resumed transfer). Call before the first chunk.
    #[must_use]
    pub fn with_prefix(mut self, prefix: Sha256) -> Self {
        self.hasher = prefix;
        self
    }

    /// The announcement.
    pub fn open(&self) -> &TransferOpen {
        &self.open
    }

    /// Bytes received in order (hashed) so far.
    pub fn received(&self) -> u64 {
        self.hashed_to - self.open.offset
    }

    /// Bytes held in memory because they arrived ahead of a gap.
    pub fn buffered(&self) -> usize {
        self.ahead_bytes
    }

    fn lane_slot(&mut self, lane: Lane) -> Result<&mut bool, TransferError> {
        let position = self
            .associations
            .iter()
            .position(|&a| a == lane.association)
            .ok_or(TransferError::WrongAssociation(lane.association))?;
        let streams = usize::from(self.open.streams.max(1));
        lane.stream
            .checked_sub(1)
            .map(usize::from)
            .filter(|&i| i < streams)
            .and_then(|i| self.ended_lanes.get_mut(position * streams + i))
            .ok_or(TransferError::WrongStream(lane.stream))
    }

    /// Accepts one chunk that arrived on `lane`. On success the caller writes
    /// `data` at `offset`.
    ///
    /// # Errors
    ///
    /// A [`TransferError`] for a chunk on a lane outside the transfer, outside
    /// the announced range, beyond the granted credit, or overlapping what was received.
    pub fn accept_chunk(
        &mut self,
        lane: Lane,
        offset: u64,
        data: &[u8],
    ) -> Result<Progress, TransferError> {
        if *self.lane_slot(lane)? {
            return Err(TransferError::AfterEnd(lane.stream));
        }
        let len = data.len();
        if len == 0 {
            return Err(TransferError::EmptyChunk);
        }
        let chunk_end = offset
            .checked_add(len as u64)
            .ok_or(TransferError::OutOfRange { offset, len })?;
        if offset < self.open.offset
            || chunk_end > self.open.offset.saturating_add(self.open.length)
        {
            return Err(TransferError::OutOfRange { offset, len });
        }
        if chunk_end > self.granted {
            return Err(TransferError::BeyondCredit);
        }
        if offset < self.hashed_to {
            return Err(TransferError::Overlap { offset });
        }
        // Neighbours in the ahead-buffer must not overlap either.
        if let Some((&prev, prev_data)) = self.ahead.range(..=offset).next_back() {
            if prev + prev_data.len() as u64 > offset {
                return Err(TransferError::Overlap { offset });
            }
        }
        if let Some((&next, _)) = self.ahead.range(offset..).next() {
            if next < chunk_end {
                return Err(TransferError::Overlap { offset });
            }
        }
        if offset == self.hashed_to {
            self.hasher.update(data);
            self.hashed_to = chunk_end;
            while let Some(entry) = self.ahead.first_entry() {
                if *entry.key() != self.hashed_to {
                    break;
                }
                let data = entry.remove();
                self.hasher.update(&data);
                self.hashed_to += data.len() as u64;
                self.ahead_bytes -= data.len();
            }
        } else {
            // Bounded by the credit: everything here lies in (hashed_to, granted),
            // and granted - hashed_to <= window.
            self.ahead.insert(offset, data.to_vec());
            self.ahead_bytes += len;
        }
        self.progress()
    }

    /// Accepts the `End` record that arrived on `lane`.
    ///
    /// # Errors
    ///
    /// A [`TransferError`] for an `End` on a wrong lane, inconsistent with an
    /// earlier one, or disagreeing with the data in length or digest.
    pub fn accept_end(&mut self, lane: Lane, end: TransferEnd) -> Result<Progress, TransferError> {
        let slot = self.lane_slot(lane)?;
        if *slot {
            return Err(TransferError::AfterEnd(lane.stream));
        }
        *slot = true;
        if end.length != self.open.length {
            return Err(TransferError::LengthMismatch {
                expected: self.open.length,
                got: end.length,
            });
        }
        match &self.end {
            Some(previous) if *previous != end => return Err(TransferError::InconsistentEnd),
            _ => self.end = Some(end),
        }
        self.progress()
    }

    fn progress(&mut self) -> Result<Progress, TransferError> {
        let Some(end) = self.end else {
            return Ok(Progress::Pending);
        };
        if !self.ended_lanes.iter().all(|&ended| ended) {
            return Ok(Progress::Pending);
        }
        let expected_end = self.open.offset.saturating_add(self.open.length);
        if self.hashed_to != expected_end {
            return Err(TransferError::Truncated {
                received: self.received(),
                expected: self.open.length,
            });
        }
        let sha256: [u8; 32] = self.hasher.clone().finalize().into();
        // Not a secret comparison: both values are known to the receiver.
        if sha256 != end.sha256 {
            return Err(TransferError::DigestMismatch);
        }
        Ok(Progress::Finished {
            length: self.open.length,
            sha256,
        })
    }

    /// A credit update to send, when enough was consumed to be worth one.
    /// Equivalent to [`Self::credit_update_within`] with no connection-wide limit.
    pub fn credit_update(&mut self) -> Option<TransferCredit> {
        self.credit_update_within(u64::MAX)
    }

    /// A credit update to send, granting at most `available` new bytes (what the
    /// connection-wide window has left), when it is worth one: the first credit
    /// (always sent, even for zero bytes: it tells the sender the transfer is
    /// known), a quarter window or more, the last bytes of the transfer, or any
    /// bytes for a transfer that has nothing outstanding (so a transfer starved
    /// by the connection window moves as soon as any credit frees up).
    pub fn credit_update_within(&mut self, available: u64) -> Option<TransferCredit> {
        let end = self.open.offset.saturating_add(self.open.length);
        let limit = self
            .hashed_to
            .saturating_add(self.window)
            .min(end)
            .min(self.granted.saturating_add(available))
            .max(self.granted);
        let raise = limit - self.granted;
        let worth_it = !self.announced
            || (raise > 0 && (raise >= self.window / 4 || limit == end || self.outstanding() == 0));
        if !worth_it {
            return None;
        }
        self.announced = true;
        self.granted = limit;
        Some(TransferCredit {
            transfer: self.open.transfer,
            limit,
        })
    }

    /// Credit granted and not yet consumed: bytes the sender may still send
    /// (received ahead of a gap or not). This is what the transfer holds of the
    /// connection-wide window.
    pub fn outstanding(&self) -> u64 {
        self.granted.saturating_sub(self.hashed_to)
    }

    /// True when every byte arrived in order (only `End` records may be missing).
    pub fn all_bytes_in(&self) -> bool {
        self.hashed_to == self.open.offset.saturating_add(self.open.length)
    }

    /// The transfer id.
    pub fn id(&self) -> TransferId {
        self.open.transfer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(stream: u16) -> Lane {
        Lane::new(0, stream)
    }

    fn open(length: u64, streams: u16) -> TransferOpen {
        TransferOpen {
            transfer: TransferId(1),
            offset: 100,
            length,
            streams,
            associations: 1,
        }
    }

    fn send_all(
        data: &[u8],
        streams: u16,
        chunk: usize,
    ) -> (Vec<(Lane, u64, Vec<u8>)>, TransferEnd) {
        let mut out = OutgoingTransfer::new(open(data.len() as u64, streams));
        out.apply_credit(&TransferCredit {
            transfer: TransferId(1),
            limit: u64::MAX,
        });
        let mut chunks = Vec::new();
        let mut pos = 0;
        while !out.is_complete() {
            let n = out.allowance().min(chunk);
            let piece = &data[pos..pos + n];
            let (offset, stream) = out.take_chunk(piece);
            chunks.push((stream, offset, piece.to_vec()));
            pos += n;
        }
        (chunks, out.end())
    }

    #[test]
    fn out_of_order_chunks_across_streams_finish() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (mut chunks, end) = send_all(&data, 3, 10_000);
        chunks.reverse();
        let mut inc = IncomingTransfer::new(open(data.len() as u64, 3), DEFAULT_WINDOW);
        inc.credit_update().unwrap();
        for (stream, offset, piece) in &chunks {
            assert_eq!(
                inc.accept_chunk(*stream, *offset, piece),
                Ok(Progress::Pending)
            );
        }
        assert_eq!(inc.buffered(), 0);
        assert_eq!(inc.accept_end(lane(1), end), Ok(Progress::Pending));
        assert_eq!(inc.accept_end(lane(2), end), Ok(Progress::Pending));
        assert!(matches!(
            inc.accept_end(lane(3), end),
            Ok(Progress::Finished {
                length: 300_000,
                ..
            })
        ));
    }

    #[test]
    fn a_resumed_transfer_digests_the_whole_file_from_byte_0() {
        // The file is `prefix` (held by both sides, bytes 0..100) then `rest`.
        let prefix = [7u8; 100];
        let rest: Vec<u8> = (0..50_000u32).map(|i| (i % 241) as u8).collect();
        let state = Sha256::new_with_prefix(prefix);
        let mut out = OutgoingTransfer::new(open(rest.len() as u64, 2)).with_prefix(state.clone());
        out.apply_credit(&TransferCredit {
            transfer: TransferId(1),
            limit: u64::MAX,
        });
        let mut chunks = Vec::new();
        let mut pos = 0;
        while !out.is_complete() {
            let n = out.allowance().min(9_000);
            let (offset, stream) = out.take_chunk(&rest[pos..pos + n]);
            chunks.push((stream, offset, rest[pos..pos + n].to_vec()));
            pos += n;
        }
        let end = out.end();
        let whole: [u8; 32] = Sha256::new_with_prefix(prefix)
            .chain_update(&rest)
            .finalize()
            .into();
        assert_eq!(end.sha256, whole);
        assert_eq!(end.length, rest.len() as u64, "the bytes sent");
        // A receiver seeded with the same prefix accepts it...
        let mut inc =
            IncomingTransfer::new(open(rest.len() as u64, 2), DEFAULT_WINDOW).with_prefix(state);
        inc.credit_update().unwrap();
        for (stream, offset, piece) in &chunks {
            inc.accept_chunk(*stream, *offset, piece).unwrap();
        }
        inc.accept_end(lane(1), end).unwrap();
        assert_eq!(
            inc.accept_end(lane(2), end),
            Ok(Progress::Finished {
                length: rest.len() as u64,
                sha256: whole
            })
        );
        // ...and one holding other first bytes refuses it: no splice of two versions.
        let mut other = IncomingTransfer::new(open(rest.len() as u64, 2), DEFAULT_WINDOW)
            .with_prefix(Sha256::new_with_prefix([8u8; 100]));
        other.credit_update().unwrap();
        for (stream, offset, piece) in &chunks {
            other.accept_chunk(*stream, *offset, piece).unwrap();
        }
        other.accept_end(lane(1), end).unwrap();
        assert!(other.accept_end(lane(2), end).is_err());
    }

    #[test]
    fn missing_chunk_is_truncation_once_all_ends_are_in() {
        let data = vec![1u8; 50_000];
        let (chunks, end) = send_all(&data, 2, 10_000);
        let mut inc = IncomingTransfer::new(open(50_000, 2), DEFAULT_WINDOW);
        inc.credit_update().unwrap();
        for (stream, offset, piece) in chunks.iter().skip(1) {
            inc.accept_chunk(*stream, *offset, piece).unwrap();
        }
        inc.accept_end(lane(1), end).unwrap();
        assert!(matches!(
            inc.accept_end(lane(2), end),
            Err(TransferError::Truncated { .. })
        ));
    }

    #[test]
    fn overlap_range_credit_and_digest_checks() {
        let mut inc = IncomingTransfer::new(open(3 * 1024 * 1024, 1), MIN_WINDOW);
        assert_eq!(
            inc.accept_chunk(lane(1), 100, &[0; 1]),
            Err(TransferError::BeyondCredit)
        );
        inc.credit_update().unwrap();
        inc.accept_chunk(lane(1), 200, &[0; 10]).unwrap();
        assert_eq!(
            inc.accept_chunk(lane(1), 205, &[0; 10]),
            Err(TransferError::Overlap { offset: 205 })
        );
        assert_eq!(
            inc.accept_chunk(lane(1), 195, &[0; 10]),
            Err(TransferError::Overlap { offset: 195 })
        );
        assert!(matches!(
            inc.accept_chunk(lane(1), 50, &[0; 10]),
            Err(TransferError::OutOfRange { .. })
        ));
        assert_eq!(
            inc.accept_chunk(lane(1), 100 + MIN_WINDOW, &[0; 1]),
            Err(TransferError::BeyondCredit)
        );
        assert_eq!(
            inc.accept_chunk(lane(2), 300, &[0; 1]),
            Err(TransferError::WrongStream(2))
        );
        assert_eq!(
            inc.accept_chunk(lane(1), 300, &[]),
            Err(TransferError::EmptyChunk)
        );

        let mut inc = IncomingTransfer::new(open(4, 1), MIN_WINDOW);
        assert_eq!(inc.credit_update().map(|c| c.limit), Some(104));
        inc.accept_chunk(lane(1), 100, b"abcd").unwrap();
        let mut end = OutgoingTransfer::new(open(4, 1));
        end.take_chunk(b"abce");
        assert_eq!(
            inc.accept_end(lane(1), end.end()),
            Err(TransferError::DigestMismatch)
        );
    }

    #[test]
    fn credit_grows_with_consumption() {
        let mut inc = IncomingTransfer::new(open(10 * 1024 * 1024, 1), 2 * 1024 * 1024);
        let first = inc
            .credit_update()
            .expect("the first credit is always sent");
        assert_eq!(first.limit, 100 + 2 * 1024 * 1024);
        assert_eq!(inc.credit_update(), None);
        inc.accept_chunk(lane(1), 100, &vec![0; 600 * 1024])
            .unwrap();
        assert_eq!(
            inc.credit_update().map(|c| c.limit),
            Some(100 + 2 * 1024 * 1024 + 600 * 1024)
        );
    }
}
