//! The SFS server: accounts, homes, sharing, the audit log, and the network
//! service that serves them over multi-homed SCTP and TLS 1.3.
//!
//! ```text
//!  sfs-server (main.rs): config ─▶ startup::preflight ─▶ ServerContext ─▶ server::bind
//!                                                                          │
//!  server::run(listener, ctx, limits, shutdown) ── accept, limits ─────────┘
//!      └─▶ one task per client: connection::serve(ctx, association, signal)
//!              ServerSession (sfs-proto) driven by sfs-net's Driver
//!              ├─ logins: accounts + throttle        ├─ commands: cmd/* on the blocking pool
//!              └─ transfers: pread chunks / ordered writes + commit, in parallel
//! ```
//!
//! | module | job |
//! |---|---|
//! | [`server`] | binding, the accept loop, connection limits, graceful shutdown |
//! | [`connection`] | one client's session: logins, command queue, transfers, timeouts |
//! | [`context`] | what connections share: accounts, store, shares, log, TLS, settings |
//! | `cmd` (private) | the commands, one file each (`cmd/list.rs`, `cmd/retr.rs`, `cmd/login.rs`, ...) |
//! | [`accounts`] | `users.json`, usernames, passwords, bcrypt, login and registration (from `sfs-state`) |
//! | [`throttle`] | the failed-login policy: growing delays, caps and per-source penalties |
//! | [`store`] | per-user homes and every file operation, confined with `cap-std` |
//! | [`shares`] | sharing rights and the virtual `/shared/<owner>/...` tree (from `sfs-state`) |
//! | [`audit`] | `server.log`, one escaped event per line |
//! | [`config`] | the configuration file and command-line flags |
//! | [`startup`] | the checks run before listening: users file, certificate, key |
//! | [`durable`] | atomic, durable replacement of small state files (from `sfs-state`) |
//! | `testing` (feature `testing`) | a scripted test client over any transport, for tests |
//!
//! # A tour
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use sfs_server::accounts::{Accounts, Hasher, Password, Username, UsersFile};
//! use sfs_server::store::{FileStore, VirtualPath};
//!
//! let state = tempfile::tempdir()?;
//! // bcrypt cost 4 keeps the example fast; the default is 12.
//! let accounts = Accounts::open(UsersFile::new(state.path().join("users.json")), Hasher::new(4, 2))?;
//! let alice = Username::parse("alice")?;
//! accounts.register(alice.clone(), Password::new(b"s3cret".to_vec())?).await?;
//! let account = accounts.authenticate("alice", Password::new(b"s3cret".to_vec())?).await?;
//!
//! let store = FileStore::open(&state.path().join("server_files"))?;
//! let home = store.home(&account.name)?;
//! let cwd = VirtualPath::root();
//! home.mkdir(&cwd.join("docs")?)?;
//! let target = cwd.join("docs/hello.txt")?;
//! let mut upload = home.begin_upload(&target)?;
//! upload.write(b"hello")?;
//! let digest = upload.digest(); // the client sends its own digest; compare that
//! upload.commit(&digest)?; // renamed into place only now, after an fsync
//! assert_eq!(home.stat(&target)?.size, 5);
//!
//! // Paths cannot leave the home, whatever the client sends.
//! assert!(cwd.join("../../etc/passwd").is_err());
//! # Ok(())
//! # }
//! ```
//!
//! # Serving a client
//!
//! [`connection::serve`] is generic over [`sfs_net::Transport`], so the same code
//! serves a kernel SCTP association in the binary and one end of an in-memory pair
//! in host tests (`tests/session_*.rs` drive it with a real `ClientSession`):
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use sfs_server::accounts::{Accounts, Hasher, UsersFile};
//! use sfs_server::audit::AuditLog;
//! use sfs_server::context::{ServerContext, SessionSettings, Shares};
//! use sfs_server::shares::{ShareDb, SharesFile};
//! use sfs_server::store::FileStore;
//! use sfs_server::throttle::LoginPolicy;
//! # let state = tempfile::tempdir()?;
//! # let (chain, key) = {
//! #     let c = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
//! #     (c.cert.pem(), c.signing_key.serialize_pem())
//! # };
//! let ctx = Arc::new(ServerContext::from_parts(
//!     Accounts::open(UsersFile::new(state.path().join("users.json")), Hasher::new(4, 2))?,
//!     FileStore::open(&state.path().join("server_files"))?,
//!     Shares::new(SharesFile::new(state.path().join("shares.json")), ShareDb::default()),
//!     AuditLog::open(&state.path().join("server.log"))?,
//!     LoginPolicy::default(),
//!     sfs_proto::tls::server_config(chain.as_bytes(), key.as_bytes())?,
//!     SessionSettings::default(),
//! ));
//! let (_client_end, server_end) = sfs_net::memory::memory_pair(5);
//! let (shutdown, signal) = tokio::sync::watch::channel(false);
//! let connection = tokio::spawn(sfs_server::connection::serve(ctx, server_end, signal));
//! shutdown.send(true)?; // the session closes with SHUTTING_DOWN
//! let summary = connection.await?;
//! assert_eq!(summary.code, sfs_proto::control::ErrorCode::SHUTTING_DOWN);
//! # Ok(())
//! # }
//! ```
//!
//! # Design decisions
//!
//! - **One task per connection owns its session**; slow work (bcrypt, file IO,
//!   fsync) runs on the blocking pool and reports back through a `JoinSet`, so a
//!   session never waits on a disk while its timers, other transfers or the
//!   shutdown signal need attention. Sending is one branch of the same `select!`
//!   as receiving, so a client that stops reading cannot wedge its handler.
//! - **Commands of one session run in arrival order, one at a time**, so
//!   pipelined `MKD a; CWD a; STOR f` behave as typed. Transfers, once opened,
//!   run in parallel with each other and with later commands.
//! - **Uploads**: chunks may arrive out of order across streams; they are put in
//!   order in memory (bounded per session, reading pauses beyond it) and appended
//!   to the store's temporary upload file. The session checks length and SHA-256;
//!   the commit checks the digest *of what was written* again, fsyncs, renames and
//!   fsyncs the folder, and only then answers `Ok`. Anything else (abort, digest
//!   failure, disconnect, shutdown, disk full) drops the upload, which removes the
//!   temporary file: the old file is never touched.
//! - **Refusals do not leak**: error replies carry an `ErrorCode` and the text of
//!   the server's own error types, which never hold a real path; `INTERNAL` errors
//!   say only "internal error" and the details go to `server.log`. A path outside
//!   every share reads exactly like a missing file.
//! - **Over-limit connections** (max clients, per source) are shut down at once
//!   without a TLS session, and logged as `event=refuse`.
//! - **Shutdown** (SIGINT/SIGTERM, or any future given to [`server::run`]): stop
//!   accepting, answer new commands `SHUTTING_DOWN`, give transfers in flight
//!   [`SessionSettings::shutdown_grace`](context::SessionSettings) to finish, then
//!   close every session with `SHUTTING_DOWN`.
//!
//! # One command, end to end
//!
//! A session handles every file command the same way: parse the client's path
//! against the working folder, map it through the share tree, check the right the
//! command needs, run it on the right home (in `spawn_blocking`), and log it.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use sfs_server::accounts::{Account, Role, Username};
//! use sfs_server::audit::{AuditLog, AuditEvent, EventKind, AuditOutcome};
//! use sfs_server::shares::{Access, AccessError, Resolved, ShareDb};
//! use sfs_server::store::{FileStore, VirtualPath};
//!
//! # let state = tempfile::tempdir()?;
//! let store = FileStore::open(&state.path().join("server_files"))?;
//! let log = AuditLog::open(&state.path().join("server.log"))?;
//! let shares = ShareDb::default(); // SharesFile::load() in the server
//! let alice = Account { name: Username::parse("alice")?, role: Role::User };
//! let peers = ["127.0.0.1:40000".parse()?];
//! let cwd = VirtualPath::root();
//!
//! // DELE /shared/bob/report.txt: nothing is shared, so this is refused...
//! let path = cwd.join("/shared/bob/report.txt")?;
//! let resolved = shares.resolve(&alice, &path);
//! let delete = || -> Result<(), AccessError> {
//!     resolved.check(Access::Delete)?;
//!     match &resolved {
//!         Resolved::Own(own) => store.home(&alice.name)?.delete(own)?,
//!         Resolved::Shared { owner, path, .. } => store.existing_home(owner)?.delete(path)?,
//!         // check() allows only reading in the synthesized folders.
//!         _ => {}
//!     }
//!     Ok(())
//! };
//! let error = delete().unwrap_err();
//! // ...with the same words as a missing file, and one line in server.log.
//! assert_eq!(error.to_string(), "no such file or folder");
//! log.record(&AuditEvent::new(EventKind::Delete, AuditOutcome::Denied)
//!     .user(&alice.name).peers(&peers).path(&path).reason(&error))?;
//! # Ok(())
//! # }
//! ```

pub use sfs_state::accounts;
pub mod associations;
pub mod audit;
mod cmd;
pub mod config;
pub mod connection;
pub mod context;
pub use sfs_state::durable;
pub mod limits;
pub mod quota;
pub mod server;
pub mod shares;
pub mod startup;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
