//! Showing names that came from the server without letting them drive the terminal.
//!
//! A file name may hold any byte but `/` and NUL, so a hostile server (or a user
//! sharing a file) can name one `a\x1b[2J` to clear the screen, or use Unicode
//! direction overrides to make `exe.txt` look like `txt.exe`. Every name shown to the
//! user goes through [`escape`], which makes such characters visible instead; it is
//! the same escape the server's audit log uses, from [`sfs_proto::text`].
//!
//! ```
//! use sfs_client::display::escape;
//!
//! assert_eq!(escape("a\x1b[2J"), "a\\x1b[2J");
//! assert_eq!(escape("notes.txt"), "notes.txt");
//! ```

pub use sfs_proto::text::escape;
