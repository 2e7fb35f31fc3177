//! The HTTP API and pages.
//!
//! | route | answer |
//! |---|---|
//! | `POST /api/rooms` | body none or `{"record":true}`; 201 `{"code","link","whip_url","whip_token","host_key","record"}`; 503 at the room limit; 409 `recording_off` for `record` on a server without recorder slots |
//! | `GET /api/rooms/{code}/recording`, `POST` (body `{"on":bool}`) | `Authorization: Bearer <host key>`: the call's recording ([`crate::recording_api`]) |
//! | `GET /api/recordings`, `GET /api/recordings/{id}/{file}` | the recordings' list and downloads, for their owner, supervisors and administrators ([`crate::recording_files`]) |
//! | `GET /api/rooms/{code}` | 200 `{"code","participants","recording"}`; 404 `unknown_code` (from an address's third wrong code in 10 minutes on, answered late: 0.25 s, doubling, at most 4 s); 429 `locked_out` after 10 wrong codes from an address in 10 minutes (for 15 minutes; `join` on `/ws` and WHIP count too: [`crate::guesses`]) |
//! | `HEAD`/`PATCH /api/uploads/{id}`, `GET /api/files/{id}?key=` | files sent in a call's chat: resumable uploads (tus 1.0) and downloads with the call's key ([`crate::call_files_http`]) |
//! | `GET /healthz` | `ok` |
//! | `GET /metrics` | Prometheus text format |
//! | `GET /`, `GET /r/{code}` | the browser client's pages ([`crate::pages`]); `/r/{code}` is the same page, 200, for every code (it does not tell which codes are live) |
//! | `GET /signup`, `/login`, `/admin`, `/plan`, `/plans`, `/recordings`, `/calls`, `/setup` | the account pages ([`pages::ACCOUNT_PAGES`]; the coordinator's `/api/auth`, `/api/admin`, `/api/plans` and `/api/slots` do the work and check roles) |
//! | `GET /assets/{path}` | the browser client's static files (embedded `web/`), with `ETag` |
//! | `GET /ws` | the signalling WebSocket ([`crate::ws`]) |
//! | `POST /whip/{code}`, `DELETE /whip/{code}/{id}` | WHIP ingest ([`crate::whip`]) |
//!
//! Every error is JSON: `{"error": "<code>", "message": "<for people>"}`.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use orbita_coordinator::accounts::http::client_addr;
use serde::{Deserialize, Serialize};

use crate::call_files_http;
use crate::metrics::{self, ControlStats};
use crate::pages;
use crate::recording_api;
use crate::recording_files;
use crate::rooms::CreateError;
use crate::state::AppState;
use crate::whip;
use crate::ws;

/// The whole HTTP surface of the server.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/rooms", post(create_room))
        .route("/api/rooms/{code}", get(get_room))
        .route(
            "/api/rooms/{code}/recording",
            get(recording_api::state).post(recording_api::set),
        )
        .route("/api/recordings", get(recording_files::index))
        .route(
            "/api/recordings/{id}/{file}",
            get(recording_files::download),
        )
        .route(
            "/api/uploads/{id}",
            axum::routing::head(call_files_http::head).patch(call_files_http::patch),
        )
        .route("/api/files/{id}", get(call_files_http::download))
        .route("/api/branding", get(crate::call_settings::branding))
        .route("/api/branding/logo", get(crate::call_settings::logo))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .route("/", get(index_page))
        .route("/r/{code}", get(room_page))
        .route("/signup", get(|| account_page("signup")))
        .route("/login", get(|| account_page("login")))
        .route("/admin", get(|| account_page("admin")))
        .route("/plan", get(|| account_page("plan")))
        .route("/plans", get(|| account_page("plans")))
        .route("/recordings", get(|| account_page("recordings")))
        .route("/calls", get(|| account_page("calls")))
        .route("/setup", get(|| account_page("setup")))
        .route("/assets/{*path}", get(asset_file))
        .route("/ws", get(ws::upgrade))
        .route("/whip/{code}", post(whip::publish))
        .route(
            "/whip/{code}/{resource}",
            delete(whip::stop).patch(whip::patch),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// An error answered as `{"error": code, "message": message}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable, machine-readable error code.
    pub error: &'static str,
    /// Explanation for people.
    pub message: String,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error,
            message: message.into(),
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.error,
            message: &self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

/// Answer of `POST /api/rooms`.
#[derive(Debug, Serialize)]
struct CreatedBody {
    code: String,
    link: String,
    /// Where to publish into the room by WHIP (OBS, GStreamer).
    whip_url: String,
    /// The bearer token WHIP publishing needs; only the room's creator is given it.
    whip_token: String,
    /// The creator's secret: `join` with it makes the call's agent (who may record); also the
    /// bearer token of `/api/rooms/{code}/recording`. Never put it in the link for guests.
    host_key: String,
    /// Whether the call will be recorded from its first participant on.
    record: bool,
}

/// The account creating a room, when the accounts guard (`orbita serve`) knows it: the room's
/// recordings are theirs.
#[derive(Debug, Clone)]
pub struct RoomCreator(pub String);

/// Set by the accounts guard (`orbita serve`) when the recording policy (`record_roles`,
/// `record_apps`) records the room being created, from its first participant on.
#[derive(Debug, Clone, Copy)]
pub struct RecordPolicy;

/// The optional body of `POST /api/rooms`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// Record the call from its first participant on.
    #[serde(default)]
    record: bool,
}

