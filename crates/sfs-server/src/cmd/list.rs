//! LIST: the entries of a folder (or the one entry of a file), in parts that each
//! fit one control message. A folder is read with a directory iterator and
//! streamed a part at a time ([`PartStream`]), so listing a huge folder holds one
//! part, not the folder. Entries are sorted by name within each part; across
//! parts they come in directory order (clients sort what they show).

use sfs_proto::control::{Entry, Reply};

use super::common::{store_error_reply, synthesized_dir, wire_entry, Target};
use super::{CommandContext, CommandResult, PartStream};
use crate::accounts::Username;
use crate::audit::EventKind;
use crate::shares::{Access, AccessError, SHARED_DIR};
use crate::store::{EntryKind, StoreError, VirtualPath};

/// Fixed bytes of one encoded entry besides its name.
const ENTRY_OVERHEAD: usize = 2 + 1 + 8 + 8 + 4;

pub(super) fn run(cx: &CommandContext, text: &str) -> Result<CommandResult, Reply> {
    let kind = EventKind::List;
    let path = cx.parse_or_reply(kind, text)?;
    let parts = match cx.target(&path, Access::Read) {
        Ok(Target::Home {
            home,
            path: real,
            owner,
            ..
        }) => {
            let opened = home.stat(&real).and_then(|entry| {
                match entry.kind {
                    EntryKind::Dir => home.entries(&real).map(Some),
                    _ => Ok(None),
                }
                .map(|entries| (entry, entries))
            });
            match opened {
                Ok((_, Some(entries))) => {
                    cx.ok(kind, &path, owner.as_ref());
                    let entries = entries.map(|entry| {
                        entry
                            .map(|entry| wire_entry(&entry))
                            .map_err(listing_failed)
                    });
                    if owner.is_none() && real.is_root() {
                        listing_parts(with_shared_dir(entries))
                    } else {
                        listing_parts(entries)
                    }
                }
                Ok((entry, None)) => {
                    cx.ok(kind, &path, owner.as_ref());
                    listing_parts(std::iter::once(Ok(wire_entry(&entry))))
                }
                Err(error) => {
                    return Err(cx.fail(kind, Some(&path), owner.as_ref(), &error.into()))
                }
            }
        }
        Ok(Target::SharedRoot) => {
            let owners: Vec<Username> = if cx.account.is_admin() {
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
                            &AccessError::Store(StoreError::Io(std::io::Error::other(
                                "users file unreadable",
                            ))),
                        ));
                    }
                }
            } else {
                cx.ctx
                    .shares
                    .with(|db| db.owners_sharing_with(&cx.account.name))
            };
            cx.ok(kind, &path, None);
            listing_parts(
                owners
                    .into_iter()
                    .map(|owner| Ok(synthesized_dir(owner.as_str()))),
            )
        }
        Ok(Target::Listing {
            owner,
            path: real,
            children,
        }) => {
            cx.ok(kind, &path, None);
            let cx = cx.clone();
            // Each child is looked at when its part is produced.
            listing_parts(
                children
                    .into_iter()
                    .filter_map(move |name| listed_child(&cx, &owner, &real, &name))
                    .map(Ok),
            )
        }
        Err(error) => return Err(cx.fail(kind, Some(&path), None, &error)),
    };
    Ok(parts.start())
}

/// The reply that ends a listing whose folder failed to read part way (the
/// parts already sent stand; the client learns the listing is incomplete).
fn listing_failed(error: StoreError) -> Reply {
    log::error!("listing a folder: {error}");
    let (code, message) = store_error_reply(&error);
    Reply::error(code, message)
}

/// A home's top folder as its owner sees it: the virtual /shared folder sits in
/// every home, after the real entries unless one of them has its name.
fn with_shared_dir(
    entries: impl Iterator<Item = Result<Entry, Reply>> + Send + 'static,
) -> impl Iterator<Item = Result<Entry, Reply>> + Send + 'static {
    let mut seen = false;
    let mut entries = entries.fuse();
    let mut added = false;
    std::iter::from_fn(move || match entries.next() {
        Some(item) => {
            seen |= matches!(&item, Ok(entry) if entry.name == SHARED_DIR);
            Some(item)
        }
        None if !seen && !added => {
            added = true;
            Some(Ok(synthesized_dir(SHARED_DIR)))
        }
        None => None,
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

/// The `Listing` replies for `entries`, each part sorted by name, all but the
/// last with `more` set.
fn listing_parts(
    entries: impl Iterator<Item = Result<Entry, Reply>> + Send + 'static,
) -> PartStream {
    PartStream::new(
        entries,
        |entry| ENTRY_OVERHEAD + entry.name.len(),
        |mut entries, more| {
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            Reply::Listing { entries, more }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::parts::PART_BUDGET;

    fn all_parts(entries: Vec<Entry>) -> Vec<Reply> {
        let mut stream = listing_parts(entries.into_iter().map(Ok));
        std::iter::from_fn(|| stream.next_part()).collect()
    }

    #[test]
    fn parts_fit_a_message_and_only_the_last_is_final() {
        let entries: Vec<Entry> = (0..1000)
            .rev()
            .map(|i| synthesized_dir(&format!("{i:0>200}")))
            .collect();
        let parts = all_parts(entries);
        assert!(parts.len() > 3);
        let mut total = 0;
        for (i, part) in parts.iter().enumerate() {
            let Reply::Listing { entries, more } = part else {
                panic!("not a listing")
            };
            assert_eq!(*more, i + 1 < parts.len());
            let bytes: usize = entries.iter().map(|e| ENTRY_OVERHEAD + e.name.len()).sum();
            assert!(bytes <= PART_BUDGET);
            assert!(entries.is_sorted_by(|a, b| a.name <= b.name));
            total += entries.len();
        }
        assert_eq!(total, 1000);
        assert_eq!(
            all_parts(Vec::new()),
            vec![Reply::Listing {
                entries: vec![],
                more: false
            }]
        );
    }
}
