//! The session state machine, in the style of quinn-proto: one generic
//! [`Session<S>`](Session) whose side, [`Client`] or [`Server`], adds what only
//! that side does (sending commands; answering them).
//!
//! # The contract with the embedder
//!
//! A session never reads a socket or a clock. The embedding program moves bytes
//! and time in and out of it:
//!
//! **Inputs** (`handle_*`, each taking `now` where time matters):
//! - [`handle_message(stream, bytes, now)`](Session::handle_message): one whole
//!   SCTP message received on `stream`. Stream 0 carries TLS; a data stream one
//!   record. It may return a [`Chunk`] of file data to write before anything else.
//! - [`handle_timeout(now)`](Session::handle_timeout): the deadline that
//!   [`poll_timeout`](Session::poll_timeout) gave has passed. A timeout is an input
//!   of its own: deliver it when the deadline comes **whether or not anything is
//!   being read from the network**, or a silent peer keeps the session alive
//!   forever.
//! - [`handle_transport_closed()`](Session::handle_transport_closed): the
//!   association is gone.
//! - With extra data associations (see [`crate::bind`]):
//!   [`handle_message_on(association, stream, bytes, now)`](Session::handle_message_on)
//!   for a message of association 1..=15, and
//!   [`handle_association_lost(index)`](Session::handle_association_lost) when
//!   one fails or closes. Bind them with `grant_association` and `verify_bind`
//!   (server) or `bind_association` (client).
//!
//! **Commands** from the application: `send_command` (client), `accept_login`,
//! `reject_login`, `respond`, `open_transfer` (server), and on both sides
//! `send_chunk`, `abort_transfer`, `close`.
//!
//! **Outputs**, to drain after every input and every command, in this order:
//! 1. [`poll_transmit`](Session::poll_transmit) until `None`: send each
//!    [`Transmit`] as one SCTP message on its stream of its association, in the
//!    order given (records are sealed when handed out, so this order is each
//!    stream's sequence).
//! 2. [`poll_event`](Session::poll_event) until `None`: act on each [`Event`];
//!    acting may queue more transmits, so go back to 1.
//! 3. [`poll_timeout`](Session::poll_timeout): arm one timer for the returned
//!    instant (replacing the previous one); `None` means no timer.
//!
//! # States
//!
//! ```text
//!            new()                     handshake done              login accepted (server)
//!  ───────► Handshaking ────────────► Open, logged out ──────────► Open, logged in
//!              │                          │   ▲  │ LOGIN: held until accepted/rejected
//!              │ TLS error, timeout       │   └──┘ other commands: NOT_LOGGED_IN
//!              ▼                          ▼
//!            Closed ◄──── Close message, close(), QUIT, protocol violation,
//!                         record failure, timeout, transport lost
//! ```
//!
//! Once `Closed`, a session ignores input and refuses commands; every open
//! transfer died with it. `Event::Closed` is emitted exactly once.
//!
//! # Layout
//!
//! This file holds the public types and the methods both sides share;
//! `control.rs` the TLS framing of control messages, `records.rs` the data
//! records, `assoc.rs` the extra data associations, `transfers.rs` the transfer registry, `timers.rs` the timers, and
//! `client.rs`/`server.rs` the side-specific parts.

mod assoc;
mod client;
mod control;
mod records;
mod server;
mod timers;
mod transfers;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

pub use client::Client;
pub use server::Server;

use crate::codec::EncodeError;
use crate::control::{
    Command, ErrorCode, Expects, FrameDecoder, Message, Reply, RequestId, TransferEnd, TransferId,
};
use crate::record::{Direction, Opener, RecordError, RecordSecret, Sealer};
use crate::tls::{TlsDriver, TlsError};
use crate::transfer::{IncomingTransfer, Lane, OutgoingTransfer, DEFAULT_WINDOW};

/// The client's session with the server.
pub type ClientSession = Session<Client>;
/// The server's session with one client.
pub type ServerSession = Session<Server>;

/// How many streams the association negotiated, stream 0 included. Read them from
/// the transport after it connected; never assume them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCounts {
    /// Streams this side may send on.
    pub outbound: u16,
    /// Streams the peer may send on.
    pub inbound: u16,
}

