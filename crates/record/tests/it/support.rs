//! Test media: assets made by the real ffmpeg at test time, their frames read back (IVF, Ogg,
//! H.264 Annex B), packetized into RTP as a browser would send them (str0m's packetizers; VP9
//! by hand: str0m does not export its packetizer), fed through a real `Recorder` with arrival
//! times built from one base `Instant` (no sleeping), and the output examined with ffprobe and
//! ffmpeg, plus a small EBML walk to find a file's clusters.

#![allow(dead_code)] // each test binary uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use orbita_record::{Manifest, RecCodec, Recorder, RecorderConfig, Role, TrackMeta};
use serde_json::Value;
use str0m::unversioned::{H264Packetizer, OpusPacketizer, Packetizer, Vp8Packetizer};

/// The RTP payload size the packetizers fill (what str0m uses for WebRTC).
pub const MTU: usize = 1_200;

/// A folder under Cargo's target tmp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("orbita-record-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs ffmpeg (errors only on stderr); panics if it fails.
pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What ffmpeg says when decoding a whole file (empty: decoded without a complaint).
pub fn decode_errors(file: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// ffprobe's JSON for a file.
pub fn ffprobe(file: &Path, args: &[&str]) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(file)
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe {file:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A stream as ffprobe decodes it: frames counted by decoding.
#[derive(Debug)]
pub struct Probe {
    pub codec: String,
    pub frames: u64,
    pub width: u64,
    pub height: u64,
    /// The container's duration (s).
    pub duration: f64,
}

pub fn probe(file: &Path) -> Probe {
    let v = ffprobe(
        file,
        &[
            "-count_frames",
            "-show_entries",
            "stream=codec_name,nb_read_frames,width,height:format=duration",
        ],
    );
    let stream = &v["streams"][0];
    let num = |v: &Value| v.as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
    Probe {
        codec: stream["codec_name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        frames: num(&stream["nb_read_frames"]),
        width: stream["width"].as_u64().unwrap_or(0),
        height: stream["height"].as_u64().unwrap_or(0),
        duration: v["format"]["duration"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN),
    }
}

/// The packets' presentation times (s), in file order.
pub fn packet_times(file: &Path) -> Vec<f64> {
    let v = ffprobe(file, &["-show_entries", "packet=pts_time"]);
    v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pts_time"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Decodes a file's audio to 48 kHz mono s16le samples.
pub fn pcm(file: &Path, out: &Path) -> Vec<i16> {
    ffmpeg(&[
        "-i",
        file.to_str().unwrap(),
        "-ac",
        "1",
        "-ar",
        "48000",
        "-f",
        "s16le",
        out.to_str().unwrap(),
    ]);
    std::fs::read(out)
        .unwrap()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The frequency (Hz) of a tone: rising zero crossings per second over `samples` at 48 kHz.
pub fn tone_frequency(samples: &[i16]) -> f64 {
    let rising = samples.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
    rising as f64 * 48_000.0 / samples.len() as f64
}

// ---- assets -----------------------------------------------------------------------------

/// 3 s of a 440 Hz tone in Opus (mono, 20 ms frames, as a browser's microphone), in Ogg.
pub fn opus_asset(dir: &TempDir, seconds: u32) -> Vec<Vec<u8>> {
    let file = dir.path("tone.ogg");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency=440:sample_rate=48000:duration={seconds}"),
        "-c:a",
        "libopus",
        "-b:a",
        "64k",
        "-ac",
        "1",
        "-frame_duration",
        "20",
        file.to_str().unwrap(),
    ]);
    ogg_packets(&std::fs::read(file).unwrap())
        .into_iter()
        .skip(2) // OpusHead, OpusTags
        .collect()
}

/// `testsrc2` 640x360 at 30 fps with a keyframe each second, `codec` one of `libvpx`,
/// `libvpx-vp9`, in IVF: its frames.
pub fn vpx_asset(dir: &TempDir, codec: &str, seconds: u32) -> Vec<Vec<u8>> {
    let file = dir.path(&format!("{codec}.ivf"));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=640x360:rate=30:duration={seconds}"),
        "-c:v",
        codec,
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-lag-in-frames",
        "0",
        "-g",
        "30",
        "-b:v",
        "600k",
        "-f",
        "ivf",
        file.to_str().unwrap(),
    ]);
    ivf_frames(&std::fs::read(file).unwrap())
}

/// `testsrc2` 640x360 at 30 fps in H.264 (constrained baseline, no B-frames, as WebRTC sends,
/// a keyframe each second), Annex B with access unit delimiters: its access units.
pub fn h264_asset(dir: &TempDir, seconds: u32) -> Vec<Vec<u8>> {
    let file = dir.path("video.h264");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size=640x360:rate=30:duration={seconds}"),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-profile:v",
        "baseline",
        "-pix_fmt",
        "yuv420p",
        "-bf",
        "0",
        "-g",
        "30",
        "-bsf:v",
        "h264_metadata=aud=insert",
        "-f",
        "h264",
        file.to_str().unwrap(),
    ]);
    annex_b_access_units(&std::fs::read(file).unwrap())
}

