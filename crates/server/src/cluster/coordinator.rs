//! `orbita coordinator`: settings from a TOML/JSON file, `ORBITA_*` variables and flags, then
//! [`orbita_coordinator::server::serve`] until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use orbita_coordinator::config::FileConfiguration;
use orbita_coordinator::{server, Coordinator, Settings as CoordSettings};
use serde::Deserialize;
use tokio::net::TcpListener;

/// Where the coordinator listens when nothing says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7000";

/// Run the coordinator: the entry point to many session servers (nodes).
///
/// Settings, lowest precedence first: defaults, the file (`--config`; the keys of
/// docs/coordinator.md's settings table plus `listen_addr`, `tls_cert`, `tls_key` and the
/// `acme_*` settings of docs/configuration.md), environment
/// variables, flags, `--set KEY=VALUE`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CoordinatorArgs {
    /// TOML file (or JSON, by the `.json` extension) with the coordinator's settings.
    #[arg(long, env = "ORBITA_COORDINATOR_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to listen on. Default: `configuration.json`'s ip:port, else 127.0.0.1:7000.
    #[arg(long, env = "ORBITA_COORDINATOR_ADDR", value_name = "IP:PORT")]
    pub listen_addr: Option<SocketAddr>,

    /// PEM certificate chain: serve `wss://` (both endpoints). Needs --tls-key.
    #[arg(long, env = "ORBITA_COORDINATOR_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "ORBITA_COORDINATOR_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// The shared secret nodes prove (HMAC); nodes are refused while it is empty.
    #[arg(
        long,
        env = "ORBITA_CLUSTER_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub cluster_secret: Option<String>,

    /// Registry database (stage 2): `sqlite://FILE`, `postgres://...`, `mysql://...`.
    /// Default: none (stage 1, in memory, from the files).
    #[arg(
        long,
        env = "ORBITA_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,

    /// Stage 1 `servers.json`.
    #[arg(long, env = "ORBITA_SERVERS_FILE", value_name = "FILE")]
    pub servers_file: Option<PathBuf>,

    /// Stage 1 `configuration.json` (re-read period; its ip/port are the listen address).
    #[arg(long, env = "ORBITA_CONFIGURATION_FILE", value_name = "FILE")]
    pub configuration_file: Option<PathBuf>,

    /// `sessions_planned.json`.
    #[arg(long, env = "ORBITA_PLANS_FILE", value_name = "FILE")]
    pub plans_file: Option<PathBuf>,

    /// Digits per session code (4 to 12). Default: 4.
    #[arg(long, env = "ORBITA_COORDINATOR_CODE_LENGTH", value_name = "DIGITS")]
    pub code_length: Option<usize>,

    /// Seconds between node heartbeats. Default: 5.
    #[arg(long, env = "ORBITA_HEARTBEAT_INTERVAL_SECS", value_name = "SECS")]
    pub heartbeat_interval_secs: Option<u64>,

    /// Seconds of silence after which a node is down and its sessions end. Default: 15.
    #[arg(long, env = "ORBITA_HEARTBEAT_TIMEOUT_SECS", value_name = "SECS")]
    pub heartbeat_timeout_secs: Option<u64>,

    /// Seconds without activity after which a session ends. Default: 600.
    #[arg(
        long,
        env = "ORBITA_COORDINATOR_SESSION_IDLE_SECS",
        value_name = "SECS"
    )]
    pub session_idle_secs: Option<u64>,

    /// Wrong codes from one address (within the window) that lock it out. Default: 10.
    #[arg(long, env = "ORBITA_CODE_MAX_MISSES", value_name = "N")]
    pub code_max_misses: Option<u32>,

    /// Log lines as `text` or `json` (one JSON object per line); also the file's
    /// `log_format`. Default: text.
    #[arg(long, env = "ORBITA_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<crate::logging::LogFormat>,

    /// Any other setting of docs/coordinator.md, as `KEY=VALUE` (a TOML value, or text);
    /// repeatable; wins over everything else.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// What `orbita coordinator` runs with.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// The library's settings.
    pub settings: CoordSettings,
    /// Where to listen.
    pub listen_addr: SocketAddr,
    /// TLS: certificate files or ACME (`tls_cert`/`tls_key`, `acme_*`); default off.
    pub tls: orbita_tls::TlsSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Extra {
    listen_addr: Option<SocketAddr>,
}

