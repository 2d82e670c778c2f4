//! Pumping a sans-IO session over a [`Transport`].
//!
//! The application owns the loop, in the style of quinn's endpoint driver:
//!
//! ```text
//!   loop {
//!       driver.flush(&mut session).await?;        // poll_transmit -> transport.send
//!       while let Some(e) = session.poll_event() { .. act, maybe queue replies .. }
//!       match driver.next_input(&mut session).await { // recv / timer -> handle_*
//!           Input::Chunk(c) => write c.data() at c.offset,
//!           Input::Path(p) => log the failover,
//!           ..
//!       }
//!   }
//! ```
//!
//! or, for an embedder that must never block on sending (a server with many
//! transfers and a peer that may stop reading):
//!
//! ```text
//!   loop {
//!       while let Some(e) = session.poll_event() { .. act .. }
//!       driver.queue_from(&mut session);            // into the driver's send queue
//!       select! {
//!           input = driver.next_io(&mut session, receive) => ..,  // send / recv / timer
//!           done = my_jobs.next() => ..,
//!       }
//!   }
//! ```
//!
//! Every async fn here is cancellation-safe, so each can sit in a `select!` next
//! to the application's own work (reading a file for the next chunk, a user's
//! Ctrl-C): a message leaves the driver's send queue only once the transport took
//! it, and a received message is fed to the session in the same poll that
//! received it.
//!
//! An embedder that must sometimes stop reading (a server whose upload buffer is
//! full) pumps with [`Driver::next_io`] and [`Receive::Paused`] instead: the
//! session's timer still fires and queued messages (see [`Driver::queue`]) still
//! go out, so a stalled peer still times out.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sfs_proto::control::TransferId;
use sfs_proto::session::{Chunk, ClientSession, ServerSession, Transmit};

use crate::transport::{PathEvent, Transport, TransportError, TransportEvent};

/// The methods of a protocol session the driver calls; implemented for both
/// [`ClientSession`] and [`ServerSession`].
pub trait Session {
    /// See `ClientSession::handle_message`.
    fn handle_message<'a>(
        &mut self,
        stream: u16,
        msg: &'a mut [u8],
        now: Instant,
    ) -> Option<Chunk<'a>>;
    /// See `ClientSession::handle_timeout`.
    fn handle_timeout(&mut self, now: Instant);
    /// See `ClientSession::handle_transport_closed`.
    fn handle_transport_closed(&mut self);
    /// See `ClientSession::poll_transmit`.
    fn poll_transmit(&mut self) -> Option<Transmit>;
    /// See `ClientSession::poll_timeout`.
    fn poll_timeout(&self) -> Option<Instant>;
    /// See `ClientSession::is_closed`.
    fn is_closed(&self) -> bool;
}

macro_rules! impl_session {
    ($ty:ty) => {
        impl Session for $ty {
            fn handle_message<'a>(
                &mut self,
                stream: u16,
                msg: &'a mut [u8],
                now: Instant,
            ) -> Option<Chunk<'a>> {
                <$ty>::handle_message(self, stream, msg, now)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn handle_transport_closed(&mut self) {
                <$ty>::handle_transport_closed(self)
            }
            fn poll_transmit(&mut self) -> Option<Transmit> {
                <$ty>::poll_transmit(self)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$ty>::poll_timeout(self)
            }
            fn is_closed(&self) -> bool {
                <$ty>::is_closed(self)
            }
        }
    };
}
impl_session!(ClientSession);
impl_session!(ServerSession);

/// File data that arrived and authenticated, owning the message it came in.
#[derive(Debug)]
pub struct ReceivedChunk {
    /// The transfer it belongs to.
    pub transfer: TransferId,
    /// Where in the file it goes.
    pub offset: u64,
    message: Vec<u8>,
    range: Range<usize>,
}

impl ReceivedChunk {
    /// The file bytes.
    pub fn data(&self) -> &[u8] {
        // The range was computed from a slice of this very buffer.
        &self.message[self.range.clone()]
    }
}

/// What [`Driver::next_input`] fed to the session, for the application to act on.
#[derive(Debug)]
pub enum Input {
    /// Nothing for the application itself: a message the session consumed, its
    /// timer fired, or (with [`Driver::next_io`]) a queued message went out. Poll
    /// the session's events.
    Handled,
    /// File data to write at its offset before polling events.
    Chunk(ReceivedChunk),
    /// A path to the peer changed (a failover, or a path coming back).
    Path(PathEvent),
    /// Something the transport reported that is worth a log line.
    Notice(String),
    /// The transport is gone (the session was told, and is now closed).
    TransportClosed(Option<TransportError>),
}

/// Bytes moved, shared so that a `status` command can read them at any time.
#[derive(Debug, Default)]
pub struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Counters {
    /// Bytes sent, all streams, as messages on the wire (encrypted).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Bytes received, all streams.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Whether [`Driver::next_io`] takes messages from the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receive {
    /// Receive as usual.
    On,
    /// Leave messages in the transport (back-pressure on the peer); the timer
    /// and the send queue still run.
    Paused,
}

/// Moves messages between a session and a transport, and fires the session's timer.
#[derive(Debug)]
pub struct Driver<T> {
    transport: Arc<T>,
    counters: Arc<Counters>,
    /// Messages waiting to be sent, in order.
    outbox: VecDeque<Transmit>,
    /// Bytes in `outbox`.
    outbox_bytes: usize,
    closed: bool,
}

impl<T: Transport> Driver<T> {
    /// A driver over `transport`.
    pub fn new(transport: Arc<T>) -> Self {
        Self {
            transport,
            counters: Arc::default(),
            outbox: VecDeque::new(),
            outbox_bytes: 0,
            closed: false,
        }
    }

