//! The client against a test-double server speaking the real protocol over the
//! in-memory transport: commands, parallel transfers with digests, interrupts, and
//! a hostile server's names.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sfs_client::command::{parse_line, ShellCommand};
use sfs_client::connection::{
    ClientError, Credentials, InterruptSource, Remote, Reporter, TransferSpec,
};
use sfs_client::shell::{Flow, Shell};
use sfs_net::memory::MemoryTransport;
use sfs_proto::control::{Command, ErrorCode, Reply, Rights, ShareEntry};
use sfs_proto::testing::TestPki;
use support::{file_entry, pattern, sha256, Shared, State};

/// Output captured from a shell.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

async fn connect(state: State) -> (Remote<MemoryTransport>, String, Shared) {
    let pki = TestPki::new(&["localhost"]);
    let state = Arc::new(Mutex::new(state));
    let transport = support::start(&pki, state.clone());
    let (connection, cwd) = support::log_in(transport, &pki).await;
    (connection, cwd, state)
}

/// A shell working in `<outer>/work`, so writes outside it would show in `outer`.
struct Fixture {
    shell: Shell<MemoryTransport>,
    out: Captured,
    state: Shared,
    outer: tempfile::TempDir,
}

impl Fixture {
    async fn new(state: State) -> Self {
        let (connection, cwd, state) = connect(state).await;
        let outer = tempfile::tempdir().unwrap();
        std::fs::create_dir(outer.path().join("work")).unwrap();
        let out = Captured::default();
        let shell = Shell::new(
            connection,
            cwd,
            outer.path().join("work"),
            Box::new(out.clone()),
            false,
        );
        Self {
            shell,
            out,
            state,
            outer,
        }
    }

    fn work(&self) -> PathBuf {
        self.outer.path().join("work")
    }

