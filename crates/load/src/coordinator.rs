//! `orbita load coordinator`: request rate and latency of a coordinator (`orbita coordinator`)
//! with many registered nodes and many live sessions.
//!
//! One process plays both sides of the coordinator (docs/coordinator.md):
//!
//! 1. **Nodes.** `--nodes` fake session servers link over the real node endpoint
//!    ([`orbita_coordinator::node::connect`]: `CHALLENGE`, HMAC proof, `REGISTER_NODE`), each
//!    offering one app (`--rc-name`), send `HEARTBEAT`s at the interval the coordinator asks
//!    for (with their session count), and answer as `orbita node` does: `CREATE_SESSION` with
//!    `CONNECT_TO_SESSION {ip, port, code}` at once, `CONNECT_USER_TO_SESSION` with
//!    `SESSION_CONNECTION_ESTABLISHED`. They start nothing.
//! 2. **Fill.** `--clients` client WebSockets create sessions (`CREATE_SESSION`) until
//!    `--sessions` are live.
//! 3. **Phase `create`.** For `--duration` seconds every client sends `CREATE_SESSION`, waits
//!    for its answer (`CONNECT_TO_SESSION`, or `SERVERS_BUSY` / `ERROR`) and sends the next
//!    (a closed loop: `--clients` requests in flight). With `--create-mode churn` (the
//!    default) the node that got a new session ends its oldest one (`SESSION_ENDED`) whenever
//!    more than `--sessions` are live, so the registry stays at `--sessions`, as in a steady
//!    state where sessions start and end at the same rate; with `accumulate` they pile up.
//! 4. **Phase `join`.** The same, with `CONNECT_SESSION_WITH_CODE` for random codes known to
//!    be live (no sessions start or end meanwhile). Joins add participants to the sessions;
//!    nobody leaves.
//!
//! A request's latency is from sending it to its answer. The coordinator relays the node's
//! `SESSION_CONNECTION_ESTABLISHED` afterwards; the time to that message is reported too
//! (`established_ms`) but the client does not wait for it before its next request.
//!
//! The coordinator throttles code attempts per client address and messages per connection:
//! for a benchmark run it with `--set code_attempts_per_second=1000000 --set
//! code_attempt_burst=1000000 --code-max-misses 1000000 --set messages_per_second=1000000`,
//! and with `--code-length 6` for 10,000 sessions (at most half the code space is used).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use orbita_coordinator::node::{connect, NodeConfig, NodeLink};
use orbita_coordinator::verbs::{
    AppInfo, ClientRequest, FromNode, Heartbeat, Registration, ToClient, ToNode,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::procfs::ProcSample;
use crate::report::Percentiles;

/// What happens to the sessions created in the `create` phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CreateMode {
    /// Keep the registry at `--sessions`: a node given a new session ends its oldest one
    /// (`SESSION_ENDED`) while more than `--sessions` are live.
    Churn,
    /// Let sessions pile up.
    Accumulate,
}

/// Arguments of `orbita load coordinator`.
#[derive(clap::Args, Debug, Clone)]
pub struct CoordinatorLoadArgs {
    /// The coordinator: `ws://HOST:PORT` (clients use `/coordinator`, nodes
    /// `/coordinator/node`), or its client endpoint `ws://HOST:PORT/coordinator`.
    #[arg(long, default_value = "ws://127.0.0.1:7000")]
    pub url: String,
    /// The cluster secret the fake nodes prove (the coordinator's --cluster-secret).
    #[arg(
        long,
        env = "ORBITA_CLUSTER_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub secret: String,
    /// Fake nodes to link and register.
    #[arg(long, default_value_t = 1000)]
    pub nodes: usize,
    /// Live sessions to create before measuring (and to keep with --create-mode churn).
    #[arg(long, default_value_t = 10000)]
    pub sessions: usize,
    /// Client WebSockets, each with one request in flight.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds each measured phase lasts.
    #[arg(long, value_name = "SECS", default_value_t = 20.0)]
    pub duration: f64,
    /// The phases to measure, in order (create, join).
    #[arg(long, value_delimiter = ',', default_value = "create,join")]
    pub phases: Vec<Phase>,
    /// The app every node registers.
    #[arg(long, default_value = "bench")]
    pub rc_name: String,
    /// Sessions each node may hold (default: twice its share of --sessions, at least 2).
    #[arg(long)]
    pub max_sessions: Option<u32>,
    /// What happens to the sessions the create phase makes.
    #[arg(long, value_enum, default_value = "churn")]
    pub create_mode: CreateMode,
    /// Heartbeats name every session of the node as active (one registry update per session
    /// per heartbeat, as a node whose sessions all have users sends).
    #[arg(long)]
    pub heartbeat_active: bool,
    /// Node links set up at once.
    #[arg(long, default_value_t = 64)]
    pub link_concurrency: usize,
    /// Seconds the node links may take in all (nodes not registered by then are left out).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub link_timeout: f64,
    /// Seconds a request may wait for its answer (then it counts as an error).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,
    /// Seconds the fill may take at most.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub fill_timeout: f64,
    /// Process id of a local coordinator: its CPU time, threads, memory and open-files
    /// limit are read from /proc.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// Free text recorded in the report (e.g. which registry the coordinator used).
    #[arg(long)]
    pub label: Option<String>,
    /// Write the report as JSON to this file ("-": standard output, instead of the table).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// No progress line every second (the steps are still logged to stderr).
    #[arg(long)]
    pub quiet: bool,
}

/// A measured phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// `CREATE_SESSION`.
    Create,
    /// `CONNECT_SESSION_WITH_CODE` with live codes.
    Join,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Create => "create",
            Phase::Join => "join",
        }
    }
    fn verb(self) -> &'static str {
        match self {
            Phase::Create => "CREATE_SESSION",
            Phase::Join => "CONNECT_SESSION_WITH_CODE",
        }
    }
}

