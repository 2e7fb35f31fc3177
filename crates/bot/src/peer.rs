//! One str0m `Rtc` with its own UDP socket: the thin I/O edge of a peer connection.
//!
//! str0m's contract ("the single-mutation invariant"): after every mutation of the `Rtc`
//! (input, write, SDP change, candidate) drain `poll_output` until it yields a timeout.
//! [`Peer::drain`] does exactly that, transmitting on the socket and returning the events;
//! callers mutate through [`Peer::rtc`] and then call `drain` before the next mutation.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use str0m::crypto::CryptoProvider;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;

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

/// An `Rtc` plus its UDP socket and next timeout.
pub struct Peer {
    /// The engine. Mutate it, then call [`Peer::drain`].
    pub rtc: Rtc,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    next_timeout: Instant,
    candidate: String,
    send_errors: u64,
    errors: Vec<String>,
}

impl Peer {
    /// Wrap `rtc` and `socket`, adding the socket's address as a host candidate.
    pub fn new(mut rtc: Rtc, socket: UdpSocket, now: Instant) -> anyhow::Result<Peer> {
        let local = socket.local_addr().context("UDP socket address")?;
        let candidate =
            Candidate::host(local, "udp").with_context(|| format!("host candidate for {local}"))?;
        let candidate = rtc
            .add_local_candidate(candidate)
            .map(|c| c.to_sdp_string())
            .context("str0m refused the host candidate")?;
        let mut peer = Peer {
            rtc,
            socket: Arc::new(socket),
            local,
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

    /// Our host candidate line (`candidate:...`, no `a=`), to trickle to the server.
    pub fn candidate(&self) -> &str {
        &self.candidate
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
                return events;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next_timeout = t;
                    return events;
                }
                Ok(Output::Transmit(t)) => {
                    if t.proto != Protocol::Udp {
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

    /// Feed one received datagram, then drain. Datagrams str0m cannot classify are ignored.
    pub fn handle_receive(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> Vec<Event> {
        let Ok(contents) = data.try_into() else {
            return vec![];
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        if let Err(e) = self.rtc.handle_input(input) {
            self.errors
                .push(format!("str0m rejected a packet from {source}: {e}"));
        }
        self.drain()
    }

    /// Advance str0m's time to `now`, then drain.
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Event> {
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
    }
}
