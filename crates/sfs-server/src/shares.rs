//! Sharing: the share table and the virtual `/shared` tree live in
//! [`sfs_state::shares`] (re-exported here); this module adds what joins them to the
//! file store.

pub use sfs_state::shares::*;

use crate::store::{PathError, StoreError};

/// Either half of a file command's failure: the share check or the store operation.
/// Its text is fit to send to the client.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The share tree refused (no share, missing right, read-only folder).
    #[error(transparent)]
    Share(#[from] ShareError),
    /// The file operation failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<PathError> for AccessError {
    fn from(error: PathError) -> Self {
        Self::Store(error.into())
    }
}
