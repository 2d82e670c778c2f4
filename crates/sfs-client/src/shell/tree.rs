//! Whole folders both ways (`get -r`, `put -r`, and folders matched by
//! `mget -r`/`mput -r`), and modification times (`-p`).
//!
//! A download plan comes from LIST answers, walked a level at a time with each
//! level's LISTs pipelined, at most 64 levels deep. Every name
//! a server sends is checked before it becomes a local path: only plain names
//! (no `/`, not `.` or `..`, no control character or `\`) are used, the others
//! are skipped one by one with a message and the rest goes on, so nothing is
//! written outside the folder the user named. Symbolic links in a listing are
//! skipped, as sftp does. Local folders are created without following a link in
//! the way.
//!
//! An upload plan walks the local folder without following symbolic links: a
//! link is reported as skipped, never followed out of the tree. Remote folders
//! are made with pipelined MKDs (one already there is fine).
//!
//! Each plan then runs as one call to the transfer loop, and with `-p` each
//! file's time is set afterwards: locally from the listing, remotely with MFMT.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sfs_net::Transport;
use sfs_proto::control::{Command as Wire, EntryKind, ErrorCode, Reply};

use super::glob::remote_join;
use super::listing::listing;
use super::Shell;
use crate::connection::{
    check_distinct_targets, local_io_words, ClientError, TransferDone, TransferSpec,
};
use crate::display::escape;

/// How deep a remote tree is walked at most: deeper than any server stores,
/// so only a hostile server's endless listing reaches it.
pub(super) const MAX_TREE_DEPTH: usize = 64;

/// Files to download, with their remote times, and the local folders to make first.
#[derive(Debug, Default)]
pub(crate) struct DownloadPlan {
    /// Local folders, parents before children.
    pub(crate) dirs: Vec<PathBuf>,
    /// `(remote path, local file, remote mtime: 0 unknown)`.
    pub(crate) files: Vec<(String, PathBuf, i64)>,
    /// What was skipped, escaped, one line each.
    pub(crate) problems: Vec<String>,
}

/// Files to upload, with their local times, and the remote folders to make first.
#[derive(Debug, Default)]
pub(crate) struct UploadPlan {
    /// Remote folders, parents before children.
    pub(crate) dirs: Vec<String>,
    /// `(local file, remote path)`.
    pub(crate) files: Vec<(PathBuf, String)>,
    /// What was skipped, escaped, one line each.
    pub(crate) problems: Vec<String>,
}

/// Whether a name from a listing can be one local path component as it is.
fn plain_name(name: &str) -> bool {
    !(name.is_empty()
        || name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_control()))
}

/// Creates a local folder, or accepts one already there; never one reached
/// through a symbolic link (which could lead out of the tree).
fn make_local_dir(path: &Path) -> io::Result<()> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            if fs::symlink_metadata(path)?.is_dir() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "in the way and not a folder (a link is never followed)",
                ))
            }
        }
        Err(err) => Err(err),
    }
}

/// Seconds since the epoch, negative before it.
fn epoch_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Sets a downloaded file's time to the remote one.
fn set_local_mtime(path: &Path, mtime: i64) -> io::Result<()> {
    let magnitude = Duration::from_secs(mtime.unsigned_abs());
    let time = if mtime >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "time out of range"))?;
    fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(time)
}

/// Adds one folder's listing to `plan`: files to download, folders to walk
/// next (into `next`), and a problem for every name that is not written.
fn plan_listing(
    plan: &mut DownloadPlan,
    next: &mut Vec<(String, PathBuf)>,
    remote_dir: &str,
    local_dir: &Path,
    replies: &[Reply],
) {
    for entry in listing(replies) {
        let full = remote_join(remote_dir, &entry.name);
        if !plain_name(&entry.name) {
            plan.problems.push(format!(
                "skipping {}: not a name that can be written here",
                escape(&full)
            ));
            continue;
        }
        let target = local_dir.join(&entry.name);
        match entry.kind {
            EntryKind::Dir => next.push((full, target)),
            EntryKind::File => plan.files.push((full, target, entry.mtime)),
            EntryKind::Symlink => plan
                .problems
                .push(format!("skipping symbolic link {}", escape(&full))),
            EntryKind::Other => plan
                .problems
                .push(format!("skipping {}: not a regular file", escape(&full))),
        }
    }
}

