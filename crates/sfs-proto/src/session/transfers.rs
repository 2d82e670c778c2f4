//! The transfer registry: the transfers open in a session, in each direction,
//! and the ids of those that ended (their late records are dropped, not errors);
//! the connection-wide credit window the incoming ones share; and the stall
//! timer of each.
//!
//! Flow control has two levels, as in HTTP/2: each incoming transfer grants at
//! most `transfer_window` bytes beyond what it consumed (hashed in order), and
//! the credit outstanding over *all* incoming transfers never exceeds
//! `connection_window`. Chunks held ahead of a gap lie inside granted credit,
//! so they can never take more than the connection window, and the chunk that
//! fills a gap is always within credit too: a receiver whose buffer holds the
//! connection window never has to stop reading to make room for it.

use std::time::{Duration, Instant};

use crate::digest::Sha256;

use crate::control::{ErrorCode, Message, TransferAbort, TransferId, TransferOpen};
use crate::session::{truncate_reason, ApiError, Event, Initiator, Session, Side, State};
use crate::transfer::{IncomingTransfer, OutgoingTransfer, MIN_WINDOW};

impl<S: Side> Session<S> {
    pub(super) fn is_retired(&self, transfer: TransferId) -> bool {
        transfer.0 < self.transfers_seen_below
            && !self.outgoing.contains_key(&transfer)
            && !self.incoming.contains_key(&transfer)
    }

    pub(super) fn note_transfer_id(&mut self, transfer: TransferId) {
        self.transfers_seen_below = self.transfers_seen_below.max(transfer.0.saturating_add(1));
    }

    /// Transfers open in this session.
    pub fn open_transfers(&self) -> usize {
        self.outgoing.len() + self.incoming.len()
    }

    /// Starts receiving `open` and grants the first credit (perhaps of zero
    /// bytes, when the connection window is taken: it still tells the sender
    /// that the transfer is known).
    /// `prefix` is the hash state of the file's bytes before `open.offset` (a
    /// resumed transfer), so the End digest covers the whole file.
    pub(super) fn register_incoming(&mut self, open: TransferOpen, prefix: Sha256) {
        self.note_transfer_id(open.transfer);
        let incoming = IncomingTransfer::new(open, self.config.transfer_window).with_prefix(prefix);
        self.incoming.insert(open.transfer, incoming);
        self.progress.insert(open.transfer, self.clock);
        self.grant_credits();
    }

    /// Starts sending `open`; nothing goes out before the first credit.
    /// `prefix` as for [`Self::register_incoming`].
    pub(super) fn register_outgoing(&mut self, open: TransferOpen, prefix: Sha256) {
        self.note_transfer_id(open.transfer);
        self.outgoing.insert(
            open.transfer,
            OutgoingTransfer::new(open).with_prefix(prefix),
        );
        self.progress.insert(open.transfer, self.clock);
    }

    /// Records that `transfer` moved now (its stall timer restarts).
    pub(super) fn mark_progress(&mut self, transfer: TransferId) {
        if let Some(at) = self.progress.get_mut(&transfer) {
            *at = self.clock;
        }
    }

    /// Credit granted and not yet consumed, over all incoming transfers.
    pub fn outstanding_credit(&self) -> u64 {
        self.incoming
            .values()
            .map(IncomingTransfer::outstanding)
            .sum()
    }

    fn connection_window(&self) -> u64 {
        self.config.connection_window.max(MIN_WINDOW)
    }

    /// Hands out what the connection window has left to the incoming transfers
    /// that can use it, those holding the least first (so none starves), and
    /// sends the credits. Call after anything that consumed or released credit.
    pub(super) fn grant_credits(&mut self) {
        let (incoming, outgoing) = (&self.incoming, &self.outgoing);
        self.progress
            .retain(|id, _| incoming.contains_key(id) || outgoing.contains_key(id));
        let mut available = self
            .connection_window()
            .saturating_sub(self.outstanding_credit());
        let mut order: Vec<(u64, TransferId)> = self
            .incoming
            .values()
            .map(|t| (t.outstanding(), t.id()))
            .collect();
        order.sort_unstable();
        for (before, transfer) in order {
            let Some(incoming) = self.incoming.get_mut(&transfer) else {
                continue;
            };
            let Some(credit) = incoming.credit_update_within(available) else {
                continue;
            };
            available = available.saturating_sub(incoming.outstanding().saturating_sub(before));
            self.mark_progress(transfer);
            // A credit is a few fixed-size fields; it always encodes.
            let _ = self.send_message(&Message::TransferCredit(credit));
        }
    }

