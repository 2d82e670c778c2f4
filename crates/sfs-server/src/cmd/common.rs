//! What several commands share: resolving a client's path through the share tree,
//! logging, mapping errors to replies, listing entries.

use std::time::UNIX_EPOCH;

use sfs_proto::control::{EntryKind as WireKind, ErrorCode, Reply, ShareEntry};

use super::{CommandContext, CommandResult, PartStream};
use crate::accounts::Username;
use crate::audit::{AuditEvent, AuditOutcome, EventKind, Reason};
use crate::context::ServerContext;
use crate::shares::{Access, AccessError, Resolved, Share, ShareDb, ShareError};
use crate::store::{CommitMode, Entry, Home, PathError, StoreError, Upload, VirtualPath};

/// Where a resolved path lives.
pub(crate) enum Target {
    /// A real file or folder: in the caller's home (`owner` None) or another's.
    Home {
        /// The home, or for a shared item the part of it the share confines to.
        home: Home,
        /// The path relative to `home`.
        path: VirtualPath,
        /// The path in the owner's home.
        full: VirtualPath,
        owner: Option<Username>,
    },
    /// `/shared` itself.
    SharedRoot,
    /// A synthesized folder above shared items.
    Listing {
        owner: Username,
        /// The folder's path in the owner's home.
        path: VirtualPath,
        /// The next names towards shared items.
        children: Vec<String>,
    },
}

impl CommandContext {
    /// The client's path text, against the working folder.
    pub(super) fn parse(&self, text: &str) -> Result<VirtualPath, PathError> {
        self.cwd.join(text)
    }

    /// Refuses a new transfer (RETR, STOR) while the session has as many open as
    /// the server allows. Not logged: nothing was touched.
    pub(super) fn check_transfer_slot(&self) -> Result<(), Reply> {
        if self.open_transfers >= self.ctx.settings.max_transfers {
            return Err(Reply::error(
                ErrorCode::BUSY,
                "too many transfers in flight",
            ));
        }
        Ok(())
    }

    /// Maps `path` through the share tree and checks `access` there. A shared
    /// item's home handle is confined beneath the share that grants `access`
    /// ([`Home::confined`]), so links inside it cannot reach the owner's other
    /// files.
    pub(super) fn target(&self, path: &VirtualPath, access: Access) -> Result<Target, AccessError> {
        let resolved = self.ctx.shares.with(|db| db.resolve(&self.account, path));
        resolved.check(access)?;
        Ok(match resolved {
            Resolved::Own(path) => Target::Home {
                home: self.ctx.store.home(&self.account.name)?,
                full: path.clone(),
                path,
                owner: None,
            },
            Resolved::Shared { owner, path, .. } => {
                let root = self
                    .ctx
                    .shares
                    .with(|db| db.confinement(&self.account, &owner, &path, access))
                    .ok_or(ShareError::Denied(access))?;
                // A grantee's delete right covers what lies beneath the shared
                // item; the item itself is its owner's to delete or move away.
                if access == Access::Delete && path == root {
                    return Err(ShareError::SharedItemItself.into());
                }
                let (home, real) = self
                    .ctx
                    .store
                    .existing_home(&owner)?
                    .confined(&root, &path)?;
                Target::Home {
                    home,
                    path: real,
                    full: path,
                    owner: Some(owner),
                }
            }
            Resolved::SharedRoot => Target::SharedRoot,
            Resolved::Listing {
                owner,
                path,
                children,
            } => Target::Listing {
                owner,
                path,
                children,
            },
            // check() refuses NotShared; keep the same answer if it ever did not.
            Resolved::NotShared => return Err(ShareError::NotShared.into()),
        })
    }

    /// An audit event for this session's user and peers.
    pub(super) fn event(&self, kind: EventKind, outcome: AuditOutcome) -> AuditEvent<'_> {
        AuditEvent::new(kind, outcome)
            .user(&self.account.name)
            .peers(&self.peers)
    }

    pub(super) fn record(&self, event: &AuditEvent<'_>) {
        if let Err(error) = self.ctx.audit.record(event) {
            log::error!("cannot write server.log: {error}");
        }
    }

    /// Logs a failed command and turns its error into the reply.
    pub(super) fn fail(
        &self,
        kind: EventKind,
        path: Option<&VirtualPath>,
        owner: Option<&Username>,
        error: &AccessError,
    ) -> Reply {
        let (code, message) = error_reply(error);
        let outcome = if code == ErrorCode::INTERNAL || code == ErrorCode::NO_SPACE {
            AuditOutcome::Failed
        } else {
            AuditOutcome::Denied
        };
        let mut event = self.event(kind, outcome).reason(Reason::from(error));
        if let Some(path) = path {
            event = event.path(path);
        }
        if let Some(owner) = owner {
            event = event.owner(owner);
        }
        self.record(&event);
        Reply::error(code, message)
    }

    /// Logs a success.
    pub(super) fn ok(&self, kind: EventKind, path: &VirtualPath, owner: Option<&Username>) {
        let mut event = self.event(kind, AuditOutcome::Ok).path(path);
        if let Some(owner) = owner {
            event = event.owner(owner);
        }
        self.record(&event);
    }

    /// Parses `text`, or logs the refusal, with the path as it was sent, and
    /// returns the reply.
    pub(super) fn parse_or_reply(&self, kind: EventKind, text: &str) -> Result<VirtualPath, Reply> {
        self.parse(text).map_err(|error| {
            let error = AccessError::from(error);
            let (code, message) = error_reply(&error);
            self.record(
                &self
                    .event(kind, AuditOutcome::Denied)
                    .attempted_path(text)
                    .reason(Reason::from(&error)),
            );
            Reply::error(code, message)
        })
    }
}