    async fn run(&mut self, line: &str) -> Result<String, ClientError> {
        let command = parse_line(line).unwrap().unwrap();
        self.shell.execute(command).await?;
        Ok(self.out.take())
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn hostile_state() -> State {
    let mut state = State::default();
    for (name, len) in [
        ("../../.bashrc", 100),
        ("/etc/x", 200),
        ("a\x1b[2J", 300),
        ("plain.txt", 400),
    ] {
        state.files.insert(name.to_owned(), pattern(len));
        state.listing.push(file_entry(name, len as u64));
    }
    state.shares.push(ShareEntry {
        owner: "mallory".into(),
        path: "/\x1b]0;pwned\x07evil".into(),
        grantee: "alice".into(),
        rights: Rights::READ,
    });
    state
}

#[tokio::test]
async fn login_answers_the_remote_folder_and_pipelines_pwd() {
    let (_connection, cwd, state) = connect(State::default()).await;
    assert_eq!(cwd, "/");
    let log = state.lock().unwrap().log.clone();
    assert_eq!(log, vec!["LOGIN alice".to_owned(), "PWD".to_owned()]);
}

#[tokio::test]
async fn register_sends_a_registration_instead_of_a_login() {
    let pki = TestPki::new(&["localhost"]);
    let state: Shared = Arc::default();
    let transport = support::start(&pki, state.clone());
    let credentials = Credentials {
        register: true,
        ..support::alice()
    };
    let (_connection, cwd) = Remote::open(
        transport,
        pki.client_config(),
        "localhost".try_into().unwrap(),
        &credentials,
        Reporter::hidden(),
    )
    .await
    .expect("registered");
    assert_eq!(cwd, "/");
    assert_eq!(state.lock().unwrap().log[0], "REGISTER alice");
}

#[tokio::test]
async fn a_wrong_login_is_an_error_with_the_servers_code() {
    let pki = TestPki::new(&["localhost"]);
    let transport = support::start(&pki, Arc::default());
    let credentials = Credentials {
        user: "mallory".into(),
        ..support::alice()
    };
    let result = Remote::open(
        transport,
        pki.client_config(),
        "localhost".try_into().unwrap(),
        &credentials,
        Reporter::hidden(),
    )
    .await;
    match result {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::AUTH_FAILED),
        other => panic!("expected AUTH_FAILED, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    let pki = TestPki::new(&["localhost"]);
    let transport = support::start(&pki, Arc::default());
    let result = Remote::open(
        transport,
        pki.client_config(),
        "other.example".try_into().unwrap(),
        &support::alice(),
        Reporter::hidden(),
    )
    .await;
    match result {
        Err(err @ ClientError::Tls(_)) => assert_eq!(
            err.to_string(),
            "the server's certificate is for localhost, not other.example (use --server-name NAME)"
        ),
        other => panic!("expected a TLS failure, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn hostile_names_in_listings_and_shares_are_shown_escaped() {
    let mut fx = Fixture::new(hostile_state()).await;
    // `-a`: the hostile `../../.bashrc` starts with a dot, hidden by default.
    let listing = fx.run("ls -a").await.unwrap();
    assert!(!listing.contains('\x1b'), "{listing:?}");
    assert!(listing.contains("a\\x1b[2J"), "{listing}");
    assert!(listing.contains("../../.bashrc"), "{listing}");
    assert_eq!(
        listing.lines().count(),
        4,
        "both parts of the listing: {listing}"
    );
    let shared = fx.run("shared").await.unwrap();
    assert!(
        !shared.chars().any(|c| c.is_control() && c != '\n'),
        "{shared:?}"
    );
    assert!(shared.contains("\\x1b]0;pwned\\x07evil"), "{shared}");
    assert!(shared.contains("from mallory"), "{shared}");
    // A server error message is escaped too.
    let err = fx.run("stat missing").await.unwrap_err();
    assert!(!err.to_string().contains('\x1b'), "{err}");
    assert!(
        matches!(err, ClientError::Server { code, .. } if code == ErrorCode::NOT_FOUND),
        "{err}"
    );
    assert_eq!(err.to_string(), "missing: no such file\\x1b[2J");
}

#[tokio::test]
async fn hostile_remote_names_are_written_only_inside_the_named_folder() {
    let mut fx = Fixture::new(hostile_state()).await;
    fx.run("get ../../.bashrc").await.unwrap();
    fx.run("get /etc/x").await.unwrap();
    let err = fx.run("get 'a\x1b[2J'").await.unwrap_err();
    assert!(matches!(err, ClientError::LocalPath(_)), "{err}");
    assert!(!err.to_string().contains('\x1b'));
    assert_eq!(names_in(&fx.work()), vec![".bashrc", "x"]);
    assert_eq!(
        names_in(fx.outer.path()),
        vec!["work"],
        "nothing outside work/"
    );
    assert_eq!(
        std::fs::read(fx.work().join(".bashrc")).unwrap(),
        pattern(100)
    );
    assert_eq!(std::fs::read(fx.work().join("x")).unwrap(), pattern(200));

    // mget of every listed name: the safe ones land inside, the unsafe one fails.
    let err = fx
        .run("mget ../../.bashrc /etc/x 'a\x1b[2J' plain.txt")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::LocalPath(_)), "{err}");
    assert_eq!(names_in(fx.outer.path()), vec!["work"]);
    // The user may name any local file explicitly: that, and only that, is written.
    fx.run("get 'a\x1b[2J' chosen.bin").await.unwrap();
    assert_eq!(
        std::fs::read(fx.work().join("chosen.bin")).unwrap(),
        pattern(300)
    );
    assert_eq!(names_in(&fx.work()), vec![".bashrc", "chosen.bin", "x"]);
}

#[tokio::test]
async fn a_download_never_follows_a_symlink_at_the_destination() {
    let mut fx = Fixture::new(hostile_state()).await;
    let victim = fx.outer.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, fx.work().join("plain.txt")).unwrap();
    let err = fx.run("get plain.txt").await.unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

#[tokio::test]
async fn put_then_get_round_trips_with_matching_digests() {
    let mut fx = Fixture::new(State::default()).await;
    let data = pattern(1_000_003);
    std::fs::write(fx.work().join("big.bin"), &data).unwrap();
    let out = fx.run("put big.bin remote.bin").await.unwrap();
    let digest = sfs_client::connection::hex(&sha256(&data));
    assert!(out.contains(&digest), "{out}");
    assert_eq!(fx.state.lock().unwrap().uploads["remote.bin"], data);

    let served = fx.state.lock().unwrap().uploads["remote.bin"].clone();
    fx.state
        .lock()
        .unwrap()
        .files
        .insert("remote.bin".into(), served);
    let out = fx.run("RETR remote.bin copy.bin").await.unwrap();
    assert!(out.contains(&digest), "{out}");
    assert_eq!(std::fs::read(fx.work().join("copy.bin")).unwrap(), data);
    assert!(!fx.work().join("copy.bin.part").exists());
}

#[tokio::test]
async fn empty_files_go_both_ways() {
    let mut fx = Fixture::new(State::default()).await;
    std::fs::write(fx.work().join("empty"), b"").unwrap();
    fx.run("put empty").await.unwrap();
    assert_eq!(fx.state.lock().unwrap().uploads["empty"], b"");
    fx.state
        .lock()
        .unwrap()
        .files
        .insert("e".into(), Vec::new());
    fx.run("get e").await.unwrap();
    assert_eq!(std::fs::read(fx.work().join("e")).unwrap(), b"");
}

#[tokio::test]
async fn parallel_transfers_each_arrive_whole() {
    let mut state = State::default();
    for (i, name) in ["p1", "p2", "p3"].iter().enumerate() {
        state
            .files
            .insert((*name).into(), pattern(200_000 + i * 77_777));
    }
    let mut fx = Fixture::new(state).await;
    let out = fx.run("mget p1 p2 p3").await.unwrap();
    assert_eq!(out.lines().count(), 3, "{out}");
    for (i, name) in ["p1", "p2", "p3"].iter().enumerate() {
        assert_eq!(
            std::fs::read(fx.work().join(name)).unwrap(),
            pattern(200_000 + i * 77_777)
        );
    }
    for (i, name) in ["u1", "u2", "u3"].iter().enumerate() {
        std::fs::write(fx.work().join(name), pattern(150_000 + i * 1000)).unwrap();
    }
    fx.run("mput u1 u2 u3").await.unwrap();
    let uploads = fx.state.lock().unwrap().uploads.clone();
    for (i, name) in ["u1", "u2", "u3"].iter().enumerate() {
        assert_eq!(uploads[*name], pattern(150_000 + i * 1000), "{name}");
    }
}

#[tokio::test]
async fn one_failing_transfer_does_not_spoil_the_others() {
    let mut state = State::default();
    state.files.insert("good".into(), pattern(50_000));
    let (mut connection, _, _) = connect(state).await;
    let dir = tempfile::tempdir().unwrap();
    let results = connection
        .transfer_all(&[
            TransferSpec::Download {
                remote: "missing".into(),
                dest: dir.path().join("missing"),
                resume: false,
            },
            TransferSpec::Download {
                remote: "good".into(),
                dest: dir.path().join("good"),
                resume: false,
            },
        ])
        .await;
    assert!(matches!(
        &results[0],
        Err(ClientError::Server { code, .. }) if *code == ErrorCode::NOT_FOUND
    ));
    assert_eq!(
        results[1].as_ref().unwrap().sha256,
        sha256(&pattern(50_000))
    );
    assert_eq!(names_in(dir.path()), vec!["good"], "no .part left behind");
}

#[tokio::test]
async fn an_interrupt_aborts_transfers_cleanly_and_the_session_lives_on() {
    let mut state = State::default();
    state.files.insert("slow".into(), pattern(4_000_000));
    state.chunk_delay = Some(Duration::from_millis(20));
    let (mut connection, _, shared) = connect(state).await;
    let fired = Arc::new(tokio::sync::Notify::new());
    let trigger = fired.clone();
    let source: InterruptSource = Arc::new(move || {
        let fired = trigger.clone();
        Box::pin(async move { fired.notified().await })
    });
    connection.set_interrupt(source);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("slow");
    std::fs::write(&dest, b"the old file").unwrap();
    let interrupter = {
        let fired = fired.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            fired.notify_one();
        })
    };
    let results = connection
        .transfer_all(&[TransferSpec::Download {
            remote: "slow".into(),
            dest: dest.clone(),
            resume: false,
        }])
        .await;
    interrupter.await.unwrap();
    assert!(
        matches!(results[0], Err(ClientError::Interrupted)),
        "{results:?}"
    );
    assert_eq!(std::fs::read(&dest).unwrap(), b"the old file");
    // The .part is kept for `reget`, holding only bytes verified in order.
    assert_eq!(names_in(dir.path()), vec!["slow", "slow.part"]);
    let kept = std::fs::read(dir.path().join("slow.part")).unwrap();
    assert!(!kept.is_empty() && kept.len() < 4_000_000);
    assert_eq!(kept, pattern(4_000_000)[..kept.len()], "a verified prefix");
    assert!(
        connection
            .reporter()
            .notices()
            .iter()
            .any(|line| line.contains("partial download kept") && line.contains("reget")),
        "{:?}",
        connection.reporter().notices()
    );
    // The session survives: the next request is answered, and the server saw the abort.
    let replies = connection
        .request(sfs_proto::control::Command::Pwd)
        .await
        .unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(shared.lock().unwrap().aborted.len(), 1);
}

#[tokio::test]
async fn server_refusals_are_errors_and_local_failures_ask_nothing() {
    let mut fx = Fixture::new(State::default()).await;
    std::fs::write(fx.work().join("f"), b"x").unwrap();
    let err = fx.run("put f forbidden/f").await.unwrap_err();
    assert!(
        matches!(err, ClientError::Server { code, .. } if code == ErrorCode::PERMISSION_DENIED),
        "{err}"
    );
    let err = fx.run("get nothing-here").await.unwrap_err();
    assert!(
        matches!(err, ClientError::Server { code, .. } if code == ErrorCode::NOT_FOUND),
        "{err}"
    );
    assert_eq!(err.to_string(), "nothing-here: no such file");
    assert!(!fx.work().join("nothing-here").exists());
    assert!(!fx.work().join("nothing-here.part").exists());
    let before = fx.state.lock().unwrap().log.len();
    let err = fx.run("put no-such-local-file").await.unwrap_err();
    assert!(matches!(err, ClientError::NotAsTyped(_)), "{err}");
    assert_eq!(err.to_string(), "no such local file no-such-local-file");
    assert_eq!(fx.state.lock().unwrap().log.len(), before, "nothing sent");
}

#[tokio::test]
async fn every_remote_command_reaches_the_server() {
    let mut state = State::default();
    state.files.insert("f".into(), pattern(10));
    let mut fx = Fixture::new(state).await;
    for line in [
        "mkdir d",
        "MKD d2",
        "cd d",
        "pwd",
        "cdup",
        "rmdir d2",
        "mv f g",
        "size f",
        "digest f",
        "stat f",
        "share f bob rw",
        "unshare f bob",
        "shared",
        "shares",
        "ls",
        "rm f",
    ] {
        fx.run(line).await.unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    let out = fx.run("digest f").await;
    assert!(out.is_err(), "f was deleted");
    let log = fx.state.lock().unwrap().log.join("\n");
    for word in [
        "MKD", "CWD", "PWD", "CDUP", "RMD", "RENAME", "SIZE", "DIGEST", "STAT", "SHAR", "UNSH",
        "SHWM", "SHARED", "LIST", "DELE",
    ] {
        assert!(
            log.to_uppercase().contains(word),
            "{word} missing from\n{log}"
        );
    }
}

#[tokio::test]
async fn cd_and_pwd_follow_the_server() {
    let mut fx = Fixture::new(State::default()).await;
    fx.run("cd projects").await.unwrap();
    assert_eq!(fx.shell.remote_dir(), "/projects");
    assert_eq!(fx.run("pwd").await.unwrap().trim(), "/projects");
    fx.run("cdup").await.unwrap();
    assert_eq!(fx.shell.remote_dir(), "/");
}

#[tokio::test]
async fn local_commands_work_on_the_shells_own_folder() {
    let mut fx = Fixture::new(State::default()).await;
    std::fs::create_dir(fx.work().join("sub")).unwrap();
    std::fs::write(fx.work().join("sub/inner.txt"), b"x").unwrap();
    fx.run("lcd sub").await.unwrap();
    let here = fx.run("lpwd").await.unwrap();
    assert!(here.trim().ends_with("/work/sub"), "{here}");
    assert_eq!(fx.run("lls").await.unwrap().trim(), "inner.txt");
    assert!(fx.run("lcd inner.txt").await.is_err());
}

#[tokio::test]
async fn status_shows_streams_tls_bytes_and_the_server_view() {
    let mut fx = Fixture::new(State::default()).await;
    let status = fx.run("status").await.unwrap();
    assert!(
        status.contains("streams: 8 outbound, 8 inbound"),
        "{status}"
    );
    assert!(status.contains("tls: TLS 1.3, TLS13_"), "{status}");
    assert!(status.contains("bytes moved:"), "{status}");
    assert!(status.contains("logged in as alice"), "{status}");
}

#[tokio::test]
async fn df_and_quota_show_use_and_limits() {
    let mut fx = Fixture::new(State::default()).await;
    for name in ["df", "quota", "QUOT"] {
        let shown = fx.run(name).await.unwrap();
        assert!(shown.contains("bytes: 0 B of 1.00 GiB"), "{name}: {shown}");
        assert!(shown.contains("files: 0 (no quota)"), "{name}: {shown}");
        assert!(shown.contains("largest file: no limit"), "{name}: {shown}");
    }
}

#[tokio::test]
async fn help_lists_every_command_with_an_example_and_quit_ends() {
    let mut fx = Fixture::new(State::default()).await;
    let help = fx.run("help").await.unwrap();
    for spec in sfs_client::command::COMMANDS {
        assert!(help.contains(spec.usage), "{}", spec.usage);
        assert!(help.contains(spec.example), "{}", spec.example);
    }
    let put = fx.run("help STOR").await.unwrap();
    assert!(put.contains("example: put notes.txt"), "{put}");
    let flow = fx.shell.execute(ShellCommand::Quit).await.unwrap();
    assert_eq!(flow, Flow::Quit);
}

/// A memory transport whose `recv` also yields path events the test injects, as
/// kernel SCTP reports a failover.
struct PathEvents {
    inner: MemoryTransport,
    events: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<sfs_net::PathEvent>>,
}

impl sfs_net::Transport for PathEvents {
    fn streams(&self) -> sfs_proto::session::StreamCounts {
        self.inner.streams()
    }

    async fn send(&self, stream: u16, data: &[u8]) -> Result<(), sfs_net::TransportError> {
        self.inner.send(stream, data).await
    }

    async fn recv(&self) -> Result<sfs_net::TransportEvent, sfs_net::TransportError> {
        let mut events = self.events.lock().await;
        tokio::select! {
            Some(event) = events.recv() => Ok(sfs_net::TransportEvent::Path(event)),
            message = self.inner.recv() => message,
        }
    }

    fn paths(&self) -> Vec<sfs_net::PathStatus> {
        Vec::new()
    }

    fn peer_addrs(&self) -> Vec<std::net::SocketAddr> {
        Vec::new()
    }

    fn shutdown(&self) {
        self.inner.shutdown();
    }
}

#[tokio::test]
async fn a_failover_during_a_transfer_is_one_line_not_a_failure() {
    use sfs_net::{PathChange, PathEvent};
    let pki = TestPki::new(&["localhost"]);
    let mut state = State::default();
    state.files.insert("f".into(), pattern(2_000_000));
    state.chunk_delay = Some(Duration::from_millis(5));
    let inner = support::start(&pki, Arc::new(Mutex::new(state)));
    let (inject, events) = tokio::sync::mpsc::unbounded_channel();
    let transport = PathEvents {
        inner,
        events: tokio::sync::Mutex::new(events),
    };
    let (mut connection, _) = Remote::open(
        transport,
        pki.client_config(),
        "localhost".try_into().unwrap(),
        &support::alice(),
        Reporter::hidden(),
    )
    .await
    .unwrap();
    let addr = Some("198.51.100.1:7373".parse().unwrap());
    // SCTP-PF reports "potentially failed" and then "failed": one failover.
    for change in [
        PathChange::PotentiallyFailed,
        PathChange::Unreachable,
        PathChange::Unreachable,
    ] {
        inject.send(PathEvent::new(addr, change)).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let results = connection
        .transfer_all(&[TransferSpec::Download {
            remote: "f".into(),
            dest: dir.path().join("f"),
            resume: false,
        }])
        .await;
    assert_eq!(
        results[0].as_ref().unwrap().sha256,
        sha256(&pattern(2_000_000))
    );
    let notices = connection.reporter().notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].contains("198.51.100.1:7373 failed"),
        "{notices:?}"
    );
    assert!(!notices[0].to_lowercase().contains("error"));
    // The path coming back is told once too.
    inject
        .send(PathEvent::new(addr, PathChange::Available))
        .unwrap();
    // The event is read at the next wait, and a reply may win that race, more
    // than once on a busy machine: keep asking for up to 5 s.
    for _ in 0..500 {
        connection
            .request(sfs_proto::control::Command::Pwd)
            .await
            .unwrap();
        if connection.reporter().notices().len() > 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let notices = connection.reporter().notices();
    assert_eq!(notices.len(), 2, "{notices:?}");
    assert!(notices[1].contains("available again"), "{notices:?}");
}

#[tokio::test]
async fn transfers_interrupted_before_the_server_opened_them_are_aborted_when_it_does() {
    let mut state = State::default();
    state.files.insert("f".into(), pattern(3_000_000));
    state.chunk_delay = Some(Duration::from_millis(20));
    let (mut connection, _, shared) = connect(state).await;
    // An interrupt that has already fired: the requests go out, no answer is awaited.
    let source: InterruptSource = Arc::new(|| Box::pin(async {}));
    connection.set_interrupt(source);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("up"), pattern(2_000_000)).unwrap();
    let results = connection
        .transfer_all(&[
            TransferSpec::Download {
                remote: "f".into(),
                dest: dir.path().join("f"),
                resume: false,
            },
            TransferSpec::Upload {
                local: dir.path().join("up"),
                remote: "up".into(),
                resume: false,
            },
        ])
        .await;
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Err(ClientError::Interrupted))),
        "{results:?}"
    );
    assert_eq!(names_in(dir.path()), vec!["up"], "no .part left");
    // The next requests read the late TransferOpens and abort both transfers.
    let never: InterruptSource = Arc::new(|| Box::pin(std::future::pending()));
    connection.set_interrupt(never);
    for _ in 0..50 {
        connection
            .request(sfs_proto::control::Command::Pwd)
            .await
            .unwrap();
        if shared.lock().unwrap().aborted.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = shared.lock().unwrap();
    assert_eq!(
        st.aborted.len(),
        2,
        "{:?} {:?} {:?}",
        st.aborted,
        st.log,
        st.uploads.keys()
    );
    drop(st);
    assert!(!shared.lock().unwrap().uploads.contains_key("up"));
}

