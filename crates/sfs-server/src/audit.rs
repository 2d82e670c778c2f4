//! `server.log`: one event per line, every value escaped, never a password.
//!
//! ```text
//! 2026-11-21T05:21:36.123Z event=login result=ok user=alice peers=127.0.0.1:40000,127.0.0.2:40000
//! 2026-11-21T05:21:37.009Z event=store result=ok user=alice peers=127.0.0.1:40000 path="/my docs/a.txt" bytes=5
//! 2026-11-21T05:21:38.410Z event=delete result=denied user=alice peers=127.0.0.1:40000 owner=bob path=/x reason="no such file or folder"
//! ```
//!
//! Each line is `timestamp key=value ...`. A value is written bare when it is plain
//! printable text, and otherwise in double quotes with `\"`, `\\`, `\n`, `\r`, `\t`
//! and `\u{..}` escapes for every other control or bidirectional-control character.
//! So no name can end a line early or fake a `key=` field: one event is always one
//! line, and a parser can split on unquoted spaces.
//!
//! **No password can be logged, by construction.** An [`AuditEvent`] accepts only values
//! of types that cannot hold one: [`Username`], [`VirtualPath`], [`SocketAddr`],
//! [`Rights`], numbers, the closed enums [`EventKind`] and [`AuditOutcome`], and reasons
//! of type [`Reason`], which is built only from `&'static str` text written in the
//! source or from the server's own error types. There is no way to put an arbitrary
//! runtime string into an event. A login attempt's name is logged only if it
//! parses as a [`Username`] ([`AuditEvent::attempted_user`]), so a password typed into
//! the name field is not written either.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use sfs_proto::text::{escape_into, needs_escape};

use crate::accounts::{AccountsError, LoginError, RegisterError, Username, UsernameError};
use crate::shares::{rights_text, AccessError, Rights, ShareError};
use crate::store::{PathError, StoreError, VirtualPath};
pub use sfs_state::time::format_timestamp;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The server started.
    Start,
    /// The server stopped.
    Stop,
    /// A client's association came up.
    Connect,
    /// A client's association ended.
    Disconnect,
    /// A connection was refused by a limit (clients, per-source, grace timeout).
    Refuse,
    /// A path of a multi-homed association changed state (failover).
    PathChange,
    /// ASSOC refused (a limit on extra data associations).
    Assoc,
    /// An extra data association was bound to its session, or refused.
    Bind,
    /// An extra data association ended: lost (failed) or closed (info).
    Unbind,
    /// A login attempt.
    Login,
    /// A self-registration.
    Register,
    /// LIST.
    List,
    /// RETR.
    Retrieve,
    /// STOR.
    Store,
    /// CWD or CDUP.
    ChangeDir,
    /// MKD.
    MakeDir,
    /// RMD.
    RemoveDir,
    /// DELE.
    Delete,
    /// Rename.
    Rename,
    /// SIZE or STAT.
    Stat,
    /// Digest of a file.
    Digest,
    /// MFMT (a file's modification time set).
    SetTime,
    /// SHAR.
    Share,
    /// UNSH.
    Unshare,
    /// SHWM or the "shared by me" listing.
    ListShares,
    /// An error not tied to one operation.
    Error,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Connect => "connect",
            Self::Disconnect => "disconnect",
            Self::Refuse => "refuse",
            Self::PathChange => "path-change",
            Self::Assoc => "assoc",
            Self::Bind => "bind",
            Self::Unbind => "unbind",
            Self::Login => "login",
            Self::Register => "register",
            Self::List => "list",
            Self::Retrieve => "retrieve",
            Self::Store => "store",
            Self::ChangeDir => "cwd",
            Self::MakeDir => "mkdir",
            Self::RemoveDir => "rmdir",
            Self::Delete => "delete",
            Self::Rename => "rename",
            Self::Stat => "stat",
            Self::Digest => "digest",
            Self::SetTime => "mfmt",
            Self::Share => "share",
            Self::Unshare => "unshare",
            Self::ListShares => "list-shares",
            Self::Error => "error",
        }
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditOutcome {
    /// It worked.
    Ok,
    /// Refused: wrong password, missing right, bad path, a limit.
    Denied,
    /// It failed for another reason (IO error, digest mismatch, aborted transfer).
    Failed,
    /// Neither (connect, disconnect, path changes).
    Info,
}

impl AuditOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::Info => "info",
        }
    }
}

/// Why, in words that cannot contain a secret: fixed text from the source code or
/// the text of one of the server's own error types.
#[derive(Debug, Clone)]
pub struct Reason(String);

impl From<&'static str> for Reason {
    fn from(text: &'static str) -> Self {
        Self(text.to_owned())
    }
}

macro_rules! reason_from_error {
    ($($error:ty),* $(,)?) => {$(
        impl From<&$error> for Reason {
            fn from(error: &$error) -> Self {
                Self(error.to_string())
            }
        }
    )*};
}

