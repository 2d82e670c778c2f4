//! The file commands, one file per family (in the style of mini-redis' `cmd/`).
//!
//! Each command runs as one blocking job ([`run`]) on tokio's blocking pool, with
//! a snapshot of what it needs ([`Job`]): the account, the working folder at the
//! time the command is *started* (commands of one session run one after another,
//! so `MKD a` then `CWD a` behave as typed), and the peer addresses for the log.
//! It parses the client's path, maps it through the share tree, checks the right
//! the command needs, runs the store operation, logs one line, and returns the
//! replies. Errors become `Reply::Error` with a code and a message that never holds
//! a real path; `INTERNAL` details go to `server.log` only.
//!
//! PWD, CDUP, STATUS (answered from the session's own state) and LOGIN, REGISTER,
//! QUIT (handled by the session and [`crate::connection`]) do not come here.

mod change;
mod info;
mod list;
mod nav;
mod open;
mod share;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use sfs_proto::control::{Command, EntryKind as WireKind, ErrorCode, Reply};

use crate::accounts::{Account, Username};
use crate::audit::{Event, EventKind, Outcome as LogOutcome, Reason};
use crate::context::ServerContext;
use crate::shares::{Access, AccessError, Resolved, ShareError};
use crate::store::{Entry, EntryKind, Home, PathError, StoreError, VirtualPath};

pub(crate) use open::{Download, UploadTarget};

/// What a command needs to run away from its session.
#[derive(Clone)]
pub(crate) struct Job {
    pub ctx: Arc<ServerContext>,
    pub account: Account,
    pub cwd: VirtualPath,
    pub peers: Arc<[SocketAddr]>,
}

/// The result of one command.
pub(crate) enum Outcome {
    /// Replies to send in order (the last one final), and the new working folder.
    Replies {
        replies: Vec<Reply>,
        cwd: Option<VirtualPath>,
    },
    /// RETR: the file is open; the session opens the transfer.
    Retr(Download),
    /// STOR: the temporary file is ready; the session opens the transfer.
    Stor(UploadTarget),
}

impl Outcome {
    fn reply(reply: Reply) -> Self {
        Self::Replies {
            replies: vec![reply],
            cwd: None,
        }
    }
}

/// Runs one file command. Blocking: call it from `spawn_blocking`.
pub(crate) fn run(job: &Job, command: Command) -> Outcome {
    let result = match command {
        Command::List { path } => list::list(job, &path),
        Command::Cwd { path } => nav::cwd(job, &path),
        Command::Mkd { path } => change::mkdir(job, &path),
        Command::Rmd { path } => change::rmdir(job, &path),
        Command::Dele { path } => change::delete(job, &path),
        Command::Rename { from, to } => change::rename(job, &from, &to),
        Command::Size { path } => info::size(job, &path),
        Command::Stat { path } => info::stat(job, &path),
        Command::Digest { path } => info::digest(job, &path),
        Command::Shar { path, user, rights } => share::share(job, &path, &user, rights),
        Command::Unsh { path, user } => share::unshare(job, &path, &user),
        Command::Shwm => share::shared_with_me(job),
        Command::SharedByMe => share::shared_by_me(job),
        Command::Retr { path, offset } => open::retr(job, &path, offset),
        Command::Stor { path, size } => open::stor(job, &path, size),
        Command::Login { .. }
        | Command::Register { .. }
        | Command::Quit
        | Command::Pwd
        | Command::Cdup
        | Command::Status => Ok(Outcome::reply(Reply::error(
            ErrorCode::BAD_REQUEST,
            "not a file command",
        ))),
    };
    result.unwrap_or_else(Outcome::reply)
}

/// Where a resolved path lives.
pub(crate) enum Target {
    /// A real file or folder: in the caller's home (`owner` None) or another's.
    Home {
        home: Home,
        path: VirtualPath,
        owner: Option<Username>,
    },
    /// `/shared` itself.
    SharedRoot,
    /// A synthesized folder above shared items.
    Listing { children: Vec<String> },
}

