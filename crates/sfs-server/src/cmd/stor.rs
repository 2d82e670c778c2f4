//! STOR, the first half: find where the file goes, check the write (replace) or
//! create (new file) right, and start the temporary upload file. The data moves
//! afterwards, in [`crate::connection`], while other commands go on.

use sfs_proto::control::{ErrorCode, Reply};

use std::sync::Arc;

use sfs_proto::digest::Sha256;

use super::common::{authorize_at_commit, store_error_reply, Target};
use super::{CommandContext, CommandResult};
use crate::accounts::Username;
use crate::audit::{AuditOutcome, EventKind, Reason};
use crate::context::ServerContext;
use crate::quota::{LimitError, Reservation};
use crate::shares::{Access, ShareError};
use crate::store::{Digest, EntryKind, Home, StoreError, Upload, VirtualPath};

/// A STOR (or REPUT) ready to receive.
#[derive(Debug)]
pub(crate) struct UploadTarget {
    /// The temporary file beside the target.
    pub upload: Upload,
    /// The announced size.
    pub size: u64,
    /// REPUT: the bytes the kept partial already holds (0 for STOR).
    pub offset: u64,
    /// REPUT: the hash state of those bytes, which the transfer's End digest
    /// continues.
    pub prefix: Sha256,
    /// The path as the client named it (for the log).
    pub path: VirtualPath,
    /// The home's owner when it is not the client's.
    pub owner: Option<Username>,
    /// The space held for the upload until it ends.
    pub reservation: Reservation,
    /// What the commit re-checks.
    pub commit: CommitCheck,
}

/// Who uploads where, for the re-check at commit.
#[derive(Debug, Clone)]
pub(crate) struct CommitCheck {
    ctx: Arc<ServerContext>,
    user: Username,
    path: VirtualPath,
}

impl CommitCheck {
    /// Commits `upload` if the user may still put it there (see
    /// [`authorize_at_commit`]), never replacing a file under a create-only right.
    /// Blocking.
    pub(crate) fn commit(&self, upload: Upload, digest: &Digest) -> Result<u64, StoreError> {
        let mode = authorize_at_commit(&self.ctx, &self.user, &self.path, &upload)?;
        upload.commit_as(digest, mode)
    }
}

pub(super) fn run(cx: &CommandContext, text: &str, size: u64) -> Result<CommandResult, Reply> {
    cx.check_transfer_slot()?;
    start(cx, text, size, None)
}

/// REPUT: STOR continuing the partial upload the user kept of this path, once
/// its first `offset` bytes have the SHA-256 `prefix`. Needs the same rights as
/// STOR, checked the same way (and again at commit).
pub(super) fn resume(
    cx: &CommandContext,
    text: &str,
    size: u64,
    offset: u64,
    prefix: &Digest,
) -> Result<CommandResult, Reply> {
    cx.check_transfer_slot()?;
    if offset > size {
        return Err(Reply::error(
            ErrorCode::RESUME_MISMATCH,
            "the partial upload is longer than the file",
        ));
    }
    start(cx, text, size, Some((offset, prefix)))
}

/// PARTIAL: how much of an interrupted upload of this path the user kept.
/// Answered for a path the user may upload to, as STOR would find it.
pub(super) fn partial(cx: &CommandContext, text: &str) -> Result<CommandResult, Reply> {
    let kind = EventKind::Store;
    let path = cx.parse_or_reply(kind, text)?;
    let (home, real, owner) = locate(cx, kind, text, &path)?;
    let keep = cx.ctx.settings.partial_upload_keep;
    match home.kept_upload_size(&real, &cx.account.name, keep) {
        Ok(size) => Ok(CommandResult::reply(Reply::Partial { size })),
        Err(error) => Err(cx.fail(kind, Some(&path), owner.as_ref(), &error.into())),
    }
}

fn start(
    cx: &CommandContext,
    text: &str,
    size: u64,
    resume: Option<(u64, &Digest)>,
) -> Result<CommandResult, Reply> {
    let kind = EventKind::Store;
    let path = cx.parse_or_reply(kind, text)?;
    let (home, real, owner) = locate(cx, kind, text, &path)?;
    let reservation = reserve(cx, &home, &real, owner.as_ref(), size)
        .map_err(|error| refuse(cx, &path, owner.as_ref(), &error))?;
    let uploader = &cx.account.name;
    let keep = cx.ctx.settings.partial_upload_keep;
    let begun = match resume {
        // The session hashes the bytes as they arrive and checks End.
        None => home
            .begin_upload(&real)
            .map(|upload| (upload.unhashed(), 0, Sha256::default())),
        Some((offset, prefix)) => home
            .resume_upload(&real, uploader, offset, prefix, keep)
            .map(|(upload, state)| (upload, offset, state)),
    };
    let (upload, offset, prefix) = match begun {
        Ok(begun) => begun,
        Err(error) => return Err(cx.fail(kind, Some(&path), owner.as_ref(), &error.into())),
    };
    // Kept if cut short, unless partials are off.
    let upload = if keep.is_zero() {
        upload
    } else {
        upload.keep_for(uploader)
    };
    Ok(CommandResult::Stor(Box::new(UploadTarget {
        upload,
        size,
        offset,
        prefix,
        commit: CommitCheck {
            ctx: cx.ctx.clone(),
            user: uploader.clone(),
            path: path.clone(),
        },
        path,
        owner,
        reservation,
    })))
}

