//! The persistent queue with real jobs: a restart's scan, retries and giving up.
//! Synchronised by the queue's own state-change events, never by sleeping.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::Receiver;
use orbita_mixdown::{JobEvent, JobFile, JobState, Jobs, JobsSettings, Output};
use orbita_record::{Kind, Role};

use crate::support::*;

fn jobs_settings() -> JobsSettings {
    JobsSettings {
        backoff_base_ms: 10,
        backoff_max_ms: 20,
        run: settings(),
        ..JobsSettings::default()
    }
}

/// Events until every one of `dirs` is done or failed; returns them all.
fn until_final(events: &Receiver<JobEvent>, dirs: &[PathBuf]) -> Vec<JobEvent> {
    let mut seen = Vec::new();
    let mut open: Vec<&PathBuf> = dirs.iter().collect();
    while !open.is_empty() {
        // A bound on a broken test, not a synchronisation.
        let event = events
            .recv_timeout(Duration::from_secs(60))
            .expect("a job's state change");
        if event.job.state.is_final() {
            open.retain(|d| **d != event.dir);
        }
        seen.push(event);
    }
    seen
}

fn states(events: &[JobEvent], dir: &Path) -> Vec<JobState> {
    events
        .iter()
        .filter(|e| e.dir == dir)
        .map(|e| e.job.state)
        .collect()
}

/// A short recording of one microphone.
fn recording(root: &Path, name: &str, ended: Option<u64>) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    sine(&dir.join("mic.webm"), 440, 1.0);
    manifest(
        &dir,
        vec![track("mic.webm", "a", Role::Agent, Kind::Audio, 0)],
        ended,
    );
    std::fs::canonicalize(dir).unwrap()
}

fn job_with(dir: &Path, state: JobState, attempts: u32) {
    let mut job = JobFile::new(&dir.file_name().unwrap().to_string_lossy());
    job.state = state;
    job.attempts = attempts;
    job.write(dir).unwrap();
}

/// After a restart: a job left `running` by a crash and a recording a crash left without an
/// end are queued and completed; a live recording and a done job are left alone.
#[test]
fn a_scan_after_a_crash_finds_and_completes_unfinished_jobs() {
    let tmp = TempDir::new("scan");
    let root = tmp.path();
    let interrupted = recording(root, "rec-1-interrupted", Some(1000));
    job_with(&interrupted, JobState::Running, 1);
    let crashed = recording(root, "rec-2-crashed", None);
    let live = recording(root, "rec-3-live", None);
    let done = recording(root, "rec-4-done", Some(1000));
    job_with(&done, JobState::Done, 1);
    std::fs::create_dir_all(root.join("not-a-recording")).unwrap();

    let (jobs, events) = Jobs::start(jobs_settings()).unwrap();
    let report = jobs.scan(root, std::slice::from_ref(&live)).unwrap();
    assert_eq!(report.queued, [interrupted.clone(), crashed.clone()]);
    assert_eq!((report.live, report.finished), (1, 1));
    assert!(report.errors.is_empty() && report.failed.is_empty());

    let seen = until_final(&events, &report.queued);
    for dir in [&interrupted, &crashed] {
        assert_eq!(
            states(&seen, dir),
            [JobState::Pending, JobState::Running, JobState::Done]
        );
        let job = jobs.state(dir).unwrap().unwrap();
        assert_eq!(job.state, JobState::Done);
        assert_eq!(job.outputs.len(), 1);
        let audio = &job.outputs[0];
        assert_eq!(
            (audio.output, audio.file.as_str()),
            (Output::Audio, "audio.m4a")
        );
        assert_eq!(
            audio.bytes,
            std::fs::metadata(dir.join("audio.m4a")).unwrap().len()
        );
        assert_near("duration", audio.duration_ms.unwrap() as f64, 1000.0, 200.0);
        assert!(job.elapsed_ms.is_some());
    }
    // The interrupted attempt counted.
    assert_eq!(jobs.state(&interrupted).unwrap().unwrap().attempts, 2);
    let crashed_job = jobs.state(&crashed).unwrap().unwrap();
    assert_eq!(
        (crashed_job.attempts, crashed_job.end_from_manifest),
        (1, Some(false))
    );
    // Left alone.
    assert!(jobs.state(&live).unwrap().is_none());
    assert!(!live.join("audio.m4a").exists());
    assert_eq!(jobs.state(&done).unwrap().unwrap().attempts, 1);

    // Enqueueing a done job does nothing.
    assert_eq!(jobs.enqueue(&done).unwrap(), JobState::Done);
    jobs.shutdown();
    assert!(events.try_iter().all(|e| e.dir != done));
}

