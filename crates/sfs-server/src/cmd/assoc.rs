//! ASSOC: a ticket for one more data association of this session.
//!
//! Here the limits beyond the session's own (per user, server-wide) take a
//! place and the ticket is drawn; the connection then registers it for routing
//! and has the protocol session grant it (which applies the per-session limit
//! and picks the index), see `connection::bind`.

use ring::rand::{SecureRandom, SystemRandom};
use sfs_proto::control::{ErrorCode, Reply};

use super::{CommandContext, CommandResult};
use crate::associations::AssociationSlot;
use crate::audit::{AuditOutcome, EventKind, Reason};

/// What the connection needs to grant an ASSOC.
pub(crate) struct AssocGrant {
    /// The association's place among the user's and the server's.
    pub slot: AssociationSlot,
    /// 16 random bytes, the ticket its `BIND` must present.
    pub ticket: [u8; 16],
}

pub(super) fn run(cx: &CommandContext) -> Result<CommandResult, Reply> {
    let slot = cx
        .ctx
        .associations
        .reserve(&cx.account.name)
        .map_err(|limit| {
            cx.record(
                &cx.event(EventKind::Assoc, AuditOutcome::Denied)
                    .reason(Reason::from(&limit)),
            );
            Reply::error(ErrorCode::ASSOCIATION_LIMIT, limit.to_string())
        })?;
    let mut ticket = [0; 16];
    SystemRandom::new().fill(&mut ticket).map_err(|_| {
        log::error!("no randomness for an association ticket");
        Reply::error(ErrorCode::INTERNAL, "internal error")
    })?;
    Ok(CommandResult::Assoc(Box::new(AssocGrant { slot, ticket })))
}
