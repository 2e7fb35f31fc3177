//! The demo app's tests, one test binary (a WHIP server to publish to in support.rs).

mod support;

mod encoder;
mod process;
mod whip;
