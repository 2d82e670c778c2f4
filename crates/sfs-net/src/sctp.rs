//! [`Transport`] for a kernel SCTP association.

use std::net::SocketAddr;

use sfs_proto::session::StreamCounts;
use sfs_sctp::{AssocState, Event, Notification, PeerAddrState, SctpAssociation};

use crate::transport::{
    PathChange, PathEvent, PathStatus, Transport, TransportError, TransportEvent, PPID_CONTROL,
    PPID_DATA,
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
                Event::Message(msg) => {
                    return Ok(TransportEvent::Message {
                        stream: msg.stream,
                        data: msg.data,
                    })
                }
                Event::Notification(notification) => {
                    if let Some(event) = translate(notification) {
                        return Ok(event);
                    }
                }
            }
        }
    }

    fn paths(&self) -> Vec<PathStatus> {
        let primary = self.primary_addr().ok();
        // A path list that cannot be read (the association is going away) is empty.
        self.paths()
            .unwrap_or_default()
            .into_iter()
            .map(|info| PathStatus {
                addr: info.addr,
                state: info.state,
                srtt: info.srtt,
                rto: info.rto,
                cwnd: info.cwnd,
                mtu: info.mtu,
                primary: Some(info.addr) == primary,
            })
            .collect()
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
        Notification::PeerAddrChange(change) => {
            let change_kind = match change.state {
                PeerAddrState::Available => PathChange::Available,
                PeerAddrState::Unreachable => PathChange::Failed,
                PeerAddrState::Removed => PathChange::Removed,
                PeerAddrState::Added => PathChange::Added,
                PeerAddrState::MadePrimary => PathChange::MadePrimary,
                PeerAddrState::Confirmed => PathChange::Confirmed,
                PeerAddrState::PotentiallyFailed => PathChange::PotentiallyFailed,
                PeerAddrState::Unknown(raw) => {
                    return Some(TransportEvent::Notice(format!(
                        "peer address {:?} changed to unknown state {raw}",
                        change.addr
                    )))
                }
            };
            Some(TransportEvent::Path(PathEvent {
                addr: change.addr,
                change: change_kind,
            }))
        }
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
        Notification::Shutdown | Notification::SenderDry | Notification::Other { .. } => None,
    }
}
