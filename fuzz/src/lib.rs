//! Shared parts of Orbita's fuzz targets (`fuzz_targets/*.rs`, run by `scripts/fuzz`).
//!
//! - [`sfu_session`]: a real SFU on loopback sockets, and a room with participants that the
//!   signalling and WHIP targets feed messages to.
//! - [`sfu_rtc`]: a `str0m::Rtc` set up as the SFU sets up its connections, with fixed ICE
//!   credentials and a certificate made once.

pub mod sfu_rtc;
pub mod sfu_session;
