//! Extra data associations: binding them to the session, routing their
//! records, and losing or retiring them.

use std::time::Instant;

use crate::bind::{BindError, BindRequest};
use crate::control::RequestId;
use crate::session::{ApiError, Chunk, Client, Server, Session, Side, StreamCounts};

impl<S: Side> Session<S> {
    /// Feeds one whole message received on `stream` of association
    /// `association`. Association 0 is [`Self::handle_message`]; on an extra
    /// association only records on data streams are valid (a message on its
    /// stream 0 after the bind, or a record for an association that is not
    /// bound, is a protocol violation and closes the session).
    pub fn handle_message_on<'a>(
        &mut self,
        association: u8,
        stream: u16,
        msg: &'a mut [u8],
        now: Instant,
    ) -> Option<Chunk<'a>> {
        if association == 0 {
            return self.handle_message(stream, msg, now);
        }
        None
    }

    /// Association `index` is gone (failed, or closed by the peer): every open
    /// transfer that uses it fails with `ASSOCIATION_LOST` (an
    /// `Event::TransferFailed` here, a `TransferAbort` to the peer) and the
    /// index is forgotten. Index 0 is [`Self::handle_transport_closed`]. After
    /// a `DETACH` of `index` was answered, nothing fails.
    pub fn handle_association_lost(&mut self, index: u8) {
        if index == 0 {
            self.handle_transport_closed();
        }
    }

    /// The bound associations, as a mask: bit k set = association k is bound
    /// and may carry new transfers. Bit 0 is set once the session is open.
    pub fn associations(&self) -> u16 {
        u16::from(self.is_connected())
    }
}

impl Session<Client> {
    /// The `BIND` message for the ticket the server gave in
    /// `Reply::AssocTicket { index, ticket }`, for a new association that
    /// negotiated `streams`. From this call on, records of transfers that use
    /// `index` are accepted: call it when sending the BIND, before reading the
    /// `BIND_ACK`.
    ///
    /// # Errors
    ///
    /// [`ApiError::BadAssociation`] for index 0, an index out of range or one
    /// already bound; [`ApiError::NotConnected`]/[`ApiError::Closed`] outside
    /// the open state.
    pub fn bind_association(
        &mut self,
        index: u8,
        ticket: [u8; 16],
        streams: StreamCounts,
    ) -> Result<BindRequest, ApiError> {
        let _ = (index, ticket, streams);
        self.check_open()?;
        Err(ApiError::NotConnected)
    }
}

impl Session<Server> {
    /// Answers `ASSOC` request `id` with `Reply::AssocTicket`: records `ticket`
    /// (16 random bytes made by the caller, who registers it for routing
    /// first) as pending for the lowest free index, valid until
    /// `now + BIND_TICKET_LIFETIME`. Returns that index. Tickets not bound in
    /// time are dropped by `handle_timeout` (`poll_timeout` covers them).
    ///
    /// # Errors
    ///
    /// [`ApiError::TooManyAssociations`] at `SessionConfig::max_associations`
    /// (bound and pending ones counted; the caller answers `ASSOCIATION_LIMIT`),
    /// [`ApiError::UnknownRequest`]/[`ApiError::WrongRequest`] if `id` is not a
    /// pending `ASSOC`, or the session is not open.
    pub fn grant_association(
        &mut self,
        id: RequestId,
        ticket: [u8; 16],
        now: Instant,
    ) -> Result<u8, ApiError> {
        let _ = (id, ticket, now);
        self.check_open()?;
        Err(ApiError::TooManyAssociations)
    }

    /// Checks a `BIND` that arrived as the first message of a new association
    /// which negotiated `streams`: the ticket must be pending for `bind.index`
    /// and unexpired (any attempt consumes it, right or wrong) and the proof
    /// must match (compared in constant time). On success the association is
    /// bound and later transfers include it; returns its index.
    ///
    /// # Errors
    ///
    /// The [`BindError`] of the refusal; send [`BindError::code`] in the
    /// `BIND_ACK`, then abort the association.
    pub fn verify_bind(
        &mut self,
        bind: &BindRequest,
        streams: StreamCounts,
        now: Instant,
    ) -> Result<u8, BindError> {
        let _ = (bind, streams, now);
        Err(BindError::Closed)
    }
}
