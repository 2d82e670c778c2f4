//! The transfer commands: `get`, `mget`, `put`, `mput` with their options
//! (`-c` resume, `-r` folders, `-p` times), and how their results are reported.

use std::path::Path;

use sfs_net::Transport;
use sfs_proto::control::{Command as Wire, Entry, EntryKind, ErrorCode, Reply};

use super::glob::{is_pattern, local_glob, no_match, remote_join, unescape};
use super::local_dir::expand_home;
use super::preflight::upload_source;
use super::tree::{DownloadPlan, UploadPlan};
use super::Shell;
use crate::connection::{hex, ClientError, TransferDone, TransferSpec};
use crate::display::escape;
use crate::local::{download_destination, safe_file_name, LocalPathError};

impl<T: Transport> Shell<T> {
    /// `get [-crp] REMOTE [LOCAL]`.
    pub(crate) async fn get(
        &mut self,
        resume: bool,
        recursive: bool,
        preserve: bool,
        mut remote: String,
        local: Option<String>,
    ) -> Result<(), ClientError> {
        if is_pattern(&remote) {
            let matched = self.remote_glob(&remote).await?;
            match matched.as_slice() {
                // One match: as if its name had been typed (LOCAL may rename it).
                [(one, _)] if !local.as_deref().is_some_and(|l| self.names_local_folder(l)) => {
                    remote.clone_from(one);
                }
                matched => {
                    if let Some(local) = &local {
                        if !self.names_local_folder(local) {
                            return Err(several_into_one(&remote, matched.len(), local));
                        }
                    }
                    return self
                        .mget(resume, recursive, preserve, local, vec![remote])
                        .await;
                }
            }
        }
        let dest = download_destination(&remote, local.as_deref().map(Path::new), &self.local_dir)?;
        let mut plan = DownloadPlan::default();
        let entry = if recursive || preserve {
            self.remote_entry(&remote).await?
        } else {
            None
        };
        match entry {
            Some(entry) if recursive && entry.kind == EntryKind::Dir => {
                self.plan_remote_tree(&mut plan, &remote, &dest).await?;
            }
            entry => {
                let mtime = entry.map_or(0, |entry| entry.mtime);
                plan.files.push((remote, dest, mtime));
            }
        }
        self.run_download_plan(plan, resume, preserve).await
    }

    /// `mget [-crp] [-O DIR] REMOTE|PATTERN...`: into the local folder, or DIR.
    pub(crate) async fn mget(
        &mut self,
        resume: bool,
        recursive: bool,
        preserve: bool,
        into: Option<String>,
        remotes: Vec<String>,
    ) -> Result<(), ClientError> {
        let base = match into {
            Some(dir) => {
                let folder = self.local_dir.join(expand_home(&dir));
                if !folder.is_dir() {
                    return Err(LocalPathError::NoSuchFolder(escape(&dir).into_owned()).into());
                }
                folder
            }
            None => self.local_dir.clone(),
        };
        let mut plan = DownloadPlan::default();
        for remote in remotes {
            let matched: Vec<(String, Option<Entry>)> = if is_pattern(&remote) {
                match self.remote_glob(&remote).await {
                    Ok(matched) => matched.into_iter().map(|(p, e)| (p, Some(e))).collect(),
                    Err(ClientError::Incomplete(mut problems)) => {
                        plan.problems.append(&mut problems);
                        continue;
                    }
                    Err(err) => return Err(err),
                }
            } else {
                let remote = unescape(&remote);
                let entry = if recursive || preserve {
                    self.remote_entry(&remote).await?
                } else {
                    None
                };
                vec![(remote, entry)]
            };
            let one_name = matched.len() == 1 && !is_pattern(&remote);
            for (remote, entry) in matched {
                let dest = match download_destination(&remote, None, &base) {
                    Ok(dest) => dest,
                    // A name the user typed: nothing moves until it is fixed.
                    Err(err) if one_name => return Err(err.into()),
                    Err(err) => {
                        plan.problems.push(format!("skipping {err}"));
                        continue;
                    }
                };
                match entry {
                    Some(entry) if entry.kind == EntryKind::Dir && recursive => {
                        self.plan_remote_tree(&mut plan, &remote, &dest).await?;
                    }
                    Some(entry) if entry.kind == EntryKind::Dir => plan
                        .problems
                        .push(format!("skipping folder {} (use -r)", escape(&remote))),
                    entry => plan
                        .files
                        .push((remote, dest, entry.map_or(0, |entry| entry.mtime))),
                }
            }
        }
        self.run_download_plan(plan, resume, preserve).await
    }

