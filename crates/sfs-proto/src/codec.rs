//! Bounds-checked readers and writers for the binary wire format.
//!
//! Every multi-byte integer is big-endian. Strings are UTF-8 with a `u16` length
//! prefix, and every string field has its own limit, checked before the bytes are
//! read. Nothing here indexes into peer data without a length check first.

use thiserror::Error;

/// Why bytes from the peer could not be decoded. Every decoder returns this instead
/// of panicking, whatever the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end before the message does.
    #[error("message truncated")]
    Truncated,
    /// A field or the whole message is longer than its limit.
    #[error("{0} is longer than its limit")]
    TooLong(&'static str),
    /// A string field is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// The message type byte names no message of this protocol version.
    #[error("unknown message type {0:#04x}")]
    UnknownType(u8),
    /// The peer speaks a protocol version this build does not.
    #[error("unsupported protocol version {0}")]
    UnsupportedVersion(u8),
    /// A field holds a value outside its allowed set.
    #[error("invalid value for {0}")]
    InvalidValue(&'static str),
    /// Bytes are left over after the message.
    #[error("{0} trailing bytes after the message")]
    TrailingBytes(usize),
}

/// Why a message could not be encoded: a local value breaks a wire limit. This is
/// a fault of the caller, never of the peer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field or the whole message is longer than its limit.
    #[error("{0} is longer than its limit")]
    TooLong(&'static str),
    /// A field holds a value the wire format cannot carry.
    #[error("invalid value for {0}")]
    InvalidValue(&'static str),
}

/// A cursor over peer bytes in which every read checks the remaining length first.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < len {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(len);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::InvalidValue(field)),
        }
    }

    /// Reads a `u16`-prefixed UTF-8 string of at most `max` bytes.
    pub(crate) fn string(
        &mut self,
        max: usize,
        field: &'static str,
    ) -> Result<String, DecodeError> {
        let len = usize::from(self.u16()?);
        if len > max {
            return Err(DecodeError::TooLong(field));
        }
        let bytes = self.bytes(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::InvalidUtf8(field))
    }

    /// Fails unless every byte was consumed: a message has exactly one encoding.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(u8::from(v));
}

/// Writes a `u16`-prefixed string, refusing one longer than `max` bytes.
pub(crate) fn put_string(
    out: &mut Vec<u8>,
    s: &str,
    max: usize,
    field: &'static str,
) -> Result<(), EncodeError> {
    let len = u16::try_from(s.len()).map_err(|_| EncodeError::TooLong(field))?;
    if s.len() > max {
        return Err(EncodeError::TooLong(field));
    }
    put_u16(out, len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}
