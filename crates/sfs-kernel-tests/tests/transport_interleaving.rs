//! I-DATA interleaving (RFC 8260): off unless the kernel allows it, and when on, a
//! large message on one stream no longer holds up small ones on another, while
//! every message still arrives whole.

mod transport_util;

use std::net::SocketAddr;
use std::time::Duration;

use sfs_kernel_tests::netns::{Path, Side, Topology};
use sfs_sctp::{Received, SctpAssociation, SctpListener};
use transport_util::*;

#[tokio::test]
async fn off_without_the_sysctl() {
    // The default namespace keeps net.sctp.intl_enable at its default, 0.
    let intl = std::fs::read_to_string("/proc/sys/net/sctp/intl_enable").expect("sysctl");
    assert_eq!(intl.trim(), "0");
    let config = config_with_streams(4);
    assert!(config.interleaving, "asked for by default");
    let (listener, addrs) = two_address_listener(&config);
    let (client, server) = pair(&listener, &addrs, &config).await;
    assert!(!client.interleaving().expect("client"));
    assert!(!server.interleaving().expect("server"));
}

/// Turns on `net.sctp.intl_enable` in the namespace the calling thread is in.
fn enable_intl_here() {
    std::fs::write("/proc/sys/net/sctp/intl_enable", "1").expect("write sysctl");
}

#[tokio::test]
async fn small_messages_overtake_a_large_one_when_on() {
    let topo = Topology::two_paths()
        .rtt(Duration::from_millis(10))
        .build()
        .expect("topology");
    let mut config = config_with_streams(4);
    config.max_message_size = 4 << 20;
    let server_ip = topo.address(Side::Server, Path::A);
    let listener = {
        let _inside = topo.enter(Side::Server).expect("enter");
        enable_intl_here();
        SctpListener::bind(&[SocketAddr::new(server_ip, 0)], &config).expect("bind")
    };
    let target = listener.local_addrs().expect("local");
    let (client, server) = {
        let _inside = topo.enter(Side::Client).expect("enter");
        enable_intl_here();
        tokio::join!(
            SctpAssociation::connect(&target, None, &config, STEP),
            listener.accept()
        )
    };
    let (client, server) = (client.expect("connect"), server.expect("accept"));
    assert!(client.interleaving().expect("client"), "I-DATA negotiated");
    assert!(server.interleaving().expect("server"));

    // 1 MiB: small enough that the small messages still find room in the send
    // buffer behind it (chunk overhead makes it cost more than 1 MiB there).
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 253) as u8).collect();
    let sender = async {
        client.send(1, 1, false, &big).await.expect("big");
        for i in 0..50u32 {
            client
                .send(2, 100 + i, false, &i.to_be_bytes())
                .await
                .expect("small");
        }
    };
    let receiver = async {
        let mut small_before_big = 0;
        let mut small = Vec::new();
        let mut big_seen = false;
        while !(big_seen && small.len() == 50) {
            match tokio::time::timeout(STEP, server.recv())
                .await
                .expect("in time")
            {
                Ok(Received::Message(m)) if m.stream == 1 => {
                    assert!(m.data == big, "the large message arrives whole");
                    big_seen = true;
                }
                Ok(Received::Message(m)) => {
                    assert_eq!(m.stream, 2);
                    assert_eq!(m.data, (m.ppid - 100).to_be_bytes());
                    small.push(m.ppid);
                    if !big_seen {
                        small_before_big += 1;
                    }
                }
                Ok(Received::Notification(_)) => {}
                Err(err) => panic!("{err}"),
            }
        }
        assert_eq!(small, (100..150).collect::<Vec<_>>(), "in order");
        small_before_big
    };
    let ((), overtook) = tokio::join!(sender, receiver);
    println!("with I-DATA, {overtook} of 50 small messages arrived before the 1 MiB one");
    assert!(overtook > 0, "no small message overtook the large one");
}
