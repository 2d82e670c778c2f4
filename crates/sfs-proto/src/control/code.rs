//! Numeric error codes, shared by error replies, transfer aborts and session close.

use std::fmt;

/// A wire error code: a `u16` with named constants, so that codes this build does
/// not know still round-trip and can be shown.
///
/// Codes below `0x100` are request outcomes a user may see (the file was not there);
/// codes from `0x100` are faults of the session itself (the peer broke the protocol).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u16);

macro_rules! error_codes {
    ($($(#[$doc:meta])* $name:ident = $value:expr, $text:expr;)*) => {
        impl ErrorCode {
            $($(#[$doc])* pub const $name: Self = Self($value);)*

            /// A short English description, or `None` for a code this build does not know.
            pub fn description(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some($text),)*
                    _ => None,
                }
            }

            /// The constant's name, or `None` for a code this build does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// No error: a clean close (after QUIT, for example).
    NO_ERROR = 0x0000, "no error";
    /// The request is malformed or makes no sense in this state.
    BAD_REQUEST = 0x0001, "bad request";
    /// A command other than login, registration, QUIT arrived before login.
    NOT_LOGGED_IN = 0x0002, "not logged in";
    /// Wrong user name or password. Deliberately does not say which.
    AUTH_FAILED = 0x0003, "authentication failed";
    /// The server does not allow self-registration.
    REGISTRATION_CLOSED = 0x0004, "registration is closed";
    /// A user name outside the allowed pattern, or taken (on registration).
    INVALID_USER = 0x0005, "invalid user name";
    /// A password the server refuses (too long, too short).
    INVALID_PASSWORD = 0x0006, "invalid password";
    /// The path, user or share does not exist.
    NOT_FOUND = 0x0007, "not found";
    /// The user lacks the right for this operation.
    PERMISSION_DENIED = 0x0008, "permission denied";
    /// The target already exists.
    ALREADY_EXISTS = 0x0009, "already exists";
    /// A directory was expected.
    NOT_A_DIRECTORY = 0x000a, "not a directory";
    /// A file was expected.
    IS_A_DIRECTORY = 0x000b, "is a directory";
    /// A directory to remove is not empty.
    NOT_EMPTY = 0x000c, "directory not empty";
    /// A size is over a limit (the largest file an upload may announce, a message).
    TOO_LARGE = 0x000d, "too large";
    /// A path with forbidden characters, or too long, or escaping the home.
    INVALID_PATH = 0x000e, "invalid path";
    /// A limit on concurrent work (transfers, logins) is reached; retry later.
    BUSY = 0x000f, "busy";
    /// A transfer failed its length or digest check.
    TRANSFER_FAILED = 0x0010, "transfer failed integrity check";
    /// A transfer was cancelled by one side.
    ABORTED = 0x0011, "aborted";
    /// The server's storage is full.
    NO_SPACE = 0x0012, "no space left";
    /// The upload would take the owner of the target over their byte or file
    /// quota (uploads in progress count).
    QUOTA_EXCEEDED = 0x0013, "quota exceeded";
    /// The file's first bytes are not those of the partial copy being resumed:
    /// the file changed since the interrupted transfer.
    RESUME_MISMATCH = 0x0014, "the file changed since the partial transfer";
    /// There is no kept partial upload of that length to continue.
    NO_PARTIAL = 0x0015, "no partial upload to continue";
    /// No more associations allowed: the session, the user or the server is at
    /// its limit of extra data associations.
    ASSOCIATION_LIMIT = 0x0016, "no more associations allowed";
    /// A data association was lost, and with it the transfers it carried.
    ASSOCIATION_LOST = 0x0017, "a data association was lost";
    /// An unexpected server-side failure. Details go to the server log, not the peer.
    INTERNAL = 0x00ff, "internal error";
    /// The peer broke the protocol: a message out of place or malformed.
    PROTOCOL_VIOLATION = 0x0100, "protocol violation";
    /// The peer speaks another protocol version.
    UNSUPPORTED_VERSION = 0x0101, "unsupported protocol version";
    /// A data record failed to open (forged, replayed, dropped, reordered).
    RECORD_FAILURE = 0x0102, "data record failed authentication or ordering";
    /// A key reached its confidentiality limit.
    KEY_EXHAUSTED = 0x0103, "record key exhausted";
    /// No login within the grace period, or no traffic within the idle timeout.
    TIMED_OUT = 0x0104, "timed out";
    /// The TLS layer failed (handshake, certificate, alert).
    TLS_FAILURE = 0x0105, "TLS failure";
    /// A peer exceeded a buffer or flow-control limit.
    FLOW_CONTROL = 0x0106, "flow control limit exceeded";
    /// The server is shutting down.
    SHUTTING_DOWN = 0x0107, "server shutting down";
    /// The transport (the SCTP association) went away under the session.
    TRANSPORT_CLOSED = 0x0108, "transport closed";
}

impl ErrorCode {
    /// True for the codes that close a whole session rather than fail one request.
    pub fn is_session_fault(self) -> bool {
        self.0 >= 0x100
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ErrorCode({:#06x})", self.0),
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.description() {
            Some(text) => write!(f, "{text} ({:#06x})", self.0),
            None => write!(f, "error {:#06x}", self.0),
        }
    }
}
