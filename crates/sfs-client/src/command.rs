// Over 600 lines: the one table of every command (variant, docs, help, flags), and a quarter is tests.
//! The commands a user types, in the shell, in a batch file or as one-shot arguments.
//!
//! Every original command (LIST, RETR, STOR, PWD, CWD, CDUP, MKD, RMD, DELE, SHAR,
//! UNSH, SHWM, QUIT) works in any case, next to the names sftp users type (`ls`,
//! `get`, `put`, `cd`, ...). Words split like a shell's, so quoted names may hold
//! spaces: `put "my notes.txt" notes.txt`. Options come first, as in sftp (`get -rp
//! docs`); `--` ends them, so `rm -- -odd-name` names a file.
//!
//! ```
//! use sfs_client::command::{parse_line, ShellCommand};
//!
//! assert_eq!(
//!     parse_line("RETR report.pdf").unwrap(),
//!     Some(ShellCommand::Get {
//!         resume: false,
//!         recursive: false,
//!         preserve: false,
//!         remote: "report.pdf".into(),
//!         local: None,
//!     })
//! );
//! // sftp's options, alone or combined, before the arguments.
//! assert_eq!(parse_line("get -rp docs").unwrap(), parse_line("get -r -p docs").unwrap());
//! assert_eq!(parse_line("  # a comment").unwrap(), None);
//! assert!(parse_line("frobnicate").is_err());
//! ```

pub use sfs_proto::control::Rights;

use crate::connection::ClientError;
use crate::shell::Flow;

/// Parses the rights of a share: letters from `rwcd` (`r`, `rw`, `rwcd`), words
/// (`read,write`), or `all`, into the protocol's [`Rights`] set.
///
/// # Errors
///
/// [`ParseError::BadRights`] for anything else, or no right at all.
pub fn parse_rights(text: &str) -> Result<Rights, ParseError> {
    let bad = || ParseError::BadRights(text.to_owned());
    let lower = text.to_ascii_lowercase();
    if lower == "all" {
        return Ok(Rights::ALL);
    }
    let words: Vec<&str> = lower.split(',').map(str::trim).collect();
    let spelled_out = words.len() > 1 || matches!(words[0], "read" | "write" | "create" | "delete");
    let mut rights = Rights::NONE;
    if spelled_out {
        for word in words {
            rights |= match word {
                "read" => Rights::READ,
                "write" => Rights::WRITE,
                "create" => Rights::CREATE,
                "delete" => Rights::DELETE,
                _ => return Err(bad()),
            };
        }
    } else {
        for letter in lower.chars() {
            rights |= match letter {
                'r' => Rights::READ,
                'w' => Rights::WRITE,
                'c' => Rights::CREATE,
                'd' => Rights::DELETE,
                _ => return Err(bad()),
            };
        }
    }
    if rights.is_empty() {
        return Err(bad());
    }
    Ok(rights)
}

/// Why a line is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The first word names no command.
    #[error("unknown command `{0}` (type `help` for the list)")]
    UnknownCommand(String),
    /// A required argument is missing.
    #[error("`{command}` needs {missing}: usage: {usage}")]
    MissingArgument {
        /// The command's name.
        command: &'static str,
        /// What is missing.
        missing: &'static str,
        /// The command's usage line.
        usage: &'static str,
    },
    /// More arguments than the command takes.
    #[error("`{command}` takes at most {max} argument(s): usage: {usage}")]
    TooManyArguments {
        /// The command's name.
        command: &'static str,
        /// How many it takes.
        max: usize,
        /// The command's usage line.
        usage: &'static str,
    },
    /// A quote was opened and never closed, or a trailing backslash.
    #[error("unbalanced quotes")]
    UnbalancedQuotes,
    /// An option the command does not take (`get -x`).
    #[error("`{command}` has no option `-{flag}`: usage: {usage}")]
    UnknownFlag {
        /// The command's name.
        command: &'static str,
        /// The option as typed, without its `-`.
        flag: String,
        /// The command's usage line.
        usage: &'static str,
    },
    /// The rights of a share are not a combination of r, w, c and d.
    #[error(
        "bad rights `{0}`: use letters from rwcd (e.g. `rw`), words like `read,write`, or `all`"
    )]
    BadRights(String),
}

/// What an argument names: decides how the shell completes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A file or folder on the server.
    RemotePath,
    /// A file or folder on this machine.
    LocalPath,
    /// A user name.
    User,
    /// Share rights (`rwcd`, `read,write`, `all`).
    Rights,
    /// A command name (the topic of `help`).
    CommandName,
}

/// One argument of a command.
#[derive(Debug)]
pub struct ArgSpec {
    /// What it names.
    pub kind: ArgKind,
    /// `Some(what is missing)` for a required argument, as the error says it
    /// ("a folder"); `None` for an optional one.
    pub required: Option<&'static str>,
}

const fn required(kind: ArgKind, missing: &'static str) -> ArgSpec {
    ArgSpec {
        kind,
        required: Some(missing),
    }
}

const fn optional(kind: ArgKind) -> ArgSpec {
    ArgSpec {
        kind,
        required: None,
    }
}

/// One option of a command: a letter after `-`, as in sftp (`get -r -p`, `get -rp`),
/// some with a value (`mget -O DIR`, `-ODIR`), as in lftp.
#[derive(Debug)]
pub struct FlagSpec {
    /// The letter (`"r"`).
    pub letter: &'static str,
    /// What it does, for `help`.
    pub help: &'static str,
    /// The name of its value in the usage (`"DIR"`), for an option that takes one.
    pub value: Option<&'static str>,
}

