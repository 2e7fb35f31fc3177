//! The result of a load run: what `orbita load` prints as a table and writes as JSON.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// Nearest-rank percentiles of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Sample size.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest value.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of `values`; `None` when empty.
    pub fn of(mut values: Vec<f64>) -> Option<Percentiles> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let at = |q: f64| {
            let rank = (q * n as f64).ceil() as usize;
            values[rank.clamp(1, n) - 1]
        };
        Some(Percentiles {
            n,
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: values[n - 1],
        })
    }
}

/// What was run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Scenario {
    /// Signalling URL.
    pub url: String,
    /// Room codes used.
    pub codes: Vec<String>,
    /// Publishers per room.
    pub publishers_per_room: usize,
    /// Subscribers per room.
    pub subscribers_per_room: usize,
    /// Publishers send Opus.
    pub audio: bool,
    /// What publishers send as video (`None`: no video), e.g. "1280x720+640x360+320x180 simulcast".
    pub video: Option<String>,
    /// The maximum subscribers ask for.
    pub max_quality: Option<String>,
    /// Joins per second (0: all at once).
    pub ramp_per_s: f64,
    /// Seconds waited after the joins before measuring.
    pub settle_s: f64,
    /// Seconds measured.
    pub duration_s: f64,
    /// Media shard threads of the load generator.
    pub media_threads: usize,
    /// Every connection went through the server's TURN relay (`--relay-only`).
    #[serde(default)]
    pub relay_only: bool,
}

/// Who joined.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Participants {
    /// Participants started.
    pub total: usize,
    /// Of which publishers.
    pub publishers: usize,
    /// Of which subscribers.
    pub subscribers: usize,
    /// Joined, connected, and (if they receive) got media.
    pub joined: usize,
    /// The rest.
    pub failed: usize,
    /// Why they failed: reason -> count.
    pub failures: BTreeMap<String, usize>,
}

/// Join times in milliseconds from the WebSocket opening.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct JoinTimes {
    /// To `joined`.
    pub to_joined: Option<Percentiles>,
    /// To the receiving (subscriber) connection being up (ICE + DTLS).
    pub to_connected: Option<Percentiles>,
    /// To the first RTP packet received (audio or video).
    pub to_first_packet: Option<Percentiles>,
    /// To the first VP8 keyframe start received.
    pub to_first_keyframe: Option<Percentiles>,
    /// Publishers: to the publishing connection being up.
    pub publisher_to_connected: Option<Percentiles>,
}

/// Packets lost: expected (first to highest sequence number) minus received.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Loss {
    /// Packets expected.
    pub expected: u64,
    /// Packets missing.
    pub lost: u64,
    /// lost / expected.
    pub fraction: f64,
}

impl Loss {
    /// From expected and received counts.
    pub fn new(expected: u64, received: u64) -> Loss {
        let lost = expected.saturating_sub(received);
        Loss {
            expected,
            lost,
            fraction: if expected > 0 {
                lost as f64 / expected as f64
            } else {
                0.0
            },
        }
    }
}

/// What the receiving connections got.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Received {
    /// Participants expected to receive media.
    pub receivers: usize,
    /// Of which got at least one packet.
    pub receivers_with_media: usize,
    /// RTP packets in the window.
    pub packets: u64,
    /// Payload bytes in the window.
    pub bytes: u64,
    /// Packets per second, all receivers.
    pub packets_per_s: f64,
    /// Payload bits per second, all receivers.
    pub bitrate_bps: f64,
    /// Payload bits per second per receiver.
    pub bitrate_per_receiver_bps: f64,
    /// Video frames per second per received video stream.
    pub video_fps_per_stream: f64,
    /// VP8 keyframe starts received in the whole run.
    pub keyframes: u64,
    /// Loss in the measured window.
    pub loss_window: Loss,
    /// Loss over the whole run (from each stream's first packet).
    pub loss_run: Loss,
    /// Receivers that lost at least one packet in the run.
    pub receivers_with_loss: usize,
    /// Last interarrival jitter per received stream (str0m's receiver reports), ms.
    pub jitter_ms: Option<Percentiles>,
}

