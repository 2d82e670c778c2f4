//! What happens to a home when its account goes: it is archived out of reach.
//!
//! A removed account's home is renamed to `<root>/.removed/<name>-<unix seconds>/`
//! rather than deleted (an admin may still need the files) or left in place (a
//! later account of the same name would inherit them). `.removed` cannot be a
//! user name (names start with a letter), so no user can reach it and it is never
//! counted as a home. The same happens to a home found on disk without an account
//! when that name is registered: a new account always starts empty.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::accounts::Username;

/// The folder under the root holding archived homes.
pub const REMOVED_DIR: &str = ".removed";

/// The names to try, in order, for `user`'s archived home at `now`: `<name>-<secs>`,
/// then `<name>-<secs>-1`, `-2`, ... (two removals in one second).
pub fn archive_names(user: &Username, now: SystemTime) -> impl Iterator<Item = String> {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let base = format!("{user}-{secs}");
    (0..).map(move |n| {
        if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        }
    })
}

/// Moves `<root>/<user>` to `<root>/.removed/<user>-<secs>` (creating `.removed`
/// with mode 0700). Returns where it went, or `None` if there was no home.
///
/// # Errors
///
/// The rename or the creation of `.removed` failed; the home stays where it was.
pub fn archive_home(root: &Path, user: &Username) -> io::Result<Option<PathBuf>> {
    let home = root.join(user.as_str());
    match std::fs::symlink_metadata(&home) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let removed = root.join(REMOVED_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&removed)?;
    for name in archive_names(user, SystemTime::now()).take(1000) {
        let target = removed.join(name);
        if std::fs::symlink_metadata(&target).is_ok() {
            continue;
        }
        std::fs::rename(&home, &target)?;
        crate::durable::sync_dir(root)?;
        return Ok(Some(target));
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free name for the archived home",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_a_home_under_removed_and_a_second_one_beside_it() {
        let root = tempfile::tempdir().unwrap();
        let alice = Username::parse("alice").unwrap();
        assert_eq!(archive_home(root.path(), &alice).unwrap(), None);
        for round in 0..2 {
            std::fs::create_dir(root.path().join("alice")).unwrap();
            std::fs::write(root.path().join("alice/f"), [round]).unwrap();
            let archived = archive_home(root.path(), &alice).unwrap().unwrap();
            assert!(archived.starts_with(root.path().join(REMOVED_DIR)));
            assert_eq!(std::fs::read(archived.join("f")).unwrap(), [round]);
            assert!(!root.path().join("alice").exists());
        }
        assert_eq!(
            std::fs::read_dir(root.path().join(REMOVED_DIR))
                .unwrap()
                .count(),
            2
        );
    }
}
