//! The commands on this machine's side: `lcd`, `lpwd`, `lls`.

use std::io;
use std::path::PathBuf;

use sfs_net::Transport;

use super::{local_io, Shell};
use crate::connection::ClientError;
use crate::display::escape;

impl<T: Transport> Shell<T> {
    /// `lcd PATH`.
    pub(crate) async fn lcd(&mut self, path: String) -> Result<(), ClientError> {
        let target = self.local_dir.join(expand_home(&path));
        let canonical = std::fs::canonicalize(&target).map_err(|err| local_io(&target, err))?;
        if !canonical.is_dir() {
            return Err(local_io(&target, io::Error::other("not a folder")));
        }
        self.local_dir = canonical;
        Ok(())
    }

    /// `lpwd`.
    pub(crate) async fn lpwd(&mut self) -> Result<(), ClientError> {
        let text = escape(&self.local_dir.to_string_lossy()).into_owned();
        self.line(text)
    }

    /// `lls [PATH]`.
    pub(crate) async fn lls(&mut self, path: Option<String>) -> Result<(), ClientError> {
        let dir = match path {
            Some(path) => self.local_dir.join(expand_home(&path)),
            None => self.local_dir.clone(),
        };
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .map_err(|err| local_io(&dir, err))?
            .filter_map(Result::ok)
            .map(|e| {
                let dir_mark = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    "/"
                } else {
                    ""
                };
                format!("{}{dir_mark}", escape(&e.file_name().to_string_lossy()))
            })
            .collect();
        names.sort();
        for name in names {
            self.line(name)?;
        }
        Ok(())
    }
}

/// `~` and `~/...` in a local path, as a shell would expand them.
pub(super) fn expand_home(path: &str) -> PathBuf {
    if let Some(rest) = path.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    if path == "~" {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home);
        }
    }
    PathBuf::from(path)
}