// None of these errors carries client-supplied text (checked in each type: they
// hold usernames, paths of the server's own files, OS errors or fixed strings).
reason_from_error!(
    StoreError,
    PathError,
    ShareError,
    AccessError,
    LoginError,
    RegisterError,
    AccountsError,
    UsernameError,
    io::Error,
    crate::quota::LimitError,
    crate::limits::Refusal,
    crate::associations::AssociationLimit,
    sfs_proto::bind::BindError,
    sfs_net::TransportError,
);

/// The most characters of an unparsable path kept in a line (a client may send
/// up to a whole message of them).
pub const MAX_ATTEMPTED_PATH_CHARS: usize = 1024;

/// One event, built with chained setters and written by [`AuditLog::record`].
#[derive(Debug, Clone)]
pub struct AuditEvent<'a> {
    kind: EventKind,
    outcome: AuditOutcome,
    user: Option<&'a Username>,
    attempted_user: Option<Username>,
    peers: &'a [SocketAddr],
    owner: Option<&'a Username>,
    path: Option<&'a VirtualPath>,
    attempted_path: Option<&'a str>,
    target: Option<&'a VirtualPath>,
    grantee: Option<&'a Username>,
    rights: Option<Rights>,
    bytes: Option<u64>,
    association: Option<u8>,
    reason: Option<Reason>,
}

impl<'a> AuditEvent<'a> {
    /// An event of `kind` that ended with `outcome`.
    pub fn new(kind: EventKind, outcome: AuditOutcome) -> Self {
        Self {
            kind,
            outcome,
            user: None,
            attempted_user: None,
            peers: &[],
            owner: None,
            path: None,
            attempted_path: None,
            target: None,
            grantee: None,
            rights: None,
            bytes: None,
            association: None,
            reason: None,
        }
    }

    /// The logged-in user acting.
    pub fn user(mut self, user: &'a Username) -> Self {
        self.user = Some(user);
        self
    }

    /// The name a client tried to log in or register with. Logged only if it is a
    /// valid username; otherwise the line says `user=-invalid-`.
    pub fn attempted_user(mut self, text: &str) -> Self {
        self.attempted_user = Username::parse(text).ok();
        if self.attempted_user.is_none() {
            self.reason
                .get_or_insert(Reason::from("malformed username"));
        }
        self
    }

    /// The peer's addresses (all of a multi-homed association's).
    pub fn peers(mut self, peers: &'a [SocketAddr]) -> Self {
        self.peers = peers;
        self
    }

    /// The home the path is in, when it is not the acting user's (shares, admins).
    pub fn owner(mut self, owner: &'a Username) -> Self {
        self.owner = Some(owner);
        self
    }

    /// The virtual path operated on.
    pub fn path(mut self, path: &'a VirtualPath) -> Self {
        self.path = Some(path);
        self
    }

    /// A path as the client sent it, for a refusal of a path that does not parse
    /// (too long, a bad character, escaping the root): logged as `path=`, escaped
    /// like every value and cut to [`MAX_ATTEMPTED_PATH_CHARS`] characters, so an
    /// auditor sees what was tried.
    pub fn attempted_path(mut self, text: &'a str) -> Self {
        self.attempted_path = Some(text);
        self
    }

    /// The second path of a rename.
    pub fn target(mut self, target: &'a VirtualPath) -> Self {
        self.target = Some(target);
        self
    }

    /// The other user of a share.
    pub fn grantee(mut self, grantee: &'a Username) -> Self {
        self.grantee = Some(grantee);
        self
    }

    /// The rights of a share.
    pub fn rights(mut self, rights: Rights) -> Self {
        self.rights = Some(rights);
        self
    }

    /// Bytes transferred.
    pub fn bytes(mut self, bytes: u64) -> Self {
        self.bytes = Some(bytes);
        self
    }

    /// The session's association the event is about (0 is its first; extra
    /// data associations are 1 to 15).
    pub fn association(mut self, index: u8) -> Self {
        self.association = Some(index);
        self
    }

