//! The plan of a recording's post-processing, sans-IO: from the manifest and what ffprobe
//! measured of each track file, the call's timeline and the ffmpeg commands (argument
//! vectors: no shell, nothing escaped) that make the outputs.
//!
//! Every track is placed on one timeline, 0 at the recording's start (`started_at_ms`): a
//! track file's timestamp 0 is its `start_ms`, and its gaps (a muted microphone, a stalled
//! camera) are kept as gaps, not closed up. The timeline ends at the call's end, from the
//! manifest (`ended_at_ms`), or, after a crash, at the latest end of a track file (its start
//! plus its measured duration).
//!
//! Filter graphs carry only numbers and labels made here: no name, file or other text from
//! the manifest ever enters one. Input files are given as `file:` URLs, so that no name is
//! read as a protocol.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use orbita_record::{Kind, Manifest, Role, TrackEntry};
use serde::{Deserialize, Serialize};

use crate::probe::{file_url, Probe};

/// The sample rate of the mixed audio (Opus decodes at 48 kHz: no resampling).
pub const SAMPLE_RATE: u32 = 48_000;
/// Tracks of one job at most, whatever [`PlanSettings::max_tracks`] says: each is an input
/// of one ffmpeg (open files, decoders, memory).
pub const TRACK_LIMIT_CEILING: usize = 256;
/// The `source` of a screen share: never the customer's camera.
pub const SCREEN_SOURCE: &str = "screen";

/// The knobs of the plan; [`Default`] is what production uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PlanSettings {
    /// The frame rate of the video outputs (constant).
    pub fps: u32,
    /// libx264's preset (`veryfast`; the tests use `ultrafast`).
    pub x264_preset: String,
    /// libx264's constant rate factor (quality: lower is better and bigger).
    pub x264_crf: u32,
    /// The AAC bit rate of `audio.m4a`, kb/s for both channels.
    pub audio_kbps: u32,
    /// Threads of each ffmpeg encoder (0: ffmpeg's choice, one per core). Decoders get one
    /// each: a job may open 64 inputs.
    pub encoder_threads: u32,
    /// Tracks of one job at most (inputs of one ffmpeg); the rest are reported as skipped.
    pub max_tracks: usize,
    /// The longest call timeline made (a clock gone wrong must not ask for days of video).
    pub max_call_ms: u64,
    /// `video.mp4` is the size of the customer's first camera track, at most this wide...
    pub max_width: u32,
    /// ...and this high (the aspect ratio kept).
    pub max_height: u32,
}

impl PlanSettings {
    /// Tracks of one job at most: [`PlanSettings::max_tracks`], within
    /// [`TRACK_LIMIT_CEILING`].
    pub fn track_limit(&self) -> usize {
        self.max_tracks.min(TRACK_LIMIT_CEILING)
    }
}

impl Default for PlanSettings {
    fn default() -> Self {
        PlanSettings {
            fps: 25,
            x264_preset: "veryfast".into(),
            x264_crf: 23,
            audio_kbps: 128,
            encoder_threads: 0,
            max_tracks: 64,
            max_call_ms: 12 * 3600 * 1000,
            max_width: 1920,
            max_height: 1080,
        }
    }
}

/// One output file of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// `audio.m4a`: AAC stereo, customers left, agents right.
    Audio,
    /// `video.mp4`: H.264, the customer's camera, constant frame rate.
    Video,
    /// `merged.mp4`: `video.mp4`'s video and `audio.m4a`'s audio, stream-copied.
    Merged,
    /// `grid.mp4`: every video track side by side, and `audio.m4a`'s audio.
    Grid,
}

impl Output {
    /// Every output, in the order a job makes them (`merged` and `grid` read `audio.m4a`
    /// and `video.mp4`).
    pub const ALL: [Output; 4] = [Output::Audio, Output::Video, Output::Merged, Output::Grid];

    /// The file's name in the recording's folder.
    pub fn file_name(self) -> &'static str {
        match self {
            Output::Audio => "audio.m4a",
            Output::Video => "video.mp4",
            Output::Merged => "merged.mp4",
            Output::Grid => "grid.mp4",
        }
    }

    /// The name ffmpeg writes to; renamed to [`Output::file_name`] once complete, so a killed
    /// job never leaves half a file under a final name.
    pub fn partial_name(self) -> String {
        format!("{}.part", self.file_name())
    }
}

/// Which stereo channel a track is mixed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// Customers.
    Left,
    /// Agents.
    Right,
    /// Participants of a call without roles: both channels alike.
    Both,
}

/// The channel of a role.
pub fn channel(role: Role) -> Channel {
    match role {
        Role::Customer => Channel::Left,
        Role::Agent => Channel::Right,
        Role::Participant => Channel::Both,
    }
}

/// A track left out of the outputs, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The track's file name (as in the manifest).
    pub file: String,
    /// Why.
    pub reason: String,
}

