//! The Linux SCTP socket API: constants, `repr(C)` structures and the system calls.
//!
//! `libc` has no SCTP definitions, so the ones used are written out here from
//! `<linux/sctp.h>` (kernel 6.1, RFC 6458). Every layout is pinned by a test against
//! the sizes and offsets the C compiler gives for that header. Generic socket calls
//! (creation, listen, accept, shutdown, `SOL_SOCKET` options) go through socket2;
//! this module keeps what is SCTP-only, and all the `unsafe` code of the project.

use std::io;
use std::mem::size_of;
use std::os::fd::AsRawFd;

use socket2::Socket;

use crate::addr::SOCKADDR_STORAGE_LEN;

/// `IPPROTO_SCTP`, which is also the socket option level `SOL_SCTP`.
pub(crate) const IPPROTO_SCTP: libc::c_int = 132;
pub(crate) const SOL_SCTP: libc::c_int = 132;

// Socket options (`<linux/sctp.h>`).
pub(crate) const SCTP_RTOINFO: libc::c_int = 0;
pub(crate) const SCTP_INITMSG: libc::c_int = 2;
pub(crate) const SCTP_NODELAY: libc::c_int = 3;
pub(crate) const SCTP_PRIMARY_ADDR: libc::c_int = 6;
pub(crate) const SCTP_PEER_ADDR_PARAMS: libc::c_int = 9;
pub(crate) const SCTP_STATUS: libc::c_int = 14;
pub(crate) const SCTP_GET_PEER_ADDR_INFO: libc::c_int = 15;
pub(crate) const SCTP_DELAYED_SACK: libc::c_int = 16;
pub(crate) const SCTP_FRAGMENT_INTERLEAVE: libc::c_int = 18;
pub(crate) const SCTP_PEER_ADDR_THLDS: libc::c_int = 31;
pub(crate) const SCTP_RECVRCVINFO: libc::c_int = 32;
pub(crate) const SCTP_SOCKOPT_BINDX_ADD: libc::c_int = 100;
pub(crate) const SCTP_GET_PEER_ADDRS: libc::c_int = 108;
pub(crate) const SCTP_GET_LOCAL_ADDRS: libc::c_int = 109;
pub(crate) const SCTP_SOCKOPT_CONNECTX: libc::c_int = 110;
pub(crate) const SCTP_STREAM_SCHEDULER: libc::c_int = 123;
pub(crate) const SCTP_INTERLEAVING_SUPPORTED: libc::c_int = 125;
pub(crate) const SCTP_EVENT: libc::c_int = 127;

// Ancillary data types (`enum sctp_cmsg_type`).
pub(crate) const SCTP_SNDINFO: libc::c_int = 2;
pub(crate) const SCTP_RCVINFO: libc::c_int = 3;

/// `snd_flags`/`rcv_flags` bit: the message is (or was sent) unordered.
pub(crate) const SCTP_UNORDERED: u16 = 1;

/// `msg_flags` bit: this `recvmsg` returned a notification, not user data.
pub(crate) const MSG_NOTIFICATION: libc::c_int = 0x8000;

// `spp_flags` bits of `struct sctp_paddrparams`.
pub(crate) const SPP_HB_ENABLE: u32 = 1 << 0;

/// `sstat_state` of an established association (`enum sctp_sstat_state`).
pub(crate) const SCTP_ESTABLISHED: i32 = 4;

/// `assoc_id` meaning "the socket's defaults for future associations". On a
/// one-to-one socket with an association, the kernel applies options to that
/// association whatever id is passed.
pub(crate) const SCTP_FUTURE_ASSOC: i32 = 0;

/// Types whose every bit pattern, including all zeroes, is a valid value, and
/// which have no implicit padding: the kernel may fill them, and they may be
/// handed to it whole.
///
/// # Safety
/// Implementors must be `repr(C)` (or packed) structures of integers and byte
/// arrays with explicit padding fields.
pub(crate) unsafe trait Pod: Copy {
    fn zeroed() -> Self {
        // SAFETY: the trait's contract says all-zero bytes are a valid value.
        unsafe { std::mem::zeroed() }
    }
}

// SAFETY: a plain C integer.
unsafe impl Pod for libc::c_int {}

/// `struct sctp_initmsg`: the stream counts and INIT retries asked for.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct InitMsg {
    pub num_ostreams: u16,
    pub max_instreams: u16,
    pub max_attempts: u16,
    pub max_init_timeo: u16,
}
// SAFETY: four u16, no padding.
unsafe impl Pod for InitMsg {}

/// `struct sctp_rtoinfo`, in milliseconds. Note the order: initial, max, min.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct RtoInfo {
    pub assoc_id: i32,
    pub initial: u32,
    pub max: u32,
    pub min: u32,
}
// SAFETY: integers only, no padding.
unsafe impl Pod for RtoInfo {}

/// `struct sctp_assoc_value`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct AssocValue {
    pub assoc_id: i32,
    pub value: u32,
}
// SAFETY: integers only, no padding.
unsafe impl Pod for AssocValue {}

