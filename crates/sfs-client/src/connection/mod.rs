// Over 600 lines: the wait loop and the handling of every event it drives read best in one place.
//! One logged-in session with a server, over any [`Transport`]: requests, pipelined
//! answers and parallel transfers.
//!
//! A [`Remote`] owns the sans-IO [`ClientSession`] and the [`Driver`] that pumps
//! it. It is not a background task: every method drives the session itself until
//! its answer is in, and while the shell waits for the user it drives the session
//! through [`Remote::idle_until`] (below). Waiting can be cut short
//! by the connection's *interrupt* (Ctrl-C in the binary, a test's trigger in
//! tests): a plain request then stops waiting, and transfers are aborted cleanly
//! with `abort_transfer`, their `.part` files removed.
//!
//! While the shell waits for the user, [`Remote::idle_until`] drives the session
//! instead and sends a NOOP every [`Remote::set_keepalive`] interval, so the
//! server's idle timeout does not end a session that is still open on screen.
//!
//! ```text
//!   request()/transfer_all()
//!       │ send_command (pipelined: several in flight, answers by RequestId)
//!       ▼
//!   wait loop: flush ─ events ─ upload chunks ─ flush ─ select{ next_input, interrupt }
//!                         │                                   │
//!                 Response / TransferFinished          Chunk -> .part file (write_at)
//! ```

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use sfs_net::{now, Driver, Input, PathChange, PathStatus, Receive, Transport, TransportError};
use sfs_proto::control::{Command, ErrorCode, Reply, RequestId};
use sfs_proto::session::{ApiError, ClientSession, Event, StreamCounts};
use sfs_proto::tls::TlsError;
use zeroize::Zeroizing;

use crate::display::escape;
use crate::local::LocalPathError;

mod adaptive;
mod associations;
mod queue;
mod report;
mod resume;
mod transfers;
mod words;

pub use adaptive::{Adaptive, Associations, AssociationsError, Step};
pub use associations::AssociationStatus;
use associations::Extras;
pub use queue::{ClientOptions, ServerLimits, DEFAULT_MEMORY_BUDGET};
pub use report::Reporter;
pub use transfers::{check_distinct_targets, TransferDone, TransferSpec};
use transfers::{PendingTransfer, TransferState};
pub(crate) use words::local_io as local_io_words;
use words::Subject;
pub use words::{connect_failure, os_words, tls as tls_failure};

/// The most file data put in one chunk record. Small enough that a chunk never
/// holds up other streams for long (a record holds at most 64 KiB).
pub const MAX_CHUNK: usize = 60 * 1024;

/// How often an idle session sends NOOP unless told otherwise. The server does
/// not announce its idle timeout, so this is a third of one minute: it keeps
/// alive any server whose timeout is a minute or more (the default is ten), for
/// one small message every 20 s.
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(20);

