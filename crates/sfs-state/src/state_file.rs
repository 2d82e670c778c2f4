//! One generic state file: a versioned JSON document, edited under a lock.
//!
//! `users.json` and `shares.json` are both written this way:
//!
//! - **Versioned**: the top-level object carries `"version"`, and a file of another
//!   version is refused rather than misread.
//! - **Missing means empty**: a fresh installation has no file yet.
//! - **Read-modify-write under a lock**: [`StateFile::update`] takes the `flock` of
//!   [`StateLock`] (shared with other processes, such as the admin tool next to a live
//!   server), re-reads the file under it, so that no concurrent change is lost, applies
//!   the edit and writes the result with [`durable::write_atomic`] (temporary file,
//!   `fsync`, `rename`, `fsync` of the folder, mode 0600).

use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::durable::{self, StateLock};

/// The Unix mode of every state file: readable and writable by the server only.
pub const STATE_FILE_MODE: u32 = 0o600;

/// The content of one kind of state file, and how it maps to its JSON form.
///
/// `Repr` is the on-disk shape, `version` field included; the in-memory document
/// converts from it (checking what serde cannot, such as duplicates) and back.
pub trait Document: Default {
    /// What the file is called in error messages, such as `"users file"`.
    const NAME: &'static str;
    /// The only format version this build reads and writes.
    const VERSION: u32;
    /// The JSON shape of the whole file.
    type Repr: Serialize + DeserializeOwned;
    /// The error of this kind of document's edits, which file errors convert into.
    type Error: From<StateFileError>;

    /// The version recorded in a parsed file.
    fn version(repr: &Self::Repr) -> u32;

    /// The document from its parsed file, with the version already checked.
    ///
    /// # Errors
    ///
    /// A description of what is wrong (for example a duplicate entry).
    fn from_repr(repr: Self::Repr) -> Result<Self, String>;

    /// The file's shape for this document, carrying [`Self::VERSION`].
    fn to_repr(&self) -> Self::Repr;

    /// Parses the JSON text of a file.
    ///
    /// # Errors
    ///
    /// A description of what is wrong: malformed JSON (with line and column), another
    /// version, or whatever [`from_repr`](Self::from_repr) refuses.
    fn from_json(text: &[u8]) -> Result<Self, String> {
        let repr: Self::Repr = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        let version = Self::version(&repr);
        if version != Self::VERSION {
            return Err(format!(
                "unsupported version {version} (this build reads version {})",
                Self::VERSION
            ));
        }
        Self::from_repr(repr)
    }

    /// The JSON text of the file, pretty-printed and ending in a newline.
    fn to_json(&self) -> Vec<u8> {
        // The documents hold only strings, numbers and booleans, whose serialization
        // into memory cannot fail.
        let mut text = serde_json::to_vec_pretty(&self.to_repr()).expect("state file serializes");
        text.push(b'\n');
        text
    }
}

/// Why a state file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    /// The file could not be read, locked or written.
    #[error("{name} {}: {source}", path.display())]
    Io {
        /// What the file is, such as `"users file"`.
        name: &'static str,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file exists but does not hold a valid document.
    #[error("{name} {} is corrupt: {detail}", path.display())]
    Corrupt {
        /// What the file is, such as `"users file"`.
        name: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong, with a line and column where JSON parsing failed.
        detail: String,
    },
}

/// A state file on disk holding a `D`. Cloning it names the same file.
#[derive(Debug)]
pub struct StateFile<D> {
    path: PathBuf,
    document: PhantomData<fn() -> D>,
}

impl<D> Clone for StateFile<D> {
    fn clone(&self) -> Self {
        Self::new(self.path.clone())
    }
}

impl<D> StateFile<D> {
    /// Names the file; nothing is read yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            document: PhantomData,
        }
    }

    /// The path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl<D: Document> StateFile<D> {
    /// Reads the file. A missing file is an empty document (a fresh installation).
    ///
    /// # Errors
    ///
    /// [`StateFileError::Io`] if the file cannot be read, [`StateFileError::Corrupt`]
    /// if it does not parse (both name the file), converted into `D::Error`.
    pub fn load(&self) -> Result<D, D::Error> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(D::default()),
            Err(source) => return Err(self.io_error(source).into()),
        };
        D::from_json(&text).map_err(|detail| {
            StateFileError::Corrupt {
                name: D::NAME,
                path: self.path.clone(),
                detail,
            }
            .into()
        })
    }

    /// Applies `edit` to the current content and saves the result, as one step that
    /// no other writer (thread or process) can interleave with.
    ///
    /// The file is re-read under the lock, so an edit made elsewhere since the caller
    /// last looked is kept. This blocks on the lock and on `fsync`: call it from a
    /// blocking context.
    ///
    /// # Errors
    ///
    /// The error of `edit`, in which case nothing is written, or a
    /// [`StateFileError`] (converted into `D::Error`) from loading, locking or writing.
    pub fn update<T>(
        &self,
        edit: impl FnOnce(&mut D) -> Result<T, D::Error>,
    ) -> Result<T, D::Error> {
        self.update_stamped(edit).map(|(outcome, _, _)| outcome)
    }

    /// [`update`](Self::update), also returning the document as written and the
    /// [`FileStamp`] of the file written, taken while the lock is still held (so the
    /// stamp is that of this very document, whatever another writer does next).
    pub(crate) fn update_stamped<T>(
        &self,
        edit: impl FnOnce(&mut D) -> Result<T, D::Error>,
    ) -> Result<(T, D, Option<FileStamp>), D::Error> {
        let _lock = StateLock::acquire(&self.path).map_err(|source| self.io_error(source))?;
        let mut document = self.load()?;
        let outcome = edit(&mut document)?;
        durable::write_atomic(&self.path, &document.to_json(), STATE_FILE_MODE)
            .map_err(|source| self.io_error(source))?;
        Ok((outcome, document, FileStamp::of(&self.path)))
    }

    /// Reads the file with the [`FileStamp`] it had just before reading. If another
    /// writer replaces the file between the two, the stamp is older than the content,
    /// which only costs one more reload later, never a missed change.
    pub(crate) fn load_stamped(&self) -> Result<(D, Option<FileStamp>), D::Error> {
        let stamp = FileStamp::of(&self.path);
        Ok((self.load()?, stamp))
    }

    fn io_error(&self, source: io::Error) -> StateFileError {
        StateFileError::Io {
            name: D::NAME,
            path: self.path.clone(),
            source,
        }
    }
}

/// What identifies one version of a state file without reading it: the inode (every
/// write replaces the file by a new one), size, and modification and change times in
/// nanoseconds. `None` stands for a missing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    /// The stamp of `path` now, `None` if it cannot be read (missing).
    pub(crate) fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
        Some(Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        })
    }
}
