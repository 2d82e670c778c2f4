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
//!
//! # Several associations
//!
//! A session may have extra data associations (see `sfs_proto::bind`). The
//! driver keeps one transport and one send queue per association, so a slow
//! association never holds up another: [`Driver::add_association`] attaches
//! one, [`Driver::remove_association`] detaches it, and [`Driver::next_io`]
//! waits on every attached transport at once. A failed extra association is
//! detached, the session is told (its transfers on it fail), and the
//! application gets [`Input::AssociationLost`]; the session goes on. Path
//! events of extra associations are dropped (their paths are those of
//! association 0, to the same peer addresses; read them with
//! [`Transport::paths`] on [`Driver::association`]).

use std::collections::VecDeque;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use sfs_proto::bind::MAX_ASSOCIATIONS;
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
    /// See `ClientSession::handle_message_on`.
    fn handle_message_on<'a>(
        &mut self,
        association: u8,
        stream: u16,
        msg: &'a mut [u8],
        now: Instant,
    ) -> Option<Chunk<'a>>;
    /// See `ClientSession::handle_timeout`.
    fn handle_timeout(&mut self, now: Instant);
    /// See `ClientSession::handle_transport_closed`.
    fn handle_transport_closed(&mut self);
    /// See `ClientSession::handle_association_lost`.
    fn handle_association_lost(&mut self, index: u8);
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
            fn handle_message_on<'a>(
                &mut self,
                association: u8,
                stream: u16,
                msg: &'a mut [u8],
                now: Instant,
            ) -> Option<Chunk<'a>> {
                <$ty>::handle_message_on(self, association, stream, msg, now)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$ty>::handle_timeout(self, now)
            }
            fn handle_transport_closed(&mut self) {
                <$ty>::handle_transport_closed(self)
            }
            fn handle_association_lost(&mut self, index: u8) {
                <$ty>::handle_association_lost(self, index)
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
    /// A path of association 0 to the peer changed (a failover, or a path
    /// coming back).
    Path(PathEvent),
    /// Something the transport reported that is worth a log line.
    Notice(String),
    /// Extra association `index` failed or was closed by the peer: the driver
    /// detached it (its queued messages were dropped) and told the session,
    /// whose transfers on it failed (poll its events). The session goes on;
    /// shut the transport down if it is still yours.
    AssociationLost {
        /// The association.
        index: u8,
        /// The transport's error; `None` for a clean close by the peer.
        error: Option<TransportError>,
    },
    /// The transport of association 0 is gone (the session was told, and is
    /// now closed).
    TransportClosed(Option<TransportError>),
}

/// Bytes moved, shared so that a `status` command can read them at any time.
#[derive(Debug, Default)]
pub struct Counters {
    sent: AtomicU64,
    received: AtomicU64,
}

impl Counters {
    /// Bytes sent, all associations and streams, as messages on the wire
    /// (encrypted).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Bytes received, all associations and streams.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// Whether [`Driver::next_io`] takes messages from the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receive {
    /// Receive as usual.
    On,
    /// Leave messages in the transports (back-pressure on the peer); the timer
    /// and the send queues still run.
    Paused,
}

/// The send queue of one association.
#[derive(Debug, Default)]
struct Outbox {
    messages: VecDeque<Transmit>,
    /// Bytes in `messages`.
    bytes: usize,
}

impl Outbox {
    fn push(&mut self, transmit: Transmit) {
        self.bytes += transmit.bytes.len();
        self.messages.push_back(transmit);
    }

    fn pop(&mut self) {
        if let Some(sent) = self.messages.pop_front() {
            self.bytes -= sent.bytes.len();
        }
    }

    fn clear(&mut self) {
        self.messages.clear();
        self.bytes = 0;
    }
}

/// What one of the futures [`Driver::next_io`] waits on produced.
enum Ready {
    Received(u8, Result<TransportEvent, TransportError>),
    Sent(u8, Result<(), TransportError>),
}

type ReadyFuture<'a> = Pin<Box<dyn Future<Output = Ready> + Send + 'a>>;

/// Moves messages between a session and its transports (one per association),
/// and fires the session's timer.
#[derive(Debug)]
pub struct Driver<T> {
    /// The transport of each association, by index; 0 is always there.
    transports: Vec<Option<Arc<T>>>,
    counters: Arc<Counters>,
    /// The send queue of each association, by index. A queue of an extra
    /// association that is not attached yet keeps its messages until it is.
    outboxes: Vec<Outbox>,
    /// Extra associations whose loss the session was told of and the
    /// application not yet.
    lost: VecDeque<(u8, Option<TransportError>)>,
    /// Rotates which association is polled first, so a busy one cannot starve
    /// the others.
    turn: usize,
    closed: bool,
}

