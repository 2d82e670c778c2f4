// Over 600 lines with its tests: every home operation is here, so confinement lives in one place.
//! The file store: per-user homes and every file operation, confined to the home.
//!
//! Each user's home is `<root>/<username>/` (the root defaults to `server_files/`),
//! shown to that user as `/`. A client's path goes through two gates:
//!
//! 1. **Parsing** ([`VirtualPath::join`]): the text is checked *before any file system
//!    call*. It may be at most [`MAX_PATH_BYTES`] long, each name at most
//!    [`MAX_NAME_BYTES`], with no NUL, no control character and no bidirectional
//!    override (which can make a name display as another). `.` and `..` are resolved
//!    on the virtual path, and a `..` above `/` is refused rather than clamped, so
//!    `../../etc/passwd` gets a clear error. Nothing is decoded: `%2e%2e` is a
//!    plain (odd) file name.
//! 2. **Descriptor-relative resolution**: every operation runs through a `cap-std`
//!    [`Dir`] opened on the home, which resolves paths beneath that descriptor
//!    (with `openat2(RESOLVE_BENEATH)` where the kernel has it) and refuses a
//!    symlink, planted or swapped in mid-operation, that leads out. Gate 1 is for
//!    clear errors; gate 2 is the security boundary and does not rely on gate 1.
//!
//! Errors ([`StoreError`]) never contain a real path, and their text is fit to send
//! to a client.
//!
//! Uploads ([`Home::begin_upload`]) write `.sfs-upload-<random>` beside the target
//! (mode 0600) and rename it over the target only in [`Upload::commit`], after the
//! digest matches and the data is fsynced; the folder is fsynced after the rename.
//! An upload that is dropped, aborted, fails or is killed leaves the old file as it
//! was. Names starting with `.sfs-upload-` are refused in client paths and hidden
//! from listings, so a client cannot touch another upload's temporary file.
//!
//! An upload cut short by its client (an abort, a lost association) may instead
//! be kept ([`Upload::keep`]) as `.sfs-upload-kept-<key>` beside the target, the
//! key a hash of the uploader and the target's name, so only that user can
//! continue it ([`Home::resume_upload`]) and only for that path. Kept partials
//! count in the home's usage and expire after a configured age.
//!
//! Everything here is blocking file IO: call it from `tokio::task::spawn_blocking`.

use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, DirBuilder, DirBuilderExt, OpenOptions, OpenOptionsExt};
use ring::rand::{SecureRandom, SystemRandom};
use sfs_proto::digest::Sha256;

use crate::accounts::Username;
use sfs_state::path::check_single_name;
pub use sfs_state::path::{
    PathError, VirtualPath, MAX_DEPTH, MAX_NAME_BYTES, MAX_PATH_BYTES, RESERVED_TOP_NAMES,
    UPLOAD_TEMP_PREFIX,
};

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// What a store operation failed on. The text is fit to send to a client: no real
/// path, no OS detail beyond the kind of failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The path text was refused before any file system call.
    #[error(transparent)]
    InvalidPath(#[from] PathError),
    /// Nothing by that name.
    #[error("no such file or folder")]
    NotFound,
    /// The name is taken.
    #[error("a file or folder with that name already exists")]
    AlreadyExists,
    /// A file was found where a folder was needed.
    #[error("not a folder")]
    NotADirectory,
    /// A folder was found where a file was needed.
    #[error("is a folder")]
    IsADirectory,
    /// Neither a file nor a folder (a symlink, device, socket or FIFO).
    #[error("not a regular file or folder")]
    NotRegular,
    /// `rmdir` of a folder that still has entries.
    #[error("folder is not empty")]
    NotEmpty,
    /// The operation would leave the home (for example through a symlink), or the OS
    /// refused it.
    #[error("permission denied")]
    Denied,
    /// The home folder itself cannot be removed, renamed or overwritten.
    #[error("cannot change your home folder itself")]
    RootOperation,
    /// No kept partial upload to continue (none, expired, or too short).
    #[error("no partial upload to continue")]
    NoPartial,
    /// A kept partial upload's first bytes differ from the client's file.
    #[error("the partial upload does not match the local file")]
    ResumeMismatch,
    /// An upload's content did not match the digest the client sent.
    #[error("digest mismatch: upload discarded")]
    DigestMismatch,
    /// The disk (or quota) is full.
    #[error("no space left on the server")]
    NoSpace,
    /// Any other file system failure.
    #[error("file system error ({})", .0.kind())]
    Io(io::Error),
}

impl From<io::Error> for StoreError {
    fn from(error: io::Error) -> Self {
        use nix::libc;
        match error.raw_os_error() {
            Some(libc::ENOENT) => return Self::NotFound,
            Some(libc::EEXIST) => return Self::AlreadyExists,
            Some(libc::ENOTDIR) => return Self::NotADirectory,
            Some(libc::EISDIR) => return Self::IsADirectory,
            Some(libc::ENOTEMPTY) => return Self::NotEmpty,
            Some(libc::ENOSPC | libc::EDQUOT) => return Self::NoSpace,
            Some(libc::EACCES | libc::EPERM | libc::ELOOP | libc::EXDEV) => return Self::Denied,
            Some(libc::ENAMETOOLONG) => return Self::InvalidPath(PathError::NameTooLong),
            _ => {}
        }
        match error.kind() {
            io::ErrorKind::NotFound => Self::NotFound,
            io::ErrorKind::AlreadyExists => Self::AlreadyExists,
            // cap-std reports an escape attempt as PermissionDenied.
            io::ErrorKind::PermissionDenied => Self::Denied,
            _ => Self::Io(error),
        }
    }
}

/// The kind of a listed entry: the wire's own type, so the store and the protocol
/// cannot disagree about what a symlink is.
pub use sfs_proto::control::EntryKind;

/// One file or folder, as LIST and stat report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name (for stat, the last name of the path; `/` for the home).
    pub name: String,
    /// File, folder, symlink or other.
    pub kind: EntryKind,
    /// Size in bytes (0 for folders, symlinks and others).
    pub size: u64,
    /// Last modification time, when the file system has one.
    pub modified: Option<SystemTime>,
    /// Unix permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}

