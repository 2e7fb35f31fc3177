//! The coordinator's network side: two WebSocket endpoints on one HTTP server (axum), with
//! optional TLS (rustls), and the background housekeeping.
//!
//! * `GET /coordinator`: clients (browsers). The first message is `WELCOME` with the client's
//!   id; then JSON requests and answers as in [`crate::verbs`].
//! * `GET /coordinator/node`: nodes. `CHALLENGE`, `REGISTER_NODE` (HMAC proof), `REGISTERED`,
//!   then heartbeats and session messages both ways.
//! * `GET /metrics`, `GET /healthz`: for Prometheus and health checks ([`crate::metrics`]);
//!   answers and request times are counted here as they go out.
//!
//! Everything this module does is forward: the decisions are [`Coordinator`]'s. Messages for a
//! client or node whose connection another coordinator holds go through the registry's outbox.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, info, warn};

use crate::accounts::ended::{self, Ended, LoginSession, SESSION_RECHECK_MS};
use crate::auth;
use crate::coordinator::{Coordinator, Delivery};
use crate::logic::{ceil_secs, TokenBucket};
use crate::metrics::{self, Metrics};
use crate::verbs::{ErrorCode, ErrorReply, FromNode, ToClient, ToNode};

/// The client endpoint's path.
pub const CLIENT_PATH: &str = "/coordinator";
/// The node endpoint's path.
pub const NODE_PATH: &str = "/coordinator/node";

/// Messages queued per connection before it counts as not reading (then it is dropped).
const QUEUE: usize = 256;

/// The prefix of the listener's metrics on the coordinator's `/metrics`
/// (`orbita_coordinator_http_connections_open`, ...).
pub const HTTP_METRICS_PREFIX: &str = "orbita_coordinator_http";

/// The live connections of one coordinator process and the way to reach the others.
pub struct Hub {
    coordinator: Arc<Coordinator>,
    clients: Mutex<HashMap<String, mpsc::Sender<String>>>,
    nodes: Mutex<HashMap<String, mpsc::Sender<String>>>,
    shutdown: watch::Receiver<bool>,
    shutdown_tx: watch::Sender<bool>,
    metrics: Metrics,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("clients", &self.clients.lock().len())
            .field("nodes", &self.nodes.lock().len())
            .finish()
    }
}

impl Hub {
    /// A hub with no connections.
    pub fn new(coordinator: Arc<Coordinator>) -> Arc<Hub> {
        let (shutdown_tx, shutdown) = watch::channel(false);
        let metrics = Metrics::with_password_verifications(
            coordinator.accounts().password_verifications().clone(),
        );
        Arc::new(Hub {
            coordinator,
            clients: Mutex::new(HashMap::new()),
            nodes: Mutex::new(HashMap::new()),
            shutdown,
            shutdown_tx,
            metrics,
        })
    }

    /// This process's metrics (`GET /metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `GET /metrics`'s text: the gauges refreshed from the registry (a failure to read it is
    /// logged and they keep their last values), then everything encoded.
    pub async fn metrics_text(&self) -> String {
        let store = self.coordinator.registry();
        if let Err(e) = self.metrics.refresh(store, self.client_count()).await {
            warn!(error = %e, "metrics: could not count nodes and sessions");
        }
        self.metrics.encode()
    }

    /// `GET /healthz`: `Ok` when the registry's database answers (see [`metrics::health`]).
    pub async fn health(&self) -> Result<(), String> {
        metrics::health(self.coordinator.registry()).await
    }

    /// The coordinator.
    pub fn coordinator(&self) -> &Arc<Coordinator> {
        &self.coordinator
    }

    /// Clients connected to this process.
    pub fn client_count(&self) -> usize {
        self.clients.lock().len()
    }

