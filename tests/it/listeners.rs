//! The listeners' limits, attacked as a stranger would: a slow request head, a silent
//! connection, a stalled TLS handshake, too many connections from one address or in total, an
//! idle keep-alive connection. Each against a real server (in-process, or the `orbita
//! coordinator` binary) over real sockets; clients that must count as other addresses connect
//! from 127.0.0.2 and 127.0.0.3 (127.0.0.1 is capped only in total).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use orbita_server::Settings;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{metrics_page, start_server, test_settings, word_after, Proc, TempDir};

/// The upper bound for anything these tests wait for.
const WITHIN: Duration = Duration::from_secs(15);

/// Settings with `header` and `idle` as the listener's timeouts (seconds).
fn with_timeouts(header: u64, idle: u64) -> Settings {
    Settings {
        header_read_timeout_secs: header,
        idle_timeout_secs: idle,
        ..test_settings()
    }
}

/// A TCP connection to `server` from `source` (a loopback address).
async fn connect_from(source: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(server).await.expect("connect")
}

/// Waits (at most [`WITHIN`]) for the server to close `stream` without answering: an end of
/// stream or a reset. Returns how long that took.
async fn closed_unanswered(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(WITHIN, stream.read(&mut buf)).await {
        Err(_) => panic!("the connection is still open after {WITHIN:?}"),
        Ok(Ok(0)) | Ok(Err(_)) => start.elapsed(),
        Ok(Ok(n)) => panic!(
            "expected a close, got an answer: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
    }
}

/// `GET path` on a kept-alive connection; the status and body.
async fn get(stream: &mut TcpStream, path: &str) -> (u16, String) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: orbita.test\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "closed before the answer was complete: {data:?}");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).to_string();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let head = &text[..end];
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .expect("a content-length");
        if data.len() >= end + 4 + length {
            let status = word_after(head, "HTTP/1.1 ").parse().unwrap();
            return (status, text[end + 4..end + 4 + length].to_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_silent_client_is_dropped_after_the_header_read_timeout() {
    let server = start_server(with_timeouts(1, 30)).await;
    let addr = server.http_addr();
    // Half a request line, then nothing; and nothing at all.
    let mut slow = connect_from([127, 0, 0, 2], addr).await;
    slow.write_all(b"GET /healthz HT").await.unwrap();
    let mut silent = connect_from([127, 0, 0, 2], addr).await;
    let slow_took = closed_unanswered(&mut slow).await;
    let silent_took = closed_unanswered(&mut silent).await;
    assert!(slow_took >= Duration::from_millis(900), "{slow_took:?}");
    assert!(silent_took < WITHIN);
    let counts = server.listener_stats().counts();
    assert_eq!(counts.header_timeouts, 2, "{counts:?}");
    // The server answers everyone else as before.
    let mut other = connect_from([127, 0, 0, 3], addr).await;
    assert_eq!(get(&mut other, "/healthz").await.0, 200);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_over_the_per_address_cap_is_closed_while_others_are_answered() {
    let server = start_server(Settings {
        max_connections_per_address: 3,
        ..test_settings()
    })
    .await;
    let addr = server.http_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = connect_from([127, 0, 0, 2], addr).await;
        assert_eq!(get(&mut c, "/healthz").await, (200, "ok".to_string()));
        held.push(c);
    }
    // The fourth from that address is closed unanswered, even with its request sent.
    let mut fourth = connect_from([127, 0, 0, 2], addr).await;
    let _ = fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: orbita.test\r\n\r\n")
        .await;
    closed_unanswered(&mut fourth).await;
    // Another address is answered, and the held ones still are.
    let mut other = connect_from([127, 0, 0, 3], addr).await;
    assert_eq!(get(&mut other, "/healthz").await.0, 200);
    assert_eq!(get(&mut held[0], "/healthz").await.0, 200);
    // The refusal is on /metrics (asked from 127.0.0.1, which is capped only in total).
    let metrics = metrics_page(&format!("http://{addr}")).await;
    assert!(
        metrics.contains(
            "orbita_http_connections_refused_total{cap=\"max_connections_per_address\"} 1\n"
        ),
        "{metrics}"
    );
    // Once one of the three closes, the address may connect again (as soon as the server has
    // seen the close: tried until then, within the bound).
    drop(held.pop());
    let deadline = Instant::now() + WITHIN;
    loop {
        let mut again = connect_from([127, 0, 0, 2], addr).await;
        let request = b"GET /healthz HTTP/1.1\r\nHost: orbita.test\r\n\r\n";
        let _ = again.write_all(request).await;
        let mut buf = [0u8; 64];
        if let Ok(Ok(n)) = tokio::time::timeout(WITHIN, again.read(&mut buf)).await {
            if n > 0 {
                assert!(buf.starts_with(b"HTTP/1.1 200"));
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the address was never let in again"
        );
    }
    assert_eq!(server.listener_stats().counts().refused_total, 0);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_are_closed_at_accept() {
    let server = start_server(Settings {
        max_connections: 4,
        ..test_settings()
    })
    .await;
    let addr = server.http_addr();
    let mut held = Vec::new();
    for source in [
        [127, 0, 0, 1],
        [127, 0, 0, 2],
        [127, 0, 0, 3],
        [127, 0, 0, 1],
    ] {
        let mut c = connect_from(source, addr).await;
        assert_eq!(get(&mut c, "/healthz").await.0, 200);
        held.push(c);
    }
    let mut fifth = connect_from([127, 0, 0, 4], addr).await;
    closed_unanswered(&mut fifth).await;
    let counts = server.listener_stats().counts();
    assert_eq!((counts.open, counts.refused_total), (4, 1), "{counts:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_but_a_websocket_is_not() {
    let server = start_server(with_timeouts(30, 1)).await;
    let addr = server.http_addr();
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("WebSocket");
    let mut idle = connect_from([127, 0, 0, 2], addr).await;
    assert_eq!(get(&mut idle, "/healthz").await.0, 200);
    let took = closed_unanswered(&mut idle).await;
    // The idle timeout (1 s), not the header-read one (30 s), closed it.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(20),
        "{took:?}"
    );
    assert_eq!(server.listener_stats().counts().idle_timeouts, 1);
    // The WebSocket, silent for as long, still answers.
    ws.send(Message::text(r#"{"type":"ping","id":7}"#))
        .await
        .unwrap();
    let answer = tokio::time::timeout(WITHIN, ws.next())
        .await
        .expect("an answer")
        .expect("open")
        .unwrap();
    assert!(answer.to_text().unwrap().contains("pong"), "{answer:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_tls_handshake_is_dropped_while_https_serves() {
    let temp = TempDir::new("listeners-tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (temp.path().join("cert.pem"), temp.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let mut settings = with_timeouts(1, 30);
    settings.tls.tls_cert = Some(cert_path);
    settings.tls.tls_key = Some(key_path);
    let server = start_server(settings).await;
    let addr = server.http_addr();
    // Connected and silent; and the first bytes of a ClientHello, then nothing.
    let mut silent = connect_from([127, 0, 0, 2], addr).await;
    let mut stalled = connect_from([127, 0, 0, 2], addr).await;
    stalled
        .write_all(&[
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ])
        .await
        .unwrap();
    let took = closed_unanswered(&mut stalled).await;
    assert!(took >= Duration::from_millis(900), "{took:?}");
    closed_unanswered(&mut silent).await;
    let counts = server.listener_stats().counts();
    assert_eq!(counts.header_timeouts, 2, "{counts:?}");
    // A real HTTPS client is served.
    crate::support::install_crypto_provider();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let answer = client
        .get(format!("https://localhost:{}/healthz", addr.port()))
        .send()
        .await
        .expect("HTTPS");
    assert_eq!(answer.status(), 200);
    assert!(answer.headers().contains_key("strict-transport-security"));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orbita_coordinator_drops_a_slow_header_client_and_counts_it() {
    let mut coordinator = Proc::start(
        "coordinator",
        &[
            "coordinator",
            "--listen-addr",
            "127.0.0.1:0",
            "--set",
            "header_read_timeout_secs=1",
            "--set",
            "max_connections_per_address=2",
        ],
    );
    let line = coordinator.wait_line("orbita coordinator listening on");
    let url = word_after(&line, "listening on ");
    let addr: SocketAddr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/coordinator")
        .parse()
        .unwrap();
    let mut slow = connect_from([127, 0, 0, 2], addr).await;
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: ")
        .await
        .unwrap();
    let mut second = connect_from([127, 0, 0, 2], addr).await;
    let mut third = connect_from([127, 0, 0, 2], addr).await;
    closed_unanswered(&mut third).await;
    let took = closed_unanswered(&mut slow).await;
    assert!(took >= Duration::from_millis(900), "{took:?}");
    closed_unanswered(&mut second).await;
    let metrics = metrics_page(&format!("http://{addr}")).await;
    for line in [
        "orbita_coordinator_http_connections_timed_out_total{timeout=\"header_read\"} 2\n",
        "orbita_coordinator_http_connections_refused_total{cap=\"max_connections_per_address\"} 1\n",
    ] {
        assert!(metrics.contains(line), "{line} not in {metrics}");
    }
    coordinator.stop(Duration::from_secs(10));
}
