//! `sfs-admin` run as a user would run it, on a temporary folder.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sfs_state::accounts::{verify_password, Password, Role, Username, UsersFile};
use sfs_state::path::VirtualPath;
use sfs_state::shares::{Rights, SharesFile};

/// Runs `sfs-admin` in `dir` with stdin not a terminal; cost 4 keeps bcrypt fast.
fn admin(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sfs-admin"));
    command
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("SFS_TEST_PW");
    if args.first() == Some(&"user") {
        command.args(["--bcrypt-cost", "4"]);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn fails(output: Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8(output.stderr).unwrap()
}

fn name(text: &str) -> Username {
    Username::parse(text).unwrap()
}

fn password_matches(dir: &Path, user: &str, password: &str) -> bool {
    let db = UsersFile::new(dir.join("users.json")).load().unwrap();
    let record = db.user(&name(user)).unwrap();
    verify_password(
        &Password::new(password.as_bytes().to_vec()).unwrap(),
        &record.hash,
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn user_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = [("SFS_TEST_PW", "alice's secret")];
    let out = ok(admin(
        d,
        &[
            "user",
            "add",
            "alice",
            "--role",
            "admin",
            "--password-env",
            "SFS_TEST_PW",
        ],
        &pw,
    ));
    assert!(out.contains("added admin 'alice'"), "{out}");
    assert!(!out.contains("secret"), "{out}");
    assert_eq!(mode(&d.join("users.json")), 0o600);
    assert!(password_matches(d, "alice", "alice's secret"));

    std::fs::write(d.join("bob.pw"), "bob password\n").unwrap();
    ok(admin(
        d,
        &["user", "add", "bob", "--password-file", "bob.pw"],
        &[],
    ));
    assert!(password_matches(d, "bob", "bob password"));

    let list = ok(admin(d, &["user", "list"], &[]));
    let lines: Vec<_> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with("alice")
            && lines[0].contains("admin")
            && lines[0].ends_with("enabled")
    );
    assert!(lines[1].starts_with("bob") && lines[1].contains("user"));

    ok(admin(d, &["user", "role", "bob", "admin"], &[]));
    ok(admin(d, &["user", "role", "alice", "user"], &[]));
    let db = UsersFile::new(d.join("users.json")).load().unwrap();
    assert_eq!(db.user(&name("bob")).unwrap().role, Role::Admin);
    assert_eq!(db.user(&name("alice")).unwrap().role, Role::User);

    ok(admin(
        d,
        &["user", "passwd", "bob", "--password-env", "SFS_TEST_PW"],
        &[("SFS_TEST_PW", "new bob password")],
    ));
    assert!(password_matches(d, "bob", "new bob password"));
    assert!(!password_matches(d, "bob", "bob password"));

    ok(admin(d, &["user", "disable", "bob"], &[]));
    assert!(ok(admin(d, &["user", "list"], &[])).contains("disabled"));
    ok(admin(d, &["user", "enable", "bob"], &[]));

    // Removing bob also removes the shares by and to him.
    let users = UsersFile::new(d.join("users.json")).load().unwrap();
    SharesFile::new(d.join("shares.json"))
        .update(|shares| {
            shares.grant(
                &name("alice"),
                &VirtualPath::parse("/a").unwrap(),
                &name("bob"),
                Rights::READ,
                &users,
            )
        })
        .unwrap();
    let out = ok(admin(d, &["user", "remove", "bob"], &[]));
    assert!(out.contains("1 share(s) dropped"), "{out}");
    assert_eq!(
        SharesFile::new(d.join("shares.json"))
            .load()
            .unwrap()
            .all()
            .count(),
        0
    );
    assert_eq!(
        UsersFile::new(d.join("users.json")).load().unwrap().len(),
        1
    );
}

#[test]
fn bad_input_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = [("SFS_TEST_PW", "long enough")];
    ok(admin(
        d,
        &["user", "add", "alice", "--password-env", "SFS_TEST_PW"],
        &pw,
    ));
    let before = std::fs::read(d.join("users.json")).unwrap();

    let err = fails(admin(
        d,
        &["user", "add", "alice", "--password-env", "SFS_TEST_PW"],
        &pw,
    ));
    assert!(err.contains("user 'alice' already exists"), "{err}");
    let err = fails(admin(
        d,
        &["user", "add", "Bad/Name", "--password-env", "SFS_TEST_PW"],
        &pw,
    ));
    assert!(err.contains("invalid username 'Bad/Name'"), "{err}");
    let long = "x".repeat(73);
    let err = fails(admin(
        d,
        &["user", "add", "carol", "--password-env", "SFS_TEST_PW"],
        &[("SFS_TEST_PW", &long)],
    ));
    assert!(err.contains("longer than 72 bytes"), "{err}");
    let err = fails(admin(
        d,
        &["user", "add", "carol", "--password-env", "SFS_TEST_PW"],
        &[("SFS_TEST_PW", "")],
    ));
    assert!(err.contains("empty"), "{err}");
    let err = fails(admin(
        d,
        &["user", "add", "carol", "--password-env", "SFS_TEST_PW"],
        &[],
    ));
    assert!(err.contains("SFS_TEST_PW is not set"), "{err}");
    let err = fails(admin(d, &["user", "remove", "nobody"], &[]));
    assert!(err.contains("no user 'nobody'"), "{err}");
    let err = fails(admin(d, &["user", "passwd", "nobody", "--generate"], &[]));
    assert!(err.contains("no user 'nobody'"), "{err}");
    // clap refuses bad roles and two password sources at once (exit code 2).
    let output = admin(d, &["user", "role", "alice", "root"], &[]);
    assert_eq!(output.status.code(), Some(2));
    let output = admin(
        d,
        &["user", "add", "dave", "--generate", "--password-env", "X"],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));

    assert_eq!(std::fs::read(d.join("users.json")).unwrap(), before);

    std::fs::write(d.join("users.json"), "{ not json").unwrap();
    let err = fails(admin(d, &["user", "list"], &[]));
    assert!(err.contains("users.json is corrupt"), "{err}");
}