fn load_table(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read coordinator config {}", path.display()))?;
    let table = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        serde_json::from_str::<toml::Table>(&text).map_err(anyhow::Error::new)
    } else {
        toml::from_str::<toml::Table>(&text).map_err(anyhow::Error::new)
    };
    table.with_context(|| format!("invalid coordinator config {}", path.display()))
}

/// The log format: `--log-format` / `ORBITA_LOG_FORMAT`, else the file's `log_format`, else
/// text (read before the rest, so logging is set up before the settings are checked).
pub fn log_format(args: &CoordinatorArgs) -> anyhow::Result<crate::logging::LogFormat> {
    if let Some(format) = args.log_format {
        return Ok(format);
    }
    let Some(path) = &args.config else {
        return Ok(crate::logging::LogFormat::default());
    };
    match load_table(path)?.remove("log_format") {
        Some(value) => value
            .try_into()
            .with_context(|| format!("{}: log_format is `text` or `json`", path.display())),
        None => Ok(crate::logging::LogFormat::default()),
    }
}

impl CoordinatorConfig {
    /// Merge defaults, file, environment and flags; validate.
    pub fn resolve(args: CoordinatorArgs) -> anyhow::Result<CoordinatorConfig> {
        let mut table = match &args.config {
            Some(path) => load_table(path)?,
            None => toml::Table::new(),
        };
        let mut put = |key: &str, value: Option<toml::Value>| {
            if let Some(v) = value {
                table.insert(key.to_string(), v);
            }
        };
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| toml::Value::String(p.display().to_string()))
        };
        let int = |n: Option<u64>| n.map(|n| toml::Value::Integer(n.min(i64::MAX as u64) as i64));
        put(
            "cluster_secret",
            args.cluster_secret.clone().map(toml::Value::String),
        );
        put(
            "database_url",
            args.database_url.clone().map(toml::Value::String),
        );
        put("servers_file", path(&args.servers_file));
        put("configuration_file", path(&args.configuration_file));
        put("plans_file", path(&args.plans_file));
        put("code_length", int(args.code_length.map(|n| n as u64)));
        put("heartbeat_interval_secs", int(args.heartbeat_interval_secs));
        put("heartbeat_timeout_secs", int(args.heartbeat_timeout_secs));
        put("session_idle_secs", int(args.session_idle_secs));
        put("code_max_misses", int(args.code_max_misses.map(u64::from)));
        put(
            "listen_addr",
            args.listen_addr.map(|a| toml::Value::String(a.to_string())),
        );
        put("tls_cert", path(&args.tls_cert));
        put("tls_key", path(&args.tls_key));
        for item in &args.set {
            let Some((key, value)) = item.split_once('=') else {
                bail!("--set {item}: expected KEY=VALUE");
            };
            let key = key.trim();
            let value = value.trim();
            // A TOML value (number, boolean, quoted string), else the text itself.
            let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.to_string()));
            table.insert(key.to_string(), parsed);
        }
        // Taken by `log_format` (logging is set up before this).
        table.remove("log_format");
        let mut extra_table = toml::Table::new();
        if let Some(v) = table.remove("listen_addr") {
            extra_table.insert("listen_addr".to_string(), v);
        }
        let extra: Extra = extra_table
            .try_into()
            .context("coordinator settings: listen_addr")?;
        let mut tls_table = toml::Table::new();
        for key in orbita_tls::TlsSettings::KEYS {
            if let Some(v) = table.remove(key) {
                tls_table.insert(key.to_string(), v);
            }
        }
        let tls: orbita_tls::TlsSettings = tls_table
            .try_into()
            .context("coordinator settings: tls_cert, tls_key or acme_*")?;
        tls.validate()
            .map_err(|e| anyhow!("coordinator settings: {e}"))?;
        let settings: CoordSettings = table
            .try_into()
            .context("coordinator settings (keys as in docs/coordinator.md)")?;
        settings
            .validate()
            .map_err(|e| anyhow!("coordinator settings: {e}"))?;
        let listen_addr = match extra.listen_addr {
            Some(addr) => addr,
            None => match &settings.configuration_file {
                Some(path) => {
                    let c = FileConfiguration::load(path).map_err(|e| anyhow!(e))?;
                    c.listen_addr()
                        .parse()
                        .with_context(|| format!("{}: ip/port is not an address", path.display()))?
                }
                None => DEFAULT_LISTEN.parse().expect("a valid default"),
            },
        };
        if settings.cluster_secret.is_empty() {
            tracing::warn!("cluster_secret is empty: every node will be refused");
        }
        Ok(CoordinatorConfig {
            settings,
            listen_addr,
            tls,
        })
    }
}

