//! STAT: the entry of one file or folder, under the name the client knows.

use sfs_proto::control::Reply;

use super::common::{synthesized_dir, wire_entry, Target};
use super::{CommandContext, CommandResult};
use crate::audit::EventKind;
use crate::shares::Access;

pub(super) fn run(cx: &CommandContext, text: &str) -> Result<CommandResult, Reply> {
    let kind = EventKind::Stat;
    let path = cx.parse_or_reply(kind, text)?;
    let entry = match cx.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
            ..
        }) => match home.stat(&real) {
            Ok(entry) => {
                cx.ok(kind, &path, owner.as_ref());
                let mut entry = wire_entry(&entry);
                // The name the client knows, not the owner's.
                entry.name = path.file_name().unwrap_or("/").to_owned();
                entry
            }
            Err(error) => return Err(cx.fail(kind, Some(&path), owner.as_ref(), &error.into())),
        },
        Ok(Target::SharedRoot | Target::Listing { .. }) => {
            cx.ok(kind, &path, None);
            synthesized_dir(path.file_name().unwrap_or("/"))
        }
        Err(error) => return Err(cx.fail(kind, Some(&path), None, &error)),
    };
    Ok(CommandResult::reply(Reply::Stat { entry }))
}
