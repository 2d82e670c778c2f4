// Over 600 lines: downloads and uploads share the connection's job, audit and failure paths, kept in one place.
//! The data half of RETR and STOR: reading chunks for downloads, ordering and
//! writing chunks of uploads, and committing uploads.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use sfs_net::{ReceivedChunk, Transport};
use sfs_proto::control::{ErrorCode, Reply, RequestId, TransferId};
use sfs_proto::record::{chunk_buffer, CHUNK_PREFIX_LEN, MAX_CHUNK_DATA};
use sfs_proto::session::{ApiError, Initiator};

use super::{Completion, ConnectionTask};
use crate::accounts::Username;
use crate::audit::{AuditEvent, AuditOutcome, EventKind, Reason};
use crate::cmd::{store_error_reply, CommitCheck, Download, UploadTarget};
use crate::quota::Reservation;
use crate::store::{Keeper, StoreError, Upload, VirtualPath};

/// Most upload bytes handed to one write job.
const WRITE_BATCH: usize = 1024 * 1024;
/// Most download chunks read by one read job: each job costs two thread
/// hand-offs (to the blocking pool and back), which a profile of a large
/// download in the VM showed as a visible share of the server's time.
const READ_AHEAD: usize = 4;

/// Reads `room` bytes of `file` from `offset` as chunk buffers (record header
/// room, then at most [`MAX_CHUNK_DATA`] bytes each). When they reach `end`,
/// the last byte to send, checks first that the file is still the one opened
/// as `stamp` says: a file rewritten while it was read would arrive as a mix of
/// old and new bytes with a digest that matches the mix.
fn read_chunks(
    file: &std::fs::File,
    mut offset: u64,
    room: usize,
    end: u64,
    stamp: FileStamp,
) -> std::io::Result<Vec<Vec<u8>>> {
    let mut chunks = Vec::with_capacity(room.div_ceil(MAX_CHUNK_DATA));
    let mut left = room;
    while left > 0 {
        let len = left.min(MAX_CHUNK_DATA);
        let mut buffer = chunk_buffer(len);
        buffer.resize(CHUNK_PREFIX_LEN + len, 0);
        // In bounds: the buffer was just sized to the prefix plus the data.
        file.read_exact_at(&mut buffer[CHUNK_PREFIX_LEN..], offset)?;
        offset += len as u64;
        left -= len;
        chunks.push(buffer);
    }
    // Before the last chunk is handed to the session, which sends End after it.
    if offset >= end && FileStamp::of(&file.metadata()?) != stamp {
        return Err(std::io::Error::other(SourceChanged));
    }
    Ok(chunks)
}

/// What identifies a file's content without reading it: a rewrite in place
/// changes the size or the modification and change times, a replacement the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime: (metadata.mtime(), metadata.mtime_nsec()),
            ctime: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }
}

/// The read error of a download whose file changed while it was read.
#[derive(Debug, thiserror::Error)]
#[error("the file changed while it was read")]
struct SourceChanged;

/// A download in progress.
pub(super) struct DownloadState {
    file: Arc<std::fs::File>,
    /// The file's identity and times when opened, re-checked before the last chunk.
    stamp: FileStamp,
    /// The offset just past the last byte to send.
    end: u64,
    /// A read job is running.
    reading: bool,
    path: VirtualPath,
    owner: Option<Username>,
    length: u64,
}

/// The reply to a RETR or STOR whose transfer could not open, saying why.
fn open_refusal(error: &ApiError) -> Reply {
    match error {
        // Retrying on this association cannot help: say what is missing.
        ApiError::NoDataStreams => Reply::error(
            ErrorCode::BAD_REQUEST,
            "the association has no data streams, so no transfer can start; \
             reconnect with at least one data stream",
        ),
        ApiError::TooManyTransfers => Reply::error(ErrorCode::BUSY, "too many transfers in flight"),
        _ => Reply::error(ErrorCode::INTERNAL, "cannot start the transfer"),
    }
}

