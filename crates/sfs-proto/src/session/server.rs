//! The server side of a session.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use crate::control::{
    Command, ErrorCode, Expects, Message, Reply, RequestId, TransferId, TransferOpen,
};
use crate::record::Direction;
use crate::session::{
    shared_session_methods, ApiError, Core, Event, Initiator, SessionConfig, State,
};
use crate::tls::{TlsDriver, TlsError};

/// The server's session with one client. It knows nothing of accounts or files:
/// it emits [`Event::LoginRequested`] and [`Event::Request`], and the embedding
/// server answers. Every command but LOGIN, REGISTER and QUIT is refused before
/// login (commands pipelined behind a pending login wait for its outcome).
pub struct ServerSession {
    core: Core,
    logged_in: bool,
    login_pending: Option<RequestId>,
    held: VecDeque<(RequestId, Command)>,
    next_transfer: u32,
}

impl std::fmt::Debug for ServerSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSession")
            .field("state", &self.core.state)
            .field("logged_in", &self.logged_in)
            .field("transfers", &self.core.open_transfers())
            .finish_non_exhaustive()
    }
}

impl ServerSession {
    /// A session for a client that just connected.
    pub fn new(
        tls: Arc<rustls::ServerConfig>,
        config: SessionConfig,
        now: Instant,
    ) -> Result<Self, TlsError> {
        let tls = TlsDriver::server(tls)?;
        Ok(Self {
            core: Core::new(Direction::ServerToClient, config, tls, now),
            logged_in: false,
            login_pending: None,
            held: VecDeque::new(),
            next_transfer: 1,
        })
    }

    shared_session_methods!();

    /// True once a login was accepted.
    pub fn is_logged_in(&self) -> bool {
        self.logged_in
    }

    fn check_data_allowed(&mut self) -> Option<()> {
        if self.core.state == State::Open && !self.logged_in {
            self.core.violation("data record before login");
            return None;
        }
        Some(())
    }

    fn reply(&mut self, id: RequestId, reply: Reply) {
        // Replies the session makes itself are small and always encode.
        let _ = self.core.send_message(&Message::Response { id, reply });
    }

    fn handle_side_message(&mut self, message: Message) {
        let Message::Request { id, command } = message else {
            self.core.violation("a client sent a server-only message");
            return;
        };
        if self.core.pending.contains_key(&id) || self.held.iter().any(|(held, _)| *held == id) {
            self.core
                .violation(format!("request id {id} reused while in flight"));
            return;
        }
        if self.core.pending.len() + self.held.len() >= self.core.config.max_pending_requests {
            self.reply(
                id,
                Reply::error(ErrorCode::BUSY, "too many requests in flight"),
            );
            return;
        }
        let (user, password, register) = match command {
            Command::Quit => {
                self.reply(id, Reply::Ok);
                // The client asked; tell it the session is over, then end it.
                let _ = self.core.send_message(&Message::Close {
                    code: ErrorCode::NO_ERROR,
                    reason: "goodbye".into(),
                });
                self.core
                    .close(Initiator::Remote, ErrorCode::NO_ERROR, "client quit", None);
                return;
            }
            Command::Login { user, password } => (user, password, false),
            Command::Register { user, password } => (user, password, true),
            command if self.logged_in => {
                self.core.pending.insert(id, command.expects());
                self.core.events.push_back(Event::Request { id, command });
                return;
            }
            command if self.login_pending.is_some() => {
                self.held.push_back((id, command));
                return;
            }
            _ => {
                self.reply(id, Reply::error(ErrorCode::NOT_LOGGED_IN, "log in first"));
                return;
            }
        };
        if self.logged_in {
            self.reply(
                id,
                Reply::error(ErrorCode::BAD_REQUEST, "already logged in"),
            );
        } else if self.login_pending.is_some() {
            self.reply(
                id,
                Reply::error(ErrorCode::BAD_REQUEST, "a login is already in progress"),
            );
        } else {
            self.login_pending = Some(id);
            self.core.pending.insert(id, Expects::Login);
            self.core.events.push_back(Event::LoginRequested {
                id,
                user,
                password,
                register,
            });
        }
    }

