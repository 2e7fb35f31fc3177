//! One participant's signalling: a small tokio task per WebSocket. It joins, hands the
//! participant to its media shard, and then only relays: SDP and candidates from the server
//! to the shard, the shard's answers and candidates to the server. Room chatter
//! (`participant_joined` and the like, O(participants) messages per join) is skipped without
//! being parsed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use orbita_protocol::{ClientMsg, IceServer, ServerMsg, PROTOCOL_VERSION};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::engine::{EngineHandle, PeerSpec, RelayedSocket, Relays};

/// How long connecting and joining may take.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

/// Where a participant's signalling stands.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    /// When its task started connecting.
    pub started: Option<Instant>,
    /// When the WebSocket opened.
    pub ws_open: Option<Instant>,
    /// WebSocket open to `joined`.
    pub joined_after: Option<Duration>,
    /// Why it failed to join, if it did.
    pub failed: Option<String>,
    /// Why its signalling ended early (the server dropped it), if it did.
    pub ended: Option<String>,
}

/// Counters the progress line reads.
#[derive(Debug, Default)]
pub struct SignalCounters {
    /// Tasks started.
    pub started: AtomicU64,
    /// WebSockets open.
    pub ws_open: AtomicU64,
    /// `joined` received.
    pub joined: AtomicU64,
    /// Failed to connect or join.
    pub failed: AtomicU64,
    /// Dropped by the server after joining.
    pub ended: AtomicU64,
}

/// Everything a participant task needs.
pub struct Plan {
    /// Index of the participant in the run.
    pub id: usize,
    /// Signalling URL.
    pub url: String,
    /// Room code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// What it does on the media side.
    pub spec: PeerSpec,
    /// Sent as `set_quality` after joining.
    pub max_quality: Option<String>,
}

/// Run one participant until `stop` turns true or the server ends it.
pub async fn participant(
    plan: Plan,
    engine: EngineHandle,
    mut stop: watch::Receiver<bool>,
    slots: Arc<Mutex<Vec<Slot>>>,
    counters: Arc<SignalCounters>,
) {
    let id = plan.id;
    let set = |f: &dyn Fn(&mut Slot)| {
        if let Ok(mut s) = slots.lock() {
            f(&mut s[id]);
        }
    };
    set(&|s| s.started = Some(Instant::now()));
    counters.started.fetch_add(1, Ordering::Relaxed);
    let (mut ws, ws_open, joined_after, ice_servers) =
        match tokio::time::timeout(JOIN_TIMEOUT, connect_and_join(&plan)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let reason = format!("{e:#}");
                counters.failed.fetch_add(1, Ordering::Relaxed);
                set(&|s| s.failed = Some(reason.clone()));
                return;
            }
            Err(_) => {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                set(&|s| s.failed = Some(format!("no `joined` within {JOIN_TIMEOUT:?}")));
                return;
            }
        };
    let relays = if plan.spec.relay_only {
        match relays_for(&plan.spec, &ice_servers).await {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("{e:#}");
                counters.failed.fetch_add(1, Ordering::Relaxed);
                set(&|s| s.failed = Some(reason.clone()));
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                return;
            }
        }
    } else {
        Relays::default()
    };
    counters.joined.fetch_add(1, Ordering::Relaxed);
    set(&|s| {
        s.ws_open = Some(ws_open);
        s.joined_after = Some(joined_after);
    });

    let (to_ws, mut from_engine) = mpsc::unbounded_channel::<ClientMsg>();
    engine.add(id, plan.spec.clone(), ws_open, to_ws, relays);
    if let Some(max) = &plan.max_quality {
        let msg = ClientMsg::SetQuality {
            max: max.clone(),
            track_id: None,
        };
        if let Ok(text) = serde_json::to_string(&msg) {
            let _ = ws.send(Message::text(text)).await;
        }
    }
    let ended: Option<String> = loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Some(msg) = relevant(text.as_str()) {
                        if let ServerMsg::ServerShutdown { reason } = &msg {
                            break Some(format!("server shutdown: {reason}"));
                        }
                        engine.signal(id, msg);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break Some(format!("server closed the WebSocket: {frame:?}"));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Some(format!("WebSocket error: {e}")),
                None => break Some("WebSocket closed".into()),
            },
            out = from_engine.recv() => {
                if let Some(msg) = out {
                    let text = serde_json::to_string(&msg).expect("client messages serialize");
                    if let Err(e) = ws.send(Message::text(text)).await {
                        break Some(format!("WebSocket send failed: {e}"));
                    }
                }
            }
            _ = stop.changed() => break None,
        }
    };
    if let Some(reason) = ended {
        if !*stop.borrow() {
            counters.ended.fetch_add(1, Ordering::Relaxed);
            set(&|s| s.ended = Some(reason.clone()));
        }
        // Wait for the stop so the media side keeps counting what it had.
        let _ = stop.wait_for(|s| *s).await;
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
    }
    engine.remove(id);
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `--relay-only`: a socket with an allocation at the relay of `ice_servers` for each of the
/// participant's connections (allocated at once, as a browser gathers).
async fn relays_for(spec: &PeerSpec, ice_servers: &[IceServer]) -> anyhow::Result<Relays> {
    use orbita_bot::relay;
    let server = relay::pick_relay(ice_servers)?;
    let addr = relay::resolve(&server, spec.bind_ip).await?;
    let one = || async {
        let (socket, client) = relay::bind_and_allocate(spec.bind_ip, &server, addr).await?;
        let socket = socket.into_std().context("the relayed socket")?;
        anyhow::Ok(RelayedSocket { socket, client })
    };
    let (publisher, subscriber) = tokio::try_join!(
        async {
            match spec.publishes() {
                true => one().await.map(Some),
                false => Ok(None),
            }
        },
        one()
    )?;
    Ok(Relays {
        publisher,
        subscriber: Some(subscriber),
    })
}

