//! ffprobe, sans-IO: the arguments that ask it about a file and the parser of its answer
//! (`-of compact`: one line per section, `section|key=value|...`).
//!
//! A track's real duration is the end of its last packet (pts + duration): the header's
//! `Duration` cannot be trusted after a crash (it is missing, or written for a file that
//! was then cut at its last complete cluster), so every packet of the file's first stream is
//! read (demuxed, not decoded: a few seconds for an hour of video).

use std::ffi::OsString;
use std::path::Path;

use orbita_record::Kind;

/// What ffprobe said about a file's first stream (and, for an output, about the file).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Probe {
    /// The first stream's type; `None` when it is neither audio nor video, or there is none.
    pub kind: Option<Kind>,
    /// Its codec's name as ffprobe spells it (`opus`, `vp8`, `h264`, `aac`, ...).
    pub codec: String,
    /// Video: the stream's width (0 for audio).
    pub width: u32,
    /// Video: the stream's height (0 for audio).
    pub height: u32,
    /// Packets read.
    pub packets: u64,
    /// The end of the last packet (its pts plus its duration), in ms from the file's
    /// timestamp 0; 0 without packets.
    pub duration_ms: u64,
    /// The container's duration (`format` section), when asked for and known.
    pub format_duration_ms: Option<u64>,
}

/// The arguments of `ffprobe` that measure a track file: its first stream and every packet of it.
pub fn track_args(path: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-v",
        "error",
        "-hide_banner",
        "-select_streams",
        "0",
        "-show_entries",
        "stream=codec_type,codec_name,width,height:packet=pts_time,duration_time",
        "-of",
        "compact",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(file_url(path));
    args
}

/// The arguments of `ffprobe` that describe an output: its container's duration and its streams.
pub fn output_args(path: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-v",
        "error",
        "-hide_banner",
        "-show_entries",
        "format=duration:stream=codec_type,codec_name,width,height",
        "-of",
        "compact",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push(file_url(path));
    args
}

/// `file:` and the path: ffmpeg then never reads a protocol (`http:`, `concat:`, `pipe:`)
/// into a file's name.
pub fn file_url(path: &Path) -> OsString {
    let mut url = OsString::from("file:");
    url.push(path.as_os_str());
    url
}

/// Reads ffprobe's compact output line by line.
#[derive(Debug, Default)]
pub struct ProbeParser {
    probe: Probe,
    /// The latest packet end seen, in microseconds.
    end_us: Option<i64>,
    /// Whether a stream section was seen (the first one is kept).
    stream_seen: bool,
}

impl ProbeParser {
    /// A parser with nothing read yet.
    pub fn new() -> ProbeParser {
        ProbeParser::default()
    }

    /// One line of output (without its newline). Lines it does not know are ignored.
    pub fn line(&mut self, line: &[u8]) {
        let Ok(line) = std::str::from_utf8(line) else {
            return;
        };
        let mut fields = line.trim_end_matches('\r').split('|');
        match fields.next() {
            Some("packet") => {
                let mut pts = None;
                let mut duration = None;
                for (key, value) in fields.filter_map(|f| f.split_once('=')) {
                    match key {
                        "pts_time" => pts = seconds_to_us(value),
                        "duration_time" => duration = seconds_to_us(value),
                        _ => {}
                    }
                }
                self.probe.packets += 1;
                if let Some(pts) = pts {
                    let end = pts.saturating_add(duration.unwrap_or(0));
                    self.end_us = Some(self.end_us.map_or(end, |e| e.max(end)));
                }
            }
            Some("stream") if !self.stream_seen => {
                self.stream_seen = true;
                for (key, value) in fields.filter_map(|f| f.split_once('=')) {
                    match key {
                        "codec_type" => {
                            self.probe.kind = match value {
                                "audio" => Some(Kind::Audio),
                                "video" => Some(Kind::Video),
                                _ => None,
                            }
                        }
                        "codec_name" => self.probe.codec = value.chars().take(32).collect(),
                        "width" => self.probe.width = value.parse().unwrap_or(0),
                        "height" => self.probe.height = value.parse().unwrap_or(0),
                        _ => {}
                    }
                }
            }
            Some("format") => {
                for (key, value) in fields.filter_map(|f| f.split_once('=')) {
                    if key == "duration" {
                        self.probe.format_duration_ms =
                            seconds_to_us(value).map(|us| (us.max(0) as u64).div_ceil(1000));
                    }
                }
            }
            _ => {}
        }
    }

    /// What was read.
    pub fn finish(self) -> Probe {
        let mut probe = self.probe;
        probe.duration_ms = self
            .end_us
            .map_or(0, |us| (us.max(0) as u64).div_ceil(1000));
        probe
    }
}

/// `1.234000` (seconds, as ffprobe prints times) to microseconds; `None` for `N/A`.
fn seconds_to_us(text: &str) -> Option<i64> {
    let seconds: f64 = text.parse().ok()?;
    if !seconds.is_finite() || seconds.abs() > 1e9 {
        return None;
    }
    Some((seconds * 1e6).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Probe {
        let mut parser = ProbeParser::new();
        for line in text.lines() {
            parser.line(line.as_bytes());
        }
        parser.finish()
    }

    #[test]
    fn the_duration_is_the_end_of_the_last_packet() {
        let probe = parse(
            "packet|pts_time=-0.007000|duration_time=0.020000|side_data|\n\
             packet|pts_time=0.013000|duration_time=0.020000\n\
             packet|pts_time=2.980000|duration_time=0.020000\n\
             packet|pts_time=N/A|duration_time=0.020000\n\
             stream|codec_name=opus|codec_type=audio|width=N/A|height=N/A\n",
        );
        assert_eq!(probe.kind, Some(Kind::Audio));
        assert_eq!(probe.codec, "opus");
        assert_eq!(probe.packets, 4);
        assert_eq!(probe.duration_ms, 3000);
        assert_eq!((probe.width, probe.height), (0, 0));
    }

    #[test]
    fn video_size_and_format_duration() {
        let probe = parse(
            "stream|codec_name=vp8|codec_type=video|width=320|height=240\n\
             stream|codec_name=opus|codec_type=audio\n\
             format|duration=5.000000\n",
        );
        assert_eq!(probe.kind, Some(Kind::Video));
        assert_eq!((probe.width, probe.height), (320, 240));
        assert_eq!(probe.packets, 0);
        assert_eq!(probe.duration_ms, 0);
        assert_eq!(probe.format_duration_ms, Some(5000));
    }

    #[test]
    fn garbage_is_ignored() {
        let mut parser = ProbeParser::new();
        parser.line(b"\xff\xfe|pts_time=3");
        parser.line(b"packet|pts_time=inf|duration_time=nan");
        parser.line(b"");
        let probe = parser.finish();
        assert_eq!(probe.packets, 1);
        assert_eq!(probe.duration_ms, 0);
    }
}
