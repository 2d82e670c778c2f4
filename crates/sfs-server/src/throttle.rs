//! The failed-login policy.
//!
//! Pure bookkeeping: the clock comes in as a `now: Instant` argument and the answer
//! is a [`Verdict`] (how long to wait before replying, whether to close), so a session
//! applies it with `tokio::time::sleep` and tests drive it with a fake clock.
//!
//! Three mechanisms, as docs/ARCHITECTURE.md section 5 lists:
//!
//! 1. **A growing delay per connection**: the n-th failure on one connection waits
//!    `base_delay * 2^(n-1)`, capped at `max_delay`.
//! 2. **A per-connection cap**: after `max_failures_per_connection` failures the
//!    connection is closed.
//! 3. **An expiring per-source penalty**: failures are also counted per source
//!    address (IPv6 sources per /64, since one host commonly owns the whole /64).
//!    From `source_threshold` failures within `source_window` on, every login attempt
//!    from that source first waits `source_penalty`. The count forgets failures older
//!    than the window, so the penalty expires by itself.
//!
//! Peer addresses are not authenticated in SCTP (docs/ARCHITECTURE.md section 2), so the
//! per-source penalty only slows guessing; it never grants anything.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// The tunable numbers of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Wait after the first failure on a connection.
    pub base_delay: Duration,
    /// Upper bound of the per-connection delay.
    pub max_delay: Duration,
    /// Failures allowed on one connection before it is closed.
    pub max_failures_per_connection: u32,
    /// Failures from one source, within the window, before the penalty applies.
    pub source_threshold: u32,
    /// How long a failure counts against its source.
    pub source_window: Duration,
    /// Extra wait for every attempt from a penalized source.
    pub source_penalty: Duration,
    /// Bound on remembered sources, so a spray of addresses cannot grow memory
    /// without limit. When full, the source with the oldest last failure is dropped.
    pub max_tracked_sources: usize,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_failures_per_connection: 5,
            source_threshold: 10,
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

#[derive(Debug, Default)]
struct SourceRecord {
    /// Times of the failures still inside the window, oldest first.
    failures: std::collections::VecDeque<Instant>,
}

impl SourceRecord {
    fn forget_before(&mut self, cutoff: Option<Instant>) {
        let Some(cutoff) = cutoff else { return };
        while self.failures.front().is_some_and(|&t| t < cutoff) {
            self.failures.pop_front();
        }
    }
}

impl LoginThrottle {
    /// An empty history under `policy`.
    pub fn new(policy: LoginPolicy) -> Self {
        Self {
            policy,
            sources: HashMap::new(),
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &LoginPolicy {
        &self.policy
    }

    /// How long a login attempt from `source` must wait before it is even checked
    /// (zero unless the source is penalized).
    pub fn admission_delay(&mut self, source: IpAddr, now: Instant) -> Duration {
        let cutoff = now.checked_sub(self.policy.source_window);
        let key = SourceKey::of(source);
        let Some(record) = self.sources.get_mut(&key) else {
            return Duration::ZERO;
        };
        record.forget_before(cutoff);
        if record.failures.is_empty() {
            self.sources.remove(&key);
            return Duration::ZERO;
        }
        if record.failures.len() >= self.policy.source_threshold as usize {
            self.policy.source_penalty
        } else {
            Duration::ZERO
        }
    }

    /// Records a failed login on `connection` from `source`, and says how to answer.
    pub fn record_failure(
        &mut self,
        connection: &mut ConnectionAttempts,
        source: IpAddr,
        now: Instant,
    ) -> Verdict {
        connection.failures = connection.failures.saturating_add(1);
        self.remember_source_failure(source, now);

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
        self.sources.retain(|_, record| {
            record.forget_before(cutoff);
            !record.failures.is_empty()
        });
    }

    /// The number of sources currently remembered.
    pub fn tracked_sources(&self) -> usize {
        self.sources.len()
    }

    /// Counts an attempt from `source` that costs the server as much as a failed
    /// login, whatever its outcome: a registration (one bcrypt, a rewrite of the
    /// users file, a new home). Kept in its own throttle, it makes a source that
    /// registers often wait [`LoginPolicy::source_penalty`] before each further try.
    pub fn record_costly_attempt(&mut self, source: IpAddr, now: Instant) {
        self.remember_source_failure(source, now);
    }

    fn remember_source_failure(&mut self, source: IpAddr, now: Instant) {
        let key = SourceKey::of(source);
        if !self.sources.contains_key(&key) && self.sources.len() >= self.policy.max_tracked_sources
        {
            self.prune(now);
            if self.sources.len() >= self.policy.max_tracked_sources {
                self.evict_stalest();
            }
        }
        let cutoff = now.checked_sub(self.policy.source_window);
        let record = self.sources.entry(key).or_default();
        record.forget_before(cutoff);
        record.failures.push_back(now);
        // Only the count up to the threshold matters; keeping more would let one
        // source grow this list without bound.
        let keep = (self.policy.source_threshold as usize).max(1);
        while record.failures.len() > keep {
            record.failures.pop_front();
        }
    }

    fn evict_stalest(&mut self) {
        let stalest = self
            .sources
            .iter()
            .min_by_key(|(_, record)| record.failures.back().copied())
            .map(|(key, _)| *key);
        if let Some(key) = stalest {
            self.sources.remove(&key);
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
            source_threshold: 3,
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
            source_threshold: 100,
            ..policy()
        });
        let mut conn = ConnectionAttempts::new();
        let start = Instant::now();
        let delays: Vec<_> = (0..5)
            .map(|i| {
                throttle.record_failure(&mut conn, ip("127.0.0.1"), start + Duration::from_secs(i))
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
        throttle.record_failure(&mut conn, ip("127.0.0.1"), now);
        throttle.record_failure(&mut conn, ip("127.0.0.1"), now);
        throttle.record_success(&mut conn);
        assert_eq!(conn.failures(), 0);
        let verdict = throttle.record_failure(&mut conn, ip("127.0.0.1"), now);
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
            throttle.record_failure(&mut conn, source, start + Duration::from_secs(i));
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
            throttle.record_failure(&mut conn, ip(host), now);
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
        throttle.record_failure(&mut conn, ip("::ffff:10.0.0.1"), now);
        throttle.record_failure(&mut conn, ip("10.0.0.1"), now);
        throttle.record_failure(&mut conn, ip("10.0.0.1"), now);
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
                start + Duration::from_secs(u64::from(i)),
            );
            assert!(throttle.tracked_sources() <= 4);
        }
        assert_eq!(throttle.tracked_sources(), 4);
    }
}
