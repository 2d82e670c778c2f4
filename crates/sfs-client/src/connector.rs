//! Opening further kernel SCTP associations to the server a session already
//! reached: the extra data associations of `--associations`.
//!
//! Each one is set up exactly as the first: the same peer addresses (so it is
//! multi-homed like the first), the same local addresses, the same socket
//! options and stream counts requested, the same connect timeout.

use std::net::SocketAddr;
use std::time::Duration;

use sfs_net::{Connector, TransportError};
use sfs_sctp::{SctpAssociation, SctpConfig};

/// Connects new associations to one server (module docs).
#[derive(Debug, Clone)]
pub struct SctpConnector {
    peers: Vec<SocketAddr>,
    local: Option<Vec<SocketAddr>>,
    config: SctpConfig,
    timeout: Duration,
}

impl SctpConnector {
    /// A connector to `peers` (the server's addresses, as for the first
    /// association), binding `local` when given, with `config`, giving up on
    /// each association after `timeout`.
    pub fn new(
        peers: Vec<SocketAddr>,
        local: Option<Vec<SocketAddr>>,
        config: SctpConfig,
        timeout: Duration,
    ) -> Self {
        Self {
            peers,
            local,
            config,
            timeout,
        }
    }

    /// Connects one association: what [`Connector::connect`] does, usable
    /// for the first association too, so every association is set up alike.
    ///
    /// # Errors
    ///
    /// Those of [`SctpAssociation::connect`]: no SCTP in the kernel, the
    /// timeout, a refused or failed association.
    ///
    /// # Cancel safety
    ///
    /// Safe to drop: the association being set up is abandoned.
    pub async fn connect_sctp(&self) -> Result<SctpAssociation, sfs_sctp::Error> {
        SctpAssociation::connect(
            &self.peers,
            self.local.as_deref(),
            &self.config,
            self.timeout,
        )
        .await
    }
}

impl Connector for SctpConnector {
    type Transport = SctpAssociation;

    async fn connect(&self) -> Result<SctpAssociation, TransportError> {
        self.connect_sctp().await.map_err(TransportError::from)
    }
}
