//! A room: its participants, their published tracks, signalling, and RTP forwarding.
//!
//! Everything here runs on the room's worker thread. Each mutation of an `Rtc` is followed by
//! a drain of its output (str0m's single-mutation invariant); events from a drain are queued
//! and handled after it, so one event's handling can mutate other connections safely.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use orbita_protocol::{
    ClientMsg, ErrorCode, Limits, MaxQuality, MediaKind, ParticipantInfo, PcKind, PublishTrack,
    QualityReport, QualitySource, RecordingState, Role, ServerMsg, SubscribedTrack, TrackInfo,
    TrackSource, PROTOCOL_VERSION,
};
use orbita_record::RecorderHandle;
use str0m::bwe::{Bitrate, BweKind};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::format::{Codec, PayloadParams};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind as StrKind, Mid, Pt, Rid, Rids};
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite, Vp8Descriptor};
use str0m::{Candidate, Event, IceConnectionState};
use tracing::{debug, info};

use crate::codec;
use crate::demux::{Route, Transport};
use crate::forward::{InPacket, Rewriter};
use crate::layers::{choose_layer, LayerView, RateMeter};
use crate::participant::{DownState, DownTrack, InStream, Participant};
use crate::queues::{DropReason, QueueSample, SendQueueGuard};
use crate::recording::{Publisher, RoomRecording};
use crate::rtc_peer::RtcPeer;
use crate::stats::RoomStatus;
use crate::worker::Ctx;
use crate::RoomId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Keyframe requests to one publisher layer are sent at most this often.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(500);
/// Bandwidth set aside per received audio track when splitting the estimate over video.
const AUDIO_BUDGET_BPS: u64 = 64_000;

/// One simulcast layer (or the single stream) of a published track.
struct PubLayer {
    rid: Option<Rid>,
    width: u32,
    height: u32,
    meter: RateMeter,
    last_keyframe_request: Option<Instant>,
}

/// A published track.
struct PubTrack {
    info: TrackInfo,
    owner: u64,
    mid: Mid,
    layers: Vec<PubLayer>,
    subscribers: Vec<u64>,
}

/// Queued events of one connection.
type Pending = VecDeque<(u64, PcKind, Event)>;

/// A room on a worker.
pub(crate) struct Room {
    pub id: RoomId,
    pub label: String,
    status: Arc<RoomStatus>,
    /// Where app input goes, when the room streams an app.
    app_input: Option<tokio::sync::mpsc::Sender<String>>,
    /// Who may send app input.
    controller: Option<u64>,
    participants: HashMap<u64, Participant>,
    tracks: HashMap<String, PubTrack>,
    /// Payload type -> (params, codec) of each publisher's connection.
    pub_codecs: HashMap<(u64, Pt), Option<(PayloadParams, Codec)>>,
    /// Raised when a participant is doomed: [`Room::reap`] scans only then.
    any_doomed: Arc<AtomicBool>,
    /// The call's recording, while on.
    recording: Option<RoomRecording>,
}

impl Room {
    pub fn new(id: RoomId, label: String, status: Arc<RoomStatus>) -> Self {
        Room {
            id,
            label,
            status,
            app_input: None,
            controller: None,
            participants: HashMap::new(),
            tracks: HashMap::new(),
            pub_codecs: HashMap::new(),
            any_doomed: Arc::new(AtomicBool::new(false)),
            recording: None,
        }
    }

