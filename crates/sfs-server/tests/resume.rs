//! Resuming transfers through the connection handler: REGET continues a
//! download from a verified prefix, an interrupted upload keeps its verified
//! prefix for PARTIAL and REPUT, and neither ever splices two versions of a
//! file (the prefix digest is checked, and the End digest covers the whole file).

mod support;

use std::time::Duration;

use sfs_proto::control::{Command, ErrorCode, Reply, Rights};
use sfs_server::context::SessionSettings;
use support::{code, pattern, Client, Fixture};

/// A small seeded generator (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound.max(1)
    }
}

async fn partial(c: &mut Client, path: &str) -> u64 {
    match c.request(Command::Partial { path: path.into() }).await {
        Reply::Partial { size } => size,
        other => panic!("PARTIAL answered {other:?}"),
    }
}

/// Starts uploading `data` to `path`, lets `sent` bytes go, and aborts the
/// upload as a user's Ctrl-C does. Returns the bytes the server kept.
async fn interrupted_upload(c: &mut Client, path: &str, data: &[u8], sent: usize) -> u64 {
    let id = c.send_stor(path, data.to_vec());
    c.limit_upload(id, sent);
    c.until_upload_stalls(id).await;
    let transfer = c.stor_transfer[&id];
    c.session
        .abort_transfer(transfer, ErrorCode::ABORTED, "user pressed Ctrl-C")
        .unwrap();
    assert_eq!(code(&c.reply(id).await), ErrorCode::ABORTED);
    partial(c, path).await
}

#[tokio::test]
async fn downloads_resume_from_a_verified_prefix_at_random_points() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let data = pattern(300_001, 7);
    assert_eq!(c.upload("big.bin", &data).await, Reply::Ok);
    let mut rng = Rng(0x5f5_e100);
    let mut offsets: Vec<usize> = (0..18)
        .map(|_| rng.below(data.len() as u64) as usize)
        .collect();
    // Both ends: nothing held yet, and everything held already.
    offsets.extend([0, data.len()]);
    for held in offsets {
        let id = c.send_reget("big.bin", &data[..held]);
        // The session checks the End digest, which covers the whole file.
        let rest = c.download_result(id).await.unwrap();
        assert_eq!(rest, data[held..], "resumed at {held}");
    }
}

#[tokio::test]
async fn a_changed_remote_file_refuses_the_resume() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let data = pattern(100_000, 1);
    assert_eq!(c.upload("f.bin", &data).await, Reply::Ok);
    // The local copy's first bytes are not the file's any more.
    let mut held = data[..40_000].to_vec();
    held[123] ^= 1;
    let id = c.send_reget("f.bin", &held);
    let refused = c.download_result(id).await.unwrap_err();
    assert_eq!(code(&refused), ErrorCode::RESUME_MISMATCH, "{refused:?}");
    // A local copy longer than the remote file.
    let longer = pattern(100_001, 1);
    let id = c.send_reget("f.bin", &longer);
    let refused = c.download_result(id).await.unwrap_err();
    assert_eq!(code(&refused), ErrorCode::RESUME_MISMATCH, "{refused:?}");
    // The session goes on.
    assert_eq!(c.download("f.bin").await.unwrap(), data);
}

#[tokio::test]
async fn an_empty_file_resumes() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    assert_eq!(c.upload("empty", b"").await, Reply::Ok);
    let id = c.send_reget("empty", b"");
    assert_eq!(c.download_result(id).await.unwrap(), b"");
    // An upload of an empty file leaves no partial to resume.
    assert_eq!(partial(&mut c, "empty").await, 0);
}

#[tokio::test]
async fn uploads_resume_after_an_interruption_at_random_points() {
    let fx = Fixture::new();
    let mut rng = Rng(0xdead_beef);
    for round in 0..20u8 {
        let data = pattern(150_000 + usize::from(round), round);
        let path = format!("up{round}.bin");
        let sent = 1 + rng.below(data.len() as u64 - 1) as usize;
        let mut c = fx.login("alice").await;
        let kept = if round % 2 == 0 {
            interrupted_upload(&mut c, &path, &data, sent).await
        } else {
            // The association goes away instead.
            let id = c.send_stor(&path, data.clone());
            c.limit_upload(id, sent);
            c.until_upload_stalls(id).await;
            c.settle(Duration::from_millis(20)).await;
            let server = c.server.take().unwrap();
            drop(c);
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("the handler ends")
                .unwrap();
            c = fx.login("alice").await;
            partial(&mut c, &path).await
        };
        assert!(kept <= sent as u64, "round {round}: kept {kept} of {sent}");
        assert!(fx.leftover_uploads().is_empty());
        let id = c.send_reput(&path, data.clone(), kept as usize);
        assert_eq!(c.reply(id).await, Reply::Ok, "round {round}");
        assert_eq!(std::fs::read(fx.home("alice").join(&path)).unwrap(), data);
        assert!(fx.kept_partials().is_empty(), "round {round}");
    }
}