/// Why a request or a transfer failed.
///
/// Each variant's text is one line for the user that says its whole story:
/// none hands on a `source` that its text already shows (see [`words`]).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request. Shown as the path it was about, the
    /// server's message (or the code's words when it sent none) and, where one
    /// helps, what to do: `docs: is a folder (use `get -r` for a folder)`.
    #[error("{}", words::refusal(*.code, .message, .path.as_deref(), *.hint))]
    Server {
        /// The code the server sent.
        code: ErrorCode,
        /// Its message (from the server: shown escaped).
        message: String,
        /// The remote path the request named, as typed (escaped), if any.
        path: Option<String>,
        /// What to do about it, where the message alone does not say.
        hint: Option<&'static str>,
    },
    /// Two transfers of one command would write the same file (`mget /a/x /b/x`).
    /// Nothing was transferred.
    #[error("{first} and {second} would both be written to {target}: transfer them one at a time or to distinct names")]
    SameTarget {
        /// The file both would write (escaped).
        target: String,
        /// The first source (escaped).
        first: String,
        /// The second source (escaped).
        second: String,
    },
    /// The user interrupted (Ctrl-C) before the answer came.
    #[error("interrupted")]
    Interrupted,
    /// The session ended; the text says who ended it and why ("the server
    /// ended the session: idle for 10 minutes").
    #[error("{0}")]
    Closed(String),
    /// The TLS handshake failed: the server's certificate was refused, or the
    /// peer does not speak SFS. [`tls_failure`] says it with the CA file's name.
    #[error("{}", words::tls(.0, None))]
    Tls(TlsError),
    /// A local path could not be used for a download.
    #[error(transparent)]
    LocalPath(#[from] LocalPathError),
    /// A local file could not be read or written.
    #[error("{}", words::local_io(.path, .error))]
    Io {
        /// The local path (escaped).
        path: String,
        /// What the filesystem said (in the text, so not a `source`).
        error: io::Error,
    },
    /// The command was not used as it must be (`help` of no command); the
    /// text says what to type instead.
    #[error("{0}")]
    Usage(String),
    /// The server answered something that does not fit the request.
    #[error("unexpected answer from the server: {0}")]
    UnexpectedReply(String),
    /// The protocol session refused an operation (a path beyond the wire
    /// limit, for example).
    #[error("{}", words::api(.0))]
    Api(#[from] ApiError),
    /// A transfer failed a check of this client's (its `.part`, its digest).
    #[error("transfer failed: {0}")]
    TransferFailed(String),
    /// The protocol ended a transfer: either side aborted it, its stall timer
    /// fired (`TIMED_OUT`, "the transfer made no progress for 60 s"), or it
    /// failed its length or digest check (`TRANSFER_FAILED`). Shown as the code's
    /// words and the reason the protocol carries, so a stall never reads as an
    /// integrity failure.
    #[error("{}", words::transfer_ended(*.code, .reason))]
    TransferEnded {
        /// Why, as a protocol code.
        code: ErrorCode,
        /// The protocol's text for the user (from the peer or the session:
        /// shown escaped).
        reason: String,
    },
    /// An upload named a remote folder (`put FILE DIR/`, or `put FILE DIR`
    /// where DIR is a folder) that the server does not have.
    #[error("no such remote folder {}", escape(.0))]
    NoRemoteFolder(String),
    /// Part of a folder transfer, glob or multi-name command could not be done
    /// (a name that cannot be written here, a pattern that matched nothing, a
    /// folder without `-r`); the rest was. Each problem is already escaped.
    #[error("{} item(s) not done: {}", .0.len(), .0.join("; "))]
    Incomplete(Vec<String>),
    /// The command cannot be done as it was typed, found by this client before
    /// (or instead of) a request: the text (escaped) says why and what to type
    /// instead (`mv` onto an existing name without `-f`, a missing local file).
    #[error("{0}")]
    NotAsTyped(String),
}

impl ClientError {
    fn io(path: &std::path::Path, error: io::Error) -> Self {
        ClientError::Io {
            path: escape(&path.to_string_lossy()).into_owned(),
            error,
        }
    }

    /// The error as one line about `subject` (a path, already escaped): the
    /// error alone when it names its path itself, else `subject: error`.
    pub fn about(&self, subject: &str) -> String {
        let names_itself = match self {
            ClientError::Server { path, .. } => path.is_some(),
            ClientError::Io { .. }
            | ClientError::LocalPath(_)
            | ClientError::SameTarget { .. }
            | ClientError::NoRemoteFolder(_)
            | ClientError::Closed(_)
            | ClientError::Tls(_)
            | ClientError::Usage(_)
            | ClientError::NotAsTyped(_)
            | ClientError::Interrupted => true,
            _ => false,
        };
        if names_itself {
            self.to_string()
        } else {
            format!("{subject}: {self}")
        }
    }
}

/// A future that completes when the user asks to stop waiting.
pub type Interrupt = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Makes a fresh [`Interrupt`] for each wait.
pub type InterruptSource = Arc<dyn Fn() -> Interrupt + Send + Sync>;

/// How to log in.
#[derive(Clone)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password. Never printed; wiped from memory when dropped.
    pub password: Zeroizing<String>,
    /// Create the account first (where the server allows it).
    pub register: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("register", &self.register)
            .finish_non_exhaustive()
    }
}