    /// Names of the nodes linked to this process.
    pub fn node_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.nodes.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// Tells every connection to close (1001) and the background tasks to stop.
    pub fn shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
    }

    /// Only [`NODE_PATH`]: for a link over a separate listener (the all-in-one server's own
    /// node, when its public listener speaks TLS).
    pub fn node_router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(NODE_PATH, get(node_ws))
            .with_state(self.clone())
    }

    /// The routes: [`CLIENT_PATH`] and [`NODE_PATH`], the accounts API
    /// ([`crate::accounts::http::router`]) and the planning API
    /// ([`crate::planning::http::router`]). Serve them with connect info
    /// (`into_make_service_with_connect_info::<SocketAddr>()`) so code guessing and sign-ups
    /// are limited per client address; without it every client counts as 0.0.0.0. Add the
    /// extension [`orbita_tls::Https`] to requests that came over TLS (login
    /// cookies then get `Secure`). Also `GET /metrics` and `GET /healthz`
    /// ([`Hub::ops_router`]).
    pub fn router(self: &Arc<Self>) -> Router {
        self.service_router().merge(self.ops_router())
    }

    /// [`Hub::router`] without `/metrics` and `/healthz`, for a server that has its own
    /// (`orbita serve` appends [`Hub::metrics_text`] to the media server's).
    pub fn service_router(self: &Arc<Self>) -> Router {
        let api = crate::accounts::http::router()
            .merge(crate::planning::http::router())
            .merge(crate::recordings_http::router())
            .merge(crate::calls_http::router())
            .merge(crate::call_forms_http::router())
            .merge(crate::call_settings_http::router())
            .layer(axum::middleware::from_fn_with_state(
                self.coordinator.clone(),
                crate::accounts::csrf::guard,
            ))
            .with_state(self.coordinator.clone());
        Router::new()
            .route(CLIENT_PATH, get(client_ws))
            .route(NODE_PATH, get(node_ws))
            .with_state(self.clone())
            .merge(api)
    }

    /// `GET /metrics` ([`Hub::metrics_text`]) and `GET /healthz`: 200 `ok`, or 503 with the
    /// reason when the database does not answer ([`Hub::health`]).
    pub fn ops_router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/metrics", get(metrics_page))
            .route("/healthz", get(healthz))
            .with_state(self.clone())
    }

    fn send_local(&self, kind: &str, target: &str, body: String) -> bool {
        let map = if kind == "node" {
            &self.nodes
        } else {
            &self.clients
        };
        let tx = map.lock().get(target).cloned();
        match tx {
            Some(tx) => match tx.try_send(body) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(kind, target, "connection not reading: message dropped");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
            None => {
                debug!(kind, target, "no such connection here: message dropped");
                false
            }
        }
    }

    /// Sends each delivery: on this process's connection when `via` is this coordinator,
    /// else through the registry's outbox for the coordinator that holds it.
    pub async fn deliver(&self, deliveries: Vec<Delivery>) {
        for d in deliveries {
            let (kind, target, via, body) = match d {
                Delivery::Client { user_id, via, msg } => {
                    self.metrics.answered(&msg);
                    ("client", user_id, via, msg.to_json())
                }
                Delivery::Node { node, via, msg } => ("node", node, via, msg.to_json()),
            };
            if via == self.coordinator.id() || via.is_empty() {
                self.send_local(kind, &target, body);
            } else if let Err(e) = self
                .coordinator
                .registry()
                .push_outbox(&via, kind, &target, &body, self.coordinator.now())
                .await
            {
                warn!(error = %e, via, "could not queue a message for another coordinator");
            }
        }
    }

    /// Delivers what other coordinators queued for this one.
    pub async fn pump_outbox(&self) {
        match self
            .coordinator
            .registry()
            .take_outbox(self.coordinator.id(), 500)
            .await
        {
            Ok(items) => {
                for item in items {
                    self.send_local(&item.target_kind, &item.target, item.body);
                }
            }
            Err(e) => warn!(error = %e, "could not read the outbox"),
        }
    }

    /// Runs the housekeeping until shutdown: [`Coordinator::sweep`] every second, the outbox
    /// every 200 ms.
    pub async fn run_background(self: Arc<Self>) {
        let mut shutdown = self.shutdown.clone();
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        let mut outbox = tokio::time::interval(Duration::from_millis(200));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        outbox.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = sweep.tick() => match self.coordinator.sweep(self.coordinator.now()).await {
                    Ok(s) => self.deliver(s.deliveries).await,
                    Err(e) => warn!(error = %e, "sweep failed"),
                },
                _ = outbox.tick() => self.pump_outbox().await,
                _ = shutdown.changed() => break,
            }
        }
    }
}

