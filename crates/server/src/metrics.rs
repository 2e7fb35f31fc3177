//! `/metrics` in the Prometheus text exposition format (version 0.0.4), encoded by
//! `prometheus-client`.
//!
//! Every value is a snapshot taken at scrape time (the registry's room counts, the open
//! connections, [`SfuStats`]), so the page is one [`Collector`] of const metrics over that
//! snapshot rather than metrics updated as things happen.

use orbita_sfu::queues::DropReason;
use orbita_sfu::SfuStats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The page's `Content-Type`: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What the control plane counts itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlStats {
    /// Live rooms in the registry.
    pub rooms: usize,
    /// Participants in the registry.
    pub participants: usize,
    /// Open signalling WebSockets.
    pub ws_connections: usize,
    /// Wrong room codes (each spends its client's budget: crates/server/src/guesses.rs).
    pub code_misses: u64,
    /// Clients locked out for wrong codes.
    pub code_lockouts: u64,
    /// Code lookups refused because their client was locked out.
    pub code_refused: u64,
    /// Chat messages refused at their sender for its chat limits (never delivered to anyone).
    pub chat_rate_limited: u64,
    /// Calls being recorded.
    pub recordings_active: u64,
    /// Recordings on disk (as of the last sweep).
    pub recordings_stored: u64,
    /// The disk the recordings take, in bytes.
    pub recordings_disk_bytes: u64,
    /// Recordings deleted for their age.
    pub recordings_deleted: u64,
    /// Call-record events dropped: the queue to the coordinator was full.
    pub call_events_dropped: u64,
}

