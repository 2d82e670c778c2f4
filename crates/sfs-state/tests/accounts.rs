//! Host tests of the users file and the account service.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfs_state::accounts::{
    hash_password, Accounts, AccountsError, Hasher, LoginError, Password, RegisterError, Role,
    UserDb, Username, UsersFile, MIN_BCRYPT_COST,
};

fn name(text: &str) -> Username {
    Username::parse(text).unwrap()
}

fn password(text: &str) -> Password {
    Password::new(text.as_bytes().to_vec()).unwrap()
}

#[test]
fn missing_file_is_empty_and_corrupt_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = UsersFile::new(dir.path().join("users.json"));
    assert!(file.load().unwrap().is_empty());

    std::fs::write(file.path(), b"{\"version\": 1, \"users\": [").unwrap();
    let err = file.load().unwrap_err();
    assert!(matches!(err, AccountsError::Corrupt { .. }));
    let message = err.to_string();
    assert!(message.contains("users.json is corrupt"), "{message}");
    assert!(message.contains("line 1"), "{message}");

    std::fs::write(
        file.path(),
        br#"{"version":1,"users":[{"name":"../x","hash":"h","role":"user"}]}"#,
    )
    .unwrap();
    assert!(matches!(file.load(), Err(AccountsError::Corrupt { .. })));

    std::fs::write(
        file.path(),
        br#"{"version":1,"users":[{"name":"abc","hash":"h","role":"root"}]}"#,
    )
    .unwrap();
    assert!(matches!(file.load(), Err(AccountsError::Corrupt { .. })));

    // A failed edit of a corrupt file leaves it as it was.
    let before = std::fs::read(file.path()).unwrap();
    assert!(file.update(|_| Ok(())).is_err());
    assert_eq!(std::fs::read(file.path()).unwrap(), before);
}

#[test]
fn update_writes_mode_0600_and_keeps_edits_made_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let file = UsersFile::new(&path);
    let hash = hash_password(&password("pw"), MIN_BCRYPT_COST).unwrap();
    file.update(|db| db.add(name("alice"), hash.clone(), Role::Admin))
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Another writer (say the admin tool) adds bob directly.
    let other = UsersFile::new(&path);
    other
        .update(|db| db.add(name("bob"), hash.clone(), Role::User))
        .unwrap();
    // Our next edit re-reads under the lock, so bob survives it.
    file.update(|db| db.set_role(&name("alice"), Role::User))
        .unwrap();
    let db = file.load().unwrap();
    assert_eq!(db.len(), 2);
    assert_eq!(db.user(&name("alice")).unwrap().role, Role::User);

    // A failing edit writes nothing.
    let before = std::fs::read(&path).unwrap();
    let err = file
        .update(|db| db.add(name("bob"), hash.clone(), Role::User))
        .unwrap_err();
    assert!(matches!(err, AccountsError::UserExists(_)));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn fifty_threads_registering_one_name_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let hash = hash_password(&password("pw"), MIN_BCRYPT_COST).unwrap();
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let file = UsersFile::new(&path);
            let hash = hash.clone();
            std::thread::spawn(move || file.update(|db| db.add(name("carol"), hash, Role::User)))
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let wins = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(wins, 1);
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| matches!(e, AccountsError::UserExists(_))));
    assert_eq!(UsersFile::new(&path).load().unwrap().len(), 1);
}

