//! Churn: 1,000 signalling clients join, chat and leave, round after round, against a real
//! `orbita serve`. After each round the server is back to no connections, participants or
//! rooms; its resident memory goes back to within 16 MiB of its size at the start (freed
//! memory is handed back to the system, crates/server/src/memory.rs), and its open files and
//! threads stay at what they were after the first (warm-up) round: nothing a client leaves
//! behind accumulates.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::Barrier;
use tokio_tungstenite::tungstenite::Message;

use orbita_server::memory::TRIM_INTERVAL;

use crate::support::{http, metrics_page, orbita_command, Proc, TempDir, LOOPBACK_MEDIA_ARGS};

/// Clients per round, all in the server at once.
const CLIENTS: usize = 1_000;
/// Clients per room.
const ROOM_SIZE: usize = 10;
/// Measured rounds after the warm-up round.
const ROUNDS: usize = 3;
/// How far above its size at the start the server's resident memory may stay once the clients
/// are gone and freed memory went back to the system (measured: 5 MiB; a leak of 4 KiB per
/// client would be 4 MiB a round and grow every round).
const RSS_MARGIN_BYTES: u64 = 16 << 20;
/// Open files beyond those after the warm-up round: the SQLite pool may open one more
/// connection (measured: 21 after the warm-up round, 22 at most later; a leaked socket per
/// client would be 1,000 a round).
const SPARE_FDS: usize = 4;
/// Threads beyond those after the warm-up round: tokio's blocking pool keeps an idle thread
/// for 10 s.
const SPARE_THREADS: u64 = 4;
const MIB: f64 = (1 << 20) as f64;
/// Upper bound for one round (join, chat, leave).
const ROUND_TIMEOUT: Duration = Duration::from_secs(120);

/// What `/proc` says of the server.
#[derive(Debug, Clone, Copy)]
struct Footprint {
    rss_bytes: u64,
    fds: usize,
    threads: u64,
}

fn footprint(pid: u32) -> Footprint {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    Footprint {
        rss_bytes: field("VmRSS:") * 1024,
        fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count(),
        threads: field("Threads:"),
    }
}

/// The value of an unlabelled metric on the server's `/metrics` page.
async fn metric(base: &str, name: &str) -> u64 {
    metrics_page(base)
        .await
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{name} on /metrics")) as u64
}

/// Waits until the server has no connection, participant or room left.
async fn wait_drained(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut left = Vec::new();
        for name in [
            "orbita_ws_connections",
            "orbita_participants",
            "orbita_rooms",
        ] {
            let n = metric(base, name).await;
            if n > 0 {
                left.push(format!("{name} {n}"));
            }
        }
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "not drained: {left:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text of the next JSON message of type `kind` (others are skipped).
async fn next_of<S>(ws: &mut S, kind: &str) -> Value
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["type"] == kind {
                    return v;
                }
                assert_ne!(v["type"], "error", "waiting for {kind}: {v}");
            }
            Some(Ok(_)) => {}
            other => panic!("waiting for {kind}: {other:?}"),
        }
    }
}

/// One client: join `code`, wait for everyone, chat, read the room's `ROOM_SIZE` chats, leave.
async fn client(ws_url: String, code: String, name: String, everyone: Arc<Barrier>) {
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
        .await
        .unwrap_or_else(|e| panic!("{name} connects: {e}"));
    let join = json!({"type":"join","v":1,"code":code,"name":name});
    ws.send(Message::text(join.to_string())).await.unwrap();
    next_of(&mut ws, "joined").await;
    everyone.wait().await;
    let chat = json!({"type":"chat","text":format!("hello from {name}")});
    ws.send(Message::text(chat.to_string())).await.unwrap();
    for _ in 0..ROOM_SIZE {
        let chat = next_of(&mut ws, "chat").await;
        assert!(chat["text"].as_str().unwrap().starts_with("hello from "));
    }
    ws.send(Message::text(json!({"type":"leave"}).to_string()))
        .await
        .unwrap();
    next_of(&mut ws, "left").await;
}

