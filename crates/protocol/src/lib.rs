//! Orbita signalling protocol, version 1.
//!
//! Every WebSocket text message is one JSON object tagged by `"type"`. Clients send
//! [`ClientMsg`]; the server sends [`ServerMsg`]. The server, the bot and docs/protocol.md all
//! use these types, so the wire format is defined here and only here.
//!
//! Each participant has two peer connections, as LiveKit does: the *publisher* connection
//! (the client offers, the server answers; it carries what the client sends) and the
//! *subscriber* connection (the server offers, the client answers; it carries everyone else's
//! tracks). Negotiation never collides because each side only ever offers on its own one.

use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks. A `join` with another version is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// Which of a participant's two peer connections a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PcKind {
    /// The client sends media on it; the client makes the offers.
    Publisher,
    /// The server sends media on it; the server makes the offers.
    Subscriber,
}

/// What a published track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackSource {
    /// Microphone audio.
    Microphone,
    /// Camera video.
    Camera,
    /// Screen share video.
    Screen,
    /// Screen share audio (tab audio).
    ScreenAudio,
}

impl TrackSource {
    /// Whether this source is carried by an audio m-line.
    pub fn is_audio(self) -> bool {
        matches!(self, TrackSource::Microphone | TrackSource::ScreenAudio)
    }
}

/// Media kind of a track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// Audio.
    Audio,
    /// Video.
    Video,
}

/// One simulcast layer a publisher announces for a video track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The RTP stream id (`a=rid`) of the layer, e.g. `"f"`, `"h"`, `"q"`.
    pub rid: String,
    /// Encoded width in pixels, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Encoded height in pixels, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// A track the client publishes, keyed by its mid in the publisher offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishTrack {
    /// The `a=mid` of the m-line in the client's publisher offer.
    pub mid: String,
    /// What the track carries.
    pub source: TrackSource,
    /// Simulcast layers (video only; empty: a single stream).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerInfo>,
    /// Whether the track starts muted.
    #[serde(default)]
    pub muted: bool,
}

/// A track as other participants see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackInfo {
    /// Server-assigned id, unique in the room.
    pub track_id: String,
    /// The publishing participant.
    pub participant_id: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// What the track carries.
    pub source: TrackSource,
    /// Whether the publisher has muted it.
    pub muted: bool,
    /// Whether the track is sent as simulcast.
    #[serde(default)]
    pub simulcast: bool,
}

/// A participant as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantInfo {
    /// Server-assigned id, unique in the room.
    pub participant_id: String,
    /// Display name given at join.
    pub name: String,
    /// The tracks it publishes now.
    #[serde(default)]
    pub tracks: Vec<TrackInfo>,
    /// A publish-only ingest (WHIP): the session's app, or a streaming tool such as OBS. It
    /// receives nothing and never holds control. Absent means `false`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ingest: bool,
    /// Their role in the call (absent: `participant`).
    #[serde(default, skip_serializing_if = "Role::is_participant")]
    pub role: Role,
}

/// A participant's role in a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Whoever joined with the room's host key: the account holder who created the room or
    /// the session. May start and stop recording.
    Agent,
    /// Anyone else in a room that has a host (the agent's guests).
    Customer,
    /// Anyone in a room without a host.
    #[default]
    Participant,
}

impl Role {
    /// Whether it is [`Role::Participant`] (left out of JSON).
    pub fn is_participant(&self) -> bool {
        *self == Role::Participant
    }
}

/// Whether the call is being recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Not recorded.
    #[default]
    Off,
    /// Recorded: every participant is shown that it is.
    On,
}

/// What a participant may do in a call: set per role in the call (agent, customer) and per app
/// by administrators, given in `joined`, and enforced by the server (a refused action gets
/// `not_allowed`). A room without a host gives its participants the customers' switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallFeatures {
    /// Publish a camera.
    #[serde(default = "on")]
    pub camera: bool,
    /// Publish a microphone.
    #[serde(default = "on")]
    pub microphone: bool,
    /// Share a screen (and its audio).
    #[serde(default = "on")]
    pub screen: bool,
    /// Send chat messages.
    #[serde(default = "on")]
    pub chat: bool,
    /// Send files.
    #[serde(default = "on")]
    pub files: bool,
    /// Start and stop the call's recording (agents only in any case).
    #[serde(default = "on")]
    pub record: bool,
}