async fn metrics_page(State(hub): State<Arc<Hub>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        hub.metrics_text().await,
    )
        .into_response()
}

async fn healthz(State(hub): State<Arc<Hub>>) -> Response {
    match hub.health().await {
        Ok(()) => "ok".into_response(),
        Err(reason) => {
            warn!(%reason, "health check failed");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, reason).into_response()
        }
    }
}

fn client_ip(info: Option<&ConnectInfo<SocketAddr>>) -> IpAddr {
    info.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

fn transport_cap(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(4).max(256 * 1024)
}

/// The `token` query parameter (`/coordinator?token=...`), for WebSocket clients that can
/// set neither a cookie nor a header.
fn query_token(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "token")
        .map(|(_, value)| value)
}

async fn client_ws(
    State(hub): State<Arc<Hub>>,
    ws: WebSocketUpgrade,
    request: axum::extract::Request,
) -> Response {
    let ip = crate::accounts::http::client_addr(
        client_ip(request.extensions().get::<ConnectInfo<SocketAddr>>()),
        request.headers(),
        hub.coordinator.settings().trust_proxy_headers,
    );
    let cap = transport_cap(hub.coordinator.settings().max_message_bytes);
    // The connection acts as the account its login (cookie, Bearer or ?token=) names, until
    // that login ends.
    let accounts = hub.coordinator.accounts();
    let now = hub.coordinator.now();
    let token = query_token(request.uri().query())
        .or_else(|| crate::accounts::Accounts::request_token(request.headers()));
    let caller = match token {
        Some(token) => accounts.login_session(token, now).await,
        None => Ok(None),
    };
    let caller = caller.unwrap_or_else(|e| {
        warn!(error = %e, "could not check a client's login: treated as a guest");
        None
    });
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| client_session(hub, socket, ip, caller))
}

fn recheck_every() -> Duration {
    Duration::from_millis(SESSION_RECHECK_MS as u64)
}

/// What ends a connection's login ([`crate::accounts::ended`]): an end told in this process,
/// the session's expiry, or (re-read every [`SESSION_RECHECK_MS`]) its absence from the
/// database. Refreshes the account (a changed role) on each re-read.
struct LoginWatch {
    session: LoginSession,
    ended: broadcast::Receiver<Ended>,
    next_recheck: tokio::time::Instant,
}

/// Waits until `watch`'s login ends (forever for a guest); returns the close reason.
async fn login_ended(watch: Option<&mut LoginWatch>, coordinator: &Coordinator) -> &'static str {
    match watch {
        Some(w) => w.ended(coordinator).await,
        None => std::future::pending().await,
    }
}

impl LoginWatch {
    fn new(session: LoginSession, coordinator: &Coordinator) -> LoginWatch {
        LoginWatch {
            session,
            ended: coordinator.accounts().subscribe_ended(),
            next_recheck: tokio::time::Instant::now() + recheck_every(),
        }
    }

