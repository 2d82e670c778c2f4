//! Downloads and uploads: starting them, writing received chunks into `.part`
//! files, sending upload chunks as credit allows, and checking the digest.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use indicatif::ProgressBar;
use sfs_net::Transport;
use sfs_proto::control::{Command, ErrorCode, RequestId, TransferId};
use sfs_proto::record::chunk_buffer;
use sha2::{Digest, Sha256};

use super::{ClientError, Remote, MAX_CHUNK};
use crate::display::escape;
use crate::local::PartFile;

/// One file to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferSpec {
    /// Download `remote` to exactly `dest` (through `dest.part`).
    Download {
        /// The remote path, as the user typed it.
        remote: String,
        /// The local file chosen by [`crate::local::download_destination`].
        dest: PathBuf,
        /// Continue from the `.part` already there (after checking that its
        /// bytes are the remote file's first bytes) instead of starting clean.
        resume: bool,
    },
    /// Upload the local file `local` to `remote`.
    Upload {
        /// The local file.
        local: PathBuf,
        /// The remote path.
        remote: String,
        /// Continue the server's kept partial upload of `remote` (after checking
        /// that its bytes are the local file's first bytes) instead of starting clean.
        resume: bool,
    },
}

/// Checks that no two of `specs` write the same file: two downloads to one local
/// path, or two uploads to one remote path (as typed, relative to the same
/// folder). Run it before [`Remote::transfer_all`]: transfers in one command run
/// at once, and two writers of one file would leave a mix of both.
///
/// # Errors
///
/// [`ClientError::SameTarget`] naming the target and both sources.
pub fn check_distinct_targets(specs: &[TransferSpec]) -> Result<(), ClientError> {
    // Component-wise: `./x` and `x` name one file, as do `a/x` and `a//x`.
    let mut seen: Vec<(bool, PathBuf, String)> = Vec::new();
    for spec in specs {
        let (upload, target, source) = match spec {
            TransferSpec::Download { remote, dest, .. } => (false, dest.clone(), remote.clone()),
            TransferSpec::Upload { local, remote, .. } => (
                true,
                PathBuf::from(remote),
                local.to_string_lossy().into_owned(),
            ),
        };
        let clash = seen
            .iter()
            .find(|(kind, seen_target, _)| *kind == upload && *seen_target == target);
        if let Some((_, _, first)) = clash {
            return Err(ClientError::SameTarget {
                target: escape(&target.to_string_lossy()).into_owned(),
                first: escape(first).into_owned(),
                second: escape(&source).into_owned(),
            });
        }
        seen.push((upload, target, source));
    }
    Ok(())
}

/// A transfer that completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferDone {
    /// Bytes moved.
    pub bytes: u64,
    /// The SHA-256 of the whole file, checked by both ends.
    pub sha256: [u8; 32],
}

/// A download or upload under way, with its progress bar and, once known, its result.
pub(super) struct PendingTransfer {
    pub(super) request: RequestId,
    pub(super) transfer: Option<TransferId>,
    pub(super) bar: ProgressBar,
    pub(super) kind: TransferState,
    pub(super) result: Option<Result<TransferDone, ClientError>>,
}

/// What a download or an upload keeps while it runs.
pub(super) enum TransferState {
    Download {
        part: Option<PartFile>,
        received: u64,
    },
    Upload {
        file: File,
        local: PathBuf,
        size: u64,
        hasher: Sha256,
        sent: Option<[u8; 32]>,
    },
}

impl<T: Transport> Remote<T> {
    pub(super) fn start_transfer(&mut self, spec: &TransferSpec) -> PendingTransfer {
        let failed = |bar: ProgressBar, err| PendingTransfer {
            request: RequestId(0),
            transfer: None,
            bar,
            kind: TransferState::Download {
                part: None,
                received: 0,
            },
            result: Some(Err(err)),
        };
        match spec {
            TransferSpec::Download { remote, dest, .. } => {
                // The local side is checked before anything is asked of the server.
                let part = match PartFile::create(dest) {
                    Ok(part) => part,
                    Err(err) => return failed(ProgressBar::hidden(), err.into()),
                };
                let request = match self.send(Command::Retr {
                    path: remote.clone(),
                    offset: 0,
                }) {
                    Ok(id) => id,
                    Err(err) => return failed(ProgressBar::hidden(), err),
                };
                let label = dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                PendingTransfer {
                    request,
                    transfer: None,
                    bar: self.reporter.bar(&escape(&label), 0),
                    kind: TransferState::Download {
                        part: Some(part),
                        received: 0,
                    },
                    result: None,
                }
            }
            TransferSpec::Upload { local, remote, .. } => {
                let opened = File::open(local).and_then(|file| {
                    let meta = file.metadata()?;
                    if !meta.is_file() {
                        return Err(io::Error::other("not a regular file"));
                    }
                    Ok((file, meta.len()))
                });
                let (file, size) = match opened {
                    Ok(opened) => opened,
                    Err(err) => return failed(ProgressBar::hidden(), ClientError::io(local, err)),
                };
                let request = match self.send(Command::Stor {
                    path: remote.clone(),
                    size,
                }) {
                    Ok(id) => id,
                    Err(err) => return failed(ProgressBar::hidden(), err),
                };
                let label = local
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                PendingTransfer {
                    request,
                    transfer: None,
                    bar: self.reporter.bar(&escape(&label), size),
                    kind: TransferState::Upload {
                        file,
                        local: local.clone(),
                        size,
                        hasher: Sha256::new(),
                        sent: None,
                    },
                    result: None,
                }
            }
        }
    }

