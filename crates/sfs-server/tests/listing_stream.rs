//! LIST streamed from a directory iterator: a client that does not read stops
//! the listing instead of making the server hold the whole folder, and once it
//! reads, every entry arrives exactly once, in parts, before any later reply.

// Not every helper the support module re-exports is used here.
#[allow(unused_imports)]
mod support;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sfs_proto::control::{Command, Reply};
use support::Fixture;

/// Entries in the big folder.
const ENTRIES: usize = 20_000;

/// A name of about 200 bytes: the listing is about 4.5 MB on the wire.
fn long_name(i: usize) -> String {
    format!("{i:05}-{}", "n".repeat(200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_folder_listed_to_a_client_that_does_not_read_stays_bounded() {
    let fx = Fixture::new();
    let big = fx.home("alice").join("big");
    std::fs::create_dir_all(&big).unwrap();
    for i in 0..ENTRIES {
        std::fs::write(big.join(long_name(i)), b"").unwrap();
    }
    let mut c = fx.login("alice").await;
    let list = c.send(Command::List {
        path: "/big".into(),
    });
    let pwd = c.send(Command::Pwd);
    let _ = c.driver.flush(&mut c.session).await;
    // The client reads nothing for a while.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let held = fx.ctx.output_high_water.load(Ordering::Relaxed);
    // The whole listing would be over 4 MB; the cap is 1 MiB plus one part.
    assert!(held < 2 * 1024 * 1024, "the server queued {held} bytes");

    // Now the client reads: the PWD answer comes after every part of the LIST.
    let pwd_reply = c.reply(pwd).await;
    assert_eq!(pwd_reply, Reply::Path { path: "/".into() });
    assert!(c.is_answered(list), "PWD overtook the listing");
    let parts = c.replies(list).await;
    assert!(parts.len() > 50, "{} parts", parts.len());
    let mut names = HashSet::new();
    for (i, part) in parts.iter().enumerate() {
        let Reply::Listing { entries, more } = part else {
            panic!("{part:?}")
        };
        assert_eq!(*more, i + 1 < parts.len());
        assert!(entries.is_sorted_by(|a, b| a.name <= b.name));
        for entry in entries {
            assert!(names.insert(entry.name.clone()), "{} twice", entry.name);
        }
    }
    let expected: HashSet<String> = (0..ENTRIES).map(long_name).collect();
    assert_eq!(names, expected);
}

#[tokio::test]
async fn the_home_listing_shows_the_shared_folder_once() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.home("alice")).unwrap();
    std::fs::write(fx.home("alice").join("b.txt"), b"b").unwrap();
    std::fs::write(fx.home("alice").join("a.txt"), b"a").unwrap();
    let mut c = fx.login("alice").await;
    let reply = c.request(Command::List { path: "/".into() }).await;
    let Reply::Listing { entries, more } = reply else {
        panic!("{reply:?}")
    };
    assert!(!more);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["a.txt", "b.txt", "shared"]);
}
