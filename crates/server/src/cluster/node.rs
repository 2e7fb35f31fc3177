//! `orbita node`: a media server (as `orbita serve`) that links to a coordinator.
//!
//! The node registers its app catalogue (`rc_name` -> command line and per-language
//! descriptions), its session limit and where clients reach it; it sends `HEARTBEAT`s with its
//! load and answers the coordinator:
//!
//! - `CREATE_SESSION`: a room with the coordinator's code ([`RoomRegistry::create_with_code`]);
//!   when the app has a command, the program is started with `ORBITA_WHIP_URL`,
//!   `ORBITA_WHIP_TOKEN` and `ORBITA_SESSION_CODE` in its environment and the input of the
//!   participant holding control on its stdin (JSON lines); answer `CONNECT_TO_SESSION`.
//! - `CONNECT_USER_TO_SESSION`: `SESSION_CONNECTION_ESTABLISHED` with `<public url>/r/<code>`.
//! - `END_SESSION`: the room is closed and the app stopped.
//!
//! The node reports `SESSION_ENDED` itself when the room ended (everyone left: `empty`), when
//! nothing happened in it for `session_idle_secs` (`idle`), or when the app exited
//! (`app_crashed`; or the app is restarted, `app_exit = "restart"`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use orbita_coordinator::node::{connect, NodeConfig, NodeLink};
use orbita_coordinator::verbs::{AppInfo, FromNode, Heartbeat, Registration, ToNode};
use orbita_sfu::{RoomId, Sfu};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};

use crate::recordings::Recordings;
use crate::rooms::RoomRegistry;
use crate::serve::RunningServer;
use crate::{ServeArgs, Settings};

/// How many times in a row a crashed app is restarted (`app_exit = "restart"`) before the
/// session ends.
pub const MAX_APP_RESTARTS: u32 = 5;

/// The variables of the node's environment a session's app inherits, with every `LC_*` and
/// `ORBITA_APP_*` (settings meant for apps, docs/demo-app.md); everything else, the node's
/// secrets first, is left out.
pub const APP_ENV_KEPT: [&str; 9] = [
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "TZ",
    "TMPDIR",
    "RUST_LOG",
    "XDG_RUNTIME_DIR",
    "ORBITA_FFMPEG",
];

/// Whether a variable of the node's environment goes on to a session's app.
pub fn app_inherits(key: &str) -> bool {
    APP_ENV_KEPT.contains(&key) || key.starts_with("LC_") || key.starts_with("ORBITA_APP_")
}

/// Run a session server (node) linked to a coordinator: the media server of `orbita serve`
/// plus the node link.
///
/// The node's own settings come from `--node-config` (JSON or TOML, the spec's `config.json`:
/// see docs/coordinator.md), overridden by the variables and flags below; the media server's
/// settings are those of `orbita serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NodeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub serve: ServeArgs,

    /// The node's file: server_name, coordinator_url, cluster_secret, ip, port,
    /// max_sessions, session_idle_secs, app_exit and the app catalogue (`apps`).
    #[arg(long, env = "ORBITA_NODE_CONFIG", value_name = "FILE")]
    pub node_config: Option<PathBuf>,

    /// The coordinator's node endpoint, e.g. `wss://coord.example.org/coordinator/node`.
    #[arg(long, env = "ORBITA_COORDINATOR_URL", value_name = "URL")]
    pub coordinator_url: Option<String>,

    /// The shared cluster secret.
    #[arg(
        long,
        env = "ORBITA_CLUSTER_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub cluster_secret: Option<String>,

    /// This node's name in the cluster (the spec's `server_name`). Default: the host name.
    #[arg(long, env = "ORBITA_SERVER_NAME", value_name = "NAME")]
    pub server_name: Option<String>,

    /// Most sessions this node holds at once. Default: 1.
    #[arg(long, env = "ORBITA_MAX_SESSIONS", value_name = "N")]
    pub max_sessions: Option<u32>,

    /// The host (IP or name) clients are sent to. Default: the host of the public URL.
    #[arg(long, env = "ORBITA_NODE_IP", value_name = "HOST")]
    pub node_ip: Option<String>,

    /// The port clients are sent to. Default: the port of the public URL.
    #[arg(long, env = "ORBITA_NODE_PORT", value_name = "PORT")]
    pub node_port: Option<u16>,

    /// Seconds without any activity (media, input, messages) after which the node ends a
    /// session. Default: 600.
    #[arg(long, env = "ORBITA_NODE_SESSION_IDLE_SECS", value_name = "SECS")]
    pub session_idle_secs: Option<u64>,
}

