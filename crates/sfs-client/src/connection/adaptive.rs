//! How many data associations a session uses: the `--associations` setting and
//! the adaptive policy behind its `auto` value.
//!
//! One SCTP association has one congestion window: on a lossy path it throttles
//! every stream at once, while several associations grow several windows (as
//! parallel TCP connections do). On a clean path one is usually enough, and each
//! extra one costs a handshake and kernel memory. So `auto` measures: while
//! transfers run, it compares the bytes moved per second with the interval
//! before the newest association was added, keeps growing while each addition
//! raises throughput by at least [`Adaptive::GAIN`], and retires the newest
//! extra one when it did not help.
//!
//! ```
//! use sfs_client::connection::{Adaptive, Step};
//!
//! let mut policy = Adaptive::new();
//! assert_eq!(policy.sample(1_000_000.0, 1, 8), Step::Grow); // first measure: try a second
//! assert_eq!(policy.sample(1_500_000.0, 2, 8), Step::Grow); // +50%: try a third
//! assert_eq!(policy.sample(1_520_000.0, 3, 8), Step::Shrink); // +1%: retire it
//! assert_eq!(policy.sample(1_600_000.0, 2, 8), Step::Hold); // settled
//! ```

use std::fmt;
use std::str::FromStr;

use sfs_proto::bind::MAX_ASSOCIATIONS;

/// The `--associations` setting: how many associations a session uses, the
/// first (control) one included. The default is
/// `Fixed(`[`DEFAULT_ASSOCIATIONS`]`)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Associations {
    /// Exactly this many (1 = no extra associations), or as many as the server
    /// allows if that is fewer.
    Fixed(u8),
    /// Start with one and add extras while they raise throughput (module docs).
    /// A transfer uses the associations bound when it opens, so this helps the
    /// transfers that start after it grew, not a batch that starts at once.
    Auto,
}

/// The default count, the first association included, and the reference
/// server's default limit per session. Measured in the benchmark's VM
/// (docs/BENCHMARKS.md): eight files at 2% loss took 41.9 s over one
/// association, 13.3 s over four and 8.6 s over eight (lftp with eight TCP
/// connections: 13.3 s); a clean-link download took 2.53 s over one, 2.66 s over
/// four and 2.85 s over eight. Opened when the first transfer starts, not for
/// other commands.
pub const DEFAULT_ASSOCIATIONS: u8 = 8;

impl Default for Associations {
    fn default() -> Self {
        Associations::Fixed(DEFAULT_ASSOCIATIONS)
    }
}

impl Associations {
    /// How many to open right after login: the fixed count, or one for `auto`.
    pub fn initial(self) -> u8 {
        match self {
            Associations::Fixed(count) => count,
            Associations::Auto => 1,
        }
    }
}

/// Why an `--associations` value is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not `auto` or a number of associations from 1 to {MAX_ASSOCIATIONS}")]
pub struct AssociationsError(String);

impl FromStr for Associations {
    type Err = AssociationsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Associations::Auto);
        }
        match text.parse::<u8>() {
            Ok(count) if (1..=MAX_ASSOCIATIONS).contains(&count) => Ok(Associations::Fixed(count)),
            _ => Err(AssociationsError(text.to_owned())),
        }
    }
}

impl fmt::Display for Associations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Associations::Fixed(count) => write!(f, "{count}"),
            Associations::Auto => f.write_str("auto"),
        }
    }
}

/// What the adaptive policy asks for after a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Keep the associations as they are.
    Hold,
    /// Open one more extra association.
    Grow,
    /// Retire the newest extra association (DETACH, then shut it down).
    Shrink,
}

/// The adaptive policy of `--associations auto`, as a pure state machine fed
/// with throughput samples (module docs).
///
/// The caller samples about once a second, and only over intervals that say
/// something about the association count: transfers ran all the time, every
/// running transfer used every bound association, and no association was being
/// opened or retired. After a [`Step::Grow`] the next sample judges the new
/// association against the rate before it; after a [`Step::Shrink`] (or once
/// the limit is reached) the policy holds for the rest of the session.
#[derive(Debug, Clone, Default)]
pub struct Adaptive {
    /// The rate (bytes per second) measured with one association fewer, while
    /// the newest one is being judged.
    before: Option<f64>,
    settled: bool,
}

impl Adaptive {
    /// The least gain an added association must bring to be kept and to try
    /// another: 10%.
    pub const GAIN: f64 = 1.10;

