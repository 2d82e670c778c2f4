//! LOGIN and REGISTER.
//!
//! A login first waits out its source's penalty (if any), then runs one bcrypt
//! verification whether or not the name exists (see
//! [`Accounts::authenticate_bytes`](crate::accounts::Accounts::authenticate_bytes)),
//! so an unknown name and a wrong password get the same reply after the same time.
//! A failure is recorded with the [`LoginThrottle`](crate::throttle::LoginThrottle):
//! the reply waits the connection's growing delay, and the connection closes after
//! the per-connection cap.
//!
//! A registration (when the server allows it) checks the name against the
//! allow-list and the password's length, creates an ordinary account (never an
//! admin: [`Accounts::register`](crate::accounts::Accounts::register) has no role
//! parameter), creates the home, and logs the user in.

use sfs_net::Transport;
use sfs_proto::control::{ErrorCode, RequestId};

use super::{Completion, Connection};
use crate::accounts::{Account, LoginError, Password, RegisterError, Username};
use crate::audit::{Event as LogEvent, EventKind, Outcome as LogOutcome, Reason};

/// What a login or registration job found.
pub(super) struct LoginDone {
    id: RequestId,
    /// The name as sent, for the log (logged only if it is a valid name).
    attempted: String,
    register: bool,
    result: Result<Account, Refusal>,
}

/// Why a login or registration was refused.
enum Refusal {
    /// Wrong name or password: counts against the throttle.
    BadCredentials,
    /// Anything else: told to the client at once, not counted.
    Other {
        code: ErrorCode,
        message: &'static str,
        reason: Reason,
    },
}

impl<T: Transport> Connection<T> {
    pub(super) fn start_login(
        &mut self,
        id: RequestId,
        user: String,
        password: String,
        register: bool,
    ) {
        let ctx = self.ctx.clone();
        if register {
            if !ctx.settings.allow_registration {
                self.finish_refusal(
                    id,
                    &user,
                    true,
                    ErrorCode::REGISTRATION_CLOSED,
                    "this server does not allow registration",
                    Reason::from("registration is closed"),
                );
                return;
            }
            self.jobs.spawn(async move {
                let result = register_account(&ctx, &user, password).await;
                Completion::Login(LoginDone {
                    id,
                    attempted: user,
                    register,
                    result,
                })
            });
            return;
        }
        let penalty = {
            let mut throttle = ctx
                .throttle
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            throttle.admission_delay(self.source, tokio::time::Instant::now().into_std())
        };
        self.jobs.spawn(async move {
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
                        message: "internal error",
                        reason: Reason::from(&error),
                    })
                }
            };
            Completion::Login(LoginDone {
                id,
                attempted: user,
                register,
                result,
            })
        });
    }

    pub(super) fn login_done(&mut self, done: LoginDone) {
        let kind = if done.register {
            EventKind::Register
        } else {
            EventKind::Login
        };
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
                self.record(LogEvent::new(kind, LogOutcome::Ok));
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
                        tokio::time::Instant::now().into_std(),
                    )
                };
                self.write_log(
                    &LogEvent::new(kind, LogOutcome::Denied)
                        .attempted_user(&done.attempted)
                        .peers(&self.peers)
                        .reason("login incorrect"),
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

    fn finish_refusal(
        &mut self,
        id: RequestId,
        attempted: &str,
        register: bool,
        code: ErrorCode,
        message: &'static str,
        reason: Reason,
    ) {
        let kind = if register {
            EventKind::Register
        } else {
            EventKind::Login
        };
        let outcome = if code == ErrorCode::INTERNAL {
            LogOutcome::Failed
        } else {
            LogOutcome::Denied
        };
        self.write_log(
            &LogEvent::new(kind, outcome)
                .attempted_user(attempted)
                .peers(&self.peers)
                .reason(reason),
        );
        let _ = self.session.reject_login(id, code, message);
    }
}

async fn register_account(
    ctx: &crate::context::ServerContext,
    user: &str,
    password: String,
) -> Result<Account, Refusal> {
    let name = Username::parse(user).map_err(|error| Refusal::Other {
        code: ErrorCode::INVALID_USER,
        message: "user names are 3 to 32 of a-z, 0-9, _ and -, starting with a letter",
        reason: Reason::from(&error),
    })?;
    let password = Password::new(password.into_bytes()).map_err(|_| Refusal::Other {
        code: ErrorCode::INVALID_PASSWORD,
        message: "passwords are 1 to 72 bytes",
        reason: Reason::from("password refused"),
    })?;
    let account = ctx
        .accounts
        .register(name, password)
        .await
        .map_err(|error| match error {
            RegisterError::Taken => Refusal::Other {
                code: ErrorCode::INVALID_USER,
                message: "that user name is taken",
                reason: Reason::from(&error),
            },
            RegisterError::Unavailable(_) => {
                log::error!("registration failed: {error}");
                Refusal::Other {
                    code: ErrorCode::INTERNAL,
                    message: "internal error",
                    reason: Reason::from(&error),
                }
            }
        })?;
    let ctx_store = &ctx.store;
    // Creating the home is one mkdir; small enough to do here rather than hop to
    // the blocking pool and back.
    if let Err(error) = ctx_store.home(&account.name) {
        log::error!("cannot create the home of {}: {error}", account.name);
        return Err(Refusal::Other {
            code: ErrorCode::INTERNAL,
            message: "internal error",
            reason: Reason::from(&error),
        });
    }
    Ok(account)
}
