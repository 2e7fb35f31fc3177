//! Which connection an incoming datagram belongs to, by hash lookup, never by scanning.
//!
//! A peer's first packets are STUN binding requests whose USERNAME is `server_ufrag:client_ufrag`;
//! the server ufrag was registered when the connection was made, so the request finds its
//! connection. Its source address is recorded ([`Demux::learn`]) only after the connection has
//! verified the request (right ufrags and MESSAGE-INTEGRITY, checked by str0m): a datagram that
//! merely names a ufrag teaches nothing, and a connection keeps at most
//! [`MAX_ADDRS_PER_CONN`] addresses. Every later packet (DTLS, SRTP, SRTCP) is found by its
//! source address and transport.

use std::collections::HashMap;
use std::net::SocketAddr;

use parking_lot::RwLock;

/// Most peer addresses recorded for one connection (a peer has a few candidates: host, server
/// reflexive, relayed, over UDP and TCP); learning one more forgets its oldest.
pub const MAX_ADDRS_PER_CONN: usize = 8;

/// Identifies one peer connection (one `str0m::Rtc`).
pub type ConnId = u64;

/// Where a connection lives: its worker thread and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Route {
    /// Index of the worker thread that owns the connection.
    pub worker: usize,
    /// The connection.
    pub conn: ConnId,
}

/// The transport a datagram came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The shared UDP socket.
    Udp,
    /// An ICE-TCP connection.
    Tcp,
}

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// Its connection.
    pub route: Route,
    /// It was routed by the STUN USERNAME from an address not (yet) recorded for the
    /// connection: once the connection has verified it, record the address with
    /// [`Demux::learn`].
    pub unconfirmed: bool,
}

/// The keys that route to one connection, kept so they can be removed with it.
type ConnKeys = (Vec<String>, Vec<(Transport, SocketAddr)>);

#[derive(Default)]
struct Tables {
    by_ufrag: HashMap<String, Route>,
    by_addr: HashMap<(Transport, SocketAddr), Route>,
    /// What to remove when a connection goes.
    keys_of: HashMap<ConnId, ConnKeys>,
}

/// The routing tables, shared by the socket readers (lookups) and the workers (updates).
#[derive(Default)]
pub struct Demux {
    tables: RwLock<Tables>,
}

