//! One SCTP association on a one-to-one style socket.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use socket2::Socket;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::addr::encode_sockaddr_list;
use crate::cmsg;
use crate::config::SctpConfig;
use crate::error::{Error, Result};
use crate::notification::{AssocState, Notification};
use crate::path::read_status;
use crate::reassembly::{Reassembler, Received, TooLarge};
use crate::socket;
use crate::sys::{self, SOL_SCTP};

/// Size of the buffer each `recvmsg` reads into. Larger messages are read in
/// several pieces and joined.
const READ_BUFFER_LEN: usize = 128 * 1024;

/// An established SCTP association (a one-to-one style socket).
///
/// Every method takes `&self`, so one association can be shared (in an `Arc`)
/// between a task that receives and tasks that send on different streams.
/// `recv` is cancellation-safe: pieces of a message read before the future was
/// dropped are kept for the next call. Dropping the association closes the
/// socket, which shuts the association down gracefully (or aborts it if unread
/// data is left, as the kernel does).
pub struct SctpAssociation {
    pub(crate) fd: AsyncFd<Socket>,
    pub(crate) assoc_id: i32,
    /// Largest message accepted from the peer ([`SctpConfig::max_message_size`]).
    max_message_size: usize,
    /// Largest message [`send`](Self::send) takes: the configured maximum, or less
    /// if the kernel granted a smaller send buffer.
    max_send_size: usize,
    outbound_streams: AtomicU16,
    inbound_streams: AtomicU16,
    receiver: Mutex<Receiver>,
}

/// Receive-side state, behind a std `Mutex`: it is only held while reading
/// without blocking, never across an `.await`.
struct Receiver {
    reassembler: Reassembler,
    buffer: Vec<u8>,
    control: sys::ControlBuffer,
    ended: Option<Ended>,
}

/// Why the receive side is finished; later calls report the same.
#[derive(Clone, Copy)]
enum Ended {
    /// Graceful shutdown completed (EOF, or SHUTDOWN_COMP was delivered).
    Closed,
    /// COMM_LOST or CANT_STR_ASSOC was delivered: nothing can follow it.
    Lost,
    TooLarge(usize),
    Overflow,
}

impl Ended {
    fn error(self) -> Error {
        match self {
            Self::Closed => Error::Closed,
            Self::Lost => Error::Aborted(io::Error::from_raw_os_error(libc::ECONNRESET)),
            Self::TooLarge(limit) => Error::ReceivedMessageTooLarge { limit },
            Self::Overflow => Error::ReassemblyOverflow,
        }
    }
}

impl SctpAssociation {
    /// Connects to a peer reachable at any of `peers` (`sctp_connectx`), after
    /// binding `local` addresses if given (`sctp_bindx`), and waits until the
    /// association is up.
    ///
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// - [`Error::NoAddresses`] if `peers` is empty;
    /// - [`Error::SctpUnavailable`] if the kernel has no SCTP;
    /// - [`Error::ConnectTimeout`] after `timeout`;
    /// - [`Error::ConnectFailed`] if the kernel gave up on the association (INIT
    ///   retries spent), [`Error::Io`] with the kernel's reason otherwise (for
    ///   example ECONNREFUSED when the peer answered with ABORT);
    /// - [`Error::Io`] if a socket option, `sctp_bindx` or `sctp_connectx` fails.
    ///
    /// On any failure the socket is closed.
    ///
    /// # Cancel safety
    ///
    /// Not resumable, but safe to drop: dropping the future closes the socket and
    /// abandons the association being set up.
    pub async fn connect(
        peers: &[SocketAddr],
        local: Option<&[SocketAddr]>,
        config: &SctpConfig,
        timeout: Duration,
    ) -> Result<Self> {
        if peers.is_empty() {
            return Err(Error::NoAddresses("connect"));
        }
        let local = local.unwrap_or_default();
        let fd = socket::new_socket(peers.iter().chain(local))?;
        socket::prepare(&fd, config)?;
        if !local.is_empty() {
            socket::bindx(&fd, local)?;
        }
        let fd = sys::register(fd).map_err(|e| Error::io("registering with tokio", e))?;
        match tokio::time::timeout(timeout, establish(&fd, peers)).await {
            Ok(Ok(())) => Self::from_established(fd, config),
            Ok(Err(err)) => Err(err),
            Err(_elapsed) => Err(Error::ConnectTimeout(timeout)),
        }
    }

