//! The habits users bring from sftp, against the real server (its connection
//! handler over the in-memory transport, files in a temporary folder): `ls`
//! options, `mv -f`, `rm -r` with its question, `put`/`get` into folders in every
//! form, local files checked before the server is asked, and batches (a file or
//! piped commands) whose exit code says whether any command failed.

use std::io::Cursor;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

mod real_server;

use real_server::{Captured, Server};
use sfs_client::command::parse_line;
use sfs_client::connection::{ClientError, ClientOptions};
use sfs_client::repl::{run_batch, run_piped};
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
        let (client_end, server_end) = memory_pair(5);
        let (connection, cwd, _) = server
            .connect_over(client_end, server_end, ClientOptions::default())
            .await;
        std::fs::create_dir(server.dir.path().join("work")).unwrap();
        // The home exists once alice first logs in; the tests write into it directly.
        std::fs::create_dir_all(server.home()).unwrap();
        let out = Captured::default();
        let shell = Shell::new(
            connection,
            cwd,
            server.dir.path().join("work"),
            Box::new(out.clone()),
            true,
        );
        Self { server, shell, out }
    }

    fn work(&self) -> PathBuf {
        self.server.dir.path().join("work")
    }

    fn home(&self) -> PathBuf {
        self.server.home()
    }

    async fn run(&mut self, line: &str) -> Result<String, ClientError> {
        let command = parse_line(line).unwrap().unwrap();
        self.shell.execute(command).await?;
        Ok(self.out.take())
    }

    /// Files in alice's home, as `name=content` or `name/`.
    fn remote(&self, path: &str) -> Option<String> {
        let full = self.home().join(path);
        let meta = std::fs::symlink_metadata(&full).ok()?;
        Some(if meta.is_dir() {
            format!("{path}/")
        } else {
            std::fs::read_to_string(full).unwrap()
        })
    }
}

fn names(listing: &str) -> Vec<&str> {
    listing.lines().collect()
}

#[tokio::test]
async fn ls_takes_sftp_options_and_hides_dot_files_unless_a() {
    let mut fx = Fixture::new().await;
    // Not the home's top, which also shows the `shared/` folder.
    std::fs::create_dir(fx.home().join("sub")).unwrap();
    std::fs::write(fx.home().join("sub/big"), vec![b'x'; 3 << 20]).unwrap();
    std::fs::write(fx.home().join("sub/small"), b"s").unwrap();
    std::fs::write(fx.home().join("sub/.profile"), b"p").unwrap();
    std::fs::create_dir(fx.home().join("sub/-l")).unwrap();
    let set_time = |name: &str, secs: u64| {
        let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        std::fs::File::options()
            .write(true)
            .open(fx.home().join("sub").join(name))
            .unwrap()
            .set_modified(time)
            .unwrap();
    };
    set_time("big", 1_600_000_000);
    set_time("small", 1_700_000_000);

    fx.run("cd sub").await.unwrap();
    // The default: the long form, dot files hidden, as before `-l` was an option.
    let plain = fx.run("ls").await.unwrap();
    assert_eq!(plain.lines().count(), 3, "{plain}");
    assert!(!plain.contains(".profile"), "{plain}");
    assert!(
        plain
            .lines()
            .any(|l| l.starts_with("-rw") && l.ends_with(" small")),
        "{plain}"
    );
    // `-l` is the same long form, not a folder named `-l`.
    assert_eq!(fx.run("ls -l").await.unwrap(), plain);
    // `-a` shows dot files; `-la` and `-al` are the same.
    let all = fx.run("ls -la").await.unwrap();
    assert_eq!(all.lines().count(), 4, "{all}");
    assert!(all.lines().any(|l| l.ends_with(" .profile")), "{all}");
    assert_eq!(fx.run("ls -a -l").await.unwrap(), all);
    // `-1`: names only, one per line.
    assert_eq!(
        names(&fx.run("ls -1").await.unwrap()),
        ["-l", "big", "small"]
    );
    assert_eq!(
        names(&fx.run("ls -1a").await.unwrap()),
        ["-l", ".profile", "big", "small"]
    );
    // Sorted by time, by size, reversed; sizes in binary units.
    assert_eq!(
        names(&fx.run("ls -1t").await.unwrap())[1..],
        ["small", "big"]
    );
    assert_eq!(
        names(&fx.run("ls -1S").await.unwrap())[..2],
        ["big", "small"]
    );
    assert_eq!(
        names(&fx.run("ls -1Sr").await.unwrap())[1..],
        ["small", "big"]
    );
    let human = fx.run("ls -lh").await.unwrap();
    assert!(human.contains("3.00 MiB"), "{human}");
    // A pattern or a single name shows what it names, dot or not.
    assert_eq!(names(&fx.run("ls -1 '.p*'").await.unwrap()), [".profile"]);
    assert!(fx
        .run("ls .profile")
        .await
        .unwrap()
        .ends_with(" .profile\n"));
    // `--` ends the options: the folder named `-l`.
    assert_eq!(fx.run("ls -- -l").await.unwrap(), "");
    assert_eq!(
        parse_line("ls -z").unwrap_err().to_string(),
        "`ls` has no option `-z`: usage: ls [-1ahlrSt] [PATH|PATTERN]"
    );
}