/// What was run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoordScenario {
    /// Client endpoint.
    pub client_url: String,
    /// Node endpoint.
    pub node_url: String,
    /// Nodes asked for.
    pub nodes: usize,
    /// Live sessions asked for.
    pub sessions: usize,
    /// Concurrent client connections (requests in flight).
    pub clients: usize,
    /// Seconds per measured phase.
    pub duration_s: f64,
    /// The app.
    pub rc_name: String,
    /// `max_sessions` each node registered.
    pub max_sessions_per_node: u32,
    /// What the create phase does to the session count.
    pub create_mode: CreateMode,
    /// Heartbeats name every session active.
    pub heartbeat_active: bool,
    /// The interval the coordinator asked for.
    pub heartbeat_interval_s: u64,
    /// `--label`.
    pub label: Option<String>,
}

/// Linking the nodes and filling the registry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Setup {
    /// Nodes linked and registered.
    pub nodes_linked: usize,
    /// Seconds to link them all.
    pub link_s: f64,
    /// Links that failed, by reason.
    pub link_errors: BTreeMap<String, u64>,
    /// Seconds to create the sessions.
    pub fill_s: f64,
    /// Sessions created per second while filling.
    pub fill_per_s: f64,
    /// Fill requests that failed, by kind.
    pub fill_errors: BTreeMap<String, u64>,
    /// Live sessions when the fill ended.
    pub live_sessions: i64,
}

/// One measured phase.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseReport {
    /// `create` or `join`.
    pub phase: String,
    /// The verb sent.
    pub verb: String,
    /// Requests answered or failed (sent before the end of the window).
    pub requests: u64,
    /// Requests answered with `CONNECT_TO_SESSION`.
    pub ok: u64,
    /// Failed requests by kind (`SERVERS_BUSY`, `ERROR RATE_LIMITED`, `timeout`, ...).
    pub errors: BTreeMap<String, u64>,
    /// Seconds from the first request to the last answer.
    pub window_s: f64,
    /// Successful requests per second.
    pub req_per_s: f64,
    /// Latency of the successful requests, send to `CONNECT_TO_SESSION`, in ms.
    pub latency_ms: Option<Percentiles>,
    /// Send to the relayed `SESSION_CONNECTION_ESTABLISHED`, in ms.
    pub established_ms: Option<Percentiles>,
    /// Live sessions (as the fake nodes count them) at the start and the end.
    pub live_sessions: (i64, i64),
    /// Sessions the fake nodes ended (`SESSION_ENDED`) to keep the count.
    pub sessions_ended: u64,
    /// The coordinator's CPU in the window (cores), with --server-pid.
    pub server_cpu_cores: Option<f64>,
    /// The coordinator's CPU time per successful request (us), with --server-pid.
    pub server_us_per_request: Option<f64>,
    /// The coordinator's threads (cores by thread name), with --server-pid.
    pub server_threads: BTreeMap<String, f64>,
    /// This process's CPU in the window (cores).
    pub load_cpu_cores: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CoordReport {
    /// What was run.
    pub scenario: CoordScenario,
    /// Linking and filling.
    pub setup: Setup,
    /// The measured phases.
    pub phases: Vec<PhaseReport>,
    /// The coordinator's RSS before linking and at the end (KiB), with --server-pid.
    pub server_rss_kb: Option<(u64, u64)>,
    /// Node links that closed during the run, and `ERROR`s the coordinator sent nodes.
    pub node_errors: BTreeMap<String, u64>,
    /// Anything that makes the figures doubtful.
    pub problems: Vec<String>,
}

impl PhaseReport {
    /// The one-line JSON summary printed after the table.
    pub fn json_line(&self) -> String {
        let p = |f: fn(&Percentiles) -> f64| self.latency_ms.as_ref().map(f);
        serde_json::json!({
            "phase": self.phase,
            "verb": self.verb,
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "req_per_s": round(self.req_per_s, 1),
            "p50_ms": p(|l| l.p50).map(|v| round(v, 3)),
            "p95_ms": p(|l| l.p95).map(|v| round(v, 3)),
            "p99_ms": p(|l| l.p99).map(|v| round(v, 3)),
            "max_ms": p(|l| l.max).map(|v| round(v, 3)),
            "live_sessions": [self.live_sessions.0, self.live_sessions.1],
            "server_cpu_cores": self.server_cpu_cores.map(|v| round(v, 3)),
        })
        .to_string()
    }
}

fn round(v: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (v * m).round() / m
}

fn opt(v: Option<f64>, d: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.d$}"))
}

