//! `get -r` and `mget` against a hostile server (the test double): names that
//! could escape the local folder, control characters and links in listings are
//! refused one by one, and the rest of the tree still arrives.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use sfs_client::command::parse_line;
use sfs_client::connection::{ClientError, Remote};
use sfs_client::shell::Shell;
use sfs_proto::control::{Entry, EntryKind};
use sfs_proto::testing::TestPki;
use support::{file_entry, pattern, State};

#[derive(Clone, Default)]
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn entry(name: &str, kind: EntryKind) -> Entry {
    Entry {
        kind,
        ..file_entry(name, 10)
    }
}

/// A folder `top` whose listing holds every hostile name next to good ones.
fn hostile_tree() -> State {
    let mut state = State::default();
    state.dirs.insert("top".into());
    let hostile = [
        "..",
        ".",
        "a/b",
        "/etc/x",
        "../../escape",
        "nul\0name",
        "esc\x1b[2J",
        "back\\slash",
        "",
    ];
    let mut top: Vec<Entry> = hostile.iter().map(|name| file_entry(name, 10)).collect();
    // A folder called `..` too: never walked into.
    top.push(entry("..", EntryKind::Dir));
    top.push(entry("link", EntryKind::Symlink));
    top.push(file_entry("good.txt", 100));
    top.push(entry("sub", EntryKind::Dir));
    state.listings.insert("top".into(), top);
    state
        .listings
        .insert("top/sub".into(), vec![file_entry("inner.bin", 200)]);
    for name in hostile {
        state.files.insert(format!("top/{name}"), pattern(10));
    }
    state.files.insert("top/good.txt".into(), pattern(100));
    state.files.insert("top/sub/inner.bin".into(), pattern(200));
    // What a listing of any other folder answers: names with `..` again.
    state.listing = vec![file_entry("../../outside", 5)];
    state
}

#[tokio::test]
async fn get_r_writes_only_inside_the_named_folder_and_reports_each_refusal() {
    let connection = connect(hostile_tree()).await;
    let outer = tempfile::tempdir().unwrap();
    let work = outer.path().join("a/b/work");
    std::fs::create_dir_all(&work).unwrap();
    let mut shell = Shell::new(connection, "/".into(), work.clone(), Box::new(Sink), false);

    let command = parse_line("get -r top").unwrap().unwrap();
    let err = shell.execute(command).await.unwrap_err();
    let ClientError::Incomplete(problems) = &err else {
        panic!("{err}");
    };
    // Each hostile entry (9 files, the `..` folder, the link) is reported.
    assert_eq!(problems.len(), 11, "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p == "skipping symbolic link top/link"),
        "{problems:#?}"
    );
    assert!(
        problems
            .iter()
            .all(|p| !p.contains('\x1b') && !p.contains('\0')),
        "printed escaped: {problems:#?}"
    );
    // The rest arrived, exactly, and nothing else was written anywhere.
    assert_eq!(
        std::fs::read(work.join("top/good.txt")).unwrap(),
        pattern(100)
    );
    assert_eq!(
        std::fs::read(work.join("top/sub/inner.bin")).unwrap(),
        pattern(200)
    );
    let mut written: Vec<String> = walk(outer.path());
    written.sort();
    assert_eq!(
        written,
        [
            "a",
            "a/b",
            "a/b/work",
            "a/b/work/top",
            "a/b/work/top/good.txt",
            "a/b/work/top/sub",
            "a/b/work/top/sub/inner.bin",
        ]
    );

    // mget of a pattern whose matches hold `..`: refused, the rest arrives.
    let command = parse_line("mget 'top/.*' 'top/*.txt'").unwrap().unwrap();
    let err = shell.execute(command).await.unwrap_err();
    assert!(err.to_string().contains("not a plain file name"), "{err}");
    assert!(work.join("good.txt").is_file());
    assert_eq!(walk(outer.path()).len(), 8);
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            found.push(
                path.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    found
}

async fn connect(state: State) -> Remote<sfs_net::memory::MemoryTransport> {
    let pki = TestPki::new(&["localhost"]);
    let transport = support::start(&pki, Arc::new(Mutex::new(state)));
    let (connection, _) = support::log_in(transport, &pki).await;
    connection
}

#[tokio::test]
async fn an_endless_tree_stops_at_a_depth_limit() {
    // Every folder holds a folder `d`, forever.
    let mut state = State::default();
    state.dirs.insert("deep".into());
    state.listing = vec![entry("d", EntryKind::Dir)];
    let connection = connect(state).await;
    let outer = tempfile::tempdir().unwrap();
    let mut shell = Shell::new(
        connection,
        "/".into(),
        outer.path().into(),
        Box::new(Sink),
        false,
    );
    let command = parse_line("get -r deep").unwrap().unwrap();
    let err = shell.execute(command).await.unwrap_err();
    assert!(err.to_string().contains("folders deep"), "{err}");
    assert!(outer.path().join("deep/d/d").is_dir());
}