/// Answer of `GET /api/rooms/{code}`.
#[derive(Debug, Serialize)]
struct RoomBody {
    code: String,
    participants: usize,
    /// Whether the call is (or will be, from its first participant on) recorded: the
    /// pre-join page says so before anyone joins.
    recording: bool,
}

async fn create_room(
    State(state): State<AppState>,
    creator: Option<Extension<RoomCreator>>,
    policy: Option<Extension<RecordPolicy>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let options: CreateBody = if body.iter().all(u8::is_ascii_whitespace) {
        CreateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                format!("the body must be a JSON object like {{\"record\":true}}: {e}"),
            )
        })?
    };
    if options.record && state.settings.recording_slots == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "recording_off",
            "recording is off on this server (recording_slots = 0)",
        ));
    }
    if state.connections.is_refusing() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is shutting down",
        ));
    }
    let room = state
        .registry
        .create(Instant::now())
        .map_err(|e: CreateError| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            )
        })?;
    let record = options.record || policy.is_some();
    if record {
        state.registry.set_record(&room.code);
    }
    if let Some(Extension(RoomCreator(account))) = creator {
        state.registry.set_owner(&room.code, account);
    }
    let link = format!("{}/r/{}", state.public_url, room.code);
    let body = CreatedBody {
        whip_url: format!("{}/whip/{}", state.public_url, room.code),
        whip_token: room.publish_token,
        host_key: room.host_key,
        record: state
            .recordings
            .records_from_the_start(record || state.settings.record_calls),
        code: room.code,
        link: link.clone(),
    };
    Ok((StatusCode::CREATED, [(header::LOCATION, link)], Json(body)).into_response())
}

/// The path's `{code}`, or a JSON error if it cannot be decoded.
fn code_param(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(code)| code).map_err(|rejection| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            rejection.body_text(),
        )
    })
}

async fn get_room(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<RoomBody>, ApiError> {
    let code = code_param(path)?;
    let client = client_addr(peer.ip(), &headers, state.settings.trust_proxy_headers);
    let (found, delay) = state
        .guesses
        .attempt(client, || state.registry.get(&code), Option::is_none)
        .map_err(|locked| locked_out(locked.retry_after_secs))?;
    match found {
        Some(room) => Ok(Json(RoomBody {
            recording: state
                .recordings
                .announced(&room.code, room.record, room.auto_recorded),
            code: room.code,
            participants: room.participants,
        })),
        None => {
            // Held back from the third miss on: guessing is slow before it is locked out.
            tokio::time::sleep(delay).await;
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_code",
                format!("no room has code {}", crate::ws::shown(&code)),
            ))
        }
    }
}

