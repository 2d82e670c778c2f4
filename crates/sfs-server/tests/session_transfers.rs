//! Transfers through the connection handler: several at once, aborted and cut
//! uploads, timeouts on a paused clock, graceful shutdown, and the accept loop's
//! limits.

mod support;

use std::sync::Arc;
use std::time::Duration;

use sfs_net::memory::{memory_pair, MemoryTransport};
use sfs_proto::control::{Command, ErrorCode, Reply};
use sfs_server::context::SessionSettings;
use sfs_server::server::{self, ConnectionLimits, Listener};
use support::{code, pattern, Fixture, STREAMS};
use tokio::sync::{mpsc, Mutex};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_uploads_and_downloads_in_flight_at_once() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let files: Vec<Vec<u8>> = (0..4)
        .map(|i| pattern(400_000 + i * 1234, i as u8))
        .collect();
    let ids: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, data)| c.send_stor(&format!("f{i}"), data.clone()))
        .collect();
    // A LIST in between is answered while the uploads are running.
    let list = c.send(Command::List { path: "/".into() });
    for id in &ids {
        assert_eq!(c.reply(*id).await, Reply::Ok);
    }
    c.replies(list).await;
    assert!(
        c.streams_used.len() > 1,
        "chunks spread over streams: {:?}",
        c.streams_used
    );
    for (i, data) in files.iter().enumerate() {
        assert_eq!(
            &std::fs::read(fx.home("alice").join(format!("f{i}"))).unwrap(),
            data
        );
    }
    let ids: Vec<_> = (0..4).map(|i| c.send_retr(&format!("f{i}"), 0)).collect();
    for (id, data) in ids.into_iter().zip(&files) {
        assert_eq!(&c.download_result(id).await.unwrap(), data);
    }
    let log = fx.log();
    assert_eq!(log.matches("event=store result=ok").count(), 4, "{log}");
    assert_eq!(log.matches("event=retrieve result=ok").count(), 4, "{log}");
}

#[tokio::test]
async fn an_aborted_upload_keeps_the_old_file_and_the_session() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let old = pattern(10_000, 1);
    assert_eq!(c.upload("keep.bin", &old).await, Reply::Ok);

    let id = c.send_stor("keep.bin", pattern(1_000_000, 2));
    c.limit_upload(id, 200_000);
    while !c.stor_transfer.contains_key(&id) {
        c.step().await;
    }
    c.settle(Duration::from_millis(300)).await;
    let transfer = c.stor_transfer[&id];
    c.session
        .abort_transfer(transfer, ErrorCode::ABORTED, "user pressed Ctrl-C")
        .unwrap();
    let reply = c.reply(id).await;
    assert_eq!(code(&reply), ErrorCode::ABORTED);
    assert_eq!(
        std::fs::read(fx.home("alice").join("keep.bin")).unwrap(),
        old
    );
    // The session goes on.
    assert_eq!(
        c.request(Command::Pwd).await,
        Reply::Path { path: "/".into() }
    );
    assert!(fx.leftover_uploads().is_empty());
    // What arrived in order is kept for `reput`.
    fx.assert_kept_prefix_of(&pattern(1_000_000, 2));
    assert!(
        fx.log().contains("event=store result=denied"),
        "{}",
        fx.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_whose_digest_does_not_match_keeps_the_old_file() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let old = pattern(10_000, 1);
    assert_eq!(c.upload("keep.bin", &old).await, Reply::Ok);

    let id = c.send_stor("keep.bin", pattern(300_000, 2));
    c.forge_digest(id);
    let reply = c.reply(id).await;
    assert_eq!(code(&reply), ErrorCode::TRANSFER_FAILED, "{reply:?}");
    assert_eq!(
        std::fs::read(fx.home("alice").join("keep.bin")).unwrap(),
        old
    );
    assert!(fx.leftover_uploads().is_empty());
    assert!(
        fx.kept_partials().is_empty(),
        "a failed upload keeps nothing"
    );
    // The session goes on, and an honest upload still works.
    assert_eq!(c.upload("keep.bin", &pattern(5_000, 3)).await, Reply::Ok);
    assert_eq!(
        std::fs::read(fx.home("alice").join("keep.bin")).unwrap(),
        pattern(5_000, 3)
    );
}

