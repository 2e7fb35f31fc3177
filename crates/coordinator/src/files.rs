//! Stage 1: re-reading `servers.json` (and `configuration.json`) every
//! `time_between_updates_seconds`, as the spec asks.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{self, FileConfiguration};
use crate::coordinator::Coordinator;

/// The period used when no `configuration.json` is configured (or it cannot be read).
pub const DEFAULT_UPDATE_SECS: u64 = 30;

/// The current update period: `configuration.json`'s `time_between_updates_seconds`.
pub fn update_period(configuration_file: Option<&Path>) -> Duration {
    let secs = configuration_file
        .and_then(|p| match FileConfiguration::load(p) {
            Ok(c) => c.update_period_secs().ok(),
            Err(e) => {
                warn!(error = %e, "configuration file");
                None
            }
        })
        .unwrap_or(DEFAULT_UPDATE_SECS);
    Duration::from_secs(secs)
}

/// Reads `servers.json` once and applies it when its text changed since `last`. Returns the
/// text read (or `last` when it could not be read: a broken edit keeps the previous catalogue).
pub async fn reload_if_changed(
    coordinator: &Coordinator,
    path: &Path,
    last: Option<String>,
) -> Option<String> {
    let text = match tokio::fs::read_to_string(path).await {
        Ok(t) => t,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "servers file unreadable; keeping the previous list");
            return last;
        }
    };
    if last.as_deref() == Some(text.as_str()) {
        return last;
    }
    match config::parse_servers(&text) {
        Ok(entries) => match coordinator.reload_servers(&entries).await {
            Ok(()) => {
                info!(file = %path.display(), entries = entries.len(), "servers file applied");
                Some(text)
            }
            Err(e) => {
                warn!(error = %e, "could not apply the servers file");
                last
            }
        },
        Err(e) => {
            warn!(file = %path.display(), error = %e, "servers file invalid; keeping the previous list");
            last
        }
    }
}

/// Re-reads the servers file every update period until `shutdown` turns true. Returns at
/// once when no servers file is configured.
pub async fn watch(coordinator: Arc<Coordinator>, mut shutdown: watch::Receiver<bool>) {
    let settings = coordinator.settings().clone();
    let Some(path) = settings.servers_file.clone() else {
        return;
    };
    // Coordinator::open applied the file already, but an edit may land before this task first
    // runs: start with no remembered text, so the first period applies whatever is current
    // (re-applying an unchanged catalogue is harmless).
    let mut last: Option<String> = None;
    loop {
        let period = update_period(settings.configuration_file.as_deref());
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        last = reload_if_changed(&coordinator, &path, last).await;
    }
}
