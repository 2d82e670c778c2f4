//! Extra data associations, through the real `connection::serve` over the
//! in-memory transport: transfers spread over every association, and every
//! way a new association can be refused, seen from outside (the `BIND_ACK`
//! status and the association shut down, the session unharmed).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sfs_net::memory::MemoryTransport;
use sfs_net::{PathStatus, Transport, TransportError, TransportEvent};
use sfs_proto::bind::{BindAck, BindRequest};
use sfs_proto::control::{Command, ErrorCode, Reply};
use sfs_proto::session::StreamCounts;
use sfs_server::context::SessionSettings;
use sfs_server::testing::{is_shut_down, read_bind_ack, send_bind, TestClient};
use sha2::{Digest as _, Sha256};
use support::{code, pattern, Client, Fixture, PASSWORD};

/// The stream counts of every memory association here.
fn streams() -> StreamCounts {
    StreamCounts {
        outbound: support::STREAMS,
        inbound: support::STREAMS,
    }
}

/// The kept part of an interrupted upload of `path`, in bytes.
async fn partial(c: &mut Client, path: &str) -> u64 {
    match c.request(Command::Partial { path: path.into() }).await {
        Reply::Partial { size } => size,
        other => panic!("PARTIAL answered {other:?}"),
    }
}

/// Expects a refusal of `bind` on a new association: the `BIND_ACK` carries
/// `status` and the server then shuts the association down.
async fn assert_refused(fx: &Fixture, bind: &BindRequest, status: ErrorCode) {
    let (end, server) = fx.new_association();
    let ack = send_bind(&end, bind).await.expect("a BIND_ACK");
    assert_eq!(ack.status, status);
    assert!(is_shut_down(&end).await, "the association stays open");
    // Refused where it arrived (NO_ERROR: handed to the session, which refused it).
    let summary = server.await.unwrap();
    assert!(
        [status, ErrorCode::NO_ERROR].contains(&summary.code),
        "{summary:?}"
    );
    assert_eq!(summary.user, None);
}

/// A client end that counts the data-stream messages it receives.
struct Counted {
    inner: MemoryTransport,
    records: Arc<AtomicUsize>,
}

impl Counted {
    fn new(inner: MemoryTransport) -> (Self, Arc<AtomicUsize>) {
        let records = Arc::new(AtomicUsize::new(0));
        let counted = Self {
            inner,
            records: records.clone(),
        };
        (counted, records)
    }
}

impl Transport for Counted {
    fn streams(&self) -> StreamCounts {
        self.inner.streams()
    }

    async fn send(&self, stream: u16, data: &[u8]) -> Result<(), TransportError> {
        self.inner.send(stream, data).await
    }

    async fn recv(&self) -> Result<TransportEvent, TransportError> {
        let event = self.inner.recv().await;
        if let Ok(TransportEvent::Message { stream, .. }) = &event {
            if *stream != 0 {
                self.records.fetch_add(1, Ordering::Relaxed);
            }
        }
        event
    }

    fn paths(&self) -> Vec<PathStatus> {
        self.inner.paths()
    }

    fn peer_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.inner.peer_addrs()
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }
}

#[tokio::test]
async fn transfers_spread_over_four_associations_round_trip() {
    let fx = Fixture::new();
    let (main, server) = fx.new_association();
    let (main, main_records) = Counted::new(main);
    let name = "localhost".try_into().unwrap();
    let mut c = TestClient::new(main, fx.pki.client_config(), name);
    c.server = Some(server);
    assert!(matches!(
        c.login("alice", PASSWORD).await,
        Reply::Limits {
            max_associations: 8,
            ..
        }
    ));
    let mut counters = vec![main_records];
    for expected in 1..=3u8 {
        let (end, _) = fx.new_association();
        let (end, records) = Counted::new(end);
        assert_eq!(c.add_association(end).await, Ok(expected));
        counters.push(records);
    }

    let data = pattern(3 * 1024 * 1024 + 12_345, 7);
    assert_eq!(c.upload("big.bin", &data).await, Reply::Ok);
    let stored = std::fs::read(fx.home("alice").join("big.bin")).unwrap();
    assert_eq!(Sha256::digest(&stored), Sha256::digest(&data));
    for index in 0..=3u8 {
        assert!(
            c.lanes_used
                .iter()
                .any(|(association, _)| *association == index),
            "no upload chunk on association {index}: {:?}",
            c.lanes_used
        );
    }

    let before: Vec<usize> = counters.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    let back = c.download("big.bin").await.unwrap();
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));
    for (index, counter) in counters.iter().enumerate() {
        assert!(
            counter.load(Ordering::Relaxed) > before[index],
            "no download record on association {index}"
        );
    }

    let summary = c.quit().await;
    assert_eq!(summary.associations, 3);
    let log = fx.log();
    for index in 1..=3 {
        assert!(
            log.lines()
                .any(|line| line.contains("event=bind result=ok user=alice")
                    && line.contains(&format!("association={index}"))),
            "{log}"
        );
    }
}

