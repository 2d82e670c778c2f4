//! `sfs`: the SFS client. An interactive shell (like sftp), one-shot commands for
//! scripts, and batch files.
//!
//! ```text
//! sfs --peer 198.51.100.1,203.0.113.1 --user alice            # interactive shell
//! sfs --peer 198.51.100.1 --user alice put report.pdf         # one command
//! sfs --peer 198.51.100.1 --user alice -b commands.txt        # a batch file
//! ```

use std::io::{BufRead, IsTerminal, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser;
use rustls_pki_types::ServerName;
use sfs_client::command::{parse_words, ShellCommand};
use sfs_client::connection::{
    connect_failure, os_words, tls_failure, Associations, ClientError, ClientOptions, Credentials,
    InterruptSource, Remote, Reporter, DEFAULT_MEMORY_BUDGET,
};
use sfs_client::connector::SctpConnector;
use sfs_client::display::escape;
use sfs_client::peers::parse_addrs;
use sfs_client::repl::{one_line, run_batch, run_interactive, run_piped, EXIT_INTERRUPTED};
use sfs_client::shell::{check_local_names, help_lines, Shell};
use sfs_proto::report::error_line;
use sfs_sctp::{SctpAssociation, SctpConfig};
use zeroize::Zeroizing;

/// The SFS client: a secure file shell over multi-homed SCTP and TLS 1.3.
///
/// With no COMMAND and no -b, runs an interactive shell (type `help`); commands
/// piped into standard input run as a batch, as with `sftp -b -`. The password
/// is read from --password-file, or the SFS_PASSWORD environment variable, or a
/// hidden prompt; it is never taken from the command line.
#[derive(Debug, Parser)]
#[command(name = "sfs", version, after_help = EXAMPLES, args_override_self = true)]
struct Cli {
    /// The server's addresses, comma-separated, with an optional port on any of
    /// them (it applies to all): `198.51.100.1,203.0.113.1:7373`.
    #[arg(long, env = "SFS_PEER", value_name = "ADDR[,ADDR..][:PORT]")]
    peer: Option<String>,
    /// The port, when no address in --peer names one.
    #[arg(long, default_value_t = 7373)]
    port: u16,
    /// Local addresses to bind, comma-separated (multi-homing on this side too).
    #[arg(long, value_name = "ADDR[,ADDR..]")]
    local: Option<String>,
    /// The CA certificate that signed the server's certificate.
    #[arg(long, env = "SFS_CA", default_value = "certs/ca.pem")]
    ca: PathBuf,
    /// The name the server's certificate must carry (default: the first --peer address).
    #[arg(long)]
    server_name: Option<String>,
    /// The user to log in as (default: $USER).
    #[arg(long, short = 'u', env = "SFS_USER")]
    user: Option<String>,
    /// Read the password from the first line of this file.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Create the account first (if the server allows self-registration).
    #[arg(long)]
    register: bool,
    /// Run the commands in FILE (`-` for standard input), one per line; stop at
    /// the first failure. A line starting with `-` may fail without stopping (as
    /// in sftp). Commands piped in without -b run the same way.
    #[arg(long, short = 'b', value_name = "FILE")]
    batch: Option<PathBuf>,
    /// In batch mode, carry on after a failed command (the exit code still says so).
    #[arg(long)]
    keep_going: bool,
    /// No progress bars and no transfer summaries.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Bytes of transfer data to hold in memory at most, however many transfers
    /// run at once (three quarters of it is the download window).
    #[arg(long, env = "SFS_MEMORY_BUDGET", value_name = "BYTES", default_value_t = DEFAULT_MEMORY_BUDGET)]
    memory_budget: u64,
    /// Seconds to wait for the association to come up.
    #[arg(long, default_value_t = 10)]
    connect_timeout: u64,
    /// SCTP associations per session, the first included: `1` uses one; `N`
    /// opens N-1 extra data associations when the first transfer starts (as
    /// many as the server allows); `auto` adds them while each raises
    /// throughput by 10% or more. Several associations grow several congestion
    /// windows, which helps on lossy paths.
    #[arg(long, env = "SFS_ASSOCIATIONS", value_name = "N|auto", default_value_t = Associations::default())]
    associations: Associations,
    /// A command to run instead of the shell, e.g. `ls /` or `get a.txt`.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    command: Vec<String>,
}

const EXAMPLES: &str = "Examples:
  sfs --peer 198.51.100.1,203.0.113.1 --user alice
  SFS_PASSWORD=... sfs --peer 198.51.100.1 --user alice put notes.txt backup/notes.txt
  sfs --peer 198.51.100.1 --user alice --password-file pw.txt -b commands.txt";

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sfs: {}", one_line(&error_line(error.as_ref())));
            ExitCode::FAILURE
        }
    }
}

type Sctp = SctpAssociation;