    /// Why it ended as it did.
    pub fn reason(mut self, reason: impl Into<Reason>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The line for this event at `time`, without the trailing newline.
    pub fn format_line(&self, time: SystemTime) -> String {
        let mut line = format_timestamp(time);
        field(&mut line, "event", self.kind.as_str());
        field(&mut line, "result", self.outcome.as_str());
        match (self.user, &self.attempted_user) {
            (Some(user), _) | (None, Some(user)) => field(&mut line, "user", user.as_str()),
            (None, None) if self.kind == EventKind::Login || self.kind == EventKind::Register => {
                field(&mut line, "user", "-invalid-")
            }
            (None, None) => {}
        }
        if !self.peers.is_empty() {
            let peers: Vec<String> = self.peers.iter().map(SocketAddr::to_string).collect();
            field(&mut line, "peers", &peers.join(","));
        }
        if let Some(owner) = self.owner {
            field(&mut line, "owner", owner.as_str());
        }
        if let Some(path) = self.path {
            field(&mut line, "path", &path.to_string());
        } else if let Some(text) = self.attempted_path {
            let cut: String = text.chars().take(MAX_ATTEMPTED_PATH_CHARS).collect();
            field(&mut line, "path", &cut);
        }
        if let Some(target) = self.target {
            field(&mut line, "target", &target.to_string());
        }
        if let Some(grantee) = self.grantee {
            field(&mut line, "grantee", grantee.as_str());
        }
        if let Some(rights) = self.rights {
            field(&mut line, "rights", &rights_text(rights));
        }
        if let Some(bytes) = self.bytes {
            field(&mut line, "bytes", &bytes.to_string());
        }
        if let Some(index) = self.association {
            field(&mut line, "association", &index.to_string());
        }
        if let Some(reason) = &self.reason {
            field(&mut line, "reason", &reason.0);
        }
        line
    }
}

fn field(line: &mut String, key: &str, value: &str) {
    line.push(' ');
    line.push_str(key);
    line.push('=');
    line.push_str(&escape_value(value));
}

/// Writes `value` bare if it is plain printable text without spaces, quotes,
/// backslashes or `=`; otherwise quoted, with [`sfs_proto::text::escape_into`]'s
/// escapes plus `\"` and escapes for whitespace other than the space, so a value
/// never holds a line break or ends its quotes early.
pub fn escape_value(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !needs_escape(c) && !c.is_whitespace() && !matches!(c, '"' | '='));
    if plain {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    escape_into(&mut out, value, |c| {
        c == '"' || (c.is_whitespace() && c != ' ')
    });
    out.push('"');
    out
}

/// The audit log writer. Share it between sessions (`Arc<AuditLog>`).
pub struct AuditLog {
    out: Mutex<Box<dyn Write + Send>>,
}

impl fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuditLog")
    }
}

impl AuditLog {
    /// Opens `path` for appending (created 0600: it names users and addresses).
    ///
    /// # Errors
    ///
    /// The [`io::Error`] of opening or creating `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        Ok(Self::to_writer(Box::new(file)))
    }

    /// Logs into any writer (tests, or standard error).
    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
        }
    }

    /// Appends one event, stamped now. The line is written with a single
    /// `write_all` under a lock, so concurrent events never interleave.
    ///
    /// # Errors
    ///
    /// The [`io::Error`] of writing or flushing the line; the event is then
    /// logged as a warning to the `sfs::audit` log target, so it is not lost.
    ///
    /// Every event also goes to `sfs::audit` at debug level
    /// (`RUST_LOG=sfs::audit=debug`), not to the console by default: the
    /// console is for startup, warnings and errors, and the file has the events.
    pub fn record(&self, event: &AuditEvent<'_>) -> io::Result<()> {
        let mut line = event.format_line(SystemTime::now());
        log::debug!(target: "sfs::audit", "{line}");
        line.push('\n');
        // A std Mutex: nothing awaits while it is held. A poisoned lock only means
        // another thread panicked mid-write; the writer itself is still usable.
        let mut out = self.out.lock().unwrap_or_else(|poison| poison.into_inner());
        let written = out.write_all(line.as_bytes()).and_then(|()| out.flush());
        if written.is_err() {
            log::warn!(target: "sfs::audit", "not in server.log: {}", line.trim_end());
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_one_event_per_line() {
        assert_eq!(escape_value("alice"), "alice");
        assert_eq!(escape_value("/a/b.txt"), "/a/b.txt");
        assert_eq!(escape_value("café"), "café");
        assert_eq!(escape_value("a b"), "\"a b\"");
        assert_eq!(escape_value(""), "\"\"");
        assert_eq!(escape_value("x=y"), "\"x=y\"");
        assert_eq!(
            escape_value("evil\n2026-01-01T00:00:00.000Z event=login result=ok user=root"),
            "\"evil\\n2026-01-01T00:00:00.000Z event=login result=ok user=root\""
        );
        assert_eq!(escape_value("q\"\\"), "\"q\\\"\\\\\"");
        assert_eq!(escape_value("\u{1b}[2J\r\t\0"), "\"\\x1b[2J\\r\\t\\x00\"");
        assert_eq!(escape_value("a\u{202e}b"), "\"a\\u{202e}b\"");
        assert_eq!(escape_value("a\u{2028}b"), "\"a\\u{2028}b\"");
    }

    #[test]
    fn no_character_can_break_a_line_or_a_quoted_value() {
        for c in (0u32..0x3100).filter_map(char::from_u32) {
            let value = format!("a{c}b");
            let escaped = escape_value(&value);
            assert!(
                !escaped
                    .chars()
                    .any(|e| e.is_control() || (e.is_whitespace() && e != ' ')),
                "{escaped:?}"
            );
            if let Some(inner) = escaped.strip_prefix('"') {
                let inner = inner.strip_suffix('"').expect("closing quote");
                // Every quote inside is escaped: it follows an odd run of backslashes.
                let bytes = inner.as_bytes();
                for (i, _) in inner.match_indices('"') {
                    let run = bytes[..i].iter().rev().take_while(|&&b| b == b'\\').count();
                    assert!(run % 2 == 1, "{escaped:?}");
                }
            } else {
                assert_eq!(escaped, value);
            }
        }
    }
}