#[tokio::test]
async fn a_changed_local_file_is_refused_and_the_partial_stays() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let data = pattern(200_000, 3);
    let kept = interrupted_upload(&mut c, "f.bin", &data, 90_000).await;
    assert!(kept > 0);
    let mut changed = data.clone();
    changed[10] ^= 0xff;
    let id = c.send_reput("f.bin", changed, kept as usize);
    assert_eq!(code(&c.reply(id).await), ErrorCode::RESUME_MISMATCH);
    assert_eq!(partial(&mut c, "f.bin").await, kept);
    // More than the server holds.
    let id = c.send_reput("f.bin", data.clone(), kept as usize + 1);
    assert_eq!(code(&c.reply(id).await), ErrorCode::NO_PARTIAL);
    assert!(!fx.home("alice").join("f.bin").exists());
    // A fresh upload of the path removes the partial.
    assert_eq!(c.upload("f.bin", &data).await, Reply::Ok);
    assert_eq!(partial(&mut c, "f.bin").await, 0);
    assert!(fx.kept_partials().is_empty());
}

#[tokio::test]
async fn a_partial_is_only_for_its_user_and_path_and_never_listed() {
    let fx = Fixture::new();
    let mut alice = fx.login("alice").await;
    assert_eq!(
        alice.request(Command::Mkd { path: "box".into() }).await,
        Reply::Ok
    );
    let share = Command::Shar {
        path: "box".into(),
        user: "bob".into(),
        rights: Rights::READ | Rights::WRITE | Rights::CREATE,
    };
    assert_eq!(alice.request(share).await, Reply::Ok);
    let data = pattern(120_000, 9);
    let kept = interrupted_upload(&mut alice, "box/f.bin", &data, 70_000).await;
    assert!(kept > 0);
    // Not listed, not reachable by name.
    let Reply::Listing { entries, .. } = alice.request(Command::List { path: "box".into() }).await
    else {
        panic!("no listing")
    };
    assert!(entries.is_empty(), "{entries:?}");
    // Another path of the same user has none.
    assert_eq!(partial(&mut alice, "box/g.bin").await, 0);
    // Bob may write there, but alice's partial is not his.
    let mut bob = fx.login("bob").await;
    assert_eq!(partial(&mut bob, "/shared/alice/box/f.bin").await, 0);
    let id = bob.send_reput("/shared/alice/box/f.bin", data.clone(), kept as usize);
    assert_eq!(code(&bob.reply(id).await), ErrorCode::NO_PARTIAL);
    // Alice still can.
    let id = alice.send_reput("box/f.bin", data.clone(), kept as usize);
    assert_eq!(alice.reply(id).await, Reply::Ok);
    assert_eq!(
        std::fs::read(fx.home("alice").join("box/f.bin")).unwrap(),
        data
    );
}

#[tokio::test]
async fn partials_expire_and_can_be_turned_off() {
    let fx = Fixture::with(SessionSettings {
        partial_upload_keep: Duration::from_millis(1),
        ..SessionSettings::default()
    });
    let mut c = fx.login("alice").await;
    let data = pattern(100_000, 5);
    let id = c.send_stor("f.bin", data.clone());
    c.limit_upload(id, 50_000);
    c.until_upload_stalls(id).await;
    let transfer = c.stor_transfer[&id];
    c.session
        .abort_transfer(transfer, ErrorCode::ABORTED, "stop")
        .unwrap();
    assert_eq!(code(&c.reply(id).await), ErrorCode::ABORTED);
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(partial(&mut c, "f.bin").await, 0, "expired");
    assert!(fx.kept_partials().is_empty(), "and removed");

    let fx = Fixture::with(SessionSettings {
        partial_upload_keep: Duration::ZERO,
        ..SessionSettings::default()
    });
    let mut c = fx.login("alice").await;
    assert_eq!(interrupted_upload(&mut c, "f.bin", &data, 50_000).await, 0);
    assert!(fx.kept_partials().is_empty() && fx.leftover_uploads().is_empty());
}