/// One ffmpeg run: it writes `partial`, which is renamed to `path` once ffmpeg succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What it makes.
    pub output: Output,
    /// The output's final path.
    pub path: PathBuf,
    /// Where ffmpeg writes it.
    pub partial: PathBuf,
    /// ffmpeg's arguments (without the program).
    pub args: Vec<OsString>,
}

/// A track on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Its index in the manifest's `tracks`.
    pub index: usize,
    /// Its file.
    pub path: PathBuf,
    /// Its role.
    pub role: Role,
    /// Audio or video (as measured, and as the manifest says).
    pub kind: Kind,
    /// The participant.
    pub participant: String,
    /// What was published (`camera`, `screen`, ...).
    pub source: String,
    /// Where it starts on the timeline, ms.
    pub start_ms: u64,
    /// Its file's measured duration, ms.
    pub duration_ms: u64,
    /// Video: its size (the manifest's, else the measured one).
    pub width: u32,
    /// See `width`.
    pub height: u32,
}

/// Everything a job will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The call's length: the timeline is `0..call_ms`, every output this long.
    pub call_ms: u64,
    /// Whether the end came from the manifest (`false`: measured, the recording was cut short).
    pub end_from_manifest: bool,
    /// The tracks used.
    pub placed: Vec<Placed>,
    /// The tracks left out.
    pub skipped: Vec<Skipped>,
    /// The ffmpeg runs, in order.
    pub steps: Vec<Step>,
    /// What a reader of the result should know (no video, no audio, ...).
    pub notes: Vec<String>,
}

/// The track's file in the recording's folder; an error for a name that is not one plain
/// file name (a path, `..`, empty).
pub fn track_path(dir: &Path, track: &TrackEntry) -> Result<PathBuf, String> {
    let name = Path::new(&track.file);
    let mut components = name.components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) if !track.file.contains('\0') => Ok(dir.join(name)),
        _ => Err(format!("{:?} is not a file name", track.file)),
    }
}

/// The plan of one recording. `measured[i]` is what ffprobe found of `manifest.tracks[i]`'s
/// file (or why it could not measure it); tracks past `measured`'s end or past
/// [`PlanSettings::max_tracks`] are skipped.
pub fn plan(
    manifest: &Manifest,
    dir: &Path,
    measured: &[Result<Probe, String>],
    settings: &PlanSettings,
) -> Plan {
    let mut skipped = Vec::new();
    let mut notes = Vec::new();
    let mut placed = Vec::new();
    let limit = settings.track_limit();
    for (index, track) in manifest.tracks.iter().enumerate() {
        let measure = match measured.get(index) {
            Some(measure) if index < limit => measure,
            _ => {
                skipped.push(skip(
                    track,
                    format!("over the limit of {limit} tracks per job"),
                ));
                continue;
            }
        };
        match usable(dir, index, track, measure) {
            Ok(track) => placed.push(track),
            Err(reason) => skipped.push(skip(track, reason)),
        }
    }

    let measured_end = placed
        .iter()
        .map(|t| t.start_ms.saturating_add(t.duration_ms))
        .max()
        .unwrap_or(0);
    let from_manifest = manifest
        .ended_at_ms
        .map(|end| end.saturating_sub(manifest.started_at_ms))
        .filter(|&ms| ms > 0);
    let end_from_manifest = from_manifest.is_some();
    let mut call_ms = from_manifest.unwrap_or(measured_end);
    if !end_from_manifest && !placed.is_empty() {
        notes.push(
            "the manifest has no end (the recording was cut short): the call ends with its \
             longest track"
                .into(),
        );
    }
    if call_ms > settings.max_call_ms {
        notes.push(format!(
            "the call's {} s were cut to the limit of {} s",
            call_ms / 1000,
            settings.max_call_ms / 1000
        ));
        call_ms = settings.max_call_ms;
    }
    placed.retain(|t| {
        if t.start_ms < call_ms {
            return true;
        }
        skipped.push(Skipped {
            file: manifest.tracks[t.index].file.clone(),
            reason: format!("starts at {} ms, after the call's end", t.start_ms),
        });
        false
    });
    // Timeline order: by start, then as the manifest lists them.
    placed.sort_by_key(|t| (t.start_ms, t.index));

    let mut plan = Plan {
        call_ms,
        end_from_manifest,
        placed,
        skipped,
        steps: Vec::new(),
        notes,
    };
    if plan.placed.is_empty() {
        return plan;
    }
    add_steps(&mut plan, manifest, dir, settings);
    plan
}

fn skip(track: &TrackEntry, reason: String) -> Skipped {
    Skipped {
        file: track.file.clone(),
        reason,
    }
}

