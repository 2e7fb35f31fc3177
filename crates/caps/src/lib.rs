//! Connection caps: how many connections are open, in total and per client address. Used by
//! every HTTP listener (orbita-listen) and by the media server's ICE-TCP port (orbita-sfu),
//! which must not depend on HTTP crates.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use parking_lot::Mutex;

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The listener already had `max_connections` open.
    Total,
    /// The client's address already had `max_connections_per_address` open.
    PerAddress,
}

/// The open connections of one listener, in total and per address key ([`address_key`]).
#[derive(Debug)]
pub struct ConnectionCaps {
    max_total: usize,
    max_per_address: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// One open connection's place in its [`ConnectionCaps`]: given back when dropped.
#[derive(Debug)]
pub struct Permit {
    caps: Arc<ConnectionCaps>,
    key: Option<IpAddr>,
}

/// The key a client address is counted under: the IPv4 address, or the /64 of an IPv6 one
/// (one subscriber's network: one customer gets a whole /64 or more), IPv4-mapped IPv6 as
/// IPv4. `None` for 127.0.0.1 and ::1, which are not capped per address: a proxy on this host
/// (nginx in front of `orbita serve`) or a local tool connects from there for everyone.
pub fn address_key(ip: IpAddr) -> Option<IpAddr> {
    match ip.to_canonical() {
        IpAddr::V4(v4) if v4 == Ipv4Addr::LOCALHOST => None,
        IpAddr::V6(v6) if v6 == Ipv6Addr::LOCALHOST => None,
        IpAddr::V4(v4) => Some(IpAddr::V4(v4)),
        IpAddr::V6(v6) => Some(IpAddr::V6(Ipv6Addr::from(
            u128::from(v6) & (u128::MAX << 64),
        ))),
    }
}

impl ConnectionCaps {
    /// Caps of `max_total` connections, and `max_per_address` per address key (0: none).
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<ConnectionCaps> {
        Arc::new(ConnectionCaps {
            max_total,
            max_per_address,
            open: Mutex::new(Open::default()),
        })
    }

    /// A place for a connection from `ip`, or why there is none.
    pub fn try_open(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let key = address_key(ip).filter(|_| self.max_per_address > 0);
        let mut open = self.open.lock();
        if open.total >= self.max_total {
            return Err(Refusal::Total);
        }
        if let Some(key) = key {
            let count = open.per_address.entry(key).or_insert(0);
            if *count >= self.max_per_address {
                return Err(Refusal::PerAddress);
            }
            *count += 1;
        }
        open.total += 1;
        Ok(Permit {
            caps: Arc::clone(self),
            key,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().total
    }

    /// Addresses (keys) with connections open now: the table's size.
    pub fn addresses(&self) -> usize {
        self.open.lock().per_address.len()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.caps.open.lock();
        open.total -= 1;
        if let Some(key) = self.key {
            if let Some(count) = open.per_address.get_mut(&key) {
                *count -= 1;
                if *count == 0 {
                    open.per_address.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aa::1")),
            Some(ip("2001:db8:1:2::"))
        );
        assert_eq!(
            address_key(ip("2001:db8:1:2:ffff::9")),
            address_key(ip("2001:db8:1:2::1"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:3::1")),
            address_key(ip("2001:db8:1:2::1"))
        );
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), Some(ip("192.0.2.7")));
        assert_eq!(address_key(ip("127.0.0.1")), None);
        assert_eq!(address_key(ip("::ffff:127.0.0.1")), None);
        assert_eq!(address_key(ip("::1")), None);
        assert_eq!(address_key(ip("127.0.0.2")), Some(ip("127.0.0.2")));
    }

    #[test]
    fn per_address_and_total_caps_refuse_and_free_on_drop() {
        let caps = ConnectionCaps::new(5, 2);
        let a1 = caps.try_open(ip("192.0.2.1")).unwrap();
        let a2 = caps.try_open(ip("192.0.2.1")).unwrap();
        assert_eq!(
            caps.try_open(ip("192.0.2.1")).unwrap_err(),
            Refusal::PerAddress
        );
        // Another address (and another host of the same IPv6 /64 counts as one).
        let b = caps.try_open(ip("2001:db8::1")).unwrap();
        let _b2 = caps.try_open(ip("2001:db8::2")).unwrap();
        assert_eq!(
            caps.try_open(ip("2001:db8::3")).unwrap_err(),
            Refusal::PerAddress
        );
        // Loopback: only the total.
        let _l = caps.try_open(ip("127.0.0.1")).unwrap();
        assert_eq!(caps.open(), 5);
        assert_eq!(caps.try_open(ip("127.0.0.1")).unwrap_err(), Refusal::Total);
        assert_eq!(caps.try_open(ip("192.0.2.9")).unwrap_err(), Refusal::Total);
        drop(a1);
        let _a3 = caps.try_open(ip("192.0.2.1")).unwrap();
        drop((a2, b));
        // a3, b2 and the loopback one.
        assert_eq!(caps.open(), 3);
        assert_eq!(caps.addresses(), 2);
    }

    #[test]
    fn zero_means_no_per_address_cap() {
        let caps = ConnectionCaps::new(3, 0);
        let held: Vec<_> = (0..3)
            .map(|_| caps.try_open(ip("192.0.2.1")).unwrap())
            .collect();
        assert_eq!(caps.try_open(ip("192.0.2.1")).unwrap_err(), Refusal::Total);
        assert_eq!(caps.addresses(), 0);
        drop(held);
        assert_eq!(caps.open(), 0);
    }
}
