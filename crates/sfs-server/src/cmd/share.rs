//! SHAR, UNSH, SHWM and the "shared by me" listing.

use sfs_proto::control::{ErrorCode, Reply, Rights, ShareEntry};

use super::{in_parts, Job, Outcome};
use crate::accounts::Username;
use crate::audit::{EventKind, Outcome as LogOutcome};
use crate::shares::{AccessError, Resolved, Share, ShareDb, ShareError};
use crate::store::VirtualPath;

/// Fixed bytes of one encoded share besides its strings.
const SHARE_OVERHEAD: usize = 2 + 2 + 2 + 1;

/// The item to share: only something in the caller's own home.
fn own_item(job: &Job, kind: EventKind, text: &str) -> Result<VirtualPath, Reply> {
    let path = job.parse_or_reply(kind, text)?;
    match job.ctx.shares.with(|db| db.resolve(&job.account, &path)) {
        Resolved::Own(path) => Ok(path),
        _ => Err(job.fail(kind, Some(&path), None, &ShareError::BadTarget.into())),
    }
}

fn grantee(job: &Job, kind: EventKind, path: &VirtualPath, text: &str) -> Result<Username, Reply> {
    Username::parse(text)
        .map_err(|_| job.fail(kind, Some(path), None, &ShareError::NoSuchUser.into()))
}

pub(super) fn share(job: &Job, text: &str, user: &str, rights: Rights) -> Result<Outcome, Reply> {
    let kind = EventKind::Share;
    let path = own_item(job, kind, text)?;
    let grantee = grantee(job, kind, &path, user)?;
    let home = job
        .ctx
        .store
        .home(&job.account.name)
        .map_err(|error| job.fail(kind, Some(&path), None, &error.into()))?;
    if let Err(error) = home.stat(&path) {
        return Err(job.fail(kind, Some(&path), None, &error.into()));
    }
    let users = match job.ctx.accounts.file().load() {
        Ok(users) => users,
        Err(error) => {
            job.record(
                &job.event(kind, LogOutcome::Failed)
                    .path(&path)
                    .reason(&error),
            );
            return Err(Reply::error(ErrorCode::INTERNAL, "internal error"));
        }
    };
    let owner = job.account.name.clone();
    match job
        .ctx
        .shares
        .update(|db| db.grant(&owner, &path, &grantee, rights, &users))
    {
        Ok(()) => {
            job.record(
                &job.event(kind, LogOutcome::Ok)
                    .path(&path)
                    .grantee(&grantee)
                    .rights(rights),
            );
            Ok(Outcome::reply(Reply::Ok))
        }
        Err(error) => Err(fail_with_grantee(job, kind, &path, &grantee, error)),
    }
}

pub(super) fn unshare(job: &Job, text: &str, user: &str) -> Result<Outcome, Reply> {
    let kind = EventKind::Unshare;
    let path = own_item(job, kind, text)?;
    let grantee = Username::parse(user)
        .map_err(|_| job.fail(kind, Some(&path), None, &ShareError::NoSuchShare.into()))?;
    let owner = job.account.name.clone();
    match job
        .ctx
        .shares
        .update(|db| db.revoke(&owner, &path, &grantee))
    {
        Ok(_) => {
            job.record(
                &job.event(kind, LogOutcome::Ok)
                    .path(&path)
                    .grantee(&grantee),
            );
            Ok(Outcome::reply(Reply::Ok))
        }
        Err(error) => Err(fail_with_grantee(job, kind, &path, &grantee, error)),
    }
}

fn fail_with_grantee(
    job: &Job,
    kind: EventKind,
    path: &VirtualPath,
    grantee: &Username,
    error: ShareError,
) -> Reply {
    let error = AccessError::from(error);
    let (code, message) = super::error_reply(&error);
    let outcome = if code == ErrorCode::INTERNAL {
        LogOutcome::Failed
    } else {
        LogOutcome::Denied
    };
    job.record(
        &job.event(kind, outcome)
            .path(path)
            .grantee(grantee)
            .reason(&error),
    );
    Reply::error(code, message)
}

pub(super) fn shared_with_me(job: &Job) -> Result<Outcome, Reply> {
    share_listing(job, ShareDb::shared_with)
}

pub(super) fn shared_by_me(job: &Job) -> Result<Outcome, Reply> {
    share_listing(job, ShareDb::shared_by)
}

/// The shares `select` picks for the logged-in user, as `Shares` replies.
fn share_listing(
    job: &Job,
    select: impl for<'db> Fn(&'db ShareDb, &Username) -> Vec<&'db Share>,
) -> Result<Outcome, Reply> {
    let shares: Vec<Share> = job
        .ctx
        .shares
        .with(|db| select(db, &job.account.name).into_iter().cloned().collect());
    job.record(&job.event(EventKind::ListShares, LogOutcome::Ok));
    Ok(Outcome::Replies {
        replies: share_parts(&shares),
        cwd: None,
    })
}

/// Splits shares into `Shares` replies, all but the last with `more` set.
fn share_parts(shares: &[Share]) -> Vec<Reply> {
    let entries = shares.iter().map(|share| ShareEntry {
        owner: share.owner.to_string(),
        path: share.path.to_string(),
        grantee: share.grantee.to_string(),
        rights: share.rights,
    });
    in_parts(
        entries,
        |entry| SHARE_OVERHEAD + entry.owner.len() + entry.path.len() + entry.grantee.len(),
        |entries, more| Reply::Shares { entries, more },
    )
}
