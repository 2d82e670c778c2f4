//! What every connection of one server shares: accounts, homes, shares, the log,
//! the login throttle, TLS, and the per-session settings.

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sfs_proto::record::MAX_CHUNK_DATA;
use sfs_proto::session::{SessionConfig, StreamCounts};

use crate::accounts::{
    Account, Accounts, AccountsError, Hasher, PasswordPolicy, Username, UsersFile,
};
use crate::associations::{AssociationLimits, AssociationRegistry};
use crate::audit::AuditLog;
use crate::config::ServerConfig;
use crate::quota::{StorageLimits, Usage};
use crate::shares::{ShareDb, ShareError, SharesFile};
use crate::startup::Preflight;
use crate::store::FileStore;
use crate::throttle::{LoginPolicy, LoginThrottle};
use sfs_state::live::{Live, DEFAULT_RELOAD_INTERVAL};

/// The memory budget of a session unless configured: 16 MiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 16 * 1024 * 1024;

/// What a session holds besides its upload window: one chunk read ahead (a
/// whole record) per download in flight, and the send queue the connection
/// stops reading at (downloads read more than one chunk ahead only into the
/// room that queue has left).
pub fn memory_reserve(max_transfers: usize) -> u64 {
    let chunk = (MAX_CHUNK_DATA + 4 * 1024) as u64;
    crate::connection::MAX_QUEUED_OUTPUT as u64 + max_transfers as u64 * chunk
}

/// The smallest budget for `max_transfers`: the reserve plus a 256 KiB
/// upload window (a few chunks).
pub fn least_memory_budget(max_transfers: usize) -> u64 {
    memory_reserve(max_transfers) + 256 * 1024
}

/// How a session behaves: timers, limits and what clients may do.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// Whether clients may create their own (non-admin) accounts.
    pub allow_registration: bool,
    /// What a registered password must satisfy.
    pub password_policy: PasswordPolicy,
    /// Time to finish the handshake and log in.
    pub login_grace: Duration,
    /// Close after this long without application messages (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// Transfers open at once per session.
    pub max_transfers: usize,
    /// Receive window per upload (the credit granted beyond what was hashed).
    pub transfer_window: u64,
    /// Upload bytes a session holds in memory (received, not yet on disk) before
    /// it stops reading from the network until the disk catches up. It is also
    /// the session's connection-wide credit window, so chunks waiting ahead of
    /// a gap alone can never fill it (reading stops only for bytes the disk is
    /// about to take, never for a gap that only reading can fill). Derived from
    /// the memory budget by [`Self::with_memory_budget`].
    pub max_buffered_upload: usize,
    /// Abort a transfer that waits this long on the peer without progress.
    pub transfer_stall_timeout: Duration,
    /// How long in-flight transfers may take to finish once shutdown begins.
    pub shutdown_grace: Duration,
    /// Quotas and the largest file size (all off by default).
    pub storage: StorageLimits,
    /// How long the part of an interrupted upload is kept for `reput`
    /// (zero: none is kept).
    pub partial_upload_keep: Duration,
    /// Associations a session may have, its first one included (announced at
    /// login; 1: no extra data associations).
    pub max_associations: u8,
    /// Extra data associations per user and server-wide.
    pub association_limits: AssociationLimits,
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            allow_registration: false,
            password_policy: PasswordPolicy::default(),
            login_grace: Duration::from_secs(30),
            idle_timeout: Some(Duration::from_secs(600)),
            max_transfers: 32,
            transfer_window: 2 * 1024 * 1024,
            // Set from the budget below.
            max_buffered_upload: 0,
            transfer_stall_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            storage: StorageLimits::default(),
            partial_upload_keep: Duration::from_secs(24 * 60 * 60),
            max_associations: 8,
            association_limits: AssociationLimits {
                per_user: 32,
                total: 256,
            },
        }
        .with_memory_budget(DEFAULT_MEMORY_BUDGET)
    }
}

impl SessionSettings {
    /// The settings a configuration asks for.
    pub fn from_config(config: &ServerConfig) -> Self {
        let idle = config.limits.idle_timeout();
        Self {
            allow_registration: config.allow_registration,
            password_policy: PasswordPolicy::new(config.min_password_chars),
            login_grace: config.limits.login_grace(),
            idle_timeout: (!idle.is_zero()).then_some(idle),
            max_transfers: config.limits.max_transfers_per_session.max(1),
            transfer_stall_timeout: config.limits.transfer_stall_timeout(),
            storage: config.limits.storage(),
            partial_upload_keep: Duration::from_secs(config.limits.partial_upload_keep_secs),
            max_associations: config.limits.max_associations_per_session.max(1),
            association_limits: AssociationLimits {
                per_user: config.limits.max_associations_per_user,
                total: config.limits.max_associations,
            },
            ..Self::default()
        }
        .with_memory_budget(config.limits.memory_budget_bytes)
    }

