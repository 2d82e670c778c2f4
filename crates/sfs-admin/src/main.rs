//! `sfs-admin`: manage SFS accounts and certificates (the original `create_users.py`).
//!
//! ```text
//! sfs-admin user add alice --role admin          # prompts for the password (hidden)
//! sfs-admin user add bob --password-env BOB_PW   # or --password-file F
//! echo | sfs-admin user add carol                # no terminal: a random password is printed once
//! sfs-admin user list
//! sfs-admin user passwd bob
//! sfs-admin user role bob admin
//! sfs-admin user disable bob                     # and `enable`
//! sfs-admin user remove bob                      # drops bob's shares, archives the home
//! sfs-admin cert init --san 127.0.0.1 --san 127.0.0.2 --san localhost --out certs/
//! ```
//!
//! Every change to `users.json` (and `shares.json`) goes through the same locked,
//! atomic, durable update the server uses, so running this next to a live server is
//! safe. No account is ever created with a known or default password.

mod cert;
mod message;
mod password;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sfs_state::accounts::{
    hash_password, AccountsError, PasswordPolicy, Role, Username, UsersFile, DEFAULT_BCRYPT_COST,
    DEFAULT_MIN_PASSWORD_CHARS,
};
use sfs_state::shares::SharesFile;
use sfs_state::time::format_timestamp;

use crate::password::PasswordSource;

/// Manage SFS accounts (users.json) and the server's certificates.
#[derive(Debug, Parser)]
#[command(name = "sfs-admin", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add, remove, list and change accounts.
    User {
        #[command(flatten)]
        files: UserFiles,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Create certificates.
    Cert {
        #[command(subcommand)]
        command: CertCommand,
    },
}

