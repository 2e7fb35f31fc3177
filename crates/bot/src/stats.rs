//! What a bot saw and did, as plain data: [`BotStats`] is the snapshot tests and the CLI
//! read; [`Recorder`] is the sans-I/O accumulator the bot's task feeds (every method takes
//! `now` or plain values, never a socket or a str0m type).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use orbita_protocol::{
    ErrorCode, MediaKind, ParticipantInfo, RecordingState, SubscribedTrack, TrackInfo, TrackSource,
};
use serde::Serialize;

/// Most room events, errors, warnings and chat messages kept (oldest are dropped).
const MAX_LOG: usize = 1000;

/// A jump in RTP sequence numbers larger than this is a new stream, not packet loss.
const SEQ_RESET_GAP: u64 = 3000;

/// A snapshot of everything a bot knows. Cheap enough to take many times a second.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BotStats {
    /// The display name the bot joined with.
    pub name: String,
    /// The room code.
    pub code: String,
    /// The bot's own participant id (from `joined`).
    pub participant_id: String,
    /// Milliseconds since `Bot::join` was called.
    pub elapsed_ms: u64,
    /// Whether the bot's task is still running.
    pub running: bool,
    /// Why the task ended (left, server closed the connection, error), once it has.
    pub ended: Option<String>,
    /// The publisher peer connection.
    pub publisher: PcStatus,
    /// The subscriber peer connection.
    pub subscriber: PcStatus,
    /// The other participants in the room now, with their tracks.
    pub participants: Vec<ParticipantInfo>,
    /// Room events in arrival order.
    pub events: Vec<RoomEvent>,
    /// Every remote track the server ever offered to this bot, with what was received.
    pub tracks: Vec<TrackStats>,
    /// [`BotStats::tracks`] summed per publishing participant and kind.
    pub by_participant: BTreeMap<String, ParticipantTotals>,
    /// The bot's own tracks as the server acknowledged them (publisher answer).
    pub published: Vec<TrackInfo>,
    /// What the bot sent: audio, then one entry per video layer.
    pub sent: Vec<SentStream>,
    /// `error` messages received from the server.
    pub errors: Vec<ServerError>,
    /// Local problems (SDP not accepted, unparseable server message, ...).
    pub warnings: Vec<String>,
    /// Chat messages received.
    pub chat: Vec<ChatMessage>,
    /// The call's id and the bot's survey token (`call_info`).
    pub call: Option<(String, String)>,
    /// How many subscriber offers the server sent (1 + renegotiations).
    pub subscriber_offers: u64,
    /// Frames received on an m-line that no subscriber offer mapped to a track.
    pub unmapped_frames: u64,
}

/// State of one of the two peer connections.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PcStatus {
    /// Whether the bot has this connection (no publisher when publishing nothing).
    pub exists: bool,
    /// The local UDP address of its socket.
    pub local_addr: Option<String>,
    /// Last ICE connection state, as str0m names it.
    pub ice_state: String,
    /// ICE and DTLS are up (str0m `Event::Connected`).
    pub connected: bool,
    /// When it connected, in ms since join start.
    pub connected_ms: Option<u64>,
    /// Bytes received on it (str0m peer stats, all traffic).
    pub bytes_rx: u64,
    /// Bytes sent on it.
    pub bytes_tx: u64,
    /// Round-trip time, when str0m has measured one.
    pub rtt_ms: Option<f64>,
    /// UDP sends that failed (socket buffer full; the packet was dropped).
    pub udp_send_errors: u64,
    /// The ICE candidate the bot gave for it (`typ host`, or `typ relay` with `--relay-only`).
    pub local_candidate: Option<String>,
    /// Local address of the candidate pair str0m sends on (its peer stats): the socket's, or
    /// the relayed address.
    pub selected_local: Option<String>,
    /// Remote address of that pair (the server's media address).
    pub selected_remote: Option<String>,
    /// With `--relay-only`: the TURN relay it goes through and what went through it.
    pub relay: Option<RelayStatus>,
}

/// A peer connection's TURN relay (`--relay-only`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RelayStatus {
    /// The `turn:` URL used (from `joined.ice_servers`).
    pub url: String,
    /// The relay's address the bot talks to.
    pub server: String,
    /// The relayed address the relay allocated: the bot's only candidate, what the server
    /// sees as the bot's address.
    pub relayed_addr: String,
    /// The bot's address as the relay sees it.
    pub mapped_addr: Option<String>,
    /// Datagrams sent to peers through the relay (ChannelData).
    pub datagrams_sent: u64,
    /// Their payload bytes.
    pub bytes_sent: u64,
    /// Datagrams received from peers through the relay.
    pub datagrams_received: u64,
    /// Their payload bytes.
    pub bytes_received: u64,
    /// Datagrams for peers dropped (no channel yet and too many waiting, channel refused).
    pub dropped: u64,
    /// Datagrams from anyone but the relay, dropped unread.
    pub foreign_datagrams: u64,
    /// Refreshes of the allocation.
    pub refreshes: u64,
}