/// 429 `locked_out` with `Retry-After`, for a client that guessed too many wrong codes.
pub(crate) fn locked_out(retry_after_secs: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "locked_out",
        crate::guesses::locked_out_message(retry_after_secs),
    )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics_page(State(state): State<AppState>) -> Response {
    let guesses = state.guesses.counts();
    let control = ControlStats {
        rooms: state.registry.room_count(),
        participants: state.registry.participant_count(),
        ws_connections: state.connections.count(),
        code_misses: guesses.misses,
        code_lockouts: guesses.lockouts,
        code_refused: guesses.refused,
        chat_rate_limited: state
            .chat_dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        recordings_active: state.recordings.active() as u64,
        recordings_stored: state.recordings.usage().recordings(),
        recordings_disk_bytes: state.recordings.usage().bytes(),
        recordings_deleted: state.recordings.usage().deleted(),
        call_events_dropped: state.call_log.dropped(),
    };
    let sfu = state.backend.stats();
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::render(&control, &sfu),
    )
        .into_response()
}

async fn index_page() -> Html<String> {
    Html(pages::index())
}

/// An account page (sign-up, log-in, administration, planning, all plans): the same shell for
/// everyone; its script asks the coordinator's API who is logged in.
async fn account_page(kind: &'static str) -> Html<String> {
    Html(pages::account_page(kind))
}

/// `GET /r/{code}`: the same page for every code, live or not, so the page tells nothing
/// about which codes are live (its script looks the code up through the counted API, and
/// `join` decides).
async fn room_page(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let code = code_param(path)?;
    Ok(Html(pages::room(&code, &state.public_url)).into_response())
}

