//! The post-processing of finished recordings (crate `orbita-mixdown`: ffmpeg jobs, niced, a
//! queue kept in each recording's `job.json`): started with the server, it first queues what a
//! previous run left unfinished (a recording cut by a crash, a job that was running), then
//! every recording whose files are finished.

use std::path::Path;
use std::sync::Arc;

use orbita_mixdown::{JobEvent, JobState, Jobs, JobsSettings};

/// The server's post-processing, or nothing when its workers could not start (logged).
#[derive(Clone)]
pub struct PostProcessing {
    jobs: Option<Arc<Jobs>>,
}

impl PostProcessing {
    /// `workers` jobs at once over the recordings under `root`; what is left from a previous
    /// run is queued (on a thread of its own: the scan reads the folder).
    pub fn start(root: &Path, workers: usize) -> PostProcessing {
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
        if root.is_dir() {
            let (scanner, root) = (Arc::clone(&jobs), root.to_path_buf());
            let _ = std::thread::Builder::new()
                .name("recording-scan".into())
                .spawn(move || match scanner.scan(&root, &[]) {
                    Ok(report) if !report.queued.is_empty() || !report.errors.is_empty() => {
                        tracing::info!(
                            queued = report.queued.len(),
                            failed = report.failed.len(),
                            errors = ?report.errors,
                            "recordings left unfinished by the last run"
                        )
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(root = %root.display(), "cannot scan the recordings: {e}")
                    }
                });
        }
        PostProcessing { jobs: Some(jobs) }
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
