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

    /// The database of accounts, plans and the coordinator's registry (`sqlite://FILE`,
    /// `postgres://...`, `mysql://...`). Default: `sqlite://DATA_DIR/orbita.db`.
    #[arg(
        long,
        alias = "coordinator-database-url",
        env = "ORBITA_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Where the server keeps its files (the SQLite database unless --database-url says
    /// otherwise). Created when missing.
    #[arg(
        long,
        env = "ORBITA_DATA_DIR",
        value_name = "DIR",
        default_value = "data"
    )]
    pub data_dir: PathBuf,

    /// Let people who are not logged in start sessions (a kiosk or demo install). By default
    /// only agents, supervisors and administrators create and plan sessions; guests join by
    /// code (docs/roles.md).
    #[arg(long, env = "ORBITA_GUESTS_MAY_CREATE")]
    pub guests_may_create: bool,

    /// The first administrator's e-mail: with ORBITA_ADMIN_PASSWORD, creates that account at
    /// start while no administrator exists (else use `orbita admin create-user`).
    #[arg(long, env = "ORBITA_ADMIN_EMAIL", value_name = "EMAIL")]
    pub admin_email: Option<String>,

    /// The first administrator's password (see --admin-email); only from the environment.
    #[arg(skip = std::env::var("ORBITA_ADMIN_PASSWORD").ok())]
    pub admin_password: Option<String>,
}

impl AllInOneArgs {
    /// The database URL: the flag, else a SQLite file in the data directory (created).
    pub fn resolved_database_url(&self) -> anyhow::Result<String> {
        if let Some(url) = self.database_url.as_ref().filter(|u| !u.trim().is_empty()) {
            return Ok(url.clone());
        }
        std::fs::create_dir_all(&self.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                self.data_dir.display()
            )
        })?;
        Ok(format!(
            "sqlite://{}",
            self.data_dir.join("orbita.db").display()
        ))
    }
}

/// Creates the first administrator from `--admin-email` and ORBITA_ADMIN_PASSWORD while no
/// administrator exists; prints what it did.
pub async fn ensure_first_admin(
    coordinator: &Coordinator,
    email: Option<&str>,
    password: Option<&str>,
) -> anyhow::Result<()> {
    match (email, password) {
        (Some(email), Some(password)) => {
            let created = coordinator
                .accounts()
                .ensure_first_admin(email, password, orbita_coordinator::now_ms())
                .await
                .map_err(|e| anyhow!("cannot create the first administrator {email}: {e}"))?;
            if created {
                info!(email, "first administrator created");
            }
            Ok(())
        }
        (Some(_), None) => Err(anyhow!(
            "--admin-email (ORBITA_ADMIN_EMAIL) needs ORBITA_ADMIN_PASSWORD in the environment"
        )),
        _ => Ok(()),
    }
}

/// While no administrator exists: the first run's one-time setup token (docs/accounts.md).
pub async fn open_first_run(coordinator: &Coordinator) -> anyhow::Result<Option<String>> {
    coordinator
        .first_run()
        .open(coordinator.accounts())
        .await
        .map_err(|e| anyhow!("cannot check for an administrator: {e}"))
}

/// Prints the first run's setup link on the console (standard output, beside the banner):
/// only someone who sees this server's console or log can use it.
pub fn print_setup_link(base: &str, token: &str) {
    println!(
        "No administrator yet. Open this link to create one (it works once):\n  {}/setup?token={token}",
        base.trim_end_matches('/')
    );
}

