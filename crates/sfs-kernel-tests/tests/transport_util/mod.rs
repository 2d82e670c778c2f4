//! Helpers shared by the `transport_*` kernel tests of the `sfs-sctp` crate.

#![allow(dead_code)] // each test file uses its own subset

use std::net::SocketAddr;
use std::time::Duration;

use sfs_sctp::{Message, Notification, Received, SctpAssociation, SctpConfig, SctpListener};

/// How long any single wait in these tests may take before the test fails.
pub const STEP: Duration = Duration::from_secs(10);

pub fn addr(s: &str) -> SocketAddr {
    s.parse().expect("a literal socket address")
}

/// A config asking for `streams` streams each way.
pub fn config_with_streams(streams: u16) -> SctpConfig {
    let mut config = SctpConfig::default();
    config.outbound_streams = streams;
    config.max_inbound_streams = streams;
    config
}

/// A listener on 127.0.0.1 and 127.0.0.2 (one kernel-chosen port), and its addresses.
pub fn two_address_listener(config: &SctpConfig) -> (SctpListener, Vec<SocketAddr>) {
    let listener = SctpListener::bind(&[addr("127.0.0.1:0"), addr("127.0.0.2:0")], config)
        .expect("bind 127.0.0.1 and 127.0.0.2");
    let addrs = listener.local_addrs().expect("listener addresses");
    (listener, addrs)
}

/// A connected (client, server) pair over the listener's addresses.
pub async fn pair(
    listener: &SctpListener,
    addrs: &[SocketAddr],
    config: &SctpConfig,
) -> (SctpAssociation, SctpAssociation) {
    let (client, server) = tokio::join!(
        SctpAssociation::connect(addrs, None, config, STEP),
        tokio::time::timeout(STEP, listener.accept())
    );
    let client = client.expect("connect");
    let server = server.expect("accept in time").expect("accept");
    (client, server)
}

/// The next message, skipping (and returning) notifications seen before it.
pub async fn next_message(assoc: &SctpAssociation) -> (Message, Vec<Notification>) {
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(STEP, assoc.recv())
            .await
            .expect("a message in time")
            .expect("recv");
        match event {
            Received::Message(message) => return (message, seen),
            Received::Notification(n) => seen.push(n),
        }
    }
}

/// The next notification matching `pred`, within `limit`.
pub async fn wait_notification(
    assoc: &SctpAssociation,
    limit: Duration,
    mut pred: impl FnMut(&Notification) -> bool,
) -> Result<Notification, String> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, assoc.recv()).await {
            Err(_) => return Err(format!("no matching notification within {limit:?}")),
            Ok(Err(err)) => return Err(format!("recv failed: {err}")),
            Ok(Ok(Received::Notification(n))) if pred(&n) => return Ok(n),
            Ok(Ok(_)) => {}
        }
    }
}

/// The number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}
