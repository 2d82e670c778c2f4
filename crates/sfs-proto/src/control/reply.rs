//! Replies from the server, each naming the request it answers.

use crate::codec::{
    put_bool, put_i64, put_string, put_u16, put_u32, put_u64, put_u8, DecodeError, EncodeError,
    Reader,
};
use crate::control::command::{Rights, MAX_PATH_LEN, MAX_USER_LEN};
use crate::control::transfer_messages::TransferOpen;
use crate::control::ErrorCode;

/// Longest file name in a listing entry, in bytes (Linux's `NAME_MAX`).
pub const MAX_NAME_LEN: usize = 255;
/// Longest human-readable text in an error, abort or close, in bytes.
pub const MAX_REASON_LEN: usize = 1024;

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link (listed, never followed out of the home).
    Symlink,
    /// Anything else (device, socket, fifo).
    Other,
}

impl EntryKind {
    fn byte(self) -> u8 {
        match self {
            Self::File => 0,
            Self::Dir => 1,
            Self::Symlink => 2,
            Self::Other => 3,
        }
    }

    fn from_byte(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0 => Self::File,
            1 => Self::Dir,
            2 => Self::Symlink,
            3 => Self::Other,
            _ => return Err(DecodeError::InvalidValue("entry kind")),
        })
    }
}

/// One line of a listing, or the answer to STAT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file name (one component, no slash).
    pub name: String,
    /// File, folder, link or other.
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds since the Unix epoch (may be negative).
    pub mtime: i64,
    /// Unix permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

impl Entry {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_string(out, &self.name, MAX_NAME_LEN, "entry name")?;
        put_u8(out, self.kind.byte());
        put_u64(out, self.size);
        put_i64(out, self.mtime);
        put_u32(out, self.mode);
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            name: r.string(MAX_NAME_LEN, "entry name")?,
            kind: EntryKind::from_byte(r.u8()?)?,
            size: r.u64()?,
            mtime: r.i64()?,
            mode: r.u32()?,
        })
    }
}

/// One share: `owner` gave `grantee` the `rights` on `path` (virtual, in the
/// owner's area).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareEntry {
    /// The user who shared.
    pub owner: String,
    /// The shared path, relative to the owner's home.
    pub path: String,
    /// The user who received the rights.
    pub grantee: String,
    /// The rights granted.
    pub rights: Rights,
}

impl ShareEntry {
    fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        put_string(out, &self.owner, MAX_USER_LEN, "owner")?;
        put_string(out, &self.path, MAX_PATH_LEN, "path")?;
        put_string(out, &self.grantee, MAX_USER_LEN, "grantee")?;
        put_u8(out, self.rights.bits());
        Ok(())
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            owner: r.string(MAX_USER_LEN, "owner")?,
            path: r.string(MAX_PATH_LEN, "path")?,
            grantee: r.string(MAX_USER_LEN, "grantee")?,
            rights: Rights::from_bits(r.u8()?).ok_or(DecodeError::InvalidValue("rights"))?,
        })
    }
}

/// The server's answer to one request.
///
/// Most requests get exactly one reply. LIST, SHWM and SHARED may get several
/// `Listing`/`Shares` replies, all but the last with `more` set, because one control
/// message is bounded. RETR and STOR first get `TransferOpen`; STOR then gets a final
/// `Ok` (the file is durable) or `Error` after the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Done, nothing to report.
    Ok,
    /// Some entries of a folder listing.
    Listing {
        /// The entries in this part.
        entries: Vec<Entry>,
        /// More parts follow for the same request.
        more: bool,
    },
    /// A virtual path (answer to PWD, CWD, CDUP).
    Path {
        /// The absolute virtual path, `/` being the user's home.
        path: String,
    },
    /// A file size (answer to SIZE).
    Size {
        /// Bytes.
        size: u64,
    },
    /// Metadata (answer to STAT).
    Stat {
        /// The entry.
        entry: Entry,
    },
    /// A file digest (answer to DIGEST).
    Digest {
        /// Bytes hashed.
        size: u64,
        /// SHA-256 of the whole file.
        sha256: [u8; 32],
    },
    /// Some entries of a share listing (answer to SHWM and SHARED).
    Shares {
        /// The entries in this part.
        entries: Vec<ShareEntry>,
        /// More parts follow for the same request.
        more: bool,
    },
    /// A transfer is open (answer to RETR and STOR).
    TransferOpen(TransferOpen),
    /// The session as the server sees it (answer to STATUS).
    ServerStatus {
        /// The logged-in user.
        user: String,
        /// The working directory.
        cwd: String,
        /// True if the user is an admin.
        admin: bool,
        /// Transfers open in this session.
        transfers: u32,
    },
    /// The request failed.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// Text for the user. Never holds a real server path.
        message: String,
    },
}

