//! Extra data associations: opening them (ASSOC, connect, BIND), retiring them
//! (DETACH), the adaptive policy's measurements, and what `status` shows.
//!
//! ```text
//!   ASSOC ──► AssocTicket{index, ticket} ──► connector.connect()   (a task)
//!       ──► session.bind_association ──► BIND on stream 0, read until BIND_ACK (a task)
//!       ──► driver.add_association(index), early data-stream messages fed in
//!   DETACH{index} ──► Ok ──► driver.remove_association(index) ──► shutdown
//! ```
//!
//! The network steps run as tasks on the runtime, so the session keeps moving
//! (and transfers keep running) while an association is set up; their results
//! come back through the wait loops' `select!`. A refused or failed opening is
//! told once and the session goes on with the associations it has.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfs_net::{now, Connector, PathStatus, Transport, TransportError, TransportEvent};
use sfs_proto::bind::{BindAck, BindRequest, BIND_TICKET_LIFETIME};
use sfs_proto::control::{Command, ErrorCode, Reply, RequestId};
use sfs_proto::session::StreamCounts;
use tokio::task::JoinSet;

use super::adaptive::{Adaptive, Associations, Step};
use super::Remote;
use crate::display::escape;

/// How often the adaptive policy measures throughput.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// How long an opened association may take to answer its BIND.
const BIND_TIMEOUT: Duration = BIND_TICKET_LIFETIME;

/// Data-stream bytes kept from a new association before its BIND_ACK. Until the
/// ACK nothing on it is authenticated (its records are checked only once fed to
/// the session), so a peer that floods it is refused rather than buffered: the
/// server sends records only within credit this client granted, far below this.
const EARLY_LIMIT: usize = 16 * 1024 * 1024;

type Connecting<T> = Pin<Box<dyn Future<Output = Result<T, TransportError>> + Send>>;

/// [`Connector`] with a boxed future, so a [`Remote`] can keep any connector
/// for its transport without a second type parameter.
trait DynConnector<T>: Send + Sync {
    fn connect_boxed(self: Arc<Self>) -> Connecting<T>;
}

impl<C: Connector> DynConnector<C::Transport> for C {
    fn connect_boxed(self: Arc<Self>) -> Connecting<C::Transport> {
        Box::pin(async move { Connector::connect(&*self).await })
    }
}

/// What a set-up task hands back.
pub(super) enum Opening<T> {
    /// The new association is up (or failed to come up).
    Connected {
        index: u8,
        ticket: [u8; 16],
        result: Result<T, TransportError>,
    },
    /// The server answered the BIND (or did not, or refused it).
    Bound {
        index: u8,
        transport: Arc<T>,
        /// Data-stream messages that arrived before the BIND_ACK, in order.
        early: Vec<(u16, Vec<u8>)>,
        result: Result<(), String>,
    },
}

/// One association of the session, for `status`.
#[derive(Debug, Clone)]
pub struct AssociationStatus {
    /// Its index: 0 is the first (control) association.
    pub index: u8,
    /// Its paths to the server and their states.
    pub paths: Vec<PathStatus>,
    /// Its negotiated stream counts.
    pub streams: StreamCounts,
}

/// A throughput measurement under way. Only the time during which transfers
/// ran counts, so the gaps between transfers (and the user's typing between
/// commands) do not read as a slower path.
#[derive(Debug, Clone, Copy)]
struct Measure {
    /// When the measurement was last brought up to date.
    last: Instant,
    /// Time with transfers running, so far.
    busy: Duration,
    /// The byte counters when it started.
    bytes: u64,
    /// The bound associations it measures.
    associations: u16,
}

/// The extra associations' state in a [`Remote`].
pub(super) struct Extras<T> {
    connector: Option<Arc<dyn DynConnector<T>>>,
    setting: Associations,
    /// What the server allows, the first association included.
    limit: u8,
    tasks: JoinSet<Opening<T>>,
    /// ASSOC requests in flight.
    requested: Vec<RequestId>,
    /// DETACH requests in flight, by the index they retire.
    detaching: HashMap<RequestId, u8>,
    /// Bound extra associations, oldest first.
    bound: Vec<u8>,
    policy: Adaptive,
    measure: Option<Measure>,
    /// A failed opening was told already (it is told once).
    told: bool,
    /// The setting's initial count was asked for (at the first transfer).
    initial_requested: bool,
}

