//! The interactive shell driven through a pseudo-terminal (tmux), against the
//! in-memory test-double server of `examples/shell_double.rs`: typed commands,
//! escaped names on a real terminal, history, completion, Ctrl-C at the prompt
//! and during a transfer, and `quit`.
//!
//! Needs `tmux` (Debian package `tmux`); the test fails, never skips, without it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The example binary, built by `cargo test` next to the test binaries.
fn shell_double() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap();
    let path = profile.join("examples/shell_double");
    assert!(
        path.exists(),
        "{} is missing: run `cargo test -p sfs-client`",
        path.display()
    );
    path
}

/// One tmux server with one pane running the shell.
struct Pane {
    socket: String,
    dir: tempfile::TempDir,
}

impl Pane {
    fn start() -> Pane {
        Self::start_with("")
    }

    /// [`Self::start`] with `env` (`NAME=value ...`) set for the shell.
    fn start_with(env: &str) -> Pane {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let socket = format!(
            "sfs-pty-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::tempdir().unwrap();
        let history = dir.path().join("history");
        // The status goes to a file: tmux's #{pane_dead_status} is filled in late.
        let command = format!(
            "{env} SFS_HISTORY='{}' '{}'; echo $? > '{}'",
            history.display(),
            shell_double().display(),
            dir.path().join("status").display()
        );
        let pane = Pane { socket, dir };
        pane.tmux(&["new-session", "-d", "-x", "150", "-y", "50", "-c"])
            .arg(pane.dir.path())
            .arg(command)
            .status()
            .map(|s| assert!(s.success(), "tmux new-session failed"))
            .expect("tmux must be installed (apt-get install tmux)");
        pane.run(&["set-option", "-t", "0", "remain-on-exit", "on"]);
        pane.prompt();
        pane
    }

    fn tmux(&self, args: &[&str]) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]).args(args);
        command
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.tmux(args).output().expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "0"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "0", "-S", "-200"])
    }

    fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the shell shows an empty prompt, so keys typed next reach the
    /// line editor (in raw mode) and not the terminal's cooked mode.
    fn prompt(&self) {
        self.wait_for("an empty prompt", |s| s.trim_end().ends_with("sfs:/>"));
        // rustyline switches the terminal to raw mode around printing the prompt.
        std::thread::sleep(Duration::from_millis(100));
    }

    /// The exit status once the shell ended.
    fn exit_status(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.path().join("status")).ok()?;
        text.trim().parse().ok()
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]).status();
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn typed_commands_history_ctrl_c_during_a_transfer_and_quit() {
    let pane = Pane::start();

    // A typed command; the hostile name reaches the terminal escaped.
    pane.keys(&["ls", "Enter"]);
    let screen = pane.wait_for("the listing", |s| {
        s.contains("notes.txt") && s.contains("slow.bin")
    });
    assert!(screen.contains("evil\\x1b[2J"), "{screen}");

    // A download, then history: Up twice recalls `ls`, Up once `get ...`.
    pane.prompt();
    pane.keys(&["get notes.txt copy.txt", "Enter"]);
    pane.wait_for("the download", |s| s.contains("downloaded notes.txt"));
    pane.prompt();
    assert_eq!(
        std::fs::read(pane.dir.path().join("copy.txt"))
            .unwrap()
            .len(),
        1000
    );
    pane.keys(&["Up", "Up"]);
    pane.wait_for("`ls` recalled", |s| s.trim_end().ends_with("sfs:/> ls"));
    pane.keys(&["Enter"]);
    pane.wait_for("the second listing", |s| count(s, "slow.bin") >= 2);
    pane.prompt();

    // Ctrl-C at the prompt drops the half-typed line.
    pane.keys(&["rm notes", "C-c"]);
    // Keys typed while the editor switches the terminal back to raw mode are
    // flushed with the switch: wait for the new prompt.
    pane.wait_for("the line dropped", |s| {
        s.trim_end().ends_with("rm notes\nsfs:/>")
    });
    pane.prompt();
    pane.keys(&["pwd", "Enter"]);
    pane.wait_for("pwd after Ctrl-C", |s| s.lines().any(|l| l.trim() == "/"));
    pane.prompt();

    // Ctrl-C during a slow transfer stops it; the shell lives on.
    pane.keys(&["get slow.bin", "Enter"]);
    pane.wait_for("the progress bar", |s| s.contains("ETA"));
    pane.keys(&["C-c"]);
    let screen = pane.wait_for("the interruption", |s| s.contains("sfs: interrupted"));
    pane.prompt();
    let dir = pane.dir.path();
    assert!(!dir.join("slow.bin").exists());
    // What arrived in order is kept for `reget`, and the user is told; with
    // nothing verified yet, there is no .part.
    if let Ok(kept) = std::fs::read(dir.join("slow.bin.part")) {
        // The double's `pattern`: bytes that differ at every offset.
        let expected = (0..kept.len()).map(|i| (i % 251) as u8 ^ (i / 251) as u8);
        assert!(kept.iter().copied().eq(expected), "a verified prefix");
        assert!(screen.contains("partial download kept"), "{screen}");
    }
    pane.keys(&["status", "Enter"]);
    pane.wait_for("status after the interrupt", |s| {
        s.contains("logged in as alice")
    });

    // quit ends the shell cleanly and saves the history.
    pane.keys(&["quit", "Enter"]);
    pane.wait_for("the exit", |s| s.contains("shell_double: bye"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = pane.exit_status() {
            break status;
        }
        assert!(Instant::now() < deadline, "the shell did not exit");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 0);
    let history = std::fs::read_to_string(dir.join("history")).unwrap();
    for line in ["ls", "get notes.txt copy.txt", "get slow.bin", "quit"] {
        assert!(
            history.lines().any(|l| l == line),
            "{line} not in history:\n{history}"
        );
    }
}

#[test]
fn tab_completes_commands_and_remote_names() {
    let pane = Pane::start();
    pane.keys(&["lp", "Tab"]);
    pane.wait_for("a completed command", |s| s.contains("sfs:/> lpwd"));
    pane.keys(&["C-u", "get no", "Tab"]);
    pane.wait_for("a completed remote name", |s| {
        s.contains("sfs:/> get notes.txt")
    });
    pane.keys(&["Enter"]);
    pane.wait_for("the download", |s| s.contains("downloaded notes.txt"));
    assert!(pane.dir.path().join("notes.txt").exists());
    pane.prompt();
    // Ctrl-D at an empty prompt ends the shell too.
    pane.keys(&["C-d"]);
    pane.wait_for("the exit", |s| s.contains("shell_double: bye"));
}

#[test]
fn rm_of_a_pattern_asks_before_deleting_several_files() {
    let pane = Pane::start();
    // Three names in the listing match `*`: the shell asks, and `n` keeps them.
    pane.keys(&["rm '*'", "Enter"]);
    pane.wait_for("the question", |s| s.contains("delete 3 files? [y/N]"));
    pane.keys(&["n", "Enter"]);
    pane.prompt();
    pane.keys(&["get notes.txt", "Enter"]);
    pane.wait_for("the kept file", |s| s.contains("downloaded notes.txt"));
    pane.prompt();
    // One match: no question. Options complete remote names after them too.
    pane.keys(&["rm -f no", "Tab"]);
    pane.wait_for("a name completed after an option", |s| {
        s.contains("sfs:/> rm -f notes.txt")
    });
    pane.keys(&["C-u", "rm 'note*'", "Enter"]);
    pane.prompt();
    pane.keys(&["get notes.txt x", "Enter"]);
    pane.wait_for("the file gone", |s| {
        s.contains("sfs: notes.txt: no such file\n")
    });
    assert!(!pane.screen().contains("delete 1 files"));
    pane.keys(&["C-d"]);
    pane.wait_for("the exit", |s| s.contains("shell_double: bye"));
}

#[test]
fn a_session_the_server_ends_while_idle_says_why_once() {
    let pane = Pane::start_with("SHELL_DOUBLE_IDLE_SECS=1");
    std::thread::sleep(Duration::from_millis(2000));
    pane.keys(&["pwd", "Enter"]);
    let screen = pane.wait_for("the exit", |s| s.contains("shell_double: bye"));
    assert_eq!(
        count(
            &screen,
            "sfs: the server ended the session: idle for 1 second\n"
        ),
        1,
        "{screen}"
    );
    assert_eq!(count(&screen, "sfs: "), 1, "one line: {screen}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while pane.exit_status().is_none() {
        assert!(Instant::now() < deadline, "no exit status");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(pane.exit_status(), Some(1));
}
