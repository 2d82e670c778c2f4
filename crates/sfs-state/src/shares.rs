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
//! (the name is reserved there: see [`crate::path::RESERVED_TOP_NAMES`]):
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
//! `shares.json`, a [`StateFile`] like `users.json`: one writer at a time under a
//! `flock`, re-read under the lock, replaced atomically and durably with mode 0600.
//! Rights are stored as their letters (`"rw"`, see [`rights_text`]).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
pub use sfs_proto::control::Rights;

use crate::accounts::{Account, UserDb, Username};
use crate::path::VirtualPath;
use crate::state_file::{Document, StateFile, StateFileError};

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

impl Access {
    /// The right that grants this access.
    pub fn right(self) -> Rights {
        match self {
            Self::Read => Rights::READ,
            Self::Write => Rights::WRITE,
            Self::Create => Rights::CREATE,
            Self::Delete => Rights::DELETE,
        }
    }
}

/// The compact text of a set of rights, as the shares file and the audit log write
/// it: the letters `r`, `w`, `c`, `d` that are set, in that order (for example `rw`),
/// or `-` for none.
pub fn rights_text(rights: Rights) -> String {
    if rights.is_empty() {
        return "-".to_owned();
    }
    [
        (Rights::READ, 'r'),
        (Rights::WRITE, 'w'),
        (Rights::CREATE, 'c'),
        (Rights::DELETE, 'd'),
    ]
    .into_iter()
    .filter(|(right, _)| rights.contains(*right))
    .map(|(_, letter)| letter)
    .collect()
}

/// Parses rights as letters (`rwcd`, any order and case, `-` ignored) or as
/// comma-separated words (`read,write,create,delete`, also `all`).
///
/// # Errors
///
/// [`ShareError::BadRights`] for anything else, including empty text.
pub fn parse_rights(text: &str) -> Result<Rights, ShareError> {
    let is_letters = !text.is_empty()
        && text
            .chars()
            .all(|c| matches!(c.to_ascii_lowercase(), 'r' | 'w' | 'c' | 'd' | '-'));
    let mut rights = Rights::NONE;
    if is_letters {
        for letter in text.chars() {
            rights |= match letter.to_ascii_lowercase() {
                'r' => Rights::READ,
                'w' => Rights::WRITE,
                'c' => Rights::CREATE,
                'd' => Rights::DELETE,
                _ => Rights::NONE,
            };
        }
        return Ok(rights);
    }
    for word in text.split(',').map(str::trim) {
        rights |= match word.to_ascii_lowercase().as_str() {
            "read" => Rights::READ,
            "write" => Rights::WRITE,
            "create" => Rights::CREATE,
            "delete" => Rights::DELETE,
            "all" => Rights::ALL,
            _ => return Err(ShareError::BadRights),
        };
    }
    Ok(rights)
}

/// Serde for [`Rights`] in the shares file, as [`rights_text`].
mod rights_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use sfs_proto::control::Rights;

    pub fn serialize<S: Serializer>(rights: &Rights, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::rights_text(*rights))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Rights, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_rights(&text).map_err(serde::de::Error::custom)
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
    #[serde(with = "rights_serde")]
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
    /// A grantee tried to delete or move the shared item itself: only its owner
    /// may, so a share never points at nothing, or at whatever the owner later
    /// makes under that name.
    #[error("permission denied: only its owner can delete or move the shared item itself")]
    SharedItemItself,
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

/// The on-disk shape of the shares file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharesFileRepr {
    version: u32,
    shares: Vec<Share>,
}

type ShareKey = (Username, VirtualPath, Username);

/// Every share, in memory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShareDb {
    shares: BTreeMap<ShareKey, Share>,
}

impl Document for ShareDb {
    const NAME: &'static str = "shares file";
    const VERSION: u32 = SHARES_FILE_VERSION;
    type Repr = SharesFileRepr;
    type Error = ShareError;

    fn version(repr: &SharesFileRepr) -> u32 {
        repr.version
    }

