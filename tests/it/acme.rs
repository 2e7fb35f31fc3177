//! HTTPS with a certificate obtained by ACME from Debian's `pebble` (a local ACME CA that
//! really validates): `pebble-challtestsrv` answers its DNS lookups of `orbita.test` with
//! 127.0.0.1, pebble validates TLS-ALPN-01 on the server's own HTTPS port, and the server then
//! serves the certificate (HSTS on). A cached certificate near the end of its life is served
//! at first and replaced by a renewed one before it expires.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use orbita_server::RunningServer;

use crate::support::*;

/// The name the certificates are for; pebble's DNS (challtestsrv) says it is 127.0.0.1.
const DOMAIN: &str = "orbita.test";

fn spawn(program: &str, args: &[&str], envs: &[(&str, &str)], log: &Path) -> Daemon {
    let out = std::fs::File::create(log).unwrap();
    let child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {program} ({e}): install Debian's `pebble` package \
                 (scripts/test does)"
            )
        });
    Daemon::new(program, child)
}

/// A running local ACME CA.
struct Pebble {
    _dns: Daemon,
    _ca: Daemon,
    dir: PathBuf,
    /// The ACME directory URL.
    directory: String,
    /// The PEM file of pebble's own HTTPS certificate (for `acme_ca_file`).
    https_cert: PathBuf,
    management: SocketAddr,
}

