//! The `sfs` binary's own lines, before any server is reached: usage mistakes
//! as one line with a hint and exit 1, `help` without `--peer`, and the local
//! checks made before connecting (the password file's mode, the CA file).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

/// Runs `sfs` with `args`, without the environment's SFS_* settings.
fn sfs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sfs"))
        .args(args)
        .env_remove("SFS_PEER")
        .env_remove("SFS_PASSWORD")
        .env_remove("SFS_USER")
        .env_remove("SFS_CA")
        .output()
        .expect("sfs runs")
}

/// Standard error of a run that failed with exit code 1.
fn failure(args: &[&str]) -> String {
    let out = sfs(args);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
    assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn usage_mistakes_are_one_line_with_a_hint() {
    assert_eq!(
        failure(&["--peer", "127.0.0.1", "--password", "x", "ls"]),
        "sfs: unknown option --password; see sfs --help\n"
    );
    // Before --peer, a flag is still an unknown option, not a command name.
    assert_eq!(
        failure(&["--password", "x", "--peer", "127.0.0.1", "ls"]),
        "sfs: unknown option --password; see sfs --help\n"
    );
    assert_eq!(
        failure(&["--port", "abc", "--peer", "127.0.0.1"]),
        "sfs: \"abc\" is not a valid value for --port; see sfs --help\n"
    );
    assert_eq!(
        failure(&["--peer"]),
        "sfs: --peer needs a value; see sfs --help\n"
    );
    assert_eq!(
        failure(&["ls"]),
        "sfs: no server given: use --peer ADDR (or set SFS_PEER); see sfs --help\n"
    );
    assert_eq!(
        failure(&["--peer", "127.0.0.1", "frobnicate"]),
        "sfs: unknown command `frobnicate` (type `help` for the list)\n"
    );
}

#[test]
fn help_needs_no_server() {
    for args in [&["help"][..], &["--help"], &["help", "get"]] {
        let out = sfs(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {out:?}");
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    let topic = String::from_utf8(sfs(&["help", "get"]).stdout).unwrap();
    assert!(topic.starts_with("get [-"), "{topic}");
    assert_eq!(
        failure(&["help", "nosuch"]),
        "sfs: no command `nosuch` (type `help` for the list)\n"
    );
}

#[test]
fn a_password_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "secret\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let shown = file.display().to_string();
    assert_eq!(
        failure(&["--peer", "127.0.0.1", "--password-file", &shown, "ls"]),
        format!(
            "sfs: the password file {shown} can be read by others (mode 0644): run `chmod 600 {shown}`\n"
        )
    );
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(
        failure(&["--peer", "127.0.0.1", "--password-file", &shown, "ls"]).contains("(mode 0640)")
    );
    // 0600 passes that check; the next one, the CA file, is what fails here.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let ca = dir.path().join("missing-ca.pem").display().to_string();
    assert_eq!(
        failure(&[
            "--peer",
            "127.0.0.1",
            "--password-file",
            &shown,
            "--ca",
            &ca,
            "ls"
        ]),
        format!(
            "sfs: cannot read the CA certificate {ca}: no such file or directory (use --ca FILE, or run from the server's folder)\n"
        )
    );
    let missing = dir.path().join("no-pw").display().to_string();
    assert_eq!(
        failure(&["--peer", "127.0.0.1", "--password-file", &missing, "ls"]),
        format!("sfs: cannot read the password file {missing}: no such file or directory\n")
    );
}
