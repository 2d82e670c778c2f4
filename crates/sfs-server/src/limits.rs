//! Who may hold a connection: per-source counts (a source being every peer
//! address of the association, IPv6 by /64) and the budget of associations that
//! have not logged in yet (sshd's `MaxStartups start:rate:full`, with random
//! early drop), so unauthenticated peers cannot take the slots real users need.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use ring::rand::{SecureRandom, SystemRandom};

/// Why a new association was turned away, in words for its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Every client slot is taken.
    #[error("the server is full; try again later")]
    Full,
    /// The association's source already has the most connections allowed.
    #[error("too many connections from your address; the limit is {limit}")]
    PerSource {
        /// The per-source limit.
        limit: usize,
    },
    /// Too many associations are waiting to log in (random early drop).
    #[error("the server is full (too many connections not logged in); try again shortly")]
    Unauthenticated,
}

/// What one source is counted as: an IPv4 address, or an IPv6 /64 (one host,
/// or one customer's network, usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKey {
    /// One IPv4 address (IPv4-mapped IPv6 addresses count as IPv4).
    V4(std::net::Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl From<IpAddr> for SourceKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::V4(v4),
                None => Self::V6Prefix(prefix64(v6)),
            },
        }
    }
}

fn prefix64(v6: Ipv6Addr) -> u64 {
    // The high half of the address, in network order.
    (u128::from(v6) >> 64) as u64
}

/// Connections per source, released when a connection ends. An association
/// counts once against every source among its peer addresses, so a multi-homed
/// peer cannot pass the limit by spreading over its addresses.
#[derive(Debug, Default)]
pub struct SourceCounts {
    // A std Mutex: held only to bump counters.
    counts: Mutex<HashMap<SourceKey, usize>>,
}

/// One connection's place in [`SourceCounts`]; dropping it frees the place.
#[derive(Debug)]
pub struct SourceSlot {
    counts: Arc<SourceCounts>,
    keys: Vec<SourceKey>,
}

impl SourceCounts {
    /// Takes a place for an association with `peers` if no source among them
    /// already has `max`; `None` (and nothing taken) otherwise.
    pub fn take(self: &Arc<Self>, peers: &[SocketAddr], max: usize) -> Option<SourceSlot> {
        let mut keys: Vec<SourceKey> = peers.iter().map(|p| SourceKey::from(p.ip())).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if keys
            .iter()
            .any(|key| counts.get(key).copied().unwrap_or(0) >= max)
        {
            return None;
        }
        for key in &keys {
            *counts.entry(*key).or_insert(0) += 1;
        }
        Some(SourceSlot {
            counts: self.clone(),
            keys,
        })
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.counts.lock().unwrap().is_empty()
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.counts.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            if let Some(count) = counts.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(key);
                }
            }
        }
    }
}

/// sshd's `MaxStartups start:rate:full`: with `start` or more associations not
/// yet logged in, a new one is refused with probability `rate`% rising linearly
/// to 100% at `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxStartups {
    /// Unauthenticated associations always accepted.
    pub start: usize,
    /// Percent refused at `start`.
    pub rate: u8,
    /// Unauthenticated associations at which every new one is refused.
    pub full: usize,
}

impl FromStr for MaxStartups {
    type Err = String;

    /// `full` alone, or `start:rate:full` with `start <= full` and `rate <= 100`.
    fn from_str(text: &str) -> Result<Self, String> {
        let numbers: Vec<&str> = text.split(':').collect();
        let parse = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("{text:?} is not start:rate:full"))
        };
        let value = match numbers.as_slice() {
            [full] => {
                let full = parse(full)?;
                Self {
                    start: full,
                    rate: 100,
                    full,
                }
            }
            [start, rate, full] => Self {
                start: parse(start)?,
                rate: u8::try_from(parse(rate)?)
                    .ok()
                    .filter(|r| *r <= 100)
                    .ok_or_else(|| format!("{text:?}: rate must be 0 to 100"))?,
                full: parse(full)?,
            },
            _ => return Err(format!("{text:?} is not start:rate:full")),
        };
        if value.full == 0 || value.start > value.full {
            return Err(format!("{text:?}: need 1 <= full and start <= full"));
        }
        Ok(value)
    }
}

impl MaxStartups {
    /// Percent of new associations to refuse with `unauthenticated` already open.
    pub fn drop_percent(&self, unauthenticated: usize) -> u32 {
        if unauthenticated >= self.full {
            return 100;
        }
        if unauthenticated < self.start {
            return 0;
        }
        let span = (self.full - self.start).max(1) as u64;
        let rate = u64::from(self.rate);
        let climbed = (100 - rate) * (unauthenticated - self.start) as u64 / span;
        u32::try_from(rate + climbed).unwrap_or(100).min(100)
    }
}

/// The associations not logged in yet.
#[derive(Debug)]
pub struct PreAuth {
    policy: MaxStartups,
    count: Mutex<usize>,
    random: SystemRandom,
}

/// One unauthenticated association's place; dropped at login (or at the end).
#[derive(Debug)]
pub struct PreAuthSlot {
    owner: Arc<PreAuth>,
}

