//! Certificates obtained and renewed by ACME (RFC 8555) with `rustls-acme`: TLS-ALPN-01
//! (RFC 8737), answered on the HTTPS listener itself, so no port 80 is needed.
//!
//! At start a cached certificate (if any) is served at once; a new one is ordered when there
//! is none or when two thirds of the cached one's lifetime have passed (a 90-day certificate
//! is renewed 30 days before it expires), then the task sleeps until the next renewal. Failed
//! orders are retried with growing back-off. The account key and certificates live in
//! `acme_cache_dir` as `account-<hash>.key` and `<first domain>-<hash>.pem` (the hash tells
//! apart CAs, domain lists and contacts), written atomically, readable by the owner only.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls_acme::{AccountCache, AcmeConfig, CertCache, EventOk};
use tracing::{info, warn};

use crate::{ServerTls, TlsSettings, DEFAULT_ACME_CACHE_DIR, LETS_ENCRYPT_DIRECTORY};

/// The one crypto provider of Orbita's TLS (aws-lc-rs, as str0m's DTLS).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Whether `name` can be put in an ACME order: a DNS name of letter/digit/hyphen labels, at
/// least two of them, not an IP address, no wildcard (TLS-ALPN-01 cannot validate those).
pub fn domain_ok(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() >= 2
        && name.parse::<std::net::IpAddr>().is_err()
        && !labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Starts obtaining (or loading) and renewing the certificate of `settings.acme_domains`.
pub(crate) fn start(settings: &TlsSettings) -> Result<ServerTls, String> {
    let dir = settings
        .acme_cache_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ACME_CACHE_DIR));
    std::fs::create_dir_all(&dir).map_err(|e| format!("acme_cache_dir {}: {e}", dir.display()))?;
    let directory = settings
        .acme_directory_url
        .clone()
        .unwrap_or_else(|| LETS_ENCRYPT_DIRECTORY.to_string());
    let domains = settings.acme_domains.clone();
    let config = match &settings.acme_ca_file {
        Some(file) => AcmeConfig::new_with_client_config(&domains, client_config(file)?),
        None => AcmeConfig::new_with_provider(&domains, provider()),
    };
    let mut state = config
        .contact(&settings.acme_contact)
        .directory(&directory)
        .cache(FileCache { dir: dir.clone() })
        .state();
    let challenge = state.challenge_rustls_config_with_provider(provider());
    let mut default = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_cert_resolver(state.resolver());
    default.alpn_protocols = vec![b"http/1.1".to_vec()];
    info!(?domains, %directory, cache = %dir.display(), "ACME: certificate management started");
    let renewal = tokio::spawn(async move {
        while let Some(event) = state.next().await {
            match event {
                Ok(EventOk::DeployedCachedCert) => info!("ACME: serving the cached certificate"),
                Ok(EventOk::DeployedNewCert) => info!("ACME: serving a new certificate"),
                Ok(other) => tracing::debug!(event = ?other, "ACME"),
                Err(e) => warn!(error = %e, "ACME: will retry"),
            }
        }
    });
    Ok(ServerTls {
        default: Arc::new(default),
        challenge: Some(challenge),
        renewal: Some(renewal),
    })
}

/// The HTTPS client configuration for a directory whose certificate chains to `ca_file`.
fn client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, String> {
    let shown = || ca_file.display().to_string();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| format!("{}: {e}", shown()))? {
        let cert = cert.map_err(|e| format!("{}: {e}", shown()))?;
        roots.add(cert).map_err(|e| format!("{}: {e}", shown()))?;
    }
    if roots.is_empty() {
        return Err(format!("acme_ca_file {}: no certificate", shown()));
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The file holding the certificate (PEM: the private key, then the chain) for `domains` from
/// `directory_url`, in `dir`.
pub fn cert_path(dir: &Path, domains: &[String], directory_url: &str) -> PathBuf {
    let first = domains.first().map_or("certificate", String::as_str);
    dir.join(format!(
        "{first}-{}.pem",
        short_hash(&[&domains.join(","), directory_url])
    ))
}

fn account_path(dir: &Path, contact: &[String], directory_url: &str) -> PathBuf {
    dir.join(format!(
        "account-{}.key",
        short_hash(&[&contact.join(","), directory_url])
    ))
}

fn short_hash(parts: &[&str]) -> String {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in parts {
        context.update(part.as_bytes());
        context.update(b"\n");
    }
    context.finish().as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a cached file; a missing one is `None`.
async fn read_cached(path: PathBuf) -> Result<Option<Vec<u8>>, String> {
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename (never half a key), mode
/// 0600 on Unix: it holds private keys.
async fn write_private(path: PathBuf, bytes: Vec<u8>) -> Result<(), String> {
    let shown = path.display().to_string();
    tokio::task::spawn_blocking(move || {
        let tmp = path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("{shown}: {e}"))
}

/// The account key and certificates as files in one directory.
struct FileCache {
    dir: PathBuf,
}

#[async_trait::async_trait]
impl CertCache for FileCache {
    type EC = String;

    async fn load_cert(
        &self,
        domains: &[String],
        directory_url: &str,
    ) -> Result<Option<Vec<u8>>, String> {
        read_cached(cert_path(&self.dir, domains, directory_url)).await
    }

    async fn store_cert(
        &self,
        domains: &[String],
        directory_url: &str,
        cert: &[u8],
    ) -> Result<(), String> {
        write_private(cert_path(&self.dir, domains, directory_url), cert.to_vec()).await
    }
}

#[async_trait::async_trait]
impl AccountCache for FileCache {
    type EA = String;

    async fn load_account(
        &self,
        contact: &[String],
        directory_url: &str,
    ) -> Result<Option<Vec<u8>>, String> {
        read_cached(account_path(&self.dir, contact, directory_url)).await
    }

    async fn store_account(
        &self,
        contact: &[String],
        directory_url: &str,
        account: &[u8],
    ) -> Result<(), String> {
        write_private(
            account_path(&self.dir, contact, directory_url),
            account.to_vec(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dns_names_are_ordered() {
        for good in ["orbita.example.com", "a-b.example", "xn--80ak6aa92e.com"] {
            assert!(domain_ok(good), "{good}");
        }
        for bad in [
            "localhost",
            "192.0.2.1",
            "::1",
            "*.example.com",
            "-a.example",
            "a..example",
            "a.example.",
            "a b.example",
            "1.2",
        ] {
            assert!(!domain_ok(bad), "{bad}");
        }
    }

    #[test]
    fn cache_files_differ_by_ca_and_domains() {
        let dir = Path::new("/c");
        let d = vec!["orbita.example.com".to_string()];
        let a = cert_path(dir, &d, "https://ca-a/dir");
        assert!(a.starts_with(dir));
        assert!(a
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("orbita.example.com-"));
        assert_ne!(a, cert_path(dir, &d, "https://ca-b/dir"));
        let two = vec![d[0].clone(), "www.example.com".to_string()];
        assert_ne!(a, cert_path(dir, &two, "https://ca-a/dir"));
        assert_eq!(a, cert_path(dir, &d, "https://ca-a/dir"));
    }
}