/// What to do when a session's app exits by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppExit {
    /// Tell the participants and end the session (`app_crashed`).
    #[default]
    End,
    /// Tell the participants and start the app again (at most [`MAX_APP_RESTARTS`] times).
    Restart,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum StrOrNum {
    S(String),
    N(u64),
}

impl StrOrNum {
    fn text(&self) -> String {
        match self {
            StrOrNum::S(s) => s.trim().to_string(),
            StrOrNum::N(n) => n.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum CommandLine {
    Line(String),
    Argv(Vec<String>),
}

/// One app of the node file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AppEntry {
    rc_name: String,
    #[serde(default)]
    command: Option<CommandLine>,
    /// `{"description":[{"en":"..."},{"ru":"..."}]}`, as in servers.json.
    #[serde(default)]
    info: Option<serde_json::Value>,
    /// Shorthand: `{"en":"...","ru":"..."}`.
    #[serde(default)]
    description: Option<BTreeMap<String, String>>,
}

/// The node file (the spec's `config.json`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    server_name: Option<String>,
    coordinator_url: Option<String>,
    cluster_secret: Option<String>,
    ip: Option<StrOrNum>,
    port: Option<StrOrNum>,
    max_sessions: Option<StrOrNum>,
    session_idle_secs: Option<u64>,
    app_exit: Option<AppExit>,
    #[serde(default)]
    apps: Vec<AppEntry>,
}

impl NodeFile {
    fn load(path: &Path) -> anyhow::Result<NodeFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read node config {}", path.display()))?;
        let parsed = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
        {
            toml::from_str(&text).map_err(anyhow::Error::new)
        } else {
            serde_json::from_str(&text).map_err(anyhow::Error::new)
        };
        parsed.with_context(|| format!("invalid node config {}", path.display()))
    }
}

/// An app this node can run.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSpec {
    /// Its name (the spec's `rc_name`).
    pub rc_name: String,
    /// The program and its arguments; empty: a plain video room.
    pub command: Vec<String>,
    /// What is registered with the coordinator (`{"description":[{"en":...}]}`).
    pub info: serde_json::Value,
}

/// The node's resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSettings {
    /// Name in the cluster.
    pub server_name: String,
    /// The coordinator's node endpoint.
    pub coordinator_url: String,
    /// The cluster secret.
    pub cluster_secret: String,
    /// Host clients are sent to (`None`: from the public URL).
    pub ip: Option<String>,
    /// Port clients are sent to (`None`: from the public URL).
    pub port: Option<String>,
    /// Most sessions at once.
    pub max_sessions: u32,
    /// Inactivity that ends a session.
    pub session_idle: Duration,
    /// What a crashed app does to its session.
    pub app_exit: AppExit,
    /// The catalogue by `rc_name`, in file order.
    pub apps: Vec<AppSpec>,
}