/// What was received on one remote track.
#[derive(Debug, Clone, Serialize)]
pub struct TrackStats {
    /// The server's track id.
    pub track_id: String,
    /// Its publisher.
    pub participant_id: String,
    /// The subscriber m-line (`a=mid`) that carries it (the latest one).
    pub mid: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// Microphone, camera, screen, ...
    pub source: TrackSource,
    /// Whether the latest subscriber offer still carries it.
    pub subscribed: bool,
    /// Whether its publisher has muted it (from room events).
    pub muted: bool,
    /// Codec of the last frame (`opus`, `vp8`, ...).
    pub codec: Option<String>,
    /// RTP packets that made up the frames received (from their sequence numbers).
    pub packets: u64,
    /// Payload bytes of the frames received.
    pub bytes: u64,
    /// Whole frames received (str0m `MediaData` events).
    pub frames: u64,
    /// Of which keyframes.
    pub keyframes: u64,
    /// Resolution of the last keyframe (VP8 only).
    pub last_resolution: Option<(u16, u16)>,
    /// Every resolution seen in a keyframe, in order of first appearance.
    pub resolutions: Vec<ResolutionSeen>,
    /// RTP sequence numbers missing between consecutive frames (lost or undecodable).
    pub lost_packets: u64,
    /// Frames str0m flagged as not contiguous with the previous one.
    pub discontinuities: u64,
    /// Jumps in sequence numbers too large to be loss (a new RTP stream on the m-line).
    pub stream_resets: u64,
    /// Fraction lost, from str0m's ingress statistics (receiver report view).
    pub loss_fraction: Option<f32>,
    /// RTP packets per str0m's ingress statistics (includes retransmissions, padding).
    pub rtp_packets: u64,
    /// RTP bytes per str0m's ingress statistics.
    pub rtp_bytes: u64,
    /// NACKs, PLIs and FIRs this bot sent for the track (ingress statistics).
    pub nacks_sent: u64,
    /// PLIs sent (ingress statistics).
    pub plis_sent: u64,
    /// Keyframe requests the bot itself decided to make (it could not decode).
    pub keyframe_requests: u64,
    /// When the track first appeared in a subscriber offer, ms since join start.
    pub subscribed_ms: u64,
    /// First frame received, ms since join start.
    pub first_packet_ms: Option<u64>,
    /// First keyframe received, ms since join start.
    pub first_keyframe_ms: Option<u64>,
    /// Last frame received, ms since join start.
    pub last_received_ms: Option<u64>,
    /// Milliseconds between the last frame and this snapshot: large means it stopped.
    pub age_ms: Option<u64>,
}

/// A resolution seen in a received keyframe.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ResolutionSeen {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// First keyframe with it, ms since join start.
    pub first_ms: u64,
    /// Keyframes with it.
    pub keyframes: u64,
}

/// Totals of one kind of media received from one participant.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KindTotals {
    /// Tracks of this kind received (or offered) from the participant.
    pub tracks: u64,
    /// RTP packets.
    pub packets: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Whole frames.
    pub frames: u64,
    /// Keyframes.
    pub keyframes: u64,
    /// Lost sequence numbers.
    pub lost_packets: u64,
    /// Earliest first frame, ms since join start.
    pub first_packet_ms: Option<u64>,
    /// Latest frame, ms since join start.
    pub last_received_ms: Option<u64>,
    /// Milliseconds since the latest frame of any of these tracks.
    pub age_ms: Option<u64>,
    /// Resolution of the latest keyframe of the most recently active track (video).
    pub last_resolution: Option<(u16, u16)>,
}

/// What was received from one participant.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParticipantTotals {
    /// Display name, while known.
    pub name: Option<String>,
    /// Whether the participant is in the room now.
    pub present: bool,
    /// Audio.
    pub audio: KindTotals,
    /// Video.
    pub video: KindTotals,
}

/// One stream the bot sent.
#[derive(Debug, Clone, Serialize)]
pub struct SentStream {
    /// `audio`, `video` (no simulcast) or `video/f`, `video/h`, `video/q`.
    pub key: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// The simulcast rid, if any.
    pub rid: Option<String>,
    /// Encoded size (video).
    pub width: Option<u16>,
    /// Encoded height (video).
    pub height: Option<u16>,
    /// Whether the answer let the bot send it.
    pub active: bool,
    /// Frames handed to str0m.
    pub frames: u64,
    /// Of which keyframes.
    pub keyframes: u64,
    /// Payload bytes handed to str0m.
    pub bytes: u64,
    /// Keyframe requests (PLI/FIR) received for it.
    pub keyframe_requests: u64,
    /// RTP packets sent (str0m egress statistics).
    pub rtp_packets: u64,
    /// RTP bytes sent (egress statistics).
    pub rtp_bytes: u64,
    /// NACKs received (egress statistics).
    pub nacks: u64,
    /// Loss the receiver reported (egress statistics).
    pub loss_fraction: Option<f32>,
}

/// An `error` message from the server.
#[derive(Debug, Clone, Serialize)]
pub struct ServerError {
    /// When, ms since join start.
    pub at_ms: u64,
    /// The code.
    pub code: ErrorCode,
    /// The text.
    pub message: String,
}

/// A chat message received.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    /// When it arrived, ms since join start.
    pub at_ms: u64,
    /// Sender id.
    pub from: String,
    /// Sender name.
    pub name: String,
    /// The text.
    pub text: String,
    /// Sent to this bot only.
    pub private: bool,
    /// Server timestamp (ms since the Unix epoch).
    pub ts: u64,
}

/// A room event, timestamped.
#[derive(Debug, Clone, Serialize)]
pub struct RoomEvent {
    /// When it arrived, ms since join start.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: RoomEventKind,
}

/// What happened in the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RoomEventKind {
    /// Someone joined.
    ParticipantJoined {
        /// Who.
        participant_id: String,
        /// Their name.
        name: String,
    },
    /// Someone left.
    ParticipantLeft {
        /// Who.
        participant_id: String,
    },
    /// A track was published.
    TrackPublished {
        /// The track.
        track_id: String,
        /// Its publisher.
        participant_id: String,
        /// Audio or video.
        kind: MediaKind,
        /// What it carries.
        source: TrackSource,
    },
    /// A track was unpublished.
    TrackUnpublished {
        /// The track.
        track_id: String,
        /// Its publisher.
        participant_id: String,
    },
    /// A track was muted or unmuted.
    TrackMuted {
        /// The track.
        track_id: String,
        /// Its publisher.
        participant_id: String,
        /// Muted or not.
        muted: bool,
    },
    /// Control of the session's app changed hands.
    Control {
        /// The holder, if anyone.
        holder: Option<String>,
    },
    /// The session's app stopped.
    AppStopped {
        /// Why.
        reason: String,
    },
    /// The server announced it is shutting down.
    ServerShutdown {
        /// Why.
        reason: String,
    },
    /// Recording of the call started or stopped.
    Recording {
        /// The new state.
        state: RecordingState,
    },
    /// A connection quality report (`quality`) arrived.
    Quality {
        /// Whose.
        participant_id: String,
        /// Measured by whom.
        source: orbita_protocol::QualitySource,
        /// What it sends, kbit/s (rounded).
        out_kbps: Option<u64>,
        /// What it receives, kbit/s (rounded).
        in_kbps: Option<u64>,
    },
}

