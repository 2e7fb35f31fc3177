//! End-to-end tests: bots and real `orbita` processes against the server, one test binary
//! (helpers in support.rs).

mod support;

mod acme;
mod bad_input;
mod call_files;
mod call_locations;
mod call_records;
mod call_settings;
mod chat_flood;
mod churn;
mod cluster;
mod guessing;
mod listeners;
mod load;
mod media_core;
mod nginx;
mod ops;
mod port_range;
mod recording;
mod restart;
mod transport_and_codecs;
mod turn;
mod whip;