/// The code and client-safe text for an error.
pub(crate) fn error_reply(error: &AccessError) -> (ErrorCode, String) {
    match error {
        AccessError::Store(error) => store_error_reply(error),
        AccessError::Share(error) => {
            let code = match error {
                ShareError::BadRights
                | ShareError::NoRights
                | ShareError::SelfShare
                | ShareError::BadTarget => ErrorCode::BAD_REQUEST,
                ShareError::NoSuchUser | ShareError::NoSuchShare | ShareError::NotShared => {
                    ErrorCode::NOT_FOUND
                }
                ShareError::Denied(_) | ShareError::ReadOnly | ShareError::SharedItemItself => {
                    ErrorCode::PERMISSION_DENIED
                }
                // These name the shares file: keep them for the log.
                ShareError::Io { .. } | ShareError::Corrupt { .. } => {
                    return (ErrorCode::INTERNAL, "internal error".into())
                }
            };
            (code, error.to_string())
        }
    }
}

/// The code and client-safe text for a store error.
pub(crate) fn store_error_reply(error: &StoreError) -> (ErrorCode, String) {
    let code = match error {
        StoreError::InvalidPath(_) => ErrorCode::INVALID_PATH,
        StoreError::NotFound => ErrorCode::NOT_FOUND,
        StoreError::AlreadyExists => ErrorCode::ALREADY_EXISTS,
        StoreError::NotADirectory => ErrorCode::NOT_A_DIRECTORY,
        StoreError::IsADirectory => ErrorCode::IS_A_DIRECTORY,
        StoreError::NotRegular | StoreError::Denied | StoreError::RootOperation => {
            ErrorCode::PERMISSION_DENIED
        }
        StoreError::NotEmpty => ErrorCode::NOT_EMPTY,
        StoreError::DigestMismatch => ErrorCode::TRANSFER_FAILED,
        StoreError::NoPartial => ErrorCode::NO_PARTIAL,
        StoreError::ResumeMismatch => ErrorCode::RESUME_MISMATCH,
        StoreError::NoSpace => ErrorCode::NO_SPACE,
        // The OS detail is for the log.
        StoreError::Io(_) => return (ErrorCode::INTERNAL, "internal error".into()),
    };
    (code, error.to_string())
}

/// A store entry as the protocol shows it.
pub(crate) fn wire_entry(entry: &Entry) -> sfs_proto::control::Entry {
    let mtime = entry
        .modified
        .and_then(|t| match t.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_secs()).ok(),
            Err(before) => i64::try_from(before.duration().as_secs()).ok().map(|s| -s),
        })
        .unwrap_or(0);
    sfs_proto::control::Entry {
        name: entry.name.clone(),
        kind: entry.kind,
        size: entry.size,
        mtime,
        mode: entry.mode,
    }
}

/// A folder that exists only in the share tree.
pub(crate) fn synthesized_dir(name: &str) -> sfs_proto::control::Entry {
    sfs_proto::control::Entry {
        name: name.to_owned(),
        kind: WireKind::Dir,
        size: 0,
        mtime: 0,
        mode: 0o500,
    }
}

/// Runs `op` on the home `text` resolves to, after checking `access`: the shape
/// of MKD, RMD and DELE.
pub(super) fn change_one(
    cx: &CommandContext,
    kind: EventKind,
    text: &str,
    access: Access,
    op: impl FnOnce(&Home, &VirtualPath) -> Result<(), StoreError>,
) -> Result<CommandResult, Reply> {
    let path = cx.parse_or_reply(kind, text)?;
    match cx.target(&path, access) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
            ..
        }) => match op(&home, &real) {
            Ok(()) => {
                cx.ok(kind, &path, owner.as_ref());
                Ok(CommandResult::reply(Reply::Ok))
            }
            Err(error) => Err(cx.fail(kind, Some(&path), owner.as_ref(), &error.into())),
        },
        Ok(Target::SharedRoot | Target::Listing { .. }) => {
            Err(cx.fail(kind, Some(&path), None, &ShareError::ReadOnly.into()))
        }
        Err(error) => Err(cx.fail(kind, Some(&path), None, &error)),
    }
}

