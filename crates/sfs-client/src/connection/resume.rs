//! Resuming transfers: continuing a download from the `.part` an interrupted one
//! kept (REGET), continuing an upload from the partial the server kept
//! (PARTIAL, then REPUT), and starting again from the beginning, saying so, when
//! the file changed since.
//!
//! The bytes already there are never trusted blindly: the side that holds the
//! file hashes its first `offset` bytes and compares them with the digest of the
//! partial copy, and both sessions continue that hash state, so the End digest
//! covers the whole file from byte 0 and each byte is hashed once per side.

use std::fs::File;
use std::io::{self, Read, Seek};

use sfs_net::Transport;
use sfs_proto::control::{Command, ErrorCode, RequestId};
use sfs_proto::digest::Sha256;
use sfs_proto::transfer::DEFAULT_WINDOW;

use super::report::Reporter;
use super::transfers::{TransferDone, TransferState, UploadStep};
use super::{ClientError, Remote};
use crate::display::escape;
use crate::local::PartFile;

/// The points a download may resume from, with the hash state of the `.part`
/// up to each, computed in one pass; the last is tried first. Its whole length
/// comes first; then, in case a killed client left bytes that arrived ahead of
/// a gap (a hole of zeros), one receive window earlier: the credit a receiver
/// grants never reaches a window beyond what it received in order, so every
/// byte below that point was received. An empty `.part` gives none (start at 0).
///
/// # Errors
///
/// Reading the `.part` fails.
pub(super) fn prefix_states(file: &mut File) -> io::Result<Vec<(u64, Sha256)>> {
    let length = file.metadata()?.len();
    let checkpoint = length.saturating_sub(DEFAULT_WINDOW);
    file.seek(io::SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    let mut states = Vec::new();
    if checkpoint > 0 {
        hash_exactly(file, checkpoint, &mut hasher)?;
        states.push((checkpoint, hasher.clone()));
    }
    hash_exactly(file, length - checkpoint, &mut hasher)?;
    if length > 0 {
        states.push((length, hasher));
    }
    Ok(states)
}

/// The hash state of the first `length` bytes of `file`.
///
/// # Errors
///
/// Reading fails or the file is shorter.
pub(super) fn prefix_state(file: &mut File, length: u64) -> io::Result<Sha256> {
    file.seek(io::SeekFrom::Start(0))?;
    let mut hasher = Sha256::new();
    hash_exactly(file, length, &mut hasher)?;
    Ok(hasher)
}

fn hash_exactly(file: &mut File, length: u64, hasher: &mut Sha256) -> io::Result<()> {
    let copied = io::copy(&mut file.take(length), &mut HashWriter(hasher))?;
    if copied != length {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the file shrank while it was hashed",
        ));
    }
    Ok(())
}

struct HashWriter<'a>(&'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether a download that ended with `result` keeps its `.part`: when the
/// user, the connection or a stall cut it short, not when it failed its check
/// or the server refused it (its bytes would not be worth resuming).
pub(super) fn worth_keeping(result: &Result<TransferDone, ClientError>) -> bool {
    match result {
        Err(ClientError::Interrupted | ClientError::Closed(_)) => true,
        Err(ClientError::TransferEnded { code, .. }) => {
            *code == ErrorCode::TIMED_OUT || *code == ErrorCode::ABORTED
        }
        _ => false,
    }
}

/// Keeps `part` cut to its first `verified` bytes and tells the user, or
/// removes it when nothing was verified.
pub(super) fn keep_part(reporter: &Reporter, part: PartFile, verified: u64) {
    if verified == 0 {
        return;
    }
    match part.keep(verified) {
        Ok(path) => reporter.notice(format!(
            "sfs: partial download kept in {} ({verified} bytes); resume with `reget` or `get -c`",
            escape(&path.to_string_lossy())
        )),
        Err(err) => log::warn!("partial download not kept: {err}"),
    }
}

impl<T: Transport> Remote<T> {
    /// Asks for `remote` from `from` (an offset and the hash state of the
    /// local bytes before it: REGET), or from the beginning (RETR).
    pub(super) fn send_download(
        &mut self,
        remote: &str,
        from: Option<(u64, Sha256)>,
    ) -> Result<RequestId, ClientError> {
        let Some((offset, prefix)) = from else {
            return self.send(Command::Retr {
                path: remote.to_owned(),
                offset: 0,
            });
        };
        let command = Command::Reget {
            path: remote.to_owned(),
            offset,
            prefix: prefix.clone().finalize(),
        };
        self.send_resuming(command, prefix)
    }

    fn send_resuming(
        &mut self,
        command: Command,
        prefix: Sha256,
    ) -> Result<RequestId, ClientError> {
        if let Some(reason) = &self.closed {
            return Err(ClientError::Closed(reason.clone()));
        }
        let id = self.session.send_resuming(command, prefix)?;
        Ok(id)
    }

