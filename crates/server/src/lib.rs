//! Orbita's control plane: settings, rooms by join code, the HTTP API and WebSocket signalling
//! in front of the SFU (`orbita-sfu`).
//!
//! - [`config`]: [`Settings`] from defaults, a TOML file, `ORBITA_*` variables and flags.
//! - [`rooms`]: join codes, participant counts and room end ([`RoomRegistry`]).
//! - [`http`]: the REST API, health, metrics, the browser client's pages and WHIP routes.
//! - [`ws`]: one task per signalling WebSocket (`/ws`).
//! - [`cluster`]: `orbita coordinator`, `orbita node`, and both in one process for
//!   `orbita serve` (docs/coordinator.md).
//! - [`whip`]: WHIP ingest into a room; [`guesses`]: the per-client budget of wrong room
//!   codes; [`chat_limit`]: per-participant chat rate and size.
//! - [`backend`]: the [`MediaBackend`] trait the control plane drives, implemented by
//!   [`orbita_sfu::Sfu`] and by [`testing::FakeBackend`].
//! - [`logging`]: logs to stderr as text or JSON lines; [`healthcheck`]: `orbita healthcheck`.
//! - [`serve`]: [`start`] / [`RunningServer`] for tests and embedding, [`run_serve`] for
//!   `orbita serve`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let settings = orbita_server::Settings {
//!     http_addr: "127.0.0.1:0".parse()?,
//!     udp_addr: "127.0.0.1:0".parse()?,
//!     tcp_addr: None,
//!     ..Default::default()
//! };
//! let server = orbita_server::start(settings).await?;
//! println!("signalling at {}", server.ws_url());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod backend;
pub mod call_files;
pub mod call_files_http;
pub mod call_locations;
pub mod call_log;
pub mod call_settings;
pub mod chat_limit;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod exif_gps;
pub mod guesses;
pub mod healthcheck;
pub mod http;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod pages;
pub mod post_processing;
pub mod recording_api;
pub mod recording_files;
pub mod recording_grants;
pub mod recording_store;
pub mod recordings;
pub mod room_bus;
pub mod rooms;
pub mod security_headers;
pub mod serve;
pub mod state;
pub mod testing;
pub mod whip;
pub mod ws;

pub use backend::{MediaBackend, MediaParticipant};
pub use config::{FileSettings, ServeArgs, Settings};
pub use rooms::RoomRegistry;
pub use serve::{run_serve, start, start_with_backend, RunningServer};
pub use state::AppState;
