// Over 600 lines: one scripted test client with every hook the server tests use, kept in one place.
//! Test support (feature `testing`): a scripted protocol client that talks to a
//! server over any [`Transport`] — the in-memory pair in this crate's tests, a
//! kernel SCTP association in `sfs-kernel-tests` — plus small helpers.
//!
//! The client is a real [`ClientSession`] pumped by [`Driver`]: it sends
//! commands, pushes upload chunks as credit allows (optionally stalling or
//! forging the digest on purpose), fills downloads in place and collects every
//! reply by request id. It panics on anything a test did not expect; it is not
//! for production use.

#![allow(clippy::missing_panics_doc)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use sfs_net::{now, Driver, Input, Transport, TransportEvent};
use sfs_proto::bind::{BindAck, BindRequest};
use sfs_proto::control::{Command, ErrorCode, Reply, RequestId, TransferId};
use sfs_proto::digest::Sha256;
use sfs_proto::record::chunk_buffer;
use sfs_proto::session::{ClientSession, CloseReason, Event, SessionConfig, Transmit};
use tokio::task::JoinHandle;

use crate::connection::ConnectionSummary;

/// A download in progress.
struct DownloadProgress {
    /// Bytes received so far.
    received: usize,
    /// Where in the file the transfer starts.
    offset: u64,
    data: Vec<u8>,
    done: Option<Result<(), ErrorCode>>,
}

/// A scripted client: sends commands, uploads and downloads, collects replies.
pub struct TestClient<T: Transport> {
    /// The driver, for tests that pump by hand.
    pub driver: Driver<T>,
    /// The session, for tests that look at its state.
    pub session: ClientSession,
    /// The server task this client talks to, when the test spawned one.
    pub server: Option<JoinHandle<ConnectionSummary>>,
    /// Upload chunk size at most, in bytes.
    pub max_chunk: usize,
    /// A wait for input longer than this fails the test (`None`: no limit).
    pub step_limit: Option<Duration>,
    /// Whether a failed chunk send fails the test (else it is ignored and the
    /// transport's close shows up as input).
    pub strict_sends: bool,
    replies: HashMap<RequestId, Vec<Reply>>,
    done: HashSet<RequestId>,
    stor_data: HashMap<RequestId, Vec<u8>>,
    stor_ids: HashSet<RequestId>,
    uploads: HashMap<TransferId, Vec<u8>>,
    /// Upload bytes to send at most, per request (to stall an upload on purpose).
    upload_limits: HashMap<RequestId, usize>,
    limit_of: HashMap<TransferId, usize>,
    /// Uploads whose End records will carry a wrong digest.
    forged: HashSet<RequestId>,
    downloads: HashMap<TransferId, DownloadProgress>,
    retr_transfer: HashMap<RequestId, TransferId>,
    /// The transfer each STOR request opened.
    pub stor_transfer: HashMap<RequestId, TransferId>,
    /// The streams upload chunks went out on.
    pub streams_used: HashSet<u16>,
    /// The (association, stream) lanes upload chunks went out on.
    pub lanes_used: HashSet<(u8, u16)>,
    /// The extra associations the driver reported lost, by index.
    pub associations_lost: Vec<u8>,
    /// Why the session closed, once it did.
    pub closed: Option<CloseReason>,
    /// Whether the transport went away.
    pub transport_closed: bool,
    /// Upload chunks on this data stream are held back (as if the stream lost
    /// a packet) until [`TestClient::release_stream`].
    held_stream: Option<u16>,
    held: Vec<Transmit>,
}

