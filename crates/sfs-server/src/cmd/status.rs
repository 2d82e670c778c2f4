//! STATUS: who is logged in, where, and how many transfers are open, from the
//! session's own state.

use sfs_proto::control::Reply;

use super::{CommandContext, CommandResult};

pub(super) fn run(cx: &CommandContext) -> Result<CommandResult, Reply> {
    Ok(CommandResult::reply(Reply::ServerStatus {
        user: cx.account.name.to_string(),
        cwd: cx.cwd.to_string(),
        admin: cx.account.is_admin(),
        transfers: u32::try_from(cx.open_transfers).unwrap_or(u32::MAX),
    }))
}
