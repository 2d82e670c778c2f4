//! The commands that delete or replace remote names: `rm` (files, patterns,
//! and whole folders with `-r`) and `mv` (with `-f` onto an existing file).
//!
//! `rm -r FOLDER` walks the folder with LIST answers (a level at a time, each
//! level's LISTs pipelined, as `get -r` does), deletes every file and link in it
//! (a link is deleted, never followed), then removes the folders deepest first.
//! In the interactive shell it first asks `delete folder X and everything in it
//! (N files, M folders)?`, unless `-f`; batch files and one-shot commands never
//! ask, as sftp's batch mode does not. It never takes a whole tree that holds
//! more than a folder of files: the home itself (`rm -r /`, `rm -r .` at the
//! top), `/shared`, or a whole home under it (`/shared/OWNER`); paths are made
//! absolute from the remote folder first, so `..` cannot hide them.

use sfs_net::Transport;
use sfs_proto::control::{Command as Wire, EntryKind, ErrorCode};

use super::glob::{incomplete, is_pattern, remote_join, unescape};
use super::listing::listing;
use super::tree::MAX_TREE_DEPTH;
use super::Shell;
use crate::connection::ClientError;
use crate::display::escape;

/// What `rm -r` removes under one folder: files (and links) first, then the
/// folders, parents before children (removed in reverse).
#[derive(Debug, Default)]
struct RemovalPlan {
    files: Vec<String>,
    dirs: Vec<String>,
    problems: Vec<String>,
}

impl<T: Transport> Shell<T> {
    /// `rm [-fr] PATH|PATTERN...`: every name, each pattern's matching files
    /// and, with `-r`, folders with everything in them (without `-r` a folder
    /// is reported and skipped). In the interactive shell a pattern that
    /// matches more than one file asks first, and so does each folder, unless
    /// `-f`.
    pub(crate) async fn rm(
        &mut self,
        force: bool,
        recursive: bool,
        paths: Vec<String>,
    ) -> Result<(), ClientError> {
        let mut problems = Vec::new();
        let mut targets = Vec::new();
        let mut folders = Vec::new();
        let mut from_patterns = 0;
        for path in paths {
            if !is_pattern(&path) {
                let path = unescape(&path);
                // Only `-r` needs to know a folder before deleting.
                let is_folder = recursive
                    && self
                        .remote_entry(&path)
                        .await?
                        .is_some_and(|entry| entry.kind == EntryKind::Dir);
                if is_folder {
                    folders.push(path);
                } else {
                    targets.push(path);
                }
                continue;
            }
            match self.remote_glob(&path).await {
                Ok(matched) => {
                    for (full, entry) in matched {
                        if entry.kind != EntryKind::Dir {
                            from_patterns += 1;
                            targets.push(full);
                        } else if recursive {
                            folders.push(full);
                        } else {
                            problems.push(folder_hint(&full));
                        }
                    }
                }
                Err(ClientError::Incomplete(mut more)) => problems.append(&mut more),
                Err(err) => return Err(err),
            }
        }
        if from_patterns > 1 && !force && !self.confirm(&format!("delete {} files?", targets.len()))
        {
            targets.clear();
            folders.clear();
        }
        let single = targets.len() == 1 && folders.is_empty() && problems.is_empty();
        for path in targets {
            match self.expect_ok(Wire::Dele { path: path.clone() }).await {
                Ok(()) => {}
                Err(ClientError::Server { code, .. }) if code == ErrorCode::IS_A_DIRECTORY => {
                    let hint = folder_hint(&path);
                    if single {
                        return Err(ClientError::NotAsTyped(hint));
                    }
                    problems.push(hint);
                }
                // One name: its error as it is, as before patterns existed.
                Err(err) if single => return Err(err),
                Err(err @ (ClientError::Server { .. } | ClientError::UnexpectedReply(_))) => {
                    problems.push(err.about(&escape(&path)));
                }
                Err(err) => return Err(err),
            }
        }
        for shown in folders {
            let folder = absolute(&self.remote_dir, &shown);
            if let Some(refusal) = whole_tree_refusal(&folder) {
                problems.push(refusal);
                continue;
            }
            self.remove_tree(&folder, &shown, force, &mut problems)
                .await?;
        }
        incomplete(problems)
    }

