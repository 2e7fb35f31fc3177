//! The accounts REST API (docs/accounts.md): `/api/auth/*` for everyone, `/api/admin/*` for
//! administrators, and the pieces other routes reuse: [`ApiError`] (`{"error","message"}`),
//! [`JsonBody`] (at most [`MAX_BODY`] bytes), [`require`] (the caller, with one of some roles)
//! and [`ClientInfo`] (address and HTTPS).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::{HeaderValue, RETRY_AFTER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use tracing::warn;

use super::{tokens, AccountError, Accounts, Login, Quota, Role, Status, User};
use crate::clock::Millis;
use crate::coordinator::Coordinator;

/// Largest request body (64 KiB).
pub const MAX_BODY: usize = 64 * 1024;
/// Most accounts one `GET /api/admin/users` lists.
pub const MAX_LIST: u64 = 1000;

/// An API failure: HTTP status, `{"error": code, "message": text}`, and for `429` a
/// `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// For programs (`not_logged_in`, `forbidden`, `bad_request`, ...).
    pub code: String,
    /// For people.
    pub message: String,
    /// Seconds until a retry may succeed (sent as `Retry-After`).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            retry_after_secs: None,
        }
    }
    /// `400 bad_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    /// `401 not_logged_in`.
    pub fn not_logged_in() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "not_logged_in", "log in first")
    }
    /// `403 forbidden`.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    /// `404 not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    /// `500 internal` (the cause is logged, not sent).
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        warn!(error = %e, "accounts API failure");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the coordinator could not reach its database; try again",
        )
    }
    /// The same error with another `error` code.
    pub fn with_code(mut self, code: &str) -> ApiError {
        self.code = code.to_string();
        self
    }
    /// With a `Retry-After` of `ms` (rounded up to seconds).
    pub fn retry_after_ms(mut self, ms: Millis) -> ApiError {
        self.retry_after_secs = Some((ms.max(0) as u64).div_ceil(1000).max(1));
        self
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"error": self.code, "message": self.message})),
        )
            .into_response();
        if let Some(s) = self.retry_after_secs {
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from(s));
        }
        r
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        use StatusCode as S;
        match e {
            AccountError::Invalid { code, message } => ApiError::new(S::BAD_REQUEST, code, message),
            AccountError::EmailTaken => ApiError::new(S::CONFLICT, "email_taken", e.to_string()),
            AccountError::BadCredentials => {
                ApiError::new(S::UNAUTHORIZED, "bad_credentials", e.to_string())
            }
            AccountError::Pending => ApiError::new(S::FORBIDDEN, "account_pending", e.to_string()),
            AccountError::Rejected(reason) => {
                ApiError::new(S::FORBIDDEN, "account_rejected", reason)
            }
            AccountError::LockedOut(ms) => {
                ApiError::new(S::TOO_MANY_REQUESTS, "locked_out", e.to_string()).retry_after_ms(ms)
            }
            AccountError::Delayed(ms) => {
                ApiError::new(S::TOO_MANY_REQUESTS, "locked_out", e.to_string()).retry_after_ms(ms)
            }
            AccountError::Busy => {
                ApiError::new(S::TOO_MANY_REQUESTS, "busy", e.to_string()).retry_after_ms(1000)
            }
            AccountError::RateLimited(ms) => {
                ApiError::new(S::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
                    .retry_after_ms(ms)
            }
            AccountError::NotFound => ApiError::not_found(e.to_string()),
            AccountError::Forbidden(m) => ApiError::forbidden(m),
            AccountError::Db(_) | AccountError::Hash(_) => ApiError::internal(e),
        }
    }
}

/// A JSON request body of at most [`MAX_BODY`] bytes (`413 too_large` beyond), parsed into
/// `T` (`400 bad_request` naming the field otherwise). An empty body reads as `{}`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("request bodies are at most {MAX_BODY} bytes"),
                )
            })?;
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(body)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("request body: {e}")))
    }
}

/// Marks requests that came over TLS (the servers' TLS listeners add it as an extension).
pub use orbita_tls::Https;

/// Where a request came from: the client's address and whether it came over HTTPS (with
/// `trust_proxy_headers`: `X-Forwarded-For` / `X-Forwarded-Proto` of the proxy).
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    /// The client's address (0.0.0.0 when the server gives none).
    pub addr: IpAddr,
    /// Over HTTPS.
    pub https: bool,
}

