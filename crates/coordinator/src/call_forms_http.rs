//! The REST API of call forms (docs/calls.md, "Survey and fields"): administrators define the
//! survey and fields (`GET /api/call-forms`, `PUT` / `DELETE /api/call-forms/{scope}`); whoever
//! may see a call fills its fields (`PUT /api/calls/{id}/fields`); a call's participant answers
//! its survey with the token their media server gave them (`GET` / `POST
//! /api/calls/{id}/survey`, no login: a wrong token is `404`, as a call that does not exist).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::accounts::http::{require, ApiError, JsonBody, ADMIN, ANY_ROLE};
use crate::accounts::tokens;
use crate::accounts::Role;
use crate::call_events::valid_call_id;
use crate::call_forms::{valid_scope, CallForms};
use crate::clock::Millis;
use crate::store::NewCall;
use crate::Coordinator;

/// How long after its start a call's survey may be answered.
pub const SURVEY_OPEN_MS: Millis = 7 * 24 * 3600 * 1000;

/// The routes (state: the coordinator).
pub fn router() -> Router<Arc<Coordinator>> {
    Router::new()
        .route("/api/call-forms", get(all_forms))
        .route(
            "/api/call-forms/{scope}",
            put(set_forms).delete(delete_forms),
        )
        .route("/api/calls/{id}/fields", put(set_fields))
        .route("/api/calls/{id}/survey", get(survey).post(answer_survey))
}

async fn all_forms(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    let forms = c
        .registry()
        .all_call_forms()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "forms": forms })).into_response())
}

/// `scope` when it is `default` or an app's name; else `400`.
pub(crate) fn scope_of(scope: &str) -> Result<&str, ApiError> {
    valid_scope(scope).then_some(scope).ok_or_else(|| {
        ApiError::bad_request(
            "the scope is default or an app's name (1 to 64 letters, digits, spaces, _ - .)",
        )
    })
}

async fn set_forms(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    Path(scope): Path<String>,
    JsonBody(forms): JsonBody<CallForms>,
) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    let scope = scope_of(&scope)?;
    forms.check().map_err(ApiError::bad_request)?;
    c.registry()
        .set_call_forms(scope, &forms, c.now())
        .await
        .map_err(ApiError::internal)?;
    Ok(
        Json(json!({ "scope": scope, "survey": forms.survey, "fields": forms.fields }))
            .into_response(),
    )
}

async fn delete_forms(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    Path(scope): Path<String>,
) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    let scope = scope_of(&scope)?;
    if !c
        .registry()
        .delete_call_forms(scope)
        .await
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::not_found(format!("no forms for {scope}")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Call `id`'s start, when it exists.
async fn call_of(c: &Coordinator, id: &str) -> Result<Option<NewCall>, ApiError> {
    if !valid_call_id(id) {
        return Ok(None);
    }
    c.registry()
        .call_start(id)
        .await
        .map_err(ApiError::internal)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldsBody {
    values: BTreeMap<String, String>,
}

async fn set_fields(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<FieldsBody>,
) -> Result<Response, ApiError> {
    let user = require(&c, &headers, ANY_ROLE).await?;
    let not_found = || ApiError::not_found("no such call");
    let call = call_of(&c, &id).await?.ok_or_else(not_found)?;
    if user.role == Role::Agent && call.owner_id != Some(user.id) {
        return Err(not_found());
    }
    let forms = c
        .registry()
        .forms_for_app(&call.rc_name)
        .await
        .map_err(ApiError::internal)?;
    forms
        .check_values(&body.values)
        .map_err(ApiError::bad_request)?;
    c.registry()
        .set_field_values(&id, &body.values, user.id, c.now())
        .await
        .map_err(ApiError::internal)?;
    let values = c
        .registry()
        .field_values(&id)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(json!({ "fields": values })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SurveyQuery {
    participant: String,
    token: String,
}

/// The call of a survey, when `participant`'s `token` is right for it and it is still open.
async fn survey_call(
    c: &Coordinator,
    id: &str,
    participant: &str,
    token: &str,
) -> Result<NewCall, ApiError> {
    let not_found = || ApiError::not_found("no such survey");
    if !tokens::well_formed(token) || participant.len() > 64 {
        return Err(not_found());
    }
    let call = call_of(c, id).await?.ok_or_else(not_found)?;
    let stored = c
        .registry()
        .participant_token(id, participant)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    if aws_lc_rs::constant_time::verify_slices_are_equal(
        stored.as_bytes(),
        tokens::token_hash(token).as_bytes(),
    )
    .is_err()
    {
        return Err(not_found());
    }
    if c.now() - call.started_ms > SURVEY_OPEN_MS {
        return Err(ApiError::new(
            StatusCode::GONE,
            "survey_closed",
            "the survey of this call is closed",
        ));
    }
    Ok(call)
}

async fn survey(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<String>,
    q: Result<Query<SurveyQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let call = survey_call(&c, &id, &q.participant, &q.token).await?;
    let forms = c
        .registry()
        .forms_for_app(&call.rc_name)
        .await
        .map_err(ApiError::internal)?;
    let answered = c
        .registry()
        .survey_answers(&id)
        .await
        .map_err(ApiError::internal)?
        .iter()
        .any(|a| a.participant_id == q.participant);
    Ok(Json(json!({ "survey": forms.survey, "answered": answered })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    participant: String,
    token: String,
    answers: BTreeMap<String, String>,
}

async fn answer_survey(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<AnswerBody>,
) -> Result<Response, ApiError> {
    let call = survey_call(&c, &id, &body.participant, &body.token).await?;
    let forms = c
        .registry()
        .forms_for_app(&call.rc_name)
        .await
        .map_err(ApiError::internal)?;
    if forms.survey.is_empty() {
        return Err(ApiError::not_found("this call has no survey"));
    }
    let answers = forms
        .check_answers(&body.answers)
        .map_err(ApiError::bad_request)?;
    let stored = c
        .registry()
        .add_survey_answers(&id, &body.participant, &answers, c.now())
        .await
        .map_err(ApiError::internal)?;
    if !stored {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_answered",
            "this survey was answered already",
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(json!({ "answered": answers.len() })),
    )
        .into_response())
}
