//! Sizes and quotas through the connection handler: a STOR over a limit is refused
//! when it opens (before any byte moves), uploads in progress count, an upload into
//! a share counts against the sharer, a replacement counts the difference, and
//! QUOT reports the truth.

mod support;

use sfs_proto::control::{Command, ErrorCode, Reply, Rights};
use sfs_server::context::SessionSettings;
use sfs_server::quota::StorageLimits;
use support::{code, pattern, Client, Fixture};

fn with_limits(storage: StorageLimits) -> Fixture {
    Fixture::with(SessionSettings {
        storage,
        ..SessionSettings::default()
    })
}

/// Sends a STOR announcing `size` bytes without data, and returns its first reply.
async fn announce(c: &mut Client, path: &str, size: u64) -> Reply {
    c.request(Command::Stor {
        path: path.into(),
        size,
    })
    .await
}

async fn quota(c: &mut Client) -> Reply {
    c.request(Command::Quot).await
}

#[tokio::test]
async fn a_stor_announcing_2_pow_60_bytes_is_refused_at_open() {
    // No limit configured: the disk's free space still bounds the announcement.
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let reply = announce(&mut c, "huge.bin", 1 << 60).await;
    assert_eq!(code(&reply), ErrorCode::NO_SPACE, "{reply:?}");
    assert!(fx.leftover_uploads().is_empty());
    assert!(!fx.home("alice").join("huge.bin").exists());
    // The session serves on.
    assert_eq!(c.upload("small.bin", b"fits").await, Reply::Ok);
    assert!(
        fx.log().contains("no space left: the server has"),
        "{}",
        fx.log()
    );
}

#[tokio::test]
async fn max_file_size_refuses_with_too_large() {
    let fx = with_limits(StorageLimits {
        max_file_size: Some(1000),
        ..StorageLimits::default()
    });
    let mut c = fx.login("alice").await;
    let reply = announce(&mut c, "big.bin", 1001).await;
    assert_eq!(code(&reply), ErrorCode::TOO_LARGE, "{reply:?}");
    let Reply::Error { message, .. } = &reply else {
        unreachable!()
    };
    assert!(message.contains("1000 bytes"), "{message}");
    assert!(fx.leftover_uploads().is_empty());
    assert_eq!(c.upload("ok.bin", &pattern(1000, 1)).await, Reply::Ok);
}

#[tokio::test]
async fn byte_quota_counts_stored_files_and_uploads_in_progress() {
    let fx = with_limits(StorageLimits {
        quota_bytes: Some(100_000),
        ..StorageLimits::default()
    });
    let mut c = fx.login("alice").await;
    assert_eq!(c.upload("a.bin", &pattern(40_000, 1)).await, Reply::Ok);
    // An upload in progress holds its announced size.
    let stalled = c.send_stor("b.bin", pattern(50_000, 2));
    c.limit_upload(stalled, 1000);
    c.until_upload_stalls(stalled).await;
    // 40 000 stored + 50 000 reserved + 20 000 > 100 000.
    let reply = announce(&mut c, "c.bin", 20_000).await;
    assert_eq!(code(&reply), ErrorCode::QUOTA_EXCEEDED, "{reply:?}");
    let Reply::Quota {
        used_bytes,
        limit_bytes,
        reserved_bytes,
        used_files,
        ..
    } = quota(&mut c).await
    else {
        panic!("no Quota reply")
    };
    assert_eq!(
        (used_bytes, limit_bytes, reserved_bytes, used_files),
        (40_000, 100_000, 50_000, 1)
    );
    // What fits still goes.
    assert_eq!(c.upload("d.bin", &pattern(10_000, 3)).await, Reply::Ok);
    // Aborting the stalled upload releases its reservation.
    let transfer = c.stor_transfer[&stalled];
    c.session
        .abort_transfer(transfer, ErrorCode::ABORTED, "test")
        .unwrap();
    assert_eq!(code(&c.reply(stalled).await), ErrorCode::ABORTED);
    assert_eq!(c.upload("c.bin", &pattern(20_000, 4)).await, Reply::Ok);
    let Reply::Quota {
        used_bytes,
        reserved_bytes,
        used_files,
        ..
    } = quota(&mut c).await
    else {
        panic!("no Quota reply")
    };
    // The aborted upload's bytes are kept for `reput`, and count (as bytes,
    // not as a file) until continued or expired.
    let kept = fx.assert_kept_prefix_of(&pattern(50_000, 2)) as u64;
    assert_eq!(
        (used_bytes, reserved_bytes, used_files),
        (70_000 + kept, 0, 3)
    );
    assert!(fx.leftover_uploads().is_empty());
}

