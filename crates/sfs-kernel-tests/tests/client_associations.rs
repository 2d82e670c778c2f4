//! Extra data associations over kernel SCTP, on the two-path topology with the
//! real `sfs-server`: a transfer spread over 4 associations round-trips with
//! equal digests (the `sfs` binary, `--associations 4`); one extra association
//! aborted mid-transfer costs only a resume (the client library, whose
//! connector can abort one); a path cut with 4 associations completes.

mod client_util;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client_util::{run_ok, sha256sum, text, write_pattern, Scratch, Server, PASSWORD};
use sfs_client::connection::{
    Associations, ClientOptions, Credentials, Remote, Reporter, TransferSpec,
};
use sfs_client::connector::SctpConnector;
use sfs_kernel_tests::netns::{Path, Side, Topology};
use sfs_net::{Connector, PathStatus, Transport, TransportError, TransportEvent};
use sfs_proto::session::StreamCounts;
use sfs_sctp::{SctpAssociation, SctpConfig};

const RTT: Duration = Duration::from_millis(10);

fn setup() -> (Topology, Server) {
    let topo = Topology::two_paths().rtt(RTT).build().expect("topology");
    let server = Server::start(&topo.addresses(Side::Server), |p| {
        topo.command(Side::Server, p)
    });
    (topo, server)
}

