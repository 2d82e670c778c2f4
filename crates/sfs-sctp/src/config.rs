//! Socket and association settings, with defaults chosen for SFS.

use std::time::Duration;

/// Settings applied to every socket and association the crate creates.
///
/// `SctpConfig::default()` gives the values SFS uses; change the fields that
/// differ (the struct is `#[non_exhaustive]`, so later settings are not a
/// breaking change):
///
/// ```
/// use sfs_sctp::SctpConfig;
/// let mut config = SctpConfig::default();
/// config.outbound_streams = 8;
/// config.max_inbound_streams = 8;
/// assert!(config.failover.is_some());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SctpConfig {
    /// Outbound streams asked for (`SCTP_INITMSG` `sinit_num_ostreams`). The peer
    /// may grant fewer; read the result from
    /// [`SctpAssociation::outbound_streams`](crate::SctpAssociation::outbound_streams).
    /// Default 32 (stream 0 for control, the rest for parallel transfers).
    pub outbound_streams: u16,
    /// Most inbound streams accepted (`sinit_max_instreams`). Default 32.
    pub max_inbound_streams: u16,
    /// INIT retransmissions before a connect gives up (`sinit_max_attempts`).
    /// Default 4; the connect timeout usually ends the attempt first.
    pub max_init_attempts: u16,
    /// Largest whole message sent or accepted, in bytes. A received message past
    /// this aborts the association. It must fit the send buffer, since a larger
    /// message fails with `EMSGSIZE`. Default 1 MiB.
    pub max_message_size: usize,
    /// `SO_SNDBUF` in bytes (the kernel doubles it). SCTP has no buffer
    /// autotuning, so the default is 2 MiB; below 512 KiB one flow collapses.
    /// The kernel caps it at `net.core.wmem_max` (often 208 KiB) unless the
    /// process has CAP_NET_ADMIN (then `SO_SNDBUFFORCE` is used); a capped buffer
    /// is logged, and also lowers
    /// [`SctpAssociation::max_send_size`](crate::SctpAssociation::max_send_size).
    pub send_buffer_size: usize,
    /// `SO_RCVBUF` in bytes (the kernel doubles it). Default 2 MiB, capped like
    /// the send buffer by `net.core.rmem_max`.
    pub recv_buffer_size: usize,
    /// `SCTP_NODELAY`: send small messages at once (no Nagle). Default on.
    pub nodelay: bool,
    /// Retransmission and path-failure settings, or `None` to keep the kernel's
    /// (sysctl) values. Default [`FailoverTuning::FAST`]. With `None`, also set
    /// `delayed_sack: None`: the kernel's RTO settings with the short delayed SACK
    /// stalled 1 to 4 s on failover in the VM (4 s in most runs), against a steady
    /// 1 s with both left to the kernel.
    pub failover: Option<FailoverTuning>,
    /// `SCTP_DELAYED_SACK`, or `None` to keep the kernel's 200 ms / every second
    /// packet. Default [`DelayedSack::default`].
    pub delayed_sack: Option<DelayedSack>,
    /// `SCTP_STREAM_SCHEDULER`: how the association's send capacity is shared
    /// between streams. Default round robin.
    pub scheduler: StreamScheduler,
    /// Ask for I-DATA chunk interleaving (RFC 8260) with `SCTP_FRAGMENT_INTERLEAVE`
    /// 2 and `SCTP_INTERLEAVING_SUPPORTED`, so a large message on one stream does
    /// not hold up the others. Only takes effect where the kernel allows it (the
    /// `net.sctp.intl_enable` sysctl); otherwise it is silently off. Default on.
    pub interleaving: bool,
    /// `listen(2)` backlog for listeners. Default 128.
    pub backlog: i32,
    /// Most bytes of unfinished messages (partial, or complete but held back for
    /// ordering) one association may hold; past it the association is aborted.
    /// Default 8 MiB: a control message and a data record on every stream fit.
    pub max_reassembly_bytes: usize,
    /// The budget every association made with this config (and its clones)
    /// shares for unfinished messages. Default 256 MiB.
    pub reassembly_budget: std::sync::Arc<crate::ReassemblyBudget>,
}

