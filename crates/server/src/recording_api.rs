//! `/api/rooms/{code}/recording`: the call's agent (whoever holds the room's host key, as a
//! bearer token) asks for, starts and stops the recording over REST, as with `record` on the
//! signalling WebSocket.
//!
//! | request | answer |
//! |---|---|
//! | `GET` | 200 `{"recording":"on"|"off"}` |
//! | `POST` `{"on":true}` / `{"on":false}` | 200 `{"recording":"on"|"off"}` (everyone in the call is told); 409 `no_free_recorder` when every recorder slot is busy; 409 `recording_off` without slots |
//!
//! Without a bearer token: 401. A code of no live room and a wrong key get the same 403 (the
//! answer must not tell live codes apart) and count as a wrong code guess
//! ([`crate::guesses`]: held back, then 429 when the address is locked out).

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use orbita_coordinator::accounts::http::client_addr;
use orbita_protocol::RecordingState;
use serde::{Deserialize, Serialize};

use crate::http::{locked_out, ApiError};
use crate::recordings::StartError;
use crate::state::AppState;

/// The answer: the recording's state.
#[derive(Debug, Serialize)]
struct StateBody {
    recording: RecordingState,
}

/// The body of `POST`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetBody {
    on: bool,
}

/// The room's code and SFU id when the bearer token is its host key; else the error to answer.
async fn authorize(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<(String, orbita_sfu::RoomId, Option<String>), Response> {
    let Ok(Path(code)) = path else {
        return Err(
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "bad room code").into_response(),
        );
    };
    let Some(key) = crate::whip::bearer(headers) else {
        return Err((
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({
                "error": "not_host",
                "message": "the room's host key is required as a bearer token",
            })),
        )
            .into_response());
    };
    let client = client_addr(peer.ip(), headers, state.settings.trust_proxy_headers);
    let checked = state.guesses.attempt(
        client,
        || {
            state
                .registry
                .get(&code)
                .filter(|_| state.registry.check_host_key(&code, key))
        },
        Option::is_none,
    );
    match checked {
        Err(locked) => Err(locked_out(locked.retry_after_secs).into_response()),
        Ok((None, delay)) => {
            tokio::time::sleep(delay).await;
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "not_host",
                "no live room has this code with this host key",
            )
            .into_response())
        }
        Ok((Some(room), _)) => Ok((room.code, room.id, room.owner)),
    }
}

fn state_of(state: &AppState, code: &str) -> Json<StateBody> {
    Json(StateBody {
        recording: if state.recordings.is_recording(code) {
            RecordingState::On
        } else {
            RecordingState::Off
        },
    })
}

/// `GET /api/rooms/{code}/recording`.
pub async fn state(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    match authorize(&state, peer, &headers, path).await {
        Ok((code, ..)) => state_of(&state, &code).into_response(),
        Err(refusal) => refusal,
    }
}

/// `POST /api/rooms/{code}/recording` with `{"on":bool}`.
pub async fn set(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let (code, room, owner) = match authorize(&state, peer, &headers, path).await {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let Ok(SetBody { on }) = serde_json::from_slice(&body) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the body must be {\"on\":true} or {\"on\":false}",
        )
        .into_response();
    };
    let app = state
        .registry
        .get(&code)
        .map_or_else(|| crate::rooms::PLAIN_ROOM_APP.to_string(), |r| r.app);
    if !state
        .call_settings
        .features(&app, orbita_protocol::Role::Agent)
        .record
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "not_allowed",
            "recording by hand is switched off for the agent in this call (set by the administrators)",
        )
        .into_response();
    }
    if !on {
        state.recordings.stop(&code);
        return Json(StateBody {
            recording: RecordingState::Off,
        })
        .into_response();
    }
    match state.recordings.start(&code, room, owner) {
        Ok(_) => state_of(&state, &code).into_response(),
        Err(e) => {
            let (status, error) = match e {
                StartError::NoFreeRecorder { .. } => (StatusCode::CONFLICT, "no_free_recorder"),
                StartError::Off => (StatusCode::CONFLICT, "recording_off"),
                StartError::QuotaFull { .. } => (StatusCode::CONFLICT, "recording_quota_full"),
                StartError::Io(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            };
            ApiError::new(status, error, e.to_string()).into_response()
        }
    }
}
