//! What every HTTP and WebSocket handler shares.

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use crate::backend::MediaBackend;
use crate::call_files::CallFiles;
use crate::call_locations::Geo;
use crate::call_log::CallLog;
use crate::call_settings::CallSettingsCache;
use crate::connections::Connections;
use crate::guesses::CodeGuesses;
use crate::post_processing::PostProcessing;
use crate::recording_store::Usage;
use crate::recordings::Recordings;
use crate::room_bus::RoomBus;
use crate::rooms::{RoomRegistry, RoomRules};
use crate::whip::WhipSessions;
use crate::Settings;

/// Shared state of the control plane; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The resolved settings.
    pub settings: Arc<Settings>,
    /// Base URL of join links, without a trailing slash.
    pub public_url: Arc<str>,
    /// The media core.
    pub backend: Arc<dyn MediaBackend>,
    /// Live rooms by code.
    pub registry: Arc<RoomRegistry>,
    /// Open signalling connections.
    pub connections: Arc<Connections>,
    /// Live WHIP publishers.
    pub whip: Arc<WhipSessions>,
    /// Lock-out of addresses that guess room codes.
    pub guesses: Arc<CodeGuesses>,
    /// Chat messages dropped by the per-participant chat limits (`chat_limit`), for metrics.
    pub chat_dropped: Arc<AtomicU64>,
    /// Call recordings: slots, folders, start and stop.
    pub recordings: Arc<Recordings>,
    /// The calls, as events for their records.
    pub call_log: Arc<CallLog>,
    /// Branding, consent and feature switches, as the coordinator gave them.
    pub call_settings: Arc<CallSettingsCache>,
    /// Files sent in the calls' chat.
    pub files: Arc<CallFiles>,
    /// Messages for a call's participants from outside the SFU (a finished file).
    pub bus: Arc<RoomBus>,
    /// The geocoder and map tiles of shared locations.
    pub geo: Arc<Geo>,
}

impl AppState {
    /// State for a server with these settings, reachable at `public_url`, on `backend`.
    pub fn new(settings: Settings, public_url: String, backend: Arc<dyn MediaBackend>) -> AppState {
        let registry = Arc::new(RoomRegistry::new(
            RoomRules::from_settings(&settings),
            Arc::clone(&backend),
        ));
        let call_log = Arc::new(CallLog::default());
        let files_dir = settings
            .files_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("files"));
        let files = Arc::new(CallFiles::open(
            files_dir,
            settings.max_file_bytes,
            settings.files_max_bytes,
        ));
        let bus = Arc::new(RoomBus::default());
        let (calls, call_files, call_bus) =
            (Arc::clone(&call_log), Arc::clone(&files), Arc::clone(&bus));
        registry.on_closed(Box::new(move |code, reason| {
            calls.ended(code, reason);
            if let Some(call) = call_files.ended(code) {
                call_bus.ended(&call);
            }
        }));
        let guesses = Arc::new(CodeGuesses::new(settings.code_miss_delay_ms));
        let recordings_dir = settings
            .recordings_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("recordings"));
        let post = PostProcessing::start(settings.recording_jobs);
        let recordings = Recordings::new(
            recordings_dir,
            settings.recording_slots,
            settings.record_calls,
            settings.recordings_max_bytes,
            Arc::new(Usage::default()),
            Arc::clone(&backend),
            post,
            Arc::clone(&call_log),
        );
        let geo = Arc::new(Geo::new(
            settings.geocoder_url.clone(),
            settings.map_tile_url.clone(),
            &public_url,
        ));
        AppState {
            settings: Arc::new(settings),
            public_url: public_url.into(),
            backend,
            registry,
            connections: Arc::new(Connections::default()),
            whip: Arc::new(WhipSessions::default()),
            guesses,
            chat_dropped: Arc::new(AtomicU64::new(0)),
            recordings,
            call_log,
            call_settings: Arc::new(CallSettingsCache::default()),
            files,
            bus,
            geo,
        }
    }
}
