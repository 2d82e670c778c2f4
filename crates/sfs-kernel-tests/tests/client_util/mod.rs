//! Helpers for the end-to-end tests of the `sfs` client against the real
//! `sfs-server`: a scratch folder with a CA, a server certificate and accounts
//! (made by `sfs-admin`), a running server, and `sfs` commands ready to run.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use sfs_kernel_tests::workspace_binary;

/// The password every test account gets.
pub const PASSWORD: &str = "correct horse battery";

/// A scratch folder, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sfs-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a command to completion, failing the test if it fails.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("the command starts");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A running `sfs-server` with its files.
pub struct Server {
    pub dir: Scratch,
    pub addrs: Vec<IpAddr>,
    pub port: u16,
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Server {
    /// Makes certificates for `addrs`, accounts `alice` (admin) and `bob`, and starts
    /// the server on `addrs`. `wrap` may put the server in a namespace (e.g.
    /// `topo.command(Side::Server, ..)`); by default it runs here.
    pub fn start(addrs: &[IpAddr], wrap: impl FnOnce(&Path) -> Command) -> Server {
        let dir = Scratch::new("e2e");
        let root = dir.path();
        let admin = workspace_binary("sfs-admin");
        let mut cert = Command::new(&admin);
        cert.args(["cert", "init", "--out"]).arg(root.join("certs"));
        for addr in addrs {
            cert.arg("--san").arg(addr.to_string());
        }
        run_ok(&mut cert);
        std::fs::write(root.join("password"), format!("{PASSWORD}\n")).expect("password file");
        // sfs refuses a password file others can read.
        private(&root.join("password"));
        for (user, role) in [("alice", "admin"), ("bob", "user")] {
            run_ok(
                Command::new(&admin)
                    .args(["user", "add", user, "--role", role, "--bcrypt-cost", "4"])
                    .arg("--users")
                    .arg(root.join("users.json"))
                    .arg("--shares")
                    .arg(root.join("shares.json"))
                    .arg("--password-file")
                    .arg(root.join("password")),
            );
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let port = 20_000
            + ((std::process::id() * 13 + NEXT.fetch_add(1, Ordering::Relaxed) * 101) % 30_000)
                as u16;
        let binds = addrs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let mut command = wrap(&workspace_binary("sfs-server"));
        command
            .current_dir(root)
            .args([
                "--bind",
                &binds,
                "--port",
                &port.to_string(),
                "--bcrypt-cost",
                "4",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("sfs-server starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep draining so the server never blocks.
                }
            }
        });
        let server = Server {
            dir,
            addrs: addrs.to_vec(),
            port,
            child,
            stderr: rx,
        };
        server.wait_for_line("listening on", Duration::from_secs(60));
        server
    }

    /// Waits for a server stderr line containing `needle`.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("the server did not print `{needle}` in {timeout:?}"),
            }
        }
    }

    /// `--peer` for every server address.
    pub fn peer(&self) -> String {
        let list = self
            .addrs
            .iter()
            .map(|a| match a {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            })
            .collect::<Vec<_>>()
            .join(",");
        format!("{list}:{}", self.port)
    }

    /// An `sfs` command for `user`, run from `workdir`, with the password from a
    /// file. `wrap` may run it in a namespace.
    pub fn client_in(
        &self,
        user: &str,
        workdir: &Path,
        wrap: impl FnOnce(&Path) -> Command,
    ) -> Command {
        let mut command = wrap(&workspace_binary("sfs"));
        command
            .current_dir(workdir)
            .arg("--peer")
            .arg(self.peer())
            .arg("--ca")
            .arg(self.dir.path().join("certs/ca.pem"))
            .args(["--user", user])
            .arg("--password-file")
            .arg(self.dir.path().join("password"))
            .env_remove("SFS_PASSWORD")
            .stdin(Stdio::null());
        command
    }

    /// An `sfs` command run here.
    pub fn client(&self, user: &str, workdir: &Path) -> Command {
        self.client_in(user, workdir, |p| Command::new(p))
    }

    /// The server's home folder of `user`.
    pub fn home(&self, user: &str) -> PathBuf {
        self.dir.path().join("server_files").join(user)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sha256sum FILE` as lower-case hex.
pub fn sha256sum(path: &Path) -> String {
    let output = run_ok(Command::new("sha256sum").arg(path));
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned()
}

/// A file of `len` bytes that differ at every offset.
pub fn write_pattern(path: &Path, len: usize) {
    let data: Vec<u8> = (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect();
    std::fs::write(path, data).expect("test file");
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Makes `file` readable by its owner only (mode 0600), as `sfs` requires of a
/// password file.
pub fn private(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}