/// `struct sctp_sack_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct SackInfo {
    pub assoc_id: i32,
    pub delay: u32,
    pub freq: u32,
}
// SAFETY: integers only, no padding.
unsafe impl Pod for SackInfo {}

/// `struct sctp_event`: turns one notification type on or off.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct EventSubscription {
    pub assoc_id: i32,
    pub kind: u16,
    pub on: u8,
    pub padding: u8,
}
// SAFETY: integers only; the trailing pad byte is an explicit field.
unsafe impl Pod for EventSubscription {}

/// `struct sctp_paddrinfo` (`packed, aligned(4)`). Every field after the 128-byte
/// address already falls on a 4-byte boundary, so `repr(C)` with the address as a
/// byte array gives the same layout without `packed`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct PeerAddrInfo {
    pub assoc_id: i32,
    pub address: [u8; SOCKADDR_STORAGE_LEN],
    pub state: i32,
    pub cwnd: u32,
    pub srtt: u32,
    pub rto: u32,
    pub mtu: u32,
}
// SAFETY: integers and a byte array, no padding (checked by the layout test).
unsafe impl Pod for PeerAddrInfo {}

/// `struct sctp_status`.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Status {
    pub assoc_id: i32,
    pub state: i32,
    pub rwnd: u32,
    pub unackdata: u16,
    pub penddata: u16,
    pub instrms: u16,
    pub outstrms: u16,
    pub fragmentation_point: u32,
    pub primary: PeerAddrInfo,
}
// SAFETY: integers and a Pod structure, no padding (checked by the layout test).
unsafe impl Pod for Status {}

/// `struct sctp_prim` (`packed, aligned(4)`; the same layout as `repr(C)` here).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Prim {
    pub assoc_id: i32,
    pub address: [u8; SOCKADDR_STORAGE_LEN],
}
// SAFETY: an integer and a byte array, no padding.
unsafe impl Pod for Prim {}

/// `struct sctp_paddrparams`, which is `packed, aligned(4)`: `spp_pathmtu` and the
/// fields after it sit at offsets that are not multiples of 4 (138, 142, ...).
/// `repr(C, packed)` reproduces that; the explicit trailing byte brings the size to
/// the 156 bytes the kernel checks for (`aligned(4)` rounds 155 up).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub(crate) struct PeerAddrParams {
    pub assoc_id: i32,
    pub address: [u8; SOCKADDR_STORAGE_LEN],
    pub hbinterval: u32,
    pub pathmaxrxt: u16,
    pub pathmtu: u32,
    pub sackdelay: u32,
    pub flags: u32,
    pub ipv6_flowlabel: u32,
    pub dscp: u8,
    pub padding: u8,
}
// SAFETY: packed integers and bytes; the pad byte is an explicit field.
unsafe impl Pod for PeerAddrParams {}

/// A `struct sockaddr_storage` as bytes, with its 8-byte alignment, for the
/// structures that are not packed.
#[repr(C, align(8))]
#[derive(Clone, Copy)]
pub(crate) struct SockaddrStorage(pub [u8; SOCKADDR_STORAGE_LEN]);

/// `struct sctp_paddrthlds`. Not packed: the address is 8-aligned, which leaves
/// 4 bytes after `assoc_id` and 4 at the end, written out as fields.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct PeerAddrThresholds {
    pub assoc_id: i32,
    pub padding0: u32,
    pub address: SockaddrStorage,
    pub pathmaxrxt: u16,
    pub pathpfthld: u16,
    pub padding1: u32,
}
// SAFETY: integers and bytes; both padding gaps are explicit fields.
unsafe impl Pod for PeerAddrThresholds {}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn cvt_size(ret: libc::ssize_t) -> io::Result<usize> {
    usize::try_from(ret).map_err(|_| io::Error::last_os_error())
}

/// Registers `socket` with tokio's reactor (inside a runtime).
pub(crate) fn register(socket: Socket) -> io::Result<tokio::io::unix::AsyncFd<Socket>> {
    // SAFETY: a `Socket` owns a valid open descriptor that only its own drop
    // closes, and its `as_raw_fd` always returns that same descriptor, for as long
    // as the `AsyncFd` owns it.
    unsafe { tokio::io::unix::AsyncFd::register(socket) }.map_err(io::Error::from)
}

