// Over 600 lines: the connection loop and the handling of every event it drives read best in one place.
//! One client's connection: the loop that drives a [`ServerSession`] over a
//! [`Transport`] and does what its events ask.
//!
//! ```text
//!            ┌──────────── one task per connection ────────────┐
//!  network ──┤ Driver::next_io ────▶ ServerSession ─▶ events ──┼─▶ jobs (JoinSet):
//!            │        ▲                  │                     │   bcrypt, file commands,
//!            │        └─── flush ◀───────┘ replies, chunks ◀───┼── reads, writes, commits
//!            └─────────────────────────────────────────────────┘
//! ```
//!
//! The task owns the session; everything slow runs elsewhere and comes back as a
//! `Completion` through a `JoinSet`, so the loop never waits on a disk or on
//! bcrypt:
//!
//! - **Logins** run bcrypt on the blocking pool (bounded by the
//!   [`Hasher`](crate::accounts::Hasher)); failures then wait out the throttle's
//!   delay in a timer task before the reply goes out.
//! - **Commands** run one at a time, in the order they arrived, each as a blocking
//!   job (the private `cmd` module; PWD, CDUP and STATUS at once, in the loop): a
//!   client that pipelines `MKD a`, `CWD a` gets what it typed. Transfers are opened by a command but then proceed in parallel with
//!   later commands and with each other.
//! - **Downloads** read one chunk at a time per transfer with `pread`, as credit
//!   allows; the session spreads chunks over the data streams.
//! - **Uploads** arrive as chunks in any order across streams. They are put in
//!   offset order in memory and appended to the temporary file by a write job;
//!   once the session reports `TransferFinished` (length and SHA-256 verified), a
//!   commit job checks the digest of what was written, fsyncs, renames over the
//!   target and fsyncs the folder, and only then is the STOR answered `Ok`.
//!
//! - **Extra data associations** (the private `bind` module): [`open`] reads the
//!   first message of every new association; a `BIND` reaches the session that
//!   issued its ticket through [`ServerContext::associations`], which checks it,
//!   answers `BIND_ACK` and attaches it to its `Driver`. Chunks then spread over
//!   every bound association; a lost one fails only the transfers that used it
//!   (`ASSOCIATION_LOST`; an upload keeps its partial for `reput`).
//!
//! Memory per session is bounded: upload bytes held in memory are capped by
//! [`SessionSettings::max_buffered_upload`](crate::context::SessionSettings) (the
//! loop stops reading from the network until writes catch up, while the session's
//! timer keeps running, so a stalled upload still times out). That cap is also
//! the session's connection-wide credit window: chunks waiting ahead of a gap lie
//! inside granted credit and so can never reach it on their own, and the chunk
//! that fills a gap is always read. Downloads hold one
//! chunk per transfer, and the session bounds requests in flight and transfers.
//! On the send side, the loop stops reading while more than `MAX_QUEUED_OUTPUT`
//! bytes wait to be sent, so a client that sends requests but never reads the
//! replies cannot make the server queue replies without bound.
//!
//! Shutdown: when the signal fires, new commands are answered `SHUTTING_DOWN`,
//! transfers in flight get [`shutdown_grace`](crate::context::SessionSettings) to
//! finish, and then the session closes with `SHUTTING_DOWN`. An unfinished upload
//! is discarded (its temporary file removed), so the old file stays intact.

mod admission;
mod bind;
mod data_transfer;
mod notices;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use sfs_net::{now, Driver, Input, PathChange, Receive, Transport, TransportEvent};
use sfs_proto::control::{Command, ErrorCode, Reply, RequestId, TransferId};
use sfs_proto::session::{Event, ServerSession};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::accounts::Account;
use crate::audit::{AuditEvent, AuditOutcome, EventKind};
use crate::cmd::{self, CommandContext, CommandResult, PartStream};
use crate::context::ServerContext;
use crate::store::VirtualPath;
use crate::throttle::ConnectionAttempts;

use bind::ExtraAssociations;
pub use bind::{open, NewSession, Opening, FIRST_MESSAGE_TIMEOUT};
use data_transfer::{DownloadState, UploadState};

/// Tells connections that the server is shutting down: the value turns `true`.
pub type ShutdownSignal = watch::Receiver<bool>;

