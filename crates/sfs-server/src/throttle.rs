//! The failed-login policy.
//!
//! Pure bookkeeping: the clock comes in as a `now: Instant` argument and the answer
//! is a [`Verdict`] (how long to wait before replying, whether to close), so a session
//! applies it with `tokio::time::sleep` and tests drive it with a fake clock.
//!
//! Four mechanisms, as docs/ARCHITECTURE.md section 5 and docs/SECURITY.md list:
//!
//! 1. **A growing delay per connection**: the n-th failure on one connection waits
//!    `base_delay * 2^(n-1)`, capped at `max_delay`.
//! 2. **A per-connection cap**: after `max_failures_per_connection` failures the
//!    connection is closed.
//! 3. **An expiring penalty per (source, user name)**: failures are counted per
//!    source address (IPv6 sources per /64, since one host commonly owns the whole
//!    /64) *and* user name. From `user_threshold` failures within `source_window`
//!    on, every attempt at that name from that source first waits `source_penalty`.
//!    One person's typos slow only their own name: a colleague behind the same NAT
//!    address who types the right password is not held up.
//! 4. **An expiring penalty, then a refusal, per source**: the source's score is
//!    the sum over its names of their failures, each name counting at most
//!    `user_threshold` (so it takes several names, or guessing, to raise it). From
//!    `source_threshold` on, every attempt from the source waits `source_penalty`;
//!    from `refuse_threshold` (or that many failures on one name) attempts are
//!    refused without checking the password until failures expire.
//!
//! The model is SFTPGo's defender (a score per host within an observation window,
//! a ban past a threshold) and OpenSSH's `PerSourcePenalties` (penalize the source,
//! refuse while penalized), with the user name added to the key so that a shared
//! address is not one account. Failures expire `source_window` after they happen,
//! so every penalty ends by itself.
//!
//! Names that are not valid user names all count as one name (they can never log
//! in, and an attacker must not grow memory by sending long ones).
//!
//! Peer addresses are not authenticated in SCTP (docs/ARCHITECTURE.md section 2), so the
//! penalties only slow guessing; they never grant anything.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

use crate::accounts::Username;

/// The tunable numbers of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Wait after the first failure on a connection.
    pub base_delay: Duration,
    /// Upper bound of the per-connection delay.
    pub max_delay: Duration,
    /// Failures allowed on one connection before it is closed.
    pub max_failures_per_connection: u32,
    /// Failures for one user name from one source, within the window, before
    /// attempts at that name from that source wait the penalty. It is also the most
    /// one name adds to its source's score.
    pub user_threshold: u32,
    /// The source's score, within the window, before every attempt from it waits
    /// the penalty.
    pub source_threshold: u32,
    /// The source's score (or one name's failures) at which its attempts are
    /// refused without a password check.
    pub refuse_threshold: u32,
    /// How long a failure counts against its source and name.
    pub source_window: Duration,
    /// Extra wait for every attempt that is penalized.
    pub source_penalty: Duration,
    /// Bound on remembered (source, name) pairs, so a spray of addresses or names
    /// cannot grow memory without limit. When full, the pair with the oldest last
    /// failure is dropped.
    pub max_tracked_sources: usize,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_failures_per_connection: 5,
            user_threshold: 5,
            source_threshold: 15,
            refuse_threshold: 30,
            source_window: Duration::from_secs(15 * 60),
            source_penalty: Duration::from_secs(5),
            max_tracked_sources: 65_536,
        }
    }
}

/// What a session does after a failed login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Wait this long before sending the failure reply.
    pub delay: Duration,
    /// Close the connection after replying.
    pub close: bool,
}

/// Whether a login attempt is checked, and after how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Check the password after waiting this long (zero unless penalized).
    Check(Duration),
    /// Refuse without checking: the source (or this name from it) failed too often.
    Refuse,
}

/// The failed-login count of one connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectionAttempts {
    failures: u32,
}

impl ConnectionAttempts {
    /// A connection with no failure yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Failures so far on this connection.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// Per-source failure history, shared by every session of the server (put it behind
/// a `std::sync::Mutex`: no call awaits, and each is short).
#[derive(Debug)]
pub struct LoginThrottle {
    policy: LoginPolicy,
    sources: HashMap<SourceKey, SourceRecord>,
    /// (source, name) pairs remembered, over every source.
    pairs: usize,
}

/// A source address as the throttle groups it: IPv4 as is, IPv6 by /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SourceKey(IpAddr);

impl SourceKey {
    fn of(address: IpAddr) -> Self {
        match address {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(Ipv6Addr::from(bits)))
                }
            },
        }
    }
}

/// The name a failure is counted under: a valid user name as is, anything else
/// as one shared name (the empty string, which no user name can be).
fn name_key(user: &str) -> String {
    Username::parse(user)
        .map(|name| name.to_string())
        .unwrap_or_default()
}

