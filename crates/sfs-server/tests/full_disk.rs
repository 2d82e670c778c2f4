//! A full disk during an upload: the upload fails with "no space", the previous
//! file is intact, no temporary file is left, and the store keeps working.
//!
//! The test needs a small file system. It re-runs itself inside a private mount
//! namespace (`unshare --map-root-user --mount`, so no real root is needed) with a
//! 256 KiB tmpfs mounted on a temporary folder, and the inner run does the work.
//! If no such namespace can be made, the test fails rather than skips.

use std::io::Read;
use std::process::Command;

use sfs_server::accounts::Username;
use sfs_server::store::{FileStore, StoreError, VirtualPath};

const INNER_ENV: &str = "SFS_FULL_DISK_DIR";

#[test]
fn full_disk_during_upload_keeps_the_old_file() {
    if let Some(dir) = std::env::var_os(INNER_ENV) {
        return inner(std::path::Path::new(&dir));
    }
    let mount_point = tempfile::tempdir().unwrap();
    let script = r#"mount -t tmpfs -o size=256k,mode=0700 sfs-test "$1" && shift && exec "$@""#;
    let output = Command::new("unshare")
        .args(["--map-root-user", "--mount", "sh", "-c", script, "sh"])
        .arg(mount_point.path())
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "full_disk_during_upload_keeps_the_old_file",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER_ENV, mount_point.path())
        .output()
        .expect("running unshare (util-linux) to get a private tmpfs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "inner run failed\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "inner run did not run the test\n{stdout}\n{stderr}"
    );
}

fn inner(dir: &std::path::Path) {
    let store = FileStore::open(&dir.join("server_files")).unwrap();
    let home = store.home(&Username::parse("alice").unwrap()).unwrap();
    let target = VirtualPath::parse("/file").unwrap();
    let old = vec![b'o'; 10_000];
    let mut upload = home.begin_upload(&target).unwrap();
    upload.write(&old).unwrap();
    let digest = upload.digest();
    upload.commit(&digest).unwrap();

    let mut upload = home.begin_upload(&target).unwrap();
    let chunk = vec![b'n'; 64 * 1024];
    let error = loop {
        if let Err(error) = upload.write(&chunk) {
            break error;
        }
        assert!(
            upload.written() < 16 << 20,
            "a 256 KiB tmpfs never filled up"
        );
    };
    assert!(matches!(error, StoreError::NoSpace), "{error:?}");
    assert_eq!(error.to_string(), "no space left on the server");
    drop(upload);

    let mut content = Vec::new();
    home.open_read(&target)
        .unwrap()
        .read_to_end(&mut content)
        .unwrap();
    assert_eq!(content, old);
    let names: Vec<_> = std::fs::read_dir(dir.join("server_files/alice"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["file"]);

    // With the space back, the store goes on serving.
    let mut upload = home
        .begin_upload(&VirtualPath::parse("/small").unwrap())
        .unwrap();
    upload.write(b"ok").unwrap();
    let digest = upload.digest();
    upload.commit(&digest).unwrap();
}