#[tokio::test]
async fn a_ticket_of_another_session_is_refused() {
    let fx = Fixture::new();
    let mut alice = fx.login("alice").await;
    let mut bob = fx.login("bob").await;
    let (index, ticket) = alice.request_ticket().await.unwrap();
    // Bob presents Alice's ticket: it reaches her session, but his proof is
    // made with his session's keys.
    let stolen = bob
        .session
        .bind_association(index, ticket, streams())
        .unwrap();
    assert_refused(&fx, &stolen, ErrorCode::AUTH_FAILED).await;
    // The ticket is used up: Alice's own BIND with it now fails too.
    let own = alice
        .session
        .bind_association(index, ticket, streams())
        .unwrap();
    assert_refused(&fx, &own, ErrorCode::AUTH_FAILED).await;
    // Both sessions go on.
    assert!(matches!(
        alice.request(Command::Pwd).await,
        Reply::Path { .. }
    ));
    assert!(matches!(
        bob.request(Command::Pwd).await,
        Reply::Path { .. }
    ));
    let log = fx.log();
    assert!(log.contains("event=bind result=denied"), "{log}");
}

#[tokio::test]
async fn a_replayed_bind_is_refused() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let (index, ticket) = c.request_ticket().await.unwrap();
    let (end, _) = fx.new_association();
    let bind = c
        .session
        .bind_association(index, ticket, end.streams())
        .unwrap();
    let ack = send_bind(&end, &bind).await.expect("a BIND_ACK");
    assert!(ack.is_bound());
    c.driver.add_association(index, Arc::new(end));
    // The same bytes again, on another association.
    assert_refused(&fx, &bind, ErrorCode::AUTH_FAILED).await;
    // The bound association still carries data.
    let data = pattern(500_000, 3);
    assert_eq!(c.upload("f.bin", &data).await, Reply::Ok);
    assert!(c
        .lanes_used
        .iter()
        .any(|(association, _)| *association == index));
    assert_eq!(c.download("f.bin").await.unwrap(), data);
}

#[tokio::test]
async fn a_bind_after_quit_or_after_the_session_closed_is_refused() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let (index, ticket) = c.request_ticket().await.unwrap();
    let bind = c
        .session
        .bind_association(index, ticket, streams())
        .unwrap();
    assert_eq!(c.request(Command::Quit).await, Reply::Ok);
    assert_refused(&fx, &bind, ErrorCode::AUTH_FAILED).await;

    // The association itself goes away (no QUIT).
    let mut c = fx.login("alice").await;
    let (index, ticket) = c.request_ticket().await.unwrap();
    let bind = c
        .session
        .bind_association(index, ticket, streams())
        .unwrap();
    let server = c.server.take().unwrap();
    drop(c);
    server.await.unwrap();
    assert_refused(&fx, &bind, ErrorCode::AUTH_FAILED).await;
    assert_eq!(fx.ctx.associations.pending_tickets(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_expired_ticket_is_refused() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let (index, ticket) = c.request_ticket().await.unwrap();
    let bind = c
        .session
        .bind_association(index, ticket, streams())
        .unwrap();
    c.settle(Duration::from_secs(11)).await;
    assert_refused(&fx, &bind, ErrorCode::AUTH_FAILED).await;
    // Its place is free again: the session may still open its full count.
    assert!(matches!(c.request(Command::Pwd).await, Reply::Path { .. }));
    let name = sfs_server::accounts::Username::parse("alice").unwrap();
    assert_eq!(fx.ctx.associations.counts(&name).0, 0);
}

#[tokio::test]
async fn a_bad_proof_or_index_is_refused() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let streams = streams();
    let (index, ticket) = c.request_ticket().await.unwrap();
    let mut bind = c.session.bind_association(index, ticket, streams).unwrap();
    bind.proof[0] ^= 1;
    assert_refused(&fx, &bind, ErrorCode::AUTH_FAILED).await;
    // The client forgets the refused index, which the server offers again.
    c.session.handle_association_lost(index);
    let (index, ticket) = c.request_ticket().await.unwrap();
    let mut bind = c.session.bind_association(index, ticket, streams).unwrap();
    bind.index = index + 1;
    assert_refused(&fx, &bind, ErrorCode::AUTH_FAILED).await;
    assert!(matches!(c.request(Command::Pwd).await, Reply::Path { .. }));
}

#[tokio::test]
async fn a_record_first_or_garbage_is_shut_down() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;

    // A data record before any BIND: shut down without an answer.
    let (end, server) = fx.new_association();
    end.send(1, &[0x17; 100]).await.unwrap();
    assert!(read_bind_ack(&end).await.is_none());
    assert_eq!(server.await.unwrap().code, ErrorCode::BAD_REQUEST);

    // A BIND that does not parse.
    let (end, server) = fx.new_association();
    end.send(0, b"SFSB\x01garbage").await.unwrap();
    let ack = read_bind_ack(&end).await.expect("a BIND_ACK");
    assert_eq!(
        ack,
        BindAck {
            status: ErrorCode::BAD_REQUEST
        }
    );
    assert!(is_shut_down(&end).await);
    assert_eq!(server.await.unwrap().code, ErrorCode::BAD_REQUEST);

    // Anything else starts a session, whose handshake then fails.
    let (end, server) = fx.new_association();
    end.send(0, b"hello?").await.unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the session ends")
        .unwrap();
    assert_eq!(summary.user, None);

    assert!(matches!(c.request(Command::Pwd).await, Reply::Path { .. }));
    let log = fx.log();
    assert!(
        log.contains(
            "event=refuse result=denied reason=\"a data record before any handshake or BIND\""
        ),
        "{log}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_association_is_shut_down() {
    let fx = Fixture::new();
    let (end, server) = fx.new_association();
    let started = tokio::time::Instant::now();
    assert!(is_shut_down(&end).await);
    assert!(started.elapsed() >= Duration::from_secs(10));
    assert_eq!(server.await.unwrap().code, ErrorCode::TIMED_OUT);
    assert!(
        fx.log().contains("reason=\"nothing received in time\""),
        "{}",
        fx.log()
    );
}

