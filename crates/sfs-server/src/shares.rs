//! Sharing: rights an owner gives another user on one of their files or folders,
//! and the virtual `/shared` tree through which the other user reaches them.
//!
//! # Rights
//!
//! The original's four: **read** (LIST, RETR, SIZE, STAT, digest, CWD into it),
//! **write** (STOR over an existing file), **create** (STOR of a new file, MKD, the
//! target of a rename) and **delete** (DELE, RMD, the source of a rename). A share on
//! a folder covers everything beneath it; when several shares cover one path their
//! rights add up. A non-admin can therefore delete in someone else's home only where
//! the owner granted delete; without such a grant, deleting there needs admin.
//!
//! # How shares appear in the virtual tree
//!
//! Every user sees a virtual, read-only folder `/shared` at the top of their home
//! (the name is reserved there: see [`crate::store::RESERVED_TOP_NAMES`]):
//!
//! - `/shared` lists the owners who share something with you.
//! - `/shared/<owner>/<path>` is `<path>` in the owner's home, *the same path the
//!   owner sees*. If bob shares `/docs/report.txt` and `/pics` with alice, alice sees
//!   `/shared/bob/docs/report.txt` and `/shared/bob/pics/...`. Folders above a shared
//!   item (`/shared/bob`, `/shared/bob/docs`) are synthesized listings that show only
//!   what leads to a share; nothing else in bob's home is visible.
//!
//! Keeping the owner's path (rather than flattening to the last name) makes every
//! share addressable without name clashes, and the listing says where a file lives.
//!
//! **Admins** may act in every home: for an admin, `/shared/<user>/<path>` is any
//! path in that user's home with all four rights, share or not.
//!
//! A rename needs delete on the source and create on the target, and both must
//! resolve into the same home (the session refuses a rename across homes, since
//! the store renames within one home only).
//!
//! Shares name a path, not an inode: if the owner renames or deletes the item, the
//! share no longer leads anywhere (it resolves, and the store answers "not found").
//!
//! # Storage
//!
//! `shares.json`, written like `users.json`: one writer at a time under a `flock`,
//! re-read under the lock, replaced atomically and durably with mode 0600.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::accounts::{Account, UserDb, Username};
use crate::durable::{self, StateLock};
use crate::store::VirtualPath;

/// The name of the virtual folder at the top of every home.
pub const SHARED_DIR: &str = "shared";

/// The only shares-file format version this code reads and writes.
pub const SHARES_FILE_VERSION: u32 = 1;

/// One kind of access, as an operation needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// See and download.
    Read,
    /// Replace the content of an existing file.
    Write,
    /// Make a new file or folder.
    Create,
    /// Remove a file or folder (or move it away).
    Delete,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Create => "create",
            Self::Delete => "delete",
        })
    }
}

/// A set of rights. Its text form is the letters `r`, `w`, `c`, `d` in that order
/// (for example `rw`), or `-` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rights {
    /// See [`Access::Read`].
    pub read: bool,
    /// See [`Access::Write`].
    pub write: bool,
    /// See [`Access::Create`].
    pub create: bool,
    /// See [`Access::Delete`].
    pub delete: bool,
}

impl Rights {
    /// All four rights.
    pub const ALL: Self = Self {
        read: true,
        write: true,
        create: true,
        delete: true,
    };

    /// Read only.
    pub const READ: Self = Self {
        read: true,
        write: false,
        create: false,
        delete: false,
    };

    /// True if `access` is included.
    pub fn allows(&self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
            Access::Create => self.create,
            Access::Delete => self.delete,
        }
    }

    /// True if no right is included.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The rights in either set.
    pub fn union(self, other: Self) -> Self {
        Self {
            read: self.read || other.read,
            write: self.write || other.write,
            create: self.create || other.create,
            delete: self.delete || other.delete,
        }
    }
}

impl FromStr for Rights {
    type Err = ShareError;

