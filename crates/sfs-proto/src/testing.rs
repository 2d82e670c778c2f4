// Over 600 lines: the test PKI, the faulty link and the pair driver (with its extra associations) belong together.
//! Test helpers for this crate and the crates built on it (feature `testing`):
//! a generated PKI, an in-memory transport with SCTP's message semantics and
//! fault injection, and a driver that runs a client and a server session over it.
//!
//! ```
//! use sfs_proto::testing::{Pair, TestPki};
//! use sfs_proto::control::Command;
//!
//! let pki = TestPki::new(&["localhost"]);
//! let mut pair = Pair::new(&pki, "localhost", 4);
//! pair.drive();
//! assert!(pair.client.is_connected() && pair.server.is_connected());
//! pair.login("alice");
//! let id = pair.client.send_command(Command::Pwd).unwrap();
//! pair.drive();
//! assert!(pair.server_requests().iter().any(|(r, c)| *r == id && *c == Command::Pwd));
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::ServerName;

use crate::bind::BindError;
use crate::control::{Command, Reply, RequestId, TransferId};
use crate::session::{ClientSession, Event, ServerSession, SessionConfig, StreamCounts, Transmit};

/// A throwaway CA and a server certificate signed by it.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The server's certificate chain (leaf only), PEM.
    pub chain_pem: String,
    /// The server's private key, PEM.
    pub key_pem: String,
}

impl TestPki {
    /// A CA and a server certificate valid now, with `names` (DNS names or IP
    /// addresses) as SANs.
    pub fn new(names: &[&str]) -> Self {
        Self::build(names, false)
    }

    /// Like [`TestPki::new`], but the server certificate expired years ago.
    pub fn expired(names: &[&str]) -> Self {
        Self::build(names, true)
    }

    fn build(names: &[&str], expired: bool) -> Self {
        let ca_key = KeyPair::generate().expect("key generation");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "SFS test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().expect("key generation");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "SFS test server");
        if expired {
            params.not_before = rcgen::date_time_ymd(2001, 1, 1);
            params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        }
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        Self {
            ca_pem: ca_cert.pem(),
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A client configuration trusting this CA.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        crate::tls::client_config(self.ca_pem.as_bytes()).expect("client config")
    }

    /// The server configuration.
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        crate::tls::server_config(self.chain_pem.as_bytes(), self.key_pem.as_bytes())
            .expect("server config")
    }
}

/// One end of a [`MemLink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The client end.
    Client,
    /// The server end.
    Server,
}

/// A fault to apply to the next message matching `end` (the sender) and `stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Lose the message.
    Drop {
        /// The sending end.
        from: End,
        /// The stream.
        stream: u16,
    },
    /// Deliver the message twice.
    Duplicate {
        /// The sending end.
        from: End,
        /// The stream.
        stream: u16,
    },
    /// Flip one bit of the message (`bit` counts from the first byte's MSB;
    /// taken modulo the message's bit length).
    Corrupt {
        /// The sending end.
        from: End,
        /// The stream.
        stream: u16,
        /// Which bit.
        bit: usize,
    },
    /// Swap the message with the next one on the same stream (reorder within a
    /// stream, which SCTP never does: the protocol must detect it).
    SwapWithNext {
        /// The sending end.
        from: End,
        /// The stream.
        stream: u16,
    },
}

impl Fault {
    fn matches(&self, from: End, stream: u16) -> bool {
        let (f, s) = match *self {
            Self::Drop { from, stream }
            | Self::Duplicate { from, stream }
            | Self::Corrupt { from, stream, .. }
            | Self::SwapWithNext { from, stream } => (from, stream),
        };
        f == from && s == stream
    }
}

/// Why the link refused a message, as SCTP would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The stream is not negotiated (SCTP: `EINVAL`).
    #[error("stream {0} not negotiated")]
    BadStream(u16),
    /// The message is larger than the link accepts (SCTP: `EMSGSIZE`).
    #[error("message of {0} bytes too large")]
    TooLarge(usize),
    /// An empty message (SCTP cannot send one).
    #[error("empty message")]
    Empty,
}

