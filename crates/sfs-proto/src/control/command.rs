//! Requests from the client: the original's command set plus login, registration,
//! rename, size, stat, digest and status. Each command is one entry of the
//! `commands!` table at the bottom.

use std::fmt;

use crate::control::wire::wire_enum;

/// Longest user name on the wire, in bytes. The server applies its stricter
/// allow-list on top.
pub const MAX_USER_LEN: usize = 64;
/// Longest password on the wire, in bytes. bcrypt uses only 72; the server rejects
/// longer ones, this bound only keeps enormous input from reaching it.
pub const MAX_PASSWORD_LEN: usize = 256;
/// Longest virtual path on the wire, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// The rights one user can grant another on a file or folder: the original's four.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rights(u8);

impl Rights {
    /// Read files, list folders, download.
    pub const READ: Self = Self(0b0001);
    /// Overwrite existing files.
    pub const WRITE: Self = Self(0b0010);
    /// Create files and folders.
    pub const CREATE: Self = Self(0b0100);
    /// Delete files and folders.
    pub const DELETE: Self = Self(0b1000);
    /// No rights.
    pub const NONE: Self = Self(0);
    /// All four rights.
    pub const ALL: Self = Self(0b1111);

    /// The set from its wire byte, or `None` if unknown bits are set.
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits & !Self::ALL.0 == 0).then_some(Self(bits))
    }

    /// The wire byte.
    pub fn bits(self) -> u8 {
        self.0
    }

    /// True if every right in `other` is in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if no right is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for Rights {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Rights {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

impl fmt::Display for Rights {
    /// `rwcd` with `-` for missing rights, like `ls -l`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (right, letter) in [
            (Self::READ, 'r'),
            (Self::WRITE, 'w'),
            (Self::CREATE, 'c'),
            (Self::DELETE, 'd'),
        ] {
            let c = if self.contains(right) { letter } else { '-' };
            fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rights({self})")
    }
}

/// What the session expects in answer to a command: the pending-request table
/// keeps this per request, to check a `TransferOpen` against the request it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expects {
    /// A login outcome: `Ok` or `Error`.
    Login,
    /// A download: a `TransferOpen` starting at `offset`, then the data.
    Download {
        /// The file offset the client asked for.
        offset: u64,
    },
    /// An upload: a `TransferOpen` for exactly `size` bytes, then a final reply
    /// after the data.
    Upload {
        /// The announced file size.
        size: u64,
    },
    /// A resumed upload (REPUT): a `TransferOpen` for the bytes from `offset` to
    /// `size`, then a final reply after the data.
    UploadFrom {
        /// The first byte to send: what the server already holds.
        offset: u64,
        /// The announced file size.
        size: u64,
    },
    /// `Ok`, then the session ends.
    Quit,
    /// An `AssocTicket` (or `Error`).
    Assoc,
    /// `Ok` once no open transfer uses association `index` (or `Error`).
    Detach {
        /// The association being retired.
        index: u8,
    },
    /// Ordinary replies, the last one without `more` set.
    Answer,
}

