//! Shared set-up of the end-to-end tests: a real `orbita serve` (in-process, all ports chosen by
//! the kernel on 127.0.0.1) and helpers to make rooms and join bots.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use orbita_bot::{Bot, BotOptions};
use orbita_server::{RunningServer, Settings};

/// Settings for a test server: loopback only, kernel-chosen ports.
pub fn test_settings() -> Settings {
    let any = |port| SocketAddr::from(([127, 0, 0, 1], port));
    Settings {
        http_addr: any(0),
        udp_addr: any(0),
        tcp_addr: Some(any(0)),
        workers: 2,
        empty_room_grace_secs: 1,
        ..Settings::default()
    }
}

/// Start a real server.
pub async fn start_server(settings: Settings) -> RunningServer {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    orbita_server::start(settings).await.expect("server starts")
}

/// `POST /api/rooms` and return the code.
pub async fn create_room(server: &RunningServer) -> String {
    let url = format!("http://{}/api/rooms", server.http_addr());
    let resp = reqwest::Client::new()
        .post(&url)
        .send()
        .await
        .expect("POST /api/rooms");
    assert_eq!(resp.status().as_u16(), 201, "room created");
    let body: serde_json::Value = resp.json().await.expect("JSON body");
    let code = body["code"].as_str().expect("a code").to_string();
    assert!(body["link"].as_str().unwrap().ends_with(&code), "{body}");
    code
}

/// Join a bot with the default options (audio + 3-layer VP8 simulcast).
pub async fn join_bot(server: &RunningServer, code: &str, name: &str) -> Bot {
    join_bot_with(server, code, name, |_| {}).await
}

/// Join a bot, adjusting its options first.
pub async fn join_bot_with(
    server: &RunningServer,
    code: &str,
    name: &str,
    adjust: impl FnOnce(&mut BotOptions),
) -> Bot {
    let mut opts = BotOptions::new(server.ws_url(), code, name);
    adjust(&mut opts);
    Bot::join(opts).await.expect("bot joins")
}

/// How long media may take to start flowing on a loaded 2-core machine.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);

/// A raw signalling WebSocket (tests that speak the protocol themselves).
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next protocol message the server sends on `ws` (pings skipped; 10 s at most).
pub async fn next_server_msg(ws: &mut Ws) -> orbita_protocol::ServerMsg {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("the server answers")
            .expect("the connection stays open")
            .expect("a readable message");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).expect("a protocol message"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}