/// Where an upload to `path` goes, once the right it needs (write to replace,
/// create for a new file) is checked.
fn locate(
    cx: &CommandContext,
    kind: EventKind,
    text: &str,
    path: &VirtualPath,
) -> Result<(Home, VirtualPath, Option<Username>), Reply> {
    let path = path.clone();
    // Replacing a file needs write; making a new one needs create. Ask the share
    // tree about reading first only to learn where the file is.
    let located = match cx.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
            ..
        }) => Some((home, real, owner)),
        Ok(_) => None,
        // No read right is fine as long as the needed right is there (checked next).
        Err(_) => None,
    };
    if text.ends_with('/') {
        // A trailing slash names a folder, and a folder cannot be uploaded over:
        // never store a file under the folder's name.
        let error = match &located {
            Some((home, real, _)) => match home.stat(real) {
                Ok(entry) if entry.kind == EntryKind::Dir => StoreError::IsADirectory,
                Ok(_) => StoreError::NotADirectory,
                Err(error) => error,
            },
            None => StoreError::NotFound,
        };
        let owner = located.as_ref().and_then(|(_, _, owner)| owner.as_ref());
        return Err(cx.fail(kind, Some(&path), owner, &error.into()));
    }
    let access = match &located {
        Some((home, real, owner)) => match home.stat(real) {
            Ok(entry) if entry.kind == EntryKind::Dir => {
                return Err(cx.fail(
                    kind,
                    Some(&path),
                    owner.as_ref(),
                    &StoreError::IsADirectory.into(),
                ))
            }
            Ok(_) => Access::Write,
            Err(StoreError::NotFound) => Access::Create,
            Err(error) => return Err(cx.fail(kind, Some(&path), owner.as_ref(), &error.into())),
        },
        None => {
            // Write-only or create-only shares: does the file exist?
            match exists_for_upload(cx, &path) {
                Some(true) => Access::Write,
                _ => Access::Create,
            }
        }
    };
    let (home, real, owner) = match cx.target(&path, access) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
            ..
        }) => (home, real, owner),
        Ok(_) => return Err(cx.fail(kind, Some(&path), None, &ShareError::ReadOnly.into())),
        Err(error) => return Err(cx.fail(kind, Some(&path), None, &error)),
    };
    Ok((home, real, owner))
}

/// Holds room for `size` bytes against the largest file size, the quota of the
/// home's owner (the uploader's own, or the sharer's) and the disk's free space,
/// before any byte moves.
fn reserve(
    cx: &CommandContext,
    home: &Home,
    real: &VirtualPath,
    owner: Option<&Username>,
    size: u64,
) -> Result<Reservation, LimitError> {
    let replaced = home
        .stat(real)
        .ok()
        .filter(|entry| entry.kind == EntryKind::File)
        .map(|entry| entry.size);
    let owner = owner.unwrap_or(&cx.account.name);
    cx.ctx.usage.reserve(owner, home, size, replaced)
}

/// Logs a STOR refused by a limit and makes its reply.
fn refuse(
    cx: &CommandContext,
    path: &VirtualPath,
    owner: Option<&Username>,
    error: &LimitError,
) -> Reply {
    let (code, message) = match error {
        LimitError::Store(store) => store_error_reply(store),
        other => (other.code(), other.to_string()),
    };
    let outcome = if code == ErrorCode::INTERNAL {
        AuditOutcome::Failed
    } else {
        AuditOutcome::Denied
    };
    let mut event = cx
        .event(EventKind::Store, outcome)
        .path(path)
        .reason(Reason::from(error));
    if let Some(owner) = owner {
        event = event.owner(owner);
    }
    cx.record(&event);
    Reply::error(code, message)
}

/// Whether `path` exists, for a client whose share lacks read: checked with the
/// rights it does have, so nothing is revealed to a client with no right at all.
fn exists_for_upload(cx: &CommandContext, path: &VirtualPath) -> Option<bool> {
    for access in [Access::Write, Access::Create] {
        if let Ok(Target::Home {
            home, path: real, ..
        }) = cx.target(path, access)
        {
            return Some(home.stat(&real).is_ok());
        }
    }
    None
}
