//! One job, start to end: read the manifest, measure each track file with ffprobe, plan,
//! run the plan's ffmpeg commands (niced, under one time limit proportional to the call's
//! length), rename each output into place once complete, and measure the outputs.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use orbita_record::manifest::MANIFEST_VERSION;
use orbita_record::Manifest;
use serde::{Deserialize, Serialize};

use crate::child::{self, ChildError, ChildLimits};
use crate::plan::{self, Output, PlanSettings, Skipped};
use crate::probe::{self, Probe, ProbeParser};

/// How jobs run their tools; [`Default`] is what production uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSettings {
    /// The ffmpeg program (looked up in `PATH` when not a path).
    pub ffmpeg: PathBuf,
    /// The ffprobe program.
    pub ffprobe: PathBuf,
    /// Added to the tools' nice value: the post-processing yields to the live calls.
    pub niceness: i32,
    /// A job's time limit for its ffmpeg runs is this...
    pub timeout_base_secs: u64,
    /// ...plus this many times the call's length.
    pub timeout_per_call_second: u64,
    /// The time limit of one ffprobe run.
    pub probe_timeout_secs: u64,
    /// Bytes of a failed tool's stderr kept for the job's error.
    pub stderr_tail_bytes: usize,
    /// The plan's settings.
    pub plan: PlanSettings,
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            ffmpeg: "ffmpeg".into(),
            ffprobe: "ffprobe".into(),
            niceness: 10,
            timeout_base_secs: 60,
            timeout_per_call_second: 2,
            probe_timeout_secs: 120,
            stderr_tail_bytes: 2048,
            plan: PlanSettings::default(),
        }
    }
}

impl RunSettings {
    /// The time limit of a job's ffmpeg runs, all together, for a call of `call_ms`.
    pub fn job_timeout(&self, call_ms: u64) -> Duration {
        Duration::from_secs(self.timeout_base_secs)
            + Duration::from_millis(call_ms.saturating_mul(self.timeout_per_call_second))
    }
}

/// One output a job made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputFile {
    /// Which.
    pub output: Output,
    /// Its file name in the recording's folder.
    pub file: String,
    /// Its size.
    pub bytes: u64,
    /// Its duration as ffprobe reads it, ms.
    pub duration_ms: Option<u64>,
}

/// What a successful job made, and what it left out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Report {
    /// The recording's id (from its manifest).
    pub id: String,
    /// The call's length, ms: every output's length.
    pub call_ms: u64,
    /// Whether the call's end came from the manifest (`false`: it was cut short, and its end
    /// is the end of its longest track).
    pub end_from_manifest: bool,
    /// The outputs, in the order they were made.
    pub outputs: Vec<OutputFile>,
    /// The tracks left out, with why.
    pub skipped: Vec<Skipped>,
    /// What a reader should know: no video, no audio, ...
    pub notes: Vec<String>,
}

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// `recording.json` could not be read.
    #[error("recording.json: {0}")]
    Manifest(io::Error),
    /// A manifest newer than this code.
    #[error("recording.json: version {0} is not known (at most {MANIFEST_VERSION})")]
    Version(u32),
    /// Every track was left out.
    #[error("no usable track: {0}")]
    NothingUsable(String),
    /// An ffmpeg run failed.
    #[error("{output}: {source}")]
    Tool {
        /// The output it was making.
        output: &'static str,
        /// How it failed.
        source: ChildError,
    },
    /// A file operation in the recording's folder failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The job's code panicked (a bug).
    #[error("internal error: {0}")]
    Panicked(String),
    /// Cancelled (shutdown): not the job's fault.
    #[error("cancelled")]
    Cancelled,
}