/// How a connection ended, for the server's bookkeeping and for tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSummary {
    /// The user, if one logged in.
    pub user: Option<String>,
    /// The code the session closed with.
    pub code: ErrorCode,
    /// The most transfers that were open at once (never above the session's
    /// `max_transfers`, which the login announced).
    pub peak_transfers: usize,
    /// The most requests that were in flight at once, as the session counts
    /// them (beyond its bound it answers `BUSY`).
    pub peak_requests: usize,
    /// Extra data associations bound to the session over its life.
    pub associations: usize,
}

impl ConnectionSummary {
    /// The summary of an association that did not become a served session (a
    /// `BIND`, one shut down before its first message, one refused by a
    /// limit): `code` is `NO_ERROR` for a `BIND` handed to its session, else
    /// why it was refused.
    pub(crate) fn of_association(code: ErrorCode) -> Self {
        Self {
            user: None,
            code,
            peak_transfers: 0,
            peak_requests: 0,
            associations: 0,
        }
    }
}

/// Something slow that finished, for the connection loop to act on.
enum Completion {
    /// A login or registration was checked.
    Login(crate::cmd::login::LoginDone),
    /// A failed login's delay is over: send the refusal now.
    LoginRefused {
        id: RequestId,
        code: ErrorCode,
        message: &'static str,
        close: bool,
    },
    /// A queued command finished.
    Command {
        id: RequestId,
        result: CommandResult,
    },
    /// The next part of a multi-part answer was produced (`None`: none left).
    Part {
        id: RequestId,
        rest: PartStream,
        part: Option<Reply>,
    },
    /// Download chunks were read, in file order (each buffer has the record
    /// header room).
    Read {
        transfer: TransferId,
        result: std::io::Result<Vec<Vec<u8>>>,
    },
    /// Upload bytes were appended to the temporary file.
    Written {
        transfer: TransferId,
        upload: crate::store::Upload,
        bytes: usize,
        result: Result<(), crate::store::StoreError>,
    },
    /// An upload was committed (or failed to).
    Committed {
        transfer: TransferId,
        result: Result<u64, crate::store::StoreError>,
    },
    /// The `BIND_ACK` of a new extra association went out, or could not.
    BindAcked { index: u8, sent: bool },
}

/// Serves one client until its session ends. `transport` is an accepted SCTP
/// association in the server, or one end of a memory pair in tests. Its first
/// message decides ([`open`]): an extra data association (a `BIND`) is handed
/// to its session, which then serves it, and this returns at once.
///
/// # Cancel safety
///
/// Not meant to be cancelled: run it as its own task and end it through
/// `shutdown`, which lets transfers finish and closes the session cleanly. A
/// dropped future ends the connection abruptly: the transport is dropped with
/// no Close sent and no `Disconnect` audit line written; uploads not yet
/// committed are discarded (temporary files removed, quota released), so the
/// old files stay intact; blocking jobs already running finish on their own (a
/// commit under way completes, its reply lost).
pub async fn serve<T: Transport>(
    ctx: Arc<ServerContext>,
    transport: T,
    shutdown: ShutdownSignal,
) -> ConnectionSummary {
    serve_admitted(ctx, transport, shutdown, None).await
}

/// [`serve`], holding `pre_auth` (the association's place among those not
/// logged in) until the client logs in.
///
/// # Cancel safety
///
/// As [`serve`]; a dropped future also gives `pre_auth` back.
pub async fn serve_admitted<T: Transport>(
    ctx: Arc<ServerContext>,
    transport: T,
    shutdown: ShutdownSignal,
    pre_auth: Option<crate::limits::PreAuthSlot>,
) -> ConnectionSummary {
    match open(&ctx, transport, &shutdown).await {
        Opening::Session(new) => serve_inner(ctx, new, shutdown, pre_auth, None).await,
        Opening::Done(summary) => summary,
    }
}

/// Serves a session whose first message [`open`] read, holding `pre_auth`
/// until the client logs in.
///
/// # Cancel safety
///
/// As [`serve`].
pub async fn serve_session<T: Transport>(
    ctx: Arc<ServerContext>,
    new: NewSession<T>,
    shutdown: ShutdownSignal,
    pre_auth: Option<crate::limits::PreAuthSlot>,
) -> ConnectionSummary {
    serve_inner(ctx, new, shutdown, pre_auth, None).await
}

