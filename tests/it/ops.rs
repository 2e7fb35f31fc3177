//! Operations, with the real binary: `orbita serve` and `orbita coordinator` logging JSON lines
//! (`--log-format json`), their `/metrics` (the all-in-one server's with both the media
//! server's and the coordinator's families, each declared once) and `/healthz`, and
//! `orbita healthcheck` against them (exit 0), a wrong path and a closed port (exit 1, one
//! line on stderr).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{free_tcp_port, orbita_command, Proc, LOOPBACK_MEDIA_ARGS};
use serde_json::Value;

/// `orbita ARGS` logging at `info` (no `ORBITA_LOG*` from the environment), its stderr
/// collected until it exits.
fn spawn(name: &str, args: &[&str]) -> Proc {
    let mut cmd = orbita_command(args);
    cmd.env("RUST_LOG", "info")
        .env_remove("ORBITA_LOG")
        .env_remove("ORBITA_LOG_FORMAT")
        .stderr(Stdio::piped());
    Proc::spawn(name, cmd)
}

/// How soon a process must exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(15);

/// `GET path` over HTTP/1.1: the status, the `Content-Type` and the body.
fn get(addr: &str, path: &str) -> (u16, String, String) {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type:")
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    (head[9..12].parse().unwrap(), content_type, body.to_string())
}

/// `orbita healthcheck URL`: exit code and stderr.
fn healthcheck(url: &str) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_orbita"))
        .args(["healthcheck", url])
        .output()
        .unwrap();
    assert!(out.stdout.is_empty());
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The families a metrics page declares, each once.
fn families(page: &str) -> Vec<(String, String)> {
    let mut seen = std::collections::BTreeSet::new();
    page.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (name, kind) = l.split_once(' ').unwrap();
            assert!(seen.insert(name.to_string()), "{name} declared twice");
            (name.to_string(), kind.to_string())
        })
        .collect()
}

/// Every line a JSON object with a timestamp, a level and a target; returns them.
fn json_lines(who: &str, lines: &[String]) -> Vec<Value> {
    assert!(!lines.is_empty(), "{who} logged nothing");
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{who}: not a JSON line ({e}): {l:?}"));
            for key in ["timestamp", "level", "target"] {
                assert!(v[key].is_string(), "{who}: no {key} in {l}");
            }
            v
        })
        .collect()
}

#[test]
fn json_logs_metrics_health_and_healthcheck() {
    let dir = std::env::temp_dir().join(format!("orbita-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data");
    let serve_args = [
        &["serve", "--data-dir", data.to_str().unwrap()][..],
        &LOOPBACK_MEDIA_ARGS,
        &["--log-format", "json"],
    ]
    .concat();
    let mut serve = spawn("serve", &serve_args);
    let addr = serve.wait_for("listening on http://");

    // One page: the media server's families, then the coordinator's.
    let (status, content_type, page) = get(&addr, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let declared = families(&page);
    for (name, kind) in [
        ("orbita_rooms", "gauge"),
        ("orbita_ws_connections", "gauge"),
        ("orbita_packets_in_total", "counter"),
        ("orbita_rtp_forwarded_total", "counter"),
        ("orbita_coordinator_nodes_up", "gauge"),
        ("orbita_coordinator_sessions", "gauge"),
        ("orbita_coordinator_joins_total", "counter"),
        ("orbita_coordinator_refusals_total", "counter"),
        ("orbita_coordinator_request_duration_seconds", "histogram"),
    ] {
        assert!(
            declared.contains(&(name.to_string(), kind.to_string())),
            "{name} {kind} in {page}"
        );
    }
    assert!(page.contains("\norbita_rooms 0\n"), "{page}");
    assert_eq!(
        get(&addr, "/healthz"),
        (200, "text/plain; charset=utf-8".into(), "ok".into())
    );

    // orbita healthcheck: 0 on 200; 1 with one line for anything else.
    assert_eq!(
        healthcheck(&format!("http://{addr}/healthz")),
        (0, String::new())
    );
    let (code, err) = healthcheck(&format!("http://{addr}/no-such-page"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("answered 404"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let closed_port = free_tcp_port();
    let (code, err) = healthcheck(&format!("http://127.0.0.1:{closed_port}/healthz"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("orbita: cannot connect to 127.0.0.1:"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let (code, err) = healthcheck("ftp://127.0.0.1/");
    assert_eq!((code, err.lines().count()), (1, 1), "{err}");

    // The coordinator alone: its own /healthz and /metrics.
    let mut coordinator = spawn(
        "coordinator",
        &[
            "coordinator",
            "--listen-addr",
            "127.0.0.1:0",
            "--cluster-secret",
            "ops-test-secret",
            "--log-format",
            "json",
        ],
    );
    let url = coordinator.wait_for("listening on ws://");
    let coordinator_addr = url.trim_end_matches("/coordinator").to_string();
    assert_eq!(
        healthcheck(&format!("http://{coordinator_addr}/healthz")),
        (0, String::new())
    );
    let (status, _, page) = get(&coordinator_addr, "/metrics");
    assert_eq!(status, 200);
    let declared = families(&page);
    assert!(declared
        .iter()
        .any(|(n, _)| n == "orbita_coordinator_connections"));
    assert!(declared
        .iter()
        .all(|(n, _)| n.starts_with("orbita_coordinator_")));

    // Both logged JSON lines only, up to their shutdown.
    let lines = json_lines("serve", &serve.stop(STOP_WITHIN));
    assert!(lines.iter().any(|l| l["level"] == "INFO"), "{lines:#?}");
    let lines = json_lines("coordinator", &coordinator.stop(STOP_WITHIN));
    assert!(
        lines.iter().any(|l| l["level"] == "INFO"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.contains("shutting down"))),
        "{lines:#?}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