    /// Wraps a socket whose association is established (connected or accepted).
    pub(crate) fn from_established(fd: AsyncFd<Socket>, config: &SctpConfig) -> Result<Self> {
        socket::tune(fd.get_ref(), config, false)?;
        let status = read_status(fd.get_ref())?;
        let send_limit = socket::send_buffer_limit(fd.get_ref())?;
        if send_limit < config.max_message_size {
            log::warn!(
                "messages sent are limited to {send_limit} bytes (the send buffer), below max_message_size {}",
                config.max_message_size
            );
        }
        Ok(Self {
            assoc_id: status.assoc_id,
            outbound_streams: AtomicU16::new(status.outstrms),
            inbound_streams: AtomicU16::new(status.instrms),
            max_message_size: config.max_message_size,
            max_send_size: config.max_message_size.min(send_limit),
            receiver: Mutex::new(Receiver {
                reassembler: Reassembler::new(
                    config.max_message_size,
                    config.max_reassembly_bytes,
                    config.reassembly_budget.clone(),
                ),
                buffer: vec![0; READ_BUFFER_LEN],
                control: sys::ControlBuffer([0; 64]),
                ended: None,
            }),
            fd,
        })
    }

    /// Outbound streams negotiated: valid stream ids for [`send`](Self::send) are
    /// `0..outbound_streams()`. Updated when the association restarts.
    pub fn outbound_streams(&self) -> u16 {
        self.outbound_streams.load(Ordering::Relaxed)
    }

    /// Inbound streams negotiated: the peer sends on `0..inbound_streams()`.
    pub fn inbound_streams(&self) -> u16 {
        self.inbound_streams.load(Ordering::Relaxed)
    }

    /// The largest message [`send`](Self::send) accepts: [`SctpConfig::max_message_size`],
    /// or less if the kernel capped the send buffer (`net.core.wmem_max`), since it
    /// refuses a message larger than the send buffer.
    pub fn max_send_size(&self) -> usize {
        self.max_send_size
    }

