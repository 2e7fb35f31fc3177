//! The bot's I/O loop: one tokio task selecting over the WebSocket, the handle's commands,
//! both UDP sockets and the next deadline (str0m timeouts, media ticks, keep-alive). All
//! decisions are made by [`Session`]; this only moves bytes and time.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::session::{Command, Session, Shared, Side};

/// The signalling WebSocket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest UDP datagram read.
const UDP_BUF: usize = 2048;

async fn recv_opt(socket: Option<&UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Run the session until it finishes, then close the peers and record why it ended.
pub(crate) async fn run(
    mut session: Session,
    ws: Ws,
    mut commands: UnboundedReceiver<Command>,
    shared: Arc<Shared>,
) {
    let reason = drive(&mut session, ws, &mut commands).await;
    tracing::debug!("bot task ends: {reason}");
    session.close();
    shared.rec().ended(reason);
}

async fn drive(session: &mut Session, ws: Ws, commands: &mut UnboundedReceiver<Command>) -> String {
    let (mut sink, mut stream) = ws.split();
    let (pub_socket, sub_socket) = session.sockets();
    let mut pub_buf = vec![0u8; UDP_BUF];
    let mut sub_buf = vec![0u8; UDP_BUF];

    loop {
        let now = Instant::now();
        if session.next_deadline(now) <= now {
            session.on_timeout(now);
        }
        for out in session.take_outbox() {
            if let Err(e) = sink.send(Message::text(out.into_text())).await {
                return format!("WebSocket send failed: {e}");
            }
        }
        if let Some(reason) = session.finished() {
            let _ = sink.close().await;
            return reason.to_string();
        }

        // At least 1 ms: str0m asking for "now" again must not starve the sockets.
        let deadline = session
            .next_deadline(now)
            .max(now + Duration::from_millis(1));

        tokio::select! {
            msg = stream.next() => {
                let now = Instant::now();
                match msg {
                    Some(Ok(Message::Text(text))) => session.on_server_text(now, text.as_str()),
                    Some(Ok(Message::Close(frame))) => session.finish(match frame {
                        Some(f) if !f.reason.is_empty() => {
                            format!("server closed the WebSocket ({}: {})", f.code, f.reason)
                        }
                        Some(f) => format!("server closed the WebSocket ({})", f.code),
                        None => "server closed the WebSocket".to_string(),
                    }),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => session.finish(format!("WebSocket error: {e}")),
                    None => session.finish("WebSocket closed"),
                }
            }
            cmd = commands.recv() => match cmd {
                Some(cmd) => session.on_command(Instant::now(), cmd),
                None => session.finish("bot handle dropped"),
            },
            r = recv_opt(pub_socket.as_deref(), &mut pub_buf) => {
                if let Ok((n, source)) = r {
                    session.on_udp(Instant::now(), Side::Publisher, source, &pub_buf[..n]);
                }
            }
            r = sub_socket.recv_from(&mut sub_buf) => {
                if let Ok((n, source)) = r {
                    session.on_udp(Instant::now(), Side::Subscriber, source, &sub_buf[..n]);
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => session.on_timeout(Instant::now()),
        }
    }
}
