//! Extra data associations on the server side.
//!
//! ```text
//!  new association ─▶ open(): first message (within FIRST_MESSAGE_TIMEOUT)
//!     ├ "SFSB…" BIND ─▶ registry: ticket → that session's channel ─▶ its task:
//!     │                   verify_bind ─▶ BIND_ACK, Driver::add_association
//!     │                   └ refused ─▶ BIND_ACK(status), shut down
//!     ├ stream 0, anything else ─▶ a new session (its ClientHello)
//!     └ a data record, or nothing ─▶ shut down
//! ```
//!
//! The association is read only inside its own task (never in the accept loop),
//! and nothing it sends before its `BIND` is verified reaches a session: a BIND
//! that does not parse, presents a ticket the registry does not hold (never
//! issued, used already, expired, of a session that ended) or fails the
//! session's checks is answered with its status and shut down. The ticket is
//! taken out of the registry by the first attempt, right or wrong.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfs_net::{now, Transport, TransportError, TransportEvent};
use sfs_proto::bind::{is_bind, BindAck, BindError, BindRequest, BIND_TICKET_LIFETIME};
use sfs_proto::control::{ErrorCode, Reply, RequestId};
use sfs_proto::session::ApiError;
use tokio::sync::mpsc;

use super::{Completion, ConnectionSummary, ConnectionTask, ShutdownSignal};
use crate::accounts::Username;
use crate::associations::{AssociationRegistry, AssociationSlot, SessionKey, Unredeemed};
use crate::audit::{AuditEvent, AuditOutcome, EventKind, Reason};
use crate::cmd::AssocGrant;
use crate::context::ServerContext;

/// How long a new association may take to send its first message (a BIND or
/// a ClientHello, both sent at once by a real client) before it is shut down;
/// never longer than the login grace. A ticket lives no longer than this anyway.
pub const FIRST_MESSAGE_TIMEOUT: Duration = BIND_TICKET_LIFETIME;

/// How long a refused association's `BIND_ACK` may take to go out.
const ACK_SEND_TIME: Duration = Duration::from_secs(2);

/// Path events kept from before the first message of a new session.
const MAX_EARLY_EVENTS: usize = 32;

/// A new association presenting a `BIND`, on its way to the session whose
/// ticket it names.
pub(crate) struct BindAttempt<T> {
    transport: T,
    bind: BindRequest,
    peers: Vec<SocketAddr>,
}

/// Where a session receives its new associations: what the registry holds for
/// each of its tickets.
type BindRoute<T> = mpsc::Sender<BindAttempt<T>>;

/// A new association whose first message starts a session (or that closed
/// before sending one), with what it sent so far.
pub struct NewSession<T> {
    pub(super) transport: T,
    /// Path events, then the first message, in the order they came.
    pub(super) early: Vec<TransportEvent>,
}

impl<T> From<T> for NewSession<T> {
    /// An association nothing was read from yet.
    fn from(transport: T) -> Self {
        Self {
            transport,
            early: Vec::new(),
        }
    }
}

impl<T: Transport> NewSession<T> {
    /// The peer's addresses.
    pub fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.transport.peer_addrs()
    }

    /// Shuts the association down without serving it.
    pub fn shutdown(&self) {
        self.transport.shutdown();
    }
}

/// What the first message of a new association made of it.
pub enum Opening<T> {
    /// It starts a session: serve it (or refuse it) as one.
    Session(NewSession<T>),
    /// It was a `BIND` (handed to its session, or refused), or it was shut
    /// down: nothing more to do. The code is `NO_ERROR` for an association
    /// handed to its session, else why it was refused.
    Done(ConnectionSummary),
}