/// `GET /assets/{path}`: an embedded file of the browser client. Revalidated on each load
/// (`no-cache`) and answered `304` when the browser's `If-None-Match` still matches.
async fn asset_file(
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let path = code_param(path)?;
    let Some(asset) = pages::asset(&path) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no file {}", crate::ws::shown(&path)),
        ));
    };
    let cache = (header::CACHE_CONTROL, "no-cache".to_string());
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    if fresh {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, asset.etag), cache],
        )
            .into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, asset.content_type.to_string()),
            (header::ETAG, asset.etag),
            cache,
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        asset.body.into_owned(),
    )
        .into_response())
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeBackend;
    use crate::Settings;
    use axum::body::Body;
    use axum::http::Request;
    use std::sync::Arc;
    use tower::ServiceExt;

    /// The router on a fake backend; wrong codes are answered at once (no delays) here.
    fn app(settings: Settings) -> (Router, AppState) {
        let state = AppState::new(
            Settings {
                code_miss_delay_ms: 0,
                ..settings
            },
            "http://orbita.test".into(),
            Arc::new(FakeBackend::default()),
        );
        (router(state.clone()), state)
    }

    async fn call(app: &Router, method: &str, uri: &str) -> (StatusCode, String) {
        call_via(app, method, uri, None).await
    }

    /// A request from 192.0.2.7 (a proxy, when `forwarded_for` gives its X-Forwarded-For).
    async fn call_via(
        app: &Router,
        method: &str,
        uri: &str,
        forwarded_for: Option<&str>,
    ) -> (StatusCode, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .extension(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 40000))));
        if let Some(v) = forwarded_for {
            request = request.header("x-forwarded-for", v);
        }
        let request = request.body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    fn json(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    #[tokio::test]
    async fn post_rooms_creates_a_room_with_code_and_link() {
        let (app, _) = app(Settings::default());
        let (status, body) = call(&app, "POST", "/api/rooms").await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let body = json(&body);
        let code = body["code"].as_str().unwrap();
        assert_eq!(code.len(), 4);
        assert_eq!(body["link"], format!("http://orbita.test/r/{code}"));

        let (status, room) = call(&app, "GET", &format!("/api/rooms/{code}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            json(&room),
            serde_json::json!({"code": code, "participants": 0, "recording": false})
        );

        let (status, page) = call(&app, "GET", &format!("/r/{code}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(code));
    }

    #[tokio::test]
    async fn unknown_codes_get_a_json_404() {
        let (app, _) = app(Settings::default());
        let (status, body) = call(&app, "GET", "/api/rooms/0000").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let body = json(&body);
        assert_eq!(body["error"], "unknown_code");
        assert!(body["message"].as_str().unwrap().contains("0000"));
        // Guessing: after MAX_MISSES wrong codes the address is locked out, right codes too.
        for n in 1..crate::guesses::MAX_MISSES {
            let (status, _) = call(&app, "GET", &format!("/api/rooms/{n:04}")).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        let (status, body) = call(&app, "GET", "/api/rooms/0000").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(json(&body)["error"], "locked_out");

        // The page is the same for any code (it tells nothing), and escapes it.
        let (status, page) = call(&app, "GET", "/r/%3Cscript%3E").await;
        assert_eq!(status, StatusCode::OK);
        assert!(!page.contains("<script>"), "code must be escaped: {page}");
    }

    #[tokio::test]
    async fn behind_a_trusted_proxy_guesses_count_per_forwarded_address() {
        let guess = |n: u32| format!("/api/rooms/{n:04}");
        let (proxied, _) = app(Settings {
            trust_proxy_headers: true,
            ..Settings::default()
        });
        // 198.51.100.1 guesses until locked out; it may not shift the blame by prepending
        // another address (the proxy appends the real one last).
        for n in 1..=crate::guesses::MAX_MISSES {
            let (status, _) = call_via(&proxied, "GET", &guess(n), Some("198.51.100.1")).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        let spoofed = Some("198.51.100.2, 198.51.100.1");
        let (status, _) = call_via(&proxied, "GET", &guess(0), spoofed).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        // Everyone else behind the same proxy is still served.
        let (status, body) = call_via(&proxied, "GET", &guess(0), Some("198.51.100.2")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let (status, _) = call(&proxied, "GET", &guess(0)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // Not trusted (the default): the header is ignored and the proxy's address counts.
        let (direct, _) = app(Settings::default());
        for n in 1..=crate::guesses::MAX_MISSES {
            let forwarded = format!("198.51.100.{n}");
            let (status, _) = call_via(&direct, "GET", &guess(n), Some(&forwarded)).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        let (status, _) = call_via(&direct, "GET", &guess(0), Some("203.0.113.9")).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }

    #[tokio::test]
    async fn room_limit_gives_503_json() {
        let (app, _) = app(Settings {
            max_rooms: 1,
            ..Settings::default()
        });
        assert_eq!(
            call(&app, "POST", "/api/rooms").await.0,
            StatusCode::CREATED
        );
        let (status, body) = call(&app, "POST", "/api/rooms").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(json(&body)["error"], "unavailable");
    }

    #[tokio::test]
    async fn health_metrics_pages_and_json_errors() {
        let (app, _) = app(Settings::default());
        assert_eq!(
            call(&app, "GET", "/healthz").await,
            (StatusCode::OK, "ok".into())
        );
        call(&app, "POST", "/api/rooms").await;
        let (status, metrics) = call(&app, "GET", "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(metrics.contains("\norbita_rooms 1\n"), "{metrics}");
        assert!(metrics.contains("orbita_packets_in_total 0"));
        let (status, index) = call(&app, "GET", "/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(index.contains("Orbita"));
        for (path, kind) in pages::ACCOUNT_PAGES {
            let (status, page) = call(&app, "GET", path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(
                page.contains(&format!("data-page=\"{kind}\"")),
                "{path}: {page}"
            );
        }

        let (status, body) = call(&app, "GET", "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json(&body)["error"], "not_found");
        let (status, body) = call(&app, "DELETE", "/api/rooms").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(json(&body)["error"], "method_not_allowed");
        // The browser client's files are served with their types; unknown ones are JSON 404s.
        let (status, js) = call(&app, "GET", "/assets/js/app.js").await;
        assert_eq!(status, StatusCode::OK);
        assert!(js.contains("import"), "{js}");
        let request = Request::builder()
            .uri("/assets/css/app.css")
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/css; charset=utf-8"
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = response.headers()[header::ETAG].clone();
        let request = Request::builder()
            .uri("/assets/css/app.css")
            .header(header::IF_NONE_MATCH, etag)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        let (status, body) = call(&app, "GET", "/assets/js/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json(&body)["error"], "not_found");
        // A plain GET of the WebSocket endpoint is a JSON error, not a hang or a crash.
        let (status, body) = call(&app, "GET", "/ws").await;
        assert!(status.is_client_error(), "{status}");
        assert_eq!(json(&body)["error"], "websocket_required");
    }
}
