//! Accounts: the users file, usernames, passwords and bcrypt.
//!
//! The users file (`users.json`) looks like this:
//!
//! ```json
//! { "version": 1,
//!   "users": [ { "name": "alice", "hash": "$2b$12$...", "role": "admin",
//!                "created": 1763700000, "disabled": false } ] }
//! ```
//!
//! Three layers, from the bottom:
//!
//! - [`UserDb`] is the file's content in memory, with the edits the admin tool needs.
//! - [`UsersFile`] (a [`StateFile`] of it) loads it with clear errors and applies
//!   edits with [`StateFile::update`]: one writer at a time (a `flock` shared with the
//!   admin tool), re-reading the file under the lock so that no concurrent change is
//!   lost, then an atomic, durable replacement (mode 0600).
//! - [`Accounts`] is what a server session uses: [`Accounts::authenticate`] and
//!   [`Accounts::register`], with bcrypt on tokio's blocking pool under a semaphore.
//!
//! Inputs are parsed into types that cannot hold bad values: a [`Username`] always
//! matches `[a-z][a-z0-9_-]{2,31}` (so it is safe as a folder name), and a [`Password`]
//! is at most 72 bytes (bcrypt ignores anything beyond), can be neither printed nor
//! serialized, and is zeroed when dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::state_file::{Document, StateFile, StateFileError};

mod policy;
mod service;

pub use policy::{PasswordPolicy, PolicyError, DEFAULT_MIN_PASSWORD_CHARS};
pub use service::{Account, Accounts, Hasher, LoginError, RegisterError};

/// The only users-file format version this code reads and writes.
pub const USERS_FILE_VERSION: u32 = 1;

/// bcrypt uses at most this many bytes of a password; longer ones are refused rather
/// than silently truncated.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// The bcrypt cost used when the configuration names none.
pub const DEFAULT_BCRYPT_COST: u32 = 12;

/// The lowest cost bcrypt accepts (for tests; far too cheap for real accounts).
pub const MIN_BCRYPT_COST: u32 = 4;

/// The highest cost bcrypt accepts.
pub const MAX_BCRYPT_COST: u32 = 31;

/// The shortest and longest usernames allowed.
pub const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=32;

/// A username that matches `[a-z][a-z0-9_-]{2,31}`.
///
/// Holding one proves the name is safe to use as a folder name and in a log line.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

/// Why a string is not a [`Username`]. The offending text is deliberately not kept,
/// since it may be anything a client sent (even a password typed in the wrong field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Shorter than 3 or longer than 32 bytes.
    #[error("a username has 3 to 32 characters")]
    BadLength,
    /// Does not start with a lowercase ASCII letter.
    #[error("a username starts with a lowercase letter (a-z)")]
    BadFirstCharacter,
    /// Contains something other than `a-z`, `0-9`, `_` and `-`.
    #[error("a username has only lowercase letters, digits, '_' and '-'")]
    BadCharacter,
}

impl Username {
    /// Parses a username, refusing anything outside the allow-list.
    ///
    /// # Errors
    ///
    /// - [`UsernameError::BadLength`] outside 3 to 32 bytes;
    /// - [`UsernameError::BadFirstCharacter`] if it does not start with `a-z`;
    /// - [`UsernameError::BadCharacter`] for anything but `a-z`, `0-9`, `_` and `-`.
    pub fn parse(text: &str) -> Result<Self, UsernameError> {
        if !USERNAME_LEN.contains(&text.len()) {
            return Err(UsernameError::BadLength);
        }
        let mut bytes = text.bytes();
        match bytes.next() {
            Some(b'a'..=b'z') => {}
            _ => return Err(UsernameError::BadFirstCharacter),
        }
        if !bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-')) {
            return Err(UsernameError::BadCharacter);
        }
        Ok(Self(text.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Username {
    type Err = UsernameError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl TryFrom<String> for Username {
    type Error = UsernameError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::parse(&text)
    }
}

impl From<Username> for String {
    fn from(name: Username) -> Self {
        name.0
    }
}

impl AsRef<str> for Username {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May act in every home, including deleting there.
    Admin,
    /// May act in their own home and in what others share with them.
    User,
}

impl FromStr for Role {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "admin" => Ok(Self::Admin),
            "user" => Ok(Self::User),
            _ => Err(format!("unknown role '{text}' (expected admin or user)")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Admin => "admin",
            Self::User => "user",
        })
    }
}

/// A password of 1 to 72 bytes.
///
/// It implements neither `Display` nor `Serialize`, and its `Debug` prints
/// `Password(<redacted>)`, so it cannot end up in a log line or a file by accident.
/// Its bytes are zeroed when it is dropped (best effort: copies made by the caller
/// before parsing are out of reach).
pub struct Password(Zeroizing<Vec<u8>>);

/// Why some bytes are not a [`Password`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Zero bytes.
    #[error("the password is empty")]
    Empty,
    /// More than [`MAX_PASSWORD_BYTES`]; bcrypt would silently ignore the rest.
    #[error("the password is longer than 72 bytes")]
    TooLong,
}

