//! The real `sfs` client killed (SIGKILL) in the middle of a transfer over
//! kernel SCTP, then `sfs reget` / `sfs reput` completing it: the digests are
//! equal, and no byte of the interrupted run is lost or doubled. The link has a
//! 100 ms round trip so that a 24 MiB transfer takes long enough to kill.

mod client_util;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client_util::{run_ok, sha256sum, text, write_pattern, Scratch, Server};
use sfs_kernel_tests::netns::{Side, Topology};

const SIZE: usize = 24 << 20;

fn setup() -> (Topology, Server) {
    let topo = Topology::two_paths()
        .rtt(Duration::from_millis(100))
        .build()
        .expect("topology");
    let server = Server::start(&topo.addresses(Side::Server), |p| {
        topo.command(Side::Server, p)
    });
    (topo, server)
}

fn sfs(topo: &Topology, server: &Server, work: &Scratch) -> Command {
    let mut command = server.client_in("alice", work.path(), |p| topo.command(Side::Client, p));
    let local = topo
        .addresses(Side::Client)
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    command
        .arg("--local")
        .arg(local)
        .arg("-q")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Waits until `size` says enough of the transfer is there, then kills `child`
/// with SIGKILL. Panics if the transfer ends first.
fn kill_when(mut child: Child, what: &str, size: impl Fn() -> u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = size();
        if now >= (SIZE / 8) as u64 {
            break;
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the {what} ended before it could be killed ({now} bytes)"
        );
        assert!(Instant::now() < deadline, "the {what} did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert!(!status.success(), "{status:?}");
}

fn files_starting(dir: &std::path::Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn client_killed_mid_download_then_reget_completes_with_equal_digests() {
    let (topo, server) = setup();
    let work = Scratch::new("work");
    std::fs::create_dir_all(server.home("alice")).expect("home");
    write_pattern(&server.home("alice").join("big.bin"), SIZE);
    let digest = sha256sum(&server.home("alice").join("big.bin"));

    let part = work.path().join("big.bin.part");
    let child = sfs(&topo, &server, &work)
        .args(["get", "big.bin"])
        .spawn()
        .expect("sfs starts");
    kill_when(child, "download", || {
        std::fs::metadata(&part).map_or(0, |m| m.len())
    });
    assert!(part.exists(), "the killed client's .part is there");
    assert!(!work.path().join("big.bin").exists());

    let reget = run_ok(sfs(&topo, &server, &work).args(["reget", "big.bin"]));
    eprintln!("{}", text(&reget.stderr));
    assert_eq!(sha256sum(&work.path().join("big.bin")), digest);
    assert!(!part.exists());
}

#[test]
fn client_killed_mid_upload_then_reput_completes_with_equal_digests() {
    let (topo, server) = setup();
    let work = Scratch::new("work");
    let local = work.path().join("up.bin");
    write_pattern(&local, SIZE);
    let digest = sha256sum(&local);
    let home = server.home("alice");
    std::fs::create_dir_all(&home).expect("home");

    let child = sfs(&topo, &server, &work)
        .args(["put", "up.bin"])
        .spawn()
        .expect("sfs starts");
    kill_when(child, "upload", || {
        files_starting(&home, ".sfs-upload-")
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0)
    });
    // The server notices the association end and keeps what it wrote.
    let deadline = Instant::now() + Duration::from_secs(60);
    while files_starting(&home, ".sfs-upload-kept-").is_empty() {
        assert!(Instant::now() < deadline, "no partial upload kept");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!home.join("up.bin").exists());

    let reput = run_ok(sfs(&topo, &server, &work).args(["reput", "up.bin"]));
    let said = text(&reput.stderr);
    assert!(!said.contains("from the beginning"), "{said}");
    assert_eq!(sha256sum(&home.join("up.bin")), digest);
    assert!(files_starting(&home, ".sfs-upload-").is_empty());
}