impl NodeSettings {
    /// The node settings from its file and the flags/environment.
    pub fn resolve(args: &NodeArgs) -> anyhow::Result<NodeSettings> {
        let file = match &args.node_config {
            Some(path) => NodeFile::load(path)?,
            None => NodeFile::default(),
        };
        let server_name = args
            .server_name
            .clone()
            .or(file.server_name)
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "orbita-node".to_string());
        let coordinator_url = args
            .coordinator_url
            .clone()
            .or(file.coordinator_url)
            .ok_or_else(|| {
                anyhow!("coordinator_url is not set (--coordinator-url, ORBITA_COORDINATOR_URL or the node config)")
            })?;
        if !(coordinator_url.starts_with("ws://") || coordinator_url.starts_with("wss://")) {
            bail!("coordinator_url must be a ws:// or wss:// URL, not `{coordinator_url}`");
        }
        let cluster_secret = args
            .cluster_secret
            .clone()
            .or(file.cluster_secret)
            .unwrap_or_default();
        if cluster_secret.is_empty() {
            bail!("cluster_secret is not set (--cluster-secret, ORBITA_CLUSTER_SECRET or the node config)");
        }
        let max_sessions = match (args.max_sessions, file.max_sessions) {
            (Some(n), _) => n,
            (None, Some(v)) => v
                .text()
                .parse()
                .map_err(|_| anyhow!("max_sessions {:?} is not a number", v.text()))?,
            (None, None) => 1,
        };
        if max_sessions == 0 {
            bail!("max_sessions must be at least 1");
        }
        let session_idle_secs = args
            .session_idle_secs
            .or(file.session_idle_secs)
            .unwrap_or(600);
        if session_idle_secs == 0 {
            bail!("session_idle_secs must be at least 1");
        }
        let mut apps = Vec::new();
        let mut seen = HashSet::new();
        for app in file.apps {
            if app.rc_name.is_empty() || app.rc_name.len() > 128 {
                bail!("apps: rc_name must be 1 to 128 bytes");
            }
            if !seen.insert(app.rc_name.clone()) {
                bail!("apps: {} is listed twice", app.rc_name);
            }
            let command = match app.command {
                None => Vec::new(),
                Some(CommandLine::Line(s)) => s.split_whitespace().map(str::to_string).collect(),
                Some(CommandLine::Argv(v)) => v,
            };
            let info = match (app.info, app.description) {
                (Some(info), _) => info,
                (None, Some(d)) => serde_json::json!({
                    "description": d.into_iter().map(|(lang, text)| serde_json::json!({ lang: text })).collect::<Vec<_>>()
                }),
                (None, None) => serde_json::json!({}),
            };
            apps.push(AppSpec {
                rc_name: app.rc_name,
                command,
                info,
            });
        }
        Ok(NodeSettings {
            server_name,
            coordinator_url,
            cluster_secret,
            ip: args.node_ip.clone().or(file.ip.map(|v| v.text())),
            port: args
                .node_port
                .map(|p| p.to_string())
                .or(file.port.map(|v| v.text())),
            max_sessions,
            session_idle: Duration::from_secs(session_idle_secs),
            app_exit: file.app_exit.unwrap_or_default(),
            apps,
        })
    }
}

/// Host and port of an `http(s)://host[:port]` URL (the port defaulting by scheme).
pub fn url_host_port(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else {
        "80"
    };
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = after.strip_prefix(':').unwrap_or(default_port);
        return Some((host.to_string(), port.to_string()));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.to_string())),
        None => Some((authority.to_string(), default_port.to_string())),
    }
}

/// Something that ended a session on the node's side.
#[derive(Debug, Clone)]
struct Ended {
    code: String,
    reason: String,
}

struct Session {
    room: RoomId,
    /// Dropping (or sending) it stops the app.
    stop_app: Option<oneshot::Sender<()>>,
}