impl<T: Transport> TestClient<T> {
    /// A client on `transport` verifying the server with `tls` as `server_name`,
    /// with 16 KiB chunks, no step limit and failed sends ignored.
    pub fn new(
        transport: T,
        tls: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Self {
        let config = SessionConfig::new(transport.streams());
        let driver = Driver::new(Arc::new(transport));
        let session = ClientSession::new(tls, server_name, config, now()).expect("client session");
        Self {
            driver,
            session,
            server: None,
            max_chunk: 16 * 1024,
            step_limit: None,
            strict_sends: false,
            replies: HashMap::new(),
            done: HashSet::new(),
            stor_data: HashMap::new(),
            stor_ids: HashSet::new(),
            uploads: HashMap::new(),
            upload_limits: HashMap::new(),
            limit_of: HashMap::new(),
            forged: HashSet::new(),
            downloads: HashMap::new(),
            retr_transfer: HashMap::new(),
            stor_transfer: HashMap::new(),
            streams_used: HashSet::new(),
            lanes_used: HashSet::new(),
            associations_lost: Vec::new(),
            closed: None,
            transport_closed: false,
            held_stream: None,
            held: Vec::new(),
        }
    }

    /// Queues `command`; returns its request id.
    pub fn send(&mut self, command: Command) -> RequestId {
        self.session.send_command(command).expect("send command")
    }

    /// Queues a STOR of `data` to `path`; the data goes out once it opens.
    pub fn send_stor(&mut self, path: &str, data: Vec<u8>) -> RequestId {
        let id = self.send(Command::Stor {
            path: path.into(),
            size: data.len() as u64,
        });
        self.stor_ids.insert(id);
        self.stor_data.insert(id, data);
        id
    }

    /// Makes the upload `id` end with a digest that does not match its data.
    pub fn forge_digest(&mut self, id: RequestId) {
        self.forged.insert(id);
    }

    /// Sends at most `limit` bytes of upload `id`, then stalls it.
    pub fn limit_upload(&mut self, id: RequestId, limit: usize) {
        self.upload_limits.insert(id, limit);
    }

    /// Lifts the limit [`limit_upload`](Self::limit_upload) put on upload `id`.
    pub fn release_upload(&mut self, id: RequestId) {
        self.upload_limits.remove(&id);
        if let Some(transfer) = self.stor_transfer.get(&id) {
            self.limit_of.remove(transfer);
        }
    }

    /// Steps until the upload `id` has sent everything its limit allows.
    ///
    /// # Cancel safety
    ///
    /// As [`step`](Self::step), which it repeats.
    pub async fn until_upload_stalls(&mut self, id: RequestId) {
        loop {
            assert!(!self.is_over(), "session ended: {:?}", self.closed);
            self.push_uploads().await;
            let _ = self.driver.flush(&mut self.session).await;
            self.poll_events();
            if let Some(transfer) = self.stor_transfer.get(&id) {
                let limit = self.limit_of.get(transfer).copied().unwrap_or(usize::MAX);
                let sent = self.session.next_chunk_offset(*transfer).unwrap_or(0) as usize;
                if sent >= limit {
                    return;
                }
            }
            self.step().await;
        }
    }

    /// Holds back upload chunks sealed for data `stream` from now on, so every
    /// upload has a gap the server cannot fill. Records stay in sequence: only
    /// the release sends them, in order. An upload whose `End` record would go
    /// out on the held stream must not finish while it is held.
    pub fn hold_stream(&mut self, stream: u16) {
        self.held_stream = Some(stream);
    }

    /// Sends the chunks held back, in order, and stops holding.
    ///
    /// # Cancel safety
    ///
    /// Not cancellation-safe: the held chunks not sent yet are lost, leaving gaps the
    /// server waits for.
    pub async fn release_stream(&mut self) {
        self.held_stream = None;
        for transmit in std::mem::take(&mut self.held) {
            let _ = self.driver.send(transmit).await;
        }
    }

    /// Chunks held back so far.
    pub fn held_chunks(&self) -> usize {
        self.held.len()
    }

    /// Queues a REGET of `path` continuing a partial copy `held` (its first
    /// bytes): the transfer sends the rest, and its End digest covers the
    /// whole file.
    pub fn send_reget(&mut self, path: &str, held: &[u8]) -> RequestId {
        let prefix = Sha256::new_with_prefix(held);
        let command = Command::Reget {
            path: path.into(),
            offset: held.len() as u64,
            prefix: prefix.clone().finalize(),
        };
        self.session
            .send_resuming(command, prefix)
            .expect("send REGET")
    }

    /// Queues a REPUT of `data` to `path`, continuing the partial the server
    /// kept of its first `offset` bytes; the rest goes out once it opens.
    pub fn send_reput(&mut self, path: &str, data: Vec<u8>, offset: usize) -> RequestId {
        let prefix = Sha256::new_with_prefix(&data[..offset]);
        let command = Command::Reput {
            path: path.into(),
            size: data.len() as u64,
            offset: offset as u64,
            prefix: prefix.clone().finalize(),
        };
        let id = self
            .session
            .send_resuming(command, prefix)
            .expect("send REPUT");
        self.stor_ids.insert(id);
        self.stor_data.insert(id, data);
        id
    }

    /// Asks for a ticket for one more association: `ASSOC`, answered with
    /// `(index, ticket)` or the error reply's code.
    ///
    /// # Errors
    ///
    /// The code of the error reply (`ASSOCIATION_LIMIT` at a limit).
    ///
    /// # Cancel safety
    ///
    /// As [`request`](Self::request).
    pub async fn request_ticket(&mut self) -> Result<(u8, [u8; 16]), ErrorCode> {
        match self.request(Command::Assoc).await {
            Reply::AssocTicket { index, ticket } => Ok((index, ticket)),
            Reply::Error { code, .. } => Err(code),
            other => panic!("unexpected reply to ASSOC: {other:?}"),
        }
    }

    /// Binds `transport`, a new association to the same server (its server
    /// side served by `connection::serve`), as an extra data association:
    /// `ASSOC`, the `BIND` on its stream 0, the `BIND_ACK`, then the driver
    /// carries it. Returns its index.
    ///
    /// # Errors
    ///
    /// The code of the error reply to `ASSOC`, or the status of a refusing
    /// `BIND_ACK` (the transport is dropped then).
    ///
    /// # Cancel safety
    ///
    /// As [`request`](Self::request) until the ticket is in; after that a
    /// cancelled call drops `transport`, which the server sees as a lost
    /// association.
    pub async fn add_association(&mut self, transport: T) -> Result<u8, ErrorCode> {
        let (index, ticket) = self.request_ticket().await?;
        let bind = self
            .session
            .bind_association(index, ticket, transport.streams())
            .expect("bind_association");
        let ack = send_bind(&transport, &bind)
            .await
            .expect("a BIND_ACK before the association closed");
        if !ack.is_bound() {
            // Refused: the index is free again on both sides.
            self.session.handle_association_lost(index);
            return Err(ack.status);
        }
        self.driver.add_association(index, Arc::new(transport));
        Ok(index)
    }

    /// Shuts down extra association `index` from this side (as if it were
    /// cut): the driver detaches it and the session fails the transfers that
    /// use it.
    pub fn cut_association(&mut self, index: u8) {
        if let Some(transport) = self.driver.remove_association(&mut self.session, index) {
            transport.shutdown();
        }
    }

    /// Queues a RETR of `path` from `offset`.
    pub fn send_retr(&mut self, path: &str, offset: u64) -> RequestId {
        self.send(Command::Retr {
            path: path.into(),
            offset,
        })
    }

    /// One round: send what is queued and allowed, act on events, take one input.
    ///
    /// # Cancel safety
    ///
    /// Not cancellation-safe while upload chunks go out: a chunk the session has sealed
    /// but the driver has not sent is lost, leaving a gap the server waits for. Replies
    /// and download bytes already taken in are kept.
    pub async fn step(&mut self) {
        self.push_uploads().await;
        let _ = self.driver.flush(&mut self.session).await;
        self.poll_events();
        if self.is_over() {
            return;
        }
        let next = self.driver.next_input(&mut self.session);
        let input = match self.step_limit {
            Some(limit) => tokio::time::timeout(limit, next)
                .await
                .expect("no input from the server for a whole step"),
            None => next.await,
        };
        self.take_input(input);
        self.poll_events();
    }

    /// Steps for `time`, without waiting for input beyond it.
    ///
    /// # Cancel safety
    ///
    /// As [`step`](Self::step), which it repeats.
    pub async fn settle(&mut self, time: Duration) {
        let deadline = tokio::time::Instant::now() + time;
        while !self.is_over() {
            self.push_uploads().await;
            let _ = self.driver.flush(&mut self.session).await;
            self.poll_events();
            tokio::select! {
                input = self.driver.next_input(&mut self.session) => self.take_input(input),
                () = tokio::time::sleep_until(deadline) => break,
            }
            self.poll_events();
        }
    }

    fn take_input(&mut self, input: Input) {
        match input {
            Input::Chunk(chunk) => {
                if let Some(download) = self.downloads.get_mut(&chunk.transfer) {
                    let at = (chunk.offset - download.offset) as usize;
                    download.data[at..at + chunk.data().len()].copy_from_slice(chunk.data());
                    download.received += chunk.data().len();
                }
            }
            Input::TransportClosed(_) => self.transport_closed = true,
            Input::AssociationLost { index, .. } => self.associations_lost.push(index),
            _ => {}
        }
    }

    async fn push_uploads(&mut self) {
        let transfers: Vec<TransferId> = self.uploads.keys().copied().collect();
        for transfer in transfers {
            loop {
                let allowance = self.session.chunk_allowance(transfer).min(self.max_chunk);
                let Some(offset) = self.session.next_chunk_offset(transfer) else {
                    break;
                };
                let offset = offset as usize;
                let data = &self.uploads[&transfer];
                let mut end = (offset + allowance).min(data.len());
                if let Some(limit) = self.limit_of.get(&transfer) {
                    end = end.min(*limit);
                }
                if allowance == 0 || end <= offset {
                    break;
                }
                let mut buf = chunk_buffer(end - offset);
                buf.extend_from_slice(&data[offset..end]);
                let transmit = self.session.send_chunk(transfer, buf).expect("send chunk");
                self.streams_used.insert(transmit.stream);
                self.lanes_used
                    .insert((transmit.association, transmit.stream));
                if Some(transmit.stream) == self.held_stream {
                    self.held.push(transmit);
                    continue;
                }
                let sent = self.driver.send(transmit).await;
                if self.strict_sends {
                    sent.expect("send a chunk");
                }
            }
        }
    }

    fn poll_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Response { id, reply } => self.response(id, reply),
                Event::TransferFinished { transfer, .. } => {
                    if let Some(download) = self.downloads.get_mut(&transfer) {
                        download.done = Some(Ok(()));
                    }
                }
                Event::TransferFailed { transfer, code, .. } => {
                    if let Some(download) = self.downloads.get_mut(&transfer) {
                        download.done = Some(Err(code));
                    }
                    self.uploads.remove(&transfer);
                }
                Event::TransferSent { transfer, .. } => {
                    self.uploads.remove(&transfer);
                }
                Event::Closed(reason) => self.closed = Some(reason),
                _ => {}
            }
        }
    }

    fn response(&mut self, id: RequestId, reply: Reply) {
        if let Reply::TransferOpen(open) = &reply {
            if let Some(data) = self.stor_data.remove(&id) {
                self.uploads.insert(open.transfer, data);
                self.stor_transfer.insert(id, open.transfer);
                if self.forged.remove(&id) {
                    assert!(self.session.falsify_outgoing_digest(open.transfer));
                }
                if let Some(limit) = self.upload_limits.remove(&id) {
                    self.limit_of.insert(open.transfer, limit);
                }
            } else {
                self.downloads.insert(
                    open.transfer,
                    DownloadProgress {
                        received: 0,
                        offset: open.offset,
                        data: vec![0; open.length as usize],
                        done: None,
                    },
                );
                self.retr_transfer.insert(id, open.transfer);
            }
        }
        // A STOR's TransferOpen is interim: its final reply comes after the data.
        let is_interim = self.stor_ids.contains(&id) && matches!(reply, Reply::TransferOpen(_));
        let final_reply = reply.is_last_part() && !is_interim;
        self.replies.entry(id).or_default().push(reply);
        if final_reply {
            self.done.insert(id);
        }
    }

    /// Whether the session or the transport ended.
    pub fn is_over(&self) -> bool {
        self.closed.is_some() || self.transport_closed
    }

    /// Every reply to `id`, once the final one is in.
    ///
    /// # Cancel safety
    ///
    /// As [`step`](Self::step), which it repeats; replies to `id` received so far are
    /// kept for the next call.
    pub async fn replies(&mut self, id: RequestId) -> Vec<Reply> {
        while !self.done.contains(&id) {
            assert!(
                !self.is_over(),
                "session ended while waiting for {id:?}: {:?}",
                self.closed
            );
            self.step().await;
        }
        self.replies.remove(&id).unwrap_or_default()
    }

    /// Whether the final reply to `id` has arrived (without reading more).
    pub fn is_answered(&self, id: RequestId) -> bool {
        self.done.contains(&id)
    }

    /// The final reply to `id`.
    ///
    /// # Cancel safety
    ///
    /// As [`replies`](Self::replies).
    pub async fn reply(&mut self, id: RequestId) -> Reply {
        self.replies(id).await.pop().expect("a reply")
    }

    /// Sends `command` and waits for its final reply.
    ///
    /// # Cancel safety
    ///
    /// As [`replies`](Self::replies); the command is queued either way, and its id is lost
    /// with the future.
    pub async fn request(&mut self, command: Command) -> Reply {
        let id = self.send(command);
        self.reply(id).await
    }

    /// Logs in; returns the reply.
    ///
    /// # Cancel safety
    ///
    /// As [`request`](Self::request).
    pub async fn login(&mut self, user: &str, password: &str) -> Reply {
        self.request(Command::Login {
            user: user.into(),
            password: password.into(),
        })
        .await
    }

    /// Uploads `data` to `path`; returns the final reply.
    ///
    /// # Cancel safety
    ///
    /// As [`request`](Self::request).
    pub async fn upload(&mut self, path: &str, data: &[u8]) -> Reply {
        let id = self.send_stor(path, data.to_vec());
        self.reply(id).await
    }

    /// The file, or the error reply (or the transfer's failure code as an error).
    ///
    /// # Errors
    ///
    /// The error reply to the RETR, or the transfer's failure code as an error reply.
    ///
    /// # Cancel safety
    ///
    /// As [`download_with_hook`](Self::download_with_hook).
    pub async fn download_result(&mut self, id: RequestId) -> Result<Vec<u8>, Reply> {
        self.download_with_hook(id, usize::MAX, || {}).await
    }

    /// Like [`Self::download_result`], calling `hook` once `threshold` bytes have
    /// arrived (and before the download completes); `usize::MAX` never calls it.
    ///
    /// # Errors
    ///
    /// As [`download_result`](Self::download_result).
    ///
    /// # Cancel safety
    ///
    /// As [`step`](Self::step), which it repeats. Once the RETR's reply is in, a cancelled
    /// call cannot be resumed: the reply has been taken.
    pub async fn download_with_hook(
        &mut self,
        id: RequestId,
        threshold: usize,
        hook: impl FnOnce(),
    ) -> Result<Vec<u8>, Reply> {
        let reply = self.reply(id).await;
        if !matches!(reply, Reply::TransferOpen(_)) {
            return Err(reply);
        }
        let transfer = self.retr_transfer[&id];
        let mut hook = (threshold != usize::MAX).then_some(hook);
        loop {
            let download = &self.downloads[&transfer];
            if download.received >= threshold {
                if let Some(hook) = hook.take() {
                    assert!(
                        download.done.is_none(),
                        "the download ended before the hook"
                    );
                    hook();
                }
            }
            if let Some(done) = download.done {
                assert!(
                    hook.is_none(),
                    "the download ended before {threshold} bytes"
                );
                let download = self.downloads.remove(&transfer).expect("download");
                return match done {
                    Ok(()) => Ok(download.data),
                    Err(code) => Err(Reply::error(code, "transfer failed")),
                };
            }
            assert!(
                !self.is_over(),
                "session ended during a download: {:?}",
                self.closed
            );
            self.step().await;
        }
    }

    /// Downloads all of `path`.
    ///
    /// # Errors
    ///
    /// As [`download_result`](Self::download_result).
    ///
    /// # Cancel safety
    ///
    /// As [`download_with_hook`](Self::download_with_hook); the RETR is queued either way.
    pub async fn download(&mut self, path: &str) -> Result<Vec<u8>, Reply> {
        let id = self.send_retr(path, 0);
        self.download_result(id).await
    }

    /// Steps until the session ends; returns why.
    ///
    /// # Cancel safety
    ///
    /// As [`step`](Self::step), which it repeats. Calling it again resumes.
    pub async fn until_closed(&mut self) -> Option<CloseReason> {
        while !self.is_over() {
            self.step().await;
        }
        self.closed.clone()
    }

    /// Sends QUIT, expects `Ok`, and returns how the server task summed up the
    /// connection. Needs [`Self::server`].
    ///
    /// # Cancel safety
    ///
    /// As [`request`](Self::request) until the QUIT reply is in; after that the client is
    /// gone, and dropping the future detaches the server task instead of awaiting it.
    pub async fn quit(mut self) -> ConnectionSummary {
        let reply = self.request(Command::Quit).await;
        assert_eq!(reply, Reply::Ok);
        let _ = self.driver.flush(&mut self.session).await;
        let server = self.server.take().expect("a server task");
        drop(self);
        server.await.expect("the server task")
    }
}

