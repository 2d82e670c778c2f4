//! Rights checked when an operation acts, not when it starts; shares confined
//! beneath the shared folder; limits on what a rename leaves; answers that tell
//! the truth. Each test drives the real connection handler.

mod support;

use sfs_proto::control::{Command, EntryKind, ErrorCode, Reply, RequestId, Rights};
use support::{code, pattern, Client, Fixture};

async fn share(owner: &mut Client, path: &str, user: &str, rights: Rights) {
    let reply = owner
        .request(Command::Shar {
            path: path.into(),
            user: user.into(),
            rights,
        })
        .await;
    assert_eq!(reply, Reply::Ok, "share {path} with {user}");
}

async fn mkd(client: &mut Client, path: &str) {
    let reply = client.request(Command::Mkd { path: path.into() }).await;
    assert_eq!(reply, Reply::Ok, "mkd {path}");
}

/// Starts a STOR and steps until the server opened it (its temporary file
/// exists and the rights were checked), before any data went out.
async fn open_stor(client: &mut Client, path: &str, data: Vec<u8>) -> RequestId {
    let id = client.send_stor(path, data);
    while !client.stor_transfer.contains_key(&id) {
        client.step().await;
    }
    id
}

#[tokio::test]
async fn create_only_upload_never_replaces_a_file_that_appeared_meanwhile() {
    let fx = Fixture::new();
    let mut bob = fx.login("bob").await;
    mkd(&mut bob, "drop").await;
    share(&mut bob, "drop", "alice", Rights::CREATE).await;
    let mut alice = fx.login("alice").await;
    let id = open_stor(
        &mut alice,
        "/shared/bob/drop/report.txt",
        pattern(40_000, 1),
    )
    .await;
    // Bob puts his own report.txt there while alice's upload runs.
    assert_eq!(
        bob.upload("drop/report.txt", b"bob's report").await,
        Reply::Ok
    );
    let reply = alice.reply(id).await;
    assert_eq!(code(&reply), ErrorCode::ALREADY_EXISTS, "{reply:?}");
    assert_eq!(
        std::fs::read(fx.home("bob").join("drop/report.txt")).unwrap(),
        b"bob's report"
    );
    assert!(fx.leftover_uploads().is_empty());
}

#[tokio::test]
async fn an_unshare_during_an_upload_refuses_the_commit() {
    let fx = Fixture::new();
    let mut bob = fx.login("bob").await;
    mkd(&mut bob, "drop").await;
    share(&mut bob, "drop", "alice", Rights::CREATE | Rights::WRITE).await;
    let mut alice = fx.login("alice").await;
    let id = open_stor(&mut alice, "/shared/bob/drop/x.bin", pattern(40_000, 2)).await;
    let reply = bob
        .request(Command::Unsh {
            path: "drop".into(),
            user: "alice".into(),
        })
        .await;
    assert_eq!(reply, Reply::Ok);
    let reply = alice.reply(id).await;
    assert_eq!(code(&reply), ErrorCode::PERMISSION_DENIED, "{reply:?}");
    assert!(!fx.home("bob").join("drop/x.bin").exists());
    assert!(fx.leftover_uploads().is_empty());
}

#[tokio::test]
async fn a_rename_of_the_shared_folder_during_an_upload_refuses_the_commit() {
    let fx = Fixture::new();
    let mut bob = fx.login("bob").await;
    mkd(&mut bob, "drop").await;
    share(&mut bob, "drop", "alice", Rights::CREATE).await;
    let mut alice = fx.login("alice").await;
    let id = open_stor(&mut alice, "/shared/bob/drop/x.bin", pattern(40_000, 3)).await;
    // Bob moves the shared folder away and makes a new, unshared one... and the
    // share now names the new folder, which alice's upload did not begin in.
    let reply = bob
        .request(Command::Rename {
            from: "drop".into(),
            to: "private".into(),
        })
        .await;
    assert_eq!(reply, Reply::Ok);
    mkd(&mut bob, "drop").await;
    let reply = alice.reply(id).await;
    assert_eq!(code(&reply), ErrorCode::PERMISSION_DENIED, "{reply:?}");
    assert!(!fx.home("bob").join("private/x.bin").exists());
    assert!(!fx.home("bob").join("drop/x.bin").exists());
}

#[tokio::test]
async fn a_user_disabled_during_an_upload_commits_nothing() {
    let fx = Fixture::new();
    let mut alice = fx.login("alice").await;
    let id = open_stor(&mut alice, "mine.bin", pattern(40_000, 4)).await;
    fx.ctx
        .accounts
        .file()
        .update(|db| db.set_disabled(&"alice".parse().unwrap(), true))
        .unwrap();
    let reply = alice.reply(id).await;
    assert_eq!(code(&reply), ErrorCode::NOT_LOGGED_IN, "{reply:?}");
    assert!(!fx.home("alice").join("mine.bin").exists());
}

