//! Failover over two real paths (network namespaces joined by two veth pairs):
//! the stall when the primary path dies, with kernel defaults and with the SFS
//! tuning; COMM_LOST when every path dies; connects to unreachable addresses.

mod transport_util;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfs_kernel_tests::netns::{Path, Side, Topology};
use sfs_sctp::{
    AssocState, Error, FailoverTuning, Notification, Received, SctpAssociation, SctpConfig,
    SctpListener,
};
use transport_util::*;

const RTT: Duration = Duration::from_millis(10);

struct Connected {
    topo: Arc<Topology>,
    client: SctpAssociation,
    server: SctpAssociation,
    server_addrs: Vec<SocketAddr>,
}

fn with_port(ips: [IpAddr; 2], port: u16) -> Vec<SocketAddr> {
    ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect()
}

/// Two paths with `RTT` each; a server bound to both of its addresses; a client
/// bound to both of its own, connected with path A first (so A is primary).
async fn connect_over_two_paths(config: &SctpConfig) -> Connected {
    let topo = Arc::new(Topology::two_paths().rtt(RTT).build().expect("topology"));
    let listener = {
        let _inside = topo.enter(Side::Server).expect("enter server ns");
        SctpListener::bind(&with_port(topo.addresses(Side::Server), 0), config).expect("bind")
    };
    let port = listener.local_addrs().expect("local")[0].port();
    let server_addrs = with_port(topo.addresses(Side::Server), port);
    let client_local = with_port(topo.addresses(Side::Client), 0);
    let (client, server) = {
        let _inside = topo.enter(Side::Client).expect("enter client ns");
        tokio::join!(
            SctpAssociation::connect(&server_addrs, Some(&client_local), config, STEP),
            listener.accept()
        )
    };
    let (client, server) = (client.expect("connect"), server.expect("accept"));
    assert_eq!(client.primary_addr().expect("primary"), server_addrs[0]);
    Connected {
        topo,
        client,
        server,
        server_addrs,
    }
}

/// What one failover run measured.
#[derive(Debug)]
struct Stall {
    /// Longest gap between consecutive arrivals after the cut.
    after_cut: Duration,
    /// Longest gap before the cut (the noise floor).
    before_cut: Duration,
    messages: usize,
}

