//! A TURN client over UDP (RFC 8656, which obsoletes RFC 5766), sans I/O: what a relay-only
//! bot (`--relay-only`) needs to reach the media server through a relay such as coturn.
//!
//! [`TurnClient`] takes datagrams from the TURN server ([`TurnClient::handle_input`]), data
//! for peers ([`TurnClient::send_to`]) and the time ([`TurnClient::handle_timeout`]); it
//! returns datagrams for the TURN server ([`TurnClient::poll_transmit`]), what peers sent, its
//! next deadline ([`TurnClient::poll_timeout`]) and events ([`TurnClient::poll_event`]). It
//! never touches a socket or the clock, so it is tested in virtual time.
//!
//! What it does:
//! - Allocate with long-term credentials (RFC 8489 §9.2): the first request goes without
//!   them, the server answers 401 with REALM and NONCE, and every later request carries
//!   USERNAME, REALM, NONCE and MESSAGE-INTEGRITY (HMAC-SHA1 keyed with
//!   MD5(username:realm:password)); a 438 (stale nonce) is retried with the new nonce.
//! - One channel per peer (ChannelBind, which also installs the permission for the peer's
//!   IP), then ChannelData both ways (4 bytes of overhead instead of 36). Data for a peer
//!   whose channel is being bound waits (a few datagrams); Data indications are accepted too.
//! - Refresh of the allocation before its lifetime ends, and of each channel (and so its
//!   permission, 5 minutes) every 4 minutes; Refresh with LIFETIME 0 on [`TurnClient::close`].
//! - Requests are retransmitted (RTO 250 ms doubling, at most 7 sends) and every response is
//!   checked: FINGERPRINT when present, MESSAGE-INTEGRITY on every answer to an
//!   authenticated request (one that fails the check is dropped, as if lost).
//!
//! Not done (a bot needs none of it): TCP/TLS to the server, IPv6 allocations
//! (REQUESTED-ADDRESS-FAMILY), SASLprep of non-ASCII passwords, MESSAGE-INTEGRITY-SHA256.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The STUN magic cookie (RFC 8489 §5).
const MAGIC_COOKIE: u32 = 0x2112_A442;
/// XORed into the CRC-32 of a FINGERPRINT.
const FINGERPRINT_XOR: u32 = 0x5354_554E;
/// CRC-32 as FINGERPRINT uses it (ISO HDLC, the zlib one).
const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// First retransmission timeout of a request; it doubles after each send.
pub const RTO_INITIAL: Duration = Duration::from_millis(250);
/// Largest retransmission timeout.
pub const RTO_MAX: Duration = Duration::from_secs(2);
/// Sends of one request (the first and its retransmissions) before giving up.
pub const MAX_SENDS: u32 = 7;
/// A bound channel (and so its permission, which lasts 5 minutes) is refreshed this often.
pub const CHANNEL_REFRESH: Duration = Duration::from_secs(240);
/// The allocation's lifetime when the server does not say (RFC 8656 default).
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// Datagrams held for a peer while its channel is being bound.
pub const MAX_PENDING: usize = 32;
/// 438 (stale nonce) answers retried per request.
const MAX_STALE_NONCE_RETRIES: u32 = 3;
/// Channel numbers (RFC 8656 §12).
const FIRST_CHANNEL: u16 = 0x4000;
const LAST_CHANNEL: u16 = 0x4FFF;
/// What the client calls itself (SOFTWARE).
const SOFTWARE: &[u8] = b"orbita-bot";

/// STUN/TURN methods.
mod method {
    pub const ALLOCATE: u16 = 0x003;
    pub const REFRESH: u16 = 0x004;
    #[cfg(test)]
    pub const SEND: u16 = 0x006;
    pub const DATA: u16 = 0x007;
    pub const CHANNEL_BIND: u16 = 0x009;
}

/// STUN/TURN attribute types.
mod attr {
    pub const USERNAME: u16 = 0x0006;
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    pub const ERROR_CODE: u16 = 0x0009;
    pub const CHANNEL_NUMBER: u16 = 0x000C;
    pub const LIFETIME: u16 = 0x000D;
    pub const XOR_PEER_ADDRESS: u16 = 0x0012;
    pub const DATA: u16 = 0x0013;
    pub const REALM: u16 = 0x0014;
    pub const NONCE: u16 = 0x0015;
    pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
    pub const REQUESTED_TRANSPORT: u16 = 0x0019;
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    pub const SOFTWARE: u16 = 0x8022;
    pub const FINGERPRINT: u16 = 0x8028;
}

/// The class of a STUN message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Request,
    Indication,
    Success,
    Error,
}

fn message_type(method: u16, class: Class) -> u16 {
    let c = match class {
        Class::Request => 0x0000,
        Class::Indication => 0x0010,
        Class::Success => 0x0100,
        Class::Error => 0x0110,
    };
    (method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2) | c
}

fn split_message_type(t: u16) -> (u16, Class) {
    let method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2);
    let class = match t & 0x0110 {
        0x0000 => Class::Request,
        0x0010 => Class::Indication,
        0x0100 => Class::Success,
        _ => Class::Error,
    };
    (method, class)
}

fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The long-term credential key, MD5(username ":" realm ":" password) (RFC 8489 §9.2.2).
pub fn long_term_key(username: &str, realm: &[u8], password: &str) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm);
    md5.update(b":");
    md5.update(password.as_bytes());
    md5.finalize().into()
}

/// `addr` as an XOR-*-ADDRESS attribute value.
fn xor_address(addr: SocketAddr, tid: &[u8; 12]) -> Vec<u8> {
    let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
    let mut v = vec![0, 0];
    match addr.ip() {
        IpAddr::V4(ip) => {
            v[1] = 0x01;
            v.extend_from_slice(&port.to_be_bytes());
            v.extend_from_slice(&(u32::from(ip) ^ MAGIC_COOKIE).to_be_bytes());
        }
        IpAddr::V6(ip) => {
            v[1] = 0x02;
            v.extend_from_slice(&port.to_be_bytes());
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            mask[4..].copy_from_slice(tid);
            let octets = ip.octets();
            v.extend(octets.iter().zip(mask).map(|(a, m)| a ^ m));
        }
    }
    v
}

