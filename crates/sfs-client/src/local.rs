//! Where downloads land on the local disk, and how they get there safely.
//!
//! Two rules, whatever the server sends:
//! - a download is written only to the path the user named, or to a single plain
//!   file name inside the folder the user named (never `..`, `/`, or an empty name);
//! - the data goes to `<name>.part`, created exclusively (`O_EXCL`) without
//!   following symbolic links and locked (`flock`) while the download runs, and is
//!   renamed over `<name>` only when the caller commits it (after the digest
//!   matched). An abandoned download removes its `.part` and never touches `<name>`.
//!   A `.part` left by an earlier run is removed first, but only if it is a
//!   regular file of ours that no download holds locked; one being written by
//!   another download makes this one fail instead of sharing the file.
//! - a resumed download ([`PartFile::resume`]) continues such a `.part` instead,
//!   under the same checks, and an interrupted one may be kept
//!   ([`PartFile::keep`]) cut to the bytes the protocol verified.
//!
//! ```no_run
//! use std::io::Write;
//! use std::path::Path;
//! use sfs_client::local::{download_destination, PartFile};
//!
//! let target = download_destination("/reports/q3.pdf", None, Path::new("."))?;
//! let mut part = PartFile::create(&target)?;
//! part.file().write_all(b"...")?;
//! part.commit()?; // only after the digest matched
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::display::escape;

/// Why a download cannot go where it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum LocalPathError {
    /// The remote name's last part is not a plain file name.
    #[error("`{0}` is not a plain file name: name a local file to write to")]
    UnsafeName(String),
    /// The destination is a symbolic link, which a download never follows or replaces.
    #[error("{0} is a symbolic link: remove it or name another file")]
    DestinationIsSymlink(String),
    /// The destination is a folder and no file name could be chosen inside it.
    #[error("{0} is a folder")]
    DestinationIsFolder(String),
    /// The local name ends with `/`, so it names a folder, and there is none.
    #[error("no such local folder {0}")]
    NoSuchFolder(String),
    /// Another download (in this or another `sfs`) is writing the same file.
    #[error("{0} is being written by another download: wait for it or name another file")]
    PartInUse(String),
    /// A `.part` file is in the way that is not a regular file of ours.
    #[error(
        "{0} is in the way and is not a leftover download of yours: remove it or name another file"
    )]
    PartNotOurs(String),
    /// The local filesystem refused.
    #[error("{}", crate::connection::local_io_words(.path, .error))]
    Io {
        /// The local path involved.
        path: String,
        /// What the filesystem said (in the text, so not a `source`).
        error: io::Error,
    },
}

impl LocalPathError {
    fn io(path: &Path, error: io::Error) -> Self {
        LocalPathError::Io {
            path: escape(&path.to_string_lossy()).into_owned(),
            error,
        }
    }
}

/// The last part of a remote path, if it is safe to use as a local file name.
///
/// # Errors
///
/// [`LocalPathError::UnsafeName`] if that part is empty, `.` or `..`, or holds a
/// control character or a backslash.
pub fn safe_file_name(remote: &str) -> Result<&str, LocalPathError> {
    let name = remote.rsplit('/').next().unwrap_or(remote);
    let unsafe_name = name.is_empty()
        || name == "."
        || name == ".."
        || name.chars().any(|c| c.is_control() || c == '\\');
    if unsafe_name {
        return Err(LocalPathError::UnsafeName(escape(remote).into_owned()));
    }
    Ok(name)
}

/// The local file a download of `remote` writes, given what the user named.
///
/// With no local name, the remote name's last part inside `cwd`. With a local name
/// that is an existing folder (or a symbolic link to one), the remote name's last
/// part inside it. Otherwise the local name itself, relative to `cwd`. A local
/// name ending in `/` names a folder, as in sftp: it must exist.
///
/// # Errors
///
/// [`LocalPathError::UnsafeName`] when the remote name's last part is needed
/// and is not a plain file name; [`LocalPathError::NoSuchFolder`] for a
/// trailing `/` on a name that is not an existing folder.
pub fn download_destination(
    remote: &str,
    local: Option<&Path>,
    cwd: &Path,
) -> Result<PathBuf, LocalPathError> {
    let Some(local) = local else {
        return Ok(cwd.join(safe_file_name(remote)?));
    };
    let names_folder = local.as_os_str().as_bytes().ends_with(b"/");
    let local = cwd.join(local);
    if local.is_dir() {
        return Ok(local.join(safe_file_name(remote)?));
    }
    if names_folder {
        return Err(LocalPathError::NoSuchFolder(
            escape(&local.to_string_lossy()).into_owned(),
        ));
    }
    Ok(local)
}

