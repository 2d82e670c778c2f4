//! SCTP notifications (RFC 6458, section 6.1) and their parser.
//!
//! The kernel delivers a notification in place of a message, with `MSG_NOTIFICATION`
//! set in `msg_flags`. [`parse_notification`] is a pure function over those bytes: it
//! checks each length before it reads, and anything short, unknown or malformed
//! becomes an error or [`Notification::Other`], never a panic.

use std::net::SocketAddr;

use crate::addr::{decode_sockaddr, SOCKADDR_STORAGE_LEN};

// `enum sctp_sn_type`: all notification types are above 2^15.
const SCTP_ASSOC_CHANGE: u16 = 0x8001;
const SCTP_PEER_ADDR_CHANGE: u16 = 0x8002;
const SCTP_REMOTE_ERROR: u16 = 0x8004;
const SCTP_SHUTDOWN_EVENT: u16 = 0x8005;
const SCTP_PARTIAL_DELIVERY_EVENT: u16 = 0x8006;
const SCTP_SENDER_DRY_EVENT: u16 = 0x8009;
const SCTP_SEND_FAILED_EVENT: u16 = 0x800d;

/// The notification types the crate subscribes to (`SCTP_EVENT`).
pub(crate) const SUBSCRIBED: [u16; 7] = [
    SCTP_ASSOC_CHANGE,
    SCTP_PEER_ADDR_CHANGE,
    SCTP_REMOTE_ERROR,
    SCTP_SHUTDOWN_EVENT,
    SCTP_PARTIAL_DELIVERY_EVENT,
    SCTP_SENDER_DRY_EVENT,
    SCTP_SEND_FAILED_EVENT,
];

/// The size of the fixed part of the largest notification parsed
/// (`struct sctp_paddr_change`); bytes beyond it need not be kept.
pub(crate) const LARGEST_FIXED_LEN: usize = 148;

/// An event the kernel reports about the association or one of its paths.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// The association started, ended, or restarted (`SCTP_ASSOC_CHANGE`).
    AssocChange(AssocChange),
    /// A peer address changed state (`SCTP_PEER_ADDR_CHANGE`), for example the path
    /// through it failed or came back.
    PeerAddrChange(PeerAddrChange),
    /// A message could not be delivered (`SCTP_SEND_FAILED_EVENT`).
    SendFailed(SendFailed),
    /// The peer sent an operational ERROR chunk (`SCTP_REMOTE_ERROR`); `cause` is
    /// the RFC 9260 cause code.
    RemoteError {
        /// The error cause code (RFC 9260, section 3.3.10).
        cause: u16,
    },
    /// The peer started a graceful shutdown (`SCTP_SHUTDOWN_EVENT`): nothing more
    /// can be sent; what is queued will still be delivered.
    Shutdown,
    /// The partial delivery of a large message was aborted (for example the
    /// association went down mid-message), so that message will never complete.
    PartialDeliveryAborted {
        /// The stream of the message.
        stream: u32,
        /// Its stream sequence number.
        sequence: u32,
    },
    /// Everything sent so far has been acknowledged (`SCTP_SENDER_DRY_EVENT`).
    SenderDry,
    /// A notification type this crate does not model.
    Other {
        /// Its `sn_type`.
        kind: u16,
    },
}

/// `SCTP_ASSOC_CHANGE`: the association's new state and stream counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssocChange {
    /// What happened.
    pub state: AssocState,
    /// The error code that caused it, where the kernel gives one.
    pub error: u16,
    /// Outbound streams now usable (meaningful for `CommUp` and `Restart`).
    pub outbound_streams: u16,
    /// Inbound streams the peer may use.
    pub inbound_streams: u16,
}

/// `sac_state` of `SCTP_ASSOC_CHANGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AssocState {
    /// The association is up and ready for data.
    CommUp,
    /// The association failed (too many retransmissions, or the peer aborted).
    CommLost,
    /// The peer restarted; streams and sequence numbers were reset.
    Restart,
    /// A graceful shutdown completed.
    ShutdownComplete,
    /// The association could not be started.
    CantStartAssoc,
    /// A value this crate does not know.
    Unknown(u16),
}

impl AssocState {
    fn from_raw(raw: u16) -> Self {
        match raw {
            0 => Self::CommUp,
            1 => Self::CommLost,
            2 => Self::Restart,
            3 => Self::ShutdownComplete,
            4 => Self::CantStartAssoc,
            other => Self::Unknown(other),
        }
    }

