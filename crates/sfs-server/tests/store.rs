//! Host tests of the file store: confinement, modes, uploads and errors.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sfs_server::accounts::Username;
use sfs_server::store::{EntryKind, FileStore, Home, PathError, StoreError, VirtualPath};
use sha2::{Digest, Sha256};

struct Fixture {
    /// Holds the temporary folder: everything under it is removed on drop.
    base: tempfile::TempDir,
    store: FileStore,
    home: Home,
}

impl Fixture {
    fn new() -> Self {
        let base = tempfile::tempdir().unwrap();
        let store = FileStore::open(&base.path().join("server_files")).unwrap();
        let home = store.home(&Username::parse("alice").unwrap()).unwrap();
        // A file outside every home, which nothing may reach.
        fs::write(base.path().join("outside.txt"), b"OUTSIDE").unwrap();
        fs::create_dir(base.path().join("outside_dir")).unwrap();
        fs::write(base.path().join("outside_dir/secret"), b"OUTSIDE").unwrap();
        Self { base, store, home }
    }

    fn real_home(&self) -> std::path::PathBuf {
        self.base.path().join("server_files/alice")
    }

    fn put(&self, path: &str, data: &[u8]) {
        let path = vp(path);
        let mut upload = self.home.begin_upload(&path).unwrap();
        upload.write(data).unwrap();
        let digest = upload.digest();
        upload.commit(&digest).unwrap();
    }

    fn read(&self, path: &str) -> Vec<u8> {
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut self.home.open_read(&vp(path)).unwrap(), &mut data)
            .unwrap();
        data
    }

    fn assert_outside_untouched(&self) {
        assert_eq!(
            fs::read(self.base.path().join("outside.txt")).unwrap(),
            b"OUTSIDE"
        );
        assert_eq!(
            fs::read(self.base.path().join("outside_dir/secret")).unwrap(),
            b"OUTSIDE"
        );
        assert_eq!(
            fs::read_dir(self.base.path().join("outside_dir"))
                .unwrap()
                .count(),
            1
        );
    }

    /// No error text may reveal where the store lives.
    fn assert_no_real_path(&self, error: &StoreError) {
        let text = error.to_string();
        let base = self.base.path().to_string_lossy();
        assert!(!text.contains(base.as_ref()), "{text}");
        assert!(!text.contains("server_files"), "{text}");
    }
}

