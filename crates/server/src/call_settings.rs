//! The call settings this media server was given by its coordinator (`CALL_SETTINGS` on the
//! node link; docs/calls.md, "Branding, consent and feature switches"): the branding it serves
//! to the customer's page before that shows anything (`GET /api/branding`, `GET
//! /api/branding/logo`), the consent text guests accept before joining, and the feature
//! switches it enforces per app and role in the call. Until the coordinator speaks: no
//! branding, no consent, everything on.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use orbita_coordinator::call_settings::CallSettings;
use orbita_protocol::{CallFeatures, Role};
use parking_lot::RwLock;
use serde_json::json;

use crate::state::AppState;

/// The settings in force, with the id of their consent text (its SHA-256, hashed once when they
/// arrive rather than at every guest's join); cheap to read on every join and action.
#[derive(Debug, Default)]
pub struct CallSettingsCache {
    current: RwLock<(Arc<CallSettings>, Option<String>)>,
}

impl CallSettingsCache {
    /// Takes the coordinator's settings.
    pub fn set(&self, settings: CallSettings) {
        tracing::info!(version = settings.version, "call settings received");
        let consent_id = settings.branding.consent_id();
        *self.current.write() = (Arc::new(settings), consent_id);
    }

    /// The settings in force.
    pub fn get(&self) -> Arc<CallSettings> {
        Arc::clone(&self.current.read().0)
    }

    /// The settings in force and their consent text's id, read together.
    pub fn with_consent_id(&self) -> (Arc<CallSettings>, Option<String>) {
        let current = self.current.read();
        (Arc::clone(&current.0), current.1.clone())
    }

    /// What a participant of `role` may do in a call of app `rc_name`.
    pub fn features(&self, rc_name: &str, role: Role) -> CallFeatures {
        let f = self.current.read().0.features_for(rc_name);
        match role {
            Role::Agent => f.agent,
            Role::Customer | Role::Participant => f.customer,
        }
    }

    /// The id of the consent text guests must accept, when there is one.
    pub fn consent_id(&self) -> Option<String> {
        self.current.read().1.clone()
    }
}

/// `GET /api/branding`: what the customer's page shows before anything else. Public: the same
/// for every room, so it tells nothing about codes.
pub async fn branding(State(state): State<AppState>) -> Response {
    let (s, consent_id) = state.call_settings.with_consent_id();
    let b = &s.branding;
    let body = json!({
        "company": b.company,
        "primary_color": b.primary_color,
        "accent_color": b.accent_color,
        "consent_text": b.consent_text,
        "consent_id": consent_id,
        "redirect_url": b.redirect_url,
        "logo": s.logo.as_ref().map(|_| format!("/api/branding/logo?v={}", s.version)),
    });
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /api/branding/logo`: the logo (`404` without one).
pub async fn logo(State(state): State<AppState>) -> Response {
    let s = state.call_settings.get();
    let Some(logo) = s.logo.as_ref() else {
        return crate::http::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no logo is set")
            .into_response();
    };
    let content_type = HeaderValue::from_str(&logo.content_type)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    (
        [
            (header::CONTENT_TYPE, content_type),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'"),
            ),
        ],
        logo.data.clone(),
    )
        .into_response()
}