impl Entry {
    fn from_metadata(name: String, metadata: &cap_std::fs::Metadata) -> Self {
        let file_type = metadata.file_type();
        let kind = if file_type.is_file() {
            EntryKind::File
        } else if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_symlink() {
            EntryKind::Symlink
        } else {
            EntryKind::Other
        };
        Self {
            name,
            kind,
            size: if kind == EntryKind::File {
                metadata.len()
            } else {
                0
            },
            modified: metadata.modified().ok().map(|t| t.into_std()),
            mode: cap_std::fs::MetadataExt::mode(metadata) & 0o7777,
        }
    }
}

/// A folder's entries, read lazily ([`Home::entries`]).
pub struct Entries {
    dir: cap_std::fs::ReadDir,
}

impl Iterator for Entries {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let entry = match self.dir.next()? {
                Ok(entry) => entry,
                Err(error) => return Some(Err(error.into())),
            };
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if check_single_name(&name).is_err() {
                continue;
            }
            // Not following symlinks: a listing never reveals what lies outside.
            return Some(
                entry
                    .metadata()
                    .map(|metadata| Entry::from_metadata(name, &metadata))
                    .map_err(StoreError::from),
            );
        }
    }
}

/// The folder holding every home.
#[derive(Debug)]
pub struct FileStore {
    root: Dir,
}

impl FileStore {
    /// Opens (creating with mode 0700 if missing) the folder holding every home.
    ///
    /// # Errors
    ///
    /// The [`io::Error`] of creating or opening `root`.
    pub fn open(root: &Path) -> io::Result<Self> {
        let mut builder = std::fs::DirBuilder::new();
        std::os::unix::fs::DirBuilderExt::mode(builder.recursive(true), 0o700);
        builder.create(root)?;
        let root = Dir::open_ambient_dir(root, ambient_authority())?;
        Ok(Self { root })
    }

    /// The home of `user`, created (mode 0700) on first use. A [`Username`] is
    /// always a plain safe name, so it cannot point anywhere but one folder down.
    ///
    /// # Errors
    ///
    /// [`StoreError::Denied`] if the home leads out of the root (a symlink) or cannot
    /// be accessed, [`StoreError::NoSpace`] if it cannot be created, otherwise the
    /// mapped [`StoreError`] of `mkdir` or `open`.
    pub fn home(&self, user: &Username) -> Result<Home, StoreError> {
        match self
            .root
            .create_dir_with(user.as_str(), DirBuilder::new().mode(0o700))
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Home {
            dir: self.root.open_dir(user.as_str())?,
            base: VirtualPath::root(),
        })
    }

    /// The home of `user` if it exists; never creates one. Use it for other users'
    /// homes (an admin or a share), so naming a user does not conjure a folder.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] if `user` has no home, [`StoreError::Denied`] if it
    /// leads out of the root (a symlink) or cannot be accessed.
    pub fn existing_home(&self, user: &Username) -> Result<Home, StoreError> {
        Ok(Home {
            dir: self.root.open_dir(user.as_str())?,
            base: VirtualPath::root(),
        })
    }

    /// Moves the home of `user`, if there is one, to
    /// `.removed/<user>-<seconds>/` under the root, out of every user's reach (see
    /// [`sfs_state::homes`]). Registration calls it for a home left on disk without
    /// an account, so a new account never adopts old files. Returns whether a home
    /// was moved.
    ///
    /// # Errors
    ///
    /// The rename failed; the home stays where it was.
    pub fn archive_home(&self, user: &Username) -> io::Result<bool> {
        if self.root.symlink_metadata(user.as_str()).is_err() {
            return Ok(false);
        }
        match self
            .root
            .create_dir_with(sfs_state::homes::REMOVED_DIR, DirBuilder::new().mode(0o700))
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let removed = self.root.open_dir(sfs_state::homes::REMOVED_DIR)?;
        for name in sfs_state::homes::archive_names(user, SystemTime::now()).take(1000) {
            if removed.symlink_metadata(&name).is_ok() {
                continue;
            }
            self.root.rename(user.as_str(), &removed, &name)?;
            return Ok(true);
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free name for the archived home",
        ))
    }

    /// Deletes leftover upload temporary files (from a crash or kill) in every home.
    /// Returns how many were removed. Run it at startup, before serving.
    ///
    /// # Errors
    ///
    /// The first [`io::Error`] of listing a folder or removing a file; files removed
    /// until then stay removed.
    pub fn remove_stale_uploads(&self) -> io::Result<usize> {
        self.remove_stale_uploads_keeping(Duration::ZERO)
    }

    /// As [`Self::remove_stale_uploads`], but kept partial uploads younger
    /// than `keep_partials` stay, to be resumed.
    ///
    /// # Errors
    ///
    /// As [`Self::remove_stale_uploads`].
    pub fn remove_stale_uploads_keeping(&self, keep_partials: Duration) -> io::Result<usize> {
        remove_stale_uploads_in(&self.root, 0, keep_partials)
    }
}

