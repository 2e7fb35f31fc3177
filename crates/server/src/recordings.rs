//! Recording calls: the server's recorder slots, a folder per recording, start and stop (by
//! policy at the first join, or by the call's agent), and the hand-off to post-processing once
//! a recording's files are finished.
//!
//! A recording holds its slot from its start until its writer has finished its files (after
//! `stop`, or when the room ends: the SFU stops the recorder when it closes a room). One
//! thread per live recording waits for that (`Recorder::wait`), frees the slot and hands the
//! folder on.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use orbita_record::{Recorder, RecorderConfig};
use orbita_sfu::RoomId;
use parking_lot::Mutex;

use crate::backend::MediaBackend;
use crate::call_log::CallLog;
use crate::post_processing::PostProcessing;
use crate::recording_store::{folder_files, Usage};

/// Packets a recording's writer may have waiting before new ones are dropped (and counted).
const RECORDER_QUEUE_PACKETS: usize = 4096;

/// Why a recording did not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// Recording is off on this server (`recording_slots = 0`).
    Off,
    /// Every recorder slot is busy.
    NoFreeRecorder {
        /// The server's slots.
        slots: usize,
    },
    /// The recordings take all the disk `recordings_max_bytes` allows.
    QuotaFull {
        /// Bytes the recordings take.
        used: u64,
        /// The quota.
        max: u64,
    },
    /// The recording's folder or files could not be made.
    Io(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Off => write!(f, "recording is off on this server"),
            StartError::NoFreeRecorder { slots } => write!(
                f,
                "no free recorder: all {slots} recorder slots of this server are busy; the call goes on unrecorded, try again later"
            ),
            StartError::QuotaFull { used, max } => write!(
                f,
                "the recordings' disk quota is used up ({used} of {max} bytes): the call goes on unrecorded"
            ),
            StartError::Io(e) => write!(f, "the recording could not start: {e}"),
        }
    }
}

/// A recording in progress.
struct Active {
    id: String,
    room: RoomId,
    /// Stopped (by the agent, or the room ended): it holds its slot until its files are
    /// finished, but the call is no longer recorded.
    stopping: bool,
}

#[derive(Default)]
struct Inner {
    /// Live recordings by room code.
    active: HashMap<String, Active>,
}

/// The server's recordings.
pub struct Recordings {
    dir: PathBuf,
    slots: usize,
    record_calls: bool,
    /// The quota of all recordings together (0: none).
    max_bytes: u64,
    /// What they take.
    usage: Arc<Usage>,
    backend: Arc<dyn MediaBackend>,
    inner: Mutex<Inner>,
    post: PostProcessing,
    /// Told of each recording that starts (for the call's record).
    calls: Arc<CallLog>,
}