/// A double that closes a session after 1.5 s without a request (long next to
/// the 100 ms keepalive, so a loaded machine does not make the test flaky).
fn short_idle_timeout() -> State {
    State {
        idle_timeout: Some(Duration::from_millis(1500)),
        ..State::default()
    }
}

#[tokio::test]
async fn an_idle_shell_outlives_the_servers_idle_timeout() {
    let (mut connection, _, state) = connect(short_idle_timeout()).await;
    connection.set_keepalive(Duration::from_millis(100));
    // The shell waiting four seconds for the user to type.
    connection
        .idle_until(tokio::time::sleep(Duration::from_secs(4)))
        .await;
    let replies = match connection.request(Command::Pwd).await {
        Ok(replies) => replies,
        Err(err) => panic!(
            "the session ended: {err}; the double saw {:?}",
            state.lock().unwrap().log
        ),
    };
    assert_eq!(replies, [Reply::Path { path: "/".into() }]);
    let noops = state
        .lock()
        .unwrap()
        .log
        .iter()
        .filter(|c| *c == "NOOP")
        .count();
    assert!(noops >= 3, "only {noops} NOOPs in 4 s at 100 ms");
}

#[tokio::test]
async fn without_keepalives_the_servers_idle_timeout_ends_the_session() {
    // The control for the test above: the same wait, not driving the session.
    let (mut connection, _, _) = connect(short_idle_timeout()).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    match connection.request(Command::Pwd).await {
        // The double closes and goes away: its Close or the end of the
        // transport, whichever the client reads first.
        Err(ClientError::Closed(reason)) => assert!(
            reason == "the server ended the session: idle for 1500 ms"
                || reason == "the server closed the connection",
            "{reason}"
        ),
        other => panic!("expected the idle close, got {other:?}"),
    }
}

