//! Host tests of the share table: rights, the virtual /shared tree and the shares
//! file.

use std::os::unix::fs::PermissionsExt;

use sfs_state::accounts::{
    hash_password, Account, Password, Role, UserDb, Username, MIN_BCRYPT_COST,
};
use sfs_state::path::VirtualPath;
use sfs_state::shares::{
    parse_rights, rights_text, Access, Resolved, Rights, ShareDb, ShareError, SharesFile,
};
use sfs_state::Document;

fn name(text: &str) -> Username {
    Username::parse(text).unwrap()
}

fn vp(text: &str) -> VirtualPath {
    VirtualPath::parse(text).unwrap()
}

fn account(text: &str, role: Role) -> Account {
    Account {
        name: name(text),
        role,
    }
}

fn users() -> UserDb {
    let hash = hash_password(&Password::new(b"pw".to_vec()).unwrap(), MIN_BCRYPT_COST).unwrap();
    let mut db = UserDb::default();
    for (user, role) in [
        ("alice", Role::User),
        ("bob", Role::User),
        ("root", Role::Admin),
    ] {
        db.add(name(user), hash.clone(), role).unwrap();
    }
    db
}

#[test]
fn synthesized_listings_show_only_the_way_to_shares() {
    let mut shares = ShareDb::default();
    let db = users();
    shares
        .grant(
            &name("bob"),
            &vp("/docs/report.txt"),
            &name("alice"),
            Rights::READ,
            &db,
        )
        .unwrap();
    shares
        .grant(
            &name("bob"),
            &vp("/pics"),
            &name("alice"),
            Rights::READ,
            &db,
        )
        .unwrap();
    shares
        .grant(
            &name("root"),
            &vp("/pub"),
            &name("alice"),
            Rights::READ,
            &db,
        )
        .unwrap();
    shares
        .grant(
            &name("alice"),
            &vp("/mine"),
            &name("bob"),
            Rights::READ,
            &db,
        )
        .unwrap();
    let alice = account("alice", Role::User);

    assert_eq!(shares.resolve(&alice, &vp("/shared")), Resolved::SharedRoot);
    assert_eq!(
        shares.owners_sharing_with(&name("alice")),
        [name("bob"), name("root")]
    );
    assert_eq!(
        shares.resolve(&alice, &vp("/shared/bob")),
        Resolved::Listing {
            owner: name("bob"),
            path: VirtualPath::root(),
            children: vec!["docs".into(), "pics".into()]
        }
    );
    assert_eq!(
        shares.resolve(&alice, &vp("/shared/bob/docs")),
        Resolved::Listing {
            owner: name("bob"),
            path: vp("/docs"),
            children: vec!["report.txt".into()]
        }
    );
    // The synthesized folders and /shared are read-only.
    for path in ["/shared", "/shared/bob", "/shared/bob/docs"] {
        let resolved = shares.resolve(&alice, &vp(path));
        resolved.check(Access::Read).unwrap();
        assert!(matches!(
            resolved.check(Access::Create),
            Err(ShareError::ReadOnly)
        ));
    }
    // Deep inside a shared folder.
    assert!(matches!(
        shares.resolve(&alice, &vp("/shared/bob/pics/2024/a.jpg")),
        Resolved::Shared { .. }
    ));

    // Shared with me, shared by me.
    let with_me: Vec<_> = shares
        .shared_with(&name("alice"))
        .iter()
        .map(|s| s.path.to_string())
        .collect();
    assert_eq!(with_me, ["/docs/report.txt", "/pics", "/pub"]);
    let by_me: Vec<_> = shares
        .shared_by(&name("alice"))
        .iter()
        .map(|s| (s.grantee.to_string(), s.path.to_string()))
        .collect();
    assert_eq!(by_me, [("bob".to_string(), "/mine".to_string())]);
}

