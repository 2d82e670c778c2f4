//! Replies from the server, each naming the request it answers. Each reply is one
//! entry of the `wire_enum!` table below.

use crate::codec::{
    put_i64, put_string, put_u32, put_u64, put_u8, DecodeError, EncodeError, Reader,
};
use crate::control::command::{Rights, MAX_PATH_LEN, MAX_USER_LEN};
use crate::control::transfer_messages::TransferOpen;
use crate::control::wire::{wire_enum, Wire};
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

impl Wire for Entry {
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

impl Wire for ShareEntry {
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

wire_enum! {
    /// The server's answer to one request.
    ///
    /// Most requests get exactly one reply. LIST, SHWM and SHARED may get several
    /// `Listing`/`Shares` replies, all but the last with `more` set, because one
    /// control message is bounded. RETR and STOR first get `TransferOpen`; STOR then
    /// gets a final `Ok` (the file is durable) or `Error` after the data.
    #[derive(Clone, PartialEq, Eq)]
    pub enum Reply {
        /// Done, nothing to report.
        Ok = 0x40,
        /// Some entries of a folder listing.
        Listing = 0x41 {
            /// More parts follow for the same request.
            more: bool = bool("more"),
            /// The entries in this part.
            entries: Vec<Entry> = list,
        },
        /// A virtual path (answer to PWD, CWD, CDUP).
        Path = 0x42 {
            /// The absolute virtual path, `/` being the user's home.
            path: String = str(MAX_PATH_LEN, "path"),
        },
        /// A file size (answer to SIZE).
        Size = 0x43 {
            /// Bytes.
            size: u64 = u64,
        },
        /// Metadata (answer to STAT).
        Stat = 0x44 {
            /// The entry.
            entry: Entry = nested,
        },
        /// A file digest (answer to DIGEST).
        Digest = 0x45 {
            /// Bytes hashed.
            size: u64 = u64,
            /// SHA-256 of the whole file.
            sha256: [u8; 32] = sha256,
        },
        /// Some entries of a share listing (answer to SHWM and SHARED).
        Shares = 0x46 {
            /// More parts follow for the same request.
            more: bool = bool("more"),
            /// The entries in this part.
            entries: Vec<ShareEntry> = list,
        },
        /// A transfer is open (answer to RETR and STOR).
        TransferOpen = 0x47 (TransferOpen = nested),
        /// The session as the server sees it (answer to STATUS).
        ServerStatus = 0x48 {
            /// The logged-in user.
            user: String = str(MAX_USER_LEN, "user"),
            /// The working directory.
            cwd: String = str(MAX_PATH_LEN, "cwd"),
            /// True if the user is an admin.
            admin: bool = bool("admin"),
            /// Transfers open in this session.
            transfers: u32 = u32,
        },
        /// Storage use and limits of the logged-in user (answer to QUOT). A limit
        /// of 0 means none is set.
        Quota = 0x49 {
            /// Bytes in files under the user's home, shared uploads included.
            used_bytes: u64 = u64,
            /// Byte quota, 0 for none.
            limit_bytes: u64 = u64,
            /// Files under the user's home.
            used_files: u64 = u64,
            /// File quota, 0 for none.
            limit_files: u64 = u64,
            /// Bytes reserved by uploads in progress (counted against the quota).
            reserved_bytes: u64 = u64,
            /// Largest file an upload may announce, 0 for no limit.
            max_file_size: u64 = u64,
        },
        /// The login succeeded (answer to LOGIN and REGISTER), with the limits
        /// this session enforces, so the client can queue within them instead of
        /// being refused. An older server answers a login with a plain `Ok`; the
        /// client then assumes conservative defaults.
        Limits = 0x4c {
            /// Transfers (RETR and STOR together) open at once in the session;
            /// one more is refused with `BUSY`.
            max_transfers: u32 = u32,
            /// Requests in flight at once (sent and not yet fully answered, an
            /// upload's request until its final reply); one more is refused
            /// with `BUSY`.
            max_requests: u32 = u32,
            /// Bytes of credit the server grants each upload beyond what it
            /// has consumed.
            transfer_window: u64 = u64,
            /// Bytes of credit the server grants all uploads together beyond
            /// what they have consumed (its connection window).
            connection_window: u64 = u64,
            /// Associations the server allows this session, the first one
            /// included (1: no extra data associations). Added last: a message
            /// without it means 1.
            max_associations: u8 = u8_or(1),
        },
        /// The bytes of an interrupted upload the server kept (answer to PARTIAL).
        Partial = 0x4a {
            /// Bytes kept, 0 when there is no partial upload to continue.
            size: u64 = u64,
        },
        /// A ticket to bind one more data association (answer to ASSOC): send
        /// it, with its proof, in the BIND message that opens the association.
        /// Valid once, for `BIND_TICKET_LIFETIME`, while this session lives.
        AssocTicket = 0x4b {
            /// The association's number (1..=15; 0 is the first association).
            index: u8 = u8,
            /// 16 random bytes from the server.
            ticket: [u8; 16] = bytes,
        },
        /// The request failed.
        Error = 0x4f {
            /// What went wrong.
            code: ErrorCode = code,
            /// Text for the user. Never holds a real server path.
            message: String = str(MAX_REASON_LEN, "message"),
        },
    }
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
}