fn errors_text(e: &BTreeMap<String, u64>) -> String {
    if e.is_empty() {
        return "none".into();
    }
    e.iter()
        .map(|(k, v)| format!("{v}x {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl CoordReport {
    /// The table printed at the end.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let s = &self.scenario;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "coordinator {} | {} nodes (max {} sessions each), {} sessions, {} clients, {:.0} s per phase, create mode {:?}, heartbeat every {} s{}{}",
            s.client_url,
            self.setup.nodes_linked,
            s.max_sessions_per_node,
            s.sessions,
            s.clients,
            s.duration_s,
            s.create_mode,
            s.heartbeat_interval_s,
            if s.heartbeat_active { " (all sessions active)" } else { "" },
            s.label.as_deref().map(|l| format!(" | {l}")).unwrap_or_default(),
        );
        let _ = writeln!(
            o,
            "setup: linked {} nodes in {:.1} s (link errors: {}); filled {} live sessions in {:.1} s ({:.0} CREATE_SESSION/s; errors: {})",
            self.setup.nodes_linked,
            self.setup.link_s,
            errors_text(&self.setup.link_errors),
            self.setup.live_sessions,
            self.setup.fill_s,
            self.setup.fill_per_s,
            errors_text(&self.setup.fill_errors),
        );
        let _ = writeln!(
            o,
            "{:<7} {:>9} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9} {:>12} {:>13} {:>11} {:>9}  errors",
            "phase",
            "requests",
            "ok",
            "req/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "estab p99",
            "sessions",
            "coord cores",
            "us/req"
        );
        for p in &self.phases {
            let l = p.latency_ms.as_ref();
            let _ = writeln!(
                o,
                "{:<7} {:>9} {:>9} {:>10.1} {:>9} {:>9} {:>9} {:>9} {:>12} {:>13} {:>11} {:>9}  {}",
                p.phase,
                p.requests,
                p.ok,
                p.req_per_s,
                opt(l.map(|l| l.p50), 2),
                opt(l.map(|l| l.p95), 2),
                opt(l.map(|l| l.p99), 2),
                opt(l.map(|l| l.max), 1),
                opt(p.established_ms.as_ref().map(|l| l.p99), 2),
                format!("{}->{}", p.live_sessions.0, p.live_sessions.1),
                opt(p.server_cpu_cores, 2),
                opt(p.server_us_per_request, 0),
                errors_text(&p.errors),
            );
        }
        if let Some((a, b)) = self.server_rss_kb {
            let _ = writeln!(
                o,
                "coordinator RSS {:.1} -> {:.1} MiB",
                a as f64 / 1024.0,
                b as f64 / 1024.0
            );
        }
        if !self.node_errors.is_empty() {
            let _ = writeln!(o, "node link problems: {}", errors_text(&self.node_errors));
        }
        for p in &self.problems {
            let _ = writeln!(o, "problem: {p}");
        }
        o
    }
}

// ------------------------------------------------------------------------------ shared state

#[derive(Default)]
struct Shared {
    /// Codes live on the fake nodes.
    live: Mutex<HashSet<String>>,
    live_count: AtomicI64,
    /// Target for churn; 0: churn off.
    churn_above: AtomicI64,
    ended: AtomicU64,
    /// Node problems by kind.
    node_errors: Mutex<BTreeMap<String, u64>>,
    /// Progress of the current phase.
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Shared {
    fn node_error(&self, kind: String) {
        *self
            .node_errors
            .lock()
            .expect("lock")
            .entry(kind)
            .or_insert(0) += 1;
    }
}

struct NodeSpec {
    name: String,
    ip: String,
    port: String,
    heartbeat_active: bool,
}

/// A fake node: answers like `orbita node` and heartbeats.
async fn run_node(
    mut link: NodeLink,
    spec: NodeSpec,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let period = Duration::from_secs(link.heartbeat_interval_seconds.max(1));
    // Spread the heartbeats of all nodes over the interval.
    let offset = Duration::from_millis(rand::rng().random_range(0..period.as_millis() as u64));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sessions: VecDeque<String> = VecDeque::new();
    // A previous run's sessions of this name: end them (the coordinator believes we hold them).
    for code in std::mem::take(&mut link.sessions) {
        link.send(FromNode::SessionEnded {
            code,
            reason: "ended".into(),
        })
        .await;
    }
    let forget = |code: &str, sessions: &mut VecDeque<String>| -> bool {
        if let Some(i) = sessions.iter().position(|c| c == code) {
            sessions.remove(i);
            shared.live.lock().expect("lock").remove(code);
            shared.live_count.fetch_sub(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    };
    loop {
        tokio::select! {
            msg = link.recv() => {
                let Some(msg) = msg else {
                    if !*stop.borrow() {
                        shared.node_error("node link closed by the coordinator".into());
                    }
                    return;
                };
                let answers: Vec<FromNode> = match msg {
                    ToNode::CreateSession { code, .. } => {
                        let mut out = vec![FromNode::ConnectToSession {
                            ip: spec.ip.clone(),
                            port: spec.port.clone(),
                            code: code.clone(),
                            host_key: None,
                        }];
                        sessions.push_back(code.clone());
                        shared.live.lock().expect("lock").insert(code);
                        let live = shared.live_count.fetch_add(1, Ordering::Relaxed) + 1;
                        let above = shared.churn_above.load(Ordering::Relaxed);
                        if above > 0 && live > above && sessions.len() > 1 {
                            let old = sessions.front().cloned().expect("len > 1");
                            forget(&old, &mut sessions);
                            shared.ended.fetch_add(1, Ordering::Relaxed);
                            out.push(FromNode::SessionEnded { code: old, reason: "ended".into() });
                        }
                        out
                    }
                    ToNode::ConnectUserToSession { code, user_id } => {
                        if sessions.contains(&code) {
                            vec![FromNode::SessionConnectionEstablished {
                                webrtc_connection_data: format!("http://{}:{}/r/{code}", spec.ip, spec.port),
                                code,
                                user_id,
                            }]
                        } else {
                            vec![FromNode::SessionEnded { code, reason: "ended".into() }]
                        }
                    }
                    ToNode::EndSession { code, .. } => {
                        forget(&code, &mut sessions);
                        Vec::new()
                    }
                    ToNode::CallSettings(_) => Vec::new(),
                    ToNode::Error { code, message } => {
                        shared.node_error(format!("coordinator ERROR {code} to a node: {}", short(&message)));
                        Vec::new()
                    }
                    ToNode::Challenge { .. } | ToNode::Registered { .. } => Vec::new(),
                };
                for a in answers {
                    if !link.send(a).await {
                        shared.node_error(format!("{}: node link closed", spec.name));
                        return;
                    }
                }
            }
            _ = heartbeat.tick() => {
                let hb = Heartbeat {
                    sessions: sessions.len() as u32,
                    participants: 0,
                    cpu: 0.0,
                    active: if spec.heartbeat_active { sessions.iter().cloned().collect() } else { Vec::new() },
                    ..Heartbeat::default()
                };
                if !link.send(FromNode::Heartbeat(hb)).await {
                    shared.node_error("node link closed (heartbeat)".into());
                    return;
                }
            }
            _ = stop.changed() => return,
        }
    }
}

fn short(text: &str) -> String {
    let first = text.lines().next().unwrap_or(text);
    let mut s: String = first.chars().take(160).collect();
    if s.len() < first.len() {
        s.push_str("...");
    }
    s
}

// ------------------------------------------------------------------------------ clients

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Client {
    ws: Option<Ws>,
    /// Requests whose `SESSION_CONNECTION_ESTABLISHED` has not come yet: (code, sent).
    waiting_established: VecDeque<(String, Instant)>,
}

async fn open_client(url: &str) -> anyhow::Result<Ws> {
    // TCP_NODELAY, as browsers set it.
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .with_context(|| format!("client WebSocket {url}"))?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => match serde_json::from_str::<ToClient>(t.as_str()) {
                Ok(ToClient::Welcome { .. }) => return Ok(ws),
                _ => bail!("{url}: expected WELCOME, got {}", short(t.as_str())),
            },
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            Ok(other) => bail!("{url}: expected WELCOME, got {other:?}"),
            Err(_) => bail!("{url}: no WELCOME within 10 s"),
        }
    }
}

/// Results of one client's requests in a phase.
#[derive(Default)]
struct Tally {
    ok: u64,
    latencies_us: Vec<u32>,
    established_us: Vec<u32>,
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn error(&mut self, kind: impl Into<String>) {
        *self.errors.entry(kind.into()).or_insert(0) += 1;
    }
    fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        self.latencies_us.extend(other.latencies_us);
        self.established_us.extend(other.established_us);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_insert(0) += v;
        }
    }
}

