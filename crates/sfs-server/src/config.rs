// Over 600 lines with its tests: defaults, file and flags of one config read best side by side.
//! The server's configuration: defaults, an optional TOML file, and flags on top.
//!
//! Precedence, lowest first: built-in defaults, the TOML file named by `--config`,
//! then command-line flags. With no file and no flags the server needs only
//! `certs/server.pem` and `certs/server.key` to exist. Relative paths are taken
//! from the working directory, like every other path on the command line.
//!
//! A complete file, with the defaults:
//!
//! ```toml
//! bind = ["127.0.0.1"]          # several addresses make the association multi-homed
//! port = 7373
//! streams = 8                   # data streams, besides stream 0 for control
//! cert = "certs/server.pem"
//! key = "certs/server.key"
//! users_file = "users.json"
//! shares_file = "shares.json"
//! root = "server_files"
//! log_file = "server.log"
//! bcrypt_cost = 12
//! min_password_chars = 8        # for new passwords (REGISTER); NIST SP 800-63B's floor
//! allow_registration = false
//!
//! [limits]
//! max_clients = 64
//! max_per_source = 32           # counted per source address (IPv6: per /64); an office behind one NAT is one source
//! max_unauthenticated = "16:30:48"  # start:rate:full, like sshd MaxStartups
//! login_grace_secs = 30         # time to log in after connecting
//! idle_timeout_secs = 600       # counted on application messages only
//! max_message_bytes = 1048576
//! max_concurrent_hashes = 2     # bcrypt jobs at once
//! max_transfers_per_session = 32  # announced to the client at login; it queues the rest
//! memory_budget_bytes = 16777216    # per session: upload window + read-ahead + send queue
//! transfer_stall_timeout_secs = 60  # a transfer without progress is aborted
//! partial_upload_keep_secs = 86400  # an interrupted upload is kept this long for `reput`
//! max_associations_per_session = 8  # the first included: 1 turns extra data associations off (at most 16)
//! max_associations_per_user = 32   # extra data associations across one user's sessions
//! max_associations = 256        # extra data associations, server-wide
//! # Storage limits, off unless set (bytes; files):
//! # quota_bytes = 10737418240   # per user, counted on the home's owner
//! # quota_files = 100000
//! # max_file_size = 4294967296  # the largest size a STOR may announce
//!
//! [login]
//! base_delay_ms = 500
//! max_delay_ms = 8000
//! max_failures_per_connection = 5
//! user_threshold = 5            # failures of one name from one source before that name waits the penalty
//! source_threshold = 15         # a source's score (each name counts at most user_threshold) before all its attempts wait
//! refuse_threshold = 30         # score (or one name's failures) at which a source's logins are refused
//! source_window_secs = 900
//! source_penalty_ms = 5000
//!
//! [sctp]
//! fast_failover = true          # false keeps the kernel's (slow) failover settings
//! rto_initial_ms = 300
//! rto_min_ms = 100
//! rto_max_ms = 1000
//! heartbeat_interval_ms = 500
//! path_max_retrans = 3
//! pf_retrans = 0
//! send_buffer_bytes = 2097152
//! recv_buffer_bytes = 2097152
//! nodelay = true
//! sack_delay_ms = 10
//! sack_frequency = 2
//! scheduler = "round-robin"     # or "fcfs", "fair-capacity"
//! interleaving = true
//! ```

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::accounts::{
    DEFAULT_BCRYPT_COST, DEFAULT_MIN_PASSWORD_CHARS, MAX_BCRYPT_COST, MAX_PASSWORD_BYTES,
    MIN_BCRYPT_COST,
};
use crate::limits::MaxStartups;
use crate::throttle::LoginPolicy;

/// The port used when none is configured.
pub const DEFAULT_PORT: u16 = 7373;

/// The most data streams that can be configured. SCTP allows 65535 streams, but
/// each costs kernel memory per association, and transfers in flight are bounded
/// far lower anyway.
pub const MAX_DATA_STREAMS: u16 = 1023;