    /// Sends one whole message on `stream` with payload protocol id `ppid`.
    ///
    /// Waits (without spinning) while the send buffer is full.
    ///
    /// # Errors
    ///
    /// - [`Error::NoSuchStream`] if `stream` is not below
    ///   [`outbound_streams`](Self::outbound_streams);
    /// - [`Error::EmptyMessage`] if `data` is empty;
    /// - [`Error::MessageTooLarge`] if it is longer than
    ///   [`max_send_size`](Self::max_send_size);
    /// - [`Error::Aborted`] if the association is gone, [`Error::Io`] if `sendmsg`
    ///   fails otherwise.
    ///
    /// The first three leave the association usable ([`Error::is_fatal`]).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: the message is queued whole or not at all, so dropping this
    /// future never sends part of it (it may or may not have been sent).
    pub async fn send(&self, stream: u16, ppid: u32, unordered: bool, data: &[u8]) -> Result<()> {
        let outbound_streams = self.outbound_streams();
        if stream >= outbound_streams {
            return Err(Error::NoSuchStream {
                stream,
                outbound_streams,
            });
        }
        if data.is_empty() {
            return Err(Error::EmptyMessage);
        }
        if data.len() > self.max_send_size {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                limit: self.max_send_size,
            });
        }
        let flags = if unordered { sys::SCTP_UNORDERED } else { 0 };
        let control = cmsg::sndinfo(stream, ppid, flags);
        loop {
            let mut guard = self
                .fd
                .writable()
                .await
                .map_err(|e| Error::io("waiting to send", e))?;
            match guard.try_io(|fd| sys::send_message(fd.get_ref(), data, &control)) {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(err)) if err.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(err)) => return Err(Error::io("sending (sendmsg)", err)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Receives the next whole message or notification.
    ///
    /// # Errors
    ///
    /// - [`Error::Closed`] once the peer has shut down and everything it sent has
    ///   been read;
    /// - [`Error::Aborted`] if the association was aborted or lost;
    /// - [`Error::ReceivedMessageTooLarge`] (after aborting) if the peer sent more
    ///   than [`SctpConfig::max_message_size`] in one message;
    /// - [`Error::Io`] if `recvmsg` fails otherwise.
    ///
    /// Once the association has ended, every later call returns the same error.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: pieces of a message read before the future was dropped are
    /// kept for the next call, so it can sit in a `tokio::select!`.
    pub async fn recv(&self) -> Result<Received> {
        loop {
            {
                let mut receiver = self.receiver();
                let Receiver {
                    reassembler, ended, ..
                } = &mut *receiver;
                if let Some(event) = self.take_ready(reassembler, ended) {
                    return Ok(event);
                }
            }
            if let Some(end) = self.ended() {
                return self.read_after_end(end);
            }
            let mut guard = self
                .fd
                .readable()
                .await
                .map_err(|e| Error::io("waiting to receive", e))?;
            match guard.try_io(|fd| self.read_event(fd.get_ref())) {
                Ok(Ok(result)) => return result,
                Ok(Err(err)) => return Err(Error::io("receiving (recvmsg)", err)),
                Err(_would_block) => continue,
            }
        }
    }

    fn ended(&self) -> Option<Ended> {
        self.receiver().ended
    }

    /// After the association ended, the kernel may still hold notifications (a
    /// send-failed event per undelivered message follows COMM_LOST), but it does
    /// not always wake readers again: read without waiting, and once nothing is
    /// left, report the end.
    fn read_after_end(&self, end: Ended) -> Result<Received> {
        if let Ended::TooLarge(_) | Ended::Overflow = end {
            return Err(end.error());
        }
        match self.read_event(self.fd.get_ref()) {
            Ok(Ok(event)) => Ok(event),
            // The kernel's own reason (ECONNRESET, ETIMEDOUT) says more.
            Ok(Err(err @ Error::Aborted(_))) if matches!(end, Ended::Lost) => Err(err),
            _ => Err(end.error()),
        }
    }

    fn receiver(&self) -> MutexGuard<'_, Receiver> {
        // A panic while the lock was held cannot leave the state half-updated in
        // a way that matters more than losing the association, so keep going.
        self.receiver.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads pieces until one event is whole. `Err` is only `WouldBlock`, which
    /// tells tokio to clear readiness; every other outcome is in the inner result.
    fn read_event(&self, fd: &Socket) -> io::Result<Result<Received>> {
        let mut receiver = self.receiver();
        let Receiver {
            reassembler,
            buffer,
            control,
            ended,
            ..
        } = &mut *receiver;
        loop {
            let received = match sys::receive_piece(fd, buffer, control) {
                Ok(received) => received,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Err(err),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Ok(Err(Error::io("receiving (recvmsg)", err))),
            };
            let is_notification = received.flags & sys::MSG_NOTIFICATION != 0;
            if received.len == 0 && !is_notification {
                reassembler.finish();
                *ended = Some(Ended::Closed);
                return Ok(match self.take_ready(reassembler, ended) {
                    Some(event) => Ok(event),
                    None => Err(Error::Closed),
                });
            }
            let piece = buffer.get(..received.len).unwrap_or_default();
            let end_of_record = received.flags & libc::MSG_EOR != 0;
            let info = if is_notification {
                None
            } else {
                let control = control.0.get(..received.control_len).unwrap_or_default();
                cmsg::find_rcvinfo(control)
            };
            match reassembler.push(piece, end_of_record, is_notification, info) {
                Ok(()) => {
                    if let Some(event) = self.take_ready(reassembler, ended) {
                        return Ok(Ok(event));
                    }
                }
                Err(TooLarge::Message) => {
                    let limit = self.max_message_size;
                    log::warn!("peer sent a message over {limit} bytes; aborting the association");
                    abort_on_close(fd);
                    *ended = Some(Ended::TooLarge(limit));
                    return Ok(Err(Error::ReceivedMessageTooLarge { limit }));
                }
                Err(TooLarge::Buffered) => {
                    log::warn!(
                        "peer left too many bytes in unfinished messages; aborting the association"
                    );
                    abort_on_close(fd);
                    *ended = Some(Ended::Overflow);
                    return Ok(Err(Error::ReassemblyOverflow));
                }
            }
        }
    }

    /// The next completed event, with its effects on the association's state:
    /// stream counts from COMM_UP/RESTART, and the end of the association.
    fn take_ready(
        &self,
        reassembler: &mut Reassembler,
        ended: &mut Option<Ended>,
    ) -> Option<Received> {
        let event = reassembler.pop()?;
        self.note_stream_counts(&event);
        // After these the kernel has nothing more to deliver, and on a one-to-one
        // socket it does not always wake readers again, so the next call must
        // not wait.
        if let Received::Notification(Notification::AssocChange(change)) = &event {
            match change.state {
                AssocState::ShutdownComplete => *ended = Some(Ended::Closed),
                AssocState::CommLost | AssocState::CantStartAssoc => *ended = Some(Ended::Lost),
                _ => {}
            }
        }
        Some(event)
    }

    fn note_stream_counts(&self, event: &Received) {
        if let Received::Notification(Notification::AssocChange(change)) = event {
            if matches!(change.state, AssocState::CommUp | AssocState::Restart) {
                self.outbound_streams
                    .store(change.outbound_streams, Ordering::Relaxed);
                self.inbound_streams
                    .store(change.inbound_streams, Ordering::Relaxed);
            }
        }
    }

    /// Whether I-DATA chunk interleaving (RFC 8260) is in use on this association:
    /// both ends asked for it ([`SctpConfig::interleaving`]) and both kernels allow
    /// it (`net.sctp.intl_enable`).
    ///
    /// # Errors
    ///
    /// [`Error::Aborted`] if the association is gone; [`Error::Io`] for any other
    /// failure of the system call.
    pub fn interleaving(&self) -> Result<bool> {
        let mut value = sys::AssocValue {
            assoc_id: self.assoc_id,
            value: 0,
        };
        sys::read_option(
            self.fd.get_ref(),
            SOL_SCTP,
            sys::SCTP_INTERLEAVING_SUPPORTED,
            &mut value,
        )
        .map_err(|e| Error::io("reading SCTP_INTERLEAVING_SUPPORTED", e))?;
        Ok(value.value != 0)
    }

    /// Starts a graceful shutdown: queued data is still delivered, then the
    /// association closes. SCTP has no half-close: after this neither side can
    /// send. Keep calling [`recv`](Self::recv) until it returns [`Error::Closed`]
    /// to read what the peer sent before it saw the shutdown.
    ///
    /// # Errors
    ///
    /// [`Error::Aborted`] if the association is gone; [`Error::Io`] for any other
    /// failure of the system call.
    pub fn shutdown(&self) -> Result<()> {
        self.fd
            .get_ref()
            .shutdown(std::net::Shutdown::Write)
            .map_err(|e| Error::io("shutting down", e))
    }

    /// Aborts the association at once (an ABORT chunk): queued data is dropped and
    /// the peer sees [`Error::Aborted`].
    pub fn abort(self) {
        set_linger_zero(self.fd.get_ref());
        // Dropping `self` closes the socket, which sends the ABORT.
    }
}

