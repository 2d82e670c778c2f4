//! The `sfs-server` binary's startup checks, run as a user would run it.

use std::path::Path;
use std::process::{Command, Output};

fn server(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sfs-server"))
        .current_dir(dir)
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write_cert(dir: &Path) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    std::fs::write(dir.join("certs/server.pem"), generated.cert.pem()).unwrap();
    std::fs::write(
        dir.join("certs/server.key"),
        generated.signing_key.serialize_pem(),
    )
    .unwrap();
}

#[test]
fn missing_certificate_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = server(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("certificate certs/server.pem does not exist"),
        "{text}"
    );
    assert!(text.contains("sfs-admin cert init"), "{text}");
}

#[test]
fn missing_or_bad_key_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path());
    std::fs::remove_file(dir.path().join("certs/server.key")).unwrap();
    let text = stderr(&server(dir.path(), &[]));
    assert!(
        text.contains("private key certs/server.key does not exist"),
        "{text}"
    );

    std::fs::write(dir.path().join("certs/server.key"), "not a key\n").unwrap();
    let output = server(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("private key certs/server.key is not usable"),
        "{text}"
    );

    // A certificate file holding only a key is not a certificate.
    std::fs::copy(
        dir.path().join("certs/server.pem"),
        dir.path().join("certs/server.key"),
    )
    .unwrap();
    let text = stderr(&server(dir.path(), &["--cert", "certs/server.key"]));
    assert!(text.contains("is not usable"), "{text}");
}

#[test]
fn corrupt_users_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path());
    std::fs::write(
        dir.path().join("users.json"),
        "{\"version\":1,\"users\":[{]}",
    )
    .unwrap();
    let output = server(dir.path(), &[]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("users file users.json is corrupt"), "{text}");
    assert!(text.contains("line 1 column"), "{text}");
}

#[test]
fn bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.toml"), "port = \"x\"\n").unwrap();
    let output = server(dir.path(), &["--config", "s.toml"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("config file s.toml is invalid"));
    let output = server(dir.path(), &["--bcrypt-cost", "99"]);
    assert!(stderr(&output).contains("bcrypt_cost must be 4 to 31"));
}

/// An address of TEST-NET-1 (RFC 5737), assigned to no host: binding it fails with
/// or without kernel SCTP, so the server always stops after its checks.
const UNBINDABLE: &str = "192.0.2.1";

/// True for the two ways binding `UNBINDABLE` fails.
fn bind_failed(text: &str) -> bool {
    text.contains("kernel SCTP is not available: load it with `sudo modprobe sctp`")
        || text.contains("an address is not assigned to this host")
}

#[test]
fn good_setup_passes_the_checks_and_stops_only_at_binding() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path());
    let output = server(dir.path(), &["--allow-registration", "--bind", UNBINDABLE]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(text.contains("configuration ok (0 account(s)"), "{text}");
    assert!(bind_failed(&text), "{text}");
}

#[test]
fn unusable_root_or_log_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path());
    std::fs::write(dir.path().join("not_a_dir"), b"").unwrap();
    let output = server(dir.path(), &["--root", "not_a_dir"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("cannot use not_a_dir as the root of the homes"),
        "{text}"
    );

    let output = server(dir.path(), &["--log-file", "missing/dir/server.log"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("cannot open log file missing/dir/server.log"),
        "{text}"
    );
}

#[test]
fn startup_sweeps_stale_uploads_and_creates_private_folders() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path());
    std::fs::create_dir_all(dir.path().join("server_files/alice")).unwrap();
    std::fs::write(dir.path().join("server_files/alice/.sfs-upload-00"), b"x").unwrap();
    std::fs::write(dir.path().join("server_files/alice/keep"), b"x").unwrap();
    let output = server(
        dir.path(),
        &["--root", "server_files", "--bind", UNBINDABLE],
    );
    assert!(bind_failed(&stderr(&output)), "{}", stderr(&output));
    assert!(!dir
        .path()
        .join("server_files/alice/.sfs-upload-00")
        .exists());
    assert!(dir.path().join("server_files/alice/keep").exists());
    let log = std::fs::metadata(dir.path().join("server.log")).unwrap();
    assert_eq!(log.permissions().mode() & 0o777, 0o600);

    let fresh = tempfile::tempdir().unwrap();
    write_cert(fresh.path());
    server(fresh.path(), &["--bind", UNBINDABLE]);
    let root = std::fs::metadata(fresh.path().join("server_files")).unwrap();
    assert_eq!(root.permissions().mode() & 0o777, 0o700);
}
