//! The node's end of the coordinator link: connect, answer the challenge, register, then
//! exchange [`FromNode`] / [`ToNode`] messages. `orbita node` (and tests) use it; sending
//! `HEARTBEAT` every `heartbeat_interval_seconds` is the caller's job, since only it knows
//! its load.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;

use crate::auth;
use crate::verbs::{FromNode, Registration, ToNode};

/// How to reach the coordinator.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `ws://HOST:PORT/coordinator/node` or `wss://...`.
    pub url: String,
    /// The shared cluster secret.
    pub secret: String,
    /// What to register (its `auth` is filled in here).
    pub registration: Registration,
    /// TLS settings for `wss://` (e.g. a private CA); `None`: the web PKI roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// A registered link.
#[derive(Debug)]
pub struct NodeLink {
    /// How often the coordinator wants heartbeats.
    pub heartbeat_interval_seconds: u64,
    /// Sessions the coordinator believes this node holds (end any others).
    pub sessions: Vec<String>,
    tx: mpsc::Sender<FromNode>,
    rx: mpsc::Receiver<ToNode>,
}

impl NodeLink {
    /// Sends a message; `false` when the link is gone.
    pub async fn send(&self, msg: FromNode) -> bool {
        self.tx.send(msg).await.is_ok()
    }

    /// The next message from the coordinator; `None` when the link closed.
    pub async fn recv(&mut self) -> Option<ToNode> {
        self.rx.recv().await
    }

    /// A sender to use from other tasks.
    pub fn sender(&self) -> mpsc::Sender<FromNode> {
        self.tx.clone()
    }
}

/// Connects, proves the secret and registers. Errors are for people (they name the step).
pub async fn connect(config: &NodeConfig) -> Result<NodeLink, String> {
    let connector = config.tls.clone().map(Connector::Rustls);
    let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        config.url.as_str(),
        None,
        // TCP_NODELAY: heartbeats and session answers are small and must not wait for acks.
        true,
        connector,
    )
    .await
    .map_err(|e| format!("connecting to {}: {e}", config.url))?;
    let nonce = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<ToNode>(t.as_str()) {
                Ok(ToNode::Challenge { nonce }) => break nonce,
                other => return Err(format!("expected CHALLENGE, got {other:?}")),
            },
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => return Err(format!("expected CHALLENGE, got {other:?}")),
        }
    };
    let mut reg = config.registration.clone();
    reg.auth = auth::prove(&config.secret, &nonce, &reg.server_name);
    let text = serde_json::to_string(&FromNode::Register(reg)).map_err(|e| e.to_string())?;
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|e| format!("registering: {e}"))?;
    let (heartbeat_interval_seconds, sessions) = loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<ToNode>(t.as_str()) {
                Ok(ToNode::Registered {
                    heartbeat_interval_seconds,
                    sessions,
                }) => break (heartbeat_interval_seconds, sessions),
                Ok(ToNode::Error { code, message }) => {
                    return Err(format!("registration refused: {code}: {message}"))
                }
                other => return Err(format!("expected REGISTERED, got {other:?}")),
            },
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => return Err(format!("registration refused: {other:?}")),
        }
    };
    let (out_tx, mut out_rx) = mpsc::channel::<FromNode>(256);
    let (in_tx, in_rx) = mpsc::channel::<ToNode>(256);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                msg = out_rx.recv() => {
                    let Some(msg) = msg else {
                        let _ = ws.close(None).await;
                        break;
                    };
                    let Ok(text) = serde_json::to_string(&msg) else { continue };
                    if ws.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(t))) => {
                        if let Ok(msg) = serde_json::from_str::<ToNode>(t.as_str()) {
                            if in_tx.send(msg).await.is_err() {
                                break;
                            }
                        }
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
    });
    Ok(NodeLink {
        heartbeat_interval_seconds,
        sessions,
        tx: out_tx,
        rx: in_rx,
    })
}
