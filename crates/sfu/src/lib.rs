//! Orbita media core: a selective forwarding unit on str0m.
//!
//! - One UDP socket (or, optionally, a range of UDP ports with each connection on one of them)
//!   and one ICE-TCP listener serve every peer ([`net`]); packets reach their connection
//!   through hash maps keyed by ICE username and remote address ([`demux`]).
//! - Rooms are sharded over worker threads ([`worker`]); a room lives on one worker, which owns
//!   every `str0m::Rtc` of that room, so forwarding needs no locks.
//! - Forwarding is at the RTP level: [`forward`] rewrites sequence numbers, timestamps and VP8
//!   picture ids when a subscriber switches simulcast layer; [`layers`] picks the layer from
//!   the subscriber's bandwidth estimate and requested maximum.
//!
//! The control plane (HTTP, WebSocket, room codes) lives in `orbita-server`; it talks to the SFU
//! through [`Sfu`] and [`Participant`].

pub mod codec;
pub mod demux;
pub mod forward;
pub mod ice_servers;
pub mod ice_tcp;
pub mod layers;
pub mod net;
mod participant;
mod quality;
pub mod queues;
mod recording;
mod room;
mod rtc_peer;
#[cfg(test)]
mod sim;
pub mod stats;
mod worker;

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orbita_protocol::{ClientMsg, Limits, Role, ServerMsg};

pub use ice_servers::IceServers;
pub use rtc_peer::peer_config;
pub use stats::{RoomStatus, SfuStats, UdpPortStats};

/// Most ports in [`SfuConfig::udp_port_range`].
pub const MAX_UDP_PORTS: usize = 1024;

/// Identifies a room inside the SFU (the control plane maps codes to these).
pub type RoomId = u64;

/// Settings of the media core.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Where the one UDP socket binds. With [`udp_port_range`](Self::udp_port_range), only
    /// its IP is used and its port must be 0 or the range's first.
    pub udp_bind: SocketAddr,
    /// Where the one ICE-TCP listener binds (`None`: no ICE-TCP).
    pub tcp_bind: Option<SocketAddr>,
    /// Most ICE-TCP connections open at once from one client address (an IPv4 address, an
    /// IPv6 /64; 127.0.0.1 and ::1 are capped only in total, [`ice_tcp::MAX_TCP_CONNS`]); 0:
    /// no per-address cap.
    pub tcp_max_connections_per_address: usize,
    /// The time an ICE-TCP connection has, from its accept, to deliver its whole first frame
    /// (a STUN request); default [`ice_tcp::TCP_FIRST_FRAME_TIMEOUT`].
    pub tcp_first_frame_timeout: Duration,
    /// Instead of one UDP port, bind every port of this range on `udp_bind`'s IP (at most
    /// [`MAX_UDP_PORTS`]) and give each connection (each `str0m::Rtc`) a host candidate on one
    /// of them, round-robin. `None`: the one port of `udp_bind`.
    pub udp_port_range: Option<RangeInclusive<u16>>,
    /// Addresses announced as ICE candidates; empty: the bound address (must then not be
    /// unspecified).
    pub announce_ips: Vec<IpAddr>,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Initial bandwidth estimate towards each subscriber, bits per second.
    pub initial_bitrate_bps: u64,
    /// How long a participant whose ICE connection dropped is kept for an ICE restart.
    pub ice_disconnect_grace: Duration,
    /// ICE servers handed to clients at join: STUN, and TURN with per-participant
    /// credentials.
    pub ice_servers: IceServers,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            udp_bind: "127.0.0.1:7882".parse().unwrap(),
            tcp_bind: Some("127.0.0.1:7881".parse().unwrap()),
            tcp_max_connections_per_address: 100,
            tcp_first_frame_timeout: ice_tcp::TCP_FIRST_FRAME_TIMEOUT,
            udp_port_range: None,
            announce_ips: vec![],
            workers: 0,
            initial_bitrate_bps: 2_500_000,
            ice_disconnect_grace: Duration::from_secs(15),
            ice_servers: IceServers::default(),
        }
    }
}

/// A running SFU. Cloning gives another handle to the same SFU.
#[derive(Clone)]
pub struct Sfu {
    inner: Arc<net::NetRuntime>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A process-unique id for rooms, participants and connections.
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl Sfu {
    /// Bind the sockets and start the I/O and worker threads.
    pub fn start(config: SfuConfig) -> std::io::Result<Sfu> {
        Ok(Sfu {
            inner: Arc::new(net::NetRuntime::start(config)?),
        })
    }

    /// The bound UDP address (with a port range: the address of its first port).
    pub fn udp_addr(&self) -> SocketAddr {
        self.inner.udp_addr()
    }

    /// The bound UDP port range, `None` when one port carries all media.
    pub fn udp_port_range(&self) -> Option<RangeInclusive<u16>> {
        self.inner.udp_port_range()
    }

    /// Per-port traffic when media runs on a port range (empty with one port, whose traffic is
    /// all of [`SfuStats`]).
    pub fn udp_port_stats(&self) -> Vec<UdpPortStats> {
        self.inner.udp_port_stats()
    }

    /// The bound ICE-TCP address, if any.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.inner.tcp_addr()
    }

