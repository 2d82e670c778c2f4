//! Requests from the client: the original's command set plus login, registration,
//! rename, size, stat, digest and status.

use std::fmt;

use crate::codec::{put_string, put_u64, put_u8, DecodeError, EncodeError, Reader};

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

/// A request from the client. Paths are virtual: `/` is the user's home, and a
/// relative path is relative to the session's working directory.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// Log in. Allowed before login.
    Login {
        /// The user name.
        user: String,
        /// The password, in clear inside TLS.
        password: String,
    },
    /// Create an account (if the server allows it) and log in. Allowed before login.
    Register {
        /// The new user name.
        user: String,
        /// The new password.
        password: String,
    },
    /// List a folder. An empty path lists the working directory.
    List {
        /// The folder (or file) to list.
        path: String,
    },
    /// Download a file, starting at `offset` (non-zero to resume).
    Retr {
        /// The file.
        path: String,
        /// The first byte to send.
        offset: u64,
    },
    /// Upload a file of exactly `size` bytes.
    Stor {
        /// The target file.
        path: String,
        /// The exact length the client will send.
        size: u64,
    },
    /// Print the working directory.
    Pwd,
    /// Change the working directory.
    Cwd {
        /// The new working directory.
        path: String,
    },
    /// Go to the parent of the working directory.
    Cdup,
    /// Make a folder.
    Mkd {
        /// The folder to create.
        path: String,
    },
    /// Remove an empty folder.
    Rmd {
        /// The folder to remove.
        path: String,
    },
    /// Delete a file.
    Dele {
        /// The file to delete.
        path: String,
    },
    /// Rename or move a file or folder.
    Rename {
        /// The existing path.
        from: String,
        /// The new path.
        to: String,
    },
    /// The size of a file.
    Size {
        /// The file.
        path: String,
    },
    /// Metadata of a file or folder.
    Stat {
        /// The file or folder.
        path: String,
    },
    /// The SHA-256 of a file, computed by the server.
    Digest {
        /// The file.
        path: String,
    },
    /// Grant `user` the `rights` on `path` (replacing earlier rights).
    Shar {
        /// The shared file or folder, in the caller's area.
        path: String,
        /// The grantee.
        user: String,
        /// The rights granted.
        rights: Rights,
    },
    /// Revoke a share.
    Unsh {
        /// The shared file or folder.
        path: String,
        /// The grantee.
        user: String,
    },
    /// List what others shared with me.
    Shwm,
    /// List what I shared with others.
    SharedByMe,
    /// End the session. Allowed before login.
    Quit,
    /// The session's status as the server sees it.
    Status,
}

impl fmt::Debug for Command {
    /// Like a derived `Debug`, except that passwords are never shown: commands end
    /// up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Login { user, .. } => f
                .debug_struct("Login")
                .field("user", user)
                .finish_non_exhaustive(),
            Self::Register { user, .. } => f
                .debug_struct("Register")
                .field("user", user)
                .finish_non_exhaustive(),
            Self::List { path } => f.debug_struct("List").field("path", path).finish(),
            Self::Retr { path, offset } => f
                .debug_struct("Retr")
                .field("path", path)
                .field("offset", offset)
                .finish(),
            Self::Stor { path, size } => f
                .debug_struct("Stor")
                .field("path", path)
                .field("size", size)
                .finish(),
            Self::Pwd => f.write_str("Pwd"),
            Self::Cwd { path } => f.debug_struct("Cwd").field("path", path).finish(),
            Self::Cdup => f.write_str("Cdup"),
            Self::Mkd { path } => f.debug_struct("Mkd").field("path", path).finish(),
            Self::Rmd { path } => f.debug_struct("Rmd").field("path", path).finish(),
            Self::Dele { path } => f.debug_struct("Dele").field("path", path).finish(),
            Self::Rename { from, to } => f
                .debug_struct("Rename")
                .field("from", from)
                .field("to", to)
                .finish(),
            Self::Size { path } => f.debug_struct("Size").field("path", path).finish(),
            Self::Stat { path } => f.debug_struct("Stat").field("path", path).finish(),
            Self::Digest { path } => f.debug_struct("Digest").field("path", path).finish(),
            Self::Shar { path, user, rights } => f
                .debug_struct("Shar")
                .field("path", path)
                .field("user", user)
                .field("rights", rights)
                .finish(),
            Self::Unsh { path, user } => f
                .debug_struct("Unsh")
                .field("path", path)
                .field("user", user)
                .finish(),
            Self::Shwm => f.write_str("Shwm"),
            Self::SharedByMe => f.write_str("SharedByMe"),
            Self::Quit => f.write_str("Quit"),
            Self::Status => f.write_str("Status"),
        }
    }
}

