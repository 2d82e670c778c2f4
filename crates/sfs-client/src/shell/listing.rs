//! The commands that show remote things: `size`, `stat`, `digest`,
//! `shared`, `shares`, and how entries are printed (`ls` is with the patterns).

use sfs_net::Transport;
use sfs_proto::control::{Command as Wire, Entry, EntryKind, Reply, ShareEntry};

use super::{unexpected, Shell};
use crate::connection::{hex, ClientError};
use crate::display::escape;

impl<T: Transport> Shell<T> {
    /// `size PATH`.
    pub(crate) async fn size(&mut self, path: String) -> Result<(), ClientError> {
        match self.single(Wire::Size { path }).await? {
            Reply::Size { size } => self.line(size.to_string()),
            other => Err(unexpected(&other)),
        }
    }

    /// `stat PATH`.
    pub(crate) async fn stat(&mut self, path: String) -> Result<(), ClientError> {
        match self.single(Wire::Stat { path }).await? {
            Reply::Stat { entry } => self.line(format_entry(&entry)),
            other => Err(unexpected(&other)),
        }
    }

    /// `digest PATH`.
    pub(crate) async fn digest(&mut self, path: String) -> Result<(), ClientError> {
        match self.single(Wire::Digest { path: path.clone() }).await? {
            Reply::Digest { sha256, .. } => {
                self.line(format!("{}  {}", hex(&sha256), escape(&path)))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// `shared`: what others have shared with this user.
    pub(crate) async fn shared(&mut self) -> Result<(), ClientError> {
        let replies = self.connection.request(Wire::Shwm).await?;
        for share in shares(&replies) {
            self.line(format!(
                "{}  {}  from {}",
                share.rights,
                escape(&format!(
                    "/shared/{}/{}",
                    share.owner,
                    share.path.trim_start_matches('/')
                )),
                escape(&share.owner)
            ))?;
        }
        Ok(())
    }

    /// `shares`: what this user has shared with others.
    pub(crate) async fn shares(&mut self) -> Result<(), ClientError> {
        let replies = self.connection.request(Wire::SharedByMe).await?;
        for share in shares(&replies) {
            self.line(format!(
                "{}  {}  to {}",
                share.rights,
                escape(&share.path),
                escape(&share.grantee)
            ))?;
        }
        Ok(())
    }
}

/// The entries of a LIST answer, sorted by name: the server sorts only within
/// each part of a large listing.
pub(super) fn listing(replies: &[Reply]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = replies
        .iter()
        .flat_map(|r| match r {
            Reply::Listing { entries, .. } => entries.clone(),
            Reply::Stat { entry } => vec![entry.clone()],
            _ => Vec::new(),
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

fn shares(replies: &[Reply]) -> Vec<ShareEntry> {
    replies
        .iter()
        .flat_map(|r| match r {
            Reply::Shares { entries, .. } => entries.clone(),
            _ => Vec::new(),
        })
        .collect()
}

/// One listing line: kind and mode, size, UTC modification time, escaped name.
pub fn format_entry(entry: &Entry) -> String {
    long_entry(entry, false)
}

/// [`format_entry`], with the size in binary units (`1.50 MiB`) when `human`.
pub(super) fn long_entry(entry: &Entry, human: bool) -> String {
    let kind = match entry.kind {
        EntryKind::File => '-',
        EntryKind::Dir => 'd',
        EntryKind::Symlink => 'l',
        EntryKind::Other => '?',
    };
    let mut mode = String::with_capacity(9);
    for shift in [6u32, 3, 0] {
        let bits = (entry.mode >> shift) & 0o7;
        mode.push(if bits & 4 != 0 { 'r' } else { '-' });
        mode.push(if bits & 2 != 0 { 'w' } else { '-' });
        mode.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    let suffix = if entry.kind == EntryKind::Dir {
        "/"
    } else {
        ""
    };
    format!(
        "{kind}{mode} {:>12} {} {}{suffix}",
        if human {
            human_bytes(entry.size)
        } else {
            entry.size.to_string()
        },
        // 0 is the protocol's "unknown" (the share tree's synthesized folders).
        if entry.mtime == 0 {
            format!("{:<16}", "-")
        } else {
            utc_time(entry.mtime)
        },
        escape(&entry.name)
    )
}

/// `YYYY-MM-DD HH:MM` in UTC; `-` (padded to the same width) for a time outside
/// the years -9999 to 9999, which only a broken or hostile server sends.
fn utc_time(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(stamp) => stamp.strftime("%Y-%m-%d %H:%M").to_string(),
        Err(_) => format!("{:<16}", "-"),
    }
}

/// `1.50 MiB` and the like (binary units).
pub fn human_bytes(bytes: u64) -> String {
    indicatif::BinaryBytes(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(utc_time(0), "1970-01-01 00:00");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_time(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(utc_time(-86_400), "1969-12-31 00:00");
        assert_eq!(utc_time(i64::MAX), format!("{:<16}", "-"));
    }

    #[test]
    fn entries_show_kind_mode_and_escaped_names() {
        let entry = Entry {
            name: "a\x1b[2J".into(),
            kind: EntryKind::Dir,
            size: 4096,
            mtime: 0,
            mode: 0o750,
        };
        let line = format_entry(&entry);
        assert!(line.starts_with("drwxr-x--- "), "{line}");
        assert!(line.ends_with("a\\x1b[2J/"), "{line}");
        assert!(!line.contains('\x1b'));
        assert!(
            line.contains(" 4096 -                a"),
            "unknown time: {line}"
        );
        let dated = format_entry(&Entry {
            mtime: 1_700_000_000,
            ..entry
        });
        assert!(dated.contains(" 4096 2023-11-14 22:13 a"), "{dated}");
    }

    #[test]
    fn byte_counts_read_naturally() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(3 << 20), "3.00 MiB");
    }
}