fn on() -> bool {
    true
}

impl Default for CallFeatures {
    fn default() -> Self {
        CallFeatures {
            camera: true,
            microphone: true,
            screen: true,
            chat: true,
            files: true,
            record: true,
        }
    }
}

impl CallFeatures {
    /// Whether everything is on (left out of `joined`).
    pub fn all_on(&self) -> bool {
        *self == CallFeatures::default()
    }

    /// Whether publishing `source` is on.
    pub fn may_publish(&self, source: TrackSource) -> bool {
        match source {
            TrackSource::Camera => self.camera,
            TrackSource::Microphone => self.microphone,
            TrackSource::Screen | TrackSource::ScreenAudio => self.screen,
        }
    }
}

/// The longest name of a file sent in chat, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// Whether `name` may be the name of a file sent in chat: 1 to [`MAX_FILE_NAME_CHARS`]
/// characters, no control characters, no `/` or `\\`, not `.` or `..`.
pub fn valid_file_name(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=MAX_FILE_NAME_CHARS).contains(&chars)
        && !name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
        && name != "."
        && name != ".."
}

/// A file sent in the call's chat, as the server stored it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedFile {
    /// Its id (32 hex digits, unguessable).
    pub id: String,
    /// Its name, as the sender's browser gave it.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its type, sniffed by the server from its first bytes (`application/octet-stream` when
    /// not known); the sender's claim is not used.
    pub mime: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// Where the call's participants download it: add `?key=` with the call's `files_key`
    /// (from `call_info`).
    pub url: String,
    /// A still of the call's video (sent as one): stored with the call, the call's last
    /// location in its EXIF GPS tags.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub screenshot: bool,
}

/// A position a participant shares (the browser's Geolocation API), as the client sends it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Latitude in degrees, -90 to 90.
    pub lat: f64,
    /// Longitude in degrees, -180 to 180.
    pub lon: f64,
    /// The radius of 95 % confidence in metres, 0 to [`MAX_ACCURACY_M`].
    pub accuracy_m: f64,
}

/// The largest `accuracy_m` a shared position may have (a country's size).
pub const MAX_ACCURACY_M: f64 = 1_000_000.0;

impl Position {
    /// Why the position cannot be one, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            return Err(format!("lat must be -90 to 90, not {}", self.lat));
        }
        if !(self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon)) {
            return Err(format!("lon must be -180 to 180, not {}", self.lon));
        }
        if !(self.accuracy_m.is_finite() && (0.0..=MAX_ACCURACY_M).contains(&self.accuracy_m)) {
            return Err(format!(
                "accuracy_m must be 0 to {MAX_ACCURACY_M}, not {}",
                self.accuracy_m
            ));
        }
        Ok(())
    }
}

/// A location shared in the call's chat, as the server tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedLocation {
    /// Latitude in degrees.
    pub lat: f64,
    /// Longitude in degrees.
    pub lon: f64,
    /// The radius of 95 % confidence in metres.
    pub accuracy_m: f64,
    /// The place on OpenStreetMap (`https://www.openstreetmap.org/?mlat=..&mlon=..`).
    pub map_url: String,
    /// The address, reverse-geocoded by the server's Nominatim-compatible service when one is
    /// configured (`geocoder_url`) and it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// A map tile around the place (256 x 256, from the server's `map_tile_url`, stored as a
    /// file of the call), when a tile server is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<MapPreview>,
}

/// A map tile showing a shared location, and where on it the place is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapPreview {
    /// The tile, a file of the call (download it as any other: `?key=`).
    pub file: SharedFile,
    /// The place's pixel on the 256 x 256 tile, from its left.
    pub x: u32,
    /// The place's pixel on the tile, from its top.
    pub y: u32,
}

/// What a pointer on someone's video does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointerAction {
    /// It moved there.
    Move,
    /// It clicked there (a ripple).
    Click,
    /// It left the video (`x`, `y` are not used).
    Leave,
}

/// Why a participant's location was not shared after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationRefusal {
    /// The person said no.
    Declined,
    /// The browser was not allowed to tell it (its permission refused).
    Denied,
    /// The browser could not find it.
    Unavailable,
}

