//! Folders, times and patterns against the real server (its connection handler
//! over the in-memory transport, files in a temporary folder): `put -r`/`get -r`
//! round trips of a tree, `-p` both ways, links never followed, and globs that
//! behave like sftp's.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod real_server;

use real_server::{Captured, Server};
use sfs_client::command::parse_line;
use sfs_client::connection::{ClientError, ClientOptions};
use sfs_client::shell::Shell;
use sfs_net::memory::{memory_pair, MemoryTransport};
use sfs_server::context::SessionSettings;

/// A real server for alice, and a shell on it working in `<dir>/work`.
struct Fixture {
    server: Server,
    shell: Shell<MemoryTransport>,
    out: Captured,
}

impl Fixture {
    async fn new() -> Self {
        let server = Server::new(SessionSettings::default());
        // Four data streams, as in the other shell tests.
        let (client_end, server_end) = memory_pair(5);
        let (connection, cwd, _) = server
            .connect_over(client_end, server_end, ClientOptions::default())
            .await;
        std::fs::create_dir(server.dir.path().join("work")).unwrap();
        let out = Captured::default();
        let shell = Shell::new(
            connection,
            cwd,
            server.dir.path().join("work"),
            Box::new(out.clone()),
            false,
        );
        Self { server, shell, out }
    }

    fn work(&self) -> PathBuf {
        self.server.dir.path().join("work")
    }

    fn home(&self) -> PathBuf {
        self.server.dir.path().join("server_files/alice")
    }

    fn server_log(&self) -> String {
        std::fs::read_to_string(self.server.dir.path().join("server.log")).unwrap()
    }

    async fn run(&mut self, line: &str) -> Result<String, ClientError> {
        let command = parse_line(line).unwrap().unwrap();
        self.shell.execute(command).await?;
        Ok(self.out.take())
    }
}

/// What a tree holds: each path (relative, exact bytes of the name) to `None`
/// for a folder or `Some(content)` for a file.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut found = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(root).unwrap().to_owned();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_dir() {
                found.insert(relative, None);
                stack.push(path);
            } else {
                found.insert(relative, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    found
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// A tree of 200 files in nested folders, names with spaces and unicode, an
/// empty folder and an empty file; each file's time set to a distinct second.
fn make_tree(root: &Path) -> Vec<PathBuf> {
    let folders = [
        "",
        "docs",
        "docs/with space",
        "docs/with space/ünïcødé ✓",
        "data",
        "data/deep/er/still",
    ];
    let mut files = Vec::new();
    for folder in folders {
        std::fs::create_dir_all(root.join(folder)).unwrap();
    }
    std::fs::create_dir_all(root.join("empty folder")).unwrap();
    for i in 0..200 {
        let folder = folders[i % folders.len()];
        let name = match i % 4 {
            0 => format!("file {i}.txt"),
            1 => format!("données-{i}.bin"),
            2 => format!(".hidden{i}"),
            _ => format!("plain{i}"),
        };
        let path = root.join(folder).join(name);
        let len = if i == 7 { 0 } else { (i * 37) % 3000 + 1 };
        let data: Vec<u8> = (0..len).map(|b| (b * 7 + i) as u8).collect();
        std::fs::write(&path, data).unwrap();
        let time = UNIX_EPOCH + Duration::from_secs(1_600_000_000 + i as u64 * 61);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(time)
            .unwrap();
        files.push(path);
    }
    files
}

#[tokio::test]
async fn a_tree_round_trips_exactly_with_its_times() {
    let mut fx = Fixture::new().await;
    let source = fx.server.dir.path().join("source tree");
    let files = make_tree(&source);
    assert_eq!(files.len(), 200);

    let out = fx
        .run(&format!("put -rp '{}' up", source.display()))
        .await
        .unwrap();
    assert_eq!(
        out.lines().filter(|l| l.starts_with("uploaded ")).count(),
        200
    );
    assert_eq!(snapshot(&fx.home().join("up")), snapshot(&source));
    for file in &files {
        let stored = fx
            .home()
            .join("up")
            .join(file.strip_prefix(&source).unwrap());
        assert_eq!(mtime(&stored), mtime(file), "{}", stored.display());
    }
    assert!(fx.server_log().contains("mfmt"), "MFMT is audited");

    fx.run("get -r -p up back").await.unwrap();
    let back = fx.work().join("back");
    assert_eq!(snapshot(&back), snapshot(&source));
    for file in &files {
        let local = back.join(file.strip_prefix(&source).unwrap());
        assert_eq!(mtime(&local), mtime(file), "{}", local.display());
    }

    // Into an existing local folder: under the remote folder's own name. No `-p`:
    // the times are the download's.
    fx.run("get -r up/docs").await.unwrap();
    assert_eq!(
        snapshot(&fx.work().join("docs")),
        snapshot(&source.join("docs"))
    );
    let copy = fx.work().join("docs/with space/ünïcødé ✓");
    let any_file = std::fs::read_dir(&copy)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(mtime(&any_file) > UNIX_EPOCH + Duration::from_secs(1_700_000_000));
}

#[tokio::test]
async fn put_r_never_follows_a_link_out_of_the_tree() {
    let mut fx = Fixture::new().await;
    let outside = fx.server.dir.path().join("secret");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("key"), b"secret").unwrap();
    let tree = fx.work().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("kept.txt"), b"kept").unwrap();
    symlink(outside.join("key"), tree.join("file link")).unwrap();
    symlink(&outside, tree.join("folder link")).unwrap();

    let err = fx.run("put -r tree").await.unwrap_err();
    let ClientError::Incomplete(problems) = &err else {
        panic!("{err}");
    };
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems
        .iter()
        .all(|p| p.starts_with("skipping symbolic link")));
    assert_eq!(
        snapshot(&fx.home().join("tree")),
        BTreeMap::from([(PathBuf::from("kept.txt"), Some(b"kept".to_vec()))])
    );
}

