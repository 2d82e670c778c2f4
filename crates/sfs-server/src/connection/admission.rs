//! Applying LOGIN and REGISTER (the checks themselves are
//! [`crate::cmd::login`] and [`crate::cmd::register`]) to this connection: the
//! throttle's per-source penalty and per-connection delays, and the session's
//! login state.

use sfs_net::Transport;
use sfs_proto::control::{ErrorCode, RequestId};

use super::{Completion, ConnectionTask};
use crate::audit::{AuditEvent, AuditOutcome, Reason};
use crate::cmd::login::{self, LoginDone, Refusal};
use crate::cmd::register;
use crate::throttle::Admission;

impl<T: Transport> ConnectionTask<T> {
    pub(super) fn start_login(
        &mut self,
        id: RequestId,
        user: String,
        password: String,
        register: bool,
    ) {
        let ctx = self.ctx.clone();
        if register {
            if let Some(refusal) = register::refusal_if_closed(&ctx) {
                self.login_done(LoginDone {
                    id,
                    attempted: user,
                    register,
                    result: Err(refusal),
                });
                return;
            }
            let penalty = {
                let mut registrations = ctx
                    .registrations
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                let now = tokio::time::Instant::now().into_std();
                let penalty = registrations.admission_delay(self.source, now);
                registrations.record_costly_attempt(self.source, now);
                penalty
            };
            self.jobs.spawn(async move {
                Completion::Login(register::run(ctx, id, user, password, penalty).await)
            });
            return;
        }
        let admission = {
            let mut throttle = ctx
                .throttle
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            throttle.admission(self.source, &user, tokio::time::Instant::now().into_std())
        };
        let penalty = match admission {
            Admission::Check(penalty) => penalty,
            Admission::Refuse => {
                self.refuse_guessing(id, &user);
                return;
            }
        };
        self.jobs.spawn(async move {
            Completion::Login(login::run(ctx, id, user, password, penalty).await)
        });
    }

    pub(super) fn login_done(&mut self, done: LoginDone) {
        let kind = done.kind();
        match done.result {
            Ok(account) => {
                if self.session.accept_login(done.id).is_err() {
                    return;
                }
                {
                    let mut throttle = self
                        .ctx
                        .throttle
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner());
                    throttle.record_success(&mut self.attempts);
                }
                self.account = Some(account);
                // A logged-in session no longer counts against the pre-auth budget.
                self.pre_auth = None;
                self.record(AuditEvent::new(kind, AuditOutcome::Ok));
            }
            Err(Refusal::BadCredentials) => {
                let verdict = {
                    let mut throttle = self
                        .ctx
                        .throttle
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner());
                    throttle.record_failure(
                        &mut self.attempts,
                        self.source,
                        &done.attempted,
                        tokio::time::Instant::now().into_std(),
                    )
                };
                login::record_refusal(
                    &self.ctx,
                    &self.peers,
                    kind,
                    AuditOutcome::Denied,
                    &done.attempted,
                    "login incorrect",
                );
                let id = done.id;
                self.jobs.spawn(async move {
                    tokio::time::sleep(verdict.delay).await;
                    Completion::LoginRefused {
                        id,
                        code: ErrorCode::AUTH_FAILED,
                        message: "login incorrect",
                        close: verdict.close,
                    }
                });
            }
            Err(Refusal::Other {
                code,
                message,
                reason,
            }) => self.finish_refusal(
                done.id,
                &done.attempted,
                done.register,
                code,
                message,
                reason,
            ),
        }
    }

    /// Refuses a login from a source (or at a name from it) that failed too often,
    /// without checking the password, and closes: retrying at once cannot succeed.
    fn refuse_guessing(&mut self, id: RequestId, attempted: &str) {
        let window = self
            .ctx
            .throttle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .policy()
            .source_window;
        let minutes = window.as_secs().div_ceil(60).max(1);
        let unit = if minutes == 1 { "minute" } else { "minutes" };
        let message =
            format!("too many failed logins from your address: try again in {minutes} {unit}");
        login::record_refusal(
            &self.ctx,
            &self.peers,
            login::event_kind(false),
            AuditOutcome::Denied,
            attempted,
            "too many failed logins from this source",
        );
        if self
            .session
            .reject_login(id, ErrorCode::BUSY, &message)
            .is_ok()
        {
            self.session.close(ErrorCode::BUSY, &message);
        }
    }

    fn finish_refusal(
        &mut self,
        id: RequestId,
        attempted: &str,
        register: bool,
        code: ErrorCode,
        message: std::borrow::Cow<'static, str>,
        reason: Reason,
    ) {
        let outcome = if code == ErrorCode::INTERNAL {
            AuditOutcome::Failed
        } else {
            AuditOutcome::Denied
        };
        login::record_refusal(
            &self.ctx,
            &self.peers,
            login::event_kind(register),
            outcome,
            attempted,
            reason,
        );
        let _ = self.session.reject_login(id, code, &message);
    }
}
