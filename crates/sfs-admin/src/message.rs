//! One plain line for an error: the chain of causes without repeats or OS codes.
//!
//! Library errors often show their source in their own text as well as through
//! `source()` (the users file's I/O error does), so printing anyhow's `{:#}` chain
//! would say the same thing twice ("...: No such file or directory (os error 2): No
//! such file or directory (os error 2)"). Each cause is printed only if the line
//! does not say it already, and an I/O error is said in plain words.

use std::io;

/// The error's causes joined by ": ", each once, in plain words.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let raw = strip_os_codes(&cause.to_string());
        let text = match cause.downcast_ref::<io::Error>() {
            Some(io) => {
                let plain = plain_io(io);
                if line.contains(&raw) {
                    // Said already by the error that wraps it: say it plainly there.
                    line = line.replace(&raw, &plain);
                    continue;
                }
                plain
            }
            None => raw,
        };
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// An I/O error as a user reads it: "no such file or folder", not
/// "No such file or directory (os error 2)".
fn plain_io(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound => "no such file or folder".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        io::ErrorKind::AlreadyExists => "it already exists".to_string(),
        _ => strip_os_codes(&error.to_string()),
    }
}

/// Drops every " (os error N)": the number means nothing to the reader.
fn strip_os_codes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(" (os error ") {
        out.push_str(&rest[..start]);
        rest = match rest[start..].find(')') {
            Some(end) => &rest[start + end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error that shows its source in its text and through `source()`.
    #[derive(Debug)]
    struct Repeats {
        source: io::Error,
    }

    impl std::fmt::Display for Repeats {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "users file u.json: {}", self.source)
        }
    }

    impl std::error::Error for Repeats {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn a_cause_already_said_is_not_repeated() {
        let io = io::Error::from_raw_os_error(2);
        let error = anyhow::Error::new(Repeats { source: io }).context("adding the user");
        assert_eq!(
            one_line(&error),
            "adding the user: users file u.json: no such file or folder"
        );
    }

    #[test]
    fn io_errors_are_plain_words() {
        let error = anyhow::Error::new(io::Error::from_raw_os_error(13)).context("writing f");
        assert_eq!(one_line(&error), "writing f: permission denied");
        let error = anyhow::Error::new(io::Error::from_raw_os_error(2)).context("reading f");
        assert_eq!(one_line(&error), "reading f: no such file or folder");
    }
}