#[test]
fn each_error_is_one_plain_line_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let add = ["user", "add", "alice", "--password-env", "SFS_TEST_PW"];
    let line = |args: &[&str], env: &[(&str, &str)]| fails(admin(d, args, env));

    assert_eq!(
        line(&add, &[("SFS_TEST_PW", "1234567")]),
        "sfs-admin: error: the password is too short: use at least 8 characters\n"
    );
    assert_eq!(
        line(&add, &[("SFS_TEST_PW", "")]),
        "sfs-admin: error: the password is empty: use at least 8 characters\n"
    );
    assert_eq!(
        line(&add, &[("SFS_TEST_PW", &"x".repeat(73))]),
        "sfs-admin: error: the password is longer than 72 bytes: use a shorter one\n"
    );
    assert_eq!(
        line(&add, &[]),
        "sfs-admin: error: environment variable SFS_TEST_PW is not set \
         (export it, or use --password-file FILE)\n"
    );
    assert_eq!(
        line(
            &["user", "add", "alice", "--password-file", "missing.txt"],
            &[]
        ),
        "sfs-admin: error: cannot read the password file missing.txt: no such file or folder\n"
    );
    // The minimum is configurable, like the server's `min_password_chars`.
    let short = [("SFS_TEST_PW", "abc")];
    let mut add_short = add.to_vec();
    add_short.extend(["--min-password-chars", "3"]);
    ok(admin(d, &add_short, &short));
    assert_eq!(
        line(
            &["user", "passwd", "alice", "--password-env", "SFS_TEST_PW"],
            &short
        ),
        "sfs-admin: error: the password is too short: use at least 8 characters\n"
    );

    assert_eq!(
        line(&add, &[("SFS_TEST_PW", "long enough")]),
        "sfs-admin: error: user 'alice' already exists in users.json \
         (sfs-admin user passwd alice sets a new password)\n"
    );
    for args in [
        &["user", "remove", "nobody"][..],
        &["user", "passwd", "nobody", "--generate"],
        &["user", "role", "nobody", "admin"],
        &["user", "disable", "nobody"],
    ] {
        assert_eq!(
            line(args, &[]),
            "sfs-admin: error: no user 'nobody' in users.json (see sfs-admin user list)\n",
            "{args:?}"
        );
    }
    // The users file's I/O error is said once, in plain words.
    assert_eq!(
        line(
            &[
                "user",
                "add",
                "bob",
                "--generate",
                "--users",
                "no/such/users.json"
            ],
            &[]
        ),
        "sfs-admin: error: users file no/such/users.json: no such file or folder\n"
    );
}

#[test]
fn without_a_password_source_or_terminal_a_random_password_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ok(admin(d, &["user", "add", "erin"], &[]));
    let line = out
        .lines()
        .find(|l| l.starts_with("generated password for 'erin': "))
        .unwrap_or_else(|| panic!("{out}"));
    let password = line.rsplit(": ").next().unwrap();
    assert_eq!(password.len(), 20);
    assert!(password_matches(d, "erin", password));
    // A second account gets a different password.
    let out = ok(admin(d, &["user", "add", "frank"], &[]));
    assert!(!out.contains(password));
}

fn verifier(ca_pem: &Path) -> Arc<WebPkiServerVerifier> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap()
}

