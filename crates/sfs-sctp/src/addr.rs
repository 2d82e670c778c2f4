//! Socket addresses in the byte layouts the kernel SCTP API uses.
//!
//! `sctp_bindx` and `sctp_connectx` take a *packed* array of `sockaddr_in` (16 bytes)
//! and `sockaddr_in6` (28 bytes), one after the other with no padding (RFC 6458,
//! section 9.1). `SCTP_GET_PEER_ADDRS`/`SCTP_GET_LOCAL_ADDRS` return the same kind of
//! array. The option structures embed a 128-byte `sockaddr_storage`. All of it is
//! written and read here as plain bytes, so no `unsafe` is needed and every decoder
//! is total: malformed input gives `None`, never a panic.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// `sizeof(struct sockaddr_in)`.
pub(crate) const SOCKADDR_IN_LEN: usize = 16;
/// `sizeof(struct sockaddr_in6)`.
pub(crate) const SOCKADDR_IN6_LEN: usize = 28;
/// `sizeof(struct sockaddr_storage)`.
pub(crate) const SOCKADDR_STORAGE_LEN: usize = 128;

const AF_INET: u16 = libc::AF_INET as u16;
const AF_INET6: u16 = libc::AF_INET6 as u16;

/// Appends `addr` as a `sockaddr_in` or `sockaddr_in6`.
///
/// The family is in host byte order and the port in network byte order, as in C.
/// Flow info and scope id are stored as they are held by `SocketAddrV6`, which is
/// what the standard library does when it hands one to the kernel.
pub(crate) fn encode_sockaddr(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr {
        SocketAddr::V4(v4) => {
            out.extend_from_slice(&AF_INET.to_ne_bytes());
            out.extend_from_slice(&v4.port().to_be_bytes());
            out.extend_from_slice(&v4.ip().octets());
            out.extend_from_slice(&[0; 8]);
        }
        SocketAddr::V6(v6) => {
            out.extend_from_slice(&AF_INET6.to_ne_bytes());
            out.extend_from_slice(&v6.port().to_be_bytes());
            out.extend_from_slice(&v6.flowinfo().to_ne_bytes());
            out.extend_from_slice(&v6.ip().octets());
            out.extend_from_slice(&v6.scope_id().to_ne_bytes());
        }
    }
}