/// Two remote files with one last name, as in `mget /a/x.bin /b/x.bin`.
fn same_last_name() -> State {
    let mut state = State::default();
    state.files.insert("/a/x.bin".into(), pattern(120_000));
    state.files.insert("/b/x.bin".into(), pattern(90_000));
    state
}

#[tokio::test]
async fn mget_of_two_files_with_one_local_name_is_refused_up_front() {
    let mut fx = Fixture::new(same_last_name()).await;
    for line in ["mget /a/x.bin /b/x.bin", "mget /a/x.bin x.bin"] {
        let err = fx.run(line).await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ClientError::SameTarget { .. }), "{text}");
        assert!(
            text.contains("/a/x.bin") && text.contains("x.bin would"),
            "{text}"
        );
    }
    let err = fx
        .run("mget /a/x.bin /b/x.bin")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/b/x.bin"), "{err}");
    assert!(names_in(&fx.work()).is_empty(), "nothing written");
    let log = fx.state.lock().unwrap().log.clone();
    assert!(!log.iter().any(|c| c == "RETR"), "nothing asked: {log:?}");
}

#[tokio::test]
async fn mput_of_two_files_to_one_remote_name_is_refused_up_front() {
    let mut fx = Fixture::new(State::default()).await;
    for folder in ["a", "b"] {
        std::fs::create_dir(fx.work().join(folder)).unwrap();
        std::fs::write(fx.work().join(folder).join("u.txt"), folder).unwrap();
    }
    let err = fx.run("mput a/u.txt b/u.txt").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ClientError::SameTarget { .. }), "{text}");
    assert!(
        text.contains("a/u.txt") && text.contains("b/u.txt"),
        "{text}"
    );
    let state = fx.state.lock().unwrap();
    assert!(state.uploads.is_empty());
    assert!(!state.log.iter().any(|c| c == "STOR"), "{:?}", state.log);
}

