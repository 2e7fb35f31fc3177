//! Starting and stopping the whole server: SFU, room reaper, HTTP + WebSocket.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::backend::MediaBackend;
use crate::recording_store::SWEEP_INTERVAL;
use crate::rooms::{spawn_reaper, RoomRegistry};
use crate::state::AppState;
use crate::Settings;

/// The prefix of the HTTP listener's metrics on `/metrics` (`orbita_http_connections_open`,
/// ...: [`orbita_listen::ListenerStats::prometheus_text`]).
pub const HTTP_METRICS_PREFIX: &str = "orbita_http";

/// The reason participants are given at shutdown.
pub const SHUTDOWN_REASON: &str = "server shutting down";

/// A server running in this process. Dropping it without [`shutdown`](Self::shutdown) stops
/// the HTTP server and the reaper abruptly but leaves the SFU to its own `Drop`.
pub struct RunningServer {
    state: AppState,
    http_addr: SocketAddr,
    reaper: JoinHandle<()>,
    trimmer: JoinHandle<()>,
    /// Deletes recordings past their retention and counts the disk they take (hourly).
    sweeper: JoinHandle<()>,
    http: JoinHandle<std::io::Result<()>>,
    stop_http: Option<oneshot::Sender<()>>,
    listener_stats: Arc<orbita_listen::ListenerStats>,
}

/// Start the server with the real SFU: bind the HTTP listener, start the SFU, serve.
pub async fn start(settings: Settings) -> anyhow::Result<RunningServer> {
    settings.validate()?;
    let listener = bind_http(settings.http_addr).await?;
    let config = settings.sfu_config();
    let sfu = tokio::task::spawn_blocking(move || orbita_sfu::Sfu::start(config))
        .await
        .context("the SFU failed to start")?
        .with_context(|| {
            let tcp = settings
                .tcp_addr
                .map_or_else(|| "off".to_string(), |a| a.to_string());
            format!(
                "cannot start the SFU (udp {}, tcp {tcp}); is another process using these ports?",
                settings.udp_addr
            )
        })?;
    serve(settings, listener, Arc::new(sfu), None)
}

/// Start the server on another media backend (tests use [`crate::testing::FakeBackend`]).
pub async fn start_with_backend(
    settings: Settings,
    backend: Arc<dyn MediaBackend>,
) -> anyhow::Result<RunningServer> {
    start_with_routes(settings, backend, None).await
}

/// Changes the media server's finished router before it serves: the all-in-one server merges
/// the coordinator's WebSockets and REST API and guards room creation with its accounts.
pub type RouterHook = Box<dyn FnOnce(axum::Router) -> axum::Router + Send>;

/// [`start_with_backend`], with the router passed through `extra` first (see [`RouterHook`]),
/// on the same listener.
pub async fn start_with_routes(
    settings: Settings,
    backend: Arc<dyn MediaBackend>,
    extra: Option<RouterHook>,
) -> anyhow::Result<RunningServer> {
    settings.validate()?;
    let listener = bind_http(settings.http_addr).await?;
    serve(settings, listener, backend, extra)
}

async fn bind_http(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen for HTTP on {addr} (http_addr)"))
}

fn serve(
    settings: Settings,
    listener: TcpListener,
    backend: Arc<dyn MediaBackend>,
    extra: Option<RouterHook>,
) -> anyhow::Result<RunningServer> {
    let http_addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let tls = orbita_tls::ServerTls::from_settings(&settings.tls)
        .map_err(|e| anyhow::anyhow!("TLS: {e}"))?;
    let public_url = settings.public_url_for(http_addr);
    let state = AppState::new(settings, public_url, backend);
    let reaper = spawn_reaper(Arc::clone(&state.registry));
    let trimmer = crate::memory::spawn_trimmer();
    let sweeper = spawn_sweeper(&state);
    let (stop_http, stopped) = oneshot::channel::<()>();
    let mut app = crate::http::router(state.clone());
    if let Some(extra) = extra {
        app = extra(app);
    }
    let app = crate::security_headers::layer(app);
    let stopped = async {
        let _ = stopped.await;
    };
    // With the peer address: the coordinator throttles code guessing per client address.
    let limits = state.settings.listen_limits();
    let listener_stats = orbita_listen::ListenerStats::new();
    let stats = Arc::clone(&listener_stats);
    let app = orbita_listen::with_metrics(app, Arc::clone(&stats), HTTP_METRICS_PREFIX);
    let http = tokio::spawn(orbita_listen::serve(
        listener, app, tls, limits, stats, stopped,
    ));
    tracing::info!(%http_addr, public_url = %state.public_url, "serving");
    Ok(RunningServer {
        state,
        http_addr,
        reaper,
        trimmer,
        sweeper,
        http,
        stop_http: Some(stop_http),
        listener_stats,
    })
}

/// The recordings' sweeper: at start and every [`SWEEP_INTERVAL`], delete the recordings (and
/// the files sent in chat) past `recording_retention_days` and count the disk the others take (the quota's measure). After
/// the first sweep, the post-processing a previous run left unfinished is queued.
fn spawn_sweeper(state: &AppState) -> JoinHandle<()> {
    let recordings = Arc::clone(&state.recordings);
    let files = Arc::clone(&state.files);
    let retention_days = state.settings.recording_retention_days;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        let mut first = true;
        loop {
            tick.tick().await;
            let recordings = Arc::clone(&recordings);
            let files = Arc::clone(&files);
            let _ = tokio::task::spawn_blocking(move || {
                let now = crate::recording_store::now_ms();
                recordings.sweep(now, retention_days);
                // The files sent in chat go with the calls' recordings.
                files.sweep(now, retention_days);
                if first {
                    recordings.queue_left_over();
                }
            })
            .await;
            first = false;
        }
    })
}