/// A linked node: the media server, its sessions and the link's state.
pub struct Node {
    settings: NodeSettings,
    sfu: Sfu,
    registry: Arc<RoomRegistry>,
    recordings: Arc<Recordings>,
    call_log: Arc<crate::call_log::CallLog>,
    call_settings: Arc<crate::call_settings::CallSettingsCache>,
    call_rx: Mutex<Option<mpsc::Receiver<orbita_coordinator::verbs::CallEvent>>>,
    public_url: String,
    whip_base: String,
    client_ip: String,
    client_port: String,
    sessions: Mutex<HashMap<String, Session>>,
    ended_tx: mpsc::UnboundedSender<Ended>,
    ended_rx: Mutex<Option<mpsc::UnboundedReceiver<Ended>>>,
    cpu: Mutex<super::CpuSampler>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("server_name", &self.settings.server_name)
            .field("sessions", &self.sessions.lock().len())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// A node for a running media server (`server`, whose backend is `sfu`).
    pub fn new(settings: NodeSettings, sfu: Sfu, server: &RunningServer) -> Arc<Node> {
        let public_url = server.public_url().to_string();
        let (url_host, url_port) =
            url_host_port(&public_url).unwrap_or_else(|| ("127.0.0.1".into(), "80".into()));
        let http = server.http_addr();
        let local_ip = if http.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            http.ip()
        };
        let whip_base = format!("http://{}", SocketAddr::new(local_ip, http.port()));
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        Arc::new(Node {
            client_ip: settings.ip.clone().unwrap_or(url_host),
            client_port: settings.port.clone().unwrap_or(url_port),
            settings,
            sfu,
            registry: Arc::clone(server.registry()),
            recordings: Arc::clone(server.recordings()),
            call_log: Arc::clone(server.call_log()),
            call_settings: Arc::clone(server.call_settings()),
            call_rx: Mutex::new(Some(server.call_log().subscribe())),
            public_url,
            whip_base,
            sessions: Mutex::new(HashMap::new()),
            ended_tx,
            ended_rx: Mutex::new(Some(ended_rx)),
            cpu: Mutex::new(super::CpuSampler::default()),
        })
    }

    /// Where clients are sent: (`ip`, `port`) as registered.
    pub fn client_address(&self) -> (&str, &str) {
        (&self.client_ip, &self.client_port)
    }

    /// Codes of the live sessions.
    pub fn session_codes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.sessions.lock().keys().cloned().collect();
        v.sort();
        v
    }

    fn registration(&self) -> Registration {
        Registration {
            server_name: self.settings.server_name.clone(),
            ip: self.client_ip.clone(),
            port: self.client_port.clone(),
            max_sessions: self.settings.max_sessions,
            apps: self
                .settings
                .apps
                .iter()
                .map(|a| AppInfo {
                    rc_name: a.rc_name.clone(),
                    info: a.info.clone(),
                })
                .collect(),
            auth: String::new(),
            recording_slots: u32::try_from(self.recordings.slots()).unwrap_or(u32::MAX),
            public_url: Some(self.public_url.clone()),
            calls: self.call_log.live_calls(),
        }
    }

    fn heartbeat(&self, interval: Duration) -> Heartbeat {
        let now = Instant::now();
        let sessions = self.sessions.lock();
        let mut participants = 0u32;
        let mut active = Vec::new();
        for (code, s) in sessions.iter() {
            if let Some(info) = self.registry.get(code) {
                participants += info.participants as u32;
            }
            if let Some(status) = self.sfu.room_status(s.room) {
                if status.idle_for(now) < interval + Duration::from_secs(1) {
                    active.push(code.clone());
                }
            }
        }
        active.sort();
        Heartbeat {
            sessions: sessions.len() as u32,
            participants,
            cpu: self.cpu.lock().sample(),
            active,
            recording_slots: u32::try_from(self.recordings.slots()).unwrap_or(u32::MAX),
            // The coordinator counts the sessions it asked this node to record; the rest
            // (agents started them, or rooms made here) are told.
            other_recordings: u32::try_from(
                self.recordings
                    .recording_codes()
                    .iter()
                    .filter(|code| {
                        !(sessions.contains_key(*code)
                            && self.registry.get(code).is_some_and(|r| r.record))
                    })
                    .count(),
            )
            .unwrap_or(u32::MAX),
        }
    }

    /// End a session here: forget it, stop its app, close its room. With `report`, the
    /// coordinator is told (`SESSION_ENDED`).
    fn end_session(&self, code: &str, reason: &str, report: bool) {
        let Some(session) = self.sessions.lock().remove(code) else {
            return;
        };
        info!(code, reason, "session ended");
        if let Some(stop) = session.stop_app {
            let _ = stop.send(());
        }
        self.registry.close(code);
        if report {
            let _ = self.ended_tx.send(Ended {
                code: code.to_string(),
                reason: reason.to_string(),
            });
        }
    }

    /// End every session (node shutdown), stopping their apps.
    pub fn end_all(&self, reason: &str) {
        for code in self.session_codes() {
            self.end_session(&code, reason, true);
        }
    }

    /// `CREATE_SESSION`: `Ok` is the `CONNECT_TO_SESSION` answer.
    fn create_session(
        self: &Arc<Self>,
        rc_name: &str,
        code: &str,
        owner: Option<String>,
        record: bool,
    ) -> Result<FromNode, String> {
        let app = self
            .settings
            .apps
            .iter()
            .find(|a| a.rc_name == rc_name)
            .cloned()
            .ok_or_else(|| format!("this node does not run {rc_name:?}"))?;
        if code.is_empty() || code.len() > 32 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{code:?} is not a session code"));
        }
        {
            let sessions = self.sessions.lock();
            if sessions.contains_key(code) {
                return Err(format!("session {code} exists already"));
            }
            if sessions.len() >= self.settings.max_sessions as usize {
                return Err(format!(
                    "this node holds its maximum of {} sessions",
                    self.settings.max_sessions
                ));
            }
        }
        let room = self
            .registry
            .create_with_code(code, Instant::now())
            .map_err(|e| e.to_string())?;
        if let Some(owner) = owner {
            self.registry.set_owner(code, owner);
        }
        self.registry.set_app(code, rc_name);
        if record {
            // The coordinator's recording policy: recorded from the first participant on.
            self.registry.set_record(code);
        }
        let stop_app = if app.command.is_empty() {
            None
        } else {
            let (stop_tx, stop_rx) = oneshot::channel();
            let child = match self.spawn_app(&app, code, &room.publish_token) {
                Ok(child) => child,
                Err(e) => {
                    self.registry.close(code);
                    return Err(format!("app failed to start: {e}"));
                }
            };
            tokio::spawn(Arc::clone(self).supervise_app(
                app.clone(),
                code.to_string(),
                room.id,
                room.publish_token.clone(),
                child,
                stop_rx,
            ));
            Some(stop_tx)
        };
        self.sessions.lock().insert(
            code.to_string(),
            Session {
                room: room.id,
                stop_app,
            },
        );
        info!(
            code,
            rc_name,
            app = !app.command.is_empty(),
            "session created"
        );
        Ok(FromNode::ConnectToSession {
            ip: self.client_ip.clone(),
            port: self.client_port.clone(),
            code: code.to_string(),
            // For the session's creator (the coordinator relays it to them alone).
            host_key: Some(room.host_key),
        })
    }

    /// Starts a session's app with what [`app_inherits`] of the node's environment plus
    /// `ORBITA_WHIP_URL`, `ORBITA_WHIP_TOKEN`, `ORBITA_SESSION_CODE`, `ORBITA_RC_NAME`.
    fn spawn_app(
        &self,
        app: &AppSpec,
        code: &str,
        token: &str,
    ) -> std::io::Result<tokio::process::Child> {
        let (program, args) = app
            .command
            .split_first()
            .expect("only apps with a command are spawned");
        let mut command = tokio::process::Command::new(program);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            // The app dies with the node, even when the node is killed outright.
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        // A cleared environment: the node's holds its secrets (cluster secret, database URL,
        // TURN secret) and an app is code the node only starts. It gets what a program needs
        // to run, and its session.
        command.env_clear();
        for (key, value) in std::env::vars_os() {
            if key.to_str().is_some_and(app_inherits) {
                command.env(key, value);
            }
        }
        command
            .args(args)
            .env("ORBITA_WHIP_URL", format!("{}/whip/{code}", self.whip_base))
            .env("ORBITA_WHIP_TOKEN", token)
            .env("ORBITA_SESSION_CODE", code)
            .env("ORBITA_RC_NAME", &app.rc_name)
            .stdin(Stdio::piped())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
    }

    /// Feed the app its input, watch it, stop it when the session ends; on exit tell the
    /// participants and end (or restart) the session.
    async fn supervise_app(
        self: Arc<Self>,
        app: AppSpec,
        code: String,
        room: RoomId,
        token: String,
        mut child: tokio::process::Child,
        mut stop: oneshot::Receiver<()>,
    ) {
        let mut restarts = 0;
        loop {
            let (input_tx, mut input_rx) = mpsc::channel::<String>(256);
            self.sfu.attach_app(room, input_tx);
            let mut stdin = child.stdin.take();
            let mut input_open = true;
            let status = loop {
                tokio::select! {
                    line = input_rx.recv(), if input_open => match line {
                        Some(line) => {
                            if let Some(w) = stdin.as_mut() {
                                let mut bytes = line.into_bytes();
                                bytes.push(b'\n');
                                if w.write_all(&bytes).await.is_err() || w.flush().await.is_err() {
                                    stdin = None;
                                }
                            }
                        }
                        None => input_open = false,
                    },
                    status = child.wait() => break status,
                    _ = &mut stop => {
                        let _ = child.kill().await;
                        info!(%code, "app stopped");
                        return;
                    }
                }
            };
            let what = match &status {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            };
            warn!(%code, status = %what, "the session's app exited");
            if !self.sessions.lock().contains_key(&code) {
                return;
            }
            self.sfu
                .detach_app(room, &format!("the app stopped: {what}"));
            if self.settings.app_exit == AppExit::Restart && restarts < MAX_APP_RESTARTS {
                restarts += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                match self.spawn_app(&app, &code, &token) {
                    Ok(c) => {
                        info!(%code, restarts, "app restarted");
                        child = c;
                        continue;
                    }
                    Err(e) => warn!(%code, error = %e, "app failed to restart"),
                }
            }
            self.end_session(&code, "app_crashed", true);
            return;
        }
    }

    /// Once a second: sessions whose room ended (everyone left) or that were idle too long.
    fn check_sessions(&self) {
        let now = Instant::now();
        let live: Vec<(String, RoomId)> = self
            .sessions
            .lock()
            .iter()
            .map(|(c, s)| (c.clone(), s.room))
            .collect();
        for (code, room) in live {
            match self.registry.get(&code) {
                None => self.end_session(&code, "empty", true),
                Some(info) if info.id != room => self.end_session(&code, "empty", true),
                Some(_) => {
                    let idle = self
                        .sfu
                        .room_status(room)
                        .map_or(Duration::MAX, |s| s.idle_for(now));
                    if idle >= self.settings.session_idle {
                        self.end_session(&code, "idle", true);
                    }
                }
            }
        }
    }

    /// A message from the coordinator; the answer to send back, if any.
    fn handle(self: &Arc<Self>, msg: ToNode) -> Option<FromNode> {
        match msg {
            ToNode::CreateSession {
                rc_name,
                code,
                owner,
                record,
                ..
            } => Some(match self.create_session(&rc_name, &code, owner, record) {
                Ok(answer) => answer,
                Err(reason) => {
                    warn!(%code, %rc_name, %reason, "cannot create the session");
                    FromNode::CreateSessionFailed { code, reason }
                }
            }),
            ToNode::ConnectUserToSession { code, user_id } => {
                if self.sessions.lock().contains_key(&code) {
                    Some(FromNode::SessionConnectionEstablished {
                        webrtc_connection_data: format!("{}/r/{code}", self.public_url),
                        code,
                        user_id,
                    })
                } else {
                    Some(FromNode::SessionEnded {
                        code,
                        reason: "ended".into(),
                    })
                }
            }
            ToNode::EndSession { code, reason } => {
                info!(%code, %reason, "the coordinator ends the session");
                self.end_session(&code, &reason, false);
                None
            }
            ToNode::CallSettings(settings) => {
                self.call_settings.set(*settings);
                None
            }
            ToNode::Error { code, message } => {
                warn!(%code, %message, "the coordinator refused a message");
                None
            }
            ToNode::Challenge { .. } | ToNode::Registered { .. } => None,
        }
    }

    /// Keep the coordinator link up until `shutdown` turns true: connect (retrying with a
    /// growing pause), reconcile sessions, then heartbeats and messages both ways.
    pub async fn run_link(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let Some(mut ended_rx) = self.ended_rx.lock().take() else {
            warn!("the node link is already running");
            return;
        };
        let Some(mut call_rx) = self.call_rx.lock().take() else {
            warn!("the node link is already running");
            return;
        };
        let mut config = NodeConfig {
            url: self.settings.coordinator_url.clone(),
            secret: self.settings.cluster_secret.clone(),
            registration: self.registration(),
            tls: None,
        };
        let mut pause = Duration::from_millis(250);
        loop {
            if *shutdown.borrow() {
                return;
            }
            // The calls it holds now (the coordinator closes the records of the others).
            config.registration = self.registration();
            let link = tokio::select! {
                l = connect(&config) => l,
                _ = shutdown.changed() => return,
            };
            let mut link: NodeLink = match link {
                Ok(link) => link,
                Err(e) => {
                    warn!(error = %e, "cannot link to the coordinator; retrying in {pause:?}");
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = shutdown.changed() => return,
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            pause = Duration::from_millis(250);
            info!(
                node = %self.settings.server_name,
                url = %self.settings.coordinator_url,
                "linked to the coordinator"
            );
            // Reconcile: end what the coordinator does not know; report what we lost.
            let believed: HashSet<String> = link.sessions.iter().cloned().collect();
            for code in self.session_codes() {
                if !believed.contains(&code) {
                    self.end_session(&code, "ended", false);
                }
            }
            let local: HashSet<String> = self.session_codes().into_iter().collect();
            for code in believed.difference(&local) {
                link.send(FromNode::SessionEnded {
                    code: code.clone(),
                    reason: "ended".into(),
                })
                .await;
            }
            let interval = Duration::from_secs(link.heartbeat_interval_seconds.max(1));
            let mut heartbeat = tokio::time::interval(interval);
            heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut check = tokio::time::interval(Duration::from_secs(1));
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    msg = link.recv() => {
                        let Some(msg) = msg else { break };
                        if let Some(answer) = self.handle(msg) {
                            if !link.send(answer).await {
                                break;
                            }
                        }
                    }
                    _ = heartbeat.tick() => {
                        let hb = self.heartbeat(interval);
                        if !link.send(FromNode::Heartbeat(hb)).await {
                            break;
                        }
                    }
                    _ = check.tick() => self.check_sessions(),
                    ended = ended_rx.recv() => {
                        let Some(ended) = ended else { return };
                        if !link.send(FromNode::SessionEnded { code: ended.code, reason: ended.reason }).await {
                            break;
                        }
                    }
                    event = call_rx.recv() => {
                        let Some(event) = event else { return };
                        if !link.send(FromNode::CallEvent(Box::new(event))).await {
                            break;
                        }
                    }
                    _ = shutdown.changed() => {
                        // Report what shutting down ends, then close the link.
                        self.end_all("node_shutdown");
                        while let Ok(ended) = ended_rx.try_recv() {
                            link.send(FromNode::SessionEnded { code: ended.code, reason: ended.reason }).await;
                        }
                        while let Ok(event) = call_rx.try_recv() {
                            link.send(FromNode::CallEvent(Box::new(event))).await;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        return;
                    }
                }
            }
            warn!("the coordinator link closed; reconnecting");
        }
    }
}

