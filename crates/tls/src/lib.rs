//! HTTPS for Orbita's servers (`serve`, `node`, `coordinator`): one [`TlsSettings`] shape, a
//! certificate from PEM files or obtained and renewed by ACME ([`acme`], TLS-ALPN-01 on the
//! HTTPS port itself), the server side of each connection's handshake ([`ServerTls::accept`];
//! orbita-listen serves the connections), the [`Https`] request marker and the `Strict-Transport-Security` header ([`hsts`]).

pub mod acme;
mod files;
mod listener;

use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;
use tokio::task::JoinHandle;

pub use files::{load_pem, server_config};

/// Let's Encrypt's production directory: the default `acme_directory_url`.
pub const LETS_ENCRYPT_DIRECTORY: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Where ACME keeps its account key and certificates when `acme_cache_dir` is not set.
pub const DEFAULT_ACME_CACHE_DIR: &str = "acme";

/// `Strict-Transport-Security` sent on every HTTPS response: two years, subdomains not
/// included (they may be other services of the operator).
pub const HSTS_VALUE: &str = "max-age=63072000";

/// The TLS settings every server takes (TOML keys, `ORBITA_<NAME>`, `--<name>`): either a
/// certificate and key, or ACME domains, or nothing (plain HTTP, e.g. behind nginx).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TlsSettings {
    /// PEM certificate chain (leaf first). Needs `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert` (PKCS#8, PKCS#1 or SEC1).
    pub tls_key: Option<PathBuf>,
    /// Names to obtain a certificate for by ACME (TLS-ALPN-01: the CA connects to port 443 of
    /// each name, which must reach this server's HTTPS listener).
    #[serde(default)]
    pub acme_domains: Vec<String>,
    /// Contacts given to the CA (`mailto:ops@example.com`).
    #[serde(default)]
    pub acme_contact: Vec<String>,
    /// The CA's ACME directory; default Let's Encrypt production.
    pub acme_directory_url: Option<String>,
    /// Where the ACME account key and the certificates are kept (kept across restarts, or every
    /// start orders a new certificate and hits the CA's rate limits); default `acme`.
    pub acme_cache_dir: Option<PathBuf>,
    /// PEM roots to trust for the ACME directory's own HTTPS (a private CA such as step-ca);
    /// default: the public Web PKI roots.
    pub acme_ca_file: Option<PathBuf>,
}

impl TlsSettings {
    /// The keys of these settings, as TOML keys.
    pub const KEYS: [&'static str; 7] = [
        "tls_cert",
        "tls_key",
        "acme_domains",
        "acme_contact",
        "acme_directory_url",
        "acme_cache_dir",
        "acme_ca_file",
    ];

    /// Whether the server is to speak HTTPS.
    pub fn enabled(&self) -> bool {
        self.tls_cert.is_some() || self.tls_key.is_some() || !self.acme_domains.is_empty()
    }

    /// Checks the settings go together; the message names the settings.
    pub fn validate(&self) -> Result<(), String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err("tls_cert and tls_key go together".into())
            }
            (Some(_), Some(_)) if !self.acme_domains.is_empty() => {
                return Err(
                    "tls_cert/tls_key and acme_domains exclude each other: a certificate from \
                     files, or one obtained by ACME"
                        .into(),
                )
            }
            _ => {}
        }
        for domain in &self.acme_domains {
            if !acme::domain_ok(domain) {
                return Err(format!(
                    "acme_domains: {domain:?} is not a DNS name (letters, digits, '-', '.'; \
                     no IP addresses, no wildcards)"
                ));
            }
        }
        for contact in &self.acme_contact {
            if !contact.starts_with("mailto:") || contact.len() <= "mailto:".len() {
                return Err(format!(
                    "acme_contact: {contact:?} must be a mailto: URL (mailto:ops@example.com)"
                ));
            }
        }
        if let Some(url) = &self.acme_directory_url {
            if !url.starts_with("https://") {
                return Err(format!(
                    "acme_directory_url: {url:?} must be an https:// URL"
                ));
            }
        }
        let acme_only = self.acme_directory_url.is_some()
            || self.acme_cache_dir.is_some()
            || self.acme_ca_file.is_some()
            || !self.acme_contact.is_empty();
        if acme_only && self.acme_domains.is_empty() {
            return Err(
                "acme_contact, acme_directory_url, acme_cache_dir and acme_ca_file need \
                 acme_domains"
                    .into(),
            );
        }
        Ok(())
    }

    /// The domain that names this server in URLs when ACME is on.
    pub fn acme_host(&self) -> Option<&str> {
        self.acme_domains.first().map(String::as_str)
    }
}