/// An answer being collected (listings come in several parts).
#[derive(Debug, Default)]
struct Answer {
    replies: Vec<Reply>,
    complete: bool,
    /// What the request is about, for the words of a refusal.
    subject: Subject,
}

/// A session with a server, logged in. See the module docs.
pub struct Remote<T: Transport> {
    session: ClientSession,
    driver: Driver<T>,
    answers: HashMap<RequestId, Answer>,
    transfers: Vec<PendingTransfer>,
    closed: Option<String>,
    /// The TLS failure that ended the session, if that is what ended it.
    tls_failure: Option<TlsError>,
    reporter: Reporter,
    interrupt: Option<InterruptSource>,
    user: String,
    /// Paths announced as down, so a failover is told once.
    paths_down: HashSet<String>,
    /// Transfer requests given up before the server opened them (true: uploads).
    orphans: HashMap<RequestId, bool>,
    /// How often [`Self::idle_until`] sends NOOP.
    keepalive: Duration,
    /// What the server allows in flight, as its login answer said.
    limits: ServerLimits,
    /// Bytes in the send queue beyond which no more upload data is read.
    send_queue_cap: usize,
    /// The extra data associations.
    extras: Extras<T>,
}

impl<T: Transport> std::fmt::Debug for Remote<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("user", &self.user)
            .field("session", &self.session)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Remote<T> {
    /// Runs the TLS handshake over `transport` and logs in (or registers). The login
    /// and a PWD are pipelined; the returned string is the starting remote folder.
    ///
    /// # Errors
    ///
    /// - [`ClientError::Server`] if the server refuses the login or registration
    ///   (a wrong password, a taken user name) or the PWD;
    /// - [`ClientError::Closed`] if the TLS setup or handshake fails or the
    ///   connection ends before both answers are in;
    /// - [`ClientError::Api`] if the session refuses to queue a command (a user
    ///   name or password beyond the wire limits);
    /// - [`ClientError::UnexpectedReply`] if the PWD answer is not a path.
    ///
    /// # Cancel safety
    ///
    /// Nothing to resume: the half-built session and `transport` are dropped
    /// with the future, which ends the connection and any login under way.
    pub async fn open(
        transport: T,
        tls: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
        credentials: &Credentials,
        reporter: Reporter,
    ) -> Result<(Self, String), ClientError> {
        let options = ClientOptions::default();
        Self::open_with(transport, tls, server_name, credentials, reporter, options).await
    }

    /// [`Self::open`] with `options` (the memory budget).
    ///
    /// # Errors
    ///
    /// As [`Self::open`].
    ///
    /// # Cancel safety
    ///
    /// As [`Self::open`].
    pub async fn open_with(
        transport: T,
        tls: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
        credentials: &Credentials,
        reporter: Reporter,
        options: ClientOptions,
    ) -> Result<(Self, String), ClientError> {
        let config = options.session_config(transport.streams());
        let own_max_requests = config.max_pending_requests;
        let session =
            ClientSession::new(tls, server_name, config, now()).map_err(ClientError::Tls)?;
        let mut connection = Remote {
            session,
            driver: Driver::new(Arc::new(transport)),
            answers: HashMap::new(),
            transfers: Vec::new(),
            closed: None,
            tls_failure: None,
            reporter,
            interrupt: None,
            user: credentials.user.clone(),
            paths_down: HashSet::new(),
            orphans: HashMap::new(),
            keepalive: DEFAULT_KEEPALIVE,
            limits: ServerLimits::FALLBACK,
            send_queue_cap: options.send_queue_cap(),
            extras: Extras::new(options.associations),
        };
        let login = if credentials.register {
            Command::Register {
                user: credentials.user.clone(),
                password: (*credentials.password).clone(),
            }
        } else {
            Command::Login {
                user: credentials.user.clone(),
                password: (*credentials.password).clone(),
            }
        };
        let login = connection.send(login)?;
        let pwd = connection.send(Command::Pwd)?;
        let login = connection.wait_for(login).await?;
        connection.limits = ServerLimits::from_login(&login).within(own_max_requests);
        connection.set_association_limit(associations::limit_from_login(&login));
        let cwd = match connection.wait_for(pwd).await?.as_slice() {
            [Reply::Path { path }] => path.clone(),
            other => return Err(unexpected(other)),
        };
        Ok((connection, cwd))
    }

    /// Sets what interrupts a wait (Ctrl-C in the binary).
    pub fn set_interrupt(&mut self, source: InterruptSource) {
        self.interrupt = Some(source);
    }

    /// Sets how often [`Self::idle_until`] sends NOOP (a third of the server's
    /// idle timeout or less keeps the session open). Zero is taken as one
    /// millisecond.
    pub fn set_keepalive(&mut self, interval: Duration) {
        self.keepalive = interval.max(Duration::from_millis(1));
    }

    /// Waits for `wait` (the user typing the next line) while keeping the session
    /// open: sends a NOOP every keepalive interval and reads what the server sends
    /// meanwhile, so a close or a failed path is noticed at once. NOOP answers are
    /// not waited for; one that fails is logged and dropped.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: nothing is half sent (a NOOP is queued whole and goes out
    /// with the next flush) and no answer is awaited.
    pub async fn idle_until<F: Future>(&mut self, wait: F) -> F::Output {
        let mut wait = std::pin::pin!(wait);
        let start = tokio::time::Instant::now() + self.keepalive;
        let mut ticks = tokio::time::interval_at(start, self.keepalive);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.flush().await;
            self.handle_events();
            let open = self.closed.is_none();
            tokio::select! {
                biased;
                output = &mut wait => return output,
                _ = ticks.tick(), if open => {
                    if let Err(err) = self.session.send_command(Command::Noop) {
                        log::debug!("keepalive not sent: {err}");
                    }
                }
                input = self.driver.next_input(&mut self.session), if open => {
                    self.handle_input(input);
                }
                opening = self.extras.next_opening(), if open => self.handle_opening(opening),
            }
        }
    }

    /// The user logged in.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The reporter (notices printed so far, progress bars).
    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    /// The paths to the server, for `status`.
    pub fn paths(&self) -> Vec<PathStatus> {
        self.driver.transport().paths()
    }

    /// The negotiated stream counts.
    pub fn streams(&self) -> StreamCounts {
        self.driver.transport().streams()
    }

    /// The negotiated TLS version and cipher suite.
    pub fn tls(&self) -> Option<(String, String)> {
        self.session.tls_negotiated()
    }

    /// Bytes sent and received on the wire so far (records and TLS included).
    pub fn bytes_moved(&self) -> (u64, u64) {
        let counters = self.driver.counters();
        (counters.sent(), counters.received())
    }

    /// Why the session ended, once it has.
    pub fn closed_reason(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Sends a command without waiting (pipelining); collect with [`Self::wait_for`].
    ///
    /// # Errors
    ///
    /// [`ClientError::Closed`] once the session has ended; [`ClientError::Api`] if
    /// the session refuses the command (too many requests in flight, a field
    /// beyond the wire limits).
    pub fn send(&mut self, command: Command) -> Result<RequestId, ClientError> {
        if let Some(err) = self.closed_error() {
            return Err(err);
        }
        let subject = Subject::of(&command);
        let id = self.session.send_command(command)?;
        self.answers.insert(
            id,
            Answer {
                subject,
                ..Answer::default()
            },
        );
        Ok(id)
    }

    /// Why nothing more can be done, once the session has ended.
    fn closed_error(&self) -> Option<ClientError> {
        match (&self.tls_failure, &self.closed) {
            (Some(tls), _) => Some(ClientError::Tls(tls.clone())),
            (None, Some(reason)) => Some(ClientError::Closed(reason.clone())),
            (None, None) => None,
        }
    }

    /// Waits for every part of the answer to `id`. A server error becomes
    /// [`ClientError::Server`].
    ///
    /// # Errors
    ///
    /// - [`ClientError::Server`] if the answer's last part is an error;
    /// - [`ClientError::Closed`] if the session ends before the answer is complete;
    /// - [`ClientError::Interrupted`] if the interrupt fires first (the answer,
    ///   when it comes, is dropped).
    ///
    /// # Cancel safety
    ///
    /// Not cancel-safe. A dropped wait leaves the request in flight and its
    /// answer is still collected, so `wait_for(id)` again returns it; but while
    /// an upload is under way, a drop in the middle of sending one of its chunks
    /// loses that record and ends the session. Stop a wait with the interrupt
    /// ([`Self::set_interrupt`]) instead.
    pub async fn wait_for(&mut self, id: RequestId) -> Result<Vec<Reply>, ClientError> {
        let waited = self
            .wait_until(|c| c.answers.get(&id).is_none_or(|a| a.complete))
            .await;
        if let Err(err) = waited {
            self.answers.remove(&id);
            return Err(err);
        }
        self.take_answer(id)
    }

    /// Removes the collected answer to `id`; a server error becomes
    /// [`ClientError::Server`].
    fn take_answer(&mut self, id: RequestId) -> Result<Vec<Reply>, ClientError> {
        let answer = self.answers.remove(&id).unwrap_or_default();
        if let Some(Reply::Error { code, message }) = answer.replies.last() {
            return Err(answer.subject.refused(*code, message));
        }
        Ok(answer.replies)
    }

    /// Sends one command and waits for its whole answer.
    ///
    /// # Errors
    ///
    /// Those of [`Self::send`] and [`Self::wait_for`].
    ///
    /// # Cancel safety
    ///
    /// As [`Self::wait_for`]: not cancel-safe. The request stays in flight, and
    /// its answer (whose id the caller never saw) is kept until the session ends.
    pub async fn request(&mut self, command: Command) -> Result<Vec<Reply>, ClientError> {
        let id = self.send(command)?;
        self.wait_for(id).await
    }

    /// Ends the session politely (QUIT, then close).
    ///
    /// Waits at most 3 s for the answer to QUIT.
    ///
    /// # Cancel safety
    ///
    /// Safe to drop: `self` is consumed, so the session ends either way; a drop
    /// only skips what is not yet done of QUIT, the close message and the
    /// transport's shutdown, and the server sees the connection end without them.
    pub async fn quit(mut self) {
        if self.closed.is_none() {
            if let Ok(id) = self.send(Command::Quit) {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(3), self.wait_for(id))
                    .await;
            }
            self.session.close(ErrorCode::NO_ERROR, "bye");
            let _ = self.driver.flush(&mut self.session).await;
        }
        self.shut_extras();
        self.driver.transport().shutdown();
    }

    /// Drives the session until `done` holds, the session closes, or the interrupt fires.
    async fn wait_until(&mut self, done: impl Fn(&Self) -> bool) -> Result<(), ClientError> {
        let mut interrupt = self.new_interrupt();
        self.wait_until_or(&mut interrupt, done).await
    }

    /// A fresh interrupt from the source (one that never fires without one).
    fn new_interrupt(&self) -> Interrupt {
        match &self.interrupt {
            Some(source) => source(),
            None => Box::pin(std::future::pending()),
        }
    }

    /// [`Self::wait_until`] with an interrupt the caller keeps across several
    /// waits, so a Ctrl-C between two of them is not lost.
    async fn wait_until_or(
        &mut self,
        interrupt: &mut Interrupt,
        done: impl Fn(&Self) -> bool,
    ) -> Result<(), ClientError> {
        loop {
            // Nothing here waits for the transport: sending goes through the
            // send queue, which `next_io` empties while it also reads. A side
            // that blocked on a send while the peer's own sends waited for it
            // to read would wait forever (uploads and downloads at once).
            self.driver.queue_from(&mut self.session);
            self.handle_events();
            self.send_upload_chunks();
            self.adapt();
            self.driver.queue_from(&mut self.session);
            self.handle_events();
            if done(self) {
                return Ok(());
            }
            if let Some(err) = self.closed_error() {
                return Err(err);
            }
            let input = tokio::select! {
                // The user's Ctrl-C wins over any amount of pending input.
                biased;
                () = &mut *interrupt => return Err(ClientError::Interrupted),
                input = self.driver.next_io(&mut self.session, Receive::On) => input,
                opening = self.extras.next_opening() => {
                    self.handle_opening(opening);
                    continue;
                }
            };
            self.handle_input(input);
        }
    }

    async fn flush(&mut self) {
        if let Err(err) = self.driver.flush(&mut self.session).await {
            self.transport_lost(Some(err));
        }
    }

    fn transport_lost(&mut self, err: Option<TransportError>) {
        if self.session.is_closed() {
            // The peer's Close came in before the transport ended: its reason
            // ("idle for 10 minutes") is the one to show.
            self.handle_events();
        }
        if !self.session.is_closed() {
            self.session.handle_transport_closed();
        }
        if self.closed.is_none() {
            self.closed = Some(match err {
                Some(TransportError::Closed) | None => {
                    "the server closed the connection".to_owned()
                }
                Some(err) => format!(
                    "the connection to the server was lost: {}",
                    sfs_proto::report::error_line(&err)
                ),
            });
        }
    }

    fn handle_input(&mut self, input: Input) {
        match input {
            Input::Handled => {}
            Input::Chunk(chunk) => self.write_chunk(chunk.transfer, chunk.offset, chunk.data()),
            Input::Path(event) => {
                let addr = event
                    .addr
                    .map_or_else(|| "a peer address".to_owned(), |a| a.to_string());
                // One line per failover: SCTP-PF reports "potentially failed"
                // and then "failed" for the same path, which is one event to a user.
                let line = match event.change {
                    PathChange::Unreachable | PathChange::PotentiallyFailed => {
                        if !self.paths_down.insert(addr.clone()) {
                            return;
                        }
                        format!(
                            "sfs: path to {addr} failed; traffic continues on the other path(s)"
                        )
                    }
                    PathChange::Available => {
                        if !self.paths_down.remove(&addr) {
                            return;
                        }
                        format!("sfs: path to {addr} is available again")
                    }
                    PathChange::MadePrimary => format!("sfs: path to {addr} is now the primary"),
                    other => {
                        log::debug!("path {addr}: {other}");
                        return;
                    }
                };
                self.reporter.notice(line);
            }
            Input::Notice(text) => log::info!("{text}"),
            Input::TransportClosed(err) => self.transport_lost(err),
            Input::AssociationLost { index, error } => self.association_lost(index, error),
        }
    }

    fn handle_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Response { id, reply } => self.handle_response(id, reply),
                Event::TransferFinished {
                    transfer,
                    length,
                    sha256,
                } => {
                    if let Some(index) = self.transfer_by_id(transfer) {
                        let result = self.commit_download(index, length, sha256);
                        self.finish_transfer(index, result);
                    }
                }
                Event::TransferFailed {
                    transfer,
                    code,
                    reason,
                    ..
                } => {
                    if let Some(index) = self.transfer_by_id(transfer) {
                        if code == ErrorCode::ASSOCIATION_LOST && self.resume_after_loss(index) {
                            continue;
                        }
                        self.finish_transfer(
                            index,
                            Err(ClientError::TransferEnded { code, reason }),
                        );
                    }
                }
                Event::TransferSent { transfer, sha256 } => {
                    if let Some(index) = self.transfer_by_id(transfer) {
                        if let TransferState::Upload { sent, .. } = &mut self.transfers[index].kind
                        {
                            *sent = Some(sha256);
                        }
                    }
                }
                Event::Closed(reason) => {
                    self.tls_failure.clone_from(&reason.tls);
                    // A lost transport already said how it was lost.
                    self.closed.get_or_insert_with(|| words::closed(&reason));
                    for index in 0..self.transfers.len() {
                        let err = self.closed_error().unwrap_or(ClientError::Interrupted);
                        self.finish_transfer(index, Err(err));
                    }
                }
                Event::Connected | Event::CreditAvailable { .. } => {}
                Event::LoginRequested { .. } | Event::Request { .. } => {}
            }
        }
    }

    fn handle_response(&mut self, id: RequestId, reply: Reply) {
        if self.handle_association_reply(id, &reply) {
            return;
        }
        if let Some(&upload) = self.orphans.get(&id) {
            // A transfer the user gave up on before the server opened it.
            if let Reply::TransferOpen(open) = &reply {
                let _ = self.session.abort_transfer(
                    open.transfer,
                    ErrorCode::ABORTED,
                    "cancelled by the user",
                );
                // A STOR still gets its final answer; a RETR's ends here.
                if !upload {
                    self.orphans.remove(&id);
                }
            } else {
                self.orphans.remove(&id);
            }
            return;
        }
        if let Some(index) = self.transfer_by_request(id) {
            match reply {
                Reply::TransferOpen(open) => {
                    let pending = &mut self.transfers[index];
                    pending.transfer = Some(open.transfer);
                    pending.associations = open.associations;
                    pending.bar.set_length(open.length);
                }
                Reply::Partial { size } => self.continue_upload(index, size),
                Reply::Error { code, message } => {
                    if self.transfers[index].transfer.is_none() && self.retry_resume(index, code) {
                        return;
                    }
                    if code == ErrorCode::ASSOCIATION_LOST {
                        // The final answer of a STOR whose transfer failed
                        // before this side saw it: resume it.
                        let old = self.transfers[index].transfer;
                        if self.resume_after_loss(index) {
                            if let Some(transfer) = old {
                                let _ = self.session.abort_transfer(
                                    transfer,
                                    ErrorCode::ASSOCIATION_LOST,
                                    "a data association was lost",
                                );
                            }
                            return;
                        }
                    }
                    if let Some(transfer) = self.transfers[index].transfer {
                        let _ =
                            self.session
                                .abort_transfer(transfer, ErrorCode::ABORTED, "refused");
                    }
                    let refused = self.transfers[index].kind.subject().refused(code, &message);
                    self.finish_transfer(index, Err(refused));
                }
                Reply::Ok => {
                    // The final answer of STOR: the server has the file durably.
                    let result = match &self.transfers[index].kind {
                        TransferState::Upload {
                            size,
                            sent: Some(sha256),
                            ..
                        } => Ok(TransferDone {
                            bytes: *size,
                            sha256: *sha256,
                        }),
                        _ => Err(ClientError::UnexpectedReply(
                            "OK before the transfer finished".into(),
                        )),
                    };
                    self.finish_transfer(index, result);
                }
                other => {
                    self.finish_transfer(index, Err(unexpected(std::slice::from_ref(&other))));
                }
            }
            return;
        }
        if let Some(answer) = self.answers.get_mut(&id) {
            let last = reply.is_last_part();
            answer.replies.push(reply);
            answer.complete |= last;
        }
        // Answers nobody waits for (an interrupted request) are dropped.
    }
}

fn unexpected(replies: &[Reply]) -> ClientError {
    let text = match replies.first() {
        None => "nothing".to_owned(),
        Some(reply) => format!("{reply:?}"),
    };
    ClientError::UnexpectedReply(escape(&text).into_owned())
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
