//! The real server (`sfs_server::connection::serve`) in a temporary folder, over
//! the in-memory transport, for tests of the real client against it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use sfs_client::connection::{Credentials, Remote, Reporter};
use sfs_net::memory::{memory_pair, MemoryTransport};
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
        let (client_end, server_end) = memory_pair(STREAMS);
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
        let (remote, cwd) = Remote::open(
            client_end,
            self.pki.client_config(),
            "localhost".try_into().unwrap(),
            &credentials,
            Reporter::hidden(),
        )
        .await
        .expect("login");
        (remote, cwd, server)
    }
}
