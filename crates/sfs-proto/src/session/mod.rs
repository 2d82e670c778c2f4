//! The session state machines, one per side, in the style of quinn-proto.
//!
//! - `handle_*` methods take input: a received message with its stream id, a
//!   timeout, the loss of the transport. Time comes in as `now`.
//! - Ordinary methods take commands from the application.
//! - `poll_*` methods give output: [`Transmit`]s to send, [`Event`]s, the next
//!   timeout.
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

mod client;
mod server;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use thiserror::Error;

pub use client::ClientSession;
pub use server::ServerSession;

use crate::codec::EncodeError;
use crate::control::{
    Command, ErrorCode, Expects, FrameDecoder, Message, Reply, RequestId, TransferAbort,
    TransferEnd, TransferId, TransferOpen,
};
use crate::record::{
    Direction, Opener, Record, RecordError, RecordSecret, Sealer, CHUNK_PREFIX_LEN,
};
use crate::tls::{TlsDriver, TlsError};
use crate::transfer::{
    IncomingTransfer, OutgoingTransfer, Progress, TransferError, DEFAULT_WINDOW,
};

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
}

impl SessionConfig {
    /// Defaults for the given stream counts.
    pub fn new(streams: StreamCounts) -> Self {
        Self {
            streams,
            transfer_window: DEFAULT_WINDOW,
            max_transfers: 16,
            max_pending_requests: 64,
            handshake_timeout: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(600)),
        }
    }
}

/// One message to send: on stream 0 a piece of the TLS byte stream, elsewhere one
/// sealed record. Send it as one whole SCTP message on `stream`, in the order
/// `poll_transmit` returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The SCTP stream id.
    pub stream: u16,
    /// The message.
    pub bytes: Vec<u8>,
}

/// File data received and checked: write `data` at `offset` of the transfer's
/// temporary file before polling events. It is final only once
/// `Event::TransferFinished` arrives.
#[derive(Debug, PartialEq, Eq)]
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
    /// A buffer without [`CHUNK_PREFIX_LEN`] bytes of room.
    #[error("chunk buffer lacks header room")]
    BadBuffer,
    /// A value breaks a wire limit.
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// The record key is exhausted; the session was closed.
    #[error("record layer: {0}")]
    Record(#[from] RecordError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Open,
    Closed,
}

/// The machinery both sides share: TLS, framing, records, transfers, timers.
struct Core {
    side: Direction,
    config: SessionConfig,
    tls: TlsDriver,
    plaintext: Vec<u8>,
    frames: FrameDecoder,
    secret: Option<RecordSecret>,
    sealers: HashMap<u16, Sealer>,
    openers: HashMap<u16, Opener>,
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
    ends_out: VecDeque<(u16, TransferEnd)>,
    events: VecDeque<Event>,
    state: State,
    handshake_deadline: Option<Instant>,
    last_activity: Instant,
}

