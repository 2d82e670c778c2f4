//! RETR, the first half: find the file, check the read right, open it. The data
//! moves afterwards, in [`crate::connection`], while other commands go on.

use std::fs::File;
use std::sync::Arc;

use sfs_proto::control::{ErrorCode, Reply};

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
}

pub(super) fn run(cx: &CommandContext, text: &str, offset: u64) -> Result<CommandResult, Reply> {
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
    }))
}