/// An XOR-*-ADDRESS attribute value as an address.
fn parse_xor_address(v: &[u8], tid: &[u8; 12]) -> Option<SocketAddr> {
    if v.len() < 4 {
        return None;
    }
    let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match (v[1], v.len()) {
        (0x01, 8) => {
            let x = u32::from_be_bytes([v[4], v[5], v[6], v[7]]) ^ MAGIC_COOKIE;
            IpAddr::V4(Ipv4Addr::from(x))
        }
        (0x02, 20) => {
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            mask[4..].copy_from_slice(tid);
            let mut octets = [0u8; 16];
            for (i, o) in octets.iter_mut().enumerate() {
                *o = v[4 + i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Builds one STUN message.
pub(crate) struct MessageBuilder {
    buf: Vec<u8>,
}

impl MessageBuilder {
    pub(crate) fn new(method: u16, class: Class, tid: &[u8; 12]) -> MessageBuilder {
        let mut buf = Vec::with_capacity(160);
        buf.extend_from_slice(&message_type(method, class).to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(tid);
        MessageBuilder { buf }
    }

    fn tid(&self) -> [u8; 12] {
        self.buf[8..20].try_into().expect("a 20-byte header")
    }

    /// Set the header's length as if `extra` more bytes followed.
    fn set_len(&mut self, extra: usize) {
        let len = (self.buf.len() - 20 + extra) as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
    }

    pub(crate) fn attr(&mut self, t: u16, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(&t.to_be_bytes());
        self.buf.extend_from_slice(&(v.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(v);
        let pad = (4 - v.len() % 4) % 4;
        self.buf.extend(std::iter::repeat_n(0, pad));
        self
    }

    pub(crate) fn xor_addr(&mut self, t: u16, addr: SocketAddr) -> &mut Self {
        let v = xor_address(addr, &self.tid());
        self.attr(t, &v)
    }

    /// Append MESSAGE-INTEGRITY (HMAC-SHA1 of everything before it, the length counting it).
    pub(crate) fn integrity(&mut self, key: &[u8]) -> &mut Self {
        self.set_len(24);
        let mac = hmac_sha1(key, &self.buf);
        self.attr(attr::MESSAGE_INTEGRITY, &mac)
    }

    /// Append FINGERPRINT (CRC-32 of everything before it, the length counting it).
    pub(crate) fn fingerprint(&mut self) -> &mut Self {
        self.set_len(8);
        let crc = CRC32.checksum(&self.buf) ^ FINGERPRINT_XOR;
        self.attr(attr::FINGERPRINT, &crc.to_be_bytes())
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        self.set_len(0);
        std::mem::take(&mut self.buf)
    }
}

/// A parsed STUN message, borrowing the datagram.
#[derive(Debug)]
pub(crate) struct Message<'a> {
    pub(crate) method: u16,
    pub(crate) class: Class,
    pub(crate) tid: [u8; 12],
    raw: &'a [u8],
    /// Attributes up to MESSAGE-INTEGRITY (later ones, but FINGERPRINT, are ignored).
    attrs: Vec<(u16, &'a [u8])>,
    /// Offset and value of MESSAGE-INTEGRITY.
    integrity: Option<(usize, &'a [u8])>,
}

/// Whether `data` looks like a STUN message (RFC 8489 §5: top bits 0, the magic cookie).
pub fn is_stun(data: &[u8]) -> bool {
    data.len() >= 20
        && data[0] & 0xC0 == 0
        && u32::from_be_bytes([data[4], data[5], data[6], data[7]]) == MAGIC_COOKIE
}

impl<'a> Message<'a> {
    /// Parse `data`; `None` when it is not a well-formed STUN message, or its FINGERPRINT
    /// is wrong.
    pub(crate) fn parse(data: &'a [u8]) -> Option<Message<'a>> {
        if !is_stun(data) {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if len % 4 != 0 || 20 + len != data.len() {
            return None;
        }
        let (method, class) = split_message_type(u16::from_be_bytes([data[0], data[1]]));
        let tid: [u8; 12] = data[8..20].try_into().ok()?;
        let mut attrs = Vec::new();
        let mut integrity = None;
        let mut at = 20;
        while at < data.len() {
            if at + 4 > data.len() {
                return None;
            }
            let t = u16::from_be_bytes([data[at], data[at + 1]]);
            let l = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
            let end = at + 4 + l;
            if end > data.len() {
                return None;
            }
            let v = &data[at + 4..end];
            if t == attr::FINGERPRINT {
                // The last attribute; it covers everything before it.
                if end != data.len() || l != 4 {
                    return None;
                }
                let want = CRC32.checksum(&data[..at]) ^ FINGERPRINT_XOR;
                if u32::from_be_bytes([v[0], v[1], v[2], v[3]]) != want {
                    return None;
                }
            } else if integrity.is_none() {
                if t == attr::MESSAGE_INTEGRITY {
                    if l != 20 {
                        return None;
                    }
                    integrity = Some((at, v));
                } else {
                    attrs.push((t, v));
                }
            }
            at = end + (4 - l % 4) % 4;
        }
        Some(Message {
            method,
            class,
            tid,
            raw: data,
            attrs,
            integrity,
        })
    }

    pub(crate) fn get(&self, t: u16) -> Option<&'a [u8]> {
        self.attrs.iter().find(|(at, _)| *at == t).map(|(_, v)| *v)
    }

    pub(crate) fn xor_addr(&self, t: u16) -> Option<SocketAddr> {
        parse_xor_address(self.get(t)?, &self.tid)
    }

    /// ERROR-CODE as (code, reason phrase).
    pub(crate) fn error(&self) -> Option<(u16, String)> {
        let v = self.get(attr::ERROR_CODE)?;
        if v.len() < 4 {
            return None;
        }
        let code = u16::from(v[2] & 0x07) * 100 + u16::from(v[3]);
        Some((code, String::from_utf8_lossy(&v[4..]).trim().to_string()))
    }

    pub(crate) fn lifetime(&self) -> Option<Duration> {
        let v = self.get(attr::LIFETIME)?;
        let secs = u32::from_be_bytes(v.try_into().ok()?);
        Some(Duration::from_secs(u64::from(secs)))
    }

    /// Whether the message has a MESSAGE-INTEGRITY that `key` verifies.
    pub(crate) fn check_integrity(&self, key: &[u8]) -> bool {
        let Some((at, value)) = self.integrity else {
            return false;
        };
        let mut covered = self.raw[..at].to_vec();
        let len = (at - 20 + 24) as u16;
        covered[2..4].copy_from_slice(&len.to_be_bytes());
        let mut mac = HmacSha1::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(&covered);
        mac.verify_slice(value).is_ok()
    }
}

/// Where and as whom to allocate.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnConfig {
    /// The TURN server (UDP).
    pub server: SocketAddr,
    /// Long-term credential username (for Orbita: `EXPIRY:PARTICIPANT` from `joined`).
    pub username: String,
    /// Its password.
    pub password: String,
}

impl fmt::Debug for TurnConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnConfig")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// What went wrong with a request to the TURN server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnErrorKind {
    /// The server answered with an error (ERROR-CODE), e.g. 401 Unauthorized.
    Refused {
        /// STUN error code (300..699).
        code: u16,
        /// The server's reason phrase.
        reason: String,
    },
    /// No (valid) answer after every retransmission.
    NoAnswer {
        /// How long the client waited.
        after: Duration,
    },
    /// The answer lacked something it must carry.
    Malformed(&'static str),
}

/// A failed request to the TURN server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnError {
    /// The TURN server.
    pub server: SocketAddr,
    /// The request: `Allocate`, `Refresh` or `ChannelBind`.
    pub request: &'static str,
    /// What happened.
    pub kind: TurnErrorKind,
}

impl TurnError {
    /// The STUN error code, when the server answered with one.
    pub fn code(&self) -> Option<u16> {
        match &self.kind {
            TurnErrorKind::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl fmt::Display for TurnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TurnErrorKind::Refused { code, reason } => write!(
                f,
                "the TURN server {} refused {}: {code} {reason}",
                self.server, self.request
            ),
            TurnErrorKind::NoAnswer { after } => write!(
                f,
                "no answer from the TURN server {} to {} in {} ms",
                self.server,
                self.request,
                after.as_millis()
            ),
            TurnErrorKind::Malformed(what) => write!(
                f,
                "the TURN server {} answered {} without {what}",
                self.server, self.request
            ),
        }
    }
}

impl std::error::Error for TurnError {}

/// Where the allocation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnState {
    /// Allocate sent, no relayed address yet.
    Allocating,
    /// The relayed address is ours.
    Allocated,
    /// The allocation failed or was lost (a Refresh failed); nothing more is sent.
    Failed(TurnError),
    /// [`TurnClient::close`] deleted it.
    Closed,
}

/// Something the caller may want to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnEvent {
    /// The allocation succeeded.
    Allocated {
        /// The relayed transport address: what peers send to (the relay candidate).
        relayed: SocketAddr,
        /// How the server sees the client (XOR-MAPPED-ADDRESS), when it says.
        mapped: Option<SocketAddr>,
        /// How long the allocation lasts unless refreshed (it is, automatically).
        lifetime: Duration,
    },
    /// A channel to `peer` is bound (its permission installed): data flows.
    ChannelBound {
        /// The peer.
        peer: SocketAddr,
        /// The channel number.
        channel: u16,
    },
    /// Binding (or refreshing) the channel to `peer` failed; data for it is dropped.
    ChannelFailed {
        /// The peer.
        peer: SocketAddr,
        /// Why.
        error: TurnError,
    },
    /// The allocation failed or was lost.
    Failed(TurnError),
}

/// Counters of what went through the relay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TurnStats {
    /// Datagrams sent to peers (as ChannelData).
    pub sent_datagrams: u64,
    /// Their payload bytes.
    pub sent_bytes: u64,
    /// Datagrams received from peers (ChannelData or Data indications).
    pub received_datagrams: u64,
    /// Their payload bytes.
    pub received_bytes: u64,
    /// Datagrams for peers dropped (no allocation, channel failed, too many waiting).
    pub dropped_datagrams: u64,
    /// STUN requests sent, retransmissions included.
    pub requests_sent: u64,
    /// Successful refreshes of the allocation.
    pub refreshes: u64,
}

/// A request, enough to build it again (with new credentials or a new nonce).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Allocate,
    Refresh,
    ChannelBind { peer: SocketAddr, number: u16 },
}

impl Request {
    fn name(self) -> &'static str {
        match self {
            Request::Allocate => "Allocate",
            Request::Refresh => "Refresh",
            Request::ChannelBind { .. } => "ChannelBind",
        }
    }

    fn method(self) -> u16 {
        match self {
            Request::Allocate => method::ALLOCATE,
            Request::Refresh => method::REFRESH,
            Request::ChannelBind { .. } => method::CHANNEL_BIND,
        }
    }
}

/// A request in flight.
#[derive(Debug)]
struct Transaction {
    tid: [u8; 12],
    request: Request,
    bytes: Vec<u8>,
    authenticated: bool,
    started: Instant,
    next_send: Instant,
    rto: Duration,
    sends: u32,
    stale_retries: u32,
}

/// Credentials learnt from the server's 401.
#[derive(Debug, Clone)]
struct Auth {
    realm: Vec<u8>,
    nonce: Vec<u8>,
    key: [u8; 16],
}

/// A channel to one peer.
#[derive(Debug, Default)]
struct Channel {
    number: u16,
    bound: bool,
    failed: bool,
    refresh_at: Option<Instant>,
    pending: Vec<Vec<u8>>,
}

/// The TURN client. See the module docs.
#[derive(Debug)]
pub struct TurnClient {
    config: TurnConfig,
    auth: Option<Auth>,
    state: TurnState,
    relayed: Option<SocketAddr>,
    mapped: Option<SocketAddr>,
    refresh_at: Option<Instant>,
    transactions: Vec<Transaction>,
    channels: HashMap<SocketAddr, Channel>,
    by_number: HashMap<u16, SocketAddr>,
    next_channel: u16,
    outbox: VecDeque<Vec<u8>>,
    events: VecDeque<TurnEvent>,
    stats: TurnStats,
}

impl TurnClient {
    /// A client that starts allocating at `now` (its Allocate is in [`TurnClient::poll_transmit`]).
    pub fn new(config: TurnConfig, now: Instant) -> TurnClient {
        let mut client = TurnClient {
            config,
            auth: None,
            state: TurnState::Allocating,
            relayed: None,
            mapped: None,
            refresh_at: None,
            transactions: Vec::new(),
            channels: HashMap::new(),
            by_number: HashMap::new(),
            next_channel: FIRST_CHANNEL,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            stats: TurnStats::default(),
        };
        client.start(now, Request::Allocate, 0);
        client
    }

    /// The TURN server every datagram of [`TurnClient::poll_transmit`] goes to.
    pub fn server(&self) -> SocketAddr {
        self.config.server
    }

    /// Where the allocation stands.
    pub fn state(&self) -> &TurnState {
        &self.state
    }

    /// The relayed transport address, once allocated.
    pub fn relayed_addr(&self) -> Option<SocketAddr> {
        self.relayed
    }

    /// The client's address as the server sees it, once allocated (if the server said).
    pub fn mapped_addr(&self) -> Option<SocketAddr> {
        self.mapped
    }

    /// What went through the relay so far.
    pub fn stats(&self) -> TurnStats {
        self.stats
    }

    /// The next datagram to send to [`TurnClient::server`].
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TurnEvent> {
        self.events.pop_front()
    }

    /// When [`TurnClient::handle_timeout`] must run next (`None`: nothing to do).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.state, TurnState::Failed(_) | TurnState::Closed) {
            return None;
        }
        let transactions = self.transactions.iter().map(|t| t.next_send);
        let channels = self.channels.values().filter_map(|c| c.refresh_at);
        transactions.chain(channels).chain(self.refresh_at).min()
    }

    /// Time passed: retransmit, give up on requests, refresh the allocation and channels.
    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.state, TurnState::Failed(_) | TurnState::Closed) {
            return;
        }
        let mut i = 0;
        while i < self.transactions.len() {
            let t = &mut self.transactions[i];
            if t.next_send > now {
                i += 1;
                continue;
            }
            if t.sends >= MAX_SENDS {
                let t = self.transactions.swap_remove(i);
                let error = self.error(
                    t.request,
                    TurnErrorKind::NoAnswer {
                        after: now.saturating_duration_since(t.started),
                    },
                );
                self.failed(t.request, error);
                if matches!(self.state, TurnState::Failed(_)) {
                    return;
                }
                continue;
            }
            t.sends += 1;
            t.rto = (t.rto * 2).min(RTO_MAX);
            t.next_send = now + t.rto;
            self.outbox.push_back(t.bytes.clone());
            self.stats.requests_sent += 1;
            i += 1;
        }
        if self.state == TurnState::Allocated && self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            self.start(now, Request::Refresh, 0);
        }
        let due: Vec<(SocketAddr, u16)> = self
            .channels
            .iter_mut()
            .filter(|(_, c)| c.refresh_at.is_some_and(|t| t <= now))
            .map(|(peer, c)| {
                c.refresh_at = None;
                (*peer, c.number)
            })
            .collect();
        for (peer, number) in due {
            self.start(now, Request::ChannelBind { peer, number }, 0);
        }
    }

    /// Send `data` to `peer` through the relay. The first datagram for a peer binds a
    /// channel to it; until that is done its datagrams wait (at most [`MAX_PENDING`]).
    pub fn send_to(&mut self, now: Instant, peer: SocketAddr, data: &[u8]) {
        if self.state != TurnState::Allocated {
            self.stats.dropped_datagrams += 1;
            return;
        }
        if !self.channels.contains_key(&peer) {
            if self.next_channel > LAST_CHANNEL {
                self.stats.dropped_datagrams += 1;
                return;
            }
            let number = self.next_channel;
            self.next_channel += 1;
            self.by_number.insert(number, peer);
            self.channels.insert(
                peer,
                Channel {
                    number,
                    ..Channel::default()
                },
            );
            self.start(now, Request::ChannelBind { peer, number }, 0);
        }
        let channel = self.channels.get_mut(&peer).expect("inserted above");
        if channel.failed {
            self.stats.dropped_datagrams += 1;
        } else if channel.bound {
            self.outbox.push_back(channel_data(channel.number, data));
            self.stats.sent_datagrams += 1;
            self.stats.sent_bytes += data.len() as u64;
        } else if channel.pending.len() < MAX_PENDING {
            channel.pending.push(data.to_vec());
        } else {
            self.stats.dropped_datagrams += 1;
        }
    }

    /// A datagram from the TURN server. Returns the peer and its data when it carried data
    /// from a peer (ChannelData or a Data indication); answers to requests are handled.
    pub fn handle_input<'a>(
        &mut self,
        now: Instant,
        data: &'a [u8],
    ) -> Option<(SocketAddr, &'a [u8])> {
        if data.len() >= 4 && data[0] & 0xC0 == 0x40 {
            let number = u16::from_be_bytes([data[0], data[1]]);
            let len = usize::from(u16::from_be_bytes([data[2], data[3]]));
            let payload = data.get(4..4 + len)?;
            let peer = *self.by_number.get(&number)?;
            self.received(payload.len());
            return Some((peer, payload));
        }
        let msg = Message::parse(data)?;
        match msg.class {
            Class::Indication if msg.method == method::DATA => {
                let peer = msg.xor_addr(attr::XOR_PEER_ADDRESS)?;
                let payload = msg.get(attr::DATA)?;
                self.received(payload.len());
                Some((peer, payload))
            }
            Class::Success | Class::Error => {
                self.on_response(now, &msg);
                None
            }
            _ => None,
        }
    }

    /// Delete the allocation (Refresh with LIFETIME 0, sent once) and stop.
    pub fn close(&mut self, _now: Instant) {
        if self.state == TurnState::Allocated {
            let tid = rand::random::<[u8; 12]>();
            let bytes = self.build(Request::Refresh, &tid, Some(0));
            self.outbox.push_back(bytes);
            self.stats.requests_sent += 1;
        }
        self.state = TurnState::Closed;
        self.transactions.clear();
        self.refresh_at = None;
        for c in self.channels.values_mut() {
            c.refresh_at = None;
            c.pending.clear();
        }
    }

    fn received(&mut self, len: usize) {
        self.stats.received_datagrams += 1;
        self.stats.received_bytes += len as u64;
    }

    fn error(&self, request: Request, kind: TurnErrorKind) -> TurnError {
        TurnError {
            server: self.config.server,
            request: request.name(),
            kind,
        }
    }

    /// Build `request` (with credentials once known). `lifetime`: a Refresh's LIFETIME.
    fn build(&self, request: Request, tid: &[u8; 12], lifetime: Option<u32>) -> Vec<u8> {
        let mut b = MessageBuilder::new(request.method(), Class::Request, tid);
        match request {
            // 17: UDP.
            Request::Allocate => b.attr(attr::REQUESTED_TRANSPORT, &[17, 0, 0, 0]),
            Request::Refresh => match lifetime {
                Some(l) => b.attr(attr::LIFETIME, &l.to_be_bytes()),
                None => &mut b,
            },
            Request::ChannelBind { peer, number } => {
                let n = number.to_be_bytes();
                b.attr(attr::CHANNEL_NUMBER, &[n[0], n[1], 0, 0])
                    .xor_addr(attr::XOR_PEER_ADDRESS, peer)
            }
        };
        b.attr(attr::SOFTWARE, SOFTWARE);
        if let Some(auth) = &self.auth {
            b.attr(attr::USERNAME, self.config.username.as_bytes())
                .attr(attr::REALM, &auth.realm)
                .attr(attr::NONCE, &auth.nonce)
                .integrity(&auth.key);
        }
        b.fingerprint().finish()
    }

    /// Send `request` as a new transaction.
    fn start(&mut self, now: Instant, request: Request, stale_retries: u32) {
        let tid = rand::random::<[u8; 12]>();
        let bytes = self.build(request, &tid, None);
        self.outbox.push_back(bytes.clone());
        self.stats.requests_sent += 1;
        self.transactions.push(Transaction {
            tid,
            request,
            bytes,
            authenticated: self.auth.is_some(),
            started: now,
            next_send: now + RTO_INITIAL,
            rto: RTO_INITIAL,
            sends: 1,
            stale_retries,
        });
    }

    fn on_response(&mut self, now: Instant, msg: &Message<'_>) {
        let Some(i) = self.transactions.iter().position(|t| t.tid == msg.tid) else {
            return; // a late answer to a retransmitted or abandoned request
        };
        let t = &self.transactions[i];
        if msg.method != t.request.method() {
            return;
        }
        // An answer to an authenticated request must prove it knows the key; one that does
        // not is dropped as if it were lost (the request is retransmitted, then fails).
        if t.authenticated {
            let key = self.auth.as_ref().map(|a| a.key);
            let verified = key.is_some_and(|k| msg.check_integrity(&k));
            let unsigned_error = msg.class == Class::Error && msg.integrity.is_none();
            if !verified && !unsigned_error {
                return;
            }
        }
        let t = self.transactions.swap_remove(i);
        if msg.class == Class::Success {
            return self.succeeded(now, t.request, msg);
        }
        let (code, reason) = msg
            .error()
            .unwrap_or((0, "an error without ERROR-CODE".to_string()));
        let realm = msg.get(attr::REALM);
        let nonce = msg.get(attr::NONCE);
        match (code, realm, nonce) {
            // The challenge: retry with credentials.
            (401, Some(realm), Some(nonce)) if !t.authenticated => {
                let key = long_term_key(&self.config.username, realm, &self.config.password);
                self.auth = Some(Auth {
                    realm: realm.to_vec(),
                    nonce: nonce.to_vec(),
                    key,
                });
                self.start(now, t.request, t.stale_retries);
            }
            (401, _, _) if !t.authenticated => {
                let error = self.error(t.request, TurnErrorKind::Malformed("REALM and NONCE"));
                self.failed(t.request, error);
            }
            // Stale nonce: retry with the new one.
            (438, _, Some(nonce)) if t.stale_retries < MAX_STALE_NONCE_RETRIES => {
                if let Some(auth) = &mut self.auth {
                    auth.nonce = nonce.to_vec();
                    if let Some(realm) = realm {
                        if realm != auth.realm.as_slice() {
                            auth.realm = realm.to_vec();
                            auth.key =
                                long_term_key(&self.config.username, realm, &self.config.password);
                        }
                    }
                }
                self.start(now, t.request, t.stale_retries + 1);
            }
            _ => {
                let error = self.error(t.request, TurnErrorKind::Refused { code, reason });
                self.failed(t.request, error);
            }
        }
    }

    fn succeeded(&mut self, now: Instant, request: Request, msg: &Message<'_>) {
        match request {
            Request::Allocate => {
                let Some(relayed) = msg.xor_addr(attr::XOR_RELAYED_ADDRESS) else {
                    let error =
                        self.error(request, TurnErrorKind::Malformed("XOR-RELAYED-ADDRESS"));
                    return self.failed(request, error);
                };
                let lifetime = msg.lifetime().unwrap_or(DEFAULT_LIFETIME);
                self.relayed = Some(relayed);
                self.mapped = msg.xor_addr(attr::XOR_MAPPED_ADDRESS);
                self.state = TurnState::Allocated;
                self.refresh_at = Some(now + refresh_after(lifetime));
                self.events.push_back(TurnEvent::Allocated {
                    relayed,
                    mapped: self.mapped,
                    lifetime,
                });
            }
            Request::Refresh => {
                let lifetime = msg.lifetime().unwrap_or(DEFAULT_LIFETIME);
                self.refresh_at = Some(now + refresh_after(lifetime));
                self.stats.refreshes += 1;
            }
            Request::ChannelBind { peer, number } => {
                let Some(channel) = self.channels.get_mut(&peer) else {
                    return;
                };
                let first = !channel.bound;
                channel.bound = true;
                channel.refresh_at = Some(now + CHANNEL_REFRESH);
                for data in std::mem::take(&mut channel.pending) {
                    self.stats.sent_datagrams += 1;
                    self.stats.sent_bytes += data.len() as u64;
                    self.outbox.push_back(channel_data(number, &data));
                }
                if first {
                    self.events.push_back(TurnEvent::ChannelBound {
                        peer,
                        channel: number,
                    });
                }
            }
        }
    }

    fn failed(&mut self, request: Request, error: TurnError) {
        match request {
            Request::Allocate | Request::Refresh => {
                // Without the allocation nothing else can work.
                self.state = TurnState::Failed(error.clone());
                self.transactions.clear();
                self.refresh_at = None;
                for c in self.channels.values_mut() {
                    self.stats.dropped_datagrams += c.pending.len() as u64;
                    c.pending.clear();
                    c.refresh_at = None;
                }
                self.events.push_back(TurnEvent::Failed(error));
            }
            Request::ChannelBind { peer, .. } => {
                if let Some(c) = self.channels.get_mut(&peer) {
                    c.failed = true;
                    c.bound = false;
                    c.refresh_at = None;
                    self.stats.dropped_datagrams += c.pending.len() as u64;
                    c.pending.clear();
                }
                self.events
                    .push_back(TurnEvent::ChannelFailed { peer, error });
            }
        }
    }
}