    /// Accepts letters (`rwcd`, any order, `-` ignored) or comma-separated words
    /// (`read,write,create,delete`, also `all`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut rights = Self::default();
        let is_letters = !text.is_empty()
            && text
                .chars()
                .all(|c| matches!(c.to_ascii_lowercase(), 'r' | 'w' | 'c' | 'd' | '-'));
        if !is_letters {
            for word in text.split(',').map(str::trim) {
                match word.to_ascii_lowercase().as_str() {
                    "read" => rights.read = true,
                    "write" => rights.write = true,
                    "create" => rights.create = true,
                    "delete" => rights.delete = true,
                    "all" => rights = Self::ALL,
                    _ => return Err(ShareError::BadRights),
                }
            }
        } else {
            for letter in text.chars() {
                match letter.to_ascii_lowercase() {
                    'r' => rights.read = true,
                    'w' => rights.write = true,
                    'c' => rights.create = true,
                    'd' => rights.delete = true,
                    '-' => {}
                    _ => return Err(ShareError::BadRights),
                }
            }
        }
        Ok(rights)
    }
}

impl TryFrom<String> for Rights {
    type Error = ShareError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Rights> for String {
    fn from(rights: Rights) -> Self {
        rights.to_string()
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (on, letter) in [
            (self.read, "r"),
            (self.write, "w"),
            (self.create, "c"),
            (self.delete, "d"),
        ] {
            if on {
                f.write_str(letter)?;
            }
        }
        Ok(())
    }
}

/// One share: `owner` gives `grantee` some `rights` on `path` in the owner's home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    /// Whose home the item is in.
    pub owner: Username,
    /// The item, as the owner sees it.
    pub path: VirtualPath,
    /// Who receives the rights.
    pub grantee: Username,
    /// What the grantee may do.
    pub rights: Rights,
    /// When the share was made or last changed, in seconds since the Unix epoch.
    #[serde(default)]
    pub created: u64,
}

/// Errors of sharing and of resolving `/shared`.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// Rights text that is not `rwcd` letters or `read,write,...` words.
    #[error("rights are letters from 'rwcd' or words from 'read,write,create,delete'")]
    BadRights,
    /// A share with no right in it.
    #[error("a share needs at least one right")]
    NoRights,
    /// Sharing with yourself.
    #[error("you cannot share with yourself")]
    SelfShare,
    /// The grantee is not an account.
    #[error("no such user")]
    NoSuchUser,
    /// Sharing the whole home, or the `/shared` folder.
    #[error("share a file or folder inside your home, not the home itself or /shared")]
    BadTarget,
    /// UNSH of something not shared with that user.
    #[error("no such share")]
    NoSuchShare,
    /// No share (or not the right one) leads to the path. Same text as the store's
    /// "not found", so a path outside every share cannot be probed for existence.
    #[error("no such file or folder")]
    NotShared,
    /// A share leads there but lacks the right.
    #[error("permission denied: the share does not include {0}")]
    Denied(Access),
    /// The `/shared` folders themselves cannot be changed.
    #[error("the /shared folders are read-only")]
    ReadOnly,
    /// The shares file could not be read or written.
    #[error("shares file {}: {source}", path.display())]
    Io {
        /// The shares file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The shares file is not valid.
    #[error("shares file {} is corrupt: {detail}", path.display())]
    Corrupt {
        /// The shares file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// Either half of a file command's failure: the share check or the store operation.
/// Its text is fit to send to the client.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The share tree refused (no share, missing right, read-only folder).
    #[error(transparent)]
    Share(#[from] ShareError),
    /// The file operation failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl From<crate::store::PathError> for AccessError {
    fn from(error: crate::store::PathError) -> Self {
        Self::Store(error.into())
    }
}

/// The on-disk shape of the shares file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SharesFileRepr {
    version: u32,
    shares: Vec<Share>,
}

type ShareKey = (Username, VirtualPath, Username);

/// Every share, in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareDb {
    shares: BTreeMap<ShareKey, Share>,
}

impl ShareDb {
    /// Parses the JSON of a shares file.
    pub fn from_json(text: &[u8]) -> Result<Self, String> {
        let repr: SharesFileRepr = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        if repr.version != SHARES_FILE_VERSION {
            return Err(format!(
                "unsupported version {} (this build reads version {SHARES_FILE_VERSION})",
                repr.version
            ));
        }
        let mut db = Self::default();
        for share in repr.shares {
            let key = (
                share.owner.clone(),
                share.path.clone(),
                share.grantee.clone(),
            );
            if db.shares.insert(key, share).is_some() {
                return Err("a share appears twice".into());
            }
        }
        Ok(db)
    }

