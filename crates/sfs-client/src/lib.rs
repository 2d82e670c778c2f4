//! The SFS client, as a library: what the `sfs` binary is made of.
//!
//! ```text
//!   main.rs: flags, password, interactive loop (rustyline), batch files, one-shot
//!      │ parse_line / parse_words
//!   command ──► shell::Shell::execute ──► connection::Remote (any Transport)
//!                    │ output, escaped          │ requests, parallel transfers
//!                 display::escape          local::PartFile (.part, no symlinks)
//! ```
//!
//! - [`command`]: the command language of the shell, batch files and one-shot
//!   arguments (`get`, `put`, `ls`, ..., and the original `RETR`, `STOR`, `LIST`, ...),
//!   one table entry per command: it makes the parser, the help and the dispatch;
//! - [`connection`]: one logged-in session over any [`sfs_net::Transport`] (kernel
//!   SCTP in the binary, the in-memory pair in tests): pipelined requests, parallel
//!   transfers, interrupts;
//! - [`shell`]: what each command does and prints, one `Shell` method per command;
//! - [`local`]: where downloads land and how (`.part` files, no symlinks, no escape
//!   from the folder the user named);
//! - [`display`]: escaping names from the server before they reach the terminal;
//! - [`peers`]: the `--peer a,b[:port]` address lists.
//!
//! ```
//! use sfs_client::command::{parse_line, ShellCommand};
//! use sfs_client::display::escape;
//!
//! let command = parse_line("put 'my notes.txt' notes.txt")?.expect("a command");
//! assert!(matches!(command, ShellCommand::Put { .. }));
//! assert_eq!(escape("evil\x1b[2J"), "evil\\x1b[2J");
//! # Ok::<(), sfs_client::command::ParseError>(())
//! ```
//!
//! A whole session, over the in-memory transport, looks like this (the server side
//! is any `ServerSession` loop, as in `sfs-net`'s tests):
//!
//! ```no_run
//! # async fn demo(transport: sfs_net::memory::MemoryTransport,
//! #               tls: std::sync::Arc<rustls::ClientConfig>) -> Result<(), sfs_client::connection::ClientError> {
//! use sfs_client::connection::{Remote, Credentials, Reporter, TransferSpec};
//!
//! let credentials = Credentials { user: "alice".into(), password: "pw".to_owned().into(), register: false };
//! let name = "localhost".try_into().unwrap();
//! let (mut connection, cwd) =
//!     Remote::open(transport, tls, name, &credentials, Reporter::hidden()).await?;
//! let results = connection
//!     .transfer_all(&[TransferSpec::Download { remote: "a".into(), dest: "/tmp/a".into(), resume: false }])
//!     .await;
//! # Ok(()) }
//! ```

pub mod command;
pub mod connection;
pub mod connector;
pub mod display;
pub mod local;
pub mod peers;
pub mod repl;
pub mod shell;
