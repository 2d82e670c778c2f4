//! SIZE, STAT and DIGEST: facts about one file or folder.

use sfs_proto::control::Reply;

use super::{synthesized_dir, wire_entry, Job, Outcome, Target};
use crate::audit::EventKind;
use crate::shares::Access;
use crate::store::StoreError;

pub(super) fn size(job: &Job, text: &str) -> Result<Outcome, Reply> {
    let kind = EventKind::Stat;
    let path = job.parse_or_reply(kind, text)?;
    match job.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
        }) => match home.size(&real) {
            Ok(size) => {
                job.ok(kind, &path, owner.as_ref());
                Ok(Outcome::reply(Reply::Size { size }))
            }
            Err(error) => Err(job.fail(kind, Some(&path), owner.as_ref(), &error.into())),
        },
        Ok(Target::SharedRoot | Target::Listing { .. }) => {
            Err(job.fail(kind, Some(&path), None, &StoreError::IsADirectory.into()))
        }
        Err(error) => Err(job.fail(kind, Some(&path), None, &error)),
    }
}

pub(super) fn stat(job: &Job, text: &str) -> Result<Outcome, Reply> {
    let kind = EventKind::Stat;
    let path = job.parse_or_reply(kind, text)?;
    let entry = match job.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
        }) => match home.stat(&real) {
            Ok(entry) => {
                job.ok(kind, &path, owner.as_ref());
                let mut entry = wire_entry(&entry);
                // The name the client knows, not the owner's.
                entry.name = path.file_name().unwrap_or("/").to_owned();
                entry
            }
            Err(error) => return Err(job.fail(kind, Some(&path), owner.as_ref(), &error.into())),
        },
        Ok(Target::SharedRoot | Target::Listing { .. }) => {
            job.ok(kind, &path, None);
            synthesized_dir(path.file_name().unwrap_or("/"))
        }
        Err(error) => return Err(job.fail(kind, Some(&path), None, &error)),
    };
    Ok(Outcome::reply(Reply::Stat { entry }))
}

pub(super) fn digest(job: &Job, text: &str) -> Result<Outcome, Reply> {
    let kind = EventKind::Digest;
    let path = job.parse_or_reply(kind, text)?;
    match job.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
        }) => {
            // Size and digest from one open file, so they describe the same bytes.
            let result = home.open_read(&real).and_then(|file| {
                use sha2::Digest as _;
                use std::io::Read as _;
                let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
                let mut hasher = sha2::Sha256::new();
                let mut size = 0u64;
                let mut buffer = vec![0u8; 64 * 1024];
                loop {
                    let read = reader.read(&mut buffer).map_err(StoreError::from)?;
                    if read == 0 {
                        break;
                    }
                    hasher.update(buffer.get(..read).unwrap_or_default());
                    size += read as u64;
                }
                Ok((size, <[u8; 32]>::from(hasher.finalize())))
            });
            match result {
                Ok((size, sha256)) => {
                    job.record(
                        &job.event(kind, crate::audit::Outcome::Ok)
                            .path(&path)
                            .bytes(size),
                    );
                    Ok(Outcome::reply(Reply::Digest { size, sha256 }))
                }
                Err(error) => Err(job.fail(kind, Some(&path), owner.as_ref(), &error.into())),
            }
        }
        Ok(Target::SharedRoot | Target::Listing { .. }) => {
            Err(job.fail(kind, Some(&path), None, &StoreError::IsADirectory.into()))
        }
        Err(error) => Err(job.fail(kind, Some(&path), None, &error)),
    }
}
