//! The server side of a session.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest as _, Sha256};

use crate::bind::MAX_ASSOCIATIONS;
use crate::control::{
    Command, ErrorCode, Expects, Message, Reply, RequestId, TransferId, TransferOpen,
};
use crate::record::Direction;
use crate::session::{
    sealed, truncate_reason, ApiError, Event, Initiator, Session, SessionConfig, Side, State,
};
use crate::tls::{TlsDriver, TlsError};
use crate::transfer::MIN_WINDOW;

/// The server side. It knows nothing of accounts or files: it emits
/// [`Event::LoginRequested`] and [`Event::Request`], and the embedding server
/// answers. Every command but LOGIN, REGISTER and QUIT is refused before login
/// (commands pipelined behind a pending login wait for its outcome).
#[derive(Debug)]
pub struct Server {
    logged_in: bool,
    login_pending: Option<RequestId>,
    held: VecDeque<(RequestId, Command)>,
    next_transfer: u32,
}

impl sealed::Sealed for Server {}

impl Side for Server {
    const DIRECTION: Direction = Direction::ServerToClient;

    fn data_allowed(session: &mut Session<Self>) -> bool {
        if session.state == State::Open && !session.side.logged_in {
            session.violation("data record before login");
            return false;
        }
        true
    }

    fn handle_message(session: &mut Session<Self>, message: Message) {
        session.handle_client_message(message);
    }
}

impl Session<Server> {
    /// A session for a client that just connected.
    ///
    /// # Errors
    ///
    /// [`TlsError`] if rustls cannot start a connection with `tls`.
    pub fn new(
        tls: Arc<rustls::ServerConfig>,
        config: SessionConfig,
        now: Instant,
    ) -> Result<Self, TlsError> {
        let tls = TlsDriver::server(tls)?;
        let side = Server {
            logged_in: false,
            login_pending: None,
            held: VecDeque::new(),
            next_transfer: 1,
        };
        Ok(Self::with_side(side, config, tls, now))
    }

    /// True once a login was accepted.
    pub fn is_logged_in(&self) -> bool {
        self.side.logged_in
    }

    fn reply(&mut self, id: RequestId, reply: Reply) {
        // Replies the session makes itself are small and always encode.
        let _ = self.send_message(&Message::Response { id, reply });
    }

