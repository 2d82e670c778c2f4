//! Showing names that came from the server without letting them drive the terminal.
//!
//! A file name may hold any byte but `/` and NUL, so a hostile server (or a user
//! sharing a file) can name one `a\x1b[2J` to clear the screen, or use Unicode
//! direction overrides to make `exe.txt` look like `txt.exe`. Every name shown to the
//! user goes through [`escape`], which makes such characters visible instead.
//!
//! ```
//! use sfs_client::display::escape;
//!
//! assert_eq!(escape("a\x1b[2J"), "a\\x1b[2J");
//! assert_eq!(escape("notes.txt"), "notes.txt");
//! ```

use std::borrow::Cow;

/// Returns `name` with control, bidirectional-override and invisible characters
/// shown as escapes, and backslashes doubled so that escapes cannot be forged.
pub fn escape(name: &str) -> Cow<'_, str> {
    if !name.chars().any(needs_escape) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x100 && needs_escape(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c == '\\'
        || c.is_control() // C0, DEL and C1
        || matches!(c,
            '\u{200b}'..='\u{200f}' // zero-width characters and direction marks
            | '\u{202a}'..='\u{202e}' // direction embeddings and overrides
            | '\u{2066}'..='\u{2069}' // direction isolates
            | '\u{feff}' // zero-width no-break space
        )
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn plain_names_are_not_copied() {
        for name in [
            "a",
            "report final.pdf",
            "Ünïcödé ñame",
            "日本語.txt",
            "a-b_c.d",
        ] {
            assert!(
                matches!(escape(name), std::borrow::Cow::Borrowed(_)),
                "{name}"
            );
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
    }

    #[test]
    fn direction_overrides_and_invisibles_are_made_visible() {
        assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(escape("a\u{2066}b"), "a\\u{2066}b");
        assert_eq!(escape("zero\u{200b}width"), "zero\\u{200b}width");
    }

    #[test]
    fn backslashes_are_doubled_so_escapes_cannot_be_forged() {
        assert_eq!(escape(r"a\x1b"), r"a\\x1b");
        assert_ne!(escape("a\x1b"), escape(r"a\x1b"));
    }

    #[test]
    fn escaped_output_never_holds_a_control_character() {
        let nasty: String = (0u32..0x300).filter_map(char::from_u32).collect();
        assert!(!escape(&nasty).chars().any(char::is_control));
    }
}
