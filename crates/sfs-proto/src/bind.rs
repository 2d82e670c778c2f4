//! Binding extra data associations to a session: the `BIND` and `BIND_ACK`
//! messages, their constants and the reasons a binding is refused.
//!
//! After login the client may open more SCTP associations to the same server and
//! bind each to its session, so that file chunks are spread over several
//! congestion windows. It asks for a ticket with `ASSOC` (answered with
//! `AssocTicket { index, ticket }`), connects, and sends as the first message on
//! stream 0 of the new association, in clear, a [`BindRequest`]:
//!
//! ```text
//! BIND     = "SFSB" | version:u8 | index:u8 | ticket[16] | proof[32]     (BIND_LEN = 54)
//! proof    = HMAC-SHA256(bind_key, "sfs v1 bind" | index | ticket)
//! bind_key = HKDF-Expand(PRK, "sfs v1 bind", 32)     (PRK: the record keys' PRK)
//! BIND_ACK = "SFSB" | version:u8 | status:u16                            (BIND_ACK_LEN = 7)
//! ```
//!
//! The ticket is single use and the proof needs the session's TLS exporter, so
//! nothing sent in clear can be replayed or used for another session. A TLS
//! ClientHello starts with byte 0x16, never `S`, so a server tells a BIND from a
//! new session by the first message of an association ([`is_bind`]).

use std::time::Duration;

use thiserror::Error;

use crate::control::{ErrorCode, PROTOCOL_VERSION};

/// The magic that starts `BIND` and `BIND_ACK`.
pub const BIND_MAGIC: &[u8; 4] = b"SFSB";
/// The length of a `BIND` message, in bytes.
pub const BIND_LEN: usize = 54;
/// The length of a `BIND_ACK` message, in bytes.
pub const BIND_ACK_LEN: usize = 7;
/// How long a ticket from `AssocTicket` stays valid.
pub const BIND_TICKET_LIFETIME: Duration = Duration::from_secs(10);
/// The most associations a session can have, the first one included (indices
/// `0..MAX_ASSOCIATIONS`; a transfer's association mask is a `u16`).
pub const MAX_ASSOCIATIONS: u8 = 16;
/// The HKDF info of the bind key, and the prefix of the proof's input.
pub const BIND_LABEL: &[u8] = b"sfs v1 bind";

/// The first message of an extra association: which session ticket it
/// redeems and the proof that the sender holds that session's keys.
#[derive(Clone, PartialEq, Eq)]
pub struct BindRequest {
    /// The association index the ticket was issued for (1..=15).
    pub index: u8,
    /// The ticket from `AssocTicket`.
    pub ticket: [u8; 16],
    /// `HMAC-SHA256(bind_key, "sfs v1 bind" | index | ticket)`.
    pub proof: [u8; 32],
}

impl std::fmt::Debug for BindRequest {
    /// The ticket and proof are credentials for a few seconds: never logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindRequest")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl BindRequest {
    /// The message bytes.
    pub fn encode(&self) -> [u8; BIND_LEN] {
        let mut out = [0; BIND_LEN];
        out[..4].copy_from_slice(BIND_MAGIC);
        out[4] = PROTOCOL_VERSION;
        out[5] = self.index;
        out[6..22].copy_from_slice(&self.ticket);
        out[22..].copy_from_slice(&self.proof);
        out
    }

    /// Parses a `BIND` message.
    ///
    /// # Errors
    ///
    /// [`BindError::Malformed`] unless `msg` is exactly [`BIND_LEN`] bytes with
    /// the magic, this protocol version and an index in `1..MAX_ASSOCIATIONS`.
    pub fn decode(msg: &[u8]) -> Result<Self, BindError> {
        let msg: &[u8; BIND_LEN] = msg.try_into().map_err(|_| BindError::Malformed)?;
        let (head, rest) = msg.split_at(6);
        if &head[..4] != BIND_MAGIC || head[4] != PROTOCOL_VERSION {
            return Err(BindError::Malformed);
        }
        let index = head[5];
        if index == 0 || index >= MAX_ASSOCIATIONS {
            return Err(BindError::Malformed);
        }
        let (ticket, proof) = rest.split_at(16);
        Ok(Self {
            index,
            ticket: ticket.try_into().map_err(|_| BindError::Malformed)?,
            proof: proof.try_into().map_err(|_| BindError::Malformed)?,
        })
    }
}

/// True if the first message of an association is meant as a `BIND` (starts
/// with the magic), whether or not it is well formed; otherwise it starts a new
/// session (a TLS ClientHello).
pub fn is_bind(first_message: &[u8]) -> bool {
    first_message.starts_with(BIND_MAGIC)
}

/// The server's answer to a `BIND`: `NO_ERROR` when bound; on any other status
/// the server aborts the association after sending it. Informational only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindAck {
    /// `NO_ERROR` = bound; otherwise [`BindError::code`] of the refusal.
    pub status: ErrorCode,
}