impl BotStats {
    /// Who holds control of the session's app, per the last `control` message.
    pub fn control_holder(&self) -> Option<&str> {
        self.events.iter().rev().find_map(|e| match &e.kind {
            RoomEventKind::Control { holder } => Some(holder.as_deref()),
            _ => None,
        })?
    }

    /// The stats of one remote track.
    pub fn track(&self, track_id: &str) -> Option<&TrackStats> {
        self.tracks.iter().find(|t| t.track_id == track_id)
    }

    /// Every remote track published by `participant_id`.
    pub fn tracks_from<'a>(
        &'a self,
        participant_id: &'a str,
    ) -> impl Iterator<Item = &'a TrackStats> + 'a {
        self.tracks
            .iter()
            .filter(move |t| t.participant_id == participant_id)
    }

    /// Totals received from `participant_id`.
    pub fn from_participant(&self, participant_id: &str) -> Option<&ParticipantTotals> {
        self.by_participant.get(participant_id)
    }

    /// Whether whole audio frames arrived from `participant_id`.
    pub fn received_audio_from(&self, participant_id: &str) -> bool {
        self.from_participant(participant_id)
            .is_some_and(|p| p.audio.frames > 0)
    }

    /// Whether whole video frames, including a keyframe, arrived from `participant_id`.
    pub fn received_video_from(&self, participant_id: &str) -> bool {
        self.from_participant(participant_id)
            .is_some_and(|p| p.video.frames > 0 && p.video.keyframes > 0)
    }

    /// Whether both audio and video (with a keyframe) arrived from `participant_id`.
    pub fn received_av_from(&self, participant_id: &str) -> bool {
        self.received_audio_from(participant_id) && self.received_video_from(participant_id)
    }

    /// Whether any frame from `participant_id` arrived within the last `within`.
    pub fn receiving_from(&self, participant_id: &str, within: Duration) -> bool {
        let ms = within.as_millis() as u64;
        self.tracks_from(participant_id)
            .any(|t| t.age_ms.is_some_and(|age| age <= ms))
    }

    /// Whether `participant_id` is in the room (as far as this bot knows).
    pub fn has_participant(&self, participant_id: &str) -> bool {
        self.participants
            .iter()
            .any(|p| p.participant_id == participant_id)
    }

    /// Whether a room event like `kind` arrived.
    pub fn has_event(&self, kind: &RoomEventKind) -> bool {
        self.events.iter().any(|e| &e.kind == kind)
    }

    /// The server errors with this code.
    pub fn errors_with(&self, code: ErrorCode) -> impl Iterator<Item = &ServerError> + '_ {
        self.errors.iter().filter(move |e| e.code == code)
    }

    /// Whether both peer connections (that exist) are connected.
    pub fn connected(&self) -> bool {
        self.subscriber.connected && (!self.publisher.exists || self.publisher.connected)
    }

    /// Sum of frames sent over all streams.
    pub fn frames_sent(&self) -> u64 {
        self.sent.iter().map(|s| s.frames).sum()
    }

    /// One line for periodic progress output.
    pub fn progress_line(&self) -> String {
        let pc = |p: &PcStatus| match (p.exists, p.connected) {
            (false, _) => "-",
            (true, true) => "up",
            (true, false) => "..",
        };
        let sum = |f: fn(&TrackStats) -> u64| self.tracks.iter().map(f).sum::<u64>();
        let receiving = self
            .tracks
            .iter()
            .filter(|t| t.age_ms.is_some_and(|a| a < 1000))
            .count();
        let audio: u64 = self
            .sent
            .iter()
            .filter(|s| s.kind == MediaKind::Audio)
            .map(|s| s.frames)
            .sum();
        let video: u64 = self
            .sent
            .iter()
            .filter(|s| s.kind == MediaKind::Video)
            .map(|s| s.frames)
            .sum();
        format!(
            "[{:>5.1}s] pub {} sub {} | peers {} | sent a {} v {} | recv {}/{} tracks: {} pkts {} {} frames ({} key) lost {} | errors {}",
            self.elapsed_ms as f64 / 1000.0,
            pc(&self.publisher),
            pc(&self.subscriber),
            self.participants.len(),
            audio,
            video,
            receiving,
            self.tracks.len(),
            sum(|t| t.packets),
            human_bytes(sum(|t| t.bytes)),
            sum(|t| t.frames),
            sum(|t| t.keyframes),
            sum(|t| t.lost_packets),
            self.errors.len(),
        )
    }

    /// A human readable multi-line report (tables of what was sent and received).
    pub fn report(&self) -> String {
        let mut s = String::new();
        let pc = |p: &PcStatus| {
            if !p.exists {
                "none".to_string()
            } else {
                let via = match &p.relay {
                    Some(r) => format!(
                        ", via TURN relay {} as {}: {} sent, {} received",
                        r.server,
                        r.relayed_addr,
                        human_bytes(r.bytes_sent),
                        human_bytes(r.bytes_received)
                    ),
                    None => String::new(),
                };
                format!(
                    "{} (ICE {}{}{via})",
                    if p.connected {
                        "connected"
                    } else {
                        "not connected"
                    },
                    if p.ice_state.is_empty() {
                        "new"
                    } else {
                        &p.ice_state
                    },
                    p.connected_ms
                        .map(|ms| format!(", up after {ms} ms"))
                        .unwrap_or_default()
                )
            }
        };
        let _ = writeln!(
            s,
            "bot {:?} in room {} as {} after {:.1} s{}",
            self.name,
            self.code,
            self.participant_id,
            self.elapsed_ms as f64 / 1000.0,
            self.ended
                .as_ref()
                .map(|e| format!(" (ended: {e})"))
                .unwrap_or_default()
        );
        let _ = writeln!(s, "publisher:  {}", pc(&self.publisher));
        let _ = writeln!(s, "subscriber: {}", pc(&self.subscriber));
        let names: Vec<String> = self
            .participants
            .iter()
            .map(|p| format!("{} ({})", p.participant_id, p.name))
            .collect();
        let _ = writeln!(
            s,
            "others in room: {}",
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        );

        let _ = writeln!(s, "\nsent:");
        let mut rows = vec![vec![
            "stream".to_string(),
            "size".into(),
            "frames".into(),
            "keyframes".into(),
            "bytes".into(),
            "rtp pkts".into(),
            "kf reqs".into(),
            "nacks".into(),
        ]];
        for t in &self.sent {
            rows.push(vec![
                format!("{}{}", t.key, if t.active { "" } else { " (off)" }),
                match (t.width, t.height) {
                    (Some(w), Some(h)) => format!("{w}x{h}"),
                    _ => "-".into(),
                },
                t.frames.to_string(),
                if t.kind == MediaKind::Video {
                    t.keyframes.to_string()
                } else {
                    "-".into()
                },
                human_bytes(t.bytes),
                t.rtp_packets.to_string(),
                t.keyframe_requests.to_string(),
                t.nacks.to_string(),
            ]);
        }
        table(&mut s, &rows);

        let _ = writeln!(s, "\nreceived ({} tracks):", self.tracks.len());
        let mut rows = vec![vec![
            "participant".to_string(),
            "track".into(),
            "kind".into(),
            "packets".into(),
            "bytes".into(),
            "frames".into(),
            "keyframes".into(),
            "resolution".into(),
            "lost".into(),
            "loss%".into(),
            "first pkt".into(),
            "first kf".into(),
            "age".into(),
        ]];
        let ms = |v: Option<u64>| v.map(|v| format!("{v} ms")).unwrap_or_else(|| "-".into());
        for t in &self.tracks {
            let who = self
                .by_participant
                .get(&t.participant_id)
                .and_then(|p| p.name.clone())
                .map(|n| format!("{} ({n})", t.participant_id))
                .unwrap_or_else(|| t.participant_id.clone());
            rows.push(vec![
                who,
                format!(
                    "{}{}",
                    t.track_id,
                    if t.subscribed { "" } else { " (gone)" }
                ),
                format!(
                    "{}/{}{}",
                    kind_name(t.kind),
                    source_name(t.source),
                    if t.muted { " muted" } else { "" }
                ),
                t.packets.to_string(),
                human_bytes(t.bytes),
                t.frames.to_string(),
                if t.kind == MediaKind::Video {
                    t.keyframes.to_string()
                } else {
                    "-".into()
                },
                t.last_resolution
                    .map(|(w, h)| format!("{w}x{h}"))
                    .unwrap_or_else(|| "-".into()),
                t.lost_packets.to_string(),
                t.loss_fraction
                    .map(|l| format!("{:.1}", l * 100.0))
                    .unwrap_or_else(|| "-".into()),
                ms(t.first_packet_ms),
                ms(t.first_keyframe_ms),
                ms(t.age_ms),
            ]);
        }
        table(&mut s, &rows);

        if !self.chat.is_empty() {
            let _ = writeln!(s, "\nchat: {} messages", self.chat.len());
        }
        let _ = writeln!(s, "\nserver errors: {}", self.errors.len());
        for e in &self.errors {
            let _ = writeln!(s, "  {:>7} ms {:?}: {}", e.at_ms, e.code, e.message);
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "warnings: {}", self.warnings.len());
            for w in self.warnings.iter().take(20) {
                let _ = writeln!(s, "  {w}");
            }
        }
        s
    }
}