    /// Fits the session's memory to `budget` bytes: the upload window (the
    /// connection-wide credit, [`Self::max_buffered_upload`]) is what is left
    /// after [`memory_reserve`] for the transfers in flight, and each upload's
    /// window is at most that. Never below one chunk each.
    pub fn with_memory_budget(mut self, budget: u64) -> Self {
        let window = budget.saturating_sub(memory_reserve(self.max_transfers));
        let window = window.max(MAX_CHUNK_DATA as u64);
        self.max_buffered_upload = usize::try_from(window).unwrap_or(usize::MAX);
        self.transfer_window = self.transfer_window.min(window);
        self
    }

    /// The protocol session's configuration for the negotiated `streams`.
    pub fn session_config(&self, streams: StreamCounts) -> SessionConfig {
        SessionConfig {
            transfer_window: self.transfer_window.max(MAX_CHUNK_DATA as u64),
            connection_window: (self.max_buffered_upload as u64).max(MAX_CHUNK_DATA as u64),
            transfer_stall_timeout: Some(self.transfer_stall_timeout),
            max_transfers: self.max_transfers,
            handshake_timeout: self.login_grace,
            idle_timeout: self.idle_timeout,
            max_associations: self.max_associations,
            ..SessionConfig::new(streams)
        }
    }
}

/// The shares, in memory for resolving paths and on disk for durability, with one
/// owner ([`Live`]): an edit changes the file and the copy in memory under one lock,
/// and edits made by the admin tool are picked up within the reload interval.
#[derive(Debug)]
pub struct Shares {
    live: Live<ShareDb>,
}

impl Shares {
    /// Shares kept in `file`, starting from `db` (what the file held at startup).
    pub fn new(file: SharesFile, db: ShareDb) -> Self {
        Self::with_interval(file, db, DEFAULT_RELOAD_INTERVAL)
    }

    /// [`new`](Self::new), looking for edits by others at most once per `interval`.
    pub fn with_interval(file: SharesFile, db: ShareDb, interval: Duration) -> Self {
        Self {
            live: Live::with_document(file, db, interval),
        }
    }

    /// The current shares (reloaded first if the file changed). If the file became
    /// unreadable, the last good copy, and the error is logged.
    fn current(&self) -> Arc<ShareDb> {
        self.live.current().unwrap_or_else(|error| {
            log::error!("keeping the shares in memory: {error}");
            self.live.cached()
        })
    }

    /// A snapshot of the current shares.
    pub fn snapshot(&self) -> ShareDb {
        ShareDb::clone(&self.current())
    }

    /// Runs `f` on the current shares without copying them.
    pub fn with<R>(&self, f: impl FnOnce(&ShareDb) -> R) -> R {
        f(&self.current())
    }

    /// Looks at the shares file now, reloading it if it changed (SIGHUP).
    ///
    /// # Errors
    ///
    /// The file cannot be read or is corrupt; the shares in memory stay as they were.
    pub fn reload(&self) -> Result<(), ShareError> {
        self.live.reload().map(drop)
    }

    /// Applies `edit` to the file and the copy in memory as one step (see
    /// [`Live::update`]). Blocking: call it from `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// The error of `edit` (nothing changes), or of reading or writing the file.
    pub fn update<T>(
        &self,
        edit: impl FnOnce(&mut ShareDb) -> Result<T, ShareError>,
    ) -> Result<T, ShareError> {
        self.live.update(edit)
    }
}

/// Everything the connections of one server share.
#[derive(Debug)]
pub struct ServerContext {
    /// Logins and registrations.
    pub accounts: Accounts,
    /// The homes.
    pub store: FileStore,
    /// The shares.
    pub shares: Shares,
    /// `server.log`.
    pub audit: AuditLog,
    /// The failed-login history (a std Mutex: no call awaits while holding it).
    pub throttle: Mutex<LoginThrottle>,
    /// The registrations per source, under the same policy as failed logins
    /// (every registration costs a bcrypt, a users-file rewrite and a home).
    pub registrations: Mutex<LoginThrottle>,
    /// The TLS configuration handed to each session.
    pub tls: Arc<rustls::ServerConfig>,
    /// Session behaviour.
    pub settings: SessionSettings,
    /// The most bytes any connection had queued for sending at once: how much a
    /// slow or silent peer made the server hold (for monitoring and tests).
    pub output_high_water: AtomicUsize,
    /// Storage limits and the space uploads in progress reserve.
    pub usage: Usage,
    /// The tickets of extra data associations waiting for their `BIND`, and
    /// the counts of extra associations per user and server-wide.
    pub associations: Arc<AssociationRegistry>,
}