/// What a command line that clap refused prints: `--help` and `--version` as
/// clap writes them; a mistake as one line with a hint, exit 1 like every
/// other failure.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ErrorKind};
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        // Printing help can only fail on a closed stdout, which leaves nothing to say.
        let _ = err.print();
        return ExitCode::SUCCESS;
    }
    let context = |kind| match err.get(kind) {
        Some(clap::error::ContextValue::String(text)) => Some(text.clone()),
        _ => None,
    };
    let arg = context(ContextKind::InvalidArg)
        .map(|arg| arg.split_whitespace().next().unwrap_or_default().to_owned());
    let text = match (err.kind(), arg) {
        (ErrorKind::UnknownArgument, Some(arg)) => format!("unknown option {arg}"),
        (ErrorKind::InvalidValue | ErrorKind::ValueValidation, Some(arg)) => {
            match context(ContextKind::InvalidValue) {
                Some(value) if !value.is_empty() => {
                    format!("{value:?} is not a valid value for {arg}")
                }
                _ => format!("{arg} needs a value"),
            }
        }
        // Anything else: clap's own first line, without its "error: ".
        _ => {
            let text = err.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_owned()
        }
    };
    eprintln!("sfs: {}; see sfs --help", one_line(&text));
    ExitCode::FAILURE
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if cli.batch.is_some() && !cli.command.is_empty() {
        bail!("give either -b FILE or a COMMAND, not both");
    }
    // Parse a one-shot command before connecting, so typos cost no round trip.
    // Options come before the command: a first word like `--password` is an
    // option this program does not have, not a command name.
    if let Some(first) = cli.command.first().filter(|w| w.starts_with('-')) {
        bail!("unknown option {}; see sfs --help", escape(first));
    }
    let one_shot = if cli.command.is_empty() {
        None
    } else {
        Some(parse_words(&cli.command)?)
    };
    // `sfs help [COMMAND]` needs no server.
    if let Some(ShellCommand::Help { topic }) = &one_shot {
        let lines = help_lines(topic.as_deref()).map_err(|text| anyhow::anyhow!(text))?;
        let mut out = std::io::stdout().lock();
        // A reader that went away (`sfs help | head`) is not a failure.
        let _ = lines.iter().try_for_each(|line| writeln!(out, "{line}"));
        return Ok(ExitCode::SUCCESS);
    }
    // Local files first, so a mistake there costs no connection.
    if let Some(path) = &cli.password_file {
        check_password_file(path)?;
    }
    // A local name that is not there is told before connecting and logging in.
    if let Some(command) = &one_shot {
        let here = std::env::current_dir().context("the current folder")?;
        check_local_names(command, &here)?;
    }
    let batch = match &cli.batch {
        Some(path) if path.as_os_str() == "-" => None,
        Some(path) => Some(read_batch(path)?),
        None => None,
    };
    let piped = one_shot.is_none() && batch.is_none() && piped_commands(&cli);
    let interactive = one_shot.is_none() && batch.is_none() && !piped;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut shell = runtime.block_on(connect(&cli))?;

    let code = if let Some(command) = one_shot {
        match runtime.block_on(shell.execute(command)) {
            Ok(_) => ExitCode::SUCCESS,
            Err(err) => report(&err),
        }
    } else if let Some(lines) = batch {
        run_batch(&runtime, &mut shell, &lines, cli.keep_going)
    } else if piped {
        let stdin = std::io::BufReader::new(std::io::stdin());
        run_piped(&runtime, &mut shell, stdin, cli.keep_going)
    } else {
        debug_assert!(interactive);
        run_interactive(&runtime, &mut shell)?
    };
    runtime.block_on(shell.quit());
    Ok(code)
}

/// Whether the commands come from standard input as a batch: `-b -`, or no
/// command and standard input not a terminal (`sfs ... < cmds`), as `sftp -b -`.
fn piped_commands(cli: &Cli) -> bool {
    cli.batch
        .as_ref()
        .is_some_and(|path| path.as_os_str() == "-")
        || (cli.batch.is_none() && !std::io::stdin().is_terminal())
}

fn report(err: &ClientError) -> ExitCode {
    eprintln!("sfs: {}", one_line(&err.to_string()));
    if matches!(err, ClientError::Interrupted) {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::FAILURE
    }
}

