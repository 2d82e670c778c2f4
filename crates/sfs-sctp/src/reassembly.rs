// Over 600 lines with its tests (about 270 lines): each reassembly rule sits next to the fixtures that pin it.
//! Turning the pieces `recvmsg` returns into whole messages and notifications.
//!
//! A message larger than the read buffer arrives in several pieces; only the last
//! has `MSG_EOR`. With fragment interleaving (`SCTP_FRAGMENT_INTERLEAVE` 2), pieces
//! of messages on different streams may alternate, so partial messages are kept
//! per (stream, unordered) pair. Notifications, flagged `MSG_NOTIFICATION`, are
//! reassembled apart from data and never confused with it. This module does no IO,
//! so all of it is tested on the host.

use std::collections::{HashMap, VecDeque};

use crate::cmsg::RcvInfo;
use crate::notification::{parse_notification, AssocState, Notification, LARGEST_FIXED_LEN};

/// One whole user message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Message {
    /// The stream it arrived on.
    pub stream: u16,
    /// Its payload protocol identifier, as the sender passed it to
    /// [`SctpAssociation::send`](crate::SctpAssociation::send). It travels in
    /// network byte order.
    pub ppid: u32,
    /// Whether it was sent unordered.
    pub unordered: bool,
    /// The payload.
    pub data: Vec<u8>,
}

/// What [`SctpAssociation::recv`](crate::SctpAssociation::recv) returns.
///
/// Not `#[non_exhaustive]`: a socket delivers either user data or a
/// notification, and callers match on both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A whole message.
    Message(Message),
    /// A notification from the kernel about the association or its paths.
    Notification(Notification),
}

/// Why a piece was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TooLarge {
    /// One message grew past the configured maximum.
    Message,
    /// Partial and held-back messages of this association together, or of every
    /// association sharing the [`ReassemblyBudget`], would pass their limit.
    Buffered,
}

/// Bytes of partial and held-back messages every association sharing it may
/// hold together. Associations accepted by one listener (or made from clones of
/// one [`SctpConfig`](crate::SctpConfig)) share one budget, so many peers each
/// holding many partial messages cannot grow the process without bound.
#[derive(Debug)]
pub struct ReassemblyBudget {
    limit: usize,
    used: std::sync::atomic::AtomicUsize,
}

