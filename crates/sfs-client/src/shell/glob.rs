//! Patterns in remote and local names, as sftp expands them: `*`, `?` and
//! `[abc]` in the last part of a name (`logs/*.txt`), matched by this client
//! with `globset` against the folder's listing or, for local names, the local
//! folder's entries, never by a shell. `*` does not match a leading dot; a `\` makes the
//! next character plain (`'a\*b'`, quoted so the shell's own splitting keeps the
//! backslash); a name that is exactly the pattern's text matches too, so a file
//! named `*.txt` can be named as it is.
//!
//! The commands `ls` and `rm` are here; `mget`/`mput` use [`Shell::remote_glob`]
//! and [`local_glob`].

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use sfs_net::Transport;
use sfs_proto::control::{Command as Wire, Entry, EntryKind};

use super::listing::{format_entry, listing};
use super::Shell;
use crate::connection::ClientError;
use crate::display::escape;

/// Whether `text` is a pattern: it holds a pattern character not escaped by
/// `\`, and the last part is a well-formed pattern (`a[b`, with its `[` never
/// closed, is a plain name, as glob(3) takes it).
pub(crate) fn is_pattern(text: &str) -> bool {
    has_pattern_char(text) && NamePattern::new(split_folder(text).1).is_ok()
}

fn has_pattern_char(text: &str) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// `text` with its `\` escapes removed: the plain name it stands for.
pub(crate) fn unescape(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => plain.extend(chars.next()),
            c => plain.push(c),
        }
    }
    plain
}

/// A pattern for the last part of a name.
#[derive(Debug)]
pub(crate) struct NamePattern {
    text: String,
    matcher: GlobMatcher,
}

impl NamePattern {
    /// Compiles `text` (one name, no `/`).
    ///
    /// # Errors
    ///
    /// [`ClientError::Incomplete`] naming the pattern, for a malformed one (`[a`).
    pub(crate) fn new(text: &str) -> Result<Self, ClientError> {
        let matcher = GlobBuilder::new(text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|err| {
                ClientError::Incomplete(vec![format!(
                    "bad pattern {}: {}",
                    escape(text),
                    err.kind()
                )])
            })?
            .compile_matcher();
        Ok(Self {
            text: text.to_owned(),
            matcher,
        })
    }

    /// Whether `name` matches: as glob(3), a leading `.` must be matched by a
    /// leading `.` in the pattern.
    pub(crate) fn matches(&self, name: &str) -> bool {
        if name == self.text {
            return true;
        }
        if name.starts_with('.') && !self.text.starts_with('.') {
            return false;
        }
        self.matcher.is_match(name)
    }
}

/// Splits a remote path into its folder (empty for the current one) and last part.
pub(crate) fn split_folder(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((folder, name)) => (folder, name),
        None => ("", path),
    }
}

/// `folder/name`, or `name` in the current folder.
pub(crate) fn remote_join(folder: &str, name: &str) -> String {
    match folder {
        "" => name.to_owned(),
        folder => format!("{}/{name}", folder.trim_end_matches('/')),
    }
}

/// The local names matching `pattern` (relative to `cwd`; only its last part
/// may be a pattern), sorted, matched as remote ones are.
///
/// # Errors
///
/// [`ClientError::Incomplete`] for a malformed pattern.
pub(crate) fn local_glob(pattern: &str, cwd: &Path) -> Result<Vec<PathBuf>, ClientError> {
    let (folder, name) = split_folder(pattern);
    let matcher = NamePattern::new(name)?;
    // The folder part is a plain name: its own escapes are removed.
    let folder = cwd.join(unescape(folder));
    // A folder that cannot be read holds no match, as glob(3) says it.
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Ok(Vec::new());
    };
    let mut found: Vec<PathBuf> = entries
        // An entry that vanished meanwhile is not a match.
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|n| matcher.matches(n))
        })
        .map(|entry| folder.join(entry.file_name()))
        .collect();
    found.sort();
    Ok(found)
}

impl<T: Transport> Shell<T> {
    /// The entries a remote pattern matches, with their full paths, sorted by
    /// name. Only the last part may hold a pattern.
    ///
    /// # Errors
    ///
    /// The folder's LIST failing; [`ClientError::Incomplete`] for a malformed
    /// pattern or "no match for PATTERN".
    pub(crate) async fn remote_glob(
        &mut self,
        pattern: &str,
    ) -> Result<Vec<(String, Entry)>, ClientError> {
        let (folder, name) = split_folder(pattern);
        let matcher = NamePattern::new(name)?;
        let replies = self
            .connection
            .request(Wire::List {
                path: folder.to_owned(),
            })
            .await?;
        let matched: Vec<(String, Entry)> = listing(&replies)
            .into_iter()
            .filter(|entry| matcher.matches(&entry.name))
            .map(|entry| (remote_join(folder, &entry.name), entry))
            .collect();
        if matched.is_empty() {
            return Err(no_match(pattern));
        }
        Ok(matched)
    }