    /// Deletes the remote folder `folder` (absolute) with everything in it,
    /// after asking about it as `shown` (in the interactive shell, without
    /// `force`). What cannot be deleted is added to `problems` and the rest goes on.
    async fn remove_tree(
        &mut self,
        folder: &str,
        shown: &str,
        force: bool,
        problems: &mut Vec<String>,
    ) -> Result<(), ClientError> {
        let mut plan = self.plan_removal(folder).await?;
        let question = format!(
            "delete folder {} and everything in it ({} files, {} folders)?",
            escape(shown),
            plan.files.len(),
            plan.dirs.len().saturating_sub(1)
        );
        if !force && !self.confirm(&question) {
            problems.push(format!("kept {}", escape(shown)));
            return Ok(());
        }
        let deletes = plan
            .files
            .iter()
            .map(|path| Wire::Dele { path: path.clone() })
            .collect();
        let answers = self.connection.run_all(deletes).await;
        for (path, answer) in plan.files.iter().zip(answers) {
            match answer {
                Ok(_) => {}
                Err(err @ ClientError::Server { .. }) => {
                    plan.problems.push(err.about(&escape(path)));
                }
                Err(err) => return Err(err),
            }
        }
        // Children before their parents: the reverse of the walk.
        for dir in plan.dirs.iter().rev() {
            match self.expect_ok(Wire::Rmd { path: dir.clone() }).await {
                Ok(()) => {}
                Err(err @ ClientError::Server { .. }) => {
                    plan.problems.push(err.about(&escape(dir)));
                }
                Err(err) => return Err(err),
            }
        }
        problems.append(&mut plan.problems);
        Ok(())
    }

    /// Walks `folder` a level at a time, each level's LISTs pipelined, at most
    /// [`MAX_TREE_DEPTH`] deep. A name that is not one plain path component
    /// (only a hostile server sends one) is skipped, never joined into a path.
    async fn plan_removal(&mut self, folder: &str) -> Result<RemovalPlan, ClientError> {
        let mut plan = RemovalPlan::default();
        let mut level = vec![folder.to_owned()];
        for _ in 0..=MAX_TREE_DEPTH {
            if level.is_empty() {
                return Ok(plan);
            }
            let lists = level
                .iter()
                .map(|dir| Wire::List { path: dir.clone() })
                .collect();
            let answers = self.connection.run_all(lists).await;
            let mut next = Vec::new();
            for (dir, answer) in level.into_iter().zip(answers) {
                let replies = match answer {
                    Ok(replies) => replies,
                    Err(err @ ClientError::Server { .. }) => {
                        plan.problems.push(err.about(&escape(&dir)));
                        continue;
                    }
                    Err(err) => return Err(err),
                };
                for entry in listing(&replies) {
                    let full = remote_join(&dir, &entry.name);
                    if entry.name.is_empty()
                        || entry.name == "."
                        || entry.name == ".."
                        || entry.name.contains('/')
                    {
                        plan.problems
                            .push(format!("skipping {}: not a plain name", escape(&full)));
                    } else if full == SHARED {
                        // Other users' files, not this folder's: never walked.
                    } else if entry.kind == EntryKind::Dir {
                        next.push(full);
                    } else {
                        plan.files.push(full);
                    }
                }
                plan.dirs.push(dir);
            }
            level = next;
        }
        for dir in level {
            plan.problems.push(format!(
                "skipping {}: more than {MAX_TREE_DEPTH} folders deep",
                escape(&dir)
            ));
        }
        Ok(plan)
    }