fn remove_stale_uploads_in(dir: &Dir, depth: usize, keep_partials: Duration) -> io::Result<usize> {
    if depth > MAX_DEPTH + 1 {
        return Ok(0);
    }
    let mut removed = 0;
    for entry in dir.entries()? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        let name = entry.file_name();
        if file_type.is_dir() {
            // open_dir refuses symlinks that lead out; file_type did not follow.
            removed += remove_stale_uploads_in(&entry.open_dir()?, depth + 1, keep_partials)?;
        } else if file_type.is_file()
            && name
                .to_str()
                .is_some_and(|n| n.starts_with(UPLOAD_TEMP_PREFIX))
        {
            let kept = name.to_str().is_some_and(|n| n.starts_with(KEPT_PREFIX));
            if kept && !is_expired(&entry.metadata()?, keep_partials) {
                continue;
            }
            entry.remove_file()?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The name prefix of kept partial uploads (hidden like every upload file).
const KEPT_PREFIX: &str = ".sfs-upload-kept-";

/// The name of the partial upload `uploader` kept of `target` (a name in the
/// same folder): a hash, so names of any length fit and none can be guessed
/// into another's.
fn kept_name(uploader: &Username, target: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(uploader.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(target.as_bytes());
    let key: String = hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{KEPT_PREFIX}{key}")
}

/// Whether a kept partial last written as `metadata` says is older than `age`.
fn is_expired(metadata: &cap_std::fs::Metadata, age: Duration) -> bool {
    metadata
        .modified()
        .ok()
        .and_then(|at| at.into_std().elapsed().ok())
        .is_none_or(|elapsed| elapsed >= age)
}

/// What a home holds, from [`Home::usage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredUsage {
    /// Sum of the sizes of the regular files.
    pub bytes: u64,
    /// Number of regular files.
    pub files: u64,
}

fn add_usage_in(dir: &Dir, depth: usize, usage: &mut StoredUsage) -> io::Result<()> {
    if depth > MAX_DEPTH + 1 {
        return Ok(());
    }
    for entry in dir.entries()? {
        let entry = entry?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            add_usage_in(&entry.open_dir()?, depth + 1, usage)?;
        } else if file_type.is_file() {
            let name = entry.file_name();
            let name = name.to_str();
            if name.is_some_and(|n| n.starts_with(KEPT_PREFIX)) {
                // A kept partial takes room until continued or expired, but is
                // not one of the user's files.
                usage.bytes = usage.bytes.saturating_add(entry.metadata()?.len());
            } else if !name.is_some_and(|n| n.starts_with(UPLOAD_TEMP_PREFIX)) {
                usage.bytes = usage.bytes.saturating_add(entry.metadata()?.len());
                usage.files += 1;
            }
        }
    }
    Ok(())
}

/// One user's home, or the part of it beneath a shared item ([`Home::confined`]).
/// All paths are virtual, `/` being the folder the handle is confined to.
#[derive(Debug)]
pub struct Home {
    dir: Dir,
    /// Where `dir` lies in the owner's home (`/` for the home itself), so limits
    /// are checked on the path the owner sees.
    base: VirtualPath,
}

impl Home {
    /// Describes a file or folder (following symlinks that stay inside the home).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] if nothing is there, [`StoreError::NotADirectory`] if a
    /// name on the way is a file, [`StoreError::Denied`] for a symlink leading out.
    pub fn stat(&self, path: &VirtualPath) -> Result<Entry, StoreError> {
        let metadata = if path.is_root() {
            self.dir.dir_metadata()?
        } else {
            self.dir.metadata(path.relative())?
        };
        let name = path.file_name().unwrap_or("/").to_owned();
        Ok(Entry::from_metadata(name, &metadata))
    }

    /// The size of a regular file.
    ///
    /// # Errors
    ///
    /// As [`Home::stat`], and [`StoreError::IsADirectory`] or [`StoreError::NotRegular`]
    /// if `path` is not a regular file.
    pub fn size(&self, path: &VirtualPath) -> Result<u64, StoreError> {
        let entry = self.stat(path)?;
        match entry.kind {
            EntryKind::File => Ok(entry.size),
            EntryKind::Dir => Err(StoreError::IsADirectory),
            EntryKind::Symlink | EntryKind::Other => Err(StoreError::NotRegular),
        }
    }

    /// The entries of a folder, sorted by name. Upload temporary files and names a
    /// client could not have sent (control characters, invalid UTF-8) are left out.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::NotADirectory`] or [`StoreError::Denied`]
    /// if `path` is not a folder that can be opened here; [`StoreError::Io`] if reading it
    /// fails.
    pub fn list(&self, path: &VirtualPath) -> Result<Vec<Entry>, StoreError> {
        let mut entries = self.entries(path)?.collect::<Result<Vec<_>, _>>()?;
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    /// The entries of a folder as the directory yields them, read one at a time,
    /// so a caller holds only what it has not passed on yet (no order). Skips
    /// what [`Self::list`] skips.
    ///
    /// # Errors
    ///
    /// The folder cannot be opened; each item may fail on its own (a read or a
    /// `stat` error).
    pub fn entries(&self, path: &VirtualPath) -> Result<Entries, StoreError> {
        Ok(Entries {
            dir: self.open_dir(path)?.entries()?,
        })
    }

    /// Creates a folder, mode 0700.
    ///
    /// # Errors
    ///
    /// - [`StoreError::RootOperation`] for `/`, [`PathError::Reserved`] for a reserved
    ///   top name, [`PathError::TooDeep`] or [`PathError::TooLong`] past the stored limits;
    /// - [`StoreError::AlreadyExists`] if the name is taken, [`StoreError::NotFound`] if
    ///   the parent is missing, [`StoreError::NoSpace`] if the disk is full.
    pub fn mkdir(&self, path: &VirtualPath) -> Result<(), StoreError> {
        self.check_changeable(path)?;
        self.check_stored(path, Reach::default())?;
        self.dir
            .create_dir_with(path.relative(), DirBuilder::new().mode(0o700))?;
        Ok(())
    }

    /// Removes an empty folder.
    ///
    /// # Errors
    ///
    /// [`StoreError::RootOperation`] for `/`, [`PathError::Reserved`] for a reserved top
    /// name, [`StoreError::NotEmpty`], [`StoreError::NotFound`] or
    /// [`StoreError::NotADirectory`] as `rmdir` reports them.
    pub fn rmdir(&self, path: &VirtualPath) -> Result<(), StoreError> {
        self.check_changeable(path)?;
        self.dir.remove_dir(path.relative())?;
        Ok(())
    }

    /// Removes a file (a symlink itself, never its target).
    ///
    /// # Errors
    ///
    /// [`StoreError::RootOperation`] for `/`, [`PathError::Reserved`] for a reserved top
    /// name, [`StoreError::IsADirectory`] for a folder, [`StoreError::NotFound`] if
    /// nothing is there.
    pub fn delete(&self, path: &VirtualPath) -> Result<(), StoreError> {
        self.check_changeable(path)?;
        if self.dir.symlink_metadata(path.relative())?.is_dir() {
            return Err(StoreError::IsADirectory);
        }
        self.dir.remove_file(path.relative())?;
        Ok(())
    }

    /// Renames a file or folder. An existing target is refused, not replaced, by the
    /// kernel in the same step (`renameat2(RENAME_NOREPLACE)`), so a file that
    /// appears under the target name meanwhile is never overwritten. The result is
    /// checked against the stored limits: the target's depth plus the depth of the
    /// moved tree, so everything stored stays reachable by some path.
    ///
    /// # Errors
    ///
    /// - [`StoreError::RootOperation`] if either path is `/`, [`PathError::Reserved`] for
    ///   a reserved top name, [`StoreError::Denied`] when moving a folder into itself;
    /// - [`PathError::TooDeep`] or [`PathError::TooLong`] if the moved tree would pass the
    ///   stored limits;
    /// - [`StoreError::AlreadyExists`] if `to` exists, [`StoreError::NotFound`] if `from`
    ///   or `to`'s parent is missing. Nothing is moved on an error.
    pub fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<(), StoreError> {
        self.check_changeable(from)?;
        self.check_changeable(to)?;
        if to.starts_with(from) {
            // Moving a folder into itself; the kernel says EINVAL, which reads badly.
            return Err(StoreError::Denied);
        }
        let (from_parent, from_name) = self.parent_and_name(from)?;
        let (to_parent, to_name) = self.parent_and_name(to)?;
        let moved = from_parent.symlink_metadata(&from_name)?;
        let reach = if moved.is_dir() {
            // Not following: a symlink is moved as a link and has no depth below it.
            subtree_reach(&from_parent.open_dir(&from_name)?, self.stored_budget(to)?)?
        } else {
            Reach::default()
        };
        self.check_stored(to, reach)?;
        rename_no_replace(&from_parent, &from_name, &to_parent, &to_name)?;
        Ok(())
    }

    /// Opens a regular file for reading.
    ///
    /// # Errors
    ///
    /// [`StoreError::IsADirectory`] for a folder, [`StoreError::NotRegular`] for a
    /// device, socket or FIFO, [`StoreError::NotFound`] if nothing is there,
    /// [`StoreError::Denied`] for a symlink leading out.
    pub fn open_read(&self, path: &VirtualPath) -> Result<std::fs::File, StoreError> {
        if path.is_root() {
            return Err(StoreError::IsADirectory);
        }
        let mut options = OpenOptions::new();
        // O_NONBLOCK: opening a planted FIFO must not hang the server.
        options
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY);
        let file = self.dir.open_with(path.relative(), &options)?;
        let metadata = file.metadata()?;
        if metadata.is_dir() {
            return Err(StoreError::IsADirectory);
        }
        if !metadata.is_file() {
            return Err(StoreError::NotRegular);
        }
        Ok(file.into_std())
    }

    /// The SHA-256 of a regular file.
    ///
    /// # Errors
    ///
    /// As [`Home::open_read`], and [`StoreError::Io`] if reading fails.
    pub fn digest(&self, path: &VirtualPath) -> Result<Digest, StoreError> {
        let file = self.open_read(path)?;
        let (_, digest) = sfs_proto::digest::sha256_reader(file)?;
        Ok(digest)
    }

    /// Starts an upload to `path`. The folder must exist; the target, if any, is
    /// replaced only by [`Upload::commit`].
    ///
    /// # Errors
    ///
    /// - [`StoreError::RootOperation`] for `/`, [`PathError::Reserved`] for a reserved top
    ///   name, [`PathError::TooDeep`] or [`PathError::TooLong`] past the stored limits;
    /// - [`StoreError::IsADirectory`] or [`StoreError::NotRegular`] if the target is not a
    ///   regular file, [`StoreError::NotFound`] if the folder is missing;
    /// - [`StoreError::NoSpace`] or [`StoreError::Io`] if the temporary file cannot be
    ///   made (or there is no system randomness for its name).
    pub fn begin_upload(&self, path: &VirtualPath) -> Result<Upload, StoreError> {
        self.check_changeable(path)?;
        self.check_stored(path, Reach::default())?;
        let (parent, target_name) = match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => (parent, name.to_owned()),
            _ => return Err(StoreError::RootOperation),
        };
        let parent = self.open_dir(&parent)?;
        match parent.symlink_metadata(&target_name) {
            Ok(metadata) if metadata.is_dir() => return Err(StoreError::IsADirectory),
            Ok(metadata) if !metadata.is_file() => return Err(StoreError::NotRegular),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let temp_name = temp_upload_name()?;
        let mut options = OpenOptions::new();
        options
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW);
        let file = parent.open_with(&temp_name, &options)?;
        Ok(Upload {
            parent,
            temp_name,
            target_name,
            file: Some(file),
            hasher: Some(Sha256::new()),
            written: 0,
            keep_as: None,
            keep_on_drop: Arc::default(),
        })
    }

    /// Bytes of the partial upload `uploader` kept of `path`, 0 when none (one
    /// older than `max_age` is removed and counts as none).
    ///
    /// # Errors
    ///
    /// As [`Home::begin_upload`]'s checks of the folder.
    pub fn kept_upload_size(
        &self,
        path: &VirtualPath,
        uploader: &Username,
        max_age: Duration,
    ) -> Result<u64, StoreError> {
        let (parent, name) = self.parent_and_name(path)?;
        let kept = kept_name(uploader, &name);
        match parent.symlink_metadata(&kept) {
            Ok(metadata) if metadata.is_file() && !is_expired(&metadata, max_age) => {
                Ok(metadata.len())
            }
            Ok(metadata) if metadata.is_file() => {
                let _ = parent.remove_file(&kept);
                Ok(0)
            }
            Ok(_) => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Continues the partial upload `uploader` kept of `path`: checks, as
    /// [`Home::begin_upload`] does, that the target may be uploaded to, takes
    /// the partial (so no other upload takes it too), checks that its first
    /// `offset` bytes have the SHA-256 `prefix`, and cuts it there. Returns the
    /// upload, appending from `offset`, and the hash state of those bytes. A
    /// partial that does not match is put back.
    ///
    /// # Errors
    ///
    /// As [`Home::begin_upload`]; [`StoreError::NoPartial`] when there is no
    /// partial of at least `offset` bytes (or it expired),
    /// [`StoreError::ResumeMismatch`] when its bytes differ.
    pub fn resume_upload(
        &self,
        path: &VirtualPath,
        uploader: &Username,
        offset: u64,
        prefix: &Digest,
        max_age: Duration,
    ) -> Result<(Upload, Sha256), StoreError> {
        if self.kept_upload_size(path, uploader, max_age)? < offset.max(1) {
            return Err(StoreError::NoPartial);
        }
        let mut upload = self.begin_upload(path)?.unhashed();
        let kept = kept_name(uploader, &upload.target_name);
        // Claimed by a rename over the new temporary file: one upload at a time.
        match upload
            .parent
            .rename(&kept, &upload.parent, &upload.temp_name)
        {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NoPartial),
            Err(e) => return Err(e.into()),
        }
        let mut options = OpenOptions::new();
        options
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW);
        let mut file = upload.parent.open_with(&upload.temp_name, &options)?;
        let mut hasher = Sha256::new();
        let copied = io::copy(&mut io::Read::take(&mut file, offset), &mut hasher)?;
        if copied != offset || hasher.clone().finalize() != *prefix {
            // Not this file's first bytes: leave the partial as it was.
            let _ = upload
                .parent
                .rename(&upload.temp_name, &upload.parent, &kept);
            return Err(StoreError::ResumeMismatch);
        }
        file.set_len(offset)?;
        io::Seek::seek(&mut file, io::SeekFrom::Start(offset))?;
        upload.file = Some(file);
        upload.written = offset;
        upload.keep_as = Some(kept);
        Ok((upload, hasher))
    }

    /// The part of this home at and beneath `root` (a shared item), with `path`
    /// (at or beneath `root`) made relative to it. Every operation through the
    /// returned handle is resolved beneath the shared folder itself, so a symlink
    /// inside it that leads elsewhere in the home (`link -> ../private`) is refused
    /// like one that leads out of the home. For the shared item itself (and for a
    /// shared file, beneath which nothing lies) the handle is its folder, and only
    /// its own name is reached. A shared item that is itself a symlink is refused.
    ///
    /// # Errors
    ///
    /// [`StoreError::Denied`] when `path` is not beneath `root` or `root` is a
    /// symlink; [`StoreError::NotFound`] when `root` does not exist.
    pub fn confined(
        &self,
        root: &VirtualPath,
        path: &VirtualPath,
    ) -> Result<(Home, VirtualPath), StoreError> {
        let below = path.strip_prefix(root).ok_or(StoreError::Denied)?;
        if root.is_root() {
            return Ok((self.beneath(VirtualPath::root())?, path.clone()));
        }
        let (parent, name) = self.parent_and_name(root)?;
        if parent.symlink_metadata(&name)?.is_symlink() {
            return Err(StoreError::Denied);
        }
        let root_base = self.base.concat(root)?;
        if below.is_root() {
            let base = root_base.parent().unwrap_or_else(VirtualPath::root);
            Ok((Home { dir: parent, base }, VirtualPath::from_names([name])?))
        } else {
            let dir = parent.open_dir(&name)?;
            Ok((
                Home {
                    dir,
                    base: root_base,
                },
                below,
            ))
        }
    }

    /// `full` (a path in the owner's home) relative to this handle's folder, if it
    /// lies at or beneath it.
    pub fn relative(&self, full: &VirtualPath) -> Option<VirtualPath> {
        full.strip_prefix(&self.base)
    }

    /// A second handle on the same folder, for [`Self::confined`].
    fn beneath(&self, relative: VirtualPath) -> Result<Home, StoreError> {
        Ok(Home {
            dir: self.open_dir(&relative)?,
            base: self.base.concat(&relative)?,
        })
    }

    /// Whether `upload` still lands at `path` here: the folder `path` names now is
    /// the very folder (same device and inode) the upload began in. False when the
    /// folder was renamed away, replaced or removed meanwhile.
    ///
    /// # Errors
    ///
    /// [`StoreError::Denied`] or [`StoreError::Io`] if the folder `path` names cannot be
    /// opened or either folder cannot be described; a missing folder is `false`.
    pub fn holds_upload(&self, path: &VirtualPath, upload: &Upload) -> Result<bool, StoreError> {
        use cap_std::fs::MetadataExt;
        let Some(parent) = path.parent() else {
            return Ok(false);
        };
        if path.file_name() != Some(upload.target_name.as_str()) {
            return Ok(false);
        }
        let now = match self.open_dir(&parent) {
            Ok(dir) => dir.dir_metadata()?,
            Err(StoreError::NotFound | StoreError::NotADirectory) => return Ok(false),
            Err(error) => return Err(error),
        };
        let then = upload.parent.dir_metadata()?;
        Ok(now.dev() == then.dev() && now.ino() == then.ino())
    }

    /// The folder holding `path` and its last name.
    fn parent_and_name(&self, path: &VirtualPath) -> Result<(Dir, String), StoreError> {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => Ok((self.open_dir(&parent)?, name.to_owned())),
            _ => Err(StoreError::RootOperation),
        }
    }

    /// Depth and length left for what lies below `path`, as the owner sees it.
    fn stored_budget(&self, path: &VirtualPath) -> Result<Reach, StoreError> {
        let full = self.base.concat(path)?;
        let bytes = full.to_string().len();
        Ok(Reach {
            depth: MAX_STORED_DEPTH.saturating_sub(full.names().len()),
            bytes: MAX_STORED_PATH_BYTES.saturating_sub(bytes),
        })
    }

    /// Refuses to store something at `path` whose deepest descendant is `below`
    /// further down when the result would exceed the stored limits.
    fn check_stored(&self, path: &VirtualPath, below: Reach) -> Result<(), StoreError> {
        let full = self.base.concat(path)?;
        if full.names().len() + below.depth > MAX_STORED_DEPTH {
            return Err(PathError::TooDeep.into());
        }
        if full.to_string().len() + below.bytes > MAX_STORED_PATH_BYTES {
            return Err(PathError::TooLong.into());
        }
        Ok(())
    }

    /// Bytes and regular files stored under the home, walked now (symlinks are
    /// not followed; temporary upload files are left out, since uploads in
    /// progress are counted by their reservation). Blocking.
    ///
    /// # Errors
    ///
    /// The mapped [`StoreError`] of the first folder that cannot be listed or entry that
    /// cannot be described.
    pub fn usage(&self) -> Result<StoredUsage, StoreError> {
        let mut usage = StoredUsage::default();
        add_usage_in(&self.dir, 0, &mut usage)?;
        Ok(usage)
    }

    /// Bytes an unprivileged writer can still put on the home's file system.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] (or another mapped [`StoreError`]) if `fstatvfs` fails.
    pub fn free_space(&self) -> Result<u64, StoreError> {
        let stats = nix::sys::statvfs::fstatvfs(&self.dir).map_err(io::Error::from)?;
        Ok(stats
            .blocks_available()
            .saturating_mul(stats.fragment_size()))
    }

    fn open_dir(&self, path: &VirtualPath) -> Result<Dir, StoreError> {
        if path.is_root() {
            Ok(self.dir.try_clone()?)
        } else {
            Ok(self.dir.open_dir(path.relative())?)
        }
    }

    fn check_changeable(&self, path: &VirtualPath) -> Result<(), StoreError> {
        if path.is_root() {
            return Err(StoreError::RootOperation);
        }
        if self.base.is_root() && path.is_reserved_top_name() {
            return Err(PathError::Reserved.into());
        }
        Ok(())
    }
}

