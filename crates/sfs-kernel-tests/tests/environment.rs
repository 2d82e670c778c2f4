//! Checks that the place the kernel tests run in has what they need: kernel SCTP,
//! several loopback addresses, and the two-path namespace topology with netem.
//! A failure here means the VM (or host) is broken, not the code under test.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use sfs_kernel_tests::netns::{Path, Side, Topology};
use socket2::{Domain, Protocol, Socket, Type};

const IPPROTO_SCTP: i32 = 132;

fn sctp_socket() -> Socket {
    Socket::new(
        Domain::IPV4,
        Type::STREAM,
        Some(Protocol::from(IPPROTO_SCTP)),
    )
    .expect("this kernel must have SCTP (the sctp module is loaded in the VM)")
}

#[test]
fn kernel_has_sctp_on_several_loopback_addresses() {
    for last in [1, 2, 3] {
        let address = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0);
        let listener = sctp_socket();
        listener.bind(&address.into()).unwrap();
        listener.listen(4).unwrap();
        let bound = listener.local_addr().unwrap().as_socket().unwrap();

        let client = sctp_socket();
        client.connect(&bound.into()).unwrap();
        let (mut server_side, _) = listener.accept().unwrap();
        let mut client = std::net::TcpStream::from(client);
        client.write_all(b"hello over sctp").unwrap();
        let mut received = [0u8; 15];
        server_side.read_exact(&mut received).unwrap();
        assert_eq!(&received, b"hello over sctp", "on 127.0.0.{last}");
    }
}

/// Measures the round trip of one small exchange over TCP between the namespaces.
fn tcp_round_trip(topo: &Topology, path: Path) -> std::io::Result<Duration> {
    let listener = {
        let _inside = topo.enter(Side::Server)?;
        TcpListener::bind((topo.address(Side::Server, path), 0))?
    };
    let target = listener.local_addr()?;
    let mut client = {
        let _inside = topo.enter(Side::Client)?;
        TcpStream::connect_timeout(&target, Duration::from_secs(3))?
    };
    let (mut server, peer) = listener.accept()?;
    assert_eq!(peer.ip(), topo.address(Side::Client, path));
    let start = Instant::now();
    client.write_all(b"p")?;
    let mut byte = [0u8; 1];
    server.read_exact(&mut byte)?;
    server.write_all(b"q")?;
    client.read_exact(&mut byte)?;
    Ok(start.elapsed())
}

#[test]
fn two_path_topology_applies_delay_and_cuts() {
    let topo = Topology::two_paths()
        .path_rtt(Path::A, Duration::from_millis(40))
        .path_rtt(Path::B, Duration::from_millis(2))
        .build()
        .expect("building the two-path topology");

    let slow = tcp_round_trip(&topo, Path::A).expect("path A carries traffic");
    let fast = tcp_round_trip(&topo, Path::B).expect("path B carries traffic");
    assert!(slow >= Duration::from_millis(40), "path A rtt {slow:?}");
    assert!(
        fast < slow,
        "path B ({fast:?}) is faster than path A ({slow:?})"
    );

    // A live listener on path A: while the path is cut, connecting to it must time
    // out (a refused connection would prove nothing).
    let listener = {
        let _inside = topo.enter(Side::Server).unwrap();
        TcpListener::bind((topo.address(Side::Server, Path::A), 0)).unwrap()
    };
    topo.cut(Path::A).unwrap();
    let cut = {
        let _inside = topo.enter(Side::Client).unwrap();
        TcpStream::connect_timeout(&listener.local_addr().unwrap(), Duration::from_millis(500))
    };
    let err = cut.expect_err("a cut path must carry nothing");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    tcp_round_trip(&topo, Path::B).expect("path B still works while A is cut");

    topo.restore(Path::A).unwrap();
    tcp_round_trip(&topo, Path::A).expect("path A works again once restored");
}
