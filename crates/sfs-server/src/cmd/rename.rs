//! RENAME: move a file or folder within one home. Needs delete on the source and
//! create on the target; in another user's home these come only from a share (or
//! from being an admin, see [`crate::shares`]).

use sfs_proto::control::{ErrorCode, Reply};

use super::common::{error_reply, Target};
use super::{CommandContext, CommandResult};
use crate::audit::{AuditOutcome, EventKind};
use crate::shares::{Access, AccessError, ShareError};

pub(super) fn run(
    cx: &CommandContext,
    from_text: &str,
    to_text: &str,
) -> Result<CommandResult, Reply> {
    let kind = EventKind::Rename;
    let from = cx.parse_or_reply(kind, from_text)?;
    let to = cx.parse_or_reply(kind, to_text)?;
    let source = cx.target(&from, Access::Delete);
    let target = cx.target(&to, Access::Create);
    let (source, target) = match (source, target) {
        (Ok(source @ Target::Home { .. }), Ok(target @ Target::Home { .. })) => (source, target),
        (Err(error), _) => return Err(cx.fail(kind, Some(&from), None, &error)),
        (_, Err(error)) => return Err(cx.fail(kind, Some(&to), None, &error)),
        _ => return Err(cx.fail(kind, Some(&from), None, &ShareError::ReadOnly.into())),
    };
    let (
        Target::Home {
            home: from_home,
            path: real_from,
            full: full_from,
            owner,
        },
        Target::Home {
            home: to_home,
            path: real_to,
            full: full_to,
            owner: to_owner,
        },
    ) = (source, target)
    else {
        unreachable!("both matched Target::Home above");
    };
    if owner != to_owner {
        let mut event = cx
            .event(kind, AuditOutcome::Denied)
            .path(&from)
            .target(&to)
            .reason("rename across homes");
        if let Some(owner) = &owner {
            event = event.owner(owner);
        }
        cx.record(&event);
        return Err(Reply::error(
            ErrorCode::PERMISSION_DENIED,
            "cannot move between different users' folders",
        ));
    }
    // Both names must be reached through one confined handle: the source's (its
    // share grants delete) if the target lies beneath it, else the target's.
    let confined = match (from_home.relative(&full_to), to_home.relative(&full_from)) {
        (Some(to_in_source), _) => Some((&from_home, real_from.clone(), to_in_source)),
        (None, Some(from_in_target)) => Some((&to_home, from_in_target, real_to.clone())),
        (None, None) => None,
    };
    let renamed = match confined {
        Some((home, from_rel, to_rel)) => home.rename(&from_rel, &to_rel),
        None => Err(crate::store::StoreError::Denied),
    };
    let mut event = match renamed {
        Ok(()) => cx.event(kind, AuditOutcome::Ok),
        Err(error) => {
            let error = AccessError::from(error);
            let (code, message) = error_reply(&error);
            let outcome = if code == ErrorCode::INTERNAL {
                AuditOutcome::Failed
            } else {
                AuditOutcome::Denied
            };
            let mut event = cx
                .event(kind, outcome)
                .path(&from)
                .target(&to)
                .reason(&error);
            if let Some(owner) = &owner {
                event = event.owner(owner);
            }
            cx.record(&event);
            return Err(Reply::error(code, message));
        }
    };
    event = event.path(&from).target(&to);
    if let Some(owner) = &owner {
        event = event.owner(owner);
    }
    cx.record(&event);
    Ok(CommandResult::reply(Reply::Ok))
}
