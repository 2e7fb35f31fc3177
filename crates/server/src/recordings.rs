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
            StartError::Io(e) => write!(f, "the recording could not start: {e}"),
        }
    }
}

/// A recording in progress.
struct Active {
    id: String,
    room: RoomId,
}

#[derive(Default)]
struct Inner {
    /// Live recordings by room code.
    active: HashMap<String, Active>,
}

/// What happens to a recording's folder once its files are finished (post-processing).
pub type OnFinished = Box<dyn Fn(PathBuf) + Send + Sync>;

/// The server's recordings.
pub struct Recordings {
    dir: PathBuf,
    slots: usize,
    record_calls: bool,
    backend: Arc<dyn MediaBackend>,
    inner: Mutex<Inner>,
    on_finished: OnFinished,
}

impl Recordings {
    /// Recordings in folders under `dir`, at most `slots` at once; `record_calls`: every call
    /// from its first participant on. `on_finished` gets each finished recording's folder.
    pub fn new(
        dir: PathBuf,
        slots: usize,
        record_calls: bool,
        backend: Arc<dyn MediaBackend>,
        on_finished: OnFinished,
    ) -> Arc<Recordings> {
        Arc::new(Recordings {
            dir,
            slots,
            record_calls,
            backend,
            inner: Mutex::new(Inner::default()),
            on_finished,
        })
    }

    /// The folder recordings are written to.
    pub fn dir(&self) -> &Path {
        &self.dir
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

    /// Whether the room `code` is recorded now or will be from its first participant on
    /// (`wanted`: the room was made with `record`); the pre-join page tells guests.
    pub fn announced(&self, code: &str, wanted: bool) -> bool {
        self.slots > 0 && (self.record_calls || wanted || self.is_recording(code))
    }

    /// Whether the room `code` is being recorded.
    pub fn is_recording(&self, code: &str) -> bool {
        self.inner.lock().active.contains_key(code)
    }

    /// Recordings in progress.
    pub fn active(&self) -> usize {
        self.inner.lock().active.len()
    }

    /// A participant entered room `code` (`wanted`: the room was made with `record`): start
    /// recording when the policy says so. `None` when nothing had to start or it started; the
    /// reason when it should have but could not.
    pub fn on_join(self: &Arc<Self>, code: &str, room: RoomId, wanted: bool) -> Option<StartError> {
        if !(self.record_calls || wanted) || self.slots == 0 {
            return None;
        }
        self.start(code, room).err()
    }

    /// Start recording room `code` (SFU room `room`). `Ok(false)` when it is recorded already.
    pub fn start(self: &Arc<Self>, code: &str, room: RoomId) -> Result<bool, StartError> {
        let mut inner = self.inner.lock();
        if inner.active.contains_key(code) {
            return Ok(false);
        }
        if self.slots == 0 {
            return Err(StartError::Off);
        }
        if inner.active.len() >= self.slots {
            return Err(StartError::NoFreeRecorder { slots: self.slots });
        }
        let id = recording_id(code);
        let dir = self.dir.join(&id);
        let recorder = Recorder::start(RecorderConfig {
            dir: dir.clone(),
            id: id.clone(),
            room: code.to_string(),
            queue_packets: RECORDER_QUEUE_PACKETS,
            max_bytes: 0,
        })
        .map_err(|e| StartError::Io(format!("{}: {e}", dir.display())))?;
        inner.active.insert(
            code.to_string(),
            Active {
                id: id.clone(),
                room,
            },
        );
        drop(inner);
        tracing::info!(%code, recording = %id, "recording started");
        self.backend.start_recording(room, recorder.handle());
        let this = Arc::clone(self);
        let code = code.to_string();
        let spawned = std::thread::Builder::new()
            .name("recording-wait".into())
            .spawn(move || this.wait_for(code, id, dir, recorder));
        if let Err(e) = spawned {
            tracing::error!("cannot watch a recording: {e}");
        }
        Ok(true)
    }

    /// Stop recording room `code` (the slot is free once the files are finished).
    pub fn stop(&self, code: &str) {
        let room = self.inner.lock().active.get(code).map(|a| a.room);
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
        (self.on_finished)(dir);
    }
}

/// A new recording's id (its folder's name): UTC time, room code and a random suffix, e.g.
/// `20261207T080102Z-4821-9f3a`.
fn recording_id(code: &str) -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let suffix: u16 = rand::random();
    format!("{now}-{code}-{suffix:04x}")
}
