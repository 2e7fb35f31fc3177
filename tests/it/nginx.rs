//! The shipped nginx site (deploy/nginx/orbita.conf) in front of a real `orbita serve`: Debian's
//! `nginx` runs that file with only its placeholders replaced (loopback ports, a self-signed
//! certificate for `localhost`, the server's address), and everything a browser does goes
//! through it over HTTPS: the pages, the REST API with a login cookie, both WebSockets, the
//! HTTP-to-HTTPS redirect. Clients bound to 127.0.0.2 and 127.0.0.3 show that the server's
//! per-address code-guess lock-out sees their own addresses (nginx's `X-Forwarded-For`), not
//! nginx's one upstream address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{
    free_tcp_ports, next_server_msg, orbita_command, wait_listening, Daemon, Proc, TempDir, Ws,
    LOOPBACK_MEDIA_ARGS,
};
use futures_util::{SinkExt, StreamExt};
use orbita_protocol::{ErrorCode, ServerMsg};
use orbita_server::guesses::MAX_MISSES;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;

/// The shipped site, as an operator copies it.
const SITE: &str = include_str!("../../deploy/nginx/orbita.conf");

const ADMIN_EMAIL: &str = "admin@orbita.test";
const ADMIN_PASSWORD: &str = "admin-password-1";

/// Debian's nginx (`/usr/sbin/nginx`, not on every user's PATH), else one on the PATH. No nginx
/// is a failure, not a skip: the test command installs it.
fn nginx_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx not found (looked on the PATH and in /usr/sbin): this test runs the shipped \
                 deploy/nginx/orbita.conf in it. Install it with `apt-get install nginx` \
                 (scripts/test does that when it runs as root)"
            )
        })
}

/// `text` with every `from` replaced by `to`; panics if `from` is not in it (the shipped file
/// changed shape and the test would no longer run what an operator runs).
fn replace_all(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "deploy/nginx/orbita.conf has no {from:?}"
    );
    text.replace(from, to)
}

/// The shipped site with its placeholders replaced for this test: the listeners on loopback
/// ports (the IPv6 ones dropped: the machine may have no IPv6), the certificate, the ACME
/// webroot, the host name and the upstream.
fn site_for_test(
    http_port: u16,
    https_port: u16,
    dir: &Path,
    upstream: SocketAddr,
    host: &str,
) -> String {
    let ipv6 = |line: &str| line.trim_start().starts_with("listen [::]:");
    assert_eq!(
        SITE.lines().filter(|l| ipv6(l)).count(),
        2,
        "one IPv6 listener per server block"
    );
    let site: String = SITE
        .lines()
        .filter(|l| !ipv6(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let site = replace_all(
        &site,
        "listen 80;",
        &format!("listen 127.0.0.1:{http_port};"),
    );
    let site = replace_all(
        &site,
        "listen 443 ssl;",
        &format!("listen 127.0.0.1:{https_port} ssl;"),
    );
    let site = replace_all(
        &site,
        "/etc/letsencrypt/live/orbita.example.com/fullchain.pem",
        &dir.join("cert.pem").display().to_string(),
    );
    let site = replace_all(
        &site,
        "/etc/letsencrypt/live/orbita.example.com/privkey.pem",
        &dir.join("key.pem").display().to_string(),
    );
    let site = replace_all(
        &site,
        "/var/www/letsencrypt",
        &dir.join("acme").display().to_string(),
    );
    let site = replace_all(&site, "orbita.example.com", host);
    replace_all(&site, "127.0.0.1:8080", &upstream.to_string())
}

/// A minimal nginx.conf around the site: everything nginx writes stays in `dir`; one process
/// in the foreground (so that killing the child stops all of nginx).
fn nginx_conf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{
    worker_connections 256;
}}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/orbita.conf;
}}
"
    )
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()))
}