    /// Waits until the login ends; returns the close reason. Cancel-safe.
    async fn ended(&mut self, coordinator: &Coordinator) -> &'static str {
        loop {
            let left = self.session.expires_ms - coordinator.now();
            if left <= 0 {
                return ended::LOGIN_EXPIRED;
            }
            let expiry = tokio::time::sleep(Duration::from_millis(left.max(0) as u64));
            tokio::select! {
                biased;
                told = self.ended.recv() => match told {
                    Ok(end) => {
                        if let Some(reason) = end.ends(self.session.user.id, &self.session.token_hash) {
                            return reason;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if !self.reread(coordinator).await {
                            return ended::LOGIN_EXPIRED;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
                },
                _ = expiry => return ended::LOGIN_EXPIRED,
                _ = tokio::time::sleep_until(self.next_recheck) => {
                    self.next_recheck = tokio::time::Instant::now() + recheck_every();
                    if !self.reread(coordinator).await {
                        return ended::LOGIN_EXPIRED;
                    }
                }
            }
        }
    }

    /// Re-reads the session; `false` when it is gone (a database failure keeps it).
    async fn reread(&mut self, coordinator: &Coordinator) -> bool {
        match coordinator
            .accounts()
            .login_session_by_hash(&self.session.token_hash, coordinator.now())
            .await
        {
            Ok(Some(session)) => {
                self.session = session;
                true
            }
            Ok(None) => false,
            Err(e) => {
                warn!(error = %e, "could not re-read a client's login: kept");
                true
            }
        }
    }
}

async fn send_text(socket: &mut WebSocket, text: String) -> bool {
    socket.send(Message::Text(text.into())).await.is_ok()
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.to_string().into(),
        })))
        .await;
}

async fn client_session(
    hub: Arc<Hub>,
    mut socket: WebSocket,
    ip: IpAddr,
    login: Option<LoginSession>,
) {
    let coordinator = hub.coordinator.clone();
    let user_id = coordinator.new_user_id();
    let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
    hub.clients.lock().insert(user_id.clone(), tx);
    let mut shutdown = hub.shutdown.clone();
    let settings = coordinator.settings().clone();
    let mut bucket = TokenBucket::new(
        settings.messages_per_second,
        settings.messages_per_second * 2.0,
        coordinator.now(),
    );
    let mut watch = login.map(|session| LoginWatch::new(session, &coordinator));
    debug!(user_id, %ip, account = watch.as_ref().map(|w| w.session.user.id), "client connected");
    if send_text(&mut socket, coordinator.welcome(&user_id).to_json()).await {
        loop {
            tokio::select! {
                // An ended login closes the connection before any further message is read.
                biased;
                reason = login_ended(watch.as_mut(), &coordinator) => {
                    debug!(user_id, reason, "client's login ended");
                    close(&mut socket, ended::CLOSE_CODE, reason).await;
                    break;
                }
                incoming = socket.recv() => {
                    let Some(Ok(msg)) = incoming else { break };
                    // The expiry timer may not have fired yet (or the clock is a test's).
                    if watch.as_ref().is_some_and(|w| w.session.expires_ms <= coordinator.now()) {
                        debug!(user_id, "client's login expired");
                        close(&mut socket, ended::CLOSE_CODE, ended::LOGIN_EXPIRED).await;
                        break;
                    }
                    let caller = watch.as_ref().map(|w| &w.session.user);
                    let reply = match msg {
                        Message::Text(text) => {
                            let started = std::time::Instant::now();
                            let now = coordinator.now();
                            let reply = if let Err(wait) = bucket.take(now) {
                                Some(ToClient::Error(ErrorReply {
                                    code: ErrorCode::RateLimited,
                                    message: format!("at most {} messages per second", settings.messages_per_second),
                                    retry_after_seconds: Some(ceil_secs(wait)),
                                }))
                            } else {
                                let outcome = coordinator.handle_client_text(&user_id, caller, ip, text.as_str(), now).await;
                                hub.deliver(outcome.deliveries).await;
                                outcome.reply
                            };
                            let elapsed = started.elapsed();
                            let verb = if text.len() > settings.max_message_bytes {
                                metrics::OTHER_VERB
                            } else {
                                metrics::verb_label(text.as_str())
                            };
                            hub.metrics.observe(verb, elapsed);
                            reply
                        }
                        Message::Binary(_) => Some(ToClient::error(ErrorCode::BinaryNotSupported, "send JSON text messages")),
                        Message::Close(_) => break,
                        _ => None,
                    };
                    if let Some(reply) = reply {
                        hub.metrics.answered(&reply);
                        if !send_text(&mut socket, reply.to_json()).await {
                            break;
                        }
                    }
                }
                outgoing = rx.recv() => {
                    let Some(text) = outgoing else { break };
                    if !send_text(&mut socket, text).await {
                        break;
                    }
                }
                _ = shutdown.changed() => {
                    close(&mut socket, 1001, "coordinator shutting down").await;
                    break;
                }
            }
        }
    }
    hub.clients.lock().remove(&user_id);
    debug!(user_id, "client gone");
}

