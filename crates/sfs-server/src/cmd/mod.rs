//! The commands, one file per command (in the style of mini-redis' `cmd/`): each
//! file parses the client's path, maps it through the share tree, checks the right
//! the command needs, runs it, logs one line and returns the replies.
//!
//! Commands run one at a time per session, in the order they arrived, each with a
//! snapshot of the session state it needs ([`CommandContext`]): the account, the
//! working folder at the time the command is *started* (so `MKD a` then `CWD a`
//! behave as typed), the peer addresses for the log, and the number of open
//! transfers. File commands run as blocking jobs on tokio's blocking pool;
//! [`runs_inline`] names those answered from the snapshot alone (PWD, CDUP,
//! STATUS, NOOP, ASSOC). Errors become `Reply::Error` with a code and a message that never
//! holds a real path; `INTERNAL` details go to `server.log` only.
//!
//! LOGIN and REGISTER ([`login`], [`register`]) run before there is an account and
//! are async (bcrypt, throttle delays); QUIT is answered by the protocol session
//! itself (reply, `Close`), and the connection logs the disconnect. Shared helpers (resolving a path, error replies)
//! live in [`common`]; multi-part answers (LIST and the share listings) are
//! streamed a part at a time through [`parts`].

mod assoc;
mod cdup;
mod common;
mod cwd;
mod dele;
mod digest;
mod list;
pub(crate) mod login;
mod mfmt;
mod mkd;
mod noop;
mod parts;
mod pwd;
mod quot;
pub(crate) mod register;
mod rename;
mod retr;
mod rmd;
mod shar;
mod shared_by_me;
mod shwm;
mod size;
mod stat;
mod status;
mod stor;
mod unsh;

use std::net::SocketAddr;
use std::sync::Arc;

use sfs_proto::control::{Command, ErrorCode, Reply};

use crate::accounts::Account;
use crate::context::ServerContext;
use crate::store::VirtualPath;

pub(crate) use assoc::AssocGrant;
pub(crate) use common::store_error_reply;
pub(crate) use parts::PartStream;
pub(crate) use retr::Download;
pub(crate) use stor::{CommitCheck, UploadTarget};

/// The session state a command runs with, a snapshot taken when it starts.
#[derive(Clone)]
pub(crate) struct CommandContext {
    pub ctx: Arc<ServerContext>,
    pub account: Account,
    /// The working folder when the command started.
    pub cwd: VirtualPath,
    pub peers: Arc<[SocketAddr]>,
    /// Transfers open in the session when the command started.
    pub open_transfers: usize,
}

/// What one command produced, for the connection to act on.
pub(crate) enum CommandResult {
    /// Replies to send in order (the last one final), and the new working folder.
    Replies {
        replies: Vec<Reply>,
        cwd: Option<VirtualPath>,
    },
    /// The first part of a multi-part answer (`more` set), and the rest to
    /// produce one at a time as the peer takes them.
    Parts { first: Reply, rest: PartStream },
    /// RETR: the file is open; the connection opens the transfer.
    Retr(Download),
    /// STOR: the temporary file is ready; the connection opens the transfer.
    /// (Boxed: it holds the reservation and the open file, much more than the
    /// other variants.)
    Stor(Box<UploadTarget>),
    /// ASSOC: a place and a ticket; the connection registers and grants it.
    Assoc(Box<AssocGrant>),
}

impl CommandResult {
    /// One final reply, the working folder unchanged.
    fn reply(reply: Reply) -> Self {
        Self::Replies {
            replies: vec![reply],
            cwd: None,
        }
    }
}

/// Whether `command` is answered from the session snapshot alone, so the
/// connection may run it at once instead of on the blocking pool.
pub(crate) fn runs_inline(command: &Command) -> bool {
    matches!(
        command,
        Command::Pwd | Command::Cdup | Command::Status | Command::Noop | Command::Assoc
    )
}

/// Runs one command of a logged-in session. Blocking unless [`runs_inline`]
/// holds: call it from `spawn_blocking`.
pub(crate) fn run(cx: &CommandContext, command: Command) -> CommandResult {
    let result = match command {
        Command::List { path } => list::run(cx, &path),
        Command::Cwd { path } => cwd::run(cx, &path),
        Command::Pwd => pwd::run(cx),
        Command::Cdup => cdup::run(cx),
        Command::Status => status::run(cx),
        Command::Noop => noop::run(),
        Command::Quot => quot::run(cx),
        Command::Mkd { path } => mkd::run(cx, &path),
        Command::Rmd { path } => rmd::run(cx, &path),
        Command::Dele { path } => dele::run(cx, &path),
        Command::Rename { from, to } => rename::run(cx, &from, &to),
        Command::Size { path } => size::run(cx, &path),
        Command::Stat { path } => stat::run(cx, &path),
        Command::Digest { path } => digest::run(cx, &path),
        Command::Shar { path, user, rights } => shar::run(cx, &path, &user, rights),
        Command::Unsh { path, user } => unsh::run(cx, &path, &user),
        Command::Shwm => shwm::run(cx),
        Command::SharedByMe => shared_by_me::run(cx),
        Command::Retr { path, offset } => retr::run(cx, &path, offset),
        Command::Stor { path, size } => stor::run(cx, &path, size),
        Command::Mfmt { path, mtime } => mfmt::run(cx, &path, mtime),
        Command::Reget {
            path,
            offset,
            prefix,
        } => retr::resume(cx, &path, offset, &prefix),
        Command::Partial { path } => stor::partial(cx, &path),
        Command::Reput {
            path,
            size,
            offset,
            prefix,
        } => stor::resume(cx, &path, size, offset, &prefix),
        Command::Assoc => assoc::run(cx),
        // The session hands these over as their own events (or answers QUIT
        // and DETACH).
        Command::Login { .. }
        | Command::Register { .. }
        | Command::Quit
        | Command::Detach { .. } => Err(Reply::error(ErrorCode::BAD_REQUEST, "not a file command")),
    };
    result.unwrap_or_else(CommandResult::reply)
}
