//! Bounds of the queues on the media path, and the counters of what they drop.
//!
//! Every queue between a datagram's arrival and its departure is bounded; a full queue drops
//! media (never blocks forwarding to the others) and counts the drop by reason:
//!
//! | queue | bound | when full |
//! |---|---|---|
//! | a worker's input channel | [`WORKER_QUEUE`] messages | the datagram is dropped ([`DropReason::WorkerQueue`]) |
//! | an outgoing stream's send queue in str0m (the pacer's queue of one subscriber's track) | [`MAX_SEND_QUEUE_PACKETS`] packets or [`MAX_SEND_QUEUE_DELAY`] of waiting | the packet is not written ([`DropReason::SendQueue`]); video then waits for its next keyframe |
//! | an ICE-TCP connection's write queue | [`TCP_WRITE_QUEUE`] frames | the frame is dropped ([`DropReason::TcpWriteQueue`]) |
//! | a participant's signalling queue | the sink's capacity (the server's `SINK_CAPACITY`) | chat never takes the last [`SIGNAL_RESERVE`] slots (it is dropped for that receiver); anything else that does not fit drops the receiver |
//!
//! [`SendQueueGuard`] is sans-IO: it takes `now` and str0m's queue sample as arguments.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Capacity of a worker's input channel (datagrams and commands). A full channel drops
/// datagrams, as a full socket buffer would, rather than block the reader.
pub const WORKER_QUEUE: usize = 16_384;

/// Most packets one outgoing stream (one subscriber's track) may have waiting in str0m's send
/// queue (paced by the subscriber's bandwidth estimate), counting those written since str0m
/// last sampled the queue. 256 packets are ~2.5 s of 720p video at ~100 packets/s, far more than
/// a keyframe burst; 5 s of Opus.
pub const MAX_SEND_QUEUE_PACKETS: usize = 256;

/// Longest the oldest packet of an outgoing stream may have waited in str0m's send queue before
/// further packets are dropped: beyond this the subscriber is not keeping up (or the worker is
/// overloaded), and queueing more only adds latency and memory.
pub const MAX_SEND_QUEUE_DELAY: Duration = Duration::from_millis(500);

/// Frames waiting for one ICE-TCP connection's writer thread (a frame is one datagram, at most
/// ~1,500 bytes from str0m): ~384 KiB per connection. A peer that does not read loses frames.
pub const TCP_WRITE_QUEUE: usize = 256;

/// Free slots of a participant's signalling queue kept for messages that must not be lost
/// (offers, answers, track and participant changes): droppable messages (chat) are dropped for
/// a receiver with only this many free slots (or fewer).
pub const SIGNAL_RESERVE: usize = 64;

/// Why a media packet was dropped (the `reason` label of
/// `orbita_media_dropped_packets_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// A worker's input channel was full.
    WorkerQueue,
    /// A subscriber's outgoing stream had [`MAX_SEND_QUEUE_PACKETS`] packets or
    /// [`MAX_SEND_QUEUE_DELAY`] queued.
    SendQueue,
    /// An ICE-TCP connection's write queue was full.
    TcpWriteQueue,
}

impl DropReason {
    /// Every reason, in the order metrics list them.
    pub const ALL: [DropReason; 3] = [
        DropReason::WorkerQueue,
        DropReason::SendQueue,
        DropReason::TcpWriteQueue,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::WorkerQueue => "worker_queue",
            DropReason::SendQueue => "send_queue",
            DropReason::TcpWriteQueue => "tcp_write_queue",
        }
    }
}

/// Drop counters, shared by the readers and the workers.
#[derive(Default)]
pub(crate) struct Drops {
    worker_queue: AtomicU64,
    send_queue: AtomicU64,
    tcp_write_queue: AtomicU64,
    /// Chat messages not delivered to a receiver whose signalling queue was nearly full.
    pub chat: AtomicU64,
}

