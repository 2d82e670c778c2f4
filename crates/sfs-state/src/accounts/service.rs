//! The account service a server session uses: bcrypt on tokio's blocking pool under
//! a semaphore, login with uniform failures, and self-registration.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::{
    hash_password, verify_password, AccountsError, Password, PasswordHash, Role, UserDb, Username,
    UsersFile, MAX_BCRYPT_COST, MIN_BCRYPT_COST,
};
use crate::live::{Live, DEFAULT_RELOAD_INTERVAL};

/// Runs bcrypt on tokio's blocking pool, at most `max_concurrent` at a time.
///
/// bcrypt at cost 12 takes a quarter of a second of CPU. Unbounded, a burst of logins
/// would fill the blocking pool and starve file IO; the semaphore makes the burst wait
/// its turn instead.
#[derive(Debug, Clone)]
pub struct Hasher {
    cost: u32,
    permits: Arc<Semaphore>,
}

impl Hasher {
    /// A hasher at `cost` (clamped to bcrypt's 4..=31) running at most
    /// `max_concurrent` (at least 1) hashes at once.
    pub fn new(cost: u32, max_concurrent: usize) -> Self {
        Self {
            cost: cost.clamp(MIN_BCRYPT_COST, MAX_BCRYPT_COST),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        }
    }

    /// The bcrypt cost for new hashes.
    pub fn cost(&self) -> u32 {
        self.cost
    }

    /// Hashes a password for storage.
    ///
    /// # Errors
    ///
    /// - [`AccountsError::Hash`] if bcrypt fails;
    /// - [`AccountsError::Task`] if the blocking pool is gone (runtime shutting down).
    ///
    /// # Cancel safety
    ///
    /// Cancellation-safe: nothing is stored. A bcrypt job already started finishes
    /// on the blocking pool, holding its permit, and its result is dropped.
    pub async fn hash(&self, password: Password) -> Result<PasswordHash, AccountsError> {
        let cost = self.cost;
        self.run(move || hash_password(&password, cost)).await?
    }

    /// Checks a password against a hash. A malformed hash is a mismatch, not an error.
    ///
    /// # Errors
    ///
    /// [`AccountsError::Task`] if the blocking pool is gone (runtime shutting down).
    ///
    /// # Cancel safety
    ///
    /// Cancellation-safe: as [`Hasher::hash`].
    pub async fn verify(
        &self,
        password: Password,
        hash: PasswordHash,
    ) -> Result<bool, AccountsError> {
        self.run(move || verify_password(&password, &hash)).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AccountsError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| AccountsError::Task(e.to_string()))?;
        // The permit moves into the job: if the caller is cancelled (a client
        // disconnecting mid-login), the job still holds it until bcrypt finishes, so
        // cancelled logins cannot push the pool past the bound.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| AccountsError::Task(e.to_string()))
    }
}

/// A logged-in (or freshly registered) account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The login name.
    pub name: Username,
    /// What the account may do.
    pub role: Role,
}

impl Account {
    /// True for administrators.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Wrong name or password, or a disabled account. One variant for all of them, so
    /// the reply cannot tell a client which names exist.
    #[error("login incorrect")]
    Rejected,
    /// The server could not check (for example the users file became unreadable).
    #[error(transparent)]
    Unavailable(#[from] AccountsError),
}

/// Why a self-registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// Someone already has that name (perhaps a registration a moment earlier).
    #[error("that username is taken")]
    Taken,
    /// The server could not complete the registration.
    #[error(transparent)]
    Unavailable(AccountsError),
}

/// The account service used by server sessions.
///
/// It owns the server's view of `users.json` (a [`Live`] copy, so edits by the admin
/// tool are seen within the reload interval) and the dummy hashes that make an
/// unknown name cost as much as a known one.
#[derive(Debug)]
pub struct Accounts {
    users: Arc<Live<UserDb>>,
    hasher: Hasher,
    /// Verified against when the name is unknown, so that case costs one bcrypt
    /// too, at the cost of the median stored hash: one dummy per cost seen.
    dummy_hashes: Mutex<BTreeMap<u32, PasswordHash>>,
}

/// The password behind every dummy hash (never a real account's).
const DUMMY_PASSWORD: &[u8] = b"sfs-dummy-password-for-unknown-users";

impl Accounts {
    /// Opens the users file (checking now that it loads) and prepares the dummy hash
    /// at the cost of the median stored hash. Edits made to the file by others are
    /// seen within [`DEFAULT_RELOAD_INTERVAL`].
    ///
    /// This runs one bcrypt on the calling thread: call it at startup, not inside a
    /// request.
    ///
    /// # Errors
    ///
    /// The users file cannot be read or is corrupt, or bcrypt fails.
    pub fn open(file: UsersFile, hasher: Hasher) -> Result<Self, AccountsError> {
        Self::open_with_interval(file, hasher, DEFAULT_RELOAD_INTERVAL)
    }