impl Core {
    fn new(side: Direction, config: SessionConfig, tls: TlsDriver, now: Instant) -> Self {
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
            outgoing: HashMap::new(),
            incoming: HashMap::new(),
            transfers_seen_below: 0,
            pending: HashMap::new(),
            ends_out: VecDeque::new(),
            events: VecDeque::new(),
            state: State::Handshaking,
            last_activity: now,
        }
    }

    fn peer_direction(&self) -> Direction {
        match self.side {
            Direction::ClientToServer => Direction::ServerToClient,
            Direction::ServerToClient => Direction::ClientToServer,
        }
    }

    fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    fn check_open(&self) -> Result<(), ApiError> {
        match self.state {
            State::Open => Ok(()),
            State::Handshaking => Err(ApiError::NotConnected),
            State::Closed => Err(ApiError::Closed),
        }
    }

    /// Ends the session. A `Close` message goes out only if TLS is up and this
    /// side decided; the `close_notify` (or rustls's alert) always does.
    fn close(
        &mut self,
        by: Initiator,
        code: ErrorCode,
        reason: impl Into<String>,
        tls: Option<TlsError>,
    ) {
        if self.state == State::Closed {
            return;
        }
        let reason = reason.into();
        if by == Initiator::Local {
            log::debug!("closing session: {code}: {reason}");
        }
        if self.state == State::Open && by == Initiator::Local && tls.is_none() {
            let close = Message::Close {
                code,
                reason: truncate_reason(&reason),
            };
            // The reason was truncated to fit, so encoding cannot fail; if it did,
            // the close_notify below still ends the session.
            let _ = self.send_message(&close);
        }
        self.tls.send_close_notify();
        self.state = State::Closed;
        self.outgoing.clear();
        self.incoming.clear();
        self.pending.clear();
        self.events.push_back(Event::Closed(CloseReason {
            by,
            code,
            reason,
            tls,
        }));
    }

    fn violation(&mut self, reason: impl Into<String>) {
        self.close(
            Initiator::Local,
            ErrorCode::PROTOCOL_VIOLATION,
            reason,
            None,
        );
    }

    fn send_message(&mut self, message: &Message) -> Result<(), ApiError> {
        let frame = message.to_frame()?;
        self.tls
            .write_plaintext(&frame)
            .map_err(|_| ApiError::Closed)
    }

    /// Feeds a stream-0 message through TLS and returns the control messages it
    /// completed.
    fn receive_control(&mut self, msg: &[u8]) -> Vec<Message> {
        let mut messages = Vec::new();
        if self.state == State::Closed {
            return messages;
        }
        self.plaintext.clear();
        let result = self.tls.handle_message(msg, &mut self.plaintext);
        if let Err(error) = result {
            let by = match &error {
                TlsError::Rustls(rustls::Error::AlertReceived(_)) => Initiator::Remote,
                _ => Initiator::Local,
            };
            let reason = error.to_string();
            self.close(by, ErrorCode::TLS_FAILURE, reason, Some(error));
            return messages;
        }
        if self.state == State::Handshaking && !self.tls.is_handshaking() {
            match self.tls.record_secret() {
                Ok(secret) => {
                    self.secret = Some(secret);
                    self.state = State::Open;
                    // The server's timer also covers login, and stops there.
                    if self.side == Direction::ClientToServer {
                        self.handshake_deadline = None;
                    }
                    self.events.push_back(Event::Connected);
                }
                Err(error) => {
                    let reason = error.to_string();
                    self.close(
                        Initiator::Local,
                        ErrorCode::TLS_FAILURE,
                        reason,
                        Some(error),
                    );
                    return messages;
                }
            }
        }
        if !self.plaintext.is_empty() {
            self.frames.push(&self.plaintext);
        }
        loop {
            match self.frames.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(error) => {
                    let code = match error {
                        crate::codec::DecodeError::UnsupportedVersion(_) => {
                            ErrorCode::UNSUPPORTED_VERSION
                        }
                        _ => ErrorCode::PROTOCOL_VIOLATION,
                    };
                    self.close(
                        Initiator::Local,
                        code,
                        format!("bad control message: {error}"),
                        None,
                    );
                    return Vec::new();
                }
            }
        }
        messages
    }

    /// After the messages of one stream-0 message were handled: a `close_notify`
    /// without a `Close` message first still ends the session.
    fn finish_control(&mut self) {
        if self.state != State::Closed && self.tls.peer_has_closed() {
            self.close(
                Initiator::Remote,
                ErrorCode::NO_ERROR,
                "peer closed TLS",
                None,
            );
        }
    }

    /// Handles the messages both sides treat alike; returns the others.
    fn handle_common(&mut self, message: Message) -> Option<Message> {
        match message {
            Message::TransferCredit(credit) => {
                if let Some(out) = self.outgoing.get_mut(&credit.transfer) {
                    out.apply_credit(&credit);
                    if out.allowance() > 0 {
                        self.events.push_back(Event::CreditAvailable {
                            transfer: credit.transfer,
                        });
                    }
                    self.finish_outgoing_if_done(credit.transfer);
                } else if !self.is_retired(credit.transfer) {
                    self.violation(format!("credit for unknown transfer {}", credit.transfer));
                }
                None
            }
            Message::TransferAbort(abort) => {
                let known = self.outgoing.remove(&abort.transfer).is_some()
                    | self.incoming.remove(&abort.transfer).is_some();
                if known {
                    self.events.push_back(Event::TransferFailed {
                        transfer: abort.transfer,
                        by: Initiator::Remote,
                        code: abort.code,
                        reason: abort.reason,
                    });
                } else if !self.is_retired(abort.transfer) {
                    self.violation(format!("abort of unknown transfer {}", abort.transfer));
                }
                None
            }
            Message::Close { code, reason } => {
                self.close(Initiator::Remote, code, reason, None);
                None
            }
            other => Some(other),
        }
    }

    fn is_retired(&self, transfer: TransferId) -> bool {
        transfer.0 < self.transfers_seen_below
            && !self.outgoing.contains_key(&transfer)
            && !self.incoming.contains_key(&transfer)
    }

    fn note_transfer_id(&mut self, transfer: TransferId) {
        self.transfers_seen_below = self.transfers_seen_below.max(transfer.0.saturating_add(1));
    }

    fn open_transfers(&self) -> usize {
        self.outgoing.len() + self.incoming.len()
    }

    /// Starts receiving `open` and grants the first credit.
    fn register_incoming(&mut self, open: TransferOpen) {
        self.note_transfer_id(open.transfer);
        let mut incoming = IncomingTransfer::new(open, self.config.transfer_window);
        let credit = incoming.credit_update();
        self.incoming.insert(open.transfer, incoming);
        if let Some(credit) = credit {
            // A credit is a few fixed-size fields; it always encodes.
            let _ = self.send_message(&Message::TransferCredit(credit));
        }
    }

    /// Starts sending `open`; nothing goes out before the first credit.
    fn register_outgoing(&mut self, open: TransferOpen) {
        self.note_transfer_id(open.transfer);
        self.outgoing
            .insert(open.transfer, OutgoingTransfer::new(open));
    }

    fn sealer(&mut self, stream: u16) -> Option<&mut Sealer> {
        let secret = self.secret.as_ref()?;
        let side = self.side;
        Some(
            self.sealers
                .entry(stream)
                .or_insert_with(|| secret.sealer(side, stream)),
        )
    }

    /// Once every byte went out (and the receiver knows the transfer), queues the
    /// `End` record on each of the transfer's streams.
    fn finish_outgoing_if_done(&mut self, transfer: TransferId) {
        let Some(out) = self.outgoing.get(&transfer) else {
            return;
        };
        if !out.is_complete() || !out.is_credited() {
            return;
        }
        let end = out.end();
        let streams = out.open().streams;
        self.outgoing.remove(&transfer);
        for stream in 1..=streams {
            self.ends_out.push_back((stream, end));
        }
        self.events.push_back(Event::TransferSent { transfer });
    }

    fn close_on_seal_error(&mut self, error: RecordError) {
        let code = match error {
            RecordError::KeyExhausted => ErrorCode::KEY_EXHAUSTED,
            _ => ErrorCode::INTERNAL,
        };
        self.close(Initiator::Local, code, error.to_string(), None);
    }

    fn chunk_allowance(&self, transfer: TransferId) -> usize {
        self.outgoing
            .get(&transfer)
            .map_or(0, OutgoingTransfer::allowance)
    }

    fn send_chunk(&mut self, transfer: TransferId, mut buf: Vec<u8>) -> Result<Transmit, ApiError> {
        self.check_open()?;
        let out = self
            .outgoing
            .get_mut(&transfer)
            .ok_or(ApiError::UnknownTransfer(transfer))?;
        let len = buf
            .len()
            .checked_sub(CHUNK_PREFIX_LEN)
            .ok_or(ApiError::BadBuffer)?;
        let allowance = out.allowance();
        if len == 0 || len > allowance {
            return Err(ApiError::ChunkNotAllowed { len, allowance });
        }
        let (offset, stream) = out.take_chunk(&buf[CHUNK_PREFIX_LEN..]);
        let sealed = match self.sealer(stream) {
            Some(sealer) => sealer.seal_chunk(transfer, offset, &mut buf),
            None => Err(RecordError::BadBuffer),
        };
        if let Err(error) = sealed {
            self.close_on_seal_error(error.clone());
            return Err(error.into());
        }
        self.finish_outgoing_if_done(transfer);
        Ok(Transmit { stream, bytes: buf })
    }

    fn abort_transfer(
        &mut self,
        transfer: TransferId,
        code: ErrorCode,
        reason: &str,
    ) -> Result<(), ApiError> {
        self.check_open()?;
        let known =
            self.outgoing.remove(&transfer).is_some() | self.incoming.remove(&transfer).is_some();
        if !known {
            return Err(ApiError::UnknownTransfer(transfer));
        }
        self.send_message(&Message::TransferAbort(TransferAbort {
            transfer,
            code,
            reason: truncate_reason(reason),
        }))
    }

    /// Opens one data record and feeds it to its transfer.
    fn receive_record<'a>(&mut self, stream: u16, msg: &'a mut [u8]) -> Option<Chunk<'a>> {
        if self.state != State::Open {
            if self.state == State::Handshaking {
                self.violation("data record before the handshake completed");
            }
            return None;
        }
        if stream >= self.config.streams.inbound {
            self.violation(format!("message on stream {stream}, not negotiated"));
            return None;
        }
        let peer = self.peer_direction();
        let Some(secret) = self.secret.as_ref() else {
            self.violation("no record keys");
            return None;
        };
        let opener = self
            .openers
            .entry(stream)
            .or_insert_with(|| secret.opener(peer, stream));
        let record = match opener.open(msg) {
            Ok(record) => record,
            Err(error) => {
                let code = match error {
                    RecordError::KeyExhausted => ErrorCode::KEY_EXHAUSTED,
                    _ => ErrorCode::RECORD_FAILURE,
                };
                self.close(
                    Initiator::Local,
                    code,
                    format!("stream {stream}: {error}"),
                    None,
                );
                return None;
            }
        };
        let (transfer, result, chunk) = match record {
            Record::Chunk {
                transfer,
                offset,
                data,
            } => {
                let Some(incoming) = self.incoming.get_mut(&transfer) else {
                    self.unknown_transfer_record(transfer);
                    return None;
                };
                let result = incoming.accept_chunk(stream, offset, data);
                (
                    transfer,
                    result,
                    Some(Chunk {
                        transfer,
                        offset,
                        data,
                    }),
                )
            }
            Record::End(end) => {
                let Some(incoming) = self.incoming.get_mut(&end.transfer) else {
                    self.unknown_transfer_record(end.transfer);
                    return None;
                };
                (end.transfer, incoming.accept_end(stream, end), None)
            }
        };
        match result {
            Ok(Progress::Pending) => {
                let credit = self
                    .incoming
                    .get_mut(&transfer)
                    .and_then(IncomingTransfer::credit_update);
                if let Some(credit) = credit {
                    let _ = self.send_message(&Message::TransferCredit(credit));
                }
                chunk
            }
            Ok(Progress::Finished { length, sha256 }) => {
                self.incoming.remove(&transfer);
                self.events.push_back(Event::TransferFinished {
                    transfer,
                    length,
                    sha256,
                });
                chunk
            }
            Err(
                error @ (TransferError::Truncated { .. }
                | TransferError::DigestMismatch
                | TransferError::LengthMismatch { .. }
                | TransferError::InconsistentEnd),
            ) => {
                // Every record authenticated, so this is the sender's file changing
                // under it or a broken sender: the transfer fails, the session lives.
                self.incoming.remove(&transfer);
                self.events.push_back(Event::TransferFailed {
                    transfer,
                    by: Initiator::Local,
                    code: ErrorCode::TRANSFER_FAILED,
                    reason: error.to_string(),
                });
                chunk
            }
            Err(error) => {
                let code = match error {
                    TransferError::BeyondCredit => ErrorCode::FLOW_CONTROL,
                    _ => ErrorCode::PROTOCOL_VIOLATION,
                };
                self.close(
                    Initiator::Local,
                    code,
                    format!("transfer {transfer}: {error}"),
                    None,
                );
                None
            }
        }
    }

    fn unknown_transfer_record(&mut self, transfer: TransferId) {
        if !self.is_retired(transfer) {
            self.violation(format!("record for unknown transfer {transfer}"));
        }
    }

    fn touch(&mut self, now: Instant) {
        self.last_activity = now;
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let idle = self.config.idle_timeout.filter(|_| {
            self.state == State::Open && self.pending.is_empty() && self.open_transfers() == 0
        });
        let idle_deadline = idle.and_then(|timeout| self.last_activity.checked_add(timeout));
        match (self.handshake_deadline, idle_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        if let Some(deadline) = self.poll_timeout() {
            if now >= deadline {
                let reason = if self.handshake_deadline.is_some_and(|d| now >= d) {
                    "handshake or login took too long"
                } else {
                    "idle"
                };
                self.close(Initiator::Local, ErrorCode::TIMED_OUT, reason, None);
            }
        }
    }

    fn handle_transport_closed(&mut self) {
        self.close(
            Initiator::Remote,
            ErrorCode::TRANSPORT_CLOSED,
            "transport closed",
            None,
        );
    }

    fn poll_transmit(&mut self) -> Option<Transmit> {
        // Stream 0 first, so that a TransferOpen or credit is never queued behind
        // a burst of records.
        if let Some(bytes) = self.tls.poll_message() {
            return Some(Transmit { stream: 0, bytes });
        }
        let (stream, end) = self.ends_out.pop_front()?;
        let mut bytes = Vec::new();
        let sealed = match self.sealer(stream) {
            Some(sealer) => sealer.seal_end(&end, &mut bytes),
            None => Err(RecordError::BadBuffer),
        };
        match sealed {
            Ok(_) => Some(Transmit { stream, bytes }),
            Err(error) => {
                self.ends_out.clear();
                self.close_on_seal_error(error);
                // The close queued TLS messages to send.
                self.tls
                    .poll_message()
                    .map(|bytes| Transmit { stream: 0, bytes })
            }
        }
    }

    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
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

/// Forwards the methods both session types share to their `Core`.
macro_rules! shared_session_methods {
    () => {
        /// Feeds one received message. Stream 0 carries TLS; any other stream one
        /// record. A returned [`Chunk`](crate::session::Chunk) is file data to write
        /// at its offset; everything else comes out as events. Errors of the peer
        /// close the session (see `poll_event`).
        pub fn handle_message<'a>(
            &mut self,
            stream: u16,
            msg: &'a mut [u8],
            now: std::time::Instant,
        ) -> Option<crate::session::Chunk<'a>> {
            self.core.touch(now);
            if stream == 0 {
                let messages = self.core.receive_control(msg);
                for message in messages {
                    if self.core.is_closed() {
                        break;
                    }
                    if let Some(message) = self.core.handle_common(message) {
                        self.handle_side_message(message);
                    }
                }
                self.core.finish_control();
                None
            } else {
                self.check_data_allowed()?;
                self.core.receive_record(stream, msg)
            }
        }

        /// Fires the handshake, login or idle timer if `now` is past it.
        pub fn handle_timeout(&mut self, now: std::time::Instant) {
            self.core.handle_timeout(now);
        }

        /// Tells the session that the transport is gone (association lost or shut
        /// down): it closes without sending anything.
        pub fn handle_transport_closed(&mut self) {
            self.core.handle_transport_closed();
        }

        /// The next message to send, or `None` when there is nothing to send.
        pub fn poll_transmit(&mut self) -> Option<crate::session::Transmit> {
            self.core.poll_transmit()
        }

        /// The next event.
        pub fn poll_event(&mut self) -> Option<crate::session::Event> {
            self.core.poll_event()
        }

        /// When `handle_timeout` must be called next, if ever.
        pub fn poll_timeout(&self) -> Option<std::time::Instant> {
            self.core.poll_timeout()
        }

        /// True once the session ended.
        pub fn is_closed(&self) -> bool {
            self.core.is_closed()
        }

        /// The negotiated TLS version and cipher suite (for a `status` display),
        /// once the handshake completed.
        pub fn tls_negotiated(&self) -> Option<(String, String)> {
            self.core.tls.negotiated()
        }

        /// True once the handshake completed and until the session closed.
        pub fn is_connected(&self) -> bool {
            self.core.state == crate::session::State::Open
        }

        /// Ends the session with `code`: sends `Close`, then `close_notify`.
        pub fn close(&mut self, code: crate::control::ErrorCode, reason: &str) {
            self.core
                .close(crate::session::Initiator::Local, code, reason, None);
        }

        /// How many bytes of data the next chunk of outgoing `transfer` may carry
        /// now. 0 means wait for `Event::CreditAvailable` (or the transfer is done
        /// or unknown).
        pub fn chunk_allowance(&self, transfer: crate::control::TransferId) -> usize {
            self.core.chunk_allowance(transfer)
        }

        /// The file offset the next chunk of outgoing `transfer` must start at.
        pub fn next_chunk_offset(&self, transfer: crate::control::TransferId) -> Option<u64> {
            self.core.outgoing.get(&transfer).map(|t| t.next_offset())
        }

        /// Seals the next chunk of outgoing `transfer` in place and returns it to
        /// send. `buf` is [`CHUNK_PREFIX_LEN`](crate::record::CHUNK_PREFIX_LEN)
        /// bytes of room followed by the data (see
        /// [`chunk_buffer`](crate::record::chunk_buffer)), at most
        /// `chunk_allowance` bytes of it, read from the file at
        /// `next_chunk_offset`. After the last chunk the `End` records are queued
        /// for `poll_transmit` and `Event::TransferSent` follows. Records are
        /// sealed when they are handed out, so sending every transmit in the order
        /// it was handed out keeps each stream in sequence, whenever
        /// `poll_transmit` is drained.
        pub fn send_chunk(
            &mut self,
            transfer: crate::control::TransferId,
            buf: Vec<u8>,
        ) -> Result<crate::session::Transmit, crate::session::ApiError> {
            self.core.send_chunk(transfer, buf)
        }

        /// Cancels a transfer in either direction and tells the peer.
        pub fn abort_transfer(
            &mut self,
            transfer: crate::control::TransferId,
            code: crate::control::ErrorCode,
            reason: &str,
        ) -> Result<(), crate::session::ApiError> {
            self.core.abort_transfer(transfer, code, reason)
        }

        /// Test hook: the `End` records of outgoing `transfer` will carry a
        /// digest that does not match its data. Returns false for an unknown
        /// transfer.
        #[cfg(feature = "testing")]
        pub fn falsify_outgoing_digest(&mut self, transfer: crate::control::TransferId) -> bool {
            match self.core.outgoing.get_mut(&transfer) {
                Some(out) => {
                    out.falsify_digest();
                    true
                }
                None => false,
            }
        }

        /// Transfers open in this session.
        pub fn open_transfers(&self) -> usize {
            self.core.open_transfers()
        }

        /// The record secret's fingerprint of one (direction, stream) key, to check
        /// in tests that both sides derived the same keys.
        #[cfg(feature = "testing")]
        pub fn key_fingerprint(
            &self,
            direction: crate::record::Direction,
            stream: u16,
        ) -> Option<[u8; 32]> {
            self.core
                .secret
                .as_ref()
                .map(|s| s.fingerprint(direction, stream))
        }
    };
}
use shared_session_methods;
