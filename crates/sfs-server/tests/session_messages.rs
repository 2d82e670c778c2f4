//! What the server tells an auditor and a refused client, line by line: refused
//! paths in the audit log, and the per-(source, user name) login penalty.

#[allow(unused_imports)] // not every helper of the shared support module is used here
mod support;

use std::time::{Duration, Instant};

use sfs_proto::control::{Command, ErrorCode, Reply};
use sfs_server::context::SessionSettings;
use sfs_server::throttle::LoginPolicy;
use support::{code, Fixture, PASSWORD};

#[tokio::test]
async fn a_refused_path_is_logged_as_it_was_tried_escaped() {
    let fx = Fixture::new();
    let mut alice = fx.login("alice").await;
    for path in ["/../../etc/passwd", "bad\u{7}name\nx"] {
        let reply = alice.request(Command::Dele { path: path.into() }).await;
        assert_eq!(code(&reply), ErrorCode::INVALID_PATH, "{path:?}");
    }
    let log = fx.log();
    let refused: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("event=delete result=denied"))
        .map(|line| line.split_once(' ').unwrap().1)
        .collect();
    assert_eq!(refused.len(), 2, "{log}");
    assert!(
        refused[0].contains("user=alice") && refused[0].contains(" path=/../../etc/passwd "),
        "{}",
        refused[0]
    );
    assert!(
        refused[1].contains(r#" path="bad\x07name\nx" "#),
        "{}",
        refused[1]
    );
}

fn office_policy() -> LoginPolicy {
    LoginPolicy {
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(1),
        max_failures_per_connection: 10,
        user_threshold: 2,
        source_threshold: 3,
        refuse_threshold: 4,
        source_window: Duration::from_secs(60),
        source_penalty: Duration::from_millis(500),
        ..LoginPolicy::default()
    }
}

#[tokio::test]
async fn a_colleague_on_the_same_address_logs_in_after_another_users_failures() {
    let fx = Fixture::with_policy(SessionSettings::default(), office_policy());
    let mut typist = fx.connect().await;
    for _ in 0..4 {
        let reply = typist.login("alice", "typo").await;
        assert_eq!(code(&reply), ErrorCode::AUTH_FAILED);
    }
    // alice's name from this address is now refused, with the reason...
    let mut again = fx.connect().await;
    assert_eq!(
        again.login("alice", PASSWORD).await,
        Reply::error(
            ErrorCode::BUSY,
            "too many failed logins from your address: try again in 1 minute"
        )
    );
    // ...but bob, on the same address, logs in at once.
    let mut bob = fx.connect().await;
    let started = Instant::now();
    let reply = bob.login("bob", PASSWORD).await;
    assert!(matches!(reply, Reply::Limits { .. }), "{reply:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_guesser_across_many_user_names_is_refused() {
    let fx = Fixture::with_policy(SessionSettings::default(), office_policy());
    let mut guesser = fx.connect().await;
    for name in ["guessa", "guessb", "guessc", "guessd"] {
        let reply = guesser.login(name, "guess").await;
        assert_eq!(code(&reply), ErrorCode::AUTH_FAILED, "{name}");
    }
    // Even the right password for a name never tried is refused, and the
    // connection closes.
    let mut next = fx.connect().await;
    assert_eq!(
        next.login("bob", PASSWORD).await,
        Reply::error(
            ErrorCode::BUSY,
            "too many failed logins from your address: try again in 1 minute"
        )
    );
    let close = next.until_closed().await.expect("closed by the server");
    assert_eq!(close.code, ErrorCode::BUSY);
    let log = fx.log();
    assert!(
        log.lines()
            .any(|line| line.contains("event=login result=denied user=bob")
                && line.contains("reason=\"too many failed logins from this source\"")),
        "{log}"
    );
}
