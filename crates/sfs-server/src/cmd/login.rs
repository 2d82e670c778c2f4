//! LOGIN: check a name and password.
//!
//! A login first waits out its source's penalty (if any), then runs one bcrypt
//! verification whether or not the name exists (see
//! [`Accounts::authenticate_bytes`](crate::accounts::Accounts::authenticate_bytes)),
//! so an unknown name and a wrong password get the same reply after the same time.
//! The connection records a failure with the
//! [`LoginThrottle`](crate::throttle::LoginThrottle): the reply waits the
//! connection's growing delay, and the connection closes after the
//! per-connection cap.
//!
//! Unlike the file commands, LOGIN and REGISTER run before there is an account,
//! as async jobs (bcrypt is bounded by the [`Hasher`](crate::accounts::Hasher));
//! the connection applies their [`LoginDone`] to its session and throttle.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sfs_proto::control::{ErrorCode, RequestId};

use crate::accounts::{Account, LoginError};
use crate::audit::{AuditEvent, AuditOutcome, EventKind, Reason};
use crate::context::ServerContext;

/// What a login or registration job found.
pub(crate) struct LoginDone {
    pub id: RequestId,
    /// The name as sent, for the log (logged only if it is a valid name).
    pub attempted: String,
    pub register: bool,
    pub result: Result<Account, Refusal>,
}

impl LoginDone {
    /// The audit event kind: a login or a registration.
    pub fn kind(&self) -> EventKind {
        event_kind(self.register)
    }
}

/// Why a login or registration was refused.
pub(crate) enum Refusal {
    /// Wrong name or password: counts against the throttle.
    BadCredentials,
    /// Anything else: told to the client at once, not counted.
    Other {
        code: ErrorCode,
        message: Cow<'static, str>,
        reason: Reason,
    },
}

/// The audit event kind of a login (`register` false) or registration.
pub(crate) fn event_kind(register: bool) -> EventKind {
    if register {
        EventKind::Register
    } else {
        EventKind::Login
    }
}

/// Waits out `penalty`, then checks `user` and `password`.
///
/// # Cancel safety
/// Cancelling drops the check; nothing was changed.
pub(crate) async fn run(
    ctx: Arc<ServerContext>,
    id: RequestId,
    user: String,
    password: String,
    penalty: Duration,
) -> LoginDone {
    tokio::time::sleep(penalty).await;
    let result = match ctx
        .accounts
        .authenticate_bytes(&user, password.into_bytes())
        .await
    {
        Ok(account) => Ok(account),
        Err(LoginError::Rejected) => Err(Refusal::BadCredentials),
        Err(LoginError::Unavailable(error)) => {
            log::error!("login check failed: {error}");
            Err(Refusal::Other {
                code: ErrorCode::INTERNAL,
                message: "internal error".into(),
                reason: Reason::from(&error),
            })
        }
    };
    LoginDone {
        id,
        attempted: user,
        register: false,
        result,
    }
}

/// Logs a refused login or registration under the name that was tried.
pub(crate) fn record_refusal(
    ctx: &ServerContext,
    peers: &[SocketAddr],
    kind: EventKind,
    outcome: AuditOutcome,
    attempted: &str,
    reason: impl Into<Reason>,
) {
    let event = AuditEvent::new(kind, outcome)
        .attempted_user(attempted)
        .peers(peers)
        .reason(reason);
    if let Err(error) = ctx.audit.record(&event) {
        log::error!("cannot write server.log: {error}");
    }
}
