//! SHAR: grant another user rights on an item of the caller's own home.

use sfs_proto::control::{ErrorCode, Reply, Rights};

use super::common::{fail_with_grantee, own_item};
use super::{CommandContext, CommandResult};
use crate::accounts::Username;
use crate::audit::{AuditOutcome, EventKind};
use crate::shares::ShareError;
use crate::store::VirtualPath;

pub(super) fn run(
    cx: &CommandContext,
    text: &str,
    user: &str,
    rights: Rights,
) -> Result<CommandResult, Reply> {
    let kind = EventKind::Share;
    let path = own_item(cx, kind, text)?;
    let grantee = grantee(cx, kind, &path, user)?;
    let home = cx
        .ctx
        .store
        .home(&cx.account.name)
        .map_err(|error| cx.fail(kind, Some(&path), None, &error.into()))?;
    if let Err(error) = home.stat(&path) {
        return Err(cx.fail(kind, Some(&path), None, &error.into()));
    }
    let users = match cx.ctx.accounts.users() {
        Ok(users) => users,
        Err(error) => {
            cx.record(
                &cx.event(kind, AuditOutcome::Failed)
                    .path(&path)
                    .reason(&error),
            );
            return Err(Reply::error(ErrorCode::INTERNAL, "internal error"));
        }
    };
    let owner = cx.account.name.clone();
    match cx
        .ctx
        .shares
        .update(|db| db.grant(&owner, &path, &grantee, rights, &users))
    {
        Ok(()) => {
            cx.record(
                &cx.event(kind, AuditOutcome::Ok)
                    .path(&path)
                    .grantee(&grantee)
                    .rights(rights),
            );
            Ok(CommandResult::reply(Reply::Ok))
        }
        Err(error) => Err(fail_with_grantee(cx, kind, &path, &grantee, error)),
    }
}

fn grantee(
    cx: &CommandContext,
    kind: EventKind,
    path: &VirtualPath,
    text: &str,
) -> Result<Username, Reply> {
    Username::parse(text)
        .map_err(|_| cx.fail(kind, Some(path), None, &ShareError::NoSuchUser.into()))
}