/// An in-memory association: whole messages, stream ids, per-stream order, a fixed
/// number of streams per direction, and optional faults. Delivery across streams
/// is interleaved pseudo-randomly (seeded) when `shuffle_streams` is on, as SCTP
/// does not order streams against each other.
#[derive(Debug)]
pub struct MemLink {
    streams: u16,
    max_message: usize,
    to_server: VecDeque<(u16, Vec<u8>)>,
    to_client: VecDeque<(u16, Vec<u8>)>,
    faults: Vec<(Fault, usize)>,
    swap_pending: Option<(End, u16, Vec<u8>)>,
    /// Interleave streams pseudo-randomly on delivery.
    pub shuffle_streams: bool,
    rng: u64,
    /// Messages delivered so far, for tests to assert on.
    pub delivered: usize,
}

impl MemLink {
    /// A link with `streams` streams each way (stream 0 included).
    pub fn new(streams: u16) -> Self {
        Self {
            streams,
            max_message: 256 * 1024,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            faults: Vec::new(),
            swap_pending: None,
            shuffle_streams: false,
            rng: 0x9e37_79b9_7f4a_7c15,
            delivered: 0,
        }
    }

    /// Seeds the stream interleaving.
    pub fn seed(&mut self, seed: u64) {
        self.rng = seed | 1;
    }

    /// Adds a fault; each fires once, on the first matching message.
    pub fn inject(&mut self, fault: Fault) {
        self.faults.push((fault, 0));
    }

    /// Adds a fault that lets `skip` matching messages pass, then fires once.
    pub fn inject_after(&mut self, fault: Fault, skip: usize) {
        self.faults.push((fault, skip));
    }

    fn queue(&mut self, to: End) -> &mut VecDeque<(u16, Vec<u8>)> {
        match to {
            End::Client => &mut self.to_client,
            End::Server => &mut self.to_server,
        }
    }

    /// Sends a whole message from `from` on `stream`.
    ///
    /// # Errors
    ///
    /// [`LinkError`] for a stream the link does not have, an empty message, or one
    /// larger than the link accepts.
    pub fn send(&mut self, from: End, stream: u16, mut bytes: Vec<u8>) -> Result<(), LinkError> {
        if stream >= self.streams {
            return Err(LinkError::BadStream(stream));
        }
        if bytes.len() > self.max_message {
            return Err(LinkError::TooLarge(bytes.len()));
        }
        if bytes.is_empty() {
            return Err(LinkError::Empty);
        }
        let to = match from {
            End::Client => End::Server,
            End::Server => End::Client,
        };
        if let Some((swap_from, swap_stream, held)) = self.swap_pending.take() {
            if swap_from == from && swap_stream == stream {
                self.queue(to).push_back((stream, bytes));
                self.queue(to).push_back((stream, held));
                return Ok(());
            }
            self.swap_pending = Some((swap_from, swap_stream, held));
        }
        let mut fire = None;
        for (i, (fault, skip)) in self.faults.iter_mut().enumerate() {
            if fault.matches(from, stream) {
                if *skip == 0 {
                    fire = fire.or(Some(i));
                } else {
                    *skip -= 1;
                }
            }
        }
        if let Some(i) = fire {
            match self.faults.remove(i).0 {
                Fault::Drop { .. } => return Ok(()),
                Fault::Duplicate { .. } => self.queue(to).push_back((stream, bytes.clone())),
                Fault::Corrupt { bit, .. } => {
                    let bit = bit % (bytes.len() * 8);
                    bytes[bit / 8] ^= 0x80 >> (bit % 8);
                }
                Fault::SwapWithNext { .. } => {
                    self.swap_pending = Some((from, stream, bytes));
                    return Ok(());
                }
            }
        }
        self.queue(to).push_back((stream, bytes));
        Ok(())
    }

