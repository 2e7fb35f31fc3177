//! The bot's signalling and media logic, between the I/O loop ([`crate::task`]) and the
//! two peers. Every entry point takes `now`; what goes to the server is queued in an outbox
//! the loop sends, and what the bot learns goes to the shared [`Recorder`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::Context;
use orbita_protocol::{
    ClientMsg, LayerInfo, MediaKind as PMediaKind, PcKind, PublishTrack, ServerMsg,
    SubscribedTrack, TrackInfo, TrackSource,
};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::{Codec, CodecExtra};
use str0m::media::Frequency;
use str0m::media::{
    Direction, KeyframeRequestKind, MediaData, MediaKind, MediaTime, Mid, Pt, Rid, Rids, Simulcast,
    SimulcastLayer,
};
use str0m::{Candidate, Event, IceConnectionState};
use tokio::net::UdpSocket;

use crate::media_file::{vp8_keyframe_size, MediaLibrary};
use crate::pacer::{MediaPacer, PacedFrame};
use crate::peer::{publisher_config, subscriber_config, Peer, PeerSocket};
use crate::stats::{FrameInfo, Recorder, SentStream};
use crate::BotOptions;

/// Simulcast rids, highest layer first, matching [`MediaLibrary::layers`].
pub const LAYER_RIDS: [&str; 3] = ["f", "h", "q"];

/// Keep-alive period for `ping`.
const PING_INTERVAL: Duration = Duration::from_secs(10);
/// How long `leave` waits for the server's `left` before giving up.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(3);
/// At most one keyframe request per subscriber m-line per this period (like a browser).
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);
/// Write errors reported as warnings before going quiet.
const MAX_WRITE_WARNINGS: u64 = 5;

/// State shared between the task and the [`crate::Bot`] handle.
pub(crate) struct Shared {
    recorder: Mutex<Recorder>,
}

impl Shared {
    pub(crate) fn new(recorder: Recorder) -> Shared {
        Shared {
            recorder: Mutex::new(recorder),
        }
    }

    /// Lock the recorder (a panic elsewhere does not make the stats unreadable).
    pub(crate) fn rec(&self) -> MutexGuard<'_, Recorder> {
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the [`crate::Bot`] handle asks the task to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send a protocol message.
    Send(ClientMsg),
    /// Send this text as-is (tests of the server's input handling).
    Raw(String),
    /// Mute or unmute one of the bot's own sources (stops/resumes sending it).
    SetMuted(TrackSource, bool),
    /// Leave the room.
    Leave,
}

/// A message for the WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outgoing {
    Msg(ClientMsg),
    Raw(String),
}

impl Outgoing {
    pub(crate) fn into_text(self) -> String {
        match self {
            Outgoing::Msg(m) => serde_json::to_string(&m).expect("client messages serialize"),
            Outgoing::Raw(s) => s,
        }
    }
}

/// One video layer the publisher may send.
#[derive(Debug, Clone)]
struct LayerSend {
    rid: Option<Rid>,
    key: String,
    active: bool,
}

/// The publisher connection and its negotiation.
struct Publisher {
    peer: Peer,
    pending: Option<SdpPendingOffer>,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    audio_pt: Option<Pt>,
    video_pt: Option<Pt>,
    layers: Vec<LayerSend>,
    negotiated: bool,
    connected: bool,
}

/// Whether a connection can carry media.
#[derive(Debug, Clone, Copy, Default)]
struct Link {
    /// str0m reported `Event::Connected` (ICE and DTLS up) at some point.
    dtls_up: bool,
    /// ICE is not disconnected.
    ice_ok: bool,
}

impl Link {
    fn up(self) -> bool {
        self.dtls_up && self.ice_ok
    }
}

/// Which connection an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Publisher,
    Subscriber,
}

/// The bot's logic. See the module docs.
pub(crate) struct Session {
    shared: Arc<Shared>,
    publisher: Option<Publisher>,
    subscriber: Peer,
    pub_link: Link,
    sub_link: Link,
    sub_answered: bool,
    sub_mids: HashMap<Mid, SubscribedTrack>,
    sub_keyframe_requested: HashMap<Mid, Instant>,
    pacer: MediaPacer,
    muted_audio: bool,
    muted_video: bool,
    outbox: Vec<Outgoing>,
    next_ping: Instant,
    ping_id: u64,
    leave_deadline: Option<Instant>,
    finished: Option<String>,
    write_errors: u64,
}

fn kind_of(k: PMediaKind) -> MediaKind {
    match k {
        PMediaKind::Audio => MediaKind::Audio,
        PMediaKind::Video => MediaKind::Video,
    }
}

