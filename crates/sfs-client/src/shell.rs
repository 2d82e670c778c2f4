//! Running parsed commands against a [`Remote`]: what each command does and
//! prints. The interactive loop, batch files and one-shot arguments all come here.
//!
//! Output goes to the writer given to [`Shell::new`] (stdout in the binary, a
//! buffer in tests). Every name that came from the server is printed through
//! [`escape`].

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sfs_net::{PathState, Transport};
use sfs_proto::control::{Command as Wire, Entry, EntryKind, Reply, ShareEntry};

use crate::command::{ShellCommand, COMMANDS};
use crate::connection::{check_distinct_targets, hex, ClientError, Remote, TransferSpec};
use crate::display::escape;
use crate::local::{download_destination, safe_file_name};

/// What the caller does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Read the next command.
    Continue,
    /// The user asked to quit.
    Quit,
}

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
        }
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
    pub async fn quit(self) {
        self.connection.quit().await;
    }

    /// Runs one command.
    pub async fn execute(&mut self, command: ShellCommand) -> Result<Flow, ClientError> {
        match command {
            ShellCommand::List { path } => {
                let replies = self
                    .connection
                    .request(Wire::List {
                        path: path.unwrap_or_default(),
                    })
                    .await?;
                for entry in listing(&replies) {
                    self.line(format_entry(&entry))?;
                }
            }
            ShellCommand::ChangeDir { path } => {
                self.change_dir(Wire::Cwd { path }).await?;
            }
            ShellCommand::ChangeDirUp => self.change_dir(Wire::Cdup).await?,
            ShellCommand::PrintDir => {
                let path = expect_path(self.connection.request(Wire::Pwd).await?)?;
                self.remote_dir.clone_from(&path);
                self.line(escape(&path).into_owned())?;
            }
            ShellCommand::MakeDir { path } => self.expect_ok(Wire::Mkd { path }).await?,
            ShellCommand::RemoveDir { path } => self.expect_ok(Wire::Rmd { path }).await?,
            ShellCommand::Delete { path } => self.expect_ok(Wire::Dele { path }).await?,
            ShellCommand::Rename { from, to } => self.expect_ok(Wire::Rename { from, to }).await?,
            ShellCommand::Get { remote, local } => {
                let dest = download_destination(
                    &remote,
                    local.as_deref().map(Path::new),
                    &self.local_dir,
                )?;
                self.transfer(vec![TransferSpec::Download { remote, dest }])
                    .await?;
            }
            ShellCommand::GetMany { remotes } => {
                let mut specs = Vec::new();
                for remote in remotes {
                    let dest = download_destination(&remote, None, &self.local_dir)?;
                    specs.push(TransferSpec::Download { remote, dest });
                }
                self.transfer(specs).await?;
            }
            ShellCommand::Put { local, remote } => {
                let spec = self.upload_spec(&local, remote)?;
                self.transfer(vec![spec]).await?;
            }
            ShellCommand::PutMany { locals } => {
                let mut specs = Vec::new();
                for local in locals {
                    specs.push(self.upload_spec(&local, None)?);
                }
                self.transfer(specs).await?;
            }
            ShellCommand::Size { path } => match self.single(Wire::Size { path }).await? {
                Reply::Size { size } => self.line(size.to_string())?,
                other => return Err(unexpected(&other)),
            },
            ShellCommand::Stat { path } => match self.single(Wire::Stat { path }).await? {
                Reply::Stat { entry } => self.line(format_entry(&entry))?,
                other => return Err(unexpected(&other)),
            },
            ShellCommand::Digest { path } => {
                match self.single(Wire::Digest { path: path.clone() }).await? {
                    Reply::Digest { sha256, .. } => {
                        self.line(format!("{}  {}", hex(&sha256), escape(&path)))?;
                    }
                    other => return Err(unexpected(&other)),
                }
            }
            ShellCommand::Share { path, user, rights } => {
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
            }
            ShellCommand::Unshare { path, user } => {
                self.expect_ok(Wire::Unsh { path, user }).await?
            }
            ShellCommand::SharedWithMe => {
                let replies = self.connection.request(Wire::Shwm).await?;
                for share in shares(&replies) {
                    self.line(format!(
                        "{}  {}  from {}",
                        share.rights,
                        escape(&format!(
                            "/shared/{}/{}",
                            share.owner,
                            share.path.trim_start_matches('/')
                        )),
                        escape(&share.owner)
                    ))?;
                }
            }
            ShellCommand::SharedByMe => {
                let replies = self.connection.request(Wire::SharedByMe).await?;
                for share in shares(&replies) {
                    self.line(format!(
                        "{}  {}  to {}",
                        share.rights,
                        escape(&share.path),
                        escape(&share.grantee)
                    ))?;
                }
            }
            ShellCommand::Status => self.status().await?,
            ShellCommand::Noop => match self.single(Wire::Noop).await? {
                Reply::Ok => self.line("ok".to_owned())?,
                other => return Err(ClientError::UnexpectedReply(format!("{other:?}"))),
            },
            ShellCommand::LocalChangeDir { path } => {
                let target = self.local_dir.join(expand_home(&path));
                let canonical =
                    std::fs::canonicalize(&target).map_err(|err| local_io(&target, err))?;
                if !canonical.is_dir() {
                    return Err(local_io(&target, io::Error::other("not a folder")));
                }
                self.local_dir = canonical;
            }
            ShellCommand::LocalPrintDir => {
                let text = escape(&self.local_dir.to_string_lossy()).into_owned();
                self.line(text)?;
            }
            ShellCommand::LocalList { path } => {
                let dir = match path {
                    Some(path) => self.local_dir.join(expand_home(&path)),
                    None => self.local_dir.clone(),
                };
                let mut names: Vec<String> = std::fs::read_dir(&dir)
                    .map_err(|err| local_io(&dir, err))?
                    .filter_map(Result::ok)
                    .map(|e| {
                        let dir_mark = if e.file_type().is_ok_and(|t| t.is_dir()) {
                            "/"
                        } else {
                            ""
                        };
                        format!("{}{dir_mark}", escape(&e.file_name().to_string_lossy()))
                    })
                    .collect();
                names.sort();
                for name in names {
                    self.line(name)?;
                }
            }
            ShellCommand::Help { topic } => self.help(topic.as_deref())?,
            ShellCommand::Quit => return Ok(Flow::Quit),
        }
        Ok(Flow::Continue)
    }

    fn upload_spec(
        &self,
        local: &str,
        remote: Option<String>,
    ) -> Result<TransferSpec, ClientError> {
        let local_path = self.local_dir.join(expand_home(local));
        let remote = match remote {
            Some(remote) => remote,
            None => safe_file_name(&local_path.to_string_lossy())?.to_owned(),
        };
        Ok(TransferSpec::Upload {
            local: local_path,
            remote,
        })
    }

    async fn transfer(&mut self, specs: Vec<TransferSpec>) -> Result<(), ClientError> {
        check_distinct_targets(&specs)?;
        let results = self.connection.transfer_all(&specs).await;
        let mut first_error = None;
        let many = specs.len() > 1;
        for (spec, result) in specs.iter().zip(results) {
            let (verb, from, to) = match spec {
                TransferSpec::Download { remote, dest } => (
                    "downloaded",
                    escape(remote).into_owned(),
                    escape(&dest.to_string_lossy()).into_owned(),
                ),
                TransferSpec::Upload { local, remote } => (
                    "uploaded",
                    escape(&local.to_string_lossy()).into_owned(),
                    escape(remote).into_owned(),
                ),
            };
            match result {
                Ok(done) => {
                    if !self.quiet {
                        self.line(format!(
                            "{verb} {from} -> {to}: {} bytes, sha256 {}",
                            done.bytes,
                            hex(&done.sha256)
                        ))?;
                    }
                }
                Err(err) => {
                    if many {
                        eprintln!("sfs: {from}: {err}");
                    }
                    first_error.get_or_insert(err);
                }
            }
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(()),
        }
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

    async fn status(&mut self) -> Result<(), ClientError> {
        let server = self.single(Wire::Status).await?;
        let paths = self.connection.paths();
        let streams = self.connection.streams();
        let (sent, received) = self.connection.bytes_moved();
        let mut text = Vec::new();
        if paths.is_empty() {
            text.push("paths: none reported by this transport".to_owned());
        } else {
            text.push(format!("paths: {} peer address(es)", paths.len()));
            for path in &paths {
                let rtt = if path.srtt.is_zero() {
                    "-".to_owned()
                } else {
                    format!("{} ms", path.srtt.as_millis())
                };
                text.push(format!(
                    "  {:<28} {:<20} rtt {:<8}{}",
                    path.addr.to_string(),
                    path_state_text(path.state),
                    rtt,
                    if path.primary { " primary" } else { "" }
                ));
            }
        }
        text.push(format!(
            "streams: {} outbound, {} inbound (stream 0 control, {} for data)",
            streams.outbound,
            streams.inbound,
            streams
                .outbound
                .saturating_sub(1)
                .min(streams.inbound.saturating_sub(1))
        ));
        match self.connection.tls() {
            Some((version, suite)) => text.push(format!("tls: {version}, {suite}")),
            None => text.push("tls: not negotiated".to_owned()),
        }
        text.push(format!(
            "bytes moved: {} sent, {} received",
            human_bytes(sent),
            human_bytes(received)
        ));
        if let Reply::ServerStatus {
            user,
            cwd,
            admin,
            transfers,
        } = server
        {
            text.push(format!(
                "server: logged in as {}{}, folder {}, {} transfer(s) open",
                escape(&user),
                if admin { " (admin)" } else { "" },
                escape(&cwd),
                transfers
            ));
        }
        for line in text {
            self.line(line)?;
        }
        Ok(())
    }

    fn help(&mut self, topic: Option<&str>) -> Result<(), ClientError> {
        if let Some(topic) = topic {
            let spec = crate::command::find_command(topic).ok_or_else(|| {
                ClientError::UnexpectedReply(format!("no command `{}`", escape(topic)))
            })?;
            let names = spec.names.join(", ");
            self.line(format!("{}: {}", spec.usage, spec.summary))?;
            self.line(format!("  names: {names} (any case)"))?;
            self.line(format!("  example: {}", spec.example))?;
            return Ok(());
        }
        self.line(
            "Commands (any case; the original names LIST, RETR, STOR, ... work too):".into(),
        )?;
        for spec in COMMANDS {
            self.line(format!("  {:<24} {}", spec.usage, spec.summary))?;
            self.line(format!("  {:<24}   e.g. {}", "", spec.example))?;
        }
        Ok(())
    }

    fn line(&mut self, text: String) -> Result<(), ClientError> {
        writeln!(self.out, "{text}")
            .and_then(|()| self.out.flush())
            .map_err(|err| local_io(Path::new("<stdout>"), err))
    }
}

