//! The listening server: binds, accepts, applies the connection limits, runs one
//! [`connection::serve`] task per client, and shuts down gracefully.
//!
//! ```text
//!  bind(config) ─▶ SctpListener ─▶ run(listener, ctx, limits, shutdown)
//!                                   │ accept ─▶ pre-auth place? ─▶ spawn: first message
//!                                   │     ├ BIND ─▶ its session (an extra data association)
//!                                   │     └ else ─▶ client and source limits? ─▶ serve a session
//!                                   │ accept error ─▶ log, back off (10 ms doubling to 1 s)
//!                                   └ shutdown fires ─▶ stop accepting, signal every
//!                                     connection, wait for them (bounded)
//! ```
//!
//! [`run`] takes the shutdown signal as a future (as mini-redis does), so the
//! binary passes Ctrl-C/SIGTERM and tests pass whatever they like, through one
//! code path. It is generic over [`Listener`] so that host tests can feed it
//! in-memory transports.
//!
//! Every new association counts as not logged in (`max_unauthenticated`) until
//! its first message is read, in its own task, with a timeout: an extra data
//! association (a `BIND`) then goes to its session and counts against the
//! association limits instead of `max_clients` and `max_per_source`, which
//! count sessions.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sfs_net::Transport;
use sfs_sctp::{
    DelayedSack, FailoverTuning, SctpAssociation, SctpConfig, SctpListener, StreamScheduler,
};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::audit::{AuditEvent, AuditOutcome, EventKind, Reason};
use crate::config::{Scheduler, ServerConfig};
use crate::connection;
use crate::context::ServerContext;
use crate::limits::{MaxStartups, PreAuth, PreAuthSlot, Refusal, SourceCounts};

/// Where connections come from: an [`SctpListener`] in the server, a channel of
/// in-memory transports in tests.
pub trait Listener: Send + 'static {
    /// The accepted connection.
    type Connection: Transport;
    /// Waits for the next connection.
    fn accept(&self) -> impl Future<Output = Result<Self::Connection, sfs_sctp::Error>> + Send;
}

impl Listener for SctpListener {
    type Connection = SctpAssociation;

    fn accept(&self) -> impl Future<Output = Result<SctpAssociation, sfs_sctp::Error>> + Send {
        SctpListener::accept(self)
    }
}

/// Limits on connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Connections served at once; more are refused.
    pub max_clients: usize,
    /// Connections at once from one source (any peer address of the association;
    /// IPv6 by /64); more are refused.
    pub max_per_source: usize,
    /// Connections not logged in yet: refused at random past `start`, always at
    /// `full`, so unauthenticated peers cannot hold every slot.
    pub max_unauthenticated: MaxStartups,
    /// How long to wait for connections to end after the shutdown signal, beyond
    /// their own grace for transfers.
    pub shutdown_wait: Duration,
}

impl ConnectionLimits {
    /// The limits a configuration asks for.
    pub fn from_config(config: &ServerConfig) -> Self {
        Self {
            max_clients: config.limits.max_clients.max(1),
            max_per_source: config.limits.max_per_source.max(1),
            max_unauthenticated: below(
                config.limits.max_unauthenticated,
                config.limits.max_clients,
            ),
            shutdown_wait: Duration::from_secs(15),
        }
    }
}

/// `policy` with `full` lowered below `max_clients` (but at least 1), so that
/// unauthenticated associations never hold every slot.
fn below(policy: MaxStartups, max_clients: usize) -> MaxStartups {
    let full = policy.full.min(max_clients.saturating_sub(1)).max(1);
    MaxStartups {
        start: policy.start.min(full),
        full,
        ..policy
    }
}

/// The SCTP settings a configuration asks for. `streams` counts data streams, so
/// the association asks for one more (stream 0 carries control).
pub fn sctp_config(config: &ServerConfig) -> SctpConfig {
    let tuning = &config.sctp;
    let streams = config.streams.saturating_add(1);
    let mut sctp = SctpConfig::default();
    sctp.outbound_streams = streams;
    sctp.max_inbound_streams = streams;
    sctp.max_message_size = config.limits.max_message_bytes.max(70 * 1024);
    sctp.send_buffer_size = tuning.send_buffer_bytes;
    sctp.recv_buffer_size = tuning.recv_buffer_bytes;
    sctp.nodelay = tuning.nodelay;
    sctp.failover = tuning.fast_failover.then(|| {
        let mut failover = FailoverTuning::FAST;
        failover.rto_initial = Duration::from_millis(tuning.rto_initial_ms.into());
        failover.rto_min = Duration::from_millis(tuning.rto_min_ms.into());
        failover.rto_max = Duration::from_millis(tuning.rto_max_ms.into());
        failover.heartbeat_interval = Duration::from_millis(tuning.heartbeat_interval_ms.into());
        failover.path_max_retrans = tuning.path_max_retrans;
        failover.pf_retrans = tuning.pf_retrans;
        failover
    });
    sctp.delayed_sack = Some(DelayedSack::new(
        Duration::from_millis(tuning.sack_delay_ms.into()),
        tuning.sack_frequency,
    ));
    sctp.scheduler = match tuning.scheduler {
        Scheduler::Fcfs => StreamScheduler::FirstComeFirstServed,
        Scheduler::RoundRobin => StreamScheduler::RoundRobin,
        Scheduler::FairCapacity => StreamScheduler::FairCapacity,
    };
    sctp.interleaving = tuning.interleaving;
    sctp
}

