//! Back-pressure: when the receiver stops reading, a sender waits for buffer space
//! without burning CPU, and finishes once reading resumes.

mod transport_util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use transport_util::*;

/// User plus system CPU time this process has used, from /proc/self/stat.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // SAFETY-free: USER_HZ is 100 on Linux (sysconf(_SC_CLK_TCK)).
    Duration::from_millis(ticks * 10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_sender_waits_without_spinning_then_completes() {
    const MESSAGES: usize = 400;
    const SIZE: usize = 16 * 1024;
    // Small buffers, so the pipe fills quickly (the kernel doubles these).
    let mut config = config_with_streams(4);
    config.send_buffer_size = 128 * 1024;
    config.recv_buffer_size = 128 * 1024;
    let (listener, addrs) = two_address_listener(&config);
    let (client, server) = pair(&listener, &addrs, &config).await;
    let client = Arc::new(client);
    let sent = Arc::new(AtomicUsize::new(0));

    let sender = {
        let (client, sent) = (Arc::clone(&client), Arc::clone(&sent));
        tokio::spawn(async move {
            for i in 0..MESSAGES {
                client
                    .send(1, i as u32, false, &vec![i as u8; SIZE])
                    .await
                    .expect("send");
                sent.store(i + 1, Ordering::SeqCst);
            }
        })
    };

    // Wait until the sender makes no progress for 500 ms: it is blocked.
    let mut last = usize::MAX;
    let mut still = 0;
    while still < 5 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = sent.load(Ordering::SeqCst);
        if now == last {
            still += 1;
        } else {
            (last, still) = (now, 0);
        }
    }
    let blocked_at = sent.load(Ordering::SeqCst);
    assert!(blocked_at < MESSAGES, "the sender never blocked");
    assert!(!sender.is_finished());

    // One second blocked: a spinning sender would use about a second of CPU.
    let cpu_before = cpu_time();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_used = cpu_time() - cpu_before;
    assert_eq!(sent.load(Ordering::SeqCst), blocked_at, "still blocked");
    println!(
        "blocked after {blocked_at} of {MESSAGES} messages of {SIZE} bytes; CPU used while blocked for 1 s: {cpu_used:?}"
    );
    assert!(
        cpu_used <= Duration::from_millis(100),
        "the blocked sender burns CPU: {cpu_used:?}"
    );

    // Reading resumes: everything arrives, in order, and the sender completes.
    for i in 0..MESSAGES {
        let (msg, _) = next_message(&server).await;
        assert_eq!(msg.ppid, i as u32);
        assert_eq!(msg.data.len(), SIZE);
        assert!(msg.data.iter().all(|&b| b == i as u8));
    }
    tokio::time::timeout(STEP, sender)
        .await
        .expect("sender finishes")
        .expect("sender task");
    assert_eq!(sent.load(Ordering::SeqCst), MESSAGES);
}