pub(crate) mod ty {
    pub const LOGIN: u8 = 0x01;
    pub const REGISTER: u8 = 0x02;
    pub const LIST: u8 = 0x03;
    pub const RETR: u8 = 0x04;
    pub const STOR: u8 = 0x05;
    pub const PWD: u8 = 0x06;
    pub const CWD: u8 = 0x07;
    pub const CDUP: u8 = 0x08;
    pub const MKD: u8 = 0x09;
    pub const RMD: u8 = 0x0a;
    pub const DELE: u8 = 0x0b;
    pub const RENAME: u8 = 0x0c;
    pub const SIZE: u8 = 0x0d;
    pub const STAT: u8 = 0x0e;
    pub const DIGEST: u8 = 0x0f;
    pub const SHAR: u8 = 0x10;
    pub const UNSH: u8 = 0x11;
    pub const SHWM: u8 = 0x12;
    pub const SHARED_BY_ME: u8 = 0x13;
    pub const QUIT: u8 = 0x14;
    pub const STATUS: u8 = 0x15;
}

impl Command {
    /// The command's name as users know it (`"RETR"`), for logs and messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Login { .. } => "LOGIN",
            Self::Register { .. } => "REGISTER",
            Self::List { .. } => "LIST",
            Self::Retr { .. } => "RETR",
            Self::Stor { .. } => "STOR",
            Self::Pwd => "PWD",
            Self::Cwd { .. } => "CWD",
            Self::Cdup => "CDUP",
            Self::Mkd { .. } => "MKD",
            Self::Rmd { .. } => "RMD",
            Self::Dele { .. } => "DELE",
            Self::Rename { .. } => "RENAME",
            Self::Size { .. } => "SIZE",
            Self::Stat { .. } => "STAT",
            Self::Digest { .. } => "DIGEST",
            Self::Shar { .. } => "SHAR",
            Self::Unsh { .. } => "UNSH",
            Self::Shwm => "SHWM",
            Self::SharedByMe => "SHARED",
            Self::Quit => "QUIT",
            Self::Status => "STATUS",
        }
    }

    /// True for the commands a server accepts before login.
    pub fn allowed_before_login(&self) -> bool {
        matches!(
            self,
            Self::Login { .. } | Self::Register { .. } | Self::Quit
        )
    }

    pub(crate) fn type_byte(&self) -> u8 {
        match self {
            Self::Login { .. } => ty::LOGIN,
            Self::Register { .. } => ty::REGISTER,
            Self::List { .. } => ty::LIST,
            Self::Retr { .. } => ty::RETR,
            Self::Stor { .. } => ty::STOR,
            Self::Pwd => ty::PWD,
            Self::Cwd { .. } => ty::CWD,
            Self::Cdup => ty::CDUP,
            Self::Mkd { .. } => ty::MKD,
            Self::Rmd { .. } => ty::RMD,
            Self::Dele { .. } => ty::DELE,
            Self::Rename { .. } => ty::RENAME,
            Self::Size { .. } => ty::SIZE,
            Self::Stat { .. } => ty::STAT,
            Self::Digest { .. } => ty::DIGEST,
            Self::Shar { .. } => ty::SHAR,
            Self::Unsh { .. } => ty::UNSH,
            Self::Shwm => ty::SHWM,
            Self::SharedByMe => ty::SHARED_BY_ME,
            Self::Quit => ty::QUIT,
            Self::Status => ty::STATUS,
        }
    }

    /// Writes the fields after the type byte and request id.
    pub(crate) fn encode_fields(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let path = |out: &mut Vec<u8>, p: &str| put_string(out, p, MAX_PATH_LEN, "path");
        match self {
            Self::Login { user, password } | Self::Register { user, password } => {
                put_string(out, user, MAX_USER_LEN, "user")?;
                put_string(out, password, MAX_PASSWORD_LEN, "password")?;
            }
            Self::List { path: p }
            | Self::Cwd { path: p }
            | Self::Mkd { path: p }
            | Self::Rmd { path: p }
            | Self::Dele { path: p }
            | Self::Size { path: p }
            | Self::Stat { path: p }
            | Self::Digest { path: p } => path(out, p)?,
            Self::Retr { path: p, offset } => {
                path(out, p)?;
                put_u64(out, *offset);
            }
            Self::Stor { path: p, size } => {
                path(out, p)?;
                put_u64(out, *size);
            }
            Self::Rename { from, to } => {
                path(out, from)?;
                path(out, to)?;
            }
            Self::Shar {
                path: p,
                user,
                rights,
            } => {
                path(out, p)?;
                put_string(out, user, MAX_USER_LEN, "user")?;
                put_u8(out, rights.bits());
            }
            Self::Unsh { path: p, user } => {
                path(out, p)?;
                put_string(out, user, MAX_USER_LEN, "user")?;
            }
            Self::Pwd | Self::Cdup | Self::Shwm | Self::SharedByMe | Self::Quit | Self::Status => {}
        }
        Ok(())
    }

    /// Reads the fields of the command with type byte `ty`; `None` if `ty` is not a
    /// command.
    pub(crate) fn decode_fields(ty: u8, r: &mut Reader<'_>) -> Option<Result<Self, DecodeError>> {
        let path = |r: &mut Reader<'_>| r.string(MAX_PATH_LEN, "path");
        let user = |r: &mut Reader<'_>| r.string(MAX_USER_LEN, "user");
        let password = |r: &mut Reader<'_>| r.string(MAX_PASSWORD_LEN, "password");
        let decoded = (|| {
            Ok(match ty {
                ty::LOGIN => Self::Login {
                    user: user(r)?,
                    password: password(r)?,
                },
                ty::REGISTER => Self::Register {
                    user: user(r)?,
                    password: password(r)?,
                },
                ty::LIST => Self::List { path: path(r)? },
                ty::RETR => Self::Retr {
                    path: path(r)?,
                    offset: r.u64()?,
                },
                ty::STOR => Self::Stor {
                    path: path(r)?,
                    size: r.u64()?,
                },
                ty::PWD => Self::Pwd,
                ty::CWD => Self::Cwd { path: path(r)? },
                ty::CDUP => Self::Cdup,
                ty::MKD => Self::Mkd { path: path(r)? },
                ty::RMD => Self::Rmd { path: path(r)? },
                ty::DELE => Self::Dele { path: path(r)? },
                ty::RENAME => Self::Rename {
                    from: path(r)?,
                    to: path(r)?,
                },
                ty::SIZE => Self::Size { path: path(r)? },
                ty::STAT => Self::Stat { path: path(r)? },
                ty::DIGEST => Self::Digest { path: path(r)? },
                ty::SHAR => Self::Shar {
                    path: path(r)?,
                    user: user(r)?,
                    rights: Rights::from_bits(r.u8()?)
                        .ok_or(DecodeError::InvalidValue("rights"))?,
                },
                ty::UNSH => Self::Unsh {
                    path: path(r)?,
                    user: user(r)?,
                },
                ty::SHWM => Self::Shwm,
                ty::SHARED_BY_ME => Self::SharedByMe,
                ty::QUIT => Self::Quit,
                ty::STATUS => Self::Status,
                other => return Err(DecodeError::UnknownType(other)),
            })
        })();
        match decoded {
            Err(DecodeError::UnknownType(_)) => None,
            other => Some(other),
        }
    }
}