/// Runs the job of the recording in `dir`. `cancel` (a receive or a disconnection) kills
/// the running tool and ends the job with [`JobError::Cancelled`].
pub fn run_job(
    dir: &Path,
    settings: &RunSettings,
    cancel: &Receiver<()>,
) -> Result<Report, JobError> {
    let manifest = Manifest::read(dir).map_err(JobError::Manifest)?;
    if manifest.version > MANIFEST_VERSION {
        return Err(JobError::Version(manifest.version));
    }
    // What a killed attempt left behind.
    for output in Output::ALL {
        remove_if_present(&dir.join(output.partial_name()))?;
    }

    let measured: Vec<Result<Probe, String>> = manifest
        .tracks
        .iter()
        .take(settings.plan.track_limit())
        .map(|track| measure_track(dir, track, settings, cancel))
        .collect::<Result<_, _>>()?;
    let plan = plan::plan(&manifest, dir, &measured, &settings.plan);
    if plan.placed.is_empty() && !manifest.tracks.is_empty() {
        let reasons: Vec<String> = plan
            .skipped
            .iter()
            .map(|s| format!("{}: {}", s.file, s.reason))
            .collect();
        return Err(JobError::NothingUsable(reasons.join("; ")));
    }
    let mut notes = plan.notes.clone();
    if manifest.tracks.is_empty() {
        notes.push("no track was recorded".into());
    }

    let deadline = child::deadline_in(settings.job_timeout(plan.call_ms));
    let limits = ChildLimits {
        niceness: settings.niceness,
        deadline,
        stderr_tail_bytes: settings.stderr_tail_bytes,
    };
    let mut outputs = Vec::with_capacity(plan.steps.len());
    for step in &plan.steps {
        let started = Instant::now();
        child::run(&settings.ffmpeg, &step.args, &limits, cancel, None).map_err(|source| {
            let _ = std::fs::remove_file(&step.partial);
            tool_error(step.output, source)
        })?;
        std::fs::rename(&step.partial, &step.path).map_err(|source| JobError::Io {
            path: step.path.clone(),
            source,
        })?;
        let bytes = std::fs::metadata(&step.path)
            .map_err(|source| JobError::Io {
                path: step.path.clone(),
                source,
            })?
            .len();
        let duration_ms = probe_file(&step.path, probe::output_args(&step.path), settings, cancel)
            .map_err(|e| tool_error(step.output, e))?
            .format_duration_ms;
        tracing::debug!(
            output = step.output.file_name(),
            bytes,
            ?duration_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "mixdown output made"
        );
        outputs.push(OutputFile {
            output: step.output,
            file: step.output.file_name().into(),
            bytes,
            duration_ms,
        });
    }
    Ok(Report {
        id: manifest.id,
        call_ms: plan.call_ms,
        end_from_manifest: plan.end_from_manifest,
        outputs,
        skipped: plan.skipped,
        notes,
    })
}

fn tool_error(output: Output, source: ChildError) -> JobError {
    match source {
        ChildError::Cancelled { .. } => JobError::Cancelled,
        source => JobError::Tool {
            output: output.file_name(),
            source,
        },
    }
}

/// A track file's measure, or why it has none (missing, empty, unreadable). `Err` only when
/// cancelled.
fn measure_track(
    dir: &Path,
    track: &orbita_record::TrackEntry,
    settings: &RunSettings,
    cancel: &Receiver<()>,
) -> Result<Result<Probe, String>, JobError> {
    let path = match plan::track_path(dir, track) {
        Ok(path) => path,
        Err(reason) => return Ok(Err(reason)),
    };
    match std::fs::metadata(&path) {
        Ok(meta) if !meta.is_file() => return Ok(Err("not a regular file".into())),
        Ok(meta) if meta.len() == 0 => return Ok(Err("empty file".into())),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Err("missing file".into())),
        Err(e) => return Ok(Err(e.to_string())),
    }
    match probe_file(&path, probe::track_args(&path), settings, cancel) {
        Ok(probe) => Ok(Ok(probe)),
        Err(ChildError::Cancelled { .. }) => Err(JobError::Cancelled),
        Err(e) => Ok(Err(e.to_string())),
    }
}

/// Runs ffprobe on one file.
fn probe_file(
    path: &Path,
    args: Vec<OsString>,
    settings: &RunSettings,
    cancel: &Receiver<()>,
) -> Result<Probe, ChildError> {
    let limits = ChildLimits {
        niceness: settings.niceness,
        deadline: child::deadline_in(Duration::from_secs(settings.probe_timeout_secs)),
        stderr_tail_bytes: settings.stderr_tail_bytes,
    };
    let mut parser = ProbeParser::new();
    let mut handler = |line: &[u8]| parser.line(line);
    child::run(
        &settings.ffprobe,
        &args,
        &limits,
        cancel,
        Some(&mut handler),
    )
    .map_err(|e| {
        tracing::debug!(path = %path.display(), error = %e, "ffprobe failed");
        e
    })?;
    Ok(parser.finish())
}

fn remove_if_present(path: &Path) -> Result<(), JobError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(JobError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_limit_grows_with_the_call() {
        let settings = RunSettings::default();
        assert_eq!(settings.job_timeout(0), Duration::from_secs(60));
        assert_eq!(
            settings.job_timeout(3_600_000),
            Duration::from_secs(60 + 7200)
        );
        assert_eq!(
            settings.job_timeout(u64::MAX),
            Duration::from_millis(u64::MAX) + Duration::from_secs(60)
        );
    }
}
