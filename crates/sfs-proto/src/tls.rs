//! TLS 1.3 over stream-0 messages, driving rustls as a pipe.
//!
//! SCTP message boundaries are not TLS record boundaries: each received stream-0
//! message is fed to `read_tls` in a loop and processed, and whatever TLS wants to
//! send is cut into messages of at most [`MAX_TLS_MESSAGE`] bytes. A TLS error is
//! sticky: every later call returns it again, and the alert rustls queued for the
//! peer still comes out of [`TlsDriver::poll_message`].

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection,
};
use thiserror::Error;

use crate::record::{RecordAead, RecordSecret, EXPORTER_LABEL, EXPORTER_LEN};

/// The ALPN protocol id both sides offer and require.
pub const ALPN_PROTOCOL: &[u8] = b"sfs/1";

/// The largest stream-0 message this side sends or accepts.
pub const MAX_TLS_MESSAGE: usize = 64 * 1024;

/// The most bytes rustls holds for sending (records not yet taken by
/// [`TlsDriver::poll_message`], or plaintext before the handshake): room for two
/// control frames of the largest size. Plaintext beyond it waits in the driver,
/// unencrypted, until `poll_message` makes room; the embedder bounds the total
/// by draining `poll_message` and producing no more while its own send queue
/// is full.
pub const TLS_SEND_BUFFER: usize = 2 * MAX_TLS_MESSAGE;

/// Why a TLS configuration could not be built from the given PEM input.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The PEM input holds no certificate.
    #[error("no certificate found in the PEM input")]
    NoCertificate,
    /// The PEM input holds no private key.
    #[error("no private key found in the PEM input")]
    NoPrivateKey,
    /// The PEM input could not be parsed.
    #[error("bad PEM input: {0}")]
    Pem(#[from] rustls::pki_types::pem::Error),
    /// rustls refused the certificate, key or settings.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    provider_preferring(if aes_in_hardware() {
        RecordAead::Aes256Gcm
    } else {
        RecordAead::ChaCha20Poly1305
    })
}

/// ring's provider with the TLS 1.3 suites of `aead` first. A server follows the
/// client's order (rustls' default), so the client's preference decides.
fn provider_preferring(aead: RecordAead) -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    let chacha_first = aead == RecordAead::ChaCha20Poly1305;
    // A stable sort keeps ring's own order within each group.
    provider
        .cipher_suites
        .sort_by_key(|suite| (suite.suite() == CHACHA20_SUITE) != chacha_first);
    Arc::new(provider)
}

const CHACHA20_SUITE: rustls::CipherSuite = rustls::CipherSuite::TLS13_CHACHA20_POLY1305_SHA256;

/// Whether this CPU has AES and carry-less multiply instructions. Without them
/// AES-GCM runs in constant-time software several times slower than
/// ChaCha20-Poly1305, so the client then lists ChaCha20 first, as BoringSSL and
/// browsers do on such CPUs (and as the emulated CPU of the test VM is).
fn aes_in_hardware() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
            && std::arch::is_aarch64_feature_detected!("pmull")
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// A client configuration that trusts exactly the CA certificates in `ca_pem`, for
/// TLS 1.3 only, with the SFS ALPN id. The server's certificate must chain to one
/// of them and name the server (DNS or IP SAN) passed to the session.
///
/// # Errors
///
/// [`ConfigError`] if `ca_pem` holds no certificate or an unparsable one, or
/// rustls refuses the configuration.
pub fn client_config(ca_pem: &[u8]) -> Result<Arc<ClientConfig>, ConfigError> {
    client_config_with(ca_pem, provider())
}

/// [`client_config`] that asks for the TLS 1.3 suites of `aead` first, whatever
/// this CPU has: for tests of both record AEADs.
///
/// # Errors
///
/// As [`client_config`].
#[cfg(feature = "testing")]
pub fn client_config_preferring(
    ca_pem: &[u8],
    aead: RecordAead,
) -> Result<Arc<ClientConfig>, ConfigError> {
    client_config_with(ca_pem, provider_preferring(aead))
}

fn client_config_with(
    ca_pem: &[u8],
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<ClientConfig>, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert?)?;
    }
    if roots.is_empty() {
        return Err(ConfigError::NoCertificate);
    }
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_PROTOCOL.to_vec()];
    Ok(Arc::new(config))
}

