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

pub mod accounts;
pub mod audit;
pub mod config;
pub mod durable;
pub mod shares;
pub mod startup;
pub mod store;
pub mod throttle;