impl PreAuth {
    /// Nobody waiting, with `policy`.
    pub fn new(policy: MaxStartups) -> Self {
        Self {
            policy,
            count: Mutex::new(0),
            random: SystemRandom::new(),
        }
    }

    /// The policy.
    pub fn policy(&self) -> MaxStartups {
        self.policy
    }

    /// A place for a new association, or `None` when the random early drop
    /// refuses it.
    pub fn admit(self: &Arc<Self>) -> Option<PreAuthSlot> {
        let mut count = self.count.lock().unwrap_or_else(|p| p.into_inner());
        let percent = self.policy.drop_percent(*count);
        if percent >= 100 || (percent > 0 && self.roll() < percent) {
            return None;
        }
        *count += 1;
        Some(PreAuthSlot {
            owner: self.clone(),
        })
    }

    /// Associations not logged in now.
    pub fn unauthenticated(&self) -> usize {
        *self.count.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// 0 to 99, uniformly enough for a drop decision.
    fn roll(&self) -> u32 {
        let mut byte = [0u8; 4];
        // No randomness is a fault of the host; refusing then is the safe side.
        if self.random.fill(&mut byte).is_err() {
            return 0;
        }
        u32::from_ne_bytes(byte) % 100
    }
}

impl Drop for PreAuthSlot {
    fn drop(&mut self) {
        let mut count = self.owner.count.lock().unwrap_or_else(|p| p.into_inner());
        *count = count.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(text: &str) -> SocketAddr {
        SocketAddr::new(text.parse().unwrap(), 9)
    }

    #[test]
    fn per_source_slots_are_capped_and_released() {
        let counts = Arc::new(SourceCounts::default());
        let one = [peer("192.0.2.7")];
        let other = [peer("192.0.2.8")];
        let first = counts.take(&one, 2).unwrap();
        let second = counts.take(&one, 2).unwrap();
        assert!(counts.take(&one, 2).is_none(), "a third from one source");
        let elsewhere = counts.take(&other, 2).unwrap();
        drop(first);
        let again = counts.take(&one, 2).expect("a slot came free");
        drop((second, again, elsewhere));
        assert!(counts.is_empty());
    }

    #[test]
    fn a_multihomed_association_counts_on_every_address() {
        let counts = Arc::new(SourceCounts::default());
        let a = peer("192.0.2.1");
        let b = peer("198.51.100.1");
        let both = counts.take(&[a, b], 1).unwrap();
        // Neither address may open another: the first association holds both.
        assert!(counts.take(&[b], 1).is_none());
        assert!(counts.take(&[peer("203.0.113.9"), a], 1).is_none());
        drop(both);
        assert!(counts.take(&[b], 1).is_some());
    }

    #[test]
    fn ipv6_sources_count_by_slash_64() {
        let counts = Arc::new(SourceCounts::default());
        let _one = counts.take(&[peer("2001:db8:1:2::1")], 1).unwrap();
        assert!(
            counts.take(&[peer("2001:db8:1:2:ffff::9")], 1).is_none(),
            "same /64"
        );
        assert!(counts.take(&[peer("2001:db8:1:3::1")], 1).is_some());
        // IPv4-mapped addresses count as the IPv4 address.
        let _v4 = counts.take(&[peer("192.0.2.5")], 1).unwrap();
        assert!(counts.take(&[peer("::ffff:192.0.2.5")], 1).is_none());
    }

    #[test]
    fn max_startups_parses_and_drops_linearly() {
        let policy: MaxStartups = "10:30:60".parse().unwrap();
        assert_eq!(
            policy,
            MaxStartups {
                start: 10,
                rate: 30,
                full: 60
            }
        );
        assert_eq!(policy.drop_percent(9), 0);
        assert_eq!(policy.drop_percent(10), 30);
        assert_eq!(policy.drop_percent(35), 65);
        assert_eq!(policy.drop_percent(60), 100);
        assert_eq!("5".parse::<MaxStartups>().unwrap().drop_percent(5), 100);
        for bad in ["", "1:2", "10:101:20", "30:10:20", "0", "a:b:c"] {
            assert!(bad.parse::<MaxStartups>().is_err(), "{bad}");
        }
    }

    #[test]
    fn pre_auth_slots_are_refused_at_full_and_freed_on_drop() {
        let pre = Arc::new(PreAuth::new("2:100:2".parse().unwrap()));
        let a = pre.admit().unwrap();
        let _b = pre.admit().unwrap();
        assert!(pre.admit().is_none(), "full");
        drop(a);
        assert_eq!(pre.unauthenticated(), 1);
        assert!(pre.admit().is_some());
    }

    #[test]
    fn random_early_drop_refuses_some_between_start_and_full() {
        let pre = Arc::new(PreAuth::new("1:50:1000".parse().unwrap()));
        let _first = pre.admit().unwrap();
        let admitted = (0..400)
            .filter(|_| pre.admit().map(std::mem::forget).is_some())
            .count();
        // About half at first, fewer as the count climbs; never all, never none.
        assert!((50..350).contains(&admitted), "{admitted}");
    }
}