/// The longest device label in `devices`, in characters.
pub const MAX_DEVICE_LABEL_CHARS: usize = 200;

/// Whether `label` may be a device's label in `devices`.
pub fn valid_device_label(label: &str) -> bool {
    label.chars().count() <= MAX_DEVICE_LABEL_CHARS && !label.chars().any(char::is_control)
}

/// Why a browser sends less video than it would like (`qualityLimitationReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualityLimitation {
    /// Nothing holds it back.
    None,
    /// The CPU.
    Cpu,
    /// The network.
    Bandwidth,
    /// Something else.
    Other,
}

/// A participant's connection quality over the last few seconds, as their browser measured it
/// (`stats`) or as the server saw it (`quality` with `source: server`). Every figure is
/// optional; all are checked by [`QualityReport::check`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QualityReport {
    /// What the participant sends, in kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub out_kbps: Option<f64>,
    /// What the participant receives, in kbit/s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_kbps: Option<f64>,
    /// Packets lost on the way to the participant (browser) or from them (server), in %.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f64>,
    /// Jitter of what the participant receives, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<f64>,
    /// Round-trip time to the server, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Frames a second of the camera video sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps_out: Option<f64>,
    /// Frames a second of the video received (the best of the tracks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps_in: Option<f64>,
    /// Width of the camera video sent (the largest layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height of the camera video sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Why the video sent is held back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limitation: Option<QualityLimitation>,
}

impl QualityReport {
    /// `Err` names the first figure out of its range (kbit/s up to 10,000,000, loss 0 to 100,
    /// times up to 60,000 ms, frame rates up to 1,000, sizes up to 16,384).
    pub fn check(&self) -> Result<(), String> {
        let ranges = [
            ("out_kbps", self.out_kbps, 10_000_000.0),
            ("in_kbps", self.in_kbps, 10_000_000.0),
            ("loss_pct", self.loss_pct, 100.0),
            ("jitter_ms", self.jitter_ms, 60_000.0),
            ("rtt_ms", self.rtt_ms, 60_000.0),
            ("fps_out", self.fps_out, 1_000.0),
            ("fps_in", self.fps_in, 1_000.0),
        ];
        for (name, value, max) in ranges {
            if let Some(v) = value {
                if !v.is_finite() || !(0.0..=max).contains(&v) {
                    return Err(format!("{name} must be a number from 0 to {max}"));
                }
            }
        }
        for (name, value) in [("width", self.width), ("height", self.height)] {
            if value.is_some_and(|v| v > 16_384) {
                return Err(format!("{name} must be at most 16384"));
            }
        }
        Ok(())
    }
}

/// Where a [`ServerMsg::Quality`] report comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QualitySource {
    /// The participant's browser (`stats`).
    Browser,
    /// The server's view of the participant's connections.
    Server,
}

/// Which outgoing m-line of the subscriber connection carries which track.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribedTrack {
    /// The `a=mid` in the server's subscriber offer.
    pub mid: String,
    /// The track it carries.
    pub track_id: String,
    /// Its publisher.
    pub participant_id: String,
    /// Audio or video.
    pub kind: MediaKind,
    /// What the track carries.
    pub source: TrackSource,
}

/// An ICE server the client may use (TURN relays; never a public STUN server by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceServer {
    /// `turn:` / `turns:` / `stun:` URLs.
    pub urls: Vec<String>,
    /// TURN username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The limits the server enforces, told to the client at join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest signalling message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Longest chat text, in characters.
    pub max_chat_chars: usize,
    /// Most participants in one room.
    pub max_participants: usize,
    /// The largest file that may be sent in the call's chat, in bytes (0: files are off on
    /// this server).
    #[serde(default)]
    pub max_file_bytes: u64,
}

