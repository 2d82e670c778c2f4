//! The words a user reads when something fails: one line that says what failed,
//! on which path or address, and what to do.
//!
//! Each error says its own part once. An error that wraps another either shows
//! the inner one in its text or hands it on as its `source`, never both (the
//! binary prints the chain, so both would print it twice); the server's message
//! is shown as it came, without the code's words in front of it when it already
//! says them; OS errors lose their `(os error N)`; TLS errors become the
//! certificate problem and the flag that fixes it.

use std::io;

use rustls::CertificateError;
use sfs_proto::codec::EncodeError;
use sfs_proto::control::{Command, ErrorCode, MAX_PATH_LEN, MAX_USER_LEN};
pub use sfs_proto::report::os_words;
use sfs_proto::session::{ApiError, CloseReason, Initiator};
use sfs_proto::tls::TlsError;

use super::ClientError;
use crate::display::escape;

/// The code's words: the Display of [`ErrorCode`] reads "not found (0x0007)".
pub(crate) fn code_text(code: ErrorCode) -> String {
    let text = code.to_string();
    match text.rsplit_once(" (0x") {
        Some((words, _)) => words.to_owned(),
        None => text,
    }
}

/// What a request is about, kept from when it was sent so a refusal can name
/// the path and say what to do.
#[derive(Debug, Clone, Default)]
pub(super) struct Subject {
    /// The wire name of the command (`RETR`).
    command: &'static str,
    /// The path (for RENAME, the source), as the user typed it.
    path: Option<String>,
    /// RENAME's target.
    to: Option<String>,
    /// SHAR's and UNSH's grantee.
    user: Option<String>,
}

impl Subject {
    pub(super) fn of(command: &Command) -> Self {
        let (path, to) = match command {
            Command::List { path }
            | Command::Retr { path, .. }
            | Command::Stor { path, .. }
            | Command::Cwd { path }
            | Command::Mkd { path }
            | Command::Rmd { path }
            | Command::Dele { path }
            | Command::Size { path }
            | Command::Stat { path }
            | Command::Digest { path }
            | Command::Mfmt { path, .. }
            | Command::Reget { path, .. }
            | Command::Partial { path } => (Some(path.clone()), None),
            Command::Rename { from, to } => (Some(from.clone()), Some(to.clone())),
            Command::Shar { path, user, .. } | Command::Unsh { path, user } => {
                (Some(path.clone()), Some(user.clone()))
            }
            _ => (None, None),
        };
        let user = matches!(command, Command::Shar { .. } | Command::Unsh { .. })
            .then(|| to.clone())
            .flatten();
        Self {
            command: command.name(),
            path: path.filter(|p| !p.is_empty()),
            to: if user.is_some() { None } else { to },
            user,
        }
    }

    /// The path a refusal with `code` and `message` is about, escaped:
    /// RENAME's target when it exists already, the grantee of a share when the
    /// message is about the user, else the command's path.
    pub(super) fn path_for(&self, code: ErrorCode, message: &str) -> Option<String> {
        let path = match (&self.to, &self.user, code) {
            (Some(to), _, ErrorCode::ALREADY_EXISTS) => Some(to),
            (_, Some(user), _) if message.contains("user") => Some(user),
            _ => self.path.as_ref(),
        };
        path.map(|p| escape(p).into_owned())
    }

    /// A request about a transfer's remote path (`RETR` or `STOR`).
    pub(super) fn transfer(command: &'static str, path: &str) -> Self {
        Self {
            command,
            path: Some(path.to_owned()),
            to: None,
            user: None,
        }
    }

    /// The server's refusal of this request as an error.
    pub(super) fn refused(&self, code: ErrorCode, message: &str) -> ClientError {
        ClientError::Server {
            code,
            message: message.to_owned(),
            path: self.path_for(code, message),
            hint: self.hint(code),
        }
    }

