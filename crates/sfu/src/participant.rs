//! A participant as its room's worker sees it: its two peer connections, what it publishes,
//! what it receives (one [`DownTrack`] per subscribed track) and its signalling sink.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use orbita_protocol::{Limits, MaxQuality, PcKind, Role, ServerMsg, SubscribedTrack};
use str0m::change::SdpPendingOffer;
use str0m::media::{Mid, Pt};
use str0m::rtp::Ssrc;
use tokio::sync::mpsc::error::TrySendError;
use tracing::debug;

use crate::forward::Rewriter;
use crate::queues::{SendQueueGuard, SIGNAL_RESERVE};
use crate::rtc_peer::RtcPeer;

/// The wire form of a participant id.
pub(crate) fn participant_id_string(id: u64) -> String {
    format!("p{id}")
}

/// Negotiation state of one outgoing m-line of the subscriber connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DownState {
    /// Wanted; not yet in an offer.
    ToOpen,
    /// In an offer waiting for its answer.
    Negotiating(Mid),
    /// Negotiated: media flows.
    Open(Mid),
    /// To be stopped in the next offer.
    ToStop(Mid),
    /// Stopped in an offer waiting for its answer.
    NegotiatingStop(Mid),
}

impl DownState {
    pub fn mid(self) -> Option<Mid> {
        match self {
            DownState::ToOpen => None,
            DownState::Negotiating(m)
            | DownState::Open(m)
            | DownState::ToStop(m)
            | DownState::NegotiatingStop(m) => Some(m),
        }
    }
}

/// One track a participant receives.
pub(crate) struct DownTrack {
    pub track_id: String,
    pub info: SubscribedTrack,
    pub state: DownState,
    pub rewriter: Rewriter,
    /// SSRC of the outgoing stream, once negotiated.
    pub ssrc: Option<Ssrc>,
    /// Publisher payload type -> this subscriber's payload type.
    pub pt_map: Vec<(Pt, Option<Pt>)>,
    /// The maximum asked for this track alone (overrides the participant's).
    pub max_quality: Option<MaxQuality>,
    /// The bound of this stream's send queue in the subscriber connection.
    pub queue: SendQueueGuard,
}

/// Where an incoming SSRC of the publisher connection goes.
#[derive(Debug, Clone)]
pub(crate) struct InStream {
    pub track_id: String,
    pub layer: usize,
}

/// A participant in a room.
pub(crate) struct Participant {
    pub id: u64,
    pub wire_id: String,
    pub name: String,
    pub limits: Limits,
    sink: tokio::sync::mpsc::Sender<ServerMsg>,
    /// A publish-only ingest (WHIP): receives nothing, never holds control.
    pub ingest: bool,
    /// The participant's role in the call (given at join by the control plane).
    pub role: Role,
    /// Set (by [`Participant::doom`]) when the participant must be removed (failed sink or
    /// connection).
    doomed: Option<&'static str>,
    /// The room's "someone is doomed" flag, raised with `doomed`, so the room looks for
    /// doomed participants only when there is one.
    doom_flag: Arc<AtomicBool>,
    pub publisher: Option<RtcPeer>,
    pub subscriber: Option<RtcPeer>,
    /// Publisher mid -> track id.
    pub published: HashMap<Mid, String>,
    /// Publisher SSRC -> track and layer (filled on first sight of each SSRC).
    pub in_streams: HashMap<Ssrc, InStream>,
    /// Subscribed tracks by track id.
    pub down: HashMap<String, DownTrack>,
    /// The subscriber connection's first m-line (it tags the BUNDLE group; never stopped).
    pub bundle_mid: Option<Mid>,
    /// The subscriber offer awaiting its answer.
    pub sub_pending: Option<SdpPendingOffer>,
    /// The maximum receive quality for all tracks.
    pub max_quality: MaxQuality,
    /// Latest bandwidth estimate towards this participant, bits per second.
    pub bwe_bps: u64,
    /// Last desired bitrate told to str0m's BWE (to avoid needless updates).
    pub bwe_desired: u64,
    /// The server's view of this participant's connections ([`crate::quality`]).
    pub quality: crate::quality::ServerQuality,
}

impl Participant {
    pub fn new(
        id: u64,
        name: String,
        limits: Limits,
        sink: tokio::sync::mpsc::Sender<ServerMsg>,
        initial_bps: u64,
        doom_flag: Arc<AtomicBool>,
    ) -> Self {
        Participant {
            id,
            wire_id: participant_id_string(id),
            name,
            limits,
            sink,
            ingest: false,
            role: Role::Participant,
            doomed: None,
            doom_flag,
            publisher: None,
            subscriber: None,
            published: HashMap::new(),
            in_streams: HashMap::new(),
            down: HashMap::new(),
            bundle_mid: None,
            sub_pending: None,
            max_quality: MaxQuality::Auto,
            bwe_bps: initial_bps,
            bwe_desired: 0,
            quality: crate::quality::ServerQuality::default(),
        }
    }

    /// Send a signalling message; a full or closed sink dooms the participant (a client that
    /// does not read its messages cannot follow the room).
    pub fn send(&mut self, msg: ServerMsg) {
        match self.sink.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                debug!("{}: signalling backlog full", self.wire_id);
                self.doom("signalling connection too slow");
            }
            Err(TrySendError::Closed(_)) => self.doom("signalling connection closed"),
        }
    }

    /// Send a message that may be lost (chat): it is dropped, and false returned, when only
    /// [`SIGNAL_RESERVE`] slots of the signalling queue (or fewer) are free, so a flood of such
    /// messages neither drops this receiver nor takes the slots the messages that must reach it
    /// need.
    /// Only a closed sink dooms the participant.
    pub fn send_droppable(&mut self, msg: ServerMsg) -> bool {
        if self.sink.capacity() <= SIGNAL_RESERVE {
            return false;
        }
        match self.sink.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => false,
            Err(TrySendError::Closed(_)) => {
                self.doom("signalling connection closed");
                false
            }
        }
    }

    /// Mark the participant for removal (the first reason is kept).
    pub fn doom(&mut self, reason: &'static str) {
        if self.doomed.is_none() {
            self.doomed = Some(reason);
            self.doom_flag.store(true, Ordering::Relaxed);
        }
    }

    /// Why the participant is to be removed, if it is.
    pub fn doomed(&self) -> Option<&'static str> {
        self.doomed
    }

    /// The peer of this kind, if made.
    pub fn peer_mut(&mut self, kind: PcKind) -> Option<&mut RtcPeer> {
        match kind {
            PcKind::Publisher => self.publisher.as_mut(),
            PcKind::Subscriber => self.subscriber.as_mut(),
        }
    }

    /// The down track on subscriber m-line `mid`.
    pub fn down_by_mid(&mut self, mid: Mid) -> Option<&mut DownTrack> {
        self.down.values_mut().find(|d| d.state.mid() == Some(mid))
    }
}
