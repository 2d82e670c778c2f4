//! An in-memory [`Transport`] pair, so whole client/server sessions run in host tests.
//!
//! Messages keep their boundaries and their stream ids, and arrive in the order
//! they were sent (a stricter order than SCTP's per-stream one, which every
//! correct receiver accepts). Each direction holds a bounded number of messages,
//! so a sender that outruns its receiver waits, as on a full socket buffer.
//! Dropping or shutting down one end makes the other's `recv` return
//! [`TransportError::Closed`] once it has read everything.

use std::net::SocketAddr;

use sfs_proto::session::StreamCounts;
use tokio::sync::{mpsc, Mutex};

use crate::transport::{Connector, PathStatus, Transport, TransportError, TransportEvent};

/// How many messages each direction buffers before `send` waits.
const QUEUE_MESSAGES: usize = 64;

/// One message in flight: its stream id and bytes.
type Frame = (u16, Vec<u8>);

/// One end of an in-memory pair.
#[derive(Debug)]
pub struct MemoryTransport {
    streams: StreamCounts,
    outgoing: std::sync::Mutex<Option<mpsc::Sender<Frame>>>,
    incoming: Mutex<mpsc::Receiver<Frame>>,
    /// What [`Transport::peer_addrs`] reports (none unless set, for tests of
    /// per-source limits).
    peers: Vec<SocketAddr>,
}

/// Two connected ends: `(client, server)`, each with `streams` streams both ways.
pub fn memory_pair(streams: u16) -> (MemoryTransport, MemoryTransport) {
    let (to_server, from_client) = mpsc::channel(QUEUE_MESSAGES);
    let (to_client, from_server) = mpsc::channel(QUEUE_MESSAGES);
    let counts = StreamCounts {
        outbound: streams,
        inbound: streams,
    };
    let end = |tx, rx| MemoryTransport {
        streams: counts,
        outgoing: std::sync::Mutex::new(Some(tx)),
        incoming: Mutex::new(rx),
        peers: Vec::new(),
    };
    (end(to_server, from_server), end(to_client, from_client))
}

impl MemoryTransport {
    /// This end, reporting `peers` as the other end's addresses.
    #[must_use]
    pub fn with_peer_addrs(mut self, peers: Vec<SocketAddr>) -> Self {
        self.peers = peers;
        self
    }

    fn sender(&self) -> Option<mpsc::Sender<Frame>> {
        // A poisoned lock only means another sender panicked; the channel is fine.
        let guard = self.outgoing.lock().unwrap_or_else(|p| p.into_inner());
        guard.clone()
    }
}

impl Transport for MemoryTransport {
    fn streams(&self) -> StreamCounts {
        self.streams
    }

    async fn send(&self, stream: u16, data: &[u8]) -> Result<(), TransportError> {
        if stream >= self.streams.outbound {
            return Err(TransportError::NoSuchStream {
                stream,
                outbound: self.streams.outbound,
            });
        }
        let sender = self.sender().ok_or(TransportError::Closed)?;
        sender
            .send((stream, data.to_vec()))
            .await
            .map_err(|_| TransportError::Closed)
    }

    async fn recv(&self) -> Result<TransportEvent, TransportError> {
        let mut incoming = self.incoming.lock().await;
        match incoming.recv().await {
            Some((stream, data)) => Ok(TransportEvent::Message { stream, data }),
            None => Err(TransportError::Closed),
        }
    }

    fn paths(&self) -> Vec<PathStatus> {
        Vec::new()
    }

    fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.peers.clone()
    }

    fn shutdown(&self) {
        let mut guard = self.outgoing.lock().unwrap_or_else(|p| p.into_inner());
        guard.take();
    }
}

/// A [`Connector`] for tests: each `connect` makes a new memory pair of
/// `streams` streams, hands its far end to the `accept` callback (a test spawns
/// the server's connection handler on it) and returns the near end.
pub struct MemoryConnector {
    streams: u16,
    accept: Box<dyn Fn(MemoryTransport) + Send + Sync>,
}

impl std::fmt::Debug for MemoryConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryConnector")
            .field("streams", &self.streams)
            .finish_non_exhaustive()
    }
}

impl MemoryConnector {
    /// A connector whose associations have `streams` streams each way.
    pub fn new(streams: u16, accept: impl Fn(MemoryTransport) + Send + Sync + 'static) -> Self {
        Self {
            streams,
            accept: Box::new(accept),
        }
    }
}

impl Connector for MemoryConnector {
    type Transport = MemoryTransport;

    async fn connect(&self) -> Result<MemoryTransport, TransportError> {
        let (near, far) = memory_pair(self.streams);
        (self.accept)(far);
        Ok(near)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_keep_stream_ids_boundaries_and_order() {
        let (client, server) = memory_pair(4);
        client.send(0, b"hello").await.unwrap();
        client.send(3, b"x").await.unwrap();
        assert_eq!(
            server.recv().await.unwrap(),
            TransportEvent::Message {
                stream: 0,
                data: b"hello".to_vec()
            }
        );
        assert_eq!(
            server.recv().await.unwrap(),
            TransportEvent::Message {
                stream: 3,
                data: b"x".to_vec()
            }
        );
    }

    #[tokio::test]
    async fn a_stream_that_was_not_negotiated_is_an_error() {
        let (client, _server) = memory_pair(4);
        assert!(matches!(
            client.send(4, b"x").await,
            Err(TransportError::NoSuchStream {
                stream: 4,
                outbound: 4
            })
        ));
    }

    #[tokio::test]
    async fn shutdown_delivers_what_was_queued_then_closes() {
        let (client, server) = memory_pair(2);
        client.send(1, b"last").await.unwrap();
        client.shutdown();
        assert!(client.send(1, b"late").await.is_err());
        assert!(matches!(
            server.recv().await,
            Ok(TransportEvent::Message { .. })
        ));
        assert!(matches!(server.recv().await, Err(TransportError::Closed)));
    }

    #[tokio::test]
    async fn dropping_an_end_closes_the_other() {
        let (client, server) = memory_pair(2);
        drop(client);
        assert!(matches!(server.recv().await, Err(TransportError::Closed)));
        assert!(matches!(
            server.send(0, b"x").await,
            Err(TransportError::Closed)
        ));
    }
}