/// IVF: a 32-byte header (its length at bytes 6..8), then frames of a 12-byte header (size,
/// timestamp) and data.
pub fn ivf_frames(data: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(&data[..4], b"DKIF");
    let mut at = usize::from(u16::from_le_bytes([data[6], data[7]]));
    let mut frames = Vec::new();
    while at + 12 <= data.len() {
        let size = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        frames.push(data[at + 12..at + 12 + size].to_vec());
        at += 12 + size;
    }
    frames
}

/// Ogg: pages (`OggS`, 27 bytes of header, a segment table) whose segments make packets (a
/// segment under 255 bytes ends one).
pub fn ogg_packets(data: &[u8]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut packet = Vec::new();
    let mut at = 0;
    while at + 27 <= data.len() {
        assert_eq!(&data[at..at + 4], b"OggS");
        let segments = usize::from(data[at + 26]);
        let table = &data[at + 27..at + 27 + segments];
        let mut body = at + 27 + segments;
        for &len in table {
            packet.extend_from_slice(&data[body..body + usize::from(len)]);
            body += usize::from(len);
            if len < 255 {
                packets.push(std::mem::take(&mut packet));
            }
        }
        at = body;
    }
    packets
}

/// Annex B split into access units at each access unit delimiter (NAL type 9).
pub fn annex_b_access_units(data: &[u8]) -> Vec<Vec<u8>> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            let start = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            if data[i + 3] & 0x1F == 9 {
                starts.push(start);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    starts.push(data.len());
    starts
        .windows(2)
        .map(|w| data[w[0]..w[1]].to_vec())
        .collect()
}

// ---- RTP ---------------------------------------------------------------------------------

/// An RTP packet to hand to a tap, `at` after the base instant.
#[derive(Debug, Clone)]
pub struct Packet {
    pub at: Duration,
    pub seq: u64,
    pub rtp_ts: u32,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// Frame `i` of a stream is captured at `i * frame`, stamped `ts_base + i * ts_step`.
pub struct Cadence {
    pub frame: Duration,
    pub ts_step: u32,
    pub ts_base: u32,
    pub seq_base: u64,
}

pub const VIDEO_30FPS: Cadence = Cadence {
    frame: Duration::from_micros(33_333),
    ts_step: 3_000,
    ts_base: 0x1234_5678,
    seq_base: 10_000,
};

pub const OPUS_20MS: Cadence = Cadence {
    frame: Duration::from_millis(20),
    ts_step: 960,
    ts_base: 0x0BAD_CAFE,
    seq_base: 50_000,
};

/// Packets of frames through one of str0m's packetizers.
pub fn packetize(packetizer: &mut dyn Packetizer, frames: &[Vec<u8>], c: &Cadence) -> Vec<Packet> {
    let mut packets = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let payloads = packetizer.packetize(MTU, frame).unwrap();
        let n = payloads.len();
        for (j, payload) in payloads.into_iter().enumerate() {
            packets.push(Packet {
                at: c.frame * i as u32,
                seq: c.seq_base + packets.len() as u64,
                rtp_ts: c.ts_base.wrapping_add(c.ts_step * i as u32),
                marker: packetizer.is_marker(&payload, None, j == n - 1),
                payload,
            });
        }
    }
    packets
}

pub fn vp8_packets(frames: &[Vec<u8>]) -> Vec<Packet> {
    packetize(&mut Vp8Packetizer::default(), frames, &VIDEO_30FPS)
}

pub fn h264_packets(frames: &[Vec<u8>]) -> Vec<Packet> {
    packetize(&mut H264Packetizer::default(), frames, &VIDEO_30FPS)
}

pub fn opus_packets(frames: &[Vec<u8>]) -> Vec<Packet> {
    packetize(&mut OpusPacketizer, frames, &OPUS_20MS)
}

/// VP9 packets as Chrome sends a single-layer stream (RFC 9628, non-flexible mode): a
/// descriptor with a 15-bit picture ID, P on inter frames, B and E on a frame's first and
/// last packets, and on keyframes a scalability structure with the frame's size.
pub fn vp9_packets(frames: &[Vec<u8>], width: u16, height: u16) -> Vec<Packet> {
    let c = &VIDEO_30FPS;
    let mut packets = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        // Profile 0: frame_type is bit 2 of the first byte (0: keyframe).
        let keyframe = frame[0] & 0x04 == 0;
        let picture_id = (i as u16) & 0x7FFF;
        let mut at = 0;
        while at < frame.len() {
            let first = at == 0;
            let mut descriptor = vec![0x80, 0x80 | (picture_id >> 8) as u8, picture_id as u8];
            if !keyframe {
                descriptor[0] |= 0x40;
            }
            if first {
                descriptor[0] |= 0x08;
            }
            if keyframe && first {
                descriptor[0] |= 0x02;
                descriptor.push(0x10); // N_S = 0 (one layer), Y
                descriptor.extend_from_slice(&width.to_be_bytes());
                descriptor.extend_from_slice(&height.to_be_bytes());
            }
            let take = (MTU - descriptor.len()).min(frame.len() - at);
            let last = at + take == frame.len();
            if last {
                descriptor[0] |= 0x04;
            }
            let mut payload = descriptor;
            payload.extend_from_slice(&frame[at..at + take]);
            packets.push(Packet {
                at: c.frame * i as u32,
                seq: c.seq_base + packets.len() as u64,
                rtp_ts: c.ts_base.wrapping_add(c.ts_step * i as u32),
                marker: last,
                payload,
            });
            at += take;
        }
    }
    packets
}