#[tokio::test]
async fn globs_match_like_sftps() {
    let mut fx = Fixture::new().await;
    let work = fx.work();
    for name in ["a.log", "b.log", ".hidden.log", "c.txt", "d.txt"] {
        std::fs::write(work.join(name), name.as_bytes()).unwrap();
    }
    std::fs::create_dir_all(work.join("dir.log/inner")).unwrap();
    std::fs::write(work.join("dir.log/inner/x"), b"x").unwrap();

    // mput: many, one, none, and a folder without and with -r.
    let err = fx.run("mput '*.log' '*.none' c.txt").await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no match for *.none"), "{text}");
    assert!(text.contains("skipping folder"), "{text}");
    let mut stored: Vec<_> = std::fs::read_dir(fx.home())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        ["a.log", "b.log", "c.txt"],
        ".hidden.log is not matched by *"
    );
    fx.run("mput -r 'dir*' '.h*'").await.unwrap();
    assert_eq!(
        std::fs::read(fx.home().join("dir.log/inner/x")).unwrap(),
        b"x"
    );
    assert!(fx.home().join(".hidden.log").is_file());

    // ls: only the matches; nothing is an error.
    let listed = fx.run("ls '*.txt'").await.unwrap();
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(listed.contains("c.txt"));
    let err = fx.run("ls '*.none'").await.unwrap_err();
    assert_eq!(err.to_string(), "1 item(s) not done: no match for *.none");

    // mget: into a fresh local folder.
    let down = fx.server.dir.path().join("down");
    std::fs::create_dir(&down).unwrap();
    fx.run(&format!("lcd '{}'", down.display())).await.unwrap();
    let err = fx.run("mget '*.log'").await.unwrap_err();
    assert!(
        err.to_string().contains("skipping folder dir.log (use -r)"),
        "{err}"
    );
    let mut got: Vec<_> = std::fs::read_dir(&down)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, ["a.log", "b.log"]);
    fx.run("mget -r 'dir.*' c.txt").await.unwrap();
    assert_eq!(std::fs::read(down.join("dir.log/inner/x")).unwrap(), b"x");
    assert_eq!(std::fs::read(down.join("c.txt")).unwrap(), b"c.txt");
    let err = fx.run("mget '*.none' '[ab].log'").await.unwrap_err();
    assert_eq!(err.to_string(), "1 item(s) not done: no match for *.none");

    // rm: asks before deleting several files; `-f` never asks; one name is
    // deleted as before; folders are left to rmdir.
    let asked = Arc::new(Mutex::new(Vec::new()));
    let questions = asked.clone();
    fx.shell.set_confirm(Box::new(move |question| {
        questions.lock().unwrap().push(question.to_owned());
        false
    }));
    fx.run("rm '*.log'").await.unwrap_err();
    assert_eq!(*asked.lock().unwrap(), ["delete 2 files?"]);
    assert!(fx.home().join("a.log").is_file(), "the answer was no");
    fx.run("rm -f '[ab].log'").await.unwrap();
    assert!(!fx.home().join("a.log").exists() && !fx.home().join("b.log").exists());
    fx.run("rm '*.txt'").await.unwrap();
    assert_eq!(asked.lock().unwrap().len(), 1, "one match: no question");
    assert!(!fx.home().join("c.txt").exists());
    assert!(fx.home().join("dir.log").is_dir());
    assert!(fx.home().join(".hidden.log").is_file());
    let err = fx.run("rm '*.none'").await.unwrap_err();
    assert_eq!(err.to_string(), "1 item(s) not done: no match for *.none");
    // An escaped pattern character is a plain name.
    std::fs::write(fx.home().join("odd*name"), b"odd").unwrap();
    std::fs::write(fx.home().join("oddXname"), b"x").unwrap();
    fx.run(r"rm 'odd\*name'").await.unwrap();
    assert!(!fx.home().join("odd*name").exists());
    assert!(fx.home().join("oddXname").exists());
}