async fn connect(cli: &Cli) -> anyhow::Result<Shell<Sctp>> {
    let Some(peer) = &cli.peer else {
        bail!("no server given: use --peer ADDR (or set SFS_PEER); see sfs --help");
    };
    let peers = parse_addrs(peer, cli.port).context("--peer")?;
    let local = match &cli.local {
        Some(list) => Some(
            parse_addrs(list, 0)
                .or_else(|_| {
                    // Local addresses need no port: accept bare addresses with port 0.
                    list.split(',')
                        .map(|a| a.trim().parse().map(|ip| SocketAddr::new(ip, 0)))
                        .collect::<Result<Vec<_>, _>>()
                })
                .with_context(|| {
                    format!("--local {}: not a list of local addresses", escape(list))
                })?,
        ),
        None => None,
    };
    let ca_name = escape(&cli.ca.to_string_lossy()).into_owned();
    let ca = std::fs::read(&cli.ca).map_err(|err| {
        anyhow::anyhow!(
            "cannot read the CA certificate {ca_name}: {} (use --ca FILE, or run from the server's folder)",
            os_words(&err)
        )
    })?;
    let tls = sfs_proto::tls::client_config(&ca).map_err(|err| {
        anyhow::anyhow!("{ca_name} is not a usable CA certificate: {err} (use --ca FILE)")
    })?;
    let server_name = match &cli.server_name {
        Some(name) => ServerName::try_from(name.clone()).context("--server-name")?,
        // `peers` is not empty: parse_addrs refuses an empty list.
        None => ServerName::IpAddress(peers[0].ip().into()),
    };
    let user = match &cli.user {
        Some(user) => user.clone(),
        None => std::env::var("USER").context("no --user given and $USER is not set")?,
    };
    let password = password(cli, &user)?;
    let credentials = Credentials {
        user,
        password,
        register: cli.register,
    };

    let timeout = Duration::from_secs(cli.connect_timeout);
    // Every association, the first and the extra ones, is set up alike.
    let connector = SctpConnector::new(peers.clone(), local, SctpConfig::default(), timeout);
    let association = connector
        .connect_sctp()
        .await
        .map_err(|err| anyhow::anyhow!("{}", connect_failure(&err, &list(&peers))))?;
    let visible = !cli.quiet && std::io::stdout().is_terminal();
    let options = ClientOptions {
        memory_budget: cli.memory_budget,
        associations: cli.associations,
    };
    let (mut connection, cwd) = Remote::open_with(
        association,
        tls,
        server_name,
        &credentials,
        Reporter::new(visible),
        options,
    )
    .await
    .map_err(|err| match err {
        ClientError::Server { .. } if cli.register => anyhow::anyhow!("registration failed: {err}"),
        ClientError::Server { .. } => anyhow::anyhow!("login failed: {err}"),
        ClientError::Tls(tls) => anyhow::anyhow!("{}", tls_failure(&tls, Some(&ca_name))),
        // Already a sentence that names the server ("the server turned the
        // connection away: the server is full; try again later").
        ClientError::Closed(reason) => anyhow::anyhow!("{reason}"),
        other => anyhow::anyhow!("{}: {other}", list(&peers)),
    })?;
    let interrupt: InterruptSource = Arc::new(|| {
        Box::pin(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    });
    connection.set_interrupt(interrupt);
    connection.set_connector(connector);
    let local_dir = std::env::current_dir().context("the current folder")?;
    Ok(Shell::new(
        connection,
        cwd,
        local_dir,
        Box::new(std::io::stdout()),
        cli.quiet,
    ))
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The password, from the file, the environment or a prompt; wiped from memory
/// when dropped, as is every copy read on the way.
fn password(cli: &Cli, user: &str) -> anyhow::Result<Zeroizing<String>> {
    if let Some(path) = &cli.password_file {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the password file {}", path.display()))?,
        );
        let first = text.lines().next().unwrap_or_default();
        if first.is_empty() {
            bail!("the password file {} is empty", path.display());
        }
        return Ok(Zeroizing::new(first.to_owned()));
    }
    if let Ok(password) = std::env::var("SFS_PASSWORD") {
        return Ok(Zeroizing::new(password));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password: use --password-file FILE or the SFS_PASSWORD variable (stdin is not a terminal)");
    }
    let prompt = format!("password for {}: ", escape(user));
    let password =
        Zeroizing::new(rpassword::prompt_password(&prompt).context("reading the password")?);
    if cli.register {
        let again =
            Zeroizing::new(rpassword::prompt_password("again: ").context("reading the password")?);
        if again != password {
            bail!("the passwords differ");
        }
    }
    Ok(password)
}

/// Refuses a password file that others may read, as ssh refuses such a key:
/// the password would be theirs too.
fn check_password_file(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let shown = escape(&path.to_string_lossy()).into_owned();
    let mode = std::fs::metadata(path)
        .map_err(|err| {
            anyhow::anyhow!("cannot read the password file {shown}: {}", os_words(&err))
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "the password file {shown} can be read by others (mode {:04o}): run `chmod 600 {shown}`",
            mode & 0o7777
        );
    }
    Ok(())
}

fn read_batch(path: &Path) -> anyhow::Result<Vec<String>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("opening the batch file {}", path.display()))?;
    std::io::BufReader::new(file)
        .lines()
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading the batch file {}", path.display()))
}