/// Settings of one session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The negotiated stream counts.
    pub streams: StreamCounts,
    /// Bytes a receiver buffers ahead of a gap per transfer, and so the credit it
    /// grants beyond what it has hashed.
    pub transfer_window: u64,
    /// Credit granted across all incoming transfers at once, beyond what each
    /// has consumed: the connection-wide window, as HTTP/2 keeps one on top of
    /// its per-stream windows. A receiver never holds more unconsumed transfer
    /// data than this, so a buffer of this size can never fill with chunks
    /// waiting for a gap. At least one chunk (`MIN_WINDOW`).
    pub connection_window: u64,
    /// Abort a transfer that makes no progress for this long while it waits on
    /// the peer (`TIMED_OUT`, on both sides). A sender waits twice as long for
    /// credit, so the receiver's verdict normally arrives first. `None` disables it.
    pub transfer_stall_timeout: Option<Duration>,
    /// Transfers open at once in this session.
    pub max_transfers: usize,
    /// Requests in flight at once (the server answers BUSY beyond it).
    pub max_pending_requests: usize,
    /// Client: time to complete the handshake. Server: time to complete the
    /// handshake *and* log in (the pre-auth grace period).
    pub handshake_timeout: Duration,
    /// Close after this long without application messages, when nothing is in
    /// flight. `None` disables it.
    pub idle_timeout: Option<Duration>,
    /// Data records sealed under one key before the next key takes over
    /// ([`RECORDS_PER_KEY`](crate::record::RECORDS_PER_KEY) by default, also the
    /// most allowed). Not negotiated: both peers must use the same value, or the
    /// first record after a key update fails to open. Tests lower it to a few
    /// records to exercise key updates.
    pub records_per_key: u64,
    /// Associations this session may have, the first one included (1: no extra
    /// data associations; at most [`MAX_ASSOCIATIONS`](crate::bind::MAX_ASSOCIATIONS)).
    /// The server announces it in `Limits` and refuses `ASSOC` beyond it.
    pub max_associations: u8,
}

impl SessionConfig {
    /// Defaults for the given stream counts.
    pub fn new(streams: StreamCounts) -> Self {
        Self {
            streams,
            transfer_window: DEFAULT_WINDOW,
            connection_window: 4 * DEFAULT_WINDOW,
            transfer_stall_timeout: Some(Duration::from_secs(60)),
            max_transfers: 16,
            max_pending_requests: 64,
            handshake_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(600)),
            records_per_key: crate::record::RECORDS_PER_KEY,
            max_associations: 1,
        }
    }
}

/// One message to send: on stream 0 a piece of the TLS byte stream, elsewhere one
/// sealed record. Send it as one whole SCTP message on `stream` of association
/// `association`, in the order `poll_transmit` returned it (the order matters
/// within each (association, stream) only).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Transmit {
    /// The association: 0 is the first one (TLS and control), 1.. the extra
    /// data associations bound to the session.
    pub association: u8,
    /// The SCTP stream id.
    pub stream: u16,
    /// The message.
    pub bytes: Vec<u8>,
}

/// File data received and checked: write `data` at `offset` of the transfer's
/// temporary file before polling events. It is final only once
/// `Event::TransferFinished` arrives.
#[derive(Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Chunk<'a> {
    /// The transfer.
    pub transfer: TransferId,
    /// The file offset.
    pub offset: u64,
    /// The bytes, inside the buffer given to `handle_message`.
    pub data: &'a [u8],
}

/// Who caused something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// This side (the application, or this library on a peer's fault).
    Local,
    /// The peer.
    Remote,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CloseReason {
    /// Who closed.
    pub by: Initiator,
    /// The code sent or received.
    pub code: ErrorCode,
    /// Text for logs.
    pub reason: String,
    /// The TLS error, when TLS failed (a refused certificate, an alert).
    pub tls: Option<TlsError>,
}

