//! The client side of a session.

use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::ServerName;

use crate::control::{Command, Expects, Message, Reply, RequestId};
use crate::record::Direction;
use crate::session::{shared_session_methods, ApiError, Core, Event, SessionConfig};
use crate::tls::{TlsDriver, TlsError};

/// The client's session with the server. Commands may be sent at once, even
/// before the handshake completes (they wait inside TLS), and pipelined: each
/// gets a [`RequestId`] and its answer comes back as [`Event::Response`].
pub struct ClientSession {
    core: Core,
    next_request: u32,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession")
            .field("state", &self.core.state)
            .field("pending", &self.core.pending.len())
            .field("transfers", &self.core.open_transfers())
            .finish_non_exhaustive()
    }
}

impl ClientSession {
    /// A session that will verify the server's certificate for `server_name` (a
    /// DNS name or an IP address that must appear in its SANs).
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
        config: SessionConfig,
        now: Instant,
    ) -> Result<Self, TlsError> {
        let tls = TlsDriver::client(tls, server_name)?;
        Ok(Self {
            core: Core::new(Direction::ClientToServer, config, tls, now),
            next_request: 1,
        })
    }

    shared_session_methods!();

    /// Sends a command; its answer arrives as `Event::Response` with the returned
    /// id. For RETR the answer is a `TransferOpen` and the data follows as chunks
    /// from `handle_message`, ending with `Event::TransferFinished`; for STOR,
    /// send chunks after `Event::CreditAvailable`, and the final `Ok` means the
    /// server has the file durably.
    pub fn send_command(&mut self, command: Command) -> Result<RequestId, ApiError> {
        if self.core.is_closed() {
            return Err(ApiError::Closed);
        }
        if self.core.pending.len() >= self.core.config.max_pending_requests {
            return Err(ApiError::TooManyRequests);
        }
        let id = RequestId(self.next_request);
        let pending = command.expects();
        self.core.send_message(&Message::Request { id, command })?;
        self.next_request = self.next_request.wrapping_add(1);
        self.core.pending.insert(id, pending);
        Ok(id)
    }

    /// Requests sent and not yet fully answered.
    pub fn pending_requests(&self) -> usize {
        self.core.pending.len()
    }

    fn check_data_allowed(&mut self) -> Option<()> {
        Some(())
    }

    fn handle_side_message(&mut self, message: Message) {
        let Message::Response { id, reply } = message else {
            self.core.violation("the server sent a client-only message");
            return;
        };
        let Some(&pending) = self.core.pending.get(&id) else {
            self.core
                .violation(format!("reply to unknown request {id}"));
            return;
        };
        let mut last = reply.is_last_part();
        if let Reply::TransferOpen(open) = &reply {
            let open = *open;
            let (negotiated, fits) = match pending {
                Expects::Download { offset } => {
                    (self.core.config.streams.inbound, open.offset == offset)
                }
                Expects::Upload { size } => (
                    self.core.config.streams.outbound,
                    open.offset == 0 && open.length == size,
                ),
                _ => (0, false),
            };
            if !fits || open.streams == 0 || open.streams >= negotiated {
                self.core
                    .violation(format!("transfer open does not fit request {id}"));
                return;
            }
            if self.core.outgoing.contains_key(&open.transfer)
                || self.core.incoming.contains_key(&open.transfer)
                || self.core.is_retired(open.transfer)
            {
                self.core
                    .violation(format!("transfer id {} reused", open.transfer));
                return;
            }
            if let Expects::Upload { .. } = pending {
                // The final Ok or Error follows the data.
                last = false;
                self.core.register_outgoing(open);
            } else {
                self.core.register_incoming(open);
            }
        }
        if last {
            self.core.pending.remove(&id);
        }
        self.core.events.push_back(Event::Response { id, reply });
    }
}
