//! [`Transport`] for a kernel SCTP association.

use std::net::SocketAddr;

use sfs_proto::session::StreamCounts;
use sfs_sctp::{AssocState, Notification, PeerAddrState, Received, SctpAssociation};

use crate::transport::{
    PathEvent, PathStatus, Transport, TransportError, TransportEvent, PPID_CONTROL, PPID_DATA,
};

impl Transport for SctpAssociation {
    fn streams(&self) -> StreamCounts {
        StreamCounts {
            outbound: self.outbound_streams(),
            inbound: self.inbound_streams(),
        }
    }

    async fn send(&self, stream: u16, data: &[u8]) -> Result<(), TransportError> {
        let ppid = if stream == 0 { PPID_CONTROL } else { PPID_DATA };
        SctpAssociation::send(self, stream, ppid, false, data)
            .await
            .map_err(TransportError::from)
    }

    async fn recv(&self) -> Result<TransportEvent, TransportError> {
        loop {
            match SctpAssociation::recv(self).await? {
                Received::Message(msg) => {
                    return Ok(TransportEvent::Message {
                        stream: msg.stream,
                        data: msg.data,
                    })
                }
                Received::Notification(notification) => {
                    if let Some(event) = translate(notification) {
                        return Ok(event);
                    }
                }
            }
        }
    }

    fn paths(&self) -> Vec<PathStatus> {
        // A path list that cannot be read (the association is going away) is empty.
        SctpAssociation::paths(self).unwrap_or_default()
    }

    fn peer_addrs(&self) -> Vec<SocketAddr> {
        SctpAssociation::peer_addrs(self).unwrap_or_default()
    }

    fn shutdown(&self) {
        if let Err(err) = SctpAssociation::shutdown(self) {
            log::debug!("shutdown: {err}");
        }
    }
}

/// Turns a notification into what a session's driver cares about. Terminal
/// association changes are dropped here: `recv` reports them as its error next.
fn translate(notification: Notification) -> Option<TransportEvent> {
    match notification {
        Notification::PeerAddrChange(change) => match change.state {
            // A state the session cannot act on is only worth a log line.
            PeerAddrState::Unknown(raw) => Some(TransportEvent::Notice(format!(
                "peer address {:?} changed to unknown state {raw}",
                change.addr
            ))),
            state => Some(TransportEvent::Path(PathEvent::new(change.addr, state))),
        },
        Notification::AssocChange(change) => match change.state {
            AssocState::CommUp => None,
            AssocState::Restart => Some(TransportEvent::Notice(
                "the peer restarted the association".to_owned(),
            )),
            _ => None,
        },
        Notification::SendFailed(failed) => Some(TransportEvent::Notice(format!(
            "a message on stream {} could not be delivered (error {})",
            failed.stream, failed.error
        ))),
        Notification::RemoteError { cause } => Some(TransportEvent::Notice(format!(
            "the peer reported SCTP error cause {cause}"
        ))),
        Notification::PartialDeliveryAborted { stream, .. } => Some(TransportEvent::Notice(
            format!("delivery of a message on stream {stream} was aborted"),
        )),
        // Shutdown, SenderDry, Other and any kind added later.
        _ => None,
    }
}
