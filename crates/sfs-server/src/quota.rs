//! Storage limits: the largest file an upload may announce, per-user byte and file
//! quotas, and the disk's own free space, all checked when a STOR opens.
//!
//! A user's use is what their home holds, walked from the file system when it is
//! needed (a STOR opening while a quota is set, or QUOT), plus the uploads in
//! progress to that home, which hold a [`Reservation`] of their announced size
//! from open until commit or failure. The file system stays the one truth for
//! stored bytes (a DELE, a RENAME or an admin's cleanup counts at once, with no
//! counter to drift); the reservations live here, under one lock.
//!
//! An upload counts against the home's OWNER (an upload into a share counts for
//! the sharer, not the uploader); replacing a file counts the difference in size
//! and no new file.
//!
//! A reservation is released only after its commit renamed the file into place,
//! and a walk that raced with a release is taken again (the per-owner generation
//! below), so a file is never counted neither as stored nor as reserved.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use sfs_proto::control::{ErrorCode, Reply};

use crate::accounts::Username;
use crate::store::{Home, StoreError, StoredUsage};

/// Storage limits; `None` is no limit. All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageLimits {
    /// Bytes a user's home may hold (uploads in progress count).
    pub quota_bytes: Option<u64>,
    /// Regular files a user's home may hold (uploads in progress count).
    pub quota_files: Option<u64>,
    /// The largest size a STOR may announce, in bytes.
    pub max_file_size: Option<u64>,
}

/// What one owner's uploads in progress hold.
#[derive(Debug, Default)]
struct Reserved {
    bytes: u64,
    /// Uploads that will create a new file.
    files: u64,
    /// Bumped by every release, so a walk that overlapped one is not trusted.
    generation: u64,
}

type Table = Arc<Mutex<HashMap<Username, Reserved>>>;

/// The storage limits and the reservations of uploads in progress, server-wide.
#[derive(Debug, Default)]
pub struct Usage {
    limits: StorageLimits,
    reserved: Table,
}

/// A user's use and limits, the answer to QUOT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// What the home holds.
    pub stored: StoredUsage,
    /// Bytes reserved by uploads in progress.
    pub reserved_bytes: u64,
    /// The limits in force.
    pub limits: StorageLimits,
}

impl Report {
    /// The `Quota` reply (0 for "no limit").
    pub fn reply(&self) -> Reply {
        Reply::Quota {
            used_bytes: self.stored.bytes,
            limit_bytes: self.limits.quota_bytes.unwrap_or(0),
            used_files: self.stored.files,
            limit_files: self.limits.quota_files.unwrap_or(0),
            reserved_bytes: self.reserved_bytes,
            max_file_size: self.limits.max_file_size.unwrap_or(0),
        }
    }
}

/// The space an upload holds until it ends; dropping it releases the space.
#[derive(Debug)]
pub struct Reservation {
    table: Table,
    owner: Username,
    bytes: u64,
    files: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        if let Some(reserved) = table.get_mut(&self.owner) {
            reserved.bytes = reserved.bytes.saturating_sub(self.bytes);
            reserved.files = reserved.files.saturating_sub(self.files);
            reserved.generation += 1;
        }
    }
}

/// Why an upload may not start.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    /// Over the largest file size.
    #[error("the file is too large: the largest upload this server takes is {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Over the byte quota of the owner of the target.
    #[error("quota exceeded: {used} of {limit} bytes in use, {asked} more asked")]
    QuotaBytes {
        /// Bytes stored and reserved.
        used: u64,
        /// The quota.
        limit: u64,
        /// What the upload adds.
        asked: u64,
    },
    /// Over the file quota of the owner of the target.
    #[error("quota exceeded: {used} of {limit} files in use")]
    QuotaFiles {
        /// Files stored and reserved.
        used: u64,
        /// The quota.
        limit: u64,
    },
    /// More than the file system has free.
    #[error("no space left: the server has {free} bytes free, {asked} asked")]
    NoSpace {
        /// Free bytes, less what uploads in progress reserved.
        free: u64,
        /// What the upload adds.
        asked: u64,
    },
    /// The home could not be walked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LimitError {
    /// The error code for the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TooLarge { .. } => ErrorCode::TOO_LARGE,
            Self::QuotaBytes { .. } | Self::QuotaFiles { .. } => ErrorCode::QUOTA_EXCEEDED,
            Self::NoSpace { .. } => ErrorCode::NO_SPACE,
            Self::Store(_) => ErrorCode::INTERNAL,
        }
    }
}

