//! The commands a user types, in the shell, in a batch file or as one-shot arguments.
//!
//! Every original command (LIST, RETR, STOR, PWD, CWD, CDUP, MKD, RMD, DELE, SHAR,
//! UNSH, SHWM, QUIT) works in any case, next to the names sftp users type (`ls`,
//! `get`, `put`, `cd`, ...). Words split like a shell's, so quoted names may hold
//! spaces: `put "my notes.txt" notes.txt`.
//!
//! ```
//! use sfs_client::command::{parse_line, Command};
//!
//! assert_eq!(
//!     parse_line("RETR report.pdf").unwrap(),
//!     Some(Command::Get { remote: "report.pdf".into(), local: None })
//! );
//! assert_eq!(parse_line("  # a comment").unwrap(), None);
//! assert!(parse_line("frobnicate").is_err());
//! ```

pub use sfs_proto::control::Rights;

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// LIST: list a remote folder (the current one by default).
    List {
        /// The folder or file to list.
        path: Option<String>,
    },
    /// CWD: change the remote folder.
    ChangeDir {
        /// The new folder.
        path: String,
    },
    /// CDUP: go to the parent remote folder.
    ChangeDirUp,
    /// PWD: print the remote folder.
    PrintDir,
    /// MKD: make a remote folder.
    MakeDir {
        /// The folder to make.
        path: String,
    },
    /// RMD: remove an empty remote folder.
    RemoveDir {
        /// The folder to remove.
        path: String,
    },
    /// DELE: delete a remote file.
    Delete {
        /// The file to delete.
        path: String,
    },
    /// Rename or move a remote file or folder.
    Rename {
        /// The current name.
        from: String,
        /// The new name.
        to: String,
    },
    /// RETR: download a file.
    Get {
        /// The remote file.
        remote: String,
        /// Where to write it; by default the remote name's last part, in the local folder.
        local: Option<String>,
    },
    /// STOR: upload a file.
    Put {
        /// The local file.
        local: String,
        /// The remote name; by default the local name's last part, in the remote folder.
        remote: Option<String>,
    },
    /// Download several files at once, in parallel, into the local folder.
    GetMany {
        /// The remote files.
        remotes: Vec<String>,
    },
    /// Upload several files at once, in parallel, into the remote folder.
    PutMany {
        /// The local files.
        locals: Vec<String>,
    },
    /// The size of a remote file.
    Size {
        /// The remote file.
        path: String,
    },
    /// The kind, size, time and mode of a remote file or folder.
    Stat {
        /// The remote file or folder.
        path: String,
    },
    /// The SHA-256 digest of a remote file, computed by the server.
    Digest {
        /// The remote file.
        path: String,
    },
    /// SHAR: give another user rights on one of your files or folders.
    Share {
        /// Your file or folder.
        path: String,
        /// Who gets the rights.
        user: String,
        /// Which rights.
        rights: Rights,
    },
    /// UNSH: take back what a share gave.
    Unshare {
        /// The shared file or folder.
        path: String,
        /// Whose share ends.
        user: String,
    },
    /// SHWM: what others have shared with you.
    SharedWithMe,
    /// What you have shared with others.
    SharedByMe,
    /// The association: paths, streams, TLS and bytes moved.
    Status,
    /// Change the local folder.
    LocalChangeDir {
        /// The new local folder.
        path: String,
    },
    /// Print the local folder.
    LocalPrintDir,
    /// List a local folder.
    LocalList {
        /// The folder to list; the current one by default.
        path: Option<String>,
    },
    /// Explain the commands, or one command.
    Help {
        /// The command to explain.
        topic: Option<String>,
    },
    /// QUIT: end the session.
    Quit,
}

/// Parses the rights of a share: letters from `rwcd` (`r`, `rw`, `rwcd`), words
/// (`read,write`), or `all`, into the protocol's [`Rights`] set.
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
    /// The rights of a share are not a combination of r, w, c and d.
    #[error(
        "bad rights `{0}`: use letters from rwcd (e.g. `rw`), words like `read,write`, or `all`"
    )]
    BadRights(String),
}