/// Times of failures still inside the window, oldest first.
type Failures = VecDeque<Instant>;

#[derive(Debug, Default)]
struct SourceRecord {
    /// Failed logins per name.
    names: HashMap<String, Failures>,
    /// Costly attempts not tied to a name (registrations), each counted in full.
    unnamed: Failures,
}

fn forget_before(failures: &mut Failures, cutoff: Option<Instant>) {
    let Some(cutoff) = cutoff else { return };
    while failures.front().is_some_and(|&t| t < cutoff) {
        failures.pop_front();
    }
}

impl SourceRecord {
    /// Drops expired failures and names left without any; returns how many names
    /// were dropped.
    fn expire(&mut self, cutoff: Option<Instant>) -> usize {
        forget_before(&mut self.unnamed, cutoff);
        let before = self.names.len();
        self.names.retain(|_, failures| {
            forget_before(failures, cutoff);
            !failures.is_empty()
        });
        before - self.names.len()
    }

    fn is_empty(&self) -> bool {
        self.names.is_empty() && self.unnamed.is_empty()
    }

    /// The source's score: unnamed attempts in full, each name up to `cap`.
    fn score(&self, cap: u32) -> usize {
        let cap = cap as usize;
        self.unnamed.len() + self.names.values().map(|f| f.len().min(cap)).sum::<usize>()
    }

    fn newest(&self) -> Option<Instant> {
        self.names
            .values()
            .filter_map(|f| f.back().copied())
            .chain(self.unnamed.back().copied())
            .max()
    }
}

