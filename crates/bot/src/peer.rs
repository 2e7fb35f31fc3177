//! One str0m `Rtc` with its own UDP socket: the thin I/O edge of a peer connection.
//!
//! str0m's contract ("the single-mutation invariant"): after every mutation of the `Rtc`
//! (input, write, SDP change, candidate) drain `poll_output` until it yields a timeout.
//! [`Peer::drain`] does exactly that, transmitting on the socket and returning the events;
//! callers mutate through [`Peer::rtc`] and then call `drain` before the next mutation.
//!
//! With a relay (`--relay-only`) the socket talks only to the TURN server: the `Rtc` has one
//! local candidate, the relayed address; everything it transmits goes through the
//! [`TurnClient`] (ChannelData to the relay), and what the relay forwards from peers is fed to
//! it as received on the relayed address. Datagrams from anyone but the relay are dropped.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use str0m::crypto::CryptoProvider;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;

use crate::stats::RelayStatus;
use crate::turn::{TurnClient, TurnEvent};

/// How often str0m emits statistics events.
pub const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// The crypto provider every bot `Rtc` uses, set per instance rather than process-wide so
/// the bot never fights with a server in the same process over the global default.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(str0m::crypto::from_feature_flags()))
        .clone()
}

/// The publisher's config: only the codecs the bot has media for (Opus and VP8), like a
/// browser whose only encoder is VP8. No RED: the pre-encoded Opus goes out as-is.
pub fn publisher_config() -> RtcConfig {
    RtcConfig::new()
        .set_crypto_provider(crypto_provider())
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .set_stats_interval(Some(STATS_INTERVAL))
}

/// The subscriber's config: str0m's default codec set (Opus, VP8, VP9, H264, ...), so it
/// accepts whatever the server forwards, as a browser would.
pub fn subscriber_config() -> RtcConfig {
    RtcConfig::new()
        .set_crypto_provider(crypto_provider())
        .set_stats_interval(Some(STATS_INTERVAL))
}

/// A peer connection's UDP socket, and the relay allocated on it (`--relay-only`).
pub struct PeerSocket {
    /// The socket.
    pub socket: UdpSocket,
    /// The allocated relay and its URL; `None`: the socket's address is a host candidate.
    pub relay: Option<(TurnClient, String)>,
}

impl PeerSocket {
    /// A socket used directly (host candidate).
    pub fn direct(socket: UdpSocket) -> PeerSocket {
        PeerSocket {
            socket,
            relay: None,
        }
    }
}

/// The relay a peer sends through.
struct Relay {
    client: TurnClient,
    url: String,
    /// The relayed address: the `Rtc`'s only local candidate.
    relayed: SocketAddr,
    /// Datagrams that came from anyone but the relay (dropped).
    foreign: u64,
}

/// An `Rtc` plus its UDP socket and next timeout.
pub struct Peer {
    /// The engine. Mutate it, then call [`Peer::drain`].
    pub rtc: Rtc,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    relay: Option<Relay>,
    next_timeout: Instant,
    candidate: String,
    send_errors: u64,
    errors: Vec<String>,
}

impl Peer {
    /// Wrap `rtc` and the socket, adding the socket's address as a host candidate, or with a
    /// relay, the relayed address as the only (relay) candidate.
    pub fn new(mut rtc: Rtc, socket: PeerSocket, now: Instant) -> anyhow::Result<Peer> {
        let PeerSocket { socket, relay } = socket;
        let local = socket.local_addr().context("UDP socket address")?;
        let (candidate, relay) = match relay {
            None => (
                Candidate::host(local, "udp")
                    .with_context(|| format!("host candidate for {local}"))?,
                None,
            ),
            Some((client, url)) => {
                let relayed = client
                    .relayed_addr()
                    .context("the TURN client has no relayed address yet")?;
                let candidate = Candidate::relayed(relayed, local, "udp")
                    .with_context(|| format!("relay candidate for {relayed}"))?;
                let relay = Relay {
                    client,
                    url,
                    relayed,
                    foreign: 0,
                };
                (candidate, Some(relay))
            }
        };
        let candidate = rtc
            .add_local_candidate(candidate)
            .map(|c| c.to_sdp_string())
            .context("str0m refused the local candidate")?;
        let mut peer = Peer {
            rtc,
            socket: Arc::new(socket),
            local,
            relay,
            next_timeout: now,
            candidate,
            send_errors: 0,
            errors: vec![],
        };
        // Adding a candidate is a mutation: drain (there are no events before negotiation).
        peer.drain();
        Ok(peer)
    }

