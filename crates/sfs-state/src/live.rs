//! [`Live`]: one owner of a state file's content in a running server.
//!
//! A server keeps `users.json` and `shares.json` in memory, while `sfs-admin` may
//! edit them next to it. Two copies drift unless one place owns both:
//!
//! - **Edits** go through [`Live::update`], which holds one mutex across the locked
//!   read-modify-write of the file *and* the swap of the copy in memory, so two
//!   racing edits land in memory in the order they landed on disk (a revoked share
//!   cannot come back because an older edit swapped its copy in last).
//! - **Edits by others** are noticed by [`Live::current`]: at most once per
//!   `interval` it compares the file's stamp (inode, size, times) with the
//!   one the copy was read from and reloads on a difference. [`Live::reload`] forces
//!   this (the server calls it on SIGHUP).
//!
//! Readers get an `Arc` of the document: cheap, and never torn by a concurrent edit.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use crate::state_file::{Document, FileStamp, StateFile};

/// How often [`Live::current`] looks at the file by default.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Cached<D> {
    document: Arc<D>,
    stamp: Option<FileStamp>,
    checked: Instant,
}

/// A state file and its current content in memory. See the [module](self) docs.
#[derive(Debug)]
pub struct Live<D> {
    file: StateFile<D>,
    cached: RwLock<Cached<D>>,
    /// Held across every write to the file and the swap that follows it, and
    /// across reloads, so the copy only ever moves forward.
    writer: Mutex<()>,
    interval: Duration,
}

impl<D: Document> Live<D> {
    /// Loads `file` now; later [`current`](Self::current) calls look for changes at
    /// most once per `interval` (zero: on every call).
    ///
    /// # Errors
    ///
    /// The file cannot be read or is corrupt.
    pub fn open(file: StateFile<D>, interval: Duration) -> Result<Self, D::Error> {
        let (document, stamp) = file.load_stamped()?;
        Ok(Self {
            file,
            cached: RwLock::new(Cached {
                document: Arc::new(document),
                stamp,
                checked: Instant::now(),
            }),
            writer: Mutex::new(()),
            interval,
        })
    }

    /// A copy in memory, starting from `document` (already loaded by the caller),
    /// that is compared with the file at the first [`current`](Self::current).
    pub fn with_document(file: StateFile<D>, document: D, interval: Duration) -> Self {
        Self {
            file,
            cached: RwLock::new(Cached {
                document: Arc::new(document),
                stamp: None,
                // Check at the first access: the document may not match the file.
                checked: Instant::now() - interval.max(Duration::from_secs(1)),
            }),
            writer: Mutex::new(()),
            interval,
        }
    }

    /// The file behind this copy.
    pub fn file(&self) -> &StateFile<D> {
        &self.file
    }

    /// The content in memory, without looking at the file.
    pub fn cached(&self) -> Arc<D> {
        self.read_cached().document.clone()
    }

    /// The current content: the copy in memory, reloaded first if the file changed
    /// since (looked at no more than once per interval).
    ///
    /// # Errors
    ///
    /// The file changed and cannot be read or is corrupt; the copy in memory stays
    /// as it was.
    pub fn current(&self) -> Result<Arc<D>, D::Error> {
        {
            let cached = self.read_cached();
            if cached.checked.elapsed() < self.interval {
                return Ok(cached.document.clone());
            }
        }
        self.refresh(false)
    }

    /// Looks at the file now and reloads it if it changed (on SIGHUP, for example).
    ///
    /// # Errors
    ///
    /// As [`current`](Self::current).
    pub fn reload(&self) -> Result<Arc<D>, D::Error> {
        self.refresh(true)
    }

    fn refresh(&self, force: bool) -> Result<Arc<D>, D::Error> {
        let _writer = self.lock_writer();
        let stamp = FileStamp::of(self.file.path());
        {
            let mut cached = self.write_cached();
            // Another caller may have refreshed while this one waited.
            if !force && cached.checked.elapsed() < self.interval {
                return Ok(cached.document.clone());
            }
            if stamp.is_some() && stamp == cached.stamp {
                cached.checked = Instant::now();
                return Ok(cached.document.clone());
            }
        }
        let (document, stamp) = self.file.load_stamped()?;
        let document = Arc::new(document);
        *self.write_cached() = Cached {
            document: document.clone(),
            stamp,
            checked: Instant::now(),
        };
        Ok(document)
    }

    /// Applies `edit` to the file (see [`StateFile::update`]) and then to the copy
    /// in memory, as one step: no other edit or reload of this `Live` runs between.
    /// Blocking (a file lock and `fsync`): call it from a blocking context.
    ///
    /// # Errors
    ///
    /// The error of `edit` (nothing is written), or of reading or writing the file.
    pub fn update<T>(
        &self,
        edit: impl FnOnce(&mut D) -> Result<T, D::Error>,
    ) -> Result<T, D::Error> {
        let _writer = self.lock_writer();
        let (outcome, document, stamp) = self.file.update_stamped(edit)?;
        *self.write_cached() = Cached {
            document: Arc::new(document),
            stamp,
            checked: Instant::now(),
        };
        Ok(outcome)
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn read_cached(&self) -> std::sync::RwLockReadGuard<'_, Cached<D>> {
        self.cached
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write_cached(&self) -> std::sync::RwLockWriteGuard<'_, Cached<D>> {
        self.cached
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{PasswordHash, Role, UserDb, Username, UsersFile};

    fn hash() -> PasswordHash {
        let password = crate::accounts::Password::new(b"pw".to_vec()).unwrap();
        crate::accounts::hash_password(&password, 4).unwrap()
    }

    #[test]
    fn sees_an_edit_made_behind_its_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = UsersFile::new(dir.path().join("users.json"));
        let live: Live<UserDb> = Live::open(file.clone(), Duration::ZERO).unwrap();
        assert!(live.current().unwrap().is_empty());
        let alice = Username::parse("alice").unwrap();
        // Another process (the admin tool) edits the file directly.
        file.update(|db| db.add(alice.clone(), hash(), Role::User))
            .unwrap();
        assert!(live.current().unwrap().user(&alice).is_some());
        file.update(|db| db.remove(&alice)).unwrap();
        assert!(live.current().unwrap().user(&alice).is_none());
    }

    #[test]
    fn looks_at_the_file_at_most_once_per_interval_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let file = UsersFile::new(dir.path().join("users.json"));
        let live: Live<UserDb> = Live::open(file.clone(), Duration::from_secs(3600)).unwrap();
        let alice = Username::parse("alice").unwrap();
        file.update(|db| db.add(alice.clone(), hash(), Role::User))
            .unwrap();
        assert!(live.current().unwrap().user(&alice).is_none());
        assert!(live.reload().unwrap().user(&alice).is_some());
        assert!(live.current().unwrap().user(&alice).is_some());
    }
}