    /// The transport, e.g. for its paths.
    pub fn transport(&self) -> &Arc<T> {
        &self.transport
    }

    /// The byte counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Queues a message (for example a chunk just sealed) behind the ones
    /// already queued; [`Driver::next_io`] or [`Driver::flush`] sends it.
    pub fn queue(&mut self, transmit: Transmit) {
        self.outbox_bytes += transmit.bytes.len();
        self.outbox.push_back(transmit);
    }

    /// Moves everything the session wants to send into the send queue.
    pub fn queue_from<S: Session>(&mut self, session: &mut S) {
        while let Some(transmit) = session.poll_transmit() {
            self.queue(transmit);
        }
    }

    /// How many messages wait in the send queue.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// How many bytes wait in the send queue: what a peer that does not read
    /// makes this side hold. Stop taking new work while it is over a cap.
    pub fn queued_bytes(&self) -> usize {
        self.outbox_bytes
    }

    /// Sends the send queue and everything the session has queued.
    ///
    /// # Errors
    /// The transport's error; what was not sent stays queued.
    ///
    /// # Cancel safety
    /// Cancellation-safe: what was not sent stays in the send queue.
    pub async fn flush<S: Session>(&mut self, session: &mut S) -> Result<(), TransportError> {
        self.queue_from(session);
        while !self.outbox.is_empty() {
            self.send_front().await?;
        }
        Ok(())
    }

    /// Sends one message now (for example a chunk just sealed), counting its
    /// bytes, ahead of the send queue.
    ///
    /// # Errors
    /// [`TransportError::Closed`] once the transport is gone, or the transport's error.
    ///
    /// # Cancel safety
    /// Not cancellation-safe: a cancelled call loses `transmit`. Use
    /// [`Driver::queue`] where the send may be cancelled.
    pub async fn send(&mut self, transmit: Transmit) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        self.transport
            .send(transmit.stream, &transmit.bytes)
            .await?;
        self.counters
            .sent
            .fetch_add(transmit.bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Sends the first queued message, removing it only once the transport took
    /// it. Pending forever when nothing is queued. Cancellation-safe.
    async fn send_front(&mut self) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        let Some(transmit) = self.outbox.front() else {
            return std::future::pending().await;
        };
        self.transport
            .send(transmit.stream, &transmit.bytes)
            .await?;
        self.counters
            .sent
            .fetch_add(transmit.bytes.len() as u64, Ordering::Relaxed);
        if let Some(sent) = self.outbox.pop_front() {
            self.outbox_bytes -= sent.bytes.len();
        }
        Ok(())
    }

    /// Waits for a message, a path event or the session's timer, and feeds it to
    /// the session. Same as [`Driver::next_io`] with [`Receive::On`].
    ///
    /// # Cancel safety
    /// Cancellation-safe.
    pub async fn next_input<S: Session>(&mut self, session: &mut S) -> Input {
        self.next_io(session, Receive::On).await
    }

    /// Waits for the first of: a message or path event (unless `receive` is
    /// [`Receive::Paused`]), the session's timer, or the first queued message
    /// going out; feeds it to the session. The timer fires whether or not the
    /// embedder reads, so a session that stops reading still times out.
    ///
    /// A failed send or receive closes the driver and tells the session
    /// ([`Input::TransportClosed`]).
    ///
    /// # Cancel safety
    /// Cancellation-safe: a queued message leaves the queue only once sent, and
    /// a received message reaches the session before this returns.
    pub async fn next_io<S: Session>(&mut self, session: &mut S, receive: Receive) -> Input {
        if self.closed {
            return Input::TransportClosed(None);
        }
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        let sending = !self.outbox.is_empty();
        let transport = self.transport.clone();
        let received = tokio::select! {
            received = transport.recv(), if receive == Receive::On => received,
            () = sleep_until(deadline) => {
                session.handle_timeout(now());
                return Input::Handled;
            }
            sent = self.send_front(), if sending => match sent {
                Ok(()) => return Input::Handled,
                Err(err) => Err(err),
            },
        };
        match received {
            Ok(TransportEvent::Message { stream, data }) => {
                self.handle_message(session, stream, data)
            }
            Ok(TransportEvent::Path(event)) => Input::Path(event),
            Ok(TransportEvent::Notice(text)) => Input::Notice(text),
            Err(err) => {
                self.closed = true;
                session.handle_transport_closed();
                match err {
                    TransportError::Closed => Input::TransportClosed(None),
                    other => Input::TransportClosed(Some(other)),
                }
            }
        }
    }

    fn handle_message<S: Session>(
        &mut self,
        session: &mut S,
        stream: u16,
        mut message: Vec<u8>,
    ) -> Input {
        self.counters
            .received
            .fetch_add(message.len() as u64, Ordering::Relaxed);
        let base = message.as_ptr() as usize;
        let chunk = session
            .handle_message(stream, &mut message, now())
            .map(|chunk| {
                // The chunk's data is a sub-slice of `message`: keep its position
                // so the bytes need not be copied.
                let start = chunk.data.as_ptr() as usize - base;
                (
                    chunk.transfer,
                    chunk.offset,
                    start..start + chunk.data.len(),
                )
            });
        match chunk {
            Some((transfer, offset, range)) => Input::Chunk(ReceivedChunk {
                transfer,
                offset,
                message,
                range,
            }),
            None => Input::Handled,
        }
    }
}

/// The session clock: tokio's, so that tests with a paused clock control it.
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Sleeps until `deadline`, or forever without one. Cancellation-safe.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
