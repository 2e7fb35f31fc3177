//! Code guessing as an attacker does it, against a real server: every room page, every API
//! lookup, every `join` and every WHIP publish spends one per-address budget of wrong codes
//! (10 in 10 minutes, then 15 minutes locked out; wrong answers held back from the third on).
//! The room page tells nothing, WHIP answers a wrong code as it answers a wrong token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use orbita_protocol::{ClientMsg, ErrorCode, ServerMsg, PROTOCOL_VERSION};
use orbita_server::guesses::MAX_MISSES;
use orbita_server::Settings;
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// Requests in flight at once: an attacker does not wait for one answer before the next.
const PARALLEL: usize = 32;

/// GET `url` and return the status and body.
async fn get(client: &reqwest::Client, url: String, forwarded: Option<&str>) -> (u16, String) {
    let mut request = client.get(url);
    if let Some(addr) = forwarded {
        request = request.header("x-forwarded-for", addr);
    }
    let answer = request.send().await.expect("the server answers");
    let status = answer.status().as_u16();
    (status, answer.text().await.expect("a body"))
}

/// Live rooms at 100 known codes, 1% of the 4-digit space: `0050`, `0150`, ... `9950`.
fn live_codes(server: &orbita_server::RunningServer) -> Vec<String> {
    (0..100)
        .map(|n| {
            let code = format!("{:04}", n * 100 + 50);
            server
                .registry()
                .create_with_code(&code, Instant::now())
                .expect("room made");
            code
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_guesses_from_one_address_find_no_live_room() {
    let server = start_server(Settings {
        trust_proxy_headers: true,
        ..test_settings()
    })
    .await;
    let live = live_codes(&server);
    let base = format!("http://{}", server.http_addr());
    let client = http();
    let all_codes: Vec<String> = (0..10_000).map(|n| format!("{n:04}")).collect();

    // The room page: 10,000 codes, every one the same page (200) but for the code it shows;
    // it tells nothing, so it is not counted either.
    let (status, reference) = get(&client, format!("{base}/r/0001"), None).await;
    assert_eq!(status, 200);
    let blank = |page: &str, code: &str| page.replace(&format!("data-code=\"{code}\""), "");
    let reference = Arc::new(blank(&reference, "0001"));
    let pages = futures_util::stream::iter(all_codes.clone())
        .map(|code| {
            let (client, base, reference) = (client.clone(), base.clone(), reference.clone());
            async move {
                let (status, page) = get(&client, format!("{base}/r/{code}"), None).await;
                (status, blank(&page, &code) == *reference)
            }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await;
    assert_eq!(pages.len(), 10_000);
    assert!(
        pages.iter().all(|&(status, same)| status == 200 && same),
        "a room page told live codes apart"
    );

    // The API from one address (198.51.100.1, through a trusted proxy): 10 wrong codes, then
    // locked out; the live rooms are all further on, so it finds none of them.
    let started = Instant::now();
    let answers = futures_util::stream::iter(all_codes.clone())
        .map(|code| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let url = format!("{base}/api/rooms/{code}");
                (code, get(&client, url, Some("198.51.100.1")).await)
            }
        })
        .buffer_unordered(PARALLEL)
        .collect::<Vec<_>>()
        .await;
    let took = started.elapsed();
    let count = |want: u16| answers.iter().filter(|(_, (s, _))| *s == want).count();
    let found: Vec<&String> = answers
        .iter()
        .filter(|(_, (s, _))| *s == 200)
        .map(|(c, _)| c)
        .collect();
    assert!(found.is_empty(), "the guesser found live rooms: {found:?}");
    assert_eq!(count(404), MAX_MISSES as usize, "wrong codes answered");
    assert_eq!(count(429), 10_000 - MAX_MISSES as usize, "refused");
    let (_, (_, body)) = answers.iter().find(|(_, (s, _))| *s == 429).unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "locked_out", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("try again in"),
        "{body}"
    );
    // Locked out: a live room's right code is refused too, and so is `join`'s route for the
    // address... while another address behind the same proxy finds its room at once.
    let (status, _) = get(
        &client,
        format!("{base}/api/rooms/{}", live[0]),
        Some("198.51.100.1"),
    )
    .await;
    assert_eq!(status, 429);
    let (status, body) = get(
        &client,
        format!("{base}/api/rooms/{}", live[0]),
        Some("198.51.100.2"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let counts = server.code_guesses().counts();
    assert_eq!(
        (counts.misses, counts.lockouts, counts.refused),
        (u64::from(MAX_MISSES), 1, 10_000 - u64::from(MAX_MISSES) + 1),
        "the counters for metrics"
    );
    eprintln!(
        "10,000 API guesses from one address: {} wrong answers, {} refused, none found, in {took:?}",
        count(404),
        count(429)
    );

    // An IPv6 client counts per /64: another address in the same /64 is locked out with it.
    for n in 0..MAX_MISSES {
        let (status, _) = get(
            &client,
            format!("{base}/api/rooms/{n:04}"),
            Some(&format!("2001:db8:5:6::{:x}", n + 1)),
        )
        .await;
        assert_eq!(status, 404);
    }
    let (status, _) = get(
        &client,
        format!("{base}/api/rooms/{}", live[1]),
        Some("2001:db8:5:6:ffff::1"),
    )
    .await;
    assert_eq!(status, 429, "the same /64");
    let (status, _) = get(
        &client,
        format!("{base}/api/rooms/{}", live[1]),
        Some("2001:db8:5:7::1"),
    )
    .await;
    assert_eq!(status, 200, "another /64");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_answers_are_held_back_and_right_codes_are_not() {
    let server = start_server(Settings {
        trust_proxy_headers: true,
        code_miss_delay_ms: 250,
        ..test_settings()
    })
    .await;
    let live = live_codes(&server);
    let base = format!("http://{}", server.http_addr());
    let client = http();
    let mut took = Vec::new();
    for n in 0..5 {
        let started = Instant::now();
        let (status, _) = get(
            &client,
            format!("{base}/api/rooms/{n:04}"),
            Some("203.0.113.5"),
        )
        .await;
        assert_eq!(status, 404);
        took.push(started.elapsed());
    }
    // The third wrong code waits 250 ms, the fourth 500, the fifth 1 s.
    assert!(took[2] >= Duration::from_millis(250), "{took:?}");
    assert!(took[3] >= Duration::from_millis(500), "{took:?}");
    assert!(took[4] >= Duration::from_millis(1000), "{took:?}");
    // A right code from the same address is answered at once (well under the next delay, 2 s).
    let started = Instant::now();
    let (status, _) = get(
        &client,
        format!("{base}/api/rooms/{}", live[0]),
        Some("203.0.113.5"),
    )
    .await;
    assert_eq!(status, 200);
    let hit = started.elapsed();
    assert!(hit < Duration::from_millis(1000), "{hit:?}");
    eprintln!("wrong-code answer times: {took:?}; then a right code: {hit:?}");
    server.shutdown().await.unwrap();
}

/// Join by code on a fresh signalling connection; returns the server's answer.
async fn join(ws_url: &str, code: &str) -> ServerMsg {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url)
        .await
        .expect("ws connects");
    let join = ClientMsg::Join {
        v: PROTOCOL_VERSION,
        code: code.to_string(),
        name: "Guesser".into(),
        key: None,
        consent: None,
    };
    let text = serde_json::to_string(&join).unwrap();
    ws.send(Message::Text(text.into())).await.expect("send");
    let answer = next_server_msg(&mut ws).await;
    let _ = ws.close(None).await;
    answer
}

/// POST an offer to `/whip/{code}` with `token`; returns the status and body.
async fn whip(base: &str, code: &str, token: &str) -> (u16, String) {
    let offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n";
    let answer = http()
        .post(format!("{base}/whip/{code}"))
        .bearer_auth(token)
        .header("content-type", "application/sdp")
        .body(offer)
        .send()
        .await
        .expect("the server answers");
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_join_and_lookups_spend_one_budget_and_whip_tells_nothing() {
    let server = start_server(Settings {
        code_miss_delay_ms: 1,
        ..test_settings()
    })
    .await;
    let base = format!("http://{}", server.http_addr());
    let room = http()
        .post(format!("{base}/api/rooms"))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let code = room["code"].as_str().unwrap().to_string();
    let token = room["whip_token"].as_str().unwrap().to_string();
    let other = |n: u32| -> String {
        let c = format!("{n:04}");
        assert_ne!(c, code);
        c
    };
    let wrong = [
        other(if code == "0001" { 2 } else { 1 }),
        other(if code == "0003" { 4 } else { 3 }),
    ];

    // WHIP: a live room with a wrong token and a dead code with the right token answer alike.
    let wrong_token = whip(&base, &code, "0123456789abcdef0123456789abcdef").await;
    let wrong_code = whip(&base, &wrong[0], &token).await;
    assert_eq!(wrong_token.0, 403, "{wrong_token:?}");
    assert_eq!(
        wrong_token, wrong_code,
        "WHIP tells a wrong code from a wrong token"
    );
    // Two misses so far. `join` with wrong codes: three more.
    for c in [&wrong[1], &wrong[0], &wrong[1]] {
        match join(&server.ws_url(), c).await {
            ServerMsg::Error { code, .. } => assert_eq!(code, ErrorCode::UnknownCode),
            other => panic!("{other:?}"),
        }
    }
    // API lookups: the other five of the ten.
    let client = http();
    for _ in 0..(MAX_MISSES - 5) {
        let (status, _) = get(&client, format!("{base}/api/rooms/{}", wrong[0]), None).await;
        assert_eq!(status, 404);
    }
    // Locked out everywhere, right code and right token included.
    let (status, body) = get(&client, format!("{base}/api/rooms/{code}"), None).await;
    assert_eq!(status, 429, "{body}");
    let (status, body) = whip(&base, &code, &token).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("too many wrong codes"), "{body}");
    match join(&server.ws_url(), &code).await {
        ServerMsg::Error { code, message } => {
            assert_eq!(code, ErrorCode::RateLimited);
            assert!(message.contains("too many wrong codes"), "{message}");
        }
        other => panic!("a locked-out address joined: {other:?}"),
    }
    server.shutdown().await.unwrap();
}

/// `CONNECT_SESSION_WITH_CODE` on the coordinator's WebSocket; its answer.
async fn coordinator_verb(ws: &mut Ws, code: &str) -> serde_json::Value {
    let verb = serde_json::json!({"verb": "CONNECT_SESSION_WITH_CODE", "code": code});
    ws.send(Message::Text(verb.to_string().into()))
        .await
        .unwrap();
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an answer")
            .expect("open")
            .expect("readable");
        if let Message::Text(t) = msg {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            if v["msg"] != "WELCOME" {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orbita_serve_counts_coordinator_verbs_and_lookups_in_one_budget() {
    let data = std::env::temp_dir().join(format!(
        "orbita-guessing-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    let data_dir = data.display().to_string();
    let mut args = vec![
        "serve",
        "--data-dir",
        &data_dir,
        "--code-miss-delay-ms",
        "1",
    ];
    args.extend_from_slice(&LOOPBACK_MEDIA_ARGS);
    let mut server = Proc::start("serve", &args);
    let line = server.wait_line("orbita listening on");
    let addr = word_after(&line, "listening on http://").to_string();
    let base = format!("http://{addr}");

    // Five wrong codes through the coordinator's verb (its attempt rate allows a burst of 5)...
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/coordinator"))
        .await
        .expect("the coordinator answers");
    for n in 0..5 {
        let answer = coordinator_verb(&mut ws, &format!("{n:04}")).await;
        assert_eq!(answer["msg"], "SESSION_NOT_EXIST", "{answer}");
    }
    // ...and five through the media server's API: the tenth locks the address out...
    let client = http();
    for n in 5..MAX_MISSES {
        let (status, _) = get(&client, format!("{base}/api/rooms/{n:04}"), None).await;
        assert_eq!(status, 404);
    }
    let (status, body) = get(&client, format!("{base}/api/rooms/0000"), None).await;
    assert_eq!(status, 429, "{body}");
    // ...at both.
    let answer = coordinator_verb(&mut ws, "0000").await;
    assert_eq!(answer["code"], "LOCKED_OUT", "{answer}");
    server.stop(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(&data);
}
