//! A server context in a temporary folder and a scripted client that talks to the
//! real connection handler over the in-memory transport pair.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sfs_net::memory::{memory_pair, MemoryTransport};
use sfs_proto::control::Reply;
use sfs_proto::testing::TestPki;
use sfs_server::accounts::{hash_password, Accounts, Hasher, Password, Role, Username, UsersFile};
use sfs_server::audit::AuditLog;
use sfs_server::connection;
use sfs_server::context::{ServerContext, SessionSettings, Shares};
use sfs_server::shares::{ShareDb, SharesFile};
use sfs_server::store::FileStore;
pub use sfs_server::testing::{code, kept_partials, leftover_uploads, pattern, TestClient};
use sfs_server::throttle::LoginPolicy;
use tokio::sync::watch;

/// The scripted client of these tests, over the in-memory pair.
pub type Client = TestClient<MemoryTransport>;

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
        self.connect_with_streams(STREAMS).await
    }

    /// [`connect`](Self::connect) over a pair with `streams` streams each way,
    /// stream 0 included.
    pub async fn connect_with_streams(&self, streams: u16) -> Client {
        let (client_end, server_end) = memory_pair(streams);
        let server = tokio::spawn(connection::serve(
            self.ctx.clone(),
            server_end,
            self.shutdown.subscribe(),
        ));
        let mut client = detached(client_end, &self.pki);
        client.server = Some(server);
        client
    }

    /// A new association to the server, not yet used: the client end, and
    /// the server task serving the other end (`connection::serve`, which
    /// reads its first message: a `BIND` goes to its session).
    pub fn new_association(
        &self,
    ) -> (
        MemoryTransport,
        tokio::task::JoinHandle<connection::ConnectionSummary>,
    ) {
        let (client_end, server_end) = memory_pair(STREAMS);
        let server = tokio::spawn(connection::serve(
            self.ctx.clone(),
            server_end,
            self.shutdown.subscribe(),
        ));
        (client_end, server)
    }

    /// A client logged in as `user`.
    pub async fn login(&self, user: &str) -> Client {
        let mut client = self.connect().await;
        let reply = client.login(user, PASSWORD).await;
        assert!(
            matches!(reply, Reply::Limits { .. }),
            "login of {user}: {reply:?}"
        );
        client
    }

    /// Every upload temporary file left under the root.
    pub fn leftover_uploads(&self) -> Vec<PathBuf> {
        let root = self.dir.path().join("server_files");
        assert!(root.is_dir(), "no server_files folder");
        leftover_uploads(&root)
    }

    /// Checks that exactly one partial upload is kept, holding a non-empty
    /// proper prefix of `data`, and returns its length.
    pub fn assert_kept_prefix_of(&self, data: &[u8]) -> usize {
        let kept = self.kept_partials();
        assert_eq!(kept.len(), 1, "{kept:?}");
        let bytes = std::fs::read(&kept[0]).unwrap();
        assert!(
            !bytes.is_empty() && bytes.len() < data.len(),
            "{}",
            bytes.len()
        );
        assert!(data.starts_with(&bytes), "the kept partial is not a prefix");
        bytes.len()
    }

    /// Every partial upload kept for `reput` under the root.
    pub fn kept_partials(&self) -> Vec<PathBuf> {
        kept_partials(&self.dir.path().join("server_files"))
    }
}

/// A test client on `end`, whose server side runs elsewhere.
pub fn detached(end: MemoryTransport, pki: &TestPki) -> Client {
    let name = "localhost".try_into().unwrap();
    TestClient::new(end, pki.client_config(), name)
}