fn kind_name(k: MediaKind) -> &'static str {
    match k {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
    }
}

fn source_name(s: TrackSource) -> &'static str {
    match s {
        TrackSource::Microphone => "mic",
        TrackSource::Camera => "camera",
        TrackSource::Screen => "screen",
        TrackSource::ScreenAudio => "screen-audio",
    }
}

/// `1234567` → `1.2 MB`.
pub fn human_bytes(b: u64) -> String {
    match b {
        0..1_000 => format!("{b} B"),
        1_000..1_000_000 => format!("{:.1} kB", b as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        _ => format!("{:.2} GB", b as f64 / 1e9),
    }
}

/// Left-aligned text table.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|v| v.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::from("  ");
        for (c, v) in r.iter().enumerate() {
            let _ = write!(line, "{v:<w$}  ", w = widths[c]);
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// One received frame, as the recorder needs it.
#[derive(Debug, Clone)]
pub struct FrameInfo<'a> {
    /// First RTP sequence number of the frame (64-bit extended).
    pub seq_first: u64,
    /// Last RTP sequence number.
    pub seq_last: u64,
    /// Payload bytes.
    pub bytes: usize,
    /// Keyframe.
    pub keyframe: bool,
    /// Resolution, for a VP8 keyframe.
    pub resolution: Option<(u16, u16)>,
    /// str0m's `contiguous` flag.
    pub contiguous: bool,
    /// Codec name.
    pub codec: &'a str,
}

/// What the recorder tells the caller about a frame it recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameVerdict {
    /// The m-line maps to a track.
    pub mapped: bool,
    /// Keyframes seen on this m-line since it was (re)mapped.
    pub mid_keyframes: u64,
}

#[derive(Debug)]
struct MidState {
    track: usize,
    last_seq: Option<u64>,
    keyframes: u64,
}

#[derive(Debug)]
struct TrackRecord {
    stats: TrackStats,
    last_received: Option<Instant>,
}

