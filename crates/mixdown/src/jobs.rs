//! The persistent job queue: a pool of worker threads running [`run_job`] on recordings,
//! each job's state in its recording's `job.json` (no database): at start,
//! [`Jobs::scan`] queues again whatever a restart or a crash left unfinished.

use std::collections::HashSet;
use std::io;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use orbita_record::MANIFEST_FILE;
use parking_lot::{Condvar, Mutex};
use serde::{Deserialize, Serialize};

use crate::job::{JobFile, JobState};
use crate::queue::{Finish, Pushed, Queue, RetryPolicy, Take};
use crate::run::{run_job, JobError, RunSettings};

/// Workers at most.
pub const MAX_WORKERS: usize = 16;

/// The queue's settings; [`Default`] is what production uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct JobsSettings {
    /// Jobs run at once (worker threads), 1 to [`MAX_WORKERS`]: each runs one ffmpeg at a
    /// time, which uses every core it can.
    pub workers: usize,
    /// Attempts of a job at most, the first included.
    pub max_attempts: u32,
    /// The wait after a job's first failure, ms, doubled after each further one...
    pub backoff_base_ms: u64,
    /// ...up to this, ms.
    pub backoff_max_ms: u64,
    /// Jobs waiting at most; an enqueue beyond is refused.
    pub max_queued: usize,
    /// Entries of the recordings' root a scan reads at most.
    pub max_scan_entries: usize,
    /// How each job runs.
    pub run: RunSettings,
}

impl Default for JobsSettings {
    fn default() -> Self {
        JobsSettings {
            workers: 1,
            max_attempts: 3,
            backoff_base_ms: 30_000,
            backoff_max_ms: 600_000,
            max_queued: 10_000,
            max_scan_entries: 100_000,
            run: RunSettings::default(),
        }
    }
}

/// A job's change of state (queued, running, queued again after a failure, done, failed),
/// with its whole `job.json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEvent {
    /// The recording's folder.
    pub dir: PathBuf,
    /// The job, as just written.
    pub job: JobFile,
}

/// Why a recording could not be queued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The folder has no `recording.json`.
    #[error("{0}: no recording.json")]
    NotARecording(PathBuf),
    /// The queue holds [`JobsSettings::max_queued`] jobs.
    #[error("the queue is full")]
    Full,
    /// The folder or its `job.json` could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// What a [`Jobs::scan`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// Recordings queued (never processed, pending, or left running by a crash).
    pub queued: Vec<PathBuf>,
    /// Recordings given up (left running by a crash at their last allowed attempt).
    pub failed: Vec<PathBuf>,
    /// Recordings skipped because they are still being recorded.
    pub live: usize,
    /// Recordings already done or failed.
    pub finished: usize,
    /// Recordings that could not be queued, and why.
    pub errors: Vec<(PathBuf, String)>,
    /// Whether the scan stopped at [`JobsSettings::max_scan_entries`].
    pub truncated: bool,
}

/// The job queue and its workers. Dropping it (or [`Jobs::shutdown`]) kills the running
/// ffmpeg processes and waits for the workers; their jobs stay `pending` in `job.json`, for
/// the next start's scan.
pub struct Jobs {
    shared: Arc<Shared>,
    cancel: Option<Sender<()>>,
    workers: Vec<JoinHandle<()>>,
}

struct Shared {
    settings: JobsSettings,
    queue: Mutex<Inner>,
    wake: Condvar,
    events: Sender<JobEvent>,
}

struct Inner {
    queue: Queue,
    stopping: bool,
}