/// Why the server could not start listening.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The kernel has no SCTP.
    #[error("kernel SCTP is not available: load it with `sudo modprobe sctp`")]
    SctpUnavailable,
    /// Another process holds the port.
    #[error("port {port} is already in use on {addrs} (is another sfs-server running?)")]
    PortInUse {
        /// The port.
        port: u16,
        /// The addresses, comma-separated.
        addrs: String,
    },
    /// An address is not one of this host's.
    #[error("cannot bind {addrs}: an address is not assigned to this host")]
    AddressNotAvailable {
        /// The addresses, comma-separated.
        addrs: String,
    },
    /// Anything else.
    #[error("cannot listen on {addrs}: {source}")]
    Other {
        /// The addresses, comma-separated.
        addrs: String,
        /// Why.
        source: sfs_sctp::Error,
    },
}

/// Binds every configured address (one multi-homed listener) on the configured port.
///
/// # Errors
///
/// - [`BindError::SctpUnavailable`] if the kernel has no SCTP;
/// - [`BindError::PortInUse`] on `EADDRINUSE`, [`BindError::AddressNotAvailable`] on
///   `EADDRNOTAVAIL`;
/// - [`BindError::Other`] for any other failure (no address, a socket option).
pub fn bind(config: &ServerConfig) -> Result<SctpListener, BindError> {
    let addrs: Vec<SocketAddr> = config
        .bind
        .iter()
        .map(|ip| SocketAddr::new(*ip, config.port))
        .collect();
    let shown = addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    SctpListener::bind(&addrs, &sctp_config(config)).map_err(|error| match error {
        sfs_sctp::Error::SctpUnavailable => BindError::SctpUnavailable,
        sfs_sctp::Error::Io { ref source, .. }
            if source.raw_os_error() == Some(nix::libc::EADDRINUSE) =>
        {
            BindError::PortInUse {
                port: config.port,
                addrs: shown,
            }
        }
        sfs_sctp::Error::Io { ref source, .. }
            if source.raw_os_error() == Some(nix::libc::EADDRNOTAVAIL) =>
        {
            BindError::AddressNotAvailable { addrs: shown }
        }
        source => BindError::Other {
            addrs: shown,
            source,
        },
    })
}

