//! `sfs-server`: the SFS file server.
//!
//! For now this binary parses its flags and configuration and runs the startup
//! checks (users file, shares file, certificate, key); the network service is being
//! built on the protocol core and SCTP transport crates.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use sfs_server::config::ServerArgs;
use sfs_server::startup;

/// The SFS server: secure multi-user file service over multi-homed SCTP and TLS 1.3.
#[derive(Debug, Parser)]
#[command(name = "sfs-server", version)]
struct Cli {
    #[command(flatten)]
    args: ServerArgs,
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sfs-server: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = cli.args.load().context("loading the configuration")?;
    let checked = startup::preflight(&config).context("startup check failed")?;
    for warning in &checked.warnings {
        eprintln!("sfs-server: warning: {warning}");
    }
    if checked.stale_uploads_removed > 0 {
        eprintln!(
            "sfs-server: removed {} unfinished upload(s) left by an earlier run",
            checked.stale_uploads_removed
        );
    }
    eprintln!(
        "sfs-server: configuration ok ({} account(s), certificate chain of {})",
        checked.users.len(),
        checked.cert_chain.len()
    );
    eprintln!("sfs-server: the network service is not built yet");
    Ok(ExitCode::from(2))
}
