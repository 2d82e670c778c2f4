//! One source of truth for accounts and shares: concurrent share edits, and edits
//! by the admin tool that a running server must apply to live sessions.

mod support;

use std::sync::Arc;
use std::time::Duration;

use sfs_proto::control::{Command, ErrorCode, Reply, Rights};
use sfs_server::accounts::{Role, Username};
use sfs_server::shares::SharesFile;
use sfs_server::store::VirtualPath;
use support::{code, pattern, Fixture};

fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

#[test]
fn racing_grants_and_revokes_end_as_the_last_acknowledged_one_per_key() {
    let fx = Fixture::new();
    let users = fx.ctx.accounts.file().load().unwrap();
    let users = Arc::new(users);
    let owner = user("bob");
    let grantee = user("alice");
    let mut threads = Vec::new();
    for key in 0..4 {
        for worker in 0..2 {
            let ctx = fx.ctx.clone();
            let users = users.clone();
            let (owner, grantee) = (owner.clone(), grantee.clone());
            threads.push(std::thread::spawn(move || {
                let path = VirtualPath::parse(&format!("/item{key}")).unwrap();
                let mut last = None;
                for round in 0..15 {
                    // Each worker alternates; the shared order comes from the lock.
                    let grant = (round + worker) % 2 == 0;
                    let done = if grant {
                        ctx.shares
                            .update(|db| db.grant(&owner, &path, &grantee, Rights::READ, &users))
                            .is_ok()
                    } else {
                        ctx.shares
                            .update(|db| db.revoke(&owner, &path, &grantee).map(drop))
                            .is_ok()
                    };
                    if done {
                        last = Some(grant);
                    }
                }
                last
            }));
        }
    }
    for thread in threads {
        thread.join().unwrap();
    }
    // Memory and disk agree: whatever the last acknowledged edit per key was,
    // both copies show its result.
    let on_disk = SharesFile::new(fx.dir.path().join("shares.json"))
        .load()
        .unwrap();
    assert_eq!(fx.ctx.shares.snapshot(), on_disk);
}

#[test]
fn a_revoke_acknowledged_last_is_never_undone_in_memory() {
    // Grant then revoke from two threads in a strict order, many times: after each
    // revoke is acknowledged, memory must not show the share.
    let fx = Fixture::new();
    let users = Arc::new(fx.ctx.accounts.file().load().unwrap());
    let (owner, grantee) = (user("bob"), user("alice"));
    let path = VirtualPath::parse("/docs").unwrap();
    for _ in 0..30 {
        let (ctx, users2) = (fx.ctx.clone(), users.clone());
        let (o, g, p) = (owner.clone(), grantee.clone(), path.clone());
        let granter = std::thread::spawn(move || {
            ctx.shares
                .update(|db| db.grant(&o, &p, &g, Rights::READ, &users2))
                .unwrap();
        });
        granter.join().unwrap();
        let (ctx, o, g, p) = (fx.ctx.clone(), owner.clone(), grantee.clone(), path.clone());
        let revoker = std::thread::spawn(move || {
            ctx.shares
                .update(|db| db.revoke(&o, &p, &g).map(drop))
                .unwrap();
        });
        revoker.join().unwrap();
        assert!(fx.ctx.shares.snapshot().shared_with(&grantee).is_empty());
    }
}

#[tokio::test]
async fn a_user_disabled_by_the_admin_tool_is_refused_at_the_next_command() {
    let fx = Fixture::new();
    let mut alice = fx.login("alice").await;
    assert_eq!(
        alice.request(Command::Pwd).await,
        Reply::Path { path: "/".into() }
    );
    // sfs-admin user disable alice, with no signal to the server: the server looks
    // at the file again within a second.
    fx.ctx
        .accounts
        .file()
        .update(|db| db.set_disabled(&user("alice"), true))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let reply = alice.request(Command::Mkd { path: "x".into() }).await;
    assert_eq!(code(&reply), ErrorCode::NOT_LOGGED_IN, "{reply:?}");
    let closed = alice.until_closed().await;
    assert_eq!(closed.map(|c| c.code), Some(ErrorCode::NOT_LOGGED_IN));
    assert!(!fx.home("alice").join("x").exists());
}