impl<T> Extras<T> {
    pub(super) fn new(setting: Associations) -> Self {
        Self {
            connector: None,
            setting,
            limit: 1,
            tasks: JoinSet::new(),
            requested: Vec::new(),
            detaching: HashMap::new(),
            bound: Vec::new(),
            policy: Adaptive::new(),
            measure: None,
            told: false,
            initial_requested: false,
        }
    }

    /// Associations being opened (requested or being set up).
    fn opening(&self) -> usize {
        self.requested.len() + self.tasks.len()
    }

    /// Whether a fixed count is still being opened: transfers wait for it, so
    /// that they are spread over every association from the start.
    pub(super) fn holds_transfers(&self) -> bool {
        matches!(self.setting, Associations::Fixed(_)) && self.opening() > 0
    }

    /// The next finished set-up task; pending forever when there is none.
    /// Cancel-safe.
    pub(super) async fn next_opening(&mut self) -> Option<Opening<T>>
    where
        T: Send + 'static,
    {
        if self.tasks.is_empty() {
            return std::future::pending().await;
        }
        match self.tasks.join_next().await {
            Some(Ok(opening)) => Some(opening),
            Some(Err(err)) => {
                log::debug!("an association set-up task ended: {err}");
                None
            }
            None => None,
        }
    }
}

/// The server's `max_associations` in a login answer (1 when it has none).
pub(super) fn limit_from_login(replies: &[Reply]) -> u8 {
    match replies.last() {
        Some(Reply::Limits {
            max_associations, ..
        }) => (*max_associations).max(1),
        _ => 1,
    }
}

impl<T: Transport> Remote<T> {
    /// Lets the session open extra data associations with `connector` (one to
    /// the same server, set up like the first), as the options'
    /// [`Associations`] say: a fixed count is requested when the first transfer
    /// starts (transfers wait until those are bound or have failed; a session
    /// that only lists or renames opens none), `auto` grows as it measures.
    /// Without a connector the session keeps its one association.
    pub fn set_connector<C: Connector<Transport = T>>(&mut self, connector: C) {
        self.extras.connector = Some(Arc::new(connector));
    }

    /// Asks for the setting's initial count of associations, once per session:
    /// called when transfers are about to start.
    pub(super) fn open_initial_associations(&mut self) {
        if self.extras.initial_requested || self.extras.connector.is_none() {
            return;
        }
        self.extras.initial_requested = true;
        let wanted = self.extras.setting.initial().min(self.extras.limit);
        for _ in 1..wanted {
            self.request_association();
        }
    }

    /// Every association of the session, the first one first.
    pub fn associations(&self) -> Vec<AssociationStatus> {
        let first = self.driver.transport();
        let mut list = vec![AssociationStatus {
            index: 0,
            paths: first.paths(),
            streams: first.streams(),
        }];
        let mut extras = self.extras.bound.clone();
        extras.sort_unstable();
        for index in extras {
            if let Some(transport) = self.driver.association(index) {
                list.push(AssociationStatus {
                    index,
                    paths: transport.paths(),
                    streams: transport.streams(),
                });
            }
        }
        list
    }

    /// The `--associations` setting and how many the server allows (the
    /// first included), for `status`.
    pub fn association_setting(&self) -> (Associations, u8) {
        (self.extras.setting, self.extras.limit)
    }

    /// Sends ASSOC; the rest follows from its answer.
    fn request_association(&mut self) {
        if self.extras.connector.is_none() {
            return;
        }
        match self.send(Command::Assoc) {
            Ok(id) => {
                // Its answer is handled here, not stored.
                self.answers.remove(&id);
                self.extras.requested.push(id);
            }
            Err(err) => self.opening_failed(None, &err.to_string()),
        }
    }

