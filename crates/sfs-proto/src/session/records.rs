//! The data streams: sealing outgoing chunk and `End` records, opening incoming
//! ones and feeding them to their transfer.

use crate::control::{ErrorCode, TransferId};
use crate::record::{Record, RecordError, Sealer, CHUNK_PREFIX_LEN};
use crate::session::{ApiError, Chunk, Event, Initiator, Session, Side, State, Transmit};
use crate::transfer::{IncomingTransfer, Lane, Progress, TransferError};

impl<S: Side> Session<S> {
    pub(super) fn sealer(&mut self, lane: Lane) -> Option<&mut Sealer> {
        let secret = self.secret.as_ref()?;
        let side = S::DIRECTION;
        Some(
            self.sealers
                .entry(lane)
                .or_insert_with(|| secret.sealer(side, lane.association, lane.stream)),
        )
    }

    pub(super) fn close_on_seal_error(&mut self, error: RecordError) {
        let code = match error {
            RecordError::KeyExhausted => ErrorCode::KEY_EXHAUSTED,
            _ => ErrorCode::INTERNAL,
        };
        self.close_with(Initiator::Local, code, error.to_string(), None);
    }

    /// Seals the next chunk of outgoing `transfer` in place and returns it to
    /// send. `buf` is [`CHUNK_PREFIX_LEN`]
    /// bytes of room followed by the data (see
    /// [`chunk_buffer`](crate::record::chunk_buffer)), at most
    /// `chunk_allowance` bytes of it, read from the file at
    /// `next_chunk_offset`. After the last chunk the `End` records are queued
    /// for `poll_transmit` and `Event::TransferSent` follows. Records are
    /// sealed when they are handed out, so sending every transmit in the order
    /// it was handed out keeps each stream in sequence, whenever
    /// `poll_transmit` is drained.
    ///
    /// # Errors
    ///
    /// [`ApiError::UnknownTransfer`], [`ApiError::BadBuffer`],
    /// [`ApiError::ChunkNotAllowed`] (empty, or over `chunk_allowance`), or
    /// [`ApiError::Record`] when the stream's record sequence space is used up
    /// (the session is then closed).
    pub fn send_chunk(
        &mut self,
        transfer: TransferId,
        mut buf: Vec<u8>,
    ) -> Result<Transmit, ApiError> {
        self.check_open()?;
        let out = self
            .outgoing
            .get_mut(&transfer)
            .ok_or(ApiError::UnknownTransfer(transfer))?;
        let len = buf
            .len()
            .checked_sub(CHUNK_PREFIX_LEN)
            .ok_or(ApiError::BadBuffer)?;
        let allowance = out.allowance();
        if len == 0 || len > allowance {
            return Err(ApiError::ChunkNotAllowed { len, allowance });
        }
        let (offset, lane) = out.take_chunk(&buf[CHUNK_PREFIX_LEN..]);
        let sealed = match self.sealer(lane) {
            Some(sealer) => sealer.seal_chunk(transfer, offset, &mut buf),
            None => Err(RecordError::BadBuffer),
        };
        if let Err(error) = sealed {
            self.close_on_seal_error(error.clone());
            return Err(error.into());
        }
        self.finish_outgoing_if_done(transfer);
        Ok(Transmit {
            association: lane.association,
            stream: lane.stream,
            bytes: buf,
        })
    }