    fn handle_client_message(&mut self, message: Message) {
        let Message::Request { id, command } = message else {
            self.violation("a client sent a server-only message");
            return;
        };
        if self.pending.contains_key(&id) || self.side.held.iter().any(|(held, _)| *held == id) {
            self.violation(format!("request id {id} reused while in flight"));
            return;
        }
        if self.pending.len() + self.side.held.len() >= self.config.max_pending_requests {
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
                let _ = self.send_message(&Message::Close {
                    code: ErrorCode::NO_ERROR,
                    reason: "goodbye".into(),
                });
                self.close_with(Initiator::Remote, ErrorCode::NO_ERROR, "client quit", None);
                return;
            }
            Command::Login { user, password } => (user, password, false),
            Command::Register { user, password } => (user, password, true),
            Command::Detach { index } if self.side.logged_in => {
                // The session answers it itself, once no transfer uses `index`.
                self.start_detach(id, index);
                return;
            }
            command if self.side.logged_in => {
                self.pending.insert(id, command.expects());
                self.events.push_back(Event::Request { id, command });
                return;
            }
            command if self.side.login_pending.is_some() => {
                self.side.held.push_back((id, command));
                return;
            }
            _ => {
                self.reply(id, Reply::error(ErrorCode::NOT_LOGGED_IN, "log in first"));
                return;
            }
        };
        if self.side.logged_in {
            self.reply(
                id,
                Reply::error(ErrorCode::BAD_REQUEST, "already logged in"),
            );
        } else if self.side.login_pending.is_some() {
            self.reply(
                id,
                Reply::error(ErrorCode::BAD_REQUEST, "a login is already in progress"),
            );
        } else {
            self.side.login_pending = Some(id);
            self.pending.insert(id, Expects::Login);
            self.events.push_back(Event::LoginRequested {
                id,
                user,
                password,
                register,
            });
        }
    }

    /// Accepts the pending login `id`: replies `Limits` (this session's limits,
    /// from its configuration), ends the pre-auth timer, and
    /// releases the commands that were waiting behind it.
    ///
    /// # Errors
    ///
    /// [`ApiError::NotConnected`]/[`ApiError::Closed`] outside the open state,
    /// [`ApiError::UnknownRequest`] if `id` is not the pending login.
    pub fn accept_login(&mut self, id: RequestId) -> Result<(), ApiError> {
        self.check_open()?;
        if self.side.login_pending != Some(id) {
            return Err(ApiError::UnknownRequest(id));
        }
        self.side.login_pending = None;
        self.pending.remove(&id);
        self.side.logged_in = true;
        self.handshake_deadline = None;
        let limits = self.announced_limits();
        self.reply(id, limits);
        while let Some((held_id, command)) = self.side.held.pop_front() {
            if let Command::Detach { index } = command {
                self.start_detach(held_id, index);
                continue;
            }
            self.pending.insert(held_id, command.expects());
            self.events.push_back(Event::Request {
                id: held_id,
                command,
            });
        }
        Ok(())
    }

    /// Requests in flight: received and not yet fully answered, those held
    /// behind a pending login included. The session answers `BUSY` to a request
    /// beyond `max_pending_requests`.
    pub fn requests_in_flight(&self) -> usize {
        self.pending.len() + self.side.held.len()
    }

    /// The limits this session enforces, as announced to the client at login.
    fn announced_limits(&self) -> Reply {
        let saturate = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Reply::Limits {
            max_transfers: saturate(self.config.max_transfers),
            max_requests: saturate(self.config.max_pending_requests),
            transfer_window: self.config.transfer_window.max(MIN_WINDOW),
            connection_window: self.config.connection_window.max(MIN_WINDOW),
            max_associations: self.config.max_associations.clamp(1, MAX_ASSOCIATIONS),
        }
    }

    /// Refuses the pending login `id` with `code` (usually `AUTH_FAILED`); the
    /// commands waiting behind it get `NOT_LOGGED_IN`. The session stays open
    /// for another try: the embedding server applies its failure delay and cap.
    ///
    /// # Errors
    ///
    /// As [`Self::accept_login`].
    pub fn reject_login(
        &mut self,
        id: RequestId,
        code: ErrorCode,
        message: &str,
    ) -> Result<(), ApiError> {
        self.check_open()?;
        if self.side.login_pending != Some(id) {
            return Err(ApiError::UnknownRequest(id));
        }
        self.side.login_pending = None;
        self.pending.remove(&id);
        self.send_message(&Message::Response {
            id,
            reply: Reply::error(code, truncate_reason(message)),
        })?;
        while let Some((held_id, _)) = self.side.held.pop_front() {
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
    ///
    /// # Errors
    ///
    /// [`ApiError::UnknownRequest`] if `id` is not in flight (or is the pending
    /// login), [`ApiError::WrongRequest`] for a `TransferOpen`, [`ApiError::Encode`] if
    /// the reply breaks a wire limit, or the session is not open.
    pub fn respond(&mut self, id: RequestId, reply: Reply) -> Result<(), ApiError> {
        self.check_open()?;
        if !self.pending.contains_key(&id) || self.side.login_pending == Some(id) {
            return Err(ApiError::UnknownRequest(id));
        }
        if matches!(reply, Reply::TransferOpen(_)) {
            return Err(ApiError::WrongRequest(id));
        }
        let last = reply.is_last_part();
        self.send_message(&Message::Response { id, reply })?;
        if last {
            self.pending.remove(&id);
        }
        Ok(())
    }

    /// Opens the transfer that answers RETR or STOR request `id`: `length` bytes
    /// from file offset `offset` (for STOR, 0 and the announced size), spread
    /// over up to `streams` data streams. Replies `TransferOpen`. For RETR, send
    /// chunks once `Event::CreditAvailable` arrives; for STOR, write the chunks
    /// `handle_message` returns and wait for `Event::TransferFinished`.
    ///
    /// # Errors
    ///
    /// [`ApiError::UnknownRequest`] or [`ApiError::WrongRequest`] if `id` is not a
    /// pending RETR/STOR or the range does not fit it, [`ApiError::NoDataStreams`],
    /// [`ApiError::TooManyTransfers`], or the session is not open.
    pub fn open_transfer(
        &mut self,
        id: RequestId,
        offset: u64,
        length: u64,
        streams: u16,
    ) -> Result<TransferId, ApiError> {
        self.open_transfer_from(id, offset, length, streams, Sha256::new())
    }

    /// As [`Self::open_transfer`], for a resumed transfer (REGET, REPUT, or a
    /// RETR with an offset): `prefix` is the SHA-256 state of the file's first
    /// `offset` bytes, which the transfer's End digest continues, so that it
    /// covers the whole file from byte 0. For REPUT the range is `offset` to
    /// the announced size.
    ///
    /// # Errors
    ///
    /// As [`Self::open_transfer`].
    pub fn open_transfer_from(
        &mut self,
        id: RequestId,
        offset: u64,
        length: u64,
        streams: u16,
        prefix: Sha256,
    ) -> Result<TransferId, ApiError> {
        self.check_open()?;
        let pending = *self.pending.get(&id).ok_or(ApiError::UnknownRequest(id))?;
        let outbound = match pending {
            Expects::Download { .. } => true,
            Expects::Upload { .. } | Expects::UploadFrom { .. } => false,
            _ => return Err(ApiError::WrongRequest(id)),
        };
        if offset.checked_add(length).is_none() {
            return Err(ApiError::WrongRequest(id));
        }
        let fits = match pending {
            Expects::Upload { size } => offset == 0 && length == size,
            Expects::UploadFrom { offset: from, size } => {
                offset == from && offset.checked_add(length) == Some(size)
            }
            _ => true,
        };
        if !fits {
            return Err(ApiError::WrongRequest(id));
        }
        let (associations, streams) = self.transfer_lanes(outbound, streams);
        if streams == 0 {
            return Err(ApiError::NoDataStreams);
        }
        if self.open_transfers() >= self.config.max_transfers {
            return Err(ApiError::TooManyTransfers);
        }
        let transfer = TransferId(self.side.next_transfer);
        let open = TransferOpen {
            transfer,
            offset,
            length,
            streams,
            associations,
        };
        self.send_message(&Message::Response {
            id,
            reply: Reply::TransferOpen(open),
        })?;
        self.side.next_transfer += 1;
        match pending {
            Expects::Download { .. } => {
                self.pending.remove(&id);
                self.register_outgoing(open, prefix);
            }
            _ => self.register_incoming(open, prefix),
        }
        Ok(transfer)
    }
}
