//! orbita-mixdown with real ffmpeg: inputs made at test time, outputs measured.

mod media;
mod queue;
mod support;
