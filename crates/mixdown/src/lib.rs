//! Orbita call recordings after the call: the recorder's track files mixed and merged by
//! ffmpeg into files anyone can play.
//!
//! - [`plan`] (sans-IO): the timeline and the ffmpeg argument vectors.
//! - [`probe`] (sans-IO): ffprobe's arguments and the parser of its answer.
//! - [`run`]: one job, with ffprobe and ffmpeg as child processes ([`child`]).

pub mod child;
pub mod plan;
pub mod probe;
pub mod run;

pub use plan::{Output, PlanSettings, Skipped};
pub use run::{run_job, JobError, OutputFile, Report, RunSettings};