/// A measured track, or why it cannot be used.
fn usable(
    dir: &Path,
    index: usize,
    track: &TrackEntry,
    measure: &Result<Probe, String>,
) -> Result<Placed, String> {
    let path = track_path(dir, track)?;
    let probe = measure.as_ref().map_err(Clone::clone)?;
    match probe.kind {
        Some(kind) if kind == track.kind => {}
        Some(kind) => {
            return Err(format!(
                "the manifest says {:?}, the file holds {:?}",
                track.kind, kind
            ))
        }
        None => return Err("no audio or video stream".into()),
    }
    if probe.codec.is_empty() || probe.codec == "unknown" || probe.codec == "none" {
        // ffmpeg would stop the whole job at "Decoder (codec none) not found".
        return Err("no decoder for the file's codec (a damaged header?)".into());
    }
    if probe.packets == 0 || probe.duration_ms == 0 {
        return Err("no media in the file".into());
    }
    let (width, height) = if track.width > 0 && track.height > 0 {
        (track.width, track.height)
    } else {
        (probe.width, probe.height)
    };
    if track.kind == Kind::Video && (width == 0 || height == 0) {
        return Err("a video track of unknown size".into());
    }
    Ok(Placed {
        index,
        path,
        role: track.role,
        kind: track.kind,
        participant: track.participant.clone(),
        source: track.source.clone(),
        start_ms: track.start_ms,
        duration_ms: probe.duration_ms,
        width,
        height,
    })
}

/// The steps of a plan whose tracks are placed.
fn add_steps(plan: &mut Plan, manifest: &Manifest, dir: &Path, settings: &PlanSettings) {
    let call_ms = plan.call_ms;
    let audio: Vec<&Placed> = plan
        .placed
        .iter()
        .filter(|t| t.kind == Kind::Audio)
        .collect();
    let video: Vec<&Placed> = plan
        .placed
        .iter()
        .filter(|t| t.kind == Kind::Video)
        .collect();
    let cameras: Vec<&Placed> = video
        .iter()
        .copied()
        .filter(|t| t.role == Role::Customer && t.source != SCREEN_SOURCE)
        .collect();
    let has_agent = manifest.tracks.iter().any(|t| t.role == Role::Agent);
    let mut customers_on_camera: Vec<&str> =
        cameras.iter().map(|t| t.participant.as_str()).collect();
    customers_on_camera.sort_unstable();
    customers_on_camera.dedup();

    let mut steps = Vec::new();
    if !audio.is_empty() {
        steps.push(audio_step(dir, &audio, call_ms, settings));
    } else {
        plan.notes.push("no audio track: no audio.m4a".into());
    }
    if !cameras.is_empty() {
        steps.push(video_step(dir, &cameras, call_ms, settings));
        if !audio.is_empty() {
            steps.push(merged_step(dir));
        } else {
            plan.notes
                .push("no audio: video.mp4 without merged.mp4".into());
        }
    } else if video.is_empty() {
        plan.notes.push("no video track: audio only".into());
    } else if has_agent {
        plan.notes
            .push("no customer camera: no video.mp4 nor merged.mp4".into());
    }
    if customers_on_camera.len() > 1 {
        plan.notes.push(format!(
            "{} customers on camera: video.mp4 shows them on one timeline (the latest to \
             start on top), grid.mp4 side by side",
            customers_on_camera.len()
        ));
    }
    if !video.is_empty() && (!has_agent || customers_on_camera.len() > 1) {
        steps.push(grid_step(dir, &video, !audio.is_empty(), call_ms, settings));
    }
    plan.steps = steps;
}

/// `audio.m4a`: each track decoded to mono 48 kHz, its timestamp gaps filled with silence
/// (`aresample=async=1`, from timestamp 0: `first_pts=0`), delayed to its start (`adelay`),
/// then summed per channel over a silent bed of the call's length (`amix` at unity gain,
/// `duration=first`: the bed sets the length), the two channels joined into stereo.
fn audio_step(dir: &Path, tracks: &[&Placed], call_ms: u64, settings: &PlanSettings) -> Step {
    let output = Output::Audio;
    let mut args = Args::ffmpeg();
    for track in tracks {
        args.input(&track.path);
    }
    let mut graph = Graph::default();
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for (input, track) in tracks.iter().enumerate() {
        let mut filters = format!(
            "aresample=async=1:first_pts=0,aformat=sample_fmts=fltp:sample_rates={SAMPLE_RATE}:\
             channel_layouts=mono"
        );
        if track.start_ms > 0 {
            filters.push_str(&format!(",adelay=delays={}:all=1", track.start_ms));
        }
        let source = format!("{input}:a");
        match channel(track.role) {
            Channel::Left => left.push(graph.chain(&[&source], &filters)),
            Channel::Right => right.push(graph.chain(&[&source], &filters)),
            Channel::Both => {
                let [l, r] = graph.chain2(&[&source], &format!("{filters},asplit=2"));
                left.push(l);
                right.push(r);
            }
        }
    }
    let left = mix(&mut graph, &left, call_ms);
    let right = mix(&mut graph, &right, call_ms);
    let out = graph.chain(
        &[&left, &right],
        "join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR",
    );
    args.graph(graph, &out);
    args.strs(&["-c:a", "aac", "-b:a"]);
    args.str(&format!("{}k", settings.audio_kbps));
    args.strs(&["-ar", &SAMPLE_RATE.to_string()]);
    args.encoder_threads(settings);
    args.finish(dir, output, call_ms)
}