/// Reads the first message of a newly accepted association: a `BIND` goes to
/// the session whose ticket it presents (or is refused), a message on stream 0
/// starts a new session, and an association that sends a data record first,
/// or nothing within [`FIRST_MESSAGE_TIMEOUT`] (at most the login grace), is
/// shut down. An association that closes before sending anything, or whose
/// server begins to shut down (`shutdown`) first, is handed on as a session,
/// which then sees it closed or closes it.
///
/// # Cancel safety
///
/// Safe to drop: the association is then dropped too (shut down), and a
/// ticket read from it stays consumed.
pub async fn open<T: Transport>(
    ctx: &Arc<ServerContext>,
    transport: T,
    shutdown: &ShutdownSignal,
) -> Opening<T> {
    let wait = FIRST_MESSAGE_TIMEOUT.min(ctx.settings.login_grace);
    let deadline = tokio::time::Instant::now() + wait;
    let mut shutdown = shutdown.clone();
    let mut early = Vec::new();
    loop {
        let received = tokio::select! {
            // A server shutting down serves no new association: as a session,
            // it closes at once with SHUTTING_DOWN.
            _ = shutdown.wait_for(|stopping| *stopping) => {
                return Opening::Session(NewSession { transport, early });
            }
            received = tokio::time::timeout_at(deadline, transport.recv()) => received,
        };
        let event = match received {
            Err(_elapsed) => {
                let peers = transport.peer_addrs();
                refuse_opening(ctx, &peers, "nothing received in time");
                transport.shutdown();
                return Opening::Done(ConnectionSummary::of_association(ErrorCode::TIMED_OUT));
            }
            // Gone already: the session finds it closed.
            Ok(Err(_)) => return Opening::Session(NewSession { transport, early }),
            Ok(Ok(event)) => event,
        };
        match event {
            TransportEvent::Message { stream: 0, data } if is_bind(&data) => {
                let code = route_bind(ctx, transport, &data).await;
                return Opening::Done(ConnectionSummary::of_association(code));
            }
            TransportEvent::Message { stream: 0, .. } => {
                early.push(event);
                return Opening::Session(NewSession { transport, early });
            }
            TransportEvent::Message { .. } => {
                let peers = transport.peer_addrs();
                refuse_opening(ctx, &peers, "a data record before any handshake or BIND");
                transport.shutdown();
                return Opening::Done(ConnectionSummary::of_association(ErrorCode::BAD_REQUEST));
            }
            other => {
                if early.len() < MAX_EARLY_EVENTS {
                    early.push(other);
                }
            }
        }
    }
}

/// Logs a new association shut down before it said what it is.
fn refuse_opening(ctx: &ServerContext, peers: &[SocketAddr], reason: &'static str) {
    write_log(
        ctx,
        &AuditEvent::new(EventKind::Refuse, AuditOutcome::Denied)
            .peers(peers)
            .reason(reason),
    );
}

/// Hands a `BIND` to the session that issued its ticket; returns `NO_ERROR`,
/// or the status it was refused with.
async fn route_bind<T: Transport>(
    ctx: &Arc<ServerContext>,
    transport: T,
    message: &[u8],
) -> ErrorCode {
    let peers = transport.peer_addrs();
    let bind = match BindRequest::decode(message) {
        Ok(bind) => bind,
        Err(error) => {
            log_bind_refusal(ctx, &peers, None, None, error);
            send_refusal(transport, error.code()).await;
            return error.code();
        }
    };
    let index = bind.index;
    let error = match ctx.associations.redeem::<BindRoute<T>>(&bind.ticket, now()) {
        Ok(route) => match route.try_send(BindAttempt {
            transport,
            bind,
            peers,
        }) {
            Ok(()) => return ErrorCode::NO_ERROR,
            // The session ended (its channel is closed) or has a backlog of
            // associations (more than it can have).
            Err(refused) => {
                let attempt = refused.into_inner();
                let error = BindError::Closed;
                log_bind_refusal(ctx, &attempt.peers, Some(index), None, error);
                send_refusal(attempt.transport, error.code()).await;
                return error.code();
            }
        },
        Err(Unredeemed::Unknown) => BindError::UnknownTicket,
        Err(Unredeemed::Expired) => BindError::Expired,
    };
    log_bind_refusal(ctx, &peers, Some(index), None, error);
    send_refusal(transport, error.code()).await;
    error.code()
}

/// Sends a refused association its `BIND_ACK` (bounded in time), then shuts it
/// down.
async fn send_refusal<T: Transport>(transport: T, status: ErrorCode) {
    let ack = BindAck { status }.encode();
    let _ = tokio::time::timeout(ACK_SEND_TIME, transport.send(0, &ack)).await;
    transport.shutdown();
}

fn log_bind_refusal(
    ctx: &ServerContext,
    peers: &[SocketAddr],
    index: Option<u8>,
    user: Option<&Username>,
    error: BindError,
) {
    let mut event = AuditEvent::new(EventKind::Bind, AuditOutcome::Denied)
        .peers(peers)
        .reason(Reason::from(&error));
    if let Some(index) = index {
        event = event.association(index);
    }
    if let Some(user) = user {
        event = event.user(user);
    }
    write_log(ctx, &event);
}