/// Media-server routes the accounts guard: `POST /api/rooms` makes a room without the
/// coordinator, so it needs the same right as `CREATE_SESSION` (an active account, or
/// `guests_may_create`) and counts against the creator's quota like it; and, as every
/// cookie-authenticated state change, passes [`orbita_coordinator::accounts::csrf::check`].
async fn guard_room_creation(
    axum::extract::State(coordinator): axum::extract::State<Arc<Coordinator>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use orbita_coordinator::accounts::UseKind;
    use orbita_coordinator::verbs::{ErrorCode, ToClient};

    if request.method() != axum::http::Method::POST || request.uri().path() != "/api/rooms" {
        return next.run(request).await;
    }
    let refuse = |status: StatusCode, error: &str, message: &str| {
        (
            status,
            axum::Json(serde_json::json!({ "error": error, "message": message })),
        )
            .into_response()
    };
    // A cookie-authenticated state change: JSON or no body, and from this site's pages.
    let trust_proxy = coordinator.settings().trust_proxy_headers;
    let client = orbita_coordinator::accounts::http::ClientInfo::of(
        request.extensions(),
        request.headers(),
        trust_proxy,
    );
    if let Err(e) = orbita_coordinator::accounts::csrf::check(
        request.method(),
        request.headers(),
        client.https,
        trust_proxy,
    ) {
        return e.into_response();
    }
    let now = orbita_coordinator::now_ms();
    let caller = match coordinator
        .accounts()
        .user_from_headers(request.headers(), now)
        .await
    {
        Ok(caller) => caller,
        Err(e) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                &format!("cannot check the login: {e}"),
            )
        }
    };
    let user = match coordinator
        .authorize_creator(caller.as_ref(), 0, UseKind::Create, now)
        .await
    {
        Ok(user) => user,
        Err(outcome) => {
            let Some(ToClient::Error(e)) = outcome.reply else {
                return refuse(StatusCode::FORBIDDEN, "forbidden", "not allowed");
            };
            let status = match e.code {
                ErrorCode::LoginRequired => StatusCode::UNAUTHORIZED,
                ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::FORBIDDEN,
            };
            let error = match e.code {
                ErrorCode::LoginRequired => "not_logged_in".to_string(),
                code => code.as_str().to_ascii_lowercase(),
            };
            return refuse(status, &error, &e.message);
        }
    };
    if let Some(grant) = &user {
        // Its recordings will be this account's.
        request
            .extensions_mut()
            .insert(crate::http::RoomCreator(grant.user.id.to_string()));
    }
    if coordinator
        .settings()
        .must_record(ROOM_APP, user.as_ref().map(|g| g.user.role), false)
    {
        request.extensions_mut().insert(crate::http::RecordPolicy);
    }
    let response = next.run(request).await;
    if user.is_none() {
        return response;
    }
    if response.status() != StatusCode::CREATED {
        coordinator.release_use(user.as_ref()).await;
        return response;
    }
    // The room's code, for the quota's record (the body is a small JSON object).
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "unreadable answer",
            )
        }
    };
    let code = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_string))
        .unwrap_or_default();
    coordinator.record_use(user.as_ref(), &code).await;
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The recordings' list and downloads (`/api/recordings...`, crate::recording_files) ask the
/// accounts who the caller is: a logged-in account becomes the request's
/// [`Viewer`](crate::recording_files::Viewer) (supervisors and administrators see all).
async fn recordings_viewer(
    axum::extract::State(coordinator): axum::extract::State<Arc<Coordinator>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use orbita_coordinator::accounts::Role;

    if !request.uri().path().starts_with("/api/recordings") {
        return next.run(request).await;
    }
    let now = orbita_coordinator::now_ms();
    if let Ok(Some(user)) = coordinator
        .accounts()
        .user_from_headers(request.headers(), now)
        .await
    {
        request
            .extensions_mut()
            .insert(crate::recording_files::Viewer {
                account: user.id.to_string(),
                all: matches!(user.role, Role::Admin | Role::Supervisor),
                admin: user.role == Role::Admin,
            });
    }
    next.run(request).await
}

/// `GET /metrics` and `GET /healthz` of the all-in-one server: the media server's metrics
/// page with the coordinator's appended (both in the Prometheus text format, names apart),
/// and healthy only while the coordinator's database answers too (else 503 with the reason).
async fn with_coordinator_ops(
    axum::extract::State(hub): axum::extract::State<Arc<Hub>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::{header, Method, StatusCode};
    use axum::response::IntoResponse;

    let path = request.uri().path();
    let metrics = path == "/metrics";
    if request.method() != Method::GET || !(metrics || path == "/healthz") {
        return next.run(request).await;
    }
    let response = next.run(request).await;
    if !response.status().is_success() {
        return response;
    }
    if !metrics {
        return match hub.health().await {
            Ok(()) => response,
            Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
        };
    }
    let (mut parts, body) = response.into_parts();
    let Ok(media) = axum::body::to_bytes(body, 16 << 20).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut page = media.to_vec();
    page.extend_from_slice(hub.metrics_text().await.as_bytes());
    parts.headers.remove(header::CONTENT_LENGTH);
    axum::response::Response::from_parts(parts, axum::body::Body::from(page))
}

/// The app of a plain video room (`POST /api/rooms` makes one without the coordinator; the
/// recording policy's `record_apps` names it so).
pub const ROOM_APP: &str = crate::rooms::PLAIN_ROOM_APP;

