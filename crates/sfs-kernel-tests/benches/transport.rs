//! Throughput of one SCTP association on loopback with 64 KiB messages, beside
//! iperf3 in the same machine run, as medians and ratios. Run by `scripts/bench`
//! inside the kernel-SCTP VM (or natively where the host has SCTP).
//!
//! Emulation (TCG) makes absolute figures low and noisy: compare the ratios.

#[path = "../tests/transport_util/mod.rs"]
mod transport_util;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use transport_util::{config_with_streams, next_message, pair, two_address_listener};

const MESSAGE: usize = 64 * 1024;
const RUN_FOR: Duration = Duration::from_secs(3);
const ROUNDS: usize = 5;

/// Megabits per second of one association sending 64 KiB messages for `RUN_FOR`,
/// round-robin over `streams` data streams, measured at the receiver.
async fn sfs_sctp(streams: u16) -> f64 {
    let config = config_with_streams(16);
    let (listener, addrs) = two_address_listener(&config);
    let (client, server) = pair(&listener, &addrs[..1], &config).await;
    let client = Arc::new(client);
    let sender = {
        let client = Arc::clone(&client);
        tokio::spawn(async move {
            let data = vec![0x5a; MESSAGE];
            let started = Instant::now();
            let mut sent = 0u64;
            while started.elapsed() < RUN_FOR {
                let stream = 1 + (sent % u64::from(streams)) as u16;
                client.send(stream, 0, false, &data).await.expect("send");
                sent += 1;
            }
            // The count travels on stream 0, which is not ordered with the data
            // streams: the receiver keeps reading until it has them all.
            client
                .send(0, 1, false, &sent.to_be_bytes())
                .await
                .expect("send the count");
            sent
        })
    };
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut messages = 0u64;
    let mut expected = None;
    while expected != Some(messages) {
        let (msg, _) = next_message(&server).await;
        if msg.ppid == 1 {
            let count: [u8; 8] = msg.data.as_slice().try_into().expect("an 8-byte count");
            expected = Some(u64::from_be_bytes(count));
            continue;
        }
        assert_eq!(msg.data.len(), MESSAGE, "messages arrive whole");
        bytes += msg.data.len() as u64;
        messages += 1;
    }
    let elapsed = started.elapsed();
    sender.await.expect("sender");
    bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e6
}

/// Megabits per second that iperf3 reports at the receiver, 64 KiB writes.
fn iperf3(extra: &[&str]) -> f64 {
    let mut server = Command::new("iperf3")
        .args(["-s", "-1", "-B", "127.0.0.1", "-p", "5299"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 must be installed");
    std::thread::sleep(Duration::from_millis(300));
    let output = Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", "5299", "-l", "65536", "-J", "-t"])
        .arg(RUN_FOR.as_secs().to_string())
        .args(extra)
        .output()
        .expect("run the iperf3 client");
    let _ = server.wait();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "iperf3 {extra:?} failed: {text}");
    // The JSON's "sum_received": {..., "bits_per_second": N, ...} at the end.
    let at = text
        .rfind("\"sum_received\"")
        .expect("iperf3 JSON has sum_received");
    let field = &text[at..];
    let value = field
        .split("\"bits_per_second\":")
        .nth(1)
        .and_then(|rest| rest.split([',', '}']).next())
        .and_then(|n| n.trim().parse::<f64>().ok())
        .expect("iperf3 JSON has bits_per_second");
    value / 1e6
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    type Run<'a> = (&'a str, Box<dyn Fn() -> f64 + 'a>);
    let runs: Vec<Run> = vec![
        (
            "sfs-sctp, 1 data stream",
            Box::new(|| runtime.block_on(sfs_sctp(1))),
        ),
        (
            "sfs-sctp, 8 data streams",
            Box::new(|| runtime.block_on(sfs_sctp(8))),
        ),
        // Nagle off and 2 MiB buffers: what sfs-sctp configures on its sockets.
        (
            "iperf3 --sctp -N -w 2M",
            Box::new(|| iperf3(&["--sctp", "-N", "-w", "2M"])),
        ),
        ("iperf3 --sctp (defaults)", Box::new(|| iperf3(&["--sctp"]))),
        ("iperf3 TCP", Box::new(|| iperf3(&[]))),
    ];
    println!(
        "one association, loopback, 64 KiB messages, {ROUNDS} rounds of {RUN_FOR:?}, interleaved"
    );
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); runs.len()];
    // Rounds interleave the tools, so that drift in machine load hits all alike.
    for round in 1..=ROUNDS {
        for (index, (label, run)) in runs.iter().enumerate() {
            let mbit = run();
            eprintln!("  round {round}: {label}: {mbit:.0} Mb/s");
            samples[index].push(mbit);
        }
    }
    let reference = median(samples[2].clone());
    println!(
        "{:<28} {:>12} {:>12} {:>12} {:>10}",
        "", "median", "min", "max", "vs tuned"
    );
    for ((label, _), values) in runs.iter().zip(samples) {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(0.0, f64::max);
        let med = median(values);
        println!(
            "{label:<28} {:>7.0} Mb/s {:>7.0} Mb/s {:>7.0} Mb/s {:>9.2}x",
            med,
            min,
            max,
            med / reference
        );
    }
}
