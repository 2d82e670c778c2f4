//! The real interactive shell against the in-memory test-double server, for
//! driving the shell in a pseudo-terminal without kernel SCTP
//! (`tests/client_pty.rs`). It serves `notes.txt`, a hostile name, and `slow.bin`,
//! a large file sent slowly so that Ctrl-C can interrupt it.
//!
//! ```text
//! cargo run -p sfs-client --example shell_double
//! ```

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sfs_client::connection::{Credentials, InterruptSource, Remote, Reporter};
use sfs_client::repl::run_interactive;
use sfs_client::shell::Shell;
use sfs_proto::testing::TestPki;
use support::{file_entry, pattern, State};

fn main() -> ExitCode {
    let mut state = State::default();
    state.files.insert("notes.txt".into(), pattern(1000));
    state.files.insert("slow.bin".into(), pattern(64 << 20));
    state.chunk_delay = Some(Duration::from_millis(50));
    state.listing = vec![
        file_entry("notes.txt", 1000),
        file_entry("slow.bin", 64 << 20),
        file_entry("evil\x1b[2J", 5),
    ];
    // SHELL_DOUBLE_IDLE_SECS=N: the double ends the session after N idle
    // seconds, and the shell sends no keepalive to stop it.
    let idle = std::env::var("SHELL_DOUBLE_IDLE_SECS")
        .ok()
        .and_then(|secs| secs.parse().ok())
        .map(Duration::from_secs);
    state.idle_timeout = idle;
    let pki = TestPki::new(&["localhost"]);
    let transport = support::start(&pki, Arc::new(Mutex::new(state)));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let credentials = Credentials {
        user: "alice".into(),
        password: "pw".to_owned().into(),
        register: false,
    };
    let opened = runtime.block_on(Remote::open(
        transport,
        pki.client_config(),
        "localhost".try_into().expect("a valid name"),
        &credentials,
        Reporter::new(true),
    ));
    let (mut connection, cwd) = match opened {
        Ok(opened) => opened,
        Err(err) => {
            eprintln!("shell_double: {err}");
            return ExitCode::FAILURE;
        }
    };
    let interrupt: InterruptSource = Arc::new(|| {
        Box::pin(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    });
    connection.set_interrupt(interrupt);
    if idle.is_some() {
        connection.set_keepalive(Duration::from_secs(3600));
    }
    let local = std::env::current_dir().expect("a current folder");
    let mut shell = Shell::new(connection, cwd, local, Box::new(std::io::stdout()), false);
    let code = match run_interactive(&runtime, &mut shell) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("shell_double: {err:#}");
            ExitCode::FAILURE
        }
    };
    runtime.block_on(shell.quit());
    println!("shell_double: bye");
    code
}