/// Every setting of the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Local addresses to bind, IPv4 and IPv6; several make the association
    /// multi-homed.
    pub bind: Vec<IpAddr>,
    /// The SCTP port.
    pub port: u16,
    /// Data streams to offer, besides stream 0 for control. The transport asks for
    /// `streams + 1` and uses what the peer grants.
    pub streams: u16,
    /// The server certificate chain (PEM).
    pub cert: PathBuf,
    /// The server private key (PEM).
    pub key: PathBuf,
    /// The accounts file.
    pub users_file: PathBuf,
    /// The shares file.
    pub shares_file: PathBuf,
    /// The folder holding every home.
    pub root: PathBuf,
    /// The audit log.
    pub log_file: PathBuf,
    /// bcrypt cost for new password hashes.
    pub bcrypt_cost: u32,
    /// The shortest new password accepted by registration, in characters (a length
    /// floor and no composition rules, as NIST SP 800-63B advises; at most 72
    /// bytes in any case). Existing passwords still log in.
    pub min_password_chars: usize,
    /// Whether clients may create their own (non-admin) accounts.
    pub allow_registration: bool,
    /// Resource limits.
    pub limits: Limits,
    /// The failed-login policy.
    pub login: LoginLimits,
    /// SCTP tuning, passed to the transport.
    pub sctp: SctpTuning,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            port: DEFAULT_PORT,
            streams: 8,
            cert: PathBuf::from("certs/server.pem"),
            key: PathBuf::from("certs/server.key"),
            users_file: PathBuf::from("users.json"),
            shares_file: PathBuf::from("shares.json"),
            root: PathBuf::from("server_files"),
            log_file: PathBuf::from("server.log"),
            bcrypt_cost: DEFAULT_BCRYPT_COST,
            min_password_chars: DEFAULT_MIN_PASSWORD_CHARS,
            allow_registration: false,
            limits: Limits::default(),
            login: LoginLimits::default(),
            sctp: SctpTuning::default(),
        }
    }
}

/// Resource limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Associations served at once.
    pub max_clients: usize,
    /// Associations at once from one source (any of the association's peer
    /// addresses; IPv6 by /64).
    pub max_per_source: usize,
    /// Associations not logged in yet, as sshd's `MaxStartups`: `"start:rate:full"`
    /// refuses `rate`% of new ones at `start` unauthenticated, rising to all at
    /// `full`. `full` is lowered below `max_clients` if needed, so logged-in users always keep
    /// a slot.
    #[serde(with = "max_startups_text")]
    pub max_unauthenticated: MaxStartups,
    /// Seconds a client has to log in after connecting.
    pub login_grace_secs: u64,
    /// Seconds without an application message before a session is closed (SCTP
    /// heartbeats do not count).
    pub idle_timeout_secs: u64,
    /// Largest control or data message accepted, in bytes.
    pub max_message_bytes: usize,
    /// bcrypt computations at once, server-wide.
    pub max_concurrent_hashes: usize,
    /// Transfers in flight per session (announced at login; clients queue
    /// beyond it). Many small files want many at once: each waits a round trip
    /// for its first byte, and memory is bounded by the budget, not by this.
    pub max_transfers_per_session: usize,
    /// Bytes of transfer data one session may hold in memory: the upload
    /// receive window (the connection-wide credit), plus one chunk read ahead
    /// per download in flight, plus the send queue (see
    /// [`SessionSettings::with_memory_budget`](crate::context::SessionSettings::with_memory_budget)).
    /// Peak memory per session is this plus a fixed overhead.
    pub memory_budget_bytes: u64,
    /// Seconds a transfer may wait on the peer without progress before it is
    /// aborted with `TIMED_OUT` (its temporary file removed).
    pub transfer_stall_timeout_secs: u64,
    /// Seconds the part of an upload cut short (client abort, lost association)
    /// is kept for the uploader to continue it (`reput`); 0 keeps none.
    pub partial_upload_keep_secs: u64,
    /// Bytes each user's home may hold, uploads in progress included (none if unset).
    pub quota_bytes: Option<u64>,
    /// Regular files each user's home may hold (none if unset).
    pub quota_files: Option<u64>,
    /// The largest file a STOR may announce, in bytes (none if unset).
    pub max_file_size: Option<u64>,
    /// Associations one session may have, its first one included (announced at
    /// login): `1` turns extra data associations off; at most 16.
    pub max_associations_per_session: u8,
    /// Extra data associations (beyond each session's first) one user may have
    /// across all of their sessions.
    pub max_associations_per_user: usize,
    /// Extra data associations of every session together. They do not count
    /// against `max_clients` or `max_per_source`, which count sessions.
    pub max_associations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_clients: 64,
            max_per_source: 32,
            max_unauthenticated: MaxStartups {
                start: 16,
                rate: 30,
                full: 48,
            },
            login_grace_secs: 30,
            idle_timeout_secs: 600,
            max_message_bytes: 1 << 20,
            max_concurrent_hashes: 2,
            max_transfers_per_session: 32,
            memory_budget_bytes: crate::context::DEFAULT_MEMORY_BUDGET,
            transfer_stall_timeout_secs: 60,
            partial_upload_keep_secs: 24 * 60 * 60,
            quota_bytes: None,
            quota_files: None,
            max_file_size: None,
            max_associations_per_session: 8,
            max_associations_per_user: 32,
            max_associations: 256,
        }
    }
}

