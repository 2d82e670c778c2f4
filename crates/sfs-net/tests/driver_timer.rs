//! The session's timer is an input of its own: it fires while the embedder has
//! paused receiving (a server whose upload buffer is full), and messages queued
//! with `Driver::queue` go out meanwhile.

use std::sync::Arc;
use std::time::Duration;

use sfs_net::memory::memory_pair;
use sfs_net::{now, Driver, Input, Receive, Transport};
use sfs_proto::session::{ServerSession, SessionConfig};
use sfs_proto::testing::TestPki;

#[tokio::test(start_paused = true)]
async fn timeout_fires_while_receiving_is_paused() {
    let pki = TestPki::new(&["localhost"]);
    let (client_end, server_end) = memory_pair(3);
    let mut config = SessionConfig::new(server_end.streams());
    config.handshake_timeout = Duration::from_secs(5);
    let mut session = ServerSession::new(pki.server_config(), config, now()).unwrap();
    let mut driver = Driver::new(Arc::new(server_end));
    // The peer has sent something the server will not read while paused.
    client_end.send(0, b"not read while paused").await.unwrap();

    let started = tokio::time::Instant::now();
    let mut inputs = 0;
    while !session.is_closed() {
        driver.queue_from(&mut session);
        let input = tokio::time::timeout(
            Duration::from_secs(60),
            driver.next_io(&mut session, Receive::Paused),
        )
        .await
        .expect("the handshake timer never fired");
        assert!(matches!(input, Input::Handled), "{input:?}");
        inputs += 1;
        assert!(inputs < 100, "no progress");
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(6),
        "closed after {waited:?}"
    );
}
