//! `GET /api/recordings/grant`: where a logged-in account's recordings are, and the grant
//! that lets it see them there. Recordings live on the nodes that made them; the browser asks
//! each node for its list (`GET <node>/api/recordings` with the grant as the bearer token)
//! and downloads from it (`?grant=`). Nodes check the grant with the cluster secret
//! ([`crate::grant`]), so they need no accounts.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::accounts::http::{require, ApiError, ANY_ROLE};
use crate::accounts::Role;
use crate::grant::{self, ViewerGrant, GRANT_TTL_MS};
use crate::Coordinator;

/// The route (state: the coordinator), merged next to the accounts and planning APIs.
pub fn router() -> Router<Arc<Coordinator>> {
    Router::new().route("/api/recordings/grant", get(grant_for_caller))
}

async fn grant_for_caller(
    State(c): State<Arc<Coordinator>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let user = require(&c, &headers, ANY_ROLE).await?;
    let now = u64::try_from(c.now()).unwrap_or(0);
    let viewer = ViewerGrant {
        account: user.id.to_string(),
        all: matches!(user.role, Role::Admin | Role::Supervisor),
        admin: user.role == Role::Admin,
        expires_ms: now + GRANT_TTL_MS,
    };
    let nodes = c
        .registry()
        .node_web_addresses()
        .await
        .map_err(ApiError::internal)?;
    let nodes: Vec<_> = nodes
        .into_iter()
        .map(|(name, url)| json!({"name": name, "url": url}))
        .collect();
    Ok(Json(json!({
        "grant": grant::sign(&c.settings().cluster_secret, &viewer),
        "expires_ms": viewer.expires_ms,
        "nodes": nodes,
    }))
    .into_response())
}