fn codec_name(c: Codec) -> String {
    format!("{c:?}").to_ascii_lowercase()
}

/// The protocol's candidate line (`candidate:...`, maybe with `a=`) as a str0m candidate.
pub(crate) fn parse_candidate(line: &str) -> Option<anyhow::Result<Candidate>> {
    let line = line.trim();
    let line = line.strip_prefix("a=").unwrap_or(line);
    if line.is_empty() {
        return None; // end of candidates
    }
    Some(
        Candidate::from_sdp_string(line)
            .map_err(|e| anyhow::anyhow!("bad candidate {line:?}: {e}")),
    )
}

/// Build the publisher's offer: a sendonly audio m-line and a sendonly video m-line with
/// three simulcast send layers (or one stream). Returns the offer SDP, the pending offer and
/// the mids.
pub(crate) fn make_publisher_offer(
    peer: &mut Peer,
    audio: bool,
    video: bool,
    simulcast: bool,
) -> anyhow::Result<(String, SdpPendingOffer, Option<Mid>, Option<Mid>)> {
    let stream_id = format!("orbita-bot-{:08x}", rand::random::<u32>());
    let mut api = peer.rtc.sdp_api();
    let audio_mid = audio.then(|| {
        api.add_media(
            MediaKind::Audio,
            Direction::SendOnly,
            Some(stream_id.clone()),
            None,
            None,
        )
    });
    let video_mid = video.then(|| {
        let sim = simulcast.then(|| {
            let mut s = Simulcast::new();
            for rid in LAYER_RIDS {
                s.add_send_layer(SimulcastLayer::new(rid));
            }
            s
        });
        api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some(stream_id.clone()),
            None,
            sim,
        )
    });
    let applied = api.apply();
    // `apply` mutates the Rtc: drain before anything else touches it.
    peer.drain();
    let (offer, pending) = applied.context("str0m made no offer (nothing to publish?)")?;
    Ok((offer.to_sdp_string(), pending, audio_mid, video_mid))
}