/// Something the application must know or act on.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The TLS handshake completed and the data-stream keys are ready.
    Connected,
    /// Server: a client asks to log in (or to register and log in). Answer with
    /// `accept_login` or `reject_login`; other commands wait until then.
    LoginRequested {
        /// Answer with this id.
        id: RequestId,
        /// The user name as sent (check it against the allow-list).
        user: String,
        /// The password as sent. Never log it.
        password: String,
        /// True for registration.
        register: bool,
    },
    /// Server: a command from a logged-in client. Answer with `respond`, or
    /// with `open_transfer` for RETR and STOR.
    Request {
        /// Answer with this id.
        id: RequestId,
        /// The command.
        command: Command,
    },
    /// Client: the answer (or one part of it) to a request.
    Response {
        /// The request answered.
        id: RequestId,
        /// The answer.
        reply: Reply,
    },
    /// Sender: the transfer may send more now (`chunk_allowance` is non-zero).
    CreditAvailable {
        /// The transfer.
        transfer: TransferId,
    },
    /// Sender: every chunk and the `End` records are queued; the transfer is
    /// done on this side.
    TransferSent {
        /// The transfer.
        transfer: TransferId,
        /// The SHA-256 sent in its End records: of the bytes sent, in offset
        /// order, continuing the prefix state of a resumed transfer (so of the
        /// whole file from byte 0).
        sha256: [u8; 32],
    },
    /// Receiver: all bytes arrived, in full, with the sender's SHA-256.
    TransferFinished {
        /// The transfer.
        transfer: TransferId,
        /// Bytes received.
        length: u64,
        /// Their SHA-256.
        sha256: [u8; 32],
    },
    /// A transfer ended without success: aborted by either side, or it failed its
    /// length or digest check. Discard what was written.
    TransferFailed {
        /// The transfer.
        transfer: TransferId,
        /// Who ended it.
        by: Initiator,
        /// Why.
        code: ErrorCode,
        /// Text for the user.
        reason: String,
    },
    /// The session ended; nothing more will happen. Emitted once.
    Closed(CloseReason),
}

/// A misuse of the API by the application (not a fault of the peer).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The session is closed.
    #[error("session closed")]
    Closed,
    /// The handshake has not completed yet.
    #[error("not connected yet")]
    NotConnected,
    /// No such request is waiting for an answer.
    #[error("unknown request {0:?}")]
    UnknownRequest(RequestId),
    /// The operation does not fit this request (e.g. a transfer for LIST, or a
    /// `TransferOpen` through `respond`).
    #[error("operation does not fit request {0:?}")]
    WrongRequest(RequestId),
    /// No such transfer is open in the needed direction.
    #[error("unknown transfer {0:?}")]
    UnknownTransfer(TransferId),
    /// The limit on open transfers is reached.
    #[error("too many open transfers")]
    TooManyTransfers,
    /// The limit on requests in flight is reached.
    #[error("too many requests in flight")]
    TooManyRequests,
    /// No data stream was negotiated in the needed direction.
    #[error("no data streams available")]
    NoDataStreams,
    /// Chunk data is empty or larger than `chunk_allowance` allows.
    #[error("chunk of {len} bytes, allowance {allowance}")]
    ChunkNotAllowed {
        /// The chunk's data length.
        len: usize,
        /// What was allowed.
        allowance: usize,
    },
    /// A buffer without [`CHUNK_PREFIX_LEN`](crate::record::CHUNK_PREFIX_LEN) bytes of room.
    #[error("chunk buffer lacks header room")]
    BadBuffer,
    /// A value breaks a wire limit.
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// No more associations allowed (`SessionConfig::max_associations`), or
    /// no free association index.
    #[error("too many associations")]
    TooManyAssociations,
    /// The association index is out of range, unbound, or already in use.
    #[error("bad association index {0}")]
    BadAssociation(u8),
    /// The record layer refused to seal (sequence space used up); the session was closed.
    #[error("record layer: {0}")]
    Record(#[from] RecordError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Open,
    Closed,
}

mod sealed {
    pub trait Sealed {}
}

/// One side of a session: [`Client`] or [`Server`]. Sealed; it carries the
/// side's own state and the hooks the shared code calls.
pub trait Side: sealed::Sealed + fmt::Debug + Sized {
    /// The direction this side sends in (it picks the record keys).
    #[doc(hidden)]
    const DIRECTION: Direction;