    /// [`open`](Self::open), looking for edits by others at most once per
    /// `interval` (zero: at every lookup).
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_with_interval(
        file: UsersFile,
        hasher: Hasher,
        interval: Duration,
    ) -> Result<Self, AccountsError> {
        let users = Arc::new(Live::open(file, interval)?);
        let accounts = Self {
            users,
            hasher,
            dummy_hashes: Mutex::new(BTreeMap::new()),
        };
        let cost = accounts.dummy_cost(&accounts.users.cached());
        accounts.dummy_hash(cost)?;
        Ok(accounts)
    }

    /// The users file behind this service.
    pub fn file(&self) -> &UsersFile {
        self.users.file()
    }

    /// The accounts as they are now (reloaded first if the file changed).
    ///
    /// # Errors
    ///
    /// The file changed and cannot be read or is corrupt.
    pub fn users(&self) -> Result<Arc<UserDb>, AccountsError> {
        self.users.current()
    }

    /// Looks at the users file now, reloading it if it changed (SIGHUP).
    ///
    /// # Errors
    ///
    /// The file cannot be read or is corrupt; the accounts in memory stay as they were.
    pub fn reload(&self) -> Result<(), AccountsError> {
        self.users.reload().map(drop)
    }

    /// The account `name` as it is now: `None` if it was removed or disabled. Every
    /// command of a logged-in session asks this, so that an admin's change applies
    /// at the session's next command.
    ///
    /// # Errors
    ///
    /// The users file changed and cannot be read or is corrupt.
    pub fn account(&self, name: &Username) -> Result<Option<Account>, AccountsError> {
        Ok(self
            .users()?
            .user(name)
            .filter(|record| !record.disabled)
            .map(|record| Account {
                name: record.name.clone(),
                role: record.role,
            }))
    }

    /// The bcrypt cost of the dummy hash for `db`: the median cost of the stored
    /// hashes (the configured cost when there are none), so an unknown name takes
    /// as long as a typical known one even when hashes of several costs are stored.
    pub fn dummy_cost(&self, db: &UserDb) -> u32 {
        let mut costs: Vec<u32> = db.users().filter_map(|r| r.hash.cost()).collect();
        costs.sort_unstable();
        costs
            .get(costs.len() / 2)
            .copied()
            .unwrap_or(self.hasher.cost())
            .clamp(MIN_BCRYPT_COST, MAX_BCRYPT_COST)
    }

    /// The dummy hash at `cost`, made (one bcrypt on the calling thread) the first
    /// time that cost is asked for.
    fn dummy_hash(&self, cost: u32) -> Result<PasswordHash, AccountsError> {
        let mut dummies = self
            .dummy_hashes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(hash) = dummies.get(&cost) {
            return Ok(hash.clone());
        }
        let dummy = Password::new(DUMMY_PASSWORD.to_vec())
            .map_err(|e| AccountsError::Hash(e.to_string()))?;
        let hash = hash_password(&dummy, cost)?;
        dummies.insert(cost, hash.clone());
        Ok(hash)
    }