// ---- recording -----------------------------------------------------------------------------

pub fn meta(participant: &str, codec: RecCodec) -> TrackMeta {
    TrackMeta {
        participant: participant.into(),
        name: format!("{participant}'s name"),
        role: Role::Participant,
        source: match codec {
            RecCodec::Opus => "microphone".into(),
            _ => "camera".into(),
        },
        codec,
    }
}

/// What a recording run gave.
pub struct Recorded {
    pub manifest: Manifest,
    /// Each track's `take_keyframe_request` after the writer finished.
    pub keyframe_requested: Vec<bool>,
}

/// Records tracks through a real `Recorder` into `dir`: their packets are handed over in
/// arrival order (`at` after one base instant taken after the start), then the recording
/// stops at `stop`. Every packet must be taken (the queue is large enough for all).
pub fn record(dir: &Path, tracks: Vec<(TrackMeta, Vec<Packet>)>, stop: Duration) -> Recorded {
    let mut config = RecorderConfig::new(dir, "rec-1", "room-abc");
    config.queue_packets = 1 << 16;
    let recorder = Recorder::start(config).unwrap();
    let base = Instant::now();
    let mut all: Vec<(usize, Packet)> = Vec::new();
    let mut taps = Vec::new();
    for (i, (meta, packets)) in tracks.into_iter().enumerate() {
        taps.push(recorder.add_track(meta, base));
        all.extend(packets.into_iter().map(|p| (i, p)));
    }
    all.sort_by_key(|(_, p)| p.at); // stable: each track's packets keep their order
    for (i, p) in all {
        let taken = taps[i].packet(base + p.at, p.seq, p.rtp_ts, p.marker, &p.payload);
        assert!(taken, "packet {} of track {i} refused", p.seq);
    }
    recorder.stop(base + stop);
    let manifest = recorder.wait().unwrap();
    let keyframe_requested = taps.iter().map(|t| t.take_keyframe_request()).collect();
    Recorded {
        manifest,
        keyframe_requested,
    }
}

// ---- EBML ------------------------------------------------------------------------------------

/// A Matroska cluster found in a file.
#[derive(Debug, Clone, Copy)]
pub struct ClusterAt {
    /// Offset of its ID.
    pub offset: usize,
    /// Its whole length, ID and size included.
    pub len: usize,
    /// Its SimpleBlocks.
    pub blocks: usize,
    /// Its timestamp plus its last block's relative timestamp (ms).
    pub last_block_ms: u64,
}

fn read_vint(data: &[u8], at: usize, strip_marker: bool) -> (u64, usize) {
    let len = data[at].leading_zeros() as usize + 1;
    let mut value = u64::from(if strip_marker {
        data[at] & (0xFF >> len)
    } else {
        data[at]
    });
    for &b in &data[at + 1..at + len] {
        value = (value << 8) | u64::from(b);
    }
    (value, len)
}

/// The clusters of a file written by the recorder (EBML header, then a Segment of unknown
/// size whose children run to the end of the file).
pub fn clusters(data: &[u8]) -> Vec<ClusterAt> {
    let (_, id_len) = read_vint(data, 0, false);
    let (size, size_len) = read_vint(data, id_len, true);
    let mut at = id_len + size_len + size as usize; // past the EBML header
    let (segment, id_len) = read_vint(data, at, false);
    assert_eq!(segment, 0x1853_8067);
    at += id_len + 8; // the unknown size
    let mut out = Vec::new();
    while at < data.len() {
        let (id, id_len) = read_vint(data, at, false);
        let (size, size_len) = read_vint(data, at + id_len, true);
        let body = at + id_len + size_len;
        if id == 0x1F43_B675 {
            let mut cluster = ClusterAt {
                offset: at,
                len: id_len + size_len + size as usize,
                blocks: 0,
                last_block_ms: 0,
            };
            let mut timestamp = 0;
            let mut child = body;
            while child < body + size as usize {
                let (cid, cid_len) = read_vint(data, child, false);
                let (csize, csize_len) = read_vint(data, child + cid_len, true);
                let cbody = child + cid_len + csize_len;
                match cid {
                    0xE7 => {
                        timestamp = data[cbody..cbody + csize as usize]
                            .iter()
                            .fold(0u64, |v, &b| (v << 8) | u64::from(b));
                    }
                    0xA3 => {
                        cluster.blocks += 1;
                        let rel = i16::from_be_bytes([data[cbody + 1], data[cbody + 2]]);
                        cluster.last_block_ms = (timestamp as i64 + i64::from(rel)) as u64;
                    }
                    _ => {}
                }
                child = cbody + csize as usize;
            }
            out.push(cluster);
        }
        at = body + size as usize;
    }
    out
}