fn local_io(path: &Path, source: io::Error) -> ClientError {
    ClientError::Io {
        path: escape(&path.to_string_lossy()).into_owned(),
        source,
    }
}

fn expand_home(path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    if path == "~" {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home);
        }
    }
    PathBuf::from(path)
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

/// The entries of a LIST answer, sorted by name: the server sorts only within
/// each part of a large listing.
fn listing(replies: &[Reply]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = replies
        .iter()
        .flat_map(|r| match r {
            Reply::Listing { entries, .. } => entries.clone(),
            Reply::Stat { entry } => vec![entry.clone()],
            _ => Vec::new(),
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

fn shares(replies: &[Reply]) -> Vec<ShareEntry> {
    replies
        .iter()
        .flat_map(|r| match r {
            Reply::Shares { entries, .. } => entries.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn path_state_text(state: PathState) -> String {
    match state {
        PathState::Active => "active".into(),
        PathState::Inactive => "inactive".into(),
        PathState::PotentiallyFailed => "potentially-failed".into(),
        PathState::Unconfirmed => "unconfirmed".into(),
        PathState::Unknown(raw) => format!("unknown({raw})"),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// One listing line: kind and mode, size, UTC modification time, escaped name.
pub fn format_entry(entry: &Entry) -> String {
    let kind = match entry.kind {
        EntryKind::File => '-',
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Other => '?',
    };
    let mut mode = String::with_capacity(9);
    for shift in [6u32, 3, 0] {
        let bits = (entry.mode >> shift) & 0o7;
        mode.push(if bits & 4 != 0 { 'r' } else { '-' });
        mode.push(if bits & 2 != 0 { 'w' } else { '-' });
        mode.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let suffix = if entry.kind == EntryKind::Dir {
        "/"
    } else {
        ""
    };
    format!(
        "{kind}{mode} {:>12} {} {}{suffix}",
        entry.size,
        // 0 is the protocol's "unknown" (the share tree's synthesized folders).
        if entry.mtime == 0 {
            format!("{:<16}", "-")
        } else {
            utc_time(entry.mtime)
        },
        escape(&entry.name)
    )
}

/// `YYYY-MM-DD HH:MM` in UTC; `-` (padded to the same width) for a time outside
/// the years -9999 to 9999, which only a broken or hostile server sends.
fn utc_time(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(stamp) => stamp.strftime("%Y-%m-%d %H:%M").to_string(),
        Err(_) => format!("{:<16}", "-"),
    }
}

/// `1.50 MiB` and the like (binary units).
pub fn human_bytes(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_time(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(utc_time(-86_400), "1969-12-31 00:00");
        assert_eq!(utc_time(i64::MAX), format!("{:<16}", "-"));
    }

    #[test]
    fn entries_show_kind_mode_and_escaped_names() {
        let entry = Entry {
            name: "a\x1b[2J".into(),
            kind: EntryKind::Dir,
            size: 4096,
            mtime: 0,
            mode: 0o750,
        };
        let line = format_entry(&entry);
        assert!(line.starts_with("drwxr-x--- "), "{line}");
        assert!(line.ends_with("a\\x1b[2J/"), "{line}");
        assert!(!line.contains('\x1b'));
        assert!(
            line.contains(" 4096 -                a"),
            "unknown time: {line}"
        );
        let dated = format_entry(&Entry {
            mtime: 1_700_000_000,
            ..entry
        });
        assert!(dated.contains(" 4096 2023-11-14 22:13 a"), "{dated}");
    }

    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(3 << 20), "3.00 MiB");
    }
}
