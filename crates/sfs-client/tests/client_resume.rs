//! `reget` and `reput` against the test-double server: a download cut short
//! keeps a `.part` that a resume completes, a file changed since is noticed and
//! fetched again from the beginning (saying so), and an upload continues what
//! the server kept.

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sfs_client::command::parse_line;
use sfs_client::connection::{ClientError, InterruptSource, Remote, TransferSpec};
use sfs_client::shell::Shell;
use sfs_net::memory::MemoryTransport;
use sfs_proto::testing::TestPki;
use support::{pattern, sha256, Shared, State};

/// A small seeded generator (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % bound.max(1)
    }
}

async fn connect(state: State) -> (Remote<MemoryTransport>, Shared) {
    let pki = TestPki::new(&["localhost"]);
    let state = Arc::new(Mutex::new(state));
    let transport = support::start(&pki, state.clone());
    let (connection, _) = support::log_in(transport, &pki).await;
    (connection, state)
}

fn reget(remote: &str, dest: &Path) -> TransferSpec {
    TransferSpec::Download {
        remote: remote.into(),
        dest: dest.to_owned(),
        resume: true,
    }
}

fn part_of(dest: &Path) -> std::path::PathBuf {
    dest.with_file_name(format!(
        "{}.part",
        dest.file_name().unwrap().to_string_lossy()
    ))
}

fn noticed(connection: &Remote<MemoryTransport>, words: &str) -> bool {
    connection
        .reporter()
        .notices()
        .iter()
        .any(|line| line.contains(words))
}

#[tokio::test]
async fn downloads_interrupted_at_random_points_resume_to_the_same_digest() {
    let data = pattern(2_000_000);
    let mut state = State::default();
    state.files.insert("big".into(), data.clone());
    state.chunk_delay = Some(Duration::from_millis(2));
    let (mut connection, shared) = connect(state).await;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x1234_5678);
    let mut resumed_from_middle = 0;
    for round in 0..20 {
        let dest = dir.path().join(format!("big{round}"));
        let fired = Arc::new(tokio::sync::Notify::new());
        let trigger = fired.clone();
        let source: InterruptSource = Arc::new(move || {
            let fired = trigger.clone();
            Box::pin(async move { fired.notified().await })
        });
        connection.set_interrupt(source);
        let delay = Duration::from_millis(5 + rng.below(60));
        let interrupter = tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            fired.notify_one();
        });
        let first = connection
            .transfer_all(&[TransferSpec::Download {
                remote: "big".into(),
                dest: dest.clone(),
                resume: false,
            }])
            .await;
        interrupter.await.unwrap();
        if first[0].is_ok() {
            assert_eq!(std::fs::read(&dest).unwrap(), data);
            continue;
        }
        assert!(matches!(first[0], Err(ClientError::Interrupted)));
        // What is kept is a verified prefix.
        if let Ok(kept) = std::fs::read(part_of(&dest)) {
            assert_eq!(kept, data[..kept.len()], "round {round}");
            resumed_from_middle += usize::from(!kept.is_empty());
        }
        shared.lock().unwrap().chunk_delay = None;
        let done = connection.transfer_all(&[reget("big", &dest)]).await;
        shared.lock().unwrap().chunk_delay = Some(Duration::from_millis(2));
        let done = done.into_iter().next().unwrap().expect("resumed");
        // The digest both ends checked covers the whole file, prefix included.
        assert_eq!(done.sha256, sha256(&data), "round {round}");
        assert_eq!(std::fs::read(&dest).unwrap(), data, "round {round}");
        assert!(!part_of(&dest).exists());
    }
    assert!(resumed_from_middle >= 10, "{resumed_from_middle} of 20");
    assert!(!noticed(&connection, "from the beginning"));
}

#[tokio::test]
async fn a_changed_remote_file_is_fetched_again_from_the_beginning() {
    let data = pattern(300_000);
    let mut state = State::default();
    state.files.insert("f".into(), data.clone());
    let (mut connection, _) = connect(state).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f");
    let mut stale = data[..100_000].to_vec();
    stale[5] ^= 1;
    std::fs::write(part_of(&dest), &stale).unwrap();
    let done = connection.transfer_all(&[reget("f", &dest)]).await;
    assert_eq!(done[0].as_ref().unwrap().sha256, sha256(&data));
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert!(noticed(&connection, "changed since the partial download"));
}

