//! The planning REST API (docs/accounts.md, "Planning"): `GET /api/slots`, `GET`/`POST
//! /api/plans`, `PATCH`/`DELETE /api/plans/{code}`, for logged-in agents, supervisors and
//! administrators. Authentication, bodies and errors are the accounts API's
//! ([`require`], [`JsonBody`], [`ApiError`]); the checks are those of `PLAN_SESSION`
//! ([`crate::planning::plans`]).

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::plans::{zone_or_refuse, Customer, PlanRequest, Refusal, Scope, DEFAULT_STEP_MINUTES};
use super::tz::{self, format_local, format_local_time, format_utc, parse_hhmm, parse_iso_date};
use crate::accounts::http::{require, ApiError, JsonBody, ANY_ROLE};
use crate::accounts::User;
use crate::clock::{Millis, DAY, MINUTE};
use crate::store::PlanEntry;
use crate::verbs::{ErrorCode, ErrorReply};
use crate::Coordinator;

/// The routes of the planning API (state: the coordinator), merged into the coordinator's
/// HTTP router next to [`crate::accounts::http::router`].
pub fn router() -> Router<Arc<Coordinator>> {
    Router::new()
        .route("/api/slots", get(slots))
        .route("/api/plans", get(list_plans).post(create_plan))
        .route(
            "/api/plans/{code}",
            axum::routing::patch(move_plan).delete(cancel_plan),
        )
}

type Coord = State<Arc<Coordinator>>;

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> ApiError {
        let (status, code) = r.status();
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut e = ApiError::new(status, &code, r.message());
        if let Refusal::Verb(ErrorReply {
            retry_after_seconds: Some(s),
            ..
        }) = r
        {
            e.retry_after_secs = Some(s.max(1));
        }
        e
    }
}

/// A plan as the API shows it: `{"code", "link": "/r/{code}", "rc_name", "start_utc",
/// "end_utc", "tz", "start_local", "duration_minutes", "owner": {"id","name","email"} | null,
/// "customer_name", "customer_phone", "customer_email", "note", "started"}` (`start_local`:
/// `"YYYY-MM-DD HH:MM"` in the plan's zone).
pub fn plan_json(e: &PlanEntry) -> Value {
    let zone = tz::zone(&e.details.tz).unwrap_or(Tz::UTC);
    let p = &e.plan;
    let owner = e.details.owner_id.map(|id| {
        json!({
            "id": id,
            "name": e.owner_name,
            "email": e.owner_email,
        })
    });
    json!({
        "code": p.code,
        "link": format!("/r/{}", p.code),
        "rc_name": p.rc_name,
        "start_utc": format_utc(p.start_ms),
        "end_utc": format_utc(p.end_ms),
        "tz": zone.name(),
        "start_local": format_local(zone, p.start_ms),
        "duration_minutes": ((p.end_ms - p.start_ms).max(0) / MINUTE),
        "owner": owner,
        "customer_name": e.details.customer_name,
        "customer_phone": e.details.customer_phone,
        "customer_email": e.details.customer_email,
        "note": e.details.note,
        "record": e.details.record,
        "started": e.started,
    })
}

/// A JSON body as `T`, parsed only after the caller is known (so a request without a login
/// gets `401`, not a complaint about its body).
fn body<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("request body: {e}")))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

fn required<'a>(value: &'a Option<String>, name: &str, example: &str) -> Result<&'a str, ApiError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ApiError::bad_request(format!(
            "{name} is missing (e.g. {example})"
        ))),
    }
}

fn date_field(date: &str) -> Result<NaiveDate, ApiError> {
    parse_iso_date(date).map_err(|m| Refusal::Verb(verb_error(ErrorCode::BadDate, m)).into())
}

fn verb_error(code: ErrorCode, message: String) -> ErrorReply {
    ErrorReply {
        code,
        message,
        retry_after_seconds: None,
    }
}

/// The zone named in a request, else the caller's own (from their account), else UTC.
fn zone_for(name: Option<&str>, caller: &User) -> Result<Tz, ApiError> {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => Ok(zone_or_refuse(n)?),
        None => Ok(tz::zone(&caller.time_zone).unwrap_or(Tz::UTC)),
    }
}

// ------------------------------------------------------------------------------ slots

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotsQuery {
    rc_name: Option<String>,
    date: Option<String>,
    tz: Option<String>,
    duration_minutes: Option<u64>,
    step_minutes: Option<u64>,
}

