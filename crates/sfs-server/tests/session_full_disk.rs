//! A full disk during a STOR through the connection handler: the client gets
//! `NO_SPACE`, the previous file is intact, no temporary file is left, and the
//! session goes on serving.
//!
//! Like `full_disk.rs`, the test re-runs itself inside a private mount namespace
//! (`unshare --map-root-user --mount`) with a 512 KiB tmpfs as `TMPDIR`, so the
//! fixture's whole server folder lives on the small file system. If no such
//! namespace can be made, the test fails rather than skips.

mod support;

use std::process::Command;

use sfs_proto::control::{Command as Request, ErrorCode, Reply};
use support::{code, pattern, Fixture};

const INNER_ENV: &str = "SFS_SESSION_FULL_DISK";

#[test]
fn full_disk_during_stor_keeps_the_old_file() {
    if std::env::var_os(INNER_ENV).is_some() {
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(inner());
    }
    let mount_point = tempfile::tempdir().unwrap();
    let script = r#"mount -t tmpfs -o size=512k,mode=0700 sfs-test "$1" && shift && exec "$@""#;
    let output = Command::new("unshare")
        .args(["--map-root-user", "--mount", "sh", "-c", script, "sh"])
        .arg(mount_point.path())
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "full_disk_during_stor_keeps_the_old_file",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER_ENV, "1")
        .env("TMPDIR", mount_point.path())
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

async fn inner() {
    let fx = Fixture::new();
    let mut c = fx.login("alice").await;
    let old = pattern(20_000, 1);
    assert_eq!(c.upload("keep.bin", &old).await, Reply::Ok);
    // More than the disk holds: refused when the STOR opens, nothing written.
    let reply = c.upload("keep.bin", &pattern(2_000_000, 2)).await;
    assert_eq!(code(&reply), ErrorCode::NO_SPACE, "{reply:?}");
    assert!(fx.leftover_uploads().is_empty());

    // A size that fits when the STOR opens, but the disk fills up (another
    // writer) while the data moves: NO_SPACE during the transfer.
    let id = c.send_stor("keep.bin", pattern(200_000, 3));
    while !c.stor_transfer.contains_key(&id) {
        c.step().await;
    }
    let filler = fx.dir.path().join("filler");
    fill_disk(&filler);
    let reply = c.reply(id).await;
    assert_eq!(code(&reply), ErrorCode::NO_SPACE, "{reply:?}");
    // The temporary file is gone by the time the client hears the reply.
    assert!(fx.leftover_uploads().is_empty());
    assert_eq!(
        std::fs::read(fx.home("alice").join("keep.bin")).unwrap(),
        old
    );
    // The next command works, even with the disk still full.
    assert_eq!(
        c.request(Request::Size {
            path: "keep.bin".into()
        })
        .await,
        Reply::Size { size: 20_000 }
    );
    std::fs::remove_file(&filler).unwrap();
    // Space is back once the failed upload is gone: the session serves on.
    assert_eq!(c.upload("small.bin", b"fits").await, Reply::Ok);
    assert_eq!(c.download("keep.bin").await.unwrap(), old);
}

/// Writes `path` until the file system is full.
fn fill_disk(path: &std::path::Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let block = [0u8; 4096];
    loop {
        match file.write_all(&block) {
            Ok(()) => {}
            Err(error) if error.raw_os_error() == Some(28) => break,
            Err(error) => panic!("filling the disk: {error}"),
        }
    }
}
