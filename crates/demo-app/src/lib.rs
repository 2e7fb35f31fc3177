//! Orbita demo app: the program a node launches for a streamed app session.
//!
//! It renders a small cursor-driven scene ([`scene`]), encodes it as VP8 with ffmpeg
//! ([`encoder`]) and publishes it into the session's room by WHIP ([`whip`], RFC 9725) over a
//! str0m peer connection. Input arrives as JSON lines on stdin ([`input`]); JSON lines on stdout
//! report what happened ([`events`]). See docs/demo-app.md.
//!
//! The `orbita` binary runs it as `orbita demo-app` through [`cli::DemoArgs`] and [`cli::run`];
//! [`app::run_app`] is the same app with the input, the event sink and the stop flag supplied
//! by the caller.

pub mod app;
pub mod cli;
pub mod encoder;
pub mod events;
pub mod input;
pub mod ivf;
pub mod scene;
pub mod whip;

pub use app::{run_app, AppConfig, StopFlag, StopReason};
pub use events::EventSink;
