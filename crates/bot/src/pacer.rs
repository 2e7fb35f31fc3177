//! The publisher's media clock: which pre-encoded frame to send when, and with which RTP
//! timestamp. Sans I/O: time is an argument, so tests drive it with virtual time.
//!
//! Audio is one Opus packet every 20 ms (960 ticks of the 48 kHz RTP clock); video is one
//! VP8 frame per simulcast layer every 1/30 s (3000 ticks of the 90 kHz clock). The files
//! loop; the RTP timestamps keep counting across the loop so a receiver sees one continuous
//! stream. A keyframe request restarts one layer's file at frame 0 (a keyframe) on that
//! layer's next frame, without touching the timestamps or the other layers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::media_file::{MediaLibrary, VideoFrame};

/// RTP clock rate of Opus.
pub const AUDIO_CLOCK_HZ: u64 = 48_000;
/// RTP clock rate of video.
pub const VIDEO_CLOCK_HZ: u64 = 90_000;
/// Duration of one Opus packet.
pub const AUDIO_FRAME: Duration = Duration::from_millis(20);
/// Video frames per second.
pub const VIDEO_FPS: u64 = 30;
/// RTP ticks between two audio packets.
pub const AUDIO_TICKS_PER_FRAME: u64 = AUDIO_CLOCK_HZ / 50;
/// RTP ticks between two video frames.
pub const VIDEO_TICKS_PER_FRAME: u64 = VIDEO_CLOCK_HZ / VIDEO_FPS;

/// When the pacer is further behind than this (the task was starved), it skips to the
/// present instead of bursting every missed frame; video then restarts at a keyframe.
pub const MAX_LAG: Duration = Duration::from_millis(250);

/// One frame to hand to str0m's `Writer`.
#[derive(Debug, Clone)]
pub enum PacedFrame {
    /// An Opus packet.
    Audio {
        /// RTP time at 48 kHz (64-bit, str0m truncates on the wire).
        rtp_time: u64,
        /// When the frame was "captured": its scheduled send time.
        wallclock: Instant,
        /// The Opus packet.
        data: Arc<[u8]>,
    },
    /// A VP8 frame of one simulcast layer.
    Video {
        /// Layer index: 0 = 1280x720 ("f"), 1 = 640x360 ("h"), 2 = 320x180 ("q").
        layer: usize,
        /// RTP time at 90 kHz.
        rtp_time: u64,
        /// When the frame was "captured": its scheduled send time.
        wallclock: Instant,
        /// The VP8 frame.
        data: Arc<[u8]>,
        /// Whether it is a keyframe.
        keyframe: bool,
    },
}

impl PacedFrame {
    /// The frame's payload.
    pub fn data(&self) -> &Arc<[u8]> {
        match self {
            PacedFrame::Audio { data, .. } | PacedFrame::Video { data, .. } => data,
        }
    }
}

/// A layer's position in its looping file.
#[derive(Debug, Clone)]
struct LayerLoop {
    frames: Vec<VideoFrame>,
    /// Index of the next frame to send.
    pos: usize,
    /// A keyframe was requested: the next frame is frame 0.
    restart: bool,
}

impl LayerLoop {
    fn next_frame(&mut self) -> &VideoFrame {
        if self.restart {
            self.pos = 0;
            self.restart = false;
        }
        let i = self.pos;
        self.pos = (self.pos + 1) % self.frames.len();
        &self.frames[i]
    }
}

/// A periodic tick counter anchored at a start instant, with exact integer timing.
#[derive(Debug, Clone, Copy)]
struct Ticker {
    start: Instant,
    /// Nanoseconds per tick, as numerator / denominator (1/30 s is not a whole number).
    nanos_num: u64,
    nanos_den: u64,
    /// Index of the next tick to emit.
    next: u64,
}

impl Ticker {
    fn due_at(&self, n: u64) -> Instant {
        self.start + Duration::from_nanos(n * self.nanos_num / self.nanos_den)
    }

    fn next_due(&self) -> Instant {
        self.due_at(self.next)
    }

    /// The index of the latest tick due at `now`.
    fn latest_due(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos() as u64;
        elapsed * self.nanos_den / self.nanos_num
    }