#[derive(Debug, clap::Args)]
struct UserFiles {
    /// The accounts file.
    #[arg(long, global = true, default_value = "users.json", value_name = "FILE")]
    users: PathBuf,
    /// The shares file (cleaned when an account is removed).
    #[arg(
        long,
        global = true,
        default_value = "shares.json",
        value_name = "FILE"
    )]
    shares: PathBuf,
    /// The folder holding every home (where a removed account's home is archived).
    #[arg(
        long,
        global = true,
        default_value = "server_files",
        value_name = "DIR"
    )]
    root: PathBuf,
    /// bcrypt cost for new password hashes (4 to 31).
    #[arg(long, global = true, default_value_t = DEFAULT_BCRYPT_COST,
          value_parser = clap::value_parser!(u32).range(4..=31))]
    bcrypt_cost: u32,
    /// The shortest new password accepted, in characters (the server's
    /// `min_password_chars`; NIST SP 800-63B suggests at least 8).
    #[arg(long, global = true, default_value_t = DEFAULT_MIN_PASSWORD_CHARS as u64,
          value_name = "N", value_parser = clap::value_parser!(u64).range(1..=72))]
    min_password_chars: u64,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account.
    Add {
        /// Login name: 3 to 32 of a-z, 0-9, '_' and '-', starting with a letter.
        name: String,
        /// Role of the new account.
        #[arg(long, default_value = "user", value_parser = parse_role)]
        role: Role,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Delete an account, every share by or to it, and archive its home.
    ///
    /// The home folder is moved to `<root>/.removed/<name>-<unix seconds>/`, where
    /// no user can reach it and from where an admin may restore or delete it. A
    /// later account of the same name starts with an empty home and no shares. A
    /// running server applies the removal within a second (at once on SIGHUP): the
    /// user's sessions are closed at their next command.
    Remove {
        /// Login name.
        name: String,
    },
    /// Show every account.
    List,
    /// Set a new password.
    Passwd {
        /// Login name.
        name: String,
        #[command(flatten)]
        password: PasswordSource,
    },
    /// Set the role (admin or user).
    Role {
        /// Login name.
        name: String,
        /// The new role.
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Stop an account from logging in.
    Disable {
        /// Login name.
        name: String,
    },
    /// Allow a disabled account to log in again.
    Enable {
        /// Login name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Create a CA and a server certificate signed by it, with every server
    /// address and name as a SAN.
    Init(cert::InitArgs),
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sfs-admin: error: {}", message::one_line(&error));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::User { files, command } => run_user(&files, command),
        Command::Cert {
            command: CertCommand::Init(args),
        } => cert::init(&args),
    }
}

fn parse_name(text: &str) -> anyhow::Result<Username> {
    Username::parse(text).with_context(|| format!("invalid username '{}'", text.escape_debug()))
}

/// An accounts error as one line saying what to do: a missing or existing name
/// points at the command that helps; anything else is said as it is.
fn explain(error: AccountsError, users: &std::path::Path) -> anyhow::Error {
    match error {
        AccountsError::NoSuchUser(name) => anyhow::anyhow!(
            "no user '{name}' in {} (see sfs-admin user list)",
            users.display()
        ),
        AccountsError::UserExists(name) => anyhow::anyhow!(
            "user '{name}' already exists in {} (sfs-admin user passwd {name} sets a new password)",
            users.display()
        ),
        other => other.into(),
    }
}

fn run_user(files: &UserFiles, command: UserCommand) -> anyhow::Result<()> {
    let users = UsersFile::new(&files.users);
    let policy =
        PasswordPolicy::new(usize::try_from(files.min_password_chars).unwrap_or(usize::MAX));
    match command {
        UserCommand::Add {
            name,
            role,
            password,
        } => {
            let name = parse_name(&name)?;
            // Fail early, before asking for a password nobody will use.
            if users.load()?.user(&name).is_some() {
                return Err(explain(AccountsError::UserExists(name), &files.users));
            }
            let chosen = password.obtain(&name, policy)?;
            let hash = hash_password(&chosen.password, files.bcrypt_cost)?;
            users
                .update(|db| db.add(name.clone(), hash, role))
                .map_err(|e| explain(e, &files.users))?;
            println!("added {role} '{name}' to {}", files.users.display());
            chosen.announce(&name);
        }
        UserCommand::Remove { name } => {
            let name = parse_name(&name)?;
            users
                .update(|db| db.remove(&name))
                .map_err(|e| explain(e, &files.users))?;
            // A later account of the same name must not inherit these shares.
            let dropped = SharesFile::new(&files.shares)
                .update(|shares| Ok(shares.forget_user(&name)))
                .context("removing the user's shares")?;
            let archived =
                sfs_state::homes::archive_home(&files.root, &name).with_context(|| {
                    format!(
                        "archiving the home of '{name}' under {}",
                        files.root.display()
                    )
                })?;
            println!("removed '{name}' ({dropped} share(s) dropped)");
            match archived {
                Some(place) => println!("home archived to {}", place.display()),
                None => println!("no home folder under {}", files.root.display()),
            }
        }
        UserCommand::List => {
            let db = users.load()?;
            if db.is_empty() {
                println!("no accounts in {}", files.users.display());
            }
            for record in db.users() {
                let created = if record.created == 0 {
                    "-".to_string()
                } else {
                    let time =
                        std::time::UNIX_EPOCH + std::time::Duration::from_secs(record.created);
                    format_timestamp(time).get(..10).unwrap_or("-").to_string()
                };
                let state = if record.disabled {
                    "disabled"
                } else {
                    "enabled"
                };
                println!("{:<32} {:<5} {created} {state}", record.name, record.role);
            }
        }
        UserCommand::Passwd { name, password } => {
            let name = parse_name(&name)?;
            if users.load()?.user(&name).is_none() {
                return Err(explain(AccountsError::NoSuchUser(name), &files.users));
            }
            let chosen = password.obtain(&name, policy)?;
            let hash = hash_password(&chosen.password, files.bcrypt_cost)?;
            users
                .update(|db| db.set_hash(&name, hash))
                .map_err(|e| explain(e, &files.users))?;
            println!("password of '{name}' changed");
            chosen.announce(&name);
        }
        UserCommand::Role { name, role } => {
            let name = parse_name(&name)?;
            users
                .update(|db| db.set_role(&name, role))
                .map_err(|e| explain(e, &files.users))?;
            println!("'{name}' is now {role}");
        }
        UserCommand::Disable { name } => {
            let name = parse_name(&name)?;
            users
                .update(|db| db.set_disabled(&name, true))
                .map_err(|e| explain(e, &files.users))?;
            println!("'{name}' is disabled");
        }
        UserCommand::Enable { name } => {
            let name = parse_name(&name)?;
            users
                .update(|db| db.set_disabled(&name, false))
                .map_err(|e| explain(e, &files.users))?;
            println!("'{name}' is enabled");
        }
    }
    Ok(())
}