/// A corrupt track (its Opus header says zero channels): every attempt fails, the job is
/// given up after the third, with the tool's stderr as its error.
#[test]
fn a_corrupt_input_fails_after_three_attempts() {
    let tmp = TempDir::new("corrupt");
    let dir = tmp.sub("rec-corrupt");
    sine(&dir.join("mic.webm"), 440, 1.0);
    break_opus_header(&dir.join("mic.webm"));
    manifest(
        &dir,
        vec![track("mic.webm", "c", Role::Customer, Kind::Audio, 0)],
        Some(1000),
    );
    let dir = std::fs::canonicalize(dir).unwrap();

    let (jobs, events) = Jobs::start(jobs_settings()).unwrap();
    assert_eq!(jobs.enqueue(&dir).unwrap(), JobState::Pending);
    let seen = until_final(&events, std::slice::from_ref(&dir));
    use JobState::*;
    assert_eq!(
        states(&seen, &dir),
        [Pending, Running, Pending, Running, Pending, Running, Failed]
    );
    let attempts: Vec<u32> = seen.iter().map(|e| e.job.attempts).collect();
    assert_eq!(attempts, [0, 1, 1, 2, 2, 3, 3]);

    let job = jobs.state(&dir).unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (Failed, 3));
    let error = job.last_error.unwrap();
    assert!(error.contains("no usable track: mic.webm"), "{error}");
    // ffprobe's stderr, its end.
    assert!(error.contains("Zero channel count"), "{error}");
    assert!(job.outputs.is_empty());
}

/// ffmpeg itself fails (here libx264 refuses its preset) at every attempt: failed after three,
/// with ffmpeg's stderr; the output it was making is not left behind, half or whole.
#[test]
fn an_ffmpeg_failure_fails_after_three_attempts_with_its_stderr() {
    let tmp = TempDir::new("ffmpeg-fails");
    let dir = tmp.sub("rec-fails");
    sine(&dir.join("mic.webm"), 440, 1.0);
    camera(&dir.join("cam.webm"), 160, 120, 1.0);
    manifest(
        &dir,
        vec![
            track("mic.webm", "c", Role::Customer, Kind::Audio, 0),
            track("cam.webm", "c", Role::Customer, Kind::Video, 0),
        ],
        Some(1000),
    );
    let dir = std::fs::canonicalize(dir).unwrap();
    let mut settings = jobs_settings();
    settings.run.plan.x264_preset = "no-such-preset".into();

    let (jobs, events) = Jobs::start(settings).unwrap();
    jobs.enqueue(&dir).unwrap();
    let seen = until_final(&events, std::slice::from_ref(&dir));
    assert_eq!(seen.last().unwrap().job.state, JobState::Failed);

    let job = jobs.state(&dir).unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Failed, 3));
    let error = job.last_error.unwrap();
    assert!(
        error.starts_with("video.mp4: ffmpeg failed (exit status 1)"),
        "{error}"
    );
    assert!(
        error.contains("Error setting preset/tune no-such-preset"),
        "{error}"
    );
    assert!(!dir.join("video.mp4").exists());
    assert!(!dir.join("video.mp4.part").exists());
}

/// Shutting down kills the running ffmpeg: the job is `pending` again in `job.json`, its
/// attempt not counted, and nothing is left under an output's name, half or whole. Before
/// that, a recording about to be deleted is withdrawn: a waiting one leaves the queue, the
/// running one is refused (ffmpeg still writes into its folder).
#[test]
fn shutdown_kills_a_running_job_which_stays_pending() {
    let tmp = TempDir::new("shutdown");
    let dir = tmp.sub("rec-long");
    sine(&dir.join("mic.webm"), 440, 1.0);
    camera(&dir.join("cam.webm"), 160, 120, 1.0);
    // A call of an hour: its outputs take far longer than this test.
    manifest(
        &dir,
        vec![
            track("mic.webm", "c", Role::Customer, Kind::Audio, 0),
            track("cam.webm", "c", Role::Customer, Kind::Video, 0),
        ],
        Some(3_600_000),
    );
    let dir = std::fs::canonicalize(dir).unwrap();

    let (jobs, events) = Jobs::start(jobs_settings()).unwrap();
    jobs.enqueue(&dir).unwrap();
    loop {
        let event = events.recv_timeout(Duration::from_secs(60)).unwrap();
        if event.job.state == JobState::Running {
            break;
        }
    }
    assert_eq!(jobs.load(), (0, 1));
    let waiting = recording(tmp.path(), "rec-waiting", Some(1000));
    assert_eq!(jobs.enqueue(&waiting).unwrap(), JobState::Pending);
    assert_eq!(jobs.load(), (1, 1));
    assert!(!jobs.withdraw(&dir), "the running job is not withdrawn");
    assert!(jobs.withdraw(&waiting), "the waiting job is");
    assert_eq!(jobs.load(), (0, 1));
    std::fs::remove_dir_all(&waiting).unwrap();
    let started = std::time::Instant::now();
    jobs.shutdown();
    assert!(started.elapsed() < Duration::from_secs(20));

    let job = JobFile::read(&dir).unwrap().unwrap();
    assert_eq!((job.state, job.attempts), (JobState::Pending, 0));
    for output in Output::ALL {
        assert!(!dir.join(output.file_name()).exists(), "{output:?}");
        assert!(!dir.join(output.partial_name()).exists(), "{output:?}");
    }
}