impl BindAck {
    /// The message bytes.
    pub fn encode(&self) -> [u8; BIND_ACK_LEN] {
        let mut out = [0; BIND_ACK_LEN];
        out[..4].copy_from_slice(BIND_MAGIC);
        out[4] = PROTOCOL_VERSION;
        out[5..].copy_from_slice(&self.status.0.to_be_bytes());
        out
    }

    /// Parses a `BIND_ACK` message.
    ///
    /// # Errors
    ///
    /// [`BindError::Malformed`] unless `msg` is exactly [`BIND_ACK_LEN`] bytes
    /// with the magic and this protocol version.
    pub fn decode(msg: &[u8]) -> Result<Self, BindError> {
        let msg: &[u8; BIND_ACK_LEN] = msg.try_into().map_err(|_| BindError::Malformed)?;
        if &msg[..4] != BIND_MAGIC || msg[4] != PROTOCOL_VERSION {
            return Err(BindError::Malformed);
        }
        Ok(Self {
            status: ErrorCode(u16::from_be_bytes([msg[5], msg[6]])),
        })
    }

    /// True if the association was bound.
    pub fn is_bound(&self) -> bool {
        self.status == ErrorCode::NO_ERROR
    }
}

/// Why a `BIND` was refused (or a `BIND_ACK` not understood).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BindError {
    /// Not a well-formed `BIND` (or `BIND_ACK`): wrong length, magic, version
    /// or index.
    #[error("malformed bind message")]
    Malformed,
    /// The ticket is not pending in this session: never issued, issued by
    /// another session, or already used (tickets are single use).
    #[error("unknown or already used ticket")]
    UnknownTicket,
    /// The ticket was not redeemed within `BIND_TICKET_LIFETIME`.
    #[error("expired ticket")]
    Expired,
    /// The proof does not match: the sender lacks this session's keys.
    #[error("wrong proof")]
    BadProof,
    /// The ticket was issued for another association index.
    #[error("ticket issued for another association index")]
    WrongIndex,
    /// The session is not logged in.
    #[error("session not logged in")]
    NotLoggedIn,
    /// The session is closed (or logged out).
    #[error("session closed")]
    Closed,
    /// A record arrived on a data stream of the association before it was bound.
    #[error("data record before the association was bound")]
    DataBeforeBind,
    /// The session, user or server has no room for another association.
    #[error("no more associations allowed")]
    Limit,
}

impl BindError {
    /// The status a `BIND_ACK` carries for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Malformed | Self::DataBeforeBind => ErrorCode::BAD_REQUEST,
            Self::Limit => ErrorCode::ASSOCIATION_LIMIT,
            Self::UnknownTicket
            | Self::Expired
            | Self::BadProof
            | Self::WrongIndex
            | Self::NotLoggedIn
            | Self::Closed => ErrorCode::AUTH_FAILED,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_round_trips_and_is_recognised() {
        let bind = BindRequest {
            index: 3,
            ticket: [7; 16],
            proof: [9; 32],
        };
        let bytes = bind.encode();
        assert_eq!(bytes.len(), BIND_LEN);
        assert!(is_bind(&bytes));
        assert_eq!(&bytes[..6], b"SFSB\x01\x03");
        assert_eq!(BindRequest::decode(&bytes), Ok(bind.clone()));
        assert!(
            !format!("{bind:?}").contains('7'),
            "ticket must not be logged"
        );
    }

    #[test]
    fn malformed_binds_are_refused() {
        let good = BindRequest {
            index: 1,
            ticket: [1; 16],
            proof: [2; 32],
        }
        .encode();
        assert_eq!(BindRequest::decode(&good[..53]), Err(BindError::Malformed));
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(BindRequest::decode(&long), Err(BindError::Malformed));
        for (at, value) in [(0, b'X'), (4, 2), (5, 0), (5, MAX_ASSOCIATIONS)] {
            let mut bad = good;
            bad[at] = value;
            assert_eq!(BindRequest::decode(&bad), Err(BindError::Malformed), "{at}");
        }
        // A TLS ClientHello record starts with 0x16.
        assert!(!is_bind(&[0x16, 3, 1, 0, 0]));
        assert_eq!(BindError::Malformed.code(), ErrorCode::BAD_REQUEST);
        assert_eq!(BindError::BadProof.code(), ErrorCode::AUTH_FAILED);
        assert_eq!(BindError::Limit.code(), ErrorCode::ASSOCIATION_LIMIT);
    }

    #[test]
    fn bind_ack_round_trips() {
        for status in [
            ErrorCode::NO_ERROR,
            ErrorCode::AUTH_FAILED,
            ErrorCode(0xabcd),
        ] {
            let ack = BindAck { status };
            let bytes = ack.encode();
            assert_eq!(bytes.len(), BIND_ACK_LEN);
            assert_eq!(BindAck::decode(&bytes), Ok(ack));
        }
        assert!(BindAck {
            status: ErrorCode::NO_ERROR
        }
        .is_bound());
        assert_eq!(BindAck::decode(b"SFSB\x01\x00"), Err(BindError::Malformed));
        assert_eq!(
            BindAck::decode(b"SFSX\x01\x00\x00"),
            Err(BindError::Malformed)
        );
    }
}
