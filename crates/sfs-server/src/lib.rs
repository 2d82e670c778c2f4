//! The SFS server library: everything the server does that needs no network.
//!
//! The network session (SCTP, TLS, the protocol state machine) lives elsewhere and
//! calls into these modules:
//!
//! | module | job |
//! |---|---|
//! | [`accounts`] | `users.json`, usernames, passwords, bcrypt, login and registration |
//! | [`throttle`] | the failed-login policy: growing delays, caps and per-source penalties |
//! | [`store`] | per-user homes and every file operation, confined with `cap-std` |
//! | [`shares`] | sharing rights and the virtual `/shared/<owner>/...` tree |
//! | [`audit`] | `server.log`, one escaped event per line |
//! | [`config`] | the configuration file and command-line flags |
//! | [`startup`] | the checks run before listening: users file, certificate, key |
//! | [`durable`] | atomic, durable replacement of small state files |
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
//! # One command, end to end
//!
//! A session handles every file command the same way: parse the client's path
//! against the working folder, map it through the share tree, check the right the
//! command needs, run it on the right home (in `spawn_blocking`), and log it.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use sfs_server::accounts::{Account, Role, Username};
//! use sfs_server::audit::{AuditLog, Event, EventKind, Outcome};
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
//! log.record(&Event::new(EventKind::Delete, Outcome::Denied)
//!     .user(&alice.name).peers(&peers).path(&path).reason(&error))?;
//! # Ok(())
//! # }
//! ```

pub mod accounts;
pub mod audit;
mod cmd;
pub mod config;
pub mod connection;
pub mod context;
pub mod durable;
pub mod server;
pub mod shares;
pub mod startup;
pub mod store;
pub mod throttle;
