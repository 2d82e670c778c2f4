//! The account service a server session uses: bcrypt on tokio's blocking pool under
//! a semaphore, login with uniform failures, and self-registration.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::{
    hash_password, verify_password, AccountsError, Password, PasswordHash, Role, Username,
    UsersFile, MAX_BCRYPT_COST, MIN_BCRYPT_COST,
};

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
    pub async fn hash(&self, password: Password) -> Result<PasswordHash, AccountsError> {
        let cost = self.cost;
        self.run(move || hash_password(&password, cost)).await?
    }

    /// Checks a password against a hash.
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
#[derive(Debug)]
pub struct Accounts {
    file: UsersFile,
    hasher: Hasher,
    /// Verified against when the name is unknown, so that case costs one bcrypt too.
    dummy_hash: PasswordHash,
}

impl Accounts {
    /// Opens the users file (checking now that it loads) and prepares the dummy hash.
    ///
    /// This runs one bcrypt at the hasher's cost on the calling thread: call it at
    /// startup, not inside a request.
    pub fn open(file: UsersFile, hasher: Hasher) -> Result<Self, AccountsError> {
        file.load()?;
        let dummy = Password::new(b"sfs-dummy-password-for-unknown-users".to_vec())
            .map_err(|e| AccountsError::Hash(e.to_string()))?;
        let dummy_hash = hash_password(&dummy, hasher.cost())?;
        Ok(Self {
            file,
            hasher,
            dummy_hash,
        })
    }

    /// The users file behind this service.
    pub fn file(&self) -> &UsersFile {
        &self.file
    }

    /// Checks a login. Every failure, whether the name is malformed, unknown or
    /// disabled, or the password is wrong, runs one bcrypt verification and returns
    /// [`LoginError::Rejected`], so neither the reply nor its timing tells them apart.
    ///
    /// When the stored hash has another cost than the configured one, a successful
    /// login re-hashes the password at the configured cost (costing one more bcrypt,
    /// once). This keeps every hash at the dummy hash's cost, which is what makes an
    /// unknown name take as long as a known one.
    pub async fn authenticate(
        &self,
        name: &str,
        password: Password,
    ) -> Result<Account, LoginError> {
        let file = self.file.clone();
        let db = tokio::task::spawn_blocking(move || file.load())
            .await
            .map_err(|e| AccountsError::Task(e.to_string()))??;
        let record = Username::parse(name)
            .ok()
            .and_then(|name| db.user(&name).cloned());
        let hash = match &record {
            Some(record) => record.hash.clone(),
            None => self.dummy_hash.clone(),
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
                self.hasher.verify(filler, self.dummy_hash.clone()).await?;
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
        let file = self.file.clone();
        let name = name.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            file.update(|db| {
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
        let file = self.file.clone();
        let new_name = name.clone();
        let added = tokio::task::spawn_blocking(move || {
            file.update(move |db| db.add(new_name, hash, Role::User))
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