    fn from_repr(repr: SharesFileRepr) -> Result<Self, String> {
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

    fn to_repr(&self) -> SharesFileRepr {
        SharesFileRepr {
            version: SHARES_FILE_VERSION,
            shares: self.shares.values().cloned().collect(),
        }
    }
}

impl ShareDb {
    /// Gives `grantee` `rights` on `path` in `owner`'s home, replacing the rights of
    /// an earlier share of the same item to the same user. `users` is checked for the
    /// grantee. The caller checks that the item exists in the owner's home.
    ///
    /// # Errors
    ///
    /// Nothing changes on an error:
    /// - [`ShareError::NoRights`] if `rights` is empty;
    /// - [`ShareError::SelfShare`] if `grantee` is `owner`;
    /// - [`ShareError::BadTarget`] for the home itself or anything in `/shared`;
    /// - [`ShareError::NoSuchUser`] if `grantee` is not in `users`.
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
    ///
    /// # Errors
    ///
    /// [`ShareError::NoSuchShare`] if `owner` has not shared `path` with `grantee`.
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
        let mut rights = Rights::NONE;
        let mut children = std::collections::BTreeSet::new();
        for share in self
            .shares
            .values()
            .filter(|s| s.owner == owner && s.grantee == account.name)
        {
            if inner.starts_with(&share.path) {
                rights |= share.rights;
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

    /// The folder an operation needing `access` at `path` in `owner`'s home is
    /// confined beneath: the outermost share to `account` covering `path` with
    /// that right (the home itself for an admin). `None` when no share grants it.
    pub fn confinement(
        &self,
        account: &Account,
        owner: &Username,
        path: &VirtualPath,
        access: Access,
    ) -> Option<VirtualPath> {
        if account.is_admin() {
            return Some(VirtualPath::root());
        }
        self.shares
            .values()
            .filter(|s| &s.owner == owner && s.grantee == account.name)
            .filter(|s| s.rights.contains(access.right()) && path.starts_with(&s.path))
            .map(|s| s.path.clone())
            .min_by_key(|p| p.names().len())
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
    ///
    /// # Errors
    ///
    /// - [`ShareError::ReadOnly`] for anything but reading in the `/shared` folders;
    /// - [`ShareError::Denied`] if the share lacks the right `access` needs;
    /// - [`ShareError::NotShared`] if no share leads here.
    pub fn check(&self, access: Access) -> Result<(), ShareError> {
        match self {
            Self::Own(_) => Ok(()),
            Self::SharedRoot | Self::Listing { .. } if access == Access::Read => Ok(()),
            Self::SharedRoot | Self::Listing { .. } => Err(ShareError::ReadOnly),
            Self::Shared { rights, .. } if rights.contains(access.right()) => Ok(()),
            Self::Shared { .. } => Err(ShareError::Denied(access)),
            Self::NotShared => Err(ShareError::NotShared),
        }
    }
}

impl From<StateFileError> for ShareError {
    fn from(error: StateFileError) -> Self {
        match error {
            StateFileError::Io { path, source, .. } => Self::Io { path, source },
            StateFileError::Corrupt { path, detail, .. } => Self::Corrupt { path, detail },
        }
    }
}

/// The shares file on disk. [`StateFile::load`] and [`StateFile::update`] report
/// [`ShareError`].
pub type SharesFile = StateFile<ShareDb>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_parse_and_print() {
        let text = |t: &str| rights_text(parse_rights(t).unwrap());
        assert_eq!(text("rw"), "rw");
        assert_eq!(parse_rights("dcwr").unwrap(), Rights::ALL);
        assert_eq!(text("read,delete"), "rd");
        assert_eq!(parse_rights("all").unwrap(), Rights::ALL);
        assert_eq!(parse_rights("read").unwrap(), Rights::READ);
        assert_eq!(text("Write"), "w");
        assert!(parse_rights("").is_err());
        assert_eq!(parse_rights("r---").unwrap(), Rights::READ);
        assert_eq!(rights_text(Rights::NONE), "-");
        assert!(parse_rights("rx").is_err());
        assert!(parse_rights("read,exec").is_err());
    }

    #[test]
    fn rights_are_stored_as_letters() {
        let share = Share {
            owner: Username::parse("bob").unwrap(),
            path: VirtualPath::parse("/a").unwrap(),
            grantee: Username::parse("alice").unwrap(),
            rights: Rights::READ | Rights::DELETE,
            created: 0,
        };
        let json = serde_json::to_value(&share).unwrap();
        assert_eq!(json["rights"], "rd");
        assert_eq!(serde_json::from_value::<Share>(json).unwrap(), share);
    }
}
