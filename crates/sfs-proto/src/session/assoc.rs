//! Extra data associations: binding them to the session (tickets on the
//! server, the `BIND` proof on the client), routing their records, and losing
//! or retiring (`DETACH`) them.
//!
//! Association 0 is the first association: TLS and every control message. An
//! extra association `k` (1..=15) carries only records, on its data streams,
//! of transfers whose mask has bit `k`. The server puts every bound
//! association that is not being retired into the mask of each new transfer.

use std::time::Instant;

use crate::bind::{BindError, BindRequest, BIND_TICKET_LIFETIME, MAX_ASSOCIATIONS};
use crate::control::{ErrorCode, Expects, Message, Reply, RequestId};
use crate::session::{ApiError, Chunk, Client, Event, Server, Session, Side, State, StreamCounts};
use crate::transfer::Lane;

/// A ticket the server handed out and the client has not redeemed yet.
#[derive(Debug)]
struct Ticket {
    index: u8,
    ticket: [u8; 16],
    expires: Instant,
}

/// The session's extra associations.
#[derive(Debug, Default)]
pub(super) struct Associations {
    /// Bit k: association k (k >= 1) is bound.
    bound: u16,
    /// Server: bit k: a `DETACH` of k arrived; k goes into no new transfer.
    retiring: u16,
    /// The stream counts of each bound extra association, by index.
    streams: [Option<StreamCounts>; MAX_ASSOCIATIONS as usize],
    /// Server: tickets handed out and not redeemed.
    tickets: Vec<Ticket>,
    /// `DETACH` requests waiting until no open transfer uses their index: on
    /// the server the reply, on the client the `Ok` event.
    detaches: Vec<(RequestId, u8)>,
}

impl Associations {
    fn bind(&mut self, index: u8, streams: StreamCounts) {
        self.bound |= 1 << index;
        self.streams[usize::from(index)] = Some(streams);
    }

    fn forget(&mut self, index: u8) {
        self.bound &= !(1 << index);
        self.retiring &= !(1 << index);
        self.streams[usize::from(index)] = None;
    }

    fn is_bound(&self, index: u8) -> bool {
        index < MAX_ASSOCIATIONS && self.bound & (1 << index) != 0
    }

    /// Forgets everything: the session closed.
    pub(super) fn clear(&mut self) {
        *self = Self::default();
    }
}

