//! A server context in a temporary folder and a scripted client that talks to the
//! real connection handler over the in-memory transport pair.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sfs_net::memory::{memory_pair, MemoryTransport};
use sfs_net::{now, Driver, Input, Transport};
use sfs_proto::control::{Command, ErrorCode, Reply, RequestId, TransferId};
use sfs_proto::record::chunk_buffer;
use sfs_proto::session::{ClientSession, CloseReason, Event, SessionConfig};
use sfs_proto::testing::TestPki;
use sfs_server::accounts::{hash_password, Accounts, Hasher, Password, Role, Username, UsersFile};
use sfs_server::audit::AuditLog;
use sfs_server::connection::{self, ConnectionSummary};
use sfs_server::context::{ServerContext, SessionSettings, Shares};
use sfs_server::shares::{ShareDb, SharesFile};
use sfs_server::store::FileStore;
use sfs_server::throttle::LoginPolicy;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse";

/// Streams of the memory pair, stream 0 included.
pub const STREAMS: u16 = 5;

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub ctx: Arc<ServerContext>,
    pub pki: TestPki,
    pub shutdown: watch::Sender<bool>,
}

/// A login policy with short delays, so tests run fast but delays still show.
pub fn quick_policy() -> LoginPolicy {
    LoginPolicy {
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(400),
        max_failures_per_connection: 3,
        ..LoginPolicy::default()
    }
}

impl Fixture {
    /// alice and bob (users), root (admin), all with [`PASSWORD`]; registration on.
    pub fn new() -> Self {
        Self::with(SessionSettings {
            allow_registration: true,
            ..SessionSettings::default()
        })
    }

    pub fn with(settings: SessionSettings) -> Self {
        Self::with_policy(settings, quick_policy())
    }

    pub fn with_policy(settings: SessionSettings, policy: LoginPolicy) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let users = UsersFile::new(dir.path().join("users.json"));
        let hash = hash_password(&Password::new(PASSWORD.as_bytes().to_vec()).unwrap(), 4).unwrap();
        users
            .update(|db| {
                for (name, role) in [
                    ("alice", Role::User),
                    ("bob", Role::User),
                    ("root", Role::Admin),
                ] {
                    db.add(Username::parse(name).unwrap(), hash.clone(), role)?;
                }
                Ok(())
            })
            .unwrap();
        let accounts = Accounts::open(users, Hasher::new(4, 2)).unwrap();
        let store = FileStore::open(&dir.path().join("server_files")).unwrap();
        let shares = Shares::new(
            SharesFile::new(dir.path().join("shares.json")),
            ShareDb::default(),
        );
        let audit = AuditLog::open(&dir.path().join("server.log")).unwrap();
        let pki = TestPki::new(&["localhost"]);
        let ctx = ServerContext::from_parts(
            accounts,
            store,
            shares,
            audit,
            policy,
            pki.server_config(),
            settings,
        );
        let (shutdown, _) = watch::channel(false);
        Self {
            dir,
            ctx: Arc::new(ctx),
            pki,
            shutdown,
        }
    }

    pub fn home(&self, user: &str) -> PathBuf {
        self.dir.path().join("server_files").join(user)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap()
    }

    /// A new client connected to a new server connection (not logged in).
    pub async fn connect(&self) -> Client {
        let (client_end, server_end) = memory_pair(STREAMS);
        let server = tokio::spawn(connection::serve(
            self.ctx.clone(),
            server_end,
            self.shutdown.subscribe(),
        ));
        Client::new(client_end, &self.pki, server).await
    }

    /// A client logged in as `user`.
    pub async fn login(&self, user: &str) -> Client {
        let mut client = self.connect().await;
        let reply = client.login(user, PASSWORD).await;
        assert_eq!(reply, Reply::Ok, "login of {user}");
        client
    }

    /// Every upload temporary file left under the root.
    pub fn leftover_uploads(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let kind = entry.file_type().unwrap();
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
        walk(&self.dir.path().join("server_files"), &mut found);
        found
    }
}

struct Download {
    request: RequestId,
    offset: u64,
    data: Vec<u8>,
    done: Option<Result<(), ErrorCode>>,
}