    /// Called before a data record is opened; false drops it (and may close the
    /// session).
    #[doc(hidden)]
    fn data_allowed(session: &mut Session<Self>) -> bool;

    /// Handles a control message that is not common to both sides.
    #[doc(hidden)]
    fn handle_message(session: &mut Session<Self>, message: Message);
}

/// A session: TLS on stream 0, control messages, data records, transfers and
/// timers, with `S` adding what one side does. Use the aliases
/// [`ClientSession`] and [`ServerSession`]; the module docs give the contract.
pub struct Session<S: Side> {
    side: S,
    config: SessionConfig,
    tls: TlsDriver,
    plaintext: Vec<u8>,
    frames: FrameDecoder,
    secret: Option<RecordSecret>,
    sealers: HashMap<Lane, Sealer>,
    openers: HashMap<Lane, Opener>,
    /// The extra data associations: bound, retiring, tickets, detaches.
    assoc: assoc::Associations,
    outgoing: HashMap<TransferId, OutgoingTransfer>,
    incoming: HashMap<TransferId, IncomingTransfer>,
    /// Every transfer id below this was seen; records and messages for those no
    /// longer open are late, not forged (they authenticated), and are dropped.
    transfers_seen_below: u32,
    /// Requests in flight, with what each expects in answer.
    pending: HashMap<RequestId, Expects>,
    /// End records owed, sealed only when `poll_transmit` hands them out: a
    /// record's sequence number must follow the order in which the application
    /// sends, and chunks it seals in between go out first.
    ends_out: VecDeque<(Lane, TransferEnd)>,
    events: VecDeque<Event>,
    state: State,
    handshake_deadline: Option<Instant>,
    last_activity: Instant,
    /// The latest time an input gave: the clock for marks made by commands.
    clock: Instant,
    /// When each open transfer last made progress (the stall timer).
    progress: HashMap<TransferId, Instant>,
}

impl<S: Side> fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("side", &self.side)
            .field("state", &self.state)
            .field("pending", &self.pending.len())
            .field("transfers", &self.open_transfers())
            .finish_non_exhaustive()
    }
}

impl<S: Side> Session<S> {
    fn with_side(side: S, config: SessionConfig, tls: TlsDriver, now: Instant) -> Self {
        Self {
            side,
            handshake_deadline: Some(now.checked_add(config.handshake_timeout).unwrap_or(now)),
            config,
            tls,
            plaintext: Vec::new(),
            frames: FrameDecoder::new(),
            secret: None,
            sealers: HashMap::new(),
            openers: HashMap::new(),
            assoc: assoc::Associations::default(),
            outgoing: HashMap::new(),
            incoming: HashMap::new(),
            transfers_seen_below: 0,
            pending: HashMap::new(),
            ends_out: VecDeque::new(),
            events: VecDeque::new(),
            state: State::Handshaking,
            last_activity: now,
            clock: now,
            progress: HashMap::new(),
        }
    }