#[tokio::test]
async fn a_symlink_in_a_share_does_not_reach_the_owners_other_files() {
    let fx = Fixture::new();
    let mut bob = fx.login("bob").await;
    mkd(&mut bob, "pub").await;
    mkd(&mut bob, "private").await;
    assert_eq!(bob.upload("private/secret.txt", b"secret").await, Reply::Ok);
    std::os::unix::fs::symlink("../private", fx.home("bob").join("pub/link")).unwrap();
    share(&mut bob, "pub", "alice", Rights::ALL).await;
    let mut alice = fx.login("alice").await;

    let read = alice.download("/shared/bob/pub/link/secret.txt").await;
    assert_eq!(code(&read.unwrap_err()), ErrorCode::PERMISSION_DENIED);
    let write = alice
        .upload("/shared/bob/pub/link/secret.txt", b"mine")
        .await;
    assert_eq!(code(&write), ErrorCode::PERMISSION_DENIED);
    let list = alice
        .request(Command::List {
            path: "/shared/bob/pub/link".into(),
        })
        .await;
    assert_eq!(code(&list), ErrorCode::PERMISSION_DENIED);
    assert_eq!(
        std::fs::read(fx.home("bob").join("private/secret.txt")).unwrap(),
        b"secret"
    );
    // The listing shows the link as a link.
    let Reply::Listing { entries, .. } = alice
        .request(Command::List {
            path: "/shared/bob/pub".into(),
        })
        .await
    else {
        panic!("no listing")
    };
    let link = entries.iter().find(|e| e.name == "link").expect("link");
    assert_eq!(link.kind, EntryKind::Symlink);
}

#[tokio::test]
async fn a_shared_file_is_listed_as_a_file_with_its_size() {
    let fx = Fixture::new();
    let mut bob = fx.login("bob").await;
    mkd(&mut bob, "docs").await;
    assert_eq!(bob.upload("docs/report.txt", &[7; 1234]).await, Reply::Ok);
    share(&mut bob, "docs/report.txt", "alice", Rights::READ).await;
    let mut alice = fx.login("alice").await;
    let Reply::Listing { entries, .. } = alice
        .request(Command::List {
            path: "/shared/bob/docs".into(),
        })
        .await
    else {
        panic!("no listing")
    };
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].name, "report.txt");
    assert_eq!(entries[0].kind, EntryKind::File);
    assert_eq!(entries[0].size, 1234);
    assert_ne!(entries[0].mtime, 0);
}

#[tokio::test]
async fn a_rename_may_not_leave_content_deeper_than_any_path_reaches() {
    let fx = Fixture::new();
    let _alice = fx.login("alice").await;
    let deep = |top: &str| {
        let mut path = fx.home("alice").join(top);
        for i in 0..100 {
            path.push(format!("d{i}"));
        }
        std::fs::create_dir_all(&path).unwrap();
        let mut text = top.to_owned();
        for i in 0..100 {
            text.push_str(&format!("/d{i}"));
        }
        text
    };
    let _a = deep("a");
    let b = deep("b");
    let mut alice = fx.login("alice").await;
    let reply = alice
        .request(Command::Rename {
            from: "a".into(),
            to: format!("{b}/a"),
        })
        .await;
    assert_eq!(code(&reply), ErrorCode::INVALID_PATH, "{reply:?}");
    assert!(fx.home("alice").join("a/d0").is_dir(), "nothing moved");
}

#[tokio::test]
async fn stor_with_a_trailing_slash_never_makes_a_file_of_that_name() {
    let fx = Fixture::new();
    let mut alice = fx.login("alice").await;
    let reply = alice.upload("nodir/", b"data").await;
    assert_eq!(code(&reply), ErrorCode::NOT_FOUND, "{reply:?}");
    assert!(!fx.home("alice").join("nodir").exists());
    mkd(&mut alice, "dir").await;
    let reply = alice.upload("dir/", b"data").await;
    assert_eq!(code(&reply), ErrorCode::IS_A_DIRECTORY, "{reply:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_while_it_is_downloaded_fails_the_transfer() {
    let fx = Fixture::new();
    let mut alice = fx.login("alice").await;
    let original = pattern(12 * 1024 * 1024, 5);
    assert_eq!(alice.upload("big.bin", &original).await, Reply::Ok);
    let on_disk = fx.home("alice").join("big.bin");
    let id = alice.send_retr("big.bin", 0);
    let result = alice
        .download_with_hook(id, 1024 * 1024, || {
            // Rewritten in place: same inode, same size, other bytes.
            use std::os::unix::fs::FileExt;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&on_disk)
                .unwrap();
            file.write_all_at(&pattern(12 * 1024 * 1024, 9), 0).unwrap();
        })
        .await;
    assert_eq!(code(&result.unwrap_err()), ErrorCode::TRANSFER_FAILED);
}

#[tokio::test]
async fn a_grantee_may_delete_inside_a_shared_folder_but_not_the_folder_itself() {
    let fx = Fixture::new();
    let mut bob = fx.login("bob").await;
    mkd(&mut bob, "sd").await;
    assert_eq!(bob.upload("sd/f.txt", b"f").await, Reply::Ok);
    assert_eq!(bob.upload("g.txt", b"g").await, Reply::Ok);
    share(&mut bob, "sd", "alice", Rights::DELETE).await;
    share(&mut bob, "g.txt", "alice", Rights::READ | Rights::DELETE).await;
    let mut alice = fx.login("alice").await;

    let inside = alice
        .request(Command::Dele {
            path: "/shared/bob/sd/f.txt".into(),
        })
        .await;
    assert_eq!(inside, Reply::Ok);
    for command in [
        Command::Rmd {
            path: "/shared/bob/sd".into(),
        },
        Command::Rename {
            from: "/shared/bob/sd".into(),
            to: "/shared/bob/sd2".into(),
        },
        Command::Dele {
            path: "/shared/bob/g.txt".into(),
        },
    ] {
        let reply = alice.request(command.clone()).await;
        assert_eq!(code(&reply), ErrorCode::PERMISSION_DENIED, "{command:?}");
    }
    assert!(fx.home("bob").join("sd").is_dir());
    assert!(fx.home("bob").join("g.txt").is_file());
    // The owner still may.
    let own = bob.request(Command::Rmd { path: "sd".into() }).await;
    assert_eq!(own, Reply::Ok);
}
