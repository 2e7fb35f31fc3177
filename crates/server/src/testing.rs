//! A fake media backend for tests of the control plane (no sockets, no media threads).
//!
//! [`FakeBackend`] makes rooms, answers `join` with a `joined` message, records every message
//! handed to a participant, relays chat to everyone in the room, and can drop a participant
//! the way the SFU does (by dropping its sink).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orbita_protocol::{ClientMsg, Limits, RecordingState, Role, ServerMsg, PROTOCOL_VERSION};
use orbita_record::RecorderHandle;
use orbita_sfu::{RoomId, SfuStats};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::backend::{MediaBackend, MediaParticipant};

#[derive(Default)]
struct State {
    rooms_created: u64,
    rooms_closed: Vec<RoomId>,
    labels: HashMap<RoomId, String>,
    /// Participant id -> (room, name, sink).
    participants: HashMap<u64, (RoomId, String, mpsc::Sender<ServerMsg>)>,
    handled: Vec<(String, ClientMsg)>,
    shut_down: Option<String>,
}

/// A [`MediaBackend`] that keeps everything in memory.
#[derive(Default)]
pub struct FakeBackend {
    next_id: AtomicU64,
    state: Arc<Mutex<State>>,
}

impl FakeBackend {
    /// How many rooms were made.
    pub fn rooms_created(&self) -> u64 {
        self.state.lock().rooms_created
    }

    /// The rooms closed, in order.
    pub fn rooms_closed(&self) -> Vec<RoomId> {
        self.state.lock().rooms_closed.clone()
    }

    /// The messages handed to participants, as (participant id, message).
    pub fn handled(&self) -> Vec<(String, ClientMsg)> {
        self.state.lock().handled.clone()
    }

    /// Participants currently joined.
    pub fn participant_count(&self) -> usize {
        self.state.lock().participants.len()
    }

    /// Drop every participant as the SFU does when it gives up on one (their sinks end).
    pub fn drop_all_participants(&self) {
        self.state.lock().participants.clear();
    }

    /// The reason given to [`MediaBackend::shutdown`], if it was called.
    pub fn shut_down(&self) -> Option<String> {
        self.state.lock().shut_down.clone()
    }
}

fn wire_id(id: u64) -> String {
    format!("p{id}")
}

impl MediaBackend for FakeBackend {
    fn udp_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 7882))
    }

    fn tcp_addr(&self) -> Option<SocketAddr> {
        None
    }

    fn create_room(&self, label: &str) -> RoomId {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut state = self.state.lock();
        state.rooms_created += 1;
        state.labels.insert(id, label.to_string());
        id
    }

    fn close_room(&self, room: RoomId) {
        let mut state = self.state.lock();
        state.rooms_closed.push(room);
        state.participants.retain(|_, (r, _, _)| *r != room);
    }

    fn join(
        &self,
        room: RoomId,
        name: String,
        role: Role,
        limits: Limits,
        sink: mpsc::Sender<ServerMsg>,
    ) -> Box<dyn MediaParticipant> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut state = self.state.lock();
        let joined = ServerMsg::Joined {
            v: PROTOCOL_VERSION,
            participant_id: wire_id(id),
            code: state.labels.get(&room).cloned().unwrap_or_default(),
            participants: Vec::new(),
            ice_servers: Vec::new(),
            limits,
            role,
            recording: RecordingState::Off,
            features: Default::default(),
        };
        let _ = sink.try_send(joined);
        state.participants.insert(id, (room, name, sink));
        Box::new(FakeParticipant {
            id,
            state: Arc::clone(&self.state),
        })
    }

    fn join_ingest(
        &self,
        room: RoomId,
        name: String,
        limits: Limits,
        sink: mpsc::Sender<ServerMsg>,
    ) -> Box<dyn MediaParticipant> {
        self.join(room, name, Role::Participant, limits, sink)
    }

    fn start_recording(&self, room: RoomId, recorder: RecorderHandle) {
        // No media to record: the recording ends at once, empty.
        let _ = room;
        recorder.stop(std::time::Instant::now());
    }

    fn stop_recording(&self, _room: RoomId) {}

    fn shutdown(&self, reason: &str, _timeout: Duration) {
        let mut state = self.state.lock();
        state.shut_down = Some(reason.to_string());
        for (_, (_, _, sink)) in state.participants.drain() {
            let _ = sink.try_send(ServerMsg::ServerShutdown {
                reason: reason.to_string(),
            });
        }
    }

    fn stats(&self) -> SfuStats {
        let state = self.state.lock();
        SfuStats {
            rooms: state.labels.len() as u64 - state.rooms_closed.len() as u64,
            participants: state.participants.len() as u64,
            ..SfuStats::default()
        }
    }
}

struct FakeParticipant {
    id: u64,
    state: Arc<Mutex<State>>,
}

impl MediaParticipant for FakeParticipant {
    fn id(&self) -> String {
        wire_id(self.id)
    }

    fn handle(&self, msg: ClientMsg) {
        let mut state = self.state.lock();
        state.handled.push((wire_id(self.id), msg.clone()));
        if let ClientMsg::Chat { text, .. } = msg {
            let Some((room, name, _)) = state.participants.get(&self.id).cloned() else {
                return;
            };
            for (_, (r, _, sink)) in state.participants.iter() {
                if *r == room {
                    let _ = sink.try_send(ServerMsg::Chat {
                        from: wire_id(self.id),
                        name: name.clone(),
                        text: text.clone(),
                        private: false,
                        ts: 0,
                    });
                }
            }
        }
    }
}

impl Drop for FakeParticipant {
    fn drop(&mut self) {
        self.state.lock().participants.remove(&self.id);
    }
}
