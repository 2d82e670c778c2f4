//! Many requests and transfers within the limits the server announced at login:
//! [`Remote::transfer_all`] and [`Remote::run_all`] take any number of items,
//! keep at most the announced number in flight (pipelined: the next goes out as
//! soon as one finishes, without waiting for a round trip of its own), and
//! return the results in the order given.
//!
//! The count the client keeps is never below the server's: a request is counted
//! from before it is sent until its last reply arrives, a transfer from its
//! request until this side saw it end, and the server stops counting each
//! earlier than that. So a queue that stays within the limits is never refused
//! for having many. A server that refuses anyway (`BUSY`: an older one that
//! announced nothing, so the fallback limits were too high) makes the queue
//! lower its limit to what was in flight and try the refused item again.

use std::collections::VecDeque;

use sfs_net::Transport;
use sfs_proto::control::{Command, ErrorCode, Reply, RequestId};
use sfs_proto::session::{SessionConfig, StreamCounts};
use sfs_proto::transfer::{DEFAULT_WINDOW, MIN_WINDOW};

use super::adaptive::Associations;
use super::report::TotalProgress;
use super::transfers::{PendingTransfer, TransferState};
use super::{ClientError, Remote, TransferDone, TransferSpec};

/// The client's memory budget unless one is given: 16 MiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 16 * 1024 * 1024;

/// How this client's session uses memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOptions {
    /// Bytes of transfer data the session may hold in memory, however many
    /// transfers are in flight. Three quarters are the download window (the
    /// connection-wide credit: received chunks waiting ahead of a gap can
    /// never take more); the rest covers upload chunks on their way out (one
    /// per upload at a time, sent before the next is read) and the send queue.
    /// At least one chunk of window is always kept. Peak memory is this plus
    /// a fixed overhead.
    pub memory_budget: u64,
    /// How many associations to use (see [`Associations`]); extras are opened
    /// only once a connector is set ([`Remote::set_connector`]).
    pub associations: Associations,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            memory_budget: DEFAULT_MEMORY_BUDGET,
            associations: Associations::default(),
        }
    }
}

impl ClientOptions {
    /// The send queue's share of the budget: upload data is read no further
    /// while this much waits to be sent (at least one record).
    pub(super) fn send_queue_cap(&self) -> usize {
        let cap = (self.memory_budget / 4).max(64 * 1024);
        usize::try_from(cap).unwrap_or(usize::MAX)
    }

    /// The protocol session's settings for these options.
    pub fn session_config(&self, streams: StreamCounts) -> SessionConfig {
        let window = (self.memory_budget / 4 * 3).max(MIN_WINDOW);
        SessionConfig {
            connection_window: window,
            transfer_window: DEFAULT_WINDOW.min(window),
            ..SessionConfig::new(streams)
        }
    }
}

/// The limits a server enforces per session, as its login answer announced
/// them (or [`ServerLimits::FALLBACK`] for a server that announces none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Transfers (downloads and uploads together) open at once.
    pub max_transfers: usize,
    /// Requests in flight at once, transfer requests included.
    pub max_requests: usize,
}

impl ServerLimits {
    /// What the client assumes when the login answer carries no limits: the
    /// lowest defaults servers without the announcement shipped with. A server
    /// configured lower still works: its `BUSY` lowers the limit (module docs).
    pub const FALLBACK: Self = Self {
        max_transfers: 4,
        max_requests: 32,
    };

    /// The limits in a login answer, or [`Self::FALLBACK`] for a plain `Ok`.
    /// Zeros are taken as one, so a queue always makes progress.
    pub fn from_login(replies: &[Reply]) -> Self {
        match replies.last() {
            Some(Reply::Limits {
                max_transfers,
                max_requests,
                ..
            }) => Self {
                max_transfers: usize::try_from(*max_transfers).unwrap_or(usize::MAX).max(1),
                max_requests: usize::try_from(*max_requests).unwrap_or(usize::MAX).max(1),
            },
            _ => Self::FALLBACK,
        }
    }

    /// These limits, further bounded by `max_requests` of this side's own
    /// session (it refuses to send beyond it).
    pub(super) fn within(self, own_max_requests: usize) -> Self {
        Self {
            max_transfers: self.max_transfers.min(own_max_requests.max(1)),
            max_requests: self.max_requests.min(own_max_requests.max(1)),
        }
    }
}

