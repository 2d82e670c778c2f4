//! The SFS protocol core, sans-IO: no sockets, no tokio, no clock reads.
//!
//! A [`Session`](session::Session), used as [`ClientSession`](session::ClientSession)
//! or [`ServerSession`](session::ServerSession), is a state machine fed with whole
//! SCTP messages and their stream ids, and with timeouts; it hands back messages
//! to send, events, and the next deadline. The embedding program owns the
//! sockets, the files and the clock, and must deliver `handle_timeout(now)` when
//! `poll_timeout()` says so even while nothing arrives from the network (the
//! [`session`] module docs give the full contract).
//!
//! ```text
//!            stream 0: TLS 1.3 (rustls) ── control frames (control::Message)
//!  SCTP ───┤
//!            streams 1..n: records sealed with keys exported from that TLS session
//!                          (record::Sealer / record::Opener), carrying file chunks
//!
//!  transport ──handle_message(stream, bytes, now)──►  session  ──poll_transmit()──► transport
//!  clock     ──handle_timeout(now)─────────────────►          ──poll_timeout()───► clock
//!  app       ──send_command / respond / send_chunk─►          ──poll_event()─────► app
//! ```
//!
//! # A session in a few lines
//!
//! ```
//! use std::time::Instant;
//! use sfs_proto::control::{Command, Reply};
//! use sfs_proto::session::{ClientSession, Event, ServerSession, SessionConfig, StreamCounts};
//!
//! // Certificates come from files in real use (tls::client_config(ca_pem), ...).
//! let pki = sfs_proto::testing::TestPki::new(&["localhost"]);
//! let now = Instant::now();
//! // Read the stream counts from the association once it is up.
//! let config = SessionConfig::new(StreamCounts { outbound: 4, inbound: 4 });
//! let name = "localhost".try_into().unwrap();
//! let mut client = ClientSession::new(pki.client_config(), name, config.clone(), now).unwrap();
//! let mut server = ServerSession::new(pki.server_config(), config, now).unwrap();
//!
//! // Commands may be queued before the handshake completes.
//! let login = client
//!     .send_command(Command::Login { user: "alice".into(), password: "pw".into() })
//!     .unwrap();
//!
//! // What a transport does: move every transmit to the other side.
//! fn pump(c: &mut ClientSession, s: &mut ServerSession, now: Instant) {
//!     loop {
//!         let mut moved = false;
//!         while let Some(mut t) = c.poll_transmit() {
//!             s.handle_message(t.stream, &mut t.bytes, now);
//!             moved = true;
//!         }
//!         while let Some(mut t) = s.poll_transmit() {
//!             c.handle_message(t.stream, &mut t.bytes, now);
//!             moved = true;
//!         }
//!         if !moved {
//!             return;
//!         }
//!     }
//! }
//! pump(&mut client, &mut server, now);
//!
//! // The server learns of the login; checking the password is the embedder's job.
//! assert_eq!(server.poll_event(), Some(Event::Connected));
//! match server.poll_event() {
//!     Some(Event::LoginRequested { id, user, .. }) => {
//!         assert_eq!(user, "alice");
//!         server.accept_login(id).unwrap();
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! pump(&mut client, &mut server, now);
//! assert_eq!(client.poll_event(), Some(Event::Connected));
//! // The login's answer carries the limits the server enforces.
//! assert!(matches!(
//!     client.poll_event(),
//!     Some(Event::Response { id, reply: Reply::Limits { .. } }) if id == login
//! ));
//! ```
//!
//! # Modules
//!
//! - [`bind`]: binding extra data associations to a session (`BIND`, `BIND_ACK`).
//! - [`control`]: the control messages and their framing (a hand-written codec;
//!   the module docs say why). Each command is one entry of a declarative table.
//! - [`record`]: the exporter-keyed AES-256-GCM records of the data streams.
//! - [`tls`]: rustls configuration and the driver over stream-0 messages.
//! - [`transfer`]: per-transfer bookkeeping (credit, offsets, digest), reusable
//!   on its own.
//! - [`session`]: the state machine, generic over its side ([`session::Client`]
//!   or [`session::Server`]), and its contract with the embedder.
//! - `testing` (feature `testing`): a test PKI, an in-memory SCTP-like link with
//!   fault injection, and a driver for a client/server pair.
//!
//! The wire format, limits, key schedule and checks are specified in
//! `docs/PROTOCOL.md`.

pub mod bind;
pub mod codec;
pub mod control;
pub mod digest;
pub mod record;
pub mod report;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod tls;
pub mod transfer;
