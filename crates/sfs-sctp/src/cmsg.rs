//! SCTP ancillary data (`SCTP_SNDINFO` out, `SCTP_RCVINFO` in) as plain bytes.
//!
//! A control message is a `struct cmsghdr` (`cmsg_len`, `cmsg_level`, `cmsg_type`)
//! followed by its data, each padded to `size_t` alignment (`CMSG_ALIGN`). Building
//! and walking them by hand keeps the `CMSG_*` pointer macros, and their `unsafe`,
//! out of the crate; the parser never reads past the bytes the kernel returned.

use std::mem::size_of;

use crate::sys::{SCTP_RCVINFO, SCTP_SNDINFO, SCTP_UNORDERED, SOL_SCTP};

const HEADER_LEN: usize = size_of::<libc::cmsghdr>();
const ALIGN: usize = size_of::<usize>();
/// `sizeof(struct sctp_sndinfo)`.
const SNDINFO_LEN: usize = 16;
/// `sizeof(struct sctp_rcvinfo)`.
const RCVINFO_LEN: usize = 28;

const fn cmsg_align(len: usize) -> usize {
    (len + ALIGN - 1) & !(ALIGN - 1)
}

/// The fields of `struct sctp_rcvinfo` the crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RcvInfo {
    pub stream: u16,
    /// Stream sequence number (for I-DATA, the low 16 bits of the message id).
    pub ssn: u16,
    pub flags: u16,
    /// As it was on the wire (network byte order, see [`crate::Message::ppid`]).
    pub ppid_raw: u32,
}

impl RcvInfo {
    pub(crate) fn unordered(&self) -> bool {
        self.flags & SCTP_UNORDERED != 0
    }
}

/// One `SCTP_SNDINFO` control message for `sendmsg`.
///
/// The PPID is written in network byte order, the convention of RFC 6458 and of
/// tools such as Wireshark, so `ppid` reads the same at both ends and on the wire.
pub(crate) fn sndinfo(stream: u16, ppid: u32, flags: u16) -> Vec<u8> {
    let data_len = HEADER_LEN + SNDINFO_LEN;
    let mut out = Vec::with_capacity(cmsg_align(data_len));
    out.extend_from_slice(&data_len.to_ne_bytes());
    out.extend_from_slice(&SOL_SCTP.to_ne_bytes());
    out.extend_from_slice(&SCTP_SNDINFO.to_ne_bytes());
    out.extend_from_slice(&stream.to_ne_bytes()); // snd_sid
    out.extend_from_slice(&flags.to_ne_bytes()); // snd_flags
    out.extend_from_slice(&ppid.to_be_bytes()); // snd_ppid
    out.extend_from_slice(&0u32.to_ne_bytes()); // snd_context
    out.extend_from_slice(&0i32.to_ne_bytes()); // snd_assoc_id: ignored one-to-one
    out.resize(cmsg_align(data_len), 0);
    out
}

/// Finds the `SCTP_RCVINFO` control message among those `recvmsg` returned.
pub(crate) fn find_rcvinfo(control: &[u8]) -> Option<RcvInfo> {
    let mut rest = control;
    while rest.len() >= HEADER_LEN {
        let len = usize::from_ne_bytes(rest.get(0..ALIGN)?.try_into().ok()?);
        let level = i32::from_ne_bytes(rest.get(ALIGN..ALIGN + 4)?.try_into().ok()?);
        let kind = i32::from_ne_bytes(rest.get(ALIGN + 4..ALIGN + 8)?.try_into().ok()?);
        if len < HEADER_LEN {
            return None;
        }
        let data = rest.get(HEADER_LEN..len)?;
        if level == SOL_SCTP && kind == SCTP_RCVINFO && data.len() >= RCVINFO_LEN {
            return Some(RcvInfo {
                stream: u16::from_ne_bytes(data.get(0..2)?.try_into().ok()?),
                ssn: u16::from_ne_bytes(data.get(2..4)?.try_into().ok()?),
                flags: u16::from_ne_bytes(data.get(4..6)?.try_into().ok()?),
                ppid_raw: u32::from_ne_bytes(data.get(8..12)?.try_into().ok()?),
            });
        }
        rest = rest.get(cmsg_align(len)..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcvinfo_fixture(stream: u16, flags: u16, ppid_wire: [u8; 4]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(HEADER_LEN + RCVINFO_LEN).to_ne_bytes());
        out.extend_from_slice(&132i32.to_ne_bytes());
        out.extend_from_slice(&3i32.to_ne_bytes());
        out.extend_from_slice(&stream.to_ne_bytes()); // rcv_sid
        out.extend_from_slice(&7u16.to_ne_bytes()); // rcv_ssn
        out.extend_from_slice(&flags.to_ne_bytes()); // rcv_flags
        out.extend_from_slice(&[0, 0]); // padding
        out.extend_from_slice(&ppid_wire); // rcv_ppid
        out.extend_from_slice(&[0xaa; 16]); // tsn, cumtsn, context, assoc_id
        out.resize(cmsg_align(out.len()), 0);
        out
    }

    #[test]
    fn sndinfo_has_the_c_layout() {
        let bytes = sndinfo(5, 0x0102_0304, SCTP_UNORDERED);
        assert_eq!(bytes.len(), 32);
        assert_eq!(usize::from_ne_bytes(bytes[0..8].try_into().unwrap()), 32);
        assert_eq!(i32::from_ne_bytes(bytes[8..12].try_into().unwrap()), 132);
        assert_eq!(i32::from_ne_bytes(bytes[12..16].try_into().unwrap()), 2);
        assert_eq!(u16::from_ne_bytes(bytes[16..18].try_into().unwrap()), 5);
        assert_eq!(u16::from_ne_bytes(bytes[18..20].try_into().unwrap()), 1);
        assert_eq!(&bytes[20..24], &[1, 2, 3, 4]);
    }

    #[test]
    fn rcvinfo_is_found_and_decoded() {
        let control = rcvinfo_fixture(9, 1, [0, 0, 0, 42]);
        let info = find_rcvinfo(&control).unwrap();
        assert_eq!(info.stream, 9);
        assert_eq!(info.ssn, 7);
        assert!(info.unordered());
        assert_eq!(u32::from_be(info.ppid_raw), 42);
    }

    #[test]
    fn other_control_messages_are_skipped() {
        let mut control = Vec::new();
        control.extend_from_slice(&(HEADER_LEN + 4).to_ne_bytes());
        control.extend_from_slice(&libc::SOL_SOCKET.to_ne_bytes());
        control.extend_from_slice(&1i32.to_ne_bytes());
        control.extend_from_slice(&[9, 9, 9, 9]);
        control.resize(cmsg_align(control.len()), 0);
        control.extend_from_slice(&rcvinfo_fixture(3, 0, [0, 0, 0, 1]));
        assert_eq!(find_rcvinfo(&control).map(|i| i.stream), Some(3));
    }

    #[test]
    fn truncated_or_bogus_control_data_gives_none() {
        let control = rcvinfo_fixture(9, 0, [0; 4]);
        for len in 0..control.len() - 4 {
            assert_eq!(find_rcvinfo(&control[..len]), None, "{len} bytes");
        }
        let mut zero_len = control.clone();
        zero_len[0..8].copy_from_slice(&0usize.to_ne_bytes());
        assert_eq!(find_rcvinfo(&zero_len), None);
        let mut huge = control;
        huge[0..8].copy_from_slice(&usize::MAX.to_ne_bytes());
        assert_eq!(find_rcvinfo(&huge), None);
    }
}
