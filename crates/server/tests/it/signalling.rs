//! The signalling WebSocket and HTTP API end to end, on the fake media backend (no SFU).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use orbita_server::testing::FakeBackend;
use orbita_server::{start_with_backend, RunningServer, Settings};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(5);

fn settings() -> Settings {
    Settings {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..Settings::default()
    }
}

async fn server(settings: Settings) -> (RunningServer, Arc<FakeBackend>) {
    let backend = Arc::new(FakeBackend::default());
    let server = start_with_backend(settings, backend.clone()).await.unwrap();
    (server, backend)
}

async fn connect(server: &RunningServer) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .unwrap();
    ws
}

async fn send(ws: &mut Ws, msg: Value) {
    ws.send(Message::text(msg.to_string())).await.unwrap();
}

/// The next JSON message from the server.
async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message within the timeout")
            .expect("the connection is open")
            .expect("no transport error");
        match msg {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a JSON text message, got {other:?}"),
        }
    }
}

/// Expect an `error` with this code; returns its message.
async fn expect_error(ws: &mut Ws, code: &str) -> String {
    let mut msg = recv(ws).await;
    // `call_info` follows a successful join: not what this waits for.
    while msg["type"] == "call_info" {
        msg = recv(ws).await;
    }
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(msg["code"], code, "{msg}");
    msg["message"].as_str().unwrap().to_string()
}

/// Expect the server to close the connection (after any number of text messages).
async fn expect_close(ws: &mut Ws) -> Vec<Value> {
    let mut before = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("closed in time")
        {
            None | Some(Ok(Message::Close(_))) | Some(Err(_)) => return before,
            Some(Ok(Message::Text(text))) => before.push(serde_json::from_str(&text).unwrap()),
            Some(Ok(_)) => {}
        }
    }
}

fn new_room(server: &RunningServer) -> String {
    server.registry().create(Instant::now()).unwrap().code
}

