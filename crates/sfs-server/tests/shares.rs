//! Host tests of sharing joined with the file store: rights checked before store
//! operations. The share table and the shares file alone are tested in sfs-state.

use sfs_server::accounts::{
    hash_password, Account, Password, Role, UserDb, Username, MIN_BCRYPT_COST,
};
use sfs_server::shares::{parse_rights, Access, Resolved, Rights, ShareDb, ShareError};
use sfs_server::store::{FileStore, StoreError, VirtualPath};

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
fn read_only_share_allows_reading_and_nothing_else() {
    let base = tempfile::tempdir().unwrap();
    let store = FileStore::open(&base.path().join("server_files")).unwrap();
    let bob_home = store.home(&name("bob")).unwrap();
    bob_home.mkdir(&vp("/docs")).unwrap();
    let mut upload = bob_home.begin_upload(&vp("/docs/a.txt")).unwrap();
    upload.write(b"from bob").unwrap();
    let digest = upload.digest();
    upload.commit(&digest).unwrap();

    let mut shares = ShareDb::default();
    shares
        .grant(
            &name("bob"),
            &vp("/docs"),
            &name("alice"),
            Rights::READ,
            &users(),
        )
        .unwrap();
    let alice = account("alice", Role::User);

    let resolved = shares.resolve(&alice, &vp("/shared/bob/docs/a.txt"));
    let Resolved::Shared {
        owner,
        path,
        rights,
    } = &resolved
    else {
        panic!("{resolved:?}");
    };
    assert_eq!(
        (owner.as_str(), path.to_string(), *rights),
        ("bob", "/docs/a.txt".into(), Rights::READ)
    );
    resolved.check(Access::Read).unwrap();
    for access in [Access::Write, Access::Create, Access::Delete] {
        let err = resolved.check(access).unwrap_err();
        assert!(matches!(err, ShareError::Denied(a) if a == access));
    }
    // The session then reads through the owner's home, with the owner's path.
    let home = store.existing_home(owner).unwrap();
    assert_eq!(home.digest(path).unwrap(), digest);

    // Creating in the shared folder needs create.
    let new_file = shares.resolve(&alice, &vp("/shared/bob/docs/new.txt"));
    assert!(matches!(
        new_file.check(Access::Create),
        Err(ShareError::Denied(Access::Create))
    ));

    // Own paths are untouched by sharing.
    assert_eq!(
        shares.resolve(&alice, &vp("/docs")),
        Resolved::Own(vp("/docs"))
    );
}

#[test]
fn outside_a_share_nothing_is_visible_and_deleting_needs_admin() {
    let mut shares = ShareDb::default();
    shares
        .grant(
            &name("bob"),
            &vp("/docs/report.txt"),
            &name("alice"),
            parse_rights("rwcd").unwrap(),
            &users(),
        )
        .unwrap();
    shares
        .grant(
            &name("bob"),
            &vp("/pics"),
            &name("alice"),
            Rights::READ,
            &users(),
        )
        .unwrap();
    let alice = account("alice", Role::User);

    // Not shared: the same reply as a missing file, for every access.
    for path in [
        "/shared/bob/private.txt",
        "/shared/bob/docs/other.txt",
        "/shared/carol/x",
        "/shared/BAD/x",
    ] {
        let resolved = shares.resolve(&alice, &vp(path));
        assert_eq!(resolved, Resolved::NotShared, "{path}");
        let err = resolved.check(Access::Delete).unwrap_err();
        assert_eq!(err.to_string(), StoreError::NotFound.to_string());
    }

    // An admin may act anywhere, deleting included.
    let root = account("root", Role::Admin);
    let resolved = shares.resolve(&root, &vp("/shared/bob/private.txt"));
    assert_eq!(
        resolved,
        Resolved::Shared {
            owner: name("bob"),
            path: vp("/private.txt"),
            rights: Rights::ALL
        }
    );
    resolved.check(Access::Delete).unwrap();
    // Including the top of another home, for listing it.
    assert!(matches!(
        shares.resolve(&root, &vp("/shared/alice")),
        Resolved::Shared { .. }
    ));

    // A delete right on one file covers that file only.
    shares
        .resolve(&alice, &vp("/shared/bob/docs/report.txt"))
        .check(Access::Delete)
        .unwrap();
}
