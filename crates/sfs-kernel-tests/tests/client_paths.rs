//! The `sfs` client and the real server on the two-path topology (two network
//! namespaces joined by two veth pairs): `status` shows both peer addresses and
//! then the cut one inactive; a download survives a path cut, told in one line.

mod client_util;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use client_util::{run_ok, sha256sum, text, write_pattern, Scratch, Server};
use sfs_kernel_tests::netns::{Path, Side, Topology};

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

/// An interactive `sfs` fed through a pipe, its stdout read line by line.
struct Interactive {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Interactive {
    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("the shell reads");
        self.stdin.flush().expect("flush");
    }

    /// Runs `status` and returns its lines (up to the `server:` line, its last).
    fn status(&mut self) -> Vec<String> {
        self.send("status");
        let mut block = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.lines.recv_timeout(left).expect("status answers");
            let last = line.contains("server: logged in as");
            block.push(line);
            if last {
                return block;
            }
        }
    }
}

fn path_line<'a>(status: &'a [String], addr: &str) -> &'a str {
    status
        .iter()
        .find(|l| l.trim_start().starts_with(addr))
        .unwrap_or_else(|| panic!("no line for {addr} in {status:#?}"))
}

/// The state word of `addr`'s line in `status` (`active`, `unconfirmed`, ...).
fn path_state<'a>(status: &'a [String], addr: &str) -> &'a str {
    path_line(status, addr)
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
}

#[test]
fn client_status_shows_both_paths_then_the_cut_one_inactive() {
    let (topo, server) = setup();
    let work = Scratch::new("work");
    let mut command = server.client_in("alice", work.path(), |p| topo.command(Side::Client, p));
    command
        .arg("--local")
        .arg(local_arg(&topo))
        .env("SFS_HISTORY", work.path().join("history"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn().expect("sfs starts");
    let stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            eprintln!("[sfs] {line}");
            let _ = tx.send(line);
        }
    });
    let mut shell = Interactive {
        child,
        stdin,
        lines,
    };

    let a = format!("{}:{}", topo.address(Side::Server, Path::A), server.port);
    let b = format!("{}:{}", topo.address(Side::Server, Path::B), server.port);
    let status = shell.status();
    assert!(
        status
            .iter()
            .any(|l| l.contains("paths: 2 peer address(es)")),
        "{status:#?}"
    );
    assert!(path_line(&status, &a).contains("active"), "{status:#?}");
    assert!(path_line(&status, &a).contains("primary"), "{status:#?}");
    // Path B has carried nothing yet: `unconfirmed` until a heartbeat comes
    // back on it (every 500 ms), then `active`; never `active` unanswered.
    assert!(
        ["active", "unconfirmed"].contains(&path_state(&status, &b)),
        "{status:#?}"
    );
    assert!(
        status.iter().any(|l| l.starts_with("streams: ")),
        "{status:#?}"
    );
    assert!(status.iter().any(|l| l.contains("TLS 1.3")), "{status:#?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while path_state(&shell.status(), &b) != "active" {
        assert!(Instant::now() < deadline, "path B never confirmed");
        std::thread::sleep(Duration::from_millis(200));
    }

    topo.cut(Path::A).expect("cut path A");
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        std::thread::sleep(Duration::from_millis(500));
        let status = shell.status();
        if path_line(&status, &a).contains("inactive") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "path A never went inactive: {status:#?}"
        );
    };
    assert!(!path_line(&after, &b).contains("inactive"), "{after:#?}");

    shell.send("quit");
    let exit = shell.child.wait().expect("sfs exits");
    assert!(exit.success(), "{exit}");
}

#[test]
fn client_a_download_survives_a_path_cut_and_says_so_in_one_line() {
    let (topo, server) = setup();
    // A 20 Mbit/s bottleneck on both paths, so that the transfer outlasts the few
    // seconds the kernel takes to declare the cut path failed, however fast the VM.
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
    let work = Scratch::new("work");
    let original = work.path().join("big.bin");
    // 24 MiB at 20 Mbit/s: at least 10 s, and TCG emulation is slower still.
    write_pattern(&original, 24 << 20);
    let digest = sha256sum(&original);
    run_ok(
        server
            .client_in("alice", work.path(), |p| topo.command(Side::Client, p))
            .args(["put", "big.bin"]),
    );

    let down = Scratch::new("down");
    let mut get = server
        .client_in("alice", down.path(), |p| topo.command(Side::Client, p))
        .args(["get", "big.bin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sfs starts");
    // Cut the primary path once a few MiB have arrived.
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
    topo.cut(Path::A).expect("cut path A");
    let output = get.wait_with_output().expect("sfs runs");
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{}\n{stderr}", output.status);
    assert_eq!(sha256sum(&down.path().join("big.bin")), digest);
    assert!(
        text(&output.stdout).contains(&digest),
        "{}",
        text(&output.stdout)
    );
    let a = topo.address(Side::Server, Path::A).to_string();
    let failover: Vec<&str> = stderr.lines().filter(|l| l.contains("path to")).collect();
    assert_eq!(failover.len(), 1, "one line for the failover: {stderr}");
    assert!(
        failover[0].contains(&a) && failover[0].contains("failed"),
        "{stderr}"
    );
    assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
    drop(topo);
}