impl Recordings {
    /// Recordings in folders under `dir`, at most `slots` at once; `record_calls`: every call
    /// from its first participant on; all together at most `max_bytes` (0: no quota), their
    /// use kept in `usage`. `post` gets each finished recording's folder; `calls` hears of each
    /// recording that starts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        dir: PathBuf,
        slots: usize,
        record_calls: bool,
        max_bytes: u64,
        usage: Arc<Usage>,
        backend: Arc<dyn MediaBackend>,
        post: PostProcessing,
        calls: Arc<CallLog>,
    ) -> Arc<Recordings> {
        Arc::new(Recordings {
            dir,
            slots,
            record_calls,
            max_bytes,
            usage,
            backend,
            inner: Mutex::new(Inner::default()),
            post,
            calls,
        })
    }

    /// The folder recordings are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The disk the recordings take.
    pub fn usage(&self) -> &Arc<Usage> {
        &self.usage
    }

    /// Delete the recordings past `retention_days` at `now_ms` (never one being recorded) and
    /// count what is left; returns the folders deleted. Blocking: it reads the folder.
    pub fn sweep(&self, now_ms: u64, retention_days: u64) -> Vec<PathBuf> {
        let live = self.live_folders();
        self.usage
            .sweep(&self.dir, now_ms, retention_days, &live, |dir| {
                self.post.withdraw(dir)
            })
    }

    /// Queue the post-processing a previous run left unfinished (after the first sweep, so
    /// that expired recordings are not processed). Blocking: it reads the folder.
    pub fn queue_left_over(&self) {
        let live: Vec<PathBuf> = self.live_folders().into_iter().collect();
        self.post.queue_left_over(&self.dir, &live);
    }

    /// The folders of recordings in progress (the post-processing leaves them alone).
    pub fn live_folders(&self) -> HashSet<PathBuf> {
        let inner = self.inner.lock();
        inner
            .active
            .values()
            .map(|a| self.dir.join(&a.id))
            .collect()
    }

    /// Whether the room `code` is recorded now or will be when its first participant comes
    /// (`wanted`: made with `record`; `started`: its policy start was tried already); the
    /// pre-join page tells guests.
    pub fn announced(&self, code: &str, wanted: bool, started: bool) -> bool {
        self.is_recording(code) || (!started && self.records_from_the_start(wanted))
    }

    /// Whether the room `code` is being recorded.
    pub fn is_recording(&self, code: &str) -> bool {
        self.inner
            .lock()
            .active
            .get(code)
            .is_some_and(|a| !a.stopping)
    }

    /// The recorder slots (recordings at once at most; 0: recording is off).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Recordings in progress.
    pub fn active(&self) -> usize {
        self.inner.lock().active.len()
    }

    /// The codes of the rooms being recorded.
    pub fn recording_codes(&self) -> Vec<String> {
        self.inner.lock().active.keys().cloned().collect()
    }

    /// Whether the policy records a room from its first participant on (`wanted`: the room
    /// was made with `record`). The first join of such a room starts it, once: an agent who
    /// stops it is not overruled by the next join.
    pub fn records_from_the_start(&self, wanted: bool) -> bool {
        self.slots > 0 && (self.record_calls || wanted)
    }

    /// Start recording room `code` (SFU room `room`, created by the account `owner`, if any).
    /// `Ok(false)` when it is recorded already.
    pub fn start(
        self: &Arc<Self>,
        code: &str,
        room: RoomId,
        owner: Option<String>,
    ) -> Result<bool, StartError> {
        let mut inner = self.inner.lock();
        if inner.active.get(code).is_some_and(|a| !a.stopping) {
            return Ok(false);
        }
        if self.slots == 0 {
            return Err(StartError::Off);
        }
        if inner.active.len() >= self.slots {
            return Err(StartError::NoFreeRecorder { slots: self.slots });
        }
        let used = self.usage.bytes();
        if self.max_bytes > 0 && used >= self.max_bytes {
            return Err(StartError::QuotaFull {
                used,
                max: self.max_bytes,
            });
        }
        let id = recording_id(code);
        let dir = self.dir.join(&id);
        let recorder = Recorder::start(RecorderConfig {
            dir: dir.clone(),
            id: id.clone(),
            room: code.to_string(),
            owner,
            queue_packets: RECORDER_QUEUE_PACKETS,
            // What is left of the quota (shared with the other live recordings: each may take
            // it, so the quota can be passed by at most the live recordings' share).
            max_bytes: if self.max_bytes > 0 {
                self.max_bytes - used
            } else {
                0
            },
        })
        .map_err(|e| StartError::Io(format!("{}: {e}", dir.display())))?;
        inner.active.insert(
            code.to_string(),
            Active {
                id: id.clone(),
                room,
                stopping: false,
            },
        );
        drop(inner);
        tracing::info!(%code, recording = %id, "recording started");
        self.calls.recording(code, &id);
        self.backend.start_recording(room, recorder.handle());
        let this = Arc::clone(self);
        let (code, watched) = (code.to_string(), code.to_string());
        let spawned = std::thread::Builder::new()
            .name("recording-wait".into())
            .spawn(move || this.wait_for(code, id, dir, recorder));
        if let Err(e) = spawned {
            // The recorder went with the closure (dropped: stopped); free its slot.
            tracing::error!("cannot watch a recording: {e}");
            self.inner.lock().active.remove(&watched);
        }
        Ok(true)
    }

    /// Stop recording room `code` (the slot is free once the files are finished).
    pub fn stop(&self, code: &str) {
        let room = self.inner.lock().active.get_mut(code).map(|a| {
            a.stopping = true;
            a.room
        });
        if let Some(room) = room {
            self.backend.stop_recording(room);
        }
    }

    /// Wait until the recording's files are finished, free its slot and hand the folder on.
    fn wait_for(&self, code: String, id: String, dir: PathBuf, recorder: Recorder) {
        match recorder.finished() {
            Ok(manifest) => tracing::info!(
                %code,
                recording = %id,
                tracks = manifest.tracks.len(),
                dropped = manifest.dropped_packets,
                "recording finished"
            ),
            Err(e) => tracing::warn!(%code, recording = %id, "recording ended with an error: {e}"),
        }
        {
            let mut inner = self.inner.lock();
            if inner.active.get(&code).is_some_and(|a| a.id == id) {
                inner.active.remove(&code);
            }
        }
        self.usage.add(folder_files(&dir).0);
        self.post.enqueue(&dir);
    }
}

/// A new recording's id (its folder's name): UTC time, room code and a random suffix, e.g.
/// `20261207T080102Z-4821-9f3a`.
fn recording_id(code: &str) -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let suffix: u16 = rand::random();
    format!("{now}-{code}-{suffix:04x}")
}
