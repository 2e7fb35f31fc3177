//! The call history's REST API (docs/calls.md): `GET /api/calls` (newest first, a page at a
//! time) and `GET /api/calls/{id}` (one call: its people, their stays, the chat). Agents see
//! their own calls (those they created or planned), supervisors and administrators all; a
//! call that is not the caller's is `404`, as one that does not exist.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::accounts::http::{require, ApiError, ANY_ROLE};
use crate::accounts::{Role, User};
use crate::call_events::valid_call_id;
use crate::calls_export;
use crate::clock::Millis;
use crate::store::{CallFilter, CallRecord, CallSummary, NewCall, MAX_CALLS_LISTED};
use crate::Coordinator;

/// Calls per page unless `limit` says.
pub const DEFAULT_PAGE: usize = 50;

/// The routes (state: the coordinator), merged next to the accounts API.
pub fn router() -> Router<Arc<Coordinator>> {
    Router::new()
        .route("/api/calls", get(list))
        .route("/api/calls/agents", get(agents))
        .route("/api/calls/export.csv", get(export_csv))
        .route("/api/calls/export.xlsx", get(export_xlsx))
        .route("/api/calls/{id}", get(one))
}

/// Whose calls `user` sees: their own (`Some(id)`), or everyone's.
fn scope(user: &User) -> Option<i64> {
    match user.role {
        Role::Admin | Role::Supervisor => None,
        Role::Agent => Some(user.id),
    }
}

fn call_json(c: &NewCall, ended_ms: Option<Millis>, end_reason: Option<&str>) -> Value {
    json!({
        "id": c.id,
        "code": c.code,
        "rc_name": c.rc_name,
        "node": c.node,
        "owner_id": c.owner_id,
        "started_ms": c.started_ms,
        "ended_ms": ended_ms,
        "end_reason": end_reason,
        "duration_ms": ended_ms.map(|e| (e - c.started_ms).max(0)),
    })
}

/// A list's or an export's query: the filters (docs/calls.md), and for a list its page.
/// Every value comes as text, so a wrong one gets an error that names it; an empty one is
/// no filter (a form's empty field).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// The last call of the previous page: `<started_ms>:<id>`.
    before: Option<String>,
    limit: Option<String>,
    /// `YYYY-MM-DD` (the account's time zone) or epoch ms: calls that started that day or later.
    from: Option<String>,
    /// `YYYY-MM-DD` (that day included) or epoch ms (excluded).
    to: Option<String>,
    /// An account's id: the calls it created or planned.
    agent: Option<String>,
    /// Part of a customer's name.
    customer: Option<String>,
    min_duration_s: Option<String>,
    max_duration_s: Option<String>,
    /// `yes` or `no`.
    recorded: Option<String>,
    /// 1 to 5: calls with a survey rating at least / at most this.
    min_rating: Option<String>,
    max_rating: Option<String>,
}

/// `value`, unless absent or empty.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// The longest customer name searched for.
const MAX_CUSTOMER_FILTER_CHARS: usize = 100;

/// A date filter: epoch ms, or `YYYY-MM-DD` in `tz` (its midnight; with `next_day`, the next
/// day's, so that `to` includes its day).
fn date_bound(field: &str, v: &str, tz: Tz, next_day: bool) -> Result<Millis, ApiError> {
    if let Ok(ms) = v.parse::<Millis>() {
        return Ok(ms);
    }
    let bad = || {
        ApiError::bad_request(format!(
            "{field} is a date, YYYY-MM-DD (your time zone, {tz}), or epoch milliseconds; got {:?}",
            v.chars().take(40).collect::<String>()
        ))
    };
    let day = NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| bad())?;
    let day = if next_day {
        day.succ_opt().ok_or_else(bad)?
    } else {
        day
    };
    let midnight = day.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
    // A midnight that a clock change skips: the first moment after it.
    let local = tz
        .from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(midnight + chrono::Duration::hours(1)))
                .earliest()
        })
        .ok_or_else(bad)?;
    Ok(local.timestamp_millis())
}

fn seconds(field: &str, v: &str) -> Result<Millis, ApiError> {
    v.parse::<u32>()
        .map(|s| Millis::from(s) * 1000)
        .map_err(|_| ApiError::bad_request(format!("{field} is a whole number of seconds")))
}

/// The time zone of `user`'s account (UTC when it names none this server knows).
fn zone_of(user: &User) -> Tz {
    user.time_zone.parse().unwrap_or(Tz::UTC)
}

