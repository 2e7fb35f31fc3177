//! Orbita call recording.
//!
//! The media server hands the RTP packets of the tracks it records to a [`Recorder`] (one per
//! recorded call) through [`TrackTap`]s, without waiting: a bounded queue to one writer thread,
//! drops counted. The writer puts packets back in order, rebuilds frames (Opus, VP8, VP9,
//! H.264), maps their RTP timestamps to the call's clock and writes each track to its own WebM
//! (H.264: Matroska) file, cluster by cluster, so a file stays playable up to its last cluster
//! if the process dies. [`manifest`] describes the recording for the post-processing.
//!
//! The parts between packets and bytes are sans-IO (input and the time in, output out), one
//! job per module: `reorder`, `timeline`, `depacketize` (with the bitstream knowledge of
//! `vp8`, `vp9`, `h264` and `opus`), `track` (a track's pipeline and its decisions), `ebml` and
//! `webm`. Only `writer`, the writer thread, touches files; `recorder` is the public face.

#![warn(missing_docs)]

mod depacketize;
mod ebml;
mod h264;
pub mod manifest;
mod opus;
mod recorder;
mod reorder;
mod timeline;
mod track;
mod vp8;
mod vp9;
mod webm;
mod writer;

pub use manifest::{Kind, Manifest, RecCodec, Role, TrackEntry, MANIFEST_FILE};
pub use recorder::{
    Recorder, RecorderConfig, RecorderHandle, RecorderStats, TrackMeta, TrackTap,
    DEFAULT_QUEUE_PACKETS, MAX_PAYLOAD_BYTES,
};