/// One channel: the silent bed of the call's length, plus every track of the channel.
fn mix(graph: &mut Graph, tracks: &[String], call_ms: u64) -> String {
    let bed = graph.chain(
        &[],
        &format!("anullsrc=r={SAMPLE_RATE}:cl=mono:d={}", secs(call_ms)),
    );
    if tracks.is_empty() {
        return bed;
    }
    let mut inputs: Vec<&str> = vec![&bed];
    inputs.extend(tracks.iter().map(String::as_str));
    graph.chain(
        &inputs,
        &format!("amix=inputs={}:duration=first:normalize=0", inputs.len()),
    )
}

/// The size of `video.mp4`: the first camera track's, fitted into the limits, even.
pub fn video_size(track: &Placed, settings: &PlanSettings) -> (u32, u32) {
    fit(
        track.width,
        track.height,
        settings.max_width,
        settings.max_height,
    )
}

/// `width`x`height` scaled down (aspect kept) to fit `max_width`x`max_height`, made even
/// (H.264 in 4:2:0), at least 2x2.
fn fit(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    let (mw, mh) = (u64::from(max_width.max(2)), u64::from(max_height.max(2)));
    let (w, h) = if w > mw || h > mh {
        // The smaller of the two scale factors, in integers.
        if w * mh > h * mw {
            (mw, h * mw / w)
        } else {
            (w * mh / h, mh)
        }
    } else {
        (w, h)
    };
    let even = |v: u64| ((v as u32) & !1).max(2);
    (even(w), even(h))
}

/// `video.mp4`: a black canvas of the call's length at a constant frame rate (a `lavfi`
/// input, not a source filter in the graph: ffmpeg rebuilds a graph when an input's frame
/// size changes, as WebRTC video does, and a source inside would start again from 0), with
/// the customer's camera tracks laid over it at their starts.
fn video_step(dir: &Path, cameras: &[&Placed], call_ms: u64, settings: &PlanSettings) -> Step {
    let (width, height) = video_size(cameras[0], settings);
    let mut args = Args::ffmpeg();
    args.canvas(width, height, settings.fps, call_ms);
    for track in cameras {
        args.input(&track.path);
    }
    let mut graph = Graph::default();
    let canvas = graph.chain(&["0:v"], "setsar=1,format=yuv420p");
    let inputs: Vec<(usize, &Placed)> = cameras
        .iter()
        .enumerate()
        .map(|(i, t)| (i + 1, *t))
        .collect();
    let out = timeline(&mut graph, canvas, &inputs, width, height);
    args.graph(graph, &out);
    args.x264(settings);
    args.str("-an");
    args.finish(dir, Output::Video, call_ms)
}

/// The tracks (`(ffmpeg input, track)`) laid over `canvas` in turn, each scaled into the
/// canvas's size (aspect kept, black bars) and shifted to its start; a later track covers an
/// earlier one while both run. Returns the last label.
fn timeline(
    graph: &mut Graph,
    canvas: String,
    tracks: &[(usize, &Placed)],
    width: u32,
    height: u32,
) -> String {
    let mut below = canvas;
    for (input, track) in tracks {
        let scaled = graph.chain(
            &[&format!("{input}:v")],
            &format!(
                "scale=w={width}:h={height}:force_original_aspect_ratio=decrease:\
                 force_divisible_by=2,pad=w={width}:h={height}:x=(ow-iw)/2:y=(oh-ih)/2:\
                 color=black,setsar=1,format=yuv420p,setpts=PTS+{}/TB",
                secs(track.start_ms)
            ),
        );
        below = graph.chain(&[&below, &scaled], "overlay=eof_action=pass");
    }
    below
}

/// `merged.mp4`: both streams copied, nothing encoded again.
fn merged_step(dir: &Path) -> Step {
    let mut args = Args::ffmpeg();
    args.input(&dir.join(Output::Video.file_name()));
    args.input(&dir.join(Output::Audio.file_name()));
    args.strs(&["-map", "0:v:0", "-map", "1:a:0", "-c", "copy"]);
    args.finish_untimed(dir, Output::Merged)
}

/// The layout of `grid.mp4`: cells of one size in rows and columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GridLayout {
    /// Columns.
    pub columns: u32,
    /// Rows.
    pub rows: u32,
    /// A cell's width.
    pub cell_width: u32,
    /// A cell's height.
    pub cell_height: u32,
}

impl GridLayout {
    /// The layout of `cells` cells: as square as can be (columns >= rows), 640x360 cells up
    /// to three columns, then cells that keep the whole within 1920x1080.
    pub fn for_cells(cells: usize) -> GridLayout {
        let cells = cells.max(1) as u32;
        let mut columns = 1;
        while columns * columns < cells {
            columns += 1;
        }
        let rows = cells.div_ceil(columns);
        let (cell_width, cell_height) = if columns <= 3 {
            (640, 360)
        } else {
            let width = (1920 / columns) & !1;
            (width, (width * 9 / 16) & !1)
        };
        GridLayout {
            columns,
            rows,
            cell_width,
            cell_height,
        }
    }