impl Limits {
    /// The login grace period.
    pub fn login_grace(&self) -> Duration {
        Duration::from_secs(self.login_grace_secs)
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }

    /// The transfer stall timeout.
    pub fn transfer_stall_timeout(&self) -> Duration {
        Duration::from_secs(self.transfer_stall_timeout_secs)
    }

    /// The quotas and largest file size.
    pub fn storage(&self) -> crate::quota::StorageLimits {
        crate::quota::StorageLimits {
            quota_bytes: self.quota_bytes,
            quota_files: self.quota_files,
            max_file_size: self.max_file_size,
        }
    }
}

/// `MaxStartups` as its `start:rate:full` text in the config file.
mod max_startups_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::limits::MaxStartups;

    pub fn serialize<S: Serializer>(value: &MaxStartups, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!(
            "{}:{}:{}",
            value.start, value.rate, value.full
        ))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<MaxStartups, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The failed-login policy in plain numbers (see [`crate::throttle`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginLimits {
    /// Delay after the first failure on a connection, doubling after each.
    pub base_delay_ms: u64,
    /// Cap of that delay.
    pub max_delay_ms: u64,
    /// Failures before the connection is closed.
    pub max_failures_per_connection: u32,
    /// Failures of one user name from one source, within the window, before
    /// attempts at that name from that source wait the penalty; also the most one
    /// name adds to its source's score.
    pub user_threshold: u32,
    /// A source's score (its failures, each name counting at most
    /// `user_threshold`), within the window, before every attempt from it waits
    /// the penalty.
    pub source_threshold: u32,
    /// The score (or one name's failures) at which a source's logins are refused
    /// without a password check, until failures expire.
    pub refuse_threshold: u32,
    /// How long a failure counts against its source.
    pub source_window_secs: u64,
    /// Extra wait for each attempt from a penalized source.
    pub source_penalty_ms: u64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self::from(&LoginPolicy::default())
    }
}

impl From<&LoginPolicy> for LoginLimits {
    fn from(policy: &LoginPolicy) -> Self {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Self {
            base_delay_ms: millis(policy.base_delay),
            max_delay_ms: millis(policy.max_delay),
            max_failures_per_connection: policy.max_failures_per_connection,
            user_threshold: policy.user_threshold,
            source_threshold: policy.source_threshold,
            refuse_threshold: policy.refuse_threshold,
            source_window_secs: policy.source_window.as_secs(),
            source_penalty_ms: millis(policy.source_penalty),
        }
    }
}

impl LoginLimits {
    /// The policy these numbers describe.
    pub fn policy(&self) -> LoginPolicy {
        LoginPolicy {
            base_delay: Duration::from_millis(self.base_delay_ms),
            max_delay: Duration::from_millis(self.max_delay_ms),
            max_failures_per_connection: self.max_failures_per_connection,
            user_threshold: self.user_threshold,
            source_threshold: self.source_threshold,
            refuse_threshold: self.refuse_threshold,
            source_window: Duration::from_secs(self.source_window_secs),
            source_penalty: Duration::from_millis(self.source_penalty_ms),
            ..LoginPolicy::default()
        }
    }
}

/// SCTP settings as plain numbers; the transport crate's `SctpConfig` takes them.
/// The defaults are the ones measured for fast failover (docs/ARCHITECTURE.md section 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SctpTuning {
    /// Apply the failover numbers below; false keeps the kernel's own.
    pub fast_failover: bool,
    /// `SCTP_RTOINFO` initial RTO.
    pub rto_initial_ms: u32,
    /// `SCTP_RTOINFO` minimum RTO.
    pub rto_min_ms: u32,
    /// `SCTP_RTOINFO` maximum RTO.
    pub rto_max_ms: u32,
    /// Heartbeat interval on idle paths.
    pub heartbeat_interval_ms: u32,
    /// Retransmissions before a path is declared failed.
    pub path_max_retrans: u16,
    /// Retransmissions before a path is "potentially failed" (RFC 7829).
    pub pf_retrans: u16,
    /// `SO_SNDBUF`.
    pub send_buffer_bytes: usize,
    /// `SO_RCVBUF`.
    pub recv_buffer_bytes: usize,
    /// `SCTP_NODELAY`.
    pub nodelay: bool,
    /// `SCTP_DELAYED_SACK` delay.
    pub sack_delay_ms: u32,
    /// `SCTP_DELAYED_SACK` packets per SACK.
    pub sack_frequency: u32,
    /// `SCTP_STREAM_SCHEDULER`.
    pub scheduler: Scheduler,
    /// Ask for I-DATA interleaving where the kernel allows it.
    pub interleaving: bool,
}

