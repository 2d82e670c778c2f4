//! The ends of an association: graceful shutdown, abort, a killed peer process,
//! failed connects, and no descriptor leaks over many associations.

mod transport_util;

use std::io;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sfs_sctp::{AssocState, Error, Notification, Received, SctpAssociation, SctpConfig};
use transport_util::*;

fn is_assoc(n: &Notification, state: AssocState) -> bool {
    matches!(n, Notification::AssocChange(c) if c.state == state)
}

#[tokio::test]
async fn graceful_shutdown_delivers_everything_then_closes() {
    let config = config_with_streams(4);
    let (listener, addrs) = two_address_listener(&config);
    let (client, server) = pair(&listener, &addrs, &config).await;
    for i in 0..3u8 {
        client.send(1, 0, false, &[i; 1000]).await.expect("send");
    }
    client.shutdown().expect("shutdown");
    assert!(
        client.send(1, 0, false, b"late").await.is_err(),
        "no sending after shutdown"
    );

    let mut notes = Vec::new();
    let mut received = Vec::new();
    let end = loop {
        match tokio::time::timeout(STEP, server.recv())
            .await
            .expect("in time")
        {
            Ok(Received::Message(m)) => received.push(m.data),
            Ok(Received::Notification(n)) => notes.push(n),
            Err(err) => break err,
        }
    };
    assert_eq!(received, vec![vec![0; 1000], vec![1; 1000], vec![2; 1000]]);
    assert!(notes.contains(&Notification::Shutdown), "{notes:?}");
    assert!(matches!(end, Error::Closed), "{end:?}");
    assert!(matches!(server.recv().await, Err(Error::Closed)), "sticky");

    let done =
        wait_notification(&client, STEP, |n| is_assoc(n, AssocState::ShutdownComplete)).await;
    assert!(done.is_ok(), "{done:?}");
    assert!(matches!(
        tokio::time::timeout(STEP, client.recv())
            .await
            .expect("in time"),
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn peer_abort_is_a_clean_error() {
    let config = config_with_streams(4);
    let (listener, addrs) = two_address_listener(&config);
    let (client, server) = pair(&listener, &addrs, &config).await;
    client.send(0, 0, false, b"before").await.expect("send");
    let (msg, _) = next_message(&server).await;
    assert_eq!(msg.data, b"before");

    let started = Instant::now();
    client.abort();
    let lost = wait_notification(&server, STEP, |n| is_assoc(n, AssocState::CommLost)).await;
    assert!(lost.is_ok(), "{lost:?}");
    let next = tokio::time::timeout(STEP, server.recv())
        .await
        .expect("in time");
    assert!(matches!(next, Err(Error::Aborted(_))), "{next:?}");
    let send = server.send(0, 0, false, b"after").await;
    assert!(matches!(send, Err(Error::Aborted(_))), "{send:?}");
    println!("abort seen by the peer after {:?}", started.elapsed());
}

/// A peer in another process, which the test kills: `python3` with a plain SCTP
/// socket (one-to-one, so `connect` and `send` work as for TCP).
#[tokio::test]
async fn killed_peer_process_is_a_clean_error() {
    let config = config_with_streams(4);
    let (listener, addrs) = two_address_listener(&config);
    let port = addrs[0].port();
    let script = format!(
        "import socket, sys, time\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132)\n\
         s.connect(('127.0.0.1', {port}))\n\
         s.send(b'ready')\n\
         time.sleep(600)\n"
    );
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("start python3");
    let server = tokio::time::timeout(STEP, listener.accept())
        .await
        .expect("accept in time")
        .expect("accept");
    let (msg, _) = next_message(&server).await;
    assert_eq!(msg.data, b"ready");
    // Data the child never reads makes the kernel abort (not shut down) when the
    // process dies, as with a crash mid-transfer.
    server.send(0, 0, false, &[5; 4096]).await.expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let killed_at = Instant::now();
    child.kill().expect("kill");
    child.wait().expect("reap");
    let mut notes = Vec::new();
    let end = loop {
        match tokio::time::timeout(STEP, server.recv())
            .await
            .expect("in time")
        {
            Ok(Received::Notification(n)) => notes.push(n),
            Ok(Received::Message(m)) => panic!("unexpected message {:?}", m.data),
            Err(err) => break err,
        }
    };
    println!(
        "killed peer seen after {:?}: {notes:?}, then {end}",
        killed_at.elapsed()
    );
    assert!(matches!(end, Error::Aborted(_)), "{end:?}");
    assert!(
        notes.iter().any(|n| is_assoc(n, AssocState::CommLost)),
        "{notes:?}"
    );
}

#[tokio::test]
async fn connect_to_a_port_without_listener_fails_fast() {
    let config = config_with_streams(4);
    let closed = {
        let (listener, addrs) = two_address_listener(&config);
        drop(listener);
        addrs
    };
    let timeout = Duration::from_secs(5);
    let started = Instant::now();
    let local = [addr("127.0.0.3:0")];
    let result = SctpAssociation::connect(&closed, Some(&local), &config, timeout).await;
    let elapsed = started.elapsed();
    match &result {
        Err(Error::Io { source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(libc_econnrefused()), "{source}")
        }
        other => panic!("expected ECONNREFUSED, got {other:?}"),
    }
    assert!(elapsed < timeout, "took {elapsed:?}");
    println!(
        "refused after {elapsed:?}: {}",
        result.expect_err("checked")
    );
}

fn libc_econnrefused() -> i32 {
    io::Error::from(io::ErrorKind::ConnectionRefused)
        .raw_os_error()
        .unwrap_or(111)
}

#[tokio::test]
async fn connect_argument_errors() {
    let config = SctpConfig::default();
    assert!(matches!(
        SctpAssociation::connect(&[], None, &config, STEP).await,
        Err(Error::NoAddresses(_))
    ));
    assert!(matches!(
        sfs_sctp::SctpListener::bind(&[], &config),
        Err(Error::NoAddresses(_))
    ));
}

#[tokio::test]
async fn a_thousand_associations_leak_no_descriptors() {
    let config = config_with_streams(4);
    let (listener, addrs) = two_address_listener(&config);
    // Warm up, so lazily created runtime descriptors are counted in the baseline.
    let (c, s) = pair(&listener, &addrs, &config).await;
    drop((c, s));
    let baseline = open_fds();

    let started = Instant::now();
    for _ in 0..1000 {
        let (client, server) = pair(&listener, &addrs, &config).await;
        drop(client);
        drop(server);
    }
    let established = started.elapsed();
    assert_eq!(open_fds(), baseline, "after 1000 connect/accept/drop");

    // Failed connects (refused) and cancelled ones (timeout mid-handshake) too.
    let closed = {
        let (l, a) = two_address_listener(&config);
        drop(l);
        a
    };
    // From another address than the target's, so that the client's own
    // ephemeral port can never make it connect to itself.
    let other_local = [addr("127.0.0.3:0")];
    for _ in 0..100 {
        let result = SctpAssociation::connect(&closed, Some(&other_local), &config, STEP).await;
        match &result {
            Ok(assoc) => panic!(
                "connected to a closed port: {:?} -> {:?}",
                assoc.local_addrs(),
                assoc.peer_addrs()
            ),
            Err(err) => assert!(matches!(err, Error::Io { .. }), "{err:?}"),
        }
    }
    let mut timed_out = 0;
    for _ in 0..100 {
        match SctpAssociation::connect(&addrs, None, &config, Duration::ZERO).await {
            Err(Error::ConnectTimeout(_)) => timed_out += 1,
            Err(other) => panic!("{other:?}"),
            Ok(assoc) => drop(assoc),
        }
    }
    // Accept (and drop) whatever the kernel completed for the cancelled connects.
    while let Ok(Ok(assoc)) =
        tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
    {
        drop(assoc);
    }
    assert_eq!(open_fds(), baseline, "after failed and cancelled connects");
    // On loopback the handshake usually completes inside connectx itself, so a
    // zero timeout rarely cancels; cancellation mid-handshake on a dead path is
    // checked in transport_failover.rs.
    println!(
        "1000 associations in {established:?}; {timed_out}/100 zero-timeout connects were cancelled"
    );
}
