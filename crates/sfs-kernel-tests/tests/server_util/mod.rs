//! Helpers of the `server_*` kernel tests: a real `sfs-server` process in a
//! temporary folder (accounts made with `sfs-admin`, certificates from
//! `sfs-admin cert init`), and a scripted client (a real `ClientSession` driven by
//! `sfs-net` over a kernel SCTP association).

#![allow(dead_code)] // each test file uses its own subset

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sfs_kernel_tests::workspace_binary;
use sfs_net::{now, Driver, Input, Transport};
use sfs_proto::control::{Command, ErrorCode, Reply, RequestId, TransferId};
use sfs_proto::record::chunk_buffer;
use sfs_proto::session::{ClientSession, CloseReason, Event, SessionConfig};
use sfs_sctp::{SctpAssociation, SctpConfig};

/// The password of every account the tests create.
pub const PASSWORD: &str = "kernel test password";

/// How long any single wait may take before the test fails.
pub const STEP: Duration = Duration::from_secs(30);

/// A temporary server folder: users, certificates, homes, log.
pub struct ServerDir {
    pub path: PathBuf,
}

impl ServerDir {
    /// Creates the folder with certificates for `sans` and the given accounts
    /// (`(name, role)`), all with [`PASSWORD`].
    pub fn new(tag: &str, sans: &[IpAddr], users: &[(&str, &str)]) -> Self {
        let path = std::env::temp_dir().join(format!("sfs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("server folder");
        let admin = workspace_binary("sfs-admin");
        let mut cert = Process::new(&admin);
        cert.current_dir(&path).args(["cert", "init"]);
        for san in sans {
            cert.args(["--san", &san.to_string()]);
        }
        run(&mut cert, "sfs-admin cert init");
        for (name, role) in users {
            let mut add = Process::new(&admin);
            add.current_dir(&path)
                .args(["user", "add", name, "--role", role, "--bcrypt-cost", "4"])
                .args(["--password-env", "SFS_TEST_PASSWORD"])
                .env("SFS_TEST_PASSWORD", PASSWORD);
            run(&mut add, "sfs-admin user add");
        }
        Self { path }
    }

    pub fn home(&self, user: &str) -> PathBuf {
        self.path.join("server_files").join(user)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path.join("server.log")).unwrap_or_default()
    }

    /// The CA certificate clients verify the server with.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.path.join("certs/ca.pem")).expect("ca.pem")
    }

    /// The `sfs-server` command for this folder (add the bind flags).
    pub fn server_command(&self, mut command: Process, bind: &[IpAddr], port: u16) -> Process {
        let bind = bind
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        command
            .current_dir(&self.path)
            .args(["--bind", &bind, "--port", &port.to_string()])
            .args([
                "--bcrypt-cost",
                "4",
                "--allow-registration",
                "--streams",
                "6",
            ])
            .env("RUST_LOG", "info");
        command
    }
}