/// A download in progress: `<name>.part`, renamed over `<name>` on commit.
#[derive(Debug)]
pub struct PartFile {
    /// Locked for as long as the download runs, so no other download takes it.
    file: Flock<File>,
    part_path: PathBuf,
    final_path: PathBuf,
    /// Renamed into place, or kept for a resume: Drop leaves it.
    committed: bool,
}

impl PartFile {
    /// Creates `<final_path>.part` exclusively for reading and writing, mode 0600,
    /// refusing symbolic links, and locks it. A stale `.part` (a regular file of
    /// ours, not locked) is removed first.
    ///
    /// # Errors
    ///
    /// [`LocalPathError::PartInUse`] when another download holds the `.part`,
    /// [`LocalPathError::PartNotOurs`] or
    /// [`LocalPathError::DestinationIsSymlink`] when something else is in the
    /// way, [`LocalPathError::Io`] when the filesystem refuses.
    pub fn create(final_path: &Path) -> Result<PartFile, LocalPathError> {
        check_destination(final_path)?;
        let part_path = part_path_of(final_path);
        let file = match create_new(&part_path) {
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                remove_stale_part(&part_path)?;
                create_new(&part_path)
            }
            other => other,
        }
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => {
                LocalPathError::DestinationIsSymlink(escape(&part_path.to_string_lossy()).into())
            }
            Some(libc::EEXIST) => {
                LocalPathError::PartInUse(escape(&part_path.to_string_lossy()).into_owned())
            }
            _ => LocalPathError::io(&part_path, err),
        })?;
        let file = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
            let _ = std::fs::remove_file(&part_path);
            LocalPathError::io(&part_path, errno.into())
        })?;
        Ok(PartFile {
            file,
            part_path,
            final_path: final_path.to_owned(),
            committed: false,
        })
    }

    /// Opens the `.part` an interrupted download of `final_path` left, to
    /// continue it, under the checks [`Self::create`] applies to a stale one
    /// (a regular file of ours, not a symbolic link, locked by no download).
    /// Without one, creates it as [`Self::create`] does.
    ///
    /// # Errors
    ///
    /// As [`Self::create`].
    pub fn resume(final_path: &Path) -> Result<PartFile, LocalPathError> {
        check_destination(final_path)?;
        let part_path = part_path_of(final_path);
        let shown = || escape(&part_path.to_string_lossy()).into_owned();
        let meta = match std::fs::symlink_metadata(&part_path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Self::create(final_path),
            Err(err) => return Err(LocalPathError::io(&part_path, err)),
        };
        if meta.file_type().is_symlink() {
            return Err(LocalPathError::DestinationIsSymlink(shown()));
        }
        if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() {
            return Err(LocalPathError::PartNotOurs(shown()));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(&part_path)
            .map_err(|err| LocalPathError::io(&part_path, err))?;
        let file = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|_| LocalPathError::PartInUse(shown()))?;
        let opened = file
            .metadata()
            .map_err(|err| LocalPathError::io(&part_path, err))?;
        if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
            return Err(LocalPathError::PartInUse(shown()));
        }
        Ok(PartFile {
            file,
            part_path,
            final_path: final_path.to_owned(),
            committed: false,
        })
    }

    /// Keeps the `.part` for a later resume, cut to its first `verified` bytes
    /// (those the protocol hashed in order; chunks that arrived ahead of a gap
    /// are dropped). Returns the path kept.
    ///
    /// # Errors
    ///
    /// [`LocalPathError::Io`] if it cannot be cut; it is then removed.
    pub fn keep(mut self, verified: u64) -> Result<PathBuf, LocalPathError> {
        self.file
            .set_len(verified)
            .map_err(|err| LocalPathError::io(&self.part_path, err))?;
        self.committed = true;
        Ok(self.part_path.clone())
    }

    /// The open `.part` file, to write the data into.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// The path of the `.part` file.
    pub fn part_path(&self) -> &Path {
        &self.part_path
    }

    /// Makes the data durable and renames it over the destination.
    ///
    /// # Errors
    ///
    /// - [`LocalPathError::DestinationIsSymlink`] or
    ///   [`LocalPathError::DestinationIsFolder`] if the destination became one
    ///   while downloading;
    /// - [`LocalPathError::Io`] if `fsync`, the check of the destination or the
    ///   rename fails.
    ///
    /// On error the `.part` file is removed when `self` is dropped.
    pub fn commit(mut self) -> Result<PathBuf, LocalPathError> {
        self.file
            .sync_all()
            .map_err(|err| LocalPathError::io(&self.part_path, err))?;
        // Checked again: the destination may have become a link while downloading.
        check_destination(&self.final_path)?;
        std::fs::rename(&self.part_path, &self.final_path)
            .map_err(|err| LocalPathError::io(&self.final_path, err))?;
        self.committed = true;
        Ok(self.final_path.clone())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.committed {
            // An abandoned download leaves nothing behind; the old file is untouched.
            let _ = std::fs::remove_file(&self.part_path);
        }
    }
}

