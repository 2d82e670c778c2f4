//! A two-path network built from network namespaces, for multi-homing and failover.
//!
//! ```text
//!   server namespace                          client namespace
//!  +----------------+   path A (veth "pa")   +----------------+
//!  | 198.51.100.1   |------------------------| 198.51.100.2   |
//!  |                |   path B (veth "pb")   |                |
//!  | 203.0.113.1    |------------------------| 203.0.113.2    |
//!  +----------------+                        +----------------+
//! ```
//!
//! The addresses come from the documentation ranges of RFC 5737, so they can never
//! name a real host. Delay and loss are `tc netem` on both ends of a path: each
//! direction gets half the round-trip time and the whole loss rate.
//!
//! ```no_run
//! use std::time::Duration;
//! use sfs_kernel_tests::netns::{Path, Side, Topology};
//!
//! // Two paths, 20 ms RTT, 1% loss on path A.
//! let topo = Topology::two_paths().rtt(Duration::from_millis(20)).loss(Path::A, 1.0).build()?;
//! let listener = {
//!     let _inside = topo.enter(Side::Server)?;
//!     // Sockets made here belong to the server namespace for good.
//!     std::net::TcpListener::bind((topo.address(Side::Server, Path::A), 0))?
//! };
//! topo.cut(Path::A)?; // a black hole: packets vanish, links stay up
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! The namespaces are deleted when the [`Topology`] is dropped.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nix::sched::{setns, CloneFlags};

/// One of the two paths between the namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// The first path, 198.51.100.0/24, on the veth pair named `pa`.
    A,
    /// The second path, 203.0.113.0/24, on the veth pair named `pb`.
    B,
}

impl Path {
    /// Both paths, A first.
    pub const BOTH: [Path; 2] = [Path::A, Path::B];

    fn interface(self) -> &'static str {
        match self {
            Path::A => "pa",
            Path::B => "pb",
        }
    }

    fn subnet(self) -> [u8; 3] {
        match self {
            Path::A => [198, 51, 100],
            Path::B => [203, 0, 113],
        }
    }

    fn index(self) -> usize {
        match self {
            Path::A => 0,
            Path::B => 1,
        }
    }
}

/// One end of the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The namespace holding the `.1` address of each path.
    Server,
    /// The namespace holding the `.2` address of each path.
    Client,
}

impl Side {
    fn host_octet(self) -> u8 {
        match self {
            Side::Server => 1,
            Side::Client => 2,
        }
    }
}

/// The impairment applied to one path.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Impairment {
    rtt: Duration,
    loss_percent: f64,
    /// A rate limit in bits per second in each direction; `None` is unlimited.
    rate_bits_per_sec: Option<u64>,
}

/// Builds a [`Topology`]; made by [`Topology::two_paths`].
#[derive(Debug, Clone)]
pub struct TopologyBuilder {
    paths: [Impairment; 2],
}

impl TopologyBuilder {
    /// Sets the round-trip time of both paths.
    pub fn rtt(mut self, rtt: Duration) -> Self {
        for path in &mut self.paths {
            path.rtt = rtt;
        }
        self
    }

    /// Sets the round-trip time of one path.
    pub fn path_rtt(mut self, path: Path, rtt: Duration) -> Self {
        self.paths[path.index()].rtt = rtt;
        self
    }

    /// Sets the loss rate of one path, in percent, in each direction.
    pub fn loss(mut self, path: Path, percent: f64) -> Self {
        self.paths[path.index()].loss_percent = percent;
        self
    }

    /// Limits both paths to `bits_per_sec` in each direction (netem's `rate`).
    pub fn rate(mut self, bits_per_sec: u64) -> Self {
        for path in &mut self.paths {
            path.rate_bits_per_sec = Some(bits_per_sec);
        }
        self
    }

