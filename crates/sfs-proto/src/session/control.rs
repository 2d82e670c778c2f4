//! The control channel: TLS on stream 0, its framing into control messages, the
//! messages both sides handle alike, and closing the session.

use crate::codec::DecodeError;
use crate::control::{ErrorCode, Message};
use crate::record::Direction;
use crate::session::{
    truncate_reason, ApiError, CloseReason, Event, Initiator, Session, Side, State,
};
use crate::tls::TlsError;

impl<S: Side> Session<S> {
    /// Ends the session. A `Close` message goes out only if TLS is up and this
    /// side decided; the `close_notify` (or rustls's alert) always does.
    pub(super) fn close_with(
        &mut self,
        by: Initiator,
        code: ErrorCode,
        reason: impl Into<String>,
        tls: Option<TlsError>,
    ) {
        if self.state == State::Closed {
            return;
        }
        let reason = reason.into();
        if by == Initiator::Local {
            log::debug!("closing session: {code}: {reason}");
        }
        if self.state == State::Open && by == Initiator::Local && tls.is_none() {
            let close = Message::Close {
                code,
                reason: truncate_reason(&reason),
            };
            // The reason was truncated to fit, so encoding cannot fail; if it did,
            // the close_notify below still ends the session.
            let _ = self.send_message(&close);
        }
        self.tls.send_close_notify();
        self.state = State::Closed;
        self.outgoing.clear();
        self.incoming.clear();
        self.pending.clear();
        self.assoc.clear();
        self.events.push_back(Event::Closed(CloseReason {
            by,
            code,
            reason,
            tls,
        }));
    }

    pub(super) fn violation(&mut self, reason: impl Into<String>) {
        self.close_with(
            Initiator::Local,
            ErrorCode::PROTOCOL_VIOLATION,
            reason,
            None,
        );
    }

    pub(super) fn send_message(&mut self, message: &Message) -> Result<(), ApiError> {
        let frame = message.to_frame()?;
        self.tls
            .write_plaintext(&frame)
            .map_err(|_| ApiError::Closed)
    }

    /// Feeds a stream-0 message through TLS and returns the control messages it
    /// completed.
    pub(super) fn receive_control(&mut self, msg: &[u8]) -> Vec<Message> {
        let mut messages = Vec::new();
        if self.state == State::Closed {
            return messages;
        }
        self.plaintext.clear();
        let result = self.tls.handle_message(msg, &mut self.plaintext);
        if let Err(error) = result {
            let by = match &error {
                TlsError::Rustls(rustls::Error::AlertReceived(_)) => Initiator::Remote,
                _ => Initiator::Local,
            };
            let reason = error.to_string();
            self.close_with(by, ErrorCode::TLS_FAILURE, reason, Some(error));
            return messages;
        }
        if self.state == State::Handshaking && !self.tls.is_handshaking() {
            match self.tls.record_secret() {
                Ok(secret) => {
                    self.secret = Some(secret.with_records_per_key(self.config.records_per_key));
                    self.state = State::Open;
                    // The server's timer also covers login, and stops there.
                    if S::DIRECTION == Direction::ClientToServer {
                        self.handshake_deadline = None;
                    }
                    self.events.push_back(Event::Connected);
                }
                Err(error) => {
                    let reason = error.to_string();
                    self.close_with(
                        Initiator::Local,
                        ErrorCode::TLS_FAILURE,
                        reason,
                        Some(error),
                    );
                    return messages;
                }
            }
        }
        if !self.plaintext.is_empty() {
            self.frames.push(&self.plaintext);
        }
        loop {
            match self.frames.next_message() {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(error) => {
                    let code = match error {
                        DecodeError::UnsupportedVersion(_) => ErrorCode::UNSUPPORTED_VERSION,
                        _ => ErrorCode::PROTOCOL_VIOLATION,
                    };
                    self.close_with(
                        Initiator::Local,
                        code,
                        format!("bad control message: {error}"),
                        None,
                    );
                    return Vec::new();
                }
            }
        }
        messages
    }

    /// After the messages of one stream-0 message were handled: a `close_notify`
    /// without a `Close` message first still ends the session.
    pub(super) fn finish_control(&mut self) {
        if self.state != State::Closed && self.tls.peer_has_closed() {
            self.close_with(
                Initiator::Remote,
                ErrorCode::NO_ERROR,
                "peer closed TLS",
                None,
            );
        }
    }

    /// Handles the messages both sides treat alike; returns the others.
    pub(super) fn handle_common(&mut self, message: Message) -> Option<Message> {
        match message {
            Message::TransferCredit(credit) => {
                if let Some(out) = self.outgoing.get_mut(&credit.transfer) {
                    out.apply_credit(&credit);
                    let allowance = out.allowance();
                    self.mark_progress(credit.transfer);
                    if allowance > 0 {
                        self.events.push_back(Event::CreditAvailable {
                            transfer: credit.transfer,
                        });
                    }
                    self.finish_outgoing_if_done(credit.transfer);
                } else if !self.is_retired(credit.transfer) {
                    self.violation(format!("credit for unknown transfer {}", credit.transfer));
                }
                None
            }
            Message::TransferAbort(abort) => {
                let known = self.outgoing.remove(&abort.transfer).is_some()
                    | self.incoming.remove(&abort.transfer).is_some();
                if known {
                    self.events.push_back(Event::TransferFailed {
                        transfer: abort.transfer,
                        by: Initiator::Remote,
                        code: abort.code,
                        reason: abort.reason,
                    });
                    self.grant_credits();
                } else if !self.is_retired(abort.transfer) {
                    self.violation(format!("abort of unknown transfer {}", abort.transfer));
                }
                None
            }
            Message::Close { code, reason } => {
                self.close_with(Initiator::Remote, code, reason, None);
                None
            }
            other => Some(other),
        }
    }
}