/// A server configuration from a PEM certificate chain (leaf first) and a PEM
/// private key, for TLS 1.3 only, requiring the SFS ALPN id.
///
/// # Errors
///
/// [`ConfigError`] if the chain or key is missing or unparsable, or the key
/// does not fit the certificate.
pub fn server_config(chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, ConfigError> {
    let chain = CertificateDer::pem_slice_iter(chain_pem).collect::<Result<Vec<_>, _>>()?;
    if chain.is_empty() {
        return Err(ConfigError::NoCertificate);
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => ConfigError::NoPrivateKey,
        other => ConfigError::Pem(other),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_PROTOCOL.to_vec()];
    // Session tickets would let a later connection skip the certificate check of
    // this one; the protocol gains nothing from resumption, so none are issued.
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Why the TLS layer failed. Sticky: once returned, returned forever.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum TlsError {
    /// rustls refused the peer's input (bad certificate, alert, decode error...).
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// A stream-0 message over [`MAX_TLS_MESSAGE`].
    #[error("stream-0 message of {0} bytes is over the limit")]
    MessageTooLarge(usize),
    /// The peer did not negotiate the SFS ALPN id.
    #[error(
        "peer did not negotiate ALPN {:?}",
        String::from_utf8_lossy(ALPN_PROTOCOL)
    )]
    NoAlpn,
    /// The peer sent TLS data after `close_notify`, or the connection was used
    /// after it closed.
    #[error("TLS connection closed")]
    Closed,
}

/// The rustls connection of one session, fed with stream-0 messages.
pub struct TlsDriver {
    conn: Connection,
    error: Option<TlsError>,
    peer_closed: bool,
    /// Application bytes rustls could not take yet (its buffer was at
    /// [`TLS_SEND_BUFFER`]), in order, ahead of anything written later.
    unsent: VecDeque<u8>,
}

impl std::fmt::Debug for TlsDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsDriver")
            .field("handshaking", &self.conn.is_handshaking())
            .field("error", &self.error)
            .field("peer_closed", &self.peer_closed)
            .field("unsent", &self.unsent.len())
            .finish_non_exhaustive()
    }
}

/// Writes into a `Vec` up to a limit, so one `write_tls` never makes a message
/// larger than [`MAX_TLS_MESSAGE`]; rustls keeps the rest for the next message.
struct Bounded<'a> {
    out: &'a mut Vec<u8>,
    limit: usize,
}

