//! What a session needs from the network: whole messages on numbered streams.

use std::future::Future;
use std::net::SocketAddr;

use sfs_proto::session::StreamCounts;
pub use sfs_sctp::{PathInfo, PathState, PeerAddrState};

/// The state of the path to one peer address, for `status`: the transport's
/// own path type, under the name this crate's users know.
pub type PathStatus = PathInfo;

/// How a path changed: the transport's own peer-address states, under the name
/// this crate's users know. `Unreachable` is a failed path.
pub use sfs_sctp::PeerAddrState as PathChange;

/// The payload protocol id SFS puts on stream-0 (TLS) messages. Receivers do not
/// rely on it; it labels the traffic for packet captures ("SFS" and 0).
pub const PPID_CONTROL: u32 = 0x5346_5300;
/// The payload protocol id SFS puts on data-stream records ("SFS" and 1).
pub const PPID_DATA: u32 = 0x5346_5301;

/// A message transport with SCTP's semantics: whole messages, several streams,
/// ordered within a stream.
///
/// Implemented by [`sfs_sctp::SctpAssociation`] and by the in-memory
/// [`MemoryTransport`](crate::memory::MemoryTransport) used by host tests.
pub trait Transport: Send + Sync + 'static {
    /// The stream counts negotiated, stream 0 included.
    fn streams(&self) -> StreamCounts;

    /// Sends one whole message on `stream`. Waits while the send buffer is full.
    ///
    /// # Errors
    ///
    /// [`TransportError::NoSuchStream`] if `stream` was not negotiated (the
    /// transport stays usable), [`TransportError::Closed`] once the connection
    /// is shut down, [`TransportError::Sctp`] for any other failure of the
    /// association.
    ///
    /// # Cancel safety
    ///
    /// Implementations queue the message whole or not at all: a dropped future
    /// never sends part of it, though it may have sent all of it.
    fn send(
        &self,
        stream: u16,
        data: &[u8],
    ) -> impl Future<Output = Result<(), TransportError>> + Send;

    /// Receives the next message or path event.
    ///
    /// # Errors
    ///
    /// [`TransportError::Closed`] once the peer shut down and everything it sent
    /// has been received; [`TransportError::Sctp`] if the association was aborted
    /// or failed. After an error, later calls fail too.
    ///
    /// # Cancel safety
    ///
    /// Implementations must be cancel-safe: a dropped future loses no message, so
    /// `recv` can sit in a `tokio::select!`.
    fn recv(&self) -> impl Future<Output = Result<TransportEvent, TransportError>> + Send;

    /// The paths to the peer, for `status` (empty where the transport has none).
    fn paths(&self) -> Vec<PathStatus>;

    /// The peer's addresses (empty where the transport has none).
    fn peer_addrs(&self) -> Vec<SocketAddr>;

    /// Starts a graceful shutdown: what is queued is still delivered.
    fn shutdown(&self);
}

/// Opens more associations to the peer of an existing one (same addresses,
/// same options): what a client needs for extra data associations.
pub trait Connector: Send + Sync + 'static {
    /// The transport of a new association.
    type Transport: Transport;

    /// Connects one more association.
    ///
    /// # Errors
    ///
    /// The transport's error if the association cannot be set up.
    ///
    /// # Cancel safety
    ///
    /// Cancellation-safe: a dropped future leaves no association behind (one
    /// half set up is aborted).
    fn connect(&self) -> impl Future<Output = Result<Self::Transport, TransportError>> + Send;
}

/// What [`Transport::recv`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportEvent {
    /// A whole message.
    Message {
        /// The stream it arrived on.
        stream: u16,
        /// Its bytes.
        data: Vec<u8>,
    },
    /// A path to the peer changed state (multi-homing at work).
    Path(PathEvent),
    /// Anything else the transport reports that is worth a log line.
    Notice(String),
}

/// A change of state of the path to one peer address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathEvent {
    /// The peer address, when the kernel gave one.
    pub addr: Option<SocketAddr>,
    /// What happened to it.
    pub change: PathChange,
}

impl PathEvent {
    /// The path to `addr` (if known) changed as `change` says.
    pub fn new(addr: Option<SocketAddr>, change: PathChange) -> Self {
        Self { addr, change }
    }
}

/// Why a transport cannot carry on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The peer shut the association down and everything it sent was received.
    #[error("the connection was closed")]
    Closed,
    /// A message was sent on a stream that was not negotiated.
    #[error("stream {stream} does not exist ({outbound} outbound streams)")]
    NoSuchStream {
        /// The stream asked for.
        stream: u16,
        /// The negotiated outbound count.
        outbound: u16,
    },
    /// The SCTP association failed.
    #[error(transparent)]
    Sctp(sfs_sctp::Error),
}

impl From<sfs_sctp::Error> for TransportError {
    fn from(err: sfs_sctp::Error) -> Self {
        match err {
            sfs_sctp::Error::Closed => TransportError::Closed,
            sfs_sctp::Error::NoSuchStream {
                stream,
                outbound_streams,
            } => TransportError::NoSuchStream {
                stream,
                outbound: outbound_streams,
            },
            other => TransportError::Sctp(other),
        }
    }
}