impl LoginThrottle {
    /// An empty history under `policy`.
    pub fn new(policy: LoginPolicy) -> Self {
        Self {
            policy,
            sources: HashMap::new(),
            pairs: 0,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &LoginPolicy {
        &self.policy
    }

    /// Whether a login attempt at `user` from `source` is checked, and after how
    /// long (see the module documentation for the rule).
    pub fn admission(&mut self, source: IpAddr, user: &str, now: Instant) -> Admission {
        let policy = self.policy.clone();
        let Some(record) = self.current(source, now) else {
            return Admission::Check(Duration::ZERO);
        };
        let name_failures = record.names.get(&name_key(user)).map_or(0, VecDeque::len);
        let score = record.score(policy.user_threshold);
        if score >= policy.refuse_threshold as usize
            || name_failures >= policy.refuse_threshold as usize
        {
            Admission::Refuse
        } else if score >= policy.source_threshold as usize
            || name_failures >= policy.user_threshold as usize
        {
            Admission::Check(policy.source_penalty)
        } else {
            Admission::Check(Duration::ZERO)
        }
    }

    /// How long an attempt from `source` not tied to a user name (a registration)
    /// must wait: the penalty once the source's score reaches `source_threshold`.
    pub fn admission_delay(&mut self, source: IpAddr, now: Instant) -> Duration {
        let threshold = self.policy.source_threshold as usize;
        let cap = self.policy.user_threshold;
        let penalty = self.policy.source_penalty;
        match self.current(source, now) {
            Some(record) if record.score(cap) >= threshold => penalty,
            _ => Duration::ZERO,
        }
    }

    /// The source's record with expired failures dropped, or `None` if nothing
    /// is left of it.
    fn current(&mut self, source: IpAddr, now: Instant) -> Option<&SourceRecord> {
        let cutoff = now.checked_sub(self.policy.source_window);
        let key = SourceKey::of(source);
        let record = self.sources.get_mut(&key)?;
        self.pairs -= record.expire(cutoff);
        if record.is_empty() {
            self.sources.remove(&key);
            return None;
        }
        self.sources.get(&key)
    }

    /// Records a failed login at `user` on `connection` from `source`, and says how
    /// to answer.
    pub fn record_failure(
        &mut self,
        connection: &mut ConnectionAttempts,
        source: IpAddr,
        user: &str,
        now: Instant,
    ) -> Verdict {
        connection.failures = connection.failures.saturating_add(1);
        self.remember(source, Some(name_key(user)), now);

        let doublings = connection.failures.saturating_sub(1).min(31);
        let delay = self
            .policy
            .base_delay
            .saturating_mul(1u32 << doublings)
            .min(self.policy.max_delay);
        Verdict {
            delay,
            close: connection.failures >= self.policy.max_failures_per_connection,
        }
    }

    /// Records a successful login. The source's history is kept: a correct guess
    /// after many failures should not wipe the evidence of the guessing.
    pub fn record_success(&mut self, connection: &mut ConnectionAttempts) {
        connection.failures = 0;
    }

    /// Drops every source whose failures have all expired. Call it now and then (say
    /// once a minute) to return memory.
    pub fn prune(&mut self, now: Instant) {
        let cutoff = now.checked_sub(self.policy.source_window);
        let mut dropped = 0;
        self.sources.retain(|_, record| {
            dropped += record.expire(cutoff);
            !record.is_empty()
        });
        self.pairs -= dropped;
    }

    /// The number of sources currently remembered.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Counts an attempt from `source` that costs the server as much as a failed
    /// login, whatever its outcome: a registration (one bcrypt, a rewrite of the
    /// users file, a new home). Kept in its own throttle, it counts in full against
    /// the source, so a source that registers often waits
    /// [`LoginPolicy::source_penalty`] before each further try.
    pub fn record_costly_attempt(&mut self, source: IpAddr, now: Instant) {
        self.remember(source, None, now);
    }

    fn remember(&mut self, source: IpAddr, name: Option<String>, now: Instant) {
        let key = SourceKey::of(source);
        let is_new = match self.sources.get(&key) {
            None => true,
            Some(record) => name.as_ref().is_some_and(|n| !record.names.contains_key(n)),
        };
        if is_new && self.pairs >= self.policy.max_tracked_sources {
            self.prune(now);
            if self.pairs >= self.policy.max_tracked_sources {
                self.evict_stalest();
            }
        }
        let cutoff = now.checked_sub(self.policy.source_window);
        let record = self.sources.entry(key).or_default();
        self.pairs -= record.expire(cutoff);
        let failures = match name {
            Some(name) => {
                if !record.names.contains_key(&name) {
                    self.pairs += 1;
                }
                record.names.entry(name).or_default()
            }
            None => &mut record.unnamed,
        };
        failures.push_back(now);
        // Only the count up to the refusal matters; keeping more would let one
        // source grow this list without bound.
        let keep = (self.policy.refuse_threshold as usize)
            .max(self.policy.source_threshold as usize)
            .max(1);
        while failures.len() > keep {
            failures.pop_front();
        }
    }

    fn evict_stalest(&mut self) {
        let stalest = self
            .sources
            .iter()
            .min_by_key(|(_, record)| record.newest())
            .map(|(key, _)| *key);
        if let Some(key) = stalest {
            if let Some(record) = self.sources.remove(&key) {
                self.pairs -= record.names.len();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LoginPolicy {
        LoginPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_failures_per_connection: 5,
            user_threshold: 3,
            source_threshold: 3,
            refuse_threshold: 6,
            source_window: Duration::from_secs(60),
            source_penalty: Duration::from_secs(2),
            max_tracked_sources: 4,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn delay_grows_then_caps_and_connection_closes_at_the_cap() {
        let mut throttle = LoginThrottle::new(LoginPolicy {
            user_threshold: 100,
            source_threshold: 100,
            refuse_threshold: 100,
            ..policy()
        });
        let mut conn = ConnectionAttempts::new();
        let start = Instant::now();
        let delays: Vec<_> = (0..5)
            .map(|i| {
                throttle.record_failure(
                    &mut conn,
                    ip("127.0.0.1"),
                    "alice",
                    start + Duration::from_secs(i),
                )
            })
            .collect();
        let millis: Vec<_> = delays.iter().map(|v| v.delay.as_millis()).collect();
        assert_eq!(millis, [100, 200, 400, 800, 1000]);
        let closes: Vec<_> = delays.iter().map(|v| v.close).collect();
        assert_eq!(closes, [false, false, false, false, true]);
    }

    #[test]
    fn success_resets_the_connection_count() {
        let mut throttle = LoginThrottle::new(policy());
        let mut conn = ConnectionAttempts::new();
        let now = Instant::now();
        throttle.record_failure(&mut conn, ip("127.0.0.1"), "alice", now);
        throttle.record_failure(&mut conn, ip("127.0.0.1"), "alice", now);
        throttle.record_success(&mut conn);
        assert_eq!(conn.failures(), 0);
        let verdict = throttle.record_failure(&mut conn, ip("127.0.0.1"), "alice", now);
        assert_eq!(verdict.delay, Duration::from_millis(100));
    }

    #[test]
    fn source_penalty_applies_across_connections_and_expires() {
        let mut throttle = LoginThrottle::new(policy());
        let start = Instant::now();
        let source = ip("192.0.2.7");
        for i in 0..3 {
            // A fresh connection each time, as a guesser reconnecting would.
            let mut conn = ConnectionAttempts::new();
            assert_eq!(
                throttle.admission_delay(source, start),
                Duration::ZERO,
                "attempt {i}"
            );
            throttle.record_failure(&mut conn, source, "alice", start + Duration::from_secs(i));
        }
        assert_eq!(
            throttle.admission_delay(source, start + Duration::from_secs(10)),
            Duration::from_secs(2)
        );
        // Another source is unaffected.
        assert_eq!(
            throttle.admission_delay(ip("192.0.2.8"), start),
            Duration::ZERO
        );
        // 60 s after the first failure, it no longer counts: 2 remain, below 3.
        assert_eq!(
            throttle.admission_delay(source, start + Duration::from_millis(60_500)),
            Duration::ZERO
        );
        // After the last one expires, the source is forgotten entirely.
        throttle.prune(start + Duration::from_secs(63));
        assert_eq!(throttle.tracked_sources(), 0);
    }

    #[test]
    fn ipv6_sources_are_grouped_by_slash_64() {
        let mut throttle = LoginThrottle::new(policy());
        let now = Instant::now();
        let mut conn = ConnectionAttempts::new();
        for host in ["2001:db8::1", "2001:db8::2", "2001:db8::ffff:1"] {
            throttle.record_failure(&mut conn, ip(host), "alice", now);
        }
        assert_eq!(
            throttle.admission_delay(ip("2001:db8::99"), now),
            Duration::from_secs(2)
        );
        assert_eq!(
            throttle.admission_delay(ip("2001:db8:0:1::1"), now),
            Duration::ZERO
        );
        // IPv4-mapped IPv6 counts as the IPv4 address.
        throttle.record_failure(&mut conn, ip("::ffff:10.0.0.1"), "alice", now);
        throttle.record_failure(&mut conn, ip("10.0.0.1"), "alice", now);
        throttle.record_failure(&mut conn, ip("10.0.0.1"), "alice", now);
        assert_eq!(
            throttle.admission_delay(ip("10.0.0.1"), now),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn memory_is_bounded_by_evicting_the_stalest_source() {
        let mut throttle = LoginThrottle::new(policy());
        let start = Instant::now();
        let mut conn = ConnectionAttempts::new();
        for i in 0..10u8 {
            throttle.record_failure(
                &mut conn,
                IpAddr::from([198, 51, 100, i]),
                "alice",
                start + Duration::from_secs(u64::from(i)),
            );
            assert!(throttle.tracked_sources() <= 4);
        }
        assert_eq!(throttle.tracked_sources(), 4);
    }

    fn office_policy() -> LoginPolicy {
        LoginPolicy {
            user_threshold: 3,
            source_threshold: 7,
            refuse_threshold: 9,
            max_tracked_sources: 64,
            ..policy()
        }
    }

    #[test]
    fn a_colleague_on_the_same_address_is_not_held_up_by_another_users_typos() {
        let mut throttle = LoginThrottle::new(office_policy());
        let start = Instant::now();
        let office = ip("203.0.113.5");
        for i in 0..20 {
            let mut conn = ConnectionAttempts::new();
            throttle.record_failure(&mut conn, office, "alice", start + Duration::from_secs(i));
        }
        let now = start + Duration::from_secs(20);
        // alice's own name is slowed, then refused...
        assert_eq!(throttle.admission(office, "alice", now), Admission::Refuse);
        // ...but she alone adds at most 3 to the office's score (7 slows it): bob is
        // not held up.
        assert_eq!(
            throttle.admission(office, "bob", now),
            Admission::Check(Duration::ZERO)
        );
        // A second typist slows only their own name too.
        for _ in 0..3 {
            throttle.record_failure(&mut ConnectionAttempts::new(), office, "carol", now);
        }
        assert_eq!(
            throttle.admission(office, "carol", now),
            Admission::Check(Duration::from_secs(2))
        );
        assert_eq!(
            throttle.admission(office, "bob", now),
            Admission::Check(Duration::ZERO)
        );
    }

    #[test]
    fn a_guesser_across_many_user_names_is_slowed_then_refused() {
        let mut throttle = LoginThrottle::new(office_policy());
        let now = Instant::now();
        let guesser = ip("198.51.100.9");
        for i in 0..9 {
            let name = format!("guess{i}");
            let expected = if i < 7 {
                Admission::Check(Duration::ZERO)
            } else {
                Admission::Check(Duration::from_secs(2))
            };
            assert_eq!(throttle.admission(guesser, "dave", now), expected, "{i}");
            throttle.record_failure(&mut ConnectionAttempts::new(), guesser, &name, now);
        }
        // Nine names with one failure each: every name, even an untried one, is refused.
        assert_eq!(throttle.admission(guesser, "dave", now), Admission::Refuse);
        // Names that are not user names count as one name, not one each.
        let sprayer = ip("198.51.100.10");
        for i in 0..3 {
            let junk = format!("NOT A NAME {i}");
            throttle.record_failure(&mut ConnectionAttempts::new(), sprayer, &junk, now);
        }
        assert_eq!(
            throttle.admission(sprayer, "dave", now),
            Admission::Check(Duration::ZERO)
        );
        // The refusal expires with the failures.
        assert_eq!(
            throttle.admission(guesser, "dave", now + Duration::from_secs(61)),
            Admission::Check(Duration::ZERO)
        );
    }
}
