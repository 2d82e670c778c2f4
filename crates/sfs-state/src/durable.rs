//! Durable, atomic replacement of small state files (`users.json`, `shares.json`).
//!
//! A reader must only ever see the old file or the new one, never a torn mix, and once
//! [`write_atomic`] returns the new content must survive a crash. The recipe is the
//! classic one: write a temporary file in the same folder (so `rename` stays on one
//! file system), `fsync` it, `rename` it over the target, then `fsync` the folder so the
//! rename itself is durable.
//!
//! [`StateLock`] serialises read-modify-write cycles between threads *and* processes
//! (the admin tool may edit `users.json` while the server runs): it holds an exclusive
//! `flock` on a sibling `<file>.lock`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};

/// Distinguishes temporary files made by concurrent writers in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Replaces `path` with `contents` atomically and durably, with the given Unix mode.
///
/// The temporary file is created with `O_EXCL` and `mode` from the start, so the data
/// is never readable by others even for a moment.
///
/// # Errors
///
/// An [`io::Error`] of kind `InvalidInput` if `path` has no file name, or the error
/// of creating, writing or `fsync`ing the temporary file, the `rename` or the
/// folder's `fsync`; the temporary file is then removed and `path` keeps its old
/// content (unless only the folder's `fsync` failed, after the rename).
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_dir(path);
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let temp_path = dir.join(format!(
        ".{}.tmp-{}-{}",
        file_name.to_string_lossy(),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temp_path)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temp_path, path)?;
        sync_dir(&dir)
    })();
    if result.is_err() {
        // Best effort: the temp file is garbage either way, and the original error is
        // the one worth reporting.
        let _ = fs::remove_file(&temp_path);
    }
    result
}

/// `fsync`s a folder, making renames and creations inside it durable.
///
/// # Errors
///
/// The [`io::Error`] of opening `dir` or of its `fsync`.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The folder holding `path`, with `.` for a bare file name.
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An exclusive lock over one state file, shared by threads and processes.
///
/// Dropping it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    _lock: Flock<File>,
}

impl StateLock {
    /// Blocks until the lock for `state_file` is held. The lock file is
    /// `<state_file>.lock`, created 0600 if missing and never removed (removing it
    /// would let two writers lock two different files).
    ///
    /// # Errors
    ///
    /// The [`io::Error`] of opening or creating the lock file (for example a
    /// missing folder or no permission), or of `flock`.
    pub fn acquire(state_file: &Path) -> io::Result<Self> {
        let mut lock_name = state_file.as_os_str().to_owned();
        lock_name.push(".lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(PathBuf::from(lock_name))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io::Error::from(errno))?;
        Ok(Self { _lock: lock })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replaces_content_with_mode_0600_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"old").unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
    }

    #[test]
    fn failed_write_keeps_old_content() {
        let dir = tempfile::tempdir().unwrap();
        // Renaming a file over a non-empty directory fails, after the temp file exists.
        let path = dir.path().join("target");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("inner"), b"x").unwrap();
        assert!(write_atomic(&path, b"new", 0o600).is_err());
        assert_eq!(fs::read(path.join("inner")).unwrap(), b"x");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
