//! `orbita healthcheck URL`: one `GET`, success only on `200`. For container health checks
//! (Docker `HEALTHCHECK`, Compose `healthcheck`) in an image without curl.
//!
//! `http://` URLs are fetched over plain HTTP/1.1. `https://` is accepted only for `localhost`
//! and loopback addresses, and there the certificate is **not** verified: the check asks the
//! server in the same container or host, whose certificate is for its public name (or is being
//! obtained by ACME) and would not verify against `localhost` anyway.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the whole check may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Most of an answer read (the status line, the headers and the start of the body).
const MAX_ANSWER: usize = 8 * 1024;

/// The check: run `orbita healthcheck` (exit status 0 when healthy, 1 with the reason).
#[derive(Debug, Clone, clap::Args)]
pub struct HealthcheckArgs {
    /// What to ask, e.g. `http://127.0.0.1:8080/healthz` (`https://` only for localhost or a
    /// loopback address, its certificate not verified).
    #[arg(value_name = "URL")]
    pub url: String,
}

/// A URL split for the request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    tls: bool,
    /// The host as written, without IPv6 brackets.
    host: String,
    port: u16,
    /// `host[:port]` as written, for the `Host` header.
    authority: String,
    /// Path and query (`/` when none).
    path: String,
}

fn parse(url: &str) -> Result<Target, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err(format!("{url}: not an http:// or https:// URL"));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_string()),
        Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
        None => (rest, "/".to_string()),
    };
    if authority.is_empty() || authority.contains('@') || path.contains(char::is_whitespace) {
        return Err(format!("{url}: not a URL this check takes"));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url}: unclosed [ in the host"))?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').unwrap_or(p))),
            }
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("{url}: `{p}` is not a port"))?,
        None => default_port,
    };
    if host.is_empty() {
        return Err(format!("{url}: no host"));
    }
    Ok(Target {
        tls,
        host: host.to_string(),
        port,
        authority: authority.to_string(),
        path,
    })
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `GET url`: `Ok` on `200`, else the reason in one line (the status and the first line of
/// the body, or what failed), all within `timeout`.
pub async fn check(url: &str, timeout: Duration) -> Result<(), String> {
    let target = parse(url)?;
    if target.tls && !is_loopback(&target.host) {
        return Err(format!(
            "{url}: https:// is checked only on localhost or a loopback address (the \
             certificate is not verified); use http:// or ask from the server's host"
        ));
    }
    let (status, reason) = tokio::time::timeout(timeout, get(&target))
        .await
        .map_err(|_| format!("{url}: no answer within {} s", timeout.as_secs()))??;
    if status == 200 {
        Ok(())
    } else {
        Err(format!("{url} answered {status}{reason}"))
    }
}

/// `orbita healthcheck`: [`check`] within [`TIMEOUT`].
pub async fn run(args: HealthcheckArgs) -> Result<(), String> {
    check(&args.url, TIMEOUT).await
}

/// The status code and, for a failure, `": "` and the first line of the body.
async fn get(target: &Target) -> Result<(u16, String), String> {
    let address = format!("{}:{}", target.host, target.port);
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot connect to {address}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if !target.tls {
        return exchange(tcp, target).await;
    }
    let name = rustls::pki_types::ServerName::try_from(target.host.clone())
        .map_err(|e| format!("{}: {e}", target.host))?;
    let tls = tokio_rustls::TlsConnector::from(unverified_tls()?)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {address}: {e}"))?;
    exchange(tls, target).await
}

async fn exchange<S>(mut stream: S, target: &Target) -> Result<(u16, String), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: orbita-healthcheck\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n",
        target.path, target.authority
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut answer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while answer.len() < MAX_ANSWER {
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            // A TLS peer that closes without close_notify, after a full answer: keep it.
            Err(_) if !answer.is_empty() => break,
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        }
    }
    parse_answer(&answer)
}

fn parse_answer(answer: &[u8]) -> Result<(u16, String), String> {
    let text = String::from_utf8_lossy(answer);
    let status_line = text.lines().next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| {
            let shown: String = status_line.chars().take(80).collect();
            format!("not an HTTP answer: {shown:?}")
        })?;
    if status == 200 {
        return Ok((status, String::new()));
    }
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let first = if chunked {
        ""
    } else {
        body.lines().next().unwrap_or_default().trim()
    };
    let reason: String = first.chars().take(200).collect();
    Ok((
        status,
        if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        },
    ))
}

