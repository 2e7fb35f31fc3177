//! Test inputs made with ffmpeg at test time, and measures of the outputs with ffmpeg.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use orbita_mixdown::RunSettings;
use orbita_record::manifest::MANIFEST_VERSION;
use orbita_record::{Kind, Manifest, RecCodec, Role, TrackEntry};

/// A folder under the system's temporary folder, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "orbita-mixdown-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A sub-folder (a recording's).
    pub fn sub(&self, name: &str) -> PathBuf {
        let dir = self.0.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs ffmpeg; panics with its stderr when it fails. Returns stdout.
pub fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// An Opus WebM of a sine at `hz`, `secs` long (as the recorder writes a microphone).
pub fn sine(path: &Path, hz: u32, secs: f64) {
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("sine=frequency={hz}:duration={secs}"),
        "-c:a",
        "libopus",
        "-f",
        "webm",
        s(path),
    ]);
}

/// A VP8 WebM of `testsrc2`, `width`x`height` at 25 fps, `secs` long (a camera).
pub fn camera(path: &Path, width: u32, height: u32, secs: f64) {
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc2=size={width}x{height}:rate=25:duration={secs}"),
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "400k",
        "-f",
        "webm",
        s(path),
    ]);
}

/// A manifest entry.
pub fn track(file: &str, who: &str, role: Role, kind: Kind, start_ms: u64) -> TrackEntry {
    TrackEntry {
        file: file.into(),
        participant: who.into(),
        name: who.into(),
        role,
        kind,
        source: if kind == Kind::Audio {
            "microphone"
        } else {
            "camera"
        }
        .into(),
        codec: if kind == Kind::Audio {
            RecCodec::Opus
        } else {
            RecCodec::Vp8
        },
        start_ms,
        end_ms: None,
        width: 0,
        height: 0,
    }
}

/// Writes `recording.json`: a call of `ended_ms` (`None`: cut short by a crash).
pub fn manifest(dir: &Path, tracks: Vec<TrackEntry>, ended_ms: Option<u64>) {
    let started = 1_700_000_000_000;
    Manifest {
        version: MANIFEST_VERSION,
        id: dir.file_name().unwrap().to_string_lossy().into_owned(),
        room: "ab12".into(),
        owner: None,
        started_at_ms: started,
        ended_at_ms: ended_ms.map(|ms| started + ms),
        tracks,
        dropped_packets: 0,
    }
    .write(dir)
    .unwrap();
}

/// Production settings, but libx264's fastest preset.
pub fn settings() -> RunSettings {
    let mut settings = RunSettings::default();
    settings.plan.x264_preset = "ultrafast".into();
    settings
}

/// One channel (0 left, 1 right) of an audio file, decoded to 48 kHz s16.
pub fn channel(path: &Path, channel: u32) -> Vec<i16> {
    let bytes = ffmpeg(&[
        "-i",
        s(path),
        "-af",
        &format!("pan=mono|c0=c{channel}"),
        "-ar",
        "48000",
        "-f",
        "s16le",
        "-",
    ]);
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// The samples from `from` to `to` seconds.
pub fn window(samples: &[i16], from: f64, to: f64) -> &[i16] {
    let at = |t: f64| ((t * 48_000.0) as usize).min(samples.len());
    &samples[at(from)..at(to)]
}

/// The power at `hz` (Goertzel), dB relative to a full-scale sine.
pub fn tone_db(samples: &[i16], hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / 48_000.0;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / 32768.0 + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let n = samples.len().max(1) as f64;
    // A full-scale sine at hz gives (n/2)^2.
    let power = (s1 * s1 + s2 * s2 - c * s1 * s2) / (n * n / 4.0);
    10.0 * (power + 1e-12).log10()
}

/// The RMS level, dB relative to full scale.
pub fn rms_db(samples: &[i16]) -> f64 {
    let n = samples.len().max(1) as f64;
    let sum: f64 = samples
        .iter()
        .map(|&x| (f64::from(x) / 32768.0).powi(2))
        .sum();
    10.0 * (sum / n + 1e-12).log10()
}

/// What ffprobe says of an output.
#[derive(Debug, Default)]
pub struct Info {
    pub duration_s: f64,
    /// (codec, width, height) of each video stream.
    pub video: Vec<(String, u32, u32)>,
    /// (codec, channels) of each audio stream.
    pub audio: Vec<(String, u32)>,
}

pub fn info(path: &Path) -> Info {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration:stream=codec_type,codec_name,width,height,channels",
            "-of",
            "json",
            s(path),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe {}", path.display());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut info = Info {
        duration_s: json["format"]["duration"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
        ..Info::default()
    };
    for stream in json["streams"].as_array().unwrap() {
        let codec = stream["codec_name"].as_str().unwrap_or("").to_string();
        let n = |key: &str| stream[key].as_u64().unwrap_or(0) as u32;
        match stream["codec_type"].as_str() {
            Some("video") => info.video.push((codec, n("width"), n("height"))),
            Some("audio") => info.audio.push((codec, n("channels"))),
            _ => {}
        }
    }
    info
}

/// Video frames in a file (packets of its first video stream: one frame each in MP4).
pub fn frames(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
            s(path),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// The mean luma of the frame at `t` seconds over a `n`x`n` grid of areas (row by row).
pub fn luma(path: &Path, t: f64, n: u32) -> Vec<u8> {
    ffmpeg(&[
        "-ss",
        &t.to_string(),
        "-i",
        s(path),
        "-frames:v",
        "1",
        "-vf",
        &format!("scale={n}:{n}:flags=area"),
        "-pix_fmt",
        "gray",
        "-f",
        "rawvideo",
        "-",
    ])
}

/// Asserts `actual` is within `tolerance` of `expected`.
#[track_caller]
pub fn assert_near(what: &str, actual: f64, expected: f64, tolerance: f64) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} is not {expected} ± {tolerance}"
    );
}

/// Zeroes the channel count of an Opus file's header (its `OpusHead`): a corrupt file no
/// decoder opens.
pub fn break_opus_header(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes
        .windows(8)
        .position(|w| w == b"OpusHead")
        .expect("an OpusHead");
    bytes[at + 9] = 0;
    std::fs::write(path, bytes).unwrap();
}
