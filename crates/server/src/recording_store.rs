//! The recordings on this server's disk: how much room they take (the quota, `recordings_max_bytes`)
//! and deleting those past their retention (`recording_retention_days`).
//!
//! A sweep reads the recordings folder (at most [`MAX_SCAN_ENTRIES`] entries), deletes the
//! recordings that ended more than the retention ago (never one being recorded) and keeps the
//! total size for the quota check and `/metrics`. Which recordings expire is decided by
//! [`expired`], sans-IO, with the time passed in.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use orbita_record::Manifest;

/// Folder entries a sweep reads at most.
pub const MAX_SCAN_ENTRIES: usize = 100_000;
/// How often the sweeper runs.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
const DAY_MS: u64 = 86_400_000;

/// One recording on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its folder.
    pub dir: PathBuf,
    /// When it started, ms since the epoch.
    pub started_at_ms: u64,
    /// When it ended (the manifest's, else its newest file's time), ms since the epoch.
    pub ended_at_ms: u64,
    /// The bytes of its files.
    pub bytes: u64,
}

/// The recordings of `list` whose end is more than `retention_days` before `now_ms` (none
/// when `retention_days` is 0: kept for ever), leaving out the folders in `live`.
pub fn expired<'a>(
    list: &'a [Stored],
    now_ms: u64,
    retention_days: u64,
    live: &HashSet<PathBuf>,
) -> Vec<&'a Stored> {
    if retention_days == 0 {
        return Vec::new();
    }
    let keep_from = now_ms.saturating_sub(retention_days.saturating_mul(DAY_MS));
    list.iter()
        .filter(|r| r.ended_at_ms < keep_from && !live.contains(&r.dir))
        .collect()
}

/// The recordings under `root` (folders with a `recording.json`).
pub fn scan(root: &Path) -> std::io::Result<Vec<Stored>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root)?.take(MAX_SCAN_ENTRIES) {
        let Ok(entry) = entry else { continue };
        let dir = entry.path();
        let Ok(manifest) = Manifest::read(&dir) else {
            continue;
        };
        let (bytes, newest_ms) = folder_files(&dir);
        found.push(Stored {
            dir,
            started_at_ms: manifest.started_at_ms,
            ended_at_ms: manifest
                .ended_at_ms
                .unwrap_or(newest_ms.max(manifest.started_at_ms)),
            bytes,
        });
    }
    Ok(found)
}

/// The bytes of the files in `dir`, and the newest one's modification time (ms since the
/// epoch; 0 when there is none).
pub fn folder_files(dir: &Path) -> (u64, u64) {
    let (mut bytes, mut newest_ms) = (0u64, 0u64);
    let Ok(files) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    for file in files.flatten() {
        let Ok(meta) = file.metadata() else { continue };
        bytes = bytes.saturating_add(meta.len());
        if let Some(ms) = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        {
            newest_ms = newest_ms.max(ms.as_millis() as u64);
        }
    }
    (bytes, newest_ms)
}

/// The disk the recordings take, as of the last sweep and the recordings finished since.
#[derive(Debug, Default)]
pub struct Usage {
    bytes: AtomicU64,
    recordings: AtomicU64,
    deleted: AtomicU64,
}

impl Usage {
    /// Bytes of all recordings.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Recordings on disk.
    pub fn recordings(&self) -> u64 {
        self.recordings.load(Ordering::Relaxed)
    }

    /// Recordings deleted for their age since the server started.
    pub fn deleted(&self) -> u64 {
        self.deleted.load(Ordering::Relaxed)
    }

    /// A recording of `bytes` was added (finished, or its outputs made).
    pub fn add(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Delete the recordings under `root` past `retention_days` at `now_ms` (not those in
    /// `live`, nor those `release` refuses: their post-processing runs) and count what is
    /// left. Returns the folders deleted.
    pub fn sweep(
        &self,
        root: &Path,
        now_ms: u64,
        retention_days: u64,
        live: &HashSet<PathBuf>,
        release: impl Fn(&Path) -> bool,
    ) -> Vec<PathBuf> {
        let list = match scan(root) {
            Ok(list) => list,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => {
                tracing::warn!(root = %root.display(), "cannot read the recordings: {e}");
                return Vec::new();
            }
        };
        let mut deleted = Vec::new();
        for old in expired(&list, now_ms, retention_days, live) {
            if !release(&old.dir) {
                tracing::info!(dir = %old.dir.display(), "old recording kept until its post-processing ends");
                continue;
            }
            match std::fs::remove_dir_all(&old.dir) {
                Ok(()) => {
                    tracing::info!(dir = %old.dir.display(), "recording deleted: past its retention");
                    deleted.push(old.dir.clone());
                }
                Err(e) => {
                    tracing::warn!(dir = %old.dir.display(), "cannot delete an old recording: {e}")
                }
            }
        }
        let left = list.iter().filter(|r| !deleted.contains(&r.dir));
        let (count, bytes) = left.fold((0u64, 0u64), |(n, b), r| (n + 1, b + r.bytes));
        self.bytes.store(bytes, Ordering::Relaxed);
        self.recordings.store(count, Ordering::Relaxed);
        self.deleted
            .fetch_add(deleted.len() as u64, Ordering::Relaxed);
        deleted
    }
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(name: &str, ended_days_ago: u64, now: u64) -> Stored {
        Stored {
            dir: PathBuf::from(name),
            started_at_ms: 0,
            ended_at_ms: now - ended_days_ago * DAY_MS,
            bytes: 10,
        }
    }

    #[test]
    fn recordings_past_their_retention_expire_but_not_live_ones_and_zero_keeps_all() {
        let now = 1_000 * DAY_MS;
        let list = [
            stored("old", 31, now),
            stored("just-in", 29, now),
            stored("live-old", 40, now),
        ];
        let live: HashSet<PathBuf> = [PathBuf::from("live-old")].into();
        let gone: Vec<&str> = expired(&list, now, 30, &live)
            .iter()
            .map(|r| r.dir.to_str().unwrap())
            .collect();
        assert_eq!(gone, ["old"]);
        assert!(expired(&list, now, 0, &HashSet::new()).is_empty());
    }
}