    // ----- membership -------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    pub fn join(
        &mut self,
        id: u64,
        name: String,
        role: Role,
        limits: Limits,
        sink: tokio::sync::mpsc::Sender<ServerMsg>,
        ingest: bool,
        ctx: &mut Ctx,
    ) {
        let mut p = Participant::new(
            id,
            name,
            limits.clone(),
            sink,
            ctx.shared.config.initial_bitrate_bps,
            Arc::clone(&self.any_doomed),
        );
        p.ingest = ingest;
        p.role = role;
        if self.participants.len() >= limits.max_participants {
            p.send(ServerMsg::error(
                ErrorCode::RoomFull,
                format!("room {} is full", self.label),
            ));
            return;
        }
        let others: Vec<ParticipantInfo> = self
            .participants
            .values()
            .map(|o| self.participant_info(o))
            .collect();
        p.send(ServerMsg::Joined {
            v: PROTOCOL_VERSION,
            participant_id: p.wire_id.clone(),
            code: self.label.clone(),
            participants: others,
            ice_servers: ctx
                .shared
                .config
                .ice_servers
                .for_participant(&p.wire_id, unix_now()),
            limits,
            role,
            recording: self.recording_state(),
            // The control plane, which enforces them, fills in the joiner's switches.
            features: orbita_protocol::CallFeatures::default(),
        });
        let info = ParticipantInfo {
            participant_id: p.wire_id.clone(),
            name: p.name.clone(),
            tracks: vec![],
            ingest: p.ingest,
            role: p.role,
        };
        info!("room {}: {} ({}) joined", self.label, p.wire_id, p.name);
        self.broadcast(Some(id), ServerMsg::ParticipantJoined { participant: info });
        self.participants.insert(id, p);
        ctx.counters_participants(1);
        self.status.set_participants(self.participants.len());
        self.status.touch(ctx.now);
        if self.app_input.is_some() {
            if self.controller.is_none() && !ingest {
                self.set_controller(Some(id));
            } else {
                let holder = self.controller_wire_id();
                self.send_to(id, ServerMsg::Control { holder });
            }
        }
        if ingest {
            return; // publish-only: nothing to receive
        }
        let track_ids: Vec<String> = self.tracks.keys().cloned().collect();
        for t in track_ids {
            self.subscribe(id, &t);
        }
        self.negotiate_subscriber(id, ctx);
    }

    // ----- app and control --------------------------------------------------------------

    pub fn attach_app(&mut self, input: tokio::sync::mpsc::Sender<String>) {
        self.app_input = Some(input);
        let first_person = self
            .participants
            .values()
            .filter(|p| !p.ingest)
            .map(|p| p.id)
            .min();
        self.set_controller(self.controller.or(first_person));
    }

    pub fn detach_app(&mut self, reason: &str) {
        self.app_input = None;
        self.broadcast(
            None,
            ServerMsg::AppStopped {
                reason: reason.to_string(),
            },
        );
        self.set_controller(None);
    }

    fn controller_wire_id(&self) -> Option<String> {
        self.controller
            .and_then(|c| self.participants.get(&c))
            .map(|p| p.wire_id.clone())
    }

    fn set_controller(&mut self, holder: Option<u64>) {
        self.controller = holder;
        let holder = self.controller_wire_id();
        self.broadcast(None, ServerMsg::Control { holder });
    }

    fn on_input(&mut self, id: u64, event: serde_json::Value) {
        let Some(input) = &self.app_input else {
            return self.error(id, ErrorCode::NotAllowed, "this session has no app");
        };
        if self.controller != Some(id) {
            return self.error(
                id,
                ErrorCode::NotAllowed,
                "you do not hold control of the app",
            );
        }
        // Input is a stream of positions: when the app lags, dropping some is right.
        if input.try_send(event.to_string()).is_err() {
            debug!("room {}: app input dropped (app busy or gone)", self.label);
        }
    }

    fn on_give_control(&mut self, id: u64, to: &str) {
        if self.app_input.is_none() {
            return self.error(id, ErrorCode::NotAllowed, "this session has no app");
        }
        if self.controller != Some(id) {
            return self.error(
                id,
                ErrorCode::NotAllowed,
                "only the participant holding control can hand it over",
            );
        }
        let Some(target) = self
            .participants
            .values()
            .find(|p| p.wire_id == to && !p.ingest)
            .map(|p| p.id)
        else {
            return self.error(
                id,
                ErrorCode::InvalidValue,
                format!("no participant {to} to take control"),
            );
        };
        self.set_controller(Some(target));
    }

    /// Remove a participant: its tracks go, everyone is told, its connections close.
    pub fn leave(&mut self, id: u64, ctx: &mut Ctx) {
        let Some(mut p) = self.participants.remove(&id) else {
            return;
        };
        info!(
            "room {}: {} left ({})",
            self.label,
            p.wire_id,
            p.doomed().unwrap_or("left")
        );
        let mids: Vec<Mid> = p.published.keys().copied().collect();
        for mid in mids {
            if let Some(track_id) = p.published.remove(&mid) {
                self.unpublish(&track_id, ctx);
            }
        }
        for t in self.tracks.values_mut() {
            t.subscribers.retain(|s| *s != id);
        }
        self.pub_codecs.retain(|(owner, _), _| *owner != id);
        for peer in [p.publisher.as_mut(), p.subscriber.as_mut()]
            .into_iter()
            .flatten()
        {
            let _ = peer.rtc.close();
            let mut ignored = Vec::new();
            peer.drain(ctx.out, &mut ignored);
            ctx.forget_conn(peer.conn);
        }
        self.broadcast(
            None,
            ServerMsg::ParticipantLeft {
                participant_id: p.wire_id.clone(),
            },
        );
        ctx.counters_participants(-1);
        self.status.set_participants(self.participants.len());
        if self.controller == Some(id) {
            let next = self
                .participants
                .values()
                .filter(|p| !p.ingest)
                .map(|p| p.id)
                .min();
            self.set_controller(next);
        }
    }

    /// Tell everyone why and remove them all (room closed, server shutting down).
    pub fn close_all(&mut self, msg: ServerMsg, ctx: &mut Ctx) {
        self.stop_recording(ctx.now);
        let ids: Vec<u64> = self.participants.keys().copied().collect();
        for id in &ids {
            if let Some(p) = self.participants.get_mut(id) {
                p.send(msg.clone());
            }
        }
        for id in ids {
            self.leave(id, ctx);
        }
    }

    /// Remove participants whose signalling or media connection failed. Called after every
    /// event; it looks at the participants only when one was doomed since the last call.
    pub fn reap(&mut self, ctx: &mut Ctx) {
        // Leaving may doom others (a full signalling queue): go on until none is left.
        while self.any_doomed.swap(false, Ordering::Relaxed) {
            let doomed: Vec<u64> = self
                .participants
                .values()
                .filter(|p| p.doomed().is_some())
                .map(|p| p.id)
                .collect();
            for id in doomed {
                self.leave(id, ctx);
            }
        }
    }

    fn participant_info(&self, p: &Participant) -> ParticipantInfo {
        ParticipantInfo {
            participant_id: p.wire_id.clone(),
            name: p.name.clone(),
            tracks: p
                .published
                .values()
                .filter_map(|t| self.tracks.get(t).map(|t| t.info.clone()))
                .collect(),
            ingest: p.ingest,
            role: p.role,
        }
    }

    fn broadcast(&mut self, except: Option<u64>, msg: ServerMsg) {
        for p in self.participants.values_mut() {
            if Some(p.id) != except {
                p.send(msg.clone());
            }
        }
    }

    fn send_to(&mut self, id: u64, msg: ServerMsg) {
        if let Some(p) = self.participants.get_mut(&id) {
            p.send(msg);
        }
    }

    fn error(&mut self, id: u64, code: ErrorCode, message: impl Into<String>) {
        self.send_to(id, ServerMsg::error(code, message));
    }

    // ----- signalling -------------------------------------------------------------------

    pub fn signal(&mut self, id: u64, msg: ClientMsg, ctx: &mut Ctx) {
        if !self.participants.contains_key(&id) {
            return;
        }
        self.status.touch(ctx.now);
        match msg {
            ClientMsg::Offer { pc, sdp, tracks } => {
                if pc != PcKind::Publisher {
                    return self.error(
                        id,
                        ErrorCode::OutOfOrder,
                        "the client offers only on the publisher connection",
                    );
                }
                self.on_publisher_offer(id, &sdp, tracks, ctx);
            }
            ClientMsg::Answer { pc, sdp } => {
                if pc != PcKind::Subscriber {
                    return self.error(
                        id,
                        ErrorCode::OutOfOrder,
                        "the client answers only on the subscriber connection",
                    );
                }
                self.on_subscriber_answer(id, &sdp, ctx);
            }
            ClientMsg::Candidate { pc, candidate } => self.on_candidate(id, pc, &candidate, ctx),
            ClientMsg::Mute { source, muted } => self.on_mute(id, source, muted),
            ClientMsg::SetQuality { max, track_id } => {
                let Some(q) = MaxQuality::parse(&max) else {
                    return self.error(
                        id,
                        ErrorCode::InvalidValue,
                        format!("quality {max:?} is not \"auto\" or WIDTHxHEIGHT"),
                    );
                };
                let p = self.participants.get_mut(&id).expect("checked");
                match track_id {
                    Some(t) => match p.down.get_mut(&t) {
                        Some(d) => d.max_quality = Some(q),
                        None => {
                            return self.error(
                                id,
                                ErrorCode::InvalidValue,
                                format!("no subscribed track {t}"),
                            )
                        }
                    },
                    None => {
                        p.max_quality = q;
                        for d in p.down.values_mut() {
                            d.max_quality = None;
                        }
                    }
                }
                self.select_layers(id, ctx);
            }
            ClientMsg::Chat { text, to } => self.on_chat(id, text, to, ctx),
            ClientMsg::Ping { id: ping } => self.send_to(id, ServerMsg::Pong { id: ping }),
            ClientMsg::Join { .. } => self.error(id, ErrorCode::OutOfOrder, "already joined"),
            ClientMsg::Input { event } => self.on_input(id, event),
            ClientMsg::GiveControl { to } => self.on_give_control(id, &to),
            // The control plane starts and stops recordings (slots, folders, who may).
            ClientMsg::Record { .. } => self.error(
                id,
                ErrorCode::RecordingUnavailable,
                "recording is not available here",
            ),
            ClientMsg::Leave => {
                self.send_to(id, ServerMsg::Left);
                self.leave(id, ctx);
            }
            // The control plane stores it with the call; nothing for the media.
            ClientMsg::Devices { .. } => {}
            // Files and locations are the control plane's; nothing for the media.
            ClientMsg::FileUpload { .. }
            | ClientMsg::Location { .. }
            | ClientMsg::LocationRequest { .. }
            | ClientMsg::LocationDeclined { .. }
            | ClientMsg::Pointer { .. } => {}
            // Checked and rate-limited by the control plane, which also stores it.
            ClientMsg::Stats(report) => {
                self.tell_quality(id, QualitySource::Browser, report, false)
            }
        }
    }

    /// Participant `id`'s connection quality `report` goes to the call's agents (but `id`
    /// themself), and with `to_self` to `id` too.
    fn tell_quality(
        &mut self,
        id: u64,
        source: QualitySource,
        report: QualityReport,
        to_self: bool,
    ) {
        let Some(wire_id) = self.participants.get(&id).map(|p| p.wire_id.clone()) else {
            return;
        };
        let msg = ServerMsg::Quality {
            participant: wire_id,
            source,
            report,
        };
        for p in self.participants.values_mut() {
            if (p.id == id && to_self) || (p.id != id && p.role == Role::Agent) {
                p.send(msg.clone());
            }
        }
    }

    fn on_chat(&mut self, id: u64, text: String, to: Option<String>, ctx: &mut Ctx) {
        let p = &self.participants[&id];
        let chars = text.chars().count();
        if text.trim().is_empty() || chars > p.limits.max_chat_chars {
            let max = p.limits.max_chat_chars;
            return self.error(
                id,
                ErrorCode::InvalidValue,
                format!("chat text must be 1..={max} characters"),
            );
        }
        let msg = ServerMsg::Chat {
            from: p.wire_id.clone(),
            name: p.name.clone(),
            text,
            private: to.is_some(),
            ts: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
        };
        // Chat may be lost: a receiver whose signalling queue is nearly full misses it (and it
        // is counted) rather than being dropped from the room.
        let mut dropped = 0;
        match to {
            None => {
                for p in self.participants.values_mut() {
                    dropped += u64::from(!p.send_droppable(msg.clone()));
                }
            }
            Some(to) => {
                let Some(target) = self
                    .participants
                    .values()
                    .find(|o| o.wire_id == to)
                    .map(|o| o.id)
                else {
                    return self.error(id, ErrorCode::InvalidValue, format!("no participant {to}"));
                };
                let mut receivers = vec![target];
                if target != id {
                    receivers.push(id);
                }
                for r in receivers {
                    if let Some(p) = self.participants.get_mut(&r) {
                        dropped += u64::from(!p.send_droppable(msg.clone()));
                    }
                }
            }
        }
        if dropped > 0 {
            debug!("room {}: {dropped} chat message(s) dropped", self.label);
            ctx.shared
                .counters
                .drops
                .chat
                .fetch_add(dropped, Ordering::Relaxed);
        }
    }

    fn on_mute(&mut self, id: u64, source: TrackSource, muted: bool) {
        let p = &self.participants[&id];
        let track = p
            .published
            .values()
            .find(|t| self.tracks.get(*t).is_some_and(|t| t.info.source == source))
            .cloned();
        let Some(track_id) = track else {
            return self.error(
                id,
                ErrorCode::InvalidValue,
                format!("no published {source:?} track"),
            );
        };
        let t = self.tracks.get_mut(&track_id).expect("found");
        if t.info.muted == muted {
            return;
        }
        t.info.muted = muted;
        let msg = ServerMsg::TrackMuted {
            track_id,
            participant_id: p.wire_id.clone(),
            muted,
        };
        self.broadcast(None, msg);
    }

    fn on_candidate(&mut self, id: u64, pc: PcKind, candidate: &str, ctx: &mut Ctx) {
        let line = candidate.trim().trim_start_matches("a=");
        if line.is_empty() {
            return; // end of candidates
        }
        let parsed = match Candidate::from_sdp_string(line) {
            Ok(c) => c,
            Err(e) => {
                return self.error(id, ErrorCode::InvalidValue, format!("bad candidate: {e}"))
            }
        };
        let p = self.participants.get_mut(&id).expect("checked");
        let Some(peer) = p.peer_mut(pc) else {
            return self.error(
                id,
                ErrorCode::OutOfOrder,
                format!("no {pc:?} connection yet"),
            );
        };
        peer.rtc.add_remote_candidate(parsed);
        self.drain_peer(id, pc, ctx);
    }

    fn on_publisher_offer(&mut self, id: u64, sdp: &str, tracks: Vec<PublishTrack>, ctx: &mut Ctx) {
        let offer = match SdpOffer::from_sdp_string(sdp) {
            Ok(o) => o,
            Err(e) => {
                return self.error(
                    id,
                    ErrorCode::SdpError,
                    format!("offer does not parse: {e}"),
                )
            }
        };
        let worker = ctx.worker;
        let p = self.participants.get_mut(&id).expect("checked");
        if p.publisher.is_none() {
            let peer = RtcPeer::new(PcKind::Publisher, ctx.shared, worker, ctx.now);
            ctx.conns
                .insert(peer.conn, (self.id, id, PcKind::Publisher));
            p.publisher = Some(peer);
        }
        let peer = p.publisher.as_mut().expect("made above");
        let answer = match peer.rtc.sdp_api().accept_offer(offer) {
            Ok(a) => a,
            Err(e) => {
                self.drain_peer(id, PcKind::Publisher, ctx);
                return self.error(id, ErrorCode::SdpError, format!("offer refused: {e}"));
            }
        };
        peer.negotiated = true;
        if !peer.ice_connected && peer.disconnected_since.is_none() {
            peer.disconnected_since = Some(ctx.now);
        }
        peer.refresh_ufrag(ctx.shared, worker);
        self.drain_peer(id, PcKind::Publisher, ctx);

        // Reconcile what is published with what the offer says.
        let mut infos = Vec::new();
        let mut added = Vec::new();
        let mut errors = Vec::new();
        let mut seen_sources = Vec::new();
        let mut keep_mids = Vec::new();
        {
            let p = self.participants.get_mut(&id).expect("checked");
            let peer = p.publisher.as_mut().expect("made above");
            for t in tracks {
                let mid: Mid = t.mid.as_str().into();
                let Some(media) = peer.rtc.media(mid) else {
                    errors.push(format!("track mid {:?} is not in the offer", t.mid));
                    continue;
                };
                let kind = media.kind();
                if (kind == StrKind::Audio) != t.source.is_audio() {
                    errors.push(format!(
                        "mid {:?} is {kind:?} but source {:?}",
                        t.mid, t.source
                    ));
                    continue;
                }
                if !matches!(media.direction(), Direction::RecvOnly | Direction::SendRecv) {
                    errors.push(format!("mid {:?} does not send", t.mid));
                    continue;
                }
                if seen_sources.contains(&t.source) {
                    errors.push(format!("source {:?} published twice", t.source));
                    continue;
                }
                seen_sources.push(t.source);
                keep_mids.push(mid);
                if let Some(existing) = p.published.get(&mid) {
                    if let Some(track) = self.tracks.get(existing) {
                        infos.push(track.info.clone());
                    }
                    continue;
                }
                let rids: Vec<Rid> = match media.rids_rx() {
                    Rids::Specific(rids) => rids.clone(),
                    _ => vec![],
                };
                let layers: Vec<PubLayer> = if rids.is_empty() {
                    vec![new_layer(None, None, ctx.now)]
                } else {
                    rids.into_iter()
                        .map(|rid| {
                            let announced = t.layers.iter().find(|l| l.rid.as_str() == &*rid);
                            new_layer(Some(rid), announced, ctx.now)
                        })
                        .collect()
                };
                let track_id = format!("{}-{}", p.wire_id, crate::next_id());
                debug!(
                    "room {}: {track_id} {:?} layers {:?}",
                    self.label,
                    t.source,
                    layers
                        .iter()
                        .map(|l| (l.rid, l.width, l.height))
                        .collect::<Vec<_>>()
                );
                let info = TrackInfo {
                    track_id: track_id.clone(),
                    participant_id: p.wire_id.clone(),
                    kind: if kind == StrKind::Audio {
                        MediaKind::Audio
                    } else {
                        MediaKind::Video
                    },
                    source: t.source,
                    muted: t.muted,
                    simulcast: layers.len() > 1,
                };
                p.published.insert(mid, track_id.clone());
                infos.push(info.clone());
                added.push(track_id.clone());
                self.tracks.insert(
                    track_id,
                    PubTrack {
                        info,
                        owner: id,
                        mid,
                        layers,
                        subscribers: vec![],
                    },
                );
            }
        }
        let removed: Vec<String> = {
            let p = self.participants.get_mut(&id).expect("checked");
            let gone: Vec<Mid> = p
                .published
                .keys()
                .filter(|m| !keep_mids.contains(m))
                .copied()
                .collect();
            gone.into_iter()
                .filter_map(|m| p.published.remove(&m))
                .collect()
        };
        // The new SSRC -> track mapping is learnt again from the streams.
        self.participants
            .get_mut(&id)
            .expect("checked")
            .in_streams
            .clear();
        for e in errors {
            self.error(id, ErrorCode::InvalidValue, e);
        }
        self.send_to(
            id,
            ServerMsg::Answer {
                pc: PcKind::Publisher,
                sdp: answer.to_sdp_string(),
                tracks: infos,
            },
        );
        for track_id in removed {
            self.unpublish(&track_id, ctx);
        }
        for track_id in added {
            let info = self.tracks[&track_id].info.clone();
            self.broadcast(Some(id), ServerMsg::TrackPublished { track: info });
            let others: Vec<u64> = self
                .participants
                .keys()
                .copied()
                .filter(|o| *o != id)
                .collect();
            for o in &others {
                self.subscribe(*o, &track_id);
            }
            for o in others {
                self.negotiate_subscriber(o, ctx);
            }
        }
    }

    fn unpublish(&mut self, track_id: &str, ctx: &mut Ctx) {
        let Some(track) = self.tracks.remove(track_id) else {
            return;
        };
        if let Some(recording) = self.recording.as_mut() {
            recording.end_track(track_id, ctx.now);
        }
        let owner_wire = self
            .participants
            .get(&track.owner)
            .map(|p| p.wire_id.clone())
            .unwrap_or_else(|| crate::participant::participant_id_string(track.owner));
        for sub in &track.subscribers {
            if let Some(p) = self.participants.get_mut(sub) {
                if let Some(d) = p.down.get_mut(track_id) {
                    d.rewriter.set_target(None);
                    d.state = match d.state {
                        DownState::ToOpen => {
                            p.down.remove(track_id);
                            continue;
                        }
                        DownState::Negotiating(m) | DownState::Open(m) => DownState::ToStop(m),
                        other => other,
                    };
                }
            }
        }
        self.broadcast(
            None,
            ServerMsg::TrackUnpublished {
                track_id: track_id.to_string(),
                participant_id: owner_wire,
            },
        );
        for sub in track.subscribers {
            self.negotiate_subscriber(sub, ctx);
        }
    }

    /// Add `track_id` to what participant `id` receives (negotiated later).
    fn subscribe(&mut self, id: u64, track_id: &str) {
        let Some(track) = self.tracks.get_mut(track_id) else {
            return;
        };
        if track.owner == id || track.subscribers.contains(&id) {
            return;
        }
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        track.subscribers.push(id);
        let clock = if track.info.kind == MediaKind::Audio {
            48_000
        } else {
            90_000
        };
        p.down.insert(
            track_id.to_string(),
            DownTrack {
                track_id: track_id.to_string(),
                info: SubscribedTrack {
                    mid: String::new(),
                    track_id: track_id.to_string(),
                    participant_id: track.info.participant_id.clone(),
                    kind: track.info.kind,
                    source: track.info.source,
                },
                state: DownState::ToOpen,
                rewriter: Rewriter::new(clock),
                ssrc: None,
                pt_map: Vec::new(),
                max_quality: None,
                queue: SendQueueGuard::default(),
            },
        );
    }

    /// Offer the subscriber connection's pending changes, unless an offer is outstanding.
    fn negotiate_subscriber(&mut self, id: u64, ctx: &mut Ctx) {
        let room_id = self.id;
        let worker = ctx.worker;
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if p.sub_pending.is_some() {
            return;
        }
        let needs = p
            .down
            .values()
            .any(|d| matches!(d.state, DownState::ToOpen | DownState::ToStop(_)));
        if !needs {
            return;
        }
        if p.subscriber.is_none() {
            let peer = RtcPeer::new(PcKind::Subscriber, ctx.shared, worker, ctx.now);
            ctx.conns
                .insert(peer.conn, (room_id, id, PcKind::Subscriber));
            p.subscriber = Some(peer);
        }
        let peer = p.subscriber.as_mut().expect("made above");
        let mut api = peer.rtc.sdp_api();
        let mut bundle_mid = p.bundle_mid;
        for d in p.down.values_mut() {
            match d.state {
                DownState::ToOpen => {
                    let kind = if d.info.kind == MediaKind::Audio {
                        StrKind::Audio
                    } else {
                        StrKind::Video
                    };
                    let stream_id = d.info.participant_id.clone();
                    let mid = api.add_media(
                        kind,
                        Direction::SendOnly,
                        Some(stream_id),
                        Some(d.track_id.clone()),
                        None,
                    );
                    bundle_mid.get_or_insert(mid);
                    d.state = DownState::Negotiating(mid);
                }
                DownState::ToStop(mid) => {
                    // The first m-line tags the BUNDLE group: stopping it makes browsers move
                    // to a new transport (or refuse an offer with every m-line stopped), so it
                    // is parked as inactive instead.
                    if bundle_mid == Some(mid) {
                        api.set_direction(mid, Direction::Inactive);
                    } else {
                        api.stop_media(mid);
                    }
                    d.state = DownState::NegotiatingStop(mid);
                }
                _ => {}
            }
        }
        p.bundle_mid = bundle_mid;
        let Some((offer, pending)) = api.apply() else {
            return;
        };
        p.sub_pending = Some(pending);
        let tracks: Vec<SubscribedTrack> = p
            .down
            .values_mut()
            .filter_map(|d| match d.state {
                DownState::Negotiating(m) | DownState::Open(m) => {
                    d.info.mid = m.to_string();
                    Some(d.info.clone())
                }
                _ => None,
            })
            .collect();
        p.send(ServerMsg::Offer {
            pc: PcKind::Subscriber,
            sdp: offer.to_sdp_string(),
            tracks,
        });
        self.drain_peer(id, PcKind::Subscriber, ctx);
    }

    fn on_subscriber_answer(&mut self, id: u64, sdp: &str, ctx: &mut Ctx) {
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(a) => a,
            Err(e) => {
                return self.error(
                    id,
                    ErrorCode::SdpError,
                    format!("answer does not parse: {e}"),
                )
            }
        };
        let p = self.participants.get_mut(&id).expect("checked");
        let Some(pending) = p.sub_pending.take() else {
            return self.error(
                id,
                ErrorCode::OutOfOrder,
                "no subscriber offer is waiting for an answer",
            );
        };
        let peer = p.subscriber.as_mut().expect("an offer was made");
        if let Err(e) = peer.rtc.sdp_api().accept_answer(pending, answer) {
            // The offer is void; put its changes back to be offered again.
            for d in p.down.values_mut() {
                d.state = match d.state {
                    DownState::Negotiating(_) => DownState::ToOpen,
                    DownState::NegotiatingStop(m) => DownState::ToStop(m),
                    s => s,
                };
            }
            self.drain_peer(id, PcKind::Subscriber, ctx);
            return self.error(id, ErrorCode::SdpError, format!("answer refused: {e}"));
        }
        peer.negotiated = true;
        if !peer.ice_connected && peer.disconnected_since.is_none() {
            peer.disconnected_since = Some(ctx.now);
        }
        let mut api = peer.rtc.direct_api();
        let mut stopped = Vec::new();
        for d in p.down.values_mut() {
            match d.state {
                DownState::Negotiating(m) => {
                    d.state = DownState::Open(m);
                    d.ssrc = api.stream_tx_by_mid(m, None).map(|s| s.ssrc());
                }
                DownState::NegotiatingStop(_) => stopped.push(d.track_id.clone()),
                _ => {}
            }
        }
        for t in stopped {
            p.down.remove(&t);
        }
        self.drain_peer(id, PcKind::Subscriber, ctx);
        self.select_layers(id, ctx);
        self.negotiate_subscriber(id, ctx);
    }

    // ----- media ------------------------------------------------------------------------

    /// Feed a datagram to a connection. With `learn`, the datagram was routed by its STUN
    /// ufrag from a new address: the address is recorded for the connection only if str0m
    /// verifies the request (ufrags and MESSAGE-INTEGRITY).
    pub fn on_datagram(
        &mut self,
        id: u64,
        pc: PcKind,
        input: str0m::Input,
        learn: Option<Transport>,
        ctx: &mut Ctx,
    ) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let Some(peer) = p.peer_mut(pc) else {
            return;
        };
        if let (Some(transport), str0m::Input::Receive(_, r)) = (learn, &input) {
            if peer.verifies(&input) {
                let route = Route {
                    worker: ctx.worker,
                    conn: peer.conn,
                };
                ctx.shared.demux.learn(transport, r.source, route);
            }
        }
        if let Err(e) = peer.rtc.handle_input(input) {
            debug!("{}: input refused: {e}", p.wire_id);
        }
        self.drain_peer(id, pc, ctx);
    }

    /// Drive a connection's timers.
    pub fn on_timeout(&mut self, id: u64, pc: PcKind, ctx: &mut Ctx) {
        let Some(peer) = self.participants.get_mut(&id).and_then(|p| p.peer_mut(pc)) else {
            return;
        };
        if peer.timeout > ctx.now {
            ctx.schedule(peer.conn, peer.timeout);
            return;
        }
        let _ = peer.rtc.handle_input(str0m::Input::Timeout(ctx.now));
        self.drain_peer(id, pc, ctx);
    }

    /// Drain one connection and handle every event that follows, including those of the
    /// connections the handling writes to.
    fn drain_peer(&mut self, id: u64, pc: PcKind, ctx: &mut Ctx) {
        let mut pending = Pending::new();
        self.drain_into(id, pc, ctx, &mut pending);
        while let Some((pid, kind, event)) = pending.pop_front() {
            self.on_event(pid, kind, event, ctx, &mut pending);
        }
    }

    fn drain_into(&mut self, id: u64, pc: PcKind, ctx: &mut Ctx, pending: &mut Pending) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let Some(peer) = p.peer_mut(pc) else {
            return;
        };
        let mut events = Vec::new();
        let alive = peer.drain(ctx.out, &mut events);
        ctx.schedule(peer.conn, peer.timeout);
        if !alive {
            p.doom("media connection failed");
        }
        pending.extend(events.into_iter().map(|e| (id, pc, e)));
    }

    fn on_event(
        &mut self,
        id: u64,
        pc: PcKind,
        event: Event,
        ctx: &mut Ctx,
        pending: &mut Pending,
    ) {
        match event {
            Event::RtpPacket(pkt) if pc == PcKind::Publisher => self.forward(id, pkt, ctx, pending),
            Event::KeyframeRequest(req) if pc == PcKind::Subscriber => {
                let Some(p) = self.participants.get_mut(&id) else {
                    return;
                };
                let Some(d) = p.down_by_mid(req.mid) else {
                    return;
                };
                let (track_id, layer) = (d.track_id.clone(), d.rewriter.current());
                if let Some(layer) = layer {
                    self.request_keyframe(&track_id, layer, ctx, pending);
                }
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                if let Some(p) = self.participants.get_mut(&id) {
                    p.bwe_bps = estimate.as_u64();
                }
            }
            Event::IceConnectionStateChange(state) => {
                let Some(peer) = self.participants.get_mut(&id).and_then(|p| p.peer_mut(pc)) else {
                    return;
                };
                match state {
                    IceConnectionState::Connected | IceConnectionState::Completed => {
                        peer.ice_connected = true;
                        peer.disconnected_since = None;
                    }
                    IceConnectionState::Disconnected => {
                        peer.ice_connected = false;
                        peer.disconnected_since.get_or_insert(ctx.now);
                    }
                    _ => {}
                }
            }
            Event::PeerStats(stats) => {
                let Some(p) = self.participants.get_mut(&id) else {
                    return;
                };
                let has_subscriber = p.subscriber.as_ref().is_some_and(|s| s.negotiated);
                if let Some(report) = p.quality.on_stats(pc, &stats, has_subscriber) {
                    self.tell_quality(id, QualitySource::Server, report, true);
                }
            }
            Event::Connected => {
                debug!("room {}: p{id} {pc:?} connected", self.label);
                if pc == PcKind::Subscriber {
                    self.select_layers(id, ctx);
                }
            }
            _ => {}
        }
    }

    /// Forward one RTP packet from participant `id`'s publisher connection.
    fn forward(&mut self, id: u64, pkt: RtpPacket, ctx: &mut Ctx, pending: &mut Pending) {
        let ssrc = pkt.header.ssrc;
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let stream =
            match p.in_streams.get(&ssrc) {
                Some(s) => s.clone(),
                None => {
                    let Some(peer) = p.publisher.as_mut() else {
                        return;
                    };
                    let Some(rx) = peer
                        .rtc
                        .direct_api()
                        .stream_rx(&ssrc)
                        .map(|s| (s.mid(), s.rid()))
                    else {
                        return;
                    };
                    let (mid, rid) = rx;
                    let Some(track_id) = p.published.get(&mid).cloned() else {
                        return;
                    };
                    let Some(track) = self.tracks.get(&track_id) else {
                        return;
                    };
                    let Some(layer) = track.layers.iter().position(|l| l.rid == rid).or(
                        if track.layers.len() == 1 {
                            Some(0)
                        } else {
                            None
                        },
                    ) else {
                        return;
                    };
                    let s = InStream { track_id, layer };
                    p.in_streams.insert(ssrc, s.clone());
                    s
                }
            };
        let pt = pkt.header.payload_type;
        let codec_entry = *self.pub_codecs.entry((id, pt)).or_insert_with(|| {
            p.publisher
                .as_ref()
                .and_then(|peer| peer.rtc.codec_config().find(|c| c.pt() == pt).copied())
                .map(|params| (params, params.spec().codec))
        });
        let Some((params, codec)) = codec_entry else {
            return;
        };
        let Some(track) = self.tracks.get_mut(&stream.track_id) else {
            return;
        };
        let is_audio = track.info.kind == MediaKind::Audio;
        let payload = &pkt.payload;
        let keyframe = is_audio || codec::starts_keyframe(codec, payload);
        let layer = &mut track.layers[stream.layer];
        layer.meter.add(ctx.now, payload.len());
        self.status.touch(ctx.now);
        let vp8 = if codec == Codec::Vp8 {
            Vp8Descriptor::parse(payload).ok()
        } else {
            None
        };
        if keyframe && codec == Codec::Vp8 {
            if let Some((w, h)) = codec::vp8_keyframe_size(payload) {
                layer.width = w;
                layer.height = h;
            }
        }
        let input = InPacket {
            layer: stream.layer,
            seq: *pkt.seq_no,
            ts: pkt.header.timestamp,
            keyframe,
            vp8_picture_id: vp8.and_then(|d| d.picture_id()),
            vp8_tl0: vp8.and_then(|d| d.tl0_pic_idx()),
        };
        let ext = ExtensionValues {
            audio_level: pkt.header.ext_vals.audio_level,
            voice_activity: pkt.header.ext_vals.voice_activity,
            video_orientation: pkt.header.ext_vals.video_orientation,
            ..Default::default()
        };
        let mut want_keyframe = false;
        // Borrowed out of the track for the loop (nothing in it changes subscriptions) and put
        // back after: no copy of the list per packet.
        let subscribers = std::mem::take(&mut track.subscribers);
        let mut forwarded = 0u64;
        for &sub in &subscribers {
            let Some(s) = self.participants.get_mut(&sub) else {
                continue;
            };
            let Some(d) = s.down.get_mut(&stream.track_id) else {
                continue;
            };
            let (DownState::Open(_), Some(out_ssrc)) = (d.state, d.ssrc) else {
                continue;
            };
            let Some(out) = d.rewriter.rewrite(&input, ctx.now) else {
                if d.rewriter.waiting_for_keyframe() && d.rewriter.target() == Some(stream.layer) {
                    want_keyframe = true;
                }
                continue;
            };
            let Some(peer) = s.subscriber.as_mut() else {
                continue;
            };
            if !peer.rtc.is_connected() {
                continue;
            }
            let out_pt = match d.pt_map.iter().find(|(i, _)| *i == pt) {
                Some((_, o)) => *o,
                None => {
                    let o = peer.rtc.codec_config().match_params(params).map(|p| p.pt());
                    d.pt_map.push((pt, o));
                    o
                }
            };
            let Some(out_pt) = out_pt else { continue };
            let mut write = RtpWrite::new(
                out_pt,
                out.seq.into(),
                out.ts,
                pkt.timestamp,
                pkt.payload.clone(),
            )
            .marker(pkt.header.marker)
            .nackable(!is_audio)
            .ext_vals(ext.clone());
            if let (Some(desc), Some(pid)) = (vp8, out.vp8_picture_id) {
                let mut b = desc.patch().picture_id(pid);
                if let Some(tl0) = out.vp8_tl0 {
                    b = b.tl0_pic_idx(tl0);
                }
                if let Ok(patch) = b.build() {
                    write = write.vp8_patch(patch);
                }
            }
            let mut api = peer.rtc.direct_api();
            let Some(tx) = api.stream_tx(&out_ssrc) else {
                continue;
            };
            let sample = tx.queue_info().map(|q| QueueSample {
                at: q.created_at(),
                packets: q.packet_count(),
                first_unsent: q.first_unsent(),
            });
            if !d.queue.admit(ctx.now, sample) {
                // The subscriber does not keep up: drop rather than queue without end. Video
                // resumes at the next keyframe (requested below), so what is sent decodes.
                ctx.shared.counters.drops.count(DropReason::SendQueue);
                if !is_audio {
                    d.rewriter.resync();
                    want_keyframe |= d.rewriter.target() == Some(stream.layer);
                }
                continue;
            }
            tx.write_rtp(write);
            forwarded += 1;
            self.drain_into(sub, PcKind::Subscriber, ctx, pending);
        }
        if let Some(track) = self.tracks.get_mut(&stream.track_id) {
            track.subscribers = subscribers;
        }
        ctx.counters_forwarded(forwarded);
        if self.recording.is_some() {
            self.record(&stream, codec, &pkt, ctx, pending);
        }
        if want_keyframe {
            self.request_keyframe(&stream.track_id, stream.layer, ctx, pending);
        }
    }

    /// Ask a track's publisher for a keyframe on one layer, at most every 500 ms.
    fn request_keyframe(
        &mut self,
        track_id: &str,
        layer: usize,
        ctx: &mut Ctx,
        pending: &mut Pending,
    ) {
        let Some(track) = self.tracks.get_mut(track_id) else {
            return;
        };
        if track.info.kind == MediaKind::Audio {
            return;
        }
        let Some(l) = track.layers.get_mut(layer) else {
            return;
        };
        if l.last_keyframe_request
            .is_some_and(|t| ctx.now.saturating_duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
        {
            return;
        }
        l.last_keyframe_request = Some(ctx.now);
        let (owner, mid, rid) = (track.owner, track.mid, l.rid);
        let Some(peer) = self
            .participants
            .get_mut(&owner)
            .and_then(|p| p.publisher.as_mut())
        else {
            return;
        };
        let mut api = peer.rtc.direct_api();
        let Some(rx) = api.stream_rx_by_mid(mid, rid) else {
            return;
        };
        rx.request_keyframe(KeyframeRequestKind::Pli);
        self.drain_into(owner, PcKind::Publisher, ctx, pending);
    }

    // ----- recording --------------------------------------------------------------------

    fn recording_state(&self) -> RecordingState {
        if self.recording.is_some() {
            RecordingState::On
        } else {
            RecordingState::Off
        }
    }

    /// Start recording into `recorder` (replacing a recording already on, which stops) and
    /// tell everyone. Video tracks are asked for a keyframe so their files start at once.
    pub fn start_recording(&mut self, recorder: RecorderHandle, ctx: &mut Ctx) {
        if let Some(old) = self.recording.take() {
            old.stop(ctx.now);
        }
        info!("room {}: recording", self.label);
        self.recording = Some(RoomRecording::new(recorder));
        self.broadcast(
            None,
            ServerMsg::Recording {
                state: RecordingState::On,
            },
        );
        let video: Vec<(String, usize)> = self
            .tracks
            .iter()
            .filter(|(_, t)| t.info.kind == MediaKind::Video)
            .map(|(id, t)| (id.clone(), best_layer(&t.layers, ctx.now)))
            .collect();
        let mut pending = Pending::new();
        for (track_id, layer) in video {
            self.request_keyframe(&track_id, layer, ctx, &mut pending);
        }
        while let Some((pid, kind, event)) = pending.pop_front() {
            self.on_event(pid, kind, event, ctx, &mut pending);
        }
    }

    /// Stop recording (the recorder finishes its files on its own thread) and tell everyone.
    pub fn stop_recording(&mut self, now: Instant) {
        let Some(recording) = self.recording.take() else {
            return;
        };
        info!("room {}: recording stopped", self.label);
        recording.stop(now);
        self.broadcast(
            None,
            ServerMsg::Recording {
                state: RecordingState::Off,
            },
        );
    }

    /// Hand a forwarded packet to the recording; ask its publisher for a keyframe when the
    /// recorder wants one.
    fn record(
        &mut self,
        stream: &InStream,
        codec: Codec,
        pkt: &RtpPacket,
        ctx: &mut Ctx,
        pending: &mut Pending,
    ) {
        let (Some(recording), Some(track)) =
            (self.recording.as_mut(), self.tracks.get(&stream.track_id))
        else {
            return;
        };
        let participants = &self.participants;
        let now = ctx.now;
        let wanted = recording.packet(
            &stream.track_id,
            stream.layer,
            || best_layer(&track.layers, now),
            codec,
            || {
                let owner = participants.get(&track.owner);
                Publisher {
                    participant: track.info.participant_id.clone(),
                    name: owner.map(|p| p.name.clone()).unwrap_or_default(),
                    role: owner.map(|p| p.role).unwrap_or_default(),
                    source: track.info.source,
                }
            },
            pkt.timestamp,
            *pkt.seq_no,
            pkt.header.timestamp,
            pkt.header.marker,
            &pkt.payload,
        );
        if let Some(layer) = wanted {
            self.request_keyframe(&stream.track_id, layer, ctx, pending);
        }
    }

    // ----- layer choice -----------------------------------------------------------------

    /// Periodic work: layer choice for everyone, ICE grace expiry.
    pub fn tick(&mut self, ctx: &mut Ctx) {
        let grace = ctx.shared.config.ice_disconnect_grace;
        let ids: Vec<u64> = self.participants.keys().copied().collect();
        for id in ids {
            self.select_layers(id, ctx);
            let p = self.participants.get_mut(&id).expect("listed");
            let lost = [p.publisher.as_ref(), p.subscriber.as_ref()]
                .into_iter()
                .flatten()
                .any(|peer| {
                    peer.negotiated
                        && peer
                            .disconnected_since
                            .is_some_and(|t| ctx.now.saturating_duration_since(t) > grace)
                });
            if lost && p.doomed().is_none() {
                p.send(ServerMsg::error(
                    ErrorCode::Unavailable,
                    "media connection lost",
                ));
                p.doom("ICE connection lost");
            }
        }
    }

    /// Choose each received video track's layer for participant `id` and request keyframes
    /// where a switch waits for one.
    fn select_layers(&mut self, id: u64, ctx: &mut Ctx) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        let video = p
            .down
            .values()
            .filter(|d| d.info.kind == MediaKind::Video && matches!(d.state, DownState::Open(_)))
            .count() as u64;
        let audio = p
            .down
            .values()
            .filter(|d| d.info.kind == MediaKind::Audio)
            .count() as u64;
        let budget = p.bwe_bps.saturating_sub(audio * AUDIO_BUDGET_BPS);
        let share = budget.checked_div(video).unwrap_or(budget);
        let mut requests = Vec::new();
        let mut desired = audio * AUDIO_BUDGET_BPS;
        for d in p.down.values_mut() {
            if !matches!(d.state, DownState::Open(_)) {
                continue;
            }
            let Some(track) = self.tracks.get(&d.track_id) else {
                continue;
            };
            let target = if d.info.kind == MediaKind::Audio {
                Some(0)
            } else {
                let views: Vec<LayerView> = track
                    .layers
                    .iter()
                    .map(|l| LayerView {
                        width: l.width,
                        height: l.height,
                        bps: l.meter.bps(ctx.now),
                        active: l.meter.active(ctx.now),
                    })
                    .collect();
                let quality = d.max_quality.unwrap_or(p.max_quality);
                if let Some(best) = choose_layer(&views, quality, u64::MAX) {
                    desired += views[best].bps;
                }
                choose_layer(&views, quality, share).or(d.rewriter.target())
            };
            if target != d.rewriter.target() {
                d.rewriter.set_target(target);
            }
            if d.rewriter.waiting_for_keyframe() {
                if let Some(t) = d.rewriter.target() {
                    requests.push((d.track_id.clone(), t));
                }
            }
        }
        // Let str0m's estimator probe towards what the best layers would need.
        let desired = desired.max(300_000);
        let changed = p.bwe_desired == 0 || desired.abs_diff(p.bwe_desired) > p.bwe_desired / 10;
        if changed {
            if let Some(peer) = p.subscriber.as_mut() {
                p.bwe_desired = desired;
                peer.rtc
                    .bwe()
                    .set_bitrate(Bitrate::bps(desired / 2), Bitrate::bps(desired));
                self.drain_peer(id, PcKind::Subscriber, ctx);
            }
        }
        let mut pending = Pending::new();
        for (track_id, layer) in requests {
            self.request_keyframe(&track_id, layer, ctx, &mut pending);
        }
        while let Some((pid, kind, event)) = pending.pop_front() {
            self.on_event(pid, kind, event, ctx, &mut pending);
        }
    }
}