/// Accepts and serves connections until `shutdown` completes, then stops
/// accepting, tells every connection, and waits (bounded) for them to end.
///
/// # Cancel safety
///
/// Not cancellation-safe: dropping the future drops the listener and aborts every
/// connection task at once, as if each client had vanished, with no goodbye and no
/// grace period. Complete `shutdown` instead for an orderly stop.
pub async fn run<L: Listener>(
    listener: L,
    ctx: Arc<ServerContext>,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let (signal, watcher) = watch::channel(false);
    let clients = Arc::new(Semaphore::new(limits.max_clients));
    let sources = Arc::new(SourceCounts::default());
    let pre_auth = Arc::new(PreAuth::new(limits.max_unauthenticated));
    let refusals = Refusals {
        handshakes: Arc::new(Semaphore::new(MAX_REFUSAL_HANDSHAKES)),
    };
    let gate = Gate {
        clients,
        sources,
        max_per_source: limits.max_per_source,
        refusals: refusals.clone(),
    };
    let mut handlers = JoinSet::new();
    let mut backoff = INITIAL_BACKOFF;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = handlers.join_next(), if !handlers.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let transport = match accepted {
            Ok(transport) => {
                backoff = INITIAL_BACKOFF;
                transport
            }
            Err(error) => {
                // Usually one association died before it was accepted; if the
                // listener itself is failing, backing off keeps the log readable.
                log::warn!("accept failed: {error}; retrying in {backoff:?}");
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        let Some(waiting) = pre_auth.admit() else {
            let peers = transport.peer_addrs();
            refusals.refuse(
                &ctx,
                transport.into(),
                &peers,
                &watcher,
                Refusal::Unauthenticated,
            );
            continue;
        };
        let (ctx, watcher, gate) = (ctx.clone(), watcher.clone(), gate.clone());
        handlers.spawn(async move { gate.serve(ctx, transport, watcher, waiting).await });
    }
    drop(listener);
    let _ = signal.send(true);
    let wait = ctx.settings.shutdown_grace + limits.shutdown_wait;
    let finished = tokio::time::timeout(wait, async {
        while handlers.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        log::warn!(
            "{} connection(s) did not end within {wait:?}; dropping them",
            handlers.len()
        );
        handlers.abort_all();
        while handlers.join_next().await.is_some() {}
    }
}

const INITIAL_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Refused clients told why over TLS at once; past this, refused associations
/// are closed without a word, so refusing stays cheap under a flood.
const MAX_REFUSAL_HANDSHAKES: usize = 4;

/// The limits a new session must pass once its first message showed it is one.
#[derive(Clone)]
struct Gate {
    clients: Arc<Semaphore>,
    sources: Arc<SourceCounts>,
    max_per_source: usize,
    refusals: Refusals,
}

impl Gate {
    /// Reads the first message of `transport` (holding `waiting`, its place
    /// among the unauthenticated, meanwhile): an extra data association goes to
    /// its session; a new session is served if the client and source limits
    /// allow, else refused with its reason.
    async fn serve<T: Transport>(
        self,
        ctx: Arc<ServerContext>,
        transport: T,
        watcher: watch::Receiver<bool>,
        waiting: PreAuthSlot,
    ) -> connection::ConnectionSummary {
        let new = match connection::open(&ctx, transport, &watcher).await {
            connection::Opening::Session(new) => new,
            connection::Opening::Done(summary) => return summary,
        };
        let peers = new.peer_addrs();
        let Ok(permit) = self.clients.clone().try_acquire_owned() else {
            return self.refuse_now(&ctx, new, &peers, &watcher, Refusal::Full);
        };
        let Some(slot) = self.sources.take(&peers, self.max_per_source) else {
            let limit = self.max_per_source;
            return self.refuse_now(&ctx, new, &peers, &watcher, Refusal::PerSource { limit });
        };
        let _held = (permit, slot);
        connection::serve_session(ctx, new, watcher, Some(waiting)).await
    }

    fn refuse_now<T: Transport>(
        &self,
        ctx: &Arc<ServerContext>,
        new: connection::NewSession<T>,
        peers: &[SocketAddr],
        watcher: &watch::Receiver<bool>,
        why: Refusal,
    ) -> connection::ConnectionSummary {
        self.refusals.refuse(ctx, new, peers, watcher, why);
        connection::ConnectionSummary::of_association(sfs_proto::control::ErrorCode::BUSY)
    }
}

/// Turns clients away, with their reason when a handshake slot is free.
#[derive(Clone)]
struct Refusals {
    handshakes: Arc<Semaphore>,
}

impl Refusals {
    /// Logs the refusal, then either tells the client why (a TLS handshake and a
    /// Close carrying the reason: Linux refuses `SCTP_ABORT` with a reason on
    /// one-to-one sockets) or, when too many refusals are in progress, closes.
    fn refuse<T: Transport>(
        &self,
        ctx: &Arc<ServerContext>,
        new: connection::NewSession<T>,
        peers: &[SocketAddr],
        watcher: &watch::Receiver<bool>,
        why: Refusal,
    ) {
        let event = AuditEvent::new(EventKind::Refuse, AuditOutcome::Denied)
            .peers(peers)
            .reason(Reason::from(&why));
        if let Err(error) = ctx.audit.record(&event) {
            log::error!("cannot write server.log: {error}");
        }
        let Ok(permit) = self.handshakes.clone().try_acquire_owned() else {
            new.shutdown();
            return;
        };
        let ctx = ctx.clone();
        let watcher = watcher.clone();
        // Detached: bounded by the permit and the session's handshake timeout.
        tokio::spawn(async move {
            let _permit = permit;
            connection::refuse(ctx, new, watcher, why).await
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sctp_config_asks_for_the_control_stream_too() {
        let mut config = ServerConfig {
            streams: 8,
            ..ServerConfig::default()
        };
        config.sctp.rto_min_ms = 150;
        let sctp = sctp_config(&config);
        assert_eq!((sctp.outbound_streams, sctp.max_inbound_streams), (9, 9));
        assert_eq!(sctp.failover.unwrap().rto_min, Duration::from_millis(150));
        config.sctp.fast_failover = false;
        assert!(sctp_config(&config).failover.is_none());
    }
}
