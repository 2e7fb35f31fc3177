//! The writer thread: the only code of a recording that touches files. It takes packets from
//! the bounded queue and control messages from the unbounded channel, runs each track's
//! [`TrackPipeline`], and writes what comes out: a track's file is created at its first frame
//! (`<participant>-<kind>-<n>.<ext>`), each cluster is written whole as soon as it closes (to
//! the OS, unbuffered), and `recording.json` is rewritten when a track starts or ends and when
//! the recording stops.
//!
//! A control message is applied only after the packet queue is emptied, so it comes after the
//! packets queued before it. The one exception is harmless: a packet of a track the writer does
//! not know yet makes it take the pending control messages early, applying the additions (a
//! track's state, no file) and keeping the others, in order, for later.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{select, Receiver};
use tracing::{debug, warn};

use crate::manifest::{Kind, Manifest, TrackEntry};
use crate::recorder::{Control, DataMsg, Shared, TapState, TrackMeta};
use crate::track::{TrackEvent, TrackPipeline};
use crate::webm::{Cluster, WebmMuxer};

/// The writer's rest between batches of packets: at most this much is buffered in the queue
/// (about 40 packets of a 720p call with its sound; the queue holds thousands) and 10
/// wake-ups a second. Measured (scripts/bench-recording, 50 calls): waking per packet cost the
/// writers 0.086 cores, 20 ms 0.041; see docs/BENCHMARKS.md.
pub(crate) const BATCH_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// The writer of one recording.
pub(crate) struct Writer {
    dir: PathBuf,
    origin: Instant,
    manifest: Manifest,
    max_bytes: u64,
    shared: Arc<Shared>,
    data_rx: Receiver<DataMsg>,
    ctrl_rx: Receiver<Control>,
    /// Control messages taken early (see the module's description), to apply in order.
    pending: VecDeque<Control>,
    tracks: BTreeMap<u32, Track>,
    events: Vec<TrackEvent>,
    bytes_written: u64,
    /// The first I/O error, returned at the end.
    error: Option<io::Error>,
}

struct Track {
    meta: TrackMeta,
    pipeline: TrackPipeline,
    tap: Arc<TapState>,
    /// The file, once the first frame came.
    file: Option<TrackFile>,
}

struct TrackFile {
    file: File,
    muxer: WebmMuxer,
    /// This track's entry in the manifest.
    entry: usize,
    /// A write failed: nothing more goes to this file.
    failed: bool,
}

impl Writer {
    pub(crate) fn new(
        dir: PathBuf,
        origin: Instant,
        manifest: Manifest,
        max_bytes: u64,
        shared: Arc<Shared>,
        data_rx: Receiver<DataMsg>,
        ctrl_rx: Receiver<Control>,
    ) -> Writer {
        Writer {
            dir,
            origin,
            manifest,
            max_bytes,
            shared,
            data_rx,
            ctrl_rx,
            pending: VecDeque::new(),
            tracks: BTreeMap::new(),
            events: Vec::new(),
            bytes_written: 0,
            error: None,
        }
    }

