//! One server-side peer connection: a `str0m::Rtc` in RTP mode, ICE-lite, with the candidates
//! of one local UDP port (the one port, or one of the port range) and ICE-TCP, plus the
//! bookkeeping the worker needs (its timer, ICE state).

use std::time::Instant;

use orbita_protocol::PcKind;
use str0m::bwe::Bitrate;
use str0m::net::Protocol;
use str0m::{Event, Output, Rtc, RtcConfig};
use tracing::debug;

use crate::demux::{ConnId, Route, Transport};
use crate::net::{Outbox, Shared};
use crate::next_id;

/// A peer connection and its scheduling state.
pub(crate) struct RtcPeer {
    pub conn: ConnId,
    pub rtc: Rtc,
    /// When str0m next wants `handle_input(Timeout)`.
    pub timeout: Instant,
    /// Whether a remote description was applied (the client means to connect it).
    pub negotiated: bool,
    /// ICE connected (checked) or not.
    pub ice_connected: bool,
    /// Since when the peer has been without ICE connectivity while negotiated.
    pub disconnected_since: Option<Instant>,
    ufrag: String,
}

/// How every peer connection of the SFU is set up: ICE-lite, RTP mode (forwarding packets,
/// not frames), Opus, VP8, H.264 and VP9. Subscriber connections add bandwidth estimation; the
/// fuzz targets (fuzz/) build their `Rtc` from this too.
pub fn peer_config() -> RtcConfig {
    Rtc::builder()
        .set_ice_lite(true)
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_h264(true)
        .enable_vp9(true)
}

impl RtcPeer {
    /// A new peer connection whose ufrag routes to `worker`.
    pub fn new(kind: PcKind, shared: &Shared, worker: usize, now: Instant) -> RtcPeer {
        let mut builder = peer_config().set_stats_interval(Some(crate::quality::STATS_INTERVAL));
        if kind == PcKind::Subscriber {
            builder = builder.enable_bwe(Some(Bitrate::bps(shared.config.initial_bitrate_bps)));
        }
        let mut rtc = builder.build(now);
        for c in &shared.candidates[shared.pick_port()] {
            rtc.add_local_candidate(c.clone());
        }
        let conn = next_id();
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        shared.demux.register_ufrag(&ufrag, Route { worker, conn });
        RtcPeer {
            conn,
            rtc,
            timeout: now,
            negotiated: false,
            ice_connected: false,
            disconnected_since: None,
            ufrag,
        }
    }

    /// After an ICE restart the local ufrag changes: route the new one too.
    pub fn refresh_ufrag(&mut self, shared: &Shared, worker: usize) {
        let ufrag = self.rtc.direct_api().local_ice_credentials().ufrag;
        if ufrag != self.ufrag {
            shared.demux.register_ufrag(
                &ufrag,
                Route {
                    worker,
                    conn: self.conn,
                },
            );
            self.ufrag = ufrag;
        }
    }

    /// Whether this connection takes `input` as its own: for a STUN binding request, the
    /// USERNAME names both ufrags and MESSAGE-INTEGRITY checks with our ICE password.
    pub fn verifies(&self, input: &str0m::Input) -> bool {
        self.rtc.accepts(input)
    }

    /// Drain `poll_output` to its timeout: datagrams go to `out`, events to `events`.
    /// Returns false when the connection has failed and must be dropped.
    pub fn drain(&mut self, out: &mut Outbox, events: &mut Vec<Event>) -> bool {
        loop {
            if !self.rtc.is_alive() {
                return false;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return true;
                }
                Ok(Output::Transmit(t)) => {
                    let transport = match t.proto {
                        Protocol::Udp => Transport::Udp,
                        _ => Transport::Tcp,
                    };
                    out.push(transport, t.source, t.destination, t.contents.into());
                }
                Ok(Output::Event(e)) => events.push(e),
                Err(e) => {
                    debug!("conn {}: {e}", self.conn);
                    self.rtc.disconnect();
                    return false;
                }
            }
        }
    }
}