    /// A policy that has measured nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the policy has decided for good.
    pub fn is_settled(&self) -> bool {
        self.settled
    }

    /// Feeds one sample: `rate` bytes per second moved with `open` associations
    /// bound (the first included), the server allowing `limit`. Returns what to
    /// do next.
    pub fn sample(&mut self, rate: f64, open: u8, limit: u8) -> Step {
        if self.settled {
            return Step::Hold;
        }
        let better = match self.before {
            None => true,
            Some(before) => rate >= before * Self::GAIN,
        };
        if !better {
            self.settled = true;
            self.before = None;
            return if open > 1 { Step::Shrink } else { Step::Hold };
        }
        if open >= limit.min(MAX_ASSOCIATIONS) {
            self.settled = true;
            self.before = None;
            return Step::Hold;
        }
        self.before = Some(rate);
        Step::Grow
    }

    /// An opening the policy asked for failed (refused, timed out): hold with
    /// what there is.
    pub fn grow_failed(&mut self) {
        self.settled = true;
        self.before = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_parses_auto_and_counts() {
        assert_eq!("auto".parse(), Ok(Associations::Auto));
        assert_eq!(" AUTO ".parse(), Ok(Associations::Auto));
        assert_eq!("1".parse(), Ok(Associations::Fixed(1)));
        assert_eq!("16".parse(), Ok(Associations::Fixed(16)));
        for bad in ["0", "17", "-1", "", "four", "4.0"] {
            assert!(bad.parse::<Associations>().is_err(), "{bad}");
        }
        assert_eq!(Associations::Fixed(4).to_string(), "4");
        assert_eq!(Associations::Auto.to_string(), "auto");
        assert_eq!(Associations::default(), Associations::Fixed(8));
        assert_eq!(Associations::Auto.initial(), 1);
        assert_eq!(Associations::Fixed(3).initial(), 3);
    }

    #[test]
    fn grows_while_each_association_adds_ten_percent() {
        let mut policy = Adaptive::new();
        let mut open = 1;
        // Loss-bound: each association adds about as much as the first.
        for _ in 0..3 {
            assert_eq!(policy.sample(f64::from(open) * 1e6, open, 8), Step::Grow);
            open += 1;
        }
        assert_eq!(open, 4);
        // The path is full: the fourth adds 5%.
        assert_eq!(policy.sample(3.15e6, open, 8), Step::Shrink);
        assert!(policy.is_settled());
        assert_eq!(policy.sample(1e9, 3, 8), Step::Hold);
    }

    #[test]
    fn exactly_ten_percent_is_enough() {
        let mut policy = Adaptive::new();
        assert_eq!(policy.sample(1000.0, 1, 8), Step::Grow);
        assert_eq!(policy.sample(1100.0, 2, 8), Step::Grow);
        assert_eq!(policy.sample(1200.0, 3, 8), Step::Shrink);
    }

    #[test]
    fn a_clean_link_keeps_one_association() {
        let mut policy = Adaptive::new();
        assert_eq!(policy.sample(50e6, 1, 8), Step::Grow);
        // The second brought nothing (slower even): retire it.
        assert_eq!(policy.sample(48e6, 2, 8), Step::Shrink);
        assert_eq!(policy.sample(50e6, 1, 8), Step::Hold);
    }

    #[test]
    fn stops_at_the_server_limit() {
        let mut policy = Adaptive::new();
        assert_eq!(policy.sample(1e6, 1, 2), Step::Grow);
        assert_eq!(policy.sample(2e6, 2, 2), Step::Hold);
        assert!(policy.is_settled());
        // A server that allows no extras: never grow.
        let mut policy = Adaptive::new();
        assert_eq!(policy.sample(1e6, 1, 1), Step::Hold);
        // Nor beyond the protocol's own bound.
        let mut policy = Adaptive::new();
        assert_eq!(policy.sample(1e6, 16, 255), Step::Hold);
    }

    #[test]
    fn a_failed_opening_settles() {
        let mut policy = Adaptive::new();
        assert_eq!(policy.sample(1e6, 1, 8), Step::Grow);
        policy.grow_failed();
        assert_eq!(policy.sample(1e6, 1, 8), Step::Hold);
    }

    #[test]
    fn no_shrink_below_one() {
        let mut policy = Adaptive::new();
        assert_eq!(policy.sample(1e6, 1, 8), Step::Grow);
        // The opening was refused by the server meanwhile: still one.
        assert_eq!(policy.sample(0.5e6, 1, 8), Step::Hold);
    }
}
