//! The password policy for new passwords: a minimum length, nothing else.
//!
//! NIST SP 800-63B (section 5.1.1.2) asks for at least 8 characters in a password the
//! user chooses, and advises against composition rules (mixes of digits, cases and
//! symbols), so this policy has a length floor and no such rule. The ceiling is
//! bcrypt's 72 bytes, which [`Password::new`] already enforces. The policy applies
//! where a password is set (self-registration, `sfs-admin user add` and `passwd`),
//! never at login: an account created before a stricter policy keeps working.

use super::{Password, MAX_PASSWORD_BYTES};

/// The default minimum length, in characters (NIST SP 800-63B's floor).
pub const DEFAULT_MIN_PASSWORD_CHARS: usize = 8;

/// What a new password must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_chars: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: DEFAULT_MIN_PASSWORD_CHARS,
        }
    }
}

/// Why a new password does not satisfy the [`PasswordPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Fewer characters than the minimum.
    #[error("the password is too short: use at least {min_chars} characters")]
    TooShort {
        /// The policy's minimum, in characters.
        min_chars: usize,
    },
}

impl PasswordPolicy {
    /// A policy asking for at least `min_chars` characters. Zero is taken as one
    /// (a password is never empty), and a minimum over [`MAX_PASSWORD_BYTES`] as
    /// that maximum, since no password could satisfy more.
    pub fn new(min_chars: usize) -> Self {
        Self {
            min_chars: min_chars.clamp(1, MAX_PASSWORD_BYTES),
        }
    }

    /// The minimum length, in characters.
    pub fn min_chars(&self) -> usize {
        self.min_chars
    }

    /// Checks a new password. Characters are Unicode scalar values when the
    /// password is UTF-8 (as NIST counts them), bytes otherwise.
    ///
    /// # Errors
    ///
    /// [`PolicyError::TooShort`] below the minimum.
    pub fn check(&self, password: &Password) -> Result<(), PolicyError> {
        let bytes = password.expose_secret();
        let chars = std::str::from_utf8(bytes).map_or(bytes.len(), |text| text.chars().count());
        if chars < self.min_chars {
            return Err(PolicyError::TooShort {
                min_chars: self.min_chars,
            });
        }
        Ok(())
    }

    /// The whole rule in one line, for a client that sent a password the rule
    /// refuses (too short, empty or too long): "passwords are 8 characters to 72
    /// bytes long".
    pub fn rule(&self) -> String {
        format!(
            "passwords are {} characters to {MAX_PASSWORD_BYTES} bytes long",
            self.min_chars
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(text: &str) -> Password {
        Password::new(text.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn the_default_asks_for_eight_characters() {
        let policy = PasswordPolicy::default();
        assert_eq!(
            policy.check(&password("1234567")),
            Err(PolicyError::TooShort { min_chars: 8 })
        );
        assert_eq!(policy.check(&password("12345678")), Ok(()));
        assert_eq!(
            PolicyError::TooShort { min_chars: 8 }.to_string(),
            "the password is too short: use at least 8 characters"
        );
        assert_eq!(policy.rule(), "passwords are 8 characters to 72 bytes long");
    }

    #[test]
    fn characters_not_bytes_are_counted_and_the_minimum_is_clamped() {
        // Four characters, twelve bytes.
        let policy = PasswordPolicy::new(5);
        assert!(policy.check(&password("ééé€")).is_err());
        assert_eq!(PasswordPolicy::new(4).check(&password("ééé€")), Ok(()));
        assert_eq!(PasswordPolicy::new(0).min_chars(), 1);
        assert_eq!(PasswordPolicy::new(1000).min_chars(), 72);
        // Non-UTF-8 bytes count one each.
        let raw = Password::new(vec![0xff; 8]).unwrap();
        assert_eq!(PasswordPolicy::default().check(&raw), Ok(()));
    }
}