/// What the help text says about one command; also drives the parser.
#[derive(Debug)]
pub struct CommandHelp {
    /// Every name the command answers to; the first is the one shown.
    pub names: &'static [&'static str],
    /// The usage line.
    pub usage: &'static str,
    /// One sentence on what it does.
    pub summary: &'static str,
    /// An example line.
    pub example: &'static str,
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp { names: &["ls", "list", "dir"], usage: "ls [PATH]", summary: "list a remote folder", example: "ls /shared/alice" },
    CommandHelp { names: &["cd", "cwd"], usage: "cd PATH", summary: "change the remote folder", example: "cd projects" },
    CommandHelp { names: &["cdup"], usage: "cdup", summary: "go to the parent remote folder", example: "cdup" },
    CommandHelp { names: &["pwd"], usage: "pwd", summary: "print the remote folder", example: "pwd" },
    CommandHelp { names: &["mkdir", "mkd"], usage: "mkdir PATH", summary: "make a remote folder", example: "mkdir photos" },
    CommandHelp { names: &["rmdir", "rmd"], usage: "rmdir PATH", summary: "remove an empty remote folder", example: "rmdir old" },
    CommandHelp { names: &["rm", "dele", "delete"], usage: "rm PATH", summary: "delete a remote file", example: "rm draft.txt" },
    CommandHelp { names: &["mv", "rename"], usage: "mv FROM TO", summary: "rename or move a remote file or folder", example: "mv draft.txt final.txt" },
    CommandHelp { names: &["get", "retr"], usage: "get REMOTE [LOCAL]", summary: "download a file (to LOCAL, or to its own name here)", example: "get report.pdf ~/Downloads/report.pdf" },
    CommandHelp { names: &["put", "stor"], usage: "put LOCAL [REMOTE]", summary: "upload a file (to REMOTE, or to its own name there)", example: "put notes.txt backup/notes.txt" },
    CommandHelp { names: &["mget"], usage: "mget REMOTE...", summary: "download several files at once, in parallel, into the local folder", example: "mget a.iso b.iso" },
    CommandHelp { names: &["mput"], usage: "mput LOCAL...", summary: "upload several files at once, in parallel, into the remote folder", example: "mput a.iso b.iso" },
    CommandHelp { names: &["size"], usage: "size PATH", summary: "print a remote file's size in bytes", example: "size movie.mkv" },
    CommandHelp { names: &["stat"], usage: "stat PATH", summary: "show a remote file's kind, size, time and mode", example: "stat movie.mkv" },
    CommandHelp { names: &["digest", "sum"], usage: "digest PATH", summary: "print a remote file's SHA-256, computed by the server", example: "digest movie.mkv" },
    CommandHelp { names: &["share", "shar"], usage: "share PATH USER RIGHTS", summary: "give USER rights on your file or folder: letters from rwcd (read, write, create, delete)", example: "share photos bob r" },
    CommandHelp { names: &["unshare", "unsh"], usage: "unshare PATH USER", summary: "take back a share", example: "unshare photos bob" },
    CommandHelp { names: &["shared", "shwm"], usage: "shared", summary: "list what others have shared with you (under /shared/OWNER)", example: "shared" },
    CommandHelp { names: &["shares", "shared-by-me"], usage: "shares", summary: "list what you have shared with others", example: "shares" },
    CommandHelp { names: &["status"], usage: "status", summary: "show the association: paths, streams, TLS, bytes moved", example: "status" },
    CommandHelp { names: &["lcd"], usage: "lcd PATH", summary: "change the local folder", example: "lcd ~/Downloads" },
    CommandHelp { names: &["lpwd"], usage: "lpwd", summary: "print the local folder", example: "lpwd" },
    CommandHelp { names: &["lls"], usage: "lls [PATH]", summary: "list a local folder", example: "lls" },
    CommandHelp { names: &["help", "?"], usage: "help [COMMAND]", summary: "explain the commands, or one of them", example: "help put" },
    CommandHelp { names: &["quit", "exit", "bye"], usage: "quit", summary: "end the session", example: "quit" },
];

/// Finds a command's help by any of its names, in any case.
pub fn find_command(name: &str) -> Option<&'static CommandHelp> {
    let name = name.to_ascii_lowercase();
    COMMANDS
        .iter()
        .find(|spec| spec.names.contains(&name.as_str()))
}

/// Parses one line. Blank lines and `#` comments give `Ok(None)`.
pub fn parse_line(line: &str) -> Result<Option<Command>, ParseError> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let words = shlex::split(trimmed).ok_or(ParseError::UnbalancedQuotes)?;
    parse_words(&words).map(Some)
}

