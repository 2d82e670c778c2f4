//! Helpers of the `server_*` kernel tests: a real `sfs-server` process in a
//! temporary folder (accounts made with `sfs-admin`, certificates from
//! `sfs-admin cert init`), and the scripted client of `sfs_server::testing` over a
//! kernel SCTP association.

#![allow(dead_code, unused_imports)] // each test file uses its own subset

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sfs_kernel_tests::workspace_binary;
use sfs_sctp::{SctpAssociation, SctpConfig};
pub use sfs_server::testing::{code, leftover_uploads, pattern, TestClient};

/// The password of every account the tests create.
pub const PASSWORD: &str = "kernel test password";

/// How long any single wait may take before the test fails.
pub const STEP: Duration = Duration::from_secs(30);

/// A temporary server folder: users, certificates, homes, log.
pub struct ServerDir {
    pub path: PathBuf,
}

impl ServerDir {
    /// Creates the folder with certificates for `sans` and the given accounts
    /// (`(name, role)`), all with [`PASSWORD`].
    pub fn new(tag: &str, sans: &[IpAddr], users: &[(&str, &str)]) -> Self {
        let path = std::env::temp_dir().join(format!("sfs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("server folder");
        let admin = workspace_binary("sfs-admin");
        let mut cert = Process::new(&admin);
        cert.current_dir(&path).args(["cert", "init"]);
        for san in sans {
            cert.args(["--san", &san.to_string()]);
        }
        run(&mut cert, "sfs-admin cert init");
        for (name, role) in users {
            let mut add = Process::new(&admin);
            add.current_dir(&path)
                .args(["user", "add", name, "--role", role, "--bcrypt-cost", "4"])
                .args(["--password-env", "SFS_TEST_PASSWORD"])
                .env("SFS_TEST_PASSWORD", PASSWORD);
            run(&mut add, "sfs-admin user add");
        }
        Self { path }
    }

    pub fn home(&self, user: &str) -> PathBuf {
        self.path.join("server_files").join(user)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path.join("server.log")).unwrap_or_default()
    }

    /// The CA certificate clients verify the server with.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.path.join("certs/ca.pem")).expect("ca.pem")
    }

    /// The `sfs-server` command for this folder (add the bind flags), offering 6
    /// data streams.
    pub fn server_command(&self, command: Process, bind: &[IpAddr], port: u16) -> Process {
        self.server_command_with_streams(command, bind, port, 6)
    }

    /// [`server_command`](Self::server_command) offering `streams` data streams.
    pub fn server_command_with_streams(
        &self,
        mut command: Process,
        bind: &[IpAddr],
        port: u16,
        streams: u16,
    ) -> Process {
        let bind = bind
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        command
            .current_dir(&self.path)
            .args(["--bind", &bind, "--port", &port.to_string()])
            .args(["--bcrypt-cost", "4", "--allow-registration"])
            .args(["--streams", &streams.to_string()])
            .env("RUST_LOG", "info");
        command
    }
}

impl Drop for ServerDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn run(command: &mut Process, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A running server process; killed (SIGKILL) on drop if still running.
pub struct ServerProcess {
    child: Child,
    pub stderr: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `command` and waits until it says it is listening.
    pub fn start(mut command: Process) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sfs-server");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if line.contains("listening on") {
                    let _ = ready_tx.send(());
                }
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        if ready_rx.recv_timeout(STEP).is_err() {
            let _ = child.kill();
            panic!(
                "sfs-server did not start listening:\n{}",
                stderr.lock().unwrap()
            );
        }
        Self { child, stderr }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let sent = Process::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("sfs-server did not stop within 30 s of SIGTERM");
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client config asking for as many streams as the server offers.
pub fn sctp_config() -> SctpConfig {
    let mut config = SctpConfig::default();
    config.outbound_streams = 7;
    config.max_inbound_streams = 7;
    config
}

/// Connects to `server` (all its addresses) from `local` (if given).
pub async fn connect(
    server: &[SocketAddr],
    local: Option<&[SocketAddr]>,
    dir: &ServerDir,
) -> TestClient<SctpAssociation> {
    connect_with(server, local, dir, &sctp_config()).await
}

/// [`connect`] with the client's own SCTP settings (its INITMSG stream counts).
pub async fn connect_with(
    server: &[SocketAddr],
    local: Option<&[SocketAddr]>,
    dir: &ServerDir,
    config: &SctpConfig,
) -> TestClient<SctpAssociation> {
    let association = SctpAssociation::connect(server, local, config, STEP)
        .await
        .expect("connect to sfs-server");
    let tls = sfs_proto::tls::client_config(&dir.ca_pem()).expect("client TLS config");
    let name = server[0].ip().to_string().try_into().expect("server name");
    let mut client = TestClient::new(association, tls, name);
    // Kernel tests fail on a stuck step or a failed send instead of waiting on.
    client.max_chunk = 32 * 1024;
    client.step_limit = Some(STEP);
    client.strict_sends = true;
    client
}