impl Password {
    /// Takes ownership of a candidate password. Length is checked before anything
    /// else touches it, so an enormous input costs nothing but this comparison.
    ///
    /// # Errors
    ///
    /// [`PasswordError`] if it is empty or longer than [`MAX_PASSWORD_BYTES`]; the
    /// refused bytes are zeroed too.
    pub fn new(bytes: Vec<u8>) -> Result<Self, PasswordError> {
        let candidate = Self(Zeroizing::new(bytes));
        if candidate.0.is_empty() {
            return Err(PasswordError::Empty);
        }
        if candidate.0.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(candidate)
    }

    /// The secret bytes, for hashing and verification only.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A bcrypt hash as stored in the users file (`$2b$<cost>$<salt+hash>`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// The hash in modular crypt format.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The bcrypt cost recorded in the hash, if it parses.
    pub fn cost(&self) -> Option<u32> {
        self.0.split('$').nth(2).and_then(|cost| cost.parse().ok())
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Hashes are not secrets in the way passwords are, but there is no reason to
        // spread them through debug output either.
        f.write_str("PasswordHash(..)")
    }
}

/// Hashes a password with bcrypt at `cost`, on the calling thread (slow on purpose).
///
/// # Errors
///
/// [`AccountsError::Hash`] if bcrypt refuses `cost` (outside 4..=31) or finds no
/// system randomness for the salt.
pub fn hash_password(password: &Password, cost: u32) -> Result<PasswordHash, AccountsError> {
    // `Password` already holds at most 72 bytes. The non-truncating variants count
    // the NUL terminator bcrypt appends, and so refuse exactly-72-byte passwords;
    // the plain ones use all 72 bytes and drop only that terminator.
    bcrypt::hash(password.expose_secret(), cost)
        .map(PasswordHash)
        .map_err(|e| AccountsError::Hash(e.to_string()))
}

/// Checks a password against a hash, on the calling thread. A malformed hash counts
/// as a mismatch.
pub fn verify_password(password: &Password, hash: &PasswordHash) -> bool {
    // See `hash_password` for why the truncating variant is the right one here.
    bcrypt::verify(password.expose_secret(), hash.as_str()).unwrap_or(false)
}

/// One account in the users file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRecord {
    /// The login name, also the name of the home folder.
    pub name: Username,
    /// The bcrypt hash of the password.
    pub hash: PasswordHash,
    /// What the account may do.
    pub role: Role,
    /// Creation time, in seconds since the Unix epoch (0 if unknown).
    #[serde(default)]
    pub created: u64,
    /// A disabled account cannot log in.
    #[serde(default)]
    pub disabled: bool,
}

/// The on-disk shape of the users file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersFileRepr {
    version: u32,
    users: Vec<UserRecord>,
}

/// The content of the users file: every account, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserDb {
    users: BTreeMap<Username, UserRecord>,
}

impl Document for UserDb {
    const NAME: &'static str = "users file";
    const VERSION: u32 = USERS_FILE_VERSION;
    type Repr = UsersFileRepr;
    type Error = AccountsError;