#[tokio::test]
async fn two_downloads_into_one_file_never_mix() {
    // Below the shell's check: the second writer of one `.part` is refused and
    // the first arrives whole, with the digest of what is on disk.
    let (mut connection, _, _) = connect(same_last_name()).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("x.bin");
    let specs = [
        TransferSpec::Download {
            remote: "/a/x.bin".into(),
            dest: dest.clone(),
            resume: false,
        },
        TransferSpec::Download {
            remote: "/b/x.bin".into(),
            dest: dest.clone(),
            resume: false,
        },
    ];
    let results = connection.transfer_all(&specs).await;
    let done = results[0].as_ref().expect("the first download");
    assert!(
        matches!(
            &results[1],
            Err(ClientError::LocalPath(
                sfs_client::local::LocalPathError::PartInUse(_)
            ))
        ),
        "{:?}",
        results[1]
    );
    let on_disk = std::fs::read(&dest).unwrap();
    assert_eq!(on_disk, pattern(120_000));
    assert_eq!(done.sha256, sha256(&on_disk));
    assert_eq!(names_in(dir.path()), ["x.bin"]);
}

fn with_folder(name: &str) -> State {
    let mut state = State::default();
    state.dirs.insert(name.to_owned());
    state
}

#[tokio::test]
async fn put_to_a_folder_with_a_trailing_slash_uploads_inside_it() {
    let mut fx = Fixture::new(with_folder("docs")).await;
    std::fs::write(fx.work().join("notes.txt"), b"notes").unwrap();
    let out = fx.run("put notes.txt docs/").await.unwrap();
    assert!(out.contains("-> docs/notes.txt"), "{out}");
    let st = fx.state.lock().unwrap();
    assert_eq!(st.uploads["docs/notes.txt"], b"notes");
    assert!(!st.uploads.contains_key("docs/"), "{:?}", st.uploads.keys());
}

