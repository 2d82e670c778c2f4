//! The two-path topology of [`sfs_kernel_tests::netns`] for shell scripts
//! (`scripts/bench`): builds it, then takes one command per line on standard input
//! and answers each with one line, `ok` or `error: ...`, on standard output.
//!
//! ```text
//! sfs-netns                      # prints "ready SERVER_NS CLIENT_NS" once built
//! set RTT_MS LOSS_PERCENT RATE   # both paths; RATE is Mbit/s or "none"
//! cut A|B                        # a black hole on one path
//! restore A|B                    # back to the path's delay, loss and rate
//! quit                           # or end of input: the namespaces are deleted
//! ```
//!
//! Needs root (network namespaces), like the kernel tests.

use std::io::{self, BufRead, Write};
use std::process::ExitCode;
use std::time::Duration;

use sfs_kernel_tests::netns::{Path, Side, Topology};

fn main() -> ExitCode {
    let mut topo = match Topology::two_paths().build() {
        Ok(topo) => topo,
        Err(err) => {
            eprintln!("sfs-netns: cannot build the topology: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut out = io::stdout().lock();
    let ready = writeln!(
        out,
        "ready {} {}",
        topo.namespace(Side::Server),
        topo.namespace(Side::Client)
    );
    if ready.and_then(|()| out.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    for line in io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"quit") {
            break;
        }
        let reply = match execute(&mut topo, &words) {
            Ok(()) => "ok".to_owned(),
            Err(err) => format!("error: {err}"),
        };
        if writeln!(out, "{reply}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    // Dropping the topology deletes both namespaces and their links.
    ExitCode::SUCCESS
}

/// Runs one command line (already split into words) against the topology.
fn execute(topo: &mut Topology, words: &[&str]) -> io::Result<()> {
    match words {
        ["set", rtt_ms, loss, rate] => {
            let rtt = Duration::from_millis(number(rtt_ms)?);
            let loss = percentage(loss)?;
            let rate = match *rate {
                "none" => None,
                mbit => Some(number(mbit)? * 1_000_000),
            };
            for path in Path::BOTH {
                topo.set_netem(path, rtt, loss)?;
                topo.set_rate(path, rate)?;
            }
            Ok(())
        }
        ["cut", path] => topo.cut(path_named(path)?),
        ["restore", path] => topo.restore(path_named(path)?),
        _ => Err(invalid(format!("unknown command: {}", words.join(" ")))),
    }
}

fn path_named(name: &str) -> io::Result<Path> {
    match name {
        "A" | "a" => Ok(Path::A),
        "B" | "b" => Ok(Path::B),
        other => Err(invalid(format!("no path named {other:?} (A or B)"))),
    }
}

fn number(text: &str) -> io::Result<u64> {
    text.parse()
        .map_err(|_| invalid(format!("not a whole number: {text:?}")))
}

fn percentage(text: &str) -> io::Result<f64> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=100.0).contains(&value) => Ok(value),
        _ => Err(invalid(format!("not a percentage: {text:?}"))),
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}
