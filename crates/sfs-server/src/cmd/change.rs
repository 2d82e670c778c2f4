//! MKD, RMD, DELE and rename: the commands that change a folder.
//!
//! Rights: MKD needs create, RMD and DELE need delete, a rename needs delete on the
//! source and create on the target, both in the same home. In another user's home
//! these come only from a share (or from being an admin, see [`crate::shares`]).

use sfs_proto::control::{ErrorCode, Reply};

use super::{Job, Outcome, Target};
use crate::audit::EventKind;
use crate::shares::{Access, AccessError};
use crate::store::{Home, StoreError, VirtualPath};

/// Runs `op` on the home `text` resolves to, after checking `access`.
fn change(
    job: &Job,
    kind: EventKind,
    text: &str,
    access: Access,
    op: impl FnOnce(&Home, &VirtualPath) -> Result<(), StoreError>,
) -> Result<Outcome, Reply> {
    let path = job.parse_or_reply(kind, text)?;
    match job.target(&path, access) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
        }) => match op(&home, &real) {
            Ok(()) => {
                job.ok(kind, &path, owner.as_ref());
                Ok(Outcome::reply(Reply::Ok))
            }
            Err(error) => Err(job.fail(kind, Some(&path), owner.as_ref(), &error.into())),
        },
        Ok(Target::SharedRoot | Target::Listing { .. }) => Err(job.fail(
            kind,
            Some(&path),
            None,
            &crate::shares::ShareError::ReadOnly.into(),
        )),
        Err(error) => Err(job.fail(kind, Some(&path), None, &error)),
    }
}

pub(super) fn mkdir(job: &Job, text: &str) -> Result<Outcome, Reply> {
    change(job, EventKind::MakeDir, text, Access::Create, Home::mkdir)
}

pub(super) fn rmdir(job: &Job, text: &str) -> Result<Outcome, Reply> {
    change(job, EventKind::RemoveDir, text, Access::Delete, Home::rmdir)
}

pub(super) fn delete(job: &Job, text: &str) -> Result<Outcome, Reply> {
    change(job, EventKind::Delete, text, Access::Delete, Home::delete)
}

pub(super) fn rename(job: &Job, from_text: &str, to_text: &str) -> Result<Outcome, Reply> {
    let kind = EventKind::Rename;
    let from = job.parse_or_reply(kind, from_text)?;
    let to = job.parse_or_reply(kind, to_text)?;
    let source = job.target(&from, Access::Delete);
    let target = job.target(&to, Access::Create);
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
        (Err(error), _) => return Err(job.fail(kind, Some(&from), None, &error)),
        (_, Err(error)) => return Err(job.fail(kind, Some(&to), None, &error)),
        _ => {
            return Err(job.fail(
                kind,
                Some(&from),
                None,
                &crate::shares::ShareError::ReadOnly.into(),
            ))
        }
    };
    if owner != to_owner {
        let mut event = job
            .event(kind, crate::audit::Outcome::Denied)
            .path(&from)
            .target(&to)
            .reason("rename across homes");
        if let Some(owner) = &owner {
            event = event.owner(owner);
        }
        job.record(&event);
        return Err(Reply::error(
            ErrorCode::PERMISSION_DENIED,
            "cannot move between different users' folders",
        ));
    }
    let mut event = match home.rename(&real_from, &real_to) {
        Ok(()) => job.event(kind, crate::audit::Outcome::Ok),
        Err(error) => {
            let error = AccessError::from(error);
            let (code, message) = super::error_reply(&error);
            let outcome = if code == ErrorCode::INTERNAL {
                crate::audit::Outcome::Failed
            } else {
                crate::audit::Outcome::Denied
            };
            let mut event = job
                .event(kind, outcome)
                .path(&from)
                .target(&to)
                .reason(&error);
            if let Some(owner) = &owner {
                event = event.owner(owner);
            }
            job.record(&event);
            return Err(Reply::error(code, message));
        }
    };
    event = event.path(&from).target(&to);
    if let Some(owner) = &owner {
        event = event.owner(owner);
    }
    job.record(&event);
    Ok(Outcome::reply(Reply::Ok))
}