/// Parses a command already split into words (one-shot arguments from the shell).
pub fn parse_words(words: &[String]) -> Result<Command, ParseError> {
    let (name, args) = words
        .split_first()
        .ok_or_else(|| ParseError::UnknownCommand(String::new()))?;
    let spec = find_command(name).ok_or_else(|| ParseError::UnknownCommand(name.clone()))?;
    let args = Args { spec, args };
    let command = match spec.names[0] {
        "ls" => Command::List {
            path: args.optional(0, 1)?,
        },
        "cd" => Command::ChangeDir {
            path: args.required(0, 1, "a folder")?,
        },
        "cdup" => args.none(Command::ChangeDirUp)?,
        "pwd" => args.none(Command::PrintDir)?,
        "mkdir" => Command::MakeDir {
            path: args.required(0, 1, "a folder")?,
        },
        "rmdir" => Command::RemoveDir {
            path: args.required(0, 1, "a folder")?,
        },
        "rm" => Command::Delete {
            path: args.required(0, 1, "a file")?,
        },
        "mv" => Command::Rename {
            from: args.required(0, 2, "the current name")?,
            to: args.required(1, 2, "the new name")?,
        },
        "get" => Command::Get {
            remote: args.required(0, 2, "a remote file")?,
            local: args.optional(1, 2)?,
        },
        "put" => Command::Put {
            local: args.required(0, 2, "a local file")?,
            remote: args.optional(1, 2)?,
        },
        "mget" => Command::GetMany {
            remotes: args.at_least_one("a remote file")?,
        },
        "mput" => Command::PutMany {
            locals: args.at_least_one("a local file")?,
        },
        "size" => Command::Size {
            path: args.required(0, 1, "a file")?,
        },
        "stat" => Command::Stat {
            path: args.required(0, 1, "a path")?,
        },
        "digest" => Command::Digest {
            path: args.required(0, 1, "a file")?,
        },
        "share" => Command::Share {
            path: args.required(0, 3, "a path")?,
            user: args.required(1, 3, "a user")?,
            rights: parse_rights(&args.required(2, 3, "the rights (rwcd)")?)?,
        },
        "unshare" => Command::Unshare {
            path: args.required(0, 2, "a path")?,
            user: args.required(1, 2, "a user")?,
        },
        "shared" => args.none(Command::SharedWithMe)?,
        "shares" => args.none(Command::SharedByMe)?,
        "status" => args.none(Command::Status)?,
        "lcd" => Command::LocalChangeDir {
            path: args.required(0, 1, "a local folder")?,
        },
        "lpwd" => args.none(Command::LocalPrintDir)?,
        "lls" => Command::LocalList {
            path: args.optional(0, 1)?,
        },
        "help" => Command::Help {
            topic: args.optional(0, 1)?,
        },
        "quit" => args.none(Command::Quit)?,
        other => unreachable!("COMMANDS lists `{other}` but parse_words has no arm for it"),
    };
    Ok(command)
}

/// The arguments of one command, checked against its usage.
struct Args<'a> {
    spec: &'static CommandHelp,
    args: &'a [String],
}

impl Args<'_> {
    fn check_max(&self, max: usize) -> Result<(), ParseError> {
        if self.args.len() > max {
            return Err(ParseError::TooManyArguments {
                command: self.spec.names[0],
                max,
                usage: self.spec.usage,
            });
        }
        Ok(())
    }

    fn none(&self, command: Command) -> Result<Command, ParseError> {
        self.check_max(0)?;
        Ok(command)
    }

    fn optional(&self, index: usize, max: usize) -> Result<Option<String>, ParseError> {
        self.check_max(max)?;
        Ok(self.args.get(index).cloned())
    }

    fn at_least_one(&self, missing: &'static str) -> Result<Vec<String>, ParseError> {
        if self.args.is_empty() {
            return Err(ParseError::MissingArgument {
                command: self.spec.names[0],
                missing,
                usage: self.spec.usage,
            });
        }
        Ok(self.args.to_vec())
    }

    fn required(
        &self,
        index: usize,
        max: usize,
        missing: &'static str,
    ) -> Result<String, ParseError> {
        self.optional(index, max)?
            .ok_or(ParseError::MissingArgument {
                command: self.spec.names[0],
                missing,
                usage: self.spec.usage,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Command {
        parse_line(line).unwrap().unwrap()
    }

    #[test]
    fn original_commands_work_in_any_case() {
        assert_eq!(parse("LIST"), Command::List { path: None });
        assert_eq!(
            parse("list /a"),
            Command::List {
                path: Some("/a".into())
            }
        );
        assert_eq!(parse("Cwd x"), Command::ChangeDir { path: "x".into() });
        assert_eq!(parse("CDUP"), Command::ChangeDirUp);
        assert_eq!(parse("PWD"), Command::PrintDir);
        assert_eq!(parse("MKD d"), Command::MakeDir { path: "d".into() });
        assert_eq!(parse("RMD d"), Command::RemoveDir { path: "d".into() });
        assert_eq!(parse("DELE f"), Command::Delete { path: "f".into() });
        assert_eq!(
            parse("RETR f"),
            Command::Get {
                remote: "f".into(),
                local: None
            }
        );
        assert_eq!(
            parse("STOR local.txt remote.txt"),
            Command::Put {
                local: "local.txt".into(),
                remote: Some("remote.txt".into())
            }
        );
        assert_eq!(
            parse("SHAR f bob rw"),
            Command::Share {
                path: "f".into(),
                user: "bob".into(),
                rights: Rights::READ | Rights::WRITE
            }
        );
        assert_eq!(
            parse("UNSH f bob"),
            Command::Unshare {
                path: "f".into(),
                user: "bob".into()
            }
        );
        assert_eq!(parse("SHWM"), Command::SharedWithMe);
        assert_eq!(parse("QUIT"), Command::Quit);
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
            Command::Put {
                local: "my notes.txt".into(),
                remote: Some("dest dir/n.txt".into())
            }
        );
        assert_eq!(
            parse(r"get a\ b"),
            Command::Get {
                remote: "a b".into(),
                local: None
            }
        );
    }

    #[test]
    fn mget_and_mput_take_several_names() {
        assert_eq!(
            parse("mget a 'b c'"),
            Command::GetMany {
                remotes: vec!["a".into(), "b c".into()]
            }
        );
        assert_eq!(
            parse("MPUT x"),
            Command::PutMany {
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
            missing.to_string().contains("usage: get REMOTE [LOCAL]"),
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
