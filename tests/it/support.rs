//! Shared set-up of the end-to-end tests: a real `orbita serve` (in-process, all ports chosen by
//! the kernel on 127.0.0.1) and helpers to make rooms and join bots; the `orbita` binary and
//! other programs (nginx, pebble, coturn) as child processes; free ports and temporary
//! directories.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// An HTTP client. The tests' reqwest has rustls without a built-in crypto provider (Orbita
/// uses aws-lc-rs everywhere): it is installed here, once per process, before any client is
/// made.
pub fn http() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::new()
}

/// The text of `base`'s `/metrics` page (`base`: `http://host:port`).
pub async fn metrics_page(base: &str) -> String {
    http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the metrics page")
}

/// Installs aws-lc-rs as the process's rustls provider (once; later calls do nothing). Tests
/// that build their own reqwest clients call it first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// `POST /api/rooms` and return the code.
pub async fn create_room(server: &RunningServer) -> String {
    let url = format!("http://{}/api/rooms", server.http_addr());
    let resp = http().post(&url).send().await.expect("POST /api/rooms");
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

/// A participant speaking the protocol itself over a raw socket (no media): its socket, its
/// id, the call's files key and the limits `joined` told.
pub struct Person {
    pub ws: Ws,
    pub id: String,
    pub key: String,
    pub limits: orbita_protocol::Limits,
}

impl Person {
    /// Joins room `code` of `server` as `name` (the agent with the room's `host_key`).
    pub async fn join(
        server: &RunningServer,
        code: &str,
        name: &str,
        host_key: Option<&str>,
    ) -> Person {
        use futures_util::SinkExt;
        use orbita_protocol::ServerMsg;
        let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
            .await
            .expect("ws connects");
        let mut join = serde_json::json!({"type": "join", "v": 1, "code": code, "name": name});
        if let Some(key) = host_key {
            join["key"] = serde_json::json!(key);
        }
        ws.send(tokio_tungstenite::tungstenite::Message::Text(
            join.to_string().into(),
        ))
        .await
        .unwrap();
        let (mut joined, mut key) = (None, None);
        while joined.is_none() || key.is_none() {
            match next_server_msg(&mut ws).await {
                ServerMsg::Joined {
                    participant_id,
                    limits,
                    ..
                } => joined = Some((participant_id, limits)),
                ServerMsg::CallInfo { files_key, .. } => key = files_key,
                _ => {}
            }
        }
        let (id, limits) = joined.unwrap();
        Person {
            ws,
            id,
            key: key.unwrap(),
            limits,
        }
    }

    /// Sends `msg`.
    pub async fn send(&mut self, msg: serde_json::Value) {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                msg.to_string().into(),
            ))
            .await
            .unwrap();
    }

    /// The next message `want` picks (others skipped).
    pub async fn next_of<T>(
        &mut self,
        want: impl Fn(orbita_protocol::ServerMsg) -> Option<T>,
    ) -> T {
        loop {
            if let Some(found) = want(next_server_msg(&mut self.ws).await) {
                return found;
            }
        }
    }
}

// ------------------------------------------------------------------ child processes

/// A child process (nginx, pebble, coturn, `orbita` ...), killed when dropped.
pub struct Daemon {
    name: String,
    child: Child,
}