    /// If more than [`MAX_LAG`] behind, jump to the latest due tick. Returns the ticks skipped.
    fn catch_up(&mut self, now: Instant) -> u64 {
        if now.saturating_duration_since(self.next_due()) <= MAX_LAG {
            return 0;
        }
        let latest = self.latest_due(now);
        let skipped = latest.saturating_sub(self.next);
        self.next = self.next.max(latest);
        skipped
    }
}

/// The looping Opus packets.
#[derive(Debug, Clone)]
struct AudioLoop {
    ticker: Ticker,
    packets: Vec<Arc<[u8]>>,
    pos: usize,
}

/// The looping video layers, all on one tick.
#[derive(Debug, Clone)]
struct VideoLoop {
    ticker: Ticker,
    layers: Vec<LayerLoop>,
}

/// The publisher's media clock. See the module docs.
#[derive(Debug, Clone)]
pub struct MediaPacer {
    audio: Option<AudioLoop>,
    video: Option<VideoLoop>,
    audio_rtp_base: u64,
    video_rtp_base: u64,
    skipped_audio: u64,
    skipped_video: u64,
}

impl MediaPacer {
    /// A pacer whose first frames are due at `start`. `video_layers` is how many of the
    /// library's layers to send (1 = the 720p stream only, 3 = simulcast); 0 disables video.
    /// `rtp_base` offsets both RTP clocks (browsers start at a random timestamp).
    pub fn new(
        media: &MediaLibrary,
        start: Instant,
        audio: bool,
        video_layers: usize,
        rtp_base: u32,
    ) -> MediaPacer {
        let audio = (audio && !media.opus.is_empty()).then(|| {
            let ticker = Ticker {
                start,
                nanos_num: AUDIO_FRAME.as_nanos() as u64,
                nanos_den: 1,
                next: 0,
            };
            AudioLoop {
                ticker,
                packets: media.opus.clone(),
                pos: 0,
            }
        });
        let layers: Vec<LayerLoop> = media
            .layers
            .iter()
            .take(video_layers)
            .filter(|l| !l.frames.is_empty())
            .map(|l| LayerLoop {
                frames: l.frames.clone(),
                pos: 0,
                restart: false,
            })
            .collect();
        let video = (!layers.is_empty()).then(|| {
            let ticker = Ticker {
                start,
                nanos_num: 1_000_000_000,
                nanos_den: VIDEO_FPS,
                next: 0,
            };
            VideoLoop { ticker, layers }
        });
        MediaPacer {
            audio,
            video,
            audio_rtp_base: u64::from(rtp_base),
            video_rtp_base: u64::from(rtp_base.wrapping_mul(7)),
            skipped_audio: 0,
            skipped_video: 0,
        }
    }

    /// How many video layers this pacer produces.
    pub fn video_layers(&self) -> usize {
        self.video.as_ref().map_or(0, |v| v.layers.len())
    }

    /// Whether it produces audio.
    pub fn has_audio(&self) -> bool {
        self.audio.is_some()
    }

    /// When the next frame is due; `None` when there is no media at all.
    pub fn next_due(&self) -> Option<Instant> {
        let a = self.audio.as_ref().map(|a| a.ticker.next_due());
        let v = self.video.as_ref().map(|v| v.ticker.next_due());
        match (a, v) {
            (Some(a), Some(v)) => Some(a.min(v)),
            (a, v) => a.or(v),
        }
    }

    /// Restart `layer` (or every layer when `None`) at frame 0, a keyframe, on its next frame.
    pub fn request_keyframe(&mut self, layer: Option<usize>) {
        if let Some(video) = &mut self.video {
            for (i, l) in video.layers.iter_mut().enumerate() {
                if layer.is_none_or(|want| want == i) {
                    l.restart = true;
                }
            }
        }
    }

    /// Frames skipped because the caller fell more than [`MAX_LAG`] behind: (audio, video ticks).
    pub fn skipped(&self) -> (u64, u64) {
        (self.skipped_audio, self.skipped_video)
    }