/// Declares the command set: each command is one entry, and the enum, its wire
/// codec, its `Debug` (secrets redacted), its name and its per-command properties
/// all come from that entry (the first three through `wire_enum!`).
///
/// An entry is `Variant = type_byte, "NAME", [properties] { fields };` where the
/// properties are, in this order, `before_login` (the server accepts it before
/// login) and `expects Kind { copied_fields }` (an [`Expects`] other than
/// `Answer`), and each field is `name: Type = kind` with a kind from
/// [`wire`](super::wire). Fields go on the wire in the order they are declared.
macro_rules! commands {
    (
        $(
            $(#[$meta:meta])*
            $variant:ident = $ty:literal, $name:literal, [$($prop:tt)*]
            $({
                $(
                    $(#[$fmeta:meta])*
                    $field:ident : $fty:ty = $kind:ident $(($($karg:expr),*))?
                ),* $(,)?
            })?;
        )*
    ) => {
        wire_enum! {
            /// A request from the client. Paths are virtual: `/` is the user's home,
            /// and a relative path is relative to the session's working directory.
            #[derive(Clone, PartialEq, Eq)]
            pub enum Command {
                $(
                    $(#[$meta])*
                    $variant = $ty $({
                        $($(#[$fmeta])* $field: $fty = $kind $(($($karg),*))?),*
                    })?,
                )*
            }
        }

        impl Command {
            /// The command's name as users know it (`"RETR"`), for logs and messages.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $name,)*
                }
            }

            /// True for the commands a server accepts before login.
            pub fn allowed_before_login(&self) -> bool {
                match self {
                    $(Self::$variant { .. } => commands!(@before_login [$($prop)*]),)*
                }
            }

            /// What the session expects in answer.
            #[allow(unused_variables)]
            pub(crate) fn expects(&self) -> Expects {
                match self {
                    $(
                        Self::$variant $({ $($field),* })? => commands!(@expects [$($prop)*]),
                    )*
                }
            }
        }
    };

    (@before_login [before_login $($rest:tt)*]) => { true };
    (@before_login [$($rest:tt)*]) => { false };
    (@expects [$(before_login)? $(,)? expects $e:ident $({ $($ef:ident),* })?]) => {
        Expects::$e $({ $($ef: *$ef),* })?
    };
    (@expects [$($rest:tt)*]) => { Expects::Answer };
}

commands! {
    /// Log in. Allowed before login.
    Login = 0x01, "LOGIN", [before_login, expects Login] {
        /// The user name.
        user: String = str(MAX_USER_LEN, "user"),
        /// The password, in clear inside TLS.
        password: String = secret(MAX_PASSWORD_LEN, "password"),
    };
    /// Create an account (if the server allows it) and log in. Allowed before login.
    Register = 0x02, "REGISTER", [before_login, expects Login] {
        /// The new user name.
        user: String = str(MAX_USER_LEN, "user"),
        /// The new password.
        password: String = secret(MAX_PASSWORD_LEN, "password"),
    };
    /// List a folder. An empty path lists the working directory.
    List = 0x03, "LIST", [] {
        /// The folder (or file) to list.
        path: String = str(MAX_PATH_LEN, "path"),
    };
    /// Download a file, starting at `offset` (non-zero to resume).
    Retr = 0x04, "RETR", [expects Download { offset }] {
        /// The file.
        path: String = str(MAX_PATH_LEN, "path"),
        /// The first byte to send.
        offset: u64 = u64,
    };
    /// Upload a file of exactly `size` bytes.
    Stor = 0x05, "STOR", [expects Upload { size }] {
        /// The target file.
        path: String = str(MAX_PATH_LEN, "path"),
        /// The exact length the client will send.
        size: u64 = u64,
    };
    /// Print the working directory.
    Pwd = 0x06, "PWD", [];
    /// Change the working directory.
    Cwd = 0x07, "CWD", [] {
        /// The new working directory.
        path: String = str(MAX_PATH_LEN, "path"),
    };
    /// Go to the parent of the working directory.
    Cdup = 0x08, "CDUP", [];
    /// Make a folder.
    Mkd = 0x09, "MKD", [] {
        /// The folder to create.
        path: String = str(MAX_PATH_LEN, "path"),
    };
    /// Remove an empty folder.
    Rmd = 0x0a, "RMD", [] {
        /// The folder to remove.
        path: String = str(MAX_PATH_LEN, "path"),
    };
    /// Delete a file.
    Dele = 0x0b, "DELE", [] {
        /// The file to delete.
        path: String = str(MAX_PATH_LEN, "path"),
    };
    /// Rename or move a file or folder.
    Rename = 0x0c, "RENAME", [] {
        /// The existing path.
        from: String = str(MAX_PATH_LEN, "path"),
        /// The new path.
        to: String = str(MAX_PATH_LEN, "path"),
    };
    /// The size of a file.
    Size = 0x0d, "SIZE", [] {
        /// The file.
        path: String = str(MAX_PATH_LEN, "path"),
    };
    /// Metadata of a file or folder.
    Stat = 0x0e, "STAT", [] {
        /// The file or folder.
        path: String = str(MAX_PATH_LEN, "path"),
    };
    /// The SHA-256 of a file, computed by the server.
    Digest = 0x0f, "DIGEST", [] {
        /// The file.
        path: String = str(MAX_PATH_LEN, "path"),
    };
    /// Grant `user` the `rights` on `path` (replacing earlier rights).
    Shar = 0x10, "SHAR", [] {
        /// The shared file or folder, in the caller's area.
        path: String = str(MAX_PATH_LEN, "path"),
        /// The grantee.
        user: String = str(MAX_USER_LEN, "user"),
        /// The rights granted.
        rights: Rights = rights,
    };
    /// Revoke a share.
    Unsh = 0x11, "UNSH", [] {
        /// The shared file or folder.
        path: String = str(MAX_PATH_LEN, "path"),
        /// The grantee.
        user: String = str(MAX_USER_LEN, "user"),
    };
    /// List what others shared with me.
    Shwm = 0x12, "SHWM", [];
    /// List what I shared with others.
    SharedByMe = 0x13, "SHARED", [];
    /// End the session. Allowed before login.
    Quit = 0x14, "QUIT", [before_login, expects Quit];
    /// The session's status as the server sees it.
    Status = 0x15, "STATUS", [];
    /// Do nothing. An idle client sends it so the server's idle timeout does not
    /// end a session the user still has open.
    Noop = 0x16, "NOOP", [];
    /// The caller's storage use and limits (answered with `Quota`).
    Quot = 0x17, "QUOT", [];
    /// Set a file's modification time ("modify fact: modification time", as in
    /// FTP's MFMT), so `put -p` keeps the local file's time. Needs the write
    /// right on the file.
    Mfmt = 0x18, "MFMT", [] {
        /// The file.
        path: String = str(MAX_PATH_LEN, "path"),
        /// The new modification time, in seconds since the Unix epoch (UTC).
        mtime: i64 = i64,
    };
    /// Download a file from `offset` after the server checked that the file's
    /// first `offset` bytes have the SHA-256 `prefix` (the client's partial
    /// copy), on the descriptor it then reads the rest from. The End digest of
    /// the transfer covers the whole file from byte 0.
    Reget = 0x19, "REGET", [expects Download { offset }] {
        /// The file.
        path: String = str(MAX_PATH_LEN, "path"),
        /// The first byte to send: the length of the client's partial copy.
        offset: u64 = u64,
        /// SHA-256 of the client's first `offset` bytes.
        prefix: [u8; 32] = sha256,
    };
    /// How many bytes of an interrupted upload of `path` by this user the server
    /// kept (answered with `Partial`; 0 when none).
    Partial = 0x1a, "PARTIAL", [] {
        /// The target file of the interrupted upload.
        path: String = str(MAX_PATH_LEN, "path"),
    };
    /// Continue the kept partial upload of `path`: the server checks that its
    /// first `offset` bytes have the SHA-256 `prefix`, then receives the bytes
    /// from `offset` to `size`. The End digest covers the whole file from byte 0.
    Reput = 0x1b, "REPUT", [expects UploadFrom { offset, size }] {
        /// The target file.
        path: String = str(MAX_PATH_LEN, "path"),
        /// The exact length of the whole file.
        size: u64 = u64,
        /// Bytes the server holds already (from `Partial`).
        offset: u64 = u64,
        /// SHA-256 of the client's first `offset` bytes.
        prefix: [u8; 32] = sha256,
    };
    /// Ask for a ticket to bind one more data association to this session
    /// (answered with `AssocTicket`, or `Error` with `ASSOCIATION_LIMIT`).
    Assoc = 0x1c, "ASSOC", [expects Assoc];
    /// Retire extra association `index`: the server stops putting it into new
    /// transfers and answers `Ok` once no open transfer uses it; the client then
    /// shuts it down. An unknown or unbound index, or 0, is `BAD_REQUEST`.
    Detach = 0x1d, "DETACH", [expects Detach { index }] {
        /// The association to retire (1..=15).
        index: u8 = u8,
    };
}
