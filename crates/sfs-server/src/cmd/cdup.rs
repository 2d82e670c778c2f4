//! CDUP: up one folder (the root stays the root). Like PWD it needs no file
//! system: a parent of a folder the session could enter is a folder too.

use sfs_proto::control::Reply;

use super::{CommandContext, CommandResult};

pub(super) fn run(cx: &CommandContext) -> Result<CommandResult, Reply> {
    let cwd = cx.cwd.parent().unwrap_or_default();
    Ok(CommandResult::Replies {
        replies: vec![Reply::Path {
            path: cwd.to_string(),
        }],
        cwd: Some(cwd),
    })
}
