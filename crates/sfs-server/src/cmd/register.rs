//! REGISTER: create an account and log it in, when the server allows it.
//!
//! The name is checked against the allow-list and the password's length, the
//! account is an ordinary one (never an admin:
//! [`Accounts::register`](crate::accounts::Accounts::register) has no role
//! parameter), and its home is created before the user is logged in. Each
//! registration counts against its source in the server's registration throttle
//! (the login throttle's policy): past the threshold, every further one first
//! waits the penalty.

use std::sync::Arc;

use sfs_proto::control::{ErrorCode, RequestId};

use super::login::{LoginDone, Refusal};
use crate::accounts::{Account, Password, RegisterError, Username};
use crate::audit::Reason;
use crate::context::ServerContext;

/// The refusal when the server does not take registrations, or `None`.
pub(crate) fn refusal_if_closed(ctx: &ServerContext) -> Option<Refusal> {
    (!ctx.settings.allow_registration).then(|| Refusal::Other {
        code: ErrorCode::REGISTRATION_CLOSED,
        message: "this server does not allow registration".into(),
        reason: Reason::from("registration is closed"),
    })
}

/// Waits out `penalty` (the source's registration throttle), then registers
/// `user` with `password`.
///
/// # Cancel safety
/// Cancelling after the account was written leaves it without its home; the
/// home is created on its first login.
pub(crate) async fn run(
    ctx: Arc<ServerContext>,
    id: RequestId,
    user: String,
    password: String,
    penalty: std::time::Duration,
) -> LoginDone {
    tokio::time::sleep(penalty).await;
    let result = register_account(&ctx, &user, password).await;
    LoginDone {
        id,
        attempted: user,
        register: true,
        result,
    }
}

async fn register_account(
    ctx: &crate::context::ServerContext,
    user: &str,
    password: String,
) -> Result<Account, Refusal> {
    let name = Username::parse(user).map_err(|error| Refusal::Other {
        code: ErrorCode::INVALID_USER,
        message: "user names are 3 to 32 of a-z, 0-9, _ and -, starting with a letter".into(),
        reason: Reason::from(&error),
    })?;
    let policy = ctx.settings.password_policy;
    let refused = || Refusal::Other {
        code: ErrorCode::INVALID_PASSWORD,
        message: policy.rule().into(),
        reason: Reason::from("password refused by the policy"),
    };
    let password = Password::new(password.into_bytes()).map_err(|_| refused())?;
    policy.check(&password).map_err(|_| refused())?;
    let account = ctx
        .accounts
        .register(name, password)
        .await
        .map_err(|error| match error {
            RegisterError::Taken => Refusal::Other {
                code: ErrorCode::INVALID_USER,
                message: "that user name is taken".into(),
                reason: Reason::from(&error),
            },
            RegisterError::Unavailable(_) => {
                log::error!("registration failed: {error}");
                Refusal::Other {
                    code: ErrorCode::INTERNAL,
                    message: "internal error".into(),
                    reason: Reason::from(&error),
                }
            }
        })?;
    let ctx_store = &ctx.store;
    // A home on disk without an account (left by a removal that did not archive
    // it, or a restore) belongs to nobody: the new account must not adopt it.
    // One rename and one mkdir; small enough to do here rather than hop to the
    // blocking pool and back.
    match ctx_store.archive_home(&account.name) {
        Ok(true) => log::warn!(
            "archived an orphaned home folder of '{}' before registering it",
            account.name
        ),
        Ok(false) => {}
        Err(error) => {
            log::error!(
                "cannot archive the orphaned home of {}: {error}",
                account.name
            );
            return Err(Refusal::Other {
                code: ErrorCode::INTERNAL,
                message: "internal error".into(),
                reason: Reason::from(&error),
            });
        }
    }
    if let Err(error) = ctx_store.home(&account.name) {
        log::error!("cannot create the home of {}: {error}", account.name);
        return Err(Refusal::Other {
            code: ErrorCode::INTERNAL,
            message: "internal error".into(),
            reason: Reason::from(&error),
        });
    }
    Ok(account)
}