impl Write for Bounded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.out.len());
        let n = room.min(buf.len());
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TlsDriver {
    /// A client that will verify the server's certificate for `server_name`.
    ///
    /// # Errors
    ///
    /// [`TlsError`] if rustls cannot start a client connection with `config`.
    pub fn client(
        config: Arc<ClientConfig>,
        server_name: ServerName<'static>,
    ) -> Result<Self, TlsError> {
        let conn = ClientConnection::new(config, server_name)?;
        Ok(Self::new(conn.into()))
    }

    /// A server.
    ///
    /// # Errors
    ///
    /// [`TlsError`] if rustls cannot start a server connection with `config`.
    pub fn server(config: Arc<ServerConfig>) -> Result<Self, TlsError> {
        let conn = ServerConnection::new(config)?;
        Ok(Self::new(conn.into()))
    }

    fn new(mut conn: Connection) -> Self {
        // rustls takes application data only up to this limit and reports a short
        // write beyond it; write_plaintext keeps the rest in `unsent`, so no byte
        // is lost and rustls's own buffer stays small.
        conn.set_buffer_limit(Some(TLS_SEND_BUFFER));
        Self {
            conn,
            error: None,
            peer_closed: false,
            unsent: VecDeque::new(),
        }
    }

    /// Application bytes waiting for room in rustls's send buffer.
    pub fn unsent_plaintext(&self) -> usize {
        self.unsent.len()
    }

    /// Moves as much of `unsent` into rustls as it takes; true if any moved.
    fn feed_unsent(&mut self) -> bool {
        let mut moved = false;
        while !self.unsent.is_empty() {
            let (front, _) = self.unsent.as_slices();
            match self.conn.writer().write(front) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    self.unsent.drain(..n);
                    moved = true;
                }
            }
        }
        if self.unsent.is_empty() && self.unsent.capacity() > TLS_SEND_BUFFER {
            // A burst is over: do not keep its memory for the rest of the session.
            self.unsent = VecDeque::new();
        }
        moved
    }

    fn fail(&mut self, error: TlsError) -> TlsError {
        self.error = Some(error.clone());
        error
    }

    /// The sticky error, if the connection failed.
    pub fn error(&self) -> Option<&TlsError> {
        self.error.as_ref()
    }

    /// Feeds one received stream-0 message. Decrypted application bytes are
    /// appended to `plaintext`.
    ///
    /// # Errors
    ///
    /// [`TlsError`] when the peer's bytes fail TLS (bad record, alert, refused
    /// certificate). The error is sticky: every later call returns it.
    pub fn handle_message(&mut self, msg: &[u8], plaintext: &mut Vec<u8>) -> Result<(), TlsError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if msg.len() > MAX_TLS_MESSAGE {
            return Err(self.fail(TlsError::MessageTooLarge(msg.len())));
        }
        if self.peer_closed && !msg.is_empty() {
            return Err(self.fail(TlsError::Closed));
        }
        let mut rd = msg;
        while !rd.is_empty() {
            if let Err(e) = self.conn.read_tls(&mut rd) {
                // read_tls fails only when rustls's own buffer is full, which the
                // processing below prevents; treat it as the peer's fault anyway.
                log::debug!("read_tls: {e}");
                return Err(self.fail(TlsError::Rustls(rustls::Error::General(e.to_string()))));
            }
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => return Err(self.fail(TlsError::Rustls(e))),
            };
            let pending = state.plaintext_bytes_to_read();
            if pending > 0 {
                let start = plaintext.len();
                plaintext.resize(start + pending, 0);
                if self
                    .conn
                    .reader()
                    .read_exact(&mut plaintext[start..])
                    .is_err()
                {
                    plaintext.truncate(start);
                    return Err(self.fail(TlsError::Closed));
                }
            }
            if state.peer_has_closed() {
                self.peer_closed = true;
                if !rd.is_empty() {
                    return Err(self.fail(TlsError::Closed));
                }
            }
        }
        if !self.conn.is_handshaking() && self.conn.alpn_protocol() != Some(ALPN_PROTOCOL) {
            return Err(self.fail(TlsError::NoAlpn));
        }
        Ok(())
    }

    /// Queues application bytes (control frames). Before the handshake completes
    /// rustls buffers them. What does not fit rustls's send buffer
    /// ([`TLS_SEND_BUFFER`]) waits here and goes out, in order, as
    /// [`Self::poll_message`] drains it.
    ///
    /// # Errors
    ///
    /// The sticky [`TlsError`] once TLS failed.
    pub fn write_plaintext(&mut self, bytes: &[u8]) -> Result<(), TlsError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let mut rest = bytes;
        if self.unsent.is_empty() {
            // A short write (even of 0) means the buffer is full, not an error.
            let taken = self.conn.writer().write(rest).unwrap_or(0);
            rest = &rest[taken..];
        }
        self.unsent.extend(rest);
        Ok(())
    }

    /// The next stream-0 message to send, if TLS has bytes to send. After a
    /// failure this still yields the alert.
    pub fn poll_message(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        while out.len() < MAX_TLS_MESSAGE {
            if !self.conn.wants_write() && !self.feed_unsent() {
                break;
            }
            let mut bounded = Bounded {
                out: &mut out,
                limit: MAX_TLS_MESSAGE,
            };
            match self.conn.write_tls(&mut bounded) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            // Room was made: the next application bytes may follow in this message.
            self.feed_unsent();
        }
        (!out.is_empty()).then_some(out)
    }

    /// True until the handshake completed.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The negotiated protocol version and cipher suite, as names such as
    /// `TLS 1.3` and `TLS13_AES_256_GCM_SHA384`; `None` before the handshake.
    pub fn negotiated(&self) -> Option<(String, String)> {
        let version = match self.conn.protocol_version()? {
            rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
            other => format!("{other:?}"),
        };
        let suite = self.conn.negotiated_cipher_suite()?;
        Some((version, format!("{:?}", suite.suite())))
    }

    /// True once the peer's `close_notify` arrived.
    pub fn peer_has_closed(&self) -> bool {
        self.peer_closed
    }

    /// Queues a `close_notify`, after every application byte still waiting, so a
    /// last `Close` message is not cut off by it.
    pub fn send_close_notify(&mut self) {
        if !self.unsent.is_empty() {
            // Once: whatever waits goes in whole, however large the buffer grows.
            self.conn.set_buffer_limit(None);
            self.feed_unsent();
            self.conn.set_buffer_limit(Some(TLS_SEND_BUFFER));
        }
        self.conn.send_close_notify();
    }

    /// The record-layer secret of this session: one export, then HKDF (see
    /// [`crate::record`]). Only after the handshake.
    ///
    /// # Errors
    ///
    /// [`TlsError`] before the handshake completed, or if the key export fails.
    pub fn record_secret(&self) -> Result<RecordSecret, TlsError> {
        let exported =
            self.conn
                .export_keying_material([0u8; EXPORTER_LEN], EXPORTER_LABEL, None)?;
        let aead = match self.conn.negotiated_cipher_suite().map(|s| s.suite()) {
            Some(CHACHA20_SUITE) => RecordAead::ChaCha20Poly1305,
            _ => RecordAead::Aes256Gcm,
        };
        Ok(RecordSecret::from_exporter(&exported).with_aead(aead))
    }
}