#[tokio::test]
async fn a_client_that_vanishes_mid_upload_leaves_the_old_file_intact() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let old = pattern(10_000, 3);
    assert_eq!(c.upload("keep.bin", &old).await, Reply::Ok);
    let id = c.send_stor("keep.bin", pattern(1_000_000, 4));
    c.limit_upload(id, 300_000);
    while !c.stor_transfer.contains_key(&id) {
        c.step().await;
    }
    c.settle(Duration::from_millis(300)).await;
    let server = c.server.take().unwrap();
    drop(c);
    let summary = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the handler ends")
        .unwrap();
    assert_eq!(summary.code, ErrorCode::TRANSPORT_CLOSED);
    assert_eq!(
        std::fs::read(fx.home("alice").join("keep.bin")).unwrap(),
        old
    );
    assert!(
        fx.leftover_uploads().is_empty(),
        "{:?}",
        fx.leftover_uploads()
    );
    fx.assert_kept_prefix_of(&pattern(1_000_000, 4));
    assert!(
        fx.log().contains("event=store result=failed"),
        "{}",
        fx.log()
    );
    // The server serves on.
    let mut c = fx.login("alice").await;
    assert_eq!(c.download("keep.bin").await.unwrap(), old);
}

#[tokio::test(start_paused = true)]
async fn no_login_within_the_grace_period_closes_the_session() {
    let fx = Fixture::with(SessionSettings {
        login_grace: Duration::from_secs(5),
        ..SessionSettings::default()
    });
    let mut c = fx.connect().await;
    let reason = c.until_closed().await.expect("closed by the server");
    assert_eq!(reason.code, ErrorCode::TIMED_OUT);
}