fn temp_upload_name() -> Result<String, StoreError> {
    let mut random = [0u8; 12];
    SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| StoreError::Io(io::Error::other("no system randomness")))?;
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{UPLOAD_TEMP_PREFIX}{hex}"))
}

/// How [`Upload::commit_as`] treats a target that exists at the moment of the rename.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitMode {
    /// Replace it (the write right).
    Replace,
    /// Refuse: the upload may only make a new file (the create right alone).
    CreateOnly,
}

/// Deepest path the store lets anything be stored at, in names of the owner's
/// path: two less than [`MAX_DEPTH`], so that a client still reaches it through
/// `/shared/OWNER/...`, and can therefore always delete it.
pub const MAX_STORED_DEPTH: usize = MAX_DEPTH - 2;

/// Longest path the store lets anything be stored at, in bytes of the owner's
/// path: [`MAX_PATH_BYTES`] less room for `/shared/` and the longest user name.
pub const MAX_STORED_PATH_BYTES: usize = MAX_PATH_BYTES - "/shared/".len() - 32;

/// How far a tree reaches below its top: names and bytes (`/name` each).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Reach {
    depth: usize,
    bytes: usize,
}

/// How far the tree in `dir` reaches, not following symlinks. Stops with
/// [`PathError::TooDeep`] or [`PathError::TooLong`] as soon as `budget` is
/// exceeded, so a hostile tree costs no more than the limit to measure.
fn subtree_reach(dir: &Dir, budget: Reach) -> Result<Reach, StoreError> {
    let mut deepest = Reach::default();
    for entry in dir.entries()? {
        let entry = entry?;
        let name_bytes = entry.file_name().len() + 1;
        if budget.depth == 0 {
            return Err(PathError::TooDeep.into());
        }
        if name_bytes > budget.bytes {
            return Err(PathError::TooLong.into());
        }
        let mut reach = Reach {
            depth: 1,
            bytes: name_bytes,
        };
        if entry.file_type()?.is_dir() {
            let inner = subtree_reach(
                &entry.open_dir()?,
                Reach {
                    depth: budget.depth - 1,
                    bytes: budget.bytes - name_bytes,
                },
            )?;
            reach.depth += inner.depth;
            reach.bytes += inner.bytes;
        }
        deepest.depth = deepest.depth.max(reach.depth);
        deepest.bytes = deepest.bytes.max(reach.bytes);
    }
    Ok(deepest)
}

