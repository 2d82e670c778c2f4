//! MFMT sets a file's modification time where the write right allows it, and
//! nowhere else; every attempt is audited.

mod support;

use std::time::{Duration, UNIX_EPOCH};

use sfs_proto::control::{Command, ErrorCode, Reply, Rights};
use support::{code, pattern, Fixture};

fn mfmt(path: &str, mtime: i64) -> Command {
    Command::Mfmt {
        path: path.into(),
        mtime,
    }
}

#[tokio::test]
async fn mfmt_sets_the_time_of_a_file_with_the_write_right_only() {
    let fx = Fixture::new();
    let mut bob = fx.login("bob").await;
    assert_eq!(bob.upload("notes.txt", &pattern(5000, 1)).await, Reply::Ok);
    assert_eq!(
        bob.request(mfmt("notes.txt", 1_600_000_000)).await,
        Reply::Ok
    );
    let modified = std::fs::metadata(fx.home("bob").join("notes.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(modified, UNIX_EPOCH + Duration::from_secs(1_600_000_000));
    // Before 1970 too.
    assert_eq!(bob.request(mfmt("notes.txt", -86_400)).await, Reply::Ok);
    let Reply::Stat { entry } = bob
        .request(Command::Stat {
            path: "notes.txt".into(),
        })
        .await
    else {
        panic!("stat");
    };
    assert_eq!(entry.mtime, -86_400);

    // Folders, missing files and impossible times are refused.
    assert_eq!(
        bob.request(Command::Mkd { path: "d".into() }).await,
        Reply::Ok
    );
    let reply = bob.request(mfmt("d", 0)).await;
    assert_eq!(code(&reply), ErrorCode::IS_A_DIRECTORY, "{reply:?}");
    let reply = bob.request(mfmt("missing", 0)).await;
    assert_eq!(code(&reply), ErrorCode::NOT_FOUND, "{reply:?}");
    let reply = bob.request(mfmt("notes.txt", i64::MIN)).await;
    assert_eq!(code(&reply), ErrorCode::BAD_REQUEST, "{reply:?}");

    // A read-only share gives no right to change the time.
    let share = Command::Shar {
        path: "notes.txt".into(),
        user: "alice".into(),
        rights: Rights::READ,
    };
    assert_eq!(bob.request(share).await, Reply::Ok);
    let mut alice = fx.login("alice").await;
    let reply = alice.request(mfmt("/shared/bob/notes.txt", 0)).await;
    assert_eq!(code(&reply), ErrorCode::PERMISSION_DENIED, "{reply:?}");
    let entry_after = std::fs::metadata(fx.home("bob").join("notes.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert!(entry_after < UNIX_EPOCH);

    let log = fx.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("mfmt")).collect();
    assert!(lines.len() >= 5, "{log}");
    assert!(lines.iter().any(|l| l.contains("denied")), "{log}");
}