    /// Every frame due at `now`, in time order (audio and video interleaved; all layers of
    /// one video tick together, highest layer first).
    pub fn poll(&mut self, now: Instant) -> Vec<PacedFrame> {
        let mut out = Vec::new();
        if let Some(AudioLoop {
            ticker,
            packets,
            pos,
        }) = &mut self.audio
        {
            self.skipped_audio += ticker.catch_up(now);
            while ticker.next_due() <= now {
                let n = ticker.next;
                out.push(PacedFrame::Audio {
                    rtp_time: self.audio_rtp_base + n * AUDIO_TICKS_PER_FRAME,
                    wallclock: ticker.due_at(n),
                    data: packets[*pos].clone(),
                });
                *pos = (*pos + 1) % packets.len();
                ticker.next += 1;
            }
        }
        if let Some(VideoLoop { ticker, layers }) = &mut self.video {
            let skipped = ticker.catch_up(now);
            if skipped > 0 {
                // Frames were lost to the receiver: only a keyframe makes it decodable again.
                self.skipped_video += skipped;
                layers.iter_mut().for_each(|l| l.restart = true);
            }
            while ticker.next_due() <= now {
                let n = ticker.next;
                for (layer, l) in layers.iter_mut().enumerate() {
                    let frame = l.next_frame();
                    out.push(PacedFrame::Video {
                        layer,
                        rtp_time: self.video_rtp_base + n * VIDEO_TICKS_PER_FRAME,
                        wallclock: ticker.due_at(n),
                        data: frame.data.clone(),
                        keyframe: frame.keyframe,
                    });
                }
                ticker.next += 1;
            }
        }
        out.sort_by_key(|f| match f {
            PacedFrame::Audio { wallclock, .. } | PacedFrame::Video { wallclock, .. } => *wallclock,
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn library() -> MediaLibrary {
        MediaLibrary::embedded().unwrap()
    }

    fn video(frames: &[PacedFrame], want: usize) -> Vec<(u64, bool, Arc<[u8]>)> {
        frames
            .iter()
            .filter_map(|f| match f {
                PacedFrame::Video {
                    layer,
                    rtp_time,
                    keyframe,
                    data,
                    ..
                } if *layer == want => Some((*rtp_time, *keyframe, data.clone())),
                _ => None,
            })
            .collect()
    }

    fn audio(frames: &[PacedFrame]) -> Vec<(u64, Arc<[u8]>)> {
        frames
            .iter()
            .filter_map(|f| match f {
                PacedFrame::Audio { rtp_time, data, .. } => Some((*rtp_time, data.clone())),
                _ => None,
            })
            .collect()
    }

    /// Drive the pacer in 5 ms virtual steps from `from` for `dur`.
    fn run(p: &mut MediaPacer, from: Instant, dur: Duration) -> Vec<PacedFrame> {
        let mut out = vec![];
        let mut t = from;
        while t <= from + dur {
            out.extend(p.poll(t));
            t += Duration::from_millis(5);
        }
        out
    }

    #[test]
    fn timestamps_are_continuous_across_loops() {
        let media = library();
        let start = Instant::now();
        let mut p = MediaPacer::new(&media, start, true, 3, 1000);
        // 7 s: more than two loops of the 3 s video and of the ~3 s audio.
        let frames = run(&mut p, start, Duration::from_secs(7));

        let a = audio(&frames);
        assert_eq!(a.len(), 351, "7 s of 20 ms packets, both ends included");
        for (i, (ts, data)) in a.iter().enumerate() {
            assert_eq!(*ts, 1000 + i as u64 * 960);
            assert_eq!(
                data,
                &media.opus[i % media.opus.len()],
                "packet {i} loops the file"
            );
        }

        for layer in 0..3 {
            let v = video(&frames, layer);
            assert_eq!(v.len(), 211, "7 s at 30 fps, both ends included");
            let base = v[0].0;
            for (i, (ts, key, data)) in v.iter().enumerate() {
                assert_eq!(*ts, base + i as u64 * 3000, "layer {layer} frame {i}");
                assert_eq!(*key, i % 30 == 0, "layer {layer} frame {i}");
                assert_eq!(data, &media.layers[layer].frames[i % 90].data);
            }
        }
    }

    #[test]
    fn frames_are_due_on_their_schedule() {
        let media = library();
        let start = Instant::now();
        let mut p = MediaPacer::new(&media, start, true, 1, 0);
        assert_eq!(p.next_due(), Some(start));
        let first = p.poll(start);
        assert_eq!(first.len(), 2, "one audio and one video frame at t=0");
        assert_eq!(p.next_due(), Some(start + Duration::from_millis(20)));
        assert!(p.poll(start + Duration::from_millis(19)).is_empty());
        assert_eq!(p.poll(start + Duration::from_millis(20)).len(), 1);
        // Video frame 1 is due at 33.333 ms, not 33 ms.
        assert_eq!(p.next_due(), Some(start + Duration::from_nanos(33_333_333)));
        assert!(p.poll(start + Duration::from_millis(33)).is_empty());
        let f = p.poll(start + Duration::from_millis(34));
        assert!(matches!(
            f[..],
            [PacedFrame::Video {
                rtp_time: 3000,
                layer: 0,
                ..
            }]
        ));
        // Frame 30 is at exactly one second.
        let mut p = MediaPacer::new(&media, start, false, 1, 0);
        let frames = run(&mut p, start, Duration::from_millis(999));
        assert_eq!(frames.len(), 30);
        assert!(p
            .poll(start + Duration::from_secs(1) - Duration::from_nanos(1))
            .is_empty());
        assert_eq!(p.poll(start + Duration::from_secs(1)).len(), 1);
    }

    #[test]
    fn keyframe_request_restarts_only_that_layer() {
        let media = library();
        let start = Instant::now();
        let mut p = MediaPacer::new(&media, start, false, 3, 0);
        let before = run(&mut p, start, Duration::from_millis(400)); // frames 0..=12
        assert_eq!(video(&before, 1).len(), 13);

        p.request_keyframe(Some(1));
        let after = p.poll(start + Duration::from_millis(434)); // frame 13
        let h = video(&after, 1);
        let f = video(&after, 0);
        assert_eq!(h.len(), 1);
        assert!(h[0].1, "the requested layer sends a keyframe next");
        assert_eq!(h[0].2, media.layers[1].frames[0].data);
        assert_eq!(h[0].0, 13 * 3000, "timestamps keep counting");
        assert!(!f[0].1, "other layers go on with their delta frames");
        assert_eq!(f[0].2, media.layers[0].frames[13].data);

        // The restarted layer continues from frame 1; its next keyframe is 30 frames later.
        let rest = run(
            &mut p,
            start + Duration::from_millis(450),
            Duration::from_millis(1000),
        );
        let h = video(&rest, 1);
        let first_key = h.iter().position(|(_, k, _)| *k).unwrap();
        assert_eq!(first_key, 29);
        assert_eq!(h[0].2, media.layers[1].frames[1].data);

        // None restarts every layer.
        p.request_keyframe(None);
        let next = p.poll(start + Duration::from_secs(3));
        for layer in 0..3 {
            assert!(video(&next, layer)[0].1, "layer {layer}");
        }
    }

    #[test]
    fn a_stalled_caller_skips_ahead_and_restarts_video_at_a_keyframe() {
        let media = library();
        let start = Instant::now();
        let mut p = MediaPacer::new(&media, start, true, 3, 0);
        run(&mut p, start, Duration::from_millis(100));
        // Five seconds without polling.
        let frames = p.poll(start + Duration::from_millis(5100));
        let a = audio(&frames);
        let v = video(&frames, 2);
        assert!(
            a.len() <= 2 && v.len() <= 2,
            "no burst: {} audio, {} video",
            a.len(),
            v.len()
        );
        assert!(v[0].1, "video resumes with a keyframe");
        assert_eq!(v[0].0, 153 * 3000, "timestamps follow wall time");
        assert_eq!(a[0].0, 255 * 960);
        let (sa, sv) = p.skipped();
        assert!(sa > 200 && sv > 140, "skipped {sa} audio, {sv} video");
        // Back on schedule afterwards.
        assert_eq!(
            video(&p.poll(start + Duration::from_millis(5134)), 2).len(),
            1
        );
    }

    #[test]
    fn without_simulcast_only_the_top_layer_is_sent() {
        let media = library();
        let start = Instant::now();
        let mut p = MediaPacer::new(&media, start, false, 1, 0);
        assert_eq!(p.video_layers(), 1);
        assert!(!p.has_audio());
        let frames = run(&mut p, start, Duration::from_millis(100));
        assert!(frames
            .iter()
            .all(|f| matches!(f, PacedFrame::Video { layer: 0, .. })));
        assert_eq!(
            crate::media_file::vp8_keyframe_size(frames[0].data()),
            Some((1280, 720))
        );
        let none = MediaPacer::new(&media, start, false, 0, 0);
        assert_eq!(none.next_due(), None);
    }
}