/// A TLS client that accepts any certificate (loopback only, see the module's note).
fn unverified_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts every certificate; still checks that the handshake is signed by its key.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn urls_are_split() {
        let t = parse("http://127.0.0.1:8080/healthz").unwrap();
        assert_eq!(
            t,
            Target {
                tls: false,
                host: "127.0.0.1".into(),
                port: 8080,
                authority: "127.0.0.1:8080".into(),
                path: "/healthz".into(),
            }
        );
        let t = parse("https://[::1]/x?y=1#z").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "::1", 443));
        assert_eq!(t.path, "/x?y=1");
        let t = parse("http://localhost?a").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/?a"));
        assert_eq!(parse("http://[::1]:9/").unwrap().port, 9);
        for bad in [
            "ftp://x/",
            "127.0.0.1:8080/healthz",
            "http:///x",
            "http://a:b/",
            "http://u@h/",
            "http://[::1/",
            "http://:80/",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(is_loopback("localhost") && is_loopback("127.0.0.9") && is_loopback("::1"));
        assert!(!is_loopback("example.org") && !is_loopback("192.0.2.1"));
    }

    #[test]
    fn answers_are_read() {
        assert_eq!(
            parse_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
            Ok((200, String::new()))
        );
        assert_eq!(
            parse_answer(b"HTTP/1.1 503 Service Unavailable\r\n\r\ndatabase down\nmore"),
            Ok((503, ": database down".into()))
        );
        assert_eq!(
            parse_answer(b"HTTP/1.0 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n4\r\nnope"),
            Ok((404, String::new()))
        );
        assert!(parse_answer(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_answer(b"").is_err());
    }

    /// A one-connection server answering `answer` (after reading the request), on loopback.
    async fn answer_once(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 512];
            while !request.ends_with(b"\r\n\r\n") {
                let n = tcp.read(&mut buf).await.unwrap();
                assert!(n > 0, "request cut short");
                request.extend_from_slice(&buf[..n]);
            }
            let request = String::from_utf8(request).unwrap();
            assert!(
                request.starts_with("GET /healthz HTTP/1.1\r\n"),
                "{request}"
            );
            assert!(request.contains(&format!("\r\nHost: 127.0.0.1:{port}\r\n")));
            tcp.write_all(answer.as_bytes()).await.unwrap();
        });
        port
    }

    #[tokio::test]
    async fn ok_refused_unhealthy_and_silent() {
        let port = answer_once("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        check(&format!("http://127.0.0.1:{port}/healthz"), TIMEOUT)
            .await
            .unwrap();

        let port = answer_once("HTTP/1.1 503 Service Unavailable\r\n\r\ndatabase gone").await;
        let e = check(&format!("http://127.0.0.1:{port}/healthz"), TIMEOUT)
            .await
            .unwrap_err();
        assert!(e.ends_with("answered 503: database gone"), "{e}");

        // A port nobody listens on (bound, then closed).
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let e = check(&format!("http://127.0.0.1:{port}/healthz"), TIMEOUT)
            .await
            .unwrap_err();
        assert!(e.starts_with("cannot connect"), "{e}");

        // Accepted (by the kernel's backlog) but never answered.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = silent.local_addr().unwrap().port();
        let e = check(
            &format!("http://127.0.0.1:{port}/healthz"),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
        assert!(e.contains("no answer within"), "{e}");
        drop(silent);

        let e = check("https://example.org/healthz", TIMEOUT)
            .await
            .unwrap_err();
        assert!(e.contains("only on localhost"), "{e}");
    }

    /// `https://localhost`: a self-signed certificate for another name is accepted.
    #[tokio::test]
    async fn https_on_loopback_skips_verification() {
        let cert = rcgen::generate_simple_self_signed(vec!["orbita.example".into()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let mut buf = [0u8; 512];
            let n = tls.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"GET /healthz HTTP/1.1\r\n"));
            tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
            tls.shutdown().await.unwrap();
        });
        check(&format!("https://localhost:{port}/healthz"), TIMEOUT)
            .await
            .unwrap();
    }
}