    /// The whole picture's size.
    pub fn size(&self) -> (u32, u32) {
        (self.columns * self.cell_width, self.rows * self.cell_height)
    }
}

/// `grid.mp4`: one cell per participant and source (a participant's camera tracks follow one
/// another in one cell), each a timeline as in `video.mp4`, stacked (`xstack`); the audio is
/// `audio.m4a`'s, copied.
fn grid_step(
    dir: &Path,
    video: &[&Placed],
    with_audio: bool,
    call_ms: u64,
    settings: &PlanSettings,
) -> Step {
    /// One participant's one source: its tracks, with their ffmpeg inputs.
    struct Cell<'a> {
        participant: &'a str,
        source: &'a str,
        tracks: Vec<(usize, &'a Placed)>,
    }
    // Cells in the order their first track started.
    let mut cells: Vec<Cell> = Vec::new();
    for (i, track) in video.iter().enumerate() {
        let input = i + 1;
        match cells
            .iter_mut()
            .find(|c| c.participant == track.participant && c.source == track.source)
        {
            Some(cell) => cell.tracks.push((input, track)),
            None => cells.push(Cell {
                participant: &track.participant,
                source: &track.source,
                tracks: vec![(input, track)],
            }),
        }
    }
    let layout = GridLayout::for_cells(cells.len());
    let (cw, ch) = (layout.cell_width, layout.cell_height);
    let slots = (layout.columns * layout.rows) as usize;

    let mut args = Args::ffmpeg();
    args.canvas(cw, ch, settings.fps, call_ms);
    for track in video {
        args.input(&track.path);
    }
    let mut graph = Graph::default();
    let canvases = graph.chains(
        &["0:v"],
        &format!("setsar=1,format=yuv420p,split={slots}"),
        slots,
    );
    let mut stacked = Vec::with_capacity(slots);
    for (slot, canvas) in canvases.into_iter().enumerate() {
        stacked.push(match cells.get(slot) {
            Some(cell) => timeline(&mut graph, canvas, &cell.tracks, cw, ch),
            None => canvas,
        });
    }
    let out = if slots == 1 {
        stacked.pop().unwrap_or_default()
    } else {
        let positions: Vec<String> = (0..slots as u32)
            .map(|slot| {
                let (column, row) = (slot % layout.columns, slot / layout.columns);
                format!("{}_{}", column * cw, row * ch)
            })
            .collect();
        let inputs: Vec<&str> = stacked.iter().map(String::as_str).collect();
        graph.chain(
            &inputs,
            &format!("xstack=inputs={slots}:layout={}", positions.join("|")),
        )
    };
    let audio_input = video.len() + 1;
    if with_audio {
        args.input(&dir.join(Output::Audio.file_name()));
    }
    args.graph(graph, &out);
    if with_audio {
        args.strs(&["-map", &format!("{audio_input}:a:0"), "-c:a", "copy"]);
    }
    args.x264(settings);
    args.finish(dir, Output::Grid, call_ms)
}

/// Milliseconds as seconds with three decimals: `1.500`.
fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// A filter graph under construction: chains `[in]...filters...[out]` joined by `;`, with
/// labels of its own making.
#[derive(Debug, Default)]
struct Graph {
    chains: Vec<String>,
    labels: usize,
}

impl Graph {
    /// A chain with one output; returns its label.
    fn chain(&mut self, inputs: &[&str], filters: &str) -> String {
        self.chains(inputs, filters, 1).pop().unwrap_or_default()
    }

    /// A chain with two outputs.
    fn chain2(&mut self, inputs: &[&str], filters: &str) -> [String; 2] {
        let mut labels = self.chains(inputs, filters, 2).into_iter();
        [
            labels.next().unwrap_or_default(),
            labels.next().unwrap_or_default(),
        ]
    }

    /// A chain with `outputs` outputs; returns their labels.
    fn chains(&mut self, inputs: &[&str], filters: &str, outputs: usize) -> Vec<String> {
        let labels: Vec<String> = (0..outputs)
            .map(|_| {
                self.labels += 1;
                format!("l{}", self.labels)
            })
            .collect();
        let mut chain = String::new();
        for input in inputs {
            chain.push_str(&format!("[{input}]"));
        }
        chain.push_str(filters);
        for label in &labels {
            chain.push_str(&format!("[{label}]"));
        }
        self.chains.push(chain);
        labels
    }

    fn finish(self) -> String {
        self.chains.join(";")
    }
}

/// An ffmpeg argument vector under construction.
struct Args(Vec<OsString>);

impl Args {
    /// Quiet but for errors (stderr's tail is a failed job's error), no stdin, overwrite.
    fn ffmpeg() -> Args {
        let mut args = Args(Vec::new());
        args.strs(&[
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-loglevel",
            "error",
            "-y",
        ]);
        args
    }

    fn str(&mut self, arg: &str) {
        self.0.push(arg.into());
    }