#[tokio::test]
async fn a_part_longer_than_the_remote_file_starts_again() {
    let data = pattern(50_000);
    let mut state = State::default();
    state.files.insert("f".into(), data.clone());
    let (mut connection, _) = connect(state).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f");
    std::fs::write(part_of(&dest), pattern(60_000)).unwrap();
    let done = connection.transfer_all(&[reget("f", &dest)]).await;
    assert_eq!(done[0].as_ref().unwrap().sha256, sha256(&data));
    assert_eq!(std::fs::read(&dest).unwrap(), data);
}

#[tokio::test]
async fn empty_files_resume() {
    let mut state = State::default();
    state.files.insert("empty".into(), Vec::new());
    let (mut connection, _) = connect(state).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("empty");
    // No .part at all: a plain download.
    let done = connection.transfer_all(&[reget("empty", &dest)]).await;
    assert_eq!(done[0].as_ref().unwrap().sha256, sha256(b""));
    // A .part with bytes, of a file now empty: again from the beginning.
    std::fs::write(part_of(&dest), b"old bytes").unwrap();
    let done = connection.transfer_all(&[reget("empty", &dest)]).await;
    assert_eq!(done[0].as_ref().unwrap().sha256, sha256(b""));
    assert_eq!(std::fs::read(&dest).unwrap(), b"");
    assert!(!part_of(&dest).exists());
}

#[tokio::test]
async fn a_killed_client_leaves_a_part_with_holes_and_resume_backs_off() {
    // A killed client cannot cut its .part to the verified prefix: chunks that
    // arrived ahead of a gap are there, and the gap holds zeros.
    let data = pattern(6 << 20);
    let mut state = State::default();
    state.files.insert("f".into(), data.clone());
    let (mut connection, shared) = connect(state).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("f");
    let mut part = data[..5 << 20].to_vec();
    part[(4 << 20) + (3 << 18)..(4 << 20) + (7 << 17)].fill(0);
    std::fs::write(part_of(&dest), &part).unwrap();
    let done = connection.transfer_all(&[reget("f", &dest)]).await;
    assert_eq!(done[0].as_ref().unwrap().sha256, sha256(&data));
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    // It resumed one window back, not from the beginning.
    assert!(!noticed(&connection, "from the beginning"));
    let log = shared.lock().unwrap().log.clone();
    assert_eq!(log.iter().filter(|c| *c == "REGET").count(), 2, "{log:?}");
}

#[tokio::test]
async fn reget_and_reput_work_from_the_shell() {
    let data = pattern(200_000);
    let mut state = State::default();
    state.files.insert("f".into(), data.clone());
    state.partials.insert("up".into(), data[..70_000].to_vec());
    let (connection, shared) = connect(state).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.part"), &data[..120_000]).unwrap();
    std::fs::write(dir.path().join("up"), &data).unwrap();
    let mut shell = Shell::new(
        connection,
        "/".into(),
        dir.path().to_owned(),
        Box::new(std::io::sink()),
        true,
    );
    let reget = parse_line("reget f").unwrap().unwrap();
    shell.execute(reget).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), data);
    let reput = parse_line("reput up").unwrap().unwrap();
    shell.execute(reput).await.unwrap();
    let st = shared.lock().unwrap();
    assert_eq!(st.uploads["up"], data);
    assert!(st.log.iter().any(|c| c == "REGET"), "{:?}", st.log);
    assert!(st.log.iter().any(|c| c == "REPUT"), "{:?}", st.log);
    assert!(
        !st.log.iter().any(|c| c == "STOR" || c == "RETR"),
        "{:?}",
        st.log
    );
}

#[tokio::test]
async fn reput_starts_again_when_the_partial_does_not_fit() {
    let data = pattern(100_000);
    let mut state = State::default();
    let mut changed = data[..40_000].to_vec();
    changed[7] ^= 1;
    state.partials.insert("changed".into(), changed);
    state.partials.insert("longer".into(), pattern(100_001));
    let (mut connection, shared) = connect(state).await;
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("local");
    std::fs::write(&local, &data).unwrap();
    for remote in ["changed", "longer", "none"] {
        let done = connection
            .transfer_all(&[TransferSpec::Upload {
                local: local.clone(),
                remote: remote.into(),
                resume: true,
            }])
            .await;
        assert_eq!(done[0].as_ref().unwrap().sha256, sha256(&data), "{remote}");
        assert_eq!(shared.lock().unwrap().uploads[remote], data, "{remote}");
    }
    assert!(noticed(&connection, "does not match the local file"));
    assert!(noticed(&connection, "is longer than"));
}