/// An upload in progress.
pub(super) struct UploadState {
    request: RequestId,
    /// `None` while a write or commit job holds it.
    upload: Option<Upload>,
    /// A write job holds `upload` and will hand it back.
    writing: bool,
    /// Chunks that arrived ahead of `next_offset`, by offset.
    pending: BTreeMap<u64, ReceivedChunk>,
    /// The next byte to append to the temporary file.
    next_offset: u64,
    /// The verified digest, once the session finished the transfer.
    finished: Option<[u8; 32]>,
    path: VirtualPath,
    owner: Option<Username>,
    /// Re-checks the rights when committing.
    commit: CommitCheck,
    /// Makes the upload's file kept for `reput` (when the client cut it
    /// short), wherever it is when dropped.
    keeper: Keeper,
    /// Released when the state is dropped: after the commit renamed the file
    /// into place, or when the upload failed.
    _reservation: Reservation,
}

impl<T: Transport> ConnectionTask<T> {
    /// The data streams a transfer of `length` bytes uses: no more than it has
    /// chunks. A transfer ends with an End record on each of its streams, so a
    /// small file spread over every stream would cost an End per stream for one
    /// chunk; many small files in flight keep the streams busy anyway.
    fn streams_for(&self, length: u64) -> u16 {
        let chunks = length.div_ceil(MAX_CHUNK_DATA as u64).max(1);
        u16::try_from(chunks).map_or(self.data_streams, |c| c.min(self.data_streams))
    }

    pub(super) fn open_download(&mut self, id: RequestId, download: Download) {
        let Download {
            file,
            length,
            offset,
            path,
            owner,
            prefix,
        } = download;
        let stamp = match file.metadata() {
            Ok(metadata) => FileStamp::of(&metadata),
            Err(error) => {
                log::error!("cannot stat a download: {error}");
                self.respond(id, Reply::error(ErrorCode::INTERNAL, "internal error"));
                return;
            }
        };
        match self.session.open_transfer_from(
            id,
            offset,
            length - offset,
            self.streams_for(length - offset),
            prefix,
        ) {
            Ok(transfer) => {
                self.downloads.insert(
                    transfer,
                    DownloadState {
                        file,
                        stamp,
                        end: length,
                        reading: false,
                        path,
                        owner,
                        length: length - offset,
                    },
                );
                // Nothing may be sent before the client's first credit; the
                // session says when with CreditAvailable.
            }
            Err(error) => {
                log::warn!("cannot open a download: {error}");
                self.respond(id, open_refusal(&error));
            }
        }
    }

    /// Starts reading the next chunks if credit allows and no read is running:
    /// up to [`READ_AHEAD`] chunks in one blocking job, fewer when the send
    /// queue is fuller or other downloads share it, so what is read ahead stays
    /// within the send queue's share of the memory budget.
    pub(super) fn pump_download(&mut self, transfer: TransferId) {
        let downloads = self.downloads.len();
        let Some(state) = self.downloads.get_mut(&transfer) else {
            return;
        };
        let queued = self.driver.queued();
        if state.reading || queued >= super::MAX_OUTBOX {
            return;
        }
        let Some(offset) = self.session.next_chunk_offset(transfer) else {
            return;
        };
        let chunks = ((super::MAX_OUTBOX - queued) / downloads.max(1)).clamp(1, READ_AHEAD);
        let room = self
            .session
            .send_room(transfer)
            .min((chunks * MAX_CHUNK_DATA) as u64);
        // At most READ_AHEAD full chunks, so the conversion cannot fail.
        let room = usize::try_from(room).unwrap_or(MAX_CHUNK_DATA);
        if room == 0 {
            return;
        }
        state.reading = true;
        let file = state.file.clone();
        let (stamp, end) = (state.stamp, state.end);
        self.jobs.spawn_blocking(move || Completion::Read {
            transfer,
            result: read_chunks(&file, offset, room, end, stamp),
        });
    }

    pub(super) fn pump_all_downloads(&mut self) {
        let transfers: Vec<TransferId> = self.downloads.keys().copied().collect();
        for transfer in transfers {
            self.pump_download(transfer);
        }
    }