/// `<final_path>.part`.
fn part_path_of(final_path: &Path) -> PathBuf {
    let mut part_name = final_path.as_os_str().to_owned();
    part_name.push(".part");
    PathBuf::from(part_name)
}

/// Creates `path` if nothing is there, never through a symbolic link.
fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        // Read too: a resumed download hashes what it holds.
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        // A planted `<name>.part -> ~/.bashrc` link must not be written through.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Removes a `.part` left by an earlier run: only a regular file owned by us
/// that no download holds locked, and only the very file that was checked.
fn remove_stale_part(path: &Path) -> Result<(), LocalPathError> {
    let shown = || escape(&path.to_string_lossy()).into_owned();
    let meta = std::fs::symlink_metadata(path).map_err(|err| LocalPathError::io(path, err))?;
    if meta.file_type().is_symlink() {
        return Err(LocalPathError::DestinationIsSymlink(shown()));
    }
    if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(LocalPathError::PartNotOurs(shown()));
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|err| LocalPathError::io(path, err))?;
    let held = Flock::lock(file, FlockArg::LockExclusiveNonblock)
        .map_err(|_| LocalPathError::PartInUse(shown()))?;
    let opened = held
        .metadata()
        .map_err(|err| LocalPathError::io(path, err))?;
    if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
        // Replaced between the checks: leave it to whoever did that.
        return Err(LocalPathError::PartInUse(shown()));
    }
    std::fs::remove_file(path).map_err(|err| LocalPathError::io(path, err))
}