/// Makes the close of this socket send ABORT (`SO_LINGER` 0). A one-to-one socket
/// cannot send `SCTP_ABORT` with `sendmsg` (the kernel says EINVAL, checked in
/// the VM), and the descriptor is shared by every `&self` caller, so the ABORT
/// leaves when the association is dropped.
fn abort_on_close(fd: &Socket) {
    set_linger_zero(fd);
}

fn set_linger_zero(fd: &Socket) {
    if let Err(err) = fd.set_linger(Some(Duration::ZERO)) {
        log::warn!("SO_LINGER 0 failed, the close will be graceful: {err}");
    }
}

impl std::fmt::Debug for SctpAssociation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SctpAssociation")
            .field("fd", &self.fd.get_ref().as_raw_fd())
            .field("assoc_id", &self.assoc_id)
            .field("outbound_streams", &self.outbound_streams())
            .field("inbound_streams", &self.inbound_streams())
            .finish()
    }
}

/// The descriptor, for options this crate does not wrap.
impl AsRawFd for SctpAssociation {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }
}

/// The descriptor, for options this crate does not wrap.
impl AsFd for SctpAssociation {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.get_ref().as_fd()
    }
}

fn socket_error(fd: &Socket) -> Result<Option<io::Error>> {
    fd.take_error()
        .map_err(|e| Error::io("reading SO_ERROR", e))
}

/// `sctp_connectx` on a non-blocking socket, then waits for the outcome.
///
/// The kernel reports success by making the socket writable once the association
/// is ESTABLISHED. Failure sets `SO_ERROR` (ECONNREFUSED on ABORT, ETIMEDOUT when
/// INIT retries run out) and queues a CANT_STR_ASSOC notification, which makes
/// the socket readable although `recvmsg` on an unconnected one-to-one socket only
/// says ENOTCONN. Waiting for either readiness, then checking both, catches every
/// case; waiting for writability alone would hang forever on a dead peer.
async fn establish(fd: &AsyncFd<Socket>, peers: &[SocketAddr]) -> Result<()> {
    let addrs = encode_sockaddr_list(peers);
    match sys::set_option_bytes(fd.get_ref(), SOL_SCTP, sys::SCTP_SOCKOPT_CONNECTX, &addrs) {
        Ok(_) => {}
        Err(err) if err.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(err) => return Err(Error::io("connecting (sctp_connectx)", err)),
    }
    loop {
        let mut guard = fd
            .ready(Interest::READABLE | Interest::WRITABLE)
            .await
            .map_err(|e| Error::io("waiting for the association", e))?;
        if let Some(err) = socket_error(fd.get_ref())? {
            return Err(Error::Io {
                op: "connecting",
                source: err,
            });
        }
        match read_status(fd.get_ref()) {
            Ok(status) if status.state == sys::SCTP_ESTABLISHED => return Ok(()),
            // Until it is established, a one-to-one socket has no association to
            // report (EINVAL).
            _ => {}
        }
        if guard.ready().is_readable() {
            return Err(Error::ConnectFailed {
                state: AssocState::CantStartAssoc,
                error: 0,
            });
        }
        guard.clear_ready();
    }
}