impl RunningServer {
    /// What the HTTP listener accepted and refused (its caps and timeouts), for metrics.
    pub fn listener_stats(&self) -> &Arc<orbita_listen::ListenerStats> {
        &self.listener_stats
    }

    /// The bound HTTP address (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The bound media UDP address (with `udp_port_range`: the address of the range's first
    /// port; [`udp_port_range`](Self::udp_port_range) has the rest).
    pub fn udp_addr(&self) -> SocketAddr {
        self.state.backend.udp_addr()
    }

    /// The media UDP port range, `None` when one port carries all media.
    pub fn udp_port_range(&self) -> Option<std::ops::RangeInclusive<u16>> {
        self.state.settings.udp_port_range.map(|r| r.first..=r.last)
    }

    /// Where media UDP is bound: `IP:PORT`, or `IP:FIRST-LAST` with a port range.
    fn media_udp(&self) -> String {
        let addr = self.udp_addr();
        match self.udp_port_range() {
            Some(r) => format!("{}:{}-{}", addr.ip(), r.start(), r.end()),
            None => addr.to_string(),
        }
    }

    /// The bound ICE-TCP address, if ICE-TCP is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.state.backend.tcp_addr()
    }

    /// The signalling URL, `ws://HTTP_ADDR/ws` (`wss://` on TLS).
    pub fn ws_url(&self) -> String {
        let scheme = if self.state.settings.tls.enabled() {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}/ws", self.http_addr)
    }

    /// The base URL of join links.
    pub fn public_url(&self) -> &str {
        &self.state.public_url
    }

    /// The per-client budget of wrong room codes (`orbita serve` shares it with its
    /// coordinator: [`crate::guesses::CodeGuesses::share`]).
    pub fn code_guesses(&self) -> &Arc<crate::guesses::CodeGuesses> {
        &self.state.guesses
    }

    /// Chat messages dropped by the per-participant chat limits so far.
    pub fn chat_dropped(&self) -> u64 {
        self.state
            .chat_dropped
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The room registry (to create rooms or look at counts without HTTP).
    pub fn registry(&self) -> &Arc<RoomRegistry> {
        &self.state.registry
    }

    /// This server's calls, as events for their records.
    pub fn call_log(&self) -> &Arc<crate::call_log::CallLog> {
        &self.state.call_log
    }

    /// Branding, consent and feature switches, as the coordinator gave them.
    pub fn call_settings(&self) -> &Arc<crate::call_settings::CallSettingsCache> {
        &self.state.call_settings
    }

    /// The call recordings (slots, those in progress).
    pub fn recordings(&self) -> &Arc<crate::recordings::Recordings> {
        &self.state.recordings
    }

    /// The one line `orbita serve` prints at start.
    pub fn banner(&self) -> String {
        let tcp = self
            .tcp_addr()
            .map_or_else(|| "off".to_string(), |a| a.to_string());
        let scheme = if self.state.settings.tls.enabled() {
            "https"
        } else {
            "http"
        };
        format!(
            "orbita listening on {scheme}://{} (media udp {}, tcp {tcp}); join links: {}",
            self.http_addr,
            self.media_udp(),
            self.public_url()
        )
    }

    /// Wait until the HTTP server stops by itself (which only an error makes it do).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        match (&mut self.http).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context("the HTTP server failed")),
            Err(e) => Err(anyhow::Error::new(e).context("the HTTP server task failed")),
        }
    }

    /// Stop cleanly: refuse new connections, let the SFU tell participants it is going away
    /// and close their media, close every signalling connection, then stop HTTP. Bounded by
    /// `shutdown_timeout_secs` (plus a second for the connections to close).
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let timeout = self.state.settings.shutdown_timeout();
        let deadline = Instant::now() + timeout;
        self.reaper.abort();
        self.trimmer.abort();
        self.sweeper.abort();
        self.state.connections.refuse_new();

        let backend = Arc::clone(&self.state.backend);
        tokio::task::spawn_blocking(move || backend.shutdown(SHUTDOWN_REASON, timeout))
            .await
            .context("SFU shutdown failed")?;

        self.state.connections.close_all();
        if let Some(stop) = self.stop_http.take() {
            let _ = stop.send(());
        }
        let rest = deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_secs(1));
        let connections = Arc::clone(&self.state.connections);
        let closed = tokio::time::timeout(rest, async {
            connections.wait_idle().await;
            self.wait().await
        })
        .await;
        match closed {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    open = self.state.connections.count(),
                    "connections still open at the shutdown timeout; dropping them"
                );
                Ok(())
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.reaper.abort();
        self.trimmer.abort();
        self.sweeper.abort();
        self.http.abort();
    }
}

/// `orbita serve`: start, print where, run until SIGINT/SIGTERM, then shut down cleanly.
pub async fn run_serve(settings: Settings) -> anyhow::Result<()> {
    let mut server = start(settings).await?;
    println!("{}", server.banner());
    tokio::select! {
        signal = crate::cluster::shutdown_signal() => {
            tracing::info!("{signal} received; shutting down");
        }
        result = server.wait() => {
            return result.and(Err(anyhow::anyhow!("the HTTP server stopped unexpectedly")));
        }
    }
    server.shutdown().await
}
