//! Path (peer address) and association status, as reported by the kernel.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::Socket;

use crate::addr::decode_sockaddr;
use crate::association::SctpAssociation;
use crate::error::{Error, Result};
use crate::socket;
use crate::sys::{self, SOL_SCTP};

/// The state of the path to one peer address (`spinfo_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathState {
    /// The path failed: too many retransmissions or heartbeats went unanswered.
    Inactive,
    /// SCTP-PF (RFC 7829): the path timed out and traffic moved to another one,
    /// but it is not yet declared failed.
    PotentiallyFailed,
    /// Confirmed and usable.
    Active,
    /// Not yet confirmed: the kernel says so for an address learnt from the
    /// peer's INIT (`SCTP_UNCONFIRMED`), and this crate says so for an address
    /// given to `connect` that has never answered (see [`PathInfo::state`]).
    Unconfirmed,
    /// Any other value (the kernel uses 0xffff for "unknown").
    Unknown(i32),
}

impl PathState {
    fn from_raw(raw: i32) -> Self {
        match raw {
            0 => Self::Inactive,
            1 => Self::PotentiallyFailed,
            2 => Self::Active,
            3 => Self::Unconfirmed,
            other => Self::Unknown(other),
        }
    }
}

/// What the kernel knows about the path to one peer address
/// (`SCTP_GET_PEER_ADDR_INFO`), and whether it is the primary one
/// (`SCTP_PRIMARY_ADDR`).
///
/// This is also what `sfs-net` reports for a transport's paths, so there is one
/// path type across the layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathInfo {
    /// The peer address.
    pub addr: SocketAddr,
    /// Its state. Linux reports the addresses given to `connect` as active as
    /// soon as the association is up, whether or not any of them ever answered
    /// (RFC 4960 section 5.4 counts them as confirmed); such a path that has no
    /// round-trip measurement yet (no heartbeat acknowledged, no data
    /// acknowledged on it) is reported here as [`PathState::Unconfirmed`].
    pub state: PathState,
    /// Smoothed round-trip time.
    pub srtt: Duration,
    /// Current retransmission timeout.
    pub rto: Duration,
    /// Congestion window, in bytes.
    pub cwnd: u32,
    /// Path MTU, in bytes.
    pub mtu: u32,
    /// Whether this is the primary path (the one new data goes out on). False
    /// when the primary address could not be read.
    pub primary: bool,
}

impl PathInfo {
    /// Decodes the kernel's structure; `asked` is the address the caller asked
    /// about, used if the kernel's copy cannot be decoded.
    pub(crate) fn from_raw(info: &sys::PeerAddrInfo, asked: SocketAddr, primary: bool) -> Self {
        Self {
            addr: decode_sockaddr(&info.address).map_or(asked, |(addr, _)| addr),
            state: PathState::from_raw(info.state),
            srtt: Duration::from_millis(u64::from(info.srtt)),
            rto: Duration::from_millis(u64::from(info.rto)),
            cwnd: info.cwnd,
            mtu: info.mtu,
            primary,
        }
    }
}

/// The association's overall status (`SCTP_STATUS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssocStatus {
    /// The protocol state (`enum sctp_sstat_state`: 4 is ESTABLISHED, 5 to 8 the
    /// shutdown states).
    pub state: i32,
    /// The peer's receive window, in bytes.
    pub peer_rwnd: u32,
    /// Data chunks sent and not yet acknowledged.
    pub unacked_chunks: u16,
    /// Data chunks received and not yet delivered.
    pub pending_chunks: u16,
    /// Negotiated inbound streams.
    pub inbound_streams: u16,
    /// Negotiated outbound streams.
    pub outbound_streams: u16,
    /// Largest user message fragment the association sends, in bytes.
    pub fragmentation_point: u32,
    /// The primary path, if its address could be decoded.
    pub primary: Option<PathInfo>,
}

impl AssocStatus {
    pub(crate) fn from_raw(status: sys::Status) -> Self {
        let primary = decode_sockaddr(&status.primary.address)
            .map(|(addr, _)| PathInfo::from_raw(&status.primary, addr, true));
        Self {
            state: status.state,
            peer_rwnd: status.rwnd,
            unacked_chunks: status.unackdata,
            pending_chunks: status.penddata,
            inbound_streams: status.instrms,
            outbound_streams: status.outstrms,
            fragmentation_point: status.fragmentation_point,
            primary,
        }
    }