    /// Creates the namespaces, links, addresses and qdiscs. Needs root.
    ///
    /// # Errors
    ///
    /// An [`io::Error`] if `ip` or `tc` cannot be run or fails (without root, or without
    /// netem in the kernel), its standard error in the message; what was made until then
    /// is removed again.
    pub fn build(self) -> io::Result<Topology> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "sfs{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let topo = Topology {
            server_ns: format!("{id}s"),
            client_ns: format!("{id}c"),
            paths: self.paths,
        };
        // From here on, Drop cleans up whatever part was made.
        topo.create()?;
        Ok(topo)
    }
}

/// Two network namespaces joined by two independent paths. See the module docs.
#[derive(Debug)]
pub struct Topology {
    server_ns: String,
    client_ns: String,
    paths: [Impairment; 2],
}

impl Topology {
    /// Starts a two-path topology with no delay and no loss.
    pub fn two_paths() -> TopologyBuilder {
        TopologyBuilder {
            paths: [Impairment {
                rtt: Duration::ZERO,
                loss_percent: 0.0,
                rate_bits_per_sec: None,
            }; 2],
        }
    }

    /// The name of a side's namespace, for `ip netns exec`.
    pub fn namespace(&self, side: Side) -> &str {
        match side {
            Side::Server => &self.server_ns,
            Side::Client => &self.client_ns,
        }
    }

    /// A side's address on a path.
    pub fn address(&self, side: Side, path: Path) -> IpAddr {
        let [a, b, c] = path.subnet();
        IpAddr::V4(Ipv4Addr::new(a, b, c, side.host_octet()))
    }

    /// A side's addresses on both paths, path A first.
    pub fn addresses(&self, side: Side) -> [IpAddr; 2] {
        Path::BOTH.map(|path| self.address(side, path))
    }