    fn next_random(&mut self) -> u64 {
        // xorshift64: deterministic, good enough to interleave streams.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// The next message for `to`, keeping each stream in order.
    pub fn recv(&mut self, to: End) -> Option<(u16, Vec<u8>)> {
        let shuffle = self.shuffle_streams;
        let pick = if shuffle { self.next_random() } else { 0 };
        let queue = self.queue(to);
        if queue.is_empty() {
            return None;
        }
        let index = if shuffle {
            // Pick a random stream among those queued, then its oldest message.
            let stream = queue[(pick % queue.len() as u64) as usize].0;
            queue.iter().position(|(s, _)| *s == stream).unwrap_or(0)
        } else {
            0
        };
        let message = queue.remove(index);
        if message.is_some() {
            self.delivered += 1;
        }
        message
    }

    /// True when nothing is in flight.
    pub fn is_idle(&self) -> bool {
        self.to_client.is_empty() && self.to_server.is_empty()
    }
}

/// A client and a server session joined by a [`MemLink`], with a manual clock.
#[derive(Debug)]
pub struct Pair {
    /// The client session.
    pub client: ClientSession,
    /// The server session.
    pub server: ServerSession,
    /// The link between them.
    pub link: MemLink,
    /// The simulated time.
    pub now: Instant,
    /// Events polled from the client by `drive`.
    pub client_events: Vec<Event>,
    /// Events polled from the server by `drive`.
    pub server_events: Vec<Event>,
    /// Chunks the client received: (transfer, offset, data).
    pub client_chunks: Vec<(TransferId, u64, Vec<u8>)>,
    /// Chunks the server received: (transfer, offset, data).
    pub server_chunks: Vec<(TransferId, u64, Vec<u8>)>,
    /// The links of the extra data associations, by index. A transmit for an
    /// association without a link is dropped.
    pub extra: BTreeMap<u8, MemLink>,
    /// Transmits sent on each association, by index (to see the lanes used).
    pub sent_on: BTreeMap<u8, usize>,
}

impl Pair {
    /// Sessions with `streams` streams each way, the client checking `server_name`.
    pub fn new(pki: &TestPki, server_name: &str, streams: u16) -> Self {
        Self::with_configs(
            pki.client_config(),
            pki.server_config(),
            server_name,
            SessionConfig::new(StreamCounts {
                outbound: streams,
                inbound: streams,
            }),
        )
    }

    /// Sessions from explicit configurations.
    pub fn with_configs(
        client_tls: Arc<rustls::ClientConfig>,
        server_tls: Arc<rustls::ServerConfig>,
        server_name: &str,
        config: SessionConfig,
    ) -> Self {
        let now = Instant::now();
        let name = ServerName::try_from(server_name.to_owned()).expect("valid server name");
        let streams = config.streams.outbound.max(config.streams.inbound);
        Self {
            client: ClientSession::new(client_tls, name, config.clone(), now)
                .expect("client session"),
            server: ServerSession::new(server_tls, config, now).expect("server session"),
            link: MemLink::new(streams),
            now,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_chunks: Vec::new(),
            server_chunks: Vec::new(),
            extra: BTreeMap::new(),
            sent_on: BTreeMap::new(),
        }
    }

    /// Puts one transmit from `from` on the link of its association.
    pub fn send_transmit(&mut self, from: End, t: Transmit) {
        *self.sent_on.entry(t.association).or_default() += 1;
        let link = if t.association == 0 {
            Some(&mut self.link)
        } else {
            self.extra.get_mut(&t.association)
        };
        if let Some(link) = link {
            let _ = link.send(from, t.stream, t.bytes);
        }
    }

    /// Delivers one message to each side from each link; true if any moved.
    fn deliver(&mut self) -> bool {
        let mut progress = false;
        let indices: Vec<u8> = std::iter::once(0)
            .chain(self.extra.keys().copied())
            .collect();
        for index in indices {
            for to in [End::Server, End::Client] {
                let link = if index == 0 {
                    &mut self.link
                } else {
                    match self.extra.get_mut(&index) {
                        Some(link) => link,
                        None => continue,
                    }
                };
                let Some((stream, mut bytes)) = link.recv(to) else {
                    continue;
                };
                progress = true;
                let (session_chunk, chunks) = match to {
                    End::Server => (
                        self.server
                            .handle_message_on(index, stream, &mut bytes, self.now),
                        &mut self.server_chunks,
                    ),
                    End::Client => (
                        self.client
                            .handle_message_on(index, stream, &mut bytes, self.now),
                        &mut self.client_chunks,
                    ),
                };
                if let Some(chunk) = session_chunk {
                    chunks.push((chunk.transfer, chunk.offset, chunk.data.to_vec()));
                }
            }
        }
        progress
    }

    /// Binds one extra data association the way a client and server do (ASSOC,
    /// AssocTicket, BIND checked by the server) and gives it a link of `streams`
    /// streams each way. Returns its index.
    ///
    /// # Errors
    ///
    /// The server's [`BindError`]; the client was told (the association is
    /// lost before it was attached).
    ///
    /// # Panics
    ///
    /// If ASSOC is not answered with a ticket (a test helper: the test fails).
    pub fn bind_association(&mut self, streams: u16) -> Result<u8, BindError> {
        let (index, ticket) = self.request_ticket();
        let counts = StreamCounts {
            outbound: streams,
            inbound: streams,
        };
        let bind = self
            .client
            .bind_association(index, ticket, counts)
            .expect("client binds");
        match self.server.verify_bind(&bind, counts, self.now) {
            Ok(index) => {
                self.extra.insert(index, MemLink::new(streams));
                self.drive();
                Ok(index)
            }
            Err(error) => {
                self.client.handle_association_lost(index);
                self.drive();
                Err(error)
            }
        }
    }

