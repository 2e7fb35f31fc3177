//! WHIP ingest (RFC 9725): OBS, GStreamer or a session's app publish into a room with one
//! HTTP request.
//!
//! | route | answer |
//! |---|---|
//! | `POST /whip/{code}` | `Authorization: Bearer <room publish token>`, body an SDP offer (`application/sdp`): 201 with the SDP answer and `Location: /whip/{code}/{resource}`; 403 [`WRONG_CODE_OR_TOKEN`] for a code of no live room or a wrong token alike (a wrong code guess, [`crate::guesses`]: held back, then 429 when locked out) |
//! | `DELETE /whip/{code}/{resource}` | 200: the publisher leaves the room |
//! | `PATCH /whip/{code}/{resource}` | 405: trickle ICE is not needed (the server is ICE-lite and gives its candidates in the answer) |
//!
//! The publisher becomes a publish-only participant of the room (it receives nothing): its
//! audio m-lines are published as microphone (then screen audio), its video m-lines as camera
//! (then screen), with the simulcast rids the offer declares.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use orbita_coordinator::accounts::http::client_addr;
use orbita_protocol::{ClientMsg, LayerInfo, PcKind, PublishTrack, ServerMsg, TrackSource};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use crate::backend::MediaParticipant;
use crate::rooms::{EnterError, Seat};
use crate::state::AppState;

/// Most WHIP publishers in one room.
pub const MAX_PER_ROOM: usize = 4;
/// Largest SDP offer accepted.
pub const MAX_OFFER_BYTES: usize = 64 * 1024;
/// How long the SFU may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

struct Resource {
    code: String,
    _participant: Box<dyn MediaParticipant>,
    _seat: Seat,
}

/// The live WHIP publishers, by resource id.
#[derive(Default)]
pub struct WhipSessions {
    resources: Mutex<HashMap<String, Resource>>,
}

impl WhipSessions {
    /// Live WHIP publishers over all rooms.
    pub fn len(&self) -> usize {
        self.resources.lock().len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into(),
    )
        .into_response()
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// What each sending m-line of a WHIP offer publishes, by mid.
pub fn tracks_of_offer(sdp: &str) -> Vec<PublishTrack> {
    let mut tracks = Vec::new();
    let (mut audio, mut video) = (0, 0);
    let mut current: Option<(bool, Option<String>, Vec<LayerInfo>, bool)> = None;
    let mut finish = |m: Option<(bool, Option<String>, Vec<LayerInfo>, bool)>,
                      tracks: &mut Vec<PublishTrack>| {
        if let Some((is_audio, Some(mid), layers, sends)) = m {
            if !sends {
                return;
            }
            let source = match (is_audio, if is_audio { audio } else { video }) {
                (true, 0) => TrackSource::Microphone,
                (true, _) => TrackSource::ScreenAudio,
                (false, 0) => TrackSource::Camera,
                (false, _) => TrackSource::Screen,
            };
            if is_audio {
                audio += 1;
            } else {
                video += 1;
            }
            if (is_audio && audio > 2) || (!is_audio && video > 2) {
                return;
            }
            tracks.push(PublishTrack {
                mid,
                source,
                layers,
                muted: false,
            });
        }
    };
    for line in sdp.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("m=") {
            finish(current.take(), &mut tracks);
            current = match rest.split(' ').next() {
                Some("audio") => Some((true, None, vec![], true)),
                Some("video") => Some((false, None, vec![], true)),
                _ => None,
            };
        } else if let Some((_, mid, layers, sends)) = current.as_mut() {
            if let Some(m) = line.strip_prefix("a=mid:") {
                *mid = Some(m.to_string());
            } else if let Some(r) = line.strip_prefix("a=rid:") {
                let mut parts = r.split(' ');
                if let (Some(rid), Some("send")) = (parts.next(), parts.next()) {
                    layers.push(LayerInfo {
                        rid: rid.to_string(),
                        width: None,
                        height: None,
                    });
                }
            } else if line == "a=recvonly" || line == "a=inactive" {
                *sends = false;
            }
        }
    }
    finish(current.take(), &mut tracks);
    tracks
}

/// The answer to `POST /whip/{code}` when the code names no live room or the token is not
/// its publish token (one answer for both: it does not tell which codes are live).
pub const WRONG_CODE_OR_TOKEN: &str =
    "no live room has this code with this publish token (wrong code or wrong token)";