/// The accumulator behind [`BotStats`]. See the module docs.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    name: String,
    code: String,
    participant_id: String,
    running: bool,
    ended: Option<String>,
    publisher: PcStatus,
    subscriber: PcStatus,
    participants: Vec<ParticipantInfo>,
    events: Vec<RoomEvent>,
    tracks: Vec<TrackRecord>,
    track_index: HashMap<String, usize>,
    mids: HashMap<String, MidState>,
    published: Vec<TrackInfo>,
    sent: Vec<SentStream>,
    errors: Vec<ServerError>,
    warnings: Vec<String>,
    chat: Vec<ChatMessage>,
    call: Option<(String, String)>,
    subscriber_offers: u64,
    unmapped_frames: u64,
    /// Every participant ever seen: id → name (so totals keep names after they leave).
    names: HashMap<String, String>,
}

fn push_capped<T>(v: &mut Vec<T>, item: T) {
    if v.len() >= MAX_LOG {
        v.remove(0);
    }
    v.push(item);
}

impl Recorder {
    /// A recorder whose clock starts at `start` (the moment `join` was called).
    pub fn new(start: Instant, name: &str, code: &str) -> Recorder {
        Recorder {
            start,
            name: name.to_string(),
            code: code.to_string(),
            participant_id: String::new(),
            running: true,
            ended: None,
            publisher: PcStatus::default(),
            subscriber: PcStatus::default(),
            participants: vec![],
            events: vec![],
            tracks: vec![],
            track_index: HashMap::new(),
            mids: HashMap::new(),
            published: vec![],
            sent: vec![],
            errors: vec![],
            warnings: vec![],
            chat: vec![],
            call: None,
            subscriber_offers: 0,
            unmapped_frames: 0,
            names: HashMap::new(),
        }
    }