    /// Make a room on the least loaded worker. `label` (the room code) is used in messages.
    pub fn create_room(&self, label: &str) -> RoomId {
        self.inner.create_room(label)
    }

    /// Live counters of a room (participants, last activity), readable without messaging
    /// its worker. `None` once the room has ended.
    pub fn room_status(&self, room: RoomId) -> Option<Arc<RoomStatus>> {
        self.inner.room_status(room)
    }

    /// Attach the session's app to a room: app input from the participant holding control is
    /// written to `input` as JSON lines. The first person in the room (or the next to join)
    /// gets control.
    pub fn attach_app(&self, room: RoomId, input: tokio::sync::mpsc::Sender<String>) {
        self.inner.attach_app(room, input)
    }

    /// The app stopped: participants are told why and app input is refused from now on.
    pub fn detach_app(&self, room: RoomId, reason: &str) {
        self.inner.detach_app(room, reason)
    }

    /// Record the room into `recorder` from now on (its tracks from their best layer):
    /// everyone is told (`recording`), and told again when it stops. A room that has ended
    /// stops the recorder at once. Recording already on is replaced (the old one stops).
    pub fn start_recording(&self, room: RoomId, recorder: orbita_record::RecorderHandle) {
        self.inner.start_recording(room, recorder)
    }

    /// Stop recording the room (the recorder finishes its files on its own thread: the caller
    /// waits for them with `Recorder::finished`). Closing the room stops it too.
    pub fn stop_recording(&self, room: RoomId) {
        self.inner.stop_recording(room)
    }

    /// End a room: its participants are told and dropped.
    pub fn close_room(&self, room: RoomId) {
        self.inner.close_room(room)
    }

    /// Add a participant to a room. The worker sends `joined` (and everything after it) into
    /// `sink`; when the participant is dropped by the SFU (ICE failure, shutdown, room closed,
    /// slow signalling consumer) the sink's sender is dropped, which ends the receiver.
    pub fn join(
        &self,
        room: RoomId,
        name: String,
        role: Role,
        limits: Limits,
        sink: tokio::sync::mpsc::Sender<ServerMsg>,
    ) -> Participant {
        self.join_as(room, name, role, limits, sink, false)
    }

    /// Add a publish-only ingest participant (WHIP: OBS, GStreamer, a session's app). It never
    /// receives media and never holds app control.
    pub fn join_ingest(
        &self,
        room: RoomId,
        name: String,
        limits: Limits,
        sink: tokio::sync::mpsc::Sender<ServerMsg>,
    ) -> Participant {
        self.join_as(room, name, Role::Participant, limits, sink, true)
    }

    fn join_as(
        &self,
        room: RoomId,
        name: String,
        role: Role,
        limits: Limits,
        sink: tokio::sync::mpsc::Sender<ServerMsg>,
        ingest: bool,
    ) -> Participant {
        let id = next_id();
        self.inner.join(room, id, name, role, limits, sink, ingest);
        Participant {
            id,
            room,
            sfu: self.clone(),
        }
    }

    /// Tell every participant the server is going away, close their connections (DTLS
    /// close_notify, RTCP BYE), and stop the threads. Returns when the workers are done or
    /// `timeout` has passed.
    pub fn shutdown(&self, reason: &str, timeout: Duration) {
        self.inner.shutdown(reason, timeout)
    }

    /// Counters for metrics and benchmarks.
    pub fn stats(&self) -> SfuStats {
        self.inner.stats()
    }
}

/// A participant's handle, held by its signalling connection. Dropping it removes the
/// participant from the room.
pub struct Participant {
    id: u64,
    room: RoomId,
    sfu: Sfu,
}

impl Participant {
    /// The id others see (`participant_id`).
    pub fn id(&self) -> String {
        participant::participant_id_string(self.id)
    }

    /// The room it is in.
    pub fn room(&self) -> RoomId {
        self.room
    }

    /// Hand a client message (anything but `join`) to the participant's worker. Answers and
    /// errors come back through the sink.
    pub fn handle(&self, msg: ClientMsg) {
        self.sfu.inner.signal(self.room, self.id, msg);
    }
}

impl Drop for Participant {
    fn drop(&mut self) {
        self.sfu.inner.leave(self.room, self.id);
    }
}