/// When to refresh an allocation of `lifetime`: a minute early (half of it, if shorter).
fn refresh_after(lifetime: Duration) -> Duration {
    lifetime.saturating_sub(Duration::from_secs(60).min(lifetime / 2))
}

/// A ChannelData message (RFC 8656 §12.4; over UDP without padding).
fn channel_data(number: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + data.len());
    out.extend_from_slice(&number.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // RFC 5769 §2.2: a Binding success response with XOR-MAPPED-ADDRESS 192.0.2.1:32853,
    // MESSAGE-INTEGRITY keyed with the short-term password, and FINGERPRINT.
    const RFC5769_IPV4_RESPONSE: &str = "
        0101003c 2112a442 b7e7a701 bc34d686 fa87dfae 8022000b 74657374 20766563
        746f7220 00200008 0001a147 e112a643 00080014 2b91f599 fd9e90c3 8c7489f9
        2af9ba53 f06be7d7 80280004 c07d4c96";
    // §2.3: the same with 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
    const RFC5769_IPV6_RESPONSE: &str = "
        01010048 2112a442 b7e7a701 bc34d686 fa87dfae 8022000b 74657374 20766563
        746f7220 00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9 00080014
        a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41 80280004 c8fb0b4c";
    // §2.4: a request with long-term credentials (realm example.org, the password
    // "TheMatrIX" after SASLprep) and no FINGERPRINT.
    const RFC5769_LONG_TERM_REQUEST: &str = "
        00010060 2112a442 78ad3433 c6ad72c0 29da412e 00060012 e3839ee3 8388e383
        aae38383 e382afe3 82b90000 0015001c 662f2f34 39396b39 35346436 4f4c3334
        6f4c3946 53547679 36347341 0014000b 6578616d 706c652e 6f726700 00080014
        f6702465 6dd64a3e 02b8e071 2e85c9a2 8ca89666";
    const RFC5769_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";

    #[test]
    fn rfc5769_responses_parse_and_verify() {
        for (vector, addr) in [
            (RFC5769_IPV4_RESPONSE, "192.0.2.1:32853"),
            (
                RFC5769_IPV6_RESPONSE,
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
            ),
        ] {
            let data = hex(vector);
            let msg = Message::parse(&data).expect("a valid message with a valid FINGERPRINT");
            assert_eq!((msg.method, msg.class), (0x001, Class::Success));
            assert_eq!(
                msg.xor_addr(attr::XOR_MAPPED_ADDRESS),
                Some(addr.parse().unwrap())
            );
            assert_eq!(msg.get(attr::SOFTWARE), Some(&b"test vector"[..]));
            assert!(msg.check_integrity(RFC5769_PASSWORD.as_bytes()));
            assert!(!msg.check_integrity(b"another password"));

            // One flipped bit: the FINGERPRINT no longer matches.
            let mut bad = data.clone();
            bad[30] ^= 1;
            assert!(Message::parse(&bad).is_none());
        }
    }

    #[test]
    fn rfc5769_long_term_credentials() {
        let data = hex(RFC5769_LONG_TERM_REQUEST);
        let msg = Message::parse(&data).unwrap();
        assert_eq!((msg.method, msg.class), (0x001, Class::Request));
        let username = std::str::from_utf8(msg.get(attr::USERNAME).unwrap()).unwrap();
        assert_eq!(username, "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}");
        assert_eq!(msg.get(attr::REALM), Some(&b"example.org"[..]));
        assert_eq!(
            msg.get(attr::NONCE),
            Some(&b"f//499k954d6OL34oL9FSTvy64sA"[..])
        );
        let key = long_term_key(username, b"example.org", "TheMatrIX");
        assert!(msg.check_integrity(&key));
        assert!(!msg.check_integrity(&long_term_key(username, b"example.org", "thematrix")));
    }

    #[test]
    fn built_messages_round_trip() {
        let tid = [7u8; 12];
        for peer in ["203.0.113.9:7882", "[2001:db8::1]:7882"] {
            let peer: SocketAddr = peer.parse().unwrap();
            let bytes = MessageBuilder::new(method::CHANNEL_BIND, Class::Request, &tid)
                .attr(attr::CHANNEL_NUMBER, &[0x40, 0x00, 0, 0])
                .xor_addr(attr::XOR_PEER_ADDRESS, peer)
                .attr(attr::USERNAME, b"odd") // 3 bytes: padded
                .integrity(b"key")
                .fingerprint()
                .finish();
            assert_eq!(bytes.len() % 4, 0);
            let msg = Message::parse(&bytes).unwrap();
            assert_eq!(
                (msg.method, msg.class),
                (method::CHANNEL_BIND, Class::Request)
            );
            assert_eq!(msg.tid, tid);
            assert_eq!(msg.xor_addr(attr::XOR_PEER_ADDRESS), Some(peer));
            assert_eq!(msg.get(attr::USERNAME), Some(&b"odd"[..]));
            assert!(msg.check_integrity(b"key"));
        }
        for (method, class) in [
            (method::ALLOCATE, Class::Error),
            (method::DATA, Class::Indication),
            (method::SEND, Class::Indication),
            (method::REFRESH, Class::Success),
            (0xABC, Class::Request),
        ] {
            assert_eq!(
                split_message_type(message_type(method, class)),
                (method, class)
            );
        }
        assert_eq!(message_type(method::ALLOCATE, Class::Error), 0x0113);
        assert_eq!(message_type(method::DATA, Class::Indication), 0x0017);
    }

    /// A TURN server in a test: answers the client's requests, checking them as coturn does.
    struct FakeServer {
        realm: &'static str,
        nonce: String,
        password: &'static str,
        relayed: SocketAddr,
        lifetime: u32,
        channels: HashMap<u16, SocketAddr>,
        requests: Vec<(u16, bool)>,
    }

    const SERVER: &str = "192.0.2.10:3478";
    const PEER: &str = "198.51.100.7:7882";

    impl FakeServer {
        fn new(password: &'static str) -> FakeServer {
            FakeServer {
                realm: "orbita.test",
                nonce: "nonce-1".into(),
                password,
                relayed: "192.0.2.10:50000".parse().unwrap(),
                lifetime: 600,
                channels: HashMap::new(),
                requests: vec![],
            }
        }

        fn key(&self, username: &str) -> [u8; 16] {
            long_term_key(username, self.realm.as_bytes(), self.password)
        }

        /// The answer to one datagram from the client (None for ChannelData).
        fn answer(&mut self, data: &[u8]) -> Option<Vec<u8>> {
            if data[0] & 0xC0 == 0x40 {
                return None;
            }
            let msg = Message::parse(data).expect("the client sends valid STUN");
            assert_eq!(msg.class, Class::Request);
            let username = msg
                .get(attr::USERNAME)
                .map(|u| String::from_utf8(u.to_vec()).unwrap());
            self.requests.push((msg.method, username.is_some()));
            let error = |code: u16, reason: &str, with_nonce: bool, key: Option<[u8; 16]>| {
                let mut b = MessageBuilder::new(msg.method, Class::Error, &msg.tid);
                let mut v = vec![0, 0, (code / 100) as u8, (code % 100) as u8];
                v.extend_from_slice(reason.as_bytes());
                b.attr(attr::ERROR_CODE, &v);
                if with_nonce {
                    b.attr(attr::REALM, self.realm.as_bytes())
                        .attr(attr::NONCE, self.nonce.as_bytes());
                }
                if let Some(k) = key {
                    b.integrity(&k);
                }
                Some(b.fingerprint().finish())
            };
            let Some(username) = username else {
                return error(401, "Unauthorized", true, None);
            };
            let key = self.key(&username);
            if !msg.check_integrity(&key) {
                return error(401, "Unauthorized", true, None);
            }
            if msg.get(attr::NONCE) != Some(self.nonce.as_bytes()) {
                return error(438, "Stale Nonce", true, Some(key));
            }
            let mut b = MessageBuilder::new(msg.method, Class::Success, &msg.tid);
            match msg.method {
                method::ALLOCATE => {
                    assert_eq!(msg.get(attr::REQUESTED_TRANSPORT), Some(&[17, 0, 0, 0][..]));
                    b.xor_addr(attr::XOR_RELAYED_ADDRESS, self.relayed)
                        .xor_addr(
                            attr::XOR_MAPPED_ADDRESS,
                            "192.0.2.99:40000".parse().unwrap(),
                        )
                        .attr(attr::LIFETIME, &self.lifetime.to_be_bytes());
                }
                method::REFRESH => {
                    let l = msg.lifetime().map_or(self.lifetime, |l| l.as_secs() as u32);
                    b.attr(attr::LIFETIME, &l.to_be_bytes());
                }
                method::CHANNEL_BIND => {
                    let n = msg.get(attr::CHANNEL_NUMBER).unwrap();
                    let number = u16::from_be_bytes([n[0], n[1]]);
                    assert!((FIRST_CHANNEL..=LAST_CHANNEL).contains(&number));
                    let peer = msg.xor_addr(attr::XOR_PEER_ADDRESS).unwrap();
                    self.channels.insert(number, peer);
                }
                other => panic!("unexpected method {other:#x}"),
            }
            Some(b.integrity(&key).fingerprint().finish())
        }
    }

    fn config(password: &str) -> TurnConfig {
        TurnConfig {
            server: SERVER.parse().unwrap(),
            username: "1800000000:p1".into(),
            password: password.into(),
        }
    }

    /// Deliver everything the client wants sent to the server, and the answers back; returns
    /// the ChannelData datagrams the server received.
    fn exchange(client: &mut TurnClient, server: &mut FakeServer, now: Instant) -> Vec<Vec<u8>> {
        let mut channel_data = vec![];
        while let Some(d) = client.poll_transmit() {
            match server.answer(&d) {
                Some(answer) => assert_eq!(client.handle_input(now, &answer), None),
                None => channel_data.push(d),
            }
        }
        channel_data
    }

    fn allocated(client: &mut TurnClient, server: &mut FakeServer, now: Instant) {
        exchange(client, server, now);
        assert_eq!(client.state(), &TurnState::Allocated);
        assert_eq!(
            client.poll_event(),
            Some(TurnEvent::Allocated {
                relayed: server.relayed,
                mapped: Some("192.0.2.99:40000".parse().unwrap()),
                lifetime: Duration::from_secs(600),
            })
        );
    }

    #[test]
    fn allocates_with_long_term_credentials_and_relays_over_a_channel() {
        let t0 = Instant::now();
        let mut server = FakeServer::new("secret");
        let mut client = TurnClient::new(config("secret"), t0);
        assert_eq!(client.state(), &TurnState::Allocating);
        allocated(&mut client, &mut server, t0);
        // 401 without credentials, then Allocate with them.
        assert_eq!(
            server.requests,
            [(method::ALLOCATE, false), (method::ALLOCATE, true)]
        );
        assert_eq!(client.relayed_addr(), Some(server.relayed));

        // Data for the peer waits for its channel, then goes as ChannelData, in order.
        let peer: SocketAddr = PEER.parse().unwrap();
        client.send_to(t0, peer, b"stun binding request");
        client.send_to(t0, peer, b"dtls hello");
        let sent = exchange(&mut client, &mut server, t0);
        assert_eq!(server.requests.last(), Some(&(method::CHANNEL_BIND, true)));
        assert_eq!(server.channels.get(&0x4000), Some(&peer));
        assert_eq!(
            client.poll_event(),
            Some(TurnEvent::ChannelBound {
                peer,
                channel: 0x4000
            })
        );
        assert_eq!(
            sent,
            [
                channel_data(0x4000, b"stun binding request"),
                channel_data(0x4000, b"dtls hello")
            ]
        );
        client.send_to(t0, peer, b"srtp");
        assert_eq!(client.poll_transmit(), Some(hex("40000004 73727470")));

        // From the peer: ChannelData and Data indications.
        let from_peer = channel_data(0x4000, b"answer");
        assert_eq!(
            client.handle_input(t0, &from_peer),
            Some((peer, &b"answer"[..]))
        );
        let indication = MessageBuilder::new(method::DATA, Class::Indication, &[1; 12])
            .xor_addr(attr::XOR_PEER_ADDRESS, peer)
            .attr(attr::DATA, b"indicated")
            .fingerprint()
            .finish();
        assert_eq!(
            client.handle_input(t0, &indication),
            Some((peer, &b"indicated"[..]))
        );
        // An unknown channel, and garbage, are nobody's data.
        assert_eq!(client.handle_input(t0, &channel_data(0x4001, b"x")), None);
        assert_eq!(client.handle_input(t0, b"\x40\x00\x00\x09short"), None);
        assert_eq!(
            client.handle_input(t0, b"not stun at all, not at all"),
            None
        );
        let stats = client.stats();
        assert_eq!((stats.sent_datagrams, stats.sent_bytes), (3, 34));
        assert_eq!((stats.received_datagrams, stats.received_bytes), (2, 15));
        assert_eq!(stats.dropped_datagrams, 0);
    }

    #[test]
    fn a_wrong_password_fails_with_the_servers_401() {
        let t0 = Instant::now();
        let mut server = FakeServer::new("the relay's secret");
        let mut client = TurnClient::new(config("not it"), t0);
        exchange(&mut client, &mut server, t0);
        let TurnState::Failed(error) = client.state().clone() else {
            panic!("{:?}", client.state());
        };
        assert_eq!(error.code(), Some(401));
        assert_eq!(
            error.to_string(),
            "the TURN server 192.0.2.10:3478 refused Allocate: 401 Unauthorized"
        );
        assert_eq!(client.poll_event(), Some(TurnEvent::Failed(error)));
        // One try without, one with credentials; then nothing more.
        assert_eq!(server.requests.len(), 2);
        assert_eq!(client.poll_timeout(), None);
        client.send_to(t0, PEER.parse().unwrap(), b"x");
        assert_eq!(client.poll_transmit(), None);
        assert_eq!(client.stats().dropped_datagrams, 1);
    }

    #[test]
    fn a_stale_nonce_is_retried_with_the_new_one() {
        let t0 = Instant::now();
        let mut server = FakeServer::new("secret");
        let mut client = TurnClient::new(config("secret"), t0);
        allocated(&mut client, &mut server, t0);
        server.nonce = "nonce-2".into();
        let peer: SocketAddr = PEER.parse().unwrap();
        client.send_to(t0, peer, b"x");
        let sent = exchange(&mut client, &mut server, t0);
        assert_eq!(sent, [channel_data(0x4000, b"x")]);
        let methods: Vec<u16> = server.requests.iter().map(|r| r.0).collect();
        assert_eq!(
            methods,
            [
                method::ALLOCATE,
                method::ALLOCATE,
                method::CHANNEL_BIND, // 438
                method::CHANNEL_BIND,
            ]
        );
    }

    #[test]
    fn requests_are_retransmitted_then_given_up_in_virtual_time() {
        let t0 = Instant::now();
        let mut client = TurnClient::new(config("secret"), t0);
        let first = client.poll_transmit().unwrap();
        assert_eq!(client.poll_transmit(), None);
        let mut now = t0;
        let mut sends = vec![Duration::ZERO];
        while let Some(t) = client.poll_timeout() {
            now = t;
            client.handle_timeout(now);
            while let Some(d) = client.poll_transmit() {
                assert_eq!(d, first, "a retransmission is the same request");
                sends.push(now - t0);
            }
        }
        let ms: Vec<u128> = sends.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [0, 250, 750, 1750, 3750, 5750, 7750]);
        let TurnState::Failed(error) = client.state() else {
            panic!("{:?}", client.state());
        };
        assert_eq!(now - t0, Duration::from_millis(9750));
        assert_eq!(
            error.to_string(),
            "no answer from the TURN server 192.0.2.10:3478 to Allocate in 9750 ms"
        );
    }

    #[test]
    fn answers_that_fail_integrity_are_dropped() {
        let t0 = Instant::now();
        let mut server = FakeServer::new("secret");
        let mut client = TurnClient::new(config("secret"), t0);
        // The challenge, answered.
        let d = client.poll_transmit().unwrap();
        let challenge = server.answer(&d).unwrap();
        client.handle_input(t0, &challenge);
        // The authenticated Allocate, answered by someone who does not know the key.
        let d = client.poll_transmit().unwrap();
        server.password = "forged";
        let forged = server.answer(&d).unwrap();
        let forged = Message::parse(&forged).unwrap();
        assert_eq!(
            forged.class,
            Class::Error,
            "the fake server refuses the key"
        );
        let msg = Message::parse(&d).unwrap();
        let mut b = MessageBuilder::new(method::ALLOCATE, Class::Success, &msg.tid);
        b.xor_addr(attr::XOR_RELAYED_ADDRESS, "192.0.2.66:1".parse().unwrap())
            .integrity(b"not the key");
        client.handle_input(t0, &b.fingerprint().finish());
        assert_eq!(client.state(), &TurnState::Allocating, "ignored");
        // The real answer (to the retransmission, same transaction) is taken.
        server.password = "secret";
        client.handle_timeout(t0 + RTO_INITIAL);
        exchange(&mut client, &mut server, t0 + RTO_INITIAL);
        assert_eq!(client.state(), &TurnState::Allocated);
        assert_eq!(client.relayed_addr(), Some(server.relayed));
    }

    #[test]
    fn the_allocation_and_channels_are_refreshed_in_virtual_time() {
        let t0 = Instant::now();
        let mut server = FakeServer::new("secret");
        let mut client = TurnClient::new(config("secret"), t0);
        allocated(&mut client, &mut server, t0);
        let peer: SocketAddr = PEER.parse().unwrap();
        client.send_to(t0, peer, b"x");
        exchange(&mut client, &mut server, t0);
        server.requests.clear();

        // Run for an hour, answering everything at once.
        let mut now = t0;
        let end = t0 + Duration::from_secs(3600);
        let mut times = vec![];
        while let Some(t) = client.poll_timeout() {
            if t > end {
                break;
            }
            now = t;
            client.handle_timeout(now);
            let before = server.requests.len();
            exchange(&mut client, &mut server, now);
            for r in &server.requests[before..] {
                times.push((r.0, (now - t0).as_secs()));
            }
        }
        let refreshes: Vec<u64> = times
            .iter()
            .filter(|r| r.0 == method::REFRESH)
            .map(|r| r.1)
            .collect();
        let binds: Vec<u64> = times
            .iter()
            .filter(|r| r.0 == method::CHANNEL_BIND)
            .map(|r| r.1)
            .collect();
        // Lifetime 600 s: a minute before it ends, each time.
        assert_eq!(refreshes, [540, 1080, 1620, 2160, 2700, 3240]);
        // Channel (and permission, 300 s): every 240 s.
        assert_eq!(binds, (1..=15).map(|i| i * 240).collect::<Vec<u64>>());
        assert_eq!(client.state(), &TurnState::Allocated);
        assert_eq!(client.stats().refreshes, 6);
        // Still relaying on the same channel.
        client.send_to(now, peer, b"y");
        assert_eq!(client.poll_transmit(), Some(channel_data(0x4000, b"y")));

        // Close: Refresh with LIFETIME 0, then silence.
        client.close(now);
        let d = client.poll_transmit().unwrap();
        let msg = Message::parse(&d).unwrap();
        assert_eq!(msg.method, method::REFRESH);
        assert_eq!(msg.lifetime(), Some(Duration::ZERO));
        assert!(server.answer(&d).is_some());
        assert_eq!(client.poll_timeout(), None);
        assert_eq!(client.state(), &TurnState::Closed);
    }

    #[test]
    fn a_failed_refresh_loses_the_allocation() {
        let t0 = Instant::now();
        let mut server = FakeServer::new("secret");
        let mut client = TurnClient::new(config("secret"), t0);
        allocated(&mut client, &mut server, t0);
        let at = t0 + Duration::from_secs(540);
        assert_eq!(client.poll_timeout(), Some(at));
        client.handle_timeout(at);
        let d = client.poll_transmit().unwrap();
        let msg = Message::parse(&d).unwrap();
        let mut b = MessageBuilder::new(method::REFRESH, Class::Error, &msg.tid);
        b.attr(attr::ERROR_CODE, &[0, 0, 4, 37])
            .attr(attr::ERROR_CODE, b"ignored: only the first counts");
        let key = server.key("1800000000:p1");
        let answer = b.integrity(&key).fingerprint().finish();
        client.handle_input(at, &answer);
        let TurnState::Failed(error) = client.state() else {
            panic!("{:?}", client.state());
        };
        assert_eq!(error.code(), Some(437));
        assert_eq!(error.request, "Refresh");
    }

    #[test]
    fn a_refused_channel_drops_its_data() {
        let t0 = Instant::now();
        let mut server = FakeServer::new("secret");
        let mut client = TurnClient::new(config("secret"), t0);
        allocated(&mut client, &mut server, t0);
        let peer: SocketAddr = "[2001:db8::7]:7882".parse().unwrap();
        client.send_to(t0, peer, b"a");
        client.send_to(t0, peer, b"b");
        let d = client.poll_transmit().unwrap();
        let msg = Message::parse(&d).unwrap();
        let mut b = MessageBuilder::new(method::CHANNEL_BIND, Class::Error, &msg.tid);
        let mut v = vec![0, 0, 4, 43];
        v.extend_from_slice(b"Peer Address Family Mismatch");
        b.attr(attr::ERROR_CODE, &v);
        let answer = b
            .integrity(&server.key("1800000000:p1"))
            .fingerprint()
            .finish();
        client.handle_input(t0, &answer);
        let Some(TurnEvent::ChannelFailed { peer: p, error }) = client.poll_event() else {
            panic!("a channel failure");
        };
        assert_eq!(p, peer);
        assert_eq!(error.code(), Some(443));
        client.send_to(t0, peer, b"c");
        assert_eq!(client.poll_transmit(), None);
        assert_eq!(client.stats().dropped_datagrams, 3);
        assert_eq!(
            client.state(),
            &TurnState::Allocated,
            "the allocation lives on"
        );
    }

    #[test]
    fn refresh_timing() {
        assert_eq!(
            refresh_after(Duration::from_secs(600)),
            Duration::from_secs(540)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(60)),
            Duration::from_secs(30)
        );
        assert_eq!(refresh_after(Duration::ZERO), Duration::ZERO);
    }
}
