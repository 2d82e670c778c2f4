//! The client side of a session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::ServerName;
use sha2::Sha256;

use crate::control::{Command, Expects, Message, Reply, RequestId};
use crate::record::Direction;
use crate::session::{sealed, ApiError, Event, Session, SessionConfig, Side};
use crate::tls::{TlsDriver, TlsError};

/// The client side: commands may be sent at once, even before the handshake
/// completes (they wait inside TLS), and pipelined: each gets a [`RequestId`] and
/// its answer comes back as [`Event::Response`].
#[derive(Debug)]
pub struct Client {
    next_request: u32,
    /// The hash state of the bytes before the offset of a resuming request
    /// (REGET, REPUT), taken up by its transfer.
    prefixes: HashMap<RequestId, Sha256>,
}

impl sealed::Sealed for Client {}

impl Side for Client {
    const DIRECTION: Direction = Direction::ClientToServer;

    fn data_allowed(_session: &mut Session<Self>) -> bool {
        true
    }

    fn handle_message(session: &mut Session<Self>, message: Message) {
        session.handle_server_message(message);
    }
}

impl Session<Client> {
    /// A session that will verify the server's certificate for `server_name` (a
    /// DNS name or an IP address that must appear in its SANs).
    ///
    /// # Errors
    ///
    /// [`TlsError`] if rustls cannot start a connection with `tls`.
    pub fn new(
        tls: Arc<rustls::ClientConfig>,
        server_name: ServerName<'static>,
        config: SessionConfig,
        now: Instant,
    ) -> Result<Self, TlsError> {
        let tls = TlsDriver::client(tls, server_name)?;
        Ok(Self::with_side(
            Client {
                next_request: 1,
                prefixes: HashMap::new(),
            },
            config,
            tls,
            now,
        ))
    }

    /// Sends a command; its answer arrives as `Event::Response` with the returned
    /// id. For RETR the answer is a `TransferOpen` and the data follows as chunks
    /// from `handle_message`, ending with `Event::TransferFinished`; for STOR,
    /// send chunks after `Event::CreditAvailable`, and the final `Ok` means the
    /// server has the file durably.
    ///
    /// # Errors
    ///
    /// [`ApiError::Closed`] after the session closed, [`ApiError::TooManyRequests`]
    /// at `max_pending_requests`, [`ApiError::Encode`] if a field breaks a wire limit.
    pub fn send_command(&mut self, command: Command) -> Result<RequestId, ApiError> {
        if self.is_closed() {
            return Err(ApiError::Closed);
        }
        if self.pending.len() >= self.config.max_pending_requests {
            return Err(ApiError::TooManyRequests);
        }
        let id = RequestId(self.side.next_request);
        let pending = command.expects();
        self.send_message(&Message::Request { id, command })?;
        self.side.next_request = self.side.next_request.wrapping_add(1);
        self.pending.insert(id, pending);
        Ok(id)
    }

    /// Sends a resuming command (REGET, REPUT) whose transfer continues `prefix`,
    /// the SHA-256 state of the local file's first `offset` bytes (the request's
    /// `prefix` field is its digest). The transfer's End digest then covers the
    /// whole file from byte 0. Otherwise as [`Self::send_command`].
    ///
    /// # Errors
    ///
    /// As [`Self::send_command`].
    pub fn send_resuming(
        &mut self,
        command: Command,
        prefix: Sha256,
    ) -> Result<RequestId, ApiError> {
        let id = self.send_command(command)?;
        self.side.prefixes.insert(id, prefix);
        Ok(id)
    }

    /// True if every association of `mask` is bound here and has more than
    /// `streams` streams in the direction of the transfer (`upload`: ours).
    fn lanes_fit(&self, mask: u16, streams: u16, upload: bool) -> bool {
        let bound = self.associations();
        if mask & !bound != 0 {
            return false;
        }
        (1..crate::bind::MAX_ASSOCIATIONS)
            .filter(|k| mask & (1 << k) != 0)
            .all(|k| {
                let counts = self.streams_of(k);
                let negotiated = if upload {
                    counts.outbound
                } else {
                    counts.inbound
                };
                streams < negotiated
            })
    }

    /// Requests sent and not yet fully answered.
    pub fn pending_requests(&self) -> usize {
        self.pending.len()
    }

    fn handle_server_message(&mut self, message: Message) {
        let Message::Response { id, reply } = message else {
            self.violation("the server sent a client-only message");
            return;
        };
        let Some(&pending) = self.pending.get(&id) else {
            self.violation(format!("reply to unknown request {id}"));
            return;
        };
        if let (Expects::Detach { index }, Reply::Ok) = (pending, &reply) {
            // Passed on once no transfer here uses the association either.
            self.hold_detach(id, index);
            return;
        }
        let mut last = reply.is_last_part();
        if let Reply::TransferOpen(open) = &reply {
            let open = *open;
            let (negotiated, fits) = match pending {
                Expects::Download { offset } => {
                    (self.config.streams.inbound, open.offset == offset)
                }
                Expects::Upload { size } => (
                    self.config.streams.outbound,
                    open.offset == 0 && open.length == size,
                ),
                Expects::UploadFrom { offset, size } => (
                    self.config.streams.outbound,
                    open.offset == offset && open.offset.checked_add(open.length) == Some(size),
                ),
                _ => (0, false),
            };
            let upload = matches!(pending, Expects::Upload { .. } | Expects::UploadFrom { .. });
            if !fits
                || open.streams == 0
                || open.streams >= negotiated
                || !self.lanes_fit(open.associations, open.streams, upload)
            {
                self.violation(format!("transfer open does not fit request {id}"));
                return;
            }
            if self.outgoing.contains_key(&open.transfer)
                || self.incoming.contains_key(&open.transfer)
                || self.is_retired(open.transfer)
            {
                self.violation(format!("transfer id {} reused", open.transfer));
                return;
            }
            let prefix = self.side.prefixes.remove(&id).unwrap_or_default();
            if let Expects::Upload { .. } | Expects::UploadFrom { .. } = pending {
                // The final Ok or Error follows the data.
                last = false;
                self.register_outgoing(open, prefix);
            } else {
                self.register_incoming(open, prefix);
            }
        }
        if last {
            self.pending.remove(&id);
            self.side.prefixes.remove(&id);
        }
        self.events.push_back(Event::Response { id, reply });
    }
}
