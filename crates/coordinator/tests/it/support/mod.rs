//! What the coordinator's tests share: test databases on every backend ([`db`]), the HTTP
//! routes driven in process ([`api`]), and a coordinator with registered nodes and clients
//! asking it verbs.
#![allow(dead_code)]

pub mod api;
#[macro_use]
pub mod db;
pub mod roles_doc;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use orbita_coordinator::node::NodeLink;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use orbita_coordinator::accounts::User;
use orbita_coordinator::clock::Millis;
use orbita_coordinator::config::Settings;
use orbita_coordinator::verbs::{RcInfo, Registration, ToNode};
use orbita_coordinator::{Coordinator, Outcome, Registry};
use serde_json::{json, Value};

/// 2030-03-15 12:00:00 UTC (a Friday).
pub const T0: Millis = 1_899_806_400_000;

/// The cluster secret of the tests' coordinators.
pub const SECRET: &str = "secret";

/// A coordinator ("A", cluster secret [`SECRET`]) on the registry at `url`, its settings
/// changed by `tweak` first.
pub async fn coordinator(url: &str, tweak: impl FnOnce(&mut Settings)) -> Coordinator {
    let mut s = Settings {
        coordinator_id: "A".into(),
        cluster_secret: SECRET.into(),
        ..Settings::default()
    };
    tweak(&mut s);
    s.validate().unwrap();
    let registry = Registry::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    Coordinator::with_registry(s, registry)
}

/// A [`coordinator`] where guests may create sessions and nodes and sessions stay for days of
/// virtual time without heartbeats.
pub async fn patient_coordinator(url: &str, tweak: impl FnOnce(&mut Settings)) -> Coordinator {
    coordinator(url, |s| {
        s.guests_may_create = true;
        s.heartbeat_timeout_secs = 24 * 3600;
        s.session_idle_secs = 24 * 3600;
        tweak(s)
    })
    .await
}

/// An app with a description in English and Russian.
pub fn app(rc: &str) -> RcInfo {
    RcInfo {
        rc_name: rc.into(),
        info: json!({"description":[{"en":format!("{rc} in English")},{"ru":format!("{rc} по-русски")}]}),
    }
}

/// A node's registration: `max` sessions of `apps`; its address follows from its name.
pub fn registration(name: &str, max: u32, apps: &[&str]) -> Registration {
    Registration {
        server_name: name.into(),
        ip: format!("10.0.0.{}", name.len()),
        port: format!("70{:02}", name.bytes().map(u32::from).sum::<u32>() % 100),
        max_sessions: max,
        apps: apps.iter().map(|a| app(a)).collect(),
        auth: String::new(),
        recording_slots: 0,
        public_url: None,
        calls: Vec::new(),
    }
}

/// Registers [`registration`]`(name, max, apps)` at `now`; the coordinator must accept it.
pub async fn register(
    c: &Coordinator,
    name: &str,
    max: u32,
    apps: &[&str],
    now: Millis,
) -> Registration {
    let reg = registration(name, max, apps);
    let answer = c.register_node(&reg, now).await.unwrap();
    assert!(
        matches!(
            answer,
            ToNode::Registered {
                heartbeat_interval_seconds: 5,
                ..
            }
        ),
        "{answer:?}"
    );
    reg
}

/// Client `user` (logged in as `account`, if any) at address `from` sends `req` at `now`.
pub async fn ask(
    c: &Coordinator,
    user: &str,
    account: Option<&User>,
    from: IpAddr,
    req: Value,
    now: Millis,
) -> Outcome {
    c.handle_client_text(user, account, from, &req.to_string(), now)
        .await
}

/// A client or node WebSocket of the coordinator's, plain or TLS.
pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// The next text message of `ws` as JSON (10 s at most).
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s")
            .expect("connection closed")
            .expect("websocket error");
        if let Message::Text(t) = msg {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Sends `v` as a text message.
pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// A client connection to `url` (TLS with `tls`), past its `WELCOME`; with its user id.
pub async fn client(url: &str, tls: Option<Arc<rustls::ClientConfig>>) -> (Ws, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        url,
        None,
        false,
        tls.map(Connector::Rustls),
    )
    .await
    .unwrap();
    let welcome = recv(&mut ws).await;
    assert_eq!(welcome["msg"], "WELCOME", "{welcome}");
    let id = welcome["user_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("id") && id.len() == 18, "{id}");
    (ws, id)
}

/// The next message the coordinator sends a node link (10 s at most).
/// The node's next message but `CALL_SETTINGS` (sent after `REGISTERED` and on changes).
pub async fn node_recv(link: &mut NodeLink) -> ToNode {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), link.recv())
            .await
            .expect("node got nothing in 10 s")
            .expect("link closed");
        if !matches!(msg, ToNode::CallSettings(_)) {
            return msg;
        }
    }
}

/// The node's next `CALL_SETTINGS`.
pub async fn node_settings(link: &mut NodeLink) -> orbita_coordinator::call_settings::CallSettings {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), link.recv())
            .await
            .expect("node got nothing in 10 s")
            .expect("link closed");
        if let ToNode::CallSettings(s) = msg {
            return *s;
        }
    }
}
