//! A listening one-to-one SCTP socket.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use socket2::Socket;
use tokio::io::unix::AsyncFd;

use crate::association::SctpAssociation;
use crate::config::SctpConfig;
use crate::error::{Error, Result};
use crate::socket;
use crate::sys;

/// A socket bound to one or more local addresses, accepting associations.
pub struct SctpListener {
    fd: AsyncFd<Socket>,
    config: SctpConfig,
}

impl SctpListener {
    /// Binds every address in `addrs` (`sctp_bindx`) and starts listening.
    ///
    /// All addresses share one port; with port 0 the kernel picks it (read it back
    /// with [`local_addrs`](Self::local_addrs)). The stream counts and tuning of
    /// `config` apply to every accepted association. Must be called inside a
    /// tokio runtime.
    ///
    /// # Errors
    ///
    /// - [`Error::NoAddresses`] if `addrs` is empty;
    /// - [`Error::SctpUnavailable`] if the kernel has no SCTP;
    /// - [`Error::Io`] if a socket option, `sctp_bindx` (for example EADDRINUSE,
    ///   EADDRNOTAVAIL) or `listen` fails.
    pub fn bind(addrs: &[SocketAddr], config: &SctpConfig) -> Result<Self> {
        if addrs.is_empty() {
            return Err(Error::NoAddresses("bind"));
        }
        let fd = socket::new_socket(addrs)?;
        fd.set_reuse_address(true)
            .map_err(|e| Error::io("setting SO_REUSEADDR", e))?;
        // INITMSG and the rest must be set before listen(): the INIT-ACK that
        // answers a client is built from them.
        socket::prepare(&fd, config)?;
        socket::bindx(&fd, addrs)?;
        fd.listen(config.backlog)
            .map_err(|e| Error::io("listening", e))?;
        let fd = sys::register(fd).map_err(|e| Error::io("registering with tokio", e))?;
        Ok(Self {
            fd,
            config: config.clone(),
        })
    }

    /// Waits for the next association and returns it, established.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] or [`Error::Aborted`] if `accept4` or setting up the new
    /// socket fails. Errors that concern only that one association (for example
    /// it was aborted before it could be accepted) are returned too; a server
    /// should log them, back off briefly and keep accepting.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: an association is only taken from the kernel's queue when
    /// this future completes, so it can sit in a `tokio::select!`.
    pub async fn accept(&self) -> Result<SctpAssociation> {
        loop {
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| Error::io("waiting to accept", e))?;
            // accept4(2), the new socket non-blocking and close-on-exec.
            let flags = libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
            match guard.try_io(|fd| fd.get_ref().accept4(flags)) {
                Ok(Ok((new_fd, _peer))) => {
                    let new_fd = sys::register(new_fd)
                        .map_err(|e| Error::io("registering with tokio", e))?;
                    return SctpAssociation::from_established(new_fd, &self.config);
                }
                Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(err)) => return Err(Error::io("accepting", err)),
                Err(_would_block) => continue,
            }
        }
    }

    /// The addresses the listener is bound to, with the port the kernel chose.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if `getsockopt` fails.
    pub fn local_addrs(&self) -> Result<Vec<SocketAddr>> {
        // Association id 0 on a listener means "the endpoint's bound addresses".
        socket::addr_list(
            self.fd.get_ref(),
            sys::SCTP_GET_LOCAL_ADDRS,
            0,
            "reading local addresses",
        )
    }
}

impl std::fmt::Debug for SctpListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SctpListener")
            .field("fd", &self.fd.get_ref().as_raw_fd())
            .finish()
    }
}

/// The descriptor, for options this crate does not wrap.
impl AsRawFd for SctpListener {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }
}

/// The descriptor, for options this crate does not wrap.
impl AsFd for SctpListener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}