    /// After the server refused to resume transfer `index` (`code`), tries
    /// again from an earlier point, or from the beginning, saying so. Returns
    /// false when there is nothing to retry (the refusal stands).
    pub(super) fn retry_resume(&mut self, index: usize, code: ErrorCode) -> bool {
        if code != ErrorCode::RESUME_MISMATCH && code != ErrorCode::NO_PARTIAL {
            return false;
        }
        let pending = &mut self.transfers[index];
        let sent = match &mut pending.kind {
            TransferState::Download {
                part: Some(part),
                remote,
                verified,
                fallbacks,
                ..
            } => {
                if *verified == 0 {
                    return false;
                }
                let from = fallbacks.pop();
                let offset = from.as_ref().map_or(0, |(offset, _)| *offset);
                if let Err(err) = part.file().set_len(offset) {
                    let err = ClientError::io(part.part_path(), err);
                    self.finish_transfer(index, Err(err));
                    return true;
                }
                *verified = offset;
                if offset == 0 {
                    let line = format!(
                        "sfs: {} changed since the partial download; downloading it again from the beginning",
                        escape(remote)
                    );
                    self.reporter.notice(line);
                }
                let remote = remote.clone();
                self.send_download(&remote, from)
            }
            TransferState::Upload {
                remote, size, step, ..
            } if *step == UploadStep::Reput => {
                *step = UploadStep::Stor;
                let line = format!(
                    "sfs: the server's partial upload of {} does not match the local file; uploading it again from the beginning",
                    escape(remote)
                );
                let command = Command::Stor {
                    path: remote.clone(),
                    size: *size,
                };
                self.reporter.notice(line);
                self.send(command)
            }
            _ => return false,
        };
        self.answer_retry(index, sent);
        true
    }

    /// The server holds `kept` bytes of upload `index`: continue from there
    /// (REPUT, once the local file's first `kept` bytes are hashed), or start
    /// from the beginning (STOR) when it holds none or more than the file has.
    pub(super) fn continue_upload(&mut self, index: usize, kept: u64) {
        let pending = &mut self.transfers[index];
        let TransferState::Upload {
            file,
            local,
            remote,
            size,
            step,
            ..
        } = &mut pending.kind
        else {
            return;
        };
        let command = if kept == 0 || kept > *size {
            if kept > *size {
                self.reporter.notice(format!(
                    "sfs: the server's partial upload of {} is longer than {}; uploading it again from the beginning",
                    escape(remote),
                    escape(&local.to_string_lossy())
                ));
            }
            *step = UploadStep::Stor;
            Ok((
                Command::Stor {
                    path: remote.clone(),
                    size: *size,
                },
                None,
            ))
        } else {
            *step = UploadStep::Reput;
            prefix_state(file, kept)
                .map(|prefix| {
                    let command = Command::Reput {
                        path: remote.clone(),
                        size: *size,
                        offset: kept,
                        prefix: prefix.clone().finalize(),
                    };
                    (command, Some(prefix))
                })
                .map_err(|err| ClientError::io(local, err))
        };
        let sent = command.and_then(|(command, prefix)| match prefix {
            Some(prefix) => self.send_resuming(command, prefix),
            None => self.send(command),
        });
        self.answer_retry(index, sent);
    }

    /// Points transfer `index` at its new request, or fails it.
    fn answer_retry(&mut self, index: usize, sent: Result<RequestId, ClientError>) {
        match sent {
            Ok(id) => {
                // The answers of a transfer's requests are handled here, not stored.
                self.answers.remove(&id);
                self.transfers[index].request = id;
            }
            Err(err) => self.finish_transfer(index, Err(err)),
        }
    }
}

/// How many times one transfer is resumed after losing an association.
pub(super) const MAX_LOSS_RESUMES: u8 = 3;

impl<T: Transport> Remote<T> {
    /// Transfer `index` failed because an extra association it used was lost
    /// (`ASSOCIATION_LOST`): resumes it over the associations that remain,
    /// from its last byte received in order (REGET) or from what the server
    /// kept (PARTIAL, then REPUT), at most [`MAX_LOSS_RESUMES`] times, with
    /// one line each. Returns false when it may not be resumed again.
    pub(super) fn resume_after_loss(&mut self, index: usize) -> bool {
        let pending = &mut self.transfers[index];
        if pending.result.is_some() || pending.loss_resumes >= MAX_LOSS_RESUMES {
            return false;
        }
        pending.loss_resumes += 1;
        let attempt = pending.loss_resumes;
        // The old transfer is over on both sides; the new request opens another.
        pending.transfer = None;
        let sent = match &mut pending.kind {
            TransferState::Download {
                part: Some(part),
                remote,
                received,
                verified,
                fallbacks,
            } => {
                let offset = *verified;
                // Bytes that arrived ahead of a gap are fetched again.
                *received = offset;
                pending.bar.set_position(offset);
                fallbacks.clear();
                let from = match offset {
                    0 => Ok(None),
                    _ => prefix_state(part.file(), offset)
                        .map(|prefix| Some((offset, prefix)))
                        .map_err(|err| ClientError::io(part.part_path(), err)),
                };
                self.reporter.notice(format!(
                    "sfs: a data association was lost; resuming {} from byte {offset} (attempt {attempt} of {MAX_LOSS_RESUMES})",
                    escape(remote)
                ));
                let remote = remote.clone();
                from.and_then(|from| self.send_download(&remote, from))
            }
            TransferState::Upload { remote, step, .. } => {
                *step = UploadStep::Partial;
                let command = Command::Partial {
                    path: remote.clone(),
                };
                self.reporter.notice(format!(
                    "sfs: a data association was lost; resuming the upload of {} from what the server kept (attempt {attempt} of {MAX_LOSS_RESUMES})",
                    escape(remote)
                ));
                self.send(command)
            }
            TransferState::Download { part: None, .. } => return false,
        };
        self.answer_retry(index, sent);
        true
    }
}