#[test]
fn cert_init_makes_a_ca_and_a_server_cert_valid_for_every_san() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = ok(admin(
        d,
        &[
            "cert",
            "init",
            "--san",
            "127.0.0.1",
            "--san",
            "127.0.0.2",
            "--san",
            "::1",
            "--san",
            "localhost",
        ],
        &[],
    ));
    assert!(out.contains("certs/ca.pem"), "{out}");
    let certs = d.join("certs");
    assert_eq!(mode(&certs.join("ca.key")), 0o600);
    assert_eq!(mode(&certs.join("server.key")), 0o600);
    assert!(std::fs::read_to_string(certs.join("ca.key"))
        .unwrap()
        .contains("PRIVATE KEY"));

    let verifier = verifier(&certs.join("ca.pem"));
    let leaf = CertificateDer::from_pem_file(certs.join("server.pem")).unwrap();
    let now = UnixTime::now();
    for san in ["127.0.0.1", "127.0.0.2", "::1", "localhost"] {
        let server_name = ServerName::try_from(san).unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &server_name, &[], now)
            .unwrap_or_else(|e| panic!("{san}: {e}"));
    }
    for other in ["127.0.0.3", "example.com"] {
        let server_name = ServerName::try_from(other).unwrap();
        assert!(
            verifier
                .verify_server_cert(&leaf, &[], &server_name, &[], now)
                .is_err(),
            "{other}"
        );
    }

    // The key matches the server certificate in the way the server will load it.
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(certs.join("server.key")).unwrap();
    let provider = rustls::crypto::ring::default_provider();
    let signing_key = provider.key_provider.load_private_key(key).unwrap();
    let certified = rustls::sign::CertifiedKey::new(vec![leaf.clone()], signing_key);
    certified.keys_match().unwrap();

    // A second init refuses to overwrite; --force replaces, and the old CA no longer
    // vouches for the new server certificate.
    let err = fails(admin(d, &["cert", "init", "--san", "127.0.0.1"], &[]));
    assert!(err.contains("exists (use --force"), "{err}");
    ok(admin(
        d,
        &["cert", "init", "--san", "127.0.0.1", "--force"],
        &[],
    ));
    let new_leaf = CertificateDer::from_pem_file(certs.join("server.pem")).unwrap();
    let ip = ServerName::try_from("127.0.0.1").unwrap();
    assert!(verifier
        .verify_server_cert(&new_leaf, &[], &ip, &[], now)
        .is_err());
    verifier_for(&certs)
        .verify_server_cert(&new_leaf, &[], &ip, &[], now)
        .unwrap();
}

fn verifier_for(certs: &Path) -> Arc<WebPkiServerVerifier> {
    verifier(&certs.join("ca.pem"))
}

/// What the server checks before it listens, done here without linking the server:
/// the users file loads with hashes at the configured cost, the chain and key parse,
/// the key is private to its owner, and rustls accepts them as a TLS 1.3 server
/// identity (which also checks that the key belongs to the leaf).
#[test]
fn cert_init_output_passes_the_server_startup_checks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(admin(d, &["cert", "init", "--san", "127.0.0.1"], &[]));
    ok(admin(d, &["user", "add", "alice", "--generate"], &[]));
    let users = UsersFile::new(d.join("users.json")).load().unwrap();
    assert_eq!(users.len(), 1);
    assert!(users.users().all(|r| r.hash.cost() == Some(4)));
    let chain_pem = std::fs::read(d.join("certs/server.pem")).unwrap();
    let key_pem = std::fs::read(d.join("certs/server.key")).unwrap();
    let chain: Vec<_> = CertificateDer::pem_slice_iter(&chain_pem)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(chain.len(), 1);
    let key_mode = std::fs::metadata(d.join("certs/server.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o077, 0, "{key_mode:o}");
    sfs_proto::tls::server_config(&chain_pem, &key_pem).unwrap();
}

#[test]
fn concurrent_admin_processes_lose_no_account() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let children: Vec<_> = (0..12)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_sfs-admin"))
                .current_dir(d)
                .args([
                    "user",
                    "add",
                    &format!("user{i}"),
                    "--generate",
                    "--bcrypt-cost",
                    "4",
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(
        UsersFile::new(d.join("users.json")).load().unwrap().len(),
        12
    );
}

#[test]
fn remove_archives_the_home_so_a_new_account_of_that_name_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pw = [("SFS_TEST_PW", "password one")];
    ok(admin(
        d,
        &["user", "add", "alice", "--password-env", "SFS_TEST_PW"],
        &pw,
    ));
    std::fs::create_dir_all(d.join("server_files/alice/docs")).unwrap();
    std::fs::write(d.join("server_files/alice/docs/secret.txt"), b"old").unwrap();
    let out = ok(admin(d, &["user", "remove", "alice"], &[]));
    assert!(out.contains("home archived to"), "{out}");
    assert!(!d.join("server_files/alice").exists());
    let archived: Vec<_> = std::fs::read_dir(d.join("server_files/.removed"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archived.len(), 1);
    assert!(archived[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("alice-"));
    assert_eq!(
        std::fs::read(archived[0].join("docs/secret.txt")).unwrap(),
        b"old"
    );
    // The help says what happens to the home.
    let help = ok(admin(d, &["user", "remove", "--help"], &[]));
    assert!(help.contains(".removed"), "{help}");
}