#[test]
fn fifty_threads_registering_different_names_lose_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.json");
    let hash = hash_password(&password("pw"), MIN_BCRYPT_COST).unwrap();
    let threads: Vec<_> = (0..50)
        .map(|i| {
            let file = UsersFile::new(&path);
            let hash = hash.clone();
            std::thread::spawn(move || {
                file.update(|db| db.add(name(&format!("user{i}")), hash, Role::User))
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap().unwrap();
    }
    let db: UserDb = UsersFile::new(&path).load().unwrap();
    assert_eq!(db.len(), 50);
    // No temporary file is left behind (only the file and its lock).
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["users.json", "users.json.lock"]);
}

fn service(dir: &tempfile::TempDir, cost: u32) -> Arc<Accounts> {
    let file = UsersFile::new(dir.path().join("users.json"));
    Arc::new(Accounts::open(file, Hasher::new(cost, 4)).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_login_and_never_admin() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = service(&dir, MIN_BCRYPT_COST);
    let account = accounts
        .register(name("dave"), password("hunter22"))
        .await
        .unwrap();
    assert_eq!(account.role, Role::User);
    let stored = accounts.file().load().unwrap();
    assert_eq!(stored.user(&name("dave")).unwrap().role, Role::User);

    let login = accounts
        .authenticate("dave", password("hunter22"))
        .await
        .unwrap();
    assert_eq!(login.name, name("dave"));
    assert!(!login.is_admin());

    for (user, pass) in [
        ("dave", "hunter23"),
        ("nobody", "hunter22"),
        ("../../etc", "x"),
        ("", "x"),
    ] {
        let err = accounts
            .authenticate(user, password(pass))
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::Rejected), "{user}");
        assert_eq!(err.to_string(), "login incorrect");
    }

    // A disabled account is rejected like a wrong password.
    accounts
        .file()
        .update(|db| db.set_disabled(&name("dave"), true))
        .unwrap();
    let err = accounts
        .authenticate("dave", password("hunter22"))
        .await
        .unwrap_err();
    assert!(matches!(err, LoginError::Rejected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_parallel_registrations_of_one_name_exactly_one_wins() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = service(&dir, MIN_BCRYPT_COST);
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let accounts = accounts.clone();
            tokio::spawn(async move {
                accounts
                    .register(name("erin"), password(&format!("pw{i}")))
                    .await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(RegisterError::Taken) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(accounts.file().load().unwrap().len(), 1);
}

/// Unknown names cost one bcrypt too. Timing on a shared machine is noisy, so the
/// bound is loose: the point is that an unknown name is not answered instantly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_takes_as_long_as_a_wrong_password() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = service(&dir, 9);
    accounts
        .register(name("frank"), password("right"))
        .await
        .unwrap();
    let mut wrong = Duration::ZERO;
    let mut unknown = Duration::ZERO;
    for _ in 0..3 {
        let start = Instant::now();
        let _ = accounts.authenticate("frank", password("wrong")).await;
        wrong += start.elapsed();
        let start = Instant::now();
        let _ = accounts.authenticate("nobody", password("wrong")).await;
        unknown += start.elapsed();
    }
    assert!(
        unknown * 3 > wrong && wrong * 3 > unknown,
        "wrong password {wrong:?} vs unknown user {unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_wire_passwords_are_rejected_like_wrong_ones() {
    let dir = tempfile::tempdir().unwrap();
    let accounts = service(&dir, MIN_BCRYPT_COST);
    accounts
        .register(name("gina"), password("right"))
        .await
        .unwrap();
    for bytes in [vec![b'x'; 73], vec![], vec![b'y'; 1 << 20]] {
        let err = accounts
            .authenticate_bytes("gina", bytes)
            .await
            .unwrap_err();
        assert!(matches!(err, LoginError::Rejected));
    }
    accounts
        .authenticate_bytes("gina", b"right".to_vec())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_upgrades_a_hash_made_at_another_cost() {
    let dir = tempfile::tempdir().unwrap();
    let file = UsersFile::new(dir.path().join("users.json"));
    let old = hash_password(&password("pw"), MIN_BCRYPT_COST).unwrap();
    file.update(|db| db.add(name("hank"), old.clone(), Role::User))
        .unwrap();
    let accounts = Accounts::open(file.clone(), Hasher::new(5, 2)).unwrap();
    accounts.authenticate("hank", password("pw")).await.unwrap();
    let stored = file
        .load()
        .unwrap()
        .user(&name("hank"))
        .unwrap()
        .hash
        .clone();
    assert_eq!(stored.cost(), Some(5));
    assert_ne!(stored, old);
    // A wrong password upgrades nothing.
    let accounts = Accounts::open(file.clone(), Hasher::new(6, 2)).unwrap();
    let _ = accounts.authenticate("hank", password("nope")).await;
    assert_eq!(
        file.load()
            .unwrap()
            .user(&name("hank"))
            .unwrap()
            .hash
            .cost(),
        Some(5)
    );
}
