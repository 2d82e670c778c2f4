//! LIST: the entries of a folder (or the one entry of a file), in parts that each
//! fit one control message.

use sfs_proto::control::{Entry, Reply};

use super::common::{in_parts, synthesized_dir, wire_entry, Target};
use super::{CommandContext, CommandResult};
use crate::accounts::Username;
use crate::audit::EventKind;
use crate::shares::{Access, AccessError, SHARED_DIR};
use crate::store::{EntryKind, VirtualPath};

/// Fixed bytes of one encoded entry besides its name.
const ENTRY_OVERHEAD: usize = 2 + 1 + 8 + 8 + 4;

pub(super) fn run(cx: &CommandContext, text: &str) -> Result<CommandResult, Reply> {
    let kind = EventKind::List;
    let path = cx.parse_or_reply(kind, text)?;
    let entries = match cx.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
            ..
        }) => {
            let listed = home.stat(&real).and_then(|entry| match entry.kind {
                EntryKind::Dir => home.list(&real),
                _ => Ok(vec![entry]),
            });
            match listed {
                Ok(found) => {
                    cx.ok(kind, &path, owner.as_ref());
                    let mut entries: Vec<Entry> = found.iter().map(wire_entry).collect();
                    if owner.is_none()
                        && real.is_root()
                        && !entries.iter().any(|e| e.name == SHARED_DIR)
                    {
                        // The virtual /shared folder sits in every home.
                        entries.push(synthesized_dir(SHARED_DIR));
                        entries.sort_by(|a, b| a.name.cmp(&b.name));
                    }
                    entries
                }
                Err(error) => {
                    return Err(cx.fail(kind, Some(&path), owner.as_ref(), &error.into()))
                }
            }
        }
        Ok(Target::SharedRoot) => {
            let owners = if cx.account.is_admin() {
                // Admins reach every home through /shared.
                match cx.ctx.accounts.users() {
                    Ok(db) => db
                        .users()
                        .map(|record| record.name.clone())
                        .filter(|name| *name != cx.account.name)
                        .collect(),
                    Err(error) => {
                        log::error!("listing /shared: {error}");
                        return Err(cx.fail(
                            kind,
                            Some(&path),
                            None,
                            &AccessError::Store(crate::store::StoreError::Io(
                                std::io::Error::other("users file unreadable"),
                            )),
                        ));
                    }
                }
            } else {
                cx.ctx
                    .shares
                    .with(|db| db.owners_sharing_with(&cx.account.name))
            };
            cx.ok(kind, &path, None);
            owners
                .iter()
                .map(|owner| synthesized_dir(owner.as_str()))
                .collect()
        }
        Ok(Target::Listing {
            owner,
            path: real,
            children,
        }) => {
            cx.ok(kind, &path, None);
            children
                .iter()
                .filter_map(|name| listed_child(cx, &owner, &real, name))
                .collect()
        }
        Err(error) => return Err(cx.fail(kind, Some(&path), None, &error)),
    };
    Ok(CommandResult::Replies {
        replies: listing_parts(entries),
        cwd: None,
    })
}

/// One entry of a synthesized folder: a shared item as its owner sees it (real
/// kind, size and time), or a synthesized folder on the way to deeper shares.
/// A shared item that no longer exists is left out.
fn listed_child(
    cx: &CommandContext,
    owner: &Username,
    folder: &VirtualPath,
    name: &str,
) -> Option<Entry> {
    let inner =
        VirtualPath::from_names(folder.names().iter().map(String::as_str).chain([name])).ok()?;
    let shared = cx
        .ctx
        .shares
        .with(|db| db.confinement(&cx.account, owner, &inner, Access::Read));
    let Some(root) = shared.filter(|root| *root == inner) else {
        return Some(synthesized_dir(name));
    };
    let (home, real) = cx
        .ctx
        .store
        .existing_home(owner)
        .and_then(|home| home.confined(&root, &inner))
        .ok()?;
    home.stat(&real).ok().map(|entry| wire_entry(&entry))
}

/// Splits entries into `Listing` replies, all but the last with `more` set.
fn listing_parts(entries: Vec<Entry>) -> Vec<Reply> {
    in_parts(
        entries,
        |entry| ENTRY_OVERHEAD + entry.name.len(),
        |entries, more| Reply::Listing { entries, more },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::common::PART_BUDGET;

    #[test]
    fn parts_fit_a_message_and_only_the_last_is_final() {
        let entries: Vec<Entry> = (0..1000)
            .map(|i| synthesized_dir(&format!("{i:0>200}")))
            .collect();
        let parts = listing_parts(entries);
        assert!(parts.len() > 3);
        let mut total = 0;
        for (i, part) in parts.iter().enumerate() {
            let Reply::Listing { entries, more } = part else {
                panic!("not a listing")
            };
            assert_eq!(*more, i + 1 < parts.len());
            let bytes: usize = entries.iter().map(|e| ENTRY_OVERHEAD + e.name.len()).sum();
            assert!(bytes <= PART_BUDGET);
            total += entries.len();
        }
        assert_eq!(total, 1000);
        assert_eq!(
            listing_parts(Vec::new()),
            vec![Reply::Listing {
                entries: vec![],
                more: false
            }]
        );
    }
}
