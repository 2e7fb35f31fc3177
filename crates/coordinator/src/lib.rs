//! Orbita's coordinator: one entry point to many session servers ("nodes").
//!
//! It implements the user's design (../shared/spec/coordinator-protocol.md, documented in
//! docs/coordinator.md): clients ask over a WebSocket for the app catalogue (`GET_SERVERS`),
//! create sessions (`CREATE_SESSION`), join by code (`CONNECT_SESSION_WITH_CODE`), plan
//! sessions (`PLAN_SESSION`) and extend planned ones near their end (`EXTEND_SESSION`); nodes keep a persistent, authenticated link over which they
//! register, send heartbeats and start sessions when asked.
//!
//! * [`verbs`]: every JSON message, exactly as the spec writes them.
//! * [`coordinator::Coordinator`]: the logic, sans I/O (messages and `now` in, deliveries out).
//! * [`store::Registry`]: nodes, apps, sessions, plans and codes in SQLite, PostgreSQL or
//!   MySQL/MariaDB (sqlx `Any`), shareable by several coordinators.
//! * [`logic`]: pure decisions (ranges, placement, slot capacity, codes, throttling).
//! * [`config`]: settings and the stage-1 files (`servers.json`, `configuration.json`,
//!   `sessions_planned.json`); [`files`] re-reads them.
//! * [`accounts`]: users, roles, login sessions, quotas and their REST API (docs/accounts.md).
//! * [`auth`]: the node challenge (HMAC of a nonce under the cluster secret).
//! * [`server`]: the WebSocket endpoints (axum), optional TLS, background tasks.
//! * [`metrics`]: `/metrics` (Prometheus) and `/healthz` (the database answers).
//! * [`node`]: the node's end of the link (for `orbita node` and tests).

pub mod accounts;
pub mod auth;
pub mod call_events;
pub mod call_forms;
pub mod call_forms_http;
pub mod call_settings;
pub mod call_settings_http;
pub mod calls_export;
pub mod calls_http;
pub mod clock;
pub mod config;
pub mod coordinator;
pub mod devices;
pub mod files;
pub mod grant;
pub mod logic;
pub mod metrics;
pub mod node;
pub mod planning;
pub mod recordings_http;
pub mod server;
pub mod store;
pub mod verbs;

pub use clock::{now_ms, Millis};
pub use config::Settings;
pub use coordinator::{Coordinator, Delivery, Outcome, Sweep};
pub use store::Registry;
