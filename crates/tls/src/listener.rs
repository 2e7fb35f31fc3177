//! An axum [`Listener`] that completes TLS handshakes before handing connections over.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;
use tracing::{debug, warn};

use crate::ServerTls;

/// The longest a client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes each handshake in its own task (10 s at most) and hands the connections to axum.
/// ACME validation connections (TLS-ALPN-01) are answered with the challenge certificate and
/// closed: they never reach the application.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Wraps a bound TCP listener.
    pub fn new(listener: TcpListener, tls: &ServerTls) -> io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let default = Arc::clone(&tls.default);
        let challenge = tls.challenge.clone();
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = tx.closed() => break,
                };
                let (tcp, addr) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a little.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (default, challenge, done) = (default.clone(), challenge.clone(), tx.clone());
                tokio::spawn(async move {
                    let handshake = handshake(tcp, default, challenge);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(Some(tls))) => {
                            let _ = done.send((tls, addr)).await;
                        }
                        Ok(Ok(None)) => debug!(%addr, "answered an ACME TLS-ALPN-01 validation"),
                        Ok(Err(e)) => debug!(%addr, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%addr, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

/// One handshake: `None` for an ACME validation connection (answered and closed).
async fn handshake(
    tcp: TcpStream,
    default: Arc<rustls::ServerConfig>,
    challenge: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<Option<TlsStream<TcpStream>>> {
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
    if let Some(challenge) = challenge {
        if rustls_acme::is_tls_alpn_challenge(&start.client_hello()) {
            let mut tls = start.into_stream(challenge).await?;
            tls.shutdown().await?;
            return Ok(None);
        }
    }
    start.into_stream(default).await.map(Some)
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
