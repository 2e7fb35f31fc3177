//! The media backend the control plane drives: the SFU, or a fake in tests.
//!
//! [`MediaBackend`] mirrors the parts of [`orbita_sfu::Sfu`] the server uses, so the room
//! registry, HTTP API and signalling can be tested without sockets or media threads.

use std::net::SocketAddr;
use std::time::Duration;

use orbita_protocol::{ClientMsg, Limits, Role, ServerMsg};
use orbita_record::RecorderHandle;
use orbita_sfu::{RoomId, Sfu, SfuStats};
use tokio::sync::mpsc;

/// A media core that hosts rooms and participants.
pub trait MediaBackend: Send + Sync + 'static {
    /// The bound media UDP address.
    fn udp_addr(&self) -> SocketAddr;
    /// The bound ICE-TCP address, if ICE-TCP is on.
    fn tcp_addr(&self) -> Option<SocketAddr>;
    /// Make a room; `label` is its join code.
    fn create_room(&self, label: &str) -> RoomId;
    /// End a room; its participants are told and dropped.
    fn close_room(&self, room: RoomId);
    /// Add a participant. Everything for it, starting with `joined`, goes into `sink`; the
    /// backend drops the sender when it drops the participant.
    fn join(
        &self,
        room: RoomId,
        name: String,
        role: Role,
        limits: Limits,
        sink: mpsc::Sender<ServerMsg>,
    ) -> Box<dyn MediaParticipant>;
    /// Add a publish-only participant (WHIP ingest), otherwise as [`MediaBackend::join`].
    fn join_ingest(
        &self,
        room: RoomId,
        name: String,
        limits: Limits,
        sink: mpsc::Sender<ServerMsg>,
    ) -> Box<dyn MediaParticipant>;
    /// Record the room into `recorder` from now on; everyone in it is told.
    fn start_recording(&self, room: RoomId, recorder: RecorderHandle);
    /// Stop recording the room (the recorder finishes its files; everyone is told).
    fn stop_recording(&self, room: RoomId);
    /// Tell every participant the server is going away and stop; blocks up to `timeout`.
    fn shutdown(&self, reason: &str, timeout: Duration);
    /// Counters for `/metrics`.
    fn stats(&self) -> SfuStats;
}

/// A participant's handle in the backend. Dropping it makes the participant leave.
pub trait MediaParticipant: Send {
    /// The id other participants see.
    fn id(&self) -> String;
    /// Pass on a client message (anything but `join`).
    fn handle(&self, msg: ClientMsg);
}

impl MediaBackend for Sfu {
    fn udp_addr(&self) -> SocketAddr {
        Sfu::udp_addr(self)
    }

    fn tcp_addr(&self) -> Option<SocketAddr> {
        Sfu::tcp_addr(self)
    }

    fn create_room(&self, label: &str) -> RoomId {
        Sfu::create_room(self, label)
    }

    fn close_room(&self, room: RoomId) {
        Sfu::close_room(self, room)
    }

    fn join(
        &self,
        room: RoomId,
        name: String,
        role: Role,
        limits: Limits,
        sink: mpsc::Sender<ServerMsg>,
    ) -> Box<dyn MediaParticipant> {
        Box::new(Sfu::join(self, room, name, role, limits, sink))
    }

    fn join_ingest(
        &self,
        room: RoomId,
        name: String,
        limits: Limits,
        sink: mpsc::Sender<ServerMsg>,
    ) -> Box<dyn MediaParticipant> {
        Box::new(Sfu::join_ingest(self, room, name, limits, sink))
    }

    fn start_recording(&self, room: RoomId, recorder: RecorderHandle) {
        Sfu::start_recording(self, room, recorder)
    }

    fn stop_recording(&self, room: RoomId) {
        Sfu::stop_recording(self, room)
    }

    fn shutdown(&self, reason: &str, timeout: Duration) {
        Sfu::shutdown(self, reason, timeout)
    }

    fn stats(&self) -> SfuStats {
        Sfu::stats(self)
    }
}

impl MediaParticipant for orbita_sfu::Participant {
    fn id(&self) -> String {
        orbita_sfu::Participant::id(self)
    }

    fn handle(&self, msg: ClientMsg) {
        orbita_sfu::Participant::handle(self, msg)
    }
}
