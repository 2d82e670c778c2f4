//! Control messages that open, pace, end and abort transfers.

use std::fmt;

use crate::codec::{put_string, put_u16, put_u32, put_u64, DecodeError, EncodeError, Reader};
use crate::control::reply::MAX_REASON_LEN;
use crate::control::ErrorCode;

/// Names one transfer within a session. The server assigns them, for both
/// directions, and never reuses one within a session.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub u32);

impl fmt::Debug for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "T{}", self.0)
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Opens a transfer: the sender will send exactly `length` bytes of the file, the
/// first being the file's byte `offset`, as chunk records on data streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferOpen {
    /// The id every chunk of this transfer carries.
    pub transfer: TransferId,
    /// The file offset of the first byte (non-zero when resuming a download).
    pub offset: u64,
    /// The exact number of bytes that will be sent.
    pub length: u64,
    /// How many data streams the sender spreads the chunks over on *each*
    /// association of `associations` (streams `1..=streams`).
    pub streams: u16,
    /// The associations that carry the chunks, as a bit mask: bit k set means
    /// association k (0 is the first association). Bit 0 is always set. The
    /// transfer's lanes are every (association in the mask, stream
    /// `1..=streams`).
    pub associations: u16,
}

impl TransferOpen {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.transfer.0);
        put_u64(out, self.offset);
        put_u64(out, self.length);
        put_u16(out, self.streams);
        put_u16(out, self.associations);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let open = Self {
            transfer: TransferId(r.u32()?),
            offset: r.u64()?,
            length: r.u64()?,
            streams: r.u16()?,
            associations: r.u16()?,
        };
        if open.offset.checked_add(open.length).is_none() {
            return Err(DecodeError::InvalidValue("transfer length"));
        }
        if open.associations & 1 == 0 {
            return Err(DecodeError::InvalidValue("transfer associations"));
        }
        Ok(open)
    }
}

impl crate::control::wire::Wire for TransferOpen {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        Self::encode(self, out);
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Self::decode(r)
    }
}

/// Ends a transfer: the sender sent `length` bytes whose SHA-256 is `sha256`. It
/// travels as the `End` record on each data stream of the transfer (see
/// [`crate::transfer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferEnd {
    /// The transfer.
    pub transfer: TransferId,
    /// Bytes sent in total.
    pub length: u64,
    /// SHA-256 of those bytes, in offset order.
    pub sha256: [u8; 32],
}

impl TransferEnd {
    /// Encoded size in bytes.
    pub const LEN: usize = 4 + 8 + 32;

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.transfer.0);
        put_u64(out, self.length);
        out.extend_from_slice(&self.sha256);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            transfer: TransferId(r.u32()?),
            length: r.u64()?,
            sha256: r.array()?,
        })
    }
}

/// Flow control from the receiver: the sender may send bytes up to, not
/// including, the file offset `limit`. Limits only grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferCredit {
    /// The transfer.
    pub transfer: TransferId,
    /// The new exclusive upper bound on chunk offsets plus lengths.
    pub limit: u64,
}

impl TransferCredit {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_u32(out, self.transfer.0);
        put_u64(out, self.limit);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            transfer: TransferId(r.u32()?),
            limit: r.u64()?,
        })
    }
}

/// Cancels a transfer, from either side. The receiver discards what it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferAbort {
    /// The transfer.
    pub transfer: TransferId,
    /// Why.
    pub code: ErrorCode,
    /// Text for the user.
    pub reason: String,
}

impl TransferAbort {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_u32(out, self.transfer.0);
        put_u16(out, self.code.0);
        put_string(out, &self.reason, MAX_REASON_LEN, "reason")
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            transfer: TransferId(r.u32()?),
            code: ErrorCode(r.u16()?),
            reason: r.string(MAX_REASON_LEN, "reason")?,
        })
    }
}
