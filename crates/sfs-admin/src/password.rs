//! Where a new password comes from: a file, an environment variable, a hidden
//! prompt, or (with no terminal to prompt on) a random one printed once.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::{bail, Context};
use ring::rand::{SecureRandom, SystemRandom};
use sfs_state::accounts::{Password, PasswordError, PasswordPolicy, Username};
use zeroize::Zeroizing;

/// 64 symbols, so each random byte maps to one without bias (256 = 4 * 64).
const ALPHABET: &[u8; 64] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789-_.+%@=";

/// Length of generated passwords: 20 symbols of 6 bits is 120 bits.
const GENERATED_LEN: usize = 20;

/// How to obtain the password.
#[derive(Debug, Clone, clap::Args)]
#[group(multiple = false)]
pub struct PasswordSource {
    /// Read the password from this file (one trailing newline is ignored).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Read the password from this environment variable.
    #[arg(long, value_name = "VAR")]
    password_env: Option<String>,
    /// Generate a random password and print it once.
    #[arg(long)]
    generate: bool,
}

/// A password ready to hash, and whether it must be shown to the operator.
pub struct Chosen {
    /// The password.
    pub password: Password,
    /// The text to print once, for generated passwords; zeroed when dropped.
    generated: Option<Zeroizing<String>>,
}

impl Chosen {
    /// Prints a generated password (once, on standard output); nothing otherwise.
    pub fn announce(&self, name: &Username) {
        if let Some(text) = self.generated.as_deref() {
            println!("generated password for '{name}': {text}");
            println!("(shown only now: pass it on securely)");
        }
    }
}

impl PasswordSource {
    /// Gets the password from the chosen source. With none chosen it prompts on
    /// the terminal, or generates one when standard input is not a terminal, so a
    /// script can never create an account with an empty or default password.
    ///
    /// # Errors
    ///
    /// The source cannot be read, or the password is empty, longer than 72 bytes
    /// or shorter than `policy` allows (one line saying what to choose instead).
    pub fn obtain(&self, name: &Username, policy: PasswordPolicy) -> anyhow::Result<Chosen> {
        let given = if let Some(path) = &self.password_file {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the password file {}", path.display()))?;
            strip_newline(bytes)
        } else if let Some(var) = &self.password_env {
            std::env::var_os(var)
                .with_context(|| {
                    format!("environment variable {var} is not set (export it, or use --password-file FILE)")
                })?
                .into_encoded_bytes()
        } else if self.generate || !std::io::stdin().is_terminal() {
            return generate();
        } else {
            prompt(name)?
        };
        let password = Password::new(given).map_err(|error| match error {
            PasswordError::Empty => anyhow::anyhow!(
                "the password is empty: use at least {} characters",
                policy.min_chars()
            ),
            PasswordError::TooLong => {
                anyhow::anyhow!("the password is longer than 72 bytes: use a shorter one")
            }
        })?;
        policy.check(&password)?;
        Ok(Chosen {
            password,
            generated: None,
        })
    }
}

fn strip_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
    bytes
}

fn prompt(name: &Username) -> anyhow::Result<Vec<u8>> {
    // Both copies are zeroed when dropped; the first moves into the password,
    // which zeroes it in turn.
    let first = Zeroizing::new(
        rpassword::prompt_password(format!("new password for {name}: "))
            .context("reading the password")?,
    );
    let second =
        Zeroizing::new(rpassword::prompt_password("again: ").context("reading the password")?);
    if *first != *second {
        bail!("the passwords differ");
    }
    Ok(first.as_bytes().to_vec())
}

fn generate() -> anyhow::Result<Chosen> {
    let mut random = Zeroizing::new([0u8; GENERATED_LEN]);
    SystemRandom::new()
        .fill(random.as_mut())
        .map_err(|_| anyhow::anyhow!("no system randomness"))?;
    let text: Zeroizing<String> = Zeroizing::new(
        random
            .iter()
            .map(|byte| char::from(ALPHABET[usize::from(byte % 64)]))
            .collect(),
    );
    let password = Password::new(text.as_bytes().to_vec()).context("generated password")?;
    Ok(Chosen {
        password,
        generated: Some(text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_random_and_distinct() {
        let a = generate().unwrap().generated.unwrap().to_string();
        let b = generate().unwrap().generated.unwrap().to_string();
        assert_eq!(a.len(), GENERATED_LEN);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
    }

    #[test]
    fn one_trailing_newline_is_stripped() {
        assert_eq!(strip_newline(b"pw\n".to_vec()), b"pw");
        assert_eq!(strip_newline(b"pw\r\n".to_vec()), b"pw");
        assert_eq!(strip_newline(b"pw\n\n".to_vec()), b"pw\n");
        assert_eq!(strip_newline(b"pw".to_vec()), b"pw");
    }
}