impl Daemon {
    /// Takes charge of `child`; `name` is what failures call it.
    pub fn new(name: &str, child: Child) -> Daemon {
        Daemon {
            name: name.to_string(),
            child,
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has exited (not waiting).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// SIGTERM, then waits (`within` at most) for the exit; its status.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not stop within {within:?} of SIGTERM",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The flags of `orbita serve` (and `node`) for media on loopback with kernel-chosen ports, no
/// ICE-TCP and one worker.
pub const LOOPBACK_MEDIA_ARGS: [&str; 8] = [
    "--http-addr",
    "127.0.0.1:0",
    "--udp-addr",
    "127.0.0.1:0",
    "--tcp-addr",
    "off",
    "--workers",
    "1",
];

/// `orbita ARGS` as the tests start it: the test's `RUST_LOG` (else `warn`), no
/// `ORBITA_CONFIG` from the environment, stdin closed, stdout piped (for [`Proc`]), stderr
/// inherited. Adjust it (more environment, stderr piped) before [`Proc::spawn`].
pub fn orbita_command<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orbita"));
    cmd.args(args)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env_remove("ORBITA_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd
}

/// A child `orbita` (killed when dropped), its stdout lines as they come and, if its stderr
/// was piped, its stderr lines collected until it exits.
pub struct Proc {
    daemon: Daemon,
    /// Its stdout, line by line.
    pub lines: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<Vec<String>>>,
}

impl Proc {
    /// `orbita ARGS` from [`orbita_command`], as is.
    pub fn start<S: AsRef<std::ffi::OsStr>>(name: &str, args: &[S]) -> Proc {
        Proc::spawn(name, orbita_command(args))
    }

    /// Spawns `cmd` (made by [`orbita_command`]); `name` is what failures call it.
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = child.stderr.take().map(|err| {
            std::thread::spawn(move || {
                BufReader::new(err)
                    .lines()
                    .map_while(Result::ok)
                    .collect::<Vec<_>>()
            })
        });
        Proc {
            daemon: Daemon::new(name, child),
            lines,
            stderr,
        }
    }

    /// The first stdout line containing `needle` (within 30 s).
    pub fn wait_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(e) => {
                    let status = self.daemon.exited();
                    panic!(
                        "{}: no line with {needle:?} ({e}); status {status:?}",
                        self.daemon.name
                    )
                }
            }
        }
    }

    /// The word after `prefix` in the first stdout line that has it (within 30 s).
    pub fn wait_for(&mut self, prefix: &str) -> String {
        word_after(&self.wait_line(prefix), prefix).to_string()
    }

    /// SIGTERM, then waits (`within` at most) for an exit that must be a success; returns what
    /// it wrote on stderr if that was piped (else nothing).
    pub fn stop(&mut self, within: Duration) -> Vec<String> {
        let status = self.daemon.terminate(within);
        // Its stderr closed when it exited.
        let lines = self
            .stderr
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        assert!(
            status.success(),
            "{} exited with {status}; stderr: {lines:#?}",
            self.daemon.name
        );
        lines
    }

    /// SIGKILL, and reaps it.
    pub fn kill(&mut self) {
        self.daemon.kill();
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.daemon.id()
    }
}

/// The word after `prefix` in `line`.
pub fn word_after<'a>(line: &'a str, prefix: &str) -> &'a str {
    let rest = &line[line
        .find(prefix)
        .unwrap_or_else(|| panic!("{prefix:?} in {line:?}"))
        + prefix.len()..];
    rest.split_whitespace().next().unwrap()
}

/// Polls until something accepts TCP connections on `addr`, panicking (with `log()`, e.g. the
/// program's log) if `daemon` exits or `deadline` passes first.
pub async fn wait_listening(
    daemon: &mut Daemon,
    addr: SocketAddr,
    deadline: Instant,
    log: impl Fn() -> String,
) {
    loop {
        if let Some(status) = daemon.exited() {
            panic!("{} exited ({status}):\n{}", daemon.name, log());
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{} does not accept connections on {addr}:\n{}",
            daemon.name,
            log()
        );
        // Polling for the listener (the deadline bounds it).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ------------------------------------------------------------------ ports and directories

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> u16 {
    free_tcp_ports::<1>()[0]
}

/// `N` distinct TCP ports on 127.0.0.1 that were free a moment ago (all held at once).
pub fn free_tcp_ports<const N: usize>() -> [u16; N] {
    let held: [TcpListener; N] = std::array::from_fn(|_| TcpListener::bind("127.0.0.1:0").unwrap());
    held.map(|l| l.local_addr().unwrap().port())
}

/// A UDP port on 127.0.0.1 that was free a moment ago.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A directory under the system's temporary one, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a new one, `orbita-NAME-…` (unique to the process and the call).
    pub fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("orbita-{name}-{}-{nanos}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
