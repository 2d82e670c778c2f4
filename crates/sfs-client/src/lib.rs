//! The SFS client, as a library: what the `sfs` binary is made of.
//!
//! The client is being built in layers. Today this crate holds the parts that need
//! no network, each tested on its own:
//!
//! - [`command`]: the command language of the shell, batch files and one-shot
//!   arguments (`get`, `put`, `ls`, ..., and the original `RETR`, `STOR`, `LIST`, ...);
//! - [`local`]: where downloads land and how (`.part` files, no symlinks, no escape
//!   from the folder the user named);
//! - [`display`]: escaping names from the server before they reach the terminal.
//!
//! ```
//! use sfs_client::command::{parse_line, Command};
//! use sfs_client::display::escape;
//!
//! let command = parse_line("put 'my notes.txt' notes.txt")?.expect("a command");
//! assert!(matches!(command, Command::Put { .. }));
//! assert_eq!(escape("evil\x1b[2J"), "evil\\x1b[2J");
//! # Ok::<(), sfs_client::command::ParseError>(())
//! ```

pub mod command;
pub mod display;
pub mod local;