/// Start the SFU and the media server of `settings` (as `orbita serve`), keeping a handle to
/// the SFU for app input and room status.
pub async fn start_media(settings: Settings) -> anyhow::Result<(Sfu, RunningServer)> {
    start_media_with_routes(settings, None).await
}

/// `POST /api/rooms` on a node: 403, sessions are created through the coordinator.
async fn refuse_rest_room_creation(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if request.method() == axum::http::Method::POST && request.uri().path() == "/api/rooms" {
        return (
            axum::http::StatusCode::FORBIDDEN,
            axum::Json(serde_json::json!({
                "error": "forbidden",
                "message": "this server is a node of a coordinator: create sessions there (CREATE_SESSION or /api/plans)"
            })),
        )
            .into_response();
    }
    next.run(request).await
}

/// [`start_media`], with the media server's router passed through `extra` (extra routes on
/// the same HTTP listener, layers).
pub async fn start_media_with_routes(
    settings: Settings,
    extra: Option<crate::serve::RouterHook>,
) -> anyhow::Result<(Sfu, RunningServer)> {
    settings.validate()?;
    let config = settings.sfu_config();
    let udp = settings.udp_addr;
    let sfu = tokio::task::spawn_blocking(move || Sfu::start(config))
        .await
        .context("the SFU failed to start")?
        .with_context(|| {
            format!("cannot start the SFU (udp {udp}); is another process using these ports?")
        })?;
    let server = crate::serve::start_with_routes(settings, Arc::new(sfu.clone()), extra).await?;
    Ok((sfu, server))
}

