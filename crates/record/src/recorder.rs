//! The public face of a recording: [`Recorder`] (one per recorded call) and the [`TrackTap`]s
//! the media server's worker threads hand packets to.
//!
//! Packets go through one bounded queue to the writer thread and are never waited for: a
//! full queue drops the packet and counts it. Control messages (a track added or ended, the
//! recording stopped) go through an unbounded channel so they are never lost, and the writer
//! empties the packet queue before applying each one, so a control message comes after every
//! packet sent before it.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::depacketize::RtpPacket;
use crate::manifest::{Manifest, RecCodec, Role, MANIFEST_VERSION};
use crate::writer::Writer;

/// The default capacity of a recording's packet queue: about 4 s of a 720p camera and its
/// microphone, far more than a disk stall the writer should ride out.
pub const DEFAULT_QUEUE_PACKETS: usize = 4_096;

/// Largest RTP payload taken: no WebRTC sender makes packets near this (they fit a ~1,200
/// byte MTU); a bigger one is refused and counted, which bounds the queue's memory.
pub const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

/// How a recording is set up.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// This recording's folder (created if missing): its track files and `recording.json`.
    pub dir: PathBuf,
    /// The recording's id (the manifest's `id`).
    pub id: String,
    /// The room's code (the manifest's `room`).
    pub room: String,
    /// The account that created the call (the manifest's `owner`).
    pub owner: Option<String>,
    /// Capacity of the packet queue to the writer thread ([`DEFAULT_QUEUE_PACKETS`]).
    pub queue_packets: usize,
    /// Once the files together reach this many bytes, nothing more is written (and packets
    /// are dropped, counted); 0: no limit.
    pub max_bytes: u64,
}

impl RecorderConfig {
    /// A configuration with the default queue and no size limit.
    pub fn new(dir: impl Into<PathBuf>, id: impl Into<String>, room: impl Into<String>) -> Self {
        RecorderConfig {
            dir: dir.into(),
            id: id.into(),
            room: room.into(),
            owner: None,
            queue_packets: DEFAULT_QUEUE_PACKETS,
            max_bytes: 0,
        }
    }
}

/// Who and what a recorded track is (the manifest's track entry says the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackMeta {
    /// The participant's id in the room (the file name starts with it, made file-safe).
    pub participant: String,
    /// Their display name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// What was published: `microphone`, `camera`, `screen`, ...
    pub source: String,
    /// The codec of the packets that will come.
    pub codec: RecCodec,
}

/// A recording's counters so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Packets taken into the queue.
    pub packets_queued: u64,
    /// Frames written to the files (in clusters on disk).
    pub frames_written: u64,
    /// Bytes written to the track files.
    pub bytes_written: u64,
    /// Packets refused because the queue was full (the manifest's `dropped_packets`).
    pub dropped_queue_full: u64,
    /// Packets refused or dropped because the files reached `max_bytes`.
    pub dropped_over_max_bytes: u64,
    /// Packets refused for a payload over [`MAX_PAYLOAD_BYTES`].
    pub dropped_oversize: u64,
}

/// State shared by the recorder, its taps and the writer.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub packets_queued: AtomicU64,
    pub frames_written: AtomicU64,
    pub bytes_written: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_over_max_bytes: AtomicU64,
    pub dropped_oversize: AtomicU64,
    /// `stop` was called (or the recorder dropped): taps refuse packets.
    pub stopped: AtomicBool,
    /// The files reached `max_bytes`: taps refuse packets.
    pub limit_reached: AtomicBool,
}

/// The state of one track shared by its taps and the writer.
#[derive(Debug, Default)]
pub(crate) struct TapState {
    pub keyframe_request: AtomicBool,
    pub ended: AtomicBool,
}

/// A packet on its way to the writer.
#[derive(Debug)]
pub(crate) struct DataMsg {
    pub track: u32,
    pub packet: RtpPacket,
}

/// A control message: never dropped, applied after the packets queued before it.
#[derive(Debug)]
pub(crate) enum Control {
    AddTrack {
        id: u32,
        meta: TrackMeta,
        at: Instant,
        tap: Arc<TapState>,
    },
    EndTrack {
        id: u32,
        at: Instant,
    },
    Stop {
        at: Instant,
    },
}

/// One recorded call: a folder of track files and `recording.json`, written by a thread of
/// its own. Dropping it without [`stop`](Self::stop) stops it (the writer finishes the files
/// on its own); [`wait`](Self::wait) to know when it is done.
#[derive(Debug)]
pub struct Recorder {
    handle: RecorderHandle,
    writer: Option<JoinHandle<io::Result<Manifest>>>,
}