/// Turns a client away with its reason: completes the TLS handshake (so the
/// reason arrives authenticated and the client can show it), then closes the
/// session with `BUSY` and the reason's text. Costs one handshake: the caller
/// bounds how many run at once.
///
/// # Cancel safety
///
/// Safe to drop, for example on a timeout: no request is ever served, so a
/// drop only ends the connection without the `BUSY` reason reaching the client.
pub async fn refuse<T: Transport>(
    ctx: Arc<ServerContext>,
    new: NewSession<T>,
    shutdown: ShutdownSignal,
    refusal: crate::limits::Refusal,
) -> ConnectionSummary {
    serve_inner(ctx, new, shutdown, None, Some(refusal)).await
}

async fn serve_inner<T: Transport>(
    ctx: Arc<ServerContext>,
    new: NewSession<T>,
    shutdown: ShutdownSignal,
    pre_auth: Option<crate::limits::PreAuthSlot>,
    refusal: Option<crate::limits::Refusal>,
) -> ConnectionSummary {
    let NewSession { transport, early } = new;
    let peers: Arc<[SocketAddr]> = transport.peer_addrs().into();
    let source = peers
        .first()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), SocketAddr::ip);
    let config = ctx.settings.session_config(transport.streams());
    let data_streams = config.streams.outbound.max(config.streams.inbound);
    let session = match ServerSession::new(ctx.tls.clone(), config, now()) {
        Ok(session) => session,
        Err(error) => {
            log::error!("cannot start a TLS session: {error}");
            return ConnectionSummary::of_association(ErrorCode::INTERNAL);
        }
    };
    let mut connection = ConnectionTask {
        driver: Driver::new(Arc::new(transport)),
        session,
        peers,
        source,
        account: None,
        pre_auth,
        refusal,
        cwd: VirtualPath::root(),
        attempts: ConnectionAttempts::new(),
        notices: notices::Notices::default(),
        queue: VecDeque::new(),
        running: false,
        streaming: None,
        jobs: JoinSet::new(),
        downloads: HashMap::new(),
        uploads: HashMap::new(),
        failed_uploads: HashMap::new(),
        buffered: 0,
        data_streams,
        shutdown,
        draining: None,
        close_code: ErrorCode::NO_ERROR,
        peaks: (0, 0),
        extras: ExtraAssociations::new(ctx.associations.clone()),
        early,
        ctx,
    };
    connection.run().await;
    ConnectionSummary {
        user: connection.account.map(|a| a.name.to_string()),
        code: connection.close_code,
        peak_transfers: connection.peaks.0,
        peak_requests: connection.peaks.1,
        associations: connection.extras.bound_total,
    }
}

struct ConnectionTask<T: Transport> {
    ctx: Arc<ServerContext>,
    driver: Driver<T>,
    session: ServerSession,
    peers: Arc<[SocketAddr]>,
    source: IpAddr,
    account: Option<Account>,
    /// The place among unauthenticated associations, given back at login.
    pre_auth: Option<crate::limits::PreAuthSlot>,
    /// Close as soon as the handshake is done, with this reason.
    refusal: Option<crate::limits::Refusal>,
    cwd: VirtualPath,
    attempts: ConnectionAttempts,
    /// Transport notices, for at most one console line.
    notices: notices::Notices,
    /// Commands waiting for the one running before them.
    queue: VecDeque<(RequestId, Command)>,
    /// A queued command is running (or still streaming its answer).
    running: bool,
    /// The multi-part answer being sent: its request, and the rest of its parts
    /// (`None` while a job produces the next one).
    streaming: Option<(RequestId, Option<PartStream>)>,
    jobs: JoinSet<Completion>,
    downloads: HashMap<TransferId, DownloadState>,
    uploads: HashMap<TransferId, UploadState>,
    /// Failed uploads whose temporary file a write job still holds: their error
    /// reply goes out once the job hands the file back and it is removed.
    failed_uploads: HashMap<TransferId, (RequestId, Reply)>,
    /// Upload bytes received and not yet written.
    buffered: usize,
    data_streams: u16,
    shutdown: ShutdownSignal,
    /// When shutting down: the deadline for transfers in flight.
    draining: Option<Instant>,
    close_code: ErrorCode,
    /// The most transfers open and requests in flight at once, for the summary.
    peaks: (usize, usize),
    /// The session's extra data associations.
    extras: ExtraAssociations<T>,
    /// What the association sent before the session started (path events and
    /// the first message), fed in when it starts.
    early: Vec<TransportEvent>,
}

impl<T: Transport> ConnectionTask<T> {
    /// Notes how many transfers are open and requests in flight now.
    fn note_peaks(&mut self) {
        let (transfers, requests) = &mut self.peaks;
        *transfers = (*transfers).max(self.session.open_transfers());
        *requests = (*requests).max(self.session.requests_in_flight());
    }

