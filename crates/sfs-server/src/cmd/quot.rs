//! QUOT (`df`, `quota` in the client): the caller's storage use and limits.
//!
//! Use is what the caller's home holds now (walked from the file system, so it
//! includes what others uploaded into the caller's shares), plus what the
//! caller's uploads in progress have reserved.

use sfs_proto::control::Reply;

use super::common::store_error_reply;
use super::{CommandContext, CommandResult};

pub(super) fn run(cx: &CommandContext) -> Result<CommandResult, Reply> {
    let owner = &cx.account.name;
    let report = cx
        .ctx
        .store
        .home(owner)
        .and_then(|home| cx.ctx.usage.report(owner, &home))
        .map_err(|error| {
            let (code, message) = store_error_reply(&error);
            if code == sfs_proto::control::ErrorCode::INTERNAL {
                log::error!("QUOT for {owner}: {error}");
            }
            Reply::error(code, message)
        })?;
    Ok(CommandResult::reply(report.reply()))
}
