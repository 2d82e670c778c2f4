//! Running parsed commands against a [`Remote`]: what each command does and
//! prints. The interactive loop, batch files and one-shot arguments all come here.
//!
//! Output goes to the writer given to [`Shell::new`] (stdout in the binary, a
//! buffer in tests). Every name that came from the server is printed through
//! [`escape`].
//!
//! Each command is one `Shell` method, named after the command (`ls`, `put`,
//! ...); [`Shell::execute`] and the parser are generated from the command table
//! in [`crate::command`]. The remote folder commands are here, the rest by
//! concern: transfers, listings, the session's status and help, the local folder.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sfs_net::Transport;
use sfs_proto::control::{Command as Wire, EntryKind, Reply, Rights};

use crate::connection::{ClientError, Remote};
use crate::display::escape;

mod glob;
mod listing;
mod local_dir;
mod preflight;
mod quota;
mod remove;
mod resume;
mod status;
mod transfers;
mod tree;

use listing::listing;
pub use listing::{format_entry, human_bytes};
pub use preflight::check_local_names;
pub use status::help_lines;

/// What the caller does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// The user asked to quit.
    Quit,
}

/// A command method that returns nothing lets the session go on.
impl From<()> for Flow {
    fn from((): ()) -> Self {
        Flow::Continue
    }
}

/// Asks the user a yes/no question (the text ends with `?`); true for yes.
pub type Confirm = Box<dyn FnMut(&str) -> bool + Send>;

/// Remote names seen in the current folder, for tab completion.
pub type NameCache = Arc<Mutex<Vec<String>>>;

/// A connection plus the state a shell keeps: the remote and local folders.
pub struct Shell<T: Transport> {
    connection: Remote<T>,
    remote_dir: String,
    local_dir: PathBuf,
    out: Box<dyn Write + Send>,
    quiet: bool,
    names: NameCache,
    confirm: Option<Confirm>,
}