/// An upload in progress: a hidden temporary file beside the target.
///
/// Dropping it without [`commit`](Self::commit) removes the temporary file and leaves
/// the target untouched.
#[derive(Debug)]
pub struct Upload {
    parent: Dir,
    temp_name: String,
    target_name: String,
    file: Option<cap_std::fs::File>,
    /// `None` once [`Upload::unhashed`]: the caller checks the digest itself.
    hasher: Option<Sha256>,
    written: u64,
    /// The kept-partial name of this uploader and target ([`Upload::keep_for`]):
    /// where [`Upload::keep`] leaves the data, and what a commit removes.
    keep_as: Option<String>,
    /// Set through a [`Keeper`]: dropping keeps the data instead of removing it.
    keep_on_drop: Arc<AtomicBool>,
}

/// Decides, from outside, that an [`Upload`] is kept when it is dropped (see
/// [`Upload::keep`]), wherever it is then: a write job may hold it.
#[derive(Debug, Clone)]
pub struct Keeper(Arc<AtomicBool>);

impl Keeper {
    /// The upload is kept, not removed, when it is dropped.
    pub fn keep(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl Upload {
    /// Appends a chunk.
    ///
    /// # Errors
    ///
    /// [`StoreError::NoSpace`] if the disk or quota is full, [`StoreError::Io`] for
    /// another write failure; [`StoreError::NotFound`] if the file was already closed.
    /// What was written before stays in the temporary file.
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        let file = self.file.as_mut().ok_or(StoreError::NotFound)?;
        file.write_all(chunk)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(chunk);
        }
        self.written = self.written.saturating_add(chunk.len() as u64);
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Stops hashing what is written, for a caller that hashes the bytes
    /// itself and checks them before the commit (the protocol session checks
    /// every upload against its End digest): each byte is hashed once. The
    /// commit then trusts the digest it is given. Call before the first write.
    #[must_use]
    pub fn unhashed(mut self) -> Self {
        self.hasher = None;
        self
    }

    /// Names `uploader` as the one who may continue this upload if it is cut
    /// short ([`Self::keep`]); a commit then also removes an older partial of
    /// theirs for the same target.
    #[must_use]
    pub fn keep_for(mut self, uploader: &Username) -> Self {
        self.keep_as = Some(kept_name(uploader, &self.target_name));
        self
    }

    /// Keeps what was written, for the uploader named by [`Self::keep_for`] to
    /// continue with [`Home::resume_upload`], replacing an older partial of
    /// theirs for the same target. Without [`Self::keep_for`], or with nothing
    /// written, it is removed as on drop.
    pub fn keep(self) {
        self.keeper().keep();
    }

    /// A handle that makes this upload [`kept`](Self::keep) when it is dropped.
    pub fn keeper(&self) -> Keeper {
        Keeper(self.keep_on_drop.clone())
    }

    /// Renames the data to the kept-partial name, if there is one to keep.
    fn keep_now(&mut self) {
        self.file = None;
        let Some(kept) = self.keep_as.take() else {
            return;
        };
        if self.written == 0 || self.temp_name.is_empty() {
            return;
        }
        if self
            .parent
            .rename(&self.temp_name, &self.parent, &kept)
            .is_ok()
        {
            self.temp_name.clear();
        }
    }

    /// The SHA-256 of what was written so far (of nothing after
    /// [`Self::unhashed`]).
    pub fn digest(&self) -> Digest {
        self.hasher.clone().unwrap_or_default().finalize()
    }

    /// Checks the digest (unless [`Self::unhashed`]), makes the data durable and
    /// renames it over the target.
    /// On any failure, including a mismatch, the temporary file is removed and the
    /// previous target is untouched. Returns the size written.
    ///
    /// # Errors
    ///
    /// As [`Upload::commit_as`] with [`CommitMode::Replace`].
    pub fn commit(self, expected: &Digest) -> Result<u64, StoreError> {
        self.commit_as(expected, CommitMode::Replace)
    }

    /// Like [`commit`](Self::commit), with [`CommitMode::CreateOnly`] refusing
    /// ([`StoreError::AlreadyExists`]) when the target name is taken at the moment
    /// of the rename, in the same kernel step as the rename itself.
    ///
    /// # Errors
    ///
    /// - [`StoreError::DigestMismatch`] if the content does not match `expected`;
    /// - [`StoreError::IsADirectory`] if a folder took the target name meanwhile,
    ///   [`StoreError::AlreadyExists`] if any entry did under [`CommitMode::CreateOnly`];
    /// - [`StoreError::NoSpace`] or [`StoreError::Io`] if `fsync` or the rename fails.
    ///   Only when the folder's `fsync` after the rename fails is the new file already
    ///   in place (and perhaps not durable).
    pub fn commit_as(mut self, expected: &Digest, mode: CommitMode) -> Result<u64, StoreError> {
        if self.hasher.is_some() && self.digest() != *expected {
            return Err(StoreError::DigestMismatch);
        }
        let file = self.file.take().ok_or(StoreError::NotFound)?;
        file.sync_all()?;
        drop(file);
        if self
            .parent
            .symlink_metadata(&self.target_name)
            .is_ok_and(|m| m.is_dir())
        {
            // A folder appeared under the target name during the upload.
            return Err(StoreError::IsADirectory);
        }
        match mode {
            CommitMode::Replace => {
                self.parent
                    .rename(&self.temp_name, &self.parent, &self.target_name)?;
            }
            CommitMode::CreateOnly => rename_no_replace(
                &self.parent,
                &self.temp_name,
                &self.parent,
                &self.target_name,
            )?,
        }
        // The rename happened: nothing for Drop to clean up any more.
        self.temp_name.clear();
        if let Some(kept) = self.keep_as.take() {
            // A partial of an earlier try is worth nothing now.
            let _ = self.parent.remove_file(&kept);
        }
        // Dir handles may be O_PATH descriptors, which cannot be fsynced: open the
        // folder itself for reading to sync the rename.
        self.parent.open(".")?.sync_all()?;
        Ok(self.written)
    }

    /// Gives up the upload, removing the temporary file.
    pub fn abort(self) {
        drop(self);
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.keep_on_drop.load(Ordering::Acquire) {
            self.keep_now();
        }
        self.file = None;
        if !self.temp_name.is_empty() {
            // Best effort: a leftover is also swept by FileStore::remove_stale_uploads.
            let _ = self.parent.remove_file(&self.temp_name);
        }
    }
}

/// Moves `from` (in `from_dir`) to `to` (in `to_dir`) unless `to` exists, in one
/// step: `renameat2(RENAME_NOREPLACE)`. File systems without that flag (9p, NFS,
/// some FUSE ones) answer EINVAL; there [`move_without_replacing`] does it.
fn rename_no_replace(from_dir: &Dir, from: &str, to_dir: &Dir, to: &str) -> io::Result<()> {
    use rustix::io::Errno;
    match rustix::fs::renameat_with(
        from_dir,
        from,
        to_dir,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            move_without_replacing(from_dir, from, to_dir, to)
        }
        other => other.map_err(io::Error::from),
    }
}