/// Why a [`ServerContext`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The users file could not be opened, or the dummy hash not computed.
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    /// The certificate and key do not make a TLS configuration.
    #[error("certificate {} and key {} do not make a TLS configuration: {source}", cert.display(), key.display())]
    Tls {
        /// The certificate file.
        cert: std::path::PathBuf,
        /// The key file.
        key: std::path::PathBuf,
        /// Why.
        source: sfs_proto::tls::ConfigError,
    },
    /// The certificate or key could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl ServerContext {
    /// Builds the context from a configuration and what its preflight loaded.
    /// Runs one bcrypt (the dummy hash): call it at startup.
    ///
    /// # Errors
    ///
    /// - [`ContextError::Read`] if the certificate or key file cannot be read;
    /// - [`ContextError::Tls`] if they do not make a TLS configuration;
    /// - [`ContextError::Accounts`] if the users file cannot be read or is corrupt, or
    ///   bcrypt fails.
    pub fn new(config: &ServerConfig, preflight: Preflight) -> Result<Self, ContextError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| ContextError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let tls = sfs_proto::tls::server_config(&read(&config.cert)?, &read(&config.key)?)
            .map_err(|source| ContextError::Tls {
                cert: config.cert.clone(),
                key: config.key.clone(),
                source,
            })?;
        let hasher = Hasher::new(
            config.bcrypt_cost,
            config.limits.max_concurrent_hashes.max(1),
        );
        let accounts = Accounts::open(UsersFile::new(&config.users_file), hasher)?;
        let settings = SessionSettings::from_config(config);
        Ok(Self {
            accounts,
            store: preflight.store,
            shares: Shares::new(SharesFile::new(&config.shares_file), preflight.shares),
            audit: preflight.audit,
            throttle: Mutex::new(LoginThrottle::new(config.login.policy())),
            registrations: Mutex::new(LoginThrottle::new(config.login.policy())),
            tls,
            usage: Usage::new(config.limits.storage()),
            associations: Arc::new(AssociationRegistry::new(settings.association_limits)),
            settings,
            output_high_water: AtomicUsize::new(0),
        })
    }

    /// A context assembled from parts (tests, embedding).
    pub fn from_parts(
        accounts: Accounts,
        store: FileStore,
        shares: Shares,
        audit: AuditLog,
        policy: LoginPolicy,
        tls: Arc<rustls::ServerConfig>,
        settings: SessionSettings,
    ) -> Self {
        Self {
            accounts,
            store,
            shares,
            audit,
            throttle: Mutex::new(LoginThrottle::new(policy.clone())),
            registrations: Mutex::new(LoginThrottle::new(policy)),
            tls,
            usage: Usage::new(settings.storage),
            associations: Arc::new(AssociationRegistry::new(settings.association_limits)),
            settings,
            output_high_water: AtomicUsize::new(0),
        }
    }
}

impl ServerContext {
    /// The account `name` as it is now, after any edit by the admin tool: `None`
    /// when it was removed or disabled. Every command of a logged-in session and
    /// every upload commit asks this, so nothing runs on a stale copy of the role.
    ///
    /// # Errors
    ///
    /// The users file changed and cannot be read or is corrupt.
    pub fn account(&self, name: &Username) -> Result<Option<Account>, AccountsError> {
        self.accounts.account(name)
    }

    /// The account `name` as the users file has it at this moment: the file is
    /// looked at now (one `stat`, a read only if it changed), not within the reload
    /// interval. For decisions that cannot be taken back, such as an upload's commit.
    ///
    /// # Errors
    ///
    /// As [`account`](Self::account).
    pub fn account_now(&self, name: &Username) -> Result<Option<Account>, AccountsError> {
        self.accounts.reload()?;
        self.accounts.account(name)
    }

    /// Re-reads `users.json` and `shares.json` if they changed (on SIGHUP), so
    /// admin edits apply at once rather than within the reload interval.
    pub fn reload(&self) {
        if let Err(error) = self.accounts.reload() {
            log::error!("reload: {error}");
        }
        if let Err(error) = self.shares.reload() {
            log::error!("reload: {error}");
        }
    }
}
