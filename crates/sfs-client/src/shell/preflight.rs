//! Local names checked before anything is asked of the server: a local file to
//! upload that is not there (or a pattern that matches none), a folder given to
//! `put` without `-r`, or a local folder to download into (named with a trailing
//! `/`, or `mget -O`) that does not exist. The shell checks them
//! first in each command, and the binary checks a one-shot command's before it
//! connects and logs in, so a typo costs no login. Batch lines are checked as
//! each runs (an earlier line may make the file, or `lcd` elsewhere).

use std::io;
use std::path::Path;

use super::glob::{is_pattern, local_glob, unescape};
use super::local_dir::expand_home;
use super::local_io;
use crate::command::ShellCommand;
use crate::connection::ClientError;
use crate::display::escape;
use crate::local::{download_destination, LocalPathError};

/// Checks the local names `command` reads or writes into, relative to `cwd`.
///
/// # Errors
///
/// [`ClientError::NotAsTyped`] naming the first problem: `no such local file
/// X`, `X is a folder: use put -r ...`, `no match for PATTERN`;
/// [`ClientError::LocalPath`] for `get REMOTE DIR/` where DIR is not a local
/// folder.
pub fn check_local_names(command: &ShellCommand, cwd: &Path) -> Result<(), ClientError> {
    match command {
        ShellCommand::Put {
            recursive, local, ..
        } if !is_pattern(local) => upload_source(cwd, local, *recursive),
        ShellCommand::Put { local, .. } => pattern_source(cwd, local),
        ShellCommand::Reput { local, .. } => upload_source(cwd, local, false),
        ShellCommand::PutMany { locals, .. } => locals.iter().try_for_each(|local| {
            if is_pattern(local) {
                pattern_source(cwd, local)
            } else {
                // A folder without -r is skipped with a message, not refused.
                upload_source(cwd, &unescape(local), true)
            }
        }),
        ShellCommand::GetMany {
            into: Some(dir), ..
        } if !cwd.join(expand_home(dir)).is_dir() => {
            Err(LocalPathError::NoSuchFolder(escape(dir).into_owned()).into())
        }
        ShellCommand::Get {
            remote,
            local: Some(local),
            ..
        }
        | ShellCommand::Reget {
            remote,
            local: Some(local),
        } => {
            download_destination(remote, Some(Path::new(local)), cwd)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks that the local pattern `pattern` matches something.
fn pattern_source(cwd: &Path, pattern: &str) -> Result<(), ClientError> {
    if local_glob(&expand_home(pattern).to_string_lossy(), cwd)?.is_empty() {
        return Err(ClientError::NotAsTyped(format!(
            "no match for {}",
            escape(pattern)
        )));
    }
    Ok(())
}

/// Checks that `local` (as typed, relative to `cwd`) is a file to upload, or
/// a folder when `recursive`.
pub(super) fn upload_source(cwd: &Path, local: &str, recursive: bool) -> Result<(), ClientError> {
    let path = cwd.join(expand_home(local));
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() && !recursive => Err(ClientError::NotAsTyped(format!(
            "{} is a folder: use put -r to upload it with everything in it",
            escape(local)
        ))),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Err(ClientError::NotAsTyped(format!(
            "no such local file {}",
            escape(local)
        ))),
        Err(err) => Err(local_io(&path, err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::parse_line;

    fn check(line: &str, cwd: &Path) -> Result<(), String> {
        check_local_names(&parse_line(line).unwrap().unwrap(), cwd).map_err(|e| e.to_string())
    }

    #[test]
    fn every_upload_form_names_a_missing_local_file() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        std::fs::write(cwd.join("here.txt"), b"x").unwrap();
        std::fs::create_dir(cwd.join("folder")).unwrap();
        for line in [
            "put missing.txt",
            "put missing.txt docs/",
            "put -r missing.txt docs",
            "stor missing.txt",
            "reput missing.txt",
            "put -c missing.txt",
            "mput here.txt missing.txt",
        ] {
            assert_eq!(
                check(line, cwd),
                Err("no such local file missing.txt".into()),
                "{line}"
            );
        }
        assert_eq!(check("mput 'none*'", cwd), Err("no match for none*".into()));
        assert_eq!(
            check("put folder", cwd),
            Err("folder is a folder: use put -r to upload it with everything in it".into())
        );
        for line in [
            "put here.txt",
            "put -r folder",
            "mput -r 'fo*' here.txt",
            "ls",
        ] {
            assert_eq!(check(line, cwd), Ok(()), "{line}");
        }
    }

    #[test]
    fn a_missing_local_folder_with_a_slash_is_an_error_before_any_download() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        std::fs::create_dir(cwd.join("there")).unwrap();
        for line in [
            "get a.txt nowhere/",
            "reget a.txt nowhere/",
            "get -r docs nowhere/",
        ] {
            let err = check(line, cwd).unwrap_err();
            assert!(
                err.starts_with("no such local folder ") && err.ends_with("nowhere/"),
                "{line}: {err}"
            );
        }
        for line in [
            "get a.txt there",
            "get a.txt there/",
            "get a.txt new.txt",
            "get a.txt",
        ] {
            assert_eq!(check(line, cwd), Ok(()), "{line}");
        }
    }
}