    /// `put [-crp] LOCAL [REMOTE]`.
    pub(crate) async fn put(
        &mut self,
        resume: bool,
        recursive: bool,
        preserve: bool,
        mut local: String,
        remote: Option<String>,
    ) -> Result<(), ClientError> {
        if is_pattern(&local) {
            let found = local_glob(&expand_home(&local).to_string_lossy(), &self.local_dir)?;
            match found.as_slice() {
                [] => return Err(no_match(&local)),
                [one] if !self.names_remote_folder(remote.as_deref()).await? => {
                    local = one.to_string_lossy().into_owned();
                }
                found => {
                    if let Some(remote) = &remote {
                        if !self.names_remote_folder(Some(remote)).await? {
                            return Err(several_into_one(&local, found.len(), remote));
                        }
                    }
                    return self
                        .mput(resume, recursive, preserve, remote, vec![local])
                        .await;
                }
            }
        }
        upload_source(&self.local_dir, &local, recursive)?;
        let local_path = self.local_dir.join(expand_home(&local));
        if recursive && local_path.is_dir() {
            let root = self.upload_tree_root(&local_path, remote).await?;
            let mut plan = UploadPlan::default();
            plan.add_tree(&local_path, &root);
            return self.run_upload_plan(plan, resume, preserve).await;
        }
        let (spec, folder) = self.upload_into_folders(&local, remote).await?;
        let TransferSpec::Upload { local, remote, .. } = spec else {
            unreachable!("an upload spec");
        };
        let plan = UploadPlan {
            files: vec![(local, remote)],
            ..UploadPlan::default()
        };
        match (self.run_upload_plan(plan, resume, preserve).await, folder) {
            (Err(ClientError::Server { code, .. }), Some(folder))
                if code == ErrorCode::NOT_FOUND =>
            {
                Err(ClientError::NoRemoteFolder(folder))
            }
            (result, _) => result,
        }
    }

    /// `mput [-crp] [-O DIR] LOCAL|PATTERN...`: into the remote folder, or DIR
    /// (which must be an existing folder).
    pub(crate) async fn mput(
        &mut self,
        resume: bool,
        recursive: bool,
        preserve: bool,
        into: Option<String>,
        locals: Vec<String>,
    ) -> Result<(), ClientError> {
        if let Some(dir) = &into {
            let folder = match dir.trim_end_matches('/') {
                "" => "/",
                folder => folder,
            };
            let is_folder = self
                .remote_entry(folder)
                .await?
                .is_some_and(|entry| entry.kind == EntryKind::Dir);
            if !is_folder {
                return Err(ClientError::NoRemoteFolder(dir.clone()));
            }
        }
        let mut plan = UploadPlan::default();
        for local in locals {
            let paths = if is_pattern(&local) {
                let found = local_glob(&expand_home(&local).to_string_lossy(), &self.local_dir)?;
                if found.is_empty() {
                    if let ClientError::Incomplete(mut problems) = no_match(&local) {
                        plan.problems.append(&mut problems);
                    }
                    continue;
                }
                found
            } else {
                let plain = unescape(&local);
                // Told first, and the other names still go.
                if let Err(err) = upload_source(&self.local_dir, &plain, true) {
                    plan.problems.push(err.to_string());
                    continue;
                }
                vec![self.local_dir.join(expand_home(&plain))]
            };
            for path in paths {
                let remote = match safe_file_name(&path.to_string_lossy()) {
                    Ok(name) => remote_join(into.as_deref().unwrap_or(""), name),
                    Err(err) => {
                        plan.problems.push(format!("skipping {err}"));
                        continue;
                    }
                };
                if path.is_dir() {
                    if recursive {
                        plan.add_tree(&path, &remote);
                    } else {
                        plan.problems.push(format!(
                            "skipping folder {} (use -r)",
                            escape(&path.to_string_lossy())
                        ));
                    }
                } else {
                    plan.files.push((path, remote));
                }
            }
        }
        self.run_upload_plan(plan, resume, preserve).await
    }

    /// Whether the local name `local` (as typed) is a folder to write into.
    fn names_local_folder(&self, local: &str) -> bool {
        self.local_dir.join(expand_home(local)).is_dir()
    }

    /// Whether `remote` names a remote folder to write into: it ends with `/`
    /// (checked when used) or the server says it is a folder. `None` is the
    /// current folder.
    async fn names_remote_folder(&mut self, remote: Option<&str>) -> Result<bool, ClientError> {
        match remote {
            None => Ok(true),
            Some(remote) if remote.ends_with('/') => Ok(true),
            Some(remote) => Ok(self
                .remote_entry(remote)
                .await?
                .is_some_and(|entry| entry.kind == EntryKind::Dir)),
        }
    }