/// Messages from a client to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// Join a room by its code. Must be the first message; only once per connection.
    Join {
        /// Protocol version; must equal [`PROTOCOL_VERSION`].
        v: u32,
        /// The room's join code.
        code: String,
        /// Display name (1..=64 characters after trimming).
        name: String,
        /// The room's host key (given to whoever created the room or the session): the
        /// participant joins as the call's agent. Absent for guests.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// The consent text the guest accepted, as the `consent_id` of `GET /api/branding`
        /// (SHA-256 of the text, hex). Required of guests while the organisation has a
        /// consent text (else `consent_required`); kept with the call's record.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consent: Option<String>,
    },
    /// An SDP offer on the publisher connection, with what each sending m-line carries.
    /// Tracks missing from `tracks` that were published before are unpublished.
    Offer {
        /// Must be [`PcKind::Publisher`].
        pc: PcKind,
        /// The SDP.
        sdp: String,
        /// The tracks this offer publishes.
        #[serde(default)]
        tracks: Vec<PublishTrack>,
    },
    /// The SDP answer to a server offer on the subscriber connection.
    Answer {
        /// Must be [`PcKind::Subscriber`].
        pc: PcKind,
        /// The SDP.
        sdp: String,
    },
    /// A trickled ICE candidate (`candidate:` line), or end of candidates when empty.
    Candidate {
        /// Which connection it belongs to.
        pc: PcKind,
        /// The candidate line, without `a=`.
        candidate: String,
    },
    /// Mute or unmute one of the client's own tracks.
    Mute {
        /// The source whose track to mute.
        source: TrackSource,
        /// Muted or not.
        muted: bool,
    },
    /// The most the client wants to receive, per video track: `"640x480"`, `"1280x720"`,
    /// `"1920x1080"`, `"3840x2160"`, any other `"WxH"`, or `"auto"` (bandwidth only).
    SetQuality {
        /// The maximum resolution.
        max: String,
        /// One track only; all video tracks when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        track_id: Option<String>,
    },
    /// A chat message to the room (or to one participant).
    Chat {
        /// The text.
        text: String,
        /// Recipient participant id; everyone when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// Keep-alive; answered with `pong`.
    Ping {
        /// Echoed back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// Leave the room; the server closes the connection after `left`.
    Leave,
    /// The names (labels) of the camera and microphone the participant uses, which browsers
    /// give once the devices are granted, for the call's record; sent again after a switch.
    /// Each at most [`MAX_DEVICE_LABEL_CHARS`] characters, no control characters.
    Devices {
        /// The camera's label; absent: none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        camera: Option<String>,
        /// The microphone's label; absent: none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        microphone: Option<String>,
    },
    /// Input for the session's app (pointer, keyboard, touch), as the app expects it. Only the
    /// participant holding control may send it; others get a `not_allowed` error.
    Input {
        /// The input event, e.g. `{"type":"pointer","x":0.5,"y":0.25,"buttons":1}`.
        event: serde_json::Value,
    },
    /// Hand control of the app to another participant (only the holder may).
    GiveControl {
        /// The participant to receive control.
        to: String,
    },
    /// Start or stop recording the call (only the agent may).
    Record {
        /// Start (`true`) or stop.
        on: bool,
    },
    /// The client's connection quality of the last seconds (every 5 s; at most one every
    /// 2 s), for the call's record and the agent's live view.
    Stats(QualityReport),
    /// Share a position in the call's chat (everyone, or `to`); the server adds the map link,
    /// the address and a map tile when it can, and tells the call `location`.
    Location {
        /// Latitude in degrees, -90 to 90.
        lat: f64,
        /// Longitude in degrees, -180 to 180.
        lon: f64,
        /// The radius of 95 % confidence in metres, 0 to [`MAX_ACCURACY_M`].
        accuracy_m: f64,
        /// Recipient participant id; everyone when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
    },
    /// A pointer on `to`'s video (`source`): where, as a fraction of the video frame's width
    /// and height from its top left (0 to 1, of the picture as sent, not as shown: before any
    /// mirroring, cropping or letterboxing). `to` sees it on their own picture. At most the
    /// display's rate (the client sends one a frame, 30 a second at most).
    Pointer {
        /// Whose video.
        to: String,
        /// Which of their videos.
        source: TrackSource,
        /// What it does.
        action: PointerAction,
        /// From the frame's left, 0 to 1.
        x: f64,
        /// From the frame's top, 0 to 1.
        y: f64,
    },
    /// The agent asks a participant to share their location (they see `location_request` and
    /// answer with `location` or `location_declined`).
    LocationRequest {
        /// The participant asked.
        to: String,
    },
    /// The answer to a `location_request` when the location is not shared.
    LocationDeclined {
        /// Who asked.
        to: String,
        /// Why.
        reason: LocationRefusal,
    },
    /// Send a file to the call's chat: the server answers `file_upload` with where to upload
    /// its bytes (resumable, tus 1.0: `PATCH`/`HEAD` that address); once all are there,
    /// everyone (or `to`) gets `file`. Refused with `too_large` over `limits.max_file_bytes`,
    /// `quota_full` when the server's storage for files is used up, `not_allowed` when files
    /// are switched off, `rate_limited` past the call's count.
    FileUpload {
        /// The file's name (see [`valid_file_name`]).
        name: String,
        /// Its size in bytes (at least 1).
        size: u64,
        /// Recipient participant id; everyone when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// A still of the call's video (a JPEG): the server writes the call's last location
        /// into its EXIF GPS tags.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        screenshot: bool,
    },
}

/// Error codes the server sends in [`ServerMsg::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not valid JSON, or not an object.
    BadJson,
    /// Valid JSON but not a known message or with wrong field types.
    BadMessage,
    /// The message is larger than the limit.
    TooLarge,
    /// The message is not allowed in the current state (e.g. offer before join).
    OutOfOrder,
    /// The protocol version is not supported.
    UnsupportedVersion,
    /// No room has that code.
    UnknownCode,
    /// The room is full.
    RoomFull,
    /// A field value is not acceptable (e.g. empty name, bad quality string).
    InvalidValue,
    /// The SDP could not be used.
    SdpError,
    /// Too many messages too fast.
    RateLimited,
    /// The server is at a limit (rooms, workers) or shutting down.
    Unavailable,
    /// The participant may not do this (e.g. app input without holding control).
    NotAllowed,
    /// Recording cannot start: every recorder slot of the server is busy (the call goes on
    /// unrecorded; ask again later).
    NoFreeRecorder,
    /// The call cannot be recorded here (recording is off on this server, or its files could
    /// not be made).
    RecordingUnavailable,
    /// The organisation asks guests to accept its consent text before joining (`join` without
    /// the `consent` of the current text); fetch `GET /api/branding` and ask again.
    ConsentRequired,
    /// The server's storage for the calls' files is used up (`file_upload`).
    QuotaFull,
}