    /// Runs until the recording stops; returns the final manifest, or the first I/O error.
    pub(crate) fn run(mut self) -> io::Result<Manifest> {
        loop {
            let control = match self.pending.pop_front() {
                Some(control) => control,
                None => self.next_control(),
            };
            // A track's addition comes before its packets (they cannot have been sent before
            // it): add it now, or the packets drained next would find no track and be lost.
            // Ends and the stop come after the packets sent before them.
            if matches!(control, Control::AddTrack { .. }) {
                self.apply(control);
                continue;
            }
            while let Ok(msg) = self.data_rx.try_recv() {
                self.on_packet(msg);
            }
            if self.apply(control) {
                break;
            }
        }
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(self.manifest),
        }
    }

    /// Handles packets until a control message comes. The recorder gone without a word (it
    /// always says stop; a panic unwinding past it might not) stops the recording now.
    ///
    /// Packets are handled in batches: after one wakes the writer, it takes every packet
    /// queued and then rests [`BATCH_INTERVAL`] (a recorded call sends hundreds of packets a
    /// second; waking for each would cost more than writing them).
    fn next_control(&mut self) -> Control {
        loop {
            select! {
                recv(self.ctrl_rx) -> control => {
                    return control.unwrap_or(Control::Stop { at: Instant::now() });
                }
                recv(self.data_rx) -> msg => match msg {
                    Ok(msg) => {
                        self.on_packet(msg);
                        while let Ok(msg) = self.data_rx.try_recv() {
                            self.on_packet(msg);
                        }
                        if let Some(control) = self.pending.pop_front() {
                            return control; // taken early by a packet
                        }
                        std::thread::sleep(BATCH_INTERVAL);
                    }
                    Err(_) => {
                        return self.ctrl_rx.recv().unwrap_or(Control::Stop { at: Instant::now() });
                    }
                },
            }
        }
    }

    /// Applies a control message; true once the recording stopped.
    fn apply(&mut self, control: Control) -> bool {
        match control {
            Control::AddTrack { id, meta, at, tap } => self.add_track(id, meta, at, tap),
            Control::EndTrack { id, at } => self.end_track(id, at),
            Control::Stop { at } => {
                self.stop(at);
                return true;
            }
        }
        false
    }

    fn add_track(&mut self, id: u32, meta: TrackMeta, at: Instant, tap: Arc<TapState>) {
        debug!(
            track = id,
            participant = %meta.participant,
            codec = ?meta.codec,
            at_ms = self.ms(at),
            "recording a track"
        );
        let pipeline = TrackPipeline::new(meta.codec, self.origin);
        self.tracks.insert(
            id,
            Track {
                meta,
                pipeline,
                tap,
                file: None,
            },
        );
    }

    fn on_packet(&mut self, msg: DataMsg) {
        if !self.tracks.contains_key(&msg.track) {
            // Its addition is still in the control channel: take the additions now.
            while let Ok(control) = self.ctrl_rx.try_recv() {
                match control {
                    Control::AddTrack { id, meta, at, tap } => self.add_track(id, meta, at, tap),
                    other => self.pending.push_back(other),
                }
            }
        }
        if self.shared.limit_reached.load(Ordering::Relaxed) {
            self.shared
                .dropped_over_max_bytes
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Some(track) = self.tracks.get_mut(&msg.track) else {
            return; // ended
        };
        track.pipeline.push(msg.packet, &mut self.events);
        self.write_events(msg.track);
    }

    fn end_track(&mut self, id: u32, at: Instant) {
        let Some(track) = self.tracks.get_mut(&id) else {
            return;
        };
        track.pipeline.finish(&mut self.events);
        self.write_events(id);
        let Some(mut track) = self.tracks.remove(&id) else {
            return;
        };
        let pipeline = &track.pipeline;
        let (lost, late, reanchored) = (
            pipeline.frames_lost(),
            pipeline.late_packets(),
            pipeline.reanchored(),
        );
        let Some(mut file) = track.file.take() else {
            debug!(
                track = id,
                frames_lost = lost,
                "track ended before its first frame"
            );
            return;
        };
        if self.shared.limit_reached.load(Ordering::Relaxed) {
            file.muxer.discard();
        } else if let Some(cluster) = file.muxer.finish() {
            self.write_cluster(&mut file, cluster);
        }
        if !file.failed {
            if let Some((offset, bytes)) = file.muxer.duration_patch() {
                let patched = file
                    .file
                    .seek(SeekFrom::Start(offset))
                    .and_then(|_| file.file.write_all(&bytes));
                if let Err(e) = patched {
                    self.fail(&format!("{}: duration", track.meta.participant), e);
                }
            }
        }
        self.manifest.tracks[file.entry].end_ms = Some(self.ms(at));
        debug!(
            file = %self.manifest.tracks[file.entry].file,
            duration_ms = file.muxer.duration_ms(),
            frames_lost = lost,
            late_packets = late,
            reanchored,
            "track file finished"
        );
        self.write_manifest();
    }

    fn stop(&mut self, at: Instant) {
        let ids: Vec<u32> = self.tracks.keys().copied().collect();
        for id in ids {
            self.end_track(id, at);
        }
        self.manifest.ended_at_ms = Some(self.manifest.started_at_ms + self.ms(at));
        self.manifest.dropped_packets = self.shared.dropped_queue_full.load(Ordering::Relaxed);
        self.write_manifest();
    }

    /// Writes what a track's pipeline put out.
    fn write_events(&mut self, id: u32) {
        for event in std::mem::take(&mut self.events) {
            let Some(track) = self.tracks.get_mut(&id) else {
                return;
            };
            match event {
                TrackEvent::RequestKeyframe => {
                    track.tap.keyframe_request.store(true, Ordering::Relaxed);
                }
                TrackEvent::Start { info, start_ms } => {
                    if self.shared.limit_reached.load(Ordering::Relaxed) {
                        continue;
                    }
                    let mut muxer = WebmMuxer::new(info.clone());
                    let header = muxer.header();
                    let meta = track.meta.clone();
                    match create_track_file(&self.dir, &meta) {
                        Ok((name, file)) => {
                            let entry = self.manifest.tracks.len();
                            self.manifest.tracks.push(TrackEntry {
                                file: name.clone(),
                                participant: meta.participant,
                                name: meta.name,
                                role: meta.role,
                                kind: meta.codec.kind(),
                                source: meta.source,
                                codec: meta.codec,
                                start_ms,
                                end_ms: None,
                                width: info.width,
                                height: info.height,
                            });
                            let mut file = TrackFile {
                                file,
                                muxer,
                                entry,
                                failed: false,
                            };
                            if !self.write_bytes(&mut file, &header) {
                                // Over the size limit (or failed): no file for this track.
                                self.manifest.tracks.pop();
                                let _ = std::fs::remove_file(self.dir.join(&name));
                                continue;
                            }
                            self.tracks.get_mut(&id).expect("track").file = Some(file);
                            self.write_manifest();
                        }
                        Err(e) => self.fail(&format!("{}: create", meta.participant), e),
                    }
                }
                TrackEvent::Frame { ts, keyframe, data } => {
                    let Some(mut file) = track.file.take() else {
                        continue;
                    };
                    if let Some(cluster) = file.muxer.push(ts, keyframe, &data) {
                        self.write_cluster(&mut file, cluster);
                    }
                    self.tracks.get_mut(&id).expect("track").file = Some(file);
                }
            }
        }
    }

    fn write_cluster(&mut self, file: &mut TrackFile, cluster: Cluster) {
        if self.write_bytes(file, &cluster.bytes) {
            self.shared
                .frames_written
                .fetch_add(cluster.frames, Ordering::Relaxed);
        }
    }

    /// Writes bytes to a track file if they fit the size limit; true when written.
    fn write_bytes(&mut self, file: &mut TrackFile, bytes: &[u8]) -> bool {
        if file.failed || self.shared.limit_reached.load(Ordering::Relaxed) {
            return false;
        }
        let len = bytes.len() as u64;
        if self.max_bytes > 0 && self.bytes_written + len > self.max_bytes {
            warn!(
                max_bytes = self.max_bytes,
                "the recording reached its size limit: nothing more is written"
            );
            self.shared.limit_reached.store(true, Ordering::Relaxed);
            return false;
        }
        if let Err(e) = file.file.write_all(bytes) {
            file.failed = true;
            let name = self.manifest.tracks[file.entry].file.clone();
            self.fail(&name, e);
            return false;
        }
        self.bytes_written += len;
        self.shared.bytes_written.fetch_add(len, Ordering::Relaxed);
        true
    }

    fn write_manifest(&mut self) {
        if let Err(e) = self.manifest.write(&self.dir) {
            self.fail(crate::manifest::MANIFEST_FILE, e);
        }
    }

    fn fail(&mut self, what: &str, e: io::Error) {
        warn!(dir = %self.dir.display(), what, error = %e, "recording write failed");
        self.error.get_or_insert(e);
    }

    /// Milliseconds from the recording's start to `at`.
    fn ms(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.origin).as_millis() as u64
    }
}