    /// The remote entry at `path` (STAT), or `None` when the server has none
    /// to show: the transfer then gets the server's own answer.
    pub(super) async fn remote_entry(&mut self, path: &str) -> Result<Option<Entry>, ClientError> {
        match self
            .single(Wire::Stat {
                path: path.to_owned(),
            })
            .await
        {
            Ok(Reply::Stat { entry }) => Ok(Some(entry)),
            Ok(_) | Err(ClientError::Server { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Where `put -r LOCAL [REMOTE]` puts the folder: like a file, inside
    /// REMOTE when that is an existing folder (or ends with `/`), else as REMOTE;
    /// by default under the local folder's own name.
    async fn upload_tree_root(
        &mut self,
        local: &Path,
        remote: Option<String>,
    ) -> Result<String, ClientError> {
        let name = safe_file_name(&local.to_string_lossy())?.to_owned();
        let Some(remote) = remote else {
            return Ok(name);
        };
        if remote.ends_with('/') {
            // `put -r DIR missing/`: said as for a file, not as a failed MKD.
            let folder = match remote.trim_end_matches('/') {
                "" => "/",
                folder => folder,
            };
            if !self.names_remote_folder(Some(folder)).await? {
                return Err(ClientError::NoRemoteFolder(folder.to_owned()));
            }
        }
        let into = remote.ends_with('/')
            || self
                .remote_entry(&remote)
                .await?
                .is_some_and(|entry| entry.kind == EntryKind::Dir);
        Ok(if into {
            format!("{}/{name}", remote.trim_end_matches('/'))
        } else {
            remote
        })
    }

    /// The upload `put LOCAL [REMOTE]` makes, with the remote folder it goes into
    /// when REMOTE names one: like sftp, `put FILE DIR/` and `put FILE DIR`
    /// (DIR an existing remote folder, asked with STAT) upload to
    /// `DIR/<FILE's last part>`. The folder is returned so that the server's
    /// `NOT_FOUND` can be told as "no such remote folder".
    pub(super) async fn upload_into_folders(
        &mut self,
        local: &str,
        remote: Option<String>,
    ) -> Result<(TransferSpec, Option<String>), ClientError> {
        let local = self.local_dir.join(expand_home(local));
        // The local name's last part is needed only when the upload goes into a
        // folder: `put DIR/ NAME` keeps failing as a local read error.
        let local_text = local.to_string_lossy().into_owned();
        let into = |folder: &str| -> Result<String, ClientError> {
            let name = safe_file_name(&local_text)?;
            Ok(format!("{}/{name}", folder.trim_end_matches('/')))
        };
        let Some(remote) = remote else {
            let remote = safe_file_name(&local_text)?.to_owned();
            return Ok((
                TransferSpec::Upload {
                    local,
                    remote,
                    resume: false,
                },
                None,
            ));
        };
        if remote.ends_with('/') {
            let folder = match remote.trim_end_matches('/') {
                "" => "/".to_owned(),
                folder => folder.to_owned(),
            };
            let remote = into(&remote)?;
            return Ok((
                TransferSpec::Upload {
                    local,
                    remote,
                    resume: false,
                },
                Some(folder),
            ));
        }
        // A missing local file fails in the transfer without asking the server.
        if local.metadata().is_err() {
            return Ok((
                TransferSpec::Upload {
                    local,
                    remote,
                    resume: false,
                },
                None,
            ));
        }
        let is_folder = match self
            .single(Wire::Stat {
                path: remote.clone(),
            })
            .await
        {
            Ok(Reply::Stat { entry }) => entry.kind == EntryKind::Dir,
            // Not there, or not ours to see: the name is the new file's, and
            // the STOR gets the server's own answer.
            Ok(_) | Err(ClientError::Server { .. }) => false,
            Err(err) => return Err(err),
        };
        if is_folder {
            let target = into(&remote)?;
            return Ok((
                TransferSpec::Upload {
                    local,
                    remote: target,
                    resume: false,
                },
                Some(remote),
            ));
        }
        Ok((
            TransferSpec::Upload {
                local,
                remote,
                resume: false,
            },
            None,
        ))
    }

    /// Prints each finished transfer; the first failure is the command's
    /// error (with `many`, each failure is also printed with its name).
    pub(super) fn report(
        &mut self,
        specs: &[TransferSpec],
        results: Vec<Result<TransferDone, ClientError>>,
        many: bool,
    ) -> Result<(), ClientError> {
        let mut first_error = None;
        for (spec, result) in specs.iter().zip(results) {
            let (verb, from, to) = match spec {
                TransferSpec::Download { remote, dest, .. } => (
                    "downloaded",
                    escape(remote).into_owned(),
                    escape(&dest.to_string_lossy()).into_owned(),
                ),
                TransferSpec::Upload { local, remote, .. } => (
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
                        eprintln!("sfs: {}", err.about(&from));
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
}

/// `get PATTERN LOCAL` or `put PATTERN REMOTE` where the pattern matched
/// several names and the target is not a folder: as sftp, nothing is moved.
fn several_into_one(pattern: &str, count: usize, target: &str) -> ClientError {
    ClientError::NotAsTyped(format!(
        "{} matches {count} names, and {} is not a folder: name a folder to put them in",
        escape(pattern),
        escape(target)
    ))
}
