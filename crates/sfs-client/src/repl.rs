//! The two ways of feeding commands to a [`Shell`]: a batch file (like `sftp -b`)
//! and the interactive loop (rustyline: history, completion, Ctrl-C).
//!
//! Both are generic over the transport, so the interactive loop can be driven in a
//! pseudo-terminal against a test double (`examples/shell_double.rs`).
//!
//! Commands piped into `sfs` (standard input not a terminal) run as a batch
//! ([`run_piped`]), as with `sftp -b -`.
//!
//! Exit codes: 0 when every command succeeded, 1 when one failed,
//! [`EXIT_INTERRUPTED`] (130) when Ctrl-C stopped a batch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use sfs_net::Transport;

use crate::command::{find_command, parse_line, ArgKind, COMMANDS};
use crate::connection::ClientError;
use crate::display::escape;
use crate::shell::{Flow, NameCache, Shell};

/// Exit code when the user interrupted a one-shot or batch command.
pub const EXIT_INTERRUPTED: u8 = 130;

/// An error as one line (anyhow chains and server messages may hold newlines).
pub fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

/// Whether `err` is the session ending (its text is the session's close reason).
fn ends_session(err: &ClientError) -> bool {
    matches!(err, ClientError::Closed(_) | ClientError::Tls(_))
}

/// Runs the lines of a batch file. Stops at the first failure unless
/// `keep_going`; a line starting with `-` may fail without stopping.
pub fn run_batch<T: Transport>(
    runtime: &tokio::runtime::Runtime,
    shell: &mut Shell<T>,
    lines: &[String],
    keep_going: bool,
) -> ExitCode {
    let mut lines = lines.iter().cloned();
    run_lines(runtime, shell, |_, _| lines.next().map(Ok), keep_going)
}

/// Runs commands read from `input` (standard input when it is not a terminal,
/// or `-b -`), one per line as they come, as `sftp -b -` does: the same rules
/// as [`run_batch`], so the exit code says whether any command failed and the
/// first failure stops the rest (unless `keep_going`, or the line starts with
/// `-`). While it waits for the next line the session is kept open as in the
/// interactive shell, so a program may feed commands slowly.
pub fn run_piped<T: Transport, R: std::io::BufRead + Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    shell: &mut Shell<T>,
    input: R,
    keep_going: bool,
) -> ExitCode {
    let mut input = Some(input);
    let next = move |runtime: &tokio::runtime::Runtime, shell: &mut Shell<T>| {
        let mut reader = input.take()?;
        // A blocking read on the blocking pool, as the interactive editor does.
        let reading = runtime.spawn_blocking(move || {
            let mut line = String::new();
            let read = reader.read_line(&mut line);
            (reader, read.map(|n| (n > 0).then_some(line)))
        });
        match runtime.block_on(shell.connection().idle_until(reading)) {
            Ok((reader, Ok(Some(line)))) => {
                input = Some(reader);
                Some(Ok(line.trim_end_matches(['\n', '\r']).to_owned()))
            }
            Ok((_, Ok(None))) => None,
            Ok((_, Err(err))) => Some(Err(err)),
            Err(join) => Some(Err(std::io::Error::other(join))),
        }
    };
    run_lines(runtime, shell, next, keep_going)
}

/// The batch loop over lines from `next` (`None` at the end).
fn run_lines<T: Transport>(
    runtime: &tokio::runtime::Runtime,
    shell: &mut Shell<T>,
    mut next: impl FnMut(&tokio::runtime::Runtime, &mut Shell<T>) -> Option<std::io::Result<String>>,
    keep_going: bool,
) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    let mut number = 0;
    while let Some(line) = next(runtime, shell) {
        number += 1;
        let line = match line {
            Ok(line) => line,
            Err(err) => {
                eprintln!("sfs: reading the commands: {err}");
                return ExitCode::FAILURE;
            }
        };
        let trimmed = line.trim_start();
        let (may_fail, text) = match trimmed.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, trimmed),
        };
        let result = match parse_line(text) {
            Ok(None) => continue,
            Ok(Some(command)) => runtime.block_on(shell.execute(command)).map_err(|e| {
                let interrupted = matches!(e, ClientError::Interrupted);
                (e.to_string(), interrupted, ends_session(&e))
            }),
            Err(err) => Err((err.to_string(), false, false)),
        };
        match result {
            Ok(Flow::Quit) => break,
            Ok(Flow::Continue) => {}
            Err((message, interrupted, ended)) => {
                eprintln!("sfs: line {number}: {}", one_line(&message));
                if interrupted {
                    return ExitCode::from(EXIT_INTERRUPTED);
                }
                if ended {
                    // The line said why; nothing more can run.
                    return ExitCode::FAILURE;
                }
                if may_fail {
                    continue;
                }
                code = ExitCode::FAILURE;
                if !keep_going {
                    break;
                }
            }
        }
        if let Some(reason) = shell.connection().closed_reason() {
            eprintln!("sfs: {}", one_line(reason));
            return ExitCode::FAILURE;
        }
    }
    code
}

/// Where the shell keeps its history: `$SFS_HISTORY`, else `~/.sfs_history`.
pub fn history_file() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("SFS_HISTORY") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".sfs_history"))
}