    /// The JSON text of the shares file.
    pub fn to_json(&self) -> Vec<u8> {
        let repr = SharesFileRepr {
            version: SHARES_FILE_VERSION,
            shares: self.shares.values().cloned().collect(),
        };
        // Serializing strings and numbers into memory cannot fail.
        let mut text = serde_json::to_vec_pretty(&repr).expect("shares file serializes");
        text.push(b'\n');
        text
    }

    /// Gives `grantee` `rights` on `path` in `owner`'s home, replacing the rights of
    /// an earlier share of the same item to the same user. `users` is checked for the
    /// grantee. The caller checks that the item exists in the owner's home.
    pub fn grant(
        &mut self,
        owner: &Username,
        path: &VirtualPath,
        grantee: &Username,
        rights: Rights,
        users: &UserDb,
    ) -> Result<(), ShareError> {
        if rights.is_empty() {
            return Err(ShareError::NoRights);
        }
        if owner == grantee {
            return Err(ShareError::SelfShare);
        }
        if path.is_root() || path.names().first().is_some_and(|n| n == SHARED_DIR) {
            return Err(ShareError::BadTarget);
        }
        if users.user(grantee).is_none() {
            return Err(ShareError::NoSuchUser);
        }
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let share = Share {
            owner: owner.clone(),
            path: path.clone(),
            grantee: grantee.clone(),
            rights,
            created,
        };
        self.shares
            .insert((owner.clone(), path.clone(), grantee.clone()), share);
        Ok(())
    }

    /// Removes a share.
    pub fn revoke(
        &mut self,
        owner: &Username,
        path: &VirtualPath,
        grantee: &Username,
    ) -> Result<Share, ShareError> {
        self.shares
            .remove(&(owner.clone(), path.clone(), grantee.clone()))
            .ok_or(ShareError::NoSuchShare)
    }

    /// Removes every share by or to `user` (when the account is deleted, so that a
    /// later account of the same name inherits nothing). Returns how many went.
    pub fn forget_user(&mut self, user: &Username) -> usize {
        let before = self.shares.len();
        self.shares
            .retain(|(owner, _, grantee), _| owner != user && grantee != user);
        before - self.shares.len()
    }

    /// What others share with `grantee` (SHWM).
    pub fn shared_with(&self, grantee: &Username) -> Vec<&Share> {
        self.shares
            .values()
            .filter(|s| &s.grantee == grantee)
            .collect()
    }

    /// What `owner` shares with others.
    pub fn shared_by(&self, owner: &Username) -> Vec<&Share> {
        self.shares.values().filter(|s| &s.owner == owner).collect()
    }

    /// Every share.
    pub fn all(&self) -> impl Iterator<Item = &Share> {
        self.shares.values()
    }

    /// Maps a path of `account`'s virtual tree to where it really is.
    pub fn resolve(&self, account: &Account, path: &VirtualPath) -> Resolved {
        let names = path.names();
        let Some((first, rest)) = names.split_first() else {
            return Resolved::Own(path.clone());
        };
        if first != SHARED_DIR {
            return Resolved::Own(path.clone());
        }
        let Some((owner, inner)) = rest.split_first() else {
            return Resolved::SharedRoot;
        };
        let Ok(owner) = Username::parse(owner) else {
            return Resolved::NotShared;
        };
        // Built from names that were already checked, so this cannot fail; treat a
        // failure as "nothing there" rather than trusting it.
        let Ok(inner) = VirtualPath::from_names(inner) else {
            return Resolved::NotShared;
        };
        if account.is_admin() {
            return Resolved::Shared {
                owner,
                path: inner,
                rights: Rights::ALL,
            };
        }
        let mut rights = Rights::default();
        let mut children = std::collections::BTreeSet::new();
        for share in self
            .shares
            .values()
            .filter(|s| s.owner == owner && s.grantee == account.name)
        {
            if inner.starts_with(&share.path) {
                rights = rights.union(share.rights);
            } else if let Some(below) = share.path.strip_prefix(&inner) {
                if let Some(next) = below.names().first() {
                    children.insert(next.clone());
                }
            }
        }
        if !rights.is_empty() {
            Resolved::Shared {
                owner,
                path: inner,
                rights,
            }
        } else if !children.is_empty() {
            Resolved::Listing {
                owner,
                path: inner,
                children: children.into_iter().collect(),
            }
        } else {
            Resolved::NotShared
        }
    }