/// Compares two tickets in time independent of where they differ.
fn same_ticket(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

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
        self.touch(now);
        if self.state == State::Closed {
            return None;
        }
        if !self.assoc.is_bound(association) {
            self.violation(format!(
                "message on association {association}, which is not bound"
            ));
            return None;
        }
        if stream == 0 {
            self.violation(format!("message on stream 0 of association {association}"));
            return None;
        }
        if S::data_allowed(self) {
            self.receive_record(Lane::new(association, stream), msg)
        } else {
            None
        }
    }

    /// Association `index` is gone (failed, or closed by the peer): every open
    /// transfer that uses it fails with `ASSOCIATION_LOST` (an
    /// `Event::TransferFailed` here, a `TransferAbort` to the peer, which may
    /// not have noticed yet) and the index is forgotten; transfers that do not
    /// use it go on. Index 0 is [`Self::handle_transport_closed`]. After a
    /// `DETACH` of `index` was answered, or for an index that is not bound,
    /// nothing happens.
    pub fn handle_association_lost(&mut self, index: u8) {
        if index == 0 {
            self.handle_transport_closed();
            return;
        }
        if !self.assoc.is_bound(index) {
            return;
        }
        self.assoc.forget(index);
        let bit = 1u16 << index;
        let uses = |mask: u16| mask & bit != 0;
        let mut failed: Vec<_> = self
            .outgoing
            .iter()
            .filter(|(_, t)| uses(t.open().associations))
            .map(|(&id, _)| id)
            .chain(
                self.incoming
                    .iter()
                    .filter(|(_, t)| uses(t.open().associations))
                    .map(|(&id, _)| id),
            )
            .collect();
        failed.sort_unstable();
        let reason = format!("data association {index} was lost");
        for transfer in failed {
            self.fail_transfer(transfer, ErrorCode::ASSOCIATION_LOST, reason.clone());
        }
        self.ends_out.retain(|(lane, _)| lane.association != index);
        self.sealers.retain(|lane, _| lane.association != index);
        self.openers.retain(|lane, _| lane.association != index);
        self.grant_credits();
    }

    /// The bound associations, as a mask: bit k set = association k is bound.
    /// Bit 0 is set while the session is open; 0 once closed.
    pub fn associations(&self) -> u16 {
        if self.state == State::Open {
            self.assoc.bound | 1
        } else {
            0
        }
    }

    /// The stream counts of association `index` (0: the session's own).
    pub(super) fn streams_of(&self, index: u8) -> StreamCounts {
        if index == 0 {
            return self.config.streams;
        }
        self.assoc
            .streams
            .get(usize::from(index))
            .copied()
            .flatten()
            .unwrap_or(StreamCounts {
                outbound: 0,
                inbound: 0,
            })
    }

    /// True if an open transfer, or an `End` record still to send, uses
    /// association `index`.
    fn uses_association(&self, index: u8) -> bool {
        let bit = 1u16 << index;
        self.outgoing
            .values()
            .any(|t| t.open().associations & bit != 0)
            || self
                .incoming
                .values()
                .any(|t| t.open().associations & bit != 0)
            || self
                .ends_out
                .iter()
                .any(|(lane, _)| lane.association == index)
    }

    /// Completes the `DETACH`es whose association no transfer uses any more:
    /// the server replies `Ok`, the client passes the `Ok` on; both forget the
    /// index, so its closing is no loss.
    pub(super) fn settle_detaches(&mut self) {
        if self.assoc.detaches.is_empty() {
            return;
        }
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.assoc.detaches)
            .into_iter()
            .partition(|&(_, index)| !self.uses_association(index));
        self.assoc.detaches = waiting;
        for (id, index) in done {
            self.assoc.forget(index);
            self.sealers.retain(|lane, _| lane.association != index);
            self.openers.retain(|lane, _| lane.association != index);
            self.pending.remove(&id);
            if self.state != State::Open {
                continue;
            }
            if S::DIRECTION == crate::record::Direction::ServerToClient {
                let _ = self.send_message(&Message::Response {
                    id,
                    reply: Reply::Ok,
                });
            } else {
                self.events.push_back(Event::Response {
                    id,
                    reply: Reply::Ok,
                });
            }
        }
    }

    /// The earliest expiry of a pending ticket.
    pub(super) fn next_ticket_expiry(&self) -> Option<Instant> {
        self.assoc.tickets.iter().map(|t| t.expires).min()
    }

    /// Drops the tickets that expired by `now`.
    pub(super) fn expire_tickets(&mut self, now: Instant) {
        self.assoc.tickets.retain(|t| t.expires > now);
    }

    /// The `Ok` answering the client's `DETACH` of `index`: held until no
    /// transfer of the client uses it (the server's last records on it may
    /// still be on their way).
    pub(super) fn hold_detach(&mut self, id: RequestId, index: u8) {
        self.assoc.detaches.push((id, index));
        self.settle_detaches();
    }
}