#[tokio::test]
async fn a_removed_user_is_refused_at_the_next_command() {
    let fx = Fixture::new();
    let mut bob = fx.login("bob").await;
    fx.ctx
        .accounts
        .file()
        .update(|db| db.remove(&user("bob")).map(drop))
        .unwrap();
    fx.ctx.reload(); // as on SIGHUP
    let reply = bob.request(Command::Pwd).await;
    assert_eq!(code(&reply), ErrorCode::NOT_LOGGED_IN, "{reply:?}");
    assert!(bob.until_closed().await.is_some());
}

#[tokio::test]
async fn a_demoted_admin_loses_admin_rights_at_once() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.home("alice").join("private")).unwrap();
    std::fs::write(fx.home("alice").join("private/secret.txt"), b"s").unwrap();
    let mut root = fx.login("root").await;
    let listing = root
        .request(Command::List {
            path: "/shared/alice/private".into(),
        })
        .await;
    assert!(matches!(listing, Reply::Listing { .. }), "{listing:?}");
    fx.ctx
        .accounts
        .file()
        .update(|db| db.set_role(&user("root"), Role::User))
        .unwrap();
    fx.ctx.reload();
    let reply = root
        .request(Command::List {
            path: "/shared/alice/private".into(),
        })
        .await;
    assert_eq!(code(&reply), ErrorCode::NOT_FOUND, "{reply:?}");
    let reply = root
        .request(Command::Dele {
            path: "/shared/alice/private/secret.txt".into(),
        })
        .await;
    assert_ne!(reply, Reply::Ok);
    assert!(fx.home("alice").join("private/secret.txt").exists());
}

#[tokio::test]
async fn an_upload_of_a_user_disabled_meanwhile_does_not_commit() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.home("alice")).unwrap();
    std::fs::write(fx.home("alice").join("keep.bin"), b"old").unwrap();
    let mut alice = fx.login("alice").await;
    let data = pattern(300_000, 3);
    let id = alice.send_stor("keep.bin", data);
    alice.limit_upload(id, 100_000);
    alice.until_upload_stalls(id).await;
    fx.ctx
        .accounts
        .file()
        .update(|db| db.set_disabled(&user("alice"), true))
        .unwrap();
    fx.ctx.reload();
    alice.release_upload(id);
    let reply = alice.reply(id).await;
    assert_eq!(code(&reply), ErrorCode::NOT_LOGGED_IN, "{reply:?}");
    assert_eq!(
        std::fs::read(fx.home("alice").join("keep.bin")).unwrap(),
        b"old"
    );
    assert!(fx.leftover_uploads().is_empty());
}

#[tokio::test]
async fn a_share_revoked_by_the_admin_tool_stops_working() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.home("bob").join("docs")).unwrap();
    let mut bob = fx.login("bob").await;
    let reply = bob
        .request(Command::Shar {
            path: "docs".into(),
            user: "alice".into(),
            rights: Rights::READ,
        })
        .await;
    assert_eq!(reply, Reply::Ok);
    let mut alice = fx.login("alice").await;
    let listing = alice
        .request(Command::List {
            path: "/shared/bob/docs".into(),
        })
        .await;
    assert!(matches!(listing, Reply::Listing { .. }), "{listing:?}");
    // The admin tool edits shares.json behind the server's back.
    SharesFile::new(fx.dir.path().join("shares.json"))
        .update(|db| Ok(db.forget_user(&user("alice"))))
        .unwrap();
    fx.ctx.reload();
    let reply = alice
        .request(Command::List {
            path: "/shared/bob/docs".into(),
        })
        .await;
    assert_eq!(code(&reply), ErrorCode::NOT_FOUND, "{reply:?}");
}

