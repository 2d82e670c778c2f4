//! UNSH: revoke a share of an item of the caller's own home.

use sfs_proto::control::Reply;

use super::common::{fail_with_grantee, own_item};
use super::{CommandContext, CommandResult};
use crate::accounts::Username;
use crate::audit::{AuditOutcome, EventKind};
use crate::shares::ShareError;

pub(super) fn run(cx: &CommandContext, text: &str, user: &str) -> Result<CommandResult, Reply> {
    let kind = EventKind::Unshare;
    let path = own_item(cx, kind, text)?;
    let grantee = Username::parse(user)
        .map_err(|_| cx.fail(kind, Some(&path), None, &ShareError::NoSuchShare.into()))?;
    let owner = cx.account.name.clone();
    match cx
        .ctx
        .shares
        .update(|db| db.revoke(&owner, &path, &grantee))
    {
        Ok(_) => {
            cx.record(
                &cx.event(kind, AuditOutcome::Ok)
                    .path(&path)
                    .grantee(&grantee),
            );
            Ok(CommandResult::reply(Reply::Ok))
        }
        Err(error) => Err(fail_with_grantee(cx, kind, &path, &grantee, error)),
    }
}