impl Pebble {
    /// Starts pebble validating TLS-ALPN-01 on `tls_port` and its DNS.
    async fn start(dir: &Path, tls_port: u16) -> Pebble {
        let dns = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
        let dns_log = dir.join("challtestsrv.log");
        let dns_daemon = spawn(
            "pebble-challtestsrv",
            &[
                "-dns01",
                &dns.to_string(),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{}", free_tcp_port()),
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ],
            &[],
            &dns_log,
        );
        // pebble's directory is HTTPS: a certificate for 127.0.0.1 that the server trusts.
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let https_cert = dir.join("pebble-https.pem");
        std::fs::write(&https_cert, cert.cert.pem()).unwrap();
        std::fs::write(
            dir.join("pebble-https.key"),
            cert.signing_key.serialize_pem(),
        )
        .unwrap();
        let listen = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        let management = SocketAddr::from(([127, 0, 0, 1], free_tcp_port()));
        let config = serde_json::json!({"pebble": {
            "listenAddress": listen.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": https_cert,
            "privateKey": dir.join("pebble-https.key"),
            "httpPort": free_tcp_port(),
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        let config_path = dir.join("pebble.json");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let log = dir.join("pebble.log");
        // NOSLEEP: validate at once; NONCEREJECT=0: pebble otherwise refuses 5% of good nonces
        // on purpose, which would make this test's duration vary.
        let mut ca = spawn(
            "pebble",
            &[
                "-config",
                config_path.to_str().unwrap(),
                "-dnsserver",
                &dns.to_string(),
            ],
            &[("PEBBLE_VA_NOSLEEP", "1"), ("PEBBLE_WFE_NONCEREJECT", "0")],
            &log,
        );
        for addr in [listen, management] {
            let deadline = Instant::now() + Duration::from_secs(20);
            wait_listening(&mut ca, addr, deadline, || {
                std::fs::read_to_string(&log).unwrap_or_default()
            })
            .await;
        }
        Pebble {
            _dns: dns_daemon,
            _ca: ca,
            dir: dir.to_path_buf(),
            directory: format!("https://{listen}/dir"),
            https_cert,
            management,
        }
    }

    /// pebble's issuing root (made anew at each start), as PEM.
    async fn root(&self) -> String {
        let pebble_https =
            reqwest::Certificate::from_pem(std::fs::read(&self.https_cert).unwrap().as_slice())
                .unwrap();
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(pebble_https)
            .build()
            .unwrap();
        let url = format!("https://{}/roots/0", self.management);
        let resp = client.get(&url).send().await.expect("pebble's root");
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }
}

/// A client of `https://orbita.test:PORT` trusting only pebble's root.
fn trusting(root_pem: &str, server: SocketAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem.as_bytes()).unwrap())
        .resolve(DOMAIN, server)
        .build()
        .unwrap()
}

/// The certificate the server presents now (DER of the leaf), whoever signed it.
async fn served_leaf(server: SocketAddr) -> Option<Vec<u8>> {
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .resolve(DOMAIN, server)
        .build()
        .unwrap();
    let resp = client
        .get(format!("https://{DOMAIN}:{}/healthz", server.port()))
        .send()
        .await
        .ok()?;
    resp.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .map(<[u8]>::to_vec)
}

fn acme_settings(pebble: &Pebble, https_port: u16, cache: &Path) -> orbita_server::Settings {
    let mut settings = test_settings();
    settings.http_addr = SocketAddr::from(([127, 0, 0, 1], https_port));
    settings.tls = orbita_tls::TlsSettings {
        acme_domains: vec![DOMAIN.into()],
        acme_contact: vec!["mailto:ops@orbita.test".into()],
        acme_directory_url: Some(pebble.directory.clone()),
        acme_cache_dir: Some(cache.to_path_buf()),
        acme_ca_file: Some(pebble.https_cert.clone()),
        ..orbita_tls::TlsSettings::default()
    };
    settings
}

/// Polls `GET /healthz` over HTTPS, trusting only pebble's root, until it answers.
async fn wait_for_pebble_certificate(
    server: &RunningServer,
    root: &str,
    pebble: &Pebble,
    until: Instant,
) -> reqwest::Response {
    let client = trusting(root, server.http_addr());
    let url = format!("https://{DOMAIN}:{}/healthz", server.http_addr().port());
    loop {
        match client.get(&url).send().await {
            Ok(resp) => return resp,
            Err(e) => assert!(
                Instant::now() < until,
                "no certificate from pebble in time ({e:#}); pebble said:\n{}",
                pebble.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orbita-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_obtained_by_acme_is_served_with_hsts() {
    install_crypto_provider();
    let dir = temp_dir("acme");
    let https_port = free_tcp_port();
    let pebble = Pebble::start(&dir, https_port).await;
    let root = pebble.root().await;
    let cache = dir.join("cache");
    let server = start_server(acme_settings(&pebble, https_port, &cache)).await;
    assert_eq!(
        server.public_url(),
        format!("https://{DOMAIN}:{https_port}")
    );

    let resp = wait_for_pebble_certificate(
        &server,
        &root,
        &pebble,
        Instant::now() + Duration::from_secs(60),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some(orbita_tls::HSTS_VALUE)
    );
    assert_eq!(resp.text().await.unwrap().trim(), "ok");

    // The REST API over HTTPS: a room is made and its join link is https://.
    let client = trusting(&root, server.http_addr());
    let made: serde_json::Value = client
        .post(format!("https://{DOMAIN}:{https_port}/api/rooms"))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = made["link"].as_str().unwrap_or_default();
    assert!(
        link.starts_with(&format!("https://{DOMAIN}:{https_port}/")),
        "{made}"
    );

    // The certificate and account key were kept for the next start, readable by the owner only.
    let kept = orbita_tls::acme::cert_path(&cache, &[DOMAIN.to_string()], &pebble.directory);
    let pem = std::fs::read_to_string(&kept).expect("the certificate is cached");
    assert!(pem.contains("BEGIN PRIVATE KEY") && pem.contains("BEGIN CERTIFICATE"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_near_its_end_is_renewed_before_it_expires() {
    install_crypto_provider();
    let dir = temp_dir("acme-renewal");
    let https_port = free_tcp_port();
    let pebble = Pebble::start(&dir, https_port).await;
    let root = pebble.root().await;
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();

    // A cached certificate with a minute of life, half of it left: renewal is due when two
    // thirds have passed (10 s from now), 20 s before it expires.
    let now = time::OffsetDateTime::now_utc();
    let mut params = rcgen::CertificateParams::new(vec![DOMAIN.to_string()]).unwrap();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::seconds(30);
    let expires = Instant::now() + Duration::from_secs(30);
    let key = rcgen::KeyPair::generate().unwrap();
    let short_lived = params.self_signed(&key).unwrap();
    let kept = orbita_tls::acme::cert_path(&cache, &[DOMAIN.to_string()], &pebble.directory);
    std::fs::write(
        &kept,
        format!("{}{}", key.serialize_pem(), short_lived.pem()),
    )
    .unwrap();

    let server = start_server(acme_settings(&pebble, https_port, &cache)).await;
    // The cache is read by the certificate task just after start: the first certificate any
    // handshake gets (renewal is not due for 10 s) must be the cached one.
    let read_by = Instant::now() + Duration::from_secs(5);
    let first = loop {
        if let Some(leaf) = served_leaf(server.http_addr()).await {
            break leaf;
        }
        assert!(
            Instant::now() < read_by,
            "the cached certificate is not served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        first,
        short_lived.der().to_vec(),
        "the cached certificate first"
    );

    let resp = wait_for_pebble_certificate(&server, &root, &pebble, expires).await;
    assert_eq!(resp.status(), 200);
    assert!(
        Instant::now() < expires,
        "renewed only after the old certificate expired"
    );
    let renewed = served_leaf(server.http_addr()).await.unwrap();
    assert_ne!(renewed, first);
    let pem = std::fs::read_to_string(&kept).unwrap();
    assert!(
        !pem.contains(&short_lived.pem()),
        "the renewed certificate replaced the cached one"
    );
    server.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
