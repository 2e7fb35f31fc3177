//! The administrators' REST API of call settings (docs/calls.md, "Branding, consent and feature
//! switches"): `GET /api/settings/calls`; `PUT /api/settings/branding`; `PUT` / `DELETE
//! /api/settings/logo` (the picture itself as the body); `PUT` / `DELETE
//! /api/settings/features/{scope}`. Every change reaches the media servers over the node link
//! (`CALL_SETTINGS`); they serve the branding to the customer's page (`GET /api/branding`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::json;

use crate::accounts::http::{require, ApiError, JsonBody, ADMIN};
use crate::call_forms_http::scope_of;
use crate::call_settings::{
    Branding, CallSettings, Logo, LogoError, RoleFeatures, MAX_FEATURE_SCOPES, MAX_LOGO_BYTES,
};
use crate::Coordinator;

/// The routes (state: the coordinator).
pub fn router() -> Router<Arc<Coordinator>> {
    Router::new()
        .route("/api/settings/calls", get(all))
        .route("/api/settings/branding", put(set_branding))
        .route("/api/settings/logo", put(set_logo).delete(delete_logo))
        .route(
            "/api/settings/features/{scope}",
            put(set_features).delete(delete_features),
        )
}

/// The settings as administrators see them: the logo's type and size, not its bytes.
fn settings_json(s: &CallSettings) -> serde_json::Value {
    json!({
        "version": s.version,
        "branding": s.branding,
        "consent_id": s.branding.consent_id(),
        "logo": s.logo.as_ref().map(|l| json!({"type": l.content_type, "bytes": l.data.len()})),
        "features": s.features,
    })
}

/// The settings after a change at `version`, told to this process's node links.
async fn changed(c: &Coordinator, version: i64) -> Result<Response, ApiError> {
    c.call_settings_changed(version);
    let settings = c
        .registry()
        .call_settings()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(settings_json(&settings)).into_response())
}

async fn all(State(c): State<Arc<Coordinator>>, headers: HeaderMap) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    let settings = c
        .registry()
        .call_settings()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(settings_json(&settings)).into_response())
}

async fn set_branding(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    JsonBody(branding): JsonBody<Branding>,
) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    branding.check().map_err(ApiError::bad_request)?;
    let version = c
        .registry()
        .set_branding(&branding.trimmed(), c.now())
        .await
        .map_err(ApiError::internal)?;
    changed(&c, version).await
}

async fn set_logo(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    let too_large = |n: usize| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            LogoError::TooLarge(n).to_string(),
        )
    };
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Some(n) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > MAX_LOGO_BYTES)
    {
        return Err(too_large(n));
    }
    let bytes = axum::body::to_bytes(body, MAX_LOGO_BYTES)
        .await
        .map_err(|_| too_large(MAX_LOGO_BYTES + 1))?;
    let logo = Logo::from_upload(declared, bytes.to_vec()).map_err(|e| match e {
        LogoError::TooLarge(n) => too_large(n),
        LogoError::Type(m) => ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "bad_type", m),
        LogoError::Picture(m) => ApiError::bad_request(m),
    })?;
    let version = c
        .registry()
        .set_logo(Some(&logo), c.now())
        .await
        .map_err(ApiError::internal)?;
    changed(&c, version).await
}

async fn delete_logo(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    let version = c
        .registry()
        .set_logo(None, c.now())
        .await
        .map_err(ApiError::internal)?;
    changed(&c, version).await
}

async fn set_features(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    Path(scope): Path<String>,
    JsonBody(features): JsonBody<RoleFeatures>,
) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    let scope = scope_of(&scope)?;
    let registry = c.registry();
    // A new app's switches only while fewer than the most are stored (changing one always).
    if registry
        .other_feature_scopes(scope)
        .await
        .map_err(ApiError::internal)?
        >= MAX_FEATURE_SCOPES as i64
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many",
            format!(
                "at most {MAX_FEATURE_SCOPES} apps have switches of their own; remove one first"
            ),
        ));
    }
    let version = registry
        .set_features(scope, &features, c.now())
        .await
        .map_err(ApiError::internal)?;
    changed(&c, version).await
}

async fn delete_features(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
    Path(scope): Path<String>,
) -> Result<Response, ApiError> {
    require(&c, &headers, ADMIN).await?;
    let scope = scope_of(&scope)?;
    let version = c
        .registry()
        .delete_features(scope, c.now())
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no switches for {scope}")))?;
    changed(&c, version).await
}