pub(crate) mod ty {
    pub const OK: u8 = 0x40;
    pub const LISTING: u8 = 0x41;
    pub const PATH: u8 = 0x42;
    pub const SIZE: u8 = 0x43;
    pub const STAT: u8 = 0x44;
    pub const DIGEST: u8 = 0x45;
    pub const SHARES: u8 = 0x46;
    pub const TRANSFER_OPEN: u8 = 0x47;
    pub const SERVER_STATUS: u8 = 0x48;
    pub const ERROR: u8 = 0x4f;
}

impl Reply {
    /// A shorthand for `Reply::Error`.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }

    /// False for the parts of a multi-part answer that say more parts follow.
    pub fn is_last_part(&self) -> bool {
        !matches!(
            self,
            Self::Listing { more: true, .. } | Self::Shares { more: true, .. }
        )
    }

    pub(crate) fn type_byte(&self) -> u8 {
        match self {
            Self::Ok => ty::OK,
            Self::Listing { .. } => ty::LISTING,
            Self::Path { .. } => ty::PATH,
            Self::Size { .. } => ty::SIZE,
            Self::Stat { .. } => ty::STAT,
            Self::Digest { .. } => ty::DIGEST,
            Self::Shares { .. } => ty::SHARES,
            Self::TransferOpen(_) => ty::TRANSFER_OPEN,
            Self::ServerStatus { .. } => ty::SERVER_STATUS,
            Self::Error { .. } => ty::ERROR,
        }
    }

    pub(crate) fn encode_fields(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::Ok => {}
            Self::Listing { entries, more } => {
                put_bool(out, *more);
                let count =
                    u16::try_from(entries.len()).map_err(|_| EncodeError::TooLong("entries"))?;
                put_u16(out, count);
                for entry in entries {
                    entry.encode(out)?;
                }
            }
            Self::Path { path } => put_string(out, path, MAX_PATH_LEN, "path")?,
            Self::Size { size } => put_u64(out, *size),
            Self::Stat { entry } => entry.encode(out)?,
            Self::Digest { size, sha256 } => {
                put_u64(out, *size);
                out.extend_from_slice(sha256);
            }
            Self::Shares { entries, more } => {
                put_bool(out, *more);
                let count =
                    u16::try_from(entries.len()).map_err(|_| EncodeError::TooLong("entries"))?;
                put_u16(out, count);
                for entry in entries {
                    entry.encode(out)?;
                }
            }
            Self::TransferOpen(open) => open.encode(out),
            Self::ServerStatus {
                user,
                cwd,
                admin,
                transfers,
            } => {
                put_string(out, user, MAX_USER_LEN, "user")?;
                put_string(out, cwd, MAX_PATH_LEN, "cwd")?;
                put_bool(out, *admin);
                put_u32(out, *transfers);
            }
            Self::Error { code, message } => {
                put_u16(out, code.0);
                put_string(out, message, MAX_REASON_LEN, "message")?;
            }
        }
        Ok(())
    }

    pub(crate) fn decode_fields(ty: u8, r: &mut Reader<'_>) -> Option<Result<Self, DecodeError>> {
        let decoded = (|| {
            Ok(match ty {
                ty::OK => Self::Ok,
                ty::LISTING => {
                    let more = r.bool("more")?;
                    let count = r.u16()?;
                    // No pre-allocation from the peer's count: each entry must
                    // actually be there, so memory grows only with real bytes.
                    let mut entries = Vec::new();
                    for _ in 0..count {
                        entries.push(Entry::decode(r)?);
                    }
                    Self::Listing { entries, more }
                }
                ty::PATH => Self::Path {
                    path: r.string(MAX_PATH_LEN, "path")?,
                },
                ty::SIZE => Self::Size { size: r.u64()? },
                ty::STAT => Self::Stat {
                    entry: Entry::decode(r)?,
                },
                ty::DIGEST => Self::Digest {
                    size: r.u64()?,
                    sha256: r.array()?,
                },
                ty::SHARES => {
                    let more = r.bool("more")?;
                    let count = r.u16()?;
                    let mut entries = Vec::new();
                    for _ in 0..count {
                        entries.push(ShareEntry::decode(r)?);
                    }
                    Self::Shares { entries, more }
                }
                ty::TRANSFER_OPEN => Self::TransferOpen(TransferOpen::decode(r)?),
                ty::SERVER_STATUS => Self::ServerStatus {
                    user: r.string(MAX_USER_LEN, "user")?,
                    cwd: r.string(MAX_PATH_LEN, "cwd")?,
                    admin: r.bool("admin")?,
                    transfers: r.u32()?,
                },
                ty::ERROR => Self::Error {
                    code: ErrorCode(r.u16()?),
                    message: r.string(MAX_REASON_LEN, "message")?,
                },
                other => return Err(DecodeError::UnknownType(other)),
            })
        })();
        match decoded {
            Err(DecodeError::UnknownType(_)) => None,
            other => Some(other),
        }
    }
}