    /// Handles the answer to an ASSOC or DETACH of ours; false for any other.
    pub(super) fn handle_association_reply(&mut self, id: RequestId, reply: &Reply) -> bool {
        if let Some(position) = self.extras.requested.iter().position(|r| *r == id) {
            self.extras.requested.swap_remove(position);
            match reply {
                Reply::AssocTicket { index, ticket } => self.connect_association(*index, *ticket),
                Reply::Error { code, message } => {
                    if *code == ErrorCode::ASSOCIATION_LIMIT {
                        // Ask no more: the server allows what is bound already.
                        self.extras.limit = self.bound_count();
                    }
                    self.opening_failed(None, &escape(message));
                }
                other => self.opening_failed(None, &format!("unexpected answer {other:?}")),
            }
            return true;
        }
        if let Some(index) = self.extras.detaching.remove(&id) {
            match reply {
                Reply::Ok => self.drop_association(index),
                other => log::debug!("DETACH {index} answered {other:?}"),
            }
            return true;
        }
        false
    }

    fn connect_association(&mut self, index: u8, ticket: [u8; 16]) {
        let Some(connector) = self.extras.connector.clone() else {
            return;
        };
        self.extras.tasks.spawn(async move {
            let result = connector.connect_boxed().await;
            Opening::Connected {
                index,
                ticket,
                result,
            }
        });
    }

    /// Acts on a finished set-up task.
    pub(super) fn handle_opening(&mut self, opening: Option<Opening<T>>) {
        match opening {
            None => self.opening_failed(None, "the set-up task failed"),
            Some(Opening::Connected {
                index,
                ticket,
                result,
            }) => match result {
                Ok(transport) => self.send_bind(index, ticket, transport),
                Err(err) => self.opening_failed(None, &err.to_string()),
            },
            Some(Opening::Bound {
                index,
                transport,
                early,
                result,
            }) => match result {
                Ok(()) => self.attach(index, transport, early),
                Err(reason) => {
                    transport.shutdown();
                    self.opening_failed(Some(index), &reason);
                }
            },
        }
    }

    fn send_bind(&mut self, index: u8, ticket: [u8; 16], transport: T) {
        let streams = transport.streams();
        let bind = match self.session.bind_association(index, ticket, streams) {
            Ok(bind) => bind,
            Err(err) => {
                transport.shutdown();
                return self.opening_failed(None, &err.to_string());
            }
        };
        let transport = Arc::new(transport);
        self.extras
            .tasks
            .spawn(bind_exchange(index, transport, bind));
    }

    fn attach(&mut self, index: u8, transport: Arc<T>, early: Vec<(u16, Vec<u8>)>) {
        log::info!("association {index} bound");
        self.driver.add_association(index, transport);
        self.extras.bound.push(index);
        for (stream, mut message) in early {
            let chunk = self
                .session
                .handle_message_on(index, stream, &mut message, now())
                .map(|chunk| (chunk.transfer, chunk.offset, chunk.data.to_vec()));
            if let Some((transfer, offset, data)) = chunk {
                self.write_chunk(transfer, offset, &data);
            }
        }
    }

    /// An opening failed: said once, quietly; the session goes on with what it has.
    fn opening_failed(&mut self, index: Option<u8>, reason: &str) {
        if let Some(index) = index {
            // The session accepted records for it since bind_association.
            self.session.handle_association_lost(index);
        }
        if self.extras.setting == Associations::Auto {
            self.extras.policy.grow_failed();
        }
        let line =
            format!("sfs: could not open an extra association ({reason}); carrying on with fewer");
        if std::mem::replace(&mut self.extras.told, true) {
            log::info!("{line}");
        } else {
            self.reporter.notice(line);
        }
    }

    /// Extra association `index` failed: the session already failed the
    /// transfers that used it (they resume by themselves).
    pub(super) fn association_lost(&mut self, index: u8, error: Option<TransportError>) {
        self.extras.bound.retain(|bound| *bound != index);
        self.extras.measure = None;
        match error {
            Some(err) => log::info!("association {index} lost: {err}"),
            None => log::info!("association {index} closed by the server"),
        }
    }

    /// Retires `index` after the server answered its DETACH.
    fn drop_association(&mut self, index: u8) {
        self.extras.bound.retain(|bound| *bound != index);
        if let Some(transport) = self.driver.remove_association(&mut self.session, index) {
            transport.shutdown();
        }
        log::info!("association {index} retired");
    }

    /// Shuts every extra association down (the session is ending).
    pub(super) fn shut_extras(&mut self) {
        self.extras.tasks.abort_all();
        for index in std::mem::take(&mut self.extras.bound) {
            if let Some(transport) = self.driver.remove_association(&mut self.session, index) {
                transport.shutdown();
            }
        }
    }

