//! Turning the pieces `recvmsg` returns into whole messages and notifications.
//!
//! A message larger than the read buffer arrives in several pieces; only the last
//! has `MSG_EOR`. With fragment interleaving (`SCTP_FRAGMENT_INTERLEAVE` 2), pieces
//! of messages on different streams may alternate, so partial messages are kept
//! per (stream, unordered) pair. Notifications, flagged `MSG_NOTIFICATION`, are
//! reassembled apart from data and never confused with it. This module does no IO,
//! so all of it is tested on the host.

use crate::cmsg::RcvInfo;
use crate::notification::{parse_notification, Notification, LARGEST_FIXED_LEN};

/// One whole user message.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A whole message.
    Message(Message),
    /// A notification from the kernel about the association or its paths.
    Notification(Notification),
}

/// A piece of a message grew past the configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooLarge;

struct Partial {
    stream: u16,
    unordered: bool,
    ppid: u32,
    data: Vec<u8>,
}

/// Reassembly state of one association.
pub(crate) struct Reassembler {
    max_message_size: usize,
    partials: Vec<Partial>,
    /// The first bytes of a notification that came in pieces, and its full length.
    notification: Vec<u8>,
    notification_len: usize,
}

impl Reassembler {
    pub(crate) fn new(max_message_size: usize) -> Self {
        Self {
            max_message_size,
            partials: Vec::new(),
            notification: Vec::new(),
            notification_len: 0,
        }
    }

    /// Feeds one piece. Returns the event it completes, if any.
    ///
    /// `info` is the `SCTP_RCVINFO` of a data piece; without one (which the kernel
    /// does not do once `SCTP_RECVRCVINFO` is on) the piece counts as stream 0.
    pub(crate) fn push(
        &mut self,
        piece: &[u8],
        end_of_record: bool,
        is_notification: bool,
        info: Option<RcvInfo>,
    ) -> Result<Option<Event>, TooLarge> {
        if is_notification {
            return Ok(self.push_notification(piece, end_of_record));
        }
        let info = info.unwrap_or(RcvInfo {
            stream: 0,
            flags: 0,
            ppid_raw: 0,
        });
        let (stream, unordered) = (info.stream, info.unordered());
        let slot = self
            .partials
            .iter()
            .position(|p| p.stream == stream && p.unordered == unordered);
        let so_far = slot
            .and_then(|i| self.partials.get(i))
            .map_or(0, |p| p.data.len());
        if so_far.saturating_add(piece.len()) > self.max_message_size {
            if let Some(i) = slot {
                self.partials.swap_remove(i);
            }
            return Err(TooLarge);
        }
        let ppid = u32::from_be(info.ppid_raw);
        if end_of_record {
            let (ppid, data) = match slot {
                Some(i) => {
                    let mut partial = self.partials.swap_remove(i);
                    partial.data.extend_from_slice(piece);
                    (partial.ppid, partial.data)
                }
                None => (ppid, piece.to_vec()),
            };
            return Ok(Some(Event::Message(Message {
                stream,
                ppid,
                unordered,
                data,
            })));
        }
        match slot.and_then(|i| self.partials.get_mut(i)) {
            Some(partial) => partial.data.extend_from_slice(piece),
            None => self.partials.push(Partial {
                stream,
                unordered,
                ppid,
                data: piece.to_vec(),
            }),
        }
        Ok(None)
    }

    fn push_notification(&mut self, piece: &[u8], end_of_record: bool) -> Option<Event> {
        // Only the fixed part is parsed; a send-failed event's copy of the
        // undelivered message is counted, not kept, so its size is not a concern.
        let room = LARGEST_FIXED_LEN.saturating_sub(self.notification.len());
        let kept = piece.get(..room.min(piece.len())).unwrap_or_default();
        self.notification.extend_from_slice(kept);
        self.notification_len = self.notification_len.saturating_add(piece.len());
        if !end_of_record {
            return None;
        }
        let bytes = std::mem::take(&mut self.notification);
        let total = std::mem::take(&mut self.notification_len);
        match parse_notification(&bytes, total) {
            Ok(notification) => Some(Event::Notification(notification)),
            Err(err) => {
                log::warn!("ignoring a malformed SCTP notification: {err}");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{AssocChange, AssocState};

    fn info(stream: u16, unordered: bool, ppid: u32) -> Option<RcvInfo> {
        Some(RcvInfo {
            stream,
            flags: u16::from(unordered),
            ppid_raw: ppid.to_be(),
        })
    }

    fn comm_up() -> Vec<u8> {
        let mut b = Vec::new();
        for v in [0x8001u16, 0] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&20u32.to_ne_bytes());
        for v in [0u16, 0, 9, 10] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&1i32.to_ne_bytes());
        b
    }

    #[test]
    fn a_whole_piece_is_a_message() {
        let mut r = Reassembler::new(100);
        let event = r.push(b"hello", true, false, info(3, false, 7)).unwrap();
        assert_eq!(
            event,
            Some(Event::Message(Message {
                stream: 3,
                ppid: 7,
                unordered: false,
                data: b"hello".to_vec()
            }))
        );
    }

    #[test]
    fn pieces_are_joined_until_eor_per_stream() {
        let mut r = Reassembler::new(100);
        assert_eq!(r.push(b"ab", false, false, info(1, false, 5)), Ok(None));
        // Interleaved piece of another stream completes first.
        let other = r.push(b"zz", true, false, info(2, false, 6)).unwrap();
        assert!(matches!(
            other,
            Some(Event::Message(Message { stream: 2, .. }))
        ));
        assert_eq!(r.push(b"cd", false, false, info(1, false, 5)), Ok(None));
        match r.push(b"e", true, false, info(1, false, 5)).unwrap() {
            Some(Event::Message(m)) => {
                assert_eq!((m.stream, m.ppid, m.data.as_slice()), (1, 5, &b"abcde"[..]));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn oversize_messages_are_refused() {
        let mut r = Reassembler::new(4);
        assert_eq!(r.push(b"abc", false, false, info(1, false, 0)), Ok(None));
        assert_eq!(r.push(b"de", true, false, info(1, false, 0)), Err(TooLarge));
        assert_eq!(
            r.push(b"abcde", true, false, info(2, false, 0)),
            Err(TooLarge)
        );
        // Exactly the limit is fine.
        assert!(r
            .push(b"abcd", true, false, info(2, false, 0))
            .unwrap()
            .is_some());
    }

    #[test]
    fn notifications_are_never_data() {
        let mut r = Reassembler::new(100);
        let bytes = comm_up();
        // A notification split in two, with a data piece of stream 0 pending.
        assert_eq!(r.push(b"x", false, false, info(0, false, 0)), Ok(None));
        assert_eq!(r.push(&bytes[..6], false, true, None), Ok(None));
        let event = r.push(&bytes[6..], true, true, None).unwrap();
        assert_eq!(
            event,
            Some(Event::Notification(Notification::AssocChange(
                AssocChange {
                    state: AssocState::CommUp,
                    error: 0,
                    outbound_streams: 9,
                    inbound_streams: 10,
                }
            )))
        );
        match r.push(b"y", true, false, info(0, false, 0)).unwrap() {
            Some(Event::Message(m)) => assert_eq!(m.data, b"xy"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn malformed_notifications_are_dropped() {
        let mut r = Reassembler::new(100);
        assert_eq!(r.push(&[1, 0x80], true, true, None), Ok(None));
    }
}