/// `orbita node`: the media server plus the coordinator link, until SIGINT/SIGTERM.
/// Prints the media server's banner line when ready.
pub async fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let node_settings = NodeSettings::resolve(&args)?;
    let settings = Settings::from_args(args.serve)?;
    // A node's rooms come from the coordinator (which checks who may create them): its own
    // `POST /api/rooms` would bypass that, so a node refuses it.
    // Its recordings are listed and downloaded with the coordinator's grants.
    let grant_secret: Arc<str> = node_settings.cluster_secret.clone().into();
    let hook: crate::serve::RouterHook = Box::new(|app: axum::Router| {
        app.layer(axum::middleware::from_fn(refuse_rest_room_creation))
            .layer(axum::middleware::from_fn_with_state(
                grant_secret,
                crate::recording_grants::grant_viewer,
            ))
    });
    let (sfu, mut server) = start_media_with_routes(settings, Some(hook)).await?;
    let node = Node::new(node_settings, sfu, &server);
    println!(
        "{} as node {} of {} (clients reach {}:{})",
        server.banner(),
        node.settings.server_name,
        node.settings.coordinator_url,
        node.client_ip,
        node.client_port
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let link = tokio::spawn(Arc::clone(&node).run_link(stop_rx));
    let result = tokio::select! {
        signal = super::shutdown_signal() => {
            info!("{signal} received; shutting down");
            Ok(())
        }
        result = server.wait() => result.and(Err(anyhow!("the HTTP server stopped unexpectedly"))),
    };
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), link).await;
    node.end_all("node_shutdown");
    server.shutdown().await?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: NodeArgs,
    }

    fn args(flags: &[&str]) -> NodeArgs {
        Cli::try_parse_from(std::iter::once("node").chain(flags.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn node_file_and_flags() {
        let dir = std::env::temp_dir().join(format!("orbita-node-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        std::fs::write(
            &file,
            r#"{"server_name":"a","coordinator_url":"ws://127.0.0.1:1/coordinator/node",
                "cluster_secret":"s","ip":"192.0.2.1","port":"8443","max_sessions":"3",
                "app_exit":"restart",
                "apps":[{"rc_name":"demo","command":"sleep 600","description":{"en":"Demo","ru":"Демо"}},
                        {"rc_name":"room","info":{"description":[{"en":"a room"}]}}]}"#,
        )
        .unwrap();
        let s = NodeSettings::resolve(&args(&[
            "--node-config",
            file.to_str().unwrap(),
            "--max-sessions",
            "2",
            "--http-addr",
            "127.0.0.1:0",
        ]))
        .unwrap();
        assert_eq!(s.server_name, "a");
        assert_eq!(s.max_sessions, 2, "flag beats file");
        assert_eq!(s.ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(s.port.as_deref(), Some("8443"));
        assert_eq!(s.app_exit, AppExit::Restart);
        assert_eq!(s.apps[0].command, vec!["sleep", "600"]);
        assert_eq!(
            s.apps[0].info,
            serde_json::json!({"description":[{"en":"Demo"},{"ru":"Демо"}]})
        );
        assert!(s.apps[1].command.is_empty());

        std::fs::write(&file, r#"{"coordinator_url":"ws://x","cluster_secret":"s","apps":[{"rc_name":"a","typo":1}]}"#).unwrap();
        let err =
            NodeSettings::resolve(&args(&["--node-config", file.to_str().unwrap()])).unwrap_err();
        assert!(format!("{err:#}").contains("typo"), "{err:#}");
        let err = NodeSettings::resolve(&args(&[
            "--coordinator-url",
            "http://x",
            "--cluster-secret",
            "s",
        ]))
        .unwrap_err();
        assert!(format!("{err:#}").contains("coordinator_url"), "{err:#}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn host_and_port_of_urls() {
        assert_eq!(
            url_host_port("http://127.0.0.1:8080"),
            Some(("127.0.0.1".into(), "8080".into()))
        );
        assert_eq!(
            url_host_port("https://video.example.org/"),
            Some(("video.example.org".into(), "443".into()))
        );
        assert_eq!(
            url_host_port("http://[::1]:81"),
            Some(("::1".into(), "81".into()))
        );
    }
}