impl ClientInfo {
    /// From a request's parts.
    pub fn of(parts_ext: &axum::http::Extensions, headers: &HeaderMap, trust_proxy: bool) -> Self {
        let peer = parts_ext
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let addr = client_addr(peer, headers, trust_proxy);
        let mut https = parts_ext.get::<Https>().is_some();
        if trust_proxy {
            let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            if header("x-forwarded-proto").is_some_and(|p| p.trim().eq_ignore_ascii_case("https")) {
                https = true;
            }
        }
        ClientInfo { addr, https }
    }
}

/// The address a request came from: the TCP peer, or, with `trust_proxy` (behind a reverse
/// proxy you run), the last `X-Forwarded-For` entry: the one your proxy appended (nginx's
/// `$proxy_add_x_forwarded_for`). Entries before it are whatever the client sent, so they are
/// never believed: a client cannot pick the address its code guesses or sign-ups count against.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trust_proxy: bool) -> IpAddr {
    if !trust_proxy {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(peer)
}

impl FromRequestParts<Arc<Coordinator>> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<Coordinator>,
    ) -> Result<Self, ApiError> {
        Ok(ClientInfo::of(
            &parts.extensions,
            &parts.headers,
            state.settings().trust_proxy_headers,
        ))
    }
}

/// The logged-in caller of a request, who must have one of `roles`: `401 not_logged_in`
/// without a valid login, `403 forbidden` with another role.
pub async fn require(
    coord: &Coordinator,
    headers: &HeaderMap,
    roles: &[Role],
) -> Result<User, ApiError> {
    let user = coord
        .accounts()
        .user_from_headers(headers, coord.now())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::not_logged_in)?;
    if !roles.contains(&user.role) {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        return Err(ApiError::forbidden(format!(
            "this needs the role {} (yours: {})",
            names.join(" or "),
            user.role
        )));
    }
    Ok(user)
}

/// Every role.
pub const ANY_ROLE: &[Role] = &Role::ALL;
/// Administrators only.
pub const ADMIN: &[Role] = &[Role::Admin];

/// The accounts routes (state: the coordinator): `/api/auth/*`, `/api/admin/*`, and a JSON
/// `404` for any other `/api/...` path.
pub fn router() -> Router<Arc<Coordinator>> {
    Router::new()
        .route("/api/auth/signup", post(signup))
        .route("/api/auth/login", post(login))
        .route("/api/auth/logout", post(logout))
        .route("/api/auth/me", get(me))
        .route("/api/auth/password", post(change_password))
        .route("/api/admin/users", get(list_users))
        .route("/api/admin/users/{id}", put(update_user))
        .route("/api/admin/users/{id}/approve", post(approve))
        .route("/api/admin/users/{id}/reject", post(reject))
        .route("/api/admin/quotas", get(get_quotas).put(put_quotas))
        .route("/api/setup", get(setup_state).post(setup))
        .route("/api/{*rest}", any(no_such_api))
}