/// The filter `q` asks for, within what `user` may see.
fn filter_of(q: &ListQuery, user: &User) -> Result<CallFilter, ApiError> {
    let tz = zone_of(user);
    let mut f = CallFilter {
        scope: scope(user),
        ..CallFilter::default()
    };
    if let Some(v) = given(&q.from) {
        f.from_ms = Some(date_bound("from", v, tz, false)?);
    }
    if let Some(v) = given(&q.to) {
        let to = date_bound("to", v, tz, true)?;
        // Epoch ms bound `to` itself out; a day includes itself.
        f.to_ms = Some(to);
    }
    if let (Some(from), Some(to)) = (f.from_ms, f.to_ms) {
        if to <= from {
            return Err(ApiError::bad_request("to comes before from"));
        }
    }
    if let Some(v) = given(&q.agent) {
        f.agent = Some(
            v.parse()
                .map_err(|_| ApiError::bad_request("agent is an account's id (a number)"))?,
        );
    }
    if let Some(v) = given(&q.customer) {
        if v.chars().count() > MAX_CUSTOMER_FILTER_CHARS {
            return Err(ApiError::bad_request(format!(
                "customer is at most {MAX_CUSTOMER_FILTER_CHARS} characters"
            )));
        }
        f.customer = Some(v.to_string());
    }
    if let Some(v) = given(&q.min_duration_s) {
        f.min_duration_ms = Some(seconds("min_duration_s", v)?);
    }
    if let Some(v) = given(&q.max_duration_s) {
        f.max_duration_ms = Some(seconds("max_duration_s", v)?);
    }
    if let (Some(min), Some(max)) = (f.min_duration_ms, f.max_duration_ms) {
        if max < min {
            return Err(ApiError::bad_request(
                "max_duration_s is less than min_duration_s",
            ));
        }
    }
    for (field, value, slot) in [
        ("min_rating", &q.min_rating, &mut f.min_rating),
        ("max_rating", &q.max_rating, &mut f.max_rating),
    ] {
        if let Some(v) = given(value) {
            *slot = Some(match v.parse::<i64>() {
                Ok(r @ 1..=5) => r,
                _ => return Err(ApiError::bad_request(format!("{field} is 1 to 5"))),
            });
        }
    }
    f.recorded = match given(&q.recorded) {
        None => None,
        Some("yes" | "true") => Some(true),
        Some("no" | "false") => Some(false),
        Some(_) => return Err(ApiError::bad_request("recorded is yes or no")),
    };
    Ok(f)
}

fn summary_json(s: &CallSummary) -> Value {
    let mut v = call_json(&s.call, s.ended_ms, s.end_reason.as_deref());
    v["participants"] = json!(s.participants);
    v["owner_name"] = json!(s.owner_name);
    v["recordings"] = json!(s.recordings);
    v["rating"] = json!(s.rating);
    v
}

async fn list(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = require(&c, &headers, ANY_ROLE).await?;
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let filter = filter_of(&q, &user)?;
    let before = match given(&q.before) {
        None => None,
        Some(cursor) => {
            let parsed = cursor
                .split_once(':')
                .and_then(|(ms, id)| Some((ms.parse::<Millis>().ok()?, id)))
                .filter(|(_, id)| valid_call_id(id));
            let Some((ms, id)) = parsed else {
                return Err(ApiError::bad_request(
                    "before is the last call of the previous page, <started_ms>:<id> (its \"next\")",
                ));
            };
            Some((ms, id.to_string()))
        }
    };
    let limit = match given(&q.limit) {
        None => DEFAULT_PAGE,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::bad_request("limit is a whole number"))?,
    }
    .clamp(1, MAX_CALLS_LISTED);
    let calls: Vec<CallSummary> = c
        .registry()
        .list_calls(&filter, before, limit)
        .await
        .map_err(ApiError::internal)?;
    let next = (calls.len() == limit)
        .then(|| {
            calls
                .last()
                .map(|s| format!("{}:{}", s.call.started_ms, s.call.id))
        })
        .flatten();
    let ids: Vec<String> = calls.iter().map(|s| s.call.id.clone()).collect();
    let people = c
        .registry()
        .participants_of(&ids)
        .await
        .map_err(ApiError::internal)?;
    let calls: Vec<Value> = calls
        .iter()
        .map(|s| {
            let mut v = summary_json(s);
            v["customers"] = people
                .iter()
                .filter(|(call, p)| *call == s.call.id && p.role == "customer")
                .map(|(_, p)| json!(p.name))
                .collect();
            v
        })
        .collect();
    Ok(Json(json!({"calls": calls, "next": next})).into_response())
}