fn local_arg(topo: &Topology) -> String {
    topo.addresses(Side::Client)
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The server's audit lines for extra associations bound to a session.
fn bound_lines(server: &Server) -> Vec<String> {
    let log = std::fs::read_to_string(server.dir.path().join("server.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.contains("event=bind") && l.contains("result=ok"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn client_a_transfer_over_four_associations_round_trips() {
    let (topo, server) = setup();
    let work = Scratch::new("work");
    let original = work.path().join("big.bin");
    write_pattern(&original, 16 << 20);
    let digest = sha256sum(&original);
    let sfs = |dir: &Scratch| {
        let mut command = server.client_in("alice", dir.path(), |p| topo.command(Side::Client, p));
        command
            .arg("--local")
            .arg(local_arg(&topo))
            .args(["--associations", "4", "-q"]);
        command
    };
    run_ok(sfs(&work).args(["put", "big.bin"]));
    assert_eq!(sha256sum(&server.home("alice").join("big.bin")), digest);
    let down = Scratch::new("down");
    run_ok(sfs(&down).args(["get", "big.bin"]));
    assert_eq!(sha256sum(&down.path().join("big.bin")), digest);
    // Three extras per session, two sessions.
    let bound = bound_lines(&server);
    assert!(bound.len() >= 6, "{bound:#?}");
    for index in 1..=3 {
        let needle = format!("association={index}");
        assert!(bound.iter().any(|l| l.contains(&needle)), "{bound:#?}");
    }
    drop(topo);
}

/// A kernel association that can be aborted from the test: its last handle
/// goes with SO_LINGER 0, so closing it sends ABORT, and its own calls fail
/// from then on.
#[derive(Clone)]
struct Abortable(Arc<AbortState>);

struct AbortState {
    inner: Mutex<Option<Arc<SctpAssociation>>>,
    streams: StreamCounts,
    data: AtomicU64,
    /// Abort after this many data messages either way (0: never).
    abort_after: u64,
    aborted: AtomicBool,
    wake: tokio::sync::Notify,
}

impl AbortState {
    fn new(association: SctpAssociation, abort_after: u64) -> Self {
        let streams = Transport::streams(&association);
        Self {
            inner: Mutex::new(Some(Arc::new(association))),
            streams,
            data: AtomicU64::new(0),
            abort_after,
            aborted: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        }
    }

    fn handle(&self) -> Result<Arc<SctpAssociation>, TransportError> {
        self.inner
            .lock()
            .unwrap()
            .clone()
            .ok_or(TransportError::Closed)
    }

    fn count(&self, stream: u16) {
        if stream == 0 || self.abort_after == 0 {
            return;
        }
        if self.data.fetch_add(1, Ordering::Relaxed) + 1 == self.abort_after {
            self.abort();
        }
    }

    fn abort(&self) {
        if let Some(association) = self.inner.lock().unwrap().take() {
            socket2::SockRef::from(&*association)
                .set_linger(Some(Duration::ZERO))
                .expect("SO_LINGER");
            self.aborted.store(true, Ordering::Relaxed);
            // The calls under way drop their handles when woken; the last
            // one closes the socket, which sends the ABORT.
            self.wake.notify_waiters();
        }
    }
}

impl AbortState {
    async fn send(&self, stream: u16, data: &[u8]) -> Result<(), TransportError> {
        let association = self.handle()?;
        tokio::select! {
            sent = Transport::send(&*association, stream, data) => sent?,
            () = self.wake.notified() => return Err(TransportError::Closed),
        }
        drop(association);
        self.count(stream);
        Ok(())
    }

    async fn recv(&self) -> Result<TransportEvent, TransportError> {
        let association = self.handle()?;
        let event = tokio::select! {
            event = Transport::recv(&*association) => event?,
            () = self.wake.notified() => return Err(TransportError::Closed),
        };
        drop(association);
        if let TransportEvent::Message { stream, .. } = &event {
            self.count(*stream);
        }
        Ok(event)
    }

    fn paths(&self) -> Vec<PathStatus> {
        self.handle()
            .map(|a| Transport::paths(&*a))
            .unwrap_or_default()
    }

    fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.handle()
            .map(|a| Transport::peer_addrs(&*a))
            .unwrap_or_default()
    }

    fn shutdown(&self) {
        if let Ok(association) = self.handle() {
            Transport::shutdown(&*association);
        }
    }
}

/// Opens associations like the binary does; the `abort`-th one opened (the
/// first being 0) aborts itself after `after` data messages.
#[derive(Clone)]
struct AbortingConnector {
    sctp: SctpConnector,
    opened: Arc<AtomicU64>,
    abort: u64,
    after: u64,
    aborted: Arc<Mutex<Vec<Arc<AbortState>>>>,
}

impl Connector for AbortingConnector {
    type Transport = Abortable;

    async fn connect(&self) -> Result<Abortable, TransportError> {
        let association = self.sctp.connect_sctp().await?;
        let number = self.opened.fetch_add(1, Ordering::Relaxed);
        let after = if number == self.abort { self.after } else { 0 };
        let transport = Abortable(Arc::new(AbortState::new(association, after)));
        self.aborted.lock().unwrap().push(transport.0.clone());
        Ok(transport)
    }
}

impl Transport for Abortable {
    fn streams(&self) -> StreamCounts {
        self.0.streams
    }
    async fn send(&self, stream: u16, data: &[u8]) -> Result<(), TransportError> {
        self.0.send(stream, data).await
    }
    async fn recv(&self) -> Result<TransportEvent, TransportError> {
        self.0.recv().await
    }
    fn paths(&self) -> Vec<PathStatus> {
        self.0.paths()
    }
    fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.0.peer_addrs()
    }
    fn shutdown(&self) {
        self.0.shutdown();
    }
}

#[tokio::test]
async fn client_an_aborted_extra_association_costs_only_a_resume() {
    let (topo, server) = setup();
    std::fs::create_dir_all(server.home("alice")).expect("home");
    let original = server.home("alice").join("big.bin");
    write_pattern(&original, 24 << 20);
    let digest = sha256sum(&original);
    let down = Scratch::new("down");

    let peers: Vec<SocketAddr> = server
        .addrs
        .iter()
        .map(|ip| SocketAddr::new(*ip, server.port))
        .collect();
    let local: Vec<SocketAddr> = topo
        .addresses(Side::Client)
        .iter()
        .map(|ip| SocketAddr::new(*ip, 0))
        .collect();
    let ca = std::fs::read(server.dir.path().join("certs/ca.pem")).expect("CA");
    let tls = sfs_proto::tls::client_config(&ca).expect("TLS config");
    // Every association, the extra ones too, is opened from inside the
    // client namespace: this thread stays there until the test ends.
    let _inside = topo
        .enter(Side::Client)
        .expect("enter the client namespace");
    let connector = AbortingConnector {
        sctp: SctpConnector::new(
            peers.clone(),
            Some(local),
            SctpConfig::default(),
            Duration::from_secs(10),
        ),
        opened: Arc::default(),
        // The third association opened aborts after carrying 30 chunks
        // (each carries about a quarter of the 400 chunks), a few MiB into
        // the download.
        abort: 2,
        after: 30,
        aborted: Arc::default(),
    };
    let first = connector.connect().await.expect("connect");
    let credentials = Credentials {
        user: "alice".into(),
        password: PASSWORD.to_owned().into(),
        register: false,
    };
    let options = ClientOptions {
        associations: Associations::Fixed(4),
        ..ClientOptions::default()
    };
    let (mut remote, _cwd) = Remote::open_with(
        first,
        tls,
        peers[0].ip().to_string().try_into().expect("a server name"),
        &credentials,
        Reporter::hidden(),
        options,
    )
    .await
    .expect("login");
    remote.set_connector(connector.clone());
    let results = remote
        .transfer_all(&[TransferSpec::Download {
            remote: "big.bin".into(),
            dest: down.path().join("big.bin"),
            resume: false,
        }])
        .await;
    let done = results.into_iter().next().unwrap();
    assert!(done.is_ok(), "{done:?}");
    assert_eq!(sha256sum(&down.path().join("big.bin")), digest);
    let opened = connector.aborted.lock().unwrap().clone();
    assert_eq!(opened.len(), 4, "three extra associations");
    assert!(opened[2].aborted.load(Ordering::Relaxed), "one was aborted");
    let notices = remote.reporter().notices();
    assert_eq!(
        notices.iter().filter(|n| n.contains("resuming")).count(),
        1,
        "{notices:#?}"
    );
    assert_eq!(
        remote.associations().len(),
        3,
        "the session goes on with three"
    );
    remote.quit().await;
    let log = std::fs::read_to_string(server.dir.path().join("server.log")).unwrap_or_default();
    assert!(log.contains("event=unbind"), "{log}");
}

#[test]
fn client_a_path_cut_with_four_associations_completes() {
    let (topo, server) = setup();
    // A 20 Mbit/s bottleneck on both paths, so that the transfer outlasts the
    // few seconds the kernel takes to declare the cut path failed.
    for side in [Side::Server, Side::Client] {
        for dev in ["pa", "pb"] {
            let mut tc = topo.command(side, "tc");
            tc.args([
                "qdisc", "replace", "dev", dev, "root", "netem", "delay", "5ms",
            ])
            .args(["rate", "20mbit", "limit", "100000"]);
            run_ok(&mut tc);
        }
    }
    std::fs::create_dir_all(server.home("alice")).expect("home");
    let original = server.home("alice").join("big.bin");
    write_pattern(&original, 24 << 20);
    let digest = sha256sum(&original);
    let down = Scratch::new("down");
    let mut get = server
        .client_in("alice", down.path(), |p| topo.command(Side::Client, p))
        .arg("--local")
        .arg(local_arg(&topo))
        .args(["--associations", "4", "get", "big.bin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sfs starts");
    let part = down.path().join("big.bin.part");
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::metadata(&part).map_or(0, |m| m.len()) < (2 << 20) {
        assert!(Instant::now() < deadline, "the download did not start");
        assert!(
            get.try_wait().unwrap().is_none(),
            "finished before the cut: make the file bigger"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let cut = Instant::now();
    topo.cut(Path::A).expect("cut path A");
    let output = get.wait_with_output().expect("sfs runs");
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{}\n{stderr}", output.status);
    assert_eq!(sha256sum(&down.path().join("big.bin")), digest);
    // Every association fails over on its own, but the user hears of the
    // path once.
    let failover: Vec<&str> = stderr.lines().filter(|l| l.contains("path to")).collect();
    assert_eq!(failover.len(), 1, "{stderr}");
    assert!(
        !stderr.contains("resuming"),
        "no association was lost: {stderr}"
    );
    eprintln!("completed {:?} after the cut", cut.elapsed());
    assert!(bound_lines(&server).len() >= 3, "the extras were bound");
    drop(topo);
}