impl Session {
    /// Set up both peers and queue the publisher offer. `shared` already holds the joined state.
    pub(crate) fn new(
        opts: &BotOptions,
        shared: Arc<Shared>,
        media: &MediaLibrary,
        pub_socket: Option<PeerSocket>,
        sub_socket: PeerSocket,
    ) -> anyhow::Result<Session> {
        let now = Instant::now();
        let subscriber = Peer::new(subscriber_config().build(now), sub_socket, now)
            .context("subscriber peer")?;
        let mut outbox = vec![];
        let layer_count = if !opts.publish_video {
            0
        } else if opts.simulcast {
            LAYER_RIDS.len().min(media.layers.len())
        } else {
            1
        };

        let mut publisher = None;
        let mut sent = vec![];
        if let Some(socket) = pub_socket {
            let mut peer =
                Peer::new(publisher_config().build(now), socket, now).context("publisher peer")?;
            let (sdp, pending, audio_mid, video_mid) = make_publisher_offer(
                &mut peer,
                opts.publish_audio,
                opts.publish_video,
                opts.simulcast,
            )?;
            let mut tracks = vec![];
            if let Some(mid) = audio_mid {
                tracks.push(PublishTrack {
                    mid: mid.to_string(),
                    source: TrackSource::Microphone,
                    layers: vec![],
                    muted: false,
                });
                sent.push(SentStream {
                    key: "audio".into(),
                    kind: PMediaKind::Audio,
                    rid: None,
                    width: None,
                    height: None,
                    active: false,
                    frames: 0,
                    keyframes: 0,
                    bytes: 0,
                    keyframe_requests: 0,
                    rtp_packets: 0,
                    rtp_bytes: 0,
                    nacks: 0,
                    loss_fraction: None,
                });
            }
            let mut layers = vec![];
            if let Some(mid) = video_mid {
                let mut infos = vec![];
                for (i, l) in media.layers.iter().take(layer_count).enumerate() {
                    let rid = opts.simulcast.then(|| LAYER_RIDS[i].to_string());
                    let key = match &rid {
                        Some(r) => format!("video/{r}"),
                        None => "video".to_string(),
                    };
                    if let Some(rid) = &rid {
                        infos.push(LayerInfo {
                            rid: rid.clone(),
                            width: Some(u32::from(l.width)),
                            height: Some(u32::from(l.height)),
                        });
                    }
                    sent.push(SentStream {
                        key: key.clone(),
                        kind: PMediaKind::Video,
                        rid: rid.clone(),
                        width: Some(l.width),
                        height: Some(l.height),
                        active: false,
                        frames: 0,
                        keyframes: 0,
                        bytes: 0,
                        keyframe_requests: 0,
                        rtp_packets: 0,
                        rtp_bytes: 0,
                        nacks: 0,
                        loss_fraction: None,
                    });
                    layers.push(LayerSend {
                        rid: rid.as_deref().map(Rid::from),
                        key,
                        active: false,
                    });
                }
                tracks.push(PublishTrack {
                    mid: mid.to_string(),
                    source: TrackSource::Camera,
                    layers: infos,
                    muted: false,
                });
            }
            outbox.push(Outgoing::Msg(ClientMsg::Offer {
                pc: PcKind::Publisher,
                sdp,
                tracks,
            }));
            outbox.push(Outgoing::Msg(ClientMsg::Candidate {
                pc: PcKind::Publisher,
                candidate: peer.candidate().to_string(),
            }));
            outbox.push(Outgoing::Msg(ClientMsg::Candidate {
                pc: PcKind::Publisher,
                candidate: String::new(),
            }));
            publisher = Some(Publisher {
                peer,
                pending: Some(pending),
                audio_mid,
                video_mid,
                audio_pt: None,
                video_pt: None,
                layers,
                negotiated: false,
                connected: false,
            });
        }

        if let Some(max) = &opts.max_quality {
            outbox.push(Outgoing::Msg(ClientMsg::SetQuality {
                max: max.clone(),
                track_id: None,
            }));
        }

        {
            let mut rec = shared.rec();
            rec.set_sent_streams(sent);
            let s = rec.pc_mut(false);
            s.exists = true;
            s.local_addr = Some(subscriber.local_addr().to_string());
            s.local_candidate = Some(subscriber.candidate().to_string());
            s.relay = subscriber.relay_status();
            if let Some(p) = &publisher {
                let s = rec.pc_mut(true);
                s.exists = true;
                s.local_addr = Some(p.peer.local_addr().to_string());
                s.local_candidate = Some(p.peer.candidate().to_string());
                s.relay = p.peer.relay_status();
            }
        }

        let pacer = MediaPacer::new(
            media,
            now,
            publisher.as_ref().is_some_and(|p| p.audio_mid.is_some()),
            if publisher.as_ref().is_some_and(|p| p.video_mid.is_some()) {
                layer_count
            } else {
                0
            },
            rand::random::<u32>() >> 1,
        );

        Ok(Session {
            shared,
            publisher,
            subscriber,
            pub_link: Link::default(),
            sub_link: Link::default(),
            sub_answered: false,
            sub_mids: HashMap::new(),
            sub_keyframe_requested: HashMap::new(),
            pacer,
            muted_audio: false,
            muted_video: false,
            outbox,
            next_ping: now + PING_INTERVAL,
            ping_id: 0,
            leave_deadline: None,
            finished: None,
            write_errors: 0,
        })
    }

    fn warn(&self, now: Instant, text: impl Into<String>) {
        let text = text.into();
        tracing::warn!("bot: {text}");
        self.shared.rec().warning(now, text);
    }

    /// Messages to send on the WebSocket, in order.
    pub(crate) fn take_outbox(&mut self) -> Vec<Outgoing> {
        std::mem::take(&mut self.outbox)
    }

    /// Why the session is over, once it is.
    pub(crate) fn finished(&self) -> Option<&str> {
        self.finished.as_deref()
    }

    /// Mark the session over (WebSocket closed and the like).
    pub(crate) fn finish(&mut self, reason: impl Into<String>) {
        self.finished.get_or_insert(reason.into());
    }

    /// The sockets to receive on.
    pub(crate) fn sockets(&self) -> (Option<Arc<UdpSocket>>, Arc<UdpSocket>) {
        (
            self.publisher.as_ref().map(|p| p.peer.socket()),
            self.subscriber.socket(),
        )
    }

    /// When [`Session::on_timeout`] should run next.
    pub(crate) fn next_deadline(&self, now: Instant) -> Instant {
        let mut t = self.subscriber.next_timeout().min(self.next_ping);
        if let Some(p) = &self.publisher {
            t = t.min(p.peer.next_timeout());
            if let Some(due) = self.pacer.next_due() {
                t = t.min(due);
            }
        }
        if let Some(d) = self.leave_deadline {
            t = t.min(d);
        }
        t.min(now + Duration::from_secs(1))
    }