    /// Whether the association is gone after this event.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::CommLost | Self::ShutdownComplete | Self::CantStartAssoc
        )
    }
}

/// `SCTP_PEER_ADDR_CHANGE`: one peer address changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerAddrChange {
    /// The address, if its family is IPv4 or IPv6.
    pub addr: Option<SocketAddr>,
    /// Its new state.
    pub state: PeerAddrState,
    /// The kernel's reason code (`enum sctp_sn_error`), 0 when none.
    pub error: i32,
}

/// `spc_state` of `SCTP_PEER_ADDR_CHANGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAddrState {
    /// The address is reachable again.
    Available,
    /// The path to the address failed.
    Unreachable,
    /// The address was removed from the association.
    Removed,
    /// The address was added to the association.
    Added,
    /// The address became the primary path.
    MadePrimary,
    /// A heartbeat confirmed the address.
    Confirmed,
    /// The path is potentially failed (SCTP-PF, RFC 7829): traffic moved away.
    PotentiallyFailed,
    /// A value this crate does not know.
    Unknown(i32),
}

impl PeerAddrState {
    fn from_raw(raw: i32) -> Self {
        match raw {
            0 => Self::Available,
            1 => Self::Unreachable,
            2 => Self::Removed,
            3 => Self::Added,
            4 => Self::MadePrimary,
            5 => Self::Confirmed,
            6 => Self::PotentiallyFailed,
            other => Self::Unknown(other),
        }
    }
}

/// Lower-case words for logs ("failed", "potentially failed", ...).
impl std::fmt::Display for PeerAddrState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Available => f.write_str("available"),
            Self::Unreachable => f.write_str("failed"),
            Self::Removed => f.write_str("removed"),
            Self::Added => f.write_str("added"),
            Self::MadePrimary => f.write_str("primary"),
            Self::Confirmed => f.write_str("confirmed"),
            Self::PotentiallyFailed => f.write_str("potentially failed"),
            Self::Unknown(raw) => write!(f, "unknown state {raw}"),
        }
    }
}

/// `SCTP_SEND_FAILED_EVENT`: a message that was not (or not reliably) delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SendFailed {
    /// The error code the kernel gives.
    pub error: u32,
    /// Whether the data had been put on the wire (`SCTP_DATA_SENT`) before it was
    /// given up on, rather than never sent (`SCTP_DATA_UNSENT`).
    pub was_sent: bool,
    /// The stream it was sent on.
    pub stream: u16,
    /// Its PPID (in the byte order [`crate::SctpAssociation::send`] took it).
    pub ppid: u32,
    /// How many bytes of the undelivered message the notification carried.
    pub undelivered_len: usize,
}