enum Answer {
    Ok,
    Failed(String),
    /// The connection is unusable.
    Broken(String),
}

fn us(d: Duration) -> u32 {
    d.as_micros().min(u32::MAX as u128) as u32
}

/// Sends one request and reads until its answer (other messages are bookkept or skipped).
async fn request(
    client: &mut Client,
    text: &str,
    expect_code: Option<&str>,
    timeout: Duration,
    tally: &mut Tally,
) -> Answer {
    let Some(ws) = client.ws.as_mut() else {
        return Answer::Broken("not connected".into());
    };
    let sent = Instant::now();
    if let Err(e) = ws.send(Message::Text(text.to_string().into())).await {
        return Answer::Broken(format!("send failed: {}", short(&e.to_string())));
    }
    let deadline = tokio::time::Instant::from_std(sent + timeout);
    loop {
        let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Answer::Broken(format!("timeout (no answer in {timeout:?})")),
            Ok(None) => return Answer::Broken("connection closed by the coordinator".into()),
            Ok(Some(Err(e))) => {
                return Answer::Broken(format!("connection error: {}", short(&e.to_string())))
            }
            Ok(Some(Ok(m))) => m,
        };
        let text = match msg {
            Message::Text(t) => t,
            Message::Close(f) => {
                return Answer::Broken(format!(
                    "closed by the coordinator: {}",
                    f.map(|f| format!("{} {}", f.code, f.reason))
                        .unwrap_or_default()
                ))
            }
            _ => continue,
        };
        // Notices about planned sessions, not answers.
        if text.contains("\"SESSION_ENDING\"") || text.contains("\"SESSION_EXTENDED\"") {
            continue;
        }
        let Ok(msg) = serde_json::from_str::<ToClient>(text.as_str()) else {
            return Answer::Failed(format!("unparsable answer: {}", short(text.as_str())));
        };
        match msg {
            ToClient::ConnectToSession { code, .. } => {
                let took = sent.elapsed();
                if let Some(want) = expect_code {
                    if want != code {
                        return Answer::Failed("CONNECT_TO_SESSION for another code".into());
                    }
                }
                tally.latencies_us.push(us(took));
                tally.ok += 1;
                let w = &mut client.waiting_established;
                w.push_back((code, sent));
                while w.len() > 64 {
                    w.pop_front();
                }
                return Answer::Ok;
            }
            ToClient::SessionConnectionEstablished { code, .. } => {
                let w = &mut client.waiting_established;
                if let Some(i) = w.iter().position(|(c, _)| *c == code) {
                    let (_, at) = w.remove(i).expect("found");
                    tally.established_us.push(us(at.elapsed()));
                }
            }
            ToClient::SessionEnded { .. } | ToClient::Welcome { .. } => {}
            ToClient::ServersBusy => return Answer::Failed("SERVERS_BUSY".into()),
            ToClient::SessionNotExist => return Answer::Failed("SESSION_NOT_EXIST".into()),
            ToClient::Error(e) => return Answer::Failed(format!("ERROR {}", e.code.as_str())),
            other => {
                return Answer::Failed(format!("unexpected answer {}", short(&other.to_json())))
            }
        }
    }
}

/// What a client does in a phase.
#[derive(Clone)]
enum Work {
    /// Create sessions while tickets last (`None`: until the deadline).
    Create(Option<Arc<AtomicI64>>),
    /// Join these codes at random.
    Join(Arc<Vec<String>>),
}

