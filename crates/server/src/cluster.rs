//! The cluster roles of the `orbita` binary (docs/coordinator.md):
//!
//! - [`run_coordinator`] (`orbita coordinator`): the coordinator library
//!   (`orbita-coordinator`) behind its two WebSockets, `/coordinator` for clients and
//!   `/coordinator/node` for nodes, with optional TLS, the background sweeps and the stage-1
//!   file watching.
//! - [`run_all_in_one`] (`orbita serve`): both in one process, the node linked over loopback.
//! - [`run_node`] (`orbita node`): an `orbita serve`-like media server that links to a
//!   coordinator, registers its app catalogue, sends heartbeats and starts, joins and ends
//!   sessions (and their apps) when asked.
//! - [`run_admin`] (`orbita admin`): account administration from the shell.

pub mod admin;
pub mod coordinator;
pub mod local;
pub mod node;

pub use admin::{run_admin, AdminArgs};
pub use coordinator::{run_coordinator, CoordinatorArgs};
pub use local::{run_all_in_one, AllInOneArgs};
pub use node::{run_node, NodeArgs};

/// Resolve on SIGINT or SIGTERM, naming the signal.
pub(crate) async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("cannot listen for SIGTERM");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

/// CPU use of the whole machine (0..1 over all cores) between two calls, from `/proc/stat`
/// (always 0 where that file does not exist).
#[derive(Debug, Default)]
pub(crate) struct CpuSampler {
    last: Option<(u64, u64)>,
}

impl CpuSampler {
    fn read() -> Option<(u64, u64)> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().next()?.strip_prefix("cpu ")?;
        let v: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() < 4 {
            return None;
        }
        let total: u64 = v.iter().take(8).sum();
        // idle + iowait
        let idle = v[3] + v.get(4).copied().unwrap_or(0);
        Some((total, idle))
    }

    /// The busy share since the previous sample (0 for the first).
    pub(crate) fn sample(&mut self) -> f64 {
        let now = Self::read();
        let share = match (self.last, now) {
            (Some((t0, i0)), Some((t1, i1))) if t1 > t0 => {
                let total = (t1 - t0) as f64;
                let idle = i1.saturating_sub(i0) as f64;
                ((total - idle) / total).clamp(0.0, 1.0)
            }
            _ => 0.0,
        };
        self.last = now;
        share
    }
}