/// Decides, at the moment an upload is committed, whether `user` may still put
/// it at `path` (the client's path) and how: against the *current* account and
/// share table, not the copies taken when the STOR began. Refused when the
/// account is gone or disabled, when no share grants write or create there any
/// more, or when `path` now names another folder than the one the upload was
/// begun in (the shared folder was renamed or replaced). A create-only right
/// gives [`CommitMode::CreateOnly`], so a file that appeared meanwhile is never
/// replaced.
///
/// Blocking (reads the users file): run it in the commit job.
///
/// # Errors
///
/// [`StoreError::Denied`] for every refusal (the client learns nothing more
/// about what changed), or the store error met while checking.
pub(crate) fn authorize_at_commit(
    ctx: &ServerContext,
    user: &Username,
    path: &VirtualPath,
    upload: &Upload,
) -> Result<CommitMode, StoreError> {
    // The account and shares as they are now: a disable, removal, demotion or
    // unshare since the upload opened counts.
    if let Err(error) = ctx.shares.reload() {
        log::error!("reloading the shares before a commit: {error}");
    }
    let account = ctx
        .account_now(user)
        .map_err(|error| StoreError::Io(std::io::Error::other(error.to_string())))?
        .ok_or(StoreError::Denied)?;
    let resolved = ctx.shares.with(|db| db.resolve(&account, path));
    let (home, real, mode) = match resolved {
        Resolved::Own(real) => (ctx.store.home(&account.name)?, real, CommitMode::Replace),
        Resolved::Shared {
            owner,
            path: inner,
            rights,
        } => {
            let (access, mode) = if rights.contains(Access::Write.right()) {
                (Access::Write, CommitMode::Replace)
            } else if rights.contains(Access::Create.right()) {
                (Access::Create, CommitMode::CreateOnly)
            } else {
                return Err(StoreError::Denied);
            };
            let root = ctx
                .shares
                .with(|db| db.confinement(&account, &owner, &inner, access))
                .ok_or(StoreError::Denied)?;
            let (home, real) = ctx.store.existing_home(&owner)?.confined(&root, &inner)?;
            if access == Access::Write
                && !rights.contains(Access::Create.right())
                && home.stat(&real).is_err()
            {
                // Write alone replaces; it never makes a new file.
                return Err(StoreError::Denied);
            }
            (home, real, mode)
        }
        _ => return Err(StoreError::Denied),
    };
    if !home.holds_upload(&real, upload)? {
        return Err(StoreError::Denied);
    }
    Ok(mode)
}

/// The item SHAR and UNSH act on: only something in the caller's own home.
pub(super) fn own_item(
    cx: &CommandContext,
    kind: EventKind,
    text: &str,
) -> Result<VirtualPath, Reply> {
    let path = cx.parse_or_reply(kind, text)?;
    match cx.ctx.shares.with(|db| db.resolve(&cx.account, &path)) {
        Resolved::Own(path) => Ok(path),
        _ => Err(cx.fail(kind, Some(&path), None, &ShareError::BadTarget.into())),
    }
}

/// Logs a refused SHAR or UNSH with its grantee and returns the reply.
pub(super) fn fail_with_grantee(
    cx: &CommandContext,
    kind: EventKind,
    path: &VirtualPath,
    grantee: &Username,
    error: ShareError,
) -> Reply {
    let error = AccessError::from(error);
    let (code, message) = error_reply(&error);
    let outcome = if code == ErrorCode::INTERNAL {
        AuditOutcome::Failed
    } else {
        AuditOutcome::Denied
    };
    cx.record(
        &cx.event(kind, outcome)
            .path(path)
            .grantee(grantee)
            .reason(&error),
    );
    Reply::error(code, message)
}

/// Fixed bytes of one encoded share besides its strings.
const SHARE_OVERHEAD: usize = 2 + 2 + 2 + 1;

/// The shares `select` picks for the logged-in user, as `Shares` replies: the
/// shape of both share listings. The selection is copied out of the share
/// table; its parts are encoded one at a time, as the peer takes them.
pub(super) fn share_listing(
    cx: &CommandContext,
    select: impl for<'db> Fn(&'db ShareDb, &Username) -> Vec<&'db Share>,
) -> Result<CommandResult, Reply> {
    let shares: Vec<Share> = cx
        .ctx
        .shares
        .with(|db| select(db, &cx.account.name).into_iter().cloned().collect());
    cx.record(&cx.event(EventKind::ListShares, AuditOutcome::Ok));
    Ok(share_parts(shares).start())
}

/// The `Shares` replies for `shares`, all but the last with `more` set.
fn share_parts(shares: Vec<Share>) -> PartStream {
    let entries = shares.into_iter().map(|share| {
        Ok(ShareEntry {
            owner: share.owner.to_string(),
            path: share.path.to_string(),
            grantee: share.grantee.to_string(),
            rights: share.rights,
        })
    });
    PartStream::new(
        entries,
        |entry| SHARE_OVERHEAD + entry.owner.len() + entry.path.len() + entry.grantee.len(),
        |entries, more| Reply::Shares { entries, more },
    )
}
