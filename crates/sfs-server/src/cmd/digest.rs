//! DIGEST: the length and SHA-256 of one file, read from one open file.

use sfs_proto::control::Reply;

use super::common::Target;
use super::{CommandContext, CommandResult};
use crate::audit::{AuditOutcome, EventKind};
use crate::shares::Access;
use crate::store::StoreError;

pub(super) fn run(cx: &CommandContext, text: &str) -> Result<CommandResult, Reply> {
    let kind = EventKind::Digest;
    let path = cx.parse_or_reply(kind, text)?;
    match cx.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
            ..
        }) => {
            // Size and digest from one open file, so they describe the same bytes.
            let result = home
                .open_read(&real)
                .and_then(|file| sfs_proto::digest::sha256_reader(file).map_err(StoreError::from));
            match result {
                Ok((size, sha256)) => {
                    cx.record(&cx.event(kind, AuditOutcome::Ok).path(&path).bytes(size));
                    Ok(CommandResult::reply(Reply::Digest { size, sha256 }))
                }
                Err(error) => Err(cx.fail(kind, Some(&path), owner.as_ref(), &error.into())),
            }
        }
        Ok(Target::SharedRoot | Target::Listing { .. }) => {
            Err(cx.fail(kind, Some(&path), None, &StoreError::IsADirectory.into()))
        }
        Err(error) => Err(cx.fail(kind, Some(&path), None, &error)),
    }
}