async fn join(ws: &mut Ws, code: &str, name: &str) -> Value {
    send(
        ws,
        json!({"type": "join", "v": 1, "code": code, "name": name}),
    )
    .await;
    let joined = recv(ws).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    joined
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bad_input_gets_errors_and_the_connection_survives() {
    let (server, backend) = server(settings()).await;
    let code = new_room(&server);
    let mut ws = connect(&server).await;

    ws.send(Message::text("{not json")).await.unwrap();
    expect_error(&mut ws, "bad_json").await;
    ws.send(Message::text("[1,2,3]")).await.unwrap();
    expect_error(&mut ws, "bad_json").await;
    send(
        &mut ws,
        json!({"type": "join", "v": "one", "code": 4821, "name": []}),
    )
    .await;
    expect_error(&mut ws, "bad_message").await;
    send(&mut ws, json!({"type": "teleport"})).await;
    expect_error(&mut ws, "bad_message").await;
    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    expect_error(&mut ws, "bad_message").await;

    // 100 kB before `join`: above the small pre-join limit but under the transport cap: an
    // error, not a disconnect.
    let big = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(100_000));
    ws.send(Message::text(big.clone())).await.unwrap();
    let message = expect_error(&mut ws, "too_large").await;
    assert!(
        message.contains("before `join` the limit is 4096"),
        "{message}"
    );

    send(
        &mut ws,
        json!({"type": "offer", "pc": "publisher", "sdp": "v=0"}),
    )
    .await;
    expect_error(&mut ws, "out_of_order").await;
    send(&mut ws, json!({"type": "leave"})).await;
    expect_error(&mut ws, "out_of_order").await;
    send(
        &mut ws,
        json!({"type": "join", "v": 2, "code": code, "name": "A"}),
    )
    .await;
    expect_error(&mut ws, "unsupported_version").await;
    send(
        &mut ws,
        json!({"type": "join", "v": 1, "code": code, "name": "   "}),
    )
    .await;
    expect_error(&mut ws, "invalid_value").await;
    send(
        &mut ws,
        json!({"type": "join", "v": 1, "code": code, "name": "x".repeat(65)}),
    )
    .await;
    expect_error(&mut ws, "invalid_value").await;

    // An unknown code names the code; the client may retry with another one.
    let unknown = if code == "0000" { "0001" } else { "0000" };
    send(
        &mut ws,
        json!({"type": "join", "v": 1, "code": unknown, "name": "A"}),
    )
    .await;
    let message = expect_error(&mut ws, "unknown_code").await;
    assert!(message.contains(unknown), "{message}");
    send(&mut ws, json!({"type": "ping", "id": 7})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong", "id": 7}));

    let joined = join(&mut ws, &code, "  Alice  ").await;
    assert_eq!(joined["code"], code.as_str());
    assert_eq!(joined["limits"]["max_message_bytes"], 65536);
    assert_eq!(server.registry().get(&code).unwrap().participants, 1);

    send(
        &mut ws,
        json!({"type": "join", "v": 1, "code": code, "name": "A"}),
    )
    .await;
    expect_error(&mut ws, "out_of_order").await;
    send(&mut ws, json!({"type": "chat", "text": "x".repeat(4001)})).await;
    expect_error(&mut ws, "too_large").await;
    // Joined, the limit is max_message_bytes.
    ws.send(Message::text(big)).await.unwrap();
    let message = expect_error(&mut ws, "too_large").await;
    assert!(message.contains("the limit is 65536"), "{message}");
    send(&mut ws, json!({"type": "chat", "text": "hello"})).await;
    let chat = recv(&mut ws).await;
    assert_eq!(
        (chat["type"].as_str(), chat["name"].as_str()),
        (Some("chat"), Some("Alice"))
    );
    send(&mut ws, json!({"type": "set_quality", "max": "640x480"})).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "pong"}));
    let handled: Vec<_> = backend.handled().into_iter().map(|(_, m)| m).collect();
    assert_eq!(
        handled.len(),
        2,
        "chat and set_quality reach the SFU: {handled:?}"
    );

    send(&mut ws, json!({"type": "leave"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "left"}));
    expect_close(&mut ws).await;
    assert_eq!(server.registry().get(&code).unwrap().participants, 0);
    assert_eq!(backend.participant_count(), 0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_full_room_is_refused_and_closing_frees_the_place() {
    let (server, _) = server(Settings {
        max_participants_per_room: 1,
        ..settings()
    })
    .await;
    let code = new_room(&server);
    let mut first = connect(&server).await;
    join(&mut first, &code, "first").await;
    let mut second = connect(&server).await;
    send(
        &mut second,
        json!({"type": "join", "v": 1, "code": code, "name": "second"}),
    )
    .await;
    expect_error(&mut second, "room_full").await;

    // Closing the socket (no `leave`) drops the participant and gives the place back.
    first.close(None).await.unwrap();
    let registry = Arc::clone(server.registry());
    eventually("the first participant to leave", || {
        registry.get(&code).unwrap().participants == 0
    })
    .await;
    join(&mut second, &code, "second").await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn too_many_messages_are_rate_limited_without_disconnecting() {
    let (server, _) = server(Settings {
        messages_per_second: 5,
        ..settings()
    })
    .await;
    let mut ws = connect(&server).await;
    for id in 0..30 {
        send(&mut ws, json!({"type": "ping", "id": id})).await;
    }
    let mut pongs = 0;
    let mut limited = 0;
    for _ in 0..30 {
        let msg = recv(&mut ws).await;
        match msg["type"].as_str() {
            Some("pong") => pongs += 1,
            Some("error") if msg["code"] == "rate_limited" => limited += 1,
            _ => panic!("unexpected {msg}"),
        }
    }
    // The burst of 2 x 5 gets through (plus what refills while the 30 are sent; the bucket's
    // arithmetic is tested in virtual time in ratelimit.rs), the rest is refused, none lost.
    assert!(pongs >= 10, "a burst of 2 x 5 gets through, got {pongs}");
    assert!(limited >= 1, "30 at once are over 5 per second");
    assert_eq!(pongs + limited, 30);
    // The connection stays: once the bucket refills a ping is answered again. Ask at the
    // rate allowed until one is (each refused one is answered too, so nothing is lost).
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut answered = false;
    for id in 100..150 {
        tick.tick().await;
        send(&mut ws, json!({"type": "ping", "id": id})).await;
        let msg = recv(&mut ws).await;
        if msg == json!({"type": "pong", "id": id}) {
            answered = true;
            break;
        }
        assert_eq!(msg["code"], "rate_limited", "{msg}");
    }
    assert!(answered, "the limited connection is served again");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn when_the_sfu_drops_a_participant_its_socket_closes() {
    let (server, backend) = server(settings()).await;
    let code = new_room(&server);
    let mut ws = connect(&server).await;
    join(&mut ws, &code, "A").await;
    backend.drop_all_participants();
    expect_close(&mut ws).await;
    let registry = Arc::clone(server.registry());
    eventually("the seat to be given back", || {
        registry.participant_count() == 0
    })
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_empty_room_ends_after_its_grace_and_its_code_is_unknown() {
    let (server, backend) = server(Settings {
        empty_room_grace_secs: 0,
        ..settings()
    })
    .await;
    let code = new_room(&server);
    let mut ws = connect(&server).await;
    join(&mut ws, &code, "A").await;
    send(&mut ws, json!({"type": "leave"})).await;
    expect_close(&mut ws).await;
    let registry = Arc::clone(server.registry());
    tokio::time::timeout(WAIT, async {
        while registry.get(&code).is_some() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the reaper ends the room");
    assert_eq!(backend.rooms_closed().len(), 1);

    let mut ws = connect(&server).await;
    send(
        &mut ws,
        json!({"type": "join", "v": 1, "code": code, "name": "B"}),
    )
    .await;
    expect_error(&mut ws, "unknown_code").await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_tells_everyone_and_closes() {
    let (server, backend) = server(settings()).await;
    let code = new_room(&server);
    let mut joined = connect(&server).await;
    join(&mut joined, &code, "A").await;
    let mut lobby = connect(&server).await;
    send(&mut lobby, json!({"type": "ping"})).await;
    recv(&mut lobby).await;

    let started = Instant::now();
    let url = server.ws_url();
    server.shutdown().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(backend.shut_down().as_deref(), Some("server shutting down"));

    for ws in [&mut joined, &mut lobby] {
        let said = expect_close(ws).await;
        let shutdowns = said
            .iter()
            .filter(|m| m["type"] == "server_shutdown")
            .count();
        assert_eq!(shutdowns, 1, "exactly one server_shutdown: {said:?}");
    }
    assert!(
        tokio_tungstenite::connect_async(url).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn the_http_api_over_a_real_socket() {
    let (server, _) = server(settings()).await;
    let base = format!("http://{}", server.http_addr());
    // The workspace's tests build reqwest with rustls but no built-in crypto provider (the
    // root package's HTTPS tests enable it): install Orbita's, aws-lc-rs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{base}/api/rooms"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let body: Value = created.json().await.unwrap();
    let code = body["code"].as_str().unwrap();
    assert_eq!(body["link"], format!("{base}/r/{code}"));

    let room: Value = client
        .get(format!("{base}/api/rooms/{code}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        room,
        json!({"code": code, "participants": 0, "recording": false})
    );
    let unknown = client
        .get(format!("{base}/api/rooms/abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"], "unknown_code");
    assert_eq!(
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    assert!(server
        .banner()
        .starts_with(&format!("orbita listening on {base} (media udp ")));
    server.shutdown().await.unwrap();
}
