//! The SFS server's state on disk: accounts in `users.json`, shares in
//! `shares.json`, and the locked, atomic, durable way both are edited.
//!
//! The server and the admin tool both link this crate, so an account added by
//! `sfs-admin` next to a live server is written exactly as the server writes it.
//!
//! # A tour
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use sfs_state::accounts::{hash_password, verify_password, Password, Role, Username, UsersFile};
//! use sfs_state::path::VirtualPath;
//! use sfs_state::shares::{parse_rights, SharesFile};
//!
//! let state = tempfile::tempdir()?;
//! let users = UsersFile::new(state.path().join("users.json"));
//! assert!(users.load()?.is_empty()); // a missing file is a fresh installation
//!
//! // Every edit is read-modify-write under a flock: concurrent writers lose nothing.
//! let alice = Username::parse("alice")?;
//! let bob = Username::parse("bob")?;
//! let password = Password::new(b"s3cret".to_vec())?; // zeroed when dropped
//! let hash = hash_password(&password, 4)?; // bcrypt cost 4 keeps the example fast
//! users.update(|db| {
//!     db.add(alice.clone(), hash.clone(), Role::Admin)?;
//!     db.add(bob.clone(), hash, Role::User)
//! })?;
//! let db = users.load()?;
//! assert!(verify_password(&password, &db.user(&alice).unwrap().hash));
//!
//! // Shares use the protocol's rights and are checked against the accounts.
//! let shares = SharesFile::new(state.path().join("shares.json"));
//! let docs = VirtualPath::parse("/docs")?;
//! shares.update(|s| s.grant(&bob, &docs, &alice, parse_rights("rw")?, &db))?;
//! assert_eq!(shares.load()?.shared_with(&alice).len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! | module | job |
//! |---|---|
//! | [`state_file`] | [`StateFile`]: one versioned, locked, atomically replaced JSON document |
//! | [`accounts`] | `users.json`, usernames, passwords, bcrypt, login and registration |
//! | [`shares`] | `shares.json`, sharing rights and the virtual `/shared/<owner>/...` tree |
//! | [`path`] | [`VirtualPath`](path::VirtualPath): checked paths inside a home |
//! | [`durable`] | atomic, durable replacement of small files, and the state lock |
//! | [`time`] | timestamps as the log and the admin tool print them |

pub mod accounts;
pub mod durable;
pub mod homes;
pub mod live;
pub mod path;
pub mod shares;
pub mod state_file;
pub mod time;

pub use state_file::{Document, StateFile, StateFileError};