    /// The owners who share something with `grantee`, for listing `/shared`.
    pub fn owners_sharing_with(&self, grantee: &Username) -> Vec<Username> {
        let mut owners: Vec<_> = self
            .shares
            .values()
            .filter(|s| &s.grantee == grantee)
            .map(|s| s.owner.clone())
            .collect();
        owners.dedup();
        owners
    }
}

/// Where a virtual path really is, from [`ShareDb::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// In the user's own home, at this path.
    Own(VirtualPath),
    /// `/shared` itself: list [`ShareDb::owners_sharing_with`] (for an admin, every
    /// user). Read-only.
    SharedRoot,
    /// A synthesized folder above shared items: list `children` (names one level
    /// down that lead to a share). Read-only.
    Listing {
        /// Whose home.
        owner: Username,
        /// The path in the owner's home.
        path: VirtualPath,
        /// The next names towards shared items.
        children: Vec<String>,
    },
    /// Inside (or at) a shared item.
    Shared {
        /// Whose home.
        owner: Username,
        /// The path in the owner's home.
        path: VirtualPath,
        /// The rights that apply here (the union of every covering share).
        rights: Rights,
    },
    /// Nothing shared there.
    NotShared,
}

impl Resolved {
    /// Checks that `access` is allowed here. Own paths allow everything (the store
    /// still confines them); the synthesized folders allow only reading.
    pub fn check(&self, access: Access) -> Result<(), ShareError> {
        match self {
            Self::Own(_) => Ok(()),
            Self::SharedRoot | Self::Listing { .. } if access == Access::Read => Ok(()),
            Self::SharedRoot | Self::Listing { .. } => Err(ShareError::ReadOnly),
            Self::Shared { rights, .. } if rights.allows(access) => Ok(()),
            Self::Shared { .. } => Err(ShareError::Denied(access)),
            Self::NotShared => Err(ShareError::NotShared),
        }
    }
}

/// The shares file on disk.
#[derive(Debug, Clone)]
pub struct SharesFile {
    path: PathBuf,
}

impl SharesFile {
    /// Names the shares file; nothing is read yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The path of the shares file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file; a missing file means no shares.
    pub fn load(&self) -> Result<ShareDb, ShareError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ShareDb::default()),
            Err(source) => {
                return Err(ShareError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        ShareDb::from_json(&text).map_err(|detail| ShareError::Corrupt {
            path: self.path.clone(),
            detail,
        })
    }

    /// Applies `edit` and saves, as one step no other writer can interleave with.
    /// If `edit` fails, nothing is written.
    pub fn update<T>(
        &self,
        edit: impl FnOnce(&mut ShareDb) -> Result<T, ShareError>,
    ) -> Result<T, ShareError> {
        let io_error = |source| ShareError::Io {
            path: self.path.clone(),
            source,
        };
        let _lock = StateLock::acquire(&self.path).map_err(io_error)?;
        let mut db = self.load()?;
        let outcome = edit(&mut db)?;
        durable::write_atomic(&self.path, &db.to_json(), 0o600).map_err(io_error)?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_parse_and_print() {
        assert_eq!("rw".parse::<Rights>().unwrap().to_string(), "rw");
        assert_eq!("dcwr".parse::<Rights>().unwrap(), Rights::ALL);
        assert_eq!("read,delete".parse::<Rights>().unwrap().to_string(), "rd");
        assert_eq!("all".parse::<Rights>().unwrap(), Rights::ALL);
        assert_eq!("read".parse::<Rights>().unwrap(), Rights::READ);
        assert_eq!("Write".parse::<Rights>().unwrap().to_string(), "w");
        assert!("".parse::<Rights>().is_err());
        assert_eq!("r---".parse::<Rights>().unwrap(), Rights::READ);
        assert_eq!(Rights::default().to_string(), "-");
        assert!("rx".parse::<Rights>().is_err());
        assert!("read,exec".parse::<Rights>().is_err());
    }
}