    pub(super) fn finish_transfer(
        &mut self,
        index: usize,
        result: Result<TransferDone, ClientError>,
    ) {
        let Some(pending) = self.transfers.get_mut(index) else {
            return;
        };
        if pending.result.is_some() {
            return;
        }
        if result.is_ok() {
            pending.bar.finish();
        } else {
            // The error is reported in words; a frozen bar would only repeat it.
            pending.bar.finish_and_clear();
        }
        // Dropping an uncommitted PartFile removes the `.part`.
        if let TransferState::Download { part, .. } = &mut pending.kind {
            part.take();
        }
        pending.result = Some(result);
    }

    pub(super) fn transfer_by_request(&self, id: RequestId) -> Option<usize> {
        self.transfers
            .iter()
            .position(|pending| pending.result.is_none() && pending.request == id)
    }

    pub(super) fn transfer_by_id(&self, transfer: TransferId) -> Option<usize> {
        self.transfers
            .iter()
            .position(|pending| pending.result.is_none() && pending.transfer == Some(transfer))
    }

    pub(super) fn write_chunk(&mut self, transfer: TransferId, offset: u64, data: &[u8]) {
        let Some(index) = self.transfer_by_id(transfer) else {
            return;
        };
        let pending = &mut self.transfers[index];
        let TransferState::Download { part, received } = &mut pending.kind else {
            return;
        };
        let Some(part) = part else {
            return;
        };
        // The session checked that the chunk lies inside the transfer's range.
        match part.file().write_all_at(data, offset) {
            Ok(()) => {
                *received += data.len() as u64;
                pending.bar.set_position(*received);
            }
            Err(err) => {
                let err = ClientError::io(part.part_path(), err);
                let _ =
                    self.session
                        .abort_transfer(transfer, ErrorCode::ABORTED, "local write failed");
                self.finish_transfer(index, Err(err));
            }
        }
    }

    /// Checks the bytes on disk against the digest the protocol verified, then
    /// renames the `.part` over the destination.
    pub(super) fn commit_download(
        &mut self,
        index: usize,
        length: u64,
        sha256: [u8; 32],
    ) -> Result<TransferDone, ClientError> {
        let TransferState::Download { part, .. } = &mut self.transfers[index].kind else {
            return Err(ClientError::UnexpectedReply(
                "download data for an upload".into(),
            ));
        };
        let Some(mut part) = part.take() else {
            return Err(ClientError::TransferFailed("no local file".into()));
        };
        let on_disk =
            hash_file(part.file()).map_err(|err| ClientError::io(part.part_path(), err))?;
        if on_disk != (length, sha256) {
            return Err(ClientError::TransferFailed(
                "the file written does not match the digest the server sent".into(),
            ));
        }
        part.commit()?;
        Ok(TransferDone {
            bytes: length,
            sha256,
        })
    }

    /// Queues as many upload chunks as the credit and the send queue's cap
    /// allow, one per upload per round, so parallel uploads share the association.
    pub(super) fn send_upload_chunks(&mut self) {
        loop {
            let mut sent_any = false;
            for index in 0..self.transfers.len() {
                if self.closed.is_some() || self.driver.queued_bytes() >= self.send_queue_cap {
                    return;
                }
                let pending = &mut self.transfers[index];
                let (
                    Some(transfer),
                    None,
                    TransferState::Upload {
                        file,
                        local,
                        hasher,
                        ..
                    },
                ) = (pending.transfer, &pending.result, &mut pending.kind)
                else {
                    continue;
                };
                let allowance = self.session.chunk_allowance(transfer).min(MAX_CHUNK);
                let Some(offset) = self.session.next_chunk_offset(transfer) else {
                    continue;
                };
                if allowance == 0 {
                    continue;
                }
                let mut buf = chunk_buffer(allowance);
                let start = buf.len();
                buf.resize(start + allowance, 0);
                let read = match file.read_at(&mut buf[start..], offset) {
                    Ok(0) => Err(io::Error::other("the file shrank while uploading")),
                    Ok(n) => Ok(n),
                    Err(err) => Err(err),
                };
                let read = match read {
                    Ok(n) => n,
                    Err(err) => {
                        let err = ClientError::io(local, err);
                        let _ = self.session.abort_transfer(
                            transfer,
                            ErrorCode::ABORTED,
                            "local read failed",
                        );
                        self.finish_transfer(index, Err(err));
                        continue;
                    }
                };
                buf.truncate(start + read);
                hasher.update(&buf[start..]);
                pending.bar.set_position(offset + read as u64);
                // In sealing order (the receiver demands sequence order on
                // each stream): what the session has queued, the chunk, then
                // the End records the last chunk makes it queue.
                self.driver.queue_from(&mut self.session);
                match self.session.send_chunk(transfer, buf) {
                    Ok(transmit) => {
                        self.driver.queue(transmit);
                        self.driver.queue_from(&mut self.session);
                        sent_any = true;
                    }
                    Err(err) => self.finish_transfer(index, Err(err.into())),
                }
            }
            if !sent_any {
                return;
            }
        }
    }
}

/// The length and SHA-256 of a whole file, read from its start.
fn hash_file(file: &mut File) -> io::Result<(u64, [u8; 32])> {
    use std::io::Seek;
    file.seek(io::SeekFrom::Start(0))?;
    sfs_proto::digest::sha256_reader(file)
}
