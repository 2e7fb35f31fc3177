//! The accept loop and each connection's task: caps at accept, the TLS handshake and HTTP/1.1
//! (with WebSocket upgrades) under the connection's deadlines, graceful shutdown.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::caps::{ConnectionCaps, Permit};
use crate::deadlines::{ConnectionClock, Expiry};
use crate::io::{Activity, TrackedIo};
use crate::service::ConnectionService;
use crate::{Limits, ListenerStats};

/// How long the accept loop pauses after `accept` itself failed (out of file descriptors and
/// the like), so that it does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` (HTTPS when `tls` is given: then with
/// [`orbita_tls::https_layers`]) within `limits`, counting in `stats`, until `shutdown`
/// resolves; then stops accepting, lets requests in flight finish and returns when every HTTP
/// connection has closed (upgraded WebSockets live on: their owners close them).
///
/// Requests carry the peer address as `axum::extract::ConnectInfo<SocketAddr>`. Accepted
/// sockets get `TCP_NODELAY`: answers are small and come one at a time.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<orbita_tls::ServerTls>,
    limits: Limits,
    stats: Arc<ListenerStats>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let max_connections = crate::fd_limit::fit_max_connections(limits.max_connections);
    let caps = ConnectionCaps::new(max_connections, limits.max_connections_per_address);
    stats.watch(&caps);
    let tls = tls.map(Arc::new);
    let app = match tls {
        Some(_) => orbita_tls::https_layers(app),
        None => app,
    };
    // Connections are told to finish through `stop`; each holds `alive` until it has.
    let (stop, stopping) = watch::channel(false);
    let (alive, _) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let permit = match caps.try_open(peer.ip()) {
            Ok(p) => p,
            Err(why) => {
                // Closed at once: nothing of it is read.
                stats.refused(why);
                debug!(%peer, ?why, "connection refused by the caps");
                continue;
            }
        };
        stats.accepted();
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            app: app.clone(),
            peer,
            limits,
            stats: Arc::clone(&stats),
            stopping: stopping.clone(),
        };
        let tls = tls.clone();
        let alive = alive.subscribe();
        tokio::spawn(async move {
            connection.run(tcp, permit, tls).await;
            drop(alive);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    alive.closed().await;
    Ok(())
}

/// One accepted connection.
struct Connection {
    app: Router,
    peer: SocketAddr,
    limits: Limits,
    stats: Arc<ListenerStats>,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    async fn run(self, tcp: TcpStream, permit: Permit, tls: Option<Arc<orbita_tls::ServerTls>>) {
        let clock = ConnectionClock::new(
            self.limits.header_read_timeout,
            self.limits.idle_timeout,
            Instant::now(),
        );
        let activity = Activity::new(clock);
        let Some(tls) = tls else {
            return self
                .http(TrackedIo::new(tcp, activity.clone(), permit), activity)
                .await;
        };
        // The handshake counts against the header-read deadline, which runs from the accept.
        let deadline = activity
            .deadline()
            .expect("a new connection has a deadline");
        // Pinned here so that a timed-out handshake's socket closes after it is counted.
        let handshake = std::pin::pin!(tls.accept(tcp));
        match tokio::time::timeout_at(deadline, handshake).await {
            Ok(Ok(Some(stream))) => {
                self.http(TrackedIo::new(stream, activity.clone(), permit), activity)
                    .await
            }
            Ok(Ok(None)) => debug!(peer = %self.peer, "answered an ACME TLS-ALPN-01 validation"),
            Ok(Err(e)) => {
                self.stats.tls_failed();
                debug!(peer = %self.peer, error = %e, "TLS handshake failed");
            }
            Err(_) => {
                self.stats.expired(Expiry::HeaderRead);
                debug!(peer = %self.peer, "TLS handshake timed out");
            }
        }
    }

    /// HTTP/1.1 on `io` until it closes, upgrades, misses a deadline or the server stops.
    async fn http<IO>(mut self, io: TrackedIo<IO>, activity: Arc<Activity>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = ConnectionService {
            router: self.app.clone(),
            peer: self.peer,
            activity: activity.clone(),
        };
        let builder = Builder::new(TokioExecutor::new());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        let mut conn = std::pin::pin!(conn);
        let mut stopping = false;
        loop {
            let deadline = activity.deadline();
            let changed = activity.changed.notified();
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        debug!(peer = %self.peer, error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = changed => {}
                _ = sleep_until(deadline) => {
                    if let Some(expiry) = activity.expired(Instant::now()) {
                        self.stats.expired(expiry);
                        debug!(peer = %self.peer, ?expiry, "connection timed out");
                        break;
                    }
                }
                _ = self.stopping.changed(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        // Upgraded (a WebSocket owns the stream now) or closed: nothing more to watch.
        activity.finish();
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
