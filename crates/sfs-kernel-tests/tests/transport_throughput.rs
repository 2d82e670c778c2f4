//! Throughput of one association on loopback with 64 KiB messages, printed for
//! comparison with `iperf3 --sctp` (run by the second test, in the same VM run).
//! Inside the TCG-emulated VM absolute figures are low; compare them as a ratio.

mod transport_util;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use transport_util::*;

const MESSAGE: usize = 64 * 1024;
const RUN_FOR: Duration = Duration::from_secs(4);

async fn measure(streams: u16) -> f64 {
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
            // Streams are ordered independently, so each gets its own end mark.
            for stream in 1..=streams {
                client
                    .send(stream, 1, false, b"end")
                    .await
                    .expect("send end");
            }
            sent
        })
    };
    let started = Instant::now();
    let mut bytes = 0u64;
    let mut messages = 0u64;
    let mut ended = 0;
    while ended < streams {
        let (msg, _) = next_message(&server).await;
        if msg.ppid == 1 {
            ended += 1;
            continue;
        }
        assert_eq!(msg.data.len(), MESSAGE);
        bytes += msg.data.len() as u64;
        messages += 1;
    }
    let elapsed = started.elapsed();
    let sent = sender.await.expect("sender");
    assert_eq!(messages, sent, "every message arrived");
    let mbit = bytes as f64 * 8.0 / elapsed.as_secs_f64() / 1e6;
    println!(
        "THROUGHPUT sfs-sctp: {mbit:.1} Mbit/s ({messages} messages of 64 KiB in {elapsed:.2?}, {streams} stream(s), one association, loopback)"
    );
    mbit
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_association_64k_messages() {
    let one = measure(1).await;
    let eight = measure(8).await;
    assert!(one > 0.0 && eight > 0.0);
}

/// The transport ceiling on the same machine: iperf3 over SCTP and TCP with the
/// same 64 KiB writes, for the ratio.
#[test]
fn iperf3_reference() {
    let runs: [(&str, &[&str]); 3] = [
        ("iperf3 --sctp", &["--sctp"]),
        // With Nagle off and 2 MiB buffers, as sfs-sctp configures its sockets.
        ("iperf3 --sctp -N -w 2M", &["--sctp", "-N", "-w", "2M"]),
        ("iperf3 tcp", &[]),
    ];
    for (label, extra) in runs {
        let text = run_iperf3(extra);
        let receiver = text
            .lines()
            .find(|l| l.contains("receiver"))
            .unwrap_or("(no receiver line)");
        println!("THROUGHPUT {label} (-l 65536): {}", receiver.trim());
    }
}

/// One iperf3 client run against a one-shot server; returns the client's report.
/// The server is killed afterwards whatever happened, so nothing can hang.
fn run_iperf3(extra: &[&str]) -> String {
    let mut server = Command::new("iperf3")
        .args(["-s", "-1", "-B", "127.0.0.1", "-p", "5299"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("iperf3 must be installed (it is in the VM image)");
    let secs = RUN_FOR.as_secs().to_string();
    let mut last = String::new();
    // The server may take a moment to listen on a loaded machine.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(250));
        // `timeout` bounds a client that hangs on a half-open control connection.
        let output = Command::new("timeout")
            .args([
                "30",
                "iperf3",
                "-c",
                "127.0.0.1",
                "-p",
                "5299",
                "-l",
                "65536",
                "-t",
                &secs,
                "-f",
                "m",
            ])
            .args(extra)
            .output()
            .expect("run iperf3 client");
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.status.success() {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(last.contains("receiver"), "iperf3 {extra:?} failed: {last}");
    last
}