/// Sends `bind` as the first message of `transport` (stream 0) and reads the
/// server's `BIND_ACK`: `None` if the association closed first (it was shut
/// down without one). Waits at most 15 s.
///
/// # Panics
///
/// On a message other than a `BIND_ACK` before it, or no answer in time.
pub async fn send_bind<T: Transport>(transport: &T, bind: &BindRequest) -> Option<BindAck> {
    transport
        .send(0, &bind.encode())
        .await
        .expect("send the BIND");
    read_bind_ack(transport).await
}

/// Reads the `BIND_ACK` of a new association: `None` if it closed without one.
///
/// # Panics
///
/// As [`send_bind`].
pub async fn read_bind_ack<T: Transport>(transport: &T) -> Option<BindAck> {
    loop {
        let event = tokio::time::timeout(Duration::from_secs(15), transport.recv())
            .await
            .expect("an answer to the BIND in time");
        match event {
            Ok(TransportEvent::Message { stream: 0, data }) => {
                return Some(BindAck::decode(&data).expect("a well-formed BIND_ACK"));
            }
            Ok(TransportEvent::Message { stream, .. }) => {
                panic!("a message on stream {stream} before the BIND_ACK")
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Whether the server shut `transport` down: its next `recv` (within 15 s)
/// finds it closed, with nothing more to read.
pub async fn is_shut_down<T: Transport>(transport: &T) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(15), transport.recv()).await,
        Ok(Err(_))
    )
}

/// The code of an error reply.
pub fn code(reply: &Reply) -> ErrorCode {
    match reply {
        Reply::Error { code, .. } => *code,
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A file whose bytes depend on their offset, so misplaced chunks show.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8 ^ seed)
        .collect()
}

/// Every upload temporary file left under `root`, kept partials (for `reput`)
/// excepted: see [`kept_partials`].
pub fn leftover_uploads(root: &Path) -> Vec<PathBuf> {
    upload_files(root)
        .into_iter()
        .filter(|path| !is_kept_partial(path))
        .collect()
}

/// Every partial upload kept for `reput` under `root`.
pub fn kept_partials(root: &Path) -> Vec<PathBuf> {
    upload_files(root)
        .into_iter()
        .filter(|path| is_kept_partial(path))
        .collect()
}

fn is_kept_partial(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().starts_with(".sfs-upload-kept-"))
}

fn upload_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                walk(&entry.path(), found);
            } else if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".sfs-upload-")
            {
                found.push(entry.path());
            }
        }
    }
    let mut found = Vec::new();
    walk(root, &mut found);
    found
}