    fn peer_direction(&self) -> Direction {
        match S::DIRECTION {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }

    fn check_open(&self) -> Result<(), ApiError> {
        match self.state {
            State::Open => Ok(()),
            State::Handshaking => Err(ApiError::NotConnected),
            State::Closed => Err(ApiError::Closed),
        }
    }

    /// Feeds one received message. Stream 0 carries TLS; any other stream one
    /// record. A returned [`Chunk`] is file data to write at its offset;
    /// everything else comes out as events. Errors of the peer close the session
    /// (see `poll_event`).
    pub fn handle_message<'a>(
        &mut self,
        stream: u16,
        msg: &'a mut [u8],
        now: Instant,
    ) -> Option<Chunk<'a>> {
        self.touch(now);
        if stream == 0 {
            let messages = self.receive_control(msg);
            for message in messages {
                if self.is_closed() {
                    break;
                }
                if let Some(message) = self.handle_common(message) {
                    S::handle_message(self, message);
                }
            }
            self.finish_control();
            None
        } else if S::data_allowed(self) {
            self.receive_record(Lane::new(0, stream), msg)
        } else {
            None
        }
    }

    /// Tells the session that the transport is gone (association lost or shut
    /// down): it closes without sending anything.
    pub fn handle_transport_closed(&mut self) {
        self.close_with(
            Initiator::Remote,
            ErrorCode::TRANSPORT_CLOSED,
            "transport closed",
            None,
        );
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.settle_detaches();
        self.events.pop_front()
    }

    /// True once the session ended.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// True once the handshake completed and until the session closed.
    pub fn is_connected(&self) -> bool {
        self.state == State::Open
    }

    /// The negotiated TLS version and cipher suite (for a `status` display),
    /// once the handshake completed.
    pub fn tls_negotiated(&self) -> Option<(String, String)> {
        self.tls.negotiated()
    }

    /// Ends the session with `code`: sends `Close`, then `close_notify`.
    pub fn close(&mut self, code: ErrorCode, reason: &str) {
        self.close_with(Initiator::Local, code, reason, None);
    }

    /// The file offset the next chunk of outgoing `transfer` must start at.
    pub fn next_chunk_offset(&self, transfer: TransferId) -> Option<u64> {
        self.outgoing
            .get(&transfer)
            .map(OutgoingTransfer::next_offset)
    }

    /// The file offset up to which incoming `transfer` has received every byte
    /// and hashed it (its start plus the bytes received in order): what a
    /// receiver may keep of an interrupted transfer to resume it.
    pub fn received_in_order(&self, transfer: TransferId) -> Option<u64> {
        self.incoming
            .get(&transfer)
            .map(|incoming| incoming.open().offset + incoming.received())
    }

    /// Test hook: the `End` records of outgoing `transfer` will carry a digest
    /// that does not match its data. Returns false for an unknown transfer.
    #[cfg(feature = "testing")]
    pub fn falsify_outgoing_digest(&mut self, transfer: TransferId) -> bool {
        match self.outgoing.get_mut(&transfer) {
            Some(out) => {
                out.falsify_digest();
                true
            }
            None => false,
        }
    }

    /// Test hook: outgoing `transfer` behaves as if the peer had granted credit
    /// up to `limit`, as a sender ignoring flow control would. Returns false for
    /// an unknown transfer.
    #[cfg(feature = "testing")]
    pub fn assume_credit(&mut self, transfer: TransferId, limit: u64) -> bool {
        match self.outgoing.get_mut(&transfer) {
            Some(out) => {
                out.apply_credit(&crate::control::TransferCredit { transfer, limit });
                true
            }
            None => false,
        }
    }

    /// The key epoch of the next data record sent (this side's direction) or
    /// received (the peer's) on `stream` of association 0, if a record went that
    /// way yet: how many key updates that stream has been through.
    #[cfg(feature = "testing")]
    pub fn key_epoch(&self, direction: Direction, stream: u16) -> Option<u64> {
        self.key_epoch_on(direction, Lane::new(0, stream))
    }

    /// As [`Self::key_epoch`], for any lane (association, stream).
    #[cfg(feature = "testing")]
    pub fn key_epoch_on(&self, direction: Direction, lane: Lane) -> Option<u64> {
        if direction == S::DIRECTION {
            self.sealers.get(&lane).map(Sealer::key_epoch)
        } else {
            self.openers.get(&lane).map(Opener::key_epoch)
        }
    }

    /// The record secret's fingerprint of one (direction, stream) key of
    /// association 0, to check in tests that both sides derived the same keys.
    #[cfg(feature = "testing")]
    pub fn key_fingerprint(&self, direction: Direction, stream: u16) -> Option<[u8; 32]> {
        self.key_fingerprint_on(direction, Lane::new(0, stream))
    }

    /// As [`Self::key_fingerprint`], for any lane (association, stream).
    #[cfg(feature = "testing")]
    pub fn key_fingerprint_on(&self, direction: Direction, lane: Lane) -> Option<[u8; 32]> {
        self.secret
            .as_ref()
            .map(|s| s.fingerprint(direction, lane.association, lane.stream))
    }
}

/// Cuts `reason` to the wire limit on a character boundary.
fn truncate_reason(reason: &str) -> String {
    let max = crate::control::MAX_REASON_LEN;
    if reason.len() <= max {
        return reason.to_owned();
    }
    let mut end = max;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}
