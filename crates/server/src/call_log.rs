//! This media server's calls, as events for their records (docs/calls.md): a call starts with
//! its room's first participant and ends when the room closes; each join, leave, public chat
//! line, recording and connection quality report is an event. The node link (`orbita node`, and `orbita serve`'s own) sends them to
//! the coordinator, which stores them (`CALL_EVENT`). The queue between is bounded: when the
//! link cannot keep up, events are dropped and counted, never waited for.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use orbita_coordinator::verbs::CallEvent;
use orbita_protocol::{QualityReport, QualitySource};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::recording_store::now_ms;

/// Events queued for the coordinator at most.
pub const QUEUE: usize = 10_000;
/// Quality reports sent of one call at most (a two-hour call of four people, browsers' and
/// the server's every 5 s, is 11,520).
pub const MAX_QUALITY_REPORTS: usize = 20_000;

struct RoomCall {
    id: String,
    present: usize,
    chat_seq: u64,
    /// When the last participant left (the call's end if nobody comes back).
    empty_since_ms: Option<u64>,
    /// Quality reports sent of it.
    quality_reports: usize,
}

/// The calls of this server's rooms.
#[derive(Default)]
pub struct CallLog {
    calls: Mutex<HashMap<String, RoomCall>>,
    tx: Mutex<Option<mpsc::Sender<CallEvent>>>,
    dropped: AtomicU64,
}

/// A new call's id: its start (UTC), its room's code and a random suffix.
fn call_id(code: &str) -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let suffix: u32 = rand::random();
    format!("{now}-{code}-{suffix:08x}")
}

impl CallLog {
    /// The events from now on (a second subscriber replaces the first).
    pub fn subscribe(&self) -> mpsc::Receiver<CallEvent> {
        let (tx, rx) = mpsc::channel(QUEUE);
        *self.tx.lock() = Some(tx);
        rx
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The ids of the calls going on.
    pub fn live_calls(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.calls.lock().values().map(|c| c.id.clone()).collect();
        ids.sort();
        ids
    }

    fn emit(&self, event: CallEvent) {
        let tx = self.tx.lock();
        let Some(tx) = tx.as_ref() else { return };
        if tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `participant` (`name`, `role`, browser `user_agent`) joined room `code` (app
    /// `rc_name`, created by account `owner`); the room's first join starts its call. The
    /// agent (who holds the room's host key) is taken to be its owner's account. Returns the
    /// call's id and the participant's survey token (the coordinator keeps its hash).
    /// `consent`: the id of the consent text they accepted before joining.
    #[allow(clippy::too_many_arguments)]
    pub fn joined(
        &self,
        code: &str,
        rc_name: &str,
        owner: Option<String>,
        participant: &str,
        name: &str,
        role: &str,
        user_agent: &str,
        consent: Option<String>,
    ) -> (String, String) {
        let account = (role == "agent").then(|| owner.clone()).flatten();
        let token: String = (0..32)
            .map(|_| format!("{:02x}", rand::random::<u8>()))
            .collect();
        let at_ms = now_ms();
        let (call, started) = {
            let mut calls = self.calls.lock();
            let started = !calls.contains_key(code);
            let call = calls.entry(code.to_string()).or_insert_with(|| RoomCall {
                id: call_id(code),
                present: 0,
                chat_seq: 0,
                empty_since_ms: None,
                quality_reports: 0,
            });
            call.present += 1;
            call.empty_since_ms = None;
            (call.id.clone(), started)
        };
        if started {
            self.emit(CallEvent {
                call: call.clone(),
                at_ms,
                event: "started".into(),
                code: Some(code.to_string()),
                rc_name: Some(rc_name.to_string()),
                owner,
                ..CallEvent::default()
            });
        }
        self.emit(CallEvent {
            call: call.clone(),
            at_ms,
            event: "joined".into(),
            participant: Some(participant.to_string()),
            name: Some(name.to_string()),
            role: Some(role.to_string()),
            user_agent: Some(user_agent.chars().take(512).collect()),
            account,
            token: Some(token.clone()),
            consent,
            ..CallEvent::default()
        });
        (call, token)
    }

    /// `participant`'s connection `quality` in room `code`, measured by `source`; at most
    /// [`MAX_QUALITY_REPORTS`] a call (beyond, dropped and counted).
    pub fn quality(
        &self,
        code: &str,
        participant: &str,
        source: QualitySource,
        quality: &QualityReport,
    ) {
        let call = {
            let mut calls = self.calls.lock();
            let Some(call) = calls.get_mut(code) else {
                return;
            };
            if call.quality_reports >= MAX_QUALITY_REPORTS {
                drop(calls);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
            call.quality_reports += 1;
            call.id.clone()
        };
        self.emit(CallEvent {
            call,
            at_ms: now_ms(),
            event: "quality".into(),
            participant: Some(participant.to_string()),
            source: Some(
                match source {
                    QualitySource::Browser => "browser",
                    QualitySource::Server => "server",
                }
                .into(),
            ),
            quality: Some(quality.clone()),
            ..CallEvent::default()
        });
    }

    /// `participant` of room `code` uses the camera and microphone of these labels.
    pub fn devices(&self, code: &str, participant: &str, camera: &str, microphone: &str) {
        let Some(call) = self.calls.lock().get(code).map(|c| c.id.clone()) else {
            return;
        };
        self.emit(CallEvent {
            call,
            at_ms: now_ms(),
            event: "devices".into(),
            participant: Some(participant.to_string()),
            camera: Some(camera.to_string()),
            microphone: Some(microphone.to_string()),
            ..CallEvent::default()
        });
    }

    /// Recording `recording` of room `code` started.
    pub fn recording(&self, code: &str, recording: &str) {
        let Some(call) = self.calls.lock().get(code).map(|c| c.id.clone()) else {
            return;
        };
        self.emit(CallEvent {
            call,
            at_ms: now_ms(),
            event: "recording".into(),
            recording: Some(recording.to_string()),
            ..CallEvent::default()
        });
    }

    /// `participant` left room `code`.
    pub fn left(&self, code: &str, participant: &str) {
        let at_ms = now_ms();
        let call = {
            let mut calls = self.calls.lock();
            let Some(call) = calls.get_mut(code) else {
                return;
            };
            call.present = call.present.saturating_sub(1);
            if call.present == 0 {
                call.empty_since_ms = Some(at_ms);
            }
            call.id.clone()
        };
        self.emit(CallEvent {
            call,
            at_ms,
            event: "left".into(),
            participant: Some(participant.to_string()),
            ..CallEvent::default()
        });
    }

    /// `participant` wrote `text` to everyone in room `code`.
    pub fn chat(&self, code: &str, participant: &str, text: &str) {
        let (call, seq) = {
            let mut calls = self.calls.lock();
            let Some(call) = calls.get_mut(code) else {
                return;
            };
            call.chat_seq += 1;
            (call.id.clone(), call.chat_seq)
        };
        self.emit(CallEvent {
            call,
            at_ms: now_ms(),
            event: "chat".into(),
            participant: Some(participant.to_string()),
            seq: Some(seq),
            text: Some(text.to_string()),
            ..CallEvent::default()
        });
    }

    /// Room `code` closed (`reason`): its call ends, when its last participant left if the
    /// room stood empty since.
    pub fn ended(&self, code: &str, reason: &str) {
        let Some(call) = self.calls.lock().remove(code) else {
            return;
        };
        self.emit(CallEvent {
            call: call.id,
            at_ms: call.empty_since_ms.unwrap_or_else(now_ms),
            event: "ended".into(),
            reason: Some(reason.to_string()),
            ..CallEvent::default()
        });
    }
}