fn write_log(ctx: &ServerContext, event: &AuditEvent<'_>) {
    if let Err(error) = ctx.audit.record(event) {
        log::error!("cannot write server.log: {error}");
    }
}

/// A ticket this session granted, waiting for its association.
struct PendingTicket {
    ticket: [u8; 16],
    expires: Instant,
    slot: AssociationSlot,
}

/// An extra association bound to this session.
struct BoundAssociation {
    peers: Vec<SocketAddr>,
    _slot: Option<AssociationSlot>,
}

/// A session's extra data associations: its tickets, its bound associations and
/// the channel new ones reach it by. Dropping it takes the session's tickets
/// out of the registry.
pub(super) struct ExtraAssociations<T> {
    registry: Arc<AssociationRegistry>,
    key: SessionKey,
    route: BindRoute<T>,
    pub(super) attempts: mpsc::Receiver<BindAttempt<T>>,
    /// By association index.
    pending: HashMap<u8, PendingTicket>,
    /// Bound, their `BIND_ACK` on its way, by association index.
    acking: HashMap<u8, (Arc<T>, BoundAssociation)>,
    /// By association index.
    bound: HashMap<u8, BoundAssociation>,
    /// Extra associations bound over the session's life.
    pub(super) bound_total: usize,
}

impl<T: Transport> ExtraAssociations<T> {
    pub(super) fn new(registry: Arc<AssociationRegistry>) -> Self {
        // Room for every association a session can have: a session never has
        // more tickets out, so the channel is never full in practice.
        let (route, attempts) = mpsc::channel(usize::from(sfs_proto::bind::MAX_ASSOCIATIONS));
        Self {
            key: registry.new_session(),
            registry,
            route,
            attempts,
            pending: HashMap::new(),
            acking: HashMap::new(),
            bound: HashMap::new(),
            bound_total: 0,
        }
    }

    /// Shuts down every extra association, bound or being bound.
    pub(super) fn shutdown_all(&mut self, driver: &sfs_net::Driver<T>) {
        for (transport, _) in self.acking.values() {
            transport.shutdown();
        }
        self.acking.clear();
        for index in self.bound.keys() {
            if let Some(transport) = driver.association(*index) {
                transport.shutdown();
            }
        }
    }
}

impl<T> Drop for ExtraAssociations<T> {
    fn drop(&mut self) {
        self.registry.forget_session(self.key);
    }
}

impl<T: Transport> ConnectionTask<T> {
    /// Grants an ASSOC whose limits and ticket the command prepared: registers
    /// the ticket for routing, then has the session answer `AssocTicket`.
    pub(super) fn grant_association(&mut self, id: RequestId, grant: AssocGrant) {
        let AssocGrant { slot, ticket } = grant;
        let now = now();
        let expires = now + BIND_TICKET_LIFETIME;
        let extras = &mut self.extras;
        extras
            .registry
            .register(ticket, extras.key, expires, extras.route.clone(), now);
        match self.session.grant_association(id, ticket, now) {
            Ok(index) => {
                extras.pending.insert(
                    index,
                    PendingTicket {
                        ticket,
                        expires,
                        slot,
                    },
                );
            }
            Err(error) => {
                extras.registry.withdraw(&ticket);
                drop(slot);
                let reply = match error {
                    ApiError::TooManyAssociations => {
                        let limit = self.ctx.settings.max_associations;
                        self.record(
                            AuditEvent::new(EventKind::Assoc, AuditOutcome::Denied)
                                .reason("the session has the most associations allowed"),
                        );
                        let message = if limit <= 1 {
                            "this server does not allow extra data associations".to_owned()
                        } else {
                            format!(
                                "this session already has the most associations allowed \
                                 ({limit}, the first included)"
                            )
                        };
                        Reply::error(ErrorCode::ASSOCIATION_LIMIT, message)
                    }
                    other => {
                        log::debug!("ASSOC not granted: {other}");
                        Reply::error(ErrorCode::BAD_REQUEST, "no association can be added now")
                    }
                };
                self.respond(id, reply);
            }
        }
    }