impl Jobs {
    /// Starts the workers; every change of a job's state is sent to the returned receiver
    /// (unbounded: a few messages per job; dropping the receiver is fine).
    pub fn start(settings: JobsSettings) -> io::Result<(Jobs, Receiver<JobEvent>)> {
        let policy = RetryPolicy {
            max_attempts: settings.max_attempts.max(1),
            backoff_base: Duration::from_millis(settings.backoff_base_ms),
            backoff_max: Duration::from_millis(settings.backoff_max_ms),
        };
        let (events, events_rx) = unbounded();
        let (cancel, cancel_rx) = crossbeam_channel::bounded::<()>(0);
        let workers = settings.workers.clamp(1, MAX_WORKERS);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Inner {
                queue: Queue::new(policy, settings.max_queued),
                stopping: false,
            }),
            settings,
            wake: Condvar::new(),
            events,
        });
        let mut jobs = Jobs {
            shared,
            cancel: Some(cancel),
            workers: Vec::with_capacity(workers),
        };
        for n in 0..workers {
            let shared = Arc::clone(&jobs.shared);
            let cancel = cancel_rx.clone();
            // On an error, dropping `jobs` stops the workers started.
            jobs.workers.push(
                std::thread::Builder::new()
                    .name(format!("mixdown-{n}"))
                    .spawn(move || worker(&shared, &cancel))?,
            );
        }
        Ok((jobs, events_rx))
    }

    /// Queues the recording in `dir` (its call has ended). Returns the job's state: `pending`
    /// when queued or already queued, `running`, or `done` for a job done before (not run
    /// again). A `failed` job is queued again with fresh attempts.
    pub fn enqueue(&self, dir: &Path) -> Result<JobState, EnqueueError> {
        let dir = canonical(dir)?;
        if !dir.join(MANIFEST_FILE).is_file() {
            return Err(EnqueueError::NotARecording(dir));
        }
        let job = JobFile::read(&dir).map_err(|source| EnqueueError::Io {
            path: dir.join(crate::job::JOB_FILE),
            source,
        })?;
        let job = match job {
            Some(job) if job.state == JobState::Done => return Ok(JobState::Done),
            Some(job) if job.state == JobState::Failed => {
                let mut fresh = JobFile::new(&job.id);
                fresh.last_error = job.last_error;
                fresh
            }
            Some(job) => job,
            None => JobFile::new(&folder_name(&dir)),
        };
        self.admit(dir, job)
    }

    /// Finds the recordings under `root` (its sub-folders with a `recording.json`) whose job
    /// is not done or failed (never processed; pending; left running by a crash, including
    /// recordings a crash left without `ended_at_ms`) and queues them; those in `live`
    /// (folders still being recorded) are left alone.
    pub fn scan(&self, root: &Path, live: &[PathBuf]) -> io::Result<ScanReport> {
        let live: HashSet<PathBuf> = live
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect();
        let mut report = ScanReport::default();
        let mut dirs = Vec::new();
        for (n, entry) in std::fs::read_dir(root)?.enumerate() {
            if n >= self.shared.settings.max_scan_entries {
                report.truncated = true;
                break;
            }
            let Ok(entry) = entry else { continue };
            let path = entry.path();
            if path.is_dir() && path.join(MANIFEST_FILE).is_file() {
                dirs.push(path);
            }
        }
        // Oldest first, as far as names tell (ids are time-ordered by the recorder).
        dirs.sort();
        for path in dirs {
            let dir = std::fs::canonicalize(&path).unwrap_or(path);
            if live.contains(&dir) {
                report.live += 1;
                continue;
            }
            let job = match JobFile::read(&dir) {
                Ok(Some(job)) if job.state.is_final() => {
                    report.finished += 1;
                    continue;
                }
                Ok(Some(job)) => job,
                Ok(None) => JobFile::new(&folder_name(&dir)),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "unreadable job.json: the job starts over");
                    JobFile::new(&folder_name(&dir))
                }
            };
            match self.admit(dir.clone(), job) {
                Ok(JobState::Failed) => report.failed.push(dir),
                Ok(_) => report.queued.push(dir),
                Err(e) => report.errors.push((dir, e.to_string())),
            }
        }
        Ok(report)
    }

    /// The job of the recording in `dir`, as its `job.json` has it (`None`: never queued).
    pub fn state(&self, dir: &Path) -> io::Result<Option<JobFile>> {
        JobFile::read(dir)
    }

    /// Takes the recording in `dir` out of the queue (it is about to be deleted): `true` when
    /// it was waiting or not queued at all, `false` when its job is running now (it must not
    /// be deleted under ffmpeg; try again later).
    pub fn withdraw(&self, dir: &Path) -> bool {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut inner = self.shared.queue.lock();
        if inner.queue.is_running(&dir) {
            return false;
        }
        inner.queue.abandon_waiting(&dir);
        true
    }

    /// Jobs waiting and running.
    pub fn load(&self) -> (usize, usize) {
        let inner = self.shared.queue.lock();
        (inner.queue.waiting(), inner.queue.running())
    }

    /// Stops: kills the running ffmpeg processes, waits for the workers.
    pub fn shutdown(self) {
        drop(self);
    }

    /// Queues `job` (pending in `job.json`), unless it is queued or running already.
    fn admit(&self, dir: PathBuf, mut job: JobFile) -> Result<JobState, EnqueueError> {
        let shared = &self.shared;
        let mut inner = shared.queue.lock();
        // The file is written under the lock: a worker cannot take the job (and write
        // `running`) before `pending` is on disk.
        match inner.queue.push(dir.clone(), job.attempts, Instant::now()) {
            Pushed::Queued => {
                job.set_state(JobState::Pending);
                write(shared, &dir, &job).map_err(|source| {
                    inner.queue.abandon_waiting(&dir);
                    EnqueueError::Io {
                        path: dir.join(crate::job::JOB_FILE),
                        source,
                    }
                })?;
                drop(inner);
                shared.wake.notify_one();
                Ok(JobState::Pending)
            }
            Pushed::AlreadyQueued => Ok(JobState::Pending),
            Pushed::AlreadyRunning => Ok(JobState::Running),
            Pushed::Full => Err(EnqueueError::Full),
            Pushed::Exhausted => {
                job.set_state(JobState::Failed);
                if job.last_error.is_none() {
                    job.set_error("interrupted (the process stopped) during its last attempt");
                }
                write(shared, &dir, &job).map_err(|source| EnqueueError::Io {
                    path: dir.join(crate::job::JOB_FILE),
                    source,
                })?;
                Ok(JobState::Failed)
            }
        }
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        self.shared.queue.lock().stopping = true;
        self.shared.wake.notify_all();
        // Disconnects every worker's cancel receiver: running children are killed.
        self.cancel = None;
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// A worker: takes the next due job, runs it, records the outcome; until stopped.
fn worker(shared: &Shared, cancel: &Receiver<()>) {
    loop {
        let (dir, attempt) = {
            let mut inner = shared.queue.lock();
            loop {
                if inner.stopping {
                    return;
                }
                match inner.queue.take(Instant::now()) {
                    Take::Run { dir, attempt } => break (dir, attempt),
                    Take::WaitUntil(due) => {
                        shared.wake.wait_until(&mut inner, due);
                    }
                    Take::Idle => shared.wake.wait(&mut inner),
                }
            }
        };
        run_one(shared, cancel, dir, attempt);
        // A retry may be due earlier than what another worker waits for.
        shared.wake.notify_all();
    }
}

/// One attempt of one job.
fn run_one(shared: &Shared, cancel: &Receiver<()>, dir: PathBuf, attempt: u32) {
    let mut job = match JobFile::read(&dir) {
        Ok(Some(job)) => job,
        _ => JobFile::new(&folder_name(&dir)),
    };
    job.attempts = attempt;
    job.set_state(JobState::Running);
    {
        let _inner = shared.queue.lock();
        log_write(write(shared, &dir, &job), &dir);
    }
    tracing::info!(dir = %dir.display(), attempt, "mixdown job started");
    let started = Instant::now();
    // A bug in a job must not take its worker (and the job's place in the queue) with it.
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        run_job(&dir, &shared.settings.run, cancel)
    }))
    .unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(JobError::Panicked(what))
    });
    job.elapsed_ms = Some(started.elapsed().as_millis() as u64);

    let mut inner = shared.queue.lock();
    match result {
        Err(JobError::Cancelled) => {
            inner.queue.abandon(&dir);
            job.attempts = attempt - 1;
            job.set_state(JobState::Pending);
            tracing::info!(dir = %dir.display(), "mixdown job cancelled: pending for the next start");
        }
        Ok(report) => {
            inner.queue.finish(&dir, true, Instant::now());
            job.last_error = None;
            job.set_report(report);
            job.set_state(JobState::Done);
            tracing::info!(dir = %dir.display(), elapsed_ms = job.elapsed_ms, "mixdown job done");
        }
        Err(error) => {
            let error = error.to_string();
            job.set_error(&error);
            match inner.queue.finish(&dir, false, Instant::now()) {
                Finish::RetryAt(due) => {
                    job.set_state(JobState::Pending);
                    tracing::warn!(
                        dir = %dir.display(), attempt, %error,
                        retry_in_ms = due.saturating_duration_since(Instant::now()).as_millis() as u64,
                        "mixdown job failed: retried"
                    );
                }
                Finish::Failed | Finish::Done => {
                    job.set_state(JobState::Failed);
                    tracing::error!(dir = %dir.display(), attempt, %error, "mixdown job failed: given up");
                }
            }
        }
    }
    // Under the lock: a retry due at once cannot be taken (and written `running`) first.
    log_write(write(shared, &dir, &job), &dir);
}

/// Writes `job.json` and reports the change. Called with the queue locked.
fn write(shared: &Shared, dir: &Path, job: &JobFile) -> io::Result<()> {
    let written = job.write(dir);
    let _ = shared.events.send(JobEvent {
        dir: dir.to_owned(),
        job: job.clone(),
    });
    written
}

fn log_write(result: io::Result<()>, dir: &Path) {
    if let Err(e) = result {
        tracing::error!(dir = %dir.display(), error = %e, "cannot write job.json");
    }
}

fn canonical(dir: &Path) -> Result<PathBuf, EnqueueError> {
    std::fs::canonicalize(dir).map_err(|source| EnqueueError::Io {
        path: dir.to_owned(),
        source,
    })
}

fn folder_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