/// `orbita serve` (accounts on, proxy headers trusted) on loopback with kernel-chosen ports;
/// returns it and its HTTP address once it listens.
fn start_orbita(dir: &Path, public_url: &str) -> (Proc, SocketAddr) {
    let data = dir.join("data");
    let mut cmd = orbita_command(&["serve", "--data-dir"]);
    cmd.arg(&data)
        .args(["--trust-proxy-headers=true", "--public-url", public_url])
        .args(LOOPBACK_MEDIA_ARGS)
        .env("ORBITA_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("ORBITA_ADMIN_PASSWORD", ADMIN_PASSWORD);
    let mut server = Proc::spawn("orbita serve", cmd);
    let addr = server.wait_for("orbita listening on http://");
    (server, addr.parse().expect("a socket address"))
}

/// Starts nginx on `dir/nginx.conf` after `nginx -t` accepted it without a warning, and waits
/// until both listeners accept connections.
async fn start_nginx(dir: &Path, ports: [u16; 2]) -> Daemon {
    let nginx = nginx_binary();
    let conf = dir.join("nginx.conf");
    let error_log = dir.join("error.log");
    let run = |extra: &[&str]| {
        let mut cmd = Command::new(&nginx);
        cmd.args(extra)
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(&error_log)
            .stdin(Stdio::null());
        cmd
    };
    let check = run(&["-t"]).output().expect("nginx -t runs");
    let said = String::from_utf8_lossy(&check.stderr).into_owned();
    assert!(check.status.success(), "nginx -t refused the site:\n{said}");
    assert!(
        !said.contains("[warn]") && !said.contains("[emerg]"),
        "nginx -t warns about the site:\n{said}"
    );

    let child = run(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", nginx.display()));
    let mut daemon = Daemon::new("nginx", child);
    let deadline = Instant::now() + Duration::from_secs(15);
    for port in ports {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        wait_listening(&mut daemon, addr, deadline, || read_log(&error_log)).await;
    }
    daemon
}

/// TLS that trusts only the test's certificate (aws-lc-rs, as the rest of Orbita).
fn client_tls(cert: rustls::pki_types::CertificateDer<'static>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth()
}

/// An HTTP client that trusts `tls`, reaches `localhost` at 127.0.0.1 (the port comes from
/// each URL), connects from `from`, and does not follow redirects.
fn http_client(tls: &rustls::ClientConfig, from: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls.clone())
        .resolve("localhost", SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .local_address(IpAddr::V4(from))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// A WebSocket to `wss://localhost:{port}{path}` from the address `from`, through nginx.
async fn wss(port: u16, path: &str, from: Ipv4Addr, tls: &Arc<rustls::ClientConfig>) -> Ws {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let stream = socket
        .connect(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .expect("nginx accepts");
    let url = format!("wss://localhost:{port}{path}");
    let (ws, response) = tokio_tungstenite::client_async_tls_with_config(
        url.as_str(),
        stream,
        None,
        Some(Connector::Rustls(Arc::clone(tls))),
    )
    .await
    .unwrap_or_else(|e| panic!("WebSocket {url} through nginx: {e}"));
    assert_eq!(response.status().as_u16(), 101);
    ws
}

/// `join` on the signalling WebSocket: the server's answer to it.
async fn join(ws: &mut Ws, code: &str, name: &str) -> ServerMsg {
    let join = json!({"type": "join", "v": 1, "code": code, "name": name});
    ws.send(Message::Text(join.to_string().into()))
        .await
        .unwrap();
    next_server_msg(ws).await
}

/// [`join`], which must let `name` into the room `code`.
async fn assert_joins(ws: &mut Ws, code: &str, name: &str) {
    match join(ws, code, name).await {
        ServerMsg::Joined { code: joined, .. } => assert_eq!(joined, code),
        other => panic!("expected joined, got {other:?}"),
    }
}

/// `GET url` with `client`.
async fn get(client: &reqwest::Client, url: String) -> reqwest::Response {
    client.get(url).send().await.unwrap()
}

/// `POST {base}/api/rooms` with the login `cookie`, as a page from `origin` sends it.
async fn create_room(
    client: &reqwest::Client,
    base: &str,
    cookie: &str,
    origin: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/api/rooms"))
        .header("cookie", cookie)
        .header("origin", origin)
        .send()
        .await
        .unwrap()
}

/// The body, which must be JSON.
async fn body_json(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_site_in_front_of_orbita_serve() {
    let temp = TempDir::new("nginx-test");
    let dir = temp.path();
    let host = "localhost";
    let [http_port, https_port] = free_tcp_ports();
    let base = format!("https://{host}:{https_port}");

    // A self-signed certificate for localhost, as nginx reads them.
    let cert = rcgen::generate_simple_self_signed(vec![host.to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    // A file in the ACME webroot, which port 80 serves instead of redirecting.
    let challenge = dir.join("acme/.well-known/acme-challenge");
    std::fs::create_dir_all(&challenge).unwrap();
    std::fs::write(challenge.join("test-token"), "test-token.key-authorization").unwrap();

    let (_orbita, orbita_addr) = start_orbita(dir, &base);
    std::fs::write(
        dir.join("orbita.conf"),
        site_for_test(http_port, https_port, dir, orbita_addr, host),
    )
    .unwrap();
    std::fs::write(dir.join("nginx.conf"), nginx_conf(dir)).unwrap();
    let _nginx = start_nginx(dir, [http_port, https_port]).await;

    let tls = client_tls(cert.cert.der().clone());
    let tls_arc = Arc::new(tls.clone());
    let http = http_client(&tls, Ipv4Addr::LOCALHOST);

    // Port 80: the challenge file is served; everything else goes to HTTPS, path and query kept.
    let plain = format!("http://{host}:{http_port}");
    let answer = get(
        &http,
        format!("{plain}/.well-known/acme-challenge/test-token"),
    )
    .await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.text().await.unwrap(), "test-token.key-authorization");
    let answer = get(&http, format!("{plain}/r/1234?lang=kk")).await;
    assert_eq!(answer.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        answer.headers()["location"],
        format!("https://{host}/r/1234?lang=kk").as_str()
    );

    // The home page over HTTPS, with HSTS.
    let answer = get(&http, format!("{base}/")).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        answer.headers()
    );
    let hsts = answer.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(hsts.starts_with("max-age="), "{hsts}");
    assert!(answer.text().await.unwrap().contains("Orbita"));
    let answer = get(&http, format!("{base}/assets/js/app.js")).await;
    assert_eq!(answer.status(), StatusCode::OK);

    // The REST API: a guest may not create a room; the administrator logs in (the cookie is
    // `Secure`: X-Forwarded-Proto arrived) and creates one with the cookie, as the page does.
    let answer = http.post(format!("{base}/api/rooms")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    let answer = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let set_cookie = answer.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set_cookie.split(';').any(|a| a.trim() == "Secure"),
        "the login cookie over HTTPS is Secure: {set_cookie}"
    );
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    assert!(cookie.starts_with("orbita_session="), "{set_cookie}");
    // Same origin: nginx passed the Host with its port, so the cookie is believed ...
    let answer = create_room(&http, &base, &cookie, &base).await;
    assert_eq!(answer.status(), StatusCode::CREATED);
    let room = body_json(answer).await;
    let code = room["code"].as_str().expect("a room code").to_string();
    assert_eq!(room["link"], format!("{base}/r/{code}"), "{room}");
    // ... and not from a page of another site (a cookie-authenticated state change).
    let answer = create_room(&http, &base, &cookie, "https://elsewhere.test").await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert_eq!(body_json(answer).await["error"], "bad_origin");

    let room_url = format!("{base}/api/rooms/{code}");
    let answer = get(&http, room_url.clone()).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        body_json(answer).await,
        json!({"code": code, "participants": 0, "recording": false})
    );
    let answer = get(&http, format!("{base}/r/{code}")).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.text().await.unwrap().contains(&code));

    // Both WebSockets through nginx: signalling joins the room, the coordinator welcomes.
    let mut alice = wss(https_port, "/ws", Ipv4Addr::LOCALHOST, &tls_arc).await;
    assert_joins(&mut alice, &code, "Alice").await;
    let answer = get(&http, room_url.clone()).await;
    assert_eq!(body_json(answer).await["participants"], 1);
    let mut coordinator = wss(https_port, "/coordinator", Ipv4Addr::LOCALHOST, &tls_arc).await;
    let welcome = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), coordinator.next())
            .await
            .expect("the coordinator answers")
            .expect("open")
            .expect("readable");
        if let Message::Text(text) = msg {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
    };
    assert_eq!(welcome["msg"], "WELCOME", "{welcome}");

    // Code guessing: 127.0.0.2 misses MAX_MISSES times and is locked out, right code too, and
    // an X-Forwarded-For of its own does not get it out (nginx replaces the header).
    let guesser_addr = Ipv4Addr::new(127, 0, 0, 2);
    let neighbour_addr = Ipv4Addr::new(127, 0, 0, 3);
    let guesser = http_client(&tls, guesser_addr);
    let neighbour = http_client(&tls, neighbour_addr);
    let wrong_codes: Vec<String> = (0..)
        .map(|n| format!("{n:0width$}", width = code.len()))
        .filter(|c| *c != code)
        .take(MAX_MISSES as usize)
        .collect();
    for wrong in &wrong_codes {
        let answer = get(&guesser, format!("{base}/api/rooms/{wrong}")).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
        assert_eq!(body_json(answer).await["error"], "unknown_code");
    }
    let answer = get(&guesser, room_url.clone()).await;
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body_json(answer).await["error"], "locked_out");
    let answer = guesser
        .get(&room_url)
        .header("x-forwarded-for", "192.0.2.99")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    let mut ws = wss(https_port, "/ws", guesser_addr, &tls_arc).await;
    match join(&mut ws, &code, "Guesser").await {
        ServerMsg::Error { code: error, .. } => assert_eq!(error, ErrorCode::RateLimited),
        other => panic!("a locked-out address joined: {other:?}"),
    }

    // 127.0.0.3, behind the same nginx, is not locked out: the server counts each client's
    // own address, not nginx's 127.0.0.1 (127.0.0.1 itself is not locked out either).
    let wrong_url = format!("{base}/api/rooms/{}", wrong_codes[0]);
    assert_eq!(
        get(&neighbour, room_url.clone()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get(&neighbour, wrong_url).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(&http, room_url).await.status(), StatusCode::OK);
    let mut bob = wss(https_port, "/ws", neighbour_addr, &tls_arc).await;
    assert_joins(&mut bob, &code, "Bob").await;
    // Alice, whose WebSocket has stayed open through nginx all along, sees Bob arrive.
    loop {
        match next_server_msg(&mut alice).await {
            ServerMsg::ParticipantJoined { participant } => {
                assert_eq!(participant.name, "Bob");
                break;
            }
            _ => continue,
        }
    }

    // nginx's access log has the clients' own addresses too.
    let access = read_log(&dir.join("access.log"));
    assert!(
        access.lines().any(|l| l.starts_with("127.0.0.2 "))
            && access.lines().any(|l| l.starts_with("127.0.0.3 ")),
        "{access}"
    );
}
