//! `reget` and `reput`: `get` and `put` that continue an interrupted transfer
//! (the `.part` here, or the partial upload the server kept) once its first
//! bytes are checked, and start from the beginning, saying so, when the file
//! changed since.

use std::path::Path;

use sfs_net::Transport;
use sfs_proto::control::ErrorCode;

use super::Shell;
use crate::connection::{ClientError, TransferSpec};
use crate::local::download_destination;

impl<T: Transport> Shell<T> {
    /// `reget REMOTE [LOCAL]`.
    pub(crate) async fn reget(
        &mut self,
        remote: String,
        local: Option<String>,
    ) -> Result<(), ClientError> {
        let dest = download_destination(&remote, local.as_deref().map(Path::new), &self.local_dir)?;
        self.transfer(vec![TransferSpec::Download {
            remote,
            dest,
            resume: true,
        }])
        .await
    }

    /// `reput LOCAL [REMOTE]`.
    pub(crate) async fn reput(
        &mut self,
        local: String,
        remote: Option<String>,
    ) -> Result<(), ClientError> {
        let (mut spec, folder) = self.upload_into_folders(&local, remote).await?;
        if let TransferSpec::Upload { resume, .. } = &mut spec {
            *resume = true;
        }
        match (self.transfer(vec![spec]).await, folder) {
            (Err(ClientError::Server { code, .. }), Some(folder))
                if code == ErrorCode::NOT_FOUND =>
            {
                Err(ClientError::NoRemoteFolder(folder))
            }
            (result, _) => result,
        }
    }
}
