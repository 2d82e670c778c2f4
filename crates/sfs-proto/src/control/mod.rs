//! Control messages: the typed, versioned, bounded messages carried inside TLS on
//! stream 0.
//!
//! # Framing
//!
//! The TLS plaintext on stream 0 is a sequence of frames:
//!
//! ```text
//! frame = length:u32  body[length]          length <= MAX_CONTROL_MESSAGE
//! body  = version:u8  type:u8  fields...
//! ```
//!
//! [`FrameDecoder`] follows mini-redis: it first checks that a whole frame is
//! buffered (an incomplete frame is a normal state, not an error), then parses it.
//! Garbage gives a [`DecodeError`], never a panic.
//!
//! # Why a hand-written codec
//!
//! The format is small (two dozen messages of strings and integers), its limits are
//! part of the security design (every string has its own bound, checked before the
//! bytes are read), and `docs/PROTOCOL.md` must describe it byte by byte for other
//! implementations. A serde format would add a dependency whose wire rules live in
//! another project's spec, and would still need the same bounds checked by hand
//! after decoding. So the codec is ~400 lines of explicit, fuzzed code instead.

mod code;
mod command;
mod reply;
mod transfer_messages;
pub(crate) mod wire;

use std::fmt;

pub use code::ErrorCode;
pub(crate) use command::Expects;
pub use command::{Command, Rights, MAX_PASSWORD_LEN, MAX_PATH_LEN, MAX_USER_LEN};
pub use reply::{Entry, EntryKind, Reply, ShareEntry, MAX_NAME_LEN, MAX_REASON_LEN};
pub use transfer_messages::{TransferAbort, TransferCredit, TransferEnd, TransferId, TransferOpen};

use crate::codec::{put_string, put_u16, put_u32, put_u8, DecodeError, EncodeError, Reader};

/// The protocol version this build speaks, carried in every control message and
/// every data record.
pub const PROTOCOL_VERSION: u8 = 1;

/// The largest control message body, in bytes (the `u32` length prefix excluded).
pub const MAX_CONTROL_MESSAGE: usize = 64 * 1024;

/// The length prefix of a frame.
pub const FRAME_HEADER_LEN: usize = 4;

/// Names a request, so that several can be in flight and replies can come back
/// in any order. The client picks them; the server echoes them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u32);

impl fmt::Debug for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R{}", self.0)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Client to server: a command.
    Request {
        /// Echoed in the replies.
        id: RequestId,
        /// What to do.
        command: Command,
    },
    /// Server to client: an answer to request `id`.
    Response {
        /// The request answered.
        id: RequestId,
        /// The answer.
        reply: Reply,
    },
    /// Either direction, from the data receiver: more room for the sender.
    TransferCredit(TransferCredit),
    /// Either direction: cancel a transfer.
    TransferAbort(TransferAbort),
    /// Either direction: the session ends now, with this code. Nothing follows
    /// but the TLS `close_notify`.
    Close {
        /// Why. `NO_ERROR` for a clean end.
        code: ErrorCode,
        /// Text for logs.
        reason: String,
    },
}

mod ty {
    pub const TRANSFER_CREDIT: u8 = 0x81;
    pub const TRANSFER_ABORT: u8 = 0x82;
    pub const CLOSE: u8 = 0x8f;
}