async fn node_ws(
    State(hub): State<Arc<Hub>>,
    ws: WebSocketUpgrade,
    request: axum::extract::Request,
) -> Response {
    let ip = client_ip(request.extensions().get::<ConnectInfo<SocketAddr>>());
    let cap = transport_cap(hub.coordinator.settings().max_message_bytes);
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| node_session(hub, socket, ip))
}

/// How often a node link looks whether the call settings changed (another coordinator may have
/// changed them).
const SETTINGS_POLL: Duration = Duration::from_secs(5);

/// `CALL_SETTINGS` when the stored settings are newer than `sent` (which then moves on).
async fn newer_settings(coordinator: &Coordinator, sent: &mut i64) -> Option<String> {
    let version = match coordinator.registry().call_settings_version().await {
        Ok(v) => v,
        Err(e) => {
            warn!(error = %e, "cannot read the call settings' version");
            return None;
        }
    };
    if version == *sent {
        return None;
    }
    match coordinator.registry().call_settings().await {
        Ok(settings) => {
            *sent = settings.version;
            Some(ToNode::CallSettings(Box::new(settings)).to_json())
        }
        Err(e) => {
            warn!(error = %e, "cannot read the call settings");
            None
        }
    }
}

fn node_error(code: &str, message: &str) -> String {
    ToNode::Error {
        code: code.into(),
        message: message.into(),
    }
    .to_json()
}