#[tokio::test]
async fn the_session_limit_is_announced_and_kept() {
    let fx = Fixture::with(SessionSettings {
        max_associations: 2,
        ..SessionSettings::default()
    });
    let mut c = fx.connect().await;
    assert!(matches!(
        c.login("alice", PASSWORD).await,
        Reply::Limits {
            max_associations: 2,
            ..
        }
    ));
    let (end, _) = fx.new_association();
    assert_eq!(c.add_association(end).await, Ok(1));
    assert_eq!(c.request_ticket().await, Err(ErrorCode::ASSOCIATION_LIMIT));
    assert!(
        fx.log().contains("event=assoc result=denied"),
        "{}",
        fx.log()
    );
}

#[tokio::test]
async fn the_user_limit_holds_across_sessions() {
    let mut settings = SessionSettings::default();
    settings.association_limits.per_user = 2;
    let fx = Fixture::with(settings);
    let mut one = fx.login("alice").await;
    let mut two = fx.login("alice").await;
    let (end, _) = fx.new_association();
    assert_eq!(one.add_association(end).await, Ok(1));
    let (end, _) = fx.new_association();
    assert_eq!(two.add_association(end).await, Ok(1));
    assert_eq!(
        one.request_ticket().await,
        Err(ErrorCode::ASSOCIATION_LIMIT)
    );
    assert_eq!(
        two.request_ticket().await,
        Err(ErrorCode::ASSOCIATION_LIMIT)
    );
    // Another user is not held back.
    let mut bob = fx.login("bob").await;
    let (end, _) = fx.new_association();
    assert_eq!(bob.add_association(end).await, Ok(1));
    // A session's end frees its user's places.
    let server = one.server.take().unwrap();
    drop(one);
    server.await.unwrap();
    let (end, _) = fx.new_association();
    assert_eq!(two.add_association(end).await, Ok(2));
}

#[tokio::test]
async fn a_lost_association_fails_the_upload_which_reput_completes() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let (end, _) = fx.new_association();
    let index = c.add_association(end).await.unwrap();
    let data = pattern(1_000_000, 9);
    let id = c.send_stor("f.bin", data.clone());
    c.limit_upload(id, 400_000);
    c.until_upload_stalls(id).await;
    c.settle(Duration::from_millis(50)).await;
    assert!(c
        .lanes_used
        .iter()
        .any(|(association, _)| *association == index));

    c.cut_association(index);
    assert_eq!(code(&c.reply(id).await), ErrorCode::ASSOCIATION_LOST);
    let kept = partial(&mut c, "f.bin").await;
    assert!(kept > 0 && kept <= 400_000, "{kept}");
    assert_eq!(fx.assert_kept_prefix_of(&data) as u64, kept);

    // Resumed over the association that remains.
    let id = c.send_reput("f.bin", data.clone(), kept as usize);
    assert_eq!(c.reply(id).await, Reply::Ok);
    assert_eq!(std::fs::read(fx.home("alice").join("f.bin")).unwrap(), data);
    let log = fx.log();
    assert!(log.contains("event=unbind"), "{log}");
    assert!(log.contains("event=store result=failed"), "{log}");
    // The session goes on, and a download no longer uses the lost one.
    assert_eq!(c.download("f.bin").await.unwrap(), data);
}

#[tokio::test]
async fn a_detached_association_closes_without_loss() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let (end, _) = fx.new_association();
    let index = c.add_association(end).await.unwrap();
    let data = pattern(300_000, 4);
    assert_eq!(c.upload("f.bin", &data).await, Reply::Ok);
    assert_eq!(c.request(Command::Detach { index }).await, Reply::Ok);
    c.cut_association(index);
    // Nothing failed; the session goes on without it.
    assert_eq!(c.download("f.bin").await.unwrap(), data);
    assert!(matches!(c.request(Command::Pwd).await, Reply::Path { .. }));
    let log = fx.log();
    assert!(
        log.contains(
            "event=unbind result=info user=alice association=1 reason=\"closed by the client\""
        ),
        "{log}"
    );
    assert!(!log.contains("event=store result=failed"), "{log}");
    // Its place is free: the session can bind another.
    let (end, _) = fx.new_association();
    assert_eq!(c.add_association(end).await, Ok(1));
}