#[tokio::test]
async fn put_to_a_missing_folder_with_a_trailing_slash_says_so() {
    let mut fx = Fixture::new(State::default()).await;
    std::fs::write(fx.work().join("notes.txt"), b"notes").unwrap();
    let err = fx.run("put notes.txt nodir/").await.unwrap_err();
    assert_eq!(err.to_string(), "no such remote folder nodir");
    assert!(fx.state.lock().unwrap().uploads.is_empty());
}

#[tokio::test]
async fn put_to_an_existing_remote_folder_uploads_inside_it() {
    let mut fx = Fixture::new(with_folder("docs")).await;
    std::fs::write(fx.work().join("notes.txt"), b"notes").unwrap();
    let out = fx.run("put notes.txt docs").await.unwrap();
    assert!(out.contains("-> docs/notes.txt"), "{out}");
    assert_eq!(fx.state.lock().unwrap().uploads["docs/notes.txt"], b"notes");
    // A name that is not a folder is still the file's new name.
    fx.run("put notes.txt renamed.txt").await.unwrap();
    assert_eq!(fx.state.lock().unwrap().uploads["renamed.txt"], b"notes");
}

#[tokio::test]
async fn one_shot_put_and_get_follow_the_same_folder_rules() {
    let mut state = with_folder("docs");
    state.files.insert("docs/r.bin".into(), pattern(100));
    let mut fx = Fixture::new(state).await;
    std::fs::write(fx.work().join("a.txt"), b"a").unwrap();
    std::fs::create_dir(fx.work().join("down")).unwrap();
    for words in [["put", "a.txt", "docs/"], ["get", "docs/r.bin", "down/"]] {
        let words: Vec<String> = words.iter().map(|w| (*w).to_owned()).collect();
        let command = sfs_client::command::parse_words(&words).unwrap();
        fx.shell.execute(command).await.unwrap();
    }
    assert_eq!(fx.state.lock().unwrap().uploads["docs/a.txt"], b"a");
    assert_eq!(
        std::fs::read(fx.work().join("down/r.bin")).unwrap(),
        pattern(100)
    );
}