/// The server side of TLS, ready for [`ServerTls::accept`]: the configuration for ordinary
/// connections and, with ACME, the one answering TLS-ALPN-01 validation connections, plus the
/// task that obtains and renews the certificate (stopped when this is dropped).
pub struct ServerTls {
    pub(crate) default: Arc<rustls::ServerConfig>,
    pub(crate) challenge: Option<Arc<rustls::ServerConfig>>,
    renewal: Option<JoinHandle<()>>,
}

impl ServerTls {
    /// A fixed certificate.
    pub fn fixed(config: Arc<rustls::ServerConfig>) -> ServerTls {
        ServerTls {
            default: config,
            challenge: None,
            renewal: None,
        }
    }

    /// TLS as `settings` say: `None` for plain HTTP; the certificate files loaded; or ACME
    /// started (the certificate is obtained in the background: until it arrives, handshakes
    /// fail, and a cached one is served at once).
    pub fn from_settings(settings: &TlsSettings) -> Result<Option<ServerTls>, String> {
        settings.validate()?;
        if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) {
            return Ok(Some(ServerTls::fixed(load_pem(cert, key)?)));
        }
        if settings.acme_domains.is_empty() {
            return Ok(None);
        }
        acme::start(settings).map(Some)
    }

    /// The configuration for ordinary connections.
    pub fn config(&self) -> &Arc<rustls::ServerConfig> {
        &self.default
    }
}

impl Drop for ServerTls {
    fn drop(&mut self) {
        if let Some(task) = self.renewal.take() {
            task.abort();
        }
    }
}

/// Marks requests that came over this server's own TLS (added as a request extension by the
/// servers when they serve HTTPS): the login cookie is then `Secure`.
#[derive(Debug, Clone, Copy)]
pub struct Https;

/// Adds [`Https`] to every request and `Strict-Transport-Security` to every response: for a
/// router served over TLS.
pub fn https_layers<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router
        .layer(axum::middleware::from_fn(hsts))
        .layer(axum::Extension(Https))
}

async fn hsts(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        axum::http::header::STRICT_TRANSPORT_SECURITY,
        axum::http::HeaderValue::from_static(HSTS_VALUE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_do_not_go_together_are_refused_by_name() {
        let ok = TlsSettings::default();
        assert!(ok.validate().is_ok() && !ok.enabled());
        let half = TlsSettings {
            tls_cert: Some("c.pem".into()),
            ..TlsSettings::default()
        };
        assert!(half.validate().unwrap_err().contains("tls_key"));
        let both = TlsSettings {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            acme_domains: vec!["orbita.example.com".into()],
            ..TlsSettings::default()
        };
        assert!(both.validate().unwrap_err().contains("exclude"));
        let acme = |f: fn(&mut TlsSettings)| {
            let mut s = TlsSettings {
                acme_domains: vec!["orbita.example.com".into()],
                ..TlsSettings::default()
            };
            f(&mut s);
            s.validate()
        };
        assert!(acme(|_| {}).is_ok());
        assert!(acme(|s| s.acme_domains = vec!["192.0.2.1".into()])
            .unwrap_err()
            .contains("acme_domains"));
        assert!(acme(|s| s.acme_domains = vec!["*.example.com".into()]).is_err());
        assert!(acme(|s| s.acme_contact = vec!["ops@example.com".into()])
            .unwrap_err()
            .contains("mailto:"));
        assert!(
            acme(|s| s.acme_directory_url = Some("http://ca.example/dir".into()))
                .unwrap_err()
                .contains("https://")
        );
        let stray = TlsSettings {
            acme_contact: vec!["mailto:ops@example.com".into()],
            ..TlsSettings::default()
        };
        assert!(stray.validate().unwrap_err().contains("need acme_domains"));
    }
}