async fn client_loop(
    mut client: Client,
    url: String,
    rc_name: String,
    work: Work,
    deadline: Instant,
    timeout: Duration,
    shared: Arc<Shared>,
) -> (Client, Tally) {
    let mut tally = Tally::default();
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let create = serde_json::to_string(&ClientRequest::CreateSession { rc_name }).expect("json");
    while Instant::now() < deadline {
        if client.ws.is_none() {
            match open_client(&url).await {
                Ok(ws) => client.ws = Some(ws),
                Err(e) => {
                    tally.error(format!("reconnect failed: {}", short(&format!("{e:#}"))));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
        }
        let (text, code) = match &work {
            Work::Create(tickets) => {
                if let Some(t) = tickets {
                    if t.fetch_sub(1, Ordering::Relaxed) <= 0 {
                        break;
                    }
                }
                (create.clone(), None)
            }
            Work::Join(codes) => {
                let code = codes[rng.random_range(0..codes.len())].clone();
                let text = serde_json::to_string(&ClientRequest::ConnectSessionWithCode {
                    code: code.clone(),
                })
                .expect("json");
                (text, Some(code))
            }
        };
        let answer = request(&mut client, &text, code.as_deref(), timeout, &mut tally).await;
        let failed = !matches!(answer, Answer::Ok);
        match answer {
            Answer::Ok => {
                shared.ok.fetch_add(1, Ordering::Relaxed);
            }
            Answer::Failed(kind) => tally.error(kind),
            Answer::Broken(kind) => {
                tally.error(kind);
                client.ws = None;
                client.waiting_established.clear();
            }
        }
        if failed {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            if let Work::Create(Some(t)) = &work {
                // Give the ticket back: the fill needs that many sessions.
                t.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    // Collect late SESSION_CONNECTION_ESTABLISHED messages for a moment.
    if let Some(ws) = client.ws.as_mut() {
        let until = tokio::time::Instant::now() + Duration::from_millis(100);
        while !client.waiting_established.is_empty() {
            match tokio::time::timeout_at(until, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    if let Ok(ToClient::SessionConnectionEstablished { code, .. }) =
                        serde_json::from_str::<ToClient>(t.as_str())
                    {
                        let w = &mut client.waiting_established;
                        if let Some(i) = w.iter().position(|(c, _)| *c == code) {
                            let (_, at) = w.remove(i).expect("found");
                            tally.established_us.push(us(at.elapsed()));
                        }
                    }
                }
                Ok(Some(Ok(_))) => {}
                _ => break,
            }
        }
    }
    client.waiting_established.clear();
    (client, tally)
}

// ------------------------------------------------------------------------------ the run

/// The client and node endpoints of `url`.
pub fn endpoints(url: &str) -> anyhow::Result<(String, String)> {
    let url = url.trim_end_matches('/');
    anyhow::ensure!(
        url.starts_with("ws://") || url.starts_with("wss://"),
        "--url {url:?} must start with ws:// or wss://"
    );
    let base = url
        .strip_suffix("/coordinator/node")
        .or_else(|| url.strip_suffix("/coordinator"))
        .unwrap_or(url);
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    anyhow::ensure!(
        !base[scheme_end..].contains('/'),
        "--url {url:?}: give ws://HOST:PORT or ws://HOST:PORT/coordinator"
    );
    Ok((
        format!("{base}/coordinator"),
        format!("{base}/coordinator/node"),
    ))
}

/// Summarises a phase's tallies.
pub fn phase_report(
    phase: Phase,
    tally_ok: u64,
    latencies_us: &[u32],
    established_us: &[u32],
    errors: BTreeMap<String, u64>,
    window: Duration,
) -> PhaseReport {
    let ms = |v: &[u32]| Percentiles::of(v.iter().map(|&u| u as f64 / 1000.0).collect());
    let window_s = window.as_secs_f64();
    let failed: u64 = errors.values().sum();
    PhaseReport {
        phase: phase.name().into(),
        verb: phase.verb().into(),
        requests: tally_ok + failed,
        ok: tally_ok,
        errors,
        window_s,
        req_per_s: if window_s > 0.0 {
            tally_ok as f64 / window_s
        } else {
            0.0
        },
        latency_ms: ms(latencies_us),
        established_ms: ms(established_us),
        live_sessions: (0, 0),
        sessions_ended: 0,
        server_cpu_cores: None,
        server_us_per_request: None,
        server_threads: BTreeMap::new(),
        load_cpu_cores: 0.0,
    }
}

/// The soft open-files limit of process `pid` (/proc/PID/limits).
fn fd_limit_of(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    if soft == "unlimited" {
        Some(u64::MAX)
    } else {
        soft.parse().ok()
    }
}

struct Progress {
    enabled: bool,
}

impl Progress {
    fn spawn(
        &self,
        label: String,
        shared: Arc<Shared>,
        start: Instant,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if !self.enabled {
            return None;
        }
        Some(tokio::spawn(async move {
            let mut last = (Instant::now(), shared.ok.load(Ordering::Relaxed));
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = Instant::now();
                let ok = shared.ok.load(Ordering::Relaxed);
                let rate =
                    (ok - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
                last = (now, ok);
                eprintln!(
                    "[{:>4.0}s {label}] ok {ok} ({rate:.0}/s) failed {} | live sessions {}",
                    now.duration_since(start).as_secs_f64(),
                    shared.failed.load(Ordering::Relaxed),
                    shared.live_count.load(Ordering::Relaxed),
                );
            }
        }))
    }
}

/// Runs the clients over `work` until `deadline` (or the tickets run out).
async fn run_clients(
    clients: &mut Vec<Client>,
    url: &str,
    rc_name: &str,
    work: Work,
    deadline: Instant,
    timeout: Duration,
    shared: &Arc<Shared>,
) -> anyhow::Result<Tally> {
    let mut tasks = Vec::new();
    for client in clients.drain(..) {
        tasks.push(tokio::spawn(client_loop(
            client,
            url.to_string(),
            rc_name.to_string(),
            work.clone(),
            deadline,
            timeout,
            shared.clone(),
        )));
    }
    let mut tally = Tally::default();
    for t in tasks {
        let (client, t) = t.await.context("a client task panicked")?;
        clients.push(client);
        tally.merge(t);
    }
    Ok(tally)
}

/// Run the scenario.
pub async fn run(args: &CoordinatorLoadArgs) -> anyhow::Result<CoordReport> {
    let (client_url, node_url) = endpoints(&args.url)?;
    anyhow::ensure!(args.nodes > 0, "--nodes must be at least 1");
    anyhow::ensure!(args.clients > 0, "--clients must be at least 1");
    anyhow::ensure!(
        args.duration.is_finite() && args.duration > 0.0,
        "--duration must be a number of seconds > 0"
    );
    for (v, name) in [
        (args.timeout, "timeout"),
        (args.link_timeout, "link-timeout"),
        (args.fill_timeout, "fill-timeout"),
    ] {
        anyhow::ensure!(
            v.is_finite() && v > 0.0,
            "--{name} must be a number of seconds > 0"
        );
    }
    anyhow::ensure!(
        !args.secret.is_empty(),
        "--secret (the cluster secret) is empty"
    );
    let per_node = args.sessions.div_ceil(args.nodes).max(1) as u32;
    let max_sessions = args.max_sessions.unwrap_or(per_node * 2).max(1);
    anyhow::ensure!(
        (max_sessions as u64) * (args.nodes as u64) >= args.sessions as u64,
        "--max-sessions {max_sessions} x {} nodes cannot hold {} sessions",
        args.nodes,
        args.sessions
    );
    if args.phases.contains(&Phase::Join) {
        anyhow::ensure!(args.sessions > 0, "the join phase needs --sessions > 0");
    }
    // Every node link and client is a socket here and at the coordinator.
    let need = (args.nodes + args.clients + 64) as u64;
    let have = crate::raise_fd_limit();
    if have < need {
        bail!(
            "the open-files limit is {have}, below the {need} this run needs ({} node links + {} clients + spare): raise it (ulimit -n) or use fewer --nodes",
            args.nodes,
            args.clients
        );
    }
    let mut problems = Vec::new();
    if let Some(pid) = args.server_pid {
        match fd_limit_of(pid) {
            Some(l) if l < need => bail!(
                "the coordinator (pid {pid}) may open only {l} files, below the {need} this run needs: start it after `ulimit -n {need}` (or higher)"
            ),
            Some(_) => {}
            None => problems.push(format!("could not read /proc/{pid}/limits")),
        }
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let progress = Progress {
        enabled: !args.quiet,
    };
    let shared = Arc::new(Shared::default());
    let rss_before = args
        .server_pid
        .and_then(|p| ProcSample::take(Some(p)).ok())
        .map(|s| s.rss_kb);
    let (stop_tx, stop_rx) = watch::channel(false);

    // 1. Link the nodes.
    let mut setup = Setup::default();
    let t0 = Instant::now();
    eprintln!("linking {} nodes to {node_url}", args.nodes);
    let app = AppInfo {
        rc_name: args.rc_name.clone(),
        info: serde_json::json!({"description": [{"en": "orbita load coordinator"}]}),
    };
    let mut heartbeat_interval = 0;
    let mut linked = 0usize;
    let mut node_tasks = Vec::new();
    {
        let sem = Arc::new(tokio::sync::Semaphore::new(args.link_concurrency.max(1)));
        let mut pending = Vec::new();
        for i in 0..args.nodes {
            let port = (20000 + i % 40000).to_string();
            let config = NodeConfig {
                url: node_url.clone(),
                secret: args.secret.clone(),
                registration: Registration {
                    server_name: format!("bench-node-{i:05}"),
                    ip: "127.0.0.1".into(),
                    port,
                    max_sessions,
                    apps: vec![app.clone()],
                    auth: String::new(),
                    recording_slots: 0,
                    public_url: None,
                    calls: Vec::new(),
                },
                tls: None,
            };
            let sem = sem.clone();
            pending.push(tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                let link = tokio::time::timeout(Duration::from_secs(30), connect(&config)).await;
                (config, link)
            }));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(args.link_timeout);
        for p in pending {
            let abort = p.abort_handle();
            let Ok(done) = tokio::time::timeout_at(deadline, p).await else {
                abort.abort();
                *setup
                    .link_errors
                    .entry(format!(
                        "not registered within --link-timeout {} s",
                        args.link_timeout
                    ))
                    .or_insert(0) += 1;
                continue;
            };
            let (config, link) = done.context("a node link task panicked")?;
            let reg = config.registration;
            match link {
                Ok(Ok(link)) => {
                    linked += 1;
                    heartbeat_interval = link.heartbeat_interval_seconds;
                    node_tasks.push(tokio::spawn(run_node(
                        link,
                        NodeSpec {
                            name: reg.server_name,
                            ip: reg.ip,
                            port: reg.port,
                            heartbeat_active: args.heartbeat_active,
                        },
                        shared.clone(),
                        stop_rx.clone(),
                    )));
                }
                Ok(Err(e)) => *setup.link_errors.entry(short(&e)).or_insert(0) += 1,
                Err(_) => {
                    *setup
                        .link_errors
                        .entry("no REGISTERED within 30 s".into())
                        .or_insert(0) += 1
                }
            }
        }
    }
    setup.nodes_linked = linked;
    setup.link_s = t0.elapsed().as_secs_f64();
    if linked == 0 {
        bail!(
            "no node could link to {node_url}: {}",
            errors_text(&setup.link_errors)
        );
    }
    if !setup.link_errors.is_empty() {
        let msg = format!(
            "{} of {} node links failed: {}",
            args.nodes - linked,
            args.nodes,
            errors_text(&setup.link_errors)
        );
        eprintln!("{msg}");
        problems.push(msg);
    }
    eprintln!(
        "linked {linked} nodes in {:.1} s; opening {} clients to {client_url}",
        setup.link_s, args.clients
    );

    // 2. Clients, then the fill.
    let mut clients = Vec::new();
    for _ in 0..args.clients {
        clients.push(Client {
            ws: Some(open_client(&client_url).await?),
            waiting_established: VecDeque::new(),
        });
    }
    let fill_start = Instant::now();
    let tickets = Arc::new(AtomicI64::new(args.sessions as i64));
    let fill_deadline = fill_start + Duration::from_secs_f64(args.fill_timeout);
    let shown = progress.spawn("fill".into(), shared.clone(), fill_start);
    let fill = run_clients(
        &mut clients,
        &client_url,
        &args.rc_name,
        Work::Create(Some(tickets.clone())),
        fill_deadline,
        timeout,
        &shared,
    )
    .await?;
    if let Some(h) = shown {
        h.abort();
    }
    setup.fill_s = fill_start.elapsed().as_secs_f64();
    setup.fill_per_s = fill.ok as f64 / setup.fill_s.max(1e-9);
    setup.fill_errors = fill.errors;
    // Confirmations race the answers a little: let the count settle.
    tokio::time::sleep(Duration::from_millis(200)).await;
    setup.live_sessions = shared.live_count.load(Ordering::Relaxed);
    if (setup.live_sessions as usize) < args.sessions {
        let msg = format!(
            "the fill reached only {} of {} live sessions in {:.0} s (errors: {})",
            setup.live_sessions,
            args.sessions,
            setup.fill_s,
            errors_text(&setup.fill_errors)
        );
        if setup.live_sessions == 0 {
            bail!("{msg}");
        }
        problems.push(msg);
    }
    eprintln!(
        "filled {} sessions in {:.1} s ({:.0}/s; errors: {})",
        setup.live_sessions,
        setup.fill_s,
        setup.fill_per_s,
        errors_text(&setup.fill_errors)
    );

    // 3. The measured phases.
    let mut phases = Vec::new();
    for &phase in &args.phases {
        shared.ok.store(0, Ordering::Relaxed);
        shared.failed.store(0, Ordering::Relaxed);
        let ended0 = shared.ended.load(Ordering::Relaxed);
        let work = match phase {
            Phase::Create => {
                if args.create_mode == CreateMode::Churn {
                    shared
                        .churn_above
                        .store(args.sessions.max(1) as i64, Ordering::Relaxed);
                }
                Work::Create(None)
            }
            Phase::Join => {
                shared.churn_above.store(0, Ordering::Relaxed);
                let codes: Vec<String> =
                    shared.live.lock().expect("lock").iter().cloned().collect();
                if codes.is_empty() {
                    problems.push("join phase skipped: no live session".into());
                    continue;
                }
                Work::Join(Arc::new(codes))
            }
        };
        let live0 = shared.live_count.load(Ordering::Relaxed);
        let server0 = args.server_pid.and_then(|p| ProcSample::take(Some(p)).ok());
        let me0 = ProcSample::take(None).ok();
        let start = Instant::now();
        let shown = progress.spawn(phase.name().into(), shared.clone(), start);
        let tally = run_clients(
            &mut clients,
            &client_url,
            &args.rc_name,
            work,
            start + Duration::from_secs_f64(args.duration),
            timeout,
            &shared,
        )
        .await?;
        let window = start.elapsed();
        if let Some(h) = shown {
            h.abort();
        }
        shared.churn_above.store(0, Ordering::Relaxed);
        let server1 = args.server_pid.and_then(|p| ProcSample::take(Some(p)).ok());
        let me1 = ProcSample::take(None).ok();
        let mut report = phase_report(
            phase,
            tally.ok,
            &tally.latencies_us,
            &tally.established_us,
            tally.errors,
            window,
        );
        report.live_sessions = (live0, shared.live_count.load(Ordering::Relaxed));
        report.sessions_ended = shared.ended.load(Ordering::Relaxed) - ended0;
        if let (Some(a), Some(b)) = (&server1, &server0) {
            report.server_cpu_cores = Some(a.cores_since(b));
            if report.ok > 0 {
                report.server_us_per_request =
                    Some(a.cpu_seconds_since(b) * 1e6 / report.ok as f64);
            }
            report.server_threads = a.thread_cores_since(b);
        }
        if let (Some(a), Some(b)) = (&me1, &me0) {
            report.load_cpu_cores = a.cores_since(b);
            if report.load_cpu_cores > 0.9 {
                problems.push(format!(
                    "{} phase: the load generator used {:.2} cores: it may be the bottleneck",
                    phase.name(),
                    report.load_cpu_cores
                ));
            }
        }
        eprintln!("{}", report.json_line());
        phases.push(report);
    }

    // Stop: close the clients and the node links.
    for c in &mut clients {
        if let Some(ws) = c.ws.as_mut() {
            let _ = ws.close(None).await;
        }
    }
    let _ = stop_tx.send(true);
    for t in node_tasks {
        let _ = t.await;
    }
    let rss_after = args
        .server_pid
        .and_then(|p| ProcSample::take(Some(p)).ok())
        .map(|s| s.rss_kb);
    let node_errors = shared.node_errors.lock().expect("lock").clone();
    if !node_errors.is_empty() {
        problems.push(format!("node link problems: {}", errors_text(&node_errors)));
    }
    Ok(CoordReport {
        scenario: CoordScenario {
            client_url,
            node_url,
            nodes: args.nodes,
            sessions: args.sessions,
            clients: args.clients,
            duration_s: args.duration,
            rc_name: args.rc_name.clone(),
            max_sessions_per_node: max_sessions,
            create_mode: args.create_mode,
            heartbeat_active: args.heartbeat_active,
            heartbeat_interval_s: heartbeat_interval,
            label: args.label.clone(),
        },
        setup,
        phases,
        server_rss_kb: rss_before.zip(rss_after),
        node_errors,
        problems,
    })
}

/// `orbita load coordinator`: run, print the table and one JSON line per phase (stdout), and
/// write the JSON report.
pub async fn run_cli(args: CoordinatorLoadArgs) -> anyhow::Result<()> {
    let report = run(&args).await?;
    let json = serde_json::to_string_pretty(&report)?;
    match args.json.as_deref() {
        Some(p) if p.as_os_str() == "-" => println!("{json}"),
        other => {
            if let Some(p) = other {
                std::fs::write(p, json + "\n")
                    .with_context(|| format!("writing {}", p.display()))?;
            }
            print!("{}", report.table());
            for p in &report.phases {
                println!("{}", p.json_line());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_a_mode_of_orbita_load() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            load: crate::cli::LoadArgs,
        }
        let cli = Cli::parse_from([
            "orbita",
            "coordinator",
            "--url",
            "ws://127.0.0.1:7100",
            "--secret",
            "s",
            "--nodes",
            "5",
            "--phases",
            "join",
            "--create-mode",
            "accumulate",
        ]);
        let Some(crate::cli::LoadMode::Coordinator(c)) = cli.load.mode else {
            panic!("no coordinator mode");
        };
        assert_eq!((c.nodes, c.sessions, c.clients), (5, 10000, 32));
        assert_eq!(c.phases, [Phase::Join]);
        assert_eq!(c.create_mode, CreateMode::Accumulate);
        assert_eq!(c.url, "ws://127.0.0.1:7100");
        // Without the mode, `orbita load` is the room load as before.
        assert!(Cli::parse_from(["orbita", "--rooms", "2"])
            .load
            .mode
            .is_none());
    }

    #[test]
    fn endpoints_from_a_base_or_the_client_url() {
        let want = (
            "ws://127.0.0.1:7000/coordinator".to_string(),
            "ws://127.0.0.1:7000/coordinator/node".to_string(),
        );
        assert_eq!(endpoints("ws://127.0.0.1:7000").unwrap(), want);
        assert_eq!(endpoints("ws://127.0.0.1:7000/").unwrap(), want);
        assert_eq!(endpoints("ws://127.0.0.1:7000/coordinator").unwrap(), want);
        assert_eq!(
            endpoints("ws://127.0.0.1:7000/coordinator/node").unwrap(),
            want
        );
        assert!(endpoints("http://127.0.0.1:7000").is_err());
        assert!(endpoints("ws://127.0.0.1:7000/ws").is_err());
    }

    #[test]
    fn phase_report_counts_rates_and_percentiles() {
        // 1..=1000 ms: nearest-rank p50 500, p95 950, p99 990.
        let lat: Vec<u32> = (1..=1000).map(|ms| ms * 1000).collect();
        let mut errors = BTreeMap::new();
        errors.insert("SERVERS_BUSY".to_string(), 3);
        errors.insert("timeout".to_string(), 2);
        let r = phase_report(Phase::Join, 1000, &lat, &[], errors, Duration::from_secs(4));
        assert_eq!(r.phase, "join");
        assert_eq!(r.verb, "CONNECT_SESSION_WITH_CODE");
        assert_eq!((r.requests, r.ok), (1005, 1000));
        assert_eq!(r.req_per_s, 250.0);
        let l = r.latency_ms.unwrap();
        assert_eq!(
            (l.n, l.p50, l.p95, l.p99, l.max),
            (1000, 500.0, 950.0, 990.0, 1000.0)
        );
        assert!(r.established_ms.is_none());
        let line: serde_json::Value = serde_json::from_str(&r.json_line()).unwrap();
        assert_eq!(line["requests"], 1005);
        assert_eq!(line["p99_ms"], 990.0);
        assert_eq!(line["errors"]["SERVERS_BUSY"], 3);
        assert_eq!(line["req_per_s"], 250.0);

        let empty = phase_report(Phase::Create, 0, &[], &[], BTreeMap::new(), Duration::ZERO);
        assert_eq!((empty.requests, empty.req_per_s), (0, 0.0));
        assert!(empty.latency_ms.is_none());
        let line: serde_json::Value = serde_json::from_str(&empty.json_line()).unwrap();
        assert!(line["p99_ms"].is_null());
    }

    #[test]
    fn the_table_names_every_phase_and_error() {
        let mut errors = BTreeMap::new();
        errors.insert("ERROR NODE_TIMEOUT".to_string(), 1);
        let phase = phase_report(
            Phase::Create,
            10,
            &[1000; 10],
            &[2000; 10],
            errors,
            Duration::from_secs(1),
        );
        let report = CoordReport {
            scenario: CoordScenario {
                client_url: "ws://x/coordinator".into(),
                node_url: "ws://x/coordinator/node".into(),
                nodes: 2,
                sessions: 4,
                clients: 1,
                duration_s: 1.0,
                rc_name: "bench".into(),
                max_sessions_per_node: 4,
                create_mode: CreateMode::Churn,
                heartbeat_active: false,
                heartbeat_interval_s: 5,
                label: Some("in-memory".into()),
            },
            setup: Setup {
                nodes_linked: 2,
                live_sessions: 4,
                ..Setup::default()
            },
            phases: vec![phase],
            server_rss_kb: None,
            node_errors: BTreeMap::new(),
            problems: vec![],
        };
        let t = report.table();
        assert!(t.contains("create"), "{t}");
        assert!(t.contains("1x ERROR NODE_TIMEOUT"), "{t}");
        assert!(t.contains("in-memory"), "{t}");
        let back: CoordReport =
            serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(back.phases, report.phases);
    }
}