impl Job {
    /// The client's path text, against the working folder.
    fn parse(&self, text: &str) -> Result<VirtualPath, PathError> {
        self.cwd.join(text)
    }

    /// Maps `path` through the share tree and checks `access` there.
    fn target(&self, path: &VirtualPath, access: Access) -> Result<Target, AccessError> {
        let resolved = self.ctx.shares.with(|db| db.resolve(&self.account, path));
        resolved.check(access)?;
        Ok(match resolved {
            Resolved::Own(path) => Target::Home {
                home: self.ctx.store.home(&self.account.name)?,
                path,
                owner: None,
            },
            Resolved::Shared { owner, path, .. } => Target::Home {
                home: self.ctx.store.existing_home(&owner)?,
                path,
                owner: Some(owner),
            },
            Resolved::SharedRoot => Target::SharedRoot,
            Resolved::Listing { children, .. } => Target::Listing { children },
            // check() refuses NotShared; keep the same answer if it ever did not.
            Resolved::NotShared => return Err(ShareError::NotShared.into()),
        })
    }

    /// An audit event for this session's user and peers.
    fn event(&self, kind: EventKind, outcome: LogOutcome) -> Event<'_> {
        Event::new(kind, outcome)
            .user(&self.account.name)
            .peers(&self.peers)
    }

    fn record(&self, event: &Event<'_>) {
        if let Err(error) = self.ctx.audit.record(event) {
            log::error!("cannot write server.log: {error}");
        }
    }

    /// Logs a failed command and turns its error into the reply.
    fn fail(
        &self,
        kind: EventKind,
        path: Option<&VirtualPath>,
        owner: Option<&Username>,
        error: &AccessError,
    ) -> Reply {
        let (code, message) = error_reply(error);
        let outcome = if code == ErrorCode::INTERNAL || code == ErrorCode::NO_SPACE {
            LogOutcome::Failed
        } else {
            LogOutcome::Denied
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
    fn ok(&self, kind: EventKind, path: &VirtualPath, owner: Option<&Username>) {
        let mut event = self.event(kind, LogOutcome::Ok).path(path);
        if let Some(owner) = owner {
            event = event.owner(owner);
        }
        self.record(&event);
    }

    /// Parses `text`, or logs the refusal and returns the reply.
    fn parse_or_reply(&self, kind: EventKind, text: &str) -> Result<VirtualPath, Reply> {
        self.parse(text)
            .map_err(|error| self.fail(kind, None, None, &AccessError::from(error)))
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
                ShareError::Denied(_) | ShareError::ReadOnly => ErrorCode::PERMISSION_DENIED,
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
        kind: match entry.kind {
            EntryKind::File => WireKind::File,
            EntryKind::Directory => WireKind::Dir,
            EntryKind::Other => WireKind::Other,
        },
        size: entry.size,
        mtime,
        mode: entry.mode,
    }
}

/// Bytes of entries per multi-part reply (`Listing`, `Shares`), well under the
/// 64 KiB control message.
pub(crate) const PART_BUDGET: usize = 48 * 1024;

/// Splits `items` into replies of at most [`PART_BUDGET`] encoded bytes each
/// (`cost` says how many one item takes), all but the last marked `more`. Always
/// at least one reply, so an empty listing still gets its final part.
pub(crate) fn in_parts<T>(
    items: impl IntoIterator<Item = T>,
    cost: impl Fn(&T) -> usize,
    part: impl Fn(Vec<T>, bool) -> Reply,
) -> Vec<Reply> {
    let mut parts = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for item in items {
        let item_cost = cost(&item);
        if size + item_cost > PART_BUDGET && !current.is_empty() {
            parts.push(part(std::mem::take(&mut current), true));
            size = 0;
        }
        size += item_cost;
        current.push(item);
    }
    parts.push(part(current, false));
    parts
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
