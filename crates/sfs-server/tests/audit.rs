//! Host tests of the audit log file.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use sfs_server::accounts::Username;
use sfs_server::audit::{AuditEvent, AuditLog, AuditOutcome, EventKind};
use sfs_server::shares::Rights;
use sfs_server::store::{StoreError, VirtualPath};

#[test]
fn events_are_single_escaped_lines_in_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.log");
    let log = AuditLog::open(&path).unwrap();
    let alice = Username::parse("alice").unwrap();
    let bob = Username::parse("bob").unwrap();
    let peers: Vec<SocketAddr> = vec![
        "127.0.0.1:4000".parse().unwrap(),
        "[::1]:4000".parse().unwrap(),
    ];
    let spaced = VirtualPath::parse("/my docs/ünï \"quoted\" =x.txt").unwrap();
    let target = VirtualPath::parse("/b").unwrap();

    log.record(&AuditEvent::new(EventKind::Connect, AuditOutcome::Info).peers(&peers))
        .unwrap();
    log.record(
        &AuditEvent::new(EventKind::Login, AuditOutcome::Ok)
            .user(&alice)
            .peers(&peers),
    )
    .unwrap();
    // A password typed into the name field never reaches the log.
    log.record(
        &AuditEvent::new(EventKind::Login, AuditOutcome::Denied)
            .attempted_user("hunter2 is my PASSWORD\n")
            .peers(&peers),
    )
    .unwrap();
    log.record(
        &AuditEvent::new(EventKind::Store, AuditOutcome::Ok)
            .user(&alice)
            .path(&spaced)
            .bytes(42),
    )
    .unwrap();
    log.record(
        &AuditEvent::new(EventKind::Delete, AuditOutcome::Denied)
            .user(&alice)
            .owner(&bob)
            .path(&target)
            .reason(&StoreError::NotFound),
    )
    .unwrap();
    log.record(
        &AuditEvent::new(EventKind::Share, AuditOutcome::Ok)
            .user(&alice)
            .path(&target)
            .grantee(&bob)
            .rights(Rights::READ),
    )
    .unwrap();
    log.record(
        &AuditEvent::new(EventKind::Rename, AuditOutcome::Ok)
            .user(&alice)
            .path(&spaced)
            .target(&target),
    )
    .unwrap();
    drop(log);

    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("PASSWORD"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    for line in &lines {
        assert!(line.len() > 24 && line.as_bytes()[23] == b'Z', "{line}");
    }
    let tail = |i: usize| &lines[i][25..];
    assert_eq!(
        tail(0),
        "event=connect result=info peers=127.0.0.1:4000,[::1]:4000"
    );
    assert_eq!(
        tail(1),
        "event=login result=ok user=alice peers=127.0.0.1:4000,[::1]:4000"
    );
    assert_eq!(
        tail(2),
        "event=login result=denied user=-invalid- peers=127.0.0.1:4000,[::1]:4000 reason=\"malformed username\""
    );
    assert_eq!(
        tail(3),
        r#"event=store result=ok user=alice path="/my docs/ünï \"quoted\" =x.txt" bytes=42"#
    );
    assert_eq!(
        tail(4),
        r#"event=delete result=denied user=alice owner=bob path=/b reason="no such file or folder""#
    );
    assert_eq!(
        tail(5),
        "event=share result=ok user=alice path=/b grantee=bob rights=r"
    );
    assert!(tail(6).ends_with("target=/b"), "{}", tail(6));
}

#[test]
fn concurrent_writers_never_interleave_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.log");
    let log = Arc::new(AuditLog::open(&path).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                let user = Username::parse(&format!("user{t}")).unwrap();
                let file = VirtualPath::parse(&format!("/{}", "x".repeat(200))).unwrap();
                for _ in 0..200 {
                    log.record(
                        &AuditEvent::new(EventKind::Retrieve, AuditOutcome::Ok)
                            .user(&user)
                            .path(&file),
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 1600);
    let expected_len = text.lines().next().unwrap().len();
    assert!(text
        .lines()
        .all(|l| l.len() == expected_len && l.contains(" event=retrieve result=ok user=user")));
}
