//! Orbita's listeners: every HTTP listener (`orbita serve`, `orbita node`, `orbita
//! coordinator`, plain and TLS, and the all-in-one server's loopback node listener) accepts
//! and serves its connections here, with limits a stranger cannot get around:
//!
//! - at most [`Limits::max_connections`] open connections in total, and at most
//!   [`Limits::max_connections_per_address`] from one client address (IPv6: one /64);
//!   excess connections are closed as soon as they are accepted, and counted ([`caps`]);
//! - a connection must complete its TLS handshake and send a whole request head within
//!   [`Limits::header_read_timeout`] of being accepted, or of the first byte of a later
//!   request; a keep-alive connection without a request in flight is closed after
//!   [`Limits::idle_timeout`] ([`deadlines`], sans-IO);
//! - the total cap is kept below the process's file-descriptor limit ([`fd_limit`]).
//!
//! [`serve`] is `axum::serve` with these limits (and the peer address as axum's
//! `ConnectInfo<SocketAddr>`); [`ListenerStats`] counts what they refused.

pub use orbita_caps as caps;
pub mod deadlines;
pub mod fd_limit;
mod io;
mod serve;
mod service;
pub mod stats;

use std::time::Duration;

pub use serve::serve;
pub use stats::{with_metrics, ListenerCounts, ListenerStats};

/// Default [`Limits::max_connections`]: open connections on one listener.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default [`Limits::max_connections_per_address`]: open connections from one client address
/// (one IPv4 address, or one IPv6 /64).
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 100;
/// Default [`Limits::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`Limits::idle_timeout`].
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections open at once (HTTP, and WebSockets after their upgrade); more are
    /// closed at accept. Held below the process's file-descriptor limit ([`fd_limit`]).
    pub max_connections: usize,
    /// Most connections open at once from one client address (an IPv4 address, an IPv6 /64);
    /// 0: no per-address cap. Connections from 127.0.0.1 and ::1 (a proxy or tool on this
    /// host, the local node link) are not capped per address, only in total.
    pub max_connections_per_address: usize,
    /// The time a connection has, from its accept (TLS handshake included) or from the first
    /// byte of a later request, to send a whole request head.
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may wait without a request in flight before it is
    /// closed (WebSockets after their upgrade are not concerned: they ping).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl Limits {
    /// Checks that the limits make sense; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if self.header_read_timeout.is_zero() {
            return Err("header_read_timeout_secs must be at least 1".into());
        }
        if self.idle_timeout.is_zero() {
            return Err("idle_timeout_secs must be at least 1".into());
        }
        Ok(())
    }
}