    /// Opens one data record that arrived on `lane` and feeds it to its transfer.
    pub(super) fn receive_record<'a>(
        &mut self,
        lane: Lane,
        msg: &'a mut [u8],
    ) -> Option<Chunk<'a>> {
        let Lane {
            association,
            stream,
        } = lane;
        if self.state != State::Open {
            if self.state == State::Handshaking {
                self.violation("data record before the handshake completed");
            }
            return None;
        }
        if stream >= self.streams_of(association).inbound {
            self.violation(format!(
                "message on stream {stream} of association {association}, not negotiated"
            ));
            return None;
        }
        let peer = self.peer_direction();
        let Some(secret) = self.secret.as_ref() else {
            self.violation("no record keys");
            return None;
        };
        let opener = self
            .openers
            .entry(lane)
            .or_insert_with(|| secret.opener(peer, association, stream));
        let record = match opener.open(msg) {
            Ok(record) => record,
            Err(error) => {
                let code = match error {
                    RecordError::KeyExhausted => ErrorCode::KEY_EXHAUSTED,
                    _ => ErrorCode::RECORD_FAILURE,
                };
                self.close_with(
                    Initiator::Local,
                    code,
                    format!("association {association} stream {stream}: {error}"),
                    None,
                );
                return None;
            }
        };
        let received_before = match &record {
            Record::Chunk { transfer, .. } => self.incoming.get(transfer),
            Record::End(end) => self.incoming.get(&end.transfer),
        }
        .map_or(0, IncomingTransfer::received);
        let (transfer, result, chunk) = match record {
            Record::Chunk {
                transfer,
                offset,
                data,
            } => {
                let Some(incoming) = self.incoming.get_mut(&transfer) else {
                    self.unknown_transfer_record(transfer);
                    return None;
                };
                let result = incoming.accept_chunk(lane, offset, data);
                (
                    transfer,
                    result,
                    Some(Chunk {
                        transfer,
                        offset,
                        data,
                    }),
                )
            }
            Record::End(end) => {
                let Some(incoming) = self.incoming.get_mut(&end.transfer) else {
                    self.unknown_transfer_record(end.transfer);
                    return None;
                };
                (end.transfer, incoming.accept_end(lane, end), None)
            }
        };
        match result {
            Ok(Progress::Pending) => {
                let moved = self
                    .incoming
                    .get(&transfer)
                    .is_some_and(|t| t.received() != received_before);
                if moved || chunk.is_none() {
                    self.mark_progress(transfer);
                }
                self.grant_credits();
                chunk
            }
            Ok(Progress::Finished { length, sha256 }) => {
                self.incoming.remove(&transfer);
                self.grant_credits();
                self.events.push_back(Event::TransferFinished {
                    transfer,
                    length,
                    sha256,
                });
                chunk
            }
            Err(
                error @ (TransferError::Truncated { .. }
                | TransferError::DigestMismatch
                | TransferError::LengthMismatch { .. }
                | TransferError::InconsistentEnd),
            ) => {
                // Every record authenticated, so this is the sender's file changing
                // under it or a broken sender: the transfer fails, the session lives.
                self.incoming.remove(&transfer);
                self.grant_credits();
                self.events.push_back(Event::TransferFailed {
                    transfer,
                    by: Initiator::Local,
                    code: ErrorCode::TRANSFER_FAILED,
                    reason: error.to_string(),
                });
                chunk
            }
            Err(error) => {
                let code = match error {
                    TransferError::BeyondCredit => ErrorCode::FLOW_CONTROL,
                    _ => ErrorCode::PROTOCOL_VIOLATION,
                };
                self.close_with(
                    Initiator::Local,
                    code,
                    format!("transfer {transfer}: {error}"),
                    None,
                );
                None
            }
        }
    }

    pub(super) fn unknown_transfer_record(&mut self, transfer: TransferId) {
        if !self.is_retired(transfer) {
            self.violation(format!("record for unknown transfer {transfer}"));
        }
    }

    /// The next message to send, or `None` when there is nothing to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.settle_detaches();
        // Stream 0 first, so that a TransferOpen or credit is never queued behind
        // a burst of records.
        if let Some(bytes) = self.tls.poll_message() {
            return Some(Transmit {
                association: 0,
                stream: 0,
                bytes,
            });
        }
        let (lane, end) = self.ends_out.pop_front()?;
        let mut bytes = Vec::new();
        let sealed = match self.sealer(lane) {
            Some(sealer) => sealer.seal_end(&end, &mut bytes),
            None => Err(RecordError::BadBuffer),
        };
        match sealed {
            Ok(_) => Some(Transmit {
                association: lane.association,
                stream: lane.stream,
                bytes,
            }),
            Err(error) => {
                self.ends_out.clear();
                self.close_on_seal_error(error);
                // The close queued TLS messages to send.
                self.tls.poll_message().map(|bytes| Transmit {
                    association: 0,
                    stream: 0,
                    bytes,
                })
            }
        }
    }
}