/// `setsockopt` with a structure.
pub(crate) fn set_option<T: Pod>(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` is a live `T` (Pod: fully initialised, no implicit padding)
    // and the kernel reads at most `size_of::<T>()` bytes from it.
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    cvt(ret).map(drop)
}

/// `setsockopt` with a byte buffer, returning the call's non-negative result
/// (`SCTP_SOCKOPT_CONNECTX` returns the association id there).
pub(crate) fn set_option_bytes(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    bytes: &[u8],
) -> io::Result<libc::c_int> {
    let len = libc::socklen_t::try_from(bytes.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the pointer and length describe the live slice `bytes`.
    let ret = unsafe { libc::setsockopt(fd.as_raw_fd(), level, name, bytes.as_ptr().cast(), len) };
    cvt(ret)
}

/// `getsockopt` into a structure. Many SCTP options also read input fields (the
/// association id, an address) from the same structure, so it is in-out.
pub(crate) fn read_option<T: Pod>(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &mut T,
) -> io::Result<()> {
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a live, writable `T` of `len` bytes, and any bytes the
    // kernel writes form a valid `T` (Pod).
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *mut T).cast(),
            &mut len,
        )
    };
    cvt(ret).map(drop)
}

/// `getsockopt` into a byte buffer (also in-out); returns the length written.
pub(crate) fn read_option_bytes(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(buf.len())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the pointer and length describe the live, writable slice `buf`.
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    cvt(ret)?;
    Ok(len as usize)
}

/// Control-message buffer with the alignment `struct cmsghdr` needs.
#[repr(C, align(8))]
pub(crate) struct ControlBuffer(pub [u8; 64]);

/// `sendmsg(2)` of one whole message with the ancillary data in `control`.
pub(crate) fn send_message(fd: &impl AsRawFd, data: &[u8], control: &[u8]) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let mut aligned = ControlBuffer([0; 64]);
    let control_len = control.len().min(aligned.0.len());
    aligned.0[..control_len].copy_from_slice(&control[..control_len]);
    // SAFETY: msghdr is a C struct for which all-zero is valid (null pointers, zero
    // lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = aligned.0.as_mut_ptr().cast();
    msg.msg_controllen = control_len as _;
    // SAFETY: `msg` points at `iov` (which points at `data`) and at `aligned`,
    // all alive for the call; the kernel only reads through them for sendmsg.
    // MSG_NOSIGNAL: a dead association must give EPIPE, not kill the process.
    cvt_size(unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) })
}

/// What one `recvmsg` returned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Piece {
    pub len: usize,
    pub flags: libc::c_int,
    pub control_len: usize,
}

/// `recvmsg(2)` into `buf`, with ancillary data into `control`.
pub(crate) fn receive_piece(
    fd: &impl AsRawFd,
    buf: &mut [u8],
    control: &mut ControlBuffer,
) -> io::Result<Piece> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is a C struct for which all-zero is valid.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = control.0.len() as _;
    // SAFETY: `msg` points at `iov` (which points at the writable `buf`) and at the
    // writable `control`, all alive for the call and no larger than stated.
    let len = cvt_size(unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) })?;
    Ok(Piece {
        len,
        flags: msg.msg_flags,
        control_len: (msg.msg_controllen as usize).min(control.0.len()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of};

    // The numbers below come from compiling <linux/sctp.h> (kernel 6.1 uapi) on
    // x86_64 with gcc and printing sizeof/offsetof.

    #[test]
    fn paddrparams_matches_the_packed_c_layout() {
        assert_eq!(size_of::<PeerAddrParams>(), 156);
        assert_eq!(offset_of!(PeerAddrParams, hbinterval), 132);
        assert_eq!(offset_of!(PeerAddrParams, pathmaxrxt), 136);
        assert_eq!(offset_of!(PeerAddrParams, pathmtu), 138);
        assert_eq!(offset_of!(PeerAddrParams, sackdelay), 142);
        assert_eq!(offset_of!(PeerAddrParams, flags), 146);
        assert_eq!(offset_of!(PeerAddrParams, ipv6_flowlabel), 150);
        assert_eq!(offset_of!(PeerAddrParams, dscp), 154);
    }

    #[test]
    fn paddrinfo_and_status_match_c() {
        assert_eq!(size_of::<PeerAddrInfo>(), 152);
        assert_eq!(align_of::<PeerAddrInfo>(), 4);
        assert_eq!(offset_of!(PeerAddrInfo, state), 132);
        assert_eq!(offset_of!(PeerAddrInfo, mtu), 148);
        assert_eq!(size_of::<Status>(), 176);
        assert_eq!(offset_of!(Status, instrms), 16);
        assert_eq!(offset_of!(Status, outstrms), 18);
        assert_eq!(offset_of!(Status, primary), 24);
    }

    #[test]
    fn thresholds_keep_the_8_byte_aligned_address() {
        assert_eq!(size_of::<PeerAddrThresholds>(), 144);
        assert_eq!(align_of::<PeerAddrThresholds>(), 8);
        assert_eq!(offset_of!(PeerAddrThresholds, address), 8);
        assert_eq!(offset_of!(PeerAddrThresholds, pathmaxrxt), 136);
        assert_eq!(offset_of!(PeerAddrThresholds, pathpfthld), 138);
    }

    #[test]
    fn small_option_structs_match_c() {
        assert_eq!(size_of::<Prim>(), 132);
        assert_eq!(size_of::<RtoInfo>(), 16);
        assert_eq!(size_of::<SackInfo>(), 12);
        assert_eq!(size_of::<AssocValue>(), 8);
        assert_eq!(size_of::<EventSubscription>(), 8);
        assert_eq!(size_of::<InitMsg>(), 8);
    }
}