    /// `ls [PATH|PATTERN]`.
    pub(crate) async fn ls(&mut self, path: Option<String>) -> Result<(), ClientError> {
        let entries = match path {
            Some(pattern) if is_pattern(&pattern) => self
                .remote_glob(&pattern)
                .await?
                .into_iter()
                .map(|(_, entry)| entry)
                .collect(),
            path => {
                let path = path.as_deref().map(unescape).unwrap_or_default();
                listing(&self.connection.request(Wire::List { path }).await?)
            }
        };
        for entry in entries {
            self.line(format_entry(&entry))?;
        }
        Ok(())
    }

    /// `rm [-f] PATH|PATTERN...`: every name, each pattern's matching files
    /// (folders are skipped: `rmdir` removes them). In the interactive shell a
    /// pattern that matches more than one file asks first, unless `-f`.
    pub(crate) async fn rm(&mut self, force: bool, paths: Vec<String>) -> Result<(), ClientError> {
        let mut problems = Vec::new();
        let mut targets = Vec::new();
        let mut from_patterns = 0;
        for path in paths {
            if !is_pattern(&path) {
                targets.push(unescape(&path));
                continue;
            }
            match self.remote_glob(&path).await {
                Ok(matched) => {
                    for (full, entry) in matched {
                        if entry.kind == EntryKind::Dir {
                            problems.push(format!("{} is a folder (use rmdir)", escape(&full)));
                        } else {
                            from_patterns += 1;
                            targets.push(full);
                        }
                    }
                }
                Err(ClientError::Incomplete(mut more)) => problems.append(&mut more),
                Err(err) => return Err(err),
            }
        }
        if from_patterns > 1 && !force && !self.confirm(&format!("delete {} files?", targets.len()))
        {
            return incomplete(problems);
        }
        let single = targets.len() == 1 && problems.is_empty();
        for path in targets {
            match self.expect_ok(Wire::Dele { path: path.clone() }).await {
                Ok(()) => {}
                // One name: its error as it is, as before patterns existed.
                Err(err) if single => return Err(err),
                Err(err @ (ClientError::Server { .. } | ClientError::UnexpectedReply(_))) => {
                    problems.push(err.about(&escape(&path)));
                }
                Err(err) => return Err(err),
            }
        }
        incomplete(problems)
    }
}

/// "no match for PATTERN", as sftp says it.
pub(crate) fn no_match(pattern: &str) -> ClientError {
    ClientError::Incomplete(vec![format!("no match for {}", escape(pattern))])
}

/// Ok, or the problems met (each also printed as it happened).
pub(crate) fn incomplete(problems: Vec<String>) -> Result<(), ClientError> {
    if problems.is_empty() {
        Ok(())
    } else {
        for problem in &problems {
            eprintln!("sfs: {problem}");
        }
        Err(ClientError::Incomplete(problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_follow_glob_rules() {
        let star = NamePattern::new("*.txt").unwrap();
        assert!(star.matches("a.txt"));
        assert!(star.matches("with space.txt"));
        assert!(
            !star.matches(".hidden.txt"),
            "* never matches a leading dot"
        );
        assert!(!star.matches("a.txt.bak"));
        assert!(NamePattern::new(".*").unwrap().matches(".hidden"));
        let class = NamePattern::new("f[0-9]?").unwrap();
        assert!(class.matches("f1x"));
        assert!(!class.matches("fax"));
        assert!(NamePattern::new("[a").is_err());
    }

    #[test]
    fn escapes_make_pattern_characters_plain() {
        assert!(is_pattern("*.log"));
        assert!(is_pattern("a/b?"));
        assert!(!is_pattern(r"a\*b"));
        assert!(!is_pattern("plain name"));
        assert!(!is_pattern("a\x1b[2J"), "an unclosed class is a plain name");
        assert_eq!(unescape(r"a\*b\\c"), r"a*b\c");
        let escaped = NamePattern::new(r"a\*").unwrap();
        assert!(escaped.matches("a*"));
        assert!(!escaped.matches("ab"));
        // The pattern's own text names a file of that name.
        assert!(NamePattern::new("[x]").unwrap().matches("[x]"));
    }

    #[test]
    fn remote_paths_split_into_folder_and_name() {
        assert_eq!(split_folder("*.txt"), ("", "*.txt"));
        assert_eq!(split_folder("logs/*.txt"), ("logs", "*.txt"));
        assert_eq!(split_folder("/*.txt"), ("/", "*.txt"));
        assert_eq!(remote_join("", "a"), "a");
        assert_eq!(remote_join("/", "a"), "/a");
        assert_eq!(remote_join("x/", "a"), "x/a");
    }

    #[test]
    fn local_patterns_skip_dot_files_and_keep_the_folder_literal() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("we[ir]d");
        std::fs::create_dir(&cwd).unwrap();
        for name in ["a.csv", "b.csv", ".c.csv", "d.txt"] {
            std::fs::write(cwd.join(name), b"x").unwrap();
        }
        let found = local_glob("*.csv", &cwd).unwrap();
        assert_eq!(found, vec![cwd.join("a.csv"), cwd.join("b.csv")]);
        assert!(local_glob("*.none", &cwd).unwrap().is_empty());
        assert_eq!(local_glob(".c*", &cwd).unwrap(), vec![cwd.join(".c.csv")]);
    }
}