impl Message {
    /// Appends this message, framed (length prefix included), to `out`. On error
    /// `out` is left as it was.
    ///
    /// # Errors
    ///
    /// [`EncodeError`] if a field or the whole message breaks a wire limit.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let result = self.encode_frame(out, start);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn encode_frame(&self, out: &mut Vec<u8>, start: usize) -> Result<(), EncodeError> {
        put_u32(out, 0);
        put_u8(out, PROTOCOL_VERSION);
        match self {
            Self::Request { id, command } => {
                put_u8(out, command.type_byte());
                put_u32(out, id.0);
                command.encode_fields(out)?;
            }
            Self::Response { id, reply } => {
                put_u8(out, reply.type_byte());
                put_u32(out, id.0);
                reply.encode_fields(out)?;
            }
            Self::TransferCredit(credit) => {
                put_u8(out, ty::TRANSFER_CREDIT);
                credit.encode(out);
            }
            Self::TransferAbort(abort) => {
                put_u8(out, ty::TRANSFER_ABORT);
                abort.encode(out)?;
            }
            Self::Close { code, reason } => {
                put_u8(out, ty::CLOSE);
                put_u16(out, code.0);
                put_string(out, reason, MAX_REASON_LEN, "reason")?;
            }
        }
        let body_len = out.len() - start - FRAME_HEADER_LEN;
        if body_len > MAX_CONTROL_MESSAGE {
            return Err(EncodeError::TooLong("control message"));
        }
        // The cast cannot truncate: body_len <= MAX_CONTROL_MESSAGE < u32::MAX.
        out[start..start + FRAME_HEADER_LEN].copy_from_slice(&(body_len as u32).to_be_bytes());
        Ok(())
    }

    /// The message as one framed byte vector.
    ///
    /// # Errors
    ///
    /// As [`Self::encode`].
    pub fn to_frame(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }

    /// Decodes one message body (the bytes after the length prefix).
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for any body that is not exactly one valid message.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        if body.len() > MAX_CONTROL_MESSAGE {
            return Err(DecodeError::TooLong("control message"));
        }
        let mut r = Reader::new(body);
        let version = r.u8()?;
        if version != PROTOCOL_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let ty = r.u8()?;
        let message = match ty {
            ty::TRANSFER_CREDIT => Self::TransferCredit(TransferCredit::decode(&mut r)?),
            ty::TRANSFER_ABORT => Self::TransferAbort(TransferAbort::decode(&mut r)?),
            ty::CLOSE => Self::Close {
                code: ErrorCode(r.u16()?),
                reason: r.string(MAX_REASON_LEN, "reason")?,
            },
            _ if ty < 0x40 => {
                let id = RequestId(r.u32()?);
                let command =
                    Command::decode_fields(ty, &mut r).ok_or(DecodeError::UnknownType(ty))??;
                Self::Request { id, command }
            }
            _ if ty < 0x80 => {
                let id = RequestId(r.u32()?);
                let reply =
                    Reply::decode_fields(ty, &mut r).ok_or(DecodeError::UnknownType(ty))??;
                Self::Response { id, reply }
            }
            _ => return Err(DecodeError::UnknownType(ty)),
        };
        r.finish()?;
        Ok(message)
    }
}

/// Checks whether `buf` starts with a whole frame. `Ok(None)` means more bytes are
/// needed (a normal state); `Ok(Some(n))` means the first `n` bytes are one frame;
/// an error means the length prefix is over the limit and the stream is unusable.
///
/// # Errors
///
/// [`DecodeError::TooLong`] if the length prefix is over [`MAX_CONTROL_MESSAGE`].
pub fn check_frame(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    let Some(prefix) = buf.get(..FRAME_HEADER_LEN) else {
        return Ok(None);
    };
    let mut len_bytes = [0; FRAME_HEADER_LEN];
    len_bytes.copy_from_slice(prefix);
    let body_len = u32::from_be_bytes(len_bytes) as usize;
    if body_len > MAX_CONTROL_MESSAGE {
        return Err(DecodeError::TooLong("control message"));
    }
    let total = FRAME_HEADER_LEN + body_len;
    Ok((buf.len() >= total).then_some(total))
}

/// Splits a byte stream (TLS plaintext) into control messages.
///
/// Its buffer holds at most one partial frame plus what was pushed since the last
/// [`FrameDecoder::next_message`] call, and a length prefix over
/// [`MAX_CONTROL_MESSAGE`] is refused before any body byte is buffered.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet returned as messages.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The next whole message, `Ok(None)` if more bytes are needed, or the error
    /// that makes the rest of the stream undecodable.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for a frame over the limit or a body that does not decode;
    /// the stream cannot be resynchronised after it.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        let Some(total) = check_frame(pending)? else {
            // Keep the buffer compact so it never holds more than one frame's worth
            // of consumed prefix.
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            return Ok(None);
        };
        let body = pending
            .get(FRAME_HEADER_LEN..total)
            .ok_or(DecodeError::Truncated)?;
        let message = Message::decode(body);
        self.start += total;
        message.map(Some)
    }
}
