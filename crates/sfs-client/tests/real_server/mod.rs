//! The real server (`sfs_server::connection::serve`) in a temporary folder, over
//! the in-memory transport, for tests of the real client against it.

#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use sfs_client::connection::{ClientOptions, Credentials, Remote, Reporter};
use sfs_net::memory::{memory_pair, MemoryTransport};
use sfs_net::Transport;
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
pub const STREAMS: u16 = 9;

/// What a shell printed, shared with the test that reads it.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// What was printed since the last call.
    pub fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

/// A server with one user, alice.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub ctx: Arc<ServerContext>,
    pub pki: TestPki,
    pub shutdown: watch::Sender<bool>,
}

impl Server {
    pub fn new(settings: SessionSettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let users = UsersFile::new(dir.path().join("users.json"));
        let hash = hash_password(&Password::new(PASSWORD.as_bytes().to_vec()).unwrap(), 4).unwrap();
        users
            .update(|db| db.add(Username::parse("alice").unwrap(), hash, Role::User))
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
            LoginPolicy::default(),
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

    /// alice's home on the server's disk.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("server_files").join("alice")
    }

    /// A new connection, logged in as alice; the handle gives the server's
    /// summary once the client quits.
    pub async fn connect(
        &self,
    ) -> (
        Remote<MemoryTransport>,
        String,
        JoinHandle<ConnectionSummary>,
    ) {
        self.connect_with(ClientOptions::default()).await
    }

    /// [`Self::connect`] with the client's `options`.
    pub async fn connect_with(
        &self,
        options: ClientOptions,
    ) -> (
        Remote<MemoryTransport>,
        String,
        JoinHandle<ConnectionSummary>,
    ) {
        let (client_end, server_end) = memory_pair(STREAMS);
        self.connect_over(client_end, server_end, options).await
    }

    /// A connection over the two ends of any transport, logged in as alice.
    pub async fn connect_over<C: Transport, S: Transport>(
        &self,
        client_end: C,
        server_end: S,
        options: ClientOptions,
    ) -> (Remote<C>, String, JoinHandle<ConnectionSummary>) {
        let server = tokio::spawn(connection::serve(
            self.ctx.clone(),
            server_end,
            self.shutdown.subscribe(),
        ));
        let credentials = Credentials {
            user: "alice".into(),
            password: PASSWORD.to_owned().into(),
            register: false,
        };
        let (remote, cwd) = Remote::open_with(
            client_end,
            self.pki.client_config(),
            "localhost".try_into().unwrap(),
            &credentials,
            Reporter::hidden(),
            options,
        )
        .await
        .expect("login");
        (remote, cwd, server)
    }
}

/// A transport that delivers each received message `delay` after it arrived
/// (half a round trip when both ends use it), keeping the order. For timing
/// tests only: it reads ahead without bound, so it drops back-pressure.
pub struct Delayed<T: Transport> {
    inner: Arc<T>,
    inbox: tokio::sync::Mutex<Inbox>,
    delay: std::time::Duration,
}

type Arrival = (
    tokio::time::Instant,
    Result<sfs_net::TransportEvent, sfs_net::TransportError>,
);

/// Messages as they arrived, and the next one once taken (kept there until its
/// time, so a `recv` cancelled while it waits loses nothing).
struct Inbox {
    arrived: tokio::sync::mpsc::UnboundedReceiver<Arrival>,
    next: Option<Arrival>,
}

impl<T: Transport> Delayed<T> {
    pub fn new(inner: T, delay: std::time::Duration) -> Self {
        let inner = Arc::new(inner);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let reader = inner.clone();
        tokio::spawn(async move {
            loop {
                let event = reader.recv().await;
                let end = event.is_err();
                if tx.send((tokio::time::Instant::now(), event)).is_err() || end {
                    return;
                }
            }
        });
        Self {
            inner,
            inbox: tokio::sync::Mutex::new(Inbox {
                arrived: rx,
                next: None,
            }),
            delay,
        }
    }
}

impl<T: Transport> Transport for Delayed<T> {
    fn streams(&self) -> sfs_proto::session::StreamCounts {
        self.inner.streams()
    }

    async fn send(&self, stream: u16, data: &[u8]) -> Result<(), sfs_net::TransportError> {
        self.inner.send(stream, data).await
    }

    async fn recv(&self) -> Result<sfs_net::TransportEvent, sfs_net::TransportError> {
        let mut inbox = self.inbox.lock().await;
        if inbox.next.is_none() {
            let Some(arrival) = inbox.arrived.recv().await else {
                return Err(sfs_net::TransportError::Closed);
            };
            inbox.next = Some(arrival);
        }
        if let Some((at, _)) = &inbox.next {
            tokio::time::sleep_until(*at + self.delay).await;
        }
        match inbox.next.take() {
            Some((_, event)) => event,
            None => Err(sfs_net::TransportError::Closed),
        }
    }

    fn paths(&self) -> Vec<sfs_net::PathStatus> {
        self.inner.paths()
    }

    fn peer_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.inner.peer_addrs()
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }
}