    /// What to do about a refusal with `code`, where the refusal alone does not say.
    pub(super) fn hint(&self, code: ErrorCode) -> Option<&'static str> {
        Some(match (self.command, code) {
            ("RETR" | "REGET", ErrorCode::IS_A_DIRECTORY) => "use `get -r` for a folder",
            ("STOR", ErrorCode::IS_A_DIRECTORY) => "name a file inside it, or use `put -r`",
            ("DELE", ErrorCode::IS_A_DIRECTORY) => {
                "use `rm -r` to delete it with everything in it, or `rmdir` if it is empty"
            }
            ("RMD", ErrorCode::NOT_A_DIRECTORY) => "use `rm` for a file",
            ("RMD", ErrorCode::NOT_EMPTY) => "remove what it holds first",
            (_, ErrorCode::QUOTA_EXCEEDED) => "`quota` shows your use and limits",
            _ => return None,
        })
    }
}

/// The server's refusal as one line: the message it sent (which says what the
/// code says, in words), or the code's words when it sent none; after the path
/// and before a hint when there are.
pub(crate) fn refusal(
    code: ErrorCode,
    message: &str,
    path: Option<&str>,
    hint: Option<&str>,
) -> String {
    let mut text = match path {
        Some(path) => format!("{path}: "),
        None => String::new(),
    };
    text.push_str(&without_code(code, message));
    if let Some(hint) = hint {
        text.push_str(&format!(" ({hint})"));
    }
    text
}

/// `message` (escaped), or the code's words when it is empty; never the code's
/// words followed by a message that starts with them.
pub(crate) fn without_code(code: ErrorCode, message: &str) -> String {
    let message = message.trim();
    if message.is_empty() {
        code_text(code)
    } else {
        escape(message).into_owned()
    }
}

/// A transfer ended by the protocol: the code's words and the reason, unless
/// the reason already starts with them.
pub(crate) fn transfer_ended(code: ErrorCode, reason: &str) -> String {
    let words = code_text(code);
    let reason = escape(reason.trim());
    if reason.is_empty() {
        words
    } else if reason.to_lowercase().starts_with(&words) {
        reason.into_owned()
    } else {
        format!("{words}: {reason}")
    }
}

/// Why the session ended, as one sentence: who ended it and the reason it
/// carried (a server's refusal, "idle for 10 minutes").
pub(crate) fn closed(reason: &CloseReason) -> String {
    if let Some(tls) = &reason.tls {
        return self::tls(tls, None);
    }
    let why = without_code(reason.code, &reason.reason);
    match (reason.by, reason.code) {
        // The transport ended without a Close from the server.
        (_, ErrorCode::TRANSPORT_CLOSED) => "the server closed the connection".to_owned(),
        (Initiator::Remote, ErrorCode::BUSY) => {
            format!("the server turned the connection away: {why}")
        }
        (Initiator::Remote, ErrorCode::NO_ERROR) => "the server ended the session".to_owned(),
        (Initiator::Remote, _) => format!("the server ended the session: {why}"),
        (Initiator::Local, _) => format!("the session ended: {why}"),
    }
}

/// Why connecting to `peers` (the addresses as the user gave them) failed, in
/// words, with what to check.
pub fn connect_failure(error: &sfs_sctp::Error, peers: &str) -> String {
    let os = std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<io::Error>())
        .and_then(io::Error::raw_os_error);
    let check = "check --peer and --port, and that sfs-server runs there";
    match (error, os) {
        (sfs_sctp::Error::SctpUnavailable, _) => error.to_string(),
        (sfs_sctp::Error::ConnectTimeout(after), _) => format!(
            "no answer from {peers} within {} s: check --peer and the network, or raise --connect-timeout",
            after.as_secs()
        ),
        (_, Some(libc::ECONNREFUSED)) => {
            format!("cannot connect to {peers}: connection refused ({check})")
        }
        (sfs_sctp::Error::ConnectFailed { .. }, _) => {
            format!("cannot connect to {peers}: the association could not be set up ({check})")
        }
        (_, Some(libc::ENETUNREACH | libc::EHOSTUNREACH | libc::EADDRNOTAVAIL)) => {
            let source = io::Error::from_raw_os_error(os.unwrap_or_default());
            format!(
                "cannot connect to {peers}: {} (check --peer, --local and the network)",
                os_words(&source)
            )
        }
        (_, Some(code)) => format!(
            "cannot connect to {peers}: {}",
            os_words(&io::Error::from_raw_os_error(code))
        ),
        (_, None) => format!("cannot connect to {peers}: {error}"),
    }
}