    /// A command from the handle.
    pub(crate) fn on_command(&mut self, now: Instant, cmd: Command) {
        match cmd {
            Command::Send(msg) => self.outbox.push(Outgoing::Msg(msg)),
            Command::Raw(text) => self.outbox.push(Outgoing::Raw(text)),
            Command::SetMuted(source, muted) => {
                self.outbox
                    .push(Outgoing::Msg(ClientMsg::Mute { source, muted }));
                if source.is_audio() {
                    self.muted_audio = muted;
                } else {
                    if self.muted_video && !muted {
                        // A decoder needs a keyframe after the gap.
                        self.pacer.request_keyframe(None);
                    }
                    self.muted_video = muted;
                }
            }
            Command::Leave => {
                self.outbox.push(Outgoing::Msg(ClientMsg::Leave));
                self.leave_deadline.get_or_insert(now + LEAVE_TIMEOUT);
            }
        }
    }

    /// A text message from the server.
    pub(crate) fn on_server_text(&mut self, now: Instant, text: &str) {
        let msg: ServerMsg = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => {
                let head: String = text.chars().take(120).collect();
                self.warn(now, format!("unparseable server message ({e}): {head}"));
                return;
            }
        };
        self.on_server_msg(now, msg);
    }

    /// A message from the server.
    pub(crate) fn on_server_msg(&mut self, now: Instant, msg: ServerMsg) {
        match msg {
            ServerMsg::Joined { .. } => self.warn(now, "second `joined` ignored"),
            ServerMsg::ParticipantJoined { participant } => {
                self.shared.rec().participant_joined(now, participant)
            }
            ServerMsg::ParticipantLeft { participant_id } => {
                self.shared.rec().participant_left(now, &participant_id)
            }
            ServerMsg::TrackPublished { track } => self.shared.rec().track_published(now, track),
            ServerMsg::TrackUnpublished {
                track_id,
                participant_id,
            } => self
                .shared
                .rec()
                .track_unpublished(now, &track_id, &participant_id),
            ServerMsg::TrackMuted {
                track_id,
                participant_id,
                muted,
            } => self
                .shared
                .rec()
                .track_muted(now, &track_id, &participant_id, muted),
            ServerMsg::Offer { pc, sdp, tracks } => {
                if pc == PcKind::Subscriber {
                    self.on_subscriber_offer(now, &sdp, tracks);
                } else {
                    self.warn(now, "server sent an offer for the publisher connection");
                }
            }
            ServerMsg::Answer { pc, sdp, tracks } => {
                if pc == PcKind::Publisher {
                    self.on_publisher_answer(now, &sdp, tracks);
                } else {
                    self.warn(now, "server sent an answer for the subscriber connection");
                }
            }
            ServerMsg::Candidate { pc, candidate } => self.on_remote_candidate(now, pc, &candidate),
            ServerMsg::Chat {
                from,
                name,
                text,
                private,
                ts,
            } => self
                .shared
                .rec()
                .chat(now, &from, &name, &text, private, ts),
            ServerMsg::Pong { .. } => {}
            ServerMsg::Error { code, message } => {
                tracing::debug!("bot: server error {code:?}: {message}");
                self.shared.rec().server_error(now, code, &message)
            }
            ServerMsg::Left => self.finish("left"),
            ServerMsg::ServerShutdown { reason } => {
                self.shared.rec().server_shutdown(now, &reason);
            }
            ServerMsg::Control { holder } => self.shared.rec().control(now, holder),
            ServerMsg::AppStopped { reason } => self.shared.rec().app_stopped(now, &reason),
            ServerMsg::Recording { state } => self.shared.rec().recording(now, state),
            ServerMsg::CallInfo { call_id, token, .. } => {
                self.shared.rec().call_info(call_id, token)
            }
            ServerMsg::Quality {
                participant,
                source,
                report,
            } => self.shared.rec().quality(now, participant, source, &report),
            // Bots send no files nor locations; others' are not theirs to use.
            ServerMsg::FileUpload { .. }
            | ServerMsg::File { .. }
            | ServerMsg::Location { .. }
            | ServerMsg::LocationRequest { .. }
            | ServerMsg::LocationDeclined { .. }
            | ServerMsg::Pointer { .. } => {}
        }
    }

    fn on_subscriber_offer(&mut self, now: Instant, sdp: &str, tracks: Vec<SubscribedTrack>) {
        let offer = match SdpOffer::from_sdp_string(sdp) {
            Ok(o) => o,
            Err(e) => return self.warn(now, format!("subscriber offer is not valid SDP: {e}")),
        };
        let answer = self.subscriber.rtc.sdp_api().accept_offer(offer);
        let events = self.subscriber.drain();
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                self.warn(now, format!("subscriber offer not accepted: {e}"));
                return self.handle_events(now, Side::Subscriber, events);
            }
        };
        self.sub_mids = tracks
            .iter()
            .map(|t| (Mid::from(t.mid.as_str()), t.clone()))
            .collect();
        self.sub_keyframe_requested
            .retain(|mid, _| self.sub_mids.contains_key(mid));
        self.shared.rec().subscriber_offer(now, &tracks);
        self.outbox.push(Outgoing::Msg(ClientMsg::Answer {
            pc: PcKind::Subscriber,
            sdp: answer.to_sdp_string(),
        }));
        if !self.sub_answered {
            self.sub_answered = true;
            self.outbox.push(Outgoing::Msg(ClientMsg::Candidate {
                pc: PcKind::Subscriber,
                candidate: self.subscriber.candidate().to_string(),
            }));
            self.outbox.push(Outgoing::Msg(ClientMsg::Candidate {
                pc: PcKind::Subscriber,
                candidate: String::new(),
            }));
        }
        self.handle_events(now, Side::Subscriber, events);
    }

    fn on_publisher_answer(&mut self, now: Instant, sdp: &str, tracks: Vec<TrackInfo>) {
        let Some(publisher) = &mut self.publisher else {
            return self.warn(now, "publisher answer but the bot publishes nothing");
        };
        let Some(pending) = publisher.pending.take() else {
            return self.warn(now, "publisher answer without a pending offer");
        };
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(a) => a,
            Err(e) => return self.warn(now, format!("publisher answer is not valid SDP: {e}")),
        };
        let accepted = publisher.peer.rtc.sdp_api().accept_answer(pending, answer);
        let events = publisher.peer.drain();
        if let Err(e) = accepted {
            self.warn(now, format!("publisher answer not accepted: {e}"));
            return self.handle_events(now, Side::Publisher, events);
        }

        // What may we send? The answer picks the payload types and the rids.
        let find_pt = |peer: &mut Peer, mid: Option<Mid>, codec: Codec| {
            let mid = mid?;
            let writer = peer.rtc.writer(mid)?;
            let pt = writer
                .payload_params()
                .find(|p| p.spec().codec == codec)
                .map(|p| p.pt());
            pt
        };
        publisher.audio_pt = find_pt(&mut publisher.peer, publisher.audio_mid, Codec::Opus);
        publisher.video_pt = find_pt(&mut publisher.peer, publisher.video_mid, Codec::Vp8);
        let rids_tx: Option<Vec<Rid>> = publisher.video_mid.and_then(|m| {
            publisher
                .peer
                .rtc
                .media(m)
                .map(|media| match media.rids_tx() {
                    Rids::Specific(v) => v.clone(),
                    Rids::Any => LAYER_RIDS.iter().map(|r| Rid::from(*r)).collect(),
                    Rids::None => vec![],
                })
        });
        for l in &mut publisher.layers {
            l.active = publisher.video_pt.is_some()
                && match l.rid {
                    Some(rid) => rids_tx.as_ref().is_some_and(|v| v.contains(&rid)),
                    None => true,
                };
        }
        publisher.negotiated = true;
        let mut problems = vec![];
        if publisher.audio_mid.is_some() && publisher.audio_pt.is_none() {
            problems.push("the publisher answer has no Opus: audio will not be sent".to_string());
        }
        if publisher.video_mid.is_some() && publisher.video_pt.is_none() {
            problems.push("the publisher answer has no VP8: video will not be sent".to_string());
        }
        let inactive: Vec<String> = publisher
            .layers
            .iter()
            .filter(|l| !l.active)
            .map(|l| l.key.clone())
            .collect();
        if !inactive.is_empty() && publisher.video_pt.is_some() {
            problems.push(format!(
                "the publisher answer accepts no rid for {} (answer rids: {:?})",
                inactive.join(", "),
                rids_tx.unwrap_or_default()
            ));
        }
        {
            let mut rec = self.shared.rec();
            rec.published(tracks);
            if let Some(p) = &self.publisher {
                rec.set_sent_active("audio", p.audio_pt.is_some());
                for l in &p.layers {
                    rec.set_sent_active(&l.key, l.active);
                }
            }
        }
        for p in problems {
            self.warn(now, p);
        }
        self.handle_events(now, Side::Publisher, events);
    }

    fn on_remote_candidate(&mut self, now: Instant, pc: PcKind, line: &str) {
        let candidate = match parse_candidate(line) {
            None => return,
            Some(Ok(c)) => c,
            Some(Err(e)) => return self.warn(now, e.to_string()),
        };
        let side = match pc {
            PcKind::Publisher => Side::Publisher,
            PcKind::Subscriber => Side::Subscriber,
        };
        let Some(peer) = self.peer_mut(side) else {
            return;
        };
        peer.rtc.add_remote_candidate(candidate);
        let events = peer.drain();
        self.handle_events(now, side, events);
    }

    fn peer_mut(&mut self, side: Side) -> Option<&mut Peer> {
        match side {
            Side::Publisher => self.publisher.as_mut().map(|p| &mut p.peer),
            Side::Subscriber => Some(&mut self.subscriber),
        }
    }

    /// A datagram arrived on one of the sockets.
    pub(crate) fn on_udp(&mut self, now: Instant, side: Side, source: SocketAddr, data: &[u8]) {
        let Some(peer) = self.peer_mut(side) else {
            return;
        };
        let events = peer.handle_receive(now, source, data);
        self.handle_events(now, side, events);
    }

    /// Time passed: drive the peers, send due media, keep alive.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        if now >= self.subscriber.next_timeout() {
            let events = self.subscriber.handle_timeout(now);
            self.handle_events(now, Side::Subscriber, events);
        }
        if let Some(p) = &mut self.publisher {
            // Before writing media, bring str0m's clock to `now` too: it stamps and paces
            // packets with the time of its last input.
            let media_due = self.pacer.next_due().is_some_and(|d| now >= d);
            if now >= p.peer.next_timeout() || media_due {
                let events = p.peer.handle_timeout(now);
                self.handle_events(now, Side::Publisher, events);
            }
            for frame in self.pacer.poll(now) {
                self.send_frame(now, frame);
            }
        }
        if now >= self.next_ping {
            self.ping_id += 1;
            self.outbox.push(Outgoing::Msg(ClientMsg::Ping {
                id: Some(self.ping_id),
            }));
            self.next_ping = now + PING_INTERVAL;
        }
        if self.leave_deadline.is_some_and(|d| now >= d) {
            self.finish("left (no `left` from the server in time)");
        }
    }

    fn send_frame(&mut self, now: Instant, frame: PacedFrame) {
        let Some(p) = &mut self.publisher else {
            return;
        };
        if !p.negotiated || !p.connected {
            return; // str0m drops media written before the connection is up
        }
        let (mid, pt, rid, key, rtp_time, wallclock, data, keyframe) = match frame {
            PacedFrame::Audio {
                rtp_time,
                wallclock,
                data,
            } => {
                if self.muted_audio {
                    return;
                }
                let (Some(mid), Some(pt)) = (p.audio_mid, p.audio_pt) else {
                    return;
                };
                let t = MediaTime::new(rtp_time, Frequency::FORTY_EIGHT_KHZ);
                (
                    mid,
                    pt,
                    None,
                    "audio".to_string(),
                    t,
                    wallclock,
                    data,
                    false,
                )
            }
            PacedFrame::Video {
                layer,
                rtp_time,
                wallclock,
                data,
                keyframe,
            } => {
                if self.muted_video {
                    return;
                }
                let (Some(mid), Some(pt), Some(l)) = (p.video_mid, p.video_pt, p.layers.get(layer))
                else {
                    return;
                };
                if !l.active {
                    return;
                }
                let t = MediaTime::new(rtp_time, Frequency::NINETY_KHZ);
                (mid, pt, l.rid, l.key.clone(), t, wallclock, data, keyframe)
            }
        };
        let len = data.len();
        let result = match p.peer.rtc.writer(mid) {
            Some(w) => {
                let w = match rid {
                    Some(rid) => w.rid(rid),
                    None => w,
                };
                w.write(pt, wallclock, rtp_time, data)
                    .map_err(|e| e.to_string())
            }
            None => Err(format!("no writer for mid {mid}")),
        };
        let events = p.peer.drain();
        match result {
            Ok(()) => self.shared.rec().frame_sent(&key, len, keyframe),
            Err(e) => {
                self.write_errors += 1;
                if self.write_errors <= MAX_WRITE_WARNINGS {
                    self.warn(now, format!("writing {key} failed: {e}"));
                }
            }
        }
        self.handle_events(now, Side::Publisher, events);
    }

    /// React to str0m events; mutations they call for are made (and drained) afterwards.
    fn handle_events(&mut self, now: Instant, side: Side, events: Vec<Event>) {
        let mut keyframe_requests: Vec<Mid> = vec![];
        for event in events {
            match event {
                Event::Connected => {
                    let link = self.link_mut(side);
                    link.dtls_up = true;
                    link.ice_ok = true;
                    self.shared.rec().pc_connected(now, side == Side::Publisher);
                    self.link_changed(side);
                }
                Event::IceConnectionStateChange(state) => {
                    let ok = !matches!(
                        state,
                        IceConnectionState::Disconnected | IceConnectionState::New
                    );
                    self.link_mut(side).ice_ok = ok;
                    let up = self.link_mut(side).up();
                    {
                        let mut rec = self.shared.rec();
                        let pc = rec.pc_mut(side == Side::Publisher);
                        pc.ice_state = format!("{state:?}").to_ascii_lowercase();
                        pc.connected = up;
                    }
                    self.link_changed(side);
                }
                Event::KeyframeRequest(req) => self.on_keyframe_request(req.mid, req.rid),
                Event::MediaEgressStats(s) => {
                    if let Some(key) = self.sent_key(s.mid, s.rid) {
                        self.shared
                            .rec()
                            .egress(&key, s.packets, s.bytes, s.nacks, s.loss);
                    }
                }
                Event::MediaIngressStats(s) => self.shared.rec().ingress(
                    &s.mid.to_string(),
                    s.packets,
                    s.bytes,
                    s.loss,
                    s.nacks,
                    s.plis,
                ),
                Event::PeerStats(s) => {
                    let (send_errors, relay) = self
                        .peer_mut(side)
                        .map_or((0, None), |p| (p.send_errors(), p.relay_status()));
                    let mut rec = self.shared.rec();
                    let pc = rec.pc_mut(side == Side::Publisher);
                    pc.bytes_rx = s.peer_bytes_rx;
                    pc.bytes_tx = s.peer_bytes_tx;
                    pc.rtt_ms = s.rtt.map(|d| d.as_secs_f64() * 1000.0);
                    pc.udp_send_errors = send_errors;
                    if let Some(pair) = &s.selected_candidate_pair {
                        pc.selected_local = Some(pair.local.addr.to_string());
                        pc.selected_remote = Some(pair.remote.addr.to_string());
                    }
                    pc.relay = relay;
                }
                Event::MediaData(data) if side == Side::Subscriber => {
                    if let Some(mid) = self.on_media_data(now, &data) {
                        keyframe_requests.push(mid);
                    }
                }
                Event::Closed => {
                    self.warn(now, format!("{side:?} connection closed by the server"));
                }
                _ => {}
            }
        }
        if let Some(peer) = self.peer_mut(side) {
            let errors = peer.take_errors();
            for e in errors {
                self.warn(now, e);
            }
        }
        for mid in keyframe_requests {
            let requested = {
                let Some(mut w) = self.subscriber.rtc.writer(mid) else {
                    continue;
                };
                let kind = if w.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
                    KeyframeRequestKind::Pli
                } else {
                    KeyframeRequestKind::Fir
                };
                w.request_keyframe(None, kind).is_ok()
            };
            let events = self.subscriber.drain();
            if requested {
                self.shared.rec().keyframe_requested(&mid.to_string());
            }
            self.handle_events(now, Side::Subscriber, events);
        }
    }

    fn link_mut(&mut self, side: Side) -> &mut Link {
        match side {
            Side::Publisher => &mut self.pub_link,
            Side::Subscriber => &mut self.sub_link,
        }
    }

    /// The publisher may send only while ICE and DTLS are up (str0m drops earlier writes);
    /// whenever sending (re)starts, every layer restarts at a keyframe.
    fn link_changed(&mut self, side: Side) {
        if side != Side::Publisher {
            return;
        }
        let up = self.pub_link.up();
        if let Some(p) = &mut self.publisher {
            if up && !p.connected {
                self.pacer.request_keyframe(None);
            }
            p.connected = up;
        }
    }

    /// The stats key of a sent stream.
    fn sent_key(&self, mid: Mid, rid: Option<Rid>) -> Option<String> {
        let p = self.publisher.as_ref()?;
        if Some(mid) == p.audio_mid {
            return Some("audio".into());
        }
        if Some(mid) == p.video_mid {
            return p
                .layers
                .iter()
                .find(|l| l.rid == rid || (rid.is_none() && p.layers.len() == 1))
                .map(|l| l.key.clone());
        }
        None
    }

    fn on_keyframe_request(&mut self, mid: Mid, rid: Option<Rid>) {
        let Some(p) = &self.publisher else {
            return;
        };
        if Some(mid) != p.video_mid {
            return;
        }
        let layer = match rid {
            Some(rid) => p.layers.iter().position(|l| l.rid == Some(rid)),
            None if p.layers.len() == 1 => Some(0),
            None => None, // no rid on a simulcast track: restart them all
        };
        let keys: Vec<String> = match layer {
            Some(i) => vec![p.layers[i].key.clone()],
            None => p.layers.iter().map(|l| l.key.clone()).collect(),
        };
        self.pacer.request_keyframe(layer);
        let mut rec = self.shared.rec();
        for k in keys {
            rec.keyframe_request_received(&k);
        }
    }

    /// Record a received frame; returns the mid if a keyframe should be requested.
    fn on_media_data(&mut self, now: Instant, data: &MediaData) -> Option<Mid> {
        let codec = data.params.spec().codec;
        let is_video = codec.is_video();
        let keyframe = data.is_keyframe();
        let resolution = match (keyframe, data.codec_extra) {
            (true, CodecExtra::Vp8(_)) => vp8_keyframe_size(&data.data),
            _ => None,
        };
        let info = FrameInfo {
            seq_first: **data.seq_range.start(),
            seq_last: **data.seq_range.end(),
            bytes: data.data.len(),
            keyframe,
            resolution,
            contiguous: data.contiguous,
            codec: &codec_name(codec),
        };
        let verdict = self
            .shared
            .rec()
            .frame_received(now, &data.mid.to_string(), &info);
        let mapped_video = self
            .sub_mids
            .get(&data.mid)
            .map(|t| kind_of(t.kind) == MediaKind::Video)
            .unwrap_or(is_video);
        // A browser asks for a keyframe when it cannot decode: a gap, or no keyframe yet.
        let wants_keyframe = mapped_video && (!data.contiguous || verdict.mid_keyframes == 0);
        if !wants_keyframe {
            return None;
        }
        let last = self.sub_keyframe_requested.get(&data.mid);
        if last.is_some_and(|t| now.saturating_duration_since(*t) < KEYFRAME_REQUEST_INTERVAL) {
            return None;
        }
        self.sub_keyframe_requested.insert(data.mid, now);
        Some(data.mid)
    }

    /// Close both peers (RTCP BYE, DTLS close_notify; a relay's allocation is deleted),
    /// recording what went through their relays.
    pub(crate) fn close(&mut self) {
        if let Some(p) = &mut self.publisher {
            p.peer.close();
        }
        self.subscriber.close();
        let mut rec = self.shared.rec();
        if let Some(p) = &self.publisher {
            if p.peer.relay_status().is_some() {
                rec.pc_mut(true).relay = p.peer.relay_status();
            }
        }
        if self.subscriber.relay_status().is_some() {
            rec.pc_mut(false).relay = self.subscriber.relay_status();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::publisher_config;

    async fn peer() -> Peer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let now = Instant::now();
        Peer::new(
            publisher_config().build(now),
            PeerSocket::direct(socket),
            now,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn simulcast_offer_has_three_send_layers() {
        let mut p = peer().await;
        let (sdp, _pending, audio, video) = make_publisher_offer(&mut p, true, true, true).unwrap();
        println!("{sdp}");
        assert!(audio.is_some() && video.is_some());
        assert!(sdp.contains("a=simulcast:send f;h;q"), "{sdp}");
        for rid in LAYER_RIDS {
            assert!(sdp.contains(&format!("a=rid:{rid} send")), "{sdp}");
        }
        assert_eq!(sdp.matches("m=audio").count(), 1);
        assert_eq!(sdp.matches("m=video").count(), 1);
        assert_eq!(sdp.matches("a=sendonly").count(), 2, "{sdp}");
        assert!(sdp.contains("opus/48000/2"), "{sdp}");
        assert!(sdp.contains("VP8/90000"), "{sdp}");
        assert!(
            !sdp.contains("H264"),
            "only the codecs the bot has media for: {sdp}"
        );
        assert!(sdp.contains(&format!("a=mid:{}", video.unwrap())));
        assert!(
            sdp.contains("a=candidate:") && sdp.contains("127.0.0.1"),
            "{sdp}"
        );
        assert!(sdp.contains("a=fingerprint:sha-256"), "{sdp}");
        assert!(p.candidate().starts_with("candidate:"));
        parse_candidate(p.candidate()).unwrap().unwrap();
    }

    #[tokio::test]
    async fn single_stream_offer_has_no_simulcast() {
        let mut p = peer().await;
        let (sdp, _pending, audio, video) =
            make_publisher_offer(&mut p, false, true, false).unwrap();
        assert!(audio.is_none() && video.is_some());
        assert!(!sdp.contains("a=simulcast"), "{sdp}");
        assert!(!sdp.contains("a=rid:"), "{sdp}");
        assert!(!sdp.contains("m=audio"), "{sdp}");
    }

    #[test]
    fn candidates_parse_with_or_without_prefix() {
        assert!(parse_candidate("").is_none());
        assert!(parse_candidate("  ").is_none());
        let c = parse_candidate("a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host")
            .unwrap()
            .unwrap();
        assert_eq!(c.addr().port(), 5000);
        assert!(
            parse_candidate("candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host")
                .unwrap()
                .is_ok()
        );
        assert!(parse_candidate("garbage").unwrap().is_err());
    }
}