impl Session<Client> {
    /// The `BIND` message for the ticket the server gave in
    /// `Reply::AssocTicket { index, ticket }`, for a new association that
    /// negotiated `streams`. From this call on the association counts as bound
    /// here and records of transfers that use `index` are accepted: call it
    /// when sending the BIND, before reading the `BIND_ACK`. If the server
    /// refuses the BIND or the association fails before it is attached, call
    /// [`Self::handle_association_lost`] with `index`.
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
        self.check_open()?;
        if index == 0 || index >= MAX_ASSOCIATIONS || self.assoc.is_bound(index) {
            return Err(ApiError::BadAssociation(index));
        }
        let secret = self.secret.as_ref().ok_or(ApiError::NotConnected)?;
        let proof = secret.bind_proof(index, &ticket);
        self.assoc.bind(index, streams);
        Ok(BindRequest {
            index,
            ticket,
            proof,
        })
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
    /// (bound associations and pending tickets counted, the first association
    /// included; the request stays open: answer it with `ASSOCIATION_LIMIT`),
    /// [`ApiError::UnknownRequest`]/[`ApiError::WrongRequest`] if `id` is not a
    /// pending `ASSOC`, or the session is not open.
    pub fn grant_association(
        &mut self,
        id: RequestId,
        ticket: [u8; 16],
        now: Instant,
    ) -> Result<u8, ApiError> {
        self.check_open()?;
        match self.pending.get(&id) {
            None => return Err(ApiError::UnknownRequest(id)),
            Some(Expects::Assoc) => {}
            Some(_) => return Err(ApiError::WrongRequest(id)),
        }
        self.expire_tickets(now);
        let limit = self.config.max_associations.clamp(1, MAX_ASSOCIATIONS);
        // Bound ones (bit 0 included) and pending tickets each hold a place.
        let held = (self.assoc.bound | 1).count_ones() as usize + self.assoc.tickets.len();
        if held >= usize::from(limit) {
            return Err(ApiError::TooManyAssociations);
        }
        let index = (1..MAX_ASSOCIATIONS)
            .find(|&k| !self.assoc.is_bound(k) && !self.assoc.tickets.iter().any(|t| t.index == k))
            .ok_or(ApiError::TooManyAssociations)?;
        self.send_message(&Message::Response {
            id,
            reply: Reply::AssocTicket { index, ticket },
        })?;
        self.pending.remove(&id);
        self.assoc.tickets.push(Ticket {
            index,
            ticket,
            expires: now.checked_add(BIND_TICKET_LIFETIME).unwrap_or(now),
        });
        Ok(index)
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
        match self.state {
            State::Closed => return Err(BindError::Closed),
            State::Handshaking => return Err(BindError::NotLoggedIn),
            State::Open if !self.is_logged_in() => return Err(BindError::NotLoggedIn),
            State::Open => {}
        }
        let position = self
            .assoc
            .tickets
            .iter()
            .position(|t| same_ticket(&t.ticket, &bind.ticket))
            .ok_or(BindError::UnknownTicket)?;
        let ticket = self.assoc.tickets.swap_remove(position);
        if now >= ticket.expires {
            return Err(BindError::Expired);
        }
        if ticket.index != bind.index {
            return Err(BindError::WrongIndex);
        }
        let secret = self.secret.as_ref().ok_or(BindError::Closed)?;
        if !secret.verify_bind_proof(bind.index, &bind.ticket, &bind.proof) {
            return Err(BindError::BadProof);
        }
        if self.assoc.is_bound(bind.index) {
            return Err(BindError::WrongIndex);
        }
        self.assoc.bind(bind.index, streams);
        Ok(bind.index)
    }

    /// Starts retiring extra association `index` for `DETACH` request `id`:
    /// no new transfer uses it, and the `Ok` goes out once no open one does.
    pub(super) fn start_detach(&mut self, id: RequestId, index: u8) {
        // `index` comes from the peer: range-checked (by `is_bound`) before it
        // is used as a shift.
        if index == 0 || !self.assoc.is_bound(index) || self.assoc.retiring & (1 << index) != 0 {
            let _ = self.send_message(&Message::Response {
                id,
                reply: Reply::error(
                    ErrorCode::BAD_REQUEST,
                    format!("association {index} is not a bound extra association"),
                ),
            });
            return;
        }
        self.assoc.retiring |= 1 << index;
        self.pending.insert(id, Expects::Detach { index });
        self.hold_detach(id, index);
    }

    /// The associations a new transfer may use in the server's `direction`
    /// (sending when `outbound`), and the data streams it may use on each: the
    /// fewest that all of them have, at most `wanted`.
    pub(super) fn transfer_lanes(&self, outbound: bool, wanted: u16) -> (u16, u16) {
        let count =
            |s: StreamCounts| if outbound { s.outbound } else { s.inbound }.saturating_sub(1);
        let mut streams = wanted.min(count(self.config.streams));
        let mut mask = 1u16;
        for k in 1..MAX_ASSOCIATIONS {
            let bit = 1u16 << k;
            if self.assoc.bound & bit == 0 || self.assoc.retiring & bit != 0 {
                continue;
            }
            let data_streams = count(self.streams_of(k));
            if data_streams == 0 {
                continue;
            }
            mask |= bit;
            streams = streams.min(data_streams);
        }
        (mask, streams)
    }
}