    fn bound_count(&self) -> u8 {
        u8::try_from(self.extras.bound.len() + 1).unwrap_or(u8::MAX)
    }

    /// Sets the server's limit from its login answer.
    pub(super) fn set_association_limit(&mut self, limit: u8) {
        self.extras.limit = limit;
    }

    /// The adaptive policy's measurement, called on every turn of the wait
    /// loop: a sample about once a second over an interval that says something
    /// about the association count (see [`Adaptive`]).
    pub(super) fn adapt(&mut self) {
        if self.extras.setting != Associations::Auto
            || self.extras.connector.is_none()
            || self.extras.policy.is_settled()
        {
            return;
        }
        let mask = self.session.associations();
        let running: Vec<u16> = self
            .transfers
            .iter()
            .filter(|p| p.result.is_none() && p.transfer.is_some())
            .map(|p| p.associations)
            .collect();
        // A sample says something about the bound associations only while
        // every running transfer uses all of them, and none is coming or going.
        let clean = running.iter().all(|used| *used == mask)
            && self.extras.opening() == 0
            && self.extras.detaching.is_empty();
        if !clean {
            self.extras.measure = None;
            return;
        }
        let counters = self.driver.counters();
        let bytes = counters.sent() + counters.received();
        let at = Instant::now();
        let measure = match self.extras.measure.filter(|m| m.associations == mask) {
            Some(measure) => measure,
            None if running.is_empty() => return,
            None => {
                self.extras.measure = Some(Measure {
                    last: at,
                    busy: Duration::ZERO,
                    bytes,
                    associations: mask,
                });
                return;
            }
        };
        let busy = if running.is_empty() {
            measure.busy
        } else {
            measure.busy + at.duration_since(measure.last)
        };
        if busy < SAMPLE_INTERVAL {
            self.extras.measure = Some(Measure {
                last: at,
                busy,
                ..measure
            });
            return;
        }
        #[allow(clippy::cast_precision_loss)] // rates need no 53-bit precision
        let rate = bytes.saturating_sub(measure.bytes) as f64 / busy.as_secs_f64();
        self.extras.measure = None;
        let open = self.bound_count();
        match self.extras.policy.sample(rate, open, self.extras.limit) {
            Step::Hold => {}
            Step::Grow => {
                log::debug!("{rate:.0} B/s with {open} association(s): trying one more");
                self.request_association();
            }
            Step::Shrink => {
                log::debug!("{rate:.0} B/s with {open} association(s): retiring the newest");
                if let Some(&newest) = self.extras.bound.last() {
                    match self.send(Command::Detach { index: newest }) {
                        Ok(id) => {
                            self.answers.remove(&id);
                            self.extras.detaching.insert(id, newest);
                        }
                        Err(err) => log::debug!("DETACH not sent: {err}"),
                    }
                }
            }
        }
    }
}

/// Sends `bind` on stream 0 of the new association and reads until the
/// BIND_ACK, keeping data-stream messages that come first.
async fn bind_exchange<T: Transport>(
    index: u8,
    transport: Arc<T>,
    bind: BindRequest,
) -> Opening<T> {
    let mut early = Vec::new();
    let mut early_bytes = 0usize;
    let exchange = async {
        transport
            .send(0, &bind.encode())
            .await
            .map_err(|err| err.to_string())?;
        loop {
            match transport.recv().await.map_err(|err| err.to_string())? {
                TransportEvent::Message { stream: 0, data } => {
                    let ack = BindAck::decode(&data).map_err(|err| err.to_string())?;
                    if ack.status == ErrorCode::NO_ERROR {
                        return Ok(());
                    }
                    return Err(format!("the server refused it: {}", ack.status));
                }
                TransportEvent::Message { stream, data } => {
                    early_bytes += data.len();
                    if early_bytes > EARLY_LIMIT {
                        return Err(format!(
                            "it sent over {} MiB before answering its BIND",
                            EARLY_LIMIT >> 20
                        ));
                    }
                    early.push((stream, data));
                }
                _ => {}
            }
        }
    };
    let result = match tokio::time::timeout(BIND_TIMEOUT, exchange).await {
        Ok(result) => result,
        Err(_) => Err("no answer to its BIND in 10 s".to_owned()),
    };
    Opening::Bound {
        index,
        transport,
        early,
        result,
    }
}