#[tokio::test]
async fn mv_onto_an_existing_file_needs_f_and_names_the_target() {
    let mut fx = Fixture::new().await;
    std::fs::write(fx.home().join("new"), b"new").unwrap();
    std::fs::write(fx.home().join("old"), b"old").unwrap();
    std::fs::create_dir(fx.home().join("dir")).unwrap();

    let err = fx.run("mv new old").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "old already exists: use mv -f to replace it"
    );
    assert_eq!(fx.remote("old").as_deref(), Some("old"));
    assert_eq!(fx.remote("new").as_deref(), Some("new"));

    fx.run("mv -f new old").await.unwrap();
    assert_eq!(fx.remote("old").as_deref(), Some("new"));
    assert_eq!(fx.remote("new"), None);

    // A folder is never replaced, with or without -f.
    let err = fx.run("mv -f old dir").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "dir is an existing folder: mv does not replace a folder (give a new name, or remove it first with rm -r)"
    );
    assert_eq!(fx.remote("old").as_deref(), Some("new"));
    // A rename to a free name is as before; -f changes nothing there.
    fx.run("mv -f old fresh").await.unwrap();
    assert_eq!(fx.remote("fresh").as_deref(), Some("new"));
}

fn make_remote_tree(fx: &Fixture) {
    for dir in ["tree", "tree/a", "tree/a/b", "tree/.hidden"] {
        std::fs::create_dir(fx.home().join(dir)).unwrap();
    }
    for file in [
        "tree/1",
        "tree/a/2",
        "tree/a/b/3",
        "tree/.hidden/4",
        "tree/.dot",
    ] {
        std::fs::write(fx.home().join(file), file).unwrap();
    }
}

#[tokio::test]
async fn rm_r_deletes_a_folder_after_asking_in_the_shell() {
    let mut fx = Fixture::new().await;
    make_remote_tree(&fx);
    std::fs::write(fx.home().join("keep"), b"k").unwrap();

    // Without -r, a folder is named with what to type.
    let err = fx.run("rm tree").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "tree: is a folder (use `rm -r` to delete it with everything in it, or `rmdir` if it is empty)"
    );
    assert!(fx.remote("tree/a/b/3").is_some());

    // The interactive shell asks; "no" keeps everything.
    let questions = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(Mutex::new(false));
    let (asked, said) = (questions.clone(), answer.clone());
    fx.shell.set_confirm(Box::new(move |question| {
        asked.lock().unwrap().push(question.to_owned());
        *said.lock().unwrap()
    }));
    fx.run("rm -r tree").await.unwrap_err();
    assert_eq!(
        *questions.lock().unwrap(),
        ["delete folder tree and everything in it (5 files, 3 folders)?"]
    );
    assert!(fx.remote("tree/a/b/3").is_some());

    // "yes" deletes the folder, dot files and all.
    *answer.lock().unwrap() = true;
    fx.run("rm -r tree").await.unwrap();
    assert_eq!(fx.remote("tree"), None);
    assert_eq!(fx.remote("keep").as_deref(), Some("k"));
    assert_eq!(questions.lock().unwrap().len(), 2);

    // -f never asks.
    make_remote_tree(&fx);
    fx.run("rm -rf tree").await.unwrap();
    assert_eq!(fx.remote("tree"), None);
    assert_eq!(questions.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn rm_r_without_a_question_in_batch_and_with_patterns() {
    let mut fx = Fixture::new().await;
    make_remote_tree(&fx);
    std::fs::create_dir(fx.home().join("tree2")).unwrap();
    std::fs::write(fx.home().join("tree2/x"), b"x").unwrap();
    std::fs::write(fx.home().join("treefile"), b"f").unwrap();
    // No confirmation set: a batch or one-shot command does not ask.
    fx.run("rm -r 'tree*'").await.unwrap();
    for gone in ["tree", "tree2", "treefile"] {
        assert_eq!(fx.remote(gone), None, "{gone}");
    }
    // Never the whole home or /shared, however named (a whole home under
    // /shared, which only an admin reaches, is refused as well: unit-tested).
    std::fs::write(fx.home().join("top"), b"t").unwrap();
    fx.run("mkdir sub").await.unwrap();
    fx.run("cd sub").await.unwrap();
    for line in ["rm -rf /", "rm -rf ..", "rm -rf ../shared"] {
        let err = fx.run(line).await.unwrap_err();
        assert!(
            err.to_string().contains("rm -r does not delete"),
            "{line}: {err}"
        );
    }
    fx.run("cd /").await.unwrap();
    assert_eq!(fx.remote("top").as_deref(), Some("t"));
    // A pattern at the top matches the real folders; /shared is refused by name.
    let err = fx.run("rm -rf '*'").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "1 item(s) not done: rm -r does not delete /shared (other users' files): name a folder in it"
    );
    assert_eq!(fx.remote("top"), None);
    assert_eq!(fx.remote("sub"), None);
    // A pattern without -r skips folders, saying how to delete them.
    make_remote_tree(&fx);
    let err = fx.run("rm 'tr*'").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("tree: is a folder (use `rm -r` to delete it"),
        "{err}"
    );
    assert!(fx.remote("tree/1").is_some());
}

