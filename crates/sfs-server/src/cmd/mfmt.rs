//! MFMT: set a file's modification time (FTP's "modify fact: modification time"),
//! sent by `put -p` after an upload. Needs the write right on the file: the time
//! is part of the file's content as sync tools see it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sfs_proto::control::{ErrorCode, Reply};

use super::common::change_one;
use super::{CommandContext, CommandResult};
use crate::audit::EventKind;
use crate::shares::Access;
use crate::store::StoreError;

pub(super) fn run(cx: &CommandContext, text: &str, mtime: i64) -> Result<CommandResult, Reply> {
    let Some(time) = system_time(mtime) else {
        return Err(Reply::error(
            ErrorCode::BAD_REQUEST,
            "modification time out of range",
        ));
    };
    change_one(cx, EventKind::SetTime, text, Access::Write, |home, path| {
        // A regular file only (folders and devices are refused by the open),
        // reached as RETR reaches it: never through a link leading out.
        let file = home.open_read(path)?;
        file.set_modified(time).map_err(StoreError::from)
    })
}

/// The latest time accepted, 9999-12-31 23:59:59 UTC, and its mirror before
/// 1970: what listings can show and file systems hold, so a time is never
/// silently clamped into another one.
const MAX_SECONDS_FROM_EPOCH: u64 = 253_402_300_799;

/// Seconds since the epoch (negative before it) as a `SystemTime`, if it fits.
fn system_time(mtime: i64) -> Option<SystemTime> {
    if mtime.unsigned_abs() > MAX_SECONDS_FROM_EPOCH {
        return None;
    }
    let magnitude = Duration::from_secs(mtime.unsigned_abs());
    if mtime >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_before_and_after_the_epoch_convert() {
        assert_eq!(
            system_time(1_700_000_000),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(
            system_time(-60),
            UNIX_EPOCH.checked_sub(Duration::from_secs(60))
        );
        assert_eq!(system_time(0), Some(UNIX_EPOCH));
        assert!(system_time(253_402_300_799).is_some());
        assert_eq!(system_time(253_402_300_800), None);
        assert_eq!(system_time(i64::MIN), None);
    }
}