    fn ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.start).as_millis() as u64
    }

    /// The server accepted the join.
    pub fn joined(&mut self, participant_id: &str, code: &str, participants: Vec<ParticipantInfo>) {
        self.participant_id = participant_id.to_string();
        self.code = code.to_string();
        for p in &participants {
            self.names.insert(p.participant_id.clone(), p.name.clone());
        }
        self.participants = participants;
    }

    /// The bot's own participant id.
    pub fn participant_id(&self) -> &str {
        &self.participant_id
    }

    /// Mutable access to one peer connection's status.
    pub fn pc_mut(&mut self, publisher: bool) -> &mut PcStatus {
        if publisher {
            &mut self.publisher
        } else {
            &mut self.subscriber
        }
    }

    /// A peer connection finished ICE + DTLS.
    pub fn pc_connected(&mut self, now: Instant, publisher: bool) {
        let ms = self.ms(now);
        let pc = self.pc_mut(publisher);
        pc.connected = true;
        pc.connected_ms.get_or_insert(ms);
    }

    /// Declare the streams the bot will send.
    pub fn set_sent_streams(&mut self, streams: Vec<SentStream>) {
        self.sent = streams;
    }

    /// Mark which sent streams the answer allowed.
    pub fn set_sent_active(&mut self, key: &str, active: bool) {
        if let Some(s) = self.sent.iter_mut().find(|s| s.key == key) {
            s.active = active;
        }
    }

    /// A frame was handed to str0m.
    pub fn frame_sent(&mut self, key: &str, bytes: usize, keyframe: bool) {
        if let Some(s) = self.sent.iter_mut().find(|s| s.key == key) {
            s.frames += 1;
            s.bytes += bytes as u64;
            s.keyframes += u64::from(keyframe);
        }
    }

    /// A keyframe request arrived for a sent stream.
    pub fn keyframe_request_received(&mut self, key: &str) {
        if let Some(s) = self.sent.iter_mut().find(|s| s.key == key) {
            s.keyframe_requests += 1;
        }
    }

    /// Egress statistics for a sent stream (cumulative values).
    pub fn egress(&mut self, key: &str, packets: u64, bytes: u64, nacks: u64, loss: Option<f32>) {
        if let Some(s) = self.sent.iter_mut().find(|s| s.key == key) {
            s.rtp_packets = packets;
            s.rtp_bytes = bytes;
            s.nacks = nacks;
            if loss.is_some() {
                s.loss_fraction = loss;
            }
        }
    }

    /// The publisher answer's tracks.
    pub fn published(&mut self, tracks: Vec<TrackInfo>) {
        self.published = tracks;
    }

    /// A subscriber offer arrived with this mid → track mapping (all subscribed tracks).
    pub fn subscriber_offer(&mut self, now: Instant, tracks: &[SubscribedTrack]) {
        self.subscriber_offers += 1;
        let ms = self.ms(now);
        for t in &mut self.tracks {
            t.stats.subscribed = false;
        }
        let mut mapped = HashMap::new();
        for st in tracks {
            let idx = match self.track_index.get(&st.track_id) {
                Some(&i) => i,
                None => {
                    let i = self.tracks.len();
                    self.tracks.push(TrackRecord {
                        stats: TrackStats {
                            track_id: st.track_id.clone(),
                            participant_id: st.participant_id.clone(),
                            mid: st.mid.clone(),
                            kind: st.kind,
                            source: st.source,
                            subscribed: true,
                            muted: false,
                            codec: None,
                            packets: 0,
                            bytes: 0,
                            frames: 0,
                            keyframes: 0,
                            last_resolution: None,
                            resolutions: vec![],
                            lost_packets: 0,
                            discontinuities: 0,
                            stream_resets: 0,
                            loss_fraction: None,
                            rtp_packets: 0,
                            rtp_bytes: 0,
                            nacks_sent: 0,
                            plis_sent: 0,
                            keyframe_requests: 0,
                            subscribed_ms: ms,
                            first_packet_ms: None,
                            first_keyframe_ms: None,
                            last_received_ms: None,
                            age_ms: None,
                        },
                        last_received: None,
                    });
                    self.track_index.insert(st.track_id.clone(), i);
                    i
                }
            };
            let rec = &mut self.tracks[idx].stats;
            rec.subscribed = true;
            rec.mid = st.mid.clone();
            mapped.insert(st.mid.clone(), idx);
        }
        // Keep sequence state where the mapping is unchanged; reset it where a mid now
        // carries another track (or none).
        self.mids
            .retain(|mid, state| mapped.get(mid) == Some(&state.track));
        for (mid, idx) in mapped {
            self.mids.entry(mid).or_insert(MidState {
                track: idx,
                last_seq: None,
                keyframes: 0,
            });
        }
    }

    /// The track a subscriber mid carries now.
    pub fn track_for_mid(&self, mid: &str) -> Option<&TrackStats> {
        self.mids.get(mid).map(|m| &self.tracks[m.track].stats)
    }

    /// A whole frame arrived on subscriber m-line `mid`.
    pub fn frame_received(&mut self, now: Instant, mid: &str, f: &FrameInfo<'_>) -> FrameVerdict {
        let ms = self.ms(now);
        let Some(state) = self.mids.get_mut(mid) else {
            self.unmapped_frames += 1;
            return FrameVerdict {
                mapped: false,
                mid_keyframes: 0,
            };
        };
        let rec = &mut self.tracks[state.track];
        let t = &mut rec.stats;
        let packets = f.seq_last.saturating_sub(f.seq_first) + 1;
        match state.last_seq {
            Some(last) if f.seq_first > last + 1 + SEQ_RESET_GAP => t.stream_resets += 1,
            Some(last) if f.seq_first > last + 1 => t.lost_packets += f.seq_first - last - 1,
            Some(last) if f.seq_last + SEQ_RESET_GAP < last => t.stream_resets += 1,
            _ => {}
        }
        state.last_seq = Some(match state.last_seq {
            Some(last) if f.seq_last + SEQ_RESET_GAP >= last => last.max(f.seq_last),
            _ => f.seq_last,
        });
        t.packets += packets;
        t.bytes += f.bytes as u64;
        t.frames += 1;
        t.discontinuities += u64::from(!f.contiguous);
        if t.codec.as_deref() != Some(f.codec) {
            t.codec = Some(f.codec.to_string());
        }
        t.first_packet_ms.get_or_insert(ms);
        t.last_received_ms = Some(ms);
        rec.last_received = Some(now);
        if f.keyframe {
            t.keyframes += 1;
            state.keyframes += 1;
            t.first_keyframe_ms.get_or_insert(ms);
            if let Some((w, h)) = f.resolution {
                t.last_resolution = Some((w, h));
                match t
                    .resolutions
                    .iter_mut()
                    .find(|r| (r.width, r.height) == (w, h))
                {
                    Some(r) => r.keyframes += 1,
                    None => t.resolutions.push(ResolutionSeen {
                        width: w,
                        height: h,
                        first_ms: ms,
                        keyframes: 1,
                    }),
                }
            }
        }
        FrameVerdict {
            mapped: true,
            mid_keyframes: state.keyframes,
        }
    }

    /// The bot asked for a keyframe on a subscriber m-line.
    pub fn keyframe_requested(&mut self, mid: &str) {
        if let Some(state) = self.mids.get(mid) {
            self.tracks[state.track].stats.keyframe_requests += 1;
        }
    }

    /// str0m ingress statistics for a subscriber m-line (cumulative values).
    #[allow(clippy::too_many_arguments)]
    pub fn ingress(
        &mut self,
        mid: &str,
        packets: u64,
        bytes: u64,
        loss: Option<f32>,
        nacks: u64,
        plis: u64,
    ) {
        if let Some(state) = self.mids.get(mid) {
            let t = &mut self.tracks[state.track].stats;
            t.rtp_packets = packets;
            t.rtp_bytes = bytes;
            t.nacks_sent = nacks;
            t.plis_sent = plis;
            if loss.is_some() {
                t.loss_fraction = loss;
            }
        }
    }

    fn event(&mut self, now: Instant, kind: RoomEventKind) {
        let at_ms = self.ms(now);
        push_capped(&mut self.events, RoomEvent { at_ms, kind });
    }

    /// `participant_joined`.
    pub fn participant_joined(&mut self, now: Instant, p: ParticipantInfo) {
        self.names.insert(p.participant_id.clone(), p.name.clone());
        self.event(
            now,
            RoomEventKind::ParticipantJoined {
                participant_id: p.participant_id.clone(),
                name: p.name.clone(),
            },
        );
        self.participants
            .retain(|o| o.participant_id != p.participant_id);
        self.participants.push(p);
    }

    /// `participant_left`.
    pub fn participant_left(&mut self, now: Instant, participant_id: &str) {
        self.event(
            now,
            RoomEventKind::ParticipantLeft {
                participant_id: participant_id.to_string(),
            },
        );
        self.participants
            .retain(|o| o.participant_id != participant_id);
    }

    /// `track_published`.
    pub fn track_published(&mut self, now: Instant, track: TrackInfo) {
        self.event(
            now,
            RoomEventKind::TrackPublished {
                track_id: track.track_id.clone(),
                participant_id: track.participant_id.clone(),
                kind: track.kind,
                source: track.source,
            },
        );
        if let Some(p) = self
            .participants
            .iter_mut()
            .find(|p| p.participant_id == track.participant_id)
        {
            p.tracks.retain(|t| t.track_id != track.track_id);
            p.tracks.push(track);
        }
    }

    /// `track_unpublished`.
    pub fn track_unpublished(&mut self, now: Instant, track_id: &str, participant_id: &str) {
        self.event(
            now,
            RoomEventKind::TrackUnpublished {
                track_id: track_id.to_string(),
                participant_id: participant_id.to_string(),
            },
        );
        for p in &mut self.participants {
            p.tracks.retain(|t| t.track_id != track_id);
        }
    }

    /// `track_muted`.
    pub fn track_muted(&mut self, now: Instant, track_id: &str, participant_id: &str, muted: bool) {
        self.event(
            now,
            RoomEventKind::TrackMuted {
                track_id: track_id.to_string(),
                participant_id: participant_id.to_string(),
                muted,
            },
        );
        for p in &mut self.participants {
            for t in p.tracks.iter_mut().filter(|t| t.track_id == track_id) {
                t.muted = muted;
            }
        }
        if let Some(&i) = self.track_index.get(track_id) {
            self.tracks[i].stats.muted = muted;
        }
    }

    /// `control`: who holds the app now.
    pub fn control(&mut self, now: Instant, holder: Option<String>) {
        self.event(now, RoomEventKind::Control { holder });
    }

    /// `call_info`.
    pub fn call_info(&mut self, call_id: String, token: String) {
        self.call = Some((call_id, token));
    }

    /// `quality`.
    pub fn quality(
        &mut self,
        now: Instant,
        participant_id: String,
        source: orbita_protocol::QualitySource,
        report: &orbita_protocol::QualityReport,
    ) {
        let kbps = |v: Option<f64>| v.map(|k| k.round() as u64);
        self.event(
            now,
            RoomEventKind::Quality {
                participant_id,
                source,
                out_kbps: kbps(report.out_kbps),
                in_kbps: kbps(report.in_kbps),
            },
        );
    }

    /// `recording`.
    pub fn recording(&mut self, now: Instant, state: RecordingState) {
        self.event(now, RoomEventKind::Recording { state });
    }

    /// `app_stopped`.
    pub fn app_stopped(&mut self, now: Instant, reason: &str) {
        self.event(
            now,
            RoomEventKind::AppStopped {
                reason: reason.to_string(),
            },
        );
    }

    /// `server_shutdown`.
    pub fn server_shutdown(&mut self, now: Instant, reason: &str) {
        self.event(
            now,
            RoomEventKind::ServerShutdown {
                reason: reason.to_string(),
            },
        );
    }

    /// An `error` message.
    pub fn server_error(&mut self, now: Instant, code: ErrorCode, message: &str) {
        let at_ms = self.ms(now);
        push_capped(
            &mut self.errors,
            ServerError {
                at_ms,
                code,
                message: message.to_string(),
            },
        );
    }

    /// A local problem worth reporting.
    pub fn warning(&mut self, now: Instant, text: impl Into<String>) {
        let text = format!("{} ms: {}", self.ms(now), text.into());
        push_capped(&mut self.warnings, text);
    }

    /// A chat message.
    pub fn chat(
        &mut self,
        now: Instant,
        from: &str,
        name: &str,
        text: &str,
        private: bool,
        ts: u64,
    ) {
        let at_ms = self.ms(now);
        push_capped(
            &mut self.chat,
            ChatMessage {
                at_ms,
                from: from.to_string(),
                name: name.to_string(),
                text: text.to_string(),
                private,
                ts,
            },
        );
    }

    /// The task stopped.
    pub fn ended(&mut self, reason: impl Into<String>) {
        self.running = false;
        self.ended.get_or_insert(reason.into());
    }

    /// Whether the task still runs.
    pub fn running(&self) -> bool {
        self.running
    }

    /// The chat messages received so far.
    pub fn chat_messages(&self) -> Vec<ChatMessage> {
        self.chat.clone()
    }

    /// A snapshot as of `now`.
    pub fn snapshot(&self, now: Instant) -> BotStats {
        let now_ms = self.ms(now);
        let tracks: Vec<TrackStats> = self
            .tracks
            .iter()
            .map(|r| {
                let mut t = r.stats.clone();
                t.age_ms = r
                    .last_received
                    .map(|at| now.saturating_duration_since(at).as_millis() as u64);
                t
            })
            .collect();

        let mut by_participant: BTreeMap<String, ParticipantTotals> = BTreeMap::new();
        for p in &self.participants {
            by_participant.entry(p.participant_id.clone()).or_default();
        }
        for t in &tracks {
            let e = by_participant.entry(t.participant_id.clone()).or_default();
            let k = match t.kind {
                MediaKind::Audio => &mut e.audio,
                MediaKind::Video => &mut e.video,
            };
            k.tracks += 1;
            k.packets += t.packets;
            k.bytes += t.bytes;
            k.frames += t.frames;
            k.keyframes += t.keyframes;
            k.lost_packets += t.lost_packets;
            k.first_packet_ms = match (k.first_packet_ms, t.first_packet_ms) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if t.last_received_ms > k.last_received_ms {
                k.last_received_ms = t.last_received_ms;
                k.age_ms = t.age_ms;
                if t.last_resolution.is_some() {
                    k.last_resolution = t.last_resolution;
                }
            }
        }
        for (id, e) in &mut by_participant {
            e.present = self.participants.iter().any(|p| &p.participant_id == id);
            e.name = self.names.get(id).cloned();
        }

        BotStats {
            name: self.name.clone(),
            code: self.code.clone(),
            participant_id: self.participant_id.clone(),
            elapsed_ms: now_ms,
            running: self.running,
            ended: self.ended.clone(),
            publisher: self.publisher.clone(),
            subscriber: self.subscriber.clone(),
            participants: self.participants.clone(),
            events: self.events.clone(),
            tracks,
            by_participant,
            published: self.published.clone(),
            sent: self.sent.clone(),
            errors: self.errors.clone(),
            warnings: self.warnings.clone(),
            chat: self.chat.clone(),
            call: self.call.clone(),
            subscriber_offers: self.subscriber_offers,
            unmapped_frames: self.unmapped_frames,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(mid: &str, track: &str, pid: &str, kind: MediaKind) -> SubscribedTrack {
        SubscribedTrack {
            mid: mid.into(),
            track_id: track.into(),
            participant_id: pid.into(),
            kind,
            source: if kind == MediaKind::Audio {
                TrackSource::Microphone
            } else {
                TrackSource::Camera
            },
        }
    }

    fn frame(seq: (u64, u64), keyframe: bool, res: Option<(u16, u16)>) -> FrameInfo<'static> {
        FrameInfo {
            seq_first: seq.0,
            seq_last: seq.1,
            bytes: 1000,
            keyframe,
            resolution: res,
            contiguous: true,
            codec: "vp8",
        }
    }

    #[test]
    fn counts_frames_packets_keyframes_and_sequence_gaps() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, "bot", "1234");
        r.joined(
            "me",
            "1234",
            vec![ParticipantInfo {
                participant_id: "p1".into(),
                name: "Alice".into(),
                tracks: vec![],
                ingest: false,
                role: orbita_protocol::Role::Participant,
            }],
        );
        r.subscriber_offer(t0, &[sub("0", "t-v", "p1", MediaKind::Video)]);

        let at = |ms| t0 + Duration::from_millis(ms);
        let v = r.frame_received(at(100), "0", &frame((10, 14), true, Some((640, 360))));
        assert_eq!(
            v,
            FrameVerdict {
                mapped: true,
                mid_keyframes: 1
            }
        );
        r.frame_received(at(133), "0", &frame((15, 15), false, None));
        // 16 and 17 are missing.
        r.frame_received(at(166), "0", &frame((18, 19), false, None));
        r.frame_received(at(200), "0", &frame((20, 22), true, Some((1280, 720))));
        assert!(
            !r.frame_received(at(210), "9", &frame((1, 1), false, None))
                .mapped
        );

        let s = r.snapshot(at(1200));
        let t = s.track("t-v").unwrap();
        assert_eq!(
            (t.packets, t.frames, t.keyframes, t.lost_packets),
            (11, 4, 2, 2)
        );
        assert_eq!(t.bytes, 4000);
        assert_eq!(t.last_resolution, Some((1280, 720)));
        assert_eq!(t.resolutions.len(), 2);
        assert_eq!(
            (t.first_packet_ms, t.first_keyframe_ms),
            (Some(100), Some(100))
        );
        assert_eq!((t.last_received_ms, t.age_ms), (Some(200), Some(1000)));
        assert_eq!(s.unmapped_frames, 1);
        assert!(s.received_video_from("p1"));
        assert!(!s.received_audio_from("p1"));
        assert!(!s.receiving_from("p1", Duration::from_millis(500)));
        assert!(s.receiving_from("p1", Duration::from_millis(1000)));
        let p1 = s.from_participant("p1").unwrap();
        assert_eq!(p1.name.as_deref(), Some("Alice"));
        assert_eq!((p1.video.frames, p1.video.tracks), (4, 1));
        assert!(s.report().contains("1280x720"));
        assert!(s.progress_line().contains("4 frames (2 key)"));
        serde_json::to_string(&s).unwrap();
    }

    #[test]
    fn renegotiation_keeps_tracks_and_resets_reused_mids() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, "bot", "1234");
        r.subscriber_offer(
            t0,
            &[
                sub("0", "a1", "p1", MediaKind::Audio),
                sub("1", "v1", "p1", MediaKind::Video),
            ],
        );
        r.frame_received(t0, "0", &frame((100, 100), false, None));
        r.frame_received(t0, "1", &frame((500, 501), true, None));
        // p1's tracks go away; mid 1 is reused for another participant's video.
        r.subscriber_offer(t0, &[sub("1", "v2", "p2", MediaKind::Video)]);
        let v = r.frame_received(t0, "1", &frame((9000, 9000), false, None));
        assert_eq!(v.mid_keyframes, 0, "a reused mid starts over");
        assert!(
            !r.frame_received(t0, "0", &frame((101, 101), false, None))
                .mapped
        );

        let s = r.snapshot(t0);
        assert_eq!(s.tracks.len(), 3);
        assert!(!s.track("a1").unwrap().subscribed);
        assert!(!s.track("v1").unwrap().subscribed);
        let v2 = s.track("v2").unwrap();
        assert!(v2.subscribed);
        assert_eq!((v2.frames, v2.lost_packets, v2.stream_resets), (1, 0, 0));
        assert_eq!(s.subscriber_offers, 2);
    }

    #[test]
    fn large_sequence_jumps_are_stream_resets_not_loss() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, "bot", "1234");
        r.subscriber_offer(t0, &[sub("0", "v", "p", MediaKind::Video)]);
        r.frame_received(t0, "0", &frame((1000, 1001), true, None));
        r.frame_received(t0, "0", &frame((50_000, 50_001), false, None));
        r.frame_received(t0, "0", &frame((50_002, 50_002), false, None));
        // Reordered (older) frame: not loss.
        r.frame_received(t0, "0", &frame((49_990, 49_990), false, None));
        r.frame_received(t0, "0", &frame((50_004, 50_004), false, None));
        let s = r.snapshot(t0);
        let t = s.track("v").unwrap();
        assert_eq!((t.stream_resets, t.lost_packets), (1, 1));
    }

    #[test]
    fn room_events_update_participants() {
        let t0 = Instant::now();
        let mut r = Recorder::new(t0, "bot", "1234");
        r.joined("me", "1234", vec![]);
        r.participant_joined(
            t0,
            ParticipantInfo {
                participant_id: "p1".into(),
                name: "Alice".into(),
                tracks: vec![],
                ingest: false,
                role: orbita_protocol::Role::Participant,
            },
        );
        let track = TrackInfo {
            track_id: "t1".into(),
            participant_id: "p1".into(),
            kind: MediaKind::Audio,
            source: TrackSource::Microphone,
            muted: false,
            simulcast: false,
        };
        r.track_published(t0, track);
        r.track_muted(t0, "t1", "p1", true);
        let s = r.snapshot(t0);
        assert!(s.has_participant("p1"));
        assert!(s.participants[0].tracks[0].muted);
        r.participant_left(t0, "p1");
        r.server_error(t0, ErrorCode::BadJson, "nope");
        r.chat(t0, "p1", "Alice", "hi", false, 1);
        let s = r.snapshot(t0);
        assert!(!s.has_participant("p1"));
        assert!(s.has_event(&RoomEventKind::ParticipantLeft {
            participant_id: "p1".into()
        }));
        assert_eq!(s.errors_with(ErrorCode::BadJson).count(), 1);
        assert_eq!(s.chat[0].text, "hi");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["events"][0]["event"], "participant_joined");
        assert_eq!(json["events"][3]["event"], "participant_left");
    }
}
