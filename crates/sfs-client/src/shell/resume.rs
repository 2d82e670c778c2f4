//! `reget` and `reput`: sftp's names for `get -c` and `put -c`, which continue
//! an interrupted transfer (the `.part` here, or the partial upload the server
//! kept) once its first bytes are checked, and start from the beginning, saying
//! so, when the file changed since.

use sfs_net::Transport;

use super::Shell;
use crate::connection::ClientError;

impl<T: Transport> Shell<T> {
    /// `reget REMOTE [LOCAL]`: `get -c`.
    pub(crate) async fn reget(
        &mut self,
        remote: String,
        local: Option<String>,
    ) -> Result<(), ClientError> {
        self.get(true, false, false, remote, local).await
    }

    /// `reput LOCAL [REMOTE]`: `put -c`.
    pub(crate) async fn reput(
        &mut self,
        local: String,
        remote: Option<String>,
    ) -> Result<(), ClientError> {
        self.put(true, false, false, local, remote).await
    }
}
