//! SHWM: the shares other users granted the caller.

use sfs_proto::control::Reply;

use super::common::share_listing;
use super::{CommandContext, CommandResult};
use crate::shares::ShareDb;

pub(super) fn run(cx: &CommandContext) -> Result<CommandResult, Reply> {
    share_listing(cx, ShareDb::shared_with)
}