/// The packed address array that `sctp_bindx`/`sctp_connectx` expect.
pub(crate) fn encode_sockaddr_list(addrs: &[SocketAddr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(addrs.len() * SOCKADDR_IN6_LEN);
    for addr in addrs {
        encode_sockaddr(addr, &mut out);
    }
    out
}

/// `addr` in a zero-filled 128-byte `sockaddr_storage`.
pub(crate) fn sockaddr_storage(addr: &SocketAddr) -> [u8; SOCKADDR_STORAGE_LEN] {
    let mut bytes = Vec::with_capacity(SOCKADDR_IN6_LEN);
    encode_sockaddr(addr, &mut bytes);
    let mut storage = [0; SOCKADDR_STORAGE_LEN];
    // In bounds: an encoded address is at most 28 bytes, the storage 128.
    storage[..bytes.len()].copy_from_slice(&bytes);
    storage
}

/// Decodes one address at the start of `bytes`, returning it and its encoded length.
///
/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`), which an `AF_INET6` socket
/// reports for IPv4 peers, are turned back into IPv4 so callers can compare them
/// with the addresses they asked for. An unknown family gives `None`.
pub(crate) fn decode_sockaddr(bytes: &[u8]) -> Option<(SocketAddr, usize)> {
    let family = u16::from_ne_bytes(bytes.get(0..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
    match family {
        AF_INET => {
            let octets: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
            bytes.get(..SOCKADDR_IN_LEN)?;
            let addr = SocketAddrV4::new(Ipv4Addr::from(octets), port);
            Some((SocketAddr::V4(addr), SOCKADDR_IN_LEN))
        }
        AF_INET6 => {
            let flowinfo = u32::from_ne_bytes(bytes.get(4..8)?.try_into().ok()?);
            let octets: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
            let scope_id = u32::from_ne_bytes(bytes.get(24..28)?.try_into().ok()?);
            let ip = Ipv6Addr::from(octets);
            let addr = match ip.to_ipv4_mapped() {
                Some(v4) => SocketAddr::V4(SocketAddrV4::new(v4, port)),
                None => SocketAddr::V6(SocketAddrV6::new(ip, port, flowinfo, scope_id)),
            };
            Some((addr, SOCKADDR_IN6_LEN))
        }
        _ => None,
    }
}

/// Decodes `count` packed addresses, as returned by `SCTP_GET_{PEER,LOCAL}_ADDRS`.
///
/// Stops at the first address it cannot decode, so a short or garbled buffer yields
/// the addresses that were whole.
pub(crate) fn decode_sockaddr_list(mut bytes: &[u8], count: usize) -> Vec<SocketAddr> {
    let mut addrs = Vec::with_capacity(count.min(64));
    while addrs.len() < count {
        let Some((addr, len)) = decode_sockaddr(bytes) else {
            break;
        };
        addrs.push(addr);
        bytes = bytes.get(len..).unwrap_or_default();
    }
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_is_a_16_byte_sockaddr_in() {
        let addr: SocketAddr = "127.0.0.2:5000".parse().unwrap();
        let mut out = Vec::new();
        encode_sockaddr(&addr, &mut out);
        let mut expected = Vec::new();
        expected.extend_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        expected.extend_from_slice(&[0x13, 0x88, 127, 0, 0, 2]);
        expected.extend_from_slice(&[0; 8]);
        assert_eq!(out, expected);
        assert_eq!(decode_sockaddr(&out), Some((addr, 16)));
    }

    #[test]
    fn ipv6_is_a_28_byte_sockaddr_in6() {
        let addr: SocketAddr = "[fe80::1%3]:443".parse().unwrap();
        let mut out = Vec::new();
        encode_sockaddr(&addr, &mut out);
        assert_eq!(out.len(), 28);
        assert_eq!(&out[2..4], &[0x01, 0xbb]);
        assert_eq!(out[8], 0xfe);
        assert_eq!(out[23], 1);
        assert_eq!(u32::from_ne_bytes(out[24..28].try_into().unwrap()), 3);
        assert_eq!(decode_sockaddr(&out), Some((addr, 28)));
    }

    #[test]
    fn lists_are_packed_without_padding() {
        let addrs: Vec<SocketAddr> = vec![
            "10.0.0.1:9".parse().unwrap(),
            "[::1]:9".parse().unwrap(),
            "10.0.0.2:9".parse().unwrap(),
        ];
        let bytes = encode_sockaddr_list(&addrs);
        assert_eq!(bytes.len(), 16 + 28 + 16);
        assert_eq!(decode_sockaddr_list(&bytes, 3), addrs);
        // A count larger than the buffer holds yields what is there.
        assert_eq!(decode_sockaddr_list(&bytes, 10), addrs);
        // Truncation in the middle of the second address drops it and what follows.
        assert_eq!(decode_sockaddr_list(&bytes[..30], 3), addrs[..1]);
    }

    #[test]
    fn v4_mapped_addresses_are_reported_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:7".parse().unwrap();
        let mut out = Vec::new();
        encode_sockaddr(&mapped, &mut out);
        let (decoded, _) = decode_sockaddr(&out).unwrap();
        assert_eq!(decoded, "127.0.0.1:7".parse::<SocketAddr>().unwrap());
    }

    #[test]
    fn storage_is_zero_padded() {
        let addr: SocketAddr = "192.168.1.1:1".parse().unwrap();
        let storage = sockaddr_storage(&addr);
        assert!(storage[16..].iter().all(|&b| b == 0));
        assert_eq!(decode_sockaddr(&storage).map(|(a, _)| a), Some(addr));
    }

    #[test]
    fn garbage_never_panics() {
        assert_eq!(decode_sockaddr(&[]), None);
        assert_eq!(decode_sockaddr(&[0xff, 0xff, 0, 0]), None);
        let mut v4 = Vec::new();
        encode_sockaddr(&"1.2.3.4:5".parse().unwrap(), &mut v4);
        for len in 0..v4.len() {
            assert_eq!(decode_sockaddr(&v4[..len]), None, "prefix of {len} bytes");
        }
    }
}