impl Default for SctpTuning {
    fn default() -> Self {
        Self {
            fast_failover: true,
            rto_initial_ms: 300,
            rto_min_ms: 100,
            rto_max_ms: 1000,
            heartbeat_interval_ms: 500,
            path_max_retrans: 3,
            pf_retrans: 0,
            send_buffer_bytes: 2 << 20,
            recv_buffer_bytes: 2 << 20,
            nodelay: true,
            sack_delay_ms: 10,
            sack_frequency: 2,
            scheduler: Scheduler::RoundRobin,
            interleaving: true,
        }
    }
}

/// The stream scheduler, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Scheduler {
    /// First come, first served.
    Fcfs,
    /// Round robin.
    RoundRobin,
    /// Fair capacity (Linux 6.2+).
    FairCapacity,
}

/// A configuration that could not be loaded or makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this struct.
    #[error("config file {} is invalid: {detail}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its position.
        detail: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ServerConfig {
    /// Parses a TOML file. A missing field takes its default; an unknown one is an
    /// error (a typo must not silently do nothing).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] if the file cannot be read, [`ConfigError::Parse`] if it is
    /// not TOML, has an unknown field or a value of the wrong type.
    pub fn from_toml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    }

    /// Checks that the values make sense together.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`], naming the first value out of range or at odds with
    /// another.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |text: String| Err(ConfigError::Invalid(text));
        if self.bind.is_empty() {
            return invalid("at least one bind address is needed".into());
        }
        if self.port == 0 {
            return invalid("port 0 is not a usable server port".into());
        }
        if self.streams == 0 || self.streams > MAX_DATA_STREAMS {
            return invalid(format!(
                "streams must be 1 to {MAX_DATA_STREAMS} (got {})",
                self.streams
            ));
        }
        if !(MIN_BCRYPT_COST..=MAX_BCRYPT_COST).contains(&self.bcrypt_cost) {
            return invalid(format!(
                "bcrypt_cost must be {MIN_BCRYPT_COST} to {MAX_BCRYPT_COST} (got {})",
                self.bcrypt_cost
            ));
        }
        if !(1..=MAX_PASSWORD_BYTES).contains(&self.min_password_chars) {
            return invalid(format!(
                "min_password_chars must be 1 to {MAX_PASSWORD_BYTES} (got {})",
                self.min_password_chars
            ));
        }
        let limits = &self.limits;
        for (name, value) in [
            ("limits.max_clients", limits.max_clients),
            ("limits.max_per_source", limits.max_per_source),
            ("limits.max_concurrent_hashes", limits.max_concurrent_hashes),
            (
                "limits.max_transfers_per_session",
                limits.max_transfers_per_session,
            ),
        ] {
            if value == 0 {
                return invalid(format!("{name} must be at least 1"));
            }
        }
        for (name, value) in [
            ("limits.quota_bytes", limits.quota_bytes),
            ("limits.quota_files", limits.quota_files),
            ("limits.max_file_size", limits.max_file_size),
        ] {
            if value == Some(0) {
                return invalid(format!("{name} must be at least 1 (leave it out for none)"));
            }
        }
        let least = crate::context::least_memory_budget(limits.max_transfers_per_session);
        if limits.memory_budget_bytes < least {
            return invalid(format!(
                "limits.memory_budget_bytes must be at least {least} with {} transfers per session",
                limits.max_transfers_per_session
            ));
        }
        if !(1..=sfs_proto::bind::MAX_ASSOCIATIONS).contains(&limits.max_associations_per_session) {
            return invalid(format!(
                "limits.max_associations_per_session must be 1 to {} (got {})",
                sfs_proto::bind::MAX_ASSOCIATIONS,
                limits.max_associations_per_session
            ));
        }
        if limits.max_message_bytes < 4096 {
            return invalid("limits.max_message_bytes must be at least 4096".into());
        }
        if limits.login_grace_secs == 0
            || limits.idle_timeout_secs == 0
            || limits.transfer_stall_timeout_secs == 0
        {
            return invalid("timeouts must be at least 1 second".into());
        }
        if self.login.max_failures_per_connection == 0 {
            return invalid("login.max_failures_per_connection must be at least 1".into());
        }
        let sctp = &self.sctp;
        if sctp.rto_min_ms > sctp.rto_initial_ms || sctp.rto_initial_ms > sctp.rto_max_ms {
            return invalid("sctp: need rto_min_ms <= rto_initial_ms <= rto_max_ms".into());
        }
        if sctp.sack_delay_ms > 500 {
            return invalid("sctp.sack_delay_ms must be at most 500".into());
        }
        Ok(())
    }
}