pub struct Client {
    pub driver: Driver<MemoryTransport>,
    pub session: ClientSession,
    pub server: Option<JoinHandle<ConnectionSummary>>,
    replies: HashMap<RequestId, Vec<Reply>>,
    done: HashSet<RequestId>,
    stor_data: HashMap<RequestId, Vec<u8>>,
    stor_ids: HashSet<RequestId>,
    uploads: HashMap<TransferId, Vec<u8>>,
    /// Bytes of an upload to send before stopping (to test aborts).
    upload_limit: HashMap<TransferId, usize>,
    pending_limits: Vec<(RequestId, usize)>,
    /// Uploads whose End records will carry a wrong digest.
    forged: HashSet<RequestId>,
    downloads: HashMap<TransferId, Download>,
    retr_transfer: HashMap<RequestId, TransferId>,
    pub stor_transfer: HashMap<RequestId, TransferId>,
    pub streams_used: HashSet<u16>,
    pub closed: Option<CloseReason>,
    pub transport_closed: bool,
}

impl Client {
    async fn new(
        end: MemoryTransport,
        pki: &TestPki,
        server: JoinHandle<ConnectionSummary>,
    ) -> Self {
        let mut client = Self::detached(end, pki);
        client.server = Some(server);
        client
    }

    /// A client on `end`, whose server side runs elsewhere.
    pub fn detached(end: MemoryTransport, pki: &TestPki) -> Self {
        let config = SessionConfig::new(end.streams());
        let driver = Driver::new(Arc::new(end));
        let name = "localhost".try_into().unwrap();
        let session = ClientSession::new(pki.client_config(), name, config, now()).unwrap();
        Self {
            driver,
            session,
            server: None,
            replies: HashMap::new(),
            done: HashSet::new(),
            stor_data: HashMap::new(),
            stor_ids: HashSet::new(),
            uploads: HashMap::new(),
            upload_limit: HashMap::new(),
            pending_limits: Vec::new(),
            forged: HashSet::new(),
            downloads: HashMap::new(),
            retr_transfer: HashMap::new(),
            stor_transfer: HashMap::new(),
            streams_used: HashSet::new(),
            closed: None,
            transport_closed: false,
        }
    }

    pub fn send(&mut self, command: Command) -> RequestId {
        self.session.send_command(command).unwrap()
    }

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

    /// Sends only the first `limit` bytes of the upload `id`, then stalls.
    pub fn limit_upload(&mut self, id: RequestId, limit: usize) {
        self.pending_limits.push((id, limit));
    }

    pub fn send_retr(&mut self, path: &str, offset: u64) -> RequestId {
        self.send(Command::Retr {
            path: path.into(),
            offset,
        })
    }

    /// One round: send what is queued and allowed, act on events, take one input.
    pub async fn step(&mut self) {
        self.push_uploads().await;
        let _ = self.driver.flush(&mut self.session).await;
        self.poll_events();
        if self.closed.is_some() || self.transport_closed {
            return;
        }
        let input = self.driver.next_input(&mut self.session).await;
        match input {
            Input::Chunk(chunk) => {
                if let Some(download) = self.downloads.get_mut(&chunk.transfer) {
                    let at = (chunk.offset - download.offset) as usize;
                    download.data[at..at + chunk.data().len()].copy_from_slice(chunk.data());
                }
            }
            Input::TransportClosed(_) => self.transport_closed = true,
            _ => {}
        }
        self.poll_events();
    }