    fn version(repr: &UsersFileRepr) -> u32 {
        repr.version
    }

    fn from_repr(repr: UsersFileRepr) -> Result<Self, String> {
        let mut users = BTreeMap::new();
        for record in repr.users {
            if users.contains_key(&record.name) {
                return Err(format!("user '{}' appears twice", record.name));
            }
            users.insert(record.name.clone(), record);
        }
        Ok(Self { users })
    }

    fn to_repr(&self) -> UsersFileRepr {
        UsersFileRepr {
            version: USERS_FILE_VERSION,
            users: self.users.values().cloned().collect(),
        }
    }
}

impl UserDb {
    /// The account called `name`, if any.
    pub fn user(&self, name: &Username) -> Option<&UserRecord> {
        self.users.get(name)
    }

    /// Every account, sorted by name.
    pub fn users(&self) -> impl Iterator<Item = &UserRecord> {
        self.users.values()
    }

    /// The number of accounts.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when there is no account.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Adds a new account; refuses to replace an existing one.
    ///
    /// # Errors
    ///
    /// [`AccountsError::UserExists`] if `name` is taken; nothing changes then.
    pub fn add(
        &mut self,
        name: Username,
        hash: PasswordHash,
        role: Role,
    ) -> Result<(), AccountsError> {
        if self.users.contains_key(&name) {
            return Err(AccountsError::UserExists(name));
        }
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0);
        let record = UserRecord {
            name: name.clone(),
            hash,
            role,
            created,
            disabled: false,
        };
        self.users.insert(name, record);
        Ok(())
    }

    /// Removes an account and returns it.
    ///
    /// # Errors
    ///
    /// [`AccountsError::NoSuchUser`] if there is no account `name`.
    pub fn remove(&mut self, name: &Username) -> Result<UserRecord, AccountsError> {
        self.users
            .remove(name)
            .ok_or_else(|| AccountsError::NoSuchUser(name.clone()))
    }

    /// Replaces an account's password hash.
    ///
    /// # Errors
    ///
    /// [`AccountsError::NoSuchUser`] if there is no account `name`.
    pub fn set_hash(&mut self, name: &Username, hash: PasswordHash) -> Result<(), AccountsError> {
        self.user_mut(name)?.hash = hash;
        Ok(())
    }

    /// Changes an account's role.
    ///
    /// # Errors
    ///
    /// [`AccountsError::NoSuchUser`] if there is no account `name`.
    pub fn set_role(&mut self, name: &Username, role: Role) -> Result<(), AccountsError> {
        self.user_mut(name)?.role = role;
        Ok(())
    }

    /// Enables or disables an account.
    ///
    /// # Errors
    ///
    /// [`AccountsError::NoSuchUser`] if there is no account `name`.
    pub fn set_disabled(&mut self, name: &Username, disabled: bool) -> Result<(), AccountsError> {
        self.user_mut(name)?.disabled = disabled;
        Ok(())
    }

    fn user_mut(&mut self, name: &Username) -> Result<&mut UserRecord, AccountsError> {
        self.users
            .get_mut(name)
            .ok_or_else(|| AccountsError::NoSuchUser(name.clone()))
    }
}

/// Errors of the accounts layer.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// The users file could not be read or written.
    #[error("users file {}: {source}", path.display())]
    Io {
        /// The users file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The users file exists but is not a valid users file.
    #[error("users file {} is corrupt: {detail}", path.display())]
    Corrupt {
        /// The users file.
        path: PathBuf,
        /// What is wrong, with a line and column where JSON parsing failed.
        detail: String,
    },
    /// `add` of a name that is taken.
    #[error("user '{0}' already exists")]
    UserExists(Username),
    /// An edit of a name that does not exist.
    #[error("no user '{0}'")]
    NoSuchUser(Username),
    /// bcrypt failed (a bad cost, or no system randomness).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The blocking task running bcrypt or file IO was lost (runtime shutting down).
    #[error("background task failed: {0}")]
    Task(String),
}