/// What the media server holds of a [`Recorder`]: it adds tracks and stops the recording,
/// while the control plane keeps the `Recorder` to [`wait`](Recorder::wait) for its files.
/// Cheap to clone; dropping it does not stop the recording.
#[derive(Debug, Clone)]
pub struct RecorderHandle {
    shared: Arc<Shared>,
    data_tx: Sender<DataMsg>,
    ctrl_tx: Sender<Control>,
    next_track: Arc<AtomicU32>,
}

impl Recorder {
    /// Creates the folder, writes the manifest (no tracks yet; `started_at_ms` is now) and
    /// starts the writer thread.
    pub fn start(config: RecorderConfig) -> io::Result<Recorder> {
        Self::start_gated(config, None)
    }

    /// [`start`](Self::start), with a writer that waits for `gate` before it begins (tests
    /// fill the queue this way).
    fn start_gated(config: RecorderConfig, gate: Option<Receiver<()>>) -> io::Result<Recorder> {
        std::fs::create_dir_all(&config.dir)?;
        let origin = Instant::now();
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            id: config.id,
            room: config.room,
            owner: config.owner,
            started_at_ms,
            ended_at_ms: None,
            tracks: Vec::new(),
            dropped_packets: 0,
        };
        manifest.write(&config.dir)?;

        let shared = Arc::new(Shared::default());
        let (data_tx, data_rx) = crossbeam_channel::bounded(config.queue_packets.max(1));
        let (ctrl_tx, ctrl_rx) = crossbeam_channel::unbounded();
        let writer = Writer::new(
            config.dir,
            origin,
            manifest,
            config.max_bytes,
            shared.clone(),
            data_rx,
            ctrl_rx,
        );
        let writer = std::thread::Builder::new()
            .name("orbita-record".into())
            .spawn(move || {
                if let Some(gate) = gate {
                    let _ = gate.recv();
                }
                writer.run()
            })?;
        Ok(Recorder {
            handle: RecorderHandle {
                shared,
                data_tx,
                ctrl_tx,
                next_track: Arc::new(AtomicU32::new(1)),
            },
            writer: Some(writer),
        })
    }

    /// A handle for the media server: it adds tracks and stops the recording.
    pub fn handle(&self) -> RecorderHandle {
        self.handle.clone()
    }

    /// A track to record from now (see [`RecorderHandle::add_track`]).
    pub fn add_track(&self, meta: TrackMeta, at: Instant) -> TrackTap {
        self.handle.add_track(meta, at)
    }

    /// The counters so far.
    pub fn stats(&self) -> RecorderStats {
        self.handle.stats()
    }

    /// Stops the recording at `at` without waiting (see [`RecorderHandle::stop`]).
    pub fn stop(&self, at: Instant) {
        self.handle.stop(at)
    }

    /// Waits for the writer to finish (stopping now if [`stop`](Self::stop) was not called)
    /// and returns the final manifest, or the first I/O error the writer met (it goes on
    /// with the other files after one; the manifest on disk says what was written).
    pub fn wait(self) -> io::Result<Manifest> {
        self.stop(Instant::now());
        self.finished()
    }

    /// Waits, without stopping it, until the recording is stopped (by [`stop`](Self::stop)
    /// or a [`RecorderHandle`]) and its files are finished; then as [`wait`](Self::wait).
    pub fn finished(mut self) -> io::Result<Manifest> {
        let writer = self.writer.take().expect("finished consumes the recorder");
        writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the recording's writer thread panicked")))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop(Instant::now());
    }
}

