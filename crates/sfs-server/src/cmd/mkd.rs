//! MKD: make a folder. Needs the create right where it goes.
//!
//! In another user's home rights come only from a share (or from being an
//! admin, see [`crate::shares`]).

use sfs_proto::control::Reply;

use super::common::change_one;
use super::{CommandContext, CommandResult};
use crate::audit::EventKind;
use crate::shares::Access;
use crate::store::Home;

pub(super) fn run(cx: &CommandContext, text: &str) -> Result<CommandResult, Reply> {
    change_one(cx, EventKind::MakeDir, text, Access::Create, Home::mkdir)
}