/// The media server's metrics at one moment.
#[derive(Debug)]
struct Snapshot {
    control: ControlStats,
    sfu: SfuStats,
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let (c, s) = (&self.control, &self.sfu);
        let gauges: [(&str, &str, u64); 5] = [
            ("orbita_rooms", "Live rooms (by join code).", c.rooms as u64),
            (
                "orbita_participants",
                "Participants in live rooms.",
                c.participants as u64,
            ),
            (
                "orbita_ws_connections",
                "Open signalling WebSocket connections.",
                c.ws_connections as u64,
            ),
            ("orbita_sfu_rooms", "Rooms in the SFU.", s.rooms),
            (
                "orbita_sfu_participants",
                "Participants in the SFU.",
                s.participants,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        // Counter names without `_total`: the encoder appends it.
        let counters: [(&str, &str, u64); 6] = [
            (
                "orbita_packets_in",
                "Media datagrams received (UDP and ICE-TCP).",
                s.packets_in,
            ),
            (
                "orbita_packets_out",
                "Media datagrams sent (UDP and ICE-TCP).",
                s.packets_out,
            ),
            ("orbita_bytes_in", "Media bytes received.", s.bytes_in),
            ("orbita_bytes_out", "Media bytes sent.", s.bytes_out),
            (
                "orbita_rtp_forwarded",
                "RTP packets forwarded to subscribers.",
                s.rtp_forwarded,
            ),
            (
                "orbita_unmatched_packets",
                "Datagrams that matched no connection.",
                s.unmatched,
            ),
        ];
        let control_counters: [(&str, &str, u64); 4] = [
            (
                "orbita_code_misses",
                "Wrong room codes (page API, join, WHIP, coordinator verbs).",
                c.code_misses,
            ),
            (
                "orbita_code_lockouts",
                "Clients locked out after too many wrong codes.",
                c.code_lockouts,
            ),
            (
                "orbita_code_refused",
                "Code lookups refused because their client was locked out.",
                c.code_refused,
            ),
            (
                "orbita_chat_rate_limited",
                "Chat messages refused at their sender (chat_per_second, chat_bytes_per_second).",
                c.chat_rate_limited,
            ),
        ];
        for (name, help, value) in counters.into_iter().chain(control_counters) {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        // What the bounded queues of the media path dropped, by queue (crates/sfu/src/queues.rs).
        let mut family = encoder.encode_descriptor(
            "orbita_media_dropped_packets",
            "Media packets dropped by a full queue: worker_queue (a worker's input channel), \
             send_queue (a subscriber's outgoing stream), tcp_write_queue (an ICE-TCP connection).",
            None,
            MetricType::Counter,
        )?;
        for reason in DropReason::ALL {
            let counter = ConstCounter::new(s.media_dropped(reason));
            counter.encode(family.encode_family(&[("reason", reason.label())])?)?;
        }
        let chat = ConstCounter::new(s.dropped_chat);
        chat.encode(encoder.encode_descriptor(
            "orbita_chat_dropped_messages",
            "Chat messages not delivered to a receiver whose signalling queue was nearly full.",
            None,
            chat.metric_type(),
        )?)?;
        let addrs = ConstGauge::new(s.demux_addresses);
        addrs.encode(encoder.encode_descriptor(
            "orbita_media_peer_addresses",
            "Peer addresses the media demultiplexer routes by (each from a verified STUN request).",
            None,
            addrs.metric_type(),
        )?)?;
        let tcp_open = ConstGauge::new(s.ice_tcp_open);
        tcp_open.encode(encoder.encode_descriptor(
            "orbita_ice_tcp_connections_open",
            "ICE-TCP connections open on the media server's TCP port.",
            None,
            tcp_open.metric_type(),
        )?)?;
        let mut family = encoder.encode_descriptor(
            "orbita_ice_tcp_connections_refused",
            "ICE-TCP connections closed at accept: max_connections (the port's total cap), \
             max_connections_per_address (their address's cap).",
            None,
            MetricType::Counter,
        )?;
        for (cap, value) in [
            ("max_connections", s.ice_tcp_refused_total),
            ("max_connections_per_address", s.ice_tcp_refused_per_address),
        ] {
            ConstCounter::new(value).encode(family.encode_family(&[("cap", cap)])?)?;
        }
        let recording_gauges: [(&str, &str, u64); 3] = [
            (
                "orbita_recordings_active",
                "Calls being recorded (each holds a recorder slot).",
                c.recordings_active,
            ),
            (
                "orbita_recordings_stored",
                "Recordings on this server's disk (as of the last hourly sweep).",
                c.recordings_stored,
            ),
            (
                "orbita_recordings_disk_bytes",
                "Disk the recordings take, in bytes (the recordings_max_bytes quota's measure).",
                c.recordings_disk_bytes,
            ),
        ];
        for (name, help, value) in recording_gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let deleted = ConstCounter::new(c.recordings_deleted);
        deleted.encode(encoder.encode_descriptor(
            "orbita_recordings_deleted",
            "Recordings deleted past their retention (recording_retention_days).",
            None,
            deleted.metric_type(),
        )?)?;
        let dropped = ConstCounter::new(c.call_events_dropped);
        dropped.encode(encoder.encode_descriptor(
            "orbita_call_events_dropped",
            "Call-record events dropped because the queue to the coordinator was full.",
            None,
            dropped.metric_type(),
        )?)?;
        Ok(())
    }
}

/// Render the metrics page (served with [`CONTENT_TYPE`]).
pub fn render(control: &ControlStats, sfu: &SfuStats) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot {
        control: control.clone(),
        sfu: sfu.clone(),
    }));
    let mut out = String::with_capacity(2048);
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_and_value_lines() {
        let control = ControlStats {
            rooms: 2,
            participants: 5,
            ws_connections: 6,
            code_misses: 11,
            ..ControlStats::default()
        };
        let sfu = SfuStats {
            packets_in: 42,
            rtp_forwarded: 7,
            ..SfuStats::default()
        };
        let text = render(&control, &sfu);
        assert!(
            text.starts_with(
                "# HELP orbita_rooms Live rooms (by join code).\n\
                 # TYPE orbita_rooms gauge\norbita_rooms 2\n"
            ),
            "{text}"
        );
        assert!(text.contains("\norbita_participants 5\n"), "{text}");
        assert!(
            text.contains("# TYPE orbita_packets_in_total counter\norbita_packets_in_total 42\n"),
            "{text}"
        );
        assert!(text.contains("\norbita_rtp_forwarded_total 7\n"), "{text}");
        assert!(text.contains("\norbita_code_misses_total 11\n"), "{text}");
        assert!(text.ends_with('\n'));
    }

    /// Every exported name keeps its kind: the gauges as before, the counters with one
    /// `_total`, each with HELP and TYPE, and nothing else on the page.
    #[test]
    fn names_and_kinds_are_kept() {
        let text = render(&ControlStats::default(), &SfuStats::default());
        let expected = [
            ("orbita_rooms", "gauge"),
            ("orbita_participants", "gauge"),
            ("orbita_ws_connections", "gauge"),
            ("orbita_sfu_rooms", "gauge"),
            ("orbita_sfu_participants", "gauge"),
            ("orbita_packets_in_total", "counter"),
            ("orbita_packets_out_total", "counter"),
            ("orbita_bytes_in_total", "counter"),
            ("orbita_bytes_out_total", "counter"),
            ("orbita_rtp_forwarded_total", "counter"),
            ("orbita_unmatched_packets_total", "counter"),
            ("orbita_code_misses_total", "counter"),
            ("orbita_code_lockouts_total", "counter"),
            ("orbita_code_refused_total", "counter"),
            ("orbita_chat_rate_limited_total", "counter"),
            ("orbita_media_dropped_packets_total", "counter"),
            ("orbita_chat_dropped_messages_total", "counter"),
            ("orbita_media_peer_addresses", "gauge"),
            ("orbita_ice_tcp_connections_open", "gauge"),
            ("orbita_ice_tcp_connections_refused_total", "counter"),
            ("orbita_recordings_active", "gauge"),
            ("orbita_recordings_stored", "gauge"),
            ("orbita_recordings_disk_bytes", "gauge"),
            ("orbita_recordings_deleted_total", "counter"),
            ("orbita_call_events_dropped_total", "counter"),
        ];
        let types: Vec<(&str, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_once(' '))
            .collect();
        assert_eq!(types, expected, "{text}");
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let dropped = [
            "orbita_media_dropped_packets_total{reason=\"worker_queue\"} 0",
            "orbita_media_dropped_packets_total{reason=\"send_queue\"} 0",
            "orbita_media_dropped_packets_total{reason=\"tcp_write_queue\"} 0",
        ];
        let refused = [
            "orbita_ice_tcp_connections_refused_total{cap=\"max_connections\"} 0",
            "orbita_ice_tcp_connections_refused_total{cap=\"max_connections_per_address\"} 0",
        ];
        let mut want: Vec<String> = Vec::new();
        for (name, _) in &expected {
            if *name == "orbita_media_dropped_packets_total" {
                want.extend(dropped.iter().map(|d| d.to_string()));
            } else if *name == "orbita_ice_tcp_connections_refused_total" {
                want.extend(refused.iter().map(|d| d.to_string()));
            } else {
                want.push(format!("{name} 0"));
            }
        }
        assert_eq!(samples, want, "{text}");
    }

    #[test]
    fn drops_are_exported_by_reason() {
        let sfu = SfuStats {
            dropped_send_queue: 12,
            dropped_tcp_write_queue: 3,
            dropped_chat: 9,
            demux_addresses: 4,
            ice_tcp_open: 5,
            ice_tcp_refused_per_address: 6,
            ..SfuStats::default()
        };
        let text = render(&ControlStats::default(), &sfu);
        for line in [
            "orbita_media_dropped_packets_total{reason=\"worker_queue\"} 0\n",
            "orbita_media_dropped_packets_total{reason=\"send_queue\"} 12\n",
            "orbita_media_dropped_packets_total{reason=\"tcp_write_queue\"} 3\n",
            "orbita_chat_dropped_messages_total 9\n",
            "orbita_media_peer_addresses 4\n",
            "orbita_ice_tcp_connections_open 5\n",
            "orbita_ice_tcp_connections_refused_total{cap=\"max_connections\"} 0\n",
            "orbita_ice_tcp_connections_refused_total{cap=\"max_connections_per_address\"} 6\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
