//! `job.json`: a recording's post-processing job, in the recording's folder, written
//! atomically (a temporary file renamed over it) at each change of state. It is the queue's
//! memory: after a restart, [`crate::Jobs::scan`] finds every job not `done` or `failed`.

use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::plan::Skipped;
use crate::run::{OutputFile, Report};

/// The job's file name inside a recording's folder.
pub const JOB_FILE: &str = "job.json";
/// The version written in [`JobFile::version`].
pub const JOB_VERSION: u32 = 1;
/// The longest `last_error` kept, bytes.
pub const MAX_ERROR_BYTES: usize = 4096;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Queued: waiting for a worker, or for its next attempt after a failure.
    Pending,
    /// A worker runs it (or ran it when the process died: found again by a scan).
    Running,
    /// Its outputs are made.
    Done,
    /// It failed its last allowed attempt; `last_error` says why.
    Failed,
}

impl JobState {
    /// Whether nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed)
    }
}

/// The contents of `job.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFile {
    /// [`JOB_VERSION`].
    pub version: u32,
    /// The recording's id: its folder's name.
    pub id: String,
    /// Where it is.
    pub state: JobState,
    /// Attempts started (a running one included).
    pub attempts: u32,
    /// Why the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
    /// When the state last changed, ms since the Unix epoch.
    pub updated_at_ms: u64,
    /// How long the last finished attempt took, ms.
    #[serde(default)]
    pub elapsed_ms: Option<u64>,
    /// The call's length, ms (every output's length), once known.
    #[serde(default)]
    pub call_ms: Option<u64>,
    /// Whether the call's end came from the manifest (else it was cut short).
    #[serde(default)]
    pub end_from_manifest: Option<bool>,
    /// The outputs made (when done).
    #[serde(default)]
    pub outputs: Vec<OutputFile>,
    /// Tracks left out, with why.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// What a reader should know (no video: audio only, ...).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl JobFile {
    /// A new pending job for the recording `id`.
    pub fn new(id: &str) -> JobFile {
        JobFile {
            version: JOB_VERSION,
            id: id.into(),
            state: JobState::Pending,
            attempts: 0,
            last_error: None,
            updated_at_ms: unix_ms(),
            elapsed_ms: None,
            call_ms: None,
            end_from_manifest: None,
            outputs: Vec::new(),
            skipped: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Reads `job.json` from a recording's folder; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> io::Result<Option<JobFile>> {
        match std::fs::read(dir.join(JOB_FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes it to a recording's folder atomically (a temporary file renamed over the old
    /// one, synced first: a crash leaves the old or the new, never half of one).
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        use std::io::Write;
        let tmp = dir.join(format!("{JOB_FILE}.tmp"));
        let text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, dir.join(JOB_FILE))
    }

    /// Sets the state and the time of the change.
    pub fn set_state(&mut self, state: JobState) {
        self.state = state;
        self.updated_at_ms = unix_ms();
    }

    /// Records a failed attempt's error (cut to [`MAX_ERROR_BYTES`]).
    pub fn set_error(&mut self, error: &str) {
        let mut error = error.to_owned();
        if error.len() > MAX_ERROR_BYTES {
            let mut cut = error.len() - MAX_ERROR_BYTES;
            while !error.is_char_boundary(cut) {
                cut += 1;
            }
            error = format!("...{}", &error[cut..]);
        }
        self.last_error = Some(error);
    }

    /// Records a successful attempt's report.
    pub fn set_report(&mut self, report: Report) {
        self.call_ms = Some(report.call_ms);
        self.end_from_manifest = Some(report.end_from_manifest);
        self.outputs = report.outputs;
        self.skipped = report.skipped;
        self.notes = report.notes;
    }
}

/// Now, ms since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
