//! An error and its causes as one line for a person, each cause said once.
//!
//! Errors built with `thiserror` often show their source in their own text
//! (`#[error("connect: {0}")]`) and also hand it on as `source()`; printing the
//! whole chain (as `anyhow`'s `{:#}` does) then says it twice:
//! `connect: Connection refused (os error 111): Connection refused (os error 111)`.
//! [`error_line`] skips a cause whose words the line already holds, and drops
//! the `(os error N)` the standard library adds.
//!
//! ```
//! use sfs_proto::report::error_line;
//!
//! #[derive(Debug, thiserror::Error)]
//! #[error("connect: {source}")]
//! struct Connect {
//!     source: std::io::Error,
//! }
//! let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
//! let error = Connect { source: refused };
//! assert_eq!(error_line(&error), "connect: connection refused");
//! ```

use std::error::Error;
use std::io;

/// `error` and its sources as one line: `a: b: c`, each cause once, OS errors
/// in words (see the module documentation).
pub fn error_line(error: &(dyn Error + 'static)) -> String {
    let mut line = String::new();
    let mut cause = Some(error);
    while let Some(current) = cause {
        let words = match current.downcast_ref::<io::Error>() {
            Some(io) => os_words(io),
            None => without_os_numbers(&current.to_string()),
        };
        if !line.to_lowercase().contains(&words.to_lowercase()) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&words);
        }
        cause = current.source();
    }
    line
}

/// The OS's text for `error`, without ` (os error N)` and starting lower case
/// ("connection refused").
pub fn os_words(error: &io::Error) -> String {
    let text = without_os_numbers(&error.to_string());
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `text` without the ` (os error N)` the standard library adds to OS errors.
fn without_os_numbers(text: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + MARK.len()..];
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match after[digits..].strip_prefix(')') {
            Some(tail) if digits > 0 => rest = tail,
            _ => {
                out.push_str(MARK);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{op}: {source}")]
    struct Shows {
        op: &'static str,
        source: io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("reaching the server")]
    struct Context(#[source] Shows);

    #[test]
    fn a_cause_already_in_the_line_is_not_repeated() {
        let refused = io::Error::from_raw_os_error(111);
        let error = Context(Shows {
            op: "connect",
            source: refused,
        });
        assert_eq!(
            error_line(&error),
            "reaching the server: connect: Connection refused"
        );
        let missing = io::Error::from_raw_os_error(2);
        assert_eq!(error_line(&missing), "no such file or directory");
        assert_eq!(without_os_numbers("odd (os error x)"), "odd (os error x)");
    }
}
