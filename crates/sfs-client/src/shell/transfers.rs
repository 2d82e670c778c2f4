//! The transfer commands: `get`, `mget`, `put`, `mput`, and how their results
//! are reported.

use std::path::Path;

use sfs_net::Transport;
use sfs_proto::control::{Command as Wire, EntryKind, ErrorCode, Reply};

use super::local_dir::expand_home;
use super::Shell;
use crate::connection::{check_distinct_targets, hex, ClientError, TransferSpec};
use crate::display::escape;
use crate::local::{download_destination, safe_file_name};

impl<T: Transport> Shell<T> {
    /// `get REMOTE [LOCAL]`.
    pub(crate) async fn get(
        &mut self,
        remote: String,
        local: Option<String>,
    ) -> Result<(), ClientError> {
        let dest = download_destination(&remote, local.as_deref().map(Path::new), &self.local_dir)?;
        self.transfer(vec![TransferSpec::Download {
            remote,
            dest,
            resume: false,
        }])
        .await
    }

    /// `mget REMOTE...`: into the local folder.
    pub(crate) async fn mget(&mut self, remotes: Vec<String>) -> Result<(), ClientError> {
        let mut specs = Vec::new();
        for remote in remotes {
            let dest = download_destination(&remote, None, &self.local_dir)?;
            specs.push(TransferSpec::Download {
                remote,
                dest,
                resume: false,
            });
        }
        self.transfer(specs).await
    }

    /// `put LOCAL [REMOTE]`.
    pub(crate) async fn put(
        &mut self,
        local: String,
        remote: Option<String>,
    ) -> Result<(), ClientError> {
        let (spec, folder) = self.upload_into_folders(&local, remote).await?;
        match (self.transfer(vec![spec]).await, folder) {
            (Err(ClientError::Server { code, .. }), Some(folder))
                if code == ErrorCode::NOT_FOUND =>
            {
                Err(ClientError::NoRemoteFolder(folder))
            }
            (result, _) => result,
        }
    }

    /// `mput LOCAL...`: into the remote folder.
    pub(crate) async fn mput(&mut self, locals: Vec<String>) -> Result<(), ClientError> {
        let mut specs = Vec::new();
        for local in locals {
            specs.push(self.upload_spec(&local, None)?);
        }
        self.transfer(specs).await
    }

    fn upload_spec(
        &self,
        local: &str,
        remote: Option<String>,
    ) -> Result<TransferSpec, ClientError> {
        let local_path = self.local_dir.join(expand_home(local));
        let remote = match remote {
            Some(remote) => remote,
            None => safe_file_name(&local_path.to_string_lossy())?.to_owned(),
        };
        Ok(TransferSpec::Upload {
            local: local_path,
            remote,
            resume: false,
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

    pub(super) async fn transfer(&mut self, specs: Vec<TransferSpec>) -> Result<(), ClientError> {
        check_distinct_targets(&specs)?;
        let results = self.connection.transfer_all(&specs).await;
        let mut first_error = None;
        let many = specs.len() > 1;
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
                        eprintln!("sfs: {from}: {err}");
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
