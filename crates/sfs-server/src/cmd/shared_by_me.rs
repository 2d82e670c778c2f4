//! The "shared by me" listing: the shares the caller granted.

use sfs_proto::control::Reply;

use super::common::share_listing;
use super::{CommandContext, CommandResult};
use crate::shares::ShareDb;

pub(super) fn run(cx: &CommandContext) -> Result<CommandResult, Reply> {
    share_listing(cx, ShareDb::shared_by)
}
