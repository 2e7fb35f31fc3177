//! The server's view of a participant's connection quality, from str0m's peer statistics
//! (every [`STATS_INTERVAL`] on each connection): what the server received from the
//! participant and sent them, the loss their browser reported on what it received, and the
//! round-trip time. Sent as `quality` (`source: server`) to the participant and to the call's
//! agents; the control plane stores it with the call.

use std::time::{Duration, Instant};

use orbita_protocol::{PcKind, QualityReport};
use str0m::stats::PeerStats;

/// How often str0m reports a connection's statistics.
pub const STATS_INTERVAL: Duration = Duration::from_secs(5);

/// A byte counter's last reading.
#[derive(Debug, Clone, Copy)]
struct Reading {
    bytes: u64,
    at: Instant,
}

impl Reading {
    /// kbit/s from `self` to `now` (`None` for a first reading or a counter that went back).
    fn kbps_to(self, bytes: u64, at: Instant) -> Option<f64> {
        let secs = at.checked_duration_since(self.at)?.as_secs_f64();
        (secs >= 0.5 && bytes >= self.bytes)
            .then(|| (bytes - self.bytes) as f64 * 8.0 / secs / 1000.0)
    }
}

/// What the server last saw of one participant.
#[derive(Debug, Clone, Default)]
pub struct ServerQuality {
    received: Option<Reading>,
    sent: Option<Reading>,
    /// The figures of the publisher connection (what the participant sends) since the last
    /// report.
    sending: QualityReport,
}

fn round(v: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (v * f).round() / f
}

impl ServerQuality {
    /// Connection `pc`'s statistics `s`: the report to send when there is one (after the
    /// subscriber connection's, which completes a round; or the publisher's when the
    /// participant receives nothing).
    pub fn on_stats(
        &mut self,
        pc: PcKind,
        s: &PeerStats,
        has_subscriber: bool,
    ) -> Option<QualityReport> {
        let now = s.timestamp;
        match pc {
            PcKind::Publisher => {
                let kbps = self.received.and_then(|r| r.kbps_to(s.peer_bytes_rx, now));
                self.received = Some(Reading {
                    bytes: s.peer_bytes_rx,
                    at: now,
                });
                self.sending.out_kbps = kbps.map(|k| round(k, 1));
                if self.sending.rtt_ms.is_none() {
                    self.sending.rtt_ms = s.rtt.map(|r| round(r.as_secs_f64() * 1000.0, 1));
                }
                if has_subscriber {
                    return None;
                }
                let report = std::mem::take(&mut self.sending);
                (report != QualityReport::default()).then_some(report)
            }
            PcKind::Subscriber => {
                let kbps = self.sent.and_then(|r| r.kbps_to(s.peer_bytes_tx, now));
                self.sent = Some(Reading {
                    bytes: s.peer_bytes_tx,
                    at: now,
                });
                let mut report = std::mem::take(&mut self.sending);
                report.in_kbps = kbps.map(|k| round(k, 1));
                report.loss_pct = s
                    .egress_loss_fraction
                    .map(|f| round(f64::from(f.clamp(0.0, 1.0)) * 100.0, 2));
                if let Some(rtt) = s.rtt {
                    report.rtt_ms = Some(round(rtt.as_secs_f64() * 1000.0, 1));
                }
                (report != QualityReport::default()).then_some(report)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(at: Instant, rx: u64, tx: u64, loss: Option<f32>, rtt_ms: Option<u64>) -> PeerStats {
        PeerStats {
            peer_bytes_rx: rx,
            peer_bytes_tx: tx,
            bytes_rx: rx,
            bytes_tx: tx,
            timestamp: at,
            bwe_tx: None,
            egress_loss_fraction: loss,
            ingress_loss_fraction: None,
            rtt: rtt_ms.map(Duration::from_millis),
            selected_candidate_pair: None,
        }
    }

    /// A round of both connections, 5 s after the first: rates from the byte counters, the
    /// loss the browser reported, the subscriber's round trip.
    #[test]
    fn a_round_gives_rates_loss_and_rtt() {
        let t0 = Instant::now();
        let t1 = t0 + STATS_INTERVAL;
        let mut q = ServerQuality::default();
        // First readings: counters only (a report with the round trip).
        assert_eq!(
            q.on_stats(
                PcKind::Publisher,
                &stats(t0, 1_000, 0, None, Some(30)),
                true
            ),
            None
        );
        let first = q.on_stats(
            PcKind::Subscriber,
            &stats(t0, 0, 5_000, Some(0.0), Some(20)),
            true,
        );
        assert_eq!(first.and_then(|r| r.out_kbps), None);
        // 625,000 bytes in 5 s is 1,000 kbit/s; 312,500 is 500.
        assert_eq!(
            q.on_stats(
                PcKind::Publisher,
                &stats(t1, 626_000, 0, None, Some(30)),
                true
            ),
            None
        );
        let r = q
            .on_stats(
                PcKind::Subscriber,
                &stats(t1, 0, 317_500, Some(0.0125), Some(42)),
                true,
            )
            .expect("a report");
        assert_eq!(r.out_kbps, Some(1000.0));
        assert_eq!(r.in_kbps, Some(500.0));
        assert_eq!(r.loss_pct, Some(1.25));
        assert_eq!(r.rtt_ms, Some(42.0));
        assert!(r.check().is_ok());
    }

    /// A participant who receives nothing: the publisher's stats make the report.
    #[test]
    fn without_a_subscriber_the_publisher_reports() {
        let t0 = Instant::now();
        let mut q = ServerQuality::default();
        q.on_stats(PcKind::Publisher, &stats(t0, 0, 0, None, None), false);
        let r = q
            .on_stats(
                PcKind::Publisher,
                &stats(t0 + STATS_INTERVAL, 62_500, 0, None, None),
                false,
            )
            .expect("a report");
        assert_eq!(r.out_kbps, Some(100.0));
        assert_eq!(r.in_kbps, None);
    }
}
