//! Counters the SFU keeps for metrics and benchmarks.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A snapshot of the SFU's counters.
#[derive(Debug, Clone, Default)]
pub struct SfuStats {
    /// Live rooms.
    pub rooms: u64,
    /// Live participants.
    pub participants: u64,
    /// UDP/TCP datagrams received.
    pub packets_in: u64,
    /// UDP/TCP datagrams sent.
    pub packets_out: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// RTP packets forwarded to subscribers.
    pub rtp_forwarded: u64,
    /// Datagrams that matched no connection.
    pub unmatched: u64,
    /// Datagrams dropped because their worker's input channel was full.
    pub dropped_worker_queue: u64,
    /// RTP packets not written to a subscriber whose outgoing stream's send queue was full.
    pub dropped_send_queue: u64,
    /// Frames dropped because an ICE-TCP connection's write queue was full.
    pub dropped_tcp_write_queue: u64,
    /// Chat messages not delivered to a receiver whose signalling queue was nearly full.
    pub dropped_chat: u64,
    /// Peer addresses the demultiplexer knows (each learnt from a verified STUN request).
    pub demux_addresses: u64,
    /// ICE-TCP connections open.
    pub ice_tcp_open: u64,
    /// ICE-TCP connections closed at accept: the port had `MAX_TCP_CONNS` open.
    pub ice_tcp_refused_total: u64,
    /// ICE-TCP connections closed at accept: their address had its cap open.
    pub ice_tcp_refused_per_address: u64,
}

impl SfuStats {
    /// Media packets dropped for `reason`.
    pub fn media_dropped(&self, reason: crate::queues::DropReason) -> u64 {
        use crate::queues::DropReason;
        match reason {
            DropReason::WorkerQueue => self.dropped_worker_queue,
            DropReason::SendQueue => self.dropped_send_queue,
            DropReason::TcpWriteQueue => self.dropped_tcp_write_queue,
        }
    }
}

/// Traffic on one port of a UDP port range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UdpPortStats {
    /// The local port.
    pub port: u16,
    /// Connections (`str0m::Rtc`s) given a candidate on this port so far.
    pub connections: u64,
    /// Datagrams received on it.
    pub packets_in: u64,
    /// Datagrams sent from it.
    pub packets_out: u64,
    /// Bytes received on it.
    pub bytes_in: u64,
    /// Bytes sent from it.
    pub bytes_out: u64,
}

/// Live state of one room, shared between its worker (writer) and the control plane (reader).
#[derive(Debug)]
pub struct RoomStatus {
    participants: AtomicUsize,
    last_activity_ms: AtomicU64,
}

fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn millis(t: Instant) -> u64 {
    t.saturating_duration_since(base()).as_millis() as u64
}

impl RoomStatus {
    /// A room created now.
    pub fn new(now: Instant) -> Self {
        RoomStatus {
            participants: AtomicUsize::new(0),
            last_activity_ms: AtomicU64::new(millis(now)),
        }
    }

    /// People and ingests in the room.
    pub fn participants(&self) -> usize {
        self.participants.load(Ordering::Relaxed)
    }

    /// How long nothing happened in the room: no media packet, no signalling message, no input.
    pub fn idle_for(&self, now: Instant) -> Duration {
        Duration::from_millis(
            millis(now).saturating_sub(self.last_activity_ms.load(Ordering::Relaxed)),
        )
    }

    pub(crate) fn set_participants(&self, n: usize) {
        self.participants.store(n, Ordering::Relaxed);
    }

    pub(crate) fn touch(&self, now: Instant) {
        self.last_activity_ms.store(millis(now), Ordering::Relaxed);
    }
}