/// [`rename_no_replace`] where the file system lacks `RENAME_NOREPLACE`. Anything
/// but a folder is hard-linked under the new name (`linkat` refuses an existing
/// name, atomically) and then unlinked under the old one. A folder cannot be
/// linked: it is renamed after checking the name is free, the one case that is not
/// atomic; in that gap only an empty folder could be replaced, since rename(2)
/// refuses to replace a non-empty one or a file.
fn move_without_replacing(from_dir: &Dir, from: &str, to_dir: &Dir, to: &str) -> io::Result<()> {
    use rustix::fs::AtFlags;
    use rustix::io::Errno;
    let is_dir = rustix::fs::statat(from_dir, from, AtFlags::SYMLINK_NOFOLLOW)
        .map(|stat| {
            rustix::fs::FileType::from_raw_mode(stat.st_mode) == rustix::fs::FileType::Directory
        })
        .map_err(io::Error::from)?;
    if !is_dir {
        match rustix::fs::linkat(from_dir, from, to_dir, to, AtFlags::empty()) {
            Ok(()) => {
                return rustix::fs::unlinkat(from_dir, from, AtFlags::empty())
                    .map_err(io::Error::from)
            }
            Err(Errno::EXIST) => return Err(io::ErrorKind::AlreadyExists.into()),
            // No hard links here either: fall through to check-then-rename.
            Err(_) => {}
        }
    }
    match rustix::fs::statat(to_dir, to, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
        Err(Errno::NOENT) => {
            rustix::fs::renameat(from_dir, from, to_dir, to).map_err(io::Error::from)
        }
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path taken where the file system has no `RENAME_NOREPLACE` (9p, NFS),
    /// run here directly on a file system that has it.
    #[test]
    fn moving_without_renameat2_never_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a"), b"a").unwrap();
        std::fs::write(tmp.path().join("b"), b"b").unwrap();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        std::fs::write(tmp.path().join("d/inner"), b"i").unwrap();
        std::fs::create_dir(tmp.path().join("e")).unwrap();
        std::os::unix::fs::symlink("a", tmp.path().join("link")).unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();

        let taken = move_without_replacing(&dir, "a", &dir, "b").unwrap_err();
        assert_eq!(taken.kind(), io::ErrorKind::AlreadyExists);
        let taken = move_without_replacing(&dir, "d", &dir, "e").unwrap_err();
        assert_eq!(taken.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(tmp.path().join("a")).unwrap(), b"a");
        assert_eq!(std::fs::read(tmp.path().join("b")).unwrap(), b"b");

        move_without_replacing(&dir, "a", &dir, "c").unwrap();
        assert!(!tmp.path().join("a").exists());
        assert_eq!(std::fs::read(tmp.path().join("c")).unwrap(), b"a");
        move_without_replacing(&dir, "d", &dir, "f").unwrap();
        assert_eq!(std::fs::read(tmp.path().join("f/inner")).unwrap(), b"i");
        move_without_replacing(&dir, "link", &dir, "link2").unwrap();
        assert_eq!(
            std::fs::read_link(tmp.path().join("link2")).unwrap(),
            std::path::Path::new("a")
        );
    }

    #[test]
    fn join_normalizes_and_refuses_escapes() {
        let cwd = VirtualPath::parse("/a/b").unwrap();
        assert_eq!(cwd.join("c").unwrap().to_string(), "/a/b/c");
        assert_eq!(cwd.join("../c").unwrap().to_string(), "/a/c");
        assert_eq!(cwd.join("/x//y/./z").unwrap().to_string(), "/x/y/z");
        assert_eq!(cwd.join("../..").unwrap().to_string(), "/");
        assert_eq!(cwd.join("").unwrap(), cwd);
        assert_eq!(cwd.join("/").unwrap(), VirtualPath::root());
        assert_eq!(cwd.join("../../.."), Err(PathError::EscapesHome));
        let root = VirtualPath::root();
        assert_eq!(root.join("../../etc/passwd"), Err(PathError::EscapesHome));
        assert_eq!(root.join("a/../../x"), Err(PathError::EscapesHome));
        assert_eq!(
            root.join("..").unwrap_err().to_string(),
            "path leads outside your home"
        );
        // Absolute paths are virtual: /etc/passwd is inside the home.
        assert_eq!(root.join("/etc/passwd").unwrap().names(), ["etc", "passwd"]);
        // Nothing is URL-decoded.
        assert_eq!(root.join("%2e%2e/").unwrap().names(), ["%2e%2e"]);
    }

    #[test]
    fn join_refuses_bad_characters_and_sizes() {
        let root = VirtualPath::root();
        assert_eq!(root.join("a\0b"), Err(PathError::Nul));
        assert_eq!(root.join("a\nb"), Err(PathError::ControlCharacter));
        assert_eq!(root.join("a\rb"), Err(PathError::ControlCharacter));
        assert_eq!(root.join("a\u{1b}[31m"), Err(PathError::ControlCharacter));
        assert_eq!(root.join("a\u{7f}"), Err(PathError::ControlCharacter));
        assert_eq!(root.join("a\u{85}"), Err(PathError::ControlCharacter));
        assert_eq!(
            root.join("evil\u{202e}txt.exe"),
            Err(PathError::BidiControl)
        );
        assert_eq!(root.join(&"a".repeat(5000)), Err(PathError::TooLong));
        assert_eq!(root.join(&"a".repeat(256)), Err(PathError::NameTooLong));
        assert!(root.join(&"a".repeat(255)).is_ok());
        assert_eq!(root.join(&"a/".repeat(200)), Err(PathError::TooDeep));
        assert_eq!(root.join(".sfs-upload-1234"), Err(PathError::Reserved));
        // Plain unicode is fine.
        assert_eq!(root.join("café/日本").unwrap().to_string(), "/café/日本");
    }

    #[test]
    fn prefix_helpers() {
        let base = VirtualPath::parse("/docs").unwrap();
        let inner = VirtualPath::parse("/docs/a/b").unwrap();
        assert!(inner.starts_with(&base));
        assert!(!VirtualPath::parse("/docs2").unwrap().starts_with(&base));
        assert_eq!(inner.strip_prefix(&base).unwrap().to_string(), "/a/b");
        assert_eq!(inner.parent().unwrap().to_string(), "/docs/a");
        assert_eq!(VirtualPath::root().parent(), None);
        assert_eq!(
            VirtualPath::from_names(["x", "y"]).unwrap().to_string(),
            "/x/y"
        );
        assert!(VirtualPath::from_names([".."]).is_err());
        assert!(VirtualPath::from_names(["a/b"]).is_err());
    }
}
