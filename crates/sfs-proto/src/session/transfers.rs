//! The transfer registry: the transfers open in a session, in each direction,
//! and the ids of those that ended (their late records are dropped, not errors).

use crate::control::{ErrorCode, Message, TransferAbort, TransferId, TransferOpen};
use crate::session::{truncate_reason, ApiError, Event, Session, Side};
use crate::transfer::{IncomingTransfer, OutgoingTransfer};

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

    /// Starts receiving `open` and grants the first credit.
    pub(super) fn register_incoming(&mut self, open: TransferOpen) {
        self.note_transfer_id(open.transfer);
        let mut incoming = IncomingTransfer::new(open, self.config.transfer_window);
        let credit = incoming.credit_update();
        self.incoming.insert(open.transfer, incoming);
        if let Some(credit) = credit {
            // A credit is a few fixed-size fields; it always encodes.
            let _ = self.send_message(&Message::TransferCredit(credit));
        }
    }

    /// Starts sending `open`; nothing goes out before the first credit.
    pub(super) fn register_outgoing(&mut self, open: TransferOpen) {
        self.note_transfer_id(open.transfer);
        self.outgoing
            .insert(open.transfer, OutgoingTransfer::new(open));
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
        let streams = out.open().streams;
        self.outgoing.remove(&transfer);
        for stream in 1..=streams {
            self.ends_out.push_back((stream, end));
        }
        self.events.push_back(Event::TransferSent { transfer });
    }

    /// How many bytes of data the next chunk of outgoing `transfer` may carry
    /// now. 0 means wait for `Event::CreditAvailable` (or the transfer is done
    /// or unknown).
    pub fn chunk_allowance(&self, transfer: TransferId) -> usize {
        self.outgoing
            .get(&transfer)
            .map_or(0, OutgoingTransfer::allowance)
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
        }))
    }
}
