//! CWD: changing the working folder (PWD and CDUP need no file system and are
//! answered by the session itself).

use sfs_proto::control::Reply;

use super::{Job, Outcome, Target};
use crate::audit::EventKind;
use crate::shares::Access;
use crate::store::{EntryKind, StoreError};

pub(super) fn cwd(job: &Job, text: &str) -> Result<Outcome, Reply> {
    let kind = EventKind::ChangeDir;
    let path = job.parse_or_reply(kind, text)?;
    match job.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
        }) => match home.stat(&real) {
            Ok(entry) if entry.kind == EntryKind::Directory => job.ok(kind, &path, owner.as_ref()),
            Ok(_) => {
                let error = StoreError::NotADirectory.into();
                return Err(job.fail(kind, Some(&path), owner.as_ref(), &error));
            }
            Err(error) => return Err(job.fail(kind, Some(&path), owner.as_ref(), &error.into())),
        },
        Ok(Target::SharedRoot | Target::Listing { .. }) => job.ok(kind, &path, None),
        Err(error) => return Err(job.fail(kind, Some(&path), None, &error)),
    }
    Ok(Outcome::Replies {
        replies: vec![Reply::Path {
            path: path.to_string(),
        }],
        cwd: Some(path),
    })
}