    /// A new association presented one of this session's tickets: binds it
    /// (BIND_ACK, then it carries data) or refuses it.
    pub(super) fn bind_attempt(&mut self, attempt: BindAttempt<T>) {
        let BindAttempt {
            transport,
            bind,
            peers,
        } = attempt;
        // The ticket is used up whatever the outcome.
        let issued = self
            .extras
            .pending
            .iter()
            .find(|(_, pending)| pending.ticket == bind.ticket)
            .map(|(index, _)| *index);
        let slot = issued
            .and_then(|index| self.extras.pending.remove(&index))
            .map(|pending| pending.slot);
        match self.session.verify_bind(&bind, transport.streams(), now()) {
            Ok(index) => {
                // The BIND_ACK goes out first, on its own, so that no record
                // precedes it; meanwhile what the session sends on the new
                // association waits in the driver's queue for it.
                let transport = Arc::new(transport);
                let sending = transport.clone();
                self.jobs.spawn(async move {
                    let ack = BindAck {
                        status: ErrorCode::NO_ERROR,
                    }
                    .encode();
                    let sent = tokio::time::timeout(ACK_SEND_TIME, sending.send(0, &ack)).await;
                    Completion::BindAcked {
                        index,
                        sent: matches!(sent, Ok(Ok(()))),
                    }
                });
                self.extras
                    .acking
                    .insert(index, (transport, BoundAssociation { peers, _slot: slot }));
            }
            Err(error) => {
                let user = self.account.as_ref().map(|account| &account.name);
                log_bind_refusal(&self.ctx, &peers, Some(bind.index), user, error);
                drop(slot);
                // Detached, bounded by ACK_SEND_TIME: the loop never waits on it.
                tokio::spawn(send_refusal(transport, error.code()));
            }
        }
    }

    /// The `BIND_ACK` of association `index` went out (or could not): it now
    /// carries data, or counts as lost at once.
    pub(super) fn bind_acked(&mut self, index: u8, sent: bool) {
        let Some((transport, bound)) = self.extras.acking.remove(&index) else {
            return;
        };
        if !sent || self.session.is_closed() {
            transport.shutdown();
            // Fails whatever the session already put on it.
            self.driver.remove_association(&mut self.session, index);
            return;
        }
        self.driver.add_association(index, transport);
        self.record_association(
            AuditEvent::new(EventKind::Bind, AuditOutcome::Ok).association(index),
            &bound.peers,
        );
        self.extras.bound_total += 1;
        self.extras.bound.insert(index, bound);
    }

    /// Extra association `index` failed or was closed by the client: the
    /// driver detached it and the session failed the transfers using it.
    pub(super) fn association_lost(&mut self, index: u8, error: Option<TransportError>) {
        let Some(bound) = self.extras.bound.remove(&index) else {
            return;
        };
        let (outcome, reason) = match &error {
            None => (AuditOutcome::Info, Reason::from("closed by the client")),
            Some(error) => (AuditOutcome::Failed, Reason::from(error)),
        };
        let event = AuditEvent::new(EventKind::Unbind, outcome)
            .association(index)
            .reason(reason);
        self.record_association(event, &bound.peers);
    }

    /// Drops the tickets whose time is over (the session forgot them too), so
    /// their places count no more.
    pub(super) fn sweep_tickets(&mut self) {
        let now = now();
        let extras = &mut self.extras;
        let registry = &extras.registry;
        extras.pending.retain(|_, pending| {
            let live = pending.expires > now;
            if !live {
                registry.withdraw(&pending.ticket);
            }
            live
        });
    }

    /// The session closed: no new association can bind. Takes its tickets out
    /// of the registry and refuses the attempts already on their way.
    pub(super) fn close_associations(&mut self) {
        self.extras.registry.forget_session(self.extras.key);
        self.extras.pending.clear();
        self.extras.attempts.close();
        while let Ok(attempt) = self.extras.attempts.try_recv() {
            let user = self.account.as_ref().map(|account| &account.name);
            let error = BindError::Closed;
            log_bind_refusal(
                &self.ctx,
                &attempt.peers,
                Some(attempt.bind.index),
                user,
                error,
            );
            tokio::spawn(send_refusal(attempt.transport, error.code()));
        }
    }

    fn record_association(&self, event: AuditEvent<'_>, peers: &[SocketAddr]) {
        let mut event = event.peers(peers);
        if let Some(account) = &self.account {
            event = event.user(&account.name);
        }
        self.write_log(&event);
    }
}
