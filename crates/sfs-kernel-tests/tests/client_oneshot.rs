//! The real `sfs` client against the real `sfs-server` over kernel SCTP on
//! loopback (two addresses, so the association is multi-homed): one-shot commands,
//! a batch file with every command, and exit codes.

mod client_util;

use std::net::IpAddr;
use std::process::Command;

use client_util::{run_ok, sha256sum, text, write_pattern, Scratch, Server};

fn loopback_server() -> Server {
    let addrs: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()];
    Server::start(&addrs, |p| Command::new(p))
}

#[test]
fn client_one_shot_put_and_get_round_trip_with_matching_sha256() {
    let server = loopback_server();
    let work = Scratch::new("work");
    let original = work.path().join("data.bin");
    write_pattern(&original, 3_000_017);
    let digest = sha256sum(&original);

    let put = run_ok(
        server
            .client("alice", work.path())
            .args(["put", "data.bin", "remote.bin"]),
    );
    let put_out = text(&put.stdout);
    assert!(
        put_out.contains(&digest),
        "put reports the digest: {put_out}"
    );
    assert_eq!(sha256sum(&server.home("alice").join("remote.bin")), digest);

    let get = run_ok(
        server
            .client("alice", work.path())
            .args(["get", "remote.bin", "back.bin"]),
    );
    assert!(text(&get.stdout).contains(&digest), "{}", text(&get.stdout));
    assert_eq!(sha256sum(&work.path().join("back.bin")), digest);
    assert!(!work.path().join("back.bin.part").exists());

    let remote_digest = run_ok(
        server
            .client("alice", work.path())
            .args(["digest", "remote.bin"]),
    );
    assert!(text(&remote_digest.stdout).starts_with(&digest));

    let ls = run_ok(server.client("alice", work.path()).args(["ls", "/"]));
    assert!(
        text(&ls.stdout).contains("remote.bin"),
        "{}",
        text(&ls.stdout)
    );
}

#[test]
fn client_failing_commands_exit_non_zero_with_one_line_on_stderr() {
    let server = loopback_server();
    let work = Scratch::new("work");

    let missing = server
        .client("alice", work.path())
        .args(["get", "no-such-file"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    let stderr = text(&missing.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("sfs: "), "{stderr}");
    assert!(!work.path().join("no-such-file").exists());
    assert!(!work.path().join("no-such-file.part").exists());

    std::fs::write(work.path().join("wrong"), "not the password\n").unwrap();
    client_util::private(&work.path().join("wrong"));
    let wrong = server
        .client("alice", work.path())
        .arg("--password-file")
        .arg(work.path().join("wrong"))
        .arg("pwd")
        .output()
        .unwrap();
    assert_ne!(wrong.status.code(), Some(0), "{wrong:?}");
    assert!(
        text(&wrong.stderr).contains("login failed"),
        "{}",
        text(&wrong.stderr)
    );

    let unknown = server
        .client("alice", work.path())
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_ne!(unknown.status.code(), Some(0));
    assert!(
        text(&unknown.stderr).contains("unknown command"),
        "{}",
        text(&unknown.stderr)
    );

    // A batch stops at its first failure, and says which line.
    std::fs::write(
        work.path().join("batch"),
        "pwd\nrm no-such-file\nmkdir never-made\n",
    )
    .unwrap();
    let batch = server
        .client("alice", work.path())
        .arg("-b")
        .arg(work.path().join("batch"))
        .output()
        .unwrap();
    assert_eq!(batch.status.code(), Some(1));
    assert!(
        text(&batch.stderr).contains("line 2"),
        "{}",
        text(&batch.stderr)
    );
    assert!(!server.home("alice").join("never-made").exists());

    // With --keep-going it carries on, and still exits non-zero.
    let batch = server
        .client("alice", work.path())
        .arg("--keep-going")
        .arg("-b")
        .arg(work.path().join("batch"))
        .output()
        .unwrap();
    assert_eq!(batch.status.code(), Some(1));
    assert!(server.home("alice").join("never-made").is_dir());
}

#[test]
fn client_a_batch_file_runs_every_command() {
    let server = loopback_server();
    let work = Scratch::new("work");
    write_pattern(&work.path().join("one.bin"), 100_000);
    write_pattern(&work.path().join("two.bin"), 200_000);
    std::fs::create_dir(work.path().join("sub")).unwrap();
    let batch = "\
# every command, original names and aliases
help
help get
status
lpwd
lls
lcd sub
lcd ..
MKD docs
mkdir docs/old
rmdir docs/old
CWD docs
pwd
STOR one.bin
put two.bin second.bin
LIST
ls /docs
CDUP
cd /
mput one.bin two.bin
size docs/one.bin
stat docs/one.bin
digest docs/one.bin
mv docs/second.bin docs/renamed.bin
RETR docs/one.bin one.copy
get docs/renamed.bin sub/renamed.copy
mget one.bin two.bin
SHAR docs bob r
share docs/one.bin bob rw
shares
UNSH docs/one.bin bob
shared
SHWM
DELE one.bin
rm two.bin
- rm already-gone
quit
";
    std::fs::write(work.path().join("all.sfs"), batch).unwrap();
    let output = run_ok(
        server
            .client("alice", work.path())
            .arg("-b")
            .arg(work.path().join("all.sfs")),
    );
    let out = text(&output.stdout);
    for expected in [
        "get REMOTE [LOCAL]",
        "streams:",
        "/docs",
        "one.bin",
        "renamed",
        "shared docs with bob",
    ] {
        assert!(out.contains(expected), "`{expected}` missing from:\n{out}");
    }
    let home = server.home("alice");
    assert!(home.join("docs/one.bin").is_file());
    assert!(home.join("docs/renamed.bin").is_file());
    assert!(!home.join("docs/second.bin").exists());
    assert!(!home.join("docs/old").exists());
    assert!(!home.join("one.bin").exists(), "deleted");
    assert_eq!(
        sha256sum(&work.path().join("one.copy")),
        sha256sum(&work.path().join("one.bin"))
    );
    assert_eq!(
        sha256sum(&work.path().join("sub/renamed.copy")),
        sha256sum(&work.path().join("two.bin"))
    );

    // bob sees the share under /shared/alice and can read through it.
    let shared = run_ok(server.client("bob", work.path()).arg("shared"));
    assert!(
        text(&shared.stdout).contains("/shared/alice/docs"),
        "{}",
        text(&shared.stdout)
    );
    let bob_dir = Scratch::new("bob");
    run_ok(
        server
            .client("bob", bob_dir.path())
            .args(["get", "/shared/alice/docs/one.bin"]),
    );
    assert_eq!(
        sha256sum(&bob_dir.path().join("one.bin")),
        sha256sum(&work.path().join("one.bin"))
    );
}
