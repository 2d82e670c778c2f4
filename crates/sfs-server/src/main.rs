//! `sfs-server`: the SFS file server.
//!
//! Parses its flags and configuration, runs the startup checks (users file,
//! shares file, certificate, key, root, log), binds every configured address on
//! one multi-homed SCTP listener, and serves until SIGINT or SIGTERM (SIGHUP re-reads the users and shares files). Exit codes:
//! 0 after a clean shutdown, 1 on a startup error (the message says which file or
//! setting is wrong).

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use sfs_server::audit::{AuditEvent, AuditOutcome, EventKind};
use sfs_server::config::ServerArgs;
use sfs_server::context::ServerContext;
use sfs_server::server::{self, ConnectionLimits};
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sfs-server: error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Each cause once: an error that shows its source and also hands
            // it on would otherwise print it twice.
            eprintln!(
                "sfs-server: error: {}",
                sfs_proto::report::error_line(error.as_ref())
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli) -> anyhow::Result<()> {
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
    let accounts = checked.users.len();
    eprintln!(
        "sfs-server: configuration ok ({accounts} account(s), certificate chain of {})",
        checked.cert_chain.len()
    );
    // The dummy hash for unknown users costs one bcrypt: off the async threads.
    let context = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || ServerContext::new(&config, checked))
            .await
            .context("starting up")?
            .context("startup check failed")?
    };
    let listener = server::bind(&config)?;
    let addrs = listener
        .local_addrs()
        .map(|addrs| {
            addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|_| "?".into());
    let ctx = Arc::new(context);
    if let Err(error) = ctx
        .audit
        .record(&AuditEvent::new(EventKind::Start, AuditOutcome::Info))
    {
        log::error!("cannot write server.log: {error}");
    }
    eprintln!(
        "sfs-server: listening on {addrs} with {} data stream(s), {accounts} account(s)",
        config.streams
    );
    tokio::spawn(reload_on_sighup(ctx.clone()));
    server::run(
        listener,
        ctx.clone(),
        ConnectionLimits::from_config(&config),
        shutdown_signal(),
    )
    .await;
    if let Err(error) = ctx
        .audit
        .record(&AuditEvent::new(EventKind::Stop, AuditOutcome::Info))
    {
        log::error!("cannot write server.log: {error}");
    }
    eprintln!("sfs-server: stopped");
    Ok(())
}

/// Re-reads `users.json` and `shares.json` on every SIGHUP (they are also looked
/// at, at most once a second, as sessions use them).
async fn reload_on_sighup(ctx: Arc<ServerContext>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(error) => {
            log::error!("cannot watch SIGHUP: {error}");
            return;
        }
    };
    while hangup.recv().await.is_some() {
        eprintln!("sfs-server: SIGHUP, reloading users and shares");
        ctx.reload();
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            log::error!("cannot watch SIGTERM: {error}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => eprintln!("sfs-server: SIGINT, shutting down"),
        _ = terminate.recv() => eprintln!("sfs-server: SIGTERM, shutting down"),
    }
}