/// Streams small messages (one every 2 ms) from client to server, cuts path A
/// mid-stream, and measures the longest gap at the receiver. Every message must
/// arrive exactly once and in order.
async fn measure_failover_stall(config: &SctpConfig) -> Stall {
    let Connected {
        topo,
        client,
        server,
        server_addrs,
    } = connect_over_two_paths(config).await;
    let run_for = Duration::from_secs(5);
    let cut_after = Duration::from_millis(1500);

    let sender = async {
        let started = Instant::now();
        let mut seq: u64 = 0;
        while started.elapsed() < run_for {
            let mut data = seq.to_be_bytes().to_vec();
            data.resize(512, 0xab);
            client.send(1, 0, false, &data).await.expect("send");
            seq += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        client.send(1, 1, false, b"end").await.expect("send end");
        seq
    };
    let receiver = async {
        let mut arrivals = Vec::new();
        loop {
            match tokio::time::timeout(STEP, server.recv())
                .await
                .expect("no 10 s stall")
            {
                Ok(Received::Message(m)) if m.ppid == 1 => break arrivals,
                Ok(Received::Message(m)) => {
                    let seq = u64::from_be_bytes(m.data[..8].try_into().expect("8 bytes"));
                    arrivals.push((seq, Instant::now()));
                }
                Ok(Received::Notification(_)) => {}
                Err(err) => panic!("receiver: {err}"),
            }
        }
    };
    let cutter = async {
        tokio::time::sleep(cut_after).await;
        let topo = Arc::clone(&topo);
        let at = Instant::now();
        tokio::task::spawn_blocking(move || topo.cut(Path::A))
            .await
            .expect("cut task")
            .expect("cut path A");
        at
    };
    let (sent, arrivals, cut_at) = tokio::join!(sender, receiver, cutter);

    assert_eq!(arrivals.len() as u64, sent, "every message arrives once");
    for (i, (seq, _)) in arrivals.iter().enumerate() {
        assert_eq!(*seq, i as u64, "in order, none lost");
    }
    let mut before_cut = Duration::ZERO;
    let mut after_cut = Duration::ZERO;
    for pair in arrivals.windows(2) {
        let gap = pair[1].1 - pair[0].1;
        if pair[1].1 < cut_at {
            before_cut = before_cut.max(gap);
        } else {
            after_cut = after_cut.max(gap);
        }
    }
    // Where the traffic went: path A should no longer be active.
    for path in client.paths().expect("paths") {
        println!("  after the cut: {path:?}");
    }
    let a = client.path_info(server_addrs[0]).expect("path A info");
    assert_ne!(
        a.state,
        sfs_sctp::PathState::Active,
        "path A still active: {a:?}"
    );
    // Once path A is declared failed (not merely potentially failed), the sender
    // is told which address went.
    if a.state == sfs_sctp::PathState::Inactive {
        let change = wait_notification(
            &client,
            STEP,
            |n| matches!(n, Notification::PeerAddrChange(c) if c.addr == Some(server_addrs[0])),
        )
        .await;
        println!("  notification: {change:?}");
        assert!(
            matches!(&change, Ok(Notification::PeerAddrChange(c)) if c.state == sfs_sctp::PeerAddrState::Unreachable),
            "{change:?}"
        );
    }
    Stall {
        after_cut,
        before_cut,
        messages: arrivals.len(),
    }
}

#[tokio::test]
async fn failover_stall_default_vs_tuned() {
    // Everything the kernel's way: RTO and heartbeat settings, and delayed SACK.
    let mut kernel_defaults = config_with_streams(4);
    kernel_defaults.failover = None;
    kernel_defaults.delayed_sack = None;
    // The kernel's failover settings with SFS's short delayed SACK: measured
    // because this mix stalled 1 to 4 s in the VM (4 s in most runs).
    let mut mixed = config_with_streams(4);
    mixed.failover = None;
    let tuned = config_with_streams(4);
    assert_eq!(tuned.failover, Some(FailoverTuning::FAST));

    let default_stall = measure_failover_stall(&kernel_defaults).await;
    println!("failover stall with kernel defaults: {default_stall:?}");
    let mixed_stall = measure_failover_stall(&mixed).await;
    println!("failover stall with kernel RTO/heartbeat and SFS delayed SACK: {mixed_stall:?}");
    let tuned_stall = measure_failover_stall(&tuned).await;
    println!("failover stall with SctpConfig::default (FailoverTuning::FAST): {tuned_stall:?}");
    println!(
        "FAILOVER STALL: kernel defaults {} ms, tuned {} ms (kernel RTO with SFS SACK settings {} ms; \
         largest gap before the cut {} / {} ms; RTT {} ms per path; {} and {} messages)",
        default_stall.after_cut.as_millis(),
        tuned_stall.after_cut.as_millis(),
        mixed_stall.after_cut.as_millis(),
        default_stall.before_cut.as_millis(),
        tuned_stall.before_cut.as_millis(),
        RTT.as_millis(),
        default_stall.messages,
        tuned_stall.messages,
    );
    assert!(
        tuned_stall.after_cut < Duration::from_millis(600),
        "tuned stall {tuned_stall:?}"
    );
    assert!(
        tuned_stall.after_cut < default_stall.after_cut,
        "tuning must shorten the stall: {tuned_stall:?} vs {default_stall:?}"
    );
}

#[tokio::test]
async fn all_paths_cut_reports_comm_lost_in_bounded_time() {
    let config = config_with_streams(4);
    let Connected {
        topo,
        client,
        server,
        ..
    } = connect_over_two_paths(&config).await;
    client.send(1, 0, false, b"warm up").await.expect("send");
    let (msg, _) = next_message(&server).await;
    assert_eq!(msg.data, b"warm up");

    let cut_at = Instant::now();
    for path in Path::BOTH {
        topo.cut(path).expect("cut");
    }
    let is_lost = |n: &Notification| matches!(n, Notification::AssocChange(c) if c.state == AssocState::CommLost);
    // The client keeps sending (until its buffer fills); the server only listens.
    let sender = async {
        let mut sent = 0;
        loop {
            let result = tokio::time::timeout(
                Duration::from_millis(100),
                client.send(1, 0, false, &[1; 1024]),
            )
            .await;
            match result {
                Ok(Ok(())) | Err(_) => sent += 1,
                Ok(Err(err)) => break (sent, err),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    // The sender sees COMM_LOST, then a send-failed event for each message that
    // never got through, then the end.
    let client_lost = async {
        let lost = wait_notification(&client, Duration::from_secs(60), is_lost).await;
        let lost_after = cut_at.elapsed();
        let mut failed = Vec::new();
        let end = loop {
            match tokio::time::timeout(STEP, client.recv())
                .await
                .expect("no hang")
            {
                Ok(Received::Notification(Notification::SendFailed(f))) => failed.push(f),
                Ok(other) => println!("  after COMM_LOST: {other:?}"),
                Err(err) => break err,
            }
        };
        (lost, lost_after, failed, end)
    };
    let server_lost = async {
        let lost = wait_notification(&server, Duration::from_secs(90), is_lost).await;
        (lost, cut_at.elapsed())
    };
    let sender = async { tokio::time::timeout(Duration::from_secs(90), sender).await };
    let ((client_lost, client_after, failed, client_end), (server_lost, server_after), sender) =
        tokio::join!(client_lost, server_lost, sender);
    println!(
        "ALL PATHS CUT: COMM_LOST after {} ms at the sender, {} ms at the idle receiver",
        client_after.as_millis(),
        server_after.as_millis()
    );
    assert!(client_lost.is_ok(), "sender: {client_lost:?}");
    println!(
        "  {} send-failed events after COMM_LOST (first: {:?}), then: {client_end}",
        failed.len(),
        failed.first()
    );
    assert!(!failed.is_empty(), "undelivered messages are reported");
    assert!(failed
        .iter()
        .all(|f| f.stream == 1 && f.undelivered_len > 0));
    assert!(matches!(client_end, Error::Aborted(_)), "{client_end:?}");
    assert!(server_lost.is_ok(), "receiver: {server_lost:?}");
    // About 10 retransmission timeouts of at most rto_max (1 s) each, plus the
    // path failures; generous, since the emulated VM runs slowly under load.
    assert!(client_after < Duration::from_secs(45), "{client_after:?}");
    // Nothing hangs afterwards: sending and receiving fail at once.
    let (attempts, send_err) = sender.expect("the sender ends");
    println!("  the sender's send failed after {attempts} attempts: {send_err}");
    assert!(matches!(send_err, Error::Aborted(_)), "{send_err:?}");
    assert!(matches!(
        tokio::time::timeout(STEP, client.recv())
            .await
            .expect("in time"),
        Err(Error::Aborted(_))
    ));
}

#[tokio::test]
async fn connecting_to_unreachable_addresses_fails_within_the_timeout() {
    let config = config_with_streams(4);
    let topo = Topology::two_paths().rtt(RTT).build().expect("topology");
    let _listener = {
        let _inside = topo.enter(Side::Server).expect("enter");
        SctpListener::bind(&with_port(topo.addresses(Side::Server), 0), &config).expect("bind")
    };
    let port = _listener.local_addrs().expect("local")[0].port();
    for path in Path::BOTH {
        topo.cut(path).expect("cut");
    }
    let _inside = topo.enter(Side::Client).expect("enter");

    // A listener behind dead paths: INITs vanish, the timeout ends the attempt.
    let timeout = Duration::from_secs(2);
    let targets = with_port(topo.addresses(Side::Server), port);
    let started = Instant::now();
    let result = SctpAssociation::connect(&targets, None, &config, timeout).await;
    let elapsed = started.elapsed();
    assert!(
        matches!(result, Err(Error::ConnectTimeout(t)) if t == timeout),
        "{result:?}"
    );
    assert!(
        elapsed < timeout + Duration::from_millis(500),
        "{elapsed:?}"
    );
    println!("black-holed connect gave up after {elapsed:?}");

    // An address no route leads to: SCTP keeps retrying INIT rather than failing
    // at once, so this too ends within the timeout.
    let no_route = [addr("192.0.2.1:9")];
    let started = Instant::now();
    let result = SctpAssociation::connect(&no_route, None, &config, timeout).await;
    assert!(result.is_err(), "{result:?}");
    assert!(started.elapsed() < timeout + Duration::from_millis(500));
    println!(
        "no-route connect: {:?} after {:?}",
        result.err(),
        started.elapsed()
    );

    // Cancelled mid-handshake, repeatedly: no descriptor leaks.
    let baseline = open_fds();
    for _ in 0..20 {
        let result =
            SctpAssociation::connect(&targets, None, &config, Duration::from_millis(50)).await;
        assert!(
            matches!(result, Err(Error::ConnectTimeout(_))),
            "{result:?}"
        );
    }
    assert_eq!(open_fds(), baseline, "after 20 cancelled connects");
}