    /// Sends ASSOC and has the server grant it with a ticket made from a
    /// counter; returns the index and the ticket the client received.
    ///
    /// # Panics
    ///
    /// If the server refuses (a test helper: the test fails).
    pub fn request_ticket(&mut self) -> (u8, [u8; 16]) {
        let id = self
            .client
            .send_command(Command::Assoc)
            .expect("send ASSOC");
        self.drive();
        let ticket = [self.sent_on.values().sum::<usize>() as u8; 16];
        let index = self
            .server
            .grant_association(id, ticket, self.now)
            .expect("ASSOC granted");
        self.drive();
        let received = self.client_events.iter().find_map(|e| match e {
            Event::Response {
                id: i,
                reply: Reply::AssocTicket { index, ticket },
            } if *i == id => Some((*index, *ticket)),
            _ => None,
        });
        assert_eq!(received, Some((index, ticket)), "{:?}", self.client_events);
        (index, ticket)
    }

    /// Association `index` fails: its link goes, and both sides are told.
    pub fn lose_association(&mut self, index: u8) {
        self.extra.remove(&index);
        self.client.handle_association_lost(index);
        self.server.handle_association_lost(index);
        self.drive();
    }

    /// Moves every pending transmit onto the link and delivers everything, until
    /// both sides are quiet. Events are collected into `*_events`.
    pub fn drive(&mut self) {
        for _ in 0..100_000 {
            let mut progress = false;
            while let Some(t) = self.client.poll_transmit() {
                self.send_transmit(End::Client, t);
                progress = true;
            }
            while let Some(t) = self.server.poll_transmit() {
                self.send_transmit(End::Server, t);
                progress = true;
            }
            progress |= self.deliver();
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            while let Some(e) = self.server.poll_event() {
                self.server_events.push(e);
            }
            if !progress {
                return;
            }
        }
        panic!("the pair did not settle");
    }

    /// Advances the clock and fires due timers.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        self.drive();
    }

    /// Logs the client in as `user` (the server accepts any password).
    pub fn login(&mut self, user: &str) {
        let id = self
            .client
            .send_command(Command::Login {
                user: user.into(),
                password: "pw".into(),
            })
            .expect("send login");
        self.drive();
        let requested = self
            .server_events
            .iter()
            .any(|e| matches!(e, Event::LoginRequested { id: i, .. } if *i == id));
        assert!(
            requested,
            "server saw no login request: {:?}",
            self.server_events
        );
        self.server.accept_login(id).expect("accept login");
        self.drive();
    }

    /// The commands the server was asked, in order.
    pub fn server_requests(&self) -> Vec<(RequestId, Command)> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                Event::Request { id, command } => Some((*id, command.clone())),
                _ => None,
            })
            .collect()
    }

    /// Sends `data` as outgoing `transfer` from `from`, chunk by chunk, as fast as
    /// credit allows, driving the pair in between. Returns when done or stuck.
    pub fn send_file(&mut self, from: End, transfer: TransferId, data: &[u8], chunk: usize) {
        loop {
            let (allowance, offset) = match from {
                End::Client => (
                    self.client.chunk_allowance(transfer),
                    self.client.next_chunk_offset(transfer),
                ),
                End::Server => (
                    self.server.chunk_allowance(transfer),
                    self.server.next_chunk_offset(transfer),
                ),
            };
            let Some(offset) = offset else { break };
            if allowance == 0 {
                let before = self.link.delivered;
                self.drive();
                if self.link.delivered == before {
                    break;
                }
                continue;
            }
            let start = offset as usize;
            let n = allowance.min(chunk).min(data.len() - start);
            let mut buf = crate::record::chunk_buffer(n);
            buf.extend_from_slice(&data[start..start + n]);
            let sent = match from {
                End::Client => self.client.send_chunk(transfer, buf),
                End::Server => self.server.send_chunk(transfer, buf),
            };
            let Ok(t) = sent else { break };
            self.send_transmit(from, t);
        }
        self.drive();
    }
}