#[test]
fn overlapping_shares_add_up_and_regrant_replaces() {
    let db = users();
    let mut shares = ShareDb::default();
    shares
        .grant(&name("bob"), &vp("/a"), &name("alice"), Rights::READ, &db)
        .unwrap();
    shares
        .grant(
            &name("bob"),
            &vp("/a/b"),
            &name("alice"),
            parse_rights("c").unwrap(),
            &db,
        )
        .unwrap();
    let alice = account("alice", Role::User);
    let Resolved::Shared { rights, .. } = shares.resolve(&alice, &vp("/shared/bob/a/b/c")) else {
        panic!()
    };
    assert_eq!(rights_text(rights), "rc");
    let Resolved::Shared { rights, .. } = shares.resolve(&alice, &vp("/shared/bob/a/x")) else {
        panic!()
    };
    assert_eq!(rights, Rights::READ);
    shares
        .grant(
            &name("bob"),
            &vp("/a"),
            &name("alice"),
            parse_rights("rw").unwrap(),
            &db,
        )
        .unwrap();
    assert_eq!(shares.shared_with(&name("alice")).len(), 2);
    shares
        .revoke(&name("bob"), &vp("/a"), &name("alice"))
        .unwrap();
    assert!(matches!(
        shares.revoke(&name("bob"), &vp("/a"), &name("alice")),
        Err(ShareError::NoSuchShare)
    ));
    assert_eq!(
        shares.resolve(&alice, &vp("/shared/bob/a/x")),
        Resolved::NotShared
    );
    assert_eq!(shares.forget_user(&name("alice")), 1);
    assert_eq!(shares.all().count(), 0);
}

#[test]
fn bad_grants_are_refused() {
    let db = users();
    let mut shares = ShareDb::default();
    let bob = name("bob");
    assert!(matches!(
        shares.grant(&bob, &vp("/a"), &name("nobody"), Rights::READ, &db),
        Err(ShareError::NoSuchUser)
    ));
    assert!(matches!(
        shares.grant(&bob, &vp("/a"), &bob, Rights::READ, &db),
        Err(ShareError::SelfShare)
    ));
    assert!(matches!(
        shares.grant(
            &bob,
            &VirtualPath::root(),
            &name("alice"),
            Rights::READ,
            &db
        ),
        Err(ShareError::BadTarget)
    ));
    assert!(matches!(
        shares.grant(&bob, &vp("/shared/x"), &name("alice"), Rights::READ, &db),
        Err(ShareError::BadTarget)
    ));
    assert!(matches!(
        shares.grant(&bob, &vp("/a"), &name("alice"), Rights::default(), &db),
        Err(ShareError::NoRights)
    ));
    assert_eq!(shares.all().count(), 0);
}

#[test]
fn shares_file_is_durable_private_and_loses_no_concurrent_grant() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shares.json");
    let db = std::sync::Arc::new(users());
    let threads: Vec<_> = (0..20)
        .map(|i| {
            let file = SharesFile::new(&path);
            let db = db.clone();
            std::thread::spawn(move || {
                file.update(|shares| {
                    shares.grant(
                        &name("bob"),
                        &vp(&format!("/f{i}")),
                        &name("alice"),
                        Rights::READ,
                        &db,
                    )
                })
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap().unwrap();
    }
    let file = SharesFile::new(&path);
    let loaded = file.load().unwrap();
    assert_eq!(loaded.shared_with(&name("alice")).len(), 20);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(ShareDb::from_json(&loaded.to_json()).unwrap(), loaded);

    std::fs::write(&path, br#"{"version":1,"shares":[{"owner":"bob","path":"/../x","grantee":"alice","rights":"r"}]}"#).unwrap();
    assert!(matches!(file.load(), Err(ShareError::Corrupt { .. })));
    std::fs::write(&path, b"not json").unwrap();
    let err = file.load().unwrap_err();
    assert!(err.to_string().contains("shares.json is corrupt"), "{err}");
}