/// Messages from the server to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Join succeeded.
    Joined {
        /// Protocol version.
        v: u32,
        /// The joiner's own id.
        participant_id: String,
        /// The room's code.
        code: String,
        /// Everyone already in the room, with their tracks.
        participants: Vec<ParticipantInfo>,
        /// ICE servers to configure (empty: host candidates only).
        ice_servers: Vec<IceServer>,
        /// Limits the server enforces.
        limits: Limits,
        /// The joiner's role.
        #[serde(default, skip_serializing_if = "Role::is_participant")]
        role: Role,
        /// Whether the call is being recorded now.
        #[serde(default)]
        recording: RecordingState,
        /// What the joiner may do in this call (left out when everything is on).
        #[serde(default, skip_serializing_if = "CallFeatures::all_on")]
        features: CallFeatures,
    },
    /// Someone joined.
    ParticipantJoined {
        /// Who.
        participant: ParticipantInfo,
    },
    /// Someone left (or was dropped).
    ParticipantLeft {
        /// Who.
        participant_id: String,
    },
    /// A track was published.
    TrackPublished {
        /// The track.
        track: TrackInfo,
    },
    /// A track was unpublished.
    TrackUnpublished {
        /// Its id.
        track_id: String,
        /// Its publisher.
        participant_id: String,
    },
    /// A track was muted or unmuted by its publisher.
    TrackMuted {
        /// Its id.
        track_id: String,
        /// Its publisher.
        participant_id: String,
        /// Muted or not.
        muted: bool,
    },
    /// An SDP offer on the subscriber connection.
    Offer {
        /// Always [`PcKind::Subscriber`].
        pc: PcKind,
        /// The SDP.
        sdp: String,
        /// Which m-line carries which track (all currently subscribed tracks).
        tracks: Vec<SubscribedTrack>,
    },
    /// The SDP answer to the client's publisher offer.
    Answer {
        /// Always [`PcKind::Publisher`].
        pc: PcKind,
        /// The SDP.
        sdp: String,
        /// The published tracks with their ids, in offer order.
        tracks: Vec<TrackInfo>,
    },
    /// A server ICE candidate (the server also lists them in its SDP).
    Candidate {
        /// Which connection.
        pc: PcKind,
        /// The candidate line.
        candidate: String,
    },
    /// A chat message.
    Chat {
        /// Sender id.
        from: String,
        /// Sender display name.
        name: String,
        /// The text.
        text: String,
        /// Whether it was sent only to the receiver.
        private: bool,
        /// Server time, milliseconds since the Unix epoch.
        ts: u64,
    },
    /// Answer to `ping`.
    Pong {
        /// The ping's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
    },
    /// A message could not be handled. The connection and the room go on.
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
    },
    /// The client left; the server closes the connection next.
    Left,
    /// The server is going away; the client should reconnect elsewhere or later.
    ServerShutdown {
        /// Why.
        reason: String,
    },
    /// Who holds control of the session's app (sent at join in app sessions, and on change).
    Control {
        /// The holder's participant id; none when nobody holds it.
        holder: Option<String>,
    },
    /// The session's app stopped.
    AppStopped {
        /// Why (exited, crashed, session ended).
        reason: String,
    },
    /// Recording started or stopped (sent to everyone in the room; `joined` carries the state
    /// at join).
    Recording {
        /// The new state.
        state: RecordingState,
    },
    /// The call's id and this participant's survey token, right after `joined`: with them the
    /// participant answers the call's survey when it ends (`/api/calls/{call_id}/survey`).
    CallInfo {
        /// The call's id (its record's).
        call_id: String,
        /// The participant's survey token (64 hex digits).
        token: String,
        /// The call's key to its files (32 hex digits): `?key=` on a file's `url`. The
        /// same for every participant of the call, unknown to anyone else.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        files_key: Option<String>,
    },
    /// Where to upload the bytes of the file asked for by `file_upload` (tus 1.0 core:
    /// `PATCH url` with `Upload-Offset` and `Content-Type: application/offset+octet-stream`;
    /// `HEAD url` tells the offset after a dropped connection).
    FileUpload {
        /// The upload's id.
        id: String,
        /// The file's name.
        name: String,
        /// Its size in bytes.
        size: u64,
        /// The upload's address on this server (a path).
        url: String,
    },
    /// A location shared in the call's chat.
    Location {
        /// Sender id.
        from: String,
        /// Sender display name.
        name: String,
        /// Where.
        location: Box<SharedLocation>,
        /// Whether it was sent only to the receiver (and the sender).
        private: bool,
        /// Server time, milliseconds since the Unix epoch.
        ts: u64,
    },
    /// Someone's pointer on this participant's video (see the client's `pointer`).
    Pointer {
        /// Whose pointer.
        from: String,
        /// On which of our videos.
        source: TrackSource,
        /// What it does.
        action: PointerAction,
        /// From the frame's left, 0 to 1.
        x: f64,
        /// From the frame's top, 0 to 1.
        y: f64,
    },
    /// The agent asks this participant to share their location.
    LocationRequest {
        /// Who asks.
        from: String,
        /// Their display name.
        name: String,
    },
    /// A participant did not share their location when asked.
    LocationDeclined {
        /// Who was asked.
        from: String,
        /// Their display name.
        name: String,
        /// Why.
        reason: LocationRefusal,
    },
    /// A file sent to the call's chat, all its bytes stored.
    File {
        /// Sender id.
        from: String,
        /// Sender display name.
        name: String,
        /// The file.
        file: Box<SharedFile>,
        /// Whether it was sent only to the receiver (and the sender).
        private: bool,
        /// Server time, milliseconds since the Unix epoch.
        ts: u64,
    },
    /// A participant's connection quality: sent to the call's agents about the others (from
    /// the browsers' `stats` and the server), and to each participant about themself (the
    /// server's view).
    Quality {
        /// Whose.
        participant: String,
        /// Measured by whom.
        source: QualitySource,
        /// The figures.
        report: QualityReport,
    },
}