    fn strs(&mut self, args: &[&str]) {
        self.0.extend(args.iter().map(OsString::from));
    }

    /// A track file: one decoding thread (a job may open 64).
    fn input(&mut self, path: &Path) {
        self.strs(&["-threads", "1", "-i"]);
        self.0.push(file_url(path));
    }

    /// A black canvas input of the call's length.
    fn canvas(&mut self, width: u32, height: u32, fps: u32, call_ms: u64) {
        self.strs(&["-f", "lavfi", "-i"]);
        self.str(&format!(
            "color=c=black:s={width}x{height}:r={fps}:d={}",
            secs(call_ms)
        ));
    }

    fn graph(&mut self, graph: Graph, out: &str) {
        self.str("-filter_complex");
        self.str(&graph.finish());
        self.strs(&["-map", &format!("[{out}]")]);
    }

    fn x264(&mut self, settings: &PlanSettings) {
        self.strs(&["-c:v", "libx264", "-preset", &settings.x264_preset, "-crf"]);
        self.str(&settings.x264_crf.to_string());
        self.strs(&["-pix_fmt", "yuv420p", "-r", &settings.fps.to_string()]);
        self.encoder_threads(settings);
    }

    fn encoder_threads(&mut self, settings: &PlanSettings) {
        if settings.encoder_threads > 0 {
            self.strs(&["-threads", &settings.encoder_threads.to_string()]);
        }
    }

    /// The output, cut at the call's end.
    fn finish(mut self, dir: &Path, output: Output, call_ms: u64) -> Step {
        self.strs(&["-t", &secs(call_ms)]);
        self.finish_untimed(dir, output)
    }

