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
use serde::Deserialize;
use serde_json::{json, Value};

use crate::accounts::http::{require, ApiError, ANY_ROLE};
use crate::accounts::{Role, User};
use crate::call_events::valid_call_id;
use crate::clock::Millis;
use crate::store::{CallRecord, CallSummary, NewCall};
use crate::Coordinator;

/// Calls per page unless `limit` says.
pub const DEFAULT_PAGE: usize = 50;

/// The routes (state: the coordinator), merged next to the accounts API.
pub fn router() -> Router<Arc<Coordinator>> {
    Router::new()
        .route("/api/calls", get(list))
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// The last call of the previous page: `<started_ms>:<id>`.
    before: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = require(&c, &headers, ANY_ROLE).await?;
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let before = match q.before.as_deref() {
        None | Some("") => None,
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
    let limit = q
        .limit
        .unwrap_or(DEFAULT_PAGE)
        .clamp(1, crate::store::MAX_CALLS_LISTED);
    let calls: Vec<CallSummary> = c
        .registry()
        .list_calls(scope(&user), before, limit)
        .await
        .map_err(ApiError::internal)?;
    let next = (calls.len() == limit)
        .then(|| {
            calls
                .last()
                .map(|s| format!("{}:{}", s.call.started_ms, s.call.id))
        })
        .flatten();
    let calls: Vec<Value> = calls
        .iter()
        .map(|s| {
            let mut v = call_json(&s.call, s.ended_ms, s.end_reason.as_deref());
            v["participants"] = json!(s.participants);
            v
        })
        .collect();
    Ok(Json(json!({"calls": calls, "next": next})).into_response())
}

fn record_json(r: &CallRecord) -> Value {
    let mut v = call_json(&r.call, r.ended_ms, r.end_reason.as_deref());
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
    Ok(Json(record_json(&record)).into_response())
}