impl ReassemblyBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes `bytes`, or nothing if that would pass the limit.
    fn take(&self, bytes: usize) -> bool {
        use std::sync::atomic::Ordering;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give_back(&self, bytes: usize) {
        use std::sync::atomic::Ordering;
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

/// Ordered messages held back waiting for an earlier one are released anyway
/// (with a warning) past this many, so a kernel surprise can never stall the
/// association.
const MAX_HELD_MESSAGES: usize = 256;

struct Partial {
    stream: u16,
    unordered: bool,
    ssn: u16,
    ppid: u32,
    data: Vec<u8>,
}

/// An ordered message that completed before an earlier one on its stream.
struct Held {
    ssn: u16,
    message: Message,
}

/// Reassembly and per-stream ordering state of one association.
///
/// Pieces of one message share (stream, unordered flag, stream sequence number),
/// so partial messages are keyed by all three: pieces of two messages of one
/// stream are never joined. Ordered messages are released in stream sequence
/// order. The kernel's partial delivery of a large message bypasses its own
/// ordering for plain DATA chunks, and was seen in the VM to hand out a message
/// before an earlier, smaller one of the same stream; holding the later one back
/// until the gap fills restores the order SCTP promises.
pub(crate) struct Reassembler {
    max_message_size: usize,
    /// Most bytes of partial and held messages at once.
    max_buffered: usize,
    /// Bytes of partial and held messages now (taken from `budget`).
    buffered: usize,
    budget: std::sync::Arc<ReassemblyBudget>,
    partials: Vec<Partial>,
    /// The first bytes of a notification that came in pieces, and its full length.
    notification: Vec<u8>,
    notification_len: usize,
    /// The next stream sequence number expected on each stream (0 at start).
    next_ssn: HashMap<u16, u16>,
    held: Vec<Held>,
    ready: VecDeque<Received>,
}

impl Reassembler {
    /// At most `max_message_size` bytes per message and `max_buffered` bytes of
    /// unfinished (partial or held) messages, the latter also taken from `budget`.
    pub(crate) fn new(
        max_message_size: usize,
        max_buffered: usize,
        budget: std::sync::Arc<ReassemblyBudget>,
    ) -> Self {
        Self {
            max_message_size,
            max_buffered,
            buffered: 0,
            budget,
            partials: Vec::new(),
            notification: Vec::new(),
            notification_len: 0,
            next_ssn: HashMap::new(),
            held: Vec::new(),
            ready: VecDeque::new(),
        }
    }

    /// The next event ready for the application, if any.
    pub(crate) fn pop(&mut self) -> Option<Received> {
        self.ready.pop_front()
    }

    /// Feeds one piece as `recvmsg` returned it; completed events become
    /// available from [`pop`](Self::pop).
    ///
    /// `info` is the `SCTP_RCVINFO` of a data piece; without one (which the kernel
    /// does not do once `SCTP_RECVRCVINFO` is on) the piece counts as an unordered
    /// message of stream 0.
    pub(crate) fn push(
        &mut self,
        piece: &[u8],
        end_of_record: bool,
        is_notification: bool,
        info: Option<RcvInfo>,
    ) -> Result<(), TooLarge> {
        if is_notification {
            self.push_notification(piece, end_of_record);
            return Ok(());
        }
        let info = info.unwrap_or(RcvInfo {
            stream: 0,
            ssn: 0,
            flags: crate::sys::SCTP_UNORDERED,
            ppid_raw: 0,
        });
        let (stream, unordered, ssn) = (info.stream, info.unordered(), info.ssn);
        let slot = self
            .partials
            .iter()
            .position(|p| p.stream == stream && p.unordered == unordered && p.ssn == ssn);
        let so_far = slot
            .and_then(|i| self.partials.get(i))
            .map_or(0, |p| p.data.len());
        if so_far.saturating_add(piece.len()) > self.max_message_size {
            if let Some(i) = slot {
                let partial = self.partials.swap_remove(i);
                self.release(partial.data.len());
            }
            return Err(TooLarge::Message);
        }
        let ppid = u32::from_be(info.ppid_raw);
        if !end_of_record {
            if self.buffered.saturating_add(piece.len()) > self.max_buffered
                || !self.budget.take(piece.len())
            {
                return Err(TooLarge::Buffered);
            }
            self.buffered += piece.len();
            match slot.and_then(|i| self.partials.get_mut(i)) {
                Some(partial) => partial.data.extend_from_slice(piece),
                None => self.partials.push(Partial {
                    stream,
                    unordered,
                    ssn,
                    ppid,
                    data: piece.to_vec(),
                }),
            }
            return Ok(());
        }
        let (ppid, data) = match slot {
            Some(i) => {
                let mut partial = self.partials.swap_remove(i);
                self.release(partial.data.len());
                partial.data.extend_from_slice(piece);
                (partial.ppid, partial.data)
            }
            None => (ppid, piece.to_vec()),
        };
        let message = Message {
            stream,
            ppid,
            unordered,
            data,
        };
        self.complete(message, ssn)
    }

    /// Gives back `bytes` of unfinished messages that completed or went away.
    fn release(&mut self, bytes: usize) {
        self.buffered = self.buffered.saturating_sub(bytes);
        self.budget.give_back(bytes);
    }

    fn complete(&mut self, message: Message, ssn: u16) -> Result<(), TooLarge> {
        if message.unordered {
            self.ready.push_back(Received::Message(message));
            return Ok(());
        }
        let stream = message.stream;
        let next = self.next_ssn.get(&stream).copied().unwrap_or(0);
        // Serial number arithmetic (RFC 1982) on 16 bits.
        let ahead = ssn.wrapping_sub(next) as i16;
        if ahead < 0 {
            log::warn!("stream {stream}: message {ssn} arrived after {next} was expected");
            self.ready.push_back(Received::Message(message));
            return Ok(());
        }
        if ahead > 0 {
            let len = message.data.len();
            if self.buffered.saturating_add(len) > self.max_buffered || !self.budget.take(len) {
                return Err(TooLarge::Buffered);
            }
            self.buffered += len;
            self.held.push(Held { ssn, message });
            if self.held.len() > MAX_HELD_MESSAGES {
                log::warn!("stream {stream}: gave up waiting for message {next}");
                self.release_held();
            }
            return Ok(());
        }
        self.ready.push_back(Received::Message(message));
        let mut next = ssn.wrapping_add(1);
        while let Some(i) = self
            .held
            .iter()
            .position(|h| h.message.stream == stream && h.ssn == next)
        {
            let held = self.held.swap_remove(i);
            self.release(held.message.data.len());
            self.ready.push_back(Received::Message(held.message));
            next = next.wrapping_add(1);
        }
        self.next_ssn.insert(stream, next);
        Ok(())
    }

    /// The association ended (EOF): whatever is held can only be released now.
    pub(crate) fn finish(&mut self) {
        self.release_held();
    }

    /// Releases every held message, each stream in sequence order, and moves each
    /// stream's expectation past what was released.
    fn release_held(&mut self) {
        let mut held = std::mem::take(&mut self.held);
        let next_ssn = &self.next_ssn;
        held.sort_by_key(|h| {
            let next = next_ssn.get(&h.message.stream).copied().unwrap_or(0);
            (h.message.stream, h.ssn.wrapping_sub(next))
        });
        for h in held {
            self.release(h.message.data.len());
            self.next_ssn
                .insert(h.message.stream, h.ssn.wrapping_add(1));
            self.ready.push_back(Received::Message(h.message));
        }
    }

    fn push_notification(&mut self, piece: &[u8], end_of_record: bool) {
        // Only the fixed part is parsed; a send-failed event's copy of the
        // undelivered message is counted, not kept, so its size is not a concern.
        let room = LARGEST_FIXED_LEN.saturating_sub(self.notification.len());
        let kept = piece.get(..room.min(piece.len())).unwrap_or_default();
        self.notification.extend_from_slice(kept);
        self.notification_len = self.notification_len.saturating_add(piece.len());
        if !end_of_record {
            return;
        }
        let bytes = std::mem::take(&mut self.notification);
        let total = std::mem::take(&mut self.notification_len);
        let notification = match parse_notification(&bytes, total) {
            Ok(notification) => notification,
            Err(err) => {
                log::warn!("ignoring a malformed SCTP notification: {err}");
                return;
            }
        };
        if let Notification::AssocChange(change) = &notification {
            // Nothing earlier can arrive after these, so nothing may stay held;
            // after a restart, sequence numbers start again from 0.
            if change.state.is_terminal() || change.state == AssocState::Restart {
                self.release_held();
            }
            if change.state == AssocState::Restart {
                self.next_ssn.clear();
                let partial: usize = self.partials.drain(..).map(|p| p.data.len()).sum();
                self.release(partial);
            }
        }
        self.ready.push_back(Received::Notification(notification));
    }
}

impl Drop for Reassembler {
    fn drop(&mut self) {
        // What this association held goes back to the shared budget.
        self.budget.give_back(self.buffered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::AssocChange;
    use std::sync::Arc;

    fn unbounded(max_message_size: usize) -> Reassembler {
        Reassembler::new(
            max_message_size,
            usize::MAX,
            Arc::new(ReassemblyBudget::new(usize::MAX)),
        )
    }

    #[test]
    fn many_partial_messages_are_bounded_per_association() {
        let budget = Arc::new(ReassemblyBudget::new(usize::MAX));
        let mut r = Reassembler::new(100, 250, budget.clone());
        // One unfinished message per stream: each within the message limit,
        // together past the association's.
        for stream in 0..5 {
            assert_eq!(
                r.push(&[0; 50], false, false, info(stream, 0, false, 1)),
                Ok(())
            );
        }
        assert_eq!(budget.used(), 250);
        assert_eq!(
            r.push(&[0; 1], false, false, info(9, 0, false, 1)),
            Err(TooLarge::Buffered)
        );
        // Completing one gives its bytes back.
        assert_eq!(r.push(&[1; 10], true, false, info(0, 0, false, 1)), Ok(()));
        assert_eq!(budget.used(), 200);
        assert_eq!(
            messages(&mut r),
            vec![(0, 1, [&[0u8; 50][..], &[1; 10]].concat())]
        );
        drop(r);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn associations_sharing_a_budget_are_bounded_together() {
        let budget = Arc::new(ReassemblyBudget::new(300));
        let mut a = Reassembler::new(1000, 1000, budget.clone());
        let mut b = Reassembler::new(1000, 1000, budget.clone());
        assert_eq!(
            a.push(&[0; 200], false, false, info(1, 0, false, 1)),
            Ok(())
        );
        assert_eq!(
            b.push(&[0; 200], false, false, info(1, 0, false, 1)),
            Err(TooLarge::Buffered)
        );
        assert_eq!(
            b.push(&[0; 100], false, false, info(1, 0, false, 1)),
            Ok(())
        );
        drop(a);
        assert_eq!(budget.used(), 100);
        assert_eq!(
            b.push(&[0; 200], false, false, info(2, 0, false, 1)),
            Ok(())
        );
    }

    #[test]
    fn held_back_messages_count_against_the_bound() {
        let budget = Arc::new(ReassemblyBudget::new(usize::MAX));
        let mut r = Reassembler::new(100, 150, budget.clone());
        // Messages 1 and 2 of stream 3 wait for message 0.
        assert_eq!(r.push(&[1; 100], true, false, info(3, 1, false, 1)), Ok(()));
        assert_eq!(
            r.push(&[2; 100], true, false, info(3, 2, false, 1)),
            Err(TooLarge::Buffered)
        );
        assert_eq!(r.push(&[0; 10], true, false, info(3, 0, false, 1)), Ok(()));
        assert_eq!(messages(&mut r).len(), 2);
        assert_eq!(budget.used(), 0);
    }

    fn info(stream: u16, ssn: u16, unordered: bool, ppid: u32) -> Option<RcvInfo> {
        Some(RcvInfo {
            stream,
            ssn,
            flags: u16::from(unordered),
            ppid_raw: ppid.to_be(),
        })
    }

    fn assoc_change(state: u16) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [0x8001u16, 0] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&20u32.to_ne_bytes());
        for v in [state, 0, 9, 10] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&1i32.to_ne_bytes());
        b
    }

    fn messages(r: &mut Reassembler) -> Vec<(u16, u32, Vec<u8>)> {
        std::iter::from_fn(|| r.pop())
            .filter_map(|e| match e {
                Received::Message(m) => Some((m.stream, m.ppid, m.data)),
                Received::Notification(_) => None,
            })
            .collect()
    }

    #[test]
    fn a_whole_piece_is_a_message() {
        let mut r = unbounded(100);
        r.push(b"hello", true, false, info(3, 0, false, 7)).unwrap();
        assert_eq!(
            r.pop(),
            Some(Received::Message(Message {
                stream: 3,
                ppid: 7,
                unordered: false,
                data: b"hello".to_vec()
            }))
        );
        assert_eq!(r.pop(), None);
    }

    #[test]
    fn pieces_are_joined_until_eor_per_message() {
        let mut r = unbounded(100);
        r.push(b"ab", false, false, info(1, 0, false, 5)).unwrap();
        // Interleaved piece of another stream completes first.
        r.push(b"zz", true, false, info(2, 0, false, 6)).unwrap();
        r.push(b"cd", false, false, info(1, 0, false, 5)).unwrap();
        assert_eq!(messages(&mut r), vec![(2, 6, b"zz".to_vec())]);
        r.push(b"e", true, false, info(1, 0, false, 5)).unwrap();
        assert_eq!(messages(&mut r), vec![(1, 5, b"abcde".to_vec())]);
    }

    #[test]
    fn pieces_of_two_messages_of_one_stream_are_never_joined() {
        let mut r = unbounded(100);
        // Message 1 is being delivered in pieces when message 0 (whole) comes.
        r.push(b"big-", false, false, info(7, 1, false, 1)).unwrap();
        r.push(b"x", true, false, info(7, 0, false, 0)).unwrap();
        r.push(b"end", true, false, info(7, 1, false, 1)).unwrap();
        assert_eq!(
            messages(&mut r),
            vec![(7, 0, b"x".to_vec()), (7, 1, b"big-end".to_vec())]
        );
    }

    #[test]
    fn ordered_messages_are_released_in_sequence() {
        let mut r = unbounded(100);
        r.push(b"two", true, false, info(4, 2, false, 2)).unwrap();
        r.push(b"one", true, false, info(4, 1, false, 1)).unwrap();
        // Another stream is not held up by stream 4's gap.
        r.push(b"other", true, false, info(5, 0, false, 9)).unwrap();
        assert_eq!(messages(&mut r), vec![(5, 9, b"other".to_vec())]);
        r.push(b"zero", true, false, info(4, 0, false, 0)).unwrap();
        assert_eq!(
            messages(&mut r),
            vec![
                (4, 0, b"zero".to_vec()),
                (4, 1, b"one".to_vec()),
                (4, 2, b"two".to_vec())
            ]
        );
        // Unordered messages are never held.
        r.push(b"u", true, false, info(4, 40, true, 3)).unwrap();
        assert_eq!(messages(&mut r), vec![(4, 3, b"u".to_vec())]);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut r = unbounded(100);
        r.next_ssn.insert(1, u16::MAX);
        r.push(b"b", true, false, info(1, 0, false, 0)).unwrap();
        r.push(b"a", true, false, info(1, u16::MAX, false, 0))
            .unwrap();
        let data: Vec<_> = messages(&mut r).into_iter().map(|m| m.2).collect();
        assert_eq!(data, vec![b"a".to_vec(), b"b".to_vec()]);
    }

    #[test]
    fn held_messages_are_released_before_the_association_ends() {
        let mut r = unbounded(100);
        r.push(b"late", true, false, info(2, 5, false, 0)).unwrap();
        assert_eq!(r.pop(), None);
        r.push(&assoc_change(1), true, true, None).unwrap(); // COMM_LOST
        assert!(matches!(r.pop(), Some(Received::Message(m)) if m.data == b"late"));
        assert!(matches!(
            r.pop(),
            Some(Received::Notification(Notification::AssocChange(
                AssocChange {
                    state: AssocState::CommLost,
                    ..
                }
            )))
        ));
    }

    #[test]
    fn a_gap_that_never_fills_cannot_stall_delivery() {
        let mut r = unbounded(100);
        for ssn in 1..=(MAX_HELD_MESSAGES as u16 + 1) {
            r.push(b"m", true, false, info(3, ssn, false, u32::from(ssn)))
                .unwrap();
        }
        let got: Vec<u32> = messages(&mut r).into_iter().map(|m| m.1).collect();
        assert_eq!(got, (1..=MAX_HELD_MESSAGES as u32 + 1).collect::<Vec<_>>());
        // And the stream carries on from there.
        r.push(
            b"n",
            true,
            false,
            info(3, MAX_HELD_MESSAGES as u16 + 2, false, 0),
        )
        .unwrap();
        assert_eq!(messages(&mut r).len(), 1);
    }

    #[test]
    fn oversize_messages_are_refused() {
        let mut r = unbounded(4);
        r.push(b"abc", false, false, info(1, 0, false, 0)).unwrap();
        assert_eq!(
            r.push(b"de", true, false, info(1, 0, false, 0)),
            Err(TooLarge::Message)
        );
        assert_eq!(
            r.push(b"abcde", true, false, info(2, 0, false, 0)),
            Err(TooLarge::Message)
        );
        // Exactly the limit is fine.
        r.push(b"abcd", true, false, info(2, 0, false, 0)).unwrap();
        assert_eq!(messages(&mut r).len(), 1);
    }

    #[test]
    fn notifications_are_never_data() {
        let mut r = unbounded(100);
        let bytes = assoc_change(0);
        // A notification split in two, with a data piece of stream 0 pending.
        r.push(b"x", false, false, info(0, 0, false, 0)).unwrap();
        r.push(&bytes[..6], false, true, None).unwrap();
        assert_eq!(r.pop(), None);
        r.push(&bytes[6..], true, true, None).unwrap();
        assert_eq!(
            r.pop(),
            Some(Received::Notification(Notification::AssocChange(
                AssocChange {
                    state: AssocState::CommUp,
                    error: 0,
                    outbound_streams: 9,
                    inbound_streams: 10,
                }
            )))
        );
        r.push(b"y", true, false, info(0, 0, false, 0)).unwrap();
        assert_eq!(messages(&mut r), vec![(0, 0, b"xy".to_vec())]);
    }

    #[test]
    fn malformed_notifications_are_dropped() {
        let mut r = unbounded(100);
        r.push(&[1, 0x80], true, true, None).unwrap();
        assert_eq!(r.pop(), None);
    }
}