/// Everything about one command: its names, help, arguments and how its words
/// become a [`ShellCommand`]. Parsing, `help`, completion and the shell's folder
/// refresh all read [`COMMANDS`]. Adding a command is one entry in the table at
/// the end of this module (which also makes its [`ShellCommand`] variant and its
/// arm in [`Shell::execute`](crate::shell::Shell::execute)) plus the `Shell`
/// method that runs it.
#[derive(Debug)]
pub struct CommandSpec {
    /// Every name the command answers to; the first is the one shown.
    pub names: &'static [&'static str],
    /// The usage line.
    pub usage: &'static str,
    /// One sentence on what it does.
    pub summary: &'static str,
    /// An example line.
    pub example: &'static str,
    /// Its options (`-r`), given before the arguments; `--` ends them.
    pub flags: &'static [FlagSpec],
    /// Its arguments, in order.
    pub args: &'static [ArgSpec],
    /// Whether the last argument may repeat (`mget a b c`); then at least one is needed.
    pub repeats: bool,
    /// Whether it may change the names in the remote folder (or the folder), so
    /// the shell refreshes its completion names after it.
    pub changes_remote_names: bool,
    /// Builds the command from arguments already checked against `args`.
    build: fn(Args<'_>) -> Result<ShellCommand, ParseError>,
}

impl CommandSpec {
    /// The kind of the argument at `index` (0 is the first after the name and
    /// its options), if the command takes one there.
    pub fn arg_kind(&self, index: usize) -> Option<ArgKind> {
        match self.args.get(index) {
            Some(arg) => Some(arg.kind),
            None if self.repeats => self.args.last().map(|arg| arg.kind),
            None => None,
        }
    }

    /// How many of `words` (those after the command's name) are options and
    /// their values (`-O DIR` is two), so completion knows which argument the
    /// next word is.
    pub fn option_words(&self, words: &[&str]) -> usize {
        let owned: Vec<String> = words.iter().map(|word| (*word).to_owned()).collect();
        match self.split_flags(&owned) {
            Ok((_, rest)) => owned.len() - rest.len(),
            // An option not finished or not known: the words that look like options.
            Err(_) => words
                .iter()
                .take_while(|w| !self.flags.is_empty() && w.starts_with('-') && **w != "-")
                .count(),
        }
    }

    /// Checks the number of arguments against the usage; the one place every
    /// "missing" and "too many" error comes from.
    fn check(&self, args: &[String]) -> Result<(), ParseError> {
        if !self.repeats && args.len() > self.args.len() {
            return Err(ParseError::TooManyArguments {
                command: self.names[0],
                max: self.args.len(),
                usage: self.usage,
            });
        }
        let missing = self
            .args
            .iter()
            .skip(args.len())
            .find_map(|arg| arg.required);
        match missing {
            Some(missing) => Err(ParseError::MissingArgument {
                command: self.names[0],
                missing,
                usage: self.usage,
            }),
            None => Ok(()),
        }
    }

    /// Splits the options off the front of `words`: each word that starts with
    /// `-` (not `-` alone) holds one or more of this command's letters, until
    /// the first other word or `--`. An option with a value takes the rest of
    /// its word (`-ODIR`) or else the next word (`-O DIR`). A command without
    /// options takes every word as an argument, as before options existed.
    fn split_flags<'w>(&self, words: &'w [String]) -> Result<(Options, &'w [String]), ParseError> {
        let mut options = Options::default();
        if self.flags.is_empty() {
            return Ok((options, words));
        }
        let mut rest = words;
        while let Some((word, after)) = rest.split_first() {
            if word == "--" {
                return Ok((options, after));
            }
            let Some(given) = word.strip_prefix('-').filter(|given| !given.is_empty()) else {
                break;
            };
            rest = after;
            for (at, letter) in given.char_indices() {
                let flag = self
                    .flags
                    .iter()
                    .find(|flag| flag.letter.chars().eq(std::iter::once(letter)))
                    .ok_or_else(|| ParseError::UnknownFlag {
                        command: self.names[0],
                        flag: letter.to_string(),
                        usage: self.usage,
                    })?;
                let Some(what) = flag.value else {
                    options.letters.push(letter);
                    continue;
                };
                let attached = &given[at + letter.len_utf8()..];
                let value = if attached.is_empty() {
                    let (next, after) = rest.split_first().ok_or(ParseError::MissingArgument {
                        command: self.names[0],
                        missing: what,
                        usage: self.usage,
                    })?;
                    rest = after;
                    next.clone()
                } else {
                    attached.to_owned()
                };
                options.values.push((letter, value));
                break;
            }
        }
        Ok((options, rest))
    }
}

/// The options given to one command.
#[derive(Debug, Default)]
struct Options {
    /// The letters of options without a value.
    letters: String,
    /// Each option with a value, and its value, in the order given.
    values: Vec<(char, String)>,
}

/// The arguments of one command, already checked against its [`CommandSpec`],
/// taken in order by the fields of its variant, and the options given.
#[derive(Debug)]
struct Args<'a> {
    words: std::slice::Iter<'a, String>,
    options: Options,
}

impl Args<'_> {
    /// Whether the option `letter` was given.
    fn flag(&self, letter: &str) -> bool {
        self.options.letters.contains(letter)
    }

    /// The value of the option `letter`, the last one when it was given twice.
    fn value(&self, letter: &str) -> Option<String> {
        self.options
            .values
            .iter()
            .rev()
            .find(|(given, _)| letter.chars().eq(std::iter::once(*given)))
            .map(|(_, value)| value.clone())
    }
}