    async fn run(&mut self) {
        self.record(AuditEvent::new(EventKind::Connect, AuditOutcome::Info));
        self.replay_early();
        if *self.shutdown.borrow() {
            self.begin_drain();
        }
        // Sending happens inside the driver, next to receiving and the session's
        // timer, so that a client that stops reading cannot stall this loop (its
        // timers, the shutdown signal, its other transfers) behind a full send
        // buffer, and a full upload buffer (reading paused) cannot stop the timer.
        loop {
            while let Some(event) = self.session.poll_event() {
                self.handle_event(event);
            }
            self.next_part();
            self.start_next_command();
            self.check_drain();
            self.sweep_tickets();
            self.driver.queue_from(&mut self.session);
            self.ctx
                .output_high_water
                .fetch_max(self.driver.queued_bytes(), Ordering::Relaxed);
            if self.session.is_closed() {
                self.close_associations();
                // Deliver the Close and close_notify if the peer still listens.
                let _ =
                    tokio::time::timeout(CLOSE_FLUSH_TIME, self.driver.flush(&mut self.session))
                        .await;
                while let Some(event) = self.session.poll_event() {
                    self.handle_event(event);
                }
                break;
            }
            // At least the connection window (one chunk minimum), so that chunks
            // held ahead of gaps, which stay inside it, never pause reading.
            let cap = self
                .ctx
                .settings
                .max_buffered_upload
                .max(sfs_proto::record::MAX_CHUNK_DATA);
            // A client that does not read its replies must not make the server
            // hold more and more of them: no new requests while output waits.
            let receive = if self.buffered < cap && self.driver.queued_bytes() < MAX_QUEUED_OUTPUT {
                Receive::On
            } else {
                Receive::Paused
            };
            let draining = self.draining;
            tokio::select! {
                input = self.driver.next_io(&mut self.session, receive) => {
                    self.handle_input(input);
                }
                Some(done) = self.jobs.join_next(), if !self.jobs.is_empty() => {
                    match done {
                        Ok(completion) => self.handle_completion(completion),
                        Err(error) => {
                            log::error!("a connection job failed: {error}");
                            self.session.close(ErrorCode::INTERNAL, "internal error");
                        }
                    }
                }
                Some(attempt) = self.extras.attempts.recv() => self.bind_attempt(attempt),
                changed = self.shutdown.changed(), if draining.is_none() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        self.begin_drain();
                    }
                }
                () = sleep_until(draining), if draining.is_some() => {
                    self.session.close(ErrorCode::SHUTTING_DOWN, "server shutting down");
                }
            }
        }
        self.close_associations();
        self.extras.shutdown_all(&self.driver);
        if let Some(line) = self.notices.finish() {
            log::info!("{line}");
        }
        self.driver.transport().shutdown();
        // Uploads not committed are dropped here, which removes their temporary
        // files; jobs still running finish on their own (a commit in progress
        // completes, its reply simply has nowhere to go).
        self.abandon_uploads();
        self.downloads.clear();
        self.jobs.abort_all();
        while self.jobs.join_next().await.is_some() {}
    }

    fn handle_input(&mut self, input: Input) {
        match input {
            Input::Handled => {
                // Perhaps a queued message went out: downloads may read ahead again.
                if self.driver.queued() < MAX_OUTBOX {
                    self.pump_all_downloads();
                }
            }
            Input::Chunk(chunk) => self.receive_chunk(chunk),
            Input::Path(event) => {
                let outcome = AuditOutcome::Info;
                let reason: &'static str = match event.change {
                    PathChange::Unreachable => "path failed",
                    PathChange::PotentiallyFailed => "path potentially failed",
                    PathChange::Available => "path available",
                    PathChange::Confirmed => "path confirmed",
                    PathChange::MadePrimary => "path made primary",
                    PathChange::Added => "address added",
                    PathChange::Removed => "address removed",
                    _ => "path changed",
                };
                let addrs: Vec<SocketAddr> = event.addr.into_iter().collect();
                let mut line = AuditEvent::new(EventKind::PathChange, outcome)
                    .peers(&addrs)
                    .reason(reason);
                if let Some(account) = &self.account {
                    line = line.user(&account.name);
                }
                self.write_log(&line);
            }
            Input::Notice(text) => self.notices.note(text),
            Input::TransportClosed(error) => {
                self.notices.association_lost();
                // The audit log records the disconnection; this is detail.
                if let Some(error) = error {
                    log::debug!("transport closed: {error}");
                }
            }
            Input::AssociationLost { index, error } => self.association_lost(index, error),
        }
    }

    /// Feeds the session what the association sent before it started.
    fn replay_early(&mut self) {
        for event in std::mem::take(&mut self.early) {
            match event {
                TransportEvent::Message { stream, mut data } => {
                    // Before the handshake nothing is file data.
                    let _ = self.session.handle_message(stream, &mut data, now());
                }
                TransportEvent::Path(event) => self.handle_input(Input::Path(event)),
                TransportEvent::Notice(text) => self.handle_input(Input::Notice(text)),
                _ => {}
            }
        }
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Connected => {
                if let Some(refusal) = self.refusal.take() {
                    self.session.close(ErrorCode::BUSY, &refusal.to_string());
                }
            }
            Event::Response { .. } => {}
            Event::LoginRequested {
                id,
                user,
                password,
                register,
            } => self.start_login(id, user, password, register),
            Event::Request { id, command } => {
                self.queue.push_back((id, command));
                self.note_peaks();
            }
            Event::CreditAvailable { transfer } => self.pump_download(transfer),
            Event::TransferSent { transfer, .. } => self.download_sent(transfer),
            Event::TransferFinished {
                transfer,
                length,
                sha256,
            } => self.upload_finished(transfer, length, sha256),
            Event::TransferFailed {
                transfer,
                by,
                code,
                reason,
            } => self.transfer_failed(transfer, by, code, &reason),
            Event::Closed(reason) => {
                self.close_code = reason.code;
                let outcome = AuditOutcome::Info;
                let text = reason.code.name().unwrap_or("unknown code");
                let mut line = AuditEvent::new(EventKind::Disconnect, outcome)
                    .peers(&self.peers)
                    .reason(text);
                if let Some(account) = &self.account {
                    line = line.user(&account.name);
                }
                self.write_log(&line);
            }
        }
    }

    /// Starts the next queued command if none is running.
    fn start_next_command(&mut self) {
        // Replies wait for a peer that does not read: produce no more for now.
        while !self.running && self.driver.queued_bytes() < MAX_QUEUED_OUTPUT {
            let Some((id, command)) = self.queue.pop_front() else {
                return;
            };
            let Some(account) = self.current_account(id) else {
                continue;
            };
            if self.draining.is_some() {
                self.respond(
                    id,
                    Reply::error(ErrorCode::SHUTTING_DOWN, "the server is shutting down"),
                );
                continue;
            }
            let cx = CommandContext {
                ctx: self.ctx.clone(),
                account,
                cwd: self.cwd.clone(),
                peers: self.peers.clone(),
                open_transfers: self.session.open_transfers(),
            };
            if cmd::runs_inline(&command) {
                let result = cmd::run(&cx, command);
                self.command_done(id, result);
                continue;
            }
            self.running = true;
            self.jobs.spawn_blocking(move || Completion::Command {
                id,
                result: cmd::run(&cx, command),
            });
        }
    }

    /// The session's account as the users file has it now, refreshing the role.
    /// `None` after answering `id`: not logged in, the account was removed or
    /// disabled (the session then closes), or the users file is unreadable.
    fn current_account(&mut self, id: RequestId) -> Option<Account> {
        let Some(account) = &self.account else {
            // The session releases commands only after login.
            self.respond(id, Reply::error(ErrorCode::NOT_LOGGED_IN, "log in first"));
            return None;
        };
        match self.ctx.account(&account.name) {
            Ok(Some(current)) => {
                self.account = Some(current.clone());
                Some(current)
            }
            Ok(None) => {
                self.record(
                    AuditEvent::new(EventKind::Disconnect, AuditOutcome::Denied)
                        .reason(data_transfer::ACCOUNT_GONE),
                );
                self.respond(
                    id,
                    Reply::error(ErrorCode::NOT_LOGGED_IN, data_transfer::ACCOUNT_GONE),
                );
                self.queue.clear();
                self.abandon_uploads();
                self.session
                    .close(ErrorCode::NOT_LOGGED_IN, data_transfer::ACCOUNT_GONE);
                None
            }
            Err(error) => {
                log::error!("cannot look up the account: {error}");
                self.respond(id, Reply::error(ErrorCode::INTERNAL, "internal error"));
                None
            }
        }
    }

    fn handle_completion(&mut self, completion: Completion) {
        match completion {
            Completion::Login(done) => self.login_done(done),
            Completion::LoginRefused {
                id,
                code,
                message,
                close,
            } => {
                if self.session.reject_login(id, code, message).is_ok() && close {
                    self.session
                        .close(ErrorCode::AUTH_FAILED, "too many failed logins");
                }
            }
            Completion::Command { id, result } => {
                self.running = false;
                self.command_done(id, result);
            }
            Completion::Part { id, rest, part } => self.part_done(id, rest, part),
            Completion::Read { transfer, result } => self.chunk_read(transfer, result),
            Completion::Written {
                transfer,
                upload,
                bytes,
                result,
            } => self.chunk_written(transfer, upload, bytes, result),
            Completion::Committed { transfer, result } => self.committed(transfer, result),
            Completion::BindAcked { index, sent } => self.bind_acked(index, sent),
        }
    }

    /// Acts on what a command produced.
    fn command_done(&mut self, id: RequestId, result: CommandResult) {
        match result {
            CommandResult::Replies { replies, cwd } => {
                if let Some(cwd) = cwd {
                    self.cwd = cwd;
                }
                for reply in replies {
                    self.respond(id, reply);
                }
            }
            CommandResult::Parts { first, rest } => {
                // The command stays running until its last part is out, so no
                // later reply overtakes one of its parts.
                self.running = true;
                self.streaming = Some((id, Some(rest)));
                self.respond(id, first);
            }
            CommandResult::Retr(download) => self.open_download(id, download),
            CommandResult::Stor(target) => self.open_upload(id, *target),
            CommandResult::Assoc(grant) => self.grant_association(id, *grant),
        }
        self.note_peaks();
    }

    /// Starts producing the next part of the answer being streamed, unless one
    /// is being produced or the peer has not taken the parts already queued: a
    /// client that does not read stops the listing, not grows the server's
    /// memory. The job holds no thread while waiting.
    fn next_part(&mut self) {
        if self.driver.queued_bytes() >= MAX_QUEUED_OUTPUT {
            return;
        }
        let Some((id, rest)) = &mut self.streaming else {
            return;
        };
        let (id, Some(mut rest)) = (*id, rest.take()) else {
            return;
        };
        self.jobs.spawn_blocking(move || {
            let part = rest.next_part();
            Completion::Part { id, rest, part }
        });
    }

    /// Sends a streamed part; after the final one the next command may start.
    fn part_done(&mut self, id: RequestId, rest: PartStream, part: Option<Reply>) {
        match part {
            Some(part) if !part.is_last_part() => {
                self.streaming = Some((id, Some(rest)));
                self.respond(id, part);
            }
            last => {
                self.streaming = None;
                self.running = false;
                if let Some(part) = last {
                    self.respond(id, part);
                }
            }
        }
    }

    fn respond(&mut self, id: RequestId, reply: Reply) {
        if let Err(error) = self.session.respond(id, reply) {
            // The session closed meanwhile, or the request was already answered.
            log::debug!("reply to {id:?} not sent: {error}");
        }
    }

    fn begin_drain(&mut self) {
        if self.draining.is_none() {
            self.draining = Some(Instant::now() + self.ctx.settings.shutdown_grace);
        }
    }

    /// Closes a draining session once nothing is in flight.
    fn check_drain(&mut self) {
        if self.draining.is_some()
            && !self.session.is_closed()
            && !self.running
            && self.downloads.is_empty()
            && self.uploads.is_empty()
        {
            self.session
                .close(ErrorCode::SHUTTING_DOWN, "server shutting down");
        }
    }

    fn record(&self, event: AuditEvent<'_>) {
        let mut event = event.peers(&self.peers);
        if let Some(account) = &self.account {
            event = event.user(&account.name);
        }
        self.write_log(&event);
    }

    fn write_log(&self, event: &AuditEvent<'_>) {
        if let Err(error) = self.ctx.audit.record(event) {
            log::error!("cannot write server.log: {error}");
        }
    }
}

/// Messages queued for sending beyond which downloads stop reading ahead.
const MAX_OUTBOX: usize = 16;
/// Bytes queued for sending beyond which the connection stops reading requests
/// (and upload data) until the peer takes some: the bound on what a slow or
/// silent peer makes the server hold, beyond the one reply being produced.
pub(crate) const MAX_QUEUED_OUTPUT: usize = 1024 * 1024;
/// How long a closing session may take to deliver its last messages.
const CLOSE_FLUSH_TIME: std::time::Duration = std::time::Duration::from_secs(2);

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