/// One round: `CLIENTS` clients in fresh rooms of `ROOM_SIZE`.
async fn round(client_http: &reqwest::Client, base: &str, ws_url: &str, n: usize) {
    let mut codes = Vec::new();
    for _ in 0..CLIENTS / ROOM_SIZE {
        let resp = client_http
            .post(format!("{base}/api/rooms"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
        let body: Value = resp.json().await.unwrap();
        codes.push(body["code"].as_str().unwrap().to_string());
    }
    let everyone = Arc::new(Barrier::new(CLIENTS));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            tokio::spawn(client(
                ws_url.to_string(),
                codes[i / ROOM_SIZE].clone(),
                format!("r{n}c{i}"),
                Arc::clone(&everyone),
            ))
        })
        .collect();
    tokio::time::timeout(ROUND_TIMEOUT, async {
        for task in tasks {
            task.await.unwrap();
        }
    })
    .await
    .unwrap_or_else(|_| panic!("round {n} took longer than {ROUND_TIMEOUT:?}"));
}

/// Raises this process's open-file limit to its hard limit (1,000 clients and the server,
/// which inherits it, need more than the usual 1,024).
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local rlimit.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(
        lim.rlim_cur >= 4 * CLIENTS as u64,
        "the open-file hard limit {} is too low for {CLIENTS} clients",
        lim.rlim_cur
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_clients_join_chat_and_leave_without_leaks() {
    raise_fd_limit();
    let dir = TempDir::new("churn");
    let data = dir.path().join("data");
    let args = [
        &["serve", "--data-dir", data.to_str().unwrap()][..],
        &LOOPBACK_MEDIA_ARGS,
        &["--guests-may-create", "--empty-room-grace-secs", "0"],
    ]
    .concat();
    let mut serve = Proc::spawn("serve", orbita_command(&args));
    let addr = serve.wait_for("listening on http://");
    let base = format!("http://{addr}");
    let ws_url = format!("ws://{addr}/ws");
    let client_http = http();
    let pid = serve.id();
    let started = footprint(pid);
    eprintln!("churn: started: {started:?}");

    // The warm-up round opens what stays open (the database pool's connections).
    let t = Instant::now();
    round(&client_http, &base, &ws_url, 0).await;
    wait_drained(&base).await;
    let warm = footprint(pid);
    eprintln!(
        "churn: warm-up round of {CLIENTS} clients in {:.1} s: {warm:?}",
        t.elapsed().as_secs_f64()
    );

    for n in 1..=ROUNDS {
        let t = Instant::now();
        round(&client_http, &base, &ws_url, n).await;
        let busy = footprint(pid);
        wait_drained(&base).await;
        let drained = t.elapsed();
        // Freed memory goes back to the system every TRIM_INTERVAL (crates/server/src/memory.rs).
        let deadline = Instant::now() + 3 * TRIM_INTERVAL;
        let now = loop {
            let now = footprint(pid);
            if now.rss_bytes <= started.rss_bytes + RSS_MARGIN_BYTES || Instant::now() > deadline {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        eprintln!(
            "churn: round {n}: {CLIENTS} clients joined, chatted and left in {:.1} s (RSS at the \
             end {:.1} MiB); {:.1} s later: {now:?}, RSS {:+.1} MiB over the start",
            drained.as_secs_f64(),
            busy.rss_bytes as f64 / MIB,
            t.elapsed().saturating_sub(drained).as_secs_f64(),
            (now.rss_bytes as f64 - started.rss_bytes as f64) / MIB
        );
        assert!(
            now.rss_bytes <= started.rss_bytes + RSS_MARGIN_BYTES,
            "round {n}: RSS {} bytes, at the start {} + margin {RSS_MARGIN_BYTES}",
            now.rss_bytes,
            started.rss_bytes
        );
        assert!(
            now.fds <= warm.fds + SPARE_FDS,
            "round {n}: {} open files, {} after the warm-up round",
            now.fds,
            warm.fds
        );
        assert!(
            now.threads <= warm.threads + SPARE_THREADS,
            "round {n}: {} threads, {} after the warm-up round",
            now.threads,
            warm.threads
        );
    }
    serve.stop(Duration::from_secs(15));
}