#[tokio::test]
async fn registering_the_name_of_an_orphaned_home_starts_empty() {
    let fx = Fixture::new();
    // A home left on disk by an account removed without archiving it.
    std::fs::create_dir_all(fx.home("carol").join("old")).unwrap();
    std::fs::write(fx.home("carol").join("old/secret.txt"), b"old").unwrap();
    let mut c = fx.connect().await;
    let reply = c
        .request(Command::Register {
            user: "carol".into(),
            password: "carol's secret".into(),
        })
        .await;
    assert!(matches!(reply, Reply::Limits { .. }), "{reply:?}");
    let listing = c.request(Command::List { path: "/".into() }).await;
    match listing {
        Reply::Listing { entries, .. } => assert!(
            entries.iter().all(|e| e.name != "old"),
            "adopted: {entries:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(!fx.home("carol").join("old").exists());
    let removed = fx.dir.path().join("server_files/.removed");
    let archived: Vec<_> = std::fs::read_dir(&removed)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archived.len(), 1);
    assert_eq!(
        std::fs::read(archived[0].join("old/secret.txt")).unwrap(),
        b"old"
    );
}

#[tokio::test]
async fn registrations_from_one_source_are_throttled_like_failed_logins() {
    let policy = sfs_server::throttle::LoginPolicy {
        source_threshold: 2,
        source_penalty: Duration::from_millis(800),
        ..support::quick_policy()
    };
    let fx = Fixture::with_policy(
        sfs_server::context::SessionSettings {
            allow_registration: true,
            ..Default::default()
        },
        policy,
    );
    let mut times = Vec::new();
    for name in ["dave", "erin", "frank"] {
        let mut c = fx.connect().await;
        let started = std::time::Instant::now();
        let reply = c
            .request(Command::Register {
                user: name.into(),
                password: "long enough".into(),
            })
            .await;
        assert!(matches!(reply, Reply::Limits { .. }), "{name}");
        times.push(started.elapsed());
    }
    assert!(times[0] < Duration::from_millis(700), "{times:?}");
    assert!(times[1] < Duration::from_millis(700), "{times:?}");
    assert!(times[2] >= Duration::from_millis(800), "{times:?}");
}

#[tokio::test]
async fn the_dummy_hash_follows_the_stored_costs_and_logins_rehash_to_the_configured_cost() {
    use sfs_server::accounts::{hash_password, Accounts, Hasher, Password, UsersFile};
    let dir = tempfile::tempdir().unwrap();
    let users = UsersFile::new(dir.path().join("users.json"));
    let pw = Password::new(b"pw".to_vec()).unwrap();
    users
        .update(|db| {
            db.add(user("alice"), hash_password(&pw, 4)?, Role::User)?;
            db.add(user("bob"), hash_password(&pw, 6)?, Role::User)?;
            db.add(user("carol"), hash_password(&pw, 6)?, Role::User)
        })
        .unwrap();
    // Configured at 5, stored mostly at 6: an unknown name is checked at 6.
    let accounts =
        Accounts::open_with_interval(users.clone(), Hasher::new(5, 2), Duration::ZERO).unwrap();
    assert_eq!(accounts.dummy_cost(&accounts.users().unwrap()), 6);
    // A login of the low-cost account rewrites its hash at the configured cost.
    accounts
        .authenticate("alice", Password::new(b"pw".to_vec()).unwrap())
        .await
        .unwrap();
    let stored = users.load().unwrap();
    assert_eq!(stored.user(&user("alice")).unwrap().hash.cost(), Some(5));
    // Once most hashes are at another cost, the dummy follows.
    for name in ["bob", "carol"] {
        accounts
            .authenticate(name, Password::new(b"pw".to_vec()).unwrap())
            .await
            .unwrap();
    }
    assert_eq!(accounts.dummy_cost(&accounts.users().unwrap()), 5);
    // Unknown names are still refused.
    assert!(accounts
        .authenticate("nobody", Password::new(b"pw".to_vec()).unwrap())
        .await
        .is_err());
}