impl Drops {
    /// Count one dropped packet.
    pub fn count(&self, reason: DropReason) {
        self.counter(reason).fetch_add(1, Ordering::Relaxed);
    }

    /// Dropped packets so far.
    pub fn get(&self, reason: DropReason) -> u64 {
        self.counter(reason).load(Ordering::Relaxed)
    }

    fn counter(&self, reason: DropReason) -> &AtomicU64 {
        match reason {
            DropReason::WorkerQueue => &self.worker_queue,
            DropReason::SendQueue => &self.send_queue,
            DropReason::TcpWriteQueue => &self.tcp_write_queue,
        }
    }
}

/// What str0m last sampled of an outgoing stream's send queue (`StreamTx::queue_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSample {
    /// When str0m took the sample (it does at each timeout of the connection).
    pub at: Instant,
    /// Packets queued then.
    pub packets: usize,
    /// When the oldest of them was queued.
    pub first_unsent: Option<Instant>,
}

/// The bound of one outgoing stream's send queue. str0m samples its queue only at the
/// connection's timeouts, so the packets written since the last sample are counted here.
#[derive(Debug, Default)]
pub struct SendQueueGuard {
    sampled_at: Option<Instant>,
    written_since: usize,
}

impl SendQueueGuard {
    /// Whether one more packet may be written at `now`, given str0m's latest sample; counts it
    /// as written when it may.
    pub fn admit(&mut self, now: Instant, sample: Option<QueueSample>) -> bool {
        let (queued, first_unsent) = match sample {
            Some(s) => {
                if self.sampled_at != Some(s.at) {
                    self.sampled_at = Some(s.at);
                    self.written_since = 0;
                }
                (s.packets, s.first_unsent)
            }
            None => (0, None),
        };
        let waited = first_unsent.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        if queued + self.written_since >= MAX_SEND_QUEUE_PACKETS || waited > MAX_SEND_QUEUE_DELAY {
            return false;
        }
        self.written_since += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_written_between_samples_count_towards_the_bound() {
        let t0 = Instant::now();
        let mut g = SendQueueGuard::default();
        // Nothing sampled yet (a connection whose timeouts never ran): the bound still holds.
        let admitted = (0..1000).filter(|_| g.admit(t0, None)).count();
        assert_eq!(admitted, MAX_SEND_QUEUE_PACKETS);
        // A new sample with an emptied queue lets writing resume.
        let s = QueueSample {
            at: t0 + Duration::from_millis(5),
            packets: 0,
            first_unsent: None,
        };
        assert!(g.admit(s.at, Some(s)));
        // The same sample again: the packets written since it count.
        let admitted = (0..1000).filter(|_| g.admit(s.at, Some(s))).count();
        assert_eq!(admitted, MAX_SEND_QUEUE_PACKETS - 1);
    }

    #[test]
    fn a_queue_that_does_not_drain_refuses_after_the_delay() {
        let t0 = Instant::now();
        let mut g = SendQueueGuard::default();
        let sample = |at: Instant| QueueSample {
            at,
            packets: 10,
            first_unsent: Some(t0),
        };
        // Virtual time: one packet every 20 ms, str0m samples every 20 ms, the oldest packet
        // never leaves (the subscriber's pacer is stuck).
        let mut last_admitted = None;
        for i in 0..100u64 {
            let now = t0 + Duration::from_millis(20 * i);
            if g.admit(now, Some(sample(now))) {
                last_admitted = Some(now - t0);
            }
        }
        assert_eq!(last_admitted, Some(Duration::from_millis(500)));
        // A queue that moves again (new oldest packet) is admitted again.
        let now = t0 + Duration::from_secs(3);
        let moving = QueueSample {
            at: now,
            packets: 3,
            first_unsent: Some(now - Duration::from_millis(40)),
        };
        assert!(g.admit(now, Some(moving)));
    }

    #[test]
    fn labels_are_distinct() {
        let labels: Vec<&str> = DropReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels, ["worker_queue", "send_queue", "tcp_write_queue"]);
    }
}
