//! NOOP: nothing but an `Ok`. Its only effect is the one every request has, it
//! resets the session's idle timer, which is why an idle client sends it. Not
//! written to `server.log`: a keepalive every few seconds would drown the events
//! that matter.

use sfs_proto::control::Reply;

use super::CommandResult;

pub(super) fn run() -> Result<CommandResult, Reply> {
    Ok(CommandResult::reply(Reply::Ok))
}