    pub(super) fn chunk_read(
        &mut self,
        transfer: TransferId,
        result: std::io::Result<Vec<Vec<u8>>>,
    ) {
        let Some(state) = self.downloads.get_mut(&transfer) else {
            return;
        };
        state.reading = false;
        let buffers = match result {
            Ok(buffers) => buffers,
            Err(error) => {
                // The file shrank or the disk failed: the client is told, the
                // details stay here.
                let changed = error
                    .get_ref()
                    .is_some_and(|inner| inner.is::<SourceChanged>());
                let (code, message) = if changed {
                    log::warn!("a download changed on disk while it was read");
                    (
                        ErrorCode::TRANSFER_FAILED,
                        "the file changed while it was read",
                    )
                } else {
                    log::error!("reading a download failed: {error}");
                    (ErrorCode::INTERNAL, "the file could not be read")
                };
                let _ = self.session.abort_transfer(transfer, code, message);
                self.end_download(transfer, AuditOutcome::Failed, Reason::from(&error));
                return;
            }
        };
        for buffer in buffers {
            match self.session.send_chunk(transfer, buffer) {
                Ok(transmit) => self.driver.queue(transmit),
                Err(error) => {
                    log::debug!("chunk not sent: {error}");
                    return;
                }
            }
        }
        // Read the next chunks while these go out.
        self.pump_download(transfer);
    }

    pub(super) fn download_sent(&mut self, transfer: TransferId) {
        self.end_download(transfer, AuditOutcome::Ok, Reason::from("sent"));
    }

    /// Forgets a download and writes its one audit line (with its length when it
    /// was sent whole). Returns whether `transfer` was a download.
    fn end_download(
        &mut self,
        transfer: TransferId,
        outcome: AuditOutcome,
        reason: Reason,
    ) -> bool {
        let Some(state) = self.downloads.remove(&transfer) else {
            return false;
        };
        let bytes = (outcome == AuditOutcome::Ok).then_some(state.length);
        self.log_transfer(
            EventKind::Retrieve,
            outcome,
            &state.path,
            state.owner.as_ref(),
            bytes,
            reason,
        );
        true
    }

    pub(super) fn open_upload(&mut self, id: RequestId, target: UploadTarget) {
        let UploadTarget {
            upload,
            size,
            offset,
            prefix,
            path,
            owner,
            commit,
            reservation,
        } = target;
        let keeper = upload.keeper();
        match self.session.open_transfer_from(
            id,
            offset,
            size - offset,
            self.streams_for(size - offset),
            prefix,
        ) {
            Ok(transfer) => {
                self.uploads.insert(
                    transfer,
                    UploadState {
                        request: id,
                        upload: Some(upload),
                        writing: false,
                        pending: BTreeMap::new(),
                        next_offset: offset,
                        finished: None,
                        path,
                        owner,
                        commit,
                        keeper,
                        _reservation: reservation,
                    },
                );
            }
            Err(error) => {
                // A resumed partial stays for a later try; a new temporary file goes.
                keeper.keep();
                log::warn!("cannot open an upload: {error}");
                self.respond(id, open_refusal(&error));
            }
        }
    }

    pub(super) fn receive_chunk(&mut self, chunk: ReceivedChunk) {
        let Some(state) = self.uploads.get_mut(&chunk.transfer) else {
            // Late data of a transfer that already ended.
            return;
        };
        let transfer = chunk.transfer;
        self.buffered += chunk.data().len();
        state.pending.insert(chunk.offset, chunk);
        self.pump_upload(transfer);
    }