    /// The socket, for the I/O loop to receive on.
    pub fn socket(&self) -> Arc<UdpSocket> {
        self.socket.clone()
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Our candidate line (`candidate:...`, no `a=`; `typ host`, or `typ relay` with a
    /// relay), to trickle to the server.
    pub fn candidate(&self) -> &str {
        &self.candidate
    }

    /// The relay this peer goes through and what went through it.
    pub fn relay_status(&self) -> Option<RelayStatus> {
        let r = self.relay.as_ref()?;
        let s = r.client.stats();
        Some(RelayStatus {
            url: r.url.clone(),
            server: r.client.server().to_string(),
            relayed_addr: r.relayed.to_string(),
            mapped_addr: r.client.mapped_addr().map(|a| a.to_string()),
            datagrams_sent: s.sent_datagrams,
            bytes_sent: s.sent_bytes,
            datagrams_received: s.received_datagrams,
            bytes_received: s.received_bytes,
            dropped: s.dropped_datagrams,
            foreign_datagrams: r.foreign,
            refreshes: s.refreshes,
        })
    }

    /// When str0m next wants [`Peer::handle_timeout`].
    pub fn next_timeout(&self) -> Instant {
        self.next_timeout
    }

    /// UDP sends that failed (full socket buffer and the like; the packet is dropped).
    pub fn send_errors(&self) -> u64 {
        self.send_errors
    }

    /// Problems str0m reported since the last call (bad input, failed poll).
    pub fn take_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.errors)
    }

    /// Poll str0m until it yields a timeout: transmit what it wants sent, return its events.
    ///
    /// A `poll_output` error leaves the `Rtc` in an unknown state, so, as str0m's own
    /// examples do, the peer is disconnected and the error recorded ([`Peer::take_errors`]).
    pub fn drain(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        loop {
            if !self.rtc.is_alive() {
                self.next_timeout = Instant::now() + Duration::from_secs(3600);
                self.flush_relay();
                return events;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next_timeout = t;
                    self.flush_relay();
                    return events;
                }
                Ok(Output::Transmit(t)) => {
                    if t.proto != Protocol::Udp {
                        continue;
                    }
                    if let Some(relay) = &mut self.relay {
                        // Everything goes through the relay, as ChannelData to the TURN server.
                        relay
                            .client
                            .send_to(Instant::now(), t.destination, &t.contents);
                        continue;
                    }
                    // UDP: a full buffer drops the packet, which RTP tolerates.
                    if let Err(e) = self.socket.try_send_to(&t.contents, t.destination) {
                        self.send_errors += 1;
                        tracing::trace!("UDP send to {} failed: {e}", t.destination);
                    }
                }
                Ok(Output::Event(e)) => events.push(e),
                Err(e) => {
                    self.errors
                        .push(format!("str0m poll_output failed, disconnecting: {e}"));
                    self.rtc.disconnect();
                }
            }
        }
    }

    /// Send what the TURN client queued, note its events, and let its deadline count.
    fn flush_relay(&mut self) {
        let Some(relay) = &mut self.relay else {
            return;
        };
        let server = relay.client.server();
        while let Some(datagram) = relay.client.poll_transmit() {
            if let Err(e) = self.socket.try_send_to(&datagram, server) {
                self.send_errors += 1;
                tracing::trace!("UDP send to the TURN relay {server} failed: {e}");
            }
        }
        while let Some(event) = relay.client.poll_event() {
            match event {
                TurnEvent::Failed(e) => self
                    .errors
                    .push(format!("TURN relay {}: allocation lost: {e}", relay.url)),
                TurnEvent::ChannelFailed { peer, error } => self.errors.push(format!(
                    "TURN relay {}: no channel to {peer}: {error}",
                    relay.url
                )),
                TurnEvent::Allocated { .. } | TurnEvent::ChannelBound { .. } => {}
            }
        }
        if let Some(t) = relay.client.poll_timeout() {
            self.next_timeout = self.next_timeout.min(t);
        }
    }

    /// Feed one received datagram, then drain. Datagrams str0m cannot classify are ignored;
    /// with a relay, only the relay's datagrams count, and what it forwards from a peer is
    /// fed as received on the relayed address.
    pub fn handle_receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> Vec<Event> {
        let (source, destination, data) = match &mut self.relay {
            None => (source, self.local, data),
            Some(relay) if source != relay.client.server() => {
                relay.foreign += 1;
                return vec![];
            }
            Some(relay) => match relay.client.handle_input(now, data) {
                Some((peer, payload)) => (peer, relay.relayed, payload),
                // An answer to one of the client's requests, or nothing: no input for str0m.
                None => return self.drain(),
            },
        };
        let Ok(contents) = data.try_into() else {
            return vec![];
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        if let Err(e) = self.rtc.handle_input(input) {
            self.errors
                .push(format!("str0m rejected a packet from {source}: {e}"));
        }
        self.drain()
    }

    /// Advance str0m's (and the TURN client's) time to `now`, then drain.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Event> {
        if let Some(relay) = &mut self.relay {
            relay.client.handle_timeout(now);
        }
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            self.errors
                .push(format!("str0m timeout handling failed: {e}"));
        }
        self.drain()
    }

    /// Start str0m's local shutdown (RTCP BYE, DTLS close_notify) and send what it queues.
    pub fn close(&mut self) {
        if self.rtc.is_alive() {
            let _ = self.rtc.close();
            for _ in 0..16 {
                self.drain();
                if !self.rtc.is_alive() {
                    break;
                }
                let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
            }
            self.rtc.disconnect();
        }
        // Delete the allocation (Refresh, lifetime 0) so the relay frees it at once.
        if let Some(relay) = &mut self.relay {
            relay.client.close(Instant::now());
        }
        self.flush_relay();
    }
}
