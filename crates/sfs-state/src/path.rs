//! Virtual paths: what a client names inside a home, checked before any file system
//! call.
//!
//! A [`VirtualPath`] is `/` followed by checked names, never `.` or `..`. It may be
//! at most [`MAX_PATH_BYTES`] long, each name at most [`MAX_NAME_BYTES`], with no
//! NUL, no control character and no bidirectional override (which can make a name
//! display as another). `.` and `..` are resolved on the virtual path, and a `..`
//! above `/` is refused rather than clamped. Nothing is decoded: `%2e%2e` is a plain
//! (odd) file name. Shares name their items with these paths, and the server's file
//! store opens them beneath each home's folder.

use std::fmt;
use std::path::PathBuf;

/// Longest accepted path text, in bytes, as the client sent it.
pub const MAX_PATH_BYTES: usize = 4096;

/// Longest accepted single name, in bytes (the usual Linux `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;

/// Deepest accepted path, in names.
pub const MAX_DEPTH: usize = 128;

/// Prefix of upload temporary files; refused in client paths.
pub const UPLOAD_TEMP_PREFIX: &str = ".sfs-upload-";

/// Names that cannot be created at the top of a home, because the virtual tree uses
/// them (`/shared` shows what others share, see [`crate::shares`]).
pub const RESERVED_TOP_NAMES: &[&str] = &["shared"];

/// Why a client's path text was refused before touching the file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Longer than [`MAX_PATH_BYTES`].
    #[error("path is too long")]
    TooLong,
    /// More than [`MAX_DEPTH`] names.
    #[error("path is too deep")]
    TooDeep,
    /// A name longer than [`MAX_NAME_BYTES`].
    #[error("a name in the path is too long")]
    NameTooLong,
    /// A NUL byte.
    #[error("path contains a NUL character")]
    Nul,
    /// A control character (newline, tab, escape, DEL, C1 controls, ...).
    #[error("path contains a control character")]
    ControlCharacter,
    /// A bidirectional-override character, which could make a name look like another.
    #[error("path contains a bidirectional control character")]
    BidiControl,
    /// `..` above the home.
    #[error("path leads outside your home")]
    EscapesHome,
    /// A name the server keeps for itself.
    #[error("that name is reserved")]
    Reserved,
}

/// A normalized path inside a home: `/` followed by checked names, never `.` or `..`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VirtualPath {
    names: Vec<String>,
}

impl VirtualPath {
    /// The home itself, `/`.
    pub fn root() -> Self {
        Self::default()
    }

    /// Parses an absolute virtual path (a relative one is taken from `/`).
    ///
    /// # Errors
    ///
    /// As [`VirtualPath::join`].
    pub fn parse(text: &str) -> Result<Self, PathError> {
        Self::root().join(text)
    }

    /// Resolves `input` against this path, as `cd` would: an input starting with `/`
    /// starts from the home, anything else from `self`. Empty names (`a//b`) and `.`
    /// are skipped, `..` goes up and is refused above `/`.
    ///
    /// # Errors
    ///
    /// - [`PathError::TooLong`], [`PathError::Nul`], [`PathError::ControlCharacter`]
    ///   or [`PathError::BidiControl`] if the text breaks those rules;
    /// - [`PathError::NameTooLong`] for a long name, [`PathError::Reserved`] for one
    ///   with the upload temporary prefix;
    /// - [`PathError::EscapesHome`] for a `..` above `/`;
    /// - [`PathError::TooDeep`] if the result has more than [`MAX_DEPTH`] names.
    pub fn join(&self, input: &str) -> Result<Self, PathError> {
        check_text(input)?;
        let mut names = if input.starts_with('/') {
            Vec::new()
        } else {
            self.names.clone()
        };
        for name in input.split('/') {
            match name {
                "" | "." => {}
                ".." => {
                    names.pop().ok_or(PathError::EscapesHome)?;
                }
                name => {
                    check_name(name)?;
                    names.push(name.to_owned());
                }
            }
            if names.len() > MAX_DEPTH {
                return Err(PathError::TooDeep);
            }
        }
        Ok(Self { names })
    }