/// Command-line flags of `sfs-server`. Each overrides the same setting of the
/// config file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// TOML configuration file (flags override it).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to bind; repeat or separate with commas for several (IPv4 or IPv6).
    #[arg(long, short = 'b', value_name = "ADDR", value_delimiter = ',')]
    pub bind: Vec<IpAddr>,
    /// SCTP port.
    #[arg(long, short = 'p')]
    pub port: Option<u16>,
    /// Data streams to offer (besides the control stream).
    #[arg(long)]
    pub streams: Option<u16>,
    /// Server certificate chain (PEM).
    #[arg(long, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Server private key (PEM).
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Accounts file.
    #[arg(long, value_name = "FILE")]
    pub users: Option<PathBuf>,
    /// Shares file.
    #[arg(long, value_name = "FILE")]
    pub shares: Option<PathBuf>,
    /// Folder holding every user's home.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Audit log file.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// bcrypt cost for new passwords (4 to 31).
    #[arg(long)]
    pub bcrypt_cost: Option<u32>,
    /// Let clients create their own (non-admin) accounts: `--allow-registration`
    /// or `--allow-registration=false`.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub allow_registration: Option<bool>,
    /// Most clients at once.
    #[arg(long)]
    pub max_clients: Option<usize>,
    /// Most connections at once from one source address.
    #[arg(long)]
    pub max_per_source: Option<usize>,
    /// Seconds to log in after connecting.
    #[arg(long, value_name = "SECS")]
    pub login_grace: Option<u64>,
    /// Seconds without an application message before disconnecting.
    #[arg(long, value_name = "SECS")]
    pub idle_timeout: Option<u64>,
    /// Largest message accepted, in bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_message: Option<usize>,
}

impl ServerArgs {
    /// Builds the configuration: defaults, then the file if `--config` was given,
    /// then these flags, then validation.
    ///
    /// # Errors
    ///
    /// As [`ServerConfig::from_toml_file`] for the file and
    /// [`ServerConfig::validate`] for the result.
    pub fn load(&self) -> Result<ServerConfig, ConfigError> {
        let mut config = match &self.config {
            Some(path) => ServerConfig::from_toml_file(path)?,
            None => ServerConfig::default(),
        };
        self.apply(&mut config);
        config.validate()?;
        Ok(config)
    }