async fn connect_and_join(plan: &Plan) -> anyhow::Result<(Ws, Instant, Duration, Vec<IceServer>)> {
    let url = match plan.url.strip_prefix("http://") {
        Some(rest) => format!("ws://{rest}"),
        None => plan.url.clone(),
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    let ws_open = Instant::now();
    let join = ClientMsg::Join {
        v: PROTOCOL_VERSION,
        code: plan.code.clone(),
        name: plan.name.clone(),
        key: None,
        consent: None,
    };
    ws.send(Message::text(serde_json::to_string(&join)?))
        .await
        .context("sending join")?;
    loop {
        let text = match ws.next().await {
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Close(f))) => bail!("closed before `joined`: {f:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => bail!("WebSocket error before `joined`: {e}"),
            None => bail!("closed before `joined`"),
        };
        match serde_json::from_str::<ServerMsg>(text.as_str()) {
            Ok(ServerMsg::Joined { ice_servers, .. }) => {
                return Ok((ws, ws_open, ws_open.elapsed(), ice_servers))
            }
            Ok(ServerMsg::Error { code, message }) => {
                let code = serde_json::to_value(code)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                bail!("join refused ({code}): {message}")
            }
            Ok(_) => {}
            Err(e) => bail!("unparseable message before `joined` ({e})"),
        }
    }
}

/// The server messages the media side needs, parsed; room chatter is skipped unparsed.
fn relevant(text: &str) -> Option<ServerMsg> {
    const SKIP: [&str; 6] = [
        "{\"type\":\"participant_joined\"",
        "{\"type\":\"participant_left\"",
        "{\"type\":\"track_published\"",
        "{\"type\":\"track_unpublished\"",
        "{\"type\":\"track_muted\"",
        "{\"type\":\"pong\"",
    ];
    if SKIP.iter().any(|p| text.starts_with(p)) {
        return None;
    }
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatter_is_skipped_and_sdp_is_parsed() {
        let joined = serde_json::to_string(&ServerMsg::ParticipantLeft {
            participant_id: "p1".into(),
        })
        .unwrap();
        assert!(
            joined.starts_with("{\"type\":\"participant_left\""),
            "{joined}"
        );
        assert!(relevant(&joined).is_none());
        let cand = serde_json::to_string(&ServerMsg::Candidate {
            pc: orbita_protocol::PcKind::Subscriber,
            candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host".into(),
        })
        .unwrap();
        assert!(matches!(relevant(&cand), Some(ServerMsg::Candidate { .. })));
    }
}