    /// When `transfer` stalls, if it is waiting on the peer: a receiver holding
    /// credit the peer does not use (or owed its `End` records), a sender
    /// without credit. `None` while it waits on this side (its own window, the
    /// application's reads).
    fn stall_deadline(&self, transfer: TransferId, timeout: Duration) -> Option<Instant> {
        let since = *self.progress.get(&transfer)?;
        let wait = if let Some(incoming) = self.incoming.get(&transfer) {
            if incoming.outstanding() == 0 && !incoming.all_bytes_in() {
                return None;
            }
            timeout
        } else {
            let outgoing = self.outgoing.get(&transfer)?;
            if outgoing.is_credited() && (outgoing.allowance() > 0 || outgoing.is_complete()) {
                return None;
            }
            timeout.saturating_mul(2)
        };
        since.checked_add(wait)
    }

    /// The earliest stall deadline of any open transfer.
    pub(super) fn next_stall(&self) -> Option<Instant> {
        let timeout = self.config.transfer_stall_timeout?;
        self.incoming
            .keys()
            .chain(self.outgoing.keys())
            .filter_map(|&t| self.stall_deadline(t, timeout))
            .min()
    }

    /// Aborts every transfer whose stall deadline passed, on both sides: the
    /// peer gets a `TransferAbort`, the application `Event::TransferFailed`.
    pub(super) fn abort_stalled(&mut self, now: Instant) {
        let Some(timeout) = self.config.transfer_stall_timeout else {
            return;
        };
        let mut stalled: Vec<TransferId> = self
            .incoming
            .keys()
            .chain(self.outgoing.keys())
            .copied()
            .filter(|&t| self.stall_deadline(t, timeout).is_some_and(|d| now >= d))
            .collect();
        if stalled.is_empty() {
            return;
        }
        stalled.sort_unstable();
        for transfer in stalled {
            let sending = self.outgoing.contains_key(&transfer);
            let wait = if sending {
                timeout.saturating_mul(2)
            } else {
                timeout
            };
            let reason = format!(
                "the transfer made no progress for {} s",
                wait.as_secs().max(1)
            );
            self.fail_transfer(transfer, ErrorCode::TIMED_OUT, reason);
        }
        self.grant_credits();
    }

    /// Ends `transfer` on this side's own verdict (a stall, a lost
    /// association): forgets it, tells the peer with a `TransferAbort` while the
    /// session is open, and the application with `Event::TransferFailed` (by
    /// `Local`). The caller returns the credit (`grant_credits`) once it is done.
    pub(super) fn fail_transfer(&mut self, transfer: TransferId, code: ErrorCode, reason: String) {
        self.outgoing.remove(&transfer);
        self.incoming.remove(&transfer);
        if self.state == State::Open {
            let _ = self.send_message(&Message::TransferAbort(TransferAbort {
                transfer,
                code,
                reason: truncate_reason(&reason),
            }));
        }
        self.events.push_back(Event::TransferFailed {
            transfer,
            by: Initiator::Local,
            code,
            reason,
        });
    }

    /// Once every byte went out (and the receiver knows the transfer), queues the
    /// `End` record on each of the transfer's streams.
    pub(super) fn finish_outgoing_if_done(&mut self, transfer: TransferId) {
        let Some(out) = self.outgoing.get(&transfer) else {
            return;
        };
        if !out.is_complete() || !out.is_credited() {
            return;
        }
        let end = out.end();
        let lanes = out.lanes().to_vec();
        self.outgoing.remove(&transfer);
        for lane in lanes {
            self.ends_out.push_back((lane, end));
        }
        self.events.push_back(Event::TransferSent {
            transfer,
            sha256: end.sha256,
        });
    }

    /// How many bytes of data the next chunk of outgoing `transfer` may carry
    /// now. 0 means wait for `Event::CreditAvailable` (or the transfer is done
    /// or unknown).
    pub fn chunk_allowance(&self, transfer: TransferId) -> usize {
        self.outgoing
            .get(&transfer)
            .map_or(0, OutgoingTransfer::allowance)
    }

    /// How many bytes outgoing `transfer` may send now over any number of
    /// chunks (each at most [`MAX_CHUNK_DATA`](crate::record::MAX_CHUNK_DATA)):
    /// what a sender may read ahead. 0 for an unknown transfer.
    pub fn send_room(&self, transfer: TransferId) -> u64 {
        self.outgoing
            .get(&transfer)
            .map_or(0, OutgoingTransfer::credit_room)
    }

    /// Cancels a transfer in either direction and tells the peer.
    ///
    /// # Errors
    ///
    /// [`ApiError::UnknownTransfer`] if `transfer` is not open, or the session is
    /// not open.
    pub fn abort_transfer(
        &mut self,
        transfer: TransferId,
        code: ErrorCode,
        reason: &str,
    ) -> Result<(), ApiError> {
        self.check_open()?;
        let known =
            self.outgoing.remove(&transfer).is_some() | self.incoming.remove(&transfer).is_some();
        if !known {
            return Err(ApiError::UnknownTransfer(transfer));
        }
        self.send_message(&Message::TransferAbort(TransferAbort {
            transfer,
            code,
            reason: truncate_reason(reason),
        }))?;
        // Its credit returns to the connection window.
        self.grant_credits();
        Ok(())
    }
}