impl From<StateFileError> for AccountsError {
    fn from(error: StateFileError) -> Self {
        match error {
            StateFileError::Io { path, source, .. } => Self::Io { path, source },
            StateFileError::Corrupt { path, detail, .. } => Self::Corrupt { path, detail },
        }
    }
}

/// The users file on disk. [`StateFile::load`] and [`StateFile::update`] report
/// [`AccountsError`].
pub type UsersFile = StateFile<UserDb>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_allow_list() {
        for good in [
            "abc",
            "alice",
            "a-b_c9",
            "z23456789012345678901234567890123"[..32].as_ref(),
        ] {
            assert!(Username::parse(good).is_ok(), "{good}");
        }
        let cases = [
            ("ab", UsernameError::BadLength),
            ("", UsernameError::BadLength),
            (
                "a234567890123456789012345678901234",
                UsernameError::BadLength,
            ),
            ("Alice", UsernameError::BadFirstCharacter),
            ("1abc", UsernameError::BadFirstCharacter),
            ("_abc", UsernameError::BadFirstCharacter),
            ("al ice", UsernameError::BadCharacter),
            ("al/ce", UsernameError::BadCharacter),
            ("al..", UsernameError::BadCharacter),
            ("ali\nce", UsernameError::BadCharacter),
            ("alïce", UsernameError::BadCharacter),
            ("alic\0", UsernameError::BadCharacter),
        ];
        for (bad, why) in cases {
            assert_eq!(Username::parse(bad), Err(why), "{bad:?}");
        }
    }

    #[test]
    fn username_deserialization_is_checked() {
        assert!(serde_json::from_str::<Username>("\"../etc\"").is_err());
        assert_eq!(
            serde_json::from_str::<Username>("\"bob\"")
                .unwrap()
                .as_str(),
            "bob"
        );
    }

    #[test]
    fn passwords_are_bounded_and_never_printed() {
        assert_eq!(Password::new(vec![]).unwrap_err(), PasswordError::Empty);
        assert_eq!(
            Password::new(vec![b'x'; 73]).unwrap_err(),
            PasswordError::TooLong
        );
        assert_eq!(
            Password::new(vec![b'x'; 10 << 20]).unwrap_err(),
            PasswordError::TooLong
        );
        let password = Password::new(vec![b's'; 72]).unwrap();
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
    }

    #[test]
    fn hash_and_verify() {
        let password = Password::new(b"correct horse".to_vec()).unwrap();
        let hash = hash_password(&password, MIN_BCRYPT_COST).unwrap();
        assert_eq!(hash.cost(), Some(MIN_BCRYPT_COST));
        assert!(verify_password(&password, &hash));
        let wrong = Password::new(b"correct horsf".to_vec()).unwrap();
        assert!(!verify_password(&wrong, &hash));
        let garbage = PasswordHash("not a hash".into());
        assert!(!verify_password(&password, &garbage));
    }

    #[test]
    fn db_round_trips_and_rejects_duplicates_and_versions() {
        let mut db = UserDb::default();
        let password = Password::new(b"pw".to_vec()).unwrap();
        let hash = hash_password(&password, MIN_BCRYPT_COST).unwrap();
        db.add(Username::parse("alice").unwrap(), hash.clone(), Role::Admin)
            .unwrap();
        db.add(Username::parse("bob").unwrap(), hash, Role::User)
            .unwrap();
        let text = db.to_json();
        assert_eq!(UserDb::from_json(&text).unwrap(), db);

        let mut value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        value["version"] = 2.into();
        let err = UserDb::from_json(value.to_string().as_bytes()).unwrap_err();
        assert!(err.contains("unsupported version 2"), "{err}");

        let mut value: serde_json::Value = serde_json::from_slice(&text).unwrap();
        let first = value["users"][0].clone();
        value["users"].as_array_mut().unwrap().push(first);
        let err = UserDb::from_json(value.to_string().as_bytes()).unwrap_err();
        assert!(err.contains("appears twice"), "{err}");
    }
}