fn check_destination(path: &Path) -> Result<(), LocalPathError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(LocalPathError::DestinationIsSymlink(
            escape(&path.to_string_lossy()).into_owned(),
        )),
        Ok(meta) if meta.is_dir() => Err(LocalPathError::DestinationIsFolder(
            escape(&path.to_string_lossy()).into_owned(),
        )),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(LocalPathError::io(path, err)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::{symlink, PermissionsExt};

    use super::*;

    #[test]
    fn hostile_remote_names_never_leave_the_named_folder() {
        let dir = tempfile::tempdir().unwrap();
        for hostile in [
            "../../.bashrc",
            "/etc/x",
            "a/..",
            "..",
            ".",
            "",
            "dir/",
            "a\x1b[2J",
            "a\\b",
        ] {
            let result = download_destination(hostile, None, dir.path());
            match result {
                Err(LocalPathError::UnsafeName(_)) => {}
                Ok(path) => {
                    assert_eq!(path.parent(), Some(dir.path()), "{hostile:?} -> {path:?}");
                    let name = path.file_name().unwrap().to_str().unwrap();
                    assert!(
                        !name.contains('/') && name != ".." && name != ".",
                        "{hostile:?}"
                    );
                }
                Err(other) => panic!("{hostile:?}: unexpected {other}"),
            }
        }
        // The last part of a nested or absolute name is a plain file in the folder.
        assert_eq!(
            download_destination("../../.bashrc", None, dir.path()).unwrap(),
            dir.path().join(".bashrc")
        );
        assert_eq!(
            download_destination("/etc/x", None, dir.path()).unwrap(),
            dir.path().join("x")
        );
    }

    #[test]
    fn an_unsafe_name_is_shown_escaped_in_the_error() {
        let err = download_destination("a\x1b[2J/..", None, Path::new(".")).unwrap_err();
        assert!(!err.to_string().contains('\x1b'), "{err}");
    }

    #[test]
    fn a_named_local_file_or_folder_is_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let named =
            download_destination("/x/y.bin", Some(Path::new("out.bin")), dir.path()).unwrap();
        assert_eq!(named, dir.path().join("out.bin"));
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let into = download_destination("/x/y.bin", Some(Path::new("sub")), dir.path()).unwrap();
        assert_eq!(into, dir.path().join("sub/y.bin"));
        assert!(matches!(
            download_destination("..", Some(Path::new("sub")), dir.path()),
            Err(LocalPathError::UnsafeName(_))
        ));
    }

    #[test]
    fn commit_renames_the_part_file_over_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.txt");
        std::fs::write(&target, b"old").unwrap();
        let mut part = PartFile::create(&target).unwrap();
        part.file().write_all(b"new contents").unwrap();
        let part_path = part.part_path().to_owned();
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"old",
            "untouched until commit"
        );
        assert_eq!(part.commit().unwrap(), target);
        assert_eq!(std::fs::read(&target).unwrap(), b"new contents");
        assert!(!part_path.exists());
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn an_abandoned_download_leaves_the_old_file_and_no_part() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f.txt");
        std::fs::write(&target, b"old").unwrap();
        let mut part = PartFile::create(&target).unwrap();
        part.file().write_all(b"half").unwrap();
        let part_path = part.part_path().to_owned();
        drop(part);
        assert!(!part_path.exists());
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
    }

    #[test]
    fn symbolic_links_at_the_destination_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();

        let link = dir.path().join("link");
        symlink(&victim, &link).unwrap();
        assert!(matches!(
            PartFile::create(&link),
            Err(LocalPathError::DestinationIsSymlink(_))
        ));

        let target = dir.path().join("t");
        symlink(&victim, dir.path().join("t.part")).unwrap();
        assert!(matches!(
            PartFile::create(&target),
            Err(LocalPathError::DestinationIsSymlink(_))
        ));

        // A link planted at the destination during the download is refused at commit.
        let late = dir.path().join("late");
        let part = PartFile::create(&late).unwrap();
        symlink(&victim, &late).unwrap();
        assert!(matches!(
            part.commit(),
            Err(LocalPathError::DestinationIsSymlink(_))
        ));
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn a_folder_is_not_a_file_destination() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            PartFile::create(dir.path()),
            Err(LocalPathError::DestinationIsFolder(_))
        ));
    }

    #[test]
    fn a_part_file_in_use_is_never_shared() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.bin");
        let mut first = PartFile::create(&target).unwrap();
        first.file().write_all(b"first download").unwrap();
        // A second download of the same name, from this process or another `sfs`.
        let second = PartFile::create(&target);
        assert!(
            matches!(second, Err(LocalPathError::PartInUse(_))),
            "{second:?}"
        );
        // The first is untouched and still commits its own bytes.
        assert_eq!(first.commit().unwrap(), target);
        assert_eq!(std::fs::read(&target).unwrap(), b"first download");
    }

    #[test]
    fn a_stale_part_file_of_ours_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.bin");
        let stale = dir.path().join("x.bin.part");
        std::fs::write(&stale, b"left by a crashed run, longer than the new data").unwrap();
        let mut part = PartFile::create(&target).unwrap();
        part.file().write_all(b"fresh").unwrap();
        part.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"fresh");
    }

    #[test]
    fn a_folder_in_place_of_the_part_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.bin");
        std::fs::create_dir(dir.path().join("x.bin.part")).unwrap();
        assert!(matches!(
            PartFile::create(&target),
            Err(LocalPathError::PartNotOurs(_))
        ));
        assert!(dir.path().join("x.bin.part").is_dir());
    }
}
