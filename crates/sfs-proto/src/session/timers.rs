//! The session's timers: the handshake (and, on the server, login) deadline and
//! the idle timeout. Time only moves when the embedder passes `now`.

use std::time::Instant;

use crate::control::ErrorCode;
use crate::session::{Initiator, Session, Side, State};

impl<S: Side> Session<S> {
    pub(super) fn touch(&mut self, now: Instant) {
        self.last_activity = now;
        self.clock = self.clock.max(now);
    }

    /// When `handle_timeout` must be called next, if ever. The answer changes
    /// after every input and command, so ask again after each and re-arm the one
    /// timer with it.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let session = self.session_deadline();
        let stall = self.next_stall().filter(|_| self.state == State::Open);
        let ticket = self.next_ticket_expiry();
        [session, stall, ticket].into_iter().flatten().min()
    }

    /// The handshake, login or idle deadline: passing it closes the session.
    fn session_deadline(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        let idle = self.config.idle_timeout.filter(|_| {
            self.state == State::Open && self.pending.is_empty() && self.open_transfers() == 0
        });
        let idle_deadline = idle.and_then(|timeout| self.last_activity.checked_add(timeout));
        match (self.handshake_deadline, idle_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires the handshake, login or idle timer if `now` is past it (it closes
    /// the session with `TIMED_OUT`), and aborts the transfers whose stall
    /// timer passed (`Event::TransferFailed` with `TIMED_OUT`; the peer is told
    /// too). Drain `poll_transmit` and `poll_event` after. Deliver it when the `poll_timeout` deadline passes even if no
    /// message is arriving: a silent peer is exactly the case these timers are
    /// for. Calling it early is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock = self.clock.max(now);
        if self.state == State::Open {
            self.abort_stalled(now);
        }
        self.expire_tickets(now);
        if let Some(deadline) = self.session_deadline() {
            if now >= deadline {
                let reason = if self.handshake_deadline.is_some_and(|d| now >= d) {
                    "handshake or login took too long"
                } else {
                    "idle"
                };
                self.close_with(Initiator::Local, ErrorCode::TIMED_OUT, reason, None);
            }
        }
    }
}
