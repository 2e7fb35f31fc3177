//! A room's recording while it is on: the recorder (crate `orbita-record`: a writer thread with
//! a bounded queue, so forwarding never waits for the disk) and, per recorded track, the layer
//! recorded and the tap its packets go through.
//!
//! Each published track is recorded from its best layer (the largest the publisher sends when
//! the track's first packet after the start arrives; a track with one stream: that stream). Its
//! tap is made on that layer's first packet, when the codec is known.

use std::collections::HashMap;
use std::time::Instant;

use orbita_protocol::{Role, TrackSource};
use orbita_record::{RecCodec, RecorderHandle, TrackMeta, TrackTap};
use str0m::format::Codec;

/// One recorded track: the layer recorded and, once its first packet came, its tap.
struct Recorded {
    layer: usize,
    tap: Option<TrackTap>,
}

/// Who published a track, for the recording's manifest.
pub(crate) struct Publisher {
    pub participant: String,
    pub name: String,
    pub role: Role,
    pub source: TrackSource,
}

/// The recording of one room.
pub(crate) struct RoomRecording {
    recorder: RecorderHandle,
    tracks: HashMap<String, Recorded>,
}

/// The recorder's codec for a str0m codec (`None`: not recordable).
fn rec_codec(codec: Codec) -> Option<RecCodec> {
    match codec {
        Codec::Opus => Some(RecCodec::Opus),
        Codec::Vp8 => Some(RecCodec::Vp8),
        Codec::Vp9 => Some(RecCodec::Vp9),
        Codec::H264 => Some(RecCodec::H264),
        _ => None,
    }
}

/// A track source as the manifest writes it (`microphone`, `camera`, `screen`, ...).
fn source_name(source: TrackSource) -> String {
    serde_json::to_value(source)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

impl RoomRecording {
    pub fn new(recorder: RecorderHandle) -> RoomRecording {
        RoomRecording {
            recorder,
            tracks: HashMap::new(),
        }
    }

    /// One packet of `track_id`'s `layer`. `best_layer` picks the layer to record on the
    /// track's first packet. Returns the recorded layer when the recorder wants a keyframe of
    /// it (none yet, or a frame was lost).
    #[allow(clippy::too_many_arguments)]
    pub fn packet(
        &mut self,
        track_id: &str,
        layer: usize,
        best_layer: impl FnOnce() -> usize,
        codec: Codec,
        publisher: impl FnOnce() -> Publisher,
        arrival: Instant,
        seq: u64,
        rtp_ts: u32,
        marker: bool,
        payload: &[u8],
    ) -> Option<usize> {
        let recorded = match self.tracks.get_mut(track_id) {
            Some(r) => r,
            None => self.tracks.entry(track_id.to_string()).or_insert(Recorded {
                layer: best_layer(),
                tap: None,
            }),
        };
        if recorded.layer != layer {
            return None;
        }
        if recorded.tap.is_none() {
            let codec = rec_codec(codec)?;
            let who = publisher();
            recorded.tap = Some(self.recorder.add_track(
                TrackMeta {
                    participant: who.participant,
                    name: who.name,
                    role: who.role,
                    source: source_name(who.source),
                    codec,
                },
                arrival,
            ));
        }
        let tap = recorded.tap.as_ref()?;
        tap.packet(arrival, seq, rtp_ts, marker, payload);
        tap.take_keyframe_request().then_some(recorded.layer)
    }

    /// The track ended (unpublished, its publisher left).
    pub fn end_track(&mut self, track_id: &str, now: Instant) {
        if let Some(Recorded { tap: Some(tap), .. }) = self.tracks.remove(track_id) {
            tap.end(now);
        }
    }

    /// Stop: every track ends and the recorder finishes its files (on its own thread).
    pub fn stop(self, now: Instant) {
        for (_, recorded) in self.tracks {
            if let Some(tap) = recorded.tap {
                tap.end(now);
            }
        }
        self.recorder.stop(now);
    }
}