/// `GET /api/calls/export.csv` and `.xlsx`: the calls of the filter, streamed.
async fn export(
    c: &Coordinator,
    headers: &HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
    xlsx: bool,
) -> Result<Response, ApiError> {
    let user = require(c, headers, ANY_ROLE).await?;
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if given(&q.before).is_some() || given(&q.limit).is_some() {
        return Err(ApiError::bad_request(
            "an export holds every call of its filter: no before or limit",
        ));
    }
    let filter = filter_of(&q, &user)?;
    let registry = c.registry().clone();
    Ok(if xlsx {
        calls_export::xlsx_response(registry, filter, zone_of(&user))
    } else {
        calls_export::csv_response(registry, filter, zone_of(&user))
    })
}

async fn export_csv(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    export(&c, &headers, q, false).await
}

async fn export_xlsx(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    export(&c, &headers, q, true).await
}

/// `GET /api/calls/agents`: the accounts whose calls the caller may filter by (for an agent,
/// themselves).
async fn agents(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = require(&c, &headers, ANY_ROLE).await?;
    let list = match scope(&user) {
        Some(_) => vec![(user.id, user.name.clone())],
        None => c
            .registry()
            .call_owners()
            .await
            .map_err(ApiError::internal)?,
    };
    let agents: Vec<Value> = list
        .into_iter()
        .map(|(id, name)| json!({"id": id, "name": name}))
        .collect();
    Ok(Json(json!({ "agents": agents })).into_response())
}

fn record_json(r: &CallRecord) -> Value {
    let mut v = call_json(&r.call, r.ended_ms, r.end_reason.as_deref());
    v["owner_name"] = json!(r.owner_name);
    v["participants"] = r
        .participants
        .iter()
        .map(|p| {
            json!({
                "id": p.participant_id,
                "name": p.name,
                "role": p.role,
                "account_id": p.account_id,
                "user_agent": p.user_agent,
                "browser": p.browser,
                "os": p.os,
                "device": p.device,
                "consent": (!p.consent_id.is_empty()).then(|| json!({"id": p.consent_id})),
                "camera": p.camera,
                "microphone": p.microphone,
            })
        })
        .collect();
    v["presence"] = r
        .presence
        .iter()
        .map(|p| json!({"participant": p.participant_id, "joined_ms": p.joined_ms, "left_ms": p.left_ms}))
        .collect();
    v["chat"] = r
        .chat
        .iter()
        .map(|l| json!({"seq": l.seq, "participant": l.participant_id, "sent_ms": l.sent_ms, "text": l.body}))
        .collect();
    v["quality"] = r
        .quality
        .iter()
        .map(|q| {
            let mut point = serde_json::to_value(&q.report).unwrap_or_else(|_| json!({}));
            point["participant"] = json!(q.participant_id);
            point["source"] = json!(q.source);
            point["at_ms"] = json!(q.at_ms);
            point
        })
        .collect();
    v["recordings"] = r
        .recordings
        .iter()
        .map(|(id, at)| json!({"id": id, "started_ms": at}))
        .collect();
    v
}

async fn one(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = require(&c, &headers, ANY_ROLE).await?;
    let not_found = || ApiError::not_found("no such call");
    if !valid_call_id(&id) {
        return Err(not_found());
    }
    let record = c
        .registry()
        .call(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    if let Some(own) = scope(&user) {
        if record.call.owner_id != Some(own) {
            return Err(not_found());
        }
    }
    let registry = c.registry();
    let forms = registry
        .forms_for_app(&record.call.rc_name)
        .await
        .map_err(ApiError::internal)?;
    let fields = registry
        .field_values(&id)
        .await
        .map_err(ApiError::internal)?;
    let answers = registry
        .survey_answers(&id)
        .await
        .map_err(ApiError::internal)?;
    let mut v = record_json(&record);
    // The consent texts the guests accepted, as they read them.
    for (i, p) in record.participants.iter().enumerate() {
        if p.consent_id.is_empty() {
            continue;
        }
        let text = registry
            .consent_text(&p.consent_id)
            .await
            .map_err(ApiError::internal)?;
        v["participants"][i]["consent"]["text"] = json!(text);
    }
    v["forms"] = json!(forms);
    v["fields"] = json!(fields);
    v["survey"] = answers
        .iter()
        .map(|a| json!({"participant": a.participant_id, "question": a.question_id, "value": a.value, "rating": a.rating, "answered_ms": a.answered_ms}))
        .collect();
    Ok(Json(v).into_response())
}