/// An OS error in words, without `(os error N)`: what `path` (a local path,
/// already escaped) could not be used for.
pub(crate) fn local_io(path: &str, error: &io::Error) -> String {
    let words = match error.kind() {
        io::ErrorKind::NotFound => return format!("no such local file or folder {path}"),
        io::ErrorKind::PermissionDenied => "permission denied (check its mode and owner)".into(),
        io::ErrorKind::AlreadyExists => "already exists".into(),
        io::ErrorKind::IsADirectory => "is a folder".into(),
        io::ErrorKind::NotADirectory => "a part of the path is not a folder".into(),
        io::ErrorKind::StorageFull => "the local disk is full".into(),
        io::ErrorKind::ReadOnlyFilesystem => "the local file system is read-only".into(),
        io::ErrorKind::InvalidFilename => "the name is too long for the local file system".into(),
        _ => os_words(error),
    };
    format!("{path}: {words}")
}

/// Why the session refused to send a command, in words: usually a value beyond
/// a wire limit (a path longer than 4096 bytes).
pub(crate) fn api(error: &ApiError) -> String {
    match error {
        ApiError::Encode(EncodeError::TooLong(field)) => match *field {
            "path" => format!("the path is too long: at most {MAX_PATH_LEN} bytes"),
            "user" => format!("the user name is too long: at most {MAX_USER_LEN} bytes"),
            other => format!("the {other} is too long"),
        },
        ApiError::Encode(EncodeError::InvalidValue(field)) => {
            format!("the {field} cannot be sent")
        }
        ApiError::Closed => "the session has ended".into(),
        other => format!("cannot send the request: {other}"),
    }
}

/// A failed TLS setup in words. `ca` names the CA file the certificate was
/// checked against, when the caller knows it (the binary's `--ca`).
pub fn tls(error: &TlsError, ca: Option<&str>) -> String {
    let ca_text = match ca {
        Some(file) => format!("the CA in {file}"),
        None => "the given CA".to_owned(),
    };
    let problem = match error {
        TlsError::Rustls(rustls::Error::InvalidCertificate(problem)) => problem,
        TlsError::Rustls(other) => {
            return format!("the TLS handshake with the server failed: {other}")
        }
        TlsError::NoAlpn => {
            return "the server does not speak the SFS protocol (no `sfs` in its TLS handshake): check --peer and --port".into()
        }
        other => return format!("TLS failed: {other}"),
    };
    match problem {
        CertificateError::BadSignature | CertificateError::UnknownIssuer => {
            format!("the server's certificate is not signed by {ca_text} (use --ca FILE)")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let when = match problem {
                CertificateError::ExpiredContext { not_after, .. } => {
                    format!(" on {}", date(not_after.as_secs()))
                }
                _ => String::new(),
            };
            format!("the server's certificate expired{when}: the server's admin must renew it (sfs-admin cert init)")
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            let when = match problem {
                CertificateError::NotValidYetContext { not_before, .. } => {
                    format!(" until {}", date(not_before.as_secs()))
                }
                _ => String::new(),
            };
            format!("the server's certificate is not valid{when}: check this computer's clock")
        }
        CertificateError::NotValidForName => {
            "the server's certificate is not for the name asked for (use --server-name NAME)".into()
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => {
            let expected = match expected {
                rustls_pki_types::ServerName::DnsName(name) => name.as_ref().to_owned(),
                rustls_pki_types::ServerName::IpAddress(ip) => {
                    std::net::IpAddr::from(*ip).to_string()
                }
                _ => "the name asked for".into(),
            };
            let names = presented
                .iter()
                .map(|name| escape(presented_name(name)).into_owned())
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "the server's certificate is for {names}, not {expected} (use --server-name NAME)"
            )
        }
        other => format!("the server's certificate was refused: {other:?}"),
    }
}

