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

/// One end of a memory pair that counts the data-stream messages it sends and
/// receives, and can be cut like a failed association: its `recv` then fails
/// and the other end sees it closed.
pub struct Tapped {
    inner: MemoryTransport,
    pub tap: Arc<Tap>,
}

/// What a [`Tapped`] counted, and its kill switch.
#[derive(Default)]
pub struct Tap {
    pub data_sent: std::sync::atomic::AtomicU64,
    pub data_received: std::sync::atomic::AtomicU64,
    /// Cut the association once this many data messages went either way (0: never).
    pub kill_after: std::sync::atomic::AtomicU64,
    killed: tokio::sync::Notify,
    dead: std::sync::atomic::AtomicBool,
    /// Data bytes per second this end receives at most (0: no limit), as if
    /// each association had a bottleneck of its own.
    pub rate: std::sync::atomic::AtomicU64,
    /// When the bottleneck is free for the next data message (shared by
    /// every association when they share one bottleneck).
    next_free: Arc<std::sync::Mutex<Option<tokio::time::Instant>>>,
}

impl Tap {
    pub fn data(&self) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        self.data_sent.load(Relaxed) + self.data_received.load(Relaxed)
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn count(&self, counter: &std::sync::atomic::AtomicU64) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        counter.fetch_add(1, Relaxed);
        let after = self.kill_after.load(Relaxed);
        if after > 0 && self.data() >= after && !self.dead.swap(true, Relaxed) {
            self.killed.notify_waiters();
            return true;
        }
        false
    }
}

impl Transport for Tapped {
    fn streams(&self) -> sfs_proto::session::StreamCounts {
        self.inner.streams()
    }

    async fn send(&self, stream: u16, data: &[u8]) -> Result<(), sfs_net::TransportError> {
        if self.tap.is_dead() {
            return Err(sfs_net::TransportError::Closed);
        }
        self.inner.send(stream, data).await?;
        if stream != 0 && self.tap.count(&self.tap.data_sent) {
            self.inner.shutdown();
        }
        Ok(())
    }

    async fn recv(&self) -> Result<sfs_net::TransportEvent, sfs_net::TransportError> {
        if self.tap.is_dead() {
            return Err(sfs_net::TransportError::Closed);
        }
        // Paced before a message is taken, so a cancelled wait loses nothing.
        let free = *self.tap.next_free.lock().unwrap();
        if let Some(free) = free {
            tokio::time::sleep_until(free).await;
        }
        let event = tokio::select! {
            event = self.inner.recv() => event?,
            () = self.tap.killed.notified() => return Err(sfs_net::TransportError::Closed),
        };
        if let sfs_net::TransportEvent::Message { stream, data } = &event {
            if *stream != 0 && self.tap.count(&self.tap.data_received) {
                self.inner.shutdown();
            }
            let rate = self.tap.rate.load(std::sync::atomic::Ordering::Relaxed);
            if *stream != 0 && rate > 0 {
                let cost = std::time::Duration::from_secs_f64(data.len() as f64 / rate as f64);
                let now = tokio::time::Instant::now();
                let mut free = self.tap.next_free.lock().unwrap();
                *free = Some(free.map_or(now, |f| f.max(now)) + cost);
            }
        }
        Ok(event)
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

/// Opens every association of a session over a fresh memory pair whose far end
/// the real server serves; keeps each client end's [`Tap`], in the order opened
/// (the first association first).
#[derive(Clone)]
pub struct TappedConnector {
    ctx: Arc<ServerContext>,
    shutdown: watch::Sender<bool>,
    pub taps: Arc<std::sync::Mutex<Vec<Arc<Tap>>>>,
    /// (association, data messages): the association opened as that one is
    /// cut after that many.
    plan: Arc<std::sync::Mutex<Option<(usize, u64)>>>,
    /// Data bytes per second each new association receives at most (0: no limit).
    pub rate: Arc<std::sync::atomic::AtomicU64>,
    /// One bottleneck for all associations instead of one each.
    shared: Option<Arc<std::sync::Mutex<Option<tokio::time::Instant>>>>,
}

impl TappedConnector {
    fn pair(&self) -> Tapped {
        let (client_end, server_end) = memory_pair(STREAMS);
        tokio::spawn(connection::serve(
            self.ctx.clone(),
            server_end,
            self.shutdown.subscribe(),
        ));
        let mut tap = Tap::default();
        tap.rate.store(
            self.rate.load(std::sync::atomic::Ordering::Relaxed),
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Some(shared) = &self.shared {
            tap.next_free = shared.clone();
        }
        let tap = Arc::new(tap);
        let mut taps = self.taps.lock().unwrap();
        if let Some((index, after)) = *self.plan.lock().unwrap() {
            if index == taps.len() {
                tap.kill_after
                    .store(after, std::sync::atomic::Ordering::Relaxed);
            }
        }
        taps.push(tap.clone());
        drop(taps);
        Tapped {
            inner: client_end,
            tap,
        }
    }

    /// Association `index` (in the order opened, the first being 0) is cut
    /// once it carried `after` data messages.
    pub fn cut_after(&self, index: usize, after: u64) {
        *self.plan.lock().unwrap() = Some((index, after));
    }

    pub fn tap(&self, index: usize) -> Arc<Tap> {
        self.taps.lock().unwrap()[index].clone()
    }

    pub fn count(&self) -> usize {
        self.taps.lock().unwrap().len()
    }
}

impl sfs_net::Connector for TappedConnector {
    type Transport = Tapped;

    async fn connect(&self) -> Result<Tapped, sfs_net::TransportError> {
        Ok(self.pair())
    }
}

impl Server {
    /// A connection logged in as alice whose extra associations (as `options`
    /// say) are opened through a [`TappedConnector`], which is returned too.
    /// `cut` is passed to [`TappedConnector::cut_after`]; each association
    /// receives at most `rate` data bytes per second (0: no limit).
    pub async fn connect_tapped(
        &self,
        options: ClientOptions,
        cut: Option<(usize, u64)>,
        rate: u64,
    ) -> (Remote<Tapped>, String, TappedConnector) {
        self.connect_tapped_with(options, cut, rate, false).await
    }

    /// [`Self::connect_tapped`]; with `shared`, `rate` is one bottleneck for
    /// all associations together.
    pub async fn connect_tapped_with(
        &self,
        options: ClientOptions,
        cut: Option<(usize, u64)>,
        rate: u64,
        shared: bool,
    ) -> (Remote<Tapped>, String, TappedConnector) {
        let connector = TappedConnector {
            ctx: self.ctx.clone(),
            shutdown: self.shutdown.clone(),
            taps: Arc::default(),
            plan: Arc::new(std::sync::Mutex::new(cut)),
            rate: Arc::new(std::sync::atomic::AtomicU64::new(rate)),
            shared: shared.then(Arc::default),
        };
        let first = connector.pair();
        let credentials = Credentials {
            user: "alice".into(),
            password: PASSWORD.to_owned().into(),
            register: false,
        };
        let (mut remote, cwd) = Remote::open_with(
            first,
            self.pki.client_config(),
            "localhost".try_into().unwrap(),
            &credentials,
            Reporter::hidden(),
            options,
        )
        .await
        .expect("login");
        remote.set_connector(connector.clone());
        (remote, cwd, connector)
    }
}