/// `GET /api/setup`: whether this server's first-run link is still open.
async fn setup_state(State(c): Coord) -> Json<Value> {
    Json(json!({"open": c.first_run().is_open()}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupBody {
    token: String,
    email: String,
    password: String,
}

/// `POST /api/setup`: the first administrator, through the one-time link the server printed;
/// logged in at once (cookie).
async fn setup(
    State(c): Coord,
    client: ClientInfo,
    JsonBody(b): JsonBody<SetupBody>,
) -> Result<Response, ApiError> {
    use super::first_run::SetupError;
    let accounts = c.accounts();
    let login = c
        .first_run()
        .finish(accounts, &b.token, &b.email, &b.password, c.now())
        .await
        .map_err(|e| match e {
            SetupError::Done => ApiError::new(
                StatusCode::GONE,
                "setup_done",
                "this server has its administrator; log in instead",
            ),
            SetupError::BadToken => ApiError::forbidden(
                "this setup link is not this server's (use the one it printed when it started)",
            )
            .with_code("bad_setup_token"),
            SetupError::Account(e) => e.into(),
        })?;
    tracing::info!(email = %login.user.email, "first administrator created through the setup link");
    Ok((
        StatusCode::CREATED,
        [(SET_COOKIE, login_cookie(accounts, &login, client.https))],
        Json(json!({"user": login.user.to_json()})),
    )
        .into_response())
}

async fn no_such_api() -> ApiError {
    ApiError::not_found("no such API")
}

type Coord = State<Arc<Coordinator>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupBody {
    email: String,
    password: String,
    name: String,
    #[serde(default)]
    time_zone: Option<String>,
}

async fn signup(
    State(c): Coord,
    client: ClientInfo,
    JsonBody(b): JsonBody<SignupBody>,
) -> Result<Response, ApiError> {
    let user = c
        .accounts()
        .signup(
            &b.email,
            &b.password,
            &b.name,
            b.time_zone.as_deref(),
            &client.addr.to_string(),
            c.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(json!({"user": user.to_json()}))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
    #[serde(default)]
    token: bool,
}

async fn login(
    State(c): Coord,
    client: ClientInfo,
    JsonBody(b): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let accounts = c.accounts();
    let login = accounts
        .login_from(&b.email, &b.password, &client.addr.to_string(), c.now())
        .await?;
    let user = login.user.to_json();
    if b.token {
        return Ok(Json(json!({"user": user, "token": login.token})).into_response());
    }
    let cookie = login_cookie(accounts, &login, client.https);
    Ok(([(SET_COOKIE, cookie)], Json(json!({"user": user}))).into_response())
}

/// The `Set-Cookie` of a new login session, living as long as the session (`Secure` on HTTPS).
fn login_cookie(accounts: &Accounts, login: &Login, https: bool) -> String {
    tokens::set_cookie(
        &login.token,
        accounts.settings().session_hours * 3600,
        https,
    )
}

async fn logout(
    State(c): Coord,
    client: ClientInfo,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = Accounts::request_token(&headers) {
        c.accounts().logout(token).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(SET_COOKIE, tokens::clear_cookie(client.https))],
    )
        .into_response())
}

async fn me(State(c): Coord, headers: HeaderMap) -> Result<Response, ApiError> {
    let user = require(&c, &headers, ANY_ROLE).await?;
    let quota = c.accounts().quota_status(&user, c.now()).await?;
    Ok(Json(json!({"user": user.to_json(), "quota": quota})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    old_password: String,
    new_password: String,
}

async fn change_password(
    State(c): Coord,
    client: ClientInfo,
    headers: HeaderMap,
    JsonBody(b): JsonBody<PasswordBody>,
) -> Result<Response, ApiError> {
    let user = require(&c, &headers, ANY_ROLE).await?;
    let token = Accounts::request_token(&headers);
    match c
        .accounts()
        .change_password(
            &user,
            token,
            &b.old_password,
            &b.new_password,
            &client.addr.to_string(),
            c.now(),
        )
        .await
    {
        Ok(_) => Ok(StatusCode::NO_CONTENT.into_response()),
        // The caller is logged in: a wrong old password is a refusal, not a login failure.
        Err(AccountError::BadCredentials) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_credentials",
            "the old password is wrong",
        )),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------- administration

fn user_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::not_found(format!("no account {id:?}")))
}

fn parse_role(role: &str) -> Result<Role, ApiError> {
    role.parse().map_err(ApiError::bad_request)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    offset: Option<u64>,
    limit: Option<u64>,
}

async fn list_users(
    State(c): Coord,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<Status>().map_err(ApiError::bad_request)?),
    };
    let limit = q.limit.unwrap_or(200);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be 1 to {MAX_LIST}"
        )));
    }
    let offset = q.offset.unwrap_or(0).min(i64::MAX as u64);
    let accounts = c.accounts();
    let mut users = Vec::new();
    for u in accounts.users(status, offset, limit).await? {
        let mut v = u.to_json();
        v["quota_override"] =
            serde_json::to_value(accounts.quota_override(u.id).await?).unwrap_or(Value::Null);
        users.push(v);
    }
    Ok(Json(json!({"users": users})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    #[serde(default)]
    role: Option<String>,
}

async fn approve(
    State(c): Coord,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<ApproveBody>,
) -> Result<Response, ApiError> {
    let admin = require(&c, &headers, ADMIN).await?;
    let id = user_id(&id)?;
    let role = match b.role.as_deref() {
        None => Role::Agent,
        Some(r) => parse_role(r)?,
    };
    let user = c.accounts().approve(&admin, id, role).await?;
    Ok(Json(json!({"user": user.to_json()})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RejectBody {
    reason: String,
}

async fn reject(
    State(c): Coord,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<RejectBody>,
) -> Result<Response, ApiError> {
    let admin = require(&c, &headers, ADMIN).await?;
    let id = user_id(&id)?;
    let user = c.accounts().reject(&admin, id, &b.reason).await?;
    Ok(Json(json!({"user": user.to_json()})).into_response())
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A quota as sent: every field must be there (`null` = unlimited), so a forgotten field
/// never turns into "unlimited".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    #[serde(default, deserialize_with = "nullable")]
    sessions_per_period: Option<Option<u64>>,
    period_hours: Option<u64>,
    #[serde(default, deserialize_with = "nullable")]
    max_minutes: Option<Option<u64>>,
}

impl QuotaBody {
    fn quota(&self, what: &str) -> Result<Quota, ApiError> {
        let missing = |f: &str| {
            ApiError::bad_request(format!(
                "{what}.{f} is missing (null means unlimited where allowed)"
            ))
        };
        let q = Quota {
            sessions_per_period: self
                .sessions_per_period
                .ok_or_else(|| missing("sessions_per_period"))?,
            period_hours: self.period_hours.ok_or_else(|| missing("period_hours"))?,
            max_minutes: self.max_minutes.ok_or_else(|| missing("max_minutes"))?,
        };
        q.check()
            .map_err(|e| ApiError::bad_request(format!("{what}: {e}")))?;
        Ok(q)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    role: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    quota: Option<Option<QuotaBody>>,
}

async fn update_user(
    State(c): Coord,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(b): JsonBody<UpdateBody>,
) -> Result<Response, ApiError> {
    let admin = require(&c, &headers, ADMIN).await?;
    let id = user_id(&id)?;
    let role = b.role.as_deref().map(parse_role).transpose()?;
    let quota = match &b.quota {
        None => None,
        Some(None) => Some(None),
        Some(Some(q)) => Some(Some(q.quota("quota")?)),
    };
    let user = c.accounts().update_user(&admin, id, role, quota).await?;
    Ok(Json(json!({"user": user.to_json()})).into_response())
}

async fn quotas_json(accounts: &Accounts) -> Result<Value, ApiError> {
    let mut out = serde_json::Map::new();
    for role in Role::ALL {
        out.insert(
            role.as_str().to_string(),
            serde_json::to_value(accounts.role_quota(role).await?).unwrap_or(Value::Null),
        );
    }
    Ok(json!({ "quotas": out }))
}

async fn get_quotas(State(c): Coord, headers: HeaderMap) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    Ok(Json(quotas_json(c.accounts()).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotasBody {
    quotas: std::collections::BTreeMap<String, QuotaBody>,
}

async fn put_quotas(
    State(c): Coord,
    headers: HeaderMap,
    JsonBody(b): JsonBody<QuotasBody>,
) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    // Check everything before changing anything.
    let mut set = Vec::new();
    for (role, q) in &b.quotas {
        let role = parse_role(role)?;
        set.push((role, q.quota(&format!("quotas.{role}"))?));
    }
    for (role, q) in &set {
        c.accounts().set_role_quota(*role, q).await?;
    }
    Ok(Json(quotas_json(c.accounts()).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_address_is_the_one_the_proxy_appended() {
        let peer = IpAddr::from([192, 0, 2, 7]);
        let mut headers = HeaderMap::new();
        assert_eq!(client_addr(peer, &headers, true), peer);
        headers.append(
            "x-forwarded-for",
            "203.0.113.1, 198.51.100.4".parse().unwrap(),
        );
        assert_eq!(client_addr(peer, &headers, false), peer);
        assert_eq!(
            client_addr(peer, &headers, true),
            IpAddr::from([198, 51, 100, 4])
        );
        // A second header line: its last entry.
        headers.append("x-forwarded-for", "2001:db8::1".parse().unwrap());
        assert_eq!(
            client_addr(peer, &headers, true),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
        // Not an address: the peer.
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-for", "198.51.100.4, unknown".parse().unwrap());
        assert_eq!(client_addr(peer, &bad, true), peer);
    }
}