#[tokio::test]
async fn get_into_a_local_folder_writes_the_remote_basename_there() {
    let mut state = State::default();
    state.files.insert("/docs/r.bin".into(), pattern(1000));
    let mut fx = Fixture::new(state).await;
    std::fs::create_dir(fx.work().join("down")).unwrap();
    fx.run("get /docs/r.bin down").await.unwrap();
    assert_eq!(
        std::fs::read(fx.work().join("down/r.bin")).unwrap(),
        pattern(1000)
    );
    std::fs::remove_file(fx.work().join("down/r.bin")).unwrap();
    fx.run("get /docs/r.bin down/").await.unwrap();
    assert_eq!(
        std::fs::read(fx.work().join("down/r.bin")).unwrap(),
        pattern(1000)
    );
    assert_eq!(names_in(&fx.work()), vec!["down".to_owned()]);
}

#[tokio::test]
async fn get_into_a_missing_local_folder_with_a_trailing_slash_is_refused() {
    let mut state = State::default();
    state.files.insert("r.bin".into(), pattern(10));
    let mut fx = Fixture::new(state).await;
    let before = fx.state.lock().unwrap().log.len();
    let err = fx.run("get r.bin nodir/").await.unwrap_err();
    assert!(
        err.to_string().starts_with("no such local folder ") && err.to_string().ends_with("nodir/"),
        "{err}"
    );
    assert!(
        names_in(&fx.work()).is_empty(),
        "{:?}",
        names_in(&fx.work())
    );
    assert_eq!(fx.state.lock().unwrap().log.len(), before, "nothing sent");
}

#[tokio::test]
async fn a_stalled_download_says_it_made_no_progress() {
    let mut state = State::default();
    state.files.insert("r.bin".into(), pattern(10));
    state.stall_transfers = true;
    let mut fx = Fixture::new(state).await;
    let err = fx.run("get r.bin").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(support::STALL_REASON), "{text}");
    assert!(!text.contains("integrity"), "{text}");
    assert!(
        names_in(&fx.work()).is_empty(),
        "{:?}",
        names_in(&fx.work())
    );
    // The session lives on.
    fx.state.lock().unwrap().stall_transfers = false;
    fx.run("get r.bin").await.unwrap();
}

#[tokio::test]
async fn a_stalled_upload_says_it_made_no_progress() {
    let state = State {
        stall_transfers: true,
        ..State::default()
    };
    let mut fx = Fixture::new(state).await;
    std::fs::write(fx.work().join("a.txt"), b"a").unwrap();
    let err = fx.run("put a.txt").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("made no progress"), "{text}");
    assert!(text.starts_with("timed out: "), "{text}");
    assert!(!text.contains("integrity"), "{text}");
}