/// The layer a recording takes of a track: the largest the publisher is sending now (height,
/// then width; the last one when sizes are unknown: clients list simulcast layers from the
/// smallest up), else the largest announced.
fn best_layer(layers: &[PubLayer], now: Instant) -> usize {
    let largest = |flowing: bool| {
        (0..layers.len())
            .filter(|&i| !flowing || layers[i].meter.active(now))
            .max_by_key(|&i| (layers[i].height, layers[i].width, i))
    };
    largest(true).or_else(|| largest(false)).unwrap_or(0)
}

fn new_layer(
    rid: Option<Rid>,
    announced: Option<&orbita_protocol::LayerInfo>,
    now: Instant,
) -> PubLayer {
    PubLayer {
        rid,
        width: announced.and_then(|l| l.width).unwrap_or(0),
        height: announced.and_then(|l| l.height).unwrap_or(0),
        meter: RateMeter::new(now),
        last_keyframe_request: None,
    }
}

/// Seconds since the Unix epoch (TURN credentials expire at a wall-clock time).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queues::{MAX_SEND_QUEUE_PACKETS, SIGNAL_RESERVE};
    use crate::sim::{Client, Sim, SINK};
    use std::net::SocketAddr;

    /// Alice publishes a microphone; Bob, Carol and Dave receive it.
    fn room_with_audio() -> Sim {
        let mut sim = Sim::new();
        for name in ["alice", "bob", "carol", "dave"] {
            sim.join(name);
        }
        sim.publish_audio(0);
        sim.run(200, false); // negotiation, ICE, DTLS
        sim.run(100, true);
        for c in 1..4 {
            assert!(
                sim.clients[c].media_frames > 20,
                "client {c} receives audio: {}",
                sim.clients[c].media_frames
            );
        }
        sim
    }

    /// CRC-32 (IEEE), for the STUN FINGERPRINT.
    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// `stun` with one bit of its MESSAGE-INTEGRITY flipped and its FINGERPRINT made right
    /// again: only the integrity check can tell.
    fn forge_integrity(stun: &[u8]) -> Vec<u8> {
        let mut m = stun.to_vec();
        let mut i = 20;
        while i + 4 <= m.len() {
            let kind = u16::from_be_bytes([m[i], m[i + 1]]);
            let len = usize::from(u16::from_be_bytes([m[i + 2], m[i + 3]]));
            match kind {
                0x0008 => m[i + 4] ^= 1,
                0x8028 => {
                    let fp = (crc32(&m[..i]) ^ 0x5354_554e).to_be_bytes();
                    m[i + 4..i + 8].copy_from_slice(&fp);
                }
                _ => {}
            }
            i += 4 + len.div_ceil(4) * 4;
        }
        m
    }

    #[test]
    fn only_a_verified_stun_request_teaches_the_demux_an_address() {
        let mut sim = room_with_audio();
        let known = sim.shared.demux.addr_count();
        assert!(known >= 4, "the clients' addresses are known: {known}");
        let (_, stun) = sim
            .last_stun
            .clone()
            .expect("clients send binding requests");
        let rtp = [0x80u8, 0x6f, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
        let evil = SocketAddr::from(([127, 0, 0, 99], 6666));
        // The right ufrags with a broken MESSAGE-INTEGRITY, from a new address.
        let forged = forge_integrity(&stun);
        assert_ne!(forged, stun);
        assert_eq!(
            crate::demux::stun_server_ufrag(&forged),
            crate::demux::stun_server_ufrag(&stun)
        );
        sim.inject(evil, forged);
        // Random datagrams from 1,000 new addresses.
        for i in 0..1000u16 {
            let from = SocketAddr::from(([127, 0, 1 + (i >> 8) as u8, i as u8], 7000 + i));
            let mut junk = rtp.to_vec();
            junk.extend(i.to_be_bytes());
            sim.inject(from, junk);
        }
        assert_eq!(sim.shared.demux.addr_count(), known);
        assert_eq!(sim.shared.demux.route(Transport::Udp, evil, &rtp), None);
        // The intact request from there (a peer whose NAT binding changed) is verified by
        // str0m, and only then is its address learnt.
        sim.inject(evil, stun);
        assert_eq!(sim.shared.demux.addr_count(), known + 1);
        assert!(sim.shared.demux.route(Transport::Udp, evil, &rtp).is_some());
    }

    fn chats(c: &Client) -> usize {
        c.received
            .iter()
            .filter(|m| matches!(m, ServerMsg::Chat { .. }))
            .count()
    }

    #[test]
    fn a_chat_flood_leaves_a_receiver_with_a_full_queue_in_the_room_and_receiving_media() {
        let mut sim = room_with_audio();
        let (bob, carol, dave) = (1, 2, 3);
        // Carol stops reading her signalling (a slow tab); Dave floods the chat: 1,000 messages,
        // 10 per 10 ms.
        sim.clients[carol].reading = false;
        let chats_before = chats(&sim.clients[carol]);
        let media_before = sim.clients[carol].media_frames;
        for round in 0..100 {
            for i in 0..10 {
                let text = format!("spam {round}.{i}");
                sim.signal(dave, ClientMsg::Chat { text, to: None });
            }
            sim.run(1, true);
        }
        // Carol's queue holds chat only up to the reserve; she is still in the room.
        assert_eq!(sim.clients[carol].unread(), SINK - SIGNAL_RESERVE);
        assert!(!sim.clients[carol].dropped());
        let dropped = sim
            .shared
            .counters
            .drops
            .chat
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(dropped as usize, 1000 - (SINK - SIGNAL_RESERVE));
        // Bob, who reads, got every message.
        assert_eq!(chats(&sim.clients[bob]) - chats_before, 1000);
        // Media keeps reaching Carol, and a message that matters still fits her queue.
        sim.run(100, true);
        assert!(
            sim.clients[carol].media_frames >= media_before + 100,
            "{} -> {}",
            media_before,
            sim.clients[carol].media_frames
        );
        sim.join("erin");
        sim.clients[carol].reading = true;
        sim.run(1, true);
        assert!(!sim.clients[carol].dropped());
        assert_eq!(
            chats(&sim.clients[carol]) - chats_before,
            SINK - SIGNAL_RESERVE
        );
        assert!(sim.clients[carol]
            .received
            .iter()
            .any(|m| matches!(m, ServerMsg::ParticipantJoined { participant } if participant.name == "erin")));
        let others_left = sim.clients[bob]
            .received
            .iter()
            .filter(|m| matches!(m, ServerMsg::ParticipantLeft { .. }))
            .count();
        assert_eq!(others_left, 0, "nobody was dropped");
    }

    #[test]
    fn a_subscriber_that_never_drains_gets_a_bounded_queue_while_others_keep_receiving() {
        let mut sim = room_with_audio();
        let (bob, carol) = (1, 2);
        // Carol's subscriber connection never gets to send: its timers never fire (so str0m
        // never releases its queue) and nothing comes back from her.
        let conn = sim
            .server_conn(carol, PcKind::Subscriber)
            .expect("carol subscribes");
        sim.stalled.insert(conn);
        let (bob0, carol0) = (
            sim.clients[bob].media_frames,
            sim.clients[carol].media_frames,
        );
        sim.run(2000, true); // 20 s: 1,000 Opus packets from Alice
        let bob_got = sim.clients[bob].media_frames - bob0;
        assert!(bob_got >= 990, "bob received {bob_got} of 1000");
        assert_eq!(sim.clients[carol].media_frames, carol0);
        let dropped = sim.shared.counters.drops.get(DropReason::SendQueue);
        assert!(
            dropped >= (1000 - MAX_SEND_QUEUE_PACKETS - 10) as u64,
            "dropped {dropped}"
        );
        // What str0m itself counts in Carol's queue, after one timeout: bounded.
        let carol_id = sim.clients[carol].id;
        let now = sim.now;
        let p = sim
            .room_mut()
            .participants
            .get_mut(&carol_id)
            .expect("carol is still in the room");
        let ssrcs: Vec<_> = p.down.values().filter_map(|d| d.ssrc).collect();
        let peer = p.subscriber.as_mut().expect("subscriber");
        peer.rtc
            .handle_input(str0m::Input::Timeout(now))
            .expect("timeout");
        let mut api = peer.rtc.direct_api();
        let queued: usize = ssrcs
            .iter()
            .filter_map(|s| api.stream_tx(s)?.queue_info().map(|q| q.packet_count()))
            .sum();
        assert!(
            (1..=MAX_SEND_QUEUE_PACKETS).contains(&queued),
            "queued {queued}"
        );
    }
}