    /// The dummy hash for the accounts as they are, made on the blocking pool if
    /// this cost is new.
    async fn current_dummy(&self, db: &UserDb) -> Result<PasswordHash, AccountsError> {
        let cost = self.dummy_cost(db);
        let known = self
            .dummy_hashes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&cost)
            .cloned();
        if let Some(hash) = known {
            return Ok(hash);
        }
        let dummy = Password::new(DUMMY_PASSWORD.to_vec())
            .map_err(|e| AccountsError::Hash(e.to_string()))?;
        let hash = self
            .hasher
            .run(move || hash_password(&dummy, cost))
            .await??;
        self.dummy_hashes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(cost, hash.clone());
        Ok(hash)
    }

    /// Checks a login. Every failure, whether the name is malformed, unknown or
    /// disabled, or the password is wrong, runs one bcrypt verification and returns
    /// [`LoginError::Rejected`], so neither the reply nor its timing tells them apart.
    ///
    /// When the stored hash has another cost than the configured one, a successful
    /// login re-hashes the password at the configured cost (costing one more bcrypt,
    /// once). With the dummy hash at the median stored cost (see
    /// [`dummy_cost`](Self::dummy_cost)), this keeps an unknown name taking as long
    /// as a known one.
    ///
    /// # Errors
    ///
    /// - [`LoginError::Rejected`] for a malformed, unknown or disabled name, or a
    ///   wrong password;
    /// - [`LoginError::Unavailable`] if the users file cannot be read or is corrupt,
    ///   or bcrypt or the blocking pool fails. A failed re-hash is only logged.
    ///
    /// # Cancel safety
    ///
    /// Cancellation-safe: no one is logged in and nothing is lost. A bcrypt job
    /// already started finishes on the blocking pool; a re-hash already being
    /// stored may still be stored, which only changes the hash's cost.
    pub async fn authenticate(
        &self,
        name: &str,
        password: Password,
    ) -> Result<Account, LoginError> {
        // A login costs a bcrypt anyway: look at the file now rather than within
        // the reload interval, so an account disabled a moment ago cannot log in.
        let db = self.users.reload()?;
        let record = Username::parse(name)
            .ok()
            .and_then(|name| db.user(&name).cloned());
        let hash = match &record {
            Some(record) => record.hash.clone(),
            None => self.current_dummy(&db).await?,
        };
        let cost = self.hasher.cost();
        let stale_cost = record.as_ref().is_some_and(|r| r.hash.cost() != Some(cost));
        let stored_hash = hash.clone();
        let (matches, upgraded) = self
            .hasher
            .run(move || {
                let matches = verify_password(&password, &hash);
                let upgraded = (matches && stale_cost)
                    .then(|| hash_password(&password, cost).ok())
                    .flatten();
                (matches, upgraded)
            })
            .await?;
        let record = match record {
            Some(record) if matches && !record.disabled => record,
            _ => return Err(LoginError::Rejected),
        };
        if let Some(new_hash) = upgraded {
            self.replace_hash_if_unchanged(&record.name, stored_hash, new_hash)
                .await;
        }
        Ok(Account {
            name: record.name,
            role: record.role,
        })
    }

    /// Like [`authenticate`](Self::authenticate), for password bytes straight from
    /// the wire: bytes that cannot be a password (empty, over 72) are rejected after
    /// the same bcrypt work as any other failure.
    ///
    /// # Errors
    ///
    /// As [`authenticate`](Self::authenticate); bytes that cannot be a password give
    /// [`LoginError::Rejected`].
    ///
    /// # Cancel safety
    ///
    /// As [`authenticate`](Self::authenticate).
    pub async fn authenticate_bytes(
        &self,
        name: &str,
        password: Vec<u8>,
    ) -> Result<Account, LoginError> {
        match Password::new(password) {
            Ok(password) => self.authenticate(name, password).await,
            Err(_) => {
                // Spend the time a real check takes, then refuse.
                let filler =
                    Password::new(b"-".to_vec()).map_err(|e| AccountsError::Hash(e.to_string()))?;
                let db = self.users()?;
                let dummy = self.current_dummy(&db).await?;
                self.hasher.verify(filler, dummy).await?;
                Err(LoginError::Rejected)
            }
        }
    }

    /// Stores a re-hashed password unless the account changed meanwhile (a
    /// `passwd` from the admin tool must win). Failure only costs the upgrade.
    async fn replace_hash_if_unchanged(
        &self,
        name: &Username,
        old_hash: PasswordHash,
        new_hash: PasswordHash,
    ) {
        let users = self.users.clone();
        let name = name.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            users.update(|db| {
                if db.user(&name).is_some_and(|r| r.hash == old_hash) {
                    db.set_hash(&name, new_hash)?;
                }
                Ok(())
            })
        })
        .await;
        if !matches!(outcome, Ok(Ok(()))) {
            log::warn!("could not store a re-hashed password at the configured cost");
        }
    }

    /// Creates a new ordinary account. It never grants admin: there is no parameter
    /// for the role. Of several concurrent registrations of one name exactly one wins;
    /// registrations of different names are all kept. The caller then creates the
    /// user's home and logs the user in.
    ///
    /// # Errors
    ///
    /// - [`RegisterError::Taken`] if the name exists, perhaps registered a moment ago;
    /// - [`RegisterError::Unavailable`] if bcrypt, the blocking pool, or reading or
    ///   writing the users file fails (the file then keeps its old content).
    ///
    /// # Cancel safety
    ///
    /// Not cancellation-safe: once the password is hashed, the users file is written
    /// on the blocking pool, which runs to the end. A call dropped then may still
    /// create the account without the caller learning of it (the name is then taken
    /// and the password is the one given).
    pub async fn register(
        &self,
        name: Username,
        password: Password,
    ) -> Result<Account, RegisterError> {
        let hash = self
            .hasher
            .hash(password)
            .await
            .map_err(RegisterError::Unavailable)?;
        let users = self.users.clone();
        let new_name = name.clone();
        let added = tokio::task::spawn_blocking(move || {
            users.update(move |db| db.add(new_name, hash, Role::User))
        })
        .await
        .map_err(|e| RegisterError::Unavailable(AccountsError::Task(e.to_string())))?;
        match added {
            Ok(()) => Ok(Account {
                name,
                role: Role::User,
            }),
            Err(AccountsError::UserExists(_)) => Err(RegisterError::Taken),
            Err(e) => Err(RegisterError::Unavailable(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hasher_bounds_how_many_jobs_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hasher = Hasher::new(MIN_BCRYPT_COST, 2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs: Vec<_> = (0..12)
            .map(|_| {
                let hasher = hasher.clone();
                let running = running.clone();
                let most = most.clone();
                tokio::spawn(async move {
                    hasher
                        .run(move || {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(20));
                            running.fetch_sub(1, Ordering::SeqCst);
                        })
                        .await
                })
            })
            .collect();
        for job in jobs {
            job.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }
}