impl<T: Transport> std::fmt::Debug for Shell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("connection", &self.connection)
            .field("remote_dir", &self.remote_dir)
            .field("local_dir", &self.local_dir)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Shell<T> {
    /// A shell over a logged-in connection. `remote_dir` is the folder the login
    /// answered; `local_dir` is where relative local paths start. With `quiet`,
    /// only answers the user asked for are printed (no transfer summaries).
    pub fn new(
        connection: Remote<T>,
        remote_dir: String,
        local_dir: PathBuf,
        out: Box<dyn Write + Send>,
        quiet: bool,
    ) -> Self {
        Self {
            connection,
            remote_dir,
            local_dir,
            out,
            quiet,
            names: NameCache::default(),
            confirm: None,
        }
    }

    /// Makes commands that do much at once ask first (`rm` of a pattern that
    /// matches several files), as sftp's interactive mode does. Without it
    /// (batch files, one-shot commands) nothing asks.
    pub fn set_confirm(&mut self, confirm: Confirm) {
        self.confirm = Some(confirm);
    }

    /// The remote folder.
    pub fn remote_dir(&self) -> &str {
        &self.remote_dir
    }

    /// The local folder.
    pub fn local_dir(&self) -> &Path {
        &self.local_dir
    }

    /// The connection.
    pub fn connection(&mut self) -> &mut Remote<T> {
        &mut self.connection
    }

    /// The remote names for completion, refreshed by [`Self::refresh_names`].
    pub fn names(&self) -> NameCache {
        self.names.clone()
    }

    /// Lists the remote folder into the completion cache (errors are ignored:
    /// completion is a convenience).
    ///
    /// # Cancel safety
    ///
    /// As [`Remote::request`]: not cancel-safe; a dropped call leaves the
    /// cache as it was and the LIST in flight.
    pub async fn refresh_names(&mut self) {
        if let Ok(replies) = self
            .connection
            .request(Wire::List {
                path: String::new(),
            })
            .await
        {
            let names = listing(&replies)
                .iter()
                .map(|e| {
                    let suffix = if e.kind == EntryKind::Dir { "/" } else { "" };
                    format!("{}{suffix}", e.name)
                })
                .collect();
            *self.names.lock().unwrap_or_else(|p| p.into_inner()) = names;
        }
    }

    /// Ends the session politely.
    ///
    /// # Cancel safety
    ///
    /// As [`Remote::quit`]: safe to drop, the session ends either way.
    pub async fn quit(self) {
        self.connection.quit().await;
    }

    /// `cd PATH`.
    pub(crate) async fn cd(&mut self, path: String) -> Result<(), ClientError> {
        self.change_dir(Wire::Cwd { path }).await
    }

    /// `cdup`.
    pub(crate) async fn cdup(&mut self) -> Result<(), ClientError> {
        self.change_dir(Wire::Cdup).await
    }

    /// `pwd`: asks the server, and remembers the answer.
    pub(crate) async fn pwd(&mut self) -> Result<(), ClientError> {
        let path = expect_path(self.connection.request(Wire::Pwd).await?)?;
        self.remote_dir.clone_from(&path);
        self.line(escape(&path).into_owned())
    }

    /// `mkdir PATH`.
    pub(crate) async fn mkdir(&mut self, path: String) -> Result<(), ClientError> {
        self.expect_ok(Wire::Mkd { path }).await
    }

    /// `rmdir PATH`.
    pub(crate) async fn rmdir(&mut self, path: String) -> Result<(), ClientError> {
        self.expect_ok(Wire::Rmd { path }).await
    }

    /// `share PATH USER RIGHTS`.
    pub(crate) async fn share(
        &mut self,
        path: String,
        user: String,
        rights: Rights,
    ) -> Result<(), ClientError> {
        self.expect_ok(Wire::Shar {
            path: path.clone(),
            user: user.clone(),
            rights,
        })
        .await?;
        if !self.quiet {
            self.line(format!(
                "shared {} with {} ({rights})",
                escape(&path),
                escape(&user)
            ))?;
        }
        Ok(())
    }

    /// `unshare PATH USER`.
    pub(crate) async fn unshare(&mut self, path: String, user: String) -> Result<(), ClientError> {
        self.expect_ok(Wire::Unsh { path, user }).await
    }

    /// `noop`.
    pub(crate) async fn noop(&mut self) -> Result<(), ClientError> {
        match self.single(Wire::Noop).await? {
            Reply::Ok => self.line("ok".to_owned()),
            other => Err(ClientError::UnexpectedReply(format!("{other:?}"))),
        }
    }

    /// `quit`: the caller ends the session (with [`Shell::quit`]).
    pub(crate) async fn exit(&mut self) -> Result<Flow, ClientError> {
        Ok(Flow::Quit)
    }

    async fn change_dir(&mut self, command: Wire) -> Result<(), ClientError> {
        let path = expect_path(self.connection.request(command).await?)?;
        self.remote_dir = path;
        Ok(())
    }

    async fn expect_ok(&mut self, command: Wire) -> Result<(), ClientError> {
        match self.single(command).await? {
            Reply::Ok => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn single(&mut self, command: Wire) -> Result<Reply, ClientError> {
        let mut replies = self.connection.request(command).await?;
        match (replies.pop(), replies.is_empty()) {
            (Some(reply), true) => Ok(reply),
            _ => Err(ClientError::UnexpectedReply(
                "a multi-part answer to a single request".into(),
            )),
        }
    }

    /// The user's answer to `question`; yes when nobody is there to ask.
    fn confirm(&mut self, question: &str) -> bool {
        match self.confirm.as_mut() {
            Some(ask) => ask(question),
            None => true,
        }
    }

    fn line(&mut self, text: String) -> Result<(), ClientError> {
        writeln!(self.out, "{text}")
            .and_then(|()| self.out.flush())
            .map_err(|err| local_io(Path::new("<stdout>"), err))
    }
}

fn local_io(path: &Path, error: io::Error) -> ClientError {
    ClientError::Io {
        path: escape(&path.to_string_lossy()).into_owned(),
        error,
    }
}

fn expect_path(replies: Vec<Reply>) -> Result<String, ClientError> {
    match replies.as_slice() {
        [Reply::Path { path }] => Ok(path.clone()),
        [other] => Err(unexpected(other)),
        _ => Err(ClientError::UnexpectedReply("not one path".into())),
    }
}

fn unexpected(reply: &Reply) -> ClientError {
    ClientError::UnexpectedReply(escape(&format!("{reply:?}")).into_owned())
}