#[tokio::test]
async fn put_and_get_into_folders_as_sftp_does() {
    let mut fx = Fixture::new().await;
    std::fs::create_dir(fx.home().join("docs")).unwrap();
    std::fs::write(fx.work().join("a.txt"), b"alpha").unwrap();
    std::fs::create_dir(fx.work().join("here")).unwrap();

    // `put FILE DIR/` and `put FILE DIR` (an existing remote folder): inside it.
    fx.run("put a.txt docs/").await.unwrap();
    assert_eq!(fx.remote("docs/a.txt").as_deref(), Some("alpha"));
    std::fs::remove_file(fx.home().join("docs/a.txt")).unwrap();
    fx.run("put a.txt docs").await.unwrap();
    assert_eq!(fx.remote("docs/a.txt").as_deref(), Some("alpha"));
    // reput and put -c take the same target forms.
    std::fs::create_dir(fx.home().join("again")).unwrap();
    fx.run("reput a.txt again").await.unwrap();
    assert_eq!(fx.remote("again/a.txt").as_deref(), Some("alpha"));
    // A trailing slash on a folder that is not there is an error saying so.
    let err = fx.run("put a.txt missing/").await.unwrap_err();
    assert_eq!(err.to_string(), "no such remote folder missing");
    assert_eq!(fx.remote("missing"), None);
    // Without a slash, a new name is the file's new name.
    fx.run("put a.txt renamed.txt").await.unwrap();
    assert_eq!(fx.remote("renamed.txt").as_deref(), Some("alpha"));

    // `get REMOTE LOCALDIR` writes inside LOCALDIR; `reget` too.
    fx.run("get docs/a.txt here").await.unwrap();
    assert_eq!(
        std::fs::read(fx.work().join("here/a.txt")).unwrap(),
        b"alpha"
    );
    std::fs::remove_file(fx.work().join("here/a.txt")).unwrap();
    fx.run("reget docs/a.txt here/").await.unwrap();
    assert_eq!(
        std::fs::read(fx.work().join("here/a.txt")).unwrap(),
        b"alpha"
    );
    let err = fx.run("get docs/a.txt nowhere/").await.unwrap_err();
    assert!(
        err.to_string().starts_with("no such local folder ")
            && err.to_string().ends_with("nowhere/"),
        "{err}"
    );
    assert!(!fx.work().join("nowhere").exists());

    // Folders: `put -r DIR REMOTEDIR` and `get -r DIR LOCALDIR` go inside.
    std::fs::create_dir(fx.work().join("tree")).unwrap();
    std::fs::write(fx.work().join("tree/f"), b"f").unwrap();
    fx.run("put -r tree docs").await.unwrap();
    assert_eq!(fx.remote("docs/tree/f").as_deref(), Some("f"));
    let err = fx.run("put -r tree missing/").await.unwrap_err();
    assert_eq!(err.to_string(), "no such remote folder missing");
    assert_eq!(fx.remote("missing"), None);
    fx.run("put -r tree docs/").await.unwrap();
    let err = fx.run("get -r docs/tree nowhere/").await.unwrap_err();
    assert!(
        err.to_string().starts_with("no such local folder "),
        "{err}"
    );
    fx.run("get -r docs/tree here").await.unwrap();
    assert_eq!(std::fs::read(fx.work().join("here/tree/f")).unwrap(), b"f");
}

