//! Downloads and uploads: starting them, writing received chunks into `.part`
//! files, sending upload chunks as credit allows, and checking the digest.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use indicatif::ProgressBar;
use sfs_net::Transport;
use sfs_proto::control::{Command, ErrorCode, RequestId, TransferId};
use sfs_proto::digest::Sha256;
use sfs_proto::record::chunk_buffer;

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

impl TransferState {
    /// What the transfer's request is about, for the words of a refusal.
    pub(super) fn subject(&self) -> super::words::Subject {
        match self {
            TransferState::Download { remote, .. } => {
                super::words::Subject::transfer("RETR", remote)
            }
            TransferState::Upload { remote, .. } => super::words::Subject::transfer("STOR", remote),
        }
    }
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
    /// The associations its chunks go over (bit k: association k), once open.
    pub(super) associations: u16,
    /// Times it was resumed after losing an association.
    pub(super) loss_resumes: u8,
}

/// What a download or an upload keeps while it runs.
pub(super) enum TransferState {
    Download {
        part: Option<PartFile>,
        /// The remote path, to ask again after a failed resume.
        remote: String,
        /// Bytes written by this transfer (in any order), for the progress bar.
        received: u64,
        /// The file offset below which every byte arrived and was hashed in
        /// order: what may be kept of an interrupted download.
        verified: u64,
        /// Earlier points to resume from if the server refuses this one, each
        /// with the hash state of the `.part` up to it (see
        /// [`super::resume::prefix_states`]).
        fallbacks: Vec<(u64, Sha256)>,
    },
    Upload {
        file: File,
        local: PathBuf,
        remote: String,
        size: u64,
        /// Which request the transfer waits on.
        step: UploadStep,
        /// The digest the session sent in the End records (of the whole file).
        sent: Option<[u8; 32]>,
    },
}

/// The request an upload waits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UploadStep {
    /// PARTIAL: how much the server kept of an interrupted upload (`reput`).
    Partial,
    /// REPUT: continuing the kept partial.
    Reput,
    /// STOR: from the beginning.
    Stor,
}

impl<T: Transport> Remote<T> {
    pub(super) fn start_transfer(&mut self, spec: &TransferSpec) -> PendingTransfer {
        let failed = |bar: ProgressBar, err| PendingTransfer {
            request: RequestId(0),
            transfer: None,
            bar,
            kind: TransferState::Download {
                part: None,
                remote: String::new(),
                received: 0,
                verified: 0,
                fallbacks: Vec::new(),
            },
            result: Some(Err(err)),
            associations: 0,
            loss_resumes: 0,
        };
        match spec {
            TransferSpec::Download {
                remote,
                dest,
                resume,
            } => {
                // The local side is checked before anything is asked of the server.
                let opened = if *resume {
                    PartFile::resume(dest)
                } else {
                    PartFile::create(dest)
                };
                let mut part = match opened {
                    Ok(part) => part,
                    Err(err) => return failed(ProgressBar::hidden(), err.into()),
                };
                let mut fallbacks = if *resume {
                    match super::resume::prefix_states(part.file()) {
                        Ok(states) => states,
                        Err(err) => {
                            let err = ClientError::io(part.part_path(), err);
                            return failed(ProgressBar::hidden(), err);
                        }
                    }
                } else {
                    Vec::new()
                };
                let from = fallbacks.pop();
                let verified = from.as_ref().map_or(0, |(offset, _)| *offset);
                let request = match self.send_download(remote, from) {
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
                        remote: remote.clone(),
                        received: 0,
                        verified,
                        fallbacks,
                    },
                    result: None,
                    associations: 0,
                    loss_resumes: 0,
                }
            }
            TransferSpec::Upload {
                local,
                remote,
                resume,
            } => {
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
                let command = if *resume {
                    // How much does the server hold? The answer picks REPUT or STOR.
                    Command::Partial {
                        path: remote.clone(),
                    }
                } else {
                    Command::Stor {
                        path: remote.clone(),
                        size,
                    }
                };
                let request = match self.send(command) {
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
                        remote: remote.clone(),
                        size,
                        step: if *resume {
                            UploadStep::Partial
                        } else {
                            UploadStep::Stor
                        },
                        sent: None,
                    },
                    result: None,
                    associations: 0,
                    loss_resumes: 0,
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
        if let TransferState::Download {
            part: part @ Some(_),
            verified,
            ..
        } = &mut pending.kind
        {
            // Dropping an uncommitted PartFile removes the `.part`; one cut
            // short by the user or the connection is kept to be resumed.
            let part = part.take();
            if let (Some(part), true) = (part, super::resume::worth_keeping(&result)) {
                super::resume::keep_part(&self.reporter, part, *verified);
            }
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
        let TransferState::Download {
            part,
            received,
            verified,
            ..
        } = &mut pending.kind
        else {
            return;
        };
        let Some(part) = part else {
            return;
        };
        // The session checked that the chunk lies inside the transfer's range.
        match part.file().write_all_at(data, offset) {
            Ok(()) => {
                *received += data.len() as u64;
                if let Some(in_order) = self.session.received_in_order(transfer) {
                    *verified = in_order;
                }
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

    /// Renames the `.part` over the destination once the protocol verified the
    /// digest. The bytes were hashed as they arrived and written as they were
    /// hashed, so the file is not read again.
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
        let Some(part) = part.take() else {
            return Err(ClientError::TransferFailed("no local file".into()));
        };
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
                let (Some(transfer), None, TransferState::Upload { file, local, .. }) =
                    (pending.transfer, &pending.result, &mut pending.kind)
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