    /// Steps for `time`, without waiting for input beyond it.
    pub async fn settle(&mut self, time: Duration) {
        let deadline = tokio::time::Instant::now() + time;
        while !self.is_over() {
            self.push_uploads().await;
            let _ = self.driver.flush(&mut self.session).await;
            self.poll_events();
            tokio::select! {
                input = self.driver.next_input(&mut self.session) => match input {
                    Input::Chunk(chunk) => {
                        if let Some(download) = self.downloads.get_mut(&chunk.transfer) {
                            let at = (chunk.offset - download.offset) as usize;
                            download.data[at..at + chunk.data().len()].copy_from_slice(chunk.data());
                        }
                    }
                    Input::TransportClosed(_) => self.transport_closed = true,
                    _ => {}
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
            self.poll_events();
        }
    }

    async fn push_uploads(&mut self) {
        let transfers: Vec<TransferId> = self.uploads.keys().copied().collect();
        for transfer in transfers {
            loop {
                let allowance = self.session.chunk_allowance(transfer).min(16 * 1024);
                let Some(offset) = self.session.next_chunk_offset(transfer) else {
                    break;
                };
                let offset = offset as usize;
                let data = &self.uploads[&transfer];
                let mut end = (offset + allowance).min(data.len());
                if let Some(limit) = self.upload_limit.get(&transfer) {
                    end = end.min(*limit);
                }
                if allowance == 0 || end <= offset {
                    break;
                }
                let mut buf = chunk_buffer(end - offset);
                buf.extend_from_slice(&data[offset..end]);
                let transmit = self.session.send_chunk(transfer, buf).unwrap();
                self.streams_used.insert(transmit.stream);
                let _ = self.driver.send(transmit).await;
            }
        }
    }

    fn poll_events(&mut self) {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Response { id, reply } => {
                    if let Reply::TransferOpen(open) = &reply {
                        if let Some(data) = self.stor_data.remove(&id) {
                            self.uploads.insert(open.transfer, data);
                            self.stor_transfer.insert(id, open.transfer);
                            if self.forged.remove(&id) {
                                assert!(self.session.falsify_outgoing_digest(open.transfer));
                            }
                            if let Some(pos) =
                                self.pending_limits.iter().position(|(i, _)| *i == id)
                            {
                                let (_, limit) = self.pending_limits.remove(pos);
                                self.upload_limit.insert(open.transfer, limit);
                            }
                        } else {
                            self.downloads.insert(
                                open.transfer,
                                Download {
                                    request: id,
                                    offset: open.offset,
                                    data: vec![0; open.length as usize],
                                    done: None,
                                },
                            );
                            self.retr_transfer.insert(id, open.transfer);
                        }
                    }
                    let final_reply = reply.is_last_part()
                        && !(self.stor_ids.contains(&id)
                            && matches!(reply, Reply::TransferOpen(_)));
                    self.replies.entry(id).or_default().push(reply);
                    if final_reply {
                        self.done.insert(id);
                    }
                }
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
                Event::TransferSent { transfer } => {
                    self.uploads.remove(&transfer);
                }
                Event::Closed(reason) => self.closed = Some(reason),
                _ => {}
            }
        }
    }

    fn is_over(&self) -> bool {
        self.closed.is_some() || self.transport_closed
    }

    /// Every reply to `id`, once the final one is in.
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

    /// The final reply to `id`.
    pub async fn reply(&mut self, id: RequestId) -> Reply {
        self.replies(id).await.pop().unwrap()
    }

    pub async fn request(&mut self, command: Command) -> Reply {
        let id = self.send(command);
        self.reply(id).await
    }

    pub async fn login(&mut self, user: &str, password: &str) -> Reply {
        self.request(Command::Login {
            user: user.into(),
            password: password.into(),
        })
        .await
    }

    pub async fn upload(&mut self, path: &str, data: &[u8]) -> Reply {
        let id = self.send_stor(path, data.to_vec());
        self.reply(id).await
    }

    /// The file, or the error reply (or the transfer's failure code as an error).
    pub async fn download_result(&mut self, id: RequestId) -> Result<Vec<u8>, Reply> {
        let reply = self.reply(id).await;
        if !matches!(reply, Reply::TransferOpen(_)) {
            return Err(reply);
        }
        let transfer = self.retr_transfer[&id];
        loop {
            if let Some(done) = self.downloads[&transfer].done {
                let download = self.downloads.remove(&transfer).unwrap();
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

    pub async fn download(&mut self, path: &str) -> Result<Vec<u8>, Reply> {
        let id = self.send_retr(path, 0);
        self.download_result(id).await
    }

    /// Steps until the session ends; returns why.
    pub async fn until_closed(&mut self) -> Option<CloseReason> {
        while !self.is_over() {
            self.step().await;
        }
        self.closed.clone()
    }

    pub async fn quit(mut self) -> ConnectionSummary {
        let reply = self.request(Command::Quit).await;
        assert_eq!(reply, Reply::Ok);
        let _ = self.driver.flush(&mut self.session).await;
        let server = self.server.take().unwrap();
        drop(self);
        server.await.unwrap()
    }
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
