//! The server side of one TLS connection: its handshake, or the answer to an ACME validation.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::ServerTls;

impl ServerTls {
    /// Completes the server side of a TLS handshake on `io` (a freshly accepted connection).
    /// `Ok(None)`: it was an ACME validation connection (TLS-ALPN-01), answered with the
    /// challenge certificate and closed; it never reaches the application. The handshake has
    /// no time limit of its own: the caller bounds it (orbita-listen's header-read timeout).
    pub async fn accept<IO>(&self, io: IO) -> io::Result<Option<TlsStream<IO>>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io).await?;
        if let Some(challenge) = &self.challenge {
            if rustls_acme::is_tls_alpn_challenge(&start.client_hello()) {
                let mut tls = start.into_stream(challenge.clone()).await?;
                tls.shutdown().await?;
                return Ok(None);
            }
        }
        start.into_stream(self.default.clone()).await.map(Some)
    }
}