    /// Whether the association is ESTABLISHED (not starting or shutting down).
    pub fn is_established(&self) -> bool {
        self.state == sys::SCTP_ESTABLISHED
    }
}

/// The paths and the status of an association: what the kernel reports about its
/// addresses, and the choice of the primary path.
impl SctpAssociation {
    /// The association's state, stream counts and primary path (`SCTP_STATUS`).
    ///
    /// # Errors
    ///
    /// [`Error::Aborted`] if the association is gone; [`Error::Io`] for any other
    /// failure of the system call.
    pub fn status(&self) -> Result<AssocStatus> {
        read_status(self.fd.get_ref()).map(AssocStatus::from_raw)
    }

    /// This end's addresses in the association (`sctp_getladdrs`).
    ///
    /// # Errors
    ///
    /// [`Error::Aborted`] if the association is gone; [`Error::Io`] for any other
    /// failure of the system call.
    pub fn local_addrs(&self) -> Result<Vec<SocketAddr>> {
        socket::addr_list(
            self.fd.get_ref(),
            sys::SCTP_GET_LOCAL_ADDRS,
            self.assoc_id,
            "reading local addresses",
        )
    }

    /// The peer's addresses (`sctp_getpaddrs`), one per path.
    ///
    /// # Errors
    ///
    /// [`Error::Aborted`] if the association is gone; [`Error::Io`] for any other
    /// failure of the system call.
    pub fn peer_addrs(&self) -> Result<Vec<SocketAddr>> {
        socket::addr_list(
            self.fd.get_ref(),
            sys::SCTP_GET_PEER_ADDRS,
            self.assoc_id,
            "reading peer addresses",
        )
    }

    /// State, smoothed RTT, RTO, congestion window and MTU of the path to `peer`
    /// (`SCTP_GET_PEER_ADDR_INFO`), and whether it is the primary path.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `peer` is not one of the association's peer addresses
    /// (the kernel says EINVAL), [`Error::Aborted`] if the association is gone.
    pub fn path_info(&self, peer: SocketAddr) -> Result<PathInfo> {
        let primary = self.primary_addr().ok();
        self.path_info_with(peer, primary)
    }

    fn path_info_with(&self, peer: SocketAddr, primary: Option<SocketAddr>) -> Result<PathInfo> {
        let rto = self.rto_info();
        let mut info = sys::PeerAddrInfo {
            assoc_id: self.assoc_id,
            address: socket::storage_for(&peer),
            ..sys::Pod::zeroed()
        };
        sys::read_option(
            self.fd.get_ref(),
            SOL_SCTP,
            sys::SCTP_GET_PEER_ADDR_INFO,
            &mut info,
        )
        .map_err(|e| Error::io("reading peer address info", e))?;
        let mut path = PathInfo::from_raw(&info, peer, false);
        path.primary = primary == Some(path.addr);
        if let Some(rto) = rto {
            path.state = answered_state(path.state, path.srtt, path.rto, &rto);
        }
        Ok(path)
    }

    /// The association's RTO settings (`SCTP_RTOINFO`), if they can be read.
    fn rto_info(&self) -> Option<sys::RtoInfo> {
        let mut rto = sys::RtoInfo {
            assoc_id: self.assoc_id,
            ..sys::Pod::zeroed()
        };
        sys::read_option(self.fd.get_ref(), SOL_SCTP, sys::SCTP_RTOINFO, &mut rto).ok()?;
        Some(rto)
    }

    /// [`path_info`](Self::path_info) for every peer address.
    ///
    /// # Errors
    ///
    /// As [`peer_addrs`](Self::peer_addrs) and [`path_info`](Self::path_info).
    pub fn paths(&self) -> Result<Vec<PathInfo>> {
        let primary = self.primary_addr().ok();
        self.peer_addrs()?
            .into_iter()
            .map(|addr| self.path_info_with(addr, primary))
            .collect()
    }

