//! `df` (QUOT): the user's storage use and the server's limits.

use sfs_net::Transport;
use sfs_proto::control::{Command as Wire, Reply};

use super::{human_bytes, Shell};
use crate::connection::ClientError;

impl<T: Transport> Shell<T> {
    /// `df`: storage use, quotas and the largest file the server accepts.
    pub(crate) async fn quota(&mut self) -> Result<(), ClientError> {
        for line in quota_lines(&self.single(Wire::Quot).await?) {
            self.line(line)?;
        }
        Ok(())
    }
}

/// What `df` prints for a `Quota` reply (nothing for another reply).
fn quota_lines(reply: &Reply) -> Vec<String> {
    let Reply::Quota {
        used_bytes,
        limit_bytes,
        used_files,
        limit_files,
        reserved_bytes,
        max_file_size,
    } = *reply
    else {
        return Vec::new();
    };
    let of = |used: String, limit: u64, shown: fn(u64) -> String| match limit {
        0 => format!("{used} (no quota)"),
        limit => format!("{used} of {}", shown(limit)),
    };
    let mut lines = vec![
        format!(
            "bytes: {}",
            of(human_bytes(used_bytes), limit_bytes, human_bytes)
        ),
        format!(
            "files: {}",
            of(used_files.to_string(), limit_files, |n| n.to_string())
        ),
    ];
    if reserved_bytes > 0 {
        lines.push(format!(
            "uploads in progress: {}",
            human_bytes(reserved_bytes)
        ));
    }
    lines.push(match max_file_size {
        0 => "largest file: no limit".to_owned(),
        size => format!("largest file: {}", human_bytes(size)),
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_lines_show_use_and_limits() {
        let reply = Reply::Quota {
            used_bytes: 1536,
            limit_bytes: 1 << 20,
            used_files: 3,
            limit_files: 0,
            reserved_bytes: 0,
            max_file_size: 0,
        };
        assert_eq!(
            quota_lines(&reply),
            [
                "bytes: 1.50 KiB of 1.00 MiB",
                "files: 3 (no quota)",
                "largest file: no limit"
            ]
        );
    }
}