#[tokio::test]
async fn file_quota_and_deletes_count_at_once() {
    let fx = with_limits(StorageLimits {
        quota_files: Some(2),
        ..StorageLimits::default()
    });
    let mut c = fx.login("alice").await;
    assert_eq!(c.upload("one", b"1").await, Reply::Ok);
    assert_eq!(c.upload("two", b"2").await, Reply::Ok);
    let reply = c.upload("three", b"3").await;
    assert_eq!(code(&reply), ErrorCode::QUOTA_EXCEEDED, "{reply:?}");
    assert!(!fx.home("alice").join("three").exists());
    // Replacing a file makes no new file: allowed at the limit.
    assert_eq!(c.upload("two", b"22").await, Reply::Ok);
    assert_eq!(std::fs::read(fx.home("alice").join("two")).unwrap(), b"22");
    // A delete frees a slot at once.
    let reply = c.request(Command::Dele { path: "one".into() }).await;
    assert_eq!(reply, Reply::Ok);
    assert_eq!(c.upload("three", b"3").await, Reply::Ok);
}

#[tokio::test]
async fn replacing_a_file_counts_the_difference() {
    let fx = with_limits(StorageLimits {
        quota_bytes: Some(10_000),
        ..StorageLimits::default()
    });
    let mut c = fx.login("alice").await;
    assert_eq!(c.upload("f.bin", &pattern(8_000, 1)).await, Reply::Ok);
    // 8 000 replaced by 9 000: one more thousand, within the quota.
    assert_eq!(c.upload("f.bin", &pattern(9_000, 2)).await, Reply::Ok);
    // 9 000 replaced by 10 001: over.
    let reply = announce(&mut c, "f.bin", 10_001).await;
    assert_eq!(code(&reply), ErrorCode::QUOTA_EXCEEDED, "{reply:?}");
    assert_eq!(
        std::fs::read(fx.home("alice").join("f.bin")).unwrap(),
        pattern(9_000, 2)
    );
}

#[tokio::test]
async fn an_upload_into_a_share_counts_against_the_owner() {
    let fx = with_limits(StorageLimits {
        quota_bytes: Some(10_000),
        ..StorageLimits::default()
    });
    let mut bob = fx.login("bob").await;
    assert_eq!(
        bob.request(Command::Mkd {
            path: "drop".into()
        })
        .await,
        Reply::Ok
    );
    assert_eq!(
        bob.upload("drop/mine.bin", &pattern(8_000, 1)).await,
        Reply::Ok
    );
    let share = Command::Shar {
        path: "drop".into(),
        user: "alice".into(),
        rights: Rights::READ | Rights::CREATE | Rights::WRITE,
    };
    assert_eq!(bob.request(share).await, Reply::Ok);
    let mut alice = fx.login("alice").await;
    // alice has her whole quota, bob has 2 000 left: bob's quota decides.
    let reply = announce(&mut alice, "/shared/bob/drop/x.bin", 3_000).await;
    assert_eq!(code(&reply), ErrorCode::QUOTA_EXCEEDED, "{reply:?}");
    assert_eq!(
        alice
            .upload("/shared/bob/drop/y.bin", &pattern(2_000, 2))
            .await,
        Reply::Ok
    );
    let Reply::Quota {
        used_bytes,
        used_files,
        ..
    } = quota(&mut bob).await
    else {
        panic!("no Quota reply")
    };
    assert_eq!((used_bytes, used_files), (10_000, 2));
    let Reply::Quota { used_bytes, .. } = quota(&mut alice).await else {
        panic!("no Quota reply")
    };
    assert_eq!(used_bytes, 0);
}

#[tokio::test]
async fn quot_without_limits_reports_use_and_no_limit() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    assert_eq!(c.upload("a", &pattern(1234, 1)).await, Reply::Ok);
    assert_eq!(
        quota(&mut c).await,
        Reply::Quota {
            used_bytes: 1234,
            limit_bytes: 0,
            used_files: 1,
            limit_files: 0,
            reserved_bytes: 0,
            max_file_size: 0,
        }
    );
}
