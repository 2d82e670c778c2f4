//! RETR and STOR, the first half: find the file, check the right, open it (RETR)
//! or start the temporary upload file (STOR). The data moves afterwards, in
//! [`crate::connection`], while other commands go on.

use std::fs::File;
use std::sync::Arc;

use sfs_proto::control::{ErrorCode, Reply};

use super::{Job, Outcome, Target};
use crate::accounts::Username;
use crate::audit::{EventKind, Outcome as LogOutcome};
use crate::shares::{Access, ShareError};
use crate::store::{EntryKind, StoreError, Upload, VirtualPath};

/// A file opened for RETR.
#[derive(Debug)]
pub(crate) struct Download {
    /// The open file, read with `pread` so that reads need no shared cursor.
    pub file: Arc<File>,
    /// Its length when opened.
    pub length: u64,
    /// Where to start.
    pub offset: u64,
    /// The path as the client named it (for the log).
    pub path: VirtualPath,
    /// The home's owner when it is not the client's.
    pub owner: Option<Username>,
}

/// A STOR ready to receive.
#[derive(Debug)]
pub(crate) struct UploadTarget {
    /// The temporary file beside the target.
    pub upload: Upload,
    /// The announced size.
    pub size: u64,
    /// The path as the client named it (for the log).
    pub path: VirtualPath,
    /// The home's owner when it is not the client's.
    pub owner: Option<Username>,
}

pub(super) fn retr(job: &Job, text: &str, offset: u64) -> Result<Outcome, Reply> {
    let kind = EventKind::Retrieve;
    let path = job.parse_or_reply(kind, text)?;
    let (home, real, owner) = match job.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
        }) => (home, real, owner),
        Ok(_) => return Err(job.fail(kind, Some(&path), None, &StoreError::IsADirectory.into())),
        Err(error) => return Err(job.fail(kind, Some(&path), None, &error)),
    };
    let opened = home.open_read(&real).and_then(|file| {
        let length = file.metadata().map_err(StoreError::from)?.len();
        Ok((file, length))
    });
    let (file, length) = match opened {
        Ok(opened) => opened,
        Err(error) => return Err(job.fail(kind, Some(&path), owner.as_ref(), &error.into())),
    };
    if offset > length {
        let mut event = job
            .event(kind, LogOutcome::Denied)
            .path(&path)
            .reason("resume offset beyond the end of the file");
        if let Some(owner) = &owner {
            event = event.owner(owner);
        }
        job.record(&event);
        return Err(Reply::error(
            ErrorCode::BAD_REQUEST,
            format!("offset {offset} is beyond the end of the file ({length} bytes)"),
        ));
    }
    Ok(Outcome::Retr(Download {
        file: Arc::new(file),
        length,
        offset,
        path,
        owner,
    }))
}

pub(super) fn stor(job: &Job, text: &str, size: u64) -> Result<Outcome, Reply> {
    let kind = EventKind::Store;
    let path = job.parse_or_reply(kind, text)?;
    // Replacing a file needs write; making a new one needs create. Ask the share
    // tree about reading first only to learn where the file is.
    let located = match job.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
        }) => Some((home, real, owner)),
        Ok(_) => None,
        // No read right is fine as long as the needed right is there (checked next).
        Err(_) => None,
    };
    let access = match &located {
        Some((home, real, owner)) => match home.stat(real) {
            Ok(entry) if entry.kind == EntryKind::Directory => {
                return Err(job.fail(
                    kind,
                    Some(&path),
                    owner.as_ref(),
                    &StoreError::IsADirectory.into(),
                ))
            }
            Ok(_) => Access::Write,
            Err(StoreError::NotFound) => Access::Create,
            Err(error) => return Err(job.fail(kind, Some(&path), owner.as_ref(), &error.into())),
        },
        None => {
            // Write-only or create-only shares: does the file exist?
            match exists_for_upload(job, &path) {
                Some(true) => Access::Write,
                _ => Access::Create,
            }
        }
    };
    let (home, real, owner) = match job.target(&path, access) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
        }) => (home, real, owner),
        Ok(_) => return Err(job.fail(kind, Some(&path), None, &ShareError::ReadOnly.into())),
        Err(error) => return Err(job.fail(kind, Some(&path), None, &error)),
    };
    match home.begin_upload(&real) {
        Ok(upload) => Ok(Outcome::Stor(UploadTarget {
            upload,
            size,
            path,
            owner,
        })),
        Err(error) => Err(job.fail(kind, Some(&path), owner.as_ref(), &error.into())),
    }
}

/// Whether `path` exists, for a client whose share lacks read: checked with the
/// rights it does have, so nothing is revealed to a client with no right at all.
fn exists_for_upload(job: &Job, path: &VirtualPath) -> Option<bool> {
    for access in [Access::Write, Access::Create] {
        if let Ok(Target::Home {
            home, path: real, ..
        }) = job.target(path, access)
        {
            return Some(home.stat(&real).is_ok());
        }
    }
    None
}
