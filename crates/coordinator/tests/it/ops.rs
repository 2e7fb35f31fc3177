//! The coordinator's operations endpoints over real HTTP on 127.0.0.1: `/metrics` counts a real
//! join, refusals by reason and request times by verb in the Prometheus text format, and
//! `/healthz` answers 200 while the database does and 503 once it is gone.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use orbita_coordinator::config::Settings;
use orbita_coordinator::node::{self, NodeConfig, NodeLink};
use orbita_coordinator::server;
use orbita_coordinator::verbs::{FromNode, RcInfo, Registration, ToNode};
use orbita_coordinator::{now_ms, Coordinator};
use serde_json::{json, Value};

use crate::support::{node_recv, recv, Ws};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "ops-secret";

/// `GET path` over HTTP/1.1: the status, the `Content-Type` and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("headers end");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    let status = head[9..12].parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-type:")
                .then(|| l[13..].trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// A parsed exposition: every sample (`name{labels}` -> value) and every family's type. Panics
/// on any line that is not a comment, a blank or `name[{k="v",...}] value`, on a sample of no
/// declared family, and on a family declared twice.
struct Scrape {
    samples: BTreeMap<String, f64>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = BTreeMap::new();
        let mut types = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(
                    types.insert(name.to_string(), kind.to_string()).is_none(),
                    "{name} declared twice"
                );
                continue;
            }
            if line.is_empty() || line.starts_with("# HELP ") {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("value of {line:?}")),
            };
            let name = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect("labels close");
                    for pair in labels.split(',') {
                        let (k, v) = pair.split_once('=').expect("label=value");
                        assert!(k.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
                        assert!(v.len() >= 2 && v.starts_with('"') && v.ends_with('"'));
                    }
                    name
                }
                None => series,
            };
            let family = types.keys().find(|family| {
                let kind = &types[*family];
                name == family.as_str()
                    || (kind == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|s| name.strip_suffix(s) == Some(family.as_str())))
            });
            assert!(family.is_some(), "{line:?} belongs to no declared family");
            assert!(
                samples.insert(series.to_string(), value).is_none(),
                "{line}"
            );
        }
        Scrape { samples, types }
    }

    fn get(&self, series: &str) -> f64 {
        *self
            .samples
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in {:#?}", self.samples.keys()))
    }

    /// A histogram's buckets for one verb: cumulative, ending at `+Inf` = its count.
    fn check_histogram(&self, verb: &str) -> f64 {
        let name = "orbita_coordinator_request_duration_seconds";
        let prefix = format!("{name}_bucket{{verb=\"{verb}\",le=\"");
        let mut buckets: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter_map(|(series, value)| {
                let le = series.strip_prefix(&prefix)?.strip_suffix("\"}")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                Some((le, *value))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert!(buckets.len() >= 10, "{buckets:?}");
        assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
        let count = self.get(&format!("{name}_count{{verb=\"{verb}\"}}"));
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count));
        let sum = self.get(&format!("{name}_sum{{verb=\"{verb}\"}}"));
        assert!(
            sum >= 0.0 && (count == 0.0) == (sum == 0.0),
            "{verb}: {sum}"
        );
        count
    }
}

async fn ask(ws: &mut Ws, request: Value) -> Value {
    ws.send(Message::Text(request.to_string().into()))
        .await
        .unwrap();
    recv(ws).await
}

async fn client(addr: SocketAddr) -> Ws {
    let url = format!("ws://{addr}{}", server::CLIENT_PATH);
    crate::support::client(&url, None).await.0
}

