//! Recordings checked with the real ffmpeg (one integration-test binary for the crate).

mod support;

mod ffmpeg;