#[tokio::test(start_paused = true)]
async fn an_idle_session_is_closed() {
    let fx = Fixture::with(SessionSettings {
        idle_timeout: Some(Duration::from_secs(60)),
        ..SessionSettings::default()
    });
    let mut c = fx.login("alice").await;
    let started = tokio::time::Instant::now();
    let reason = c.until_closed().await.expect("closed by the server");
    assert_eq!(reason.code, ErrorCode::TIMED_OUT);
    assert!(started.elapsed() >= Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn noop_keeps_an_idle_session_open_and_is_not_logged() {
    let fx = Fixture::with(SessionSettings {
        idle_timeout: Some(Duration::from_secs(60)),
        ..SessionSettings::default()
    });
    let mut c = fx.login("alice").await;
    let log_before = fx.log();
    // Four times 40 s: well past the 60 s timeout, never 60 s without a request.
    for _ in 0..4 {
        c.settle(Duration::from_secs(40)).await;
        assert!(!c.is_over(), "closed while NOOPs kept coming");
        assert_eq!(c.request(Command::Noop).await, Reply::Ok);
    }
    assert_eq!(
        c.request(Command::Pwd).await,
        Reply::Path { path: "/".into() }
    );
    assert_eq!(
        fx.log(),
        log_before,
        "NOOP must not be written to server.log"
    );
    // Without them the timeout still holds.
    let reason = c.until_closed().await.expect("closed by the server");
    assert_eq!(reason.code, ErrorCode::TIMED_OUT);
}

#[tokio::test]
async fn shutdown_lets_a_transfer_finish_then_closes() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let data = pattern(2_000_000, 5);
    let id = c.send_stor("big.bin", data.clone());
    while !c.stor_transfer.contains_key(&id) {
        c.step().await;
    }
    fx.shutdown.send(true).unwrap();
    // New work is refused, the transfer in flight completes.
    let refused = c.send(Command::Mkd {
        path: "late".into(),
    });
    assert_eq!(c.reply(id).await, Reply::Ok);
    assert_eq!(code(&c.reply(refused).await), ErrorCode::SHUTTING_DOWN);
    let reason = c.until_closed().await.expect("closed by the server");
    assert_eq!(reason.code, ErrorCode::SHUTTING_DOWN);
    assert_eq!(
        std::fs::read(fx.home("alice").join("big.bin")).unwrap(),
        data
    );
    assert!(!fx.home("alice").join("late").exists());
}

#[tokio::test(start_paused = true)]
async fn shutdown_fails_a_stalled_upload_cleanly_after_the_grace() {
    let fx = Fixture::with(SessionSettings {
        shutdown_grace: Duration::from_secs(3),
        allow_registration: false,
        ..SessionSettings::default()
    });
    let mut c = fx.login("alice").await;
    assert_eq!(c.upload("keep.bin", b"old").await, Reply::Ok);
    let id = c.send_stor("keep.bin", pattern(500_000, 6));
    c.limit_upload(id, 100_000);
    while !c.stor_transfer.contains_key(&id) {
        c.step().await;
    }
    fx.shutdown.send(true).unwrap();
    let reason = c.until_closed().await.expect("closed by the server");
    assert_eq!(reason.code, ErrorCode::SHUTTING_DOWN);
    let server = c.server.take().unwrap();
    drop(c);
    server.await.unwrap();
    assert_eq!(
        std::fs::read(fx.home("alice").join("keep.bin")).unwrap(),
        b"old"
    );
    assert!(fx.leftover_uploads().is_empty());
    fx.assert_kept_prefix_of(&pattern(500_000, 6));
}

/// Memory transports handed to `server::run` as if accepted.
struct MemoryListener(Mutex<mpsc::Receiver<MemoryTransport>>);

impl Listener for MemoryListener {
    type Connection = MemoryTransport;

    async fn accept(&self) -> Result<MemoryTransport, sfs_sctp::Error> {
        match self.0.lock().await.recv().await {
            Some(transport) => Ok(transport),
            None => std::future::pending().await,
        }
    }
}

/// The accept loop over a channel of memory transports, with these limits;
/// returns the queue to connect through, the stop switch and the server task.
fn run_server(
    fx: &Fixture,
    max_clients: usize,
    max_per_source: usize,
    max_unauthenticated: &str,
) -> (
    mpsc::Sender<MemoryTransport>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (queue, accepted) = mpsc::channel(4);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = ConnectionLimits {
        max_clients,
        max_per_source,
        max_unauthenticated: max_unauthenticated.parse().unwrap(),
        shutdown_wait: Duration::from_secs(5),
    };
    let server = tokio::spawn(server::run(
        MemoryListener(Mutex::new(accepted)),
        Arc::clone(&fx.ctx),
        limits,
        async {
            let _ = stopped.await;
        },
    ));
    (queue, stop, server)
}

#[tokio::test]
async fn the_accept_loop_caps_clients_and_shuts_down() {
    let fx = Fixture::new();
    let (queue, stop, server) = run_server(&fx, 1, 1, "1");

    let (client_end, server_end) = memory_pair(STREAMS);
    queue.send(server_end).await.unwrap();
    let mut first = support::detached(client_end, &fx.pki);
    assert!(matches!(
        first.login("alice", support::PASSWORD).await,
        Reply::Limits { .. }
    ));

    let (client_end, server_end) = memory_pair(STREAMS);
    queue.send(server_end).await.unwrap();
    let mut second = support::detached(client_end, &fx.pki);
    // Refused with its reason, which reaches the client.
    let reason = second
        .until_closed()
        .await
        .expect("a Close with the reason");
    assert_eq!(reason.code, ErrorCode::BUSY);
    assert_eq!(reason.reason, "the server is full; try again later");
    assert!(
        fx.log().contains("event=refuse result=denied"),
        "{}",
        fx.log()
    );

    // The first client is still served; then the server shuts down.
    assert_eq!(
        first.request(Command::Pwd).await,
        Reply::Path { path: "/".into() }
    );
    stop.send(()).unwrap();
    let reason = first.until_closed().await.expect("closed by the server");
    assert_eq!(reason.code, ErrorCode::SHUTTING_DOWN);
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("run returns after shutdown")
        .unwrap();
}

#[tokio::test]
async fn unauthenticated_connections_have_their_own_budget() {
    let fx = Fixture::new();
    // Room for 3 clients, but only one of them may be waiting to log in.
    let (queue, stop, server) = run_server(&fx, 3, 3, "1");
    let connect = async || {
        let (client_end, server_end) = memory_pair(STREAMS);
        queue.send(server_end).await.unwrap();
        support::detached(client_end, &fx.pki)
    };
    // The first sits at the login prompt (TLS done, no login).
    let mut idle = connect().await;
    assert_eq!(
        code(&idle.request(Command::Pwd).await),
        ErrorCode::NOT_LOGGED_IN
    );
    // A second unauthenticated one is turned away, though client slots are free.
    let mut second = connect().await;
    let reason = second
        .until_closed()
        .await
        .expect("a Close with the reason");
    assert_eq!(reason.code, ErrorCode::BUSY);
    assert!(
        reason.reason.contains("too many connections not logged in"),
        "{reason:?}"
    );
    assert!(
        fx.log().contains("too many connections not logged in"),
        "{}",
        fx.log()
    );
    // Once the first logs in, its pre-auth place is free for the next.
    assert!(matches!(
        idle.login("alice", support::PASSWORD).await,
        Reply::Limits { .. }
    ));
    let mut third = connect().await;
    assert!(matches!(
        third.login("bob", support::PASSWORD).await,
        Reply::Limits { .. }
    ));
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("run returns after shutdown")
        .unwrap();
}

#[tokio::test]
async fn a_client_over_the_per_source_limit_is_told_the_limit() {
    let fx = Fixture::new();
    // One office behind one NAT address.
    let office: std::net::SocketAddr = "203.0.113.5:40000".parse().unwrap();
    let (queue, stop, server) = run_server(&fx, 8, 1, "4");
    let (client_end, server_end) = memory_pair(STREAMS);
    queue
        .send(server_end.with_peer_addrs(vec![office]))
        .await
        .unwrap();
    let mut first = support::detached(client_end, &fx.pki);
    assert!(matches!(
        first.login("alice", support::PASSWORD).await,
        Reply::Limits { .. }
    ));
    let (client_end, server_end) = memory_pair(STREAMS);
    queue
        .send(server_end.with_peer_addrs(vec![office]))
        .await
        .unwrap();
    let mut second = support::detached(client_end, &fx.pki);
    let reason = second
        .until_closed()
        .await
        .expect("a Close with the reason");
    assert_eq!(reason.code, ErrorCode::BUSY);
    assert_eq!(
        reason.reason,
        "too many connections from your address; the limit is 1"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("run returns after shutdown")
        .unwrap();
}

#[tokio::test]
async fn transfers_beyond_the_limit_are_refused_busy() {
    let fx = Fixture::with(SessionSettings {
        max_transfers: 1,
        ..SessionSettings::default()
    });
    let mut c = fx.login("alice").await;
    let id = c.send_stor("big.bin", pattern(100_000, 3));
    c.limit_upload(id, 10_000);
    while !c.stor_transfer.contains_key(&id) {
        c.step().await;
    }
    let busy = c.upload("small.bin", b"abc").await;
    assert_eq!(code(&busy), ErrorCode::BUSY, "{busy:?}");
    let busy = c
        .request(Command::Retr {
            path: "big.bin".into(),
            offset: 0,
        })
        .await;
    assert_eq!(code(&busy), ErrorCode::BUSY, "{busy:?}");
    // Other commands still go through.
    assert!(matches!(c.request(Command::Pwd).await, Reply::Path { .. }));
    let transfer = c.stor_transfer[&id];
    c.session
        .abort_transfer(transfer, ErrorCode::ABORTED, "user pressed Ctrl-C")
        .unwrap();
    let aborted = c.reply(id).await;
    assert_ne!(aborted, Reply::Ok);
    assert_eq!(c.upload("small.bin", b"abc").await, Reply::Ok);
}