/// The interactive shell: reads commands until `quit` or Ctrl-D. Ctrl-C at the
/// prompt drops the line; during a transfer it aborts the transfer, and the shell
/// carries on. The exit code reflects the last command.
///
/// # Errors
///
/// If the line editor cannot start or reading a line fails (other than Ctrl-C
/// and Ctrl-D). A failed command is not an error: it is printed and sets the
/// exit code.
pub fn run_interactive<T: Transport>(
    runtime: &tokio::runtime::Runtime,
    shell: &mut Shell<T>,
) -> anyhow::Result<ExitCode> {
    let mut editor: Editor<ShellHelper, DefaultHistory> =
        Editor::new().context("starting the line editor")?;
    editor.set_helper(Some(ShellHelper {
        names: shell.names(),
        files: FilenameCompleter::new(),
    }));
    let history = history_file();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    runtime.block_on(shell.refresh_names());
    shell.set_confirm(Box::new(ask_yes_no));
    println!(
        "Connected as {}. Type `help` for the commands.",
        escape(shell.connection().user())
    );
    let mut last_failed = false;
    loop {
        let prompt = format!("sfs:{}> ", escape(shell.remote_dir()));
        // The editor blocks its thread, so it reads on the blocking pool while
        // this one keeps the session alive; it comes back with the line.
        let reading = runtime.spawn_blocking(move || {
            let line = editor.readline(&prompt);
            (editor, line)
        });
        let (returned, line) = runtime
            .block_on(shell.connection().idle_until(reading))
            .context("reading a command")?;
        editor = returned;
        // The session ended while the user was typing (the server's idle
        // timeout, a lost association): say why, once, and do not run the line.
        if let Some(reason) = shell.connection().closed_reason() {
            eprintln!("sfs: {}", one_line(reason));
            last_failed = true;
            break;
        }
        let line = match line {
            Ok(line) => line,
            // Ctrl-C at the prompt drops the line, as in bash and sftp.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(err) => return Err(err).context("reading a command"),
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        let command = match parse_line(&line) {
            Ok(Some(command)) => command,
            Ok(None) => continue,
            Err(err) => {
                eprintln!("sfs: {err}");
                last_failed = true;
                continue;
            }
        };
        let changes_folder = shlex::split(&line)
            .and_then(|words| words.into_iter().next())
            .and_then(|name| find_command(&name))
            .is_some_and(|spec| spec.changes_remote_names);
        match runtime.block_on(shell.execute(command)) {
            Ok(Flow::Quit) => break,
            Ok(Flow::Continue) => last_failed = false,
            Err(ClientError::Interrupted) => {
                eprintln!("sfs: interrupted");
                last_failed = true;
            }
            // The line below says why the session ended.
            Err(err) if ends_session(&err) => last_failed = true,
            Err(err) => {
                eprintln!("sfs: {}", one_line(&err.to_string()));
                last_failed = true;
            }
        }
        if let Some(reason) = shell.connection().closed_reason() {
            eprintln!("sfs: {}", one_line(reason));
            last_failed = true;
            break;
        }
        if changes_folder {
            runtime.block_on(shell.refresh_names());
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(if last_failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Tab completion from the command table: command names first, then by the
/// argument's kind: local files, rights, command names (for `help`), and remote
/// names of the current folder otherwise.
pub struct ShellHelper {
    /// Remote names of the current folder.
    pub names: NameCache,
    /// Local file names.
    pub files: FilenameCompleter,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = line.get(..pos).unwrap_or(line);
        let word_start = before.rfind(' ').map_or(0, |i| i + 1);
        let word = &before[word_start..];
        let first_word = before.split_whitespace().next().unwrap_or("");
        let words_before = before[..word_start].split_whitespace().count();
        if words_before == 0 {
            return Ok((word_start, matching(&command_names(), word)));
        }
        let kind = find_command(first_word).and_then(|spec| {
            // Options (`get -r`, `mget -O DIR`) are not arguments: count the words after them.
            let words: Vec<&str> = before[..word_start].split_whitespace().skip(1).collect();
            let options = spec.option_words(&words);
            spec.arg_kind(words_before - 1 - options)
        });
        match kind {
            Some(ArgKind::LocalPath) => self.files.complete(line, pos, ctx),
            Some(ArgKind::Rights) => Ok((word_start, matching(RIGHTS_EXAMPLES, word))),
            Some(ArgKind::CommandName) => Ok((word_start, matching(&command_names(), word))),
            // Remote names; also for unknown commands and extra words, as before.
            Some(ArgKind::RemotePath | ArgKind::User) | None => {
                let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
                let candidates = names
                    .iter()
                    .filter(|name| name.starts_with(word))
                    // Names with control characters would be typed back into the line raw.
                    .filter(|name| escape(name) == name.as_str() && !name.contains(' '))
                    .map(|name| Pair {
                        display: name.clone(),
                        replacement: name.clone(),
                    })
                    .collect();
                Ok((word_start, candidates))
            }
        }
    }
}

/// Rights offered when completing a share's rights.
const RIGHTS_EXAMPLES: &[&str] = &["r", "rw", "rwc", "rwcd", "all"];

/// Every name of every command, sorted.
fn command_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = COMMANDS
        .iter()
        .flat_map(|spec| spec.names.iter().copied())
        .collect();
    names.sort_unstable();
    names
}

/// The candidates that start with `word` (in any case), each followed by a space.
fn matching(candidates: &[&str], word: &str) -> Vec<Pair> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .filter(|name| name.starts_with(&word))
        .map(|name| Pair {
            display: (*name).to_owned(),
            replacement: format!("{name} "),
        })
        .collect()
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

/// Asks on the terminal, as sftp does before deleting many files: `y` or `yes`
/// is yes; anything else, end of input or an error is no.
fn ask_yes_no(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    match std::io::stdin().read_line(&mut answer) {
        Ok(_) => matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"),
        Err(_) => false,
    }
}