    /// `mv [-f] FROM TO`. The server never replaces an existing name in a
    /// rename; sftp's `rename` does (for a file), so with `-f` an existing
    /// file TO is deleted first, then FROM renamed: two steps, not one (a name
    /// that appears between them is still refused). Without `-f` the error
    /// names TO and says to use `-f`.
    pub(crate) async fn mv(
        &mut self,
        force: bool,
        from: String,
        to: String,
    ) -> Result<(), ClientError> {
        let rename = |from: &String, to: &String| Wire::Rename {
            from: from.clone(),
            to: to.clone(),
        };
        match self.expect_ok(rename(&from, &to)).await {
            Err(ClientError::Server { code, .. }) if code == ErrorCode::ALREADY_EXISTS => {}
            other => return other,
        }
        let existing = self.remote_entry(&to).await?;
        if existing.is_some_and(|entry| entry.kind == EntryKind::Dir) {
            return Err(ClientError::NotAsTyped(format!(
                "{} is an existing folder: mv does not replace a folder (give a new name, or remove it first with rm -r)",
                escape(&to)
            )));
        }
        if !force {
            return Err(ClientError::NotAsTyped(format!(
                "{} already exists: use mv -f to replace it",
                escape(&to)
            )));
        }
        self.expect_ok(Wire::Dele { path: to.clone() }).await?;
        self.expect_ok(rename(&from, &to)).await
    }
}

/// The folder at the top of every home that shows other users' files.
const SHARED: &str = "/shared";

/// `path` as an absolute remote path, from the remote folder `cwd`, with `.`
/// and `..` resolved as the server does (`..` never climbs above `/`).
fn absolute(cwd: &str, path: &str) -> String {
    let mut names: Vec<&str> = Vec::new();
    let start = if path.starts_with('/') { "" } else { cwd };
    for name in start.split('/').chain(path.split('/')) {
        match name {
            "" | "." => {}
            ".." => {
                names.pop();
            }
            name => names.push(name),
        }
    }
    format!("/{}", names.join("/"))
}

/// Why `rm -r` refuses a whole tree: the home itself, `/shared`, or a whole
/// home under it; each would reach far more than one folder of files.
fn whole_tree_refusal(folder: &str) -> Option<String> {
    if folder == "/" {
        return Some("rm -r does not delete your whole home: name the folders in it".into());
    }
    if folder == SHARED {
        return Some(
            "rm -r does not delete /shared (other users' files): name a folder in it".into(),
        );
    }
    folder
        .strip_prefix("/shared/")
        .filter(|owner| !owner.contains('/'))
        .map(|owner| {
            format!(
                "rm -r does not delete {} (all of {}'s files you reach): name a folder in it",
                escape(folder),
                escape(owner)
            )
        })
}

/// What `rm` says of a folder it was not asked to delete.
fn folder_hint(path: &str) -> String {
    format!(
        "{}: is a folder (use `rm -r` to delete it with everything in it, or `rmdir` if it is empty)",
        escape(path)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_against_the_remote_folder() {
        assert_eq!(absolute("/", "a"), "/a");
        assert_eq!(absolute("/x/y", "a/./b"), "/x/y/a/b");
        assert_eq!(absolute("/x/y", "../a"), "/x/a");
        assert_eq!(absolute("/x", "../../.."), "/");
        assert_eq!(absolute("/x", "/abs/"), "/abs");
        assert_eq!(absolute("/", "."), "/");
    }

    #[test]
    fn whole_homes_and_shared_are_never_removed_as_trees() {
        for folder in ["/", "/shared", "/shared/bob"] {
            assert!(whole_tree_refusal(folder).is_some(), "{folder}");
        }
        for folder in ["/a", "/shared/bob/old", "/a/shared"] {
            assert_eq!(whole_tree_refusal(folder), None, "{folder}");
        }
    }
}