async fn slots(
    State(c): Coord,
    headers: HeaderMap,
    q: Result<Query<SlotsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = require(&c, &headers, ANY_ROLE).await?;
    let q = query(q)?;
    let rc_name = required(&q.rc_name, "rc_name", "video-room")?;
    let date_text = required(&q.date, "date", "2026-11-22")?;
    let date = date_field(date_text)?;
    let zone = zone_for(q.tz.as_deref(), &caller)?;
    let step = q.step_minutes.unwrap_or(DEFAULT_STEP_MINUTES);
    let list = c
        .day_slots(rc_name, date, zone, q.duration_minutes, step, c.now())
        .await?;
    let slots: Vec<Value> = list
        .iter()
        .map(|s| {
            json!({
                "start": format_local_time(zone, s.start),
                "start_utc": format_utc(s.start),
                "free": s.free,
                "now": s.now,
            })
        })
        .collect();
    Ok(Json(json!({
        "rc_name": rc_name,
        "tz": zone.name(),
        "date": date.format("%Y-%m-%d").to_string(),
        "duration_minutes": q.duration_minutes.unwrap_or(c.settings().plan_default_minutes),
        "step_minutes": step,
        "slots": slots,
    }))
    .into_response())
}

// ------------------------------------------------------------------------------ plans

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    rc_name: String,
    date: String,
    time: String,
    #[serde(default)]
    tz: Option<String>,
    #[serde(default)]
    duration_minutes: Option<u64>,
    #[serde(default)]
    customer_name: Option<String>,
    #[serde(default)]
    customer_phone: Option<String>,
    #[serde(default)]
    customer_email: Option<String>,
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    record: bool,
}

fn time_field(time: &str) -> Result<chrono::NaiveTime, ApiError> {
    parse_hhmm(time).map_err(|m| Refusal::Verb(verb_error(ErrorCode::BadTime, m)).into())
}

async fn create_plan(
    State(c): Coord,
    headers: HeaderMap,
    JsonBody(b): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let caller = require(&c, &headers, ANY_ROLE).await?;
    let b: CreateBody = body(b)?;
    let request = PlanRequest {
        rc_name: b.rc_name.trim().to_string(),
        date: date_field(&b.date)?,
        time: time_field(&b.time)?,
        tz: zone_for(b.tz.as_deref(), &caller)?,
        duration_minutes: b.duration_minutes,
        customer: Customer {
            name: b.customer_name,
            phone: b.customer_phone,
            email: b.customer_email,
            note: b.note,
        },
        record: b.record,
    };
    let planned_by = format!("account:{}", caller.id);
    let entry = c
        .book_plan(&planned_by, Some(&caller), &request, c.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"plan": plan_json(&entry)})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    scope: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// The widest window one `GET /api/plans` may ask for.
pub const MAX_LIST_WINDOW_DAYS: i64 = 400;

fn instant(value: &Option<String>, name: &str, default: Millis) -> Result<Millis, ApiError> {
    match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => tz::parse_utc(v).map_err(|m| ApiError::bad_request(format!("{name}: {m}"))),
    }
}

async fn list_plans(
    State(c): Coord,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let caller = require(&c, &headers, ANY_ROLE).await?;
    let q = query(q)?;
    let scope = match q.scope.as_deref().map(str::trim) {
        None | Some("") | Some("mine") => Scope::Mine,
        Some("all") => Scope::All,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "scope {other:?} must be mine or all"
            )))
        }
    };
    let now = c.now();
    let from = instant(&q.from, "from", now)?;
    let horizon = (c.settings().plan_horizon_days as Millis + 1) * DAY;
    let to = instant(&q.to, "to", from.saturating_add(horizon))?;
    if to <= from {
        return Err(ApiError::bad_request("to must be later than from"));
    }
    if to - from > MAX_LIST_WINDOW_DAYS * DAY {
        return Err(ApiError::bad_request(format!(
            "from and to may be at most {MAX_LIST_WINDOW_DAYS} days apart"
        )));
    }
    let plans = c.list_plans(&caller, scope, from, to).await?;
    let plans: Vec<Value> = plans.iter().map(plan_json).collect();
    Ok(Json(json!({ "plans": plans })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    date: String,
    time: String,
    #[serde(default)]
    tz: Option<String>,
    #[serde(default)]
    duration_minutes: Option<u64>,
}

async fn move_plan(
    State(c): Coord,
    headers: HeaderMap,
    Path(code): Path<String>,
    JsonBody(b): JsonBody<Value>,
) -> Result<Response, ApiError> {
    let caller = require(&c, &headers, ANY_ROLE).await?;
    let b: MoveBody = body(b)?;
    let now = c.now();
    let date = date_field(&b.date)?;
    let time = time_field(&b.time)?;
    // Without a zone the plan keeps its own.
    let zone = match b.tz.as_deref().map(str::trim).filter(|z| !z.is_empty()) {
        Some(z) => zone_or_refuse(z)?,
        None => {
            let entry = c.managed_plan(&caller, &code, now).await?;
            tz::zone(&entry.details.tz).unwrap_or(Tz::UTC)
        }
    };
    let entry = c
        .move_plan(&caller, &code, date, time, zone, b.duration_minutes, now)
        .await?;
    Ok(Json(json!({"plan": plan_json(&entry)})).into_response())
}

async fn cancel_plan(
    State(c): Coord,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let caller = require(&c, &headers, ANY_ROLE).await?;
    c.cancel_plan(&caller, &code, c.now()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
