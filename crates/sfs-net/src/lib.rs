//! The async layer of SFS: runs the sans-IO protocol sessions of `sfs-proto` over a
//! message transport.
//!
//! ```text
//!   sfs-server / sfs client          (what to do with commands, files, users)
//!          │  Session events, commands
//!   sfs-net: Driver ─────────────────(this crate: the pump, the clock, byte counts)
//!          │  Transport: whole messages on numbered streams
//!   ┌──────┴────────────────┐
//!   sfs-sctp association    MemoryTransport (host tests)
//! ```
//!
//! A [`Transport`] carries whole messages on numbered streams: a kernel SCTP
//! association ([`sfs_sctp::SctpAssociation`]) in production, or an in-memory
//! pair ([`memory::memory_pair`]) in host tests, so that a real client session and
//! a real server session can talk without kernel SCTP. A [`Driver`] moves the
//! session's output to the transport and the transport's input to the session,
//! and fires its timer. The application owns the loop:
//!
//! ```
//! use std::sync::Arc;
//! use sfs_net::{memory::memory_pair, now, Driver, Input, Transport};
//! use sfs_proto::session::{ClientSession, SessionConfig};
//! use sfs_proto::testing::TestPki;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let pki = TestPki::new(&["localhost"]);
//! let (client_end, _server_end) = memory_pair(4);
//! let config = SessionConfig::new(client_end.streams());
//! let mut driver = Driver::new(Arc::new(client_end));
//! let name = "localhost".try_into().unwrap();
//! let mut session = ClientSession::new(pki.client_config(), name, config, now()).unwrap();
//!
//! // The pump: send what the session queued (here the TLS ClientHello, on
//! // stream 0), act on its events, then feed it the next input.
//! driver.flush(&mut session).await.unwrap();
//! while let Some(event) = session.poll_event() {
//!     println!("{event:?}");
//! }
//! # let _ = Input::Handled;
//! # }
//! ```
//!
//! `tests/memory_session.rs` shows a whole exchange: handshake, login, a request
//! and a file transfer with its digest.

pub mod driver;
pub mod memory;
mod sctp;
pub mod transport;

pub use driver::{now, Counters, Driver, Input, Receive, ReceivedChunk, Session};
pub use transport::{
    Connector, PathChange, PathEvent, PathInfo, PathState, PathStatus, PeerAddrState, Transport,
    TransportError, TransportEvent, PPID_CONTROL, PPID_DATA,
};
