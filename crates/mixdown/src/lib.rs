//! Orbita call recordings after the call: the recorder's track files (one WebM or Matroska
//! file per track, see `orbita-record`) mixed and merged by ffmpeg into files anyone can
//! play, by a persistent job queue.
//!
//! # Outputs
//!
//! Written next to the track files, in the recording's folder, each as long as the call
//! (0 at the recording's start, every track at its `start_ms`):
//!
//! - `audio.m4a`: stereo, the customers mixed in the left channel, the agents in the right
//!   (participants of a call without roles in both), silence where nobody spoke. AAC-LC,
//!   48 kHz, 128 kb/s, in MP4: AAC plays everywhere (browsers, phones, the players and CRM
//!   tools a recording is sent to), where Opus in MP4 does not (older Safari and iOS,
//!   QuickTime, Windows' player), and it is the audio `merged.mp4` needs, so that file is made
//!   by copying, not encoding again. 128 kb/s is transparent for speech in stereo; an hour
//!   is about 58 MB (a WAV would be 660 MB).
//! - `video.mp4`: the customer's camera, H.264 (libx264, `veryfast`, CRF 23, yuv420p, High
//!   profile) at a constant 25 frames per second, the size of the customer's first camera
//!   track (at most 1920x1080, even), black where there is no camera. Constant frame rate
//!   because WebRTC's variable rate and gaps confuse editors and some players. Several
//!   camera tracks (the customer left and came back, or turned the camera off and on) follow
//!   one another on the one timeline; a gap inside a track holds its last picture (as a
//!   player would).
//! - `merged.mp4`: `video.mp4`'s video and `audio.m4a`'s audio, both copied: the file
//!   to hand on.
//! - `grid.mp4`: for a call without an agent, or with more than one customer on camera:
//!   every video track in a grid (one cell per participant and source, 640x360 cells up to
//!   3x3, the whole within 1920x1080), with `audio.m4a`'s audio (everyone).
//!
//! All MP4 files have their index first (`+faststart`): a browser plays them while they
//! download. A call without video makes `audio.m4a` only; a call without audio makes no
//! `audio.m4a` and no `merged.mp4`. The job's result ([`JobFile`]: `notes`, `skipped`)
//! says so, and which tracks were left out and why (missing, empty or unreadable files,
//! past the limit of 64 tracks per job).
//!
//! ffmpeg writes each output under a temporary name (`audio.m4a.part`), renamed once
//! complete: a killed job never leaves half a file under a final name.
//!
//! # Pieces
//!
//! - [`plan`] (sans-IO): the timeline and the ffmpeg argument vectors.
//! - [`probe`] (sans-IO): ffprobe's arguments and the parser of its answer (a track's real
//!   duration: the end of its last packet, since a crash leaves no end in the manifest).
//! - [`run`]: one job, with ffprobe and ffmpeg as child processes ([`child`]): niced,
//!   killed past a time limit of 60 s plus twice the call's length, stderr's tail kept as
//!   the error.
//! - [`queue`] (sans-IO): the order of jobs, retries and their backoff.
//! - [`jobs`]: the worker pool, and [`JobFile`] (`job.json`, [`job`]) as the queue's memory.
//!
//! Needs ffmpeg 4.4 or newer (`amix` `normalize`), with libx264 and an Opus, VP8, VP9 and
//! H.264 decoder (Debian's `ffmpeg` package).
//!
//! # Use
//!
//! ```ignore
//! let (jobs, events) = Jobs::start(JobsSettings::default())?;
//! jobs.scan(&recordings_root, &folders_being_recorded)?; // at start
//! jobs.enqueue(&recording_dir)?;                          // when a recording stops
//! for event in events { /* forward event.job.state to the coordinator */ }
//! ```

pub mod child;
pub mod job;
pub mod jobs;
pub mod plan;
pub mod probe;
pub mod queue;
pub mod run;

pub use job::{JobFile, JobState, JOB_FILE};
pub use jobs::{EnqueueError, JobEvent, Jobs, JobsSettings, ScanReport};
pub use plan::{Output, PlanSettings, Skipped};
pub use run::{run_job, JobError, OutputFile, Report, RunSettings};