/// True for the refusal a server gives to one request or transfer too many.
fn is_busy(result: &Result<impl Sized, ClientError>) -> bool {
    matches!(result, Err(ClientError::Server { code, .. }) if *code == ErrorCode::BUSY)
}

/// The same failure again, for every item a wait gave up on.
fn repeat(err: &ClientError) -> ClientError {
    match err {
        ClientError::Interrupted => ClientError::Interrupted,
        ClientError::Closed(reason) => ClientError::Closed(reason.clone()),
        other => ClientError::Closed(other.to_string()),
    }
}

impl<T: Transport> Remote<T> {
    /// The limits this session keeps to (see [`ServerLimits`]).
    pub fn limits(&self) -> ServerLimits {
        self.limits
    }

    /// Keeps to `limits` instead of those the server announced: lower ones to
    /// run fewer transfers at once. Higher ones only cost `BUSY` refusals,
    /// after which the queue lowers them again (module docs). Zeros are taken
    /// as one.
    pub fn set_limits(&mut self, limits: ServerLimits) {
        self.limits = ServerLimits {
            max_transfers: limits.max_transfers.max(1),
            max_requests: limits.max_requests.max(1),
        };
    }

    /// Transfers this side counts as open: those under way and those given up
    /// before the server opened them (the server still opens, then aborts them).
    fn transfers_in_flight(&self) -> usize {
        self.transfers
            .iter()
            .filter(|pending| pending.result.is_none())
            .count()
            + self.orphans.len()
    }

    /// Whether one more request may go out now.
    fn may_send(&self) -> bool {
        self.session.pending_requests() < self.limits.max_requests
    }

    /// Whether one more transfer may start now.
    /// Not while a fixed number of associations is being opened: a transfer
    /// uses the associations bound when it opens.
    fn may_start_transfer(&self) -> bool {
        self.may_send()
            && self.transfers_in_flight() < self.limits.max_transfers
            && !self.extras.holds_transfers()
    }

    /// Lowers the limits after a `BUSY` refusal to what was in flight when it
    /// came (at least one), so the refused item fits when it is tried again.
    fn lower_limits(&mut self, transfers: Option<usize>, requests: Option<usize>) {
        if let Some(transfers) = transfers {
            self.limits.max_transfers = self.limits.max_transfers.min(transfers.max(1));
        }
        if let Some(requests) = requests {
            self.limits.max_requests = self.limits.max_requests.min(requests.max(1));
        }
        log::debug!("the server is busy: limits lowered to {:?}", self.limits);
    }