    /// Starts writing what is contiguous, or committing once all is written.
    fn pump_upload(&mut self, transfer: TransferId) {
        let Some(state) = self.uploads.get_mut(&transfer) else {
            return;
        };
        let Some(mut upload) = state.upload.take() else {
            return;
        };
        let mut batch = Vec::new();
        let mut bytes = 0;
        while bytes < WRITE_BATCH {
            let Some(entry) = state.pending.first_entry() else {
                break;
            };
            if *entry.key() != state.next_offset {
                break;
            }
            let chunk = entry.remove();
            let len = chunk.data().len();
            state.next_offset += len as u64;
            bytes += len;
            batch.push(chunk);
        }
        if !batch.is_empty() {
            state.writing = true;
            self.jobs.spawn_blocking(move || {
                let result = batch
                    .iter()
                    .try_for_each(|chunk| upload.write(chunk.data()));
                Completion::Written {
                    transfer,
                    upload,
                    bytes,
                    result,
                }
            });
        } else if let (Some(digest), true) = (state.finished, state.pending.is_empty()) {
            let check = state.commit.clone();
            if !self.may_commit() {
                if let Some(state) = self.uploads.get_mut(&transfer) {
                    state.upload = Some(upload);
                }
                self.fail_upload(
                    transfer,
                    ErrorCode::NOT_LOGGED_IN,
                    ACCOUNT_GONE.to_owned(),
                    Reason::from(ACCOUNT_GONE),
                );
                return;
            }
            self.jobs.spawn_blocking(move || Completion::Committed {
                transfer,
                result: check.commit(upload, &digest),
            });
        } else {
            state.upload = Some(upload);
        }
    }

    pub(super) fn chunk_written(
        &mut self,
        transfer: TransferId,
        upload: Upload,
        bytes: usize,
        result: Result<(), StoreError>,
    ) {
        self.buffered = self.buffered.saturating_sub(bytes);
        let Some(state) = self.uploads.get_mut(&transfer) else {
            // The transfer failed meanwhile: dropping the upload removes the file,
            // and only then does the client hear that nothing was changed.
            drop(upload);
            if let Some((request, reply)) = self.failed_uploads.remove(&transfer) {
                self.respond(request, reply);
            }
            return;
        };
        state.writing = false;
        state.upload = Some(upload);
        match result {
            Ok(()) => self.pump_upload(transfer),
            Err(error) => {
                let (code, message) = store_error_reply(&error);
                let _ = self.session.abort_transfer(transfer, code, &message);
                self.fail_upload(transfer, code, message, Reason::from(&error));
            }
        }
    }

    pub(super) fn upload_finished(&mut self, transfer: TransferId, length: u64, sha256: [u8; 32]) {
        let Some(state) = self.uploads.get_mut(&transfer) else {
            return;
        };
        log::debug!("upload {transfer:?} received in full ({length} bytes)");
        state.finished = Some(sha256);
        self.pump_upload(transfer);
    }

    pub(super) fn committed(&mut self, transfer: TransferId, result: Result<u64, StoreError>) {
        let Some(state) = self.uploads.remove(&transfer) else {
            return;
        };
        match result {
            Ok(bytes) => {
                self.log_transfer(
                    EventKind::Store,
                    AuditOutcome::Ok,
                    &state.path,
                    state.owner.as_ref(),
                    Some(bytes),
                    Reason::from("committed"),
                );
                self.respond(state.request, Reply::Ok);
            }
            Err(error) => {
                let (code, message) = store_error_reply(&error);
                self.uploads.insert(transfer, state);
                self.fail_upload(transfer, code, message, Reason::from(&error));
            }
        }
    }

