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
    let (home, real_from, owner, real_to, to_owner) = match (source, target) {
        (
            Ok(Target::Home {
                home,
                path: real_from,
                owner,
            }),
            Ok(Target::Home {
                path: real_to,
                owner: to_owner,
                ..
            }),
        ) => (home, real_from, owner, real_to, to_owner),
        (Err(error), _) => return Err(cx.fail(kind, Some(&from), None, &error)),
        (_, Err(error)) => return Err(cx.fail(kind, Some(&to), None, &error)),
        _ => return Err(cx.fail(kind, Some(&from), None, &ShareError::ReadOnly.into())),
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
    let mut event = match home.rename(&real_from, &real_to) {
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
