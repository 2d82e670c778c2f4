//! The habits users bring from sftp, through the real `sfs` binary against the
//! real `sfs-server` over kernel SCTP on loopback: commands piped in run as a
//! batch whose exit code says whether any failed (`sftp -b -`), a one-shot upload
//! of a missing local file is refused before connecting, `ls -a`, `mv -f`,
//! `rm -r`, and an admin reaching another user's files under `/shared/OWNER`.

mod client_util;

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use client_util::{run_ok, text, Scratch, Server};

fn loopback_server() -> Server {
    let addrs: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()];
    Server::start(&addrs, |p| Command::new(p))
}

/// `sfs` as alice (an admin here) with `commands` on its standard input and
/// `args` after the connection flags.
fn piped(server: &Server, work: &Path, args: &[&str], commands: &str) -> Output {
    let mut child = server
        .client("alice", work)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sfs starts");
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(commands.as_bytes()).expect("sfs reads");
    drop(stdin);
    child.wait_with_output().expect("sfs exits")
}

#[test]
fn client_piped_commands_are_a_batch_and_the_exit_code_says_whether_any_failed() {
    let server = loopback_server();
    let work = Scratch::new("work");
    let home = server.home("alice");

    let out = piped(&server, work.path(), &[], "mkdir a\nmkdir a\nmkdir b\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        text(&out.stderr).contains("line 2"),
        "{}",
        text(&out.stderr)
    );
    assert!(home.join("a").is_dir());
    assert!(
        !home.join("b").exists(),
        "the first failure stops the batch"
    );

    // A leading `-` lets a line fail; `-b -` is the same as piping.
    for args in [&[][..], &["-b", "-"]] {
        let out = piped(&server, work.path(), args, "-mkdir a\nmkdir c\nrmdir c\n");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    }
    // --keep-going runs the rest and still exits 1.
    let out = piped(
        &server,
        work.path(),
        &["--keep-going"],
        "rm gone\nmkdir d\n",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(home.join("d").is_dir());
}

#[test]
fn client_one_shot_put_of_a_missing_file_is_refused_before_connecting() {
    let server = loopback_server();
    let work = Scratch::new("work");
    for args in [
        &["put", "gone.txt"][..],
        &["mput", "gone.txt"],
        &["reput", "gone.txt"],
    ] {
        let out = server
            .client("alice", work.path())
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(text(&out.stderr), "sfs: no such local file gone.txt\n");
    }
}

#[test]
fn client_ls_a_mv_f_and_rm_r_behave_as_in_sftp() {
    let server = loopback_server();
    let work = Scratch::new("work");
    let home = server.home("alice");
    std::fs::write(work.path().join(".profile"), "p").unwrap();
    std::fs::write(work.path().join("a"), "new").unwrap();
    std::fs::write(work.path().join("b"), "old").unwrap();
    run_ok(
        server
            .client("alice", work.path())
            .args(["mput", ".profile", "a", "b"]),
    );

    let plain = text(&run_ok(server.client("alice", work.path()).args(["ls", "-1"])).stdout);
    assert!(!plain.contains(".profile"), "{plain}");
    assert!(plain.lines().any(|l| l == "a"), "{plain}");
    let all = text(&run_ok(server.client("alice", work.path()).args(["ls", "-la"])).stdout);
    assert!(all.contains(" .profile"), "{all}");

    let mv = server
        .client("alice", work.path())
        .args(["mv", "a", "b"])
        .output()
        .unwrap();
    assert_eq!(mv.status.code(), Some(1));
    assert_eq!(
        text(&mv.stderr),
        "sfs: b already exists: use mv -f to replace it\n"
    );
    run_ok(
        server
            .client("alice", work.path())
            .args(["mv", "-f", "a", "b"]),
    );
    assert_eq!(std::fs::read_to_string(home.join("b")).unwrap(), "new");

    std::fs::create_dir_all(home.join("tree/deep")).unwrap();
    std::fs::write(home.join("tree/deep/f"), "f").unwrap();
    run_ok(
        server
            .client("alice", work.path())
            .args(["rm", "-r", "tree"]),
    );
    assert!(!home.join("tree").exists());
}

#[test]
fn client_an_admin_reaches_another_users_files_under_shared_owner() {
    let server = loopback_server();
    let work = Scratch::new("work");
    let bob = server.home("bob");
    std::fs::create_dir_all(bob.join("old")).unwrap();
    std::fs::write(bob.join("notes.txt"), "bob's notes").unwrap();
    std::fs::write(bob.join("old/x"), "x").unwrap();

    let ls = text(
        &run_ok(
            server
                .client("alice", work.path())
                .args(["ls", "-1", "/shared"]),
        )
        .stdout,
    );
    assert!(ls.lines().any(|l| l == "bob"), "{ls}");
    run_ok(
        server
            .client("alice", work.path())
            .args(["get", "/shared/bob/notes.txt"]),
    );
    assert_eq!(
        std::fs::read_to_string(work.path().join("notes.txt")).unwrap(),
        "bob's notes"
    );
    let whole = server
        .client("alice", work.path())
        .args(["rm", "-rf", "/shared/bob"])
        .output()
        .unwrap();
    assert_eq!(whole.status.code(), Some(1));
    assert!(
        text(&whole.stderr).contains("rm -r does not delete /shared/bob"),
        "{}",
        text(&whole.stderr)
    );
    assert!(bob.join("notes.txt").exists());
    run_ok(
        server
            .client("alice", work.path())
            .args(["rm", "-rf", "/shared/bob/old"]),
    );
    assert!(!bob.join("old").exists());
}
