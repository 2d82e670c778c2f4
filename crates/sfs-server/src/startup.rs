//! Startup checks: everything the server verifies before it listens, each failure
//! with a message that names the file and says what is wrong.
//!
//! [`preflight`] loads the users and shares files and the certificate chain and
//! private key, opens (creating if needed) the root of the homes and the audit log,
//! and sweeps upload temporary files left by a crash. The network checks (port in use, kernel without SCTP) belong to the
//! transport and happen when the server binds.

use std::fs::File;
use std::io::{self, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::accounts::{AccountsError, UserDb, UsersFile};
use crate::audit::AuditLog;
use crate::config::ServerConfig;
use crate::shares::{ShareDb, ShareError, SharesFile};
use crate::store::FileStore;

/// A startup check that failed.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The users file is unreadable or corrupt.
    #[error(transparent)]
    Users(#[from] AccountsError),
    /// The shares file is unreadable or corrupt.
    #[error(transparent)]
    Shares(#[from] ShareError),
    /// The root of the homes cannot be created or opened.
    #[error("cannot use {} as the root of the homes: {source}", path.display())]
    Root {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The audit log cannot be opened for appending.
    #[error("cannot open log file {}: {source}", path.display())]
    LogFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A certificate or key file does not exist.
    #[error("{what} {} does not exist (create one with `sfs-admin cert init`)", path.display())]
    Missing {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A certificate or key file exists but cannot be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Unreadable {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A certificate or key file is not valid PEM, or holds no item of its kind.
    #[error("{what} {} is not usable: {detail}", path.display())]
    Invalid {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// What the checks loaded, ready for the server to use.
#[derive(Debug)]
pub struct Preflight {
    /// The accounts (possibly none).
    pub users: UserDb,
    /// The shares.
    pub shares: ShareDb,
    /// The server certificate chain, leaf first.
    pub cert_chain: Vec<CertificateDer<'static>>,
    /// The server's private key.
    pub key: PrivateKeyDer<'static>,
    /// The homes.
    pub store: FileStore,
    /// The audit log, open for appending.
    pub audit: AuditLog,
    /// Upload temporary files removed from the homes.
    pub stale_uploads_removed: usize,
    /// Things worth a warning that do not stop the server.
    pub warnings: Vec<String>,
}

/// Runs every file check of `config`.
///
/// # Errors
///
/// The first check that fails: [`StartupError::Users`] or [`StartupError::Shares`]
/// for an unreadable or corrupt state file, [`StartupError::Missing`],
/// [`StartupError::Unreadable`] or [`StartupError::Invalid`] for the certificate or
/// key, [`StartupError::Root`] for the homes' root (or its sweep), and
/// [`StartupError::LogFile`] for the audit log.
pub fn preflight(config: &ServerConfig) -> Result<Preflight, StartupError> {
    let users = UsersFile::new(&config.users_file).load()?;
    let shares = SharesFile::new(&config.shares_file).load()?;
    let cert_chain = load_certificate_chain(&config.cert)?;
    let key = load_private_key(&config.key)?;
    let root_error = |source| StartupError::Root {
        path: config.root.clone(),
        source,
    };
    let store = FileStore::open(&config.root).map_err(root_error)?;
    let keep_partials = Duration::from_secs(config.limits.partial_upload_keep_secs);
    let stale_uploads_removed = store
        .remove_stale_uploads_keeping(keep_partials)
        .map_err(root_error)?;
    let audit = AuditLog::open(&config.log_file).map_err(|source| StartupError::LogFile {
        path: config.log_file.clone(),
        source,
    })?;
    let mut warnings = Vec::new();
    let other_costs = users
        .users()
        .filter(|r| r.hash.cost() != Some(config.bcrypt_cost))
        .count();
    if other_costs > 0 {
        warnings.push(format!(
            "{other_costs} account(s) have a bcrypt cost other than {}: they are \
             re-hashed at their next login",
            config.bcrypt_cost
        ));
    }
    if users.is_empty() && !config.allow_registration {
        warnings.push(format!(
            "{} has no account and registration is off: nobody can log in \
             (add one with `sfs-admin user add`)",
            config.users_file.display()
        ));
    }
    if let Ok(metadata) = std::fs::metadata(&config.key) {
        if metadata.permissions().mode() & 0o077 != 0 {
            warnings.push(format!(
                "private key {} is readable by other users (chmod 600 it)",
                config.key.display()
            ));
        }
    }
    Ok(Preflight {
        users,
        shares,
        cert_chain,
        key,
        store,
        audit,
        stale_uploads_removed,
        warnings,
    })
}

/// Reads every certificate of a PEM file; at least one is required.
///
/// # Errors
///
/// [`StartupError::Missing`] if the file does not exist, [`StartupError::Unreadable`]
/// if it cannot be read, [`StartupError::Invalid`] if it is not PEM or holds no
/// certificate.
pub fn load_certificate_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, StartupError> {
    const WHAT: &str = "certificate";
    let reader = open(WHAT, path)?;
    let chain = CertificateDer::pem_reader_iter(reader)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(WHAT, path, e))?;
    if chain.is_empty() {
        return Err(StartupError::Invalid {
            what: WHAT,
            path: path.to_path_buf(),
            detail: "no CERTIFICATE section found".into(),
        });
    }
    Ok(chain)
}

/// Reads the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
///
/// # Errors
///
/// As [`load_certificate_chain`], [`StartupError::Invalid`] meaning no private key.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, StartupError> {
    const WHAT: &str = "private key";
    let reader = open(WHAT, path)?;
    PrivateKeyDer::from_pem_reader(reader).map_err(|e| pem_error(WHAT, path, e))
}

fn open(what: &'static str, path: &Path) -> Result<BufReader<File>, StartupError> {
    match File::open(path) {
        Ok(file) => Ok(BufReader::new(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StartupError::Missing {
            what,
            path: path.to_path_buf(),
        }),
        Err(source) => Err(StartupError::Unreadable {
            what,
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn pem_error(what: &'static str, path: &Path, error: pem::Error) -> StartupError {
    match error {
        pem::Error::Io(source) => StartupError::Unreadable {
            what,
            path: path.to_path_buf(),
            source,
        },
        pem::Error::NoItemsFound => StartupError::Invalid {
            what,
            path: path.to_path_buf(),
            detail: format!("no {what} found in the PEM file"),
        },
        other => StartupError::Invalid {
            what,
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}
