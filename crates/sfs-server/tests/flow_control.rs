//! Flow control through the connection handler: uploads whose first chunks are
//! held back cannot wedge the connection (the connection-wide credit window keeps
//! chunks waiting ahead of gaps below the upload buffer), and an upload that
//! never makes progress is aborted by the stall timer, its temporary file removed.

mod support;

use std::time::Duration;

use sfs_proto::control::{Command, ErrorCode, Reply};
use sfs_server::context::SessionSettings;
use support::{code, pattern, Fixture};

/// Small windows so a few uploads overrun them: each upload may be granted
/// 256 KiB, the session buffers 512 KiB.
fn small_windows() -> SessionSettings {
    SessionSettings {
        transfer_window: 256 * 1024,
        max_buffered_upload: 512 * 1024,
        transfer_stall_timeout: Duration::from_secs(60),
        ..SessionSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_with_withheld_first_chunks_do_not_wedge_the_connection() {
    let fx = Fixture::with(small_windows());
    let mut c = fx.login("alice").await;
    // A wedged server sends nothing more: fail instead of hanging.
    c.step_limit = Some(Duration::from_secs(20));
    c.hold_stream(1);
    let files: Vec<Vec<u8>> = (0..6).map(|i| pattern(1024 * 1024 + i, i as u8)).collect();
    let ids: Vec<_> = files
        .iter()
        .enumerate()
        .map(|(i, data)| c.send_stor(&format!("f{i}"), data.clone()))
        .collect();
    while ids.iter().any(|id| !c.stor_transfer.contains_key(id)) {
        c.step().await;
    }
    // Every upload now sends what its credit allows on streams 2..; their
    // first chunks (stream 1) stay back. Without a connection window, 6 x 3/4 of
    // 256 KiB waits ahead of the gaps, over the 512 KiB buffer: the server
    // stops reading and never sees the chunks that would fill the gaps.
    c.settle(Duration::from_millis(500)).await;
    assert!(c.held_chunks() >= 6, "held {}", c.held_chunks());
    // Commands still run meanwhile.
    assert_eq!(
        c.request(Command::Pwd).await,
        Reply::Path { path: "/".into() }
    );
    c.release_stream().await;
    for id in &ids {
        assert_eq!(c.reply(*id).await, Reply::Ok);
    }
    for (i, data) in files.iter().enumerate() {
        assert_eq!(
            &std::fs::read(fx.home("alice").join(format!("f{i}"))).unwrap(),
            data
        );
    }
    assert!(fx.leftover_uploads().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_upload_held_back_forever_hits_the_stall_timeout() {
    let fx = Fixture::with(small_windows());
    let mut c = fx.login("alice").await;
    let old = pattern(1000, 7);
    assert_eq!(c.upload("keep.bin", &old).await, Reply::Ok);
    c.hold_stream(1);
    let id = c.send_stor("keep.bin", pattern(1024 * 1024, 8));
    let other = c.send_stor("other.bin", pattern(1024 * 1024, 9));
    while !c.stor_transfer.contains_key(&id) {
        c.step().await;
    }
    c.settle(Duration::from_secs(30)).await;
    assert!(c.held_chunks() > 0);
    assert!(!fx.leftover_uploads().is_empty(), "still in progress");
    // Past the stall timeout: the server gives up on both, tells the client,
    // and removes the temporary files; the old file is intact.
    c.settle(Duration::from_secs(40)).await;
    let reply = c.reply(id).await;
    assert_eq!(code(&reply), ErrorCode::TIMED_OUT, "{reply:?}");
    assert_eq!(code(&c.reply(other).await), ErrorCode::TIMED_OUT);
    assert_eq!(
        std::fs::read(fx.home("alice").join("keep.bin")).unwrap(),
        old
    );
    assert!(
        fx.leftover_uploads().is_empty(),
        "{:?}",
        fx.leftover_uploads()
    );
    assert!(fx.log().contains("reason=stalled"), "{}", fx.log());
    // The session goes on.
    assert_eq!(
        c.request(Command::Pwd).await,
        Reply::Path { path: "/".into() }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_cannot_grow_the_servers_output() {
    let fx = Fixture::new();
    let big = fx.home("alice").join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..20_000 {
        std::fs::write(big.join(format!("entry-with-a-longish-name-{i:05}")), b"").unwrap();
    }
    let mut c = fx.login("alice").await;
    // Thirty listings of 20 000 entries, and the client never reads a reply.
    let ids: Vec<_> = (0..30)
        .map(|_| {
            c.send(Command::List {
                path: "/big".into(),
            })
        })
        .collect();
    let _ = c.driver.flush(&mut c.session).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = fx
        .ctx
        .output_high_water
        .load(std::sync::atomic::Ordering::Relaxed);
    // One listing is about 1 MB; thirty would be 30 MB.
    assert!(held < 4 * 1024 * 1024, "the server queued {held} bytes");
    // Once the client reads, every listing arrives in full.
    for id in ids {
        let entries: usize = c
            .replies(id)
            .await
            .iter()
            .map(|reply| match reply {
                Reply::Listing { entries, .. } => entries.len(),
                other => panic!("{other:?}"),
            })
            .sum();
        assert_eq!(entries, 20_000);
    }
}