    /// Runs any number of downloads and uploads, at most the announced number
    /// at once, spread over the data streams, one progress bar each plus a total
    /// bar when there are several. Returns one result per spec, in order. On an
    /// interrupt every unfinished transfer is aborted and reports
    /// [`ClientError::Interrupted`], as do those not yet started.
    ///
    /// Failures are per transfer, in the returned results: a local file that
    /// cannot be used, the server's refusal, a failed digest check, the session's
    /// end.
    ///
    /// # Cancel safety
    ///
    /// Not cancel-safe. A dropped call aborts nothing: its transfers keep their
    /// `.part` files and stay registered, later waits on this `Remote` keep
    /// driving them, and their results are never reported; those not yet
    /// started never start. A drop in the middle of sending an upload chunk
    /// also loses that record and ends the session. Stop transfers with the
    /// interrupt ([`Self::set_interrupt`]), which aborts them cleanly.
    pub async fn transfer_all(
        &mut self,
        specs: &[TransferSpec],
    ) -> Vec<Result<TransferDone, ClientError>> {
        let first = self.transfers.len();
        let mut results: Vec<Option<Result<TransferDone, ClientError>>> =
            specs.iter().map(|_| None).collect();
        let mut queue: VecDeque<usize> = (0..specs.len()).collect();
        // The spec of each of `self.transfers[first..]`, in the same order.
        let mut started: Vec<usize> = Vec::new();
        let total = (specs.len() > 1).then(|| self.reporter.total(specs.len()));
        let mut interrupt = self.new_interrupt();
        if !specs.is_empty() {
            self.open_initial_associations();
        }
        loop {
            while !queue.is_empty() && self.may_start_transfer() {
                let Some(next) = queue.pop_front() else { break };
                let pending = self.start_transfer(&specs[next]);
                self.transfers.push(pending);
                started.push(next);
            }
            self.collect_transfers(
                first,
                &mut started,
                &mut results,
                &mut queue,
                total.as_ref(),
            );
            if queue.is_empty() && started.is_empty() {
                break;
            }
            let queued = !queue.is_empty();
            let waited = self
                .wait_until_or(&mut interrupt, |c| {
                    if let Some(total) = &total {
                        total.update(c.transfers[first..].iter().map(|p| &p.bar));
                    }
                    c.transfers[first..].iter().any(|p| p.result.is_some())
                        || (queued && c.may_start_transfer())
                })
                .await;
            if let Err(err) = waited {
                self.abandon_transfers(first, &err).await;
                self.collect_transfers(first, &mut started, &mut results, &mut queue, None);
                for index in queue.drain(..) {
                    results[index] = Some(Err(repeat(&err)));
                }
                break;
            }
        }
        if let Some(total) = total {
            total.finish();
        }
        results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| Err(ClientError::TransferFailed("not run".into())))
            })
            .collect()
    }

    /// Moves the results of the finished transfers among `self.transfers[first..]`
    /// to `results`, so the entries (and their open files) do not pile up. One
    /// refused as `BUSY` before it opened goes back to the front of `queue`
    /// while others are in flight, and the limits are lowered.
    fn collect_transfers(
        &mut self,
        first: usize,
        started: &mut Vec<usize>,
        results: &mut [Option<Result<TransferDone, ClientError>>],
        queue: &mut VecDeque<usize>,
        total: Option<&TotalProgress>,
    ) {
        let mut index = first;
        while index < self.transfers.len() {
            if self.transfers[index].result.is_none() {
                index += 1;
                continue;
            }
            let pending: PendingTransfer = self.transfers.remove(index);
            let spec = started.remove(index - first);
            let result = pending
                .result
                .unwrap_or_else(|| Err(ClientError::TransferFailed("not run".into())));
            // The server runs requests in order: every transfer requested
            // before this one was opened or refused before this refusal, and
            // those opened and not yet seen to end are what it counted.
            let opened = self
                .transfers
                .iter()
                .filter(|p| p.result.is_none() && p.transfer.is_some())
                .count();
            if is_busy(&result) && pending.transfer.is_none() && self.transfers_in_flight() > 0 {
                self.lower_limits(Some(opened), None);
                queue.push_front(spec);
                self.reporter.remove(&pending.bar);
                continue;
            }
            if let Some(total) = total {
                total.file_done(&pending.bar);
                // The total bar says what is done; the finished file's own bar
                // would only add a line per file.
                self.reporter.remove(&pending.bar);
            }
            results[spec] = Some(result);
        }
    }

    /// After a wait failed (interrupt, session end): aborts every unfinished
    /// transfer among `self.transfers[first..]` and records why.
    async fn abandon_transfers(&mut self, first: usize, err: &ClientError) {
        for index in first..self.transfers.len() {
            if self.transfers[index].result.is_some() {
                continue;
            }
            match self.transfers[index].transfer {
                Some(transfer) => {
                    // The session may already be closed; the transfer fails either way.
                    let _ = self.session.abort_transfer(
                        transfer,
                        ErrorCode::ABORTED,
                        "cancelled by the user",
                    );
                }
                // The server has not opened it yet: abort it when it does.
                None => {
                    let upload = matches!(self.transfers[index].kind, TransferState::Upload { .. });
                    self.orphans.insert(self.transfers[index].request, upload);
                }
            }
            self.finish_transfer(index, Err(repeat(err)));
        }
        // Tell the server now, so it stops sending; failures show at the next
        // request. Bounded: a server that stopped reading must not hold us here.
        let flush = self.driver.flush(&mut self.session);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), flush).await;
    }

    /// Sends any number of ordinary commands (not RETR or STOR: use
    /// [`Self::transfer_all`]), at most the announced number in flight at
    /// once, and collects each whole answer. Returns one result per command, in
    /// order: its replies (several for a multi-part answer), or its error as
    /// [`Self::wait_for`] gives it.
    ///
    /// The commands are pipelined: the server runs them one after another in
    /// the order given, so later ones see what earlier ones did (`MKD a` before
    /// `MKD a/b`).
    ///
    /// # Errors
    ///
    /// Per command, in the results. An interrupt or the session's end fails
    /// every command not yet answered with [`ClientError::Interrupted`] or
    /// [`ClientError::Closed`].
    ///
    /// # Cancel safety
    ///
    /// As [`Self::wait_for`]: not cancel-safe. Requests already sent stay in
    /// flight and their answers are dropped when they come; those not yet sent
    /// are never sent.
    pub async fn run_all(
        &mut self,
        commands: Vec<Command>,
    ) -> Vec<Result<Vec<Reply>, ClientError>> {
        let mut results: Vec<Option<Result<Vec<Reply>, ClientError>>> =
            commands.iter().map(|_| None).collect();
        let mut queue: VecDeque<(usize, Command)> = commands.into_iter().enumerate().collect();
        let mut in_flight: Vec<(usize, RequestId, Command)> = Vec::new();
        let mut interrupt = self.new_interrupt();
        loop {
            while self.may_send() {
                let Some((index, command)) = queue.pop_front() else {
                    break;
                };
                match self.send(command.clone()) {
                    Ok(id) => in_flight.push((index, id, command)),
                    Err(err) => results[index] = Some(Err(err)),
                }
            }
            // Collect what is answered, in any order; requeue a BUSY refusal.
            let mut position = 0;
            while position < in_flight.len() {
                let id = in_flight[position].1;
                if !self.answers.get(&id).is_none_or(|a| a.complete) {
                    position += 1;
                    continue;
                }
                let (index, _, command) = in_flight.remove(position);
                let result = self.take_answer(id);
                if is_busy(&result) && !in_flight.is_empty() {
                    self.lower_limits(None, Some(in_flight.len()));
                    queue.push_front((index, command));
                    continue;
                }
                results[index] = Some(result);
            }
            if queue.is_empty() && in_flight.is_empty() {
                break;
            }
            let queued = !queue.is_empty();
            let waited = self
                .wait_until_or(&mut interrupt, |c| {
                    in_flight
                        .iter()
                        .any(|(_, id, _)| c.answers.get(id).is_none_or(|a| a.complete))
                        || (queued && c.may_send())
                })
                .await;
            if let Err(err) = waited {
                for (index, id, _) in in_flight.drain(..) {
                    self.answers.remove(&id);
                    results[index] = Some(Err(repeat(&err)));
                }
                for (index, _) in queue.drain(..) {
                    results[index] = Some(Err(repeat(&err)));
                }
                break;
            }
        }
        results
            .into_iter()
            .map(|result| result.unwrap_or_else(|| Err(ClientError::Closed("not sent".into()))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_the_login_answer_or_fall_back() {
        let announced = [Reply::Limits {
            max_transfers: 32,
            max_requests: 0,
            transfer_window: 1,
            connection_window: 1,
            max_associations: 1,
        }];
        assert_eq!(
            ServerLimits::from_login(&announced),
            ServerLimits {
                max_transfers: 32,
                max_requests: 1,
            }
        );
        assert_eq!(
            ServerLimits::from_login(&[Reply::Ok]),
            ServerLimits::FALLBACK
        );
        let own = ServerLimits::from_login(&announced).within(16);
        assert_eq!(own.max_transfers, 16);
    }

    #[test]
    fn the_budget_sets_the_windows() {
        let streams = StreamCounts {
            outbound: 3,
            inbound: 3,
        };
        let options = ClientOptions {
            memory_budget: 8 << 20,
            ..ClientOptions::default()
        };
        let config = options.session_config(streams);
        assert_eq!(config.connection_window, 6 << 20);
        assert_eq!(config.transfer_window, DEFAULT_WINDOW);
        assert_eq!(options.send_queue_cap(), 2 << 20);
        let tiny = ClientOptions {
            memory_budget: 0,
            ..ClientOptions::default()
        };
        assert_eq!(tiny.session_config(streams).connection_window, MIN_WINDOW);
    }
}