fn lock(table: &Table) -> MutexGuard<'_, HashMap<Username, Reserved>> {
    table.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Usage {
    /// No reservations yet, with `limits`.
    pub fn new(limits: StorageLimits) -> Self {
        Self {
            limits,
            reserved: Table::default(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> StorageLimits {
        self.limits
    }

    /// Reserves room for an upload of `size` bytes into `owner`'s `home`, which
    /// replaces a file of `replaced` bytes (`None`: makes a new file). Blocking
    /// (walks the home when a quota is set, and asks the file system for its free
    /// space).
    ///
    /// # Errors
    /// [`LimitError`] when the upload is over a limit, or the home cannot be read.
    pub fn reserve(
        &self,
        owner: &Username,
        home: &Home,
        size: u64,
        replaced: Option<u64>,
    ) -> Result<Reservation, LimitError> {
        if let Some(limit) = self.limits.max_file_size.filter(|limit| size > *limit) {
            return Err(LimitError::TooLarge { limit });
        }
        // The file system holds the old file until the rename, so the upload needs
        // its full size free; the quota counts the difference.
        let bytes = size.saturating_sub(replaced.unwrap_or(0));
        let files = u64::from(replaced.is_none());
        let quota = self.limits.quota_bytes.is_some() || self.limits.quota_files.is_some();
        let mut attempts = 0;
        loop {
            attempts += 1;
            // After two walks that raced with a commit, walk holding the lock: no
            // release can happen meanwhile (a release needs the lock).
            let held = (attempts > 2).then(|| lock(&self.reserved));
            let (stored, generation) = if quota {
                let generation = match &held {
                    Some(table) => table.get(owner).map_or(0, |r| r.generation),
                    None => self.generation(owner),
                };
                (home.usage()?, generation)
            } else {
                (StoredUsage::default(), 0)
            };
            let free = home.free_space()?;
            let mut table = held.unwrap_or_else(|| lock(&self.reserved));
            let total_reserved: u64 = table.values().map(|r| r.bytes).sum();
            // Entries stay once made (one per user who ever uploaded), so a
            // generation never goes back to 0 under a walk.
            let reserved = table.entry(owner.clone()).or_default();
            if quota && reserved.generation != generation {
                continue;
            }
            // Conservative: bytes already written by uploads in progress are both
            // gone from the free space and still reserved.
            let available = free.saturating_sub(total_reserved);
            if size > available {
                return Err(LimitError::NoSpace {
                    free: available,
                    asked: size,
                });
            }
            if let Some(limit) = self.limits.quota_bytes {
                let used = stored.bytes.saturating_add(reserved.bytes);
                if used.saturating_add(bytes) > limit {
                    return Err(LimitError::QuotaBytes {
                        used,
                        limit,
                        asked: bytes,
                    });
                }
            }
            if let Some(limit) = self.limits.quota_files {
                let used = stored.files.saturating_add(reserved.files);
                if used.saturating_add(files) > limit {
                    return Err(LimitError::QuotaFiles { used, limit });
                }
            }
            reserved.bytes += bytes;
            reserved.files += files;
            return Ok(Reservation {
                table: self.reserved.clone(),
                owner: owner.clone(),
                bytes,
                files,
            });
        }
    }

    /// What `owner`'s `home` holds and reserves, with the limits. Blocking.
    ///
    /// # Errors
    /// The home cannot be walked.
    pub fn report(&self, owner: &Username, home: &Home) -> Result<Report, StoreError> {
        let stored = home.usage()?;
        let reserved_bytes = lock(&self.reserved).get(owner).map_or(0, |r| r.bytes);
        Ok(Report {
            stored,
            reserved_bytes,
            limits: self.limits,
        })
    }

    fn generation(&self, owner: &Username) -> u64 {
        lock(&self.reserved).get(owner).map_or(0, |r| r.generation)
    }
}