/// What the publishers sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Published {
    /// Frames (audio packets and video frames of every layer) handed to str0m in the run.
    pub frames_sent: u64,
    /// Frames per second in the window.
    pub frames_per_s: f64,
    /// Frames the media clocks skipped because the load generator fell behind.
    pub frames_skipped: u64,
    /// Keyframe requests publishers received.
    pub keyframe_requests: u64,
    /// Frames str0m refused.
    pub write_errors: u64,
}

/// The server, read from /proc and /metrics over the window.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServerReport {
    /// Its process id (for /proc).
    pub pid: Option<u32>,
    /// CPU cores used in the window.
    pub cpu_cores: Option<f64>,
    /// CPU seconds used in the window.
    pub cpu_seconds: Option<f64>,
    /// CPU cores per thread name in the window.
    pub threads: BTreeMap<String, f64>,
    /// Time its threads were runnable but waited for a CPU, in cores (other work on the
    /// machine delaying it; 0.01 = 1 % of a core).
    pub runqueue_wait: Option<f64>,
    /// RSS before any participant joined, KiB.
    pub rss_before_kb: Option<u64>,
    /// RSS at the end of the window, KiB.
    pub rss_kb: Option<u64>,
    /// (RSS at the end - RSS before) / participants joined, KiB.
    pub rss_per_participant_kb: Option<f64>,
    /// Datagrams the kernel dropped on the server's sockets during the run (full buffer).
    pub udp_drops: Option<u64>,
    /// RTP packets forwarded in the window (`orbita_rtp_forwarded_total`).
    pub rtp_forwarded: Option<u64>,
    /// Forwarded RTP packets per second.
    pub rtp_forwarded_per_s: Option<f64>,
    /// Datagrams sent per second (`orbita_packets_out_total`: media, RTCP, STUN, probes).
    pub packets_out_per_s: Option<f64>,
    /// CPU microseconds per datagram sent: CPU time / `orbita_packets_out_total`. Differs from
    /// the cost per forwarded packet when str0m queues what it was given (or adds RTCP/probes).
    pub us_per_packet_out: Option<f64>,
    /// Datagrams received per second (`orbita_packets_in_total`).
    pub packets_in_per_s: Option<f64>,
    /// Bits sent per second (`orbita_bytes_out_total`).
    pub bitrate_out_bps: Option<f64>,
    /// Datagrams that matched no connection in the window.
    pub unmatched: Option<u64>,
    /// CPU microseconds per forwarded RTP packet: CPU time / packets forwarded.
    pub us_per_forwarded_packet: Option<f64>,
    /// Forwarded packets per second one core sustains at that cost.
    pub forwarded_per_core_per_s: Option<f64>,
}

/// The load generator itself (to show it was not the bottleneck).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LoadSelf {
    /// CPU cores used in the window.
    pub cpu_cores: f64,
    /// Time its threads were runnable but waited for a CPU, in cores.
    pub runqueue_wait: f64,
    /// RSS at the end of the window, KiB.
    pub rss_kb: u64,
    /// Share of the window the media shards were busy (1.0 = one shard thread never idle).
    pub shard_busy: f64,
    /// Largest timer lateness in the run, ms.
    pub timer_late_max_ms: f64,
    /// Timers that fired more than 20 ms late.
    pub timers_late: u64,
    /// Datagrams the kernel dropped on the load generator's sockets (full buffer).
    pub udp_drops: u64,
    /// UDP sends that failed.
    pub send_errors: u64,
    /// ICE connections that went to disconnected.
    pub ice_disconnects: u64,
}

