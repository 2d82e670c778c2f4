//! Parsing `--peer` and `--local` address lists.
//!
//! `--peer 198.51.100.1,203.0.113.1:7373` names one server by several addresses
//! (SCTP multi-homing). A port written on any address applies to those without
//! one; with none, the default port is used. IPv6 addresses take brackets when a
//! port follows: `[2001:db8::1]:7373`. Host names are resolved.
//!
//! ```
//! use sfs_client::peers::parse_addrs;
//!
//! let addrs = parse_addrs("198.51.100.1,203.0.113.1:9000", 7373).unwrap();
//! assert_eq!(addrs[0].to_string(), "198.51.100.1:9000");
//! assert_eq!(addrs[1].to_string(), "203.0.113.1:9000");
//! ```

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Why an address list is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The list is empty.
    #[error("no address given")]
    Empty,
    /// One entry is neither an address nor a host name that resolves.
    #[error("`{0}` is not an address or a known host name")]
    Bad(String),
    /// A port is not a number from 1 to 65535.
    #[error("bad port in `{0}`")]
    BadPort(String),
}

/// One entry: a host (address or name) and the port written with it, if any.
fn split_entry(entry: &str) -> Result<(String, Option<u16>), AddrError> {
    let port = |text: &str| {
        text.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| AddrError::BadPort(entry.to_owned()))
    };
    if let Some(rest) = entry.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| AddrError::Bad(entry.to_owned()))?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host.to_owned(), Some(port(p)?))),
            None if after.is_empty() => Ok((host.to_owned(), None)),
            None => Err(AddrError::Bad(entry.to_owned())),
        };
    }
    if entry.parse::<IpAddr>().is_ok() {
        return Ok((entry.to_owned(), None));
    }
    match entry.rsplit_once(':') {
        Some((host, p)) if !host.contains(':') => Ok((host.to_owned(), Some(port(p)?))),
        _ => Ok((entry.to_owned(), None)),
    }
}

/// Parses a comma-separated address list (see the module docs).
///
/// # Errors
///
/// - [`AddrError::Empty`] if the list holds no entry;
/// - [`AddrError::BadPort`] if a port is not a number from 1 to 65535;
/// - [`AddrError::Bad`] if an entry is malformed (`[::1`) or a host name does
///   not resolve.
pub fn parse_addrs(list: &str, default_port: u16) -> Result<Vec<SocketAddr>, AddrError> {
    let entries = list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(split_entry)
        .collect::<Result<Vec<_>, _>>()?;
    if entries.is_empty() {
        return Err(AddrError::Empty);
    }
    let shared_port = entries
        .iter()
        .find_map(|(_, port)| *port)
        .unwrap_or(default_port);
    let mut addrs = Vec::new();
    for (host, port) in entries {
        let port = port.unwrap_or(shared_port);
        match host.parse::<IpAddr>() {
            Ok(ip) => addrs.push(SocketAddr::new(ip, port)),
            Err(_) => {
                let resolved = (host.as_str(), port)
                    .to_socket_addrs()
                    .map_err(|_| AddrError::Bad(host.clone()))?
                    .next()
                    .ok_or_else(|| AddrError::Bad(host.clone()))?;
                addrs.push(resolved);
            }
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_port_applies_to_every_address() {
        let addrs = parse_addrs("127.0.0.1:9000,127.0.0.2", 7373).unwrap();
        assert_eq!(
            addrs,
            vec![
                "127.0.0.1:9000".parse().unwrap(),
                "127.0.0.2:9000".parse().unwrap()
            ]
        );
        let addrs = parse_addrs("127.0.0.1, 127.0.0.2", 7373).unwrap();
        assert_eq!(addrs[1], "127.0.0.2:7373".parse().unwrap());
    }

    #[test]
    fn ipv6_with_and_without_brackets() {
        let addrs = parse_addrs("::1,[::1]:8000", 7373).unwrap();
        assert_eq!(addrs[0], "[::1]:8000".parse().unwrap());
        assert_eq!(addrs[1], "[::1]:8000".parse().unwrap());
        assert_eq!(
            parse_addrs("::1", 7373).unwrap()[0],
            "[::1]:7373".parse().unwrap()
        );
    }

    #[test]
    fn bad_lists_are_refused() {
        assert_eq!(parse_addrs("", 1), Err(AddrError::Empty));
        assert_eq!(parse_addrs(" , ", 1), Err(AddrError::Empty));
        assert!(matches!(
            parse_addrs("127.0.0.1:0", 1),
            Err(AddrError::BadPort(_))
        ));
        assert!(matches!(
            parse_addrs("127.0.0.1:x", 1),
            Err(AddrError::BadPort(_))
        ));
        assert!(matches!(parse_addrs("[::1", 1), Err(AddrError::Bad(_))));
    }
}