    /// Moves the calling thread into a side's namespace until the guard drops.
    ///
    /// A socket belongs to the namespace it was created in, so create sockets while
    /// the guard lives and use them anywhere afterwards. Only this thread moves: other
    /// threads (a multi-threaded runtime's workers) stay where they are.
    ///
    /// # Errors
    ///
    /// The [`io::Error`] of opening this thread's or the side's namespace file, or of
    /// `setns` (`EPERM` without `CAP_SYS_ADMIN`); the thread then stays where it was.
    pub fn enter(&self, side: Side) -> io::Result<NamespaceGuard> {
        let original = File::open("/proc/thread-self/ns/net")?;
        let target = File::open(format!("/run/netns/{}", self.namespace(side)))?;
        setns(target.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
        Ok(NamespaceGuard { original })
    }

    /// A command that runs `program` inside a side's namespace.
    pub fn command(&self, side: Side, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.namespace(side)])
            .arg(program);
        command
    }

    /// Makes a path a black hole in both directions: packets vanish, links stay up,
    /// as when a router between the hosts dies.
    ///
    /// # Errors
    ///
    /// An [`io::Error`] if `ip` or `tc` cannot be run or fails (its standard error
    /// is in the message); the server side may then be changed and the client side
    /// not.
    pub fn cut(&self, path: Path) -> io::Result<()> {
        self.apply_netem(
            path,
            Impairment {
                loss_percent: 100.0,
                ..self.paths[path.index()]
            },
        )
    }

    /// Undoes [`Topology::cut`], back to the path's configured delay and loss.
    ///
    /// # Errors
    ///
    /// An [`io::Error`] if `ip` or `tc` cannot be run or fails (its standard error
    /// is in the message); the server side may then be changed and the client side
    /// not.
    pub fn restore(&self, path: Path) -> io::Result<()> {
        self.apply_netem(path, self.paths[path.index()])
    }

    /// Changes a path's delay and loss from now on.
    ///
    /// # Errors
    ///
    /// An [`io::Error`] if `ip` or `tc` cannot be run or fails (its standard error
    /// is in the message); the server side may then be changed and the client side
    /// not.
    /// The new values are kept either way, for [`Topology::restore`].
    pub fn set_netem(&mut self, path: Path, rtt: Duration, loss_percent: f64) -> io::Result<()> {
        let path_state = &mut self.paths[path.index()];
        path_state.rtt = rtt;
        path_state.loss_percent = loss_percent;
        self.apply_netem(path, self.paths[path.index()])
    }

    /// Changes a path's rate limit (bits per second in each direction; `None` lifts
    /// it) from now on, keeping its delay and loss.
    ///
    /// # Errors
    ///
    /// As [`Topology::set_netem`]; the new value is kept either way.
    pub fn set_rate(&mut self, path: Path, bits_per_sec: Option<u64>) -> io::Result<()> {
        self.paths[path.index()].rate_bits_per_sec = bits_per_sec;
        self.apply_netem(path, self.paths[path.index()])
    }

    /// Takes a path's link down on both ends (the hosts see it go, unlike [`cut`]).
    ///
    /// # Errors
    ///
    /// An [`io::Error`] if `ip` cannot be run or fails (its standard error is in
    /// the message); the server side may then be down and the client side not.
    ///
    /// [`cut`]: Topology::cut
    pub fn link_down(&self, path: Path) -> io::Result<()> {
        for ns in [&self.server_ns, &self.client_ns] {
            run("ip", &["-n", ns, "link", "set", path.interface(), "down"])?;
        }
        Ok(())
    }

    fn create(&self) -> io::Result<()> {
        run("ip", &["netns", "add", &self.server_ns])?;
        run("ip", &["netns", "add", &self.client_ns])?;
        for ns in [&self.server_ns, &self.client_ns] {
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        for path in Path::BOTH {
            let ifname = path.interface();
            run(
                "ip",
                &[
                    "link",
                    "add",
                    ifname,
                    "netns",
                    &self.server_ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    ifname,
                    "netns",
                    &self.client_ns,
                ],
            )?;
            for side in [Side::Server, Side::Client] {
                let ns = self.namespace(side);
                let address = format!("{}/24", self.address(side, path));
                run("ip", &["-n", ns, "addr", "add", &address, "dev", ifname])?;
                run("ip", &["-n", ns, "link", "set", ifname, "up"])?;
            }
            self.apply_netem(path, self.paths[path.index()])?;
        }
        Ok(())
    }

    fn apply_netem(&self, path: Path, impairment: Impairment) -> io::Result<()> {
        let one_way_us = (impairment.rtt / 2).as_micros().to_string();
        let delay = format!("{one_way_us}us");
        let loss = format!("{}%", impairment.loss_percent);
        // Always given: `tc qdisc replace` keeps a netem rate that is not named
        // again, and `0bit` is netem's "no rate limit".
        let rate = format!("{}bit", impairment.rate_bits_per_sec.unwrap_or(0));
        for ns in [&self.server_ns, &self.client_ns] {
            let args = [
                "netns",
                "exec",
                ns,
                "tc",
                "qdisc",
                "replace",
                "dev",
                path.interface(),
                "root",
                "netem",
                "delay",
                &delay,
                "loss",
                &loss,
                "limit",
                "100000",
                "rate",
                &rate,
            ];
            run("ip", &args)?;
        }
        Ok(())
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in [&self.server_ns, &self.client_ns] {
            // Deleting a namespace also destroys the veth ends inside it. A failure
            // here (never created) is fine: there is nothing left to clean.
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// Returns the calling thread to its original namespace on drop.
#[derive(Debug)]
#[must_use = "the thread leaves the namespace when the guard drops"]
pub struct NamespaceGuard {
    original: File,
}

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        if let Err(err) = setns(self.original.as_fd(), CloneFlags::CLONE_NEWNET) {
            // A thread stuck in the wrong namespace would make later tests lie.
            panic!("cannot return to the original network namespace: {err}");
        }
    }
}

/// Runs a command and turns a non-zero exit into an error that carries its stderr.
fn run(program: &str, args: &[&str]) -> io::Result<()> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|err| io::Error::new(err.kind(), format!("cannot run {program}: {err}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )))
}