/// A shell on a real server, on a runtime of its own: the batch runners block
/// on the runtime they are given, as the binary's do.
fn blocking_fixture() -> (tokio::runtime::Runtime, Fixture) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fx = runtime.block_on(Fixture::new());
    (runtime, fx)
}

#[test]
fn piped_commands_stop_at_the_first_failure_and_the_exit_code_says_so() {
    let (runtime, mut fx) = blocking_fixture();
    let commands = "mkdir a\n# a comment\n\nmkdir a\nmkdir b\n";
    let code = run_piped(&runtime, &mut fx.shell, Cursor::new(commands), false);
    assert_eq!(code, ExitCode::FAILURE);
    assert!(fx.remote("a").is_some());
    assert_eq!(fx.remote("b"), None, "the batch stopped at the failure");

    // A line starting with `-` may fail; the exit code stays 0 if nothing else did.
    let commands = "-mkdir a\r\nmkdir c\n";
    let code = run_piped(&runtime, &mut fx.shell, Cursor::new(commands), false);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(fx.remote("c").is_some());

    // --keep-going runs everything and still reports the failure.
    let commands = "put no-such-file\nmkdir d\n";
    let code = run_piped(&runtime, &mut fx.shell, Cursor::new(commands), true);
    assert_eq!(code, ExitCode::FAILURE);
    assert!(fx.remote("d").is_some());

    // A parse error is a failure too, and `quit` ends the batch with success.
    let code = run_piped(
        &runtime,
        &mut fx.shell,
        Cursor::new("ls -z\nmkdir e\n"),
        false,
    );
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(fx.remote("e"), None);
    let code = run_piped(
        &runtime,
        &mut fx.shell,
        Cursor::new("quit\nmkdir e\n"),
        false,
    );
    assert_eq!(code, ExitCode::SUCCESS);
    assert_eq!(fx.remote("e"), None);
}

#[test]
fn batch_files_follow_the_same_rules() {
    let (runtime, mut fx) = blocking_fixture();
    let lines = |text: &str| text.lines().map(String::from).collect::<Vec<_>>();
    let code = run_batch(
        &runtime,
        &mut fx.shell,
        &lines("mkdir a\nmv a a\nmkdir b"),
        false,
    );
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(fx.remote("b"), None);
    let code = run_batch(
        &runtime,
        &mut fx.shell,
        &lines("-rm nothing\nmkdir b"),
        false,
    );
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(fx.remote("b").is_some());
}

#[tokio::test]
async fn mput_and_put_tell_a_missing_local_file_before_asking_the_server() {
    let mut fx = Fixture::new().await;
    std::fs::write(fx.work().join("here.txt"), b"here").unwrap();
    for line in [
        "put gone.txt",
        "put gone.txt docs/",
        "reput gone.txt",
        "put -r gone.txt",
    ] {
        let err = fx.run(line).await.unwrap_err();
        assert_eq!(err.to_string(), "no such local file gone.txt", "{line}");
    }
    // mput: the missing name is told, the others still go.
    let err = fx.run("mput here.txt gone.txt").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "1 item(s) not done: no such local file gone.txt"
    );
    assert_eq!(fx.remote("here.txt").as_deref(), Some("here"));
    // Nothing of the missing file reached the server's log.
    let log = std::fs::read_to_string(fx.server.dir.path().join("server.log")).unwrap();
    assert!(!log.contains("gone.txt"), "{log}");
}