impl ServerMsg {
    /// Shorthand for an error message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMsg::Error {
            code,
            message: message.into(),
        }
    }
}

/// Why a client message could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// [`ErrorCode::BadJson`] or [`ErrorCode::BadMessage`].
    pub code: ErrorCode,
    /// A human readable explanation.
    pub message: String,
}

/// Parse one client message, telling bad JSON apart from a well-formed but wrong message.
pub fn parse_client_msg(text: &str) -> Result<ClientMsg, ParseError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ParseError {
        code: ErrorCode::BadJson,
        message: format!("not valid JSON: {e}"),
    })?;
    if !value.is_object() {
        return Err(ParseError {
            code: ErrorCode::BadJson,
            message: "a message must be a JSON object".into(),
        });
    }
    serde_json::from_value(value).map_err(|e| ParseError {
        code: ErrorCode::BadMessage,
        message: format!("not a valid message: {e}"),
    })
}

/// A requested maximum receive resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxQuality {
    /// No resolution cap: bandwidth decides.
    Auto,
    /// At most this width and height.
    Limit {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

impl MaxQuality {
    /// The presets the UI offers.
    pub const PRESETS: [&'static str; 5] =
        ["640x480", "1280x720", "1920x1080", "3840x2160", "auto"];

    /// Parse `"auto"` or `"WxH"` (each 16..=7680).
    pub fn parse(s: &str) -> Option<MaxQuality> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Some(MaxQuality::Auto);
        }
        let (w, h) = s.split_once(['x', 'X'])?;
        let width: u32 = w.parse().ok()?;
        let height: u32 = h.parse().ok()?;
        let ok = |v: u32| (16..=7680).contains(&v);
        (ok(width) && ok(height)).then_some(MaxQuality::Limit { width, height })
    }

    /// Whether a layer of this size fits under the cap. Orientation-agnostic: a portrait
    /// 360x640 layer fits under 640x480's long side and short side like 640x360 does.
    pub fn allows(self, width: u32, height: u32) -> bool {
        match self {
            MaxQuality::Auto => true,
            MaxQuality::Limit {
                width: mw,
                height: mh,
            } => {
                let (long, short) = (width.max(height), width.min(height));
                long <= mw.max(mh) && short <= mw.min(mh)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_round_trips_with_its_documented_shape() {
        let text = r#"{"type":"join","v":1,"code":"4821","name":"Alice"}"#;
        let msg = parse_client_msg(text).unwrap();
        assert_eq!(
            msg,
            ClientMsg::Join {
                v: 1,
                code: "4821".into(),
                name: "Alice".into(),
                key: None,
                consent: None,
            }
        );
        assert_eq!(serde_json::to_string(&msg).unwrap(), text);
    }

    #[test]
    fn bad_json_and_bad_messages_are_told_apart() {
        assert_eq!(
            parse_client_msg("{nope").unwrap_err().code,
            ErrorCode::BadJson
        );
        assert_eq!(
            parse_client_msg("[1,2]").unwrap_err().code,
            ErrorCode::BadJson
        );
        assert_eq!(
            parse_client_msg(r#"{"type":"fly"}"#).unwrap_err().code,
            ErrorCode::BadMessage
        );
        assert_eq!(
            parse_client_msg(r#"{"type":"join","v":"one","code":1,"name":[]}"#)
                .unwrap_err()
                .code,
            ErrorCode::BadMessage
        );
    }

    #[test]
    fn server_messages_are_tagged_snake_case() {
        let msg = ServerMsg::error(ErrorCode::UnknownCode, "no room has code 0000");
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"type":"error","code":"unknown_code","message":"no room has code 0000"}"#
        );
    }

    #[test]
    fn quality_presets_parse_and_cap_layers() {
        for p in MaxQuality::PRESETS {
            assert!(MaxQuality::parse(p).is_some(), "{p}");
        }
        let vga = MaxQuality::parse("640x480").unwrap();
        assert!(vga.allows(640, 360));
        assert!(vga.allows(360, 640));
        assert!(!vga.allows(1280, 720));
        assert!(MaxQuality::Auto.allows(3840, 2160));
        assert_eq!(MaxQuality::parse("0x0"), None);
        assert_eq!(MaxQuality::parse("big"), None);
    }
}