impl RecorderHandle {
    /// A track to record from now (`at`: when the media server decided so; the file starts
    /// at the track's first frame). Its packets go through the returned tap.
    pub fn add_track(&self, meta: TrackMeta, at: Instant) -> TrackTap {
        let id = self.next_track.fetch_add(1, Ordering::Relaxed);
        let tap = Arc::new(TapState::default());
        let _ = self.ctrl_tx.send(Control::AddTrack {
            id,
            meta,
            at,
            tap: tap.clone(),
        });
        TrackTap {
            id,
            data_tx: self.data_tx.clone(),
            ctrl_tx: self.ctrl_tx.clone(),
            shared: self.shared.clone(),
            tap,
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> RecorderStats {
        let s = &self.shared;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RecorderStats {
            packets_queued: get(&s.packets_queued),
            frames_written: get(&s.frames_written),
            bytes_written: get(&s.bytes_written),
            dropped_queue_full: get(&s.dropped_queue_full),
            dropped_over_max_bytes: get(&s.dropped_over_max_bytes),
            dropped_oversize: get(&s.dropped_oversize),
        }
    }

    /// Stops the recording at `at` without waiting: every track ends (after the packets
    /// already queued), the files are finished and the manifest gets `ended_at_ms`. Taps
    /// refuse packets from now on. Calling it again does nothing.
    pub fn stop(&self, at: Instant) {
        if !self.shared.stopped.swap(true, Ordering::Relaxed) {
            let _ = self.ctrl_tx.send(Control::Stop { at });
        }
    }
}

/// Where the media server puts one recorded track's packets (cheap to clone, one per worker
/// thread if need be).
#[derive(Debug, Clone)]
pub struct TrackTap {
    id: u32,
    data_tx: Sender<DataMsg>,
    ctrl_tx: Sender<Control>,
    shared: Arc<Shared>,
    tap: Arc<TapState>,
}

impl TrackTap {
    /// Hands over an RTP packet (`seq`: the extended sequence number; `payload`: after the
    /// header and padding). Never blocks (it is called on the media forwarding path): false
    /// when the packet was dropped (queue full, files at their size limit, payload over
    /// [`MAX_PAYLOAD_BYTES`]: counted in [`RecorderStats`]) or the track or recording has
    /// ended (not counted).
    pub fn packet(
        &self,
        arrival: Instant,
        seq: u64,
        rtp_ts: u32,
        marker: bool,
        payload: &[u8],
    ) -> bool {
        let shared = &self.shared;
        if self.tap.ended.load(Ordering::Relaxed) || shared.stopped.load(Ordering::Relaxed) {
            return false;
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            shared.dropped_oversize.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if shared.limit_reached.load(Ordering::Relaxed) {
            shared
                .dropped_over_max_bytes
                .fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let msg = DataMsg {
            track: self.id,
            packet: RtpPacket {
                seq,
                arrival,
                rtp_ts,
                marker,
                payload: payload.to_vec(),
            },
        };
        match self.data_tx.try_send(msg) {
            Ok(()) => {
                shared.packets_queued.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(TrySendError::Full(_)) => {
                shared.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// True once after the writer found this video track needs a keyframe (none yet, or a
    /// frame was lost; asked again each second it still waits): the media server then sends
    /// the publisher a PLI.
    pub fn take_keyframe_request(&self) -> bool {
        self.tap.keyframe_request.swap(false, Ordering::Relaxed)
    }

    /// Ends the track at `at` (the participant left or unpublished): its file is finished
    /// after the packets already queued. Further packets are refused; calling it again does
    /// nothing.
    pub fn end(&self, at: Instant) {
        if !self.tap.ended.swap(true, Ordering::Relaxed) {
            let _ = self.ctrl_tx.send(Control::EndTrack { id: self.id, at });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Kind;
    use std::time::Duration;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("orbita-record-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn mic() -> TrackMeta {
        TrackMeta {
            participant: "p1".into(),
            name: "Ada".into(),
            role: Role::Agent,
            source: "microphone".into(),
            codec: RecCodec::Opus,
        }
    }

    /// Two tracks added and all their packets queued before the writer first runs: each track
    /// is added before its packets are handled, so both are recorded.
    #[test]
    fn packets_queued_before_the_writer_runs_keep_their_tracks() {
        for round in 0..20 {
            let dir = temp_dir(&format!("queued-first-{round}"));
            let (open_gate, gate) = crossbeam_channel::bounded(1);
            let recorder =
                Recorder::start_gated(RecorderConfig::new(&dir, "r5", "room"), Some(gate)).unwrap();
            let t0 = Instant::now();
            let second = TrackMeta {
                participant: "p2".into(),
                ..mic()
            };
            let taps = [
                recorder.add_track(mic(), t0),
                recorder.add_track(second, t0),
            ];
            for i in 0..50u64 {
                let at = t0 + Duration::from_millis(20 * i);
                for tap in &taps {
                    assert!(tap.packet(at, i, 960 * i as u32, false, &[0xFC, 0xFF, 0xFE]));
                }
            }
            open_gate.send(()).unwrap();
            recorder.stop(t0 + Duration::from_secs(1));
            let manifest = recorder.wait().unwrap();
            let who: Vec<&str> = manifest
                .tracks
                .iter()
                .map(|t| t.participant.as_str())
                .collect();
            assert_eq!(who, ["p1", "p2"], "round {round}: {manifest:?}");
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let dir = temp_dir("queue-full");
        let mut config = RecorderConfig::new(&dir, "r1", "room");
        config.queue_packets = 8;
        let (open_gate, gate) = crossbeam_channel::bounded(1);
        let recorder = Recorder::start_gated(config, Some(gate)).unwrap();
        let t0 = Instant::now();
        let tap = recorder.add_track(mic(), t0);
        // The writer waits at its gate: the queue takes 8, the other 92 are refused at once.
        let accepted: Vec<bool> = (0..100u64)
            .map(|i| {
                let at = t0 + Duration::from_millis(20 * i);
                tap.packet(at, i, 960 * i as u32, false, &[0xFC, 0xFF, 0xFE])
            })
            .collect();
        assert_eq!(accepted.iter().filter(|&&a| a).count(), 8);
        assert!(accepted[..8].iter().all(|&a| a));
        let stats = recorder.stats();
        assert_eq!((stats.packets_queued, stats.dropped_queue_full), (8, 92));

        open_gate.send(()).unwrap();
        recorder.stop(t0 + Duration::from_secs(2));
        assert!(!tap.packet(t0, 100, 0, false, &[0xFC]), "stopped");
        let manifest = recorder.wait().unwrap();
        assert_eq!(manifest.dropped_packets, 92);
        assert_eq!(Manifest::read(&dir).unwrap(), manifest);
        assert!(manifest.ended_at_ms.unwrap() >= manifest.started_at_ms + 2_000);
        let track = &manifest.tracks[0];
        assert_eq!(
            (track.kind, track.file.as_str()),
            (Kind::Audio, "p1-audio-1.webm")
        );
        assert!((2_000..2_100).contains(&track.end_ms.unwrap()), "{track:?}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn writing_stops_at_max_bytes_and_the_rest_is_counted() {
        let dir = temp_dir("max-bytes");
        let mut config = RecorderConfig::new(&dir, "r4", "room");
        config.max_bytes = 2_000;
        let (open_gate, gate) = crossbeam_channel::bounded(1);
        let recorder = Recorder::start_gated(config, Some(gate)).unwrap();
        let shared = recorder.handle.shared.clone();
        let t0 = Instant::now();
        let tap = recorder.add_track(mic(), t0);
        // 10 s of 20-byte Opus frames, all queued before the writer starts.
        for i in 0..500u64 {
            let at = t0 + Duration::from_millis(20 * i);
            assert!(tap.packet(at, i, 960 * i as u32, false, &[0xFC; 20]));
        }
        open_gate.send(()).unwrap();
        recorder.stop(t0 + Duration::from_secs(10));
        let manifest = recorder.wait().unwrap();
        // The header and the first 1 s cluster (50 frames of 26 bytes) fit; the second
        // cluster, closed by frame 100, does not: the 399 packets after it are dropped.
        let written = shared.bytes_written.load(Ordering::Relaxed);
        assert!((1_400..=2_000).contains(&written), "{written} bytes");
        assert_eq!(shared.frames_written.load(Ordering::Relaxed), 50);
        assert_eq!(shared.dropped_over_max_bytes.load(Ordering::Relaxed), 399);
        assert!(shared.limit_reached.load(Ordering::Relaxed));
        assert!(!tap.packet(t0, 500, 0, false, &[0xFC]));
        let file = dir.join(&manifest.tracks[0].file);
        assert_eq!(std::fs::metadata(file).unwrap().len(), written);
        assert_eq!(manifest.dropped_packets, 0, "the queue never overflowed");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn oversize_payloads_and_ended_tracks_are_refused() {
        let dir = temp_dir("refused");
        let recorder = Recorder::start(RecorderConfig::new(&dir, "r2", "room")).unwrap();
        let t0 = Instant::now();
        let tap = recorder.add_track(mic(), t0);
        assert!(!tap.packet(t0, 1, 0, false, &vec![0; MAX_PAYLOAD_BYTES + 1]));
        assert!(tap.packet(t0, 2, 0, false, &[0xFC, 1]));
        tap.end(t0);
        assert!(!tap.packet(t0, 3, 960, false, &[0xFC, 1]));
        let stats = recorder.stats();
        assert_eq!((stats.dropped_oversize, stats.packets_queued), (1, 1));
        let manifest = recorder.wait().unwrap();
        assert_eq!(manifest.tracks.len(), 1);
        assert_eq!(manifest.dropped_packets, 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_dropped_recorder_still_finishes_its_files() {
        let dir = temp_dir("dropped");
        let mut recorder = Recorder::start(RecorderConfig::new(&dir, "r3", "room")).unwrap();
        let t0 = Instant::now();
        let tap = recorder.add_track(mic(), t0);
        for i in 0..10u64 {
            assert!(tap.packet(t0, i, 960 * i as u32, false, &[0xFC, 1, 2]));
        }
        // Keep the writer's handle to know when it is done, then drop the recorder unstopped.
        let writer = recorder.writer.take().unwrap();
        drop(recorder);
        let manifest = writer.join().unwrap().unwrap();
        assert!(manifest.ended_at_ms.is_some());
        assert!(manifest.tracks[0].end_ms.is_some());
        assert_eq!(Manifest::read(&dir).unwrap(), manifest);
        assert!(!tap.packet(t0, 10, 9_600, false, &[0xFC]));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