impl UploadPlan {
    /// Adds the local folder `local` (not followed if it is a link) as the
    /// remote folder `remote`, with everything in it.
    pub(crate) fn add_tree(&mut self, local: &Path, remote: &str) {
        let mut queue = VecDeque::from([(local.to_owned(), remote.to_owned())]);
        while let Some((dir, remote_dir)) = queue.pop_front() {
            self.dirs.push(remote_dir.clone());
            let entries = match fs::read_dir(&dir).and_then(Iterator::collect::<io::Result<Vec<_>>>)
            {
                Ok(entries) => entries,
                Err(err) => {
                    self.problems
                        .push(local_io_words(&escape(&dir.to_string_lossy()), &err));
                    continue;
                }
            };
            let mut entries: Vec<_> = entries.into_iter().map(|e| e.path()).collect();
            entries.sort();
            for path in entries {
                let shown = escape(&path.to_string_lossy()).into_owned();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    self.problems
                        .push(format!("skipping {shown}: the name is not UTF-8"));
                    continue;
                };
                let target = remote_join(&remote_dir, name);
                // `symlink_metadata`: a link is seen as a link, never followed.
                match fs::symlink_metadata(&path).map(|m| m.file_type()) {
                    Ok(kind) if kind.is_dir() => queue.push_back((path, target)),
                    Ok(kind) if kind.is_file() => self.files.push((path, target)),
                    Ok(kind) if kind.is_symlink() => {
                        self.problems
                            .push(format!("skipping symbolic link {shown}"));
                    }
                    Ok(_) => self
                        .problems
                        .push(format!("skipping {shown}: not a regular file")),
                    Err(err) => self.problems.push(local_io_words(&shown, &err)),
                }
            }
        }
    }
}

impl<T: Transport> Shell<T> {
    /// Adds the remote folder `remote` as the local folder `local`, with
    /// everything in it, walking LIST answers.
    ///
    /// # Errors
    ///
    /// The session failing; a folder the server refuses to list is a problem
    /// in the plan, not an error.
    pub(crate) async fn plan_remote_tree(
        &mut self,
        plan: &mut DownloadPlan,
        remote: &str,
        local: &Path,
    ) -> Result<(), ClientError> {
        // Level by level, each level's LISTs pipelined.
        let mut level = vec![(remote.to_owned(), local.to_owned())];
        let mut depth = 0;
        while !level.is_empty() {
            if depth > MAX_TREE_DEPTH {
                for (remote_dir, _) in level {
                    plan.problems.push(format!(
                        "skipping {}: more than {MAX_TREE_DEPTH} folders deep",
                        escape(&remote_dir)
                    ));
                }
                break;
            }
            let mut next = Vec::new();
            let lists = level
                .iter()
                .map(|(remote_dir, _)| Wire::List {
                    path: remote_dir.clone(),
                })
                .collect();
            let answers = self.connection.run_all(lists).await;
            for ((remote_dir, local_dir), answer) in level.iter().zip(answers) {
                let replies = match answer {
                    Ok(replies) => replies,
                    Err(err @ ClientError::Server { .. }) => {
                        plan.problems.push(err.about(&escape(remote_dir)));
                        continue;
                    }
                    Err(err) => return Err(err),
                };
                plan.dirs.push(local_dir.clone());
                plan_listing(plan, &mut next, remote_dir, local_dir, &replies);
            }
            level = next;
            depth += 1;
        }
        Ok(())
    }