/// `POST /whip/{code}`.
pub async fn publish(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if state.connections.is_refusing() {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down",
        );
    }
    let Some(token) = bearer(&headers) else {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token (the room's publish token) is required",
        )
            .into_response();
    };
    // One answer for a code that names no room and a wrong token (which would tell live codes
    // apart), and both count as a wrong code guess.
    let client = client_addr(peer.ip(), &headers, state.settings.trust_proxy_headers);
    let checked = state.guesses.attempt(
        client,
        || state.registry.check_publish_token(&code, token),
        |right| !right,
    );
    match checked {
        Err(locked) => {
            let secs = locked.retry_after_secs;
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [
                    (
                        header::CONTENT_TYPE,
                        "text/plain; charset=utf-8".to_string(),
                    ),
                    (header::RETRY_AFTER, secs.to_string()),
                ],
                crate::guesses::locked_out_message(secs),
            )
                .into_response();
        }
        Ok((false, delay)) => {
            tokio::time::sleep(delay).await;
            return plain(StatusCode::FORBIDDEN, WRONG_CODE_OR_TOKEN);
        }
        Ok((true, _)) => {}
    }
    let is_sdp = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/sdp"));
    if !is_sdp {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the body must be an SDP offer (Content-Type: application/sdp)",
        );
    }
    if body.len() > MAX_OFFER_BYTES {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the offer is over {MAX_OFFER_BYTES} bytes"),
        );
    }
    let Ok(sdp) = std::str::from_utf8(&body) else {
        return plain(StatusCode::BAD_REQUEST, "the offer is not UTF-8 text");
    };
    let tracks = tracks_of_offer(sdp);
    if tracks.is_empty() {
        return plain(
            StatusCode::BAD_REQUEST,
            "the offer sends no audio or video m-line with a mid",
        );
    }
    // An ingest seat: at most MAX_PER_ROOM per room; it does not keep the room alive.
    let seat = match state.registry.enter_ingest(&code, MAX_PER_ROOM) {
        Ok(seat) => seat,
        Err(EnterError::UnknownCode) => return plain(StatusCode::NOT_FOUND, "the room has ended"),
        Err(EnterError::Full { max }) => {
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the room already has {max} WHIP publishers"),
            )
        }
    };
    let name = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| format!("WHIP ({})", ua.chars().take(40).collect::<String>()))
        .unwrap_or_else(|| "WHIP".to_string());
    let (tx, mut rx) = mpsc::channel(256);
    let participant = state
        .backend
        .join_ingest(seat.room(), name, state.settings.limits(), tx);
    participant.handle(ClientMsg::Offer {
        pc: PcKind::Publisher,
        sdp: sdp.to_string(),
        tracks,
    });
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, async {
        while let Some(msg) = rx.recv().await {
            match msg {
                ServerMsg::Answer { sdp, .. } => return Ok(sdp),
                ServerMsg::Error { message, .. } => return Err(message),
                _ => {}
            }
        }
        Err("the room ended".to_string())
    })
    .await;
    let answer = match answer {
        Ok(Ok(sdp)) => sdp,
        Ok(Err(message)) => return plain(StatusCode::BAD_REQUEST, message),
        Err(_) => {
            return plain(
                StatusCode::GATEWAY_TIMEOUT,
                "the media server did not answer",
            )
        }
    };
    let resource: String = {
        use rand::Rng;
        let mut rng = rand::rng();
        (0..12)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect()
    };
    state.whip.resources.lock().insert(
        resource.clone(),
        Resource {
            code: code.clone(),
            _participant: participant,
            _seat: seat,
        },
    );
    // Keep reading the participant's messages (room events) so its queue never fills; when the
    // SFU drops it (ICE failure, room closed), forget the resource.
    let sessions = Arc::clone(&state.whip);
    let id = resource.clone();
    tokio::spawn(async move {
        while rx.recv().await.is_some() {}
        sessions.resources.lock().remove(&id);
    });
    let location = format!("/whip/{code}/{resource}");
    (
        StatusCode::CREATED,
        [
            (header::CONTENT_TYPE, "application/sdp".to_string()),
            (header::LOCATION, location),
        ],
        answer,
    )
        .into_response()
}

/// `DELETE /whip/{code}/{resource}`: the publisher leaves.
pub async fn stop(
    State(state): State<AppState>,
    Path((code, resource)): Path<(String, String)>,
) -> Response {
    let removed = {
        let mut resources = state.whip.resources.lock();
        match resources.get(&resource) {
            Some(r) if r.code == code => resources.remove(&resource),
            _ => None,
        }
    };
    match removed {
        Some(_) => StatusCode::OK.into_response(),
        None => plain(StatusCode::NOT_FOUND, "no such WHIP session"),
    }
}

/// `PATCH /whip/{code}/{resource}`: trickle ICE is not supported (nor needed).
pub async fn patch() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "DELETE")],
        "trickle ICE is not supported: the answer carries every server candidate",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_m_lines_become_tracks() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rid:q send\r\na=rid:f send\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=recvonly\r\n\
                   m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:3\r\n";
        let tracks = tracks_of_offer(sdp);
        assert_eq!(tracks.len(), 2);
        assert_eq!(
            (tracks[0].mid.as_str(), tracks[0].source),
            ("0", TrackSource::Microphone)
        );
        assert_eq!(
            (tracks[1].mid.as_str(), tracks[1].source),
            ("1", TrackSource::Camera)
        );
        let rids: Vec<&str> = tracks[1].layers.iter().map(|l| l.rid.as_str()).collect();
        assert_eq!(rids, ["q", "f"]);
        assert!(tracks_of_offer("v=0\r\n").is_empty());
    }
}
