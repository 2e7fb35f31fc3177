//! `recording.json`: what a recording holds, written next to its track files (atomically:
//! a temporary file renamed over it) whenever a track starts or ends and when the recording
//! stops. It is all the post-processing reads besides the track files themselves, and it is
//! how a recording cut short by a crash is found again (`ended_at_ms` still `None`).

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The manifest's file name inside a recording's folder.
pub const MANIFEST_FILE: &str = "recording.json";
/// The version written in [`Manifest::version`].
pub const MANIFEST_VERSION: u32 = 1;

/// A recording: one call (room), every recorded track of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_VERSION`].
    pub version: u32,
    /// The recording's id: its folder's name.
    pub id: String,
    /// The room's code (a label: codes are reused after a call).
    pub room: String,
    /// The account that created the call (its agent), when an account did: whose recording it
    /// is in the lists (agents see their own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// When the recording started, milliseconds since the Unix epoch: the origin of every
    /// `*_ms` offset below.
    pub started_at_ms: u64,
    /// When it stopped (ms since the epoch); `None` while recording, or when the process died
    /// before it could say (the post-processing then takes the end of the longest track).
    #[serde(default)]
    pub ended_at_ms: Option<u64>,
    /// The tracks, in the order they started.
    pub tracks: Vec<TrackEntry>,
    /// Packets the writer never got because its queue was full (the disk did not keep up).
    #[serde(default)]
    pub dropped_packets: u64,
}

/// Who a participant is in the call (the signalling protocol's roles): `agent` (the right
/// channel), `customer` (the left channel, and the video of the merged file), `participant`
/// (calls without an agent: each their own track).
pub use orbita_protocol::Role;

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Opus.
    Audio,
    /// VP8, VP9 or H.264.
    Video,
}

/// The codec of a track file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecCodec {
    /// Opus, 48 kHz: WebM.
    Opus,
    /// VP8: WebM.
    Vp8,
    /// VP9: WebM.
    Vp9,
    /// H.264: Matroska (WebM has no H.264).
    H264,
}

impl RecCodec {
    /// Audio or video.
    pub fn kind(self) -> Kind {
        match self {
            RecCodec::Opus => Kind::Audio,
            _ => Kind::Video,
        }
    }

    /// The track file's extension: `webm`, or `mkv` for H.264.
    pub fn extension(self) -> &'static str {
        match self {
            RecCodec::H264 => "mkv",
            _ => "webm",
        }
    }
}

/// One recorded track: one file, from one participant's one published track (a participant
/// who leaves and comes back, or republishes, starts another).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackEntry {
    /// The file's name in the recording's folder.
    pub file: String,
    /// The participant's id in the room.
    pub participant: String,
    /// Their display name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// Audio or video.
    pub kind: Kind,
    /// What was published: `microphone`, `camera`, `screen`, ...
    pub source: String,
    /// The codec.
    pub codec: RecCodec,
    /// When the file's first frame was received, ms after [`Manifest::started_at_ms`]; the
    /// file's own timestamps start at 0 at that moment (and keep the call's pauses: a muted
    /// or camera-off stretch is a gap in the timestamps, not a cut).
    pub start_ms: u64,
    /// When the track ended, ms after the recording's start; `None` while it runs or after a
    /// crash (the file's last timestamp then tells).
    #[serde(default)]
    pub end_ms: Option<u64>,
    /// Video: the width and height of the first keyframe (0 for audio).
    #[serde(default)]
    pub width: u32,
    /// See `width`.
    #[serde(default)]
    pub height: u32,
}

impl Manifest {
    /// Reads `recording.json` from a recording's folder.
    pub fn read(dir: &Path) -> io::Result<Manifest> {
        let text = std::fs::read(dir.join(MANIFEST_FILE))?;
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes it to a recording's folder atomically (a temporary file renamed over the old one).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, dir.join(MANIFEST_FILE))
    }
}