    /// Overrides the settings named on the command line.
    pub fn apply(&self, config: &mut ServerConfig) {
        if !self.bind.is_empty() {
            config.bind = self.bind.clone();
        }
        set(&mut config.port, self.port);
        set(&mut config.streams, self.streams);
        set(&mut config.cert, self.cert.clone());
        set(&mut config.key, self.key.clone());
        set(&mut config.users_file, self.users.clone());
        set(&mut config.shares_file, self.shares.clone());
        set(&mut config.root, self.root.clone());
        set(&mut config.log_file, self.log_file.clone());
        set(&mut config.bcrypt_cost, self.bcrypt_cost);
        set(&mut config.allow_registration, self.allow_registration);
        set(&mut config.limits.max_clients, self.max_clients);
        set(&mut config.limits.max_per_source, self.max_per_source);
        set(&mut config.limits.login_grace_secs, self.login_grace);
        set(&mut config.limits.idle_timeout_secs, self.idle_timeout);
        set(&mut config.limits.max_message_bytes, self.max_message);
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServerArgs,
    }

    fn args(argv: &[&str]) -> ServerArgs {
        Cli::try_parse_from(std::iter::once("sfs-server").chain(argv.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn defaults_are_valid_and_match_the_documented_file() {
        let config = ServerConfig::default();
        config.validate().unwrap();
        assert_eq!(config.users_file, Path::new("users.json"));
        assert_eq!(config.root, Path::new("server_files"));
        assert_eq!(config.log_file, Path::new("server.log"));
        assert_eq!(config.bcrypt_cost, 12);
        // The module documentation shows the full file with every default.
        let docs = include_str!("config.rs");
        let start = docs.find("//! ```toml\n").unwrap() + "//! ```toml\n".len();
        let end = start + docs[start..].find("//! ```\n").unwrap();
        let toml_text: String = docs[start..end]
            .lines()
            .map(|line| {
                line.strip_prefix("//! ")
                    .unwrap_or(line.trim_start_matches("//!"))
            })
            .collect::<Vec<_>>()
            .join("\n");
        let documented: ServerConfig = toml::from_str(&toml_text).unwrap();
        assert_eq!(documented, config);
    }

    #[test]
    fn file_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "bind = [\"127.0.0.1\", \"::1\"]\nport = 9000\nallow_registration = true\n\
             [limits]\nmax_clients = 5\n[sctp]\nrto_min_ms = 50\n",
        )
        .unwrap();
        let path_text = path.to_str().unwrap();
        let config = args(&["--config", path_text]).load().unwrap();
        assert_eq!(config.bind.len(), 2);
        assert_eq!(config.port, 9000);
        assert!(config.allow_registration);
        assert_eq!(config.limits.max_clients, 5);
        assert_eq!(config.limits.max_per_source, 32);
        assert_eq!(config.sctp.rto_min_ms, 50);

        let config = args(&[
            "--config",
            path_text,
            "--bind",
            "127.0.0.2,127.0.0.3",
            "--bind",
            "::1",
            "-p",
            "9100",
            "--allow-registration=false",
            "--max-clients",
            "7",
            "--users",
            "u.json",
        ])
        .load()
        .unwrap();
        assert_eq!(config.bind.len(), 3);
        assert_eq!(config.port, 9100);
        assert!(!config.allow_registration);
        assert_eq!(config.limits.max_clients, 7);
        assert_eq!(config.users_file, Path::new("u.json"));
        assert!(
            args(&["--allow-registration"])
                .load()
                .unwrap()
                .allow_registration
        );
    }

    #[test]
    fn bad_files_and_values_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(&path, "prot = 9000\n").unwrap();
        let err = ServerConfig::from_toml_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("server.toml is invalid") && err.contains("prot"),
            "{err}"
        );
        let err = ServerConfig::from_toml_file(&dir.path().join("missing.toml")).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        for flags in [
            &["--bcrypt-cost", "3"][..],
            &["--streams", "0"],
            &["--port", "0"],
            &["--max-clients", "0"],
        ] {
            assert!(
                matches!(args(flags).load(), Err(ConfigError::Invalid(_))),
                "{flags:?}"
            );
        }
    }
}
