//! RETR, the first half: find the file, check the read right, open it. The data
//! moves afterwards, in [`crate::connection`], while other commands go on.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use sfs_proto::control::{ErrorCode, Reply};
use sfs_proto::digest::Sha256;

use super::common::Target;
use super::{CommandContext, CommandResult};
use crate::accounts::Username;
use crate::audit::{AuditOutcome, EventKind};
use crate::shares::Access;
use crate::store::{StoreError, VirtualPath};

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
    /// REGET: the hash state of the file's first `offset` bytes, read from
    /// `file`, which the transfer's End digest continues. A plain RETR hashes
    /// only what it sends.
    pub prefix: Sha256,
}

pub(super) fn run(cx: &CommandContext, text: &str, offset: u64) -> Result<CommandResult, Reply> {
    open(cx, text, offset, None)
}

/// REGET: RETR from `offset` once the file's first `offset` bytes, hashed from
/// the descriptor the rest is then read from (an upload replaces a file by
/// rename, so one descriptor is one version), have the SHA-256 `prefix`.
pub(super) fn resume(
    cx: &CommandContext,
    text: &str,
    offset: u64,
    prefix: &[u8; 32],
) -> Result<CommandResult, Reply> {
    open(cx, text, offset, Some(prefix))
}

fn open(
    cx: &CommandContext,
    text: &str,
    offset: u64,
    expected: Option<&[u8; 32]>,
) -> Result<CommandResult, Reply> {
    cx.check_transfer_slot()?;
    let kind = EventKind::Retrieve;
    let path = cx.parse_or_reply(kind, text)?;
    let (home, real, owner) = match cx.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
            ..
        }) => (home, real, owner),
        Ok(_) => return Err(cx.fail(kind, Some(&path), None, &StoreError::IsADirectory.into())),
        Err(error) => return Err(cx.fail(kind, Some(&path), None, &error)),
    };
    let opened = home.open_read(&real).and_then(|file| {
        let length = file.metadata().map_err(StoreError::from)?.len();
        Ok((file, length))
    });
    let (file, length) = match opened {
        Ok(opened) => opened,
        Err(error) => return Err(cx.fail(kind, Some(&path), owner.as_ref(), &error.into())),
    };
    let mut prefix = Sha256::new();
    if let Some(expected) = expected {
        let matches = offset <= length
            && match hash_prefix(&file, offset) {
                Ok(state) => {
                    let same = state.clone().finalize().as_slice() == expected.as_slice();
                    prefix = state;
                    same
                }
                Err(error) => {
                    return Err(cx.fail(
                        kind,
                        Some(&path),
                        owner.as_ref(),
                        &StoreError::from(error).into(),
                    ))
                }
            };
        if !matches {
            let mut event = cx
                .event(kind, AuditOutcome::Denied)
                .path(&path)
                .reason("the file changed since the partial download");
            if let Some(owner) = &owner {
                event = event.owner(owner);
            }
            cx.record(&event);
            return Err(Reply::error(
                ErrorCode::RESUME_MISMATCH,
                "the remote file changed since the partial download \
                 (its first bytes differ, or it is shorter)",
            ));
        }
    }
    if offset > length {
        let mut event = cx
            .event(kind, AuditOutcome::Denied)
            .path(&path)
            .reason("resume offset beyond the end of the file");
        if let Some(owner) = &owner {
            event = event.owner(owner);
        }
        cx.record(&event);
        return Err(Reply::error(
            ErrorCode::BAD_REQUEST,
            format!("offset {offset} is beyond the end of the file ({length} bytes)"),
        ));
    }
    Ok(CommandResult::Retr(Download {
        file: Arc::new(file),
        length,
        offset,
        path,
        owner,
        prefix,
    }))
}

/// The SHA-256 state of the first `length` bytes of `file`, read with `pread`.
fn hash_prefix(file: &File, length: u64) -> io::Result<Sha256> {
    const BLOCK: usize = 256 * 1024;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; BLOCK];
    let mut at = 0u64;
    while at < length {
        let want = usize::try_from(length - at).map_or(BLOCK, |left| left.min(BLOCK));
        let read = file.read_at(&mut buffer[..want], at)?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        hasher.update(&buffer[..read]);
        at += read as u64;
    }
    Ok(hasher)
}
