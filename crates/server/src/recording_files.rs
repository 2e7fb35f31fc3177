//! The recordings' list and downloads, for the accounts that may see them: an agent their own
//! calls' recordings, supervisors and administrators all, guests none.
//!
//! | request | answer |
//! |---|---|
//! | `GET /api/recordings` | 200 `{"recordings":[{"id","room","owner","started_at_ms","ended_at_ms","state","files":[{"name","bytes"}]}]}`, newest first, at most [`MAX_LISTED`]; `state`: `recording`, `processing`, `ready`, `failed` |
//! | `GET /api/recordings/{id}/{file}` | the file (`audio.m4a`, `video.mp4`, `merged.mp4`, `grid.mp4`) as a download, with `Range` (206), `If-None-Match` and `Last-Modified`; 404 for a recording that is not the caller's, as for one that does not exist |
//!
//! Who the caller is comes from the accounts (under `orbita serve`, its coordinator's login,
//! put on the request as a [`Viewer`] by the accounts guard); without one: 401.

use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use orbita_mixdown::{JobFile, JobState};
use orbita_record::Manifest;
use serde::Serialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

use crate::http::ApiError;
use crate::state::AppState;

/// Recordings one list answer holds at most (the newest).
pub const MAX_LISTED: usize = 1000;
/// The files of a recording that may be downloaded: the post-processing's outputs.
pub const DOWNLOADS: [&str; 4] = ["merged.mp4", "audio.m4a", "video.mp4", "grid.mp4"];

/// Who asks, as the accounts know them.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The account's id.
    pub account: String,
    /// Sees every recording (supervisors, administrators), not only their own.
    pub all: bool,
    /// Sees the disk the recordings take (administrators).
    pub admin: bool,
}

impl Viewer {
    fn may_see(&self, manifest: &Manifest) -> bool {
        self.all || manifest.owner.as_deref() == Some(self.account.as_str())
    }
}

/// A recording in the list.
#[derive(Debug, Serialize)]
struct Listed {
    id: String,
    room: String,
    owner: Option<String>,
    started_at_ms: u64,
    ended_at_ms: Option<u64>,
    state: &'static str,
    files: Vec<ListedFile>,
}

#[derive(Debug, Serialize)]
struct ListedFile {
    name: &'static str,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct ListBody {
    recordings: Vec<Listed>,
    /// For administrators: the disk the recordings take and the recorders' use.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageBody>,
}

#[derive(Debug, Serialize)]
struct UsageBody {
    /// Bytes of all recordings on this server (as of the last sweep and those finished since).
    bytes: u64,
    /// The quota (`recordings_max_bytes`); `null`: none.
    max_bytes: Option<u64>,
    /// Recordings on disk.
    stored: u64,
    /// Recordings being made now, and the recorder slots.
    recording: usize,
    slots: usize,
}

fn not_logged_in() -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "not_logged_in",
        "log in to see recordings",
    )
    .into_response()
}

fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such recording").into_response()
}

/// Whether `id` can name a recording's folder (the recorder's ids: letters, digits, `-`).
fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The recordings under `root` that `viewer` may see, newest first.
fn list(root: &Path, viewer: &Viewer, live: &std::collections::HashSet<PathBuf>) -> Vec<Listed> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found: Vec<Listed> = entries
        .take(crate::recording_store::MAX_SCAN_ENTRIES)
        .flatten()
        .filter_map(|entry| {
            let dir = entry.path();
            let manifest = Manifest::read(&dir).ok()?;
            if !viewer.may_see(&manifest) {
                return None;
            }
            let job = JobFile::read(&dir).ok().flatten();
            let state = if live.contains(&dir) {
                "recording"
            } else {
                match job.map(|j| j.state) {
                    Some(JobState::Done) => "ready",
                    Some(JobState::Failed) => "failed",
                    _ => "processing",
                }
            };
            let files = DOWNLOADS
                .iter()
                .filter_map(|name| {
                    let meta = std::fs::metadata(dir.join(name)).ok()?;
                    meta.is_file().then_some(ListedFile {
                        name,
                        bytes: meta.len(),
                    })
                })
                .collect();
            Some(Listed {
                id: manifest.id,
                room: manifest.room,
                owner: manifest.owner,
                started_at_ms: manifest.started_at_ms,
                ended_at_ms: manifest.ended_at_ms,
                state,
                files,
            })
        })
        .collect();
    // Newest first (ids start with the time, so they order recordings of the same start).
    found.sort_by(|a, b| (b.started_at_ms, &b.id).cmp(&(a.started_at_ms, &a.id)));
    found.truncate(MAX_LISTED);
    found
}

/// `GET /api/recordings`.
pub async fn index(State(state): State<AppState>, viewer: Option<Extension<Viewer>>) -> Response {
    let Some(Extension(viewer)) = viewer else {
        return not_logged_in();
    };
    let recordings = &state.recordings;
    let usage = viewer.admin.then(|| UsageBody {
        bytes: recordings.usage().bytes(),
        max_bytes: Some(state.settings.recordings_max_bytes).filter(|m| *m > 0),
        stored: recordings.usage().recordings(),
        recording: recordings.active(),
        slots: recordings.slots(),
    });
    let root = recordings.dir().to_path_buf();
    let live = recordings.live_folders();
    let listed = tokio::task::spawn_blocking(move || list(&root, &viewer, &live))
        .await
        .unwrap_or_default();
    Json(ListBody {
        recordings: listed,
        usage,
    })
    .into_response()
}

/// The file at `path` as the answer to `request` (with `Range` and conditional requests), or
/// a `500` saying why it could not be read.
pub(crate) async fn serve_file(path: &Path, request: Request) -> Result<Response, Response> {
    match ServeFile::new(path).oneshot(request).await {
        Ok(response) => Ok(response.into_response()),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("cannot read the file: {e}"),
        )
        .into_response()),
    }
}

/// `GET /api/recordings/{id}/{file}`.
pub async fn download(
    State(state): State<AppState>,
    viewer: Option<Extension<Viewer>>,
    UrlPath((id, file)): UrlPath<(String, String)>,
    request: Request,
) -> Response {
    let Some(Extension(viewer)) = viewer else {
        return not_logged_in();
    };
    let Some(name) = DOWNLOADS.iter().find(|d| **d == file) else {
        return not_found();
    };
    if !valid_id(&id) {
        return not_found();
    }
    let dir = state.recordings.dir().join(&id);
    match Manifest::read(&dir) {
        Ok(manifest) if viewer.may_see(&manifest) => {}
        _ => return not_found(),
    }
    let path = dir.join(name);
    if !path.is_file() {
        return not_found();
    }
    let mut response = match serve_file(&path, request).await {
        Ok(response) => response,
        Err(refused) => return refused,
    };
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{id}-{name}\"")) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_folder_names_of_the_recorder_and_nothing_else() {
        assert!(valid_id("20261207T080102Z-4821-9f3a"));
        for bad in ["", "..", "a/b", "a b", "%2e%2e", &"x".repeat(65)] {
            assert!(!valid_id(bad), "{bad:?}");
        }
    }
}