fn vp(text: &str) -> VirtualPath {
    VirtualPath::parse(text).unwrap()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn basic_operations_and_modes() {
    let fx = Fixture::new();
    assert_eq!(mode(&fx.real_home()), 0o700);
    fx.home.mkdir(&vp("/docs")).unwrap();
    assert_eq!(mode(&fx.real_home().join("docs")), 0o700);
    fx.put("/docs/a.txt", b"hello");
    assert_eq!(mode(&fx.real_home().join("docs/a.txt")), 0o600);
    fx.put("/café.txt", "unicode".as_bytes());

    let listing = fx.home.list(&VirtualPath::root()).unwrap();
    let names: Vec<_> = listing.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    assert_eq!(
        names,
        [("café.txt", EntryKind::File), ("docs", EntryKind::Dir)]
    );
    let stat = fx.home.stat(&vp("/docs/a.txt")).unwrap();
    assert_eq!(
        (stat.name.as_str(), stat.kind, stat.size),
        ("a.txt", EntryKind::File, 5)
    );
    assert!(stat.modified.is_some());
    assert_eq!(fx.home.size(&vp("/docs/a.txt")).unwrap(), 5);
    assert!(matches!(
        fx.home.size(&vp("/docs")),
        Err(StoreError::IsADirectory)
    ));
    assert_eq!(
        fx.home.digest(&vp("/docs/a.txt")).unwrap(),
        sha256(b"hello")
    );
    assert_eq!(fx.read("/docs/a.txt"), b"hello");

    fx.home
        .rename(&vp("/docs/a.txt"), &vp("/docs/b.txt"))
        .unwrap();
    assert!(matches!(
        fx.home.stat(&vp("/docs/a.txt")),
        Err(StoreError::NotFound)
    ));
    fx.put("/docs/c.txt", b"c");
    assert!(matches!(
        fx.home.rename(&vp("/docs/b.txt"), &vp("/docs/c.txt")),
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        fx.home.rename(&vp("/docs"), &vp("/docs/inner")),
        Err(StoreError::Denied)
    ));
    assert!(matches!(
        fx.home.rmdir(&vp("/docs")),
        Err(StoreError::NotEmpty)
    ));
    assert!(matches!(
        fx.home.delete(&vp("/docs")),
        Err(StoreError::IsADirectory)
    ));
    assert!(matches!(
        fx.home.mkdir(&vp("/docs")),
        Err(StoreError::AlreadyExists)
    ));
    fx.home.delete(&vp("/docs/b.txt")).unwrap();
    fx.home.delete(&vp("/docs/c.txt")).unwrap();
    fx.home.rmdir(&vp("/docs")).unwrap();
    assert!(matches!(
        fx.home.rmdir(&VirtualPath::root()),
        Err(StoreError::RootOperation)
    ));
    assert!(matches!(
        fx.home.delete(&VirtualPath::root()),
        Err(StoreError::RootOperation)
    ));
    assert!(matches!(
        fx.home.mkdir(&vp("/shared")),
        Err(StoreError::InvalidPath(PathError::Reserved))
    ));
    // "shared" is only reserved at the top.
    fx.home.mkdir(&vp("/x")).unwrap();
    fx.home.mkdir(&vp("/x/shared")).unwrap();
    let missing = fx.home.list(&vp("/nope")).unwrap_err();
    assert_eq!(missing.to_string(), "no such file or folder");
    fx.assert_no_real_path(&missing);
}

#[test]
fn bad_names_are_refused_before_touching_the_disk() {
    for (text, expected) in [
        ("../../etc/passwd", PathError::EscapesHome),
        ("a/../../x", PathError::EscapesHome),
        ("new\nline", PathError::ControlCharacter),
        ("nul\0byte", PathError::Nul),
    ] {
        assert_eq!(VirtualPath::root().join(text), Err(expected), "{text:?}");
    }
    let long = "d/".repeat(2500);
    assert_eq!(VirtualPath::root().join(&long), Err(PathError::TooLong));
    let fx = Fixture::new();
    // /etc/passwd is virtual: it is looked up in the home, where it does not exist.
    let err = fx.home.open_read(&vp("/etc/passwd")).unwrap_err();
    assert!(matches!(err, StoreError::NotFound));
    fx.assert_no_real_path(&err);
    // %2e%2e is a literal name, not "..".
    assert!(matches!(
        fx.home.list(&vp("%2e%2e/")),
        Err(StoreError::NotFound)
    ));
    assert_eq!(fs::read_dir(fx.real_home()).unwrap().count(), 0);
}

#[test]
fn planted_symlinks_out_of_the_home_lead_nowhere() {
    let fx = Fixture::new();
    let home = fx.real_home();
    symlink(fx.base.path().join("outside.txt"), home.join("abs_file")).unwrap();
    symlink(fx.base.path().join("outside_dir"), home.join("abs_dir")).unwrap();
    symlink("../../outside.txt", home.join("rel_file")).unwrap();
    symlink("../../outside_dir", home.join("rel_dir")).unwrap();
    fs::create_dir(home.join("deep")).unwrap();
    symlink("../../../outside_dir", home.join("deep/up")).unwrap();
    // A symlink into another user's home is just as far out of bounds.
    fx.store.home(&Username::parse("bob").unwrap()).unwrap();
    symlink("../bob", home.join("to_bob")).unwrap();

    for link in ["/abs_file", "/rel_file"] {
        let err = fx.home.open_read(&vp(link)).unwrap_err();
        assert!(matches!(err, StoreError::Denied), "{link}: {err:?}");
        fx.assert_no_real_path(&err);
        assert!(fx.home.digest(&vp(link)).is_err());
        assert!(fx.home.stat(&vp(link)).is_err());
        // Uploading over a symlink is refused; the target is not written through it.
        assert!(matches!(
            fx.home.begin_upload(&vp(link)),
            Err(StoreError::NotRegular)
        ));
    }
    for dir in ["/abs_dir", "/rel_dir", "/deep/up", "/to_bob"] {
        assert!(fx.home.list(&vp(dir)).is_err(), "{dir}");
        let err = fx
            .home
            .open_read(&vp(&format!("{dir}/secret")))
            .unwrap_err();
        assert!(matches!(err, StoreError::Denied), "{dir}: {err:?}");
        assert!(fx.home.mkdir(&vp(&format!("{dir}/new"))).is_err());
        assert!(fx.home.begin_upload(&vp(&format!("{dir}/new"))).is_err());
        assert!(fx.home.delete(&vp(&format!("{dir}/secret"))).is_err());
        assert!(fx
            .home
            .rename(&vp(&format!("{dir}/secret")), &vp("/stolen"))
            .is_err());
    }
    // The listing shows links as links without following them.
    let listing = fx.home.list(&VirtualPath::root()).unwrap();
    assert!(listing
        .iter()
        .filter(|e| e.name.contains("abs") || e.name.contains("rel"))
        .all(|e| e.kind == EntryKind::Symlink && e.size == 0));
    // Deleting a link removes the link, never its target.
    fx.home.delete(&vp("/abs_file")).unwrap();
    fx.home.delete(&vp("/rel_dir")).unwrap();
    fx.assert_outside_untouched();
    assert!(fs::read_dir(fx.base.path().join("server_files/bob"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn symlinks_inside_the_home_work() {
    let fx = Fixture::new();
    fx.home.mkdir(&vp("/real")).unwrap();
    fx.put("/real/f", b"data");
    symlink("real", fx.real_home().join("alias")).unwrap();
    assert_eq!(fx.read("/alias/f"), b"data");
}

#[test]
fn raced_symlink_swap_never_reaches_outside() {
    let fx = Arc::new(Fixture::new());
    let home = fx.real_home();
    fx.home.mkdir(&vp("/real")).unwrap();
    fx.put("/real/secret", b"inside");
    symlink(fx.base.path().join("outside_dir"), home.join("link")).unwrap();
    fs::rename(home.join("real"), home.join("sw")).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = stop.clone();
        let home = home.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // "sw" flips between the real folder and a symlink leading out.
                let _ = fs::rename(home.join("sw"), home.join("real"));
                let _ = fs::rename(home.join("link"), home.join("sw"));
                let _ = fs::rename(home.join("sw"), home.join("link"));
                let _ = fs::rename(home.join("real"), home.join("sw"));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_millis(700);
    let mut reads = 0;
    while Instant::now() < deadline {
        if let Ok(mut file) = fx.home.open_read(&vp("/sw/secret")) {
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut data).unwrap();
            assert_eq!(data, b"inside", "read through a raced symlink");
            reads += 1;
        }
        if let Ok(mut upload) = fx.home.begin_upload(&vp("/sw/written")) {
            upload.write(b"x").unwrap();
            let digest = upload.digest();
            let _ = upload.commit(&digest);
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    assert!(
        reads > 0,
        "the race never let a read through; the test proved nothing"
    );
    fx.assert_outside_untouched();
}

#[test]
fn upload_lands_in_the_folder_it_started_in_even_if_the_path_is_swapped() {
    let fx = Fixture::new();
    let home = fx.real_home();
    fx.home.mkdir(&vp("/d")).unwrap();
    let mut upload = fx.home.begin_upload(&vp("/d/f")).unwrap();
    upload.write(b"payload").unwrap();
    fs::rename(home.join("d"), home.join("d_moved")).unwrap();
    symlink(fx.base.path().join("outside_dir"), home.join("d")).unwrap();
    let digest = upload.digest();
    upload.commit(&digest).unwrap();
    assert_eq!(fs::read(home.join("d_moved/f")).unwrap(), b"payload");
    fx.assert_outside_untouched();
}

#[test]
fn failed_uploads_never_damage_the_old_file() {
    let fx = Fixture::new();
    fx.put("/file", b"old content");

    // Digest mismatch.
    let mut upload = fx.home.begin_upload(&vp("/file")).unwrap();
    upload.write(b"new content").unwrap();
    let err = upload.commit(&sha256(b"something else")).unwrap_err();
    assert!(matches!(err, StoreError::DigestMismatch));
    assert_eq!(fx.read("/file"), b"old content");

    // Explicit abort, and a plain drop (a killed session).
    let mut upload = fx.home.begin_upload(&vp("/file")).unwrap();
    upload.write(b"partial").unwrap();
    upload.abort();
    let mut upload = fx.home.begin_upload(&vp("/file")).unwrap();
    upload.write(b"partial").unwrap();
    drop(upload);
    assert_eq!(fx.read("/file"), b"old content");

    // While an upload runs, the old file is still what readers see.
    let mut upload = fx.home.begin_upload(&vp("/file")).unwrap();
    upload.write(b"brand new").unwrap();
    assert_eq!(fx.read("/file"), b"old content");
    // The temporary file is hidden from listings and cannot be named by a client.
    let names: Vec<_> = fx
        .home
        .list(&VirtualPath::root())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["file"]);
    let digest = upload.digest();
    assert_eq!(upload.commit(&digest).unwrap(), 9);
    assert_eq!(fx.read("/file"), b"brand new");
    assert_eq!(fs::read_dir(fx.real_home()).unwrap().count(), 1);

    // Uploading onto a folder or the home is refused.
    fx.home.mkdir(&vp("/dir")).unwrap();
    assert!(matches!(
        fx.home.begin_upload(&vp("/dir")),
        Err(StoreError::IsADirectory)
    ));
    assert!(matches!(
        fx.home.begin_upload(&VirtualPath::root()),
        Err(StoreError::RootOperation)
    ));
    assert!(matches!(
        fx.home.begin_upload(&vp("/missing/file")),
        Err(StoreError::NotFound)
    ));
}

#[test]
fn stale_upload_files_are_swept() {
    let fx = Fixture::new();
    fx.home.mkdir(&vp("/d")).unwrap();
    fs::write(fx.real_home().join(".sfs-upload-0011"), b"junk").unwrap();
    fs::write(fx.real_home().join("d/.sfs-upload-2233"), b"junk").unwrap();
    fx.put("/d/keep", b"keep");
    assert_eq!(fx.store.remove_stale_uploads().unwrap(), 2);
    assert_eq!(fx.read("/d/keep"), b"keep");
    assert_eq!(fs::read_dir(fx.real_home().join("d")).unwrap().count(), 1);
}

#[test]
fn planted_odd_names_are_hidden_from_listings() {
    let fx = Fixture::new();
    fs::write(fx.real_home().join("line\nbreak"), b"x").unwrap();
    fs::write(fx.real_home().join("plain"), b"x").unwrap();
    let names: Vec<_> = fx
        .home
        .list(&VirtualPath::root())
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["plain"]);
}