impl Drop for ServerDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn run(command: &mut Process, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running server process; killed (SIGKILL) on drop if still running.
pub struct ServerProcess {
    child: Child,
    pub stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `command` and waits until it says it is listening.
    pub fn start(mut command: Process) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sfs-server");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on") {
                    let _ = ready_tx.send(());
                }
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        if ready_rx.recv_timeout(STEP).is_err() {
            let _ = child.kill();
            panic!(
                "sfs-server did not start listening:\n{}",
                stderr.lock().unwrap()
            );
        }
        Self { child, stderr }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let sent = Process::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("sfs-server did not stop within 30 s of SIGTERM");
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client config asking for as many streams as the server offers.
pub fn sctp_config() -> SctpConfig {
    let mut config = SctpConfig::default();
    config.outbound_streams = 7;
    config.max_inbound_streams = 7;
    config
}

/// Connects to `server` (all its addresses) from `local` (if given).
pub async fn connect(
    server: &[SocketAddr],
    local: Option<&[SocketAddr]>,
    dir: &ServerDir,
) -> Client<SctpAssociation> {
    let association = SctpAssociation::connect(server, local, &sctp_config(), STEP)
        .await
        .expect("connect to sfs-server");
    Client::new(association, &dir.ca_pem(), &server[0].ip().to_string())
}

struct Download {
    received: usize,
    offset: u64,
    data: Vec<u8>,
    done: Option<Result<(), ErrorCode>>,
}

/// A scripted client: sends commands, uploads and downloads, collects replies.
pub struct Client<T: Transport> {
    pub driver: Driver<T>,
    pub session: ClientSession,
    replies: HashMap<RequestId, Vec<Reply>>,
    done: HashSet<RequestId>,
    stor_data: HashMap<RequestId, Vec<u8>>,
    stor_ids: HashSet<RequestId>,
    uploads: HashMap<TransferId, Vec<u8>>,
    /// Upload bytes to send at most, per request (to stall an upload on purpose).
    upload_limits: HashMap<RequestId, usize>,
    limit_of: HashMap<TransferId, usize>,
    pub stor_transfer: HashMap<RequestId, TransferId>,
    downloads: HashMap<TransferId, Download>,
    retr_transfer: HashMap<RequestId, TransferId>,
    pub streams_used: HashSet<u16>,
    pub closed: Option<CloseReason>,
    pub transport_closed: bool,
}

impl<T: Transport> Client<T> {
    /// A client verifying the server against `ca_pem` for `server_name` (an
    /// address in the certificate's SANs).
    pub fn new(transport: T, ca_pem: &[u8], server_name: &str) -> Self {
        let tls = sfs_proto::tls::client_config(ca_pem).expect("client TLS config");
        let name = server_name.to_string().try_into().expect("server name");
        let config = SessionConfig::new(transport.streams());
        let driver = Driver::new(Arc::new(transport));
        let session = ClientSession::new(tls, name, config, now()).expect("client session");
        Self {
            driver,
            session,
            replies: HashMap::new(),
            done: HashSet::new(),
            stor_data: HashMap::new(),
            stor_ids: HashSet::new(),
            uploads: HashMap::new(),
            upload_limits: HashMap::new(),
            limit_of: HashMap::new(),
            stor_transfer: HashMap::new(),
            downloads: HashMap::new(),
            retr_transfer: HashMap::new(),
            streams_used: HashSet::new(),
            closed: None,
            transport_closed: false,
        }
    }

    pub fn send(&mut self, command: Command) -> RequestId {
        self.session.send_command(command).expect("send command")
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

    /// Sends at most `limit` bytes of upload `id`, then stalls it.
    pub fn limit_upload(&mut self, id: RequestId, limit: usize) {
        self.upload_limits.insert(id, limit);
    }

    /// Steps until the upload `id` has sent everything its limit allows.
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

    pub fn send_retr(&mut self, path: &str, offset: u64) -> RequestId {
        self.send(Command::Retr {
            path: path.into(),
            offset,
        })
    }

    async fn step(&mut self) {
        self.push_uploads().await;
        let _ = self.driver.flush(&mut self.session).await;
        self.poll_events();
        if self.is_over() {
            return;
        }
        let input = tokio::time::timeout(STEP, self.driver.next_input(&mut self.session))
            .await
            .expect("no input from the server for a whole STEP");
        match input {
            Input::Chunk(chunk) => {
                if let Some(download) = self.downloads.get_mut(&chunk.transfer) {
                    let at = (chunk.offset - download.offset) as usize;
                    download.data[at..at + chunk.data().len()].copy_from_slice(chunk.data());
                    download.received += chunk.data().len();
                }
            }
            Input::TransportClosed(_) => self.transport_closed = true,
            _ => {}
        }
        self.poll_events();
    }

    async fn push_uploads(&mut self) {
        let transfers: Vec<TransferId> = self.uploads.keys().copied().collect();
        for transfer in transfers {
            loop {
                let allowance = self.session.chunk_allowance(transfer).min(32 * 1024);
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
                self.driver.send(transmit).await.expect("send a chunk");
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
                            if let Some(limit) = self.upload_limits.remove(&id) {
                                self.limit_of.insert(open.transfer, limit);
                            }
                        } else {
                            self.downloads.insert(
                                open.transfer,
                                Download {
                                    received: 0,
                                    offset: open.offset,
                                    data: vec![0; open.length as usize],
                                    done: None,
                                },
                            );
                            self.retr_transfer.insert(id, open.transfer);
                        }
                    }
                    let is_interim =
                        self.stor_ids.contains(&id) && matches!(reply, Reply::TransferOpen(_));
                    let final_reply = reply.is_last_part() && !is_interim;
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

    pub async fn reply(&mut self, id: RequestId) -> Reply {
        self.replies(id).await.pop().expect("a reply")
    }

    pub async fn request(&mut self, command: Command) -> Reply {
        let id = self.send(command);
        self.reply(id).await
    }

    pub async fn login(&mut self, user: &str) -> Reply {
        self.request(Command::Login {
            user: user.into(),
            password: PASSWORD.into(),
        })
        .await
    }

    pub async fn upload(&mut self, path: &str, data: &[u8]) -> Reply {
        let id = self.send_stor(path, data.to_vec());
        self.reply(id).await
    }

    pub async fn download_result(&mut self, id: RequestId) -> Result<Vec<u8>, Reply> {
        let reply = self.reply(id).await;
        if !matches!(reply, Reply::TransferOpen(_)) {
            return Err(reply);
        }
        let transfer = self.retr_transfer[&id];
        loop {
            if let Some(done) = self.downloads[&transfer].done {
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

    /// Like [`Self::download_result`], calling `hook` once `threshold` bytes have
    /// arrived (and before the download completes).
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
        let mut hook = Some(hook);
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

    pub async fn download(&mut self, path: &str) -> Result<Vec<u8>, Reply> {
        let id = self.send_retr(path, 0);
        self.download_result(id).await
    }

    pub async fn until_closed(&mut self) -> Option<CloseReason> {
        while !self.is_over() {
            self.step().await;
        }
        self.closed.clone()
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

/// Every upload temporary file left under `root`.
pub fn leftover_uploads(root: &Path) -> Vec<PathBuf> {
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
