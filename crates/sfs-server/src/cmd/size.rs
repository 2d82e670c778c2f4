//! SIZE: the length of one file.

use sfs_proto::control::Reply;

use super::common::Target;
use super::{CommandContext, CommandResult};
use crate::audit::EventKind;
use crate::shares::Access;
use crate::store::StoreError;

pub(super) fn run(cx: &CommandContext, text: &str) -> Result<CommandResult, Reply> {
    let kind = EventKind::Stat;
    let path = cx.parse_or_reply(kind, text)?;
    match cx.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
            ..
        }) => match home.size(&real) {
            Ok(size) => {
                cx.ok(kind, &path, owner.as_ref());
                Ok(CommandResult::reply(Reply::Size { size }))
            }
            Err(error) => Err(cx.fail(kind, Some(&path), owner.as_ref(), &error.into())),
        },
        Ok(Target::SharedRoot | Target::Listing { .. }) => {
            Err(cx.fail(kind, Some(&path), None, &StoreError::IsADirectory.into()))
        }
        Err(error) => Err(cx.fail(kind, Some(&path), None, &error)),
    }
}
