//! CWD: changing the working folder, to one of the caller's folders, a shared
//! folder, or a folder of the share tree itself.

use sfs_proto::control::Reply;

use super::common::Target;
use super::{CommandContext, CommandResult};
use crate::audit::EventKind;
use crate::shares::Access;
use crate::store::{EntryKind, StoreError};

pub(super) fn run(cx: &CommandContext, text: &str) -> Result<CommandResult, Reply> {
    let kind = EventKind::ChangeDir;
    let path = cx.parse_or_reply(kind, text)?;
    match cx.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
            ..
        }) => match home.stat(&real) {
            Ok(entry) if entry.kind == EntryKind::Dir => cx.ok(kind, &path, owner.as_ref()),
            Ok(_) => {
                let error = StoreError::NotADirectory.into();
                return Err(cx.fail(kind, Some(&path), owner.as_ref(), &error));
            }
            Err(error) => return Err(cx.fail(kind, Some(&path), owner.as_ref(), &error.into())),
        },
        Ok(Target::SharedRoot | Target::Listing { .. }) => cx.ok(kind, &path, None),
        Err(error) => return Err(cx.fail(kind, Some(&path), None, &error)),
    }
    Ok(CommandResult::Replies {
        replies: vec![Reply::Path {
            path: path.to_string(),
        }],
        cwd: Some(path),
    })
}
