//! Orbita call recordings after the call: the recorder's track files mixed and merged by
//! ffmpeg into files anyone can play.
//!
//! - [`plan`] (sans-IO): the timeline and the ffmpeg argument vectors.
//! - [`probe`] (sans-IO): ffprobe's arguments and the parser of its answer.

pub mod plan;
pub mod probe;

pub use plan::{Output, PlanSettings, Skipped};