async fn node_session(hub: Arc<Hub>, mut socket: WebSocket, ip: IpAddr) {
    let coordinator = hub.coordinator.clone();
    let nonce = auth::new_nonce();
    if !send_text(
        &mut socket,
        ToNode::Challenge {
            nonce: nonce.clone(),
        }
        .to_json(),
    )
    .await
    {
        return;
    }
    // The first message must be a valid REGISTER_NODE within 10 s.
    let first = tokio::time::timeout(Duration::from_secs(10), socket.recv()).await;
    let Ok(Some(Ok(Message::Text(text)))) = first else {
        close(&mut socket, 1008, "expected REGISTER_NODE").await;
        return;
    };
    let reg = match serde_json::from_str::<FromNode>(text.as_str()) {
        Ok(FromNode::Register(reg)) => reg,
        _ => {
            send_text(
                &mut socket,
                node_error("NOT_REGISTERED", "the first message must be REGISTER_NODE"),
            )
            .await;
            close(&mut socket, 1008, "expected REGISTER_NODE").await;
            return;
        }
    };
    let secret = &coordinator.settings().cluster_secret;
    if !auth::verify(secret, &nonce, &reg.server_name, &reg.auth) {
        warn!(node = %reg.server_name, %ip, "node failed authentication");
        send_text(
            &mut socket,
            node_error("AUTH_FAILED", "the proof does not match the cluster secret"),
        )
        .await;
        close(&mut socket, 1008, "authentication failed").await;
        return;
    }
    if reg.server_name.is_empty()
        || reg.server_name.len() > 128
        || reg
            .apps
            .iter()
            .any(|a| a.rc_name.is_empty() || a.rc_name.len() > 128)
    {
        send_text(
            &mut socket,
            node_error(
                "BAD_MESSAGE",
                "server_name and rc_name must be 1 to 128 bytes",
            ),
        )
        .await;
        close(&mut socket, 1008, "bad registration").await;
        return;
    }
    let registered = match coordinator.register_node(&reg, coordinator.now()).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "node registration failed");
            send_text(
                &mut socket,
                node_error("INTERNAL", "the coordinator could not reach its registry"),
            )
            .await;
            close(&mut socket, 1011, "registry failure").await;
            return;
        }
    };
    let name = reg.server_name.clone();
    let (tx, mut rx) = mpsc::channel::<String>(QUEUE);
    // A node that reconnects replaces its old link (whose loop then ends).
    hub.nodes.lock().insert(name.clone(), tx.clone());
    info!(node = %name, %ip, "node linked");
    let mut shutdown = hub.shutdown.clone();
    // The call settings: now, when this process changes them, and when another coordinator
    // did (looked at every few seconds).
    let mut settings_sent = -1;
    let mut settings_changed = coordinator.watch_call_settings();
    let mut settings_poll = tokio::time::interval(SETTINGS_POLL);
    settings_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if send_text(&mut socket, registered.to_json()).await {
        loop {
            tokio::select! {
                _ = settings_poll.tick() => {
                    if let Some(text) = newer_settings(&coordinator, &mut settings_sent).await {
                        if !send_text(&mut socket, text).await {
                            break;
                        }
                    }
                }
                Ok(()) = settings_changed.changed() => {
                    if let Some(text) = newer_settings(&coordinator, &mut settings_sent).await {
                        if !send_text(&mut socket, text).await {
                            break;
                        }
                    }
                }
                incoming = socket.recv() => {
                    let Some(Ok(msg)) = incoming else { break };
                    match msg {
                        Message::Text(text) => match serde_json::from_str::<FromNode>(text.as_str()) {
                            Ok(msg) => {
                                let d = coordinator.handle_node(&name, msg, coordinator.now()).await;
                                hub.deliver(d).await;
                            }
                            Err(e) => {
                                if !send_text(&mut socket, node_error("BAD_MESSAGE", &e.to_string())).await {
                                    break;
                                }
                            }
                        },
                        Message::Close(_) => break,
                        _ => {}
                    }
                }
                outgoing = rx.recv() => {
                    let Some(text) = outgoing else { break };
                    if !send_text(&mut socket, text).await {
                        break;
                    }
                }
                _ = shutdown.changed() => {
                    close(&mut socket, 1001, "coordinator shutting down").await;
                    break;
                }
            }
        }
    }
    {
        let mut nodes = hub.nodes.lock();
        if nodes.get(&name).is_some_and(|t| t.same_channel(&tx)) {
            nodes.remove(&name);
        }
    }
    // Its sessions end when its heartbeats stop being seen (it may reconnect before that).
    info!(node = %name, "node link closed");
}

/// Serves the coordinator on `listener` (TLS when `tls` is given) until `shutdown` resolves:
/// the two WebSocket endpoints, the sweep and outbox tasks, and (stage 1) the re-reading of
/// `servers.json`. Returns when every connection has closed.
pub async fn serve(
    listener: TcpListener,
    coordinator: Arc<Coordinator>,
    tls: Option<orbita_tls::ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let hub = Hub::new(coordinator.clone());
    let background = tokio::spawn(hub.clone().run_background());
    let watcher = tokio::spawn(crate::files::watch(
        coordinator.clone(),
        hub.shutdown.clone(),
    ));
    let stop = {
        let hub = hub.clone();
        async move {
            shutdown.await;
            hub.shutdown();
        }
    };
    // Small JSON messages answered one at a time: Nagle's algorithm would hold each answer
    // back until the previous one is acknowledged (measured: joins by code 560/s, p99 47 ms
    // with it; 3,900/s, p99 6 ms without): orbita-listen sets TCP_NODELAY. Requests carry
    // the peer address (ConnectInfo) for the per-address limits.
    let stats = orbita_listen::ListenerStats::new();
    let app = orbita_listen::with_metrics(hub.router(), Arc::clone(&stats), HTTP_METRICS_PREFIX);
    let limits = coordinator.settings().listen_limits();
    let result = orbita_listen::serve(listener, app, tls, limits, stats, stop).await;
    hub.shutdown();
    let _ = background.await;
    let _ = watcher.await;
    result
}