/// Creates `<participant>-<kind>-<n>.<ext>` with the first `n` from 1 not taken in `dir`. The
/// participant id is made file-safe: anything but ASCII letters, digits, `-` and `_` becomes
/// `_`.
fn create_track_file(dir: &Path, meta: &TrackMeta) -> io::Result<(String, File)> {
    let participant: String = meta
        .participant
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let kind = match meta.codec.kind() {
        Kind::Audio => "audio",
        Kind::Video => "video",
    };
    let ext = meta.codec.extension();
    for n in 1..=10_000 {
        let name = format!("{participant}-{kind}-{n}.{ext}");
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dir.join(&name))
        {
            Ok(file) => return Ok((name, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free track file name",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{RecCodec, Role};

    #[test]
    fn track_file_names_are_unique_and_file_safe() {
        let dir = std::env::temp_dir().join(format!("orbita-record-{}-names", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let meta = |participant: &str, codec| TrackMeta {
            participant: participant.into(),
            name: String::new(),
            role: Role::Participant,
            source: "camera".into(),
            codec,
        };
        let names: Vec<String> = [
            meta("p12", RecCodec::Opus),
            meta("p12", RecCodec::Opus),
            meta("p12", RecCodec::H264),
            meta("../evil/x", RecCodec::Vp8),
        ]
        .iter()
        .map(|m| create_track_file(&dir, m).unwrap().0)
        .collect();
        assert_eq!(
            names,
            [
                "p12-audio-1.webm",
                "p12-audio-2.webm",
                "p12-video-1.mkv",
                "___evil_x-video-1.webm"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
