//! Socket setup shared by listeners and associations.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, Socket, Type};

use crate::addr::{encode_sockaddr_list, sockaddr_storage};
use crate::config::{millis_u32, SctpConfig};
use crate::error::{Error, Result};
use crate::notification::SUBSCRIBED;
use crate::sys::{self, SCTP_FUTURE_ASSOC, SOL_SCTP};

/// A new SCTP socket of the family the addresses need: IPv6 if any is IPv6 (an
/// `AF_INET6` socket also carries IPv4), else IPv4.
///
/// The socket is one-to-one style (`SOCK_STREAM`), non-blocking and
/// close-on-exec (socket2 always sets `SOCK_CLOEXEC`).
pub(crate) fn new_socket<'a>(addrs: impl IntoIterator<Item = &'a SocketAddr>) -> Result<Socket> {
    let domain = if addrs.into_iter().any(SocketAddr::is_ipv6) {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    Socket::new(
        domain,
        Type::STREAM.nonblocking(),
        Some(Protocol::from(sys::IPPROTO_SCTP)),
    )
    .map_err(|e| Error::io("creating an SCTP socket", e))
}

pub(crate) fn set_int(
    fd: &impl AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
    op: &'static str,
) -> Result<()> {
    sys::set_option(fd, level, name, &value).map_err(|e| Error::io(op, e))
}

fn clamp_int(value: usize) -> libc::c_int {
    libc::c_int::try_from(value).unwrap_or(libc::c_int::MAX)
}

#[derive(Clone, Copy, Debug)]
enum Buffer {
    Send,
    Receive,
}

/// Sets `SO_SNDBUF`/`SO_RCVBUF`. The kernel caps these at `net.core.wmem_max` /
/// `rmem_max` (208 KiB by default on many systems), which is too small for SCTP,
/// so a capped value is retried with the `*FORCE` variant (allowed with
/// CAP_NET_ADMIN), and a still-capped one is logged with the fix.
///
/// The `*FORCE` options are Linux-only and not in socket2, so they go through
/// `setsockopt` directly.
fn set_buffer(socket: &Socket, which: Buffer, bytes: usize) -> Result<()> {
    let (force, sysctl, op) = match which {
        Buffer::Send => (
            libc::SO_SNDBUFFORCE,
            "net.core.wmem_max",
            "setting SO_SNDBUF",
        ),
        Buffer::Receive => (
            libc::SO_RCVBUFFORCE,
            "net.core.rmem_max",
            "setting SO_RCVBUF",
        ),
    };
    let wanted = clamp_int(bytes);
    // socket2 casts the size to a C int without clamping: clamp it first.
    let capped = usize::try_from(wanted).unwrap_or(0);
    let set = match which {
        Buffer::Send => socket.set_send_buffer_size(capped),
        Buffer::Receive => socket.set_recv_buffer_size(capped),
    };
    set.map_err(|e| Error::io(op, e))?;
    // The kernel reports (and uses) twice the value set.
    let granted = |socket: &_| effective_buffer(socket, which).map(|b| b / 2);
    if granted(socket)? >= bytes {
        return Ok(());
    }
    if sys::set_option(socket, libc::SOL_SOCKET, force, &wanted).is_ok()
        && granted(socket)? >= bytes
    {
        return Ok(());
    }
    log::warn!(
        "{which:?} buffer capped at {} bytes instead of {bytes}: raise {sysctl} (sysctl -w {sysctl}={bytes})",
        granted(socket)?
    );
    Ok(())
}

/// The buffer size the kernel uses (`getsockopt`, already doubled).
fn effective_buffer(socket: &Socket, which: Buffer) -> Result<usize> {
    match which {
        Buffer::Send => socket.send_buffer_size(),
        Buffer::Receive => socket.recv_buffer_size(),
    }
    .map_err(|e| Error::io("reading a socket buffer size", e))
}

/// The largest message `sendmsg` accepts: the kernel refuses one larger than the
/// effective send buffer with EMSGSIZE.
pub(crate) fn send_buffer_limit(socket: &Socket) -> Result<usize> {
    effective_buffer(socket, Buffer::Send)
}

/// Applies everything that must be in place before an association exists: the
/// stream counts offered in INIT, buffers, notifications, and the defaults every
/// future association on this socket (or accepted from it) inherits.
pub(crate) fn prepare(fd: &Socket, config: &SctpConfig) -> Result<()> {
    set_buffer(fd, Buffer::Send, config.send_buffer_size)?;
    set_buffer(fd, Buffer::Receive, config.recv_buffer_size)?;
    let init = sys::InitMsg {
        num_ostreams: config.outbound_streams,
        max_instreams: config.max_inbound_streams,
        max_attempts: config.max_init_attempts,
        max_init_timeo: 0,
    };
    sys::set_option(fd, SOL_SCTP, sys::SCTP_INITMSG, &init)
        .map_err(|e| Error::io("setting SCTP_INITMSG", e))?;
    set_int(
        fd,
        SOL_SCTP,
        sys::SCTP_RECVRCVINFO,
        1,
        "setting SCTP_RECVRCVINFO",
    )?;
    for kind in SUBSCRIBED {
        let event = sys::EventSubscription {
            assoc_id: SCTP_FUTURE_ASSOC,
            kind,
            on: 1,
            padding: 0,
        };
        sys::set_option(fd, SOL_SCTP, sys::SCTP_EVENT, &event)
            .map_err(|e| Error::io("subscribing to SCTP notifications", e))?;
    }
    if config.interleaving {
        enable_interleaving(fd);
    }
    tune(fd, config, true)
}

/// I-DATA needs `SCTP_FRAGMENT_INTERLEAVE` 2 first, and the `net.sctp.intl_enable`
/// sysctl; without the sysctl the kernel says EPERM and plain DATA is used.
fn enable_interleaving(fd: &impl AsRawFd) {
    if let Err(err) = sys::set_option(fd, SOL_SCTP, sys::SCTP_FRAGMENT_INTERLEAVE, &2) {
        log::debug!("SCTP_FRAGMENT_INTERLEAVE 2 refused: {err}");
        return;
    }
    let on = sys::AssocValue {
        assoc_id: SCTP_FUTURE_ASSOC,
        value: 1,
    };
    if let Err(err) = sys::set_option(fd, SOL_SCTP, sys::SCTP_INTERLEAVING_SUPPORTED, &on) {
        log::debug!("SCTP_INTERLEAVING_SUPPORTED refused (net.sctp.intl_enable off?): {err}");
    }
}

/// Per-association tuning. Applied to the socket before the association exists
/// (so INIT retransmissions already use it) and again to the live association.
/// `before_association`: the stream scheduler is only a socket default on recent
/// kernels, so a refusal then is not an error; it is retried on the association.
pub(crate) fn tune(fd: &impl AsRawFd, config: &SctpConfig, before_association: bool) -> Result<()> {
    set_int(
        fd,
        SOL_SCTP,
        sys::SCTP_NODELAY,
        libc::c_int::from(config.nodelay),
        "setting SCTP_NODELAY",
    )?;
    if let Some(failover) = &config.failover {
        let rto = sys::RtoInfo {
            assoc_id: SCTP_FUTURE_ASSOC,
            initial: millis_u32(failover.rto_initial),
            max: millis_u32(failover.rto_max),
            min: millis_u32(failover.rto_min),
        };
        sys::set_option(fd, SOL_SCTP, sys::SCTP_RTOINFO, &rto)
            .map_err(|e| Error::io("setting SCTP_RTOINFO", e))?;
        let params = sys::PeerAddrParams {
            assoc_id: SCTP_FUTURE_ASSOC,
            address: [0; 128],
            hbinterval: millis_u32(failover.heartbeat_interval),
            pathmaxrxt: failover.path_max_retrans,
            pathmtu: 0,
            sackdelay: 0,
            flags: sys::SPP_HB_ENABLE,
            ipv6_flowlabel: 0,
            dscp: 0,
            padding: 0,
        };
        sys::set_option(fd, SOL_SCTP, sys::SCTP_PEER_ADDR_PARAMS, &params)
            .map_err(|e| Error::io("setting SCTP_PEER_ADDR_PARAMS", e))?;
        let thresholds = sys::PeerAddrThresholds {
            assoc_id: SCTP_FUTURE_ASSOC,
            padding0: 0,
            address: sys::SockaddrStorage([0; 128]),
            pathmaxrxt: failover.path_max_retrans,
            pathpfthld: failover.pf_retrans,
            padding1: 0,
        };
        sys::set_option(fd, SOL_SCTP, sys::SCTP_PEER_ADDR_THLDS, &thresholds)
            .map_err(|e| Error::io("setting SCTP_PEER_ADDR_THLDS", e))?;
    }
    if let Some(sack) = &config.delayed_sack {
        let info = sys::SackInfo {
            assoc_id: SCTP_FUTURE_ASSOC,
            delay: millis_u32(sack.delay),
            freq: sack.frequency,
        };
        sys::set_option(fd, SOL_SCTP, sys::SCTP_DELAYED_SACK, &info)
            .map_err(|e| Error::io("setting SCTP_DELAYED_SACK", e))?;
    }
    let scheduler = sys::AssocValue {
        assoc_id: SCTP_FUTURE_ASSOC,
        value: config.scheduler.raw(),
    };
    match sys::set_option(fd, SOL_SCTP, sys::SCTP_STREAM_SCHEDULER, &scheduler) {
        Ok(()) => Ok(()),
        Err(err) if before_association => {
            log::debug!("stream scheduler not settable as a socket default: {err}");
            Ok(())
        }
        Err(err) => Err(Error::io("setting SCTP_STREAM_SCHEDULER", err)),
    }
}

/// `sctp_bindx(SCTP_BINDX_ADD_ADDR)`: binds every address at once. With port 0,
/// the first address picks a port and the others share it.
pub(crate) fn bindx(fd: &impl AsRawFd, addrs: &[SocketAddr]) -> Result<()> {
    sys::set_option_bytes(
        fd,
        SOL_SCTP,
        sys::SCTP_SOCKOPT_BINDX_ADD,
        &encode_sockaddr_list(addrs),
    )
    .map(drop)
    .map_err(|e| Error::io("binding (sctp_bindx)", e))
}

/// The bytes of `SCTP_GET_LOCAL_ADDRS`/`SCTP_GET_PEER_ADDRS` for `assoc_id`,
/// decoded. The buffer grows until the kernel's list fits.
pub(crate) fn addr_list(
    fd: &impl AsRawFd,
    option: libc::c_int,
    assoc_id: i32,
    op: &'static str,
) -> Result<Vec<SocketAddr>> {
    let mut capacity = 16;
    loop {
        // struct sctp_getaddrs: assoc_id (in), addr_num (out), packed addresses.
        let mut buf = vec![0u8; 8 + capacity * crate::addr::SOCKADDR_IN6_LEN];
        // In bounds: the buffer is at least 8 bytes long.
        buf[..4].copy_from_slice(&assoc_id.to_ne_bytes());
        match sys::read_option_bytes(fd, SOL_SCTP, option, &mut buf) {
            Ok(_) => {
                // The kernel reports the length of the addresses alone as optlen
                // (a historical quirk: the 8-byte header is not counted), so the
                // count, not the length, says how many there are.
                let count = buf
                    .get(4..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_ne_bytes) as usize;
                let addrs = buf.get(8..).unwrap_or_default();
                return Ok(crate::addr::decode_sockaddr_list(addrs, count));
            }
            Err(err) if err.raw_os_error() == Some(libc::ENOMEM) && capacity < 4096 => {
                capacity *= 4;
            }
            Err(err) => return Err(Error::io(op, err)),
        }
    }
}

/// A zeroed `sctp_prim`-style address field holding `addr`.
pub(crate) fn storage_for(addr: &SocketAddr) -> [u8; 128] {
    sockaddr_storage(addr)
}