    /// The peer address currently used as the primary path (`SCTP_PRIMARY_ADDR`).
    ///
    /// # Errors
    ///
    /// [`Error::Aborted`] if the association is gone; [`Error::Io`] for any other
    /// failure of the system call. An address of an
    /// unknown family is [`Error::Io`] with [`std::io::ErrorKind::InvalidData`].
    pub fn primary_addr(&self) -> Result<SocketAddr> {
        let mut prim = sys::Prim {
            assoc_id: self.assoc_id,
            address: [0; 128],
        };
        sys::read_option(
            self.fd.get_ref(),
            SOL_SCTP,
            sys::SCTP_PRIMARY_ADDR,
            &mut prim,
        )
        .map_err(|e| Error::io("reading the primary address", e))?;
        decode_sockaddr(&prim.address)
            .map(|(addr, _)| addr)
            .ok_or_else(|| Error::Io {
                op: "reading the primary address",
                source: io::Error::new(io::ErrorKind::InvalidData, "unknown address family"),
            })
    }

    /// Makes the path to `peer` (one of [`peer_addrs`](Self::peer_addrs)) the
    /// primary one.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `peer` is not a peer address of the association (EINVAL),
    /// [`Error::Aborted`] if the association is gone.
    pub fn set_primary_addr(&self, peer: SocketAddr) -> Result<()> {
        let prim = sys::Prim {
            assoc_id: self.assoc_id,
            address: socket::storage_for(&peer),
        };
        sys::set_option(self.fd.get_ref(), SOL_SCTP, sys::SCTP_PRIMARY_ADDR, &prim)
            .map_err(|e| Error::io("setting the primary address", e))
    }
}

/// The state to report for a path the kernel calls `state`: an active path
/// that was never measured is unconfirmed. A path is measured once a heartbeat
/// or data sent on it was acknowledged; until then the kernel keeps its
/// smoothed RTT at 0 and its RTO at the initial value or above (backed off).
/// A measured path on a fast link also shows a smoothed RTT of 0 ms, but its
/// RTO is then the minimum, so both conditions are needed.
fn answered_state(
    state: PathState,
    srtt: Duration,
    rto: Duration,
    info: &sys::RtoInfo,
) -> PathState {
    let initial = Duration::from_millis(u64::from(info.initial));
    let min = Duration::from_millis(u64::from(info.min));
    let never_measured = srtt.is_zero() && rto >= initial && rto > min;
    if state == PathState::Active && never_measured {
        PathState::Unconfirmed
    } else {
        state
    }
}

pub(crate) fn read_status(fd: &Socket) -> Result<sys::Status> {
    let mut status: sys::Status = sys::Pod::zeroed();
    sys::read_option(fd, SOL_SCTP, sys::SCTP_STATUS, &mut status)
        .map_err(|e| Error::io("reading SCTP_STATUS", e))?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::sockaddr_storage;
    use crate::sys::Pod;

    #[test]
    fn path_info_is_decoded_from_the_kernel_struct() {
        let addr: SocketAddr = "127.0.0.2:9000".parse().unwrap();
        let mut raw: sys::PeerAddrInfo = Pod::zeroed();
        raw.address = sockaddr_storage(&addr);
        raw.state = 1;
        raw.cwnd = 4380;
        raw.srtt = 12;
        raw.rto = 300;
        raw.mtu = 65535;
        let info = PathInfo::from_raw(&raw, "1.1.1.1:1".parse().unwrap(), false);
        assert_eq!(
            info,
            PathInfo {
                addr,
                state: PathState::PotentiallyFailed,
                srtt: Duration::from_millis(12),
                rto: Duration::from_millis(300),
                cwnd: 4380,
                mtu: 65535,
                primary: false,
            }
        );
        assert_eq!(PathState::from_raw(0xffff), PathState::Unknown(0xffff));
    }

    #[test]
    fn an_active_path_that_never_answered_is_unconfirmed() {
        let info = sys::RtoInfo {
            assoc_id: 0,
            initial: 300,
            max: 1000,
            min: 100,
        };
        let ms = Duration::from_millis;
        // Never measured: RTT 0, RTO still the initial one (or backed off).
        for rto in [300, 600] {
            assert_eq!(
                answered_state(PathState::Active, ms(0), ms(rto), &info),
                PathState::Unconfirmed
            );
        }
        // Measured: an RTT, or a sub-millisecond one with the RTO at its minimum.
        assert_eq!(
            answered_state(PathState::Active, ms(12), ms(300), &info),
            PathState::Active
        );
        assert_eq!(
            answered_state(PathState::Active, ms(0), ms(100), &info),
            PathState::Active
        );
        // Other states are the kernel's.
        assert_eq!(
            answered_state(PathState::Inactive, ms(0), ms(300), &info),
            PathState::Inactive
        );
    }
}