/// A name from a certificate as rustls presents it (`DnsName("localhost")`,
/// `IpAddress(127.0.0.1)`), without the wrapping.
fn presented_name(name: &str) -> &str {
    name.strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            name.strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        })
        .unwrap_or(name)
}

/// A Unix time as a UTC date and time to the minute.
fn date(secs: u64) -> String {
    let Ok(secs) = i64::try_from(secs) else {
        return format!("{secs} s after 1970");
    };
    match jiff::Timestamp::from_second(secs) {
        Ok(time) => time.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        Err(_) => format!("{secs} s after 1970"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_lose_their_number() {
        let error = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(os_words(&error), "connection refused");
        let missing = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(
            local_io("a.txt", &missing),
            "no such local file or folder a.txt"
        );
    }

    #[test]
    fn connect_failures_say_what_to_check() {
        let refused = sfs_sctp::Error::Io {
            op: "sctp_connectx",
            source: io::Error::from_raw_os_error(libc::ECONNREFUSED),
        };
        assert_eq!(
            connect_failure(&refused, "127.0.0.1:7373"),
            "cannot connect to 127.0.0.1:7373: connection refused (check --peer and --port, and that sfs-server runs there)"
        );
        let unreachable = sfs_sctp::Error::Io {
            op: "sctp_connectx",
            source: io::Error::from_raw_os_error(libc::ENETUNREACH),
        };
        assert_eq!(
            connect_failure(&unreachable, "192.0.2.1:7373"),
            "cannot connect to 192.0.2.1:7373: network is unreachable (check --peer, --local and the network)"
        );
        let timeout = sfs_sctp::Error::ConnectTimeout(std::time::Duration::from_secs(10));
        assert_eq!(
            connect_failure(&timeout, "192.0.2.1:7373"),
            "no answer from 192.0.2.1:7373 within 10 s: check --peer and the network, or raise --connect-timeout"
        );
    }

    #[test]
    fn a_refusal_says_its_words_once() {
        let code = ErrorCode::IS_A_DIRECTORY;
        assert_eq!(
            refusal(code, "is a folder", Some("docs"), None),
            "docs: is a folder"
        );
        assert_eq!(refusal(code, "", None, None), "is a directory");
        let denied = "permission denied: the share does not include write";
        assert_eq!(
            refusal(ErrorCode::PERMISSION_DENIED, denied, None, None),
            denied
        );
        assert_eq!(
            transfer_ended(ErrorCode::TIMED_OUT, "timed out: no progress"),
            "timed out: no progress"
        );
        assert_eq!(
            transfer_ended(ErrorCode::TIMED_OUT, "no progress for 60 s"),
            "timed out: no progress for 60 s"
        );
    }

    #[test]
    fn certificate_problems_name_the_fix() {
        let bad = TlsError::Rustls(rustls::Error::InvalidCertificate(
            CertificateError::BadSignature,
        ));
        assert_eq!(
            tls(&bad, Some("certs/ca.pem")),
            "the server's certificate is not signed by the CA in certs/ca.pem (use --ca FILE)"
        );
        let expired = TlsError::Rustls(rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(
                    1_800_000_000,
                )),
                not_after: rustls_pki_types::UnixTime::since_unix_epoch(
                    std::time::Duration::from_secs(1_700_000_000),
                ),
            },
        ));
        assert_eq!(
            tls(&expired, None),
            "the server's certificate expired on 2023-11-14 22:13 UTC: the server's admin must renew it (sfs-admin cert init)"
        );
        let name = TlsError::Rustls(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForNameContext {
                expected: rustls_pki_types::ServerName::try_from("files.example").unwrap(),
                presented: vec![
                    "DnsName(\"localhost\")".into(),
                    "IpAddress(127.0.0.1)".into(),
                ],
            },
        ));
        assert_eq!(
            tls(&name, None),
            "the server's certificate is for localhost, 127.0.0.1, not files.example (use --server-name NAME)"
        );
    }
}