impl Demux {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make `ufrag` (the server's local ICE ufrag of a connection) route to `route`.
    pub fn register_ufrag(&self, ufrag: &str, route: Route) {
        let mut t = self.tables.write();
        t.by_ufrag.insert(ufrag.to_string(), route);
        t.keys_of
            .entry(route.conn)
            .or_default()
            .0
            .push(ufrag.to_string());
    }

    /// Forget everything that routes to `conn`.
    pub fn remove_conn(&self, conn: ConnId) {
        let mut t = self.tables.write();
        if let Some((ufrags, addrs)) = t.keys_of.remove(&conn) {
            for u in ufrags {
                if t.by_ufrag.get(&u).is_some_and(|r| r.conn == conn) {
                    t.by_ufrag.remove(&u);
                }
            }
            for a in addrs {
                if t.by_addr.get(&a).is_some_and(|r| r.conn == conn) {
                    t.by_addr.remove(&a);
                }
            }
        }
    }

    /// Find the connection of a datagram from `source` on `transport`.
    pub fn route(&self, transport: Transport, source: SocketAddr, data: &[u8]) -> Option<Route> {
        self.route_for(transport, source, data).map(|r| r.route)
    }

    /// Find the connection of a datagram from `source` on `transport`, and whether its address
    /// is still to be confirmed. Records nothing.
    pub fn route_for(
        &self,
        transport: Transport,
        source: SocketAddr,
        data: &[u8],
    ) -> Option<Routed> {
        let t = self.tables.read();
        let known = t.by_addr.get(&(transport, source)).copied();
        if let Some(server_ufrag) = stun_server_ufrag(data) {
            let route = *t.by_ufrag.get(server_ufrag)?;
            return Some(Routed {
                route,
                unconfirmed: known != Some(route),
            });
        }
        known.map(|route| Routed {
            route,
            unconfirmed: false,
        })
    }

    /// Record that `source` on `transport` is a peer address of `route`'s connection: call it
    /// only after the connection verified a STUN binding request from there. A connection that
    /// has [`MAX_ADDRS_PER_CONN`] addresses forgets its oldest.
    pub fn learn(&self, transport: Transport, source: SocketAddr, route: Route) {
        let key = (transport, source);
        let mut t = self.tables.write();
        // The connection may be gone (removed while the datagram was in flight).
        if !t.keys_of.contains_key(&route.conn) {
            return;
        }
        if let Some(old) = t.by_addr.insert(key, route) {
            if old == route {
                return;
            }
            if let Some(keys) = t.keys_of.get_mut(&old.conn) {
                keys.1.retain(|k| *k != key);
            }
        }
        let addrs = &mut t.keys_of.entry(route.conn).or_default().1;
        addrs.push(key);
        let oldest = (addrs.len() > MAX_ADDRS_PER_CONN).then(|| addrs.remove(0));
        if let Some(oldest) = oldest {
            if t.by_addr.get(&oldest) == Some(&route) {
                t.by_addr.remove(&oldest);
            }
        }
    }

    /// Number of known addresses (for metrics).
    pub fn addr_count(&self) -> usize {
        self.tables.read().by_addr.len()
    }
}

/// If `data` is a STUN message with a USERNAME attribute, the part before the colon (the
/// receiver's ufrag, i.e. ours).
pub fn stun_server_ufrag(data: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    if data.len() < 20 || data[0] & 0xc0 != 0 || data[4..8] != MAGIC {
        return None;
    }
    let len = u16::from_be_bytes([data[2], data[3]]) as usize;
    let body = data.get(20..20 + len)?;
    let mut i = 0;
    while i + 4 <= body.len() {
        let kind = u16::from_be_bytes([body[i], body[i + 1]]);
        let alen = u16::from_be_bytes([body[i + 2], body[i + 3]]) as usize;
        let value = body.get(i + 4..i + 4 + alen)?;
        if kind == 0x0006 {
            let username = std::str::from_utf8(value).ok()?;
            return username.split(':').next();
        }
        i += 4 + alen.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding_request(username: &str) -> Vec<u8> {
        let mut attrs = Vec::new();
        // A PRIORITY attribute first, so the parser has to skip one.
        attrs.extend([0x00, 0x24, 0x00, 0x04, 1, 2, 3, 4]);
        attrs.extend(0x0006u16.to_be_bytes());
        attrs.extend((username.len() as u16).to_be_bytes());
        attrs.extend(username.as_bytes());
        while attrs.len() % 4 != 0 {
            attrs.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend((attrs.len() as u16).to_be_bytes());
        m.extend([0x21, 0x12, 0xa4, 0x42]);
        m.extend([7u8; 12]);
        m.extend(attrs);
        m
    }

    #[test]
    fn parses_the_server_ufrag_from_a_binding_request() {
        assert_eq!(
            stun_server_ufrag(&binding_request("srv1:cli9")),
            Some("srv1")
        );
        assert_eq!(
            stun_server_ufrag(&[0x80, 0x60, 0, 0]),
            None,
            "RTP is not STUN"
        );
        let mut truncated = binding_request("srv1:cli9");
        truncated.truncate(30);
        assert_eq!(stun_server_ufrag(&truncated), None);
    }

    #[test]
    fn a_confirmed_stun_request_teaches_the_address_and_removal_forgets_it() {
        let d = Demux::new();
        let route = Route {
            worker: 1,
            conn: 42,
        };
        d.register_ufrag("srv1", route);
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let rtp = [0x80u8, 0x60, 0, 1];
        assert_eq!(d.route(Transport::Udp, peer, &rtp), None);
        assert_eq!(
            d.route_for(Transport::Udp, peer, &binding_request("srv1:x")),
            Some(Routed {
                route,
                unconfirmed: true
            })
        );
        // Naming the ufrag teaches nothing: only the connection's verification does.
        assert_eq!(d.route(Transport::Udp, peer, &rtp), None);
        assert_eq!(d.addr_count(), 0);
        d.learn(Transport::Udp, peer, route);
        assert_eq!(
            d.route_for(Transport::Udp, peer, &binding_request("srv1:x")),
            Some(Routed {
                route,
                unconfirmed: false
            })
        );
        assert_eq!(d.route(Transport::Udp, peer, &rtp), Some(route));
        assert_eq!(
            d.route(Transport::Tcp, peer, &rtp),
            None,
            "transports are apart"
        );
        assert_eq!(
            d.route(Transport::Udp, peer, &binding_request("nope:x")),
            None
        );
        d.remove_conn(42);
        assert_eq!(d.route(Transport::Udp, peer, &rtp), None);
        assert_eq!(
            d.route(Transport::Udp, peer, &binding_request("srv1:x")),
            None
        );
        assert_eq!(d.addr_count(), 0);
        d.learn(Transport::Udp, peer, route);
        assert_eq!(d.addr_count(), 0, "a removed connection learns nothing");
    }

    #[test]
    fn datagrams_from_new_addresses_add_no_entry_and_addresses_per_connection_are_bounded() {
        let d = Demux::new();
        let route = Route { worker: 0, conn: 7 };
        d.register_ufrag("srv7", route);
        // Random datagrams and ufrag-naming requests from 10,000 addresses: nothing recorded.
        for i in 0..10_000u32 {
            let from = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 4000));
            let junk = [i as u8, 0x60, (i >> 8) as u8, 1, 2, 3, 4, 5];
            assert_eq!(d.route(Transport::Udp, from, &junk), None);
            d.route_for(Transport::Udp, from, &binding_request("srv7:evil"));
        }
        assert_eq!(d.addr_count(), 0);
        // Verified addresses: at most MAX_ADDRS_PER_CONN, the oldest forgotten first.
        let addr = |i: u16| SocketAddr::from(([192, 0, 2, 1], 5000 + i));
        for i in 0..20 {
            d.learn(Transport::Udp, addr(i), route);
        }
        assert_eq!(d.addr_count(), MAX_ADDRS_PER_CONN);
        assert_eq!(d.route(Transport::Udp, addr(0), &[0x80, 0x60]), None);
        assert_eq!(
            d.route(Transport::Udp, addr(19), &[0x80, 0x60]),
            Some(route)
        );
        d.remove_conn(7);
        assert_eq!(d.addr_count(), 0);
    }
}