/// The catalogue when no apps file is given: a plain video room and the demo app (this very
/// binary's `demo-app` subcommand).
pub fn default_apps() -> Vec<AppSpec> {
    let describe = |en: &str, ru: &str, kk: &str| serde_json::json!({ "description": [{ "en": en }, { "ru": ru }, { "kk": kk }] });
    let mut apps = vec![AppSpec {
        rc_name: ROOM_APP.into(),
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
    let mut settings = Settings::from_args(args.serve.clone())?;
    if settings.files_dir.is_none() {
        settings.files_dir = Some(args.data_dir.join("files"));
    }
    if settings.recordings_dir.is_none() {
        settings.recordings_dir = Some(args.data_dir.join("recordings"));
    }
    if !settings.tls.acme_domains.is_empty() && settings.tls.acme_cache_dir.is_none() {
        // The certificate is kept with the database, where restarts find it.
        settings.tls.acme_cache_dir = Some(args.data_dir.join("acme"));
    }
    let max_rooms = u32::try_from(settings.max_rooms).unwrap_or(u32::MAX);
    let secret = random_secret();
    let coordinator_settings = CoordSettings {
        database_url: args.resolved_database_url()?,
        cluster_secret: secret.clone(),
        code_length: settings.code_length,
        guests_may_create: args.guests_may_create,
        trust_proxy_headers: settings.trust_proxy_headers,
        record_roles: settings
            .record_roles
            .iter()
            .map(|r| serde_json::from_value(serde_json::Value::String(r.clone())))
            .collect::<Result<_, _>>()
            .map_err(|e| anyhow!("record_roles: {e}"))?,
        record_apps: settings.record_apps.clone(),
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
    ensure_first_admin(
        &coordinator,
        args.admin_email.as_deref(),
        args.admin_password.as_deref(),
    )
    .await?;
    let setup_token = open_first_run(&coordinator).await?;
    let hub = Hub::new(coordinator.clone());
    let background = tokio::spawn(hub.clone().run_background());

    let routes = hub.service_router();
    let ops_hub = hub.clone();
    let guesses = coordinator.code_guesses();
    let local_rooms_of = Arc::clone(&coordinator);
    let grant_secret: Arc<str> = secret.clone().into();
    let hook: crate::serve::RouterHook = Box::new(move |app: axum::Router| {
        app.merge(routes)
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&coordinator),
                recordings_viewer,
            ))
            .layer(axum::middleware::from_fn_with_state(
                grant_secret,
                crate::recording_grants::grant_viewer,
            ))
            .layer(axum::middleware::from_fn_with_state(
                coordinator,
                guard_room_creation,
            ))
            .layer(axum::middleware::from_fn_with_state(
                ops_hub,
                with_coordinator_ops,
            ))
    });
    let tls = settings.tls.enabled();
    let server_limits = settings.listen_limits();
    let (sfu, mut server) = start_media_with_routes(settings, Some(hook)).await?;
    // One budget of wrong codes per client: the media server's lookups (`/api/rooms/{code}`,
    // `join`, WHIP) and the coordinator's code verbs count the same misses.
    server.code_guesses().share(guesses);
    // Rooms of the media server are not coordinator sessions: the page asks the coordinator
    // about a joined room's code (to hear of a planned session's end), which is no guess.
    let registry = Arc::clone(server.registry());
    local_rooms_of.set_local_rooms(Arc::new(move |code: &str| registry.get(code).is_some()));
    // The node links to the coordinator over loopback as a separate `orbita node` would: on
    // the HTTP listener, or, when that speaks TLS (with a certificate for a public name), on
    // a plain loopback listener of its own that serves only the node endpoint.
    let (link_addr, internal) = if tls {
        let listener = tokio::net::TcpListener::bind((IpAddr::from([127, 0, 0, 1]), 0))
            .await
            .context("cannot open the loopback listener for the local node link")?;
        let addr = listener.local_addr()?;
        // Only this process's node connects: the public listener's limits are plenty.
        let task = tokio::spawn(orbita_listen::serve(
            listener,
            hub.node_router(),
            None,
            server_limits,
            orbita_listen::ListenerStats::new(),
            std::future::pending(),
        ));
        (addr, Some(task))
    } else {
        let http = server.http_addr();
        let ip = if http.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            http.ip()
        };
        (SocketAddr::new(ip, http.port()), None)
    };
    let node_args = NodeArgs {
        node_config: args.apps_file.clone(),
        coordinator_url: Some(format!("ws://{link_addr}{NODE_PATH}")),
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
    if let Some(token) = setup_token {
        print_setup_link(server.public_url(), &token);
    }
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
    if let Some(internal) = internal {
        internal.abort();
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), background).await;
    server.shutdown().await.context("shutdown")?;
    result
}

/// 128 random bits as hex: the in-process node's cluster secret.
fn random_secret() -> String {
    orbita_coordinator::logic::random_hex(16)
}