#[tokio::test]
async fn metrics_count_joins_refusals_and_request_times_and_healthz_follows_the_database() {
    let settings = Settings {
        cluster_secret: SECRET.into(),
        guests_may_create: true,
        ..Settings::default()
    };
    let coordinator = Arc::new(Coordinator::open(settings, now_ms()).await.unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(
        listener,
        coordinator.clone(),
        None,
        async move {
            let _ = stopped.await;
        },
    ));

    // Before anything: every series at 0, the right type.
    let (status, content_type, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let before = Scrape::parse(&body);
    assert_eq!(before.get("orbita_coordinator_joins_total"), 0.0);
    assert_eq!(before.get("orbita_coordinator_nodes_up"), 0.0);
    assert_eq!(
        before.get("orbita_coordinator_refusals_total{reason=\"SESSION_NOT_EXIST\"}"),
        0.0
    );
    for (family, kind) in [
        ("orbita_coordinator_nodes_up", "gauge"),
        ("orbita_coordinator_sessions", "gauge"),
        ("orbita_coordinator_connections", "gauge"),
        ("orbita_coordinator_joins_total", "counter"),
        ("orbita_coordinator_refusals_total", "counter"),
        ("orbita_coordinator_request_duration_seconds", "histogram"),
    ] {
        assert_eq!(before.types.get(family).map(String::as_str), Some(kind));
    }
    assert_eq!(
        http_get(addr, "/healthz").await,
        (200, content_type_text(), "ok".into())
    );

    // A node, a session created, a participant joining it by code.
    let mut node: NodeLink = node::connect(&NodeConfig {
        url: format!("ws://{addr}{}", server::NODE_PATH),
        secret: SECRET.into(),
        registration: Registration {
            server_name: "a".into(),
            ip: "127.0.0.1".into(),
            port: "7001".into(),
            max_sessions: 1,
            apps: vec![RcInfo {
                rc_name: "Demo".into(),
                info: json!({"description":[{"en":"A demo"}]}),
            }],
            auth: String::new(),
            recording_slots: 0,
            public_url: None,
            calls: Vec::new(),
        },
        tls: None,
    })
    .await
    .unwrap();
    let mut creator = client(addr).await;
    let mut guest = client(addr).await;
    creator
        .send(Message::Text(
            json!({"verb":"CREATE_SESSION","rc_name":"Demo"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let ToNode::CreateSession { code, .. } = node_recv(&mut node).await else {
        panic!("expected CREATE_SESSION")
    };
    node.send(FromNode::ConnectToSession {
        ip: "127.0.0.1".into(),
        port: "7001".into(),
        code: code.clone(),
        host_key: None,
    })
    .await;
    assert_eq!(recv(&mut creator).await["verb"], "CONNECT_TO_SESSION");
    let joined = ask(
        &mut guest,
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
    )
    .await;
    assert_eq!(joined["verb"], "CONNECT_TO_SESSION", "{joined}");

    // Refusals: a code of the wrong shape, a code nobody has, a full cluster, a verb nobody
    // knows.
    let bad = ask(
        &mut guest,
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":"12"}),
    )
    .await;
    assert_eq!(bad["code"], "BAD_CODE", "{bad}");
    let wrong = if code == "9999" { "9998" } else { "9999" };
    let missing = ask(
        &mut guest,
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":wrong}),
    )
    .await;
    assert_eq!(missing, json!({"msg":"SESSION_NOT_EXIST"}));
    let busy = ask(
        &mut guest,
        json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
    )
    .await;
    assert_eq!(busy, json!({"msg":"SERVERS_BUSY"}));
    let unknown = ask(&mut guest, json!({"verb":"FLY"})).await;
    assert_eq!(unknown["code"], "UNKNOWN_VERB", "{unknown}");

    let (status, _, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    let after = Scrape::parse(&body);
    // The creator sent to the session once the node started it, and the guest by code.
    assert_eq!(after.get("orbita_coordinator_joins_total"), 2.0);
    for (reason, n) in [
        ("BAD_CODE", 1.0),
        ("SESSION_NOT_EXIST", 1.0),
        ("SERVERS_BUSY", 1.0),
        ("UNKNOWN_VERB", 1.0),
        ("INTERNAL", 0.0),
        ("LOCKED_OUT", 0.0),
    ] {
        let series = format!("orbita_coordinator_refusals_total{{reason=\"{reason}\"}}");
        assert_eq!(after.get(&series), n, "{series}");
    }
    assert_eq!(after.get("orbita_coordinator_nodes_up"), 1.0);
    assert_eq!(after.get("orbita_coordinator_sessions"), 1.0);
    assert_eq!(after.get("orbita_coordinator_connections"), 2.0);
    assert_eq!(after.check_histogram("CONNECT_SESSION_WITH_CODE"), 3.0);
    assert_eq!(after.check_histogram("CREATE_SESSION"), 2.0);
    assert_eq!(after.check_histogram("OTHER"), 1.0);
    assert_eq!(after.check_histogram("GET_SERVERS"), 0.0);
    // Every label value is from the fixed sets.
    let verbs: Vec<&str> = after
        .samples
        .keys()
        .filter_map(|s| s.strip_prefix("orbita_coordinator_request_duration_seconds_count{verb=\""))
        .map(|s| s.trim_end_matches("\"}"))
        .collect();
    assert_eq!(
        verbs,
        [
            "CONNECT_SESSION_WITH_CODE",
            "CREATE_SESSION",
            "EXTEND_SESSION",
            "GET_SERVERS",
            "OTHER",
            "PLAN_SESSION"
        ]
    );

    // The database goes away: /healthz says so; /metrics still answers (gauges as last seen).
    coordinator.registry().close().await;
    let (status, _, reason) = http_get(addr, "/healthz").await;
    assert_eq!(status, 503);
    assert!(reason.starts_with("database unreachable"), "{reason}");
    assert!(!reason.contains('\n'), "{reason}");
    let (status, _, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(Scrape::parse(&body).get("orbita_coordinator_nodes_up"), 1.0);

    drop((creator, guest, node));
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

fn content_type_text() -> String {
    "text/plain; charset=utf-8".into()
}
