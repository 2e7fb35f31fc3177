//! The post-processing of finished recordings (crate `orbita-mixdown`: ffmpeg jobs, niced, a
//! queue kept in each recording's `job.json`): after the first sweep it queues what a previous
//! run left unfinished (a recording cut by a crash, a job that was running), then every
//! recording whose files are finished. A recording is taken out of the queue before the sweep
//! deletes it, and one whose job runs is not deleted until a later sweep.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use orbita_mixdown::{JobEvent, JobState, Jobs, JobsSettings};

/// The server's post-processing, or nothing when its workers could not start (logged).
#[derive(Clone)]
pub struct PostProcessing {
    jobs: Option<Arc<Jobs>>,
}

impl PostProcessing {
    /// `workers` jobs at once. What a previous run left is queued by [`Self::queue_left_over`],
    /// after the first sweep has deleted the recordings past their retention.
    pub fn start(workers: usize) -> PostProcessing {
        let settings = JobsSettings {
            workers,
            ..JobsSettings::default()
        };
        let (jobs, events) = match Jobs::start(settings) {
            Ok(started) => started,
            Err(e) => {
                tracing::error!("the post-processing of recordings cannot start: {e}");
                return PostProcessing { jobs: None };
            }
        };
        let jobs = Arc::new(jobs);
        let _ = std::thread::Builder::new()
            .name("recording-jobs".into())
            .spawn(move || events.into_iter().for_each(|e| log_event(&e)));
        PostProcessing { jobs: Some(jobs) }
    }

    /// Queue what a previous run left unfinished under `root` (but not the folders in `live`).
    /// Blocking: it reads the folder.
    pub fn queue_left_over(&self, root: &Path, live: &[PathBuf]) {
        let Some(jobs) = &self.jobs else { return };
        if !root.is_dir() {
            return;
        }
        match jobs.scan(root, live) {
            Ok(report) if !report.queued.is_empty() || !report.errors.is_empty() => {
                tracing::info!(
                    queued = report.queued.len(),
                    failed = report.failed.len(),
                    errors = ?report.errors,
                    "recordings left unfinished by the last run"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(root = %root.display(), "cannot scan the recordings: {e}"),
        }
    }

    /// Takes the recording in `dir` out of the queue before it is deleted: `false` while its
    /// job runs (delete it later).
    pub fn withdraw(&self, dir: &Path) -> bool {
        self.jobs.as_ref().is_none_or(|jobs| jobs.withdraw(dir))
    }

    /// Queue a recording whose files are finished.
    pub fn enqueue(&self, dir: &Path) {
        let Some(jobs) = &self.jobs else {
            tracing::warn!(dir = %dir.display(), "recording not post-processed: no workers");
            return;
        };
        if let Err(e) = jobs.enqueue(dir) {
            tracing::warn!(dir = %dir.display(), "cannot queue the recording's post-processing: {e}");
        }
    }
}

fn log_event(event: &JobEvent) {
    let dir = event.dir.display();
    let job = &event.job;
    match job.state {
        JobState::Done => tracing::info!(
            %dir,
            outputs = ?job.outputs.iter().map(|o| &o.file).collect::<Vec<_>>(),
            "recording post-processed"
        ),
        JobState::Failed => tracing::warn!(
            %dir,
            attempts = job.attempts,
            error = job.last_error.as_deref().unwrap_or(""),
            "recording post-processing failed"
        ),
        _ => tracing::debug!(%dir, state = ?job.state, attempt = job.attempts, "recording job"),
    }
}
