//! `/metrics` in the Prometheus text exposition format.

use std::fmt::Write;

use orbita_sfu::SfuStats;

/// What the control plane counts itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlStats {
    /// Live rooms in the registry.
    pub rooms: usize,
    /// Participants in the registry.
    pub participants: usize,
    /// Open signalling WebSockets.
    pub ws_connections: usize,
}

/// Render the metrics page.
pub fn render(control: &ControlStats, sfu: &SfuStats) -> String {
    let metrics: [(&str, &str, &str, u64); 11] = [
        (
            "orbita_rooms",
            "gauge",
            "Live rooms (by join code).",
            control.rooms as u64,
        ),
        (
            "orbita_participants",
            "gauge",
            "Participants in live rooms.",
            control.participants as u64,
        ),
        (
            "orbita_ws_connections",
            "gauge",
            "Open signalling WebSocket connections.",
            control.ws_connections as u64,
        ),
        ("orbita_sfu_rooms", "gauge", "Rooms in the SFU.", sfu.rooms),
        (
            "orbita_sfu_participants",
            "gauge",
            "Participants in the SFU.",
            sfu.participants,
        ),
        (
            "orbita_packets_in_total",
            "counter",
            "Media datagrams received (UDP and ICE-TCP).",
            sfu.packets_in,
        ),
        (
            "orbita_packets_out_total",
            "counter",
            "Media datagrams sent (UDP and ICE-TCP).",
            sfu.packets_out,
        ),
        (
            "orbita_bytes_in_total",
            "counter",
            "Media bytes received.",
            sfu.bytes_in,
        ),
        (
            "orbita_bytes_out_total",
            "counter",
            "Media bytes sent.",
            sfu.bytes_out,
        ),
        (
            "orbita_rtp_forwarded_total",
            "counter",
            "RTP packets forwarded to subscribers.",
            sfu.rtp_forwarded,
        ),
        (
            "orbita_unmatched_packets_total",
            "counter",
            "Datagrams that matched no connection.",
            sfu.unmatched,
        ),
    ];
    let mut out = String::with_capacity(2048);
    for (name, kind, help, value) in metrics {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
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
        };
        let sfu = SfuStats {
            packets_in: 42,
            ..SfuStats::default()
        };
        let text = render(&control, &sfu);
        assert!(
            text.contains("# TYPE orbita_rooms gauge\norbita_rooms 2\n"),
            "{text}"
        );
        assert!(text.contains("\norbita_participants 5\n"));
        assert!(
            text.contains("# TYPE orbita_packets_in_total counter\norbita_packets_in_total 42\n")
        );
        assert!(text.ends_with('\n'));
    }
}
