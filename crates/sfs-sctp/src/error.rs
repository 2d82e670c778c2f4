//! The crate's error type.

use std::io;
use std::time::Duration;

use crate::notification::AssocState;

/// Everything that can go wrong with an SCTP socket.
///
/// Variants name the cause where the crate can tell it; the rest keep the
/// operation that failed and the OS error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The running kernel has no SCTP (`socket()` gave `EPROTONOSUPPORT`).
    #[error("kernel SCTP is not available: load it with `sudo modprobe sctp`")]
    SctpUnavailable,

    /// An address list was empty.
    #[error("no addresses given to {0}")]
    NoAddresses(&'static str),

    /// The stream id is not below the negotiated outbound stream count.
    #[error(
        "stream {stream} does not exist: the association has {outbound_streams} outbound streams"
    )]
    NoSuchStream {
        /// The stream asked for.
        stream: u16,
        /// The negotiated count (valid ids are `0..outbound_streams`).
        outbound_streams: u16,
    },

    /// SCTP cannot carry an empty user message.
    #[error("cannot send an empty message")]
    EmptyMessage,

    /// A message to send is larger than the configured maximum.
    #[error("message of {len} bytes is larger than the limit of {limit} bytes")]
    MessageTooLarge {
        /// Its length.
        len: usize,
        /// [`crate::SctpAssociation::max_send_size`].
        limit: usize,
    },

    /// The peer sent a message larger than the configured maximum. The
    /// association has been aborted (the ABORT goes out when it is dropped).
    #[error("the peer sent a message larger than {limit} bytes; the association was aborted")]
    ReceivedMessageTooLarge {
        /// [`crate::SctpConfig::max_message_size`].
        limit: usize,
    },

    /// The peer left more bytes in unfinished messages (partial, or held back for
    /// ordering) than the association or the process-wide budget allows. The
    /// association has been aborted.
    #[error("the peer left too many unfinished messages; the association was aborted")]
    ReassemblyOverflow,

    /// `connect` did not finish within its timeout.
    #[error("connecting timed out after {0:?}")]
    ConnectTimeout(Duration),

    /// The association could not be set up, or ended while connecting.
    #[error("the association could not be established ({state:?}, error {error})")]
    ConnectFailed {
        /// The state reported by the kernel (`CantStartAssoc` or `CommLost`).
        state: AssocState,
        /// The kernel's error code for it.
        error: u16,
    },

    /// The peer ended the association gracefully and everything it sent has been
    /// received.
    #[error("the association was shut down")]
    Closed,

    /// The peer aborted the association, or it failed (every path down: the
    /// kernel says ETIMEDOUT), or it is otherwise gone (EPIPE, ENOTCONN).
    #[error("the association was aborted or lost: {0}")]
    Aborted(#[source] io::Error),

    /// A system call failed.
    #[error("{op}: {source}")]
    Io {
        /// What the crate was doing.
        op: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps an OS error from `op`, turning the errors that mean "the association
    /// is gone" into [`Error::Aborted`] and "no SCTP in this kernel" into
    /// [`Error::SctpUnavailable`].
    pub(crate) fn io(op: &'static str, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::EPROTONOSUPPORT | libc::ESOCKTNOSUPPORT) => Self::SctpUnavailable,
            Some(
                libc::ECONNRESET
                | libc::ECONNABORTED
                | libc::EPIPE
                | libc::ENOTCONN
                | libc::ETIMEDOUT,
            ) => Self::Aborted(source),
            _ => Self::Io { op, source },
        }
    }

    /// Whether the association is unusable after this error.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Self::NoSuchStream { .. } | Self::EmptyMessage | Self::MessageTooLarge { .. }
        )
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