    /// Accepts the pending login `id`: replies `Ok`, ends the pre-auth timer, and
    /// releases the commands that were waiting behind it.
    pub fn accept_login(&mut self, id: RequestId) -> Result<(), ApiError> {
        self.core.check_open()?;
        if self.login_pending != Some(id) {
            return Err(ApiError::UnknownRequest(id));
        }
        self.login_pending = None;
        self.core.pending.remove(&id);
        self.logged_in = true;
        self.core.handshake_deadline = None;
        self.reply(id, Reply::Ok);
        while let Some((held_id, command)) = self.held.pop_front() {
            self.core.pending.insert(held_id, command.expects());
            self.core.events.push_back(Event::Request {
                id: held_id,
                command,
            });
        }
        Ok(())
    }

    /// Refuses the pending login `id` with `code` (usually `AUTH_FAILED`); the
    /// commands waiting behind it get `NOT_LOGGED_IN`. The session stays open
    /// for another try: the embedding server applies its failure delay and cap.
    pub fn reject_login(
        &mut self,
        id: RequestId,
        code: ErrorCode,
        message: &str,
    ) -> Result<(), ApiError> {
        self.core.check_open()?;
        if self.login_pending != Some(id) {
            return Err(ApiError::UnknownRequest(id));
        }
        self.login_pending = None;
        self.core.pending.remove(&id);
        self.core.send_message(&Message::Response {
            id,
            reply: Reply::error(code, super::truncate_reason(message)),
        })?;
        while let Some((held_id, _)) = self.held.pop_front() {
            self.reply(
                held_id,
                Reply::error(ErrorCode::NOT_LOGGED_IN, "log in first"),
            );
        }
        Ok(())
    }

    /// Answers request `id`. A `Listing` or `Shares` part with `more` set keeps
    /// the request open; any other reply is final. RETR and STOR are answered
    /// with [`Self::open_transfer`] (or an `Error`); a STOR's final `Ok` comes
    /// after `Event::TransferFinished`, once the file is durable.
    pub fn respond(&mut self, id: RequestId, reply: Reply) -> Result<(), ApiError> {
        self.core.check_open()?;
        if !self.core.pending.contains_key(&id) || self.login_pending == Some(id) {
            return Err(ApiError::UnknownRequest(id));
        }
        if matches!(reply, Reply::TransferOpen(_)) {
            return Err(ApiError::WrongRequest(id));
        }
        let last = reply.is_last_part();
        self.core.send_message(&Message::Response { id, reply })?;
        if last {
            self.core.pending.remove(&id);
        }
        Ok(())
    }

    /// Opens the transfer that answers RETR or STOR request `id`: `length` bytes
    /// from file offset `offset` (for STOR, 0 and the announced size), spread
    /// over up to `streams` data streams. Replies `TransferOpen`. For RETR, send
    /// chunks once `Event::CreditAvailable` arrives; for STOR, write the chunks
    /// `handle_message` returns and wait for `Event::TransferFinished`.
    pub fn open_transfer(
        &mut self,
        id: RequestId,
        offset: u64,
        length: u64,
        streams: u16,
    ) -> Result<TransferId, ApiError> {
        self.core.check_open()?;
        let pending = *self
            .core
            .pending
            .get(&id)
            .ok_or(ApiError::UnknownRequest(id))?;
        let negotiated = match pending {
            Expects::Download { .. } => self.core.config.streams.outbound,
            Expects::Upload { .. } => self.core.config.streams.inbound,
            _ => return Err(ApiError::WrongRequest(id)),
        };
        if offset.checked_add(length).is_none() {
            return Err(ApiError::WrongRequest(id));
        }
        if let Expects::Upload { size } = pending {
            if offset != 0 || length != size {
                return Err(ApiError::WrongRequest(id));
            }
        }
        let streams = streams.min(negotiated.saturating_sub(1));
        if streams == 0 {
            return Err(ApiError::NoDataStreams);
        }
        if self.core.open_transfers() >= self.core.config.max_transfers {
            return Err(ApiError::TooManyTransfers);
        }
        let transfer = TransferId(self.next_transfer);
        let open = TransferOpen {
            transfer,
            offset,
            length,
            streams,
        };
        self.core.send_message(&Message::Response {
            id,
            reply: Reply::TransferOpen(open),
        })?;
        self.next_transfer += 1;
        match pending {
            Expects::Download { .. } => {
                self.core.pending.remove(&id);
                self.core.register_outgoing(open);
            }
            _ => self.core.register_incoming(open),
        }
        Ok(transfer)
    }
}