    /// Builds a path from names that are each checked like a client's.
    ///
    /// # Errors
    ///
    /// - [`PathError::EscapesHome`] for an empty name, `.`, `..` or a name with `/`;
    /// - [`PathError::TooDeep`] past [`MAX_DEPTH`] names;
    /// - otherwise the [`PathError`] the name would cause in [`VirtualPath::join`].
    pub fn from_names<I, S>(names: I) -> Result<Self, PathError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut path = Self::root();
        for name in names {
            let name = name.as_ref();
            check_text(name)?;
            if name.is_empty() || name == "." || name == ".." || name.contains('/') {
                return Err(PathError::EscapesHome);
            }
            check_name(name)?;
            path.names.push(name.to_owned());
            if path.names.len() > MAX_DEPTH {
                return Err(PathError::TooDeep);
            }
        }
        Ok(path)
    }

    /// True for `/`.
    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    /// The names from the top down.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The last name, or `None` for `/`.
    pub fn file_name(&self) -> Option<&str> {
        self.names.last().map(String::as_str)
    }

    /// The enclosing folder, or `None` for `/`.
    pub fn parent(&self) -> Option<Self> {
        let (_, rest) = self.names.split_last()?;
        Some(Self {
            names: rest.to_vec(),
        })
    }

    /// True if `self` is `prefix` or lies beneath it.
    pub fn starts_with(&self, prefix: &VirtualPath) -> bool {
        self.names.starts_with(&prefix.names)
    }

    /// The part of `self` below `prefix`, if `self` starts with it.
    pub fn strip_prefix(&self, prefix: &VirtualPath) -> Option<Self> {
        self.names
            .strip_prefix(prefix.names.as_slice())
            .map(|rest| Self {
                names: rest.to_vec(),
            })
    }

    /// `self` with `other`'s names appended.
    ///
    /// # Errors
    ///
    /// [`PathError::TooDeep`] if the result has more than [`MAX_DEPTH`] names.
    pub fn concat(&self, other: &VirtualPath) -> Result<Self, PathError> {
        let mut names = self.names.clone();
        names.extend(other.names.iter().cloned());
        if names.len() > MAX_DEPTH {
            return Err(PathError::TooDeep);
        }
        Ok(Self { names })
    }

    /// The path relative to the home folder, for opening beneath it (`.` for the
    /// home itself).
    pub fn relative(&self) -> PathBuf {
        if self.names.is_empty() {
            PathBuf::from(".")
        } else {
            self.names.iter().collect()
        }
    }

    /// True for a one-name path that is one of [`RESERVED_TOP_NAMES`].
    pub fn is_reserved_top_name(&self) -> bool {
        matches!(self.names.as_slice(), [only] if RESERVED_TOP_NAMES.contains(&only.as_str()))
    }
}

impl serde::Serialize for VirtualPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for VirtualPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if !text.starts_with('/') {
            return Err(serde::de::Error::custom("a stored path starts with '/'"));
        }
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for VirtualPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.names.is_empty() {
            return f.write_str("/");
        }
        for name in &self.names {
            write!(f, "/{name}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for VirtualPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtualPath({:?})", self.to_string())
    }
}

/// Checks one name as a client path would have to spell it (text and name rules).
///
/// # Errors
///
/// The [`PathError`] the name would cause inside a client's path.
pub fn check_single_name(name: &str) -> Result<(), PathError> {
    check_text(name)?;
    check_name(name)
}

fn check_text(text: &str) -> Result<(), PathError> {
    if text.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    for c in text.chars() {
        if c == '\0' {
            return Err(PathError::Nul);
        }
        if c.is_control() {
            return Err(PathError::ControlCharacter);
        }
        if matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
            return Err(PathError::BidiControl);
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), PathError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(PathError::NameTooLong);
    }
    if name.starts_with(UPLOAD_TEMP_PREFIX) {
        return Err(PathError::Reserved);
    }
    Ok(())
}
