//! A room's recording while it is on: the recorder (crate `orbita-record`: a writer thread with
//! a bounded queue, so forwarding never waits for the disk) and, per recorded track, the layer
//! recorded and the tap its packets go through.
//!
//! Each published track is recorded from its best layer: the largest the publisher is sending
//! when the track's first packet after the start arrives (a track with one stream: that
//! stream). The choice follows what the publisher sends: a browser short of bandwidth or CPU
//! stops its top layer, or starts with the lower ones only and adds the top one as its estimate
//! grows. So the recording moves to the best layer flowing when the recorded one has been
//! silent for [`LAYER_INACTIVE_AFTER`], and, in the track's first [`RAMP_UP`], when a better one
//! starts. Each move ends the track's file and starts another (a new segment on the
//! recording's timeline; the mixdown plays them one after the other). A tap is made on its
//! layer's first packet, when the codec is known.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use orbita_protocol::{Role, TrackSource};
use orbita_record::{RecCodec, RecorderHandle, TrackMeta, TrackTap};
use str0m::format::Codec;

use crate::layers::LAYER_INACTIVE_AFTER;

/// How long after a track's first packet a better layer that starts is taken up.
pub(crate) const RAMP_UP: Duration = Duration::from_secs(10);

/// One recorded track: the layer recorded and, once its first packet came, its tap.
struct Recorded {
    layer: usize,
    tap: Option<TrackTap>,
    /// The recorded layer's last packet (or when it was chosen).
    last_at: Instant,
    /// The track's first packet.
    since: Instant,
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

    /// One packet of `track_id`'s `layer`. `best_layer` is the best layer the publisher is
    /// sending now: the one to record on the track's first packet, or to move to. Returns the
    /// recorded layer when the recorder wants a keyframe of it (none yet, or a frame was lost).
    #[allow(clippy::too_many_arguments)]
    pub fn packet(
        &mut self,
        track_id: &str,
        layer: usize,
        best_layer: impl Fn() -> usize,
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
                last_at: arrival,
                since: arrival,
            }),
        };
        if recorded.layer != layer {
            let silent =
                arrival.saturating_duration_since(recorded.last_at) >= LAYER_INACTIVE_AFTER;
            let young = arrival.saturating_duration_since(recorded.since) < RAMP_UP;
            // Move only onto this packet's layer (it is flowing), when it is the best one.
            if !(silent || young) || best_layer() != layer {
                return None;
            }
            if let Some(tap) = recorded.tap.take() {
                tap.end(arrival);
            }
            recorded.layer = layer;
        }
        recorded.last_at = arrival;
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

#[cfg(test)]
mod tests {
    use super::*;
    use orbita_record::{Recorder, RecorderConfig};

    fn publisher() -> Publisher {
        Publisher {
            participant: "p1".into(),
            name: "Ann".into(),
            role: Role::Customer,
            source: TrackSource::Camera,
        }
    }

    /// A VP8 payload descriptor (start of a partition) and a keyframe's first bytes, 320x180.
    fn vp8_keyframe() -> Vec<u8> {
        let mut p = vec![
            0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xb4, 0x00,
        ];
        p.resize(200, 0);
        p
    }

    /// The layers a browser sends change: the recording follows the best one flowing, a file
    /// for each stretch.
    #[test]
    fn the_recording_follows_the_layer_the_publisher_sends() {
        let dir = std::env::temp_dir().join(format!("orbita-sfu-rec-{}", std::process::id()));
        let recorder = Recorder::start(RecorderConfig::new(&dir, "r1", "1234")).unwrap();
        let mut recording = RoomRecording::new(recorder.handle());
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let payload = vp8_keyframe();
        let mut seq = [0u64; 3];
        // What the publisher sends: the best flowing layer, as the room measures it.
        let mut send = |recording: &mut RoomRecording, at: Instant, layer: usize, best: usize| {
            seq[layer] += 1;
            recording.packet(
                "t1",
                layer,
                || best,
                Codec::Vp8,
                publisher,
                at,
                seq[layer],
                (seq[layer] * 3000) as u32,
                true,
                &payload,
            );
        };
        // At first only the low layer flows; the top one starts a second later (ramp-up):
        // the recording moves up.
        for n in 0..10 {
            send(&mut recording, ms(n * 100), 0, 0);
        }
        for n in 10..300 {
            send(&mut recording, ms(n * 100), 0, 2);
            send(&mut recording, ms(n * 100), 2, 2);
        }
        // Long after the start the top layer stops (the browser is short of CPU) and the
        // middle one flows: once the room takes the top one as stopped (1.5 s), the recording
        // takes the middle one.
        for n in 300..340 {
            let best = if n < 315 { 2 } else { 1 };
            send(&mut recording, ms(n * 100), 0, best);
            send(&mut recording, ms(n * 100), 1, best);
        }
        // A better layer coming back long after the start does not split the file again.
        for n in 340..350 {
            send(&mut recording, ms(n * 100), 2, 2);
            send(&mut recording, ms(n * 100), 1, 2);
        }
        recording.stop(ms(35_000));
        let manifest = recorder.finished().unwrap();
        let starts: Vec<u64> = manifest.tracks.iter().map(|t| t.start_ms).collect();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(manifest.tracks.len(), 3, "{:#?}", manifest.tracks);
        // Low from 0, top from 1 s, middle from 31.5 s (1.5 s after the top layer's last packet
        // at 29.9 s).
        assert_eq!(starts[0], 0);
        assert!((900..=1100).contains(&starts[1]), "{starts:?}");
        assert!((31_000..=32_000).contains(&starts[2]), "{starts:?}");
    }
}