/// The field type of an option: `bool`, or `Option<String>` for one with a value.
macro_rules! option_type {
    () => { bool };
    ($value:literal) => { Option<String> };
}

/// The name of an option's value in [`FlagSpec::value`].
macro_rules! option_name {
    () => {
        None
    };
    ($value:literal) => {
        Some($value)
    };
}

/// Reads an option's field from the [`Args`].
macro_rules! option_value {
    ($args:ident, $letter:tt) => {
        $args.flag(stringify!($letter))
    };
    ($args:ident, $letter:tt, $value:literal) => {
        $args.value(stringify!($letter))
    };
}

/// How a field of a [`ShellCommand`] variant is made from the next argument(s).
trait FromArgs: Sized {
    fn from_args(args: &mut Args<'_>) -> Result<Self, ParseError>;
}

impl FromArgs for String {
    /// A required argument: present, since [`CommandSpec::check`] ran.
    fn from_args(args: &mut Args<'_>) -> Result<Self, ParseError> {
        Ok(args.words.next().cloned().unwrap_or_default())
    }
}

impl FromArgs for Option<String> {
    fn from_args(args: &mut Args<'_>) -> Result<Self, ParseError> {
        Ok(args.words.next().cloned())
    }
}

impl FromArgs for Vec<String> {
    /// A repeated last argument: all that are left.
    fn from_args(args: &mut Args<'_>) -> Result<Self, ParseError> {
        Ok(args.words.by_ref().cloned().collect())
    }
}

impl FromArgs for Rights {
    fn from_args(args: &mut Args<'_>) -> Result<Self, ParseError> {
        parse_rights(args.words.next().map_or("", String::as_str))
    }
}

/// Declares every command once. From each entry (the variant with its options
/// (`-r recursive: "help"`, a `bool` field each) and its fields, each field's
/// [`ArgSpec`], the `Shell` method that runs it, its names, help texts and flags) it makes the [`ShellCommand`] variant, the [`COMMANDS`]
/// entry that parses it, and the arm of [`Shell::execute`](crate::shell::Shell::execute)
/// that calls `shell.method(options..., fields...)`. The method returns `Result<(),
/// ClientError>`, or `Result<Flow, ClientError>` to end the session.
macro_rules! commands {
    ($(
        $(#[$doc:meta])*
        $variant:ident $({
            $( - $letter:tt $flag:ident $(= $value:literal)?: $flag_help:literal, )*
            $( $(#[$field_doc:meta])* $field:ident: $ty:ty = $arg:expr ),* $(,)?
        })? => $method:ident,
        names: [$($name:literal),+], usage: $usage:literal, summary: $summary:literal,
        example: $example:literal, repeats: $repeats:literal,
        changes_remote_names: $changes:literal;
    )*) => {
        /// One parsed command.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum ShellCommand {
            $(
                $(#[$doc])*
                $variant $({
                    $( #[doc = $flag_help] $flag: option_type!($($value)?), )*
                    $( $(#[$field_doc])* $field: $ty ),*
                })?,
            )*
        }

        /// Every command, in the order `help` lists them.
        pub static COMMANDS: &[CommandSpec] = &[$(
            CommandSpec {
                names: &[$($name),+],
                usage: $usage,
                summary: $summary,
                example: $example,
                flags: &[$($( FlagSpec {
                    letter: stringify!($letter),
                    help: $flag_help,
                    value: option_name!($($value)?),
                }, )*)?],
                args: &[$($($arg),*)?],
                repeats: $repeats,
                changes_remote_names: $changes,
                // Fields initialise in order, each taking its argument(s).
                build: |#[allow(unused_mut, unused_variables)] mut args| {
                    Ok(ShellCommand::$variant $({
                        $( $flag: option_value!(args, $letter $(, $value)?), )*
                        $( $field: FromArgs::from_args(&mut args)? ),*
                    })?)
                },
            },
        )*];

        impl<T: sfs_net::Transport> crate::shell::Shell<T> {
            /// Runs one command, printing its answer.
            ///
            /// # Errors
            ///
            /// [`ClientError`] when the server refuses, a local file cannot be
            /// used, or the session ends.
            ///
            /// # Cancel safety
            ///
            /// Not cancel safe: a dropped call may leave a request unanswered or
            /// a transfer half done (Ctrl-C goes through the connection's
            /// interrupt instead, which ends transfers cleanly).
            pub async fn execute(&mut self, command: ShellCommand) -> Result<Flow, ClientError> {
                match command {
                    $(
                        ShellCommand::$variant $({ $($flag,)* $($field),* })? => {
                            Ok(Flow::from(self.$method($( $($flag,)* $($field),* )?).await?))
                        }
                    )*
                }
            }
        }
    };
}

use ArgKind::{CommandName, LocalPath, RemotePath, Rights as RightsArg, User};

// Every command, in the order `help` lists them: the variant and its fields (each
// with its argument), the `Shell` method that runs it, then its table entry.
commands! {
    /// LIST: list a remote folder (the current one by default), or the names in
    /// a folder that match a pattern (`ls '*.txt'`). sftp's options: the long
    /// form is the default here (`-l` is accepted), names starting with `.` are
    /// hidden unless `-a`, as in sftp and ls.
    List {
        -l long: "the long form: kind and rights, size, UTC time, name (the default)",
        -1 names_only: "names only, one per line (wins over -l)",
        -a all: "show names that start with a dot too (hidden by default)",
        -h human: "sizes in KiB, MiB, GiB",
        -t by_time: "newest first",
        -S by_size: "largest first",
        -r reverse: "reverse the order",
        /// The folder or file to list, or a pattern for names in one folder.
        path: Option<String> = optional(RemotePath),
    } => ls,
    names: ["ls", "list", "dir"], usage: "ls [-1ahlrSt] [PATH|PATTERN]",
    summary: "list a remote folder, or the names matching a pattern (*, ?, [abc]) in its last part; dot files with -a",
    example: "ls -la /shared/alice", repeats: false, changes_remote_names: false;

    /// CWD: change the remote folder.
    ChangeDir {
        /// The new folder.
        path: String = required(RemotePath, "a folder"),
    } => cd,
    names: ["cd", "cwd"], usage: "cd PATH", summary: "change the remote folder",
    example: "cd projects", repeats: false, changes_remote_names: true;

    /// CDUP: go to the parent remote folder.
    ChangeDirUp => cdup,
    names: ["cdup"], usage: "cdup", summary: "go to the parent remote folder",
    example: "cdup", repeats: false, changes_remote_names: true;

    /// PWD: print the remote folder.
    PrintDir => pwd,
    names: ["pwd"], usage: "pwd", summary: "print the remote folder",
    example: "pwd", repeats: false, changes_remote_names: false;

    /// MKD: make a remote folder.
    MakeDir {
        /// The folder to make.
        path: String = required(RemotePath, "a folder"),
    } => mkdir,
    names: ["mkdir", "mkd"], usage: "mkdir PATH", summary: "make a remote folder",
    example: "mkdir photos", repeats: false, changes_remote_names: true;

    /// RMD: remove an empty remote folder.
    RemoveDir {
        /// The folder to remove.
        path: String = required(RemotePath, "a folder"),
    } => rmdir,
    names: ["rmdir", "rmd"], usage: "rmdir PATH", summary: "remove an empty remote folder",
    example: "rmdir old", repeats: false, changes_remote_names: true;

    /// DELE: delete remote files, by name or pattern, and with `-r` folders
    /// with everything in them.
    Delete {
        -f force: "never ask before deleting several files or a folder",
        -r recursive: "delete folders too, with everything in them",
        /// The files to delete, or patterns matching them.
        paths: Vec<String> = required(RemotePath, "a file"),
    } => rm,
    names: ["rm", "dele", "delete"], usage: "rm [-fr] PATH|PATTERN...",
    summary: "delete remote files, or with -r folders and everything in them (the shell asks before a pattern deletes more than one file, and before each folder)",
    example: "rm '*.tmp'", repeats: true, changes_remote_names: true;

    /// Rename or move a remote file or folder; with `-f` replace an existing file.
    Rename {
        -f force: "replace an existing file of the new name",
        /// The current name.
        from: String = required(RemotePath, "the current name"),
        /// The new name.
        to: String = required(RemotePath, "the new name"),
    } => mv,
    names: ["mv", "rename"], usage: "mv [-f] FROM TO",
    summary: "rename or move a remote file or folder (-f replaces an existing file)",
    example: "mv draft.txt final.txt", repeats: false, changes_remote_names: true;

    /// RETR: download a file, or a whole folder with `-r`.
    Get {
        -c resume: "continue a partial download (its .part) instead of starting again",
        -r recursive: "download a whole folder, with everything in it",
        -p preserve: "keep the files' modification times",
        /// The remote file.
        remote: String = required(RemotePath, "a remote file"),
        /// Where to write it; by default the remote name's last part, in the local folder.
        local: Option<String> = optional(LocalPath),
    } => get,
    names: ["get", "retr"], usage: "get [-crp] REMOTE [LOCAL]",
    summary: "download a file or, with -r, a folder (to LOCAL, into LOCAL if it is a folder, or to its own name here); a pattern downloads every match, as sftp's get",
    example: "get report.pdf ~/Downloads/report.pdf", repeats: false, changes_remote_names: false;

    /// STOR: upload a file, or a whole folder with `-r`.
    Put {
        -c resume: "continue a partial upload the server kept instead of starting again",
        -r recursive: "upload a whole folder, with everything in it (symlinks are skipped)",
        -p preserve: "keep the files' modification times",
        /// The local file.
        local: String = required(LocalPath, "a local file"),
        /// The remote name; by default the local name's last part, in the remote folder.
        remote: Option<String> = optional(RemotePath),
    } => put,
    names: ["put", "stor"], usage: "put [-crp] LOCAL [REMOTE]",
    summary: "upload a file or, with -r, a folder (to REMOTE, into REMOTE if it is a folder, or to its own name there); a pattern uploads every match, as sftp's put",
    example: "put notes.txt backup/notes.txt", repeats: false, changes_remote_names: true;

    /// Continue an interrupted download from its `.part`.
    Reget {
        /// The remote file.
        remote: String = required(RemotePath, "a remote file"),
        /// Where to write it, as for `get`.
        local: Option<String> = optional(LocalPath),
    } => reget,
    names: ["reget"], usage: "reget REMOTE [LOCAL]",
    summary: "continue an interrupted download from its .part, once the remote file's first bytes are checked",
    example: "reget big.iso", repeats: false, changes_remote_names: false;

    /// Continue an interrupted upload from what the server kept.
    Reput {
        /// The local file.
        local: String = required(LocalPath, "a local file"),
        /// The remote name, as for `put`.
        remote: Option<String> = optional(RemotePath),
    } => reput,
    names: ["reput"], usage: "reput LOCAL [REMOTE]",
    summary: "continue an interrupted upload from what the server kept, once its first bytes are checked",
    example: "reput big.iso", repeats: false, changes_remote_names: true;

    /// Download several files at once, in parallel, into the local folder.
    GetMany {
        -c resume: "continue partial downloads (their .part) instead of starting again",
        -r recursive: "download the folders that match too, with everything in them",
        -p preserve: "keep the files' modification times",
        -O into = "DIR": "download into the local folder DIR instead of the current one (as lftp's mget -O)",
        /// The remote files, or patterns matching them.
        remotes: Vec<String> = required(RemotePath, "a remote file"),
    } => mget,
    names: ["mget"], usage: "mget [-crp] [-O DIR] REMOTE|PATTERN...",
    summary: "download several files at once, in parallel, into the local folder or DIR (patterns: *, ?, [abc] in the last part)",
    example: "mget '*.log' a.iso", repeats: true, changes_remote_names: false;

    /// Upload several files at once, in parallel, into the remote folder.
    PutMany {
        -c resume: "continue partial uploads the server kept instead of starting again",
        -r recursive: "upload the folders that match too, with everything in them",
        -p preserve: "keep the files' modification times",
        -O into = "DIR": "upload into the remote folder DIR instead of the current one (as lftp's mput -O)",
        /// The local files, or patterns matching them.
        locals: Vec<String> = required(LocalPath, "a local file"),
    } => mput,
    names: ["mput"], usage: "mput [-crp] [-O DIR] LOCAL|PATTERN...",
    summary: "upload several files at once, in parallel, into the remote folder or DIR (patterns: *, ?, [abc])",
    example: "mput 'data/*.csv' a.iso", repeats: true, changes_remote_names: true;

    /// The size of a remote file.
    Size {
        /// The remote file.
        path: String = required(RemotePath, "a file"),
    } => size,
    names: ["size"], usage: "size PATH", summary: "print a remote file's size in bytes",
    example: "size movie.mkv", repeats: false, changes_remote_names: false;

    /// The kind, size, time and mode of a remote file or folder.
    Stat {
        /// The remote file or folder.
        path: String = required(RemotePath, "a path"),
    } => stat,
    names: ["stat"], usage: "stat PATH",
    summary: "show a remote file's kind, size, time and mode",
    example: "stat movie.mkv", repeats: false, changes_remote_names: false;

    /// The SHA-256 digest of a remote file, computed by the server.
    Digest {
        /// The remote file.
        path: String = required(RemotePath, "a file"),
    } => digest,
    names: ["digest", "sum"], usage: "digest PATH",
    summary: "print a remote file's SHA-256, computed by the server",
    example: "digest movie.mkv", repeats: false, changes_remote_names: false;

    /// SHAR: give another user rights on one of your files or folders.
    Share {
        /// Your file or folder.
        path: String = required(RemotePath, "a path"),
        /// Who gets the rights.
        user: String = required(User, "a user"),
        /// Which rights.
        rights: Rights = required(RightsArg, "the rights (rwcd)"),
    } => share,
    names: ["share", "shar"], usage: "share PATH USER RIGHTS",
    summary: "give USER rights on your file or folder: letters from rwcd (read, write, create, delete)",
    example: "share photos bob r", repeats: false, changes_remote_names: false;

    /// UNSH: take back what a share gave.
    Unshare {
        /// The shared file or folder.
        path: String = required(RemotePath, "a path"),
        /// Whose share ends.
        user: String = required(User, "a user"),
    } => unshare,
    names: ["unshare", "unsh"], usage: "unshare PATH USER", summary: "take back a share",
    example: "unshare photos bob", repeats: false, changes_remote_names: false;

    /// SHWM: what others have shared with you.
    SharedWithMe => shared,
    names: ["shared", "shwm"], usage: "shared",
    summary: "list what others have shared with you (under /shared/OWNER)",
    example: "shared", repeats: false, changes_remote_names: false;

    /// What you have shared with others.
    SharedByMe => shares,
    names: ["shares", "shared-by-me"], usage: "shares",
    summary: "list what you have shared with others",
    example: "shares", repeats: false, changes_remote_names: false;

    /// The associations: paths, streams, TLS and bytes moved.
    Status => status,
    names: ["status"], usage: "status",
    summary: "show the associations and their paths, streams, TLS, bytes moved",
    example: "status", repeats: false, changes_remote_names: false;

    /// NOOP: ask the server for nothing (checks the session is alive; the shell
    /// also sends it by itself while it waits for input).
    Noop => noop,
    names: ["noop"], usage: "noop",
    summary: "ask the server for nothing: checks that the session is alive",
    example: "noop", repeats: false, changes_remote_names: false;

    /// QUOT: your storage use and the server's limits.
    Quota => quota,
    names: ["df", "quota", "quot"], usage: "df",
    summary: "show your storage use and limits (quota, largest file)",
    example: "df", repeats: false, changes_remote_names: false;

    /// Change the local folder.
    LocalChangeDir {
        /// The new local folder.
        path: String = required(LocalPath, "a local folder"),
    } => lcd,
    names: ["lcd"], usage: "lcd PATH", summary: "change the local folder",
    example: "lcd ~/Downloads", repeats: false, changes_remote_names: false;

    /// Print the local folder.
    LocalPrintDir => lpwd,
    names: ["lpwd"], usage: "lpwd", summary: "print the local folder",
    example: "lpwd", repeats: false, changes_remote_names: false;

    /// List a local folder.
    LocalList {
        /// The folder to list; the current one by default.
        path: Option<String> = optional(LocalPath),
    } => lls,
    names: ["lls"], usage: "lls [PATH]", summary: "list a local folder",
    example: "lls", repeats: false, changes_remote_names: false;

    /// Explain the commands, or one command.
    Help {
        /// The command to explain.
        topic: Option<String> = optional(CommandName),
    } => help,
    names: ["help", "?"], usage: "help [COMMAND]",
    summary: "explain the commands, or one of them",
    example: "help put", repeats: false, changes_remote_names: false;

    /// QUIT: end the session.
    Quit => exit,
    names: ["quit", "exit", "bye"], usage: "quit", summary: "end the session",
    example: "quit", repeats: false, changes_remote_names: false;
}

/// Finds a command by any of its names, in any case.
pub fn find_command(name: &str) -> Option<&'static CommandSpec> {
    let name = name.to_ascii_lowercase();
    COMMANDS
        .iter()
        .find(|spec| spec.names.contains(&name.as_str()))
}

/// Parses one line. Blank lines and `#` comments give `Ok(None)`.
///
/// # Errors
///
/// [`ParseError`] when the line is not a command.
pub fn parse_line(line: &str) -> Result<Option<ShellCommand>, ParseError> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let words = shlex::split(trimmed).ok_or(ParseError::UnbalancedQuotes)?;
    parse_words(&words).map(Some)
}

/// Parses a command already split into words (one-shot arguments from the shell).
///
/// # Errors
///
/// [`ParseError`] when the words are not a command.
pub fn parse_words(words: &[String]) -> Result<ShellCommand, ParseError> {
    let (name, args) = words
        .split_first()
        .ok_or_else(|| ParseError::UnknownCommand(String::new()))?;
    let spec = find_command(name).ok_or_else(|| ParseError::UnknownCommand(name.clone()))?;
    let (options, args) = spec.split_flags(args)?;
    spec.check(args)?;
    (spec.build)(Args {
        words: args.iter(),
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> ShellCommand {
        parse_line(line).unwrap().unwrap()
    }

    fn get(remote: &str, local: Option<&str>) -> ShellCommand {
        ShellCommand::Get {
            resume: false,
            recursive: false,
            preserve: false,
            remote: remote.into(),
            local: local.map(Into::into),
        }
    }

    fn list(path: Option<&str>) -> ShellCommand {
        ShellCommand::List {
            long: false,
            names_only: false,
            all: false,
            human: false,
            by_time: false,
            by_size: false,
            reverse: false,
            path: path.map(Into::into),
        }
    }

    #[test]
    fn ls_takes_sftp_options_instead_of_paths() {
        let ShellCommand::List {
            long, all, path, ..
        } = parse("ls -la")
        else {
            panic!("ls is List");
        };
        assert!(long && all);
        assert_eq!(path, None);
        assert_eq!(parse("ls -l -a"), parse("ls -al"));
        assert!(
            matches!(parse("ls -1 d"), ShellCommand::List { names_only: true, path: Some(p), .. } if p == "d")
        );
        assert!(matches!(
            parse("dir -ltrh /x"),
            ShellCommand::List {
                long: true,
                by_time: true,
                reverse: true,
                human: true,
                by_size: false,
                ..
            }
        ));
        // A folder whose name starts with `-` after `--`.
        assert_eq!(parse("ls -- -l"), list(Some("-l")));
        assert!(matches!(
            parse_line("ls -z").unwrap_err(),
            ParseError::UnknownFlag { command: "ls", .. }
        ));
    }

    #[test]
    fn original_commands_work_in_any_case() {
        assert_eq!(parse("LIST"), list(None));
        assert_eq!(parse("list /a"), list(Some("/a")));
        assert_eq!(parse("Cwd x"), ShellCommand::ChangeDir { path: "x".into() });
        assert_eq!(parse("CDUP"), ShellCommand::ChangeDirUp);
        assert_eq!(parse("PWD"), ShellCommand::PrintDir);
        assert_eq!(parse("MKD d"), ShellCommand::MakeDir { path: "d".into() });
        assert_eq!(parse("RMD d"), ShellCommand::RemoveDir { path: "d".into() });
        assert_eq!(
            parse("DELE f"),
            ShellCommand::Delete {
                force: false,
                recursive: false,
                paths: vec!["f".into()]
            }
        );
        assert_eq!(parse("RETR f"), get("f", None));
        assert_eq!(
            parse("STOR local.txt remote.txt"),
            ShellCommand::Put {
                resume: false,
                recursive: false,
                preserve: false,
                local: "local.txt".into(),
                remote: Some("remote.txt".into())
            }
        );
        assert_eq!(
            parse("SHAR f bob rw"),
            ShellCommand::Share {
                path: "f".into(),
                user: "bob".into(),
                rights: Rights::READ | Rights::WRITE
            }
        );
        assert_eq!(
            parse("UNSH f bob"),
            ShellCommand::Unshare {
                path: "f".into(),
                user: "bob".into()
            }
        );
        assert_eq!(parse("SHWM"), ShellCommand::SharedWithMe);
        assert_eq!(parse("QUIT"), ShellCommand::Quit);
        assert_eq!(parse("NOOP"), ShellCommand::Noop);
    }

    #[test]
    fn aliases_map_to_the_same_commands() {
        let pairs = [
            ("ls", "LIST"),
            ("dir", "LIST"),
            ("get a", "RETR a"),
            ("put a b", "STOR a b"),
            ("cd x", "CWD x"),
            ("mkdir x", "MKD x"),
            ("rmdir x", "RMD x"),
            ("rm x", "DELE x"),
            ("delete x", "DELE x"),
            ("share p u r", "SHAR p u r"),
            ("unshare p u", "UNSH p u"),
            ("shared", "SHWM"),
            ("exit", "QUIT"),
            ("bye", "quit"),
        ];
        for (alias, original) in pairs {
            assert_eq!(parse(alias), parse(original), "{alias} vs {original}");
        }
    }

    #[test]
    fn quoted_names_keep_their_spaces() {
        assert_eq!(
            parse(r#"put "my notes.txt" 'dest dir/n.txt'"#),
            ShellCommand::Put {
                resume: false,
                recursive: false,
                preserve: false,
                local: "my notes.txt".into(),
                remote: Some("dest dir/n.txt".into())
            }
        );
        assert_eq!(parse(r"get a\ b"), get("a b", None));
    }

    #[test]
    fn mget_and_mput_take_several_names() {
        assert_eq!(
            parse("mget a 'b c'"),
            ShellCommand::GetMany {
                resume: false,
                recursive: false,
                preserve: false,
                into: None,
                remotes: vec!["a".into(), "b c".into()]
            }
        );
        assert_eq!(
            parse("MPUT x"),
            ShellCommand::PutMany {
                resume: false,
                recursive: false,
                preserve: false,
                into: None,
                locals: vec!["x".into()]
            }
        );
        assert!(matches!(
            parse_line("mget").unwrap_err(),
            ParseError::MissingArgument {
                command: "mget",
                ..
            }
        ));
    }

    #[test]
    fn mget_and_mput_take_a_target_folder_as_lftp_does() {
        let into = |line: &str| match parse(line) {
            ShellCommand::GetMany { into, remotes, .. } => (into, remotes),
            ShellCommand::PutMany { into, locals, .. } => (into, locals),
            other => panic!("{other:?}"),
        };
        let expected = (
            Some("logs".to_owned()),
            vec!["a".to_owned(), "b".to_owned()],
        );
        for line in [
            "mget -O logs a b",
            "mget -Ologs a b",
            "mput -rO logs a b",
            "mput -O x -O logs -- a b",
        ] {
            assert_eq!(into(line), expected, "{line}");
        }
        assert!(matches!(
            parse("mget -rpO logs a"),
            ShellCommand::GetMany {
                recursive: true,
                preserve: true,
                into: Some(_),
                ..
            }
        ));
        assert_eq!(
            parse_line("mget -O").unwrap_err(),
            ParseError::MissingArgument {
                command: "mget",
                missing: "DIR",
                usage: "mget [-crp] [-O DIR] REMOTE|PATTERN..."
            }
        );
        let mget = find_command("mget").unwrap();
        assert_eq!(mget.option_words(&["-O", "logs", "a"]), 2);
        assert_eq!(mget.option_words(&["-rOlogs", "a"]), 1);
        assert_eq!(mget.option_words(&["-r", "a", "-p"]), 1);
        assert_eq!(find_command("mkdir").unwrap().option_words(&["-x"]), 0);
        assert!(matches!(
            parse_line("mget -O logs").unwrap_err(),
            ParseError::MissingArgument {
                missing: "a remote file",
                ..
            }
        ));
    }

    #[test]
    fn blank_lines_and_comments_are_not_commands() {
        for line in ["", "   ", "\t", "# comment", "   # indented comment"] {
            assert_eq!(parse_line(line).unwrap(), None, "{line:?}");
        }
    }

    #[test]
    fn bad_lines_give_clear_errors() {
        assert_eq!(
            parse_line("frob x").unwrap_err(),
            ParseError::UnknownCommand("frob".into())
        );
        let missing = parse_line("get").unwrap_err();
        assert!(matches!(
            missing,
            ParseError::MissingArgument { command: "get", .. }
        ));
        assert!(
            missing
                .to_string()
                .contains("usage: get [-crp] REMOTE [LOCAL]"),
            "{missing}"
        );
        assert!(matches!(
            parse_line("pwd extra").unwrap_err(),
            ParseError::TooManyArguments {
                command: "pwd",
                max: 0,
                ..
            }
        ));
        assert!(matches!(
            parse_line("get a b c").unwrap_err(),
            ParseError::TooManyArguments {
                command: "get",
                max: 2,
                ..
            }
        ));
        assert_eq!(
            parse_line("get \"unclosed").unwrap_err(),
            ParseError::UnbalancedQuotes
        );
        assert!(matches!(
            parse_line("share p bob rx").unwrap_err(),
            ParseError::BadRights(_)
        ));
        assert!(matches!(
            parse_line("share p bob ''").unwrap_err(),
            ParseError::BadRights(_)
        ));
        assert!(matches!(
            parse_line("share p bob read,fly").unwrap_err(),
            ParseError::BadRights(_)
        ));
    }

    #[test]
    fn options_come_before_the_arguments_alone_or_combined() {
        let all = ShellCommand::Get {
            resume: true,
            recursive: true,
            preserve: true,
            remote: "docs".into(),
            local: Some("here".into()),
        };
        for line in [
            "get -c -r -p docs here",
            "get -crp docs here",
            "GET -pr -c docs here",
            "retr -rpc -- docs here",
        ] {
            assert_eq!(parse(line), all, "{line}");
        }
        assert_eq!(
            parse("mput -p 'data/*.csv' b"),
            ShellCommand::PutMany {
                resume: false,
                recursive: false,
                preserve: true,
                into: None,
                locals: vec!["data/*.csv".into(), "b".into()]
            }
        );
        assert_eq!(
            parse("rm -f '*.tmp'"),
            ShellCommand::Delete {
                force: true,
                recursive: false,
                paths: vec!["*.tmp".into()]
            }
        );
        // Options stop at the first argument; `-` alone is an argument.
        assert_eq!(parse("get a -r"), get("a", Some("-r")));
        assert_eq!(parse("get - x"), get("-", Some("x")));
        // `--` ends the options: names that start with `-` can be given.
        assert_eq!(parse("get -- -r"), get("-r", None));
        assert_eq!(
            parse("rm -- -f"),
            ShellCommand::Delete {
                force: false,
                recursive: false,
                paths: vec!["-f".into()]
            }
        );
        // Commands without options take such words as arguments, as before.
        assert_eq!(
            parse("mkdir -x"),
            ShellCommand::MakeDir { path: "-x".into() }
        );
    }

    #[test]
    fn unknown_options_and_missing_arguments_name_the_usage() {
        let unknown = parse_line("get -x a").unwrap_err();
        assert_eq!(
            unknown,
            ParseError::UnknownFlag {
                command: "get",
                flag: "x".into(),
                usage: "get [-crp] REMOTE [LOCAL]"
            }
        );
        assert_eq!(
            unknown.to_string(),
            "`get` has no option `-x`: usage: get [-crp] REMOTE [LOCAL]"
        );
        assert!(matches!(
            parse_line("put -rz a").unwrap_err(),
            ParseError::UnknownFlag { command: "put", ref flag, .. } if flag == "z"
        ));
        assert!(matches!(
            parse_line("rm -x y").unwrap_err(),
            ParseError::UnknownFlag { command: "rm", .. }
        ));
        assert!(matches!(
            parse("rm -rf x"),
            ShellCommand::Delete {
                force: true,
                recursive: true,
                ..
            }
        ));
        assert!(matches!(
            parse("mv -f a b"),
            ShellCommand::Rename { force: true, .. }
        ));
        // Options alone are not the arguments a command needs.
        for line in ["get -r", "get -r --", "mget -p", "rm -f"] {
            assert!(
                matches!(
                    parse_line(line).unwrap_err(),
                    ParseError::MissingArgument { .. }
                ),
                "{line}"
            );
        }
        assert!(matches!(
            parse_line("get -r a b c").unwrap_err(),
            ParseError::TooManyArguments {
                command: "get",
                max: 2,
                ..
            }
        ));
        // One-shot words go through the same parser.
        let words: Vec<String> = ["get", "-rp", "dir"].map(String::from).into();
        assert_eq!(parse_words(&words).unwrap(), parse("get -r -p dir"));
    }

    #[test]
    fn every_option_is_in_its_usage_line() {
        for spec in COMMANDS {
            for flag in spec.flags {
                let in_usage = spec
                    .usage
                    .split_whitespace()
                    .any(|word| word.starts_with("[-") && word.contains(flag.letter));
                assert!(
                    in_usage,
                    "{}: -{} not in {}",
                    spec.names[0], flag.letter, spec.usage
                );
                assert!(!flag.help.is_empty());
            }
        }
    }

    #[test]
    fn rights_parse_letters_words_and_all() {
        let all = Rights::ALL;
        assert_eq!(parse_rights("rwcd").unwrap(), all);
        assert_eq!(parse_rights("ALL").unwrap(), all);
        assert_eq!(parse_rights("read, write,create,delete").unwrap(), all);
        assert_eq!(parse_rights("d").unwrap(), Rights::DELETE);
        assert_eq!(parse_rights("read").unwrap(), Rights::READ);
        assert_eq!(parse_rights("rc").unwrap().to_string(), "r-c-");
        assert_eq!(all.to_string(), "rwcd");
    }

    #[test]
    fn argument_kinds_follow_the_table() {
        let get = find_command("RETR").unwrap();
        assert_eq!(get.arg_kind(0), Some(ArgKind::RemotePath));
        assert_eq!(get.arg_kind(1), Some(ArgKind::LocalPath));
        assert_eq!(get.arg_kind(2), None);
        let mput = find_command("mput").unwrap();
        assert_eq!(mput.arg_kind(5), Some(ArgKind::LocalPath));
        let share = find_command("shar").unwrap();
        assert_eq!(share.arg_kind(1), Some(ArgKind::User));
        assert_eq!(share.arg_kind(2), Some(ArgKind::Rights));
        assert!(find_command("put").unwrap().changes_remote_names);
        assert!(!find_command("ls").unwrap().changes_remote_names);
    }

    #[test]
    fn every_command_has_a_parser_arm_and_a_usable_example() {
        for spec in COMMANDS {
            for name in spec.names {
                assert!(find_command(name).is_some());
                assert!(find_command(&name.to_uppercase()).is_some());
            }
            let parsed = parse_line(spec.example);
            assert!(
                matches!(parsed, Ok(Some(_))),
                "example of {}: {parsed:?}",
                spec.names[0]
            );
        }
    }
}
