//! The two HTTP calls the load generator makes (`POST /api/rooms`, `GET /metrics`), over a
//! plain HTTP/1.1 connection: no client library needed for a local server.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most of a response read (the metrics page is a few KiB).
const MAX_RESPONSE: usize = 4 << 20;
const TIMEOUT: Duration = Duration::from_secs(10);

/// `host:port` of the HTTP server behind a signalling URL (`ws://host:port/ws`).
pub fn http_authority(ws_url: &str) -> anyhow::Result<String> {
    let rest = ["ws://", "http://"]
        .iter()
        .find_map(|p| ws_url.strip_prefix(p))
        .with_context(|| format!("{ws_url:?}: only ws:// and http:// URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        bail!("{ws_url:?} has no host");
    }
    Ok(if authority.contains(':') && !authority.ends_with(']') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    })
}

/// Make one request; returns the status and the body.
pub async fn request(authority: &str, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
    tokio::time::timeout(TIMEOUT, request_inner(authority, method, path))
        .await
        .with_context(|| format!("{method} http://{authority}{path} timed out"))?
}

async fn request_inner(authority: &str, method: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    (&mut stream)
        .take(MAX_RESPONSE as u64)
        .read_to_end(&mut buf)
        .await?;
    parse_response(&buf)
}

fn parse_response(buf: &[u8]) -> anyhow::Result<(u16, String)> {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("HTTP response without a header end")?;
    let head = String::from_utf8_lossy(&buf[..split]);
    let body = &buf[split + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad HTTP status line: {head}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut body: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunked body")?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size {
            bail!("truncated chunk");
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).unwrap_or_default();
    }
}

/// `POST /api/rooms`: a new room's join code.
pub async fn create_room(authority: &str) -> anyhow::Result<String> {
    let (status, body) = request(authority, "POST", "/api/rooms").await?;
    if status != 201 {
        bail!("POST /api/rooms answered {status}: {body}");
    }
    let v: serde_json::Value = serde_json::from_str(&body).context("POST /api/rooms body")?;
    v["code"]
        .as_str()
        .map(str::to_string)
        .with_context(|| format!("no code in {body}"))
}

/// `GET /metrics`, as metric name -> value (labels and comments dropped).
pub async fn metrics(authority: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    let (status, body) = request(authority, "GET", "/metrics").await?;
    if status != 200 {
        bail!("GET /metrics answered {status}");
    }
    Ok(parse_metrics(&body))
}

/// Parse the Prometheus text format's sample lines.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.trim().to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_from_urls() {
        assert_eq!(
            http_authority("ws://127.0.0.1:8080/ws").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            http_authority("http://localhost:9/ws").unwrap(),
            "localhost:9"
        );
        assert_eq!(
            http_authority("ws://example.org/ws").unwrap(),
            "example.org:80"
        );
        assert!(http_authority("wss://x/ws").is_err());
    }

    #[test]
    fn responses_and_metrics_parse() {
        let r = b"HTTP/1.1 201 Created\r\ncontent-length: 15\r\n\r\n{\"code\":\"1234\"}";
        assert_eq!(
            parse_response(r).unwrap(),
            (201, "{\"code\":\"1234\"}".into())
        );
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        assert_eq!(parse_response(r).unwrap(), (200, "hello world".into()));
        let m = parse_metrics("# HELP a x\n# TYPE a counter\na 12\nb{x=\"y\"} 3.5\n");
        assert_eq!(m.get("a"), Some(&12.0));
        assert_eq!(m.get("b{x=\"y\"}"), Some(&3.5));
    }
}