impl<T: Transport> Driver<T> {
    /// A driver over `transport`, association 0.
    pub fn new(transport: Arc<T>) -> Self {
        let mut transports = vec![None; usize::from(MAX_ASSOCIATIONS)];
        transports[0] = Some(transport);
        Self {
            transports,
            counters: Arc::default(),
            outboxes: (0..MAX_ASSOCIATIONS).map(|_| Outbox::default()).collect(),
            lost: VecDeque::new(),
            turn: 0,
            closed: false,
        }
    }

    /// The transport of association 0, e.g. for its paths.
    pub fn transport(&self) -> &Arc<T> {
        // Slot 0 is filled in `new` and never emptied.
        self.transports[0]
            .as_ref()
            .unwrap_or_else(|| unreachable!("association 0 is always attached"))
    }

    /// The transport of association `index`, if attached.
    pub fn association(&self, index: u8) -> Option<&Arc<T>> {
        self.transports.get(usize::from(index))?.as_ref()
    }

    /// The attached associations, as a mask (bit k = association k).
    pub fn associations(&self) -> u16 {
        self.transports
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_some())
            .fold(0, |mask, (k, _)| mask | 1 << k)
    }

    /// Attaches extra association `index` (1..=15), replacing any transport
    /// attached there. Messages for it that were queued before go out now.
    /// Index 0 or out of range is ignored.
    pub fn add_association(&mut self, index: u8, transport: Arc<T>) {
        if index == 0 {
            return;
        }
        if let Some(slot) = self.transports.get_mut(usize::from(index)) {
            *slot = Some(transport);
            self.lost.retain(|(k, _)| *k != index);
        }
    }

    /// Detaches extra association `index` on purpose (after a `DETACH` was
    /// answered, or to give up on it): its queued messages are dropped and the
    /// session is told (`handle_association_lost`; after an answered `DETACH`
    /// nothing fails). Returns its transport, to shut down.
    pub fn remove_association<S: Session>(&mut self, session: &mut S, index: u8) -> Option<Arc<T>> {
        if index == 0 {
            return None;
        }
        let transport = self.transports.get_mut(usize::from(index))?.take();
        if let Some(outbox) = self.outboxes.get_mut(usize::from(index)) {
            outbox.clear();
        }
        session.handle_association_lost(index);
        self.drop_unroutable(session);
        transport
    }

    /// The byte counters.
    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Queues a message (for example a chunk just sealed) behind the ones
    /// already queued for its association; [`Driver::next_io`] or
    /// [`Driver::flush`] sends it.
    pub fn queue(&mut self, transmit: Transmit) {
        if let Some(outbox) = self.outboxes.get_mut(usize::from(transmit.association)) {
            outbox.push(transmit);
        }
    }

    /// Moves everything the session wants to send into the send queues.
    pub fn queue_from<S: Session>(&mut self, session: &mut S) {
        while let Some(transmit) = session.poll_transmit() {
            self.queue(transmit);
        }
    }

    /// How many messages wait in the send queues.
    pub fn queued(&self) -> usize {
        self.outboxes.iter().map(|o| o.messages.len()).sum()
    }

    /// How many bytes wait in the send queues: what a peer that does not read
    /// makes this side hold. Stop taking new work while it is over a cap.
    pub fn queued_bytes(&self) -> usize {
        self.outboxes.iter().map(|o| o.bytes).sum()
    }

    /// Sends the send queues and everything the session has queued. A failed
    /// extra association is detached and reported by the next
    /// [`Driver::next_io`] (the session is told now).
    ///
    /// # Errors
    /// The error of association 0's transport; what was not sent stays queued.
    ///
    /// # Cancel safety
    /// Cancellation-safe: what was not sent stays in the send queues.
    pub async fn flush<S: Session>(&mut self, session: &mut S) -> Result<(), TransportError> {
        self.queue_from(session);
        loop {
            let Some(index) = self.sendable().next() else {
                return Ok(());
            };
            if let Err(error) = self.send_front(index).await {
                if index == 0 {
                    return Err(error);
                }
                self.lose(session, index, error);
            }
        }
    }

    /// Sends one message now (for example a chunk just sealed), counting its
    /// bytes, ahead of its association's send queue. A message for an extra
    /// association that is not attached yet is queued instead; one whose
    /// association fails is dropped, and the loss reported by the next
    /// [`Driver::next_io`].
    ///
    /// # Errors
    /// [`TransportError::Closed`] once association 0 is gone, or its transport's
    /// error.
    ///
    /// # Cancel safety
    /// Not cancellation-safe: a cancelled call loses `transmit`. Use
    /// [`Driver::queue`] where the send may be cancelled.
    pub async fn send(&mut self, transmit: Transmit) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        let index = transmit.association;
        let Some(transport) = self.association(index).cloned() else {
            self.queue(transmit);
            return Ok(());
        };
        match transport.send(transmit.stream, &transmit.bytes).await {
            Ok(()) => {
                self.count_sent(transmit.bytes.len());
                Ok(())
            }
            Err(error) if index == 0 => Err(error),
            Err(error) => {
                self.detach(index);
                self.lost.push_back((index, Some(error)));
                Ok(())
            }
        }
    }

    fn count_sent(&self, len: usize) {
        self.counters.sent.fetch_add(len as u64, Ordering::Relaxed);
    }

    /// The attached associations with something queued.
    fn sendable(&self) -> impl Iterator<Item = u8> + '_ {
        self.outboxes
            .iter()
            .zip(&self.transports)
            .enumerate()
            .filter(|(_, (o, t))| t.is_some() && !o.messages.is_empty())
            // Indices are below MAX_ASSOCIATIONS, a u8.
            .map(|(k, _)| k as u8)
    }

    /// Sends the first message queued for association `index`, removing it
    /// only once the transport took it. Cancellation-safe.
    async fn send_front(&mut self, index: u8) -> Result<(), TransportError> {
        if self.closed {
            return Err(TransportError::Closed);
        }
        let k = usize::from(index);
        let (Some(Some(transport)), Some(outbox)) = (self.transports.get(k), self.outboxes.get(k))
        else {
            return Ok(());
        };
        let Some(transmit) = outbox.messages.front() else {
            return Ok(());
        };
        transport.send(transmit.stream, &transmit.bytes).await?;
        self.count_sent(transmit.bytes.len());
        self.outboxes[k].pop();
        Ok(())
    }

    /// Detaches extra association `index` after a failure (its queue dropped).
    fn detach(&mut self, index: u8) {
        if let Some(slot) = self.transports.get_mut(usize::from(index)) {
            *slot = None;
        }
        if let Some(outbox) = self.outboxes.get_mut(usize::from(index)) {
            outbox.clear();
        }
    }

    /// Extra association `index` failed: detach it, tell the session, and keep
    /// the loss for [`Driver::next_io`] to report.
    fn lose<S: Session>(&mut self, session: &mut S, index: u8, error: TransportError) {
        self.detach(index);
        session.handle_association_lost(index);
        self.drop_unroutable(session);
        self.lost.push_back((index, Some(error)));
    }

    /// Takes what the session queued (its aborts for the lost association's
    /// transfers, on association 0) and drops whatever it still had for
    /// associations that are gone.
    fn drop_unroutable<S: Session>(&mut self, session: &mut S) {
        self.queue_from(session);
    }

    /// Waits for a message or path event, the session's timer, or a queued
    /// message going out, and feeds it to the session. Same as
    /// [`Driver::next_io`] with [`Receive::On`].
    ///
    /// # Cancel safety
    /// Cancellation-safe.
    pub async fn next_input<S: Session>(&mut self, session: &mut S) -> Input {
        self.next_io(session, Receive::On).await
    }

    /// Waits for the first of: a message or path event on any attached
    /// association (unless `receive` is [`Receive::Paused`]), the session's
    /// timer, or the first queued message of any association going out; feeds
    /// it to the session. The timer fires whether or not the embedder reads, so
    /// a session that stops reading still times out.
    ///
    /// A failed send or receive on association 0 closes the driver and tells the
    /// session ([`Input::TransportClosed`]); on an extra association it detaches
    /// that one and tells the session ([`Input::AssociationLost`]).
    ///
    /// # Cancel safety
    /// Cancellation-safe: a queued message leaves its queue only once sent, and
    /// a received message reaches the session before this returns.
    pub async fn next_io<S: Session>(&mut self, session: &mut S, receive: Receive) -> Input {
        if self.closed {
            return Input::TransportClosed(None);
        }
        if let Some((index, error)) = self.lost.pop_front() {
            // The session was told when the loss was found, except by `send`;
            // telling it twice is harmless.
            session.handle_association_lost(index);
            self.drop_unroutable(session);
            if self.association(index).is_none() {
                // What the session queued for it before it knew.
                if let Some(outbox) = self.outboxes.get_mut(usize::from(index)) {
                    outbox.clear();
                }
            }
            return Input::AssociationLost { index, error };
        }
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        let ready = {
            let mut waiting = self.waiting(receive);
            if waiting.is_empty() {
                sleep_until(deadline).await;
                None
            } else {
                let turn = self.turn;
                tokio::select! {
                    ready = std::future::poll_fn(|cx| poll_first(&mut waiting, turn, cx)) => Some(ready),
                    () = sleep_until(deadline) => None,
                }
            }
        };
        self.turn = self.turn.wrapping_add(1);
        match ready {
            None => {
                session.handle_timeout(now());
                Input::Handled
            }
            Some(Ready::Sent(index, Ok(()))) => {
                let k = usize::from(index);
                if let Some(Some(transmit)) = self.outboxes.get(k).map(|o| o.messages.front()) {
                    self.count_sent(transmit.bytes.len());
                }
                if let Some(outbox) = self.outboxes.get_mut(k) {
                    outbox.pop();
                }
                Input::Handled
            }
            Some(Ready::Sent(index, Err(error)) | Ready::Received(index, Err(error))) => {
                self.failed(session, index, error)
            }
            Some(Ready::Received(index, Ok(event))) => match event {
                TransportEvent::Message { stream, data } => {
                    self.handle_message(session, index, stream, data)
                }
                TransportEvent::Path(event) if index == 0 => Input::Path(event),
                TransportEvent::Path(event) => {
                    log::debug!("association {index}: path event {event:?}");
                    Input::Handled
                }
                TransportEvent::Notice(text) if index == 0 => Input::Notice(text),
                TransportEvent::Notice(text) => {
                    Input::Notice(format!("association {index}: {text}"))
                }
            },
        }
    }

    /// The futures `next_io` waits on: each attached transport's `recv` (unless
    /// paused) and the send of each non-empty queue's first message.
    fn waiting(&self, receive: Receive) -> Vec<ReadyFuture<'_>> {
        let mut waiting: Vec<ReadyFuture<'_>> = Vec::new();
        for (k, (transport, outbox)) in self.transports.iter().zip(&self.outboxes).enumerate() {
            let Some(transport) = transport else {
                continue;
            };
            // Indices are below MAX_ASSOCIATIONS, a u8.
            let index = k as u8;
            if receive == Receive::On {
                waiting.push(Box::pin(async move {
                    Ready::Received(index, transport.recv().await)
                }));
            }
            if let Some(transmit) = outbox.messages.front() {
                waiting.push(Box::pin(async move {
                    Ready::Sent(
                        index,
                        transport.send(transmit.stream, &transmit.bytes).await,
                    )
                }));
            }
        }
        waiting
    }

    /// A send or receive on association `index` failed.
    fn failed<S: Session>(&mut self, session: &mut S, index: u8, error: TransportError) -> Input {
        let error = match error {
            TransportError::Closed => None,
            other => Some(other),
        };
        if index != 0 {
            self.detach(index);
            session.handle_association_lost(index);
            self.drop_unroutable(session);
            return Input::AssociationLost { index, error };
        }
        self.closed = true;
        session.handle_transport_closed();
        // The extra associations carried only this session's data.
        for transport in self.transports.iter_mut().skip(1).filter_map(Option::take) {
            transport.shutdown();
        }
        Input::TransportClosed(error)
    }

    fn handle_message<S: Session>(
        &mut self,
        session: &mut S,
        association: u8,
        stream: u16,
        mut message: Vec<u8>,
    ) -> Input {
        self.counters
            .received
            .fetch_add(message.len() as u64, Ordering::Relaxed);
        let base = message.as_ptr() as usize;
        let chunk = session
            .handle_message_on(association, stream, &mut message, now())
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

/// Polls every future once, starting at `turn` (modulo their count), and
/// returns the first that is ready.
fn poll_first(
    waiting: &mut [ReadyFuture<'_>],
    turn: usize,
    cx: &mut std::task::Context<'_>,
) -> Poll<Ready> {
    let count = waiting.len();
    for i in 0..count {
        let k = (turn + i) % count;
        if let Poll::Ready(ready) = waiting[k].as_mut().poll(cx) {
            return Poll::Ready(ready);
        }
    }
    Poll::Pending
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