    /// Makes the plan's local folders, downloads its files in one transfer
    /// run, and with `preserve` sets their times.
    ///
    /// # Errors
    ///
    /// The first failed transfer, else [`ClientError::Incomplete`] listing what
    /// was skipped.
    pub(crate) async fn run_download_plan(
        &mut self,
        plan: DownloadPlan,
        resume: bool,
        preserve: bool,
    ) -> Result<(), ClientError> {
        let DownloadPlan {
            dirs,
            files,
            mut problems,
        } = plan;
        let mut broken: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            if broken.iter().any(|b| dir.starts_with(b)) {
                continue;
            }
            if let Err(err) = make_local_dir(&dir) {
                problems.push(local_io_words(&escape(&dir.to_string_lossy()), &err));
                broken.push(dir);
            }
        }
        let (specs, times): (Vec<TransferSpec>, Vec<i64>) = files
            .into_iter()
            .filter(|(_, dest, _)| !broken.iter().any(|b| dest.starts_with(b)))
            .map(|(remote, dest, mtime)| {
                let spec = TransferSpec::Download {
                    remote,
                    dest,
                    resume,
                };
                (spec, mtime)
            })
            .unzip();
        let results = self.transfer_specs(&specs).await?;
        if preserve {
            for ((spec, result), mtime) in specs.iter().zip(&results).zip(times) {
                if let (TransferSpec::Download { dest, .. }, Ok(_)) = (spec, result) {
                    // 0 is the protocol's "unknown".
                    if mtime != 0 {
                        if let Err(err) = set_local_mtime(dest, mtime) {
                            problems.push(format!(
                                "{}: cannot keep the time: {err}",
                                escape(&dest.to_string_lossy())
                            ));
                        }
                    }
                }
            }
        }
        self.finish(&specs, results, problems)
    }

    /// Makes the plan's remote folders, uploads its files in one transfer run,
    /// and with `preserve` sends each file's time (MFMT).
    ///
    /// # Errors
    ///
    /// The first failed transfer, else [`ClientError::Incomplete`] listing what
    /// was skipped.
    pub(crate) async fn run_upload_plan(
        &mut self,
        plan: UploadPlan,
        resume: bool,
        preserve: bool,
    ) -> Result<(), ClientError> {
        let UploadPlan {
            dirs,
            files,
            mut problems,
        } = plan;
        // Pipelined: the server runs a session's commands in order, so each
        // parent exists before its children's MKD runs.
        let made = self
            .pipelined(dirs.iter().map(|dir| Wire::Mkd { path: dir.clone() }))
            .await?;
        let mut broken: Vec<String> = Vec::new();
        for (dir, result) in dirs.into_iter().zip(made) {
            match result {
                Ok(()) => {}
                Err(ClientError::Server { code, .. }) if code == ErrorCode::ALREADY_EXISTS => {}
                Err(err) => {
                    // Inside a folder that failed: that one failure says it.
                    let inside = |b: &String| dir.starts_with(&format!("{b}/"));
                    if !broken.iter().any(inside) {
                        problems.push(err.about(&escape(&dir)));
                    }
                    broken.push(dir);
                }
            }
        }
        let specs: Vec<TransferSpec> = files
            .into_iter()
            .filter(|(_, remote)| !broken.iter().any(|b| remote.starts_with(&format!("{b}/"))))
            .map(|(local, remote)| TransferSpec::Upload {
                local,
                remote,
                resume,
            })
            .collect();
        let results = self.transfer_specs(&specs).await?;
        if preserve {
            let mut times = Vec::new();
            for (spec, result) in specs.iter().zip(&results) {
                if let (TransferSpec::Upload { local, remote, .. }, Ok(_)) = (spec, result) {
                    match fs::metadata(local).and_then(|m| m.modified()) {
                        Ok(modified) => times.push((remote.clone(), epoch_seconds(modified))),
                        Err(err) => problems.push(format!(
                            "{}: cannot keep the time: {err}",
                            escape(&local.to_string_lossy())
                        )),
                    }
                }
            }
            let commands = times.iter().map(|(path, mtime)| Wire::Mfmt {
                path: path.clone(),
                mtime: *mtime,
            });
            let set = self.pipelined(commands).await?;
            for ((remote, _), result) in times.iter().zip(set) {
                if let Err(err) = result {
                    problems.push(format!("{}: cannot keep the time: {err}", escape(remote)));
                }
            }
        }
        self.finish(&specs, results, problems)
    }

    /// Sends `commands` without waiting for each answer, within the limits the
    /// server announced, and collects one result each (`Ok` for the answer `Ok`).
    ///
    /// # Errors
    ///
    /// The session failing (a server's refusal is a result, not an error).
    async fn pipelined(
        &mut self,
        commands: impl IntoIterator<Item = Wire>,
    ) -> Result<Vec<Result<(), ClientError>>, ClientError> {
        let answers = self
            .connection
            .run_all(commands.into_iter().collect())
            .await;
        let mut results = Vec::with_capacity(answers.len());
        for answer in answers {
            results.push(match answer {
                Ok(replies) if matches!(replies.as_slice(), [Reply::Ok]) => Ok(()),
                Ok(replies) => Err(ClientError::UnexpectedReply(
                    escape(&format!("{replies:?}")).into_owned(),
                )),
                Err(err @ ClientError::Server { .. }) => Err(err),
                Err(err) => return Err(err),
            });
        }
        Ok(results)
    }

    /// Runs `specs` after checking that no two write one file.
    pub(crate) async fn transfer_specs(
        &mut self,
        specs: &[TransferSpec],
    ) -> Result<Vec<Result<TransferDone, ClientError>>, ClientError> {
        check_distinct_targets(specs)?;
        Ok(self.connection.transfer_all(specs).await)
    }

    /// Reports each transfer, then the command's outcome.
    fn finish(
        &mut self,
        specs: &[TransferSpec],
        results: Vec<Result<TransferDone, ClientError>>,
        problems: Vec<String>,
    ) -> Result<(), ClientError> {
        let many = specs.len() > 1 || !problems.is_empty();
        match self.report(specs, results, many) {
            Err(err) => {
                for problem in &problems {
                    eprintln!("sfs: {problem}");
                }
                Err(err)
            }
            Ok(()) => super::glob::incomplete(problems),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_become_local_paths() {
        for good in ["a", "with space", "ünïcødé", ".hidden", "a..b"] {
            assert!(plain_name(good), "{good}");
        }
        for bad in [
            "", ".", "..", "a/b", "/etc/x", "a\0b", "a\x1b[2J", "a\\b", "\n",
        ] {
            assert!(!plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn times_count_from_the_epoch_both_ways() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(epoch_seconds(at(1_700_000_000)), 1_700_000_000);
        assert_eq!(epoch_seconds(UNIX_EPOCH - Duration::from_secs(60)), -60);
    }

    #[test]
    fn local_walks_skip_links_and_keep_names() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        fs::create_dir_all(root.join("sub dir/empty")).unwrap();
        fs::write(root.join("sub dir/ünï.txt"), b"x").unwrap();
        fs::write(dir.path().join("outside"), b"secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), root.join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path(), root.join("dirlink")).unwrap();
        let mut plan = UploadPlan::default();
        plan.add_tree(&root, "up");
        assert_eq!(plan.dirs, ["up", "up/sub dir", "up/sub dir/empty"]);
        assert_eq!(
            plan.files,
            [(
                root.join("sub dir/ünï.txt"),
                "up/sub dir/ünï.txt".to_owned()
            )]
        );
        assert_eq!(plan.problems.len(), 2, "{:?}", plan.problems);
        assert!(plan
            .problems
            .iter()
            .all(|p| p.starts_with("skipping symbolic link")));
    }
}