    pub(super) fn transfer_failed(
        &mut self,
        transfer: TransferId,
        by: Initiator,
        code: ErrorCode,
        reason: &str,
    ) {
        log::debug!("transfer {transfer:?} failed ({by:?}, {code:?}): {reason}");
        // A lost data association, noticed here or by the client first.
        let lost = code == ErrorCode::ASSOCIATION_LOST;
        let why: &'static str = match by {
            _ if lost => "a data association was lost",
            Initiator::Remote => "aborted by the client",
            Initiator::Local if code == ErrorCode::TIMED_OUT => "stalled",
            Initiator::Local => "failed the length or digest check",
        };
        if !self.end_download(transfer, AuditOutcome::Failed, Reason::from(why))
            && self.uploads.contains_key(&transfer)
        {
            if by == Initiator::Remote || code == ErrorCode::TIMED_OUT || lost {
                // Cut short, not refused: what arrived in order is kept for `reput`.
                if let Some(state) = self.uploads.get(&transfer) {
                    state.keeper.keep();
                }
            }
            let (code, message) = match by {
                _ if lost => (
                    ErrorCode::ASSOCIATION_LOST,
                    "a data association was lost during the upload; nothing was changed, \
                     and what arrived is kept for resuming it",
                ),
                Initiator::Remote => (ErrorCode::ABORTED, "upload aborted; nothing was changed"),
                Initiator::Local if code == ErrorCode::TIMED_OUT => (
                    ErrorCode::TIMED_OUT,
                    "upload made no progress for too long; nothing was changed",
                ),
                Initiator::Local => (
                    ErrorCode::TRANSFER_FAILED,
                    "upload failed its integrity check; nothing was changed",
                ),
            };
            self.fail_upload(transfer, code, message.into(), Reason::from(why));
        }
    }

    /// Ends an upload without committing: the temporary file goes, the STOR gets
    /// its error, the log gets a line.
    fn fail_upload(
        &mut self,
        transfer: TransferId,
        code: ErrorCode,
        message: String,
        reason: Reason,
    ) {
        let Some(state) = self.uploads.remove(&transfer) else {
            return;
        };
        let held: usize = state.pending.values().map(|c| c.data().len()).sum();
        self.buffered = self.buffered.saturating_sub(held);
        let outcome = if matches!(
            code,
            ErrorCode::INTERNAL | ErrorCode::NO_SPACE | ErrorCode::ASSOCIATION_LOST
        ) {
            AuditOutcome::Failed
        } else {
            AuditOutcome::Denied
        };
        self.log_transfer(
            EventKind::Store,
            outcome,
            &state.path,
            state.owner.as_ref(),
            None,
            reason,
        );
        let reply = Reply::error(code, message);
        if state.writing {
            // A write job holds the file: answer when it hands it back.
            self.failed_uploads.insert(transfer, (state.request, reply));
        } else {
            // Dropping the upload (if a failed commit did not already consume
            // it) removes its temporary file before the client hears that
            // nothing was changed.
            drop(state.upload);
            self.respond(state.request, reply);
        }
    }

    /// Whether the uploader's account still exists and is enabled, checked just
    /// before a commit: an upload started before an admin disabled or removed the
    /// account must not land. An unreadable users file also refuses.
    fn may_commit(&self) -> bool {
        self.account
            .as_ref()
            .is_some_and(|account| matches!(self.ctx.account_now(&account.name), Ok(Some(_))))
    }

    /// Logs and drops every upload still open when the connection ends: what
    /// each received in order is kept for its uploader's `reput` (see
    /// [`Keeper`]); the old files stay as they were.
    pub(super) fn abandon_uploads(&mut self) {
        let unfinished: Vec<UploadState> = self.uploads.drain().map(|(_, state)| state).collect();
        for state in unfinished {
            // The association went away: what arrived in order is kept for `reput`.
            state.keeper.keep();
            self.log_transfer(
                EventKind::Store,
                AuditOutcome::Failed,
                &state.path,
                state.owner.as_ref(),
                None,
                Reason::from("the connection ended before the upload completed"),
            );
        }
        self.buffered = 0;
    }

    fn log_transfer(
        &self,
        kind: EventKind,
        outcome: AuditOutcome,
        path: &VirtualPath,
        owner: Option<&Username>,
        bytes: Option<u64>,
        reason: Reason,
    ) {
        let mut event = AuditEvent::new(kind, outcome).path(path).peers(&self.peers);
        if let Some(account) = &self.account {
            event = event.user(&account.name);
        }
        if let Some(owner) = owner {
            event = event.owner(owner);
        }
        if let Some(bytes) = bytes {
            event = event.bytes(bytes);
        }
        if outcome != AuditOutcome::Ok {
            event = event.reason(reason);
        }
        self.write_log(&event);
    }
}

/// Why an upload or command of a removed or disabled account is refused.
pub(super) const ACCOUNT_GONE: &str = "your account was disabled or removed";
