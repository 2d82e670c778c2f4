//! A thin async layer over Linux kernel SCTP, for SFS.
//!
//! One [`SctpAssociation`] carries everything between an SFS client and server:
//! it is *multi-homed* (several addresses at each end, so it survives the loss of
//! one network path) and *multi-streamed* (independent ordered streams, so one slow
//! transfer does not block the others). Messages keep their boundaries, and each
//! carries a stream id and a payload protocol id (PPID).
//!
//! ```no_run
//! use std::time::Duration;
//! use sfs_sctp::{Received, SctpAssociation, SctpConfig, SctpListener};
//!
//! # async fn demo() -> Result<(), sfs_sctp::Error> {
//! let config = SctpConfig::default();
//! // The server binds two addresses (sctp_bindx); port 0 picks a free port.
//! let listener = SctpListener::bind(
//!     &["127.0.0.1:0".parse().unwrap(), "127.0.0.2:0".parse().unwrap()],
//!     &config,
//! )?;
//! let server_addrs = listener.local_addrs()?;
//!
//! // The client connects to both (sctp_connectx) and learns the stream counts.
//! let client =
//!     SctpAssociation::connect(&server_addrs, None, &config, Duration::from_secs(5)).await?;
//! let server = listener.accept().await?;
//! assert!(client.outbound_streams() > 3);
//!
//! // Whole messages with a stream id and a PPID.
//! client.send(3, 42, false, b"hello").await?;
//! loop {
//!     match server.recv().await? {
//!         Received::Message(msg) => {
//!             assert_eq!((msg.stream, msg.ppid, &msg.data[..]), (3, 42, &b"hello"[..]));
//!             break;
//!         }
//!         // COMM_UP comes first; path changes and the like arrive as they happen.
//!         Received::Notification(n) => println!("{n:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! ```text
//!  application ──send(stream, ppid, data)──▶ sendmsg + SCTP_SNDINFO ──▶ kernel SCTP
//!  application ◀──Received::Message / ::Notification── reassembly ◀── recvmsg pieces
//!                                          (+RCVINFO, MSG_EOR, MSG_NOTIFICATION)
//! ```
//!
//! # Why this crate exists (and not `sctp-rs`)
//!
//! The original plan named the `sctp-rs` crate (0.3.1). Its bindx, connectx and
//! stream ids work, but these defects were reproduced in the project's kernel-SCTP
//! VM:
//!
//! 1. received data comes back in fixed 4096-byte pieces with no `MSG_EOR`, so
//!    message boundaries are lost;
//! 2. a send that hits `WouldBlock` returns at once instead of waiting for
//!    writability, and retrying spins (about 4000 returns in 100 ms);
//! 3. a one-to-one `connectx` to a dead peer never returns;
//! 4. its `Socket` has no `Drop`, so file descriptors leak;
//! 5. with NXTINFO on, `rcvinfo` is lost whenever another message is queued, and
//!    `SO_TIMESTAMP` makes receiving loop at 100% CPU;
//! 6. no type exposes its descriptor, so missing options (RTOINFO,
//!    PEER_ADDR_PARAMS, PEER_ADDR_THLDS, PRIMARY_ADDR, GET_PEER_ADDR_INFO, NODELAY,
//!    buffers, the stream scheduler, interleaving) cannot be set;
//! 7. peer-address-change and send-failed notifications lose their payload;
//! 8. on a kernel without SCTP it reports EBADF instead of "protocol not
//!    supported".
//!
//! So SFS owns a thin layer over `socket2` (generic socket calls), `libc` (the
//! SCTP-only options and `sendmsg`/`recvmsg`) and [`tokio::io::unix::AsyncFd`],
//! the way `quinn-udp` does for UDP. Each defect above has its answer here: messages are
//! read until `MSG_EOR` with a size bound; sends and receives wait on readiness;
//! `connect` has a timeout and watches both readiness and `SO_ERROR`; sockets
//! are owned `socket2::Socket`s; only RCVINFO is requested; every option SFS needs is wrapped (and
//! [`AsRawFd`](std::os::fd::AsRawFd) is implemented for the rest); notifications
//! are parsed whole by [`parse_notification`]; and a kernel without SCTP gives
//! [`Error::SctpUnavailable`]. All `unsafe` code of the project is in the private
//! `sys` module of this crate, each block with a `SAFETY` note, and every C
//! structure layout is pinned by a test.
//!
//! # Behaviour worth knowing
//!
//! - Sockets are one-to-one style (`SOCK_STREAM`): the listener accepts one
//!   socket per association.
//! - Both sides ask for stream counts ([`SctpConfig::outbound_streams`]); the
//!   association gets the smaller offer. Read it from
//!   [`SctpAssociation::outbound_streams`]. Sending on a stream beyond it is
//!   [`Error::NoSuchStream`].
//! - [`SctpConfig::default`] tunes for fast failover and for throughput (no
//!   Nagle, short delayed SACK, 2 MiB buffers, round-robin stream scheduling); see
//!   [`FailoverTuning`]. Measured in the project's VM (kernel 6.1, two paths of
//!   10 ms RTT, primary cut mid-stream, `transport_failover.rs`): the longest
//!   delivery gap was about 1 s with the kernel defaults and 80 to 160 ms with
//!   [`SctpConfig::default`], with no message lost. Do not combine the short
//!   delayed SACK with the kernel's failover settings (`failover: None`): that
//!   mix stalled 1 to 4 s across runs.
//! - Socket buffers: the kernel caps `SO_SNDBUF`/`SO_RCVBUF` at
//!   `net.core.wmem_max`/`rmem_max` (often 208 KiB). The crate retries with the
//!   `*FORCE` options (CAP_NET_ADMIN) and logs a warning with the sysctl to raise
//!   if still capped. A message larger than the send buffer cannot be sent, so
//!   [`SctpAssociation::max_send_size`] may be below
//!   [`SctpConfig::max_message_size`]; size chunks by it.
//! - Ordering: with plain DATA chunks, the kernel's partial delivery of a large
//!   message can overtake a smaller, earlier message of the same stream (seen in
//!   the VM). Received ordered messages are therefore released by stream sequence
//!   number, so each stream's order always holds.
//! - Peer addresses are not authenticated; nothing security-related may rest on
//!   them.
//! - There is no half-close: [`SctpAssociation::shutdown`] ends sending both ways.

mod addr;
mod association;
mod cmsg;
mod config;
mod error;
mod listener;
mod notification;
mod path;
mod reassembly;
mod socket;
mod sys;

pub use association::SctpAssociation;
pub use config::{DelayedSack, FailoverTuning, SctpConfig, StreamScheduler};
pub use error::{Error, Result};
pub use listener::SctpListener;
pub use notification::{
    parse_notification, AssocChange, AssocState, Notification, ParseError, PeerAddrChange,
    PeerAddrState, SendFailed,
};
pub use path::{AssocStatus, PathInfo, PathState};
pub use reassembly::{Message, ReassemblyBudget, Received};
