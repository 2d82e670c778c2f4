//! PWD: the working folder, from the session's own state (no file system, no log
//! line).

use sfs_proto::control::Reply;

use super::{CommandContext, CommandResult};

pub(super) fn run(cx: &CommandContext) -> Result<CommandResult, Reply> {
    Ok(CommandResult::reply(Reply::Path {
        path: cx.cwd.to_string(),
    }))
}
