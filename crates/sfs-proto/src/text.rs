//! Showing text from a peer to people and logs without letting it drive a terminal
//! or forge a log line.
//!
//! A file or user name may hold any character but `/` and NUL, so a hostile peer
//! can name a file `a\x1b[2J` to clear a screen, `a\nuser=root` to forge a log
//! line, or use Unicode direction overrides to make `exe.txt` look like `txt.exe`.
//! [`escape`] makes such characters visible; backslashes are doubled so that an
//! escape can never be forged by a name that spells one.
//!
//! ```
//! use sfs_proto::text::escape;
//!
//! assert_eq!(escape("a\x1b[2J"), "a\\x1b[2J");
//! assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
//! assert_eq!(escape("notes.txt"), "notes.txt");
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` is shown as an escape by [`escape`]: the backslash, control
/// characters (C0, DEL, C1), zero-width characters and every bidirectional mark,
/// embedding, override and isolate.
pub fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control()
        || matches!(c,
            '\u{200b}'..='\u{200f}' // zero-width characters and direction marks
            | '\u{202a}'..='\u{202e}' // direction embeddings and overrides
            | '\u{2066}'..='\u{2069}' // direction isolates
            | '\u{feff}' // zero-width no-break space
        )
}

/// Returns `text` with every character [`needs_escape`] selects written as an
/// escape: `\\`, `\n`, `\r`, `\t`, `\xNN` below U+0100, `\u{N}` above. Borrows
/// when nothing needs escaping. The result holds no control character.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    escape_into(&mut out, text, |_| false);
    Cow::Owned(out)
}

/// Appends `text` to `out` escaped as [`escape`] does, and also escapes every
/// character for which `also` is true (a `"` becomes `\"`; others become
/// `\xNN` or `\u{N}`), for callers that give more characters a meaning, such as a
/// log format that quotes values.
pub fn escape_into(out: &mut String, text: &str, also: impl Fn(char) -> bool) {
    for c in text.chars() {
        if !needs_escape(c) && !also(c) {
            out.push(c);
            continue;
        }
        // Writing to a String cannot fail.
        let _ = match c {
            '\\' => out.write_str("\\\\"),
            '\n' => out.write_str("\\n"),
            '\r' => out.write_str("\\r"),
            '\t' => out.write_str("\\t"),
            '"' => out.write_str("\\\""),
            c if u32::from(c) < 0x100 => write!(out, "\\x{:02x}", u32::from(c)),
            c => write!(out, "\\u{{{:x}}}", u32::from(c)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_names_are_not_copied() {
        for name in [
            "a",
            "report final.pdf",
            "Ünïcödé ñame",
            "日本語.txt",
            "a-b_c.d",
        ] {
            assert!(matches!(escape(name), Cow::Borrowed(_)), "{name}");
        }
    }

    #[test]
    fn terminal_controls_are_made_visible() {
        assert_eq!(escape("a\x1b[2J"), "a\\x1b[2J");
        assert_eq!(escape("bell\x07"), "bell\\x07");
        assert_eq!(escape("two\nlines\r"), "two\\nlines\\r");
        assert_eq!(escape("tab\there"), "tab\\there");
        assert_eq!(escape("del\x7f"), "del\\x7f");
        assert_eq!(escape("c1\u{9b}31m"), "c1\\x9b31m");
        assert_eq!(escape("nul\0"), "nul\\x00");
    }

    #[test]
    fn direction_overrides_and_invisibles_are_made_visible() {
        assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(escape("a\u{2066}b"), "a\\u{2066}b");
        assert_eq!(escape("zero\u{200b}width"), "zero\\u{200b}width");
        assert_eq!(escape("bom\u{feff}"), "bom\\u{feff}");
    }

    #[test]
    fn backslashes_are_doubled_so_escapes_cannot_be_forged() {
        assert_eq!(escape(r"a\x1b"), r"a\\x1b");
        assert_ne!(escape("a\x1b"), escape(r"a\x1b"));
    }

    #[test]
    fn extra_characters_are_escaped_on_request() {
        let mut out = String::new();
        escape_into(&mut out, "q\"=\u{2028} ", |c| c == '"' || c == '\u{2028}');
        assert_eq!(out, "q\\\"=\\u{2028} ");
    }

    proptest! {
        #[test]
        fn escaped_text_holds_no_control_or_bidi_character(text in any::<String>()) {
            let escaped = escape(&text);
            prop_assert!(!escaped.chars().any(|c| c.is_control()));
            prop_assert!(!escaped.chars().any(|c| c != '\\' && needs_escape(c)));
        }

        #[test]
        fn escaping_is_injective(a in any::<String>(), b in any::<String>()) {
            prop_assume!(a != b);
            prop_assert_ne!(escape(&a), escape(&b));
        }

        #[test]
        fn text_without_escapes_is_unchanged(text in "[a-zA-Z0-9 ._é日-]*") {
            prop_assert_eq!(escape(&text), text.as_str());
        }
    }
}