/// A load run's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// What was run.
    pub scenario: Scenario,
    /// Who joined.
    pub participants: Participants,
    /// How fast.
    pub join_ms: JoinTimes,
    /// Length of the measured window, seconds.
    pub window_s: f64,
    /// What arrived.
    pub received: Received,
    /// What was sent.
    pub published: Published,
    /// The server.
    pub server: ServerReport,
    /// The load generator.
    pub load: LoadSelf,
    /// Kernel-wide UDP receive buffer errors during the run (`/proc/net/snmp`).
    pub kernel_udp_rcvbuf_errors: u64,
    /// CPU cores that other processes on the machine used in the window (all CPUs busy time
    /// minus the server's and the load generator's): what may have disturbed the figures.
    pub other_cores: Option<f64>,
    /// How busy each CPU of the machine was in the window (1.0 = fully), in /proc/stat order.
    pub cpu_busy: Vec<f64>,
    /// Problems participants saw (server errors and the like), reason -> count.
    pub problems: BTreeMap<String, usize>,
}

fn ms(p: &Option<Percentiles>) -> String {
    match p {
        Some(p) => format!(
            "{:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>6}",
            p.p50, p.p95, p.p99, p.max, p.n
        ),
        None => format!("{:>7} {:>7} {:>7} {:>7} {:>6}", "-", "-", "-", "-", 0),
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

impl LoadReport {
    /// The report as a human-readable table.
    pub fn table(&self) -> String {
        let s = &self.scenario;
        let p = &self.participants;
        let r = &self.received;
        let mut o = String::new();
        let rooms = s.codes.len();
        let _ = writeln!(
            o,
            "orbita load: {rooms} room(s) x ({} publisher(s) + {} subscriber(s)); video {}; audio {}; ramp {}; {:.0} s measured",
            s.publishers_per_room,
            s.subscribers_per_room,
            s.video.as_deref().unwrap_or("off"),
            if s.audio { "on" } else { "off" },
            if s.ramp_per_s > 0.0 { format!("{}/s", s.ramp_per_s) } else { "all at once".into() },
            self.window_s
        );
        if s.relay_only {
            let _ = writeln!(
                o,
                "relay only     every connection through the TURN relay from `joined`"
            );
        }
        let _ = writeln!(
            o,
            "participants   {} of {} joined, {} failed{}",
            p.joined,
            p.total,
            p.failed,
            if p.failures.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    p.failures
                        .iter()
                        .map(|(k, v)| format!("{v}x {k}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        );
        let _ = writeln!(
            o,
            "join time (ms from WebSocket open)   p50     p95     p99     max      n"
        );
        let _ = writeln!(
            o,
            "  to joined                      {}",
            ms(&self.join_ms.to_joined)
        );
        let _ = writeln!(
            o,
            "  to connected (subscriber)      {}",
            ms(&self.join_ms.to_connected)
        );
        let _ = writeln!(
            o,
            "  to first media packet          {}",
            ms(&self.join_ms.to_first_packet)
        );
        let _ = writeln!(
            o,
            "  to first keyframe              {}",
            ms(&self.join_ms.to_first_keyframe)
        );
        let _ = writeln!(
            o,
            "  publisher connected            {}",
            ms(&self.join_ms.publisher_to_connected)
        );
        let _ = writeln!(
            o,
            "received       {:.2} Mbit/s in total, {:.0} kbit/s per receiver, {:.0} packets/s; {} of {} receivers got media",
            r.bitrate_bps / 1e6,
            r.bitrate_per_receiver_bps / 1e3,
            r.packets_per_s,
            r.receivers_with_media,
            r.receivers
        );
        let _ = writeln!(
            o,
            "loss           window {:.3} % ({} of {}), run {:.3} % ({} of {}), {} receivers lost any",
            r.loss_window.fraction * 100.0,
            r.loss_window.lost,
            r.loss_window.expected,
            r.loss_run.fraction * 100.0,
            r.loss_run.lost,
            r.loss_run.expected,
            r.receivers_with_loss
        );
        let _ = writeln!(
            o,
            "jitter (ms)    {}",
            match &r.jitter_ms {
                Some(j) => format!(
                    "p50 {:.1}, p95 {:.1}, max {:.1} over {} streams",
                    j.p50, j.p95, j.max, j.n
                ),
                None => "-".into(),
            }
        );
        let _ = writeln!(
            o,
            "frames         received {:.1} video fps per stream, {} keyframes; published {} ({:.0}/s), {} skipped, {} keyframe requests",
            r.video_fps_per_stream,
            r.keyframes,
            self.published.frames_sent,
            self.published.frames_per_s,
            self.published.frames_skipped,
            self.published.keyframe_requests
        );
        let sv = &self.server;
        let _ = writeln!(
            o,
            "server         pid {}: {} cores, RSS {} -> {} MiB ({} KiB per participant), UDP drops {}",
            sv.pid.map_or("-".into(), |p| p.to_string()),
            opt(sv.cpu_cores, 3),
            opt(sv.rss_before_kb.map(|k| k as f64 / 1024.0), 1),
            opt(sv.rss_kb.map(|k| k as f64 / 1024.0), 1),
            opt(sv.rss_per_participant_kb, 1),
            sv.udp_drops.map_or("-".into(), |d| d.to_string()),
        );
        let _ = writeln!(
            o,
            "  forwarding   {} RTP/s forwarded, {} datagrams/s out, {} in, {} Mbit/s out",
            opt(sv.rtp_forwarded_per_s, 0),
            opt(sv.packets_out_per_s, 0),
            opt(sv.packets_in_per_s, 0),
            opt(sv.bitrate_out_bps.map(|b| b / 1e6), 2),
        );
        let _ = writeln!(
            o,
            "  cost         {} us CPU per forwarded packet -> {} packets/s per core ({} us per datagram sent)",
            opt(sv.us_per_forwarded_packet, 2),
            opt(sv.forwarded_per_core_per_s, 0),
            opt(sv.us_per_packet_out, 2),
        );
        if !sv.threads.is_empty() {
            let _ = writeln!(
                o,
                "  threads      {}",
                sv.threads
                    .iter()
                    .map(|(k, v)| format!("{k} {v:.3}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let l = &self.load;
        let _ = writeln!(
            o,
            "load generator {:.3} cores, RSS {:.1} MiB, shards busy {:.1} %, timers late max {:.1} ms ({} > 20 ms), UDP drops {}, send errors {}, ICE disconnects {}",
            l.cpu_cores,
            l.rss_kb as f64 / 1024.0,
            l.shard_busy * 100.0,
            l.timer_late_max_ms,
            l.timers_late,
            l.udp_drops,
            l.send_errors,
            l.ice_disconnects
        );
        let _ = writeln!(
            o,
            "machine        UDP receive buffer errors during the run: {}; other processes used {} cores in the window; waiting for a CPU: server {}, load generator {:.3} cores",
            self.kernel_udp_rcvbuf_errors,
            opt(self.other_cores, 2),
            opt(self.server.runqueue_wait, 3),
            self.load.runqueue_wait
        );
        if !self.problems.is_empty() {
            let _ = writeln!(o, "problems");
            for (k, v) in &self.problems {
                let _ = writeln!(o, "  {v}x {k}");
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert!(Percentiles::of(vec![]).is_none());
        let p = Percentiles::of((1..=100).map(f64::from).collect()).unwrap();
        assert_eq!(
            (p.n, p.p50, p.p95, p.p99, p.max),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
        let p = Percentiles::of(vec![7.0]).unwrap();
        assert_eq!((p.p50, p.p99), (7.0, 7.0));
    }

    #[test]
    fn loss_fraction() {
        let l = Loss::new(200, 199);
        assert_eq!(l.lost, 1);
        assert!((l.fraction - 0.005).abs() < 1e-12);
        assert_eq!(Loss::new(0, 0).fraction, 0.0);
        assert_eq!(
            Loss::new(5, 6).lost,
            0,
            "duplicates never make loss negative"
        );
    }
}