/// The binary checks a one-shot command's local names before it reads the CA
/// certificate, connects or logs in: with a CA file that does not exist and no
/// server, the local problem is what it says.
#[test]
fn one_shot_commands_tell_a_missing_local_file_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("here.txt"), b"x").unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sfs"))
            .current_dir(dir.path())
            .args([
                "--peer",
                "192.0.2.1",
                "--ca",
                "no-such-ca.pem",
                "--user",
                "alice",
            ])
            .args(args)
            .env("SFS_PASSWORD", "x")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stderr).unwrap())
    };
    for args in [
        &["put", "gone.txt"][..],
        &["put", "gone.txt", "docs/"],
        &["reput", "gone.txt"],
        &["mput", "here.txt", "gone.txt"],
    ] {
        assert_eq!(
            run(args),
            (Some(1), "sfs: no such local file gone.txt\n".to_owned()),
            "{args:?}"
        );
    }
    let (code, stderr) = run(&["get", "a.txt", "nowhere/"]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.starts_with("sfs: no such local folder ") && stderr.ends_with("nowhere/\n"),
        "{stderr}"
    );
    // A good local name goes on to the connection (and here fails at the CA).
    let (code, stderr) = run(&["put", "here.txt"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no-such-ca.pem"), "{stderr}");
}

#[tokio::test]
async fn get_and_put_of_a_pattern_go_into_a_folder_as_in_sftp() {
    let mut fx = Fixture::new().await;
    for name in ["a.log", "b.log", "c.txt"] {
        std::fs::write(fx.home().join(name), name).unwrap();
        std::fs::write(fx.work().join(name), format!("local {name}")).unwrap();
    }
    std::fs::create_dir(fx.work().join("logs")).unwrap();
    std::fs::create_dir(fx.home().join("up")).unwrap();

    // sftp's `get '*.log' logs/` (its mget is the same command).
    fx.run("get '*.log' logs/").await.unwrap();
    assert_eq!(
        std::fs::read(fx.work().join("logs/a.log")).unwrap(),
        b"a.log"
    );
    assert_eq!(
        std::fs::read(fx.work().join("logs/b.log")).unwrap(),
        b"b.log"
    );
    // Several matches and a target that is not a folder: nothing moves.
    let err = fx.run("get '*.log' one.log").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "*.log matches 2 names, and one.log is not a folder: name a folder to put them in"
    );
    assert!(!fx.work().join("one.log").exists());
    // One match may be renamed, as a plain name.
    fx.run("get '*.txt' renamed.txt").await.unwrap();
    assert_eq!(
        std::fs::read(fx.work().join("renamed.txt")).unwrap(),
        b"c.txt"
    );

    // `put '*.log' up` (an existing remote folder) and `put '*.log' up/`.
    fx.run("put '*.log' up").await.unwrap();
    assert_eq!(fx.remote("up/a.log").as_deref(), Some("local a.log"));
    assert_eq!(fx.remote("up/b.log").as_deref(), Some("local b.log"));
    let err = fx.run("put '*.log' single").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "*.log matches 2 names, and single is not a folder: name a folder to put them in"
    );
    assert_eq!(fx.remote("single"), None);
    fx.run("put 'c.*' one.txt").await.unwrap();
    assert_eq!(fx.remote("one.txt").as_deref(), Some("local c.txt"));
    let err = fx.run("put '*.none'").await.unwrap_err();
    assert_eq!(err.to_string(), "1 item(s) not done: no match for *.none");
}

#[tokio::test]
async fn mget_and_mput_take_a_target_folder_with_o() {
    let mut fx = Fixture::new().await;
    std::fs::write(fx.home().join("a"), b"ra").unwrap();
    std::fs::write(fx.home().join("b"), b"rb").unwrap();
    std::fs::write(fx.work().join("x"), b"lx").unwrap();
    std::fs::write(fx.work().join("y"), b"ly").unwrap();
    std::fs::create_dir(fx.work().join("down")).unwrap();
    std::fs::create_dir(fx.home().join("up")).unwrap();

    fx.run("mget -O down a b").await.unwrap();
    assert_eq!(std::fs::read(fx.work().join("down/a")).unwrap(), b"ra");
    assert_eq!(std::fs::read(fx.work().join("down/b")).unwrap(), b"rb");
    assert!(!fx.work().join("a").exists());
    let err = fx.run("mget -O nowhere a").await.unwrap_err();
    assert_eq!(err.to_string(), "no such local folder nowhere");

    fx.run("mput -O up x y").await.unwrap();
    assert_eq!(fx.remote("up/x").as_deref(), Some("lx"));
    assert_eq!(fx.remote("up/y").as_deref(), Some("ly"));
    assert_eq!(fx.remote("x"), None);
    let err = fx.run("mput -O nowhere x").await.unwrap_err();
    assert_eq!(err.to_string(), "no such remote folder nowhere");
    // Whole folders with -r land inside the target too.
    std::fs::create_dir(fx.work().join("tree")).unwrap();
    std::fs::write(fx.work().join("tree/f"), b"f").unwrap();
    fx.run("mput -r -O up tree").await.unwrap();
    assert_eq!(fx.remote("up/tree/f").as_deref(), Some("f"));
    fx.run("mget -rO down up/tree").await.unwrap();
    assert_eq!(std::fs::read(fx.work().join("down/tree/f")).unwrap(), b"f");
}
