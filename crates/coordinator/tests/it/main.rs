//! The coordinator's integration tests, one test binary (see support/ for what they share).

#[macro_use]
mod support;

mod accounts;
mod call_forms;
mod call_history;
mod call_records;
mod call_settings;
mod calls_bench;
mod docs;
mod login_limits;
mod login_sockets;
mod ops;
mod planning;
mod recording_policy;
mod registry;
mod roles_matrix;
mod server;
