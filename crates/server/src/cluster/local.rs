//! `orbita serve`: the coordinator and one node in one process (the single-machine case).
//!
//! The media server's HTTP listener also serves the coordinator's two WebSockets
//! (`/coordinator` for clients, `/coordinator/node` for nodes), and the node links to them over
//! loopback with a secret made at start, exactly as a separate `orbita node` would: one code
//! path for both deployments, at the cost of one local WebSocket.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};
use orbita_coordinator::server::{Hub, NODE_PATH};
use orbita_coordinator::{Coordinator, Settings as CoordSettings};
use tokio::sync::watch;
use tracing::info;

use super::node::{start_media_with_routes, AppSpec, Node, NodeArgs, NodeSettings};
use crate::{ServeArgs, Settings};

/// Run the all-in-one server: media, signalling, the web client, and the coordinator with
/// this process as its one node.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AllInOneArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub serve: ServeArgs,

    /// The app catalogue (the node file of docs/coordinator.md: `apps`, `max_sessions`,
    /// `session_idle_secs`, `app_exit`). Default: a plain video room and the demo app.
    #[arg(long, env = "ORBITA_APPS_FILE", value_name = "FILE")]
    pub apps_file: Option<PathBuf>,

    /// Most coordinator sessions (apps and video rooms started from the home page) at once.
    /// Default: `max_rooms` (with an apps file: its `max_sessions`, else 1).
    #[arg(long, env = "ORBITA_MAX_SESSIONS", value_name = "N")]
    pub max_sessions: Option<u32>,

    /// The coordinator's registry database (`sqlite://FILE`, `postgres://...`,
    /// `mysql://...`). Default: in memory.
    #[arg(
        long,
        env = "ORBITA_COORDINATOR_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub coordinator_database_url: Option<String>,
}

/// The catalogue when no apps file is given: a plain video room and the demo app (this very
/// binary's `demo-app` subcommand).
pub fn default_apps() -> Vec<AppSpec> {
    let describe = |en: &str, ru: &str, kk: &str| serde_json::json!({ "description": [{ "en": en }, { "ru": ru }, { "kk": kk }] });
    let mut apps = vec![AppSpec {
        rc_name: "video-room".into(),
        command: Vec::new(),
        info: describe(
            "A video room: cameras, microphones, screen sharing and chat.",
            "Видеокомната: камеры, микрофоны, демонстрация экрана и чат.",
            "Бейне бөлме: камералар, микрофондар, экранды көрсету және чат.",
        ),
    }];
    if let Ok(exe) = std::env::current_exe() {
        apps.push(AppSpec {
            rc_name: "demo".into(),
            command: vec![exe.display().to_string(), "demo-app".into()],
            info: describe(
                "Demo app: a scene streamed from the server that follows the pointer of whoever holds control.",
                "Демо-приложение: сцена транслируется с сервера и следует за указателем того, у кого управление.",
                "Демо қолданба: серверден таратылатын көрініс басқаруды ұстаған адамның меңзерін қадағалайды.",
            ),
        });
    }
    apps
}

/// `orbita serve`: start everything, print where, run until SIGINT/SIGTERM, then shut down
/// cleanly (sessions and their apps end, participants are told).
pub async fn run_all_in_one(args: AllInOneArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(args.serve.clone())?;
    let max_rooms = u32::try_from(settings.max_rooms).unwrap_or(u32::MAX);
    let secret = random_secret();
    let coordinator_settings = CoordSettings {
        database_url: args.coordinator_database_url.clone().unwrap_or_default(),
        cluster_secret: secret.clone(),
        code_length: settings.code_length,
        ..CoordSettings::default()
    };
    coordinator_settings
        .validate()
        .map_err(|e| anyhow!("coordinator settings: {e}"))?;
    let coordinator = Arc::new(
        Coordinator::open(coordinator_settings, orbita_coordinator::now_ms())
            .await
            .map_err(|e| anyhow!("cannot open the coordinator: {e}"))?,
    );
    let hub = Hub::new(coordinator);
    let background = tokio::spawn(hub.clone().run_background());

    let (sfu, mut server) = start_media_with_routes(settings, Some(hub.router())).await?;
    let http = server.http_addr();
    let link_ip = if http.ip().is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        http.ip()
    };
    let node_args = NodeArgs {
        node_config: args.apps_file.clone(),
        coordinator_url: Some(format!(
            "ws://{}{NODE_PATH}",
            SocketAddr::new(link_ip, http.port())
        )),
        cluster_secret: Some(secret),
        server_name: Some("local".into()),
        max_sessions: args.max_sessions,
        ..NodeArgs::default()
    };
    let mut node_settings = NodeSettings::resolve(&node_args)?;
    if args.apps_file.is_none() {
        node_settings.apps = default_apps();
        node_settings.max_sessions = args.max_sessions.unwrap_or(max_rooms);
    }
    let node = Node::new(node_settings, sfu, &server);
    println!("{}", server.banner());
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
    node.end_all(crate::serve::SHUTDOWN_REASON);
    hub.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(2), background).await;
    server.shutdown().await.context("shutdown")?;
    result
}

/// 128 random bits as hex: the in-process node's cluster secret.
fn random_secret() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}
