//! The exact line the user reads for each kind of failure, against the real
//! server over the in-memory transport (and the test double for certificates):
//! every message says what failed, on which path, once, and what to do.

mod real_server;
mod support;

use std::sync::Arc;
use std::time::Duration;

use real_server::{Server, PASSWORD, STREAMS};
use sfs_client::command::parse_line;
use sfs_client::connection::{tls_failure, ClientError, Credentials, Remote, Reporter};
use sfs_client::shell::Shell;
use sfs_net::memory::{memory_pair, MemoryTransport};
use sfs_proto::testing::TestPki;
use sfs_server::context::SessionSettings;
use sfs_server::limits::Refusal;

/// A shell on a real server for alice, with a folder `docs` and a file `a.txt`
/// in her home, working locally in a temporary folder.
async fn shell(server: &Server) -> Shell<MemoryTransport> {
    let (connection, cwd, _) = server.connect().await;
    std::fs::create_dir_all(server.home().join("docs")).unwrap();
    std::fs::write(server.home().join("a.txt"), b"a").unwrap();
    let work = server.dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    Shell::new(connection, cwd, work, Box::new(std::io::sink()), true)
}

/// The line `sfs: ...` shows for a failed command (without the `sfs: `).
async fn line(shell: &mut Shell<MemoryTransport>, command: &str) -> String {
    let command = parse_line(command).unwrap().unwrap();
    shell.execute(command).await.unwrap_err().to_string()
}

#[tokio::test]
async fn refusals_name_the_path_once_and_say_what_to_do() {
    let server = Server::new(SessionSettings::default());
    let mut shell = shell(&server).await;
    let cases = [
        ("get docs", "docs: is a folder (use `get -r` for a folder)"),
        (
            "rm docs",
            "docs: is a folder (use `rm -r` to delete it with everything in it, or `rmdir` if it is empty)",
        ),
        ("rmdir a.txt", "a.txt: not a folder (use `rm` for a file)"),
        ("cd a.txt", "a.txt: not a folder"),
        ("get missing.txt", "missing.txt: no such file or folder"),
        ("ls /nope", "/nope: no such file or folder"),
        (
            "mkdir docs",
            "docs: a file or folder with that name already exists",
        ),
        ("share a.txt bob r", "bob: no such user"),
    ];
    for (command, expected) in cases {
        assert_eq!(line(&mut shell, command).await, expected, "{command}");
    }
    let long = "a".repeat(5000);
    assert_eq!(
        line(&mut shell, &format!("stat {long}")).await,
        "the path is too long: at most 4096 bytes"
    );
    // Checked before any request, and named as typed.
    assert_eq!(
        line(&mut shell, "put nothere.txt").await,
        "no such local file nothere.txt"
    );
}

#[tokio::test]
async fn an_idle_session_ends_with_its_reason() {
    let settings = SessionSettings {
        idle_timeout: Some(Duration::from_secs(1)),
        ..SessionSettings::default()
    };
    let server = Server::new(settings);
    let (mut connection, _, _) = server.connect().await;
    // The shell waiting for the user, without keepalives.
    connection.set_keepalive(Duration::from_secs(3600));
    connection
        .idle_until(tokio::time::sleep(Duration::from_millis(1500)))
        .await;
    let err = connection
        .request(sfs_proto::control::Command::Pwd)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Closed(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the server ended the session: idle for 1 second"
    );
    assert_eq!(
        connection.closed_reason(),
        Some("the server ended the session: idle for 1 second")
    );
}

#[tokio::test]
async fn a_refused_connection_says_why() {
    let server = Server::new(SessionSettings::default());
    for (refusal, expected) in [
        (
            Refusal::PerSource { limit: 4 },
            "the server turned the connection away: too many connections from your address; the limit is 4",
        ),
        (
            Refusal::Full,
            "the server turned the connection away: the server is full; try again later",
        ),
    ] {
        let (client_end, server_end) = memory_pair(STREAMS);
        tokio::spawn(sfs_server::connection::refuse(
            server.ctx.clone(),
            server_end.into(),
            server.shutdown.subscribe(),
            refusal,
        ));
        let credentials = Credentials {
            user: "alice".into(),
            password: PASSWORD.to_owned().into(),
            register: false,
        };
        let err = Remote::open(
            client_end,
            server.pki.client_config(),
            "localhost".try_into().unwrap(),
            &credentials,
            Reporter::hidden(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), expected);
    }
}

#[tokio::test]
async fn registration_on_a_closed_server_says_so() {
    let server = Server::new(SessionSettings::default());
    let (client_end, server_end) = memory_pair(STREAMS);
    tokio::spawn(sfs_server::connection::serve(
        server.ctx.clone(),
        server_end,
        server.shutdown.subscribe(),
    ));
    let credentials = Credentials {
        user: "carol".into(),
        password: "a long enough password".to_owned().into(),
        register: true,
    };
    let err = Remote::open(
        client_end,
        server.pki.client_config(),
        "localhost".try_into().unwrap(),
        &credentials,
        Reporter::hidden(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "this server does not allow registration");
}

/// Connects to a double serving `server`'s certificate, trusting `trusted`'s CA.
async fn certificate_failure(server: &TestPki, trusted: &TestPki) -> ClientError {
    let transport = support::start(server, Arc::default());
    Remote::open(
        transport,
        trusted.client_config(),
        "localhost".try_into().unwrap(),
        &support::alice(),
        Reporter::hidden(),
    )
    .await
    .unwrap_err()
}

#[tokio::test]
async fn certificate_problems_name_the_ca_file_and_the_fix() {
    let server = TestPki::new(&["localhost"]);
    let other = TestPki::new(&["localhost"]);
    let ClientError::Tls(tls) = certificate_failure(&server, &other).await else {
        panic!("expected a TLS failure");
    };
    assert_eq!(
        tls_failure(&tls, Some("certs/ca.pem")),
        "the server's certificate is not signed by the CA in certs/ca.pem (use --ca FILE)"
    );
    let expired = TestPki::expired(&["localhost"]);
    let err = certificate_failure(&expired, &expired).await;
    assert_eq!(
        err.to_string(),
        "the server's certificate expired on 2002-01-01 00:00 UTC: the server's admin must renew it (sfs-admin cert init)"
    );
}
