//! Counters the SFU keeps for metrics and benchmarks.

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
}