/// `orbita coordinator`: open the registry, serve both endpoints, stop on SIGINT/SIGTERM.
/// Prints one line with the bound address when ready.
pub async fn run_coordinator(args: CoordinatorArgs) -> anyhow::Result<()> {
    let admin_email = std::env::var("ORBITA_ADMIN_EMAIL").ok();
    let admin_password = std::env::var("ORBITA_ADMIN_PASSWORD").ok();
    let config = CoordinatorConfig::resolve(args)?;
    let tls = orbita_tls::ServerTls::from_settings(&config.tls).map_err(|e| anyhow!("TLS: {e}"))?;
    let coordinator = Arc::new(
        Coordinator::open(config.settings, orbita_coordinator::now_ms())
            .await
            .map_err(|e| anyhow!("cannot open the coordinator: {e}"))?,
    );
    // The first administrator (ORBITA_ADMIN_EMAIL + ORBITA_ADMIN_PASSWORD), as `orbita serve`.
    super::local::ensure_first_admin(
        &coordinator,
        admin_email.as_deref(),
        admin_password.as_deref(),
    )
    .await?;
    let setup_token = super::local::open_first_run(&coordinator).await?;
    let listener = TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen_addr))?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    println!(
        "orbita coordinator listening on {scheme}://{addr}{} (nodes: {scheme}://{addr}{})",
        server::CLIENT_PATH,
        server::NODE_PATH
    );
    if let Some(token) = setup_token {
        // The page is served by the nodes (or the site's name in front of them), and its
        // `/api/setup` must reach this coordinator (deploy/nginx/cluster.conf routes `/api/`).
        println!(
            "No administrator yet. Open /setup?token={token} on the site's address (e.g. \
             https://video.example.org/setup?token={token}) to create one (it works once)"
        );
    }
    server::serve(listener, coordinator, tls, async {
        let signal = super::shutdown_signal().await;
        tracing::info!("{signal} received; shutting down");
    })
    .await
    .context("the coordinator's server failed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CoordinatorArgs,
    }

    fn args(flags: &[&str]) -> CoordinatorArgs {
        Cli::try_parse_from(std::iter::once("coordinator").chain(flags.iter().copied()))
            .unwrap()
            .args
    }

    #[test]
    fn file_flags_and_set_merge() {
        let dir = std::env::temp_dir().join(format!("orbita-coord-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(
            &file,
            "listen_addr = \"127.0.0.1:7100\"\ncode_length = 6\ncluster_secret = \"a\"\ncode_max_misses = 3\n",
        )
        .unwrap();
        let c = CoordinatorConfig::resolve(args(&[
            "--config",
            file.to_str().unwrap(),
            "--cluster-secret",
            "b",
            "--set",
            "code_attempt_burst=50",
            "--set",
            "code_attempts_per_second = 2.5",
        ]))
        .unwrap();
        assert_eq!(c.listen_addr, "127.0.0.1:7100".parse().unwrap());
        assert_eq!(c.settings.code_length, 6);
        assert_eq!(c.settings.cluster_secret, "b", "flag beats file");
        assert_eq!(c.settings.code_max_misses, 3);
        assert_eq!(c.settings.code_attempt_burst, 50);
        assert_eq!(c.settings.code_attempts_per_second, 2.5);
        assert!(!c.tls.enabled());

        let d = CoordinatorConfig::resolve(args(&["--cluster-secret", "x"])).unwrap();
        assert_eq!(d.listen_addr, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(d.settings.code_length, 4);

        let err = CoordinatorConfig::resolve(args(&["--set", "no_such_key=1"])).unwrap_err();
        assert!(format!("{err:#}").contains("no_such_key"), "{err:#}");
        let err = CoordinatorConfig::resolve(args(&["--code-length", "3"])).unwrap_err();
        assert!(format!("{err:#}").contains("code_length"), "{err:#}");
        let err = CoordinatorConfig::resolve(args(&["--tls-cert", "/x"])).unwrap_err();
        assert!(format!("{err:#}").contains("tls_key"), "{err:#}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