/// Why a notification could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// Fewer bytes than the header or the fixed part of its type.
    #[error("notification of type {kind:#06x} is truncated: {len} bytes")]
    Truncated {
        /// The `sn_type` (0 when even that was missing).
        kind: u16,
        /// The bytes available.
        len: usize,
    },
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn i32_at(bytes: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Parses one notification as `recvmsg` returned it.
///
/// `total_len` is the notification's full length when only a prefix was kept
/// (a send-failed event carries the undelivered message, which is not kept);
/// otherwise pass `bytes.len()`.
///
/// # Errors
///
/// [`ParseError::Truncated`] if there are fewer bytes than the header or the
/// fixed part of the notification's type. An unknown type is not an error: it is
/// [`Notification::Other`].
pub fn parse_notification(bytes: &[u8], total_len: usize) -> Result<Notification, ParseError> {
    let kind = u16_at(bytes, 0).unwrap_or(0);
    let truncated = ParseError::Truncated {
        kind,
        len: bytes.len(),
    };
    // Common header: sn_type u16, sn_flags u16, sn_length u32.
    if bytes.len() < 8 {
        return Err(truncated);
    }
    let parsed = match kind {
        // struct sctp_assoc_change: state@8, error@10, outbound@12, inbound@14.
        SCTP_ASSOC_CHANGE => (|| {
            bytes.get(..20)?;
            Some(Notification::AssocChange(AssocChange {
                state: AssocState::from_raw(u16_at(bytes, 8)?),
                error: u16_at(bytes, 10)?,
                outbound_streams: u16_at(bytes, 12)?,
                inbound_streams: u16_at(bytes, 14)?,
            }))
        })(),
        // struct sctp_paddr_change (packed): aaddr@8 (128), state@136, error@140.
        SCTP_PEER_ADDR_CHANGE => (|| {
            bytes.get(..LARGEST_FIXED_LEN)?;
            let storage = bytes.get(8..8 + SOCKADDR_STORAGE_LEN)?;
            Some(Notification::PeerAddrChange(PeerAddrChange {
                addr: decode_sockaddr(storage).map(|(addr, _)| addr),
                state: PeerAddrState::from_raw(i32_at(bytes, 136)?),
                error: i32_at(bytes, 140)?,
            }))
        })(),
        // struct sctp_send_failed_event: flags@2, error@8, sndinfo@12 (sid@12,
        // flags@14, ppid@16, context@20, assoc@24), assoc_id@28, data@32.
        SCTP_SEND_FAILED_EVENT => (|| {
            let flags = u16_at(bytes, 2)?;
            let ppid_raw = u32_at(bytes, 16)?;
            bytes.get(..32)?;
            Some(Notification::SendFailed(SendFailed {
                error: u32_at(bytes, 8)?,
                was_sent: flags == 1,
                stream: u16_at(bytes, 12)?,
                ppid: u32::from_be(ppid_raw),
                undelivered_len: total_len.saturating_sub(32),
            }))
        })(),
        // struct sctp_remote_error: sre_error@8 (network byte order).
        SCTP_REMOTE_ERROR => bytes.get(8..10).map(|b| Notification::RemoteError {
            cause: u16::from_be_bytes([b[0], b[1]]),
        }),
        // struct sctp_shutdown_event: assoc_id@8.
        SCTP_SHUTDOWN_EVENT => bytes.get(..12).map(|_| Notification::Shutdown),
        // struct sctp_pdapi_event: indication@8, assoc@12, stream@16, seq@20.
        SCTP_PARTIAL_DELIVERY_EVENT => (|| {
            Some(Notification::PartialDeliveryAborted {
                stream: u32_at(bytes, 16)?,
                sequence: u32_at(bytes, 20)?,
            })
        })(),
        // struct sctp_sender_dry_event: assoc_id@8.
        SCTP_SENDER_DRY_EVENT => bytes.get(..12).map(|_| Notification::SenderDry),
        other => Some(Notification::Other { kind: other }),
    };
    parsed.ok_or(truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::sockaddr_storage;

    fn header(kind: u16, flags: u16, len: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&flags.to_ne_bytes());
        out.extend_from_slice(&len.to_ne_bytes());
        out
    }

    fn assoc_change(state: u16, error: u16, out: u16, inb: u16) -> Vec<u8> {
        let mut b = header(SCTP_ASSOC_CHANGE, 0, 20);
        for v in [state, error, out, inb] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&5i32.to_ne_bytes()); // assoc id
        b
    }

    fn parse(bytes: &[u8]) -> Result<Notification, ParseError> {
        parse_notification(bytes, bytes.len())
    }

    #[test]
    fn assoc_change_states() {
        let cases = [
            (0, AssocState::CommUp),
            (1, AssocState::CommLost),
            (2, AssocState::Restart),
            (3, AssocState::ShutdownComplete),
            (4, AssocState::CantStartAssoc),
            (9, AssocState::Unknown(9)),
        ];
        for (raw, state) in cases {
            assert_eq!(
                parse(&assoc_change(raw, 3, 10, 12)),
                Ok(Notification::AssocChange(AssocChange {
                    state,
                    error: 3,
                    outbound_streams: 10,
                    inbound_streams: 12,
                }))
            );
        }
        assert!(AssocState::CommLost.is_terminal());
        assert!(!AssocState::Restart.is_terminal());
    }

    #[test]
    fn peer_addr_change_carries_address_and_state() {
        let addr: SocketAddr = "10.1.0.2:4000".parse().unwrap();
        let mut b = header(SCTP_PEER_ADDR_CHANGE, 0, 148);
        b.extend_from_slice(&sockaddr_storage(&addr));
        b.extend_from_slice(&6i32.to_ne_bytes()); // SCTP_ADDR_POTENTIALLY_FAILED
        b.extend_from_slice(&0i32.to_ne_bytes()); // SCTP_FAILED_THRESHOLD
        b.extend_from_slice(&1i32.to_ne_bytes()); // assoc id
        assert_eq!(b.len(), 148);
        assert_eq!(
            parse(&b),
            Ok(Notification::PeerAddrChange(PeerAddrChange {
                addr: Some(addr),
                state: PeerAddrState::PotentiallyFailed,
                error: 0,
            }))
        );
        // An IPv6 address and the "unreachable" state.
        let addr6: SocketAddr = "[fd00::2]:4000".parse().unwrap();
        b[8..136].copy_from_slice(&sockaddr_storage(&addr6));
        b[136..140].copy_from_slice(&1i32.to_ne_bytes());
        match parse(&b) {
            Ok(Notification::PeerAddrChange(change)) => {
                assert_eq!(change.addr, Some(addr6));
                assert_eq!(change.state, PeerAddrState::Unreachable);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn send_failed_event_keeps_stream_ppid_and_length() {
        let mut b = header(SCTP_SEND_FAILED_EVENT, 1, 32 + 100);
        b.extend_from_slice(&0x20u32.to_ne_bytes()); // ssf_error
        b.extend_from_slice(&7u16.to_ne_bytes()); // snd_sid
        b.extend_from_slice(&0u16.to_ne_bytes()); // snd_flags
        b.extend_from_slice(&77u32.to_be_bytes()); // snd_ppid, wire order
        b.extend_from_slice(&0u32.to_ne_bytes()); // snd_context
        b.extend_from_slice(&0i32.to_ne_bytes()); // snd_assoc_id
        b.extend_from_slice(&3i32.to_ne_bytes()); // ssf_assoc_id
        b.extend_from_slice(&[0xee; 16]); // the first bytes of the lost message
        assert_eq!(
            parse_notification(&b, 132),
            Ok(Notification::SendFailed(SendFailed {
                error: 0x20,
                was_sent: true,
                stream: 7,
                ppid: 77,
                undelivered_len: 100,
            }))
        );
    }

    #[test]
    fn shutdown_sender_dry_remote_error_and_pdapi() {
        let mut shutdown = header(SCTP_SHUTDOWN_EVENT, 0, 12);
        shutdown.extend_from_slice(&1i32.to_ne_bytes());
        assert_eq!(parse(&shutdown), Ok(Notification::Shutdown));

        let mut dry = header(SCTP_SENDER_DRY_EVENT, 0, 12);
        dry.extend_from_slice(&1i32.to_ne_bytes());
        assert_eq!(parse(&dry), Ok(Notification::SenderDry));

        let mut remote = header(SCTP_REMOTE_ERROR, 0, 16);
        remote.extend_from_slice(&[0x00, 0x0d, 0, 0]); // cause 13, padding
        remote.extend_from_slice(&1i32.to_ne_bytes());
        assert_eq!(parse(&remote), Ok(Notification::RemoteError { cause: 13 }));

        let mut pdapi = header(SCTP_PARTIAL_DELIVERY_EVENT, 0, 24);
        for v in [0u32, 1, 4, 99] {
            pdapi.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(
            parse(&pdapi),
            Ok(Notification::PartialDeliveryAborted {
                stream: 4,
                sequence: 99
            })
        );
    }

    #[test]
    fn unknown_types_are_reported_not_dropped() {
        let b = header(0x800a, 0, 8);
        assert_eq!(parse(&b), Ok(Notification::Other { kind: 0x800a }));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut fixtures = vec![assoc_change(0, 0, 1, 1)];
        let mut paddr = header(SCTP_PEER_ADDR_CHANGE, 0, 148);
        paddr.resize(148, 0);
        fixtures.push(paddr);
        let mut failed = header(SCTP_SEND_FAILED_EVENT, 0, 32);
        failed.resize(32, 0);
        fixtures.push(failed);
        let mut pdapi = header(SCTP_PARTIAL_DELIVERY_EVENT, 0, 24);
        pdapi.resize(24, 0);
        fixtures.push(pdapi);
        for fixture in fixtures {
            for len in 0..fixture.len() {
                assert!(
                    parse(&fixture[..len]).is_err(),
                    "type {:#x} at {len} bytes",
                    u16::from_ne_bytes([fixture[0], fixture[1]])
                );
            }
            assert!(parse(&fixture).is_ok());
        }
    }
}