    /// MP4 (the moov atom first: a browser plays it before it has it all) to the partial name.
    fn finish_untimed(mut self, dir: &Path, output: Output) -> Step {
        self.strs(&["-movflags", "+faststart", "-f", "mp4"]);
        let partial = dir.join(output.partial_name());
        self.0.push(file_url(&partial));
        Step {
            output,
            path: dir.join(output.file_name()),
            partial,
            args: self.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orbita_record::manifest::MANIFEST_VERSION;
    use orbita_record::RecCodec;

    fn track(file: &str, who: &str, role: Role, kind: Kind, start_ms: u64) -> TrackEntry {
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
            width: if kind == Kind::Video { 640 } else { 0 },
            height: if kind == Kind::Video { 480 } else { 0 },
        }
    }

    fn manifest(tracks: Vec<TrackEntry>, ended: Option<u64>) -> Manifest {
        Manifest {
            version: MANIFEST_VERSION,
            id: "rec".into(),
            room: "room".into(),
            owner: None,
            started_at_ms: 1_000_000,
            ended_at_ms: ended.map(|ms| 1_000_000 + ms),
            tracks,
            dropped_packets: 0,
        }
    }

    fn probe(kind: Kind, duration_ms: u64) -> Result<Probe, String> {
        Ok(Probe {
            kind: Some(kind),
            codec: if kind == Kind::Audio { "opus" } else { "vp8" }.into(),
            width: if kind == Kind::Video { 320 } else { 0 },
            height: if kind == Kind::Video { 240 } else { 0 },
            packets: 10,
            duration_ms,
            format_duration_ms: None,
        })
    }

    fn strings(step: &Step) -> Vec<String> {
        step.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn graph_of(step: &Step) -> String {
        let args = strings(step);
        let at = args.iter().position(|a| a == "-filter_complex").unwrap();
        args[at + 1].clone()
    }

    fn outputs(plan: &Plan) -> Vec<Output> {
        plan.steps.iter().map(|s| s.output).collect()
    }

    #[test]
    fn an_agent_call_with_a_customer_camera() {
        let m = manifest(
            vec![
                track("a.webm", "agent", Role::Agent, Kind::Audio, 0),
                track("c.webm", "cust", Role::Customer, Kind::Audio, 1000),
                track("v.webm", "cust", Role::Customer, Kind::Video, 1000),
            ],
            Some(5000),
        );
        let measured = [
            probe(Kind::Audio, 3000),
            probe(Kind::Audio, 3000),
            probe(Kind::Video, 3000),
        ];
        let plan = plan(&m, Path::new("/r"), &measured, &PlanSettings::default());
        assert_eq!(plan.call_ms, 5000);
        assert!(plan.end_from_manifest);
        assert!(plan.skipped.is_empty());
        assert_eq!(
            outputs(&plan),
            [Output::Audio, Output::Video, Output::Merged]
        );

        let audio = &plan.steps[0];
        let args = strings(audio);
        // Timeline order: the agent (0 ms) is input 0, the customer (1000 ms) input 1.
        assert_eq!(
            args.iter()
                .filter(|a| a.starts_with("file:"))
                .collect::<Vec<_>>(),
            ["file:/r/a.webm", "file:/r/c.webm", "file:/r/audio.m4a.part"]
        );
        let graph = graph_of(audio);
        assert_eq!(
            graph,
            "[0:a]aresample=async=1:first_pts=0,aformat=sample_fmts=fltp:sample_rates=48000:\
             channel_layouts=mono[l1];\
             [1:a]aresample=async=1:first_pts=0,aformat=sample_fmts=fltp:sample_rates=48000:\
             channel_layouts=mono,adelay=delays=1000:all=1[l2];\
             anullsrc=r=48000:cl=mono:d=5.000[l3];\
             [l3][l2]amix=inputs=2:duration=first:normalize=0[l4];\
             anullsrc=r=48000:cl=mono:d=5.000[l5];\
             [l5][l1]amix=inputs=2:duration=first:normalize=0[l6];\
             [l4][l6]join=inputs=2:channel_layout=stereo:map=0.0-FL|1.0-FR[l7]"
        );
        assert!(args.windows(2).any(|w| w == ["-t", "5.000"]));
        assert!(args.windows(2).any(|w| w == ["-map", "[l7]"]));

        let video = &plan.steps[1];
        let args = strings(video);
        assert!(args.contains(&"color=c=black:s=640x480:r=25:d=5.000".to_string()));
        let graph = graph_of(video);
        assert!(graph.contains("setpts=PTS+1.000/TB"), "{graph}");
        assert!(graph.contains("overlay=eof_action=pass"), "{graph}");
        assert!(args.windows(2).any(|w| w == ["-preset", "veryfast"]));

        let merged = strings(&plan.steps[2]);
        assert!(merged.windows(2).any(|w| w == ["-c", "copy"]));
        assert_eq!(merged.last().unwrap(), "file:/r/merged.mp4.part");
    }

    #[test]
    fn without_an_end_the_call_lasts_to_the_end_of_the_longest_track() {
        let m = manifest(
            vec![
                track("a.webm", "agent", Role::Agent, Kind::Audio, 0),
                track("c.webm", "cust", Role::Customer, Kind::Audio, 2500),
            ],
            None,
        );
        let plan = plan(
            &m,
            Path::new("/r"),
            &[probe(Kind::Audio, 4000), probe(Kind::Audio, 1700)],
            &PlanSettings::default(),
        );
        assert_eq!(plan.call_ms, 4200);
        assert!(!plan.end_from_manifest);
        assert!(plan.notes.iter().any(|n| n.contains("cut short")));
        // No video at all: audio only, and said so.
        assert_eq!(outputs(&plan), [Output::Audio]);
        assert!(plan.notes.iter().any(|n| n.contains("audio only")));
    }

    #[test]
    fn broken_tracks_are_skipped_with_a_reason() {
        let m = manifest(
            vec![
                track("a.webm", "agent", Role::Agent, Kind::Audio, 0),
                track("broken.webm", "cust", Role::Customer, Kind::Audio, 0),
                track("empty.webm", "cust", Role::Customer, Kind::Audio, 0),
                track("wrong.webm", "cust", Role::Customer, Kind::Video, 0),
                track("../x.webm", "cust", Role::Customer, Kind::Audio, 0),
                track("late.webm", "cust", Role::Customer, Kind::Audio, 9000),
                track("unknown.webm", "cust", Role::Customer, Kind::Audio, 0),
            ],
            Some(5000),
        );
        let mut empty = probe(Kind::Audio, 0).unwrap();
        empty.packets = 0;
        let measured = [
            probe(Kind::Audio, 5000),
            Err("ffprobe: Invalid data found when processing input".into()),
            Ok(empty),
            probe(Kind::Audio, 1000),
            probe(Kind::Audio, 1000),
            probe(Kind::Audio, 1000),
            Ok(Probe {
                codec: "unknown".into(),
                ..probe(Kind::Audio, 1000).unwrap()
            }),
        ];
        let plan = plan(&m, Path::new("/r"), &measured, &PlanSettings::default());
        let reasons: Vec<(&str, &str)> = plan
            .skipped
            .iter()
            .map(|s| (s.file.as_str(), s.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 6, "{reasons:?}");
        assert!(reasons[0].1.contains("Invalid data"));
        assert!(reasons[1].1.contains("no media"));
        assert!(reasons[2].1.contains("the file holds Audio"));
        assert!(reasons[3].1.contains("not a file name"));
        assert!(reasons[4].1.contains("no decoder"));
        assert_eq!(reasons[5].0, "late.webm");
        assert!(reasons[5].1.contains("after the call's end"));
        assert_eq!(plan.placed.len(), 1);
        assert_eq!(outputs(&plan), [Output::Audio]);
    }

    #[test]
    fn tracks_over_the_limit_are_reported() {
        let tracks: Vec<TrackEntry> = (0..70)
            .map(|i| {
                track(
                    &format!("p{i}.webm"),
                    &format!("p{i}"),
                    Role::Participant,
                    Kind::Audio,
                    i * 10,
                )
            })
            .collect();
        let m = manifest(tracks, Some(10_000));
        // The runner measures the first max_tracks only.
        let measured: Vec<_> = (0..64).map(|_| probe(Kind::Audio, 1000)).collect();
        let plan = plan(&m, Path::new("/r"), &measured, &PlanSettings::default());
        assert_eq!(plan.placed.len(), 64);
        assert_eq!(plan.skipped.len(), 6);
        assert!(plan
            .skipped
            .iter()
            .all(|s| s.reason.contains("limit of 64")));
        let graph = graph_of(&plan.steps[0]);
        // Participants go to both channels: 64 tracks into each mix, plus the bed.
        assert_eq!(graph.matches("amix=inputs=65").count(), 2, "{graph}");
        assert_eq!(graph.matches("asplit=2").count(), 64);
    }

    #[test]
    fn a_call_without_agent_gets_a_grid() {
        let m = manifest(
            vec![
                track("a1.webm", "p1", Role::Participant, Kind::Audio, 0),
                track("v1.webm", "p1", Role::Participant, Kind::Video, 0),
                track("v2.webm", "p2", Role::Participant, Kind::Video, 200),
                track("v3.webm", "p3", Role::Participant, Kind::Video, 400),
                // p2 republished its camera: the same cell.
                track("v2b.webm", "p2", Role::Participant, Kind::Video, 2000),
            ],
            Some(4000),
        );
        let measured: Vec<_> = [
            Kind::Audio,
            Kind::Video,
            Kind::Video,
            Kind::Video,
            Kind::Video,
        ]
        .into_iter()
        .map(|k| probe(k, 1000))
        .collect();
        let plan = plan(&m, Path::new("/r"), &measured, &PlanSettings::default());
        assert_eq!(outputs(&plan), [Output::Audio, Output::Grid]);
        let grid = &plan.steps[1];
        let graph = graph_of(grid);
        assert!(graph.contains("split=4"), "{graph}");
        assert!(
            graph.contains("xstack=inputs=4:layout=0_0|640_0|0_360|640_360"),
            "{graph}"
        );
        assert_eq!(graph.matches("overlay=").count(), 4);
        let args = strings(grid);
        assert!(args.contains(&"color=c=black:s=640x360:r=25:d=4.000".to_string()));
        // audio.m4a is the fifth input, copied.
        assert!(args.windows(2).any(|w| w == ["-map", "5:a:0"]));
        assert!(args.contains(&"file:/r/audio.m4a".to_string()));
    }

    #[test]
    fn two_customers_on_camera_get_a_grid_too() {
        let m = manifest(
            vec![
                track("a.webm", "agent", Role::Agent, Kind::Audio, 0),
                track("v1.webm", "c1", Role::Customer, Kind::Video, 0),
                track("v2.webm", "c2", Role::Customer, Kind::Video, 0),
            ],
            Some(4000),
        );
        let measured = [
            probe(Kind::Audio, 1000),
            probe(Kind::Video, 1000),
            probe(Kind::Video, 1000),
        ];
        let plan = plan(&m, Path::new("/r"), &measured, &PlanSettings::default());
        assert_eq!(
            outputs(&plan),
            [Output::Audio, Output::Video, Output::Merged, Output::Grid]
        );
    }

    #[test]
    fn an_agent_camera_alone_makes_no_video() {
        let m = manifest(
            vec![
                track("a.webm", "agent", Role::Agent, Kind::Audio, 0),
                track("v.webm", "agent", Role::Agent, Kind::Video, 0),
            ],
            Some(4000),
        );
        let plan = plan(
            &m,
            Path::new("/r"),
            &[probe(Kind::Audio, 1000), probe(Kind::Video, 1000)],
            &PlanSettings::default(),
        );
        assert_eq!(outputs(&plan), [Output::Audio]);
        assert!(plan.notes.iter().any(|n| n.contains("no customer camera")));
    }

    #[test]
    fn sizes_are_even_and_bounded() {
        assert_eq!(fit(321, 241, 1920, 1080), (320, 240));
        assert_eq!(fit(3840, 2160, 1920, 1080), (1920, 1080));
        assert_eq!(fit(1080, 1920, 1920, 1080), (606, 1080));
        assert_eq!(fit(1, 1, 1920, 1080), (2, 2));
        assert_eq!(GridLayout::for_cells(1).size(), (640, 360));
        assert_eq!(GridLayout::for_cells(2).size(), (1280, 360));
        assert_eq!(GridLayout::for_cells(3).size(), (1280, 720));
        assert_eq!(GridLayout::for_cells(9).size(), (1920, 1080));
        let big = GridLayout::for_cells(64);
        assert_eq!((big.columns, big.rows), (8, 8));
        let (w, h) = big.size();
        assert!(w <= 1920 && h <= 1080, "{w}x{h}");
    }

    #[test]
    fn nothing_usable_makes_no_step() {
        let m = manifest(
            vec![track("a.webm", "agent", Role::Agent, Kind::Audio, 0)],
            None,
        );
        let plan = plan(
            &m,
            Path::new("/r"),
            &[Err("missing".into())],
            &PlanSettings::default(),
        );
        assert!(plan.steps.is_empty());
        assert!(plan.placed.is_empty());
        assert_eq!(plan.call_ms, 0);
    }
}