impl Default for SctpConfig {
    fn default() -> Self {
        Self {
            outbound_streams: 32,
            max_inbound_streams: 32,
            max_init_attempts: 4,
            max_message_size: 1 << 20,
            send_buffer_size: 2 << 20,
            recv_buffer_size: 2 << 20,
            nodelay: true,
            failover: Some(FailoverTuning::FAST),
            delayed_sack: Some(DelayedSack::default()),
            scheduler: StreamScheduler::RoundRobin,
            interleaving: true,
            backlog: 128,
            max_reassembly_bytes: 8 << 20,
            reassembly_budget: std::sync::Arc::new(crate::ReassemblyBudget::new(256 << 20)),
        }
    }
}

/// How quickly a dead path is detected and traffic moves to another one.
///
/// Linux's defaults (`rto_initial` 3 s, `rto_min` 1 s, `rto_max` 60 s,
/// `hb_interval` 30 s, `path_max_retrans` 5) stall about 1 s when the primary path
/// dies, even with SCTP-PF. [`FailoverTuning::FAST`] stalled 80 to 160 ms in the
/// project's VM (two paths of 10 ms RTT; the kernel test `transport_failover.rs`
/// measures and prints both).
///
/// Start from [`FailoverTuning::FAST`] and change the fields that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FailoverTuning {
    /// Initial retransmission timeout (`SCTP_RTOINFO` `srto_initial`), also the
    /// first INIT retransmission delay.
    pub rto_initial: Duration,
    /// Lower bound of the RTO (`srto_min`).
    pub rto_min: Duration,
    /// Upper bound of the RTO (`srto_max`).
    pub rto_max: Duration,
    /// Heartbeat interval on idle paths (`SCTP_PEER_ADDR_PARAMS` `spp_hbinterval`).
    pub heartbeat_interval: Duration,
    /// Retransmissions before a path is declared failed (`spp_pathmaxrxt`).
    pub path_max_retrans: u16,
    /// Retransmissions before a path is "potentially failed" and traffic moves
    /// off it (`SCTP_PEER_ADDR_THLDS` `spt_pathpfthld`, RFC 7829). 0 moves at the
    /// first timeout.
    pub pf_retrans: u16,
}

impl FailoverTuning {
    /// The SFS defaults: `rto_initial` 300 ms, `rto_min` 100 ms, `rto_max` 1 s,
    /// heartbeats every 500 ms, `path_max_retrans` 3, `pf_retrans` 0.
    pub const FAST: Self = Self {
        rto_initial: Duration::from_millis(300),
        rto_min: Duration::from_millis(100),
        rto_max: Duration::from_millis(1000),
        heartbeat_interval: Duration::from_millis(500),
        path_max_retrans: 3,
        pf_retrans: 0,
    };
}

impl Default for FailoverTuning {
    fn default() -> Self {
        Self::FAST
    }
}

/// `SCTP_DELAYED_SACK`: when the receiver acknowledges.
///
/// The kernel's 200 ms delay can collapse a single flow that waits on its SACKs;
/// the default acknowledges every second packet or after 10 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DelayedSack {
    /// Longest delay before a SACK (at most 500 ms).
    pub delay: Duration,
    /// Packets per SACK; 1 acknowledges every packet at once.
    pub frequency: u32,
}

impl DelayedSack {
    /// A SACK after at most `delay` (the kernel caps it at 500 ms), or at once
    /// every `frequency` packets.
    pub fn new(delay: Duration, frequency: u32) -> Self {
        Self { delay, frequency }
    }
}

impl Default for DelayedSack {
    fn default() -> Self {
        Self::new(Duration::from_millis(10), 2)
    }
}

/// `SCTP_STREAM_SCHEDULER` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamScheduler {
    /// First come, first served (the kernel default).
    FirstComeFirstServed,
    /// Round robin between streams with queued data (`SCTP_SS_RR`).
    RoundRobin,
    /// Fair capacity (`SCTP_SS_FC`, Linux 6.2 and later; fails on older kernels).
    FairCapacity,
}

impl StreamScheduler {
    pub(crate) fn raw(self) -> u32 {
        match self {
            Self::FirstComeFirstServed => 0,
            Self::RoundRobin => 2,
            Self::FairCapacity => 3,
        }
    }
}

pub(crate) fn millis_u32(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}
