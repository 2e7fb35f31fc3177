//! Server settings and where they come from.
//!
//! Every setting has a default and can be set, from lowest to highest precedence, in a TOML
//! file (`--config FILE` or `ORBITA_CONFIG`), by an environment variable `ORBITA_<NAME>`, or by
//! a command-line flag `--<name>`. [`ServeArgs`] holds what the command line and environment
//! gave (clap reads both, flags winning), [`FileSettings`] what the file gave, and
//! [`Settings::resolve`] merges them over [`Settings::default`] and validates the result.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use serde::Deserialize;

/// The largest `max_message_bytes` (16 MiB), and the most a signalling connection ever reads
/// as one message (`crate::ws::transport_max_message_bytes`: four times `max_message_bytes`,
/// at least 256 KiB; text messages above `max_message_bytes` but below that get a `too_large`
/// error, larger ones drop the connection).
pub const TRANSPORT_MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The resolved settings of `orbita serve`.
///
/// Field names are the TOML keys; the environment variable is `ORBITA_` plus the upper-cased
/// name and the flag is `--` plus the name with dashes (docs/configuration.md lists them all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Address of the HTTP and WebSocket server.
    pub http_addr: SocketAddr,
    /// Base URL used in join links; `None`: derived from the bound HTTP address.
    pub public_url: Option<String>,
    /// Address of the one media UDP socket.
    pub udp_addr: SocketAddr,
    /// Address of the one ICE-TCP listener; `None`: ICE-TCP off.
    pub tcp_addr: Option<SocketAddr>,
    /// A range of UDP ports on `udp_addr`'s IP instead of its one port, each connection on one
    /// of them; `None`: the one port of `udp_addr`.
    pub udp_port_range: Option<UdpPortRange>,
    /// IPs announced in ICE candidates; empty: the bound media addresses.
    pub announce_ips: Vec<IpAddr>,
    /// SFU worker threads; 0: one per core.
    pub workers: usize,
    /// Most live rooms.
    pub max_rooms: usize,
    /// Most participants in one room.
    pub max_participants_per_room: usize,
    /// Largest signalling message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Longest chat text, in characters.
    pub max_chat_chars: usize,
    /// Digits in a generated join code (4..=12) while few rooms are live; longer codes are
    /// generated as rooms fill the space ([`crate::rooms::code_length_for`]).
    pub code_length: usize,
    /// How long an empty room lives on after its last participant left, in seconds.
    pub empty_room_grace_secs: u64,
    /// How long a room that nobody ever joined lives, in seconds.
    pub unused_room_ttl_secs: u64,
    /// Initial bandwidth estimate towards each subscriber, in kbit/s.
    pub initial_bitrate_kbps: u64,
    /// How long a participant whose ICE connection dropped is kept, in seconds.
    pub ice_disconnect_grace_secs: u64,
    /// How long shutdown waits for participants to be told and connections to close, in seconds.
    pub shutdown_timeout_secs: u64,
    /// Signalling messages a connection may send per second (bursts of twice that).
    pub messages_per_second: u32,
    /// Chat messages one participant may send per second (bursts of `chat_burst`); beyond,
    /// the sender gets `rate_limited` and the message is dropped.
    pub chat_per_second: u32,
    /// Chat messages one participant may send at once before `chat_per_second` applies.
    pub chat_burst: u32,
    /// Chat text bytes one participant may send per second (bursts of
    /// [`crate::chat_limit::CHAT_BYTES_BURST_SECS`] seconds' worth).
    pub chat_bytes_per_second: u32,
    /// The delay of the first held-back wrong code (the third within the miss window), in ms;
    /// each further miss doubles it, up to [`crate::guesses::MAX_MISS_DELAY_MS`]. 0: no delays.
    pub code_miss_delay_ms: u64,
    /// Behind a reverse proxy you run: code guesses count against the last `X-Forwarded-For`
    /// entry (the address the proxy saw), not the proxy's own address.
    pub trust_proxy_headers: bool,
    /// Most connections the HTTP listener holds open at once (kept below the file-descriptor
    /// limit); more are closed at accept.
    pub max_connections: usize,
    /// Most connections open at once from one client address (IPv6: one /64); 0: no cap.
    /// 127.0.0.1 and ::1 (a proxy on this host) are capped only in total.
    pub max_connections_per_address: usize,
    /// Seconds a connection has, from its accept (TLS handshake included) or from the first
    /// byte of a later request, to send a whole request head.
    pub header_read_timeout_secs: u64,
    /// Seconds a keep-alive HTTP connection may wait without a request before it is closed.
    pub idle_timeout_secs: u64,
    /// `stun:` URLs given to clients at join.
    pub stun_urls: Vec<String>,
    /// `turn:` / `turns:` URLs of relays (coturn with `use-auth-secret`) given to clients at
    /// join with time-limited credentials made from [`turn_secret`](Self::turn_secret).
    pub turn_urls: Vec<String>,
    /// The relays' shared secret (coturn's `static-auth-secret`); required with `turn_urls`.
    pub turn_secret: Option<Secret>,
    /// How long the TURN credentials given at join stay valid, in seconds (a relay refuses to
    /// refresh an allocation once they expire, so longer than the longest call).
    pub turn_credential_ttl_secs: u64,
    /// Where recordings are written (a folder per recording); `None`: `recordings` in the
    /// working directory (`orbita serve`: `DATA_DIR/recordings`).
    pub recordings_dir: Option<PathBuf>,
    /// Calls this server records at once (its recorder slots); 0 turns recording off.
    pub recording_slots: usize,
    /// Record every call created on this server from its start (else the agent starts it).
    pub record_calls: bool,
    /// `orbita serve`'s recording policy: record every session created or planned by an
    /// account of these roles (`agent`, `supervisor`, `admin`).
    pub record_roles: Vec<String>,
    /// `orbita serve`'s recording policy: record every session of these apps.
    pub record_apps: Vec<String>,
    /// Recordings post-processed at once (ffmpeg jobs, niced).
    pub recording_jobs: usize,
    /// Days a recording is kept after it ended; 0: for ever.
    pub recording_retention_days: u64,
    /// The most disk all recordings may take, in bytes (a recording stops writing when it is
    /// reached; new ones are refused); 0: no quota.
    pub recordings_max_bytes: u64,
    /// Where files sent in the calls' chat are kept (a folder per file); `None`: `files` in
    /// the working directory (`orbita serve`: `DATA_DIR/files`).
    pub files_dir: Option<PathBuf>,
    /// The largest file a participant may send in chat, in bytes; 0 turns files off.
    pub max_file_bytes: u64,
    /// The most disk all files sent in chat may take, in bytes (unfinished uploads count at
    /// their full size); 0: no quota.
    pub files_max_bytes: u64,
    /// A Nominatim-compatible reverse geocoder (its base URL, e.g.
    /// `https://nominatim.openstreetmap.org`) that turns a location shared in a call into an
    /// address; `None`: no address, no request to anyone.
    pub geocoder_url: Option<String>,
    /// A map tile server (`{z}`, `{x}`, `{y}` in the URL) whose tile around a shared location
    /// is shown in the chat; `None`: no preview.
    pub map_tile_url: Option<String>,
    /// HTTPS: certificate files or ACME (the `tls_*` and `acme_*` settings); default off.
    pub tls: orbita_tls::TlsSettings,
    /// Log filter (tracing `EnvFilter` syntax); `None`: `RUST_LOG`, else `info`.
    pub log: Option<String>,
    /// How log lines are written: text for people, or one JSON object per line.
    pub log_format: crate::logging::LogFormat,
    /// How long a signalling connection may stay open without joining a room
    /// ([`crate::ws::JOIN_TIMEOUT`]; not a flag: tests shorten it).
    pub join_timeout: std::time::Duration,
}

/// A secret setting: compared and cloned as its text, never printed (`Debug` shows
/// `<hidden>`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            udp_addr: SocketAddr::from(([127, 0, 0, 1], 7882)),
            tcp_addr: Some(SocketAddr::from(([127, 0, 0, 1], 7881))),
            udp_port_range: None,
            announce_ips: Vec::new(),
            workers: 0,
            max_rooms: 1000,
            max_participants_per_room: 100,
            max_message_bytes: 65536,
            max_chat_chars: 4000,
            code_length: 4,
            empty_room_grace_secs: 30,
            unused_room_ttl_secs: 3600,
            initial_bitrate_kbps: 2500,
            ice_disconnect_grace_secs: 15,
            shutdown_timeout_secs: 5,
            messages_per_second: 50,
            chat_per_second: 2,
            chat_burst: 10,
            chat_bytes_per_second: 8192,
            code_miss_delay_ms: 250,
            trust_proxy_headers: false,
            max_connections: orbita_listen::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: orbita_listen::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            header_read_timeout_secs: orbita_listen::DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
            idle_timeout_secs: orbita_listen::DEFAULT_IDLE_TIMEOUT.as_secs(),
            stun_urls: Vec::new(),
            turn_urls: Vec::new(),
            turn_secret: None,
            turn_credential_ttl_secs: 86_400,
            recordings_dir: None,
            recording_slots: 4,
            record_calls: false,
            record_roles: Vec::new(),
            record_apps: Vec::new(),
            recording_jobs: 1,
            recording_retention_days: 90,
            recordings_max_bytes: 0,
            files_dir: None,
            max_file_bytes: 100 * 1024 * 1024,
            files_max_bytes: 10 * 1024 * 1024 * 1024,
            geocoder_url: None,
            map_tile_url: None,
            tls: orbita_tls::TlsSettings::default(),
            log: None,
            log_format: crate::logging::LogFormat::Text,
            join_timeout: crate::ws::JOIN_TIMEOUT,
        }
    }
}

/// Whether `url` is an ICE server URL of one of `schemes`: a host after the scheme, no spaces
/// or commas (RFC 7064/7065 shapes: `turn:host[:port][?transport=udp|tcp]`).
fn ice_url_ok(url: &str, schemes: &[&str]) -> bool {
    schemes.iter().any(|scheme| {
        url.strip_prefix(scheme).is_some_and(|rest| {
            !rest.is_empty()
                && !rest.starts_with('/')
                && !rest.contains(|c: char| c.is_whitespace() || c == ',')
        })
    })
}

/// An ICE-TCP address setting: an address, or `off` (also the empty string) for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TcpAddrSetting(pub Option<SocketAddr>);

impl FromStr for TcpAddrSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || s.eq_ignore_ascii_case("off") {
            return Ok(TcpAddrSetting(None));
        }
        s.parse()
            .map(|addr| TcpAddrSetting(Some(addr)))
            .map_err(|_| format!("`{s}` is neither an address (IP:PORT) nor `off`"))
    }
}

impl TryFrom<String> for TcpAddrSetting {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for TcpAddrSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => addr.fmt(f),
            None => f.write_str("off"),
        }
    }
}

/// The `udp_port_range` setting: `FIRST-LAST` (inclusive, e.g. `40000-40099`), or one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct UdpPortRange {
    /// The first port.
    pub first: u16,
    /// The last port (included).
    pub last: u16,
}

impl UdpPortRange {
    /// Most ports in a range.
    pub const MAX_PORTS: usize = orbita_sfu::MAX_UDP_PORTS;

    /// How many ports the range has (0 if `first` is above `last`).
    pub fn port_count(&self) -> usize {
        (usize::from(self.last) + 1).saturating_sub(usize::from(self.first))
    }
}

impl FromStr for UdpPortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (first, last) = s.split_once('-').unwrap_or((s, s));
        let port = |p: &str| match p.trim().parse::<u32>() {
            Ok(n @ 1..=65535) => Ok(n as u16),
            Ok(n) => Err(format!("port {n} is not between 1 and 65535")),
            Err(_) => Err(format!(
                "`{s}` is not a port range FIRST-LAST (e.g. 40000-40099)"
            )),
        };
        Ok(UdpPortRange {
            first: port(first)?,
            last: port(last)?,
        })
    }
}

impl TryFrom<String> for UdpPortRange {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for UdpPortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// Run the all-in-one server: HTTP + WebSocket signalling + SFU.
///
/// Every setting below can also be given in the TOML file (key = the flag's name with
/// underscores) and as an environment variable (shown). Precedence, lowest first: default,
/// file, environment, flag.
#[derive(Debug, Clone, Default, clap::Parser)]
#[command(name = "serve")]
pub struct ServeArgs {
    /// TOML file with settings (keys as the flag names, with underscores; unknown keys are
    /// an error).
    #[arg(long, env = "ORBITA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address the HTTP and WebSocket server binds. Default: 127.0.0.1:8080.
    #[arg(long, env = "ORBITA_HTTP_ADDR", value_name = "IP:PORT")]
    pub http_addr: Option<SocketAddr>,

    /// Base URL of join links, e.g. `https://video.example.org`. Default: `http://<http_addr>`
    /// (with 127.0.0.1, or the first announce IP, for an unspecified IP).
    #[arg(long, env = "ORBITA_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Address of the one UDP socket that carries all media. Default: 127.0.0.1:7882.
    #[arg(long, env = "ORBITA_UDP_ADDR", value_name = "IP:PORT")]
    pub udp_addr: Option<SocketAddr>,

    /// Address of the one ICE-TCP listener, or `off`. Default: 127.0.0.1:7881.
    #[arg(long, env = "ORBITA_TCP_ADDR", value_name = "IP:PORT|off")]
    pub tcp_addr: Option<TcpAddrSetting>,

    /// Carry media on this range of UDP ports (e.g. 40000-40099, at most 1024 ports) on
    /// udp_addr's IP instead of udp_addr's one port; each connection gets one port of it.
    /// udp_addr's port must then be 0 or the range's first. Default: none (one port).
    #[arg(long, env = "ORBITA_UDP_PORT_RANGE", value_name = "FIRST-LAST")]
    pub udp_port_range: Option<UdpPortRange>,

    /// IPs announced to clients in ICE candidates, comma separated (the public IP behind NAT).
    /// Required when udp_addr or tcp_addr binds `0.0.0.0` or `[::]`. Default: none (the bound
    /// addresses are announced).
    #[arg(
        long,
        env = "ORBITA_ANNOUNCE_IPS",
        value_name = "IP,...",
        value_delimiter = ','
    )]
    pub announce_ips: Option<Vec<IpAddr>>,

    /// SFU worker threads; 0 means one per core. Default: 0.
    #[arg(long, env = "ORBITA_WORKERS", value_name = "N")]
    pub workers: Option<usize>,

    /// Most rooms alive at once. Default: 1000.
    #[arg(long, env = "ORBITA_MAX_ROOMS", value_name = "N")]
    pub max_rooms: Option<usize>,

    /// Most participants in one room. Default: 100.
    #[arg(long, env = "ORBITA_MAX_PARTICIPANTS_PER_ROOM", value_name = "N")]
    pub max_participants_per_room: Option<usize>,

    /// Largest signalling message accepted, in bytes (larger ones get a `too_large` error).
    /// Default: 65536.
    #[arg(long, env = "ORBITA_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,

    /// Longest chat message, in characters. Default: 4000.
    #[arg(long, env = "ORBITA_MAX_CHAT_CHARS", value_name = "N")]
    pub max_chat_chars: Option<usize>,

    /// Digits in generated join codes, 4 to 12, while few rooms are live: codes grow longer so
    /// that at most 1% of the codes of a length are live (5 digits from 100 live rooms, 6
    /// from 1000). Default: 4.
    #[arg(long, env = "ORBITA_CODE_LENGTH", value_name = "DIGITS")]
    pub code_length: Option<usize>,

    /// Seconds a room lives on after its last participant left; then it ends and its code is
    /// free again. Default: 30.
    #[arg(long, env = "ORBITA_EMPTY_ROOM_GRACE_SECS", value_name = "SECS")]
    pub empty_room_grace_secs: Option<u64>,

    /// Seconds a room that nobody joined lives before it ends. Default: 3600.
    #[arg(long, env = "ORBITA_UNUSED_ROOM_TTL_SECS", value_name = "SECS")]
    pub unused_room_ttl_secs: Option<u64>,

    /// Initial bandwidth estimate towards each subscriber, in kbit/s. Default: 2500.
    #[arg(long, env = "ORBITA_INITIAL_BITRATE_KBPS", value_name = "KBPS")]
    pub initial_bitrate_kbps: Option<u64>,

    /// Seconds a participant whose ICE connection dropped is kept for a reconnect.
    /// Default: 15.
    #[arg(long, env = "ORBITA_ICE_DISCONNECT_GRACE_SECS", value_name = "SECS")]
    pub ice_disconnect_grace_secs: Option<u64>,

    /// Seconds shutdown (SIGINT/SIGTERM) waits for participants to be told and connections
    /// to close. Default: 5.
    #[arg(long, env = "ORBITA_SHUTDOWN_TIMEOUT_SECS", value_name = "SECS")]
    pub shutdown_timeout_secs: Option<u64>,

    /// Signalling messages one connection may send per second, with bursts of twice that;
    /// excess messages get a `rate_limited` error and are dropped. Default: 50.
    #[arg(long, env = "ORBITA_MESSAGES_PER_SECOND", value_name = "N")]
    pub messages_per_second: Option<u32>,

    /// Chat messages one participant may send per second, with bursts of chat_burst; beyond,
    /// the sender gets a `rate_limited` error and the message is not delivered (the others are
    /// not affected). Default: 2.
    #[arg(long, env = "ORBITA_CHAT_PER_SECOND", value_name = "N")]
    pub chat_per_second: Option<u32>,

    /// Chat messages one participant may send in a burst. Default: 10.
    #[arg(long, env = "ORBITA_CHAT_BURST", value_name = "N")]
    pub chat_burst: Option<u32>,

    /// Chat text bytes (UTF-8) one participant may send per second, with bursts of four
    /// seconds' worth. Default: 8192.
    #[arg(long, env = "ORBITA_CHAT_BYTES_PER_SECOND", value_name = "BYTES")]
    pub chat_bytes_per_second: Option<u32>,

    /// Wrong room codes are answered late: from the third wrong code of an address within 10
    /// minutes, this many ms, doubling with each further one, at most 4 s (right codes are
    /// never delayed; 10 wrong codes lock the address out for 15 minutes). 0 turns the delays
    /// off. Default: 250.
    #[arg(long, env = "ORBITA_CODE_MISS_DELAY_MS", value_name = "MS")]
    pub code_miss_delay_ms: Option<u64>,

    /// Behind a reverse proxy you run (nginx with TLS): believe its `X-Forwarded-For` (the
    /// last entry, which the proxy appends) for per-address limits such as the code-guess
    /// lock-out, and (`orbita serve`) its `X-Forwarded-Proto` (login cookies get `Secure`).
    /// Without it every client behind the proxy shares the proxy's address. Default: false.
    #[arg(
        long,
        env = "ORBITA_TRUST_PROXY_HEADERS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub trust_proxy_headers: Option<bool>,

    /// Most connections the HTTP listener holds open at once; more are closed as soon as they
    /// are accepted (lowered to fit the file-descriptor limit, with a warning). Default: 10000.
    #[arg(long, env = "ORBITA_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Most connections open at once from one client address (an IPv4 address, an IPv6 /64);
    /// 0: no per-address cap. 127.0.0.1 and ::1 (nginx on this host) count only in total;
    /// behind a proxy on another host, this caps the proxy: cap clients there. Default: 100.
    #[arg(long, env = "ORBITA_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,

    /// Seconds a connection has, from its accept (TLS handshake included) or from the first
    /// byte of a later request, to send a whole request head; then it is closed. Default: 10.
    #[arg(long, env = "ORBITA_HEADER_READ_TIMEOUT_SECS", value_name = "SECS")]
    pub header_read_timeout_secs: Option<u64>,

    /// Seconds a keep-alive HTTP connection may wait without a request before it is closed
    /// (WebSockets are not concerned). Default: 60.
    #[arg(long, env = "ORBITA_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    pub idle_timeout_secs: Option<u64>,

    /// STUN servers given to clients, comma separated (`stun:host:3478`). Default: none (no
    /// public STUN server is ever used unless named here).
    #[arg(
        long,
        env = "ORBITA_STUN_URLS",
        value_name = "URL,...",
        value_delimiter = ','
    )]
    pub stun_urls: Option<Vec<String>>,

    /// TURN relays given to clients, comma separated (`turn:host:3478?transport=udp`,
    /// `turns:host:5349?transport=tcp`), each participant with its own time-limited
    /// credentials made from --turn-secret (coturn `use-auth-secret`). Default: none.
    #[arg(
        long,
        env = "ORBITA_TURN_URLS",
        value_name = "URL,...",
        value_delimiter = ','
    )]
    pub turn_urls: Option<Vec<String>>,

    /// The TURN relays' shared secret (coturn's `static-auth-secret`); required with
    /// --turn-urls. Prefer the variable or the file to the flag (flags show in `ps`).
    #[arg(
        long,
        env = "ORBITA_TURN_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub turn_secret: Option<Secret>,

    /// Seconds the TURN credentials given at join stay valid (longer than the longest call:
    /// a relay will not refresh an allocation on expired credentials). Default: 86400.
    #[arg(long, env = "ORBITA_TURN_CREDENTIAL_TTL_SECS", value_name = "SECS")]
    pub turn_credential_ttl_secs: Option<u64>,

    /// Where recordings are written, a folder per recording. Default: recordings (orbita
    /// serve: DATA_DIR/recordings).
    #[arg(long, env = "ORBITA_RECORDINGS_DIR", value_name = "DIR")]
    pub recordings_dir: Option<PathBuf>,

    /// Calls recorded at once (recorder slots); a call that wants recording when all are busy
    /// is told so and goes on unrecorded. 0 turns recording off. Default: 4.
    #[arg(long, env = "ORBITA_RECORDING_SLOTS", value_name = "N")]
    pub recording_slots: Option<usize>,

    /// Record every call from its start (else the agent starts and stops recording in the
    /// call). Default: false.
    #[arg(
        long,
        env = "ORBITA_RECORD_CALLS",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub record_calls: Option<bool>,

    /// `orbita serve`: record every session created or planned by an account of these roles
    /// (agent, supervisor, admin), comma separated. Default: none.
    #[arg(
        long,
        env = "ORBITA_RECORD_ROLES",
        value_name = "ROLE,...",
        value_delimiter = ','
    )]
    pub record_roles: Option<Vec<String>>,

    /// `orbita serve`: record every session of these apps (`video-room`, `demo-app`, ...),
    /// comma separated. Default: none.
    #[arg(
        long,
        env = "ORBITA_RECORD_APPS",
        value_name = "APP,...",
        value_delimiter = ','
    )]
    pub record_apps: Option<Vec<String>>,

    /// Recordings post-processed at once (ffmpeg, niced). Default: 1.
    #[arg(long, env = "ORBITA_RECORDING_JOBS", value_name = "N")]
    pub recording_jobs: Option<usize>,

    /// Days a recording is kept after it ended (then deleted, checked hourly); 0 keeps them
    /// for ever. Default: 90.
    #[arg(long, env = "ORBITA_RECORDING_RETENTION_DAYS", value_name = "DAYS")]
    pub recording_retention_days: Option<u64>,

    /// The most disk all recordings may take, in bytes: a recording stops writing when it is
    /// reached and new ones are refused. 0: no quota. Default: 0.
    #[arg(long, env = "ORBITA_RECORDINGS_MAX_BYTES", value_name = "BYTES")]
    pub recordings_max_bytes: Option<u64>,

    /// Where files sent in the calls' chat are kept (a folder per file, deleted with the
    /// recordings' retention). Default: `files` in the working directory (`orbita serve`:
    /// DATA_DIR/files).
    #[arg(long, env = "ORBITA_FILES_DIR", value_name = "DIR")]
    pub files_dir: Option<PathBuf>,

    /// The largest file a participant may send in chat, in bytes; 0 turns files off.
    /// Default: 104857600 (100 MB).
    #[arg(long, env = "ORBITA_MAX_FILE_BYTES", value_name = "BYTES")]
    pub max_file_bytes: Option<u64>,

    /// The most disk all files sent in chat may take, in bytes (unfinished uploads count at
    /// their full size; a file over it is refused with `quota_full`). 0: no quota.
    /// Default: 10737418240 (10 GB).
    #[arg(long, env = "ORBITA_FILES_MAX_BYTES", value_name = "BYTES")]
    pub files_max_bytes: Option<u64>,

    /// A Nominatim-compatible reverse geocoder's base URL (e.g.
    /// https://nominatim.openstreetmap.org): a location shared in a call gets its address.
    /// Default: none (no address, and no request to anyone).
    #[arg(long, env = "ORBITA_GEOCODER_URL", value_name = "URL")]
    pub geocoder_url: Option<String>,

    /// A map tile server's URL with {z}, {x} and {y} (e.g.
    /// https://tile.openstreetmap.org/{z}/{x}/{y}.png): a location shared in a call shows the
    /// tile around it. Default: none (no preview).
    #[arg(long, env = "ORBITA_MAP_TILE_URL", value_name = "URL")]
    pub map_tile_url: Option<String>,

    /// PEM certificate chain: serve HTTPS (and `wss://`) on http_addr. Needs --tls-key.
    /// Default: none (plain HTTP, e.g. behind nginx).
    #[arg(long, env = "ORBITA_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "ORBITA_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Obtain and renew the certificate of these DNS names by ACME (TLS-ALPN-01 on the HTTPS
    /// listener: each name must reach http_addr on port 443), comma separated. Default: none.
    #[arg(
        long,
        env = "ORBITA_ACME_DOMAINS",
        value_name = "NAME,...",
        value_delimiter = ','
    )]
    pub acme_domains: Option<Vec<String>>,

    /// Contacts given to the ACME CA, comma separated (`mailto:ops@example.com`).
    #[arg(
        long,
        env = "ORBITA_ACME_CONTACT",
        value_name = "MAILTO,...",
        value_delimiter = ','
    )]
    pub acme_contact: Option<Vec<String>>,

    /// The ACME CA's directory URL. Default: Let's Encrypt production.
    #[arg(long, env = "ORBITA_ACME_DIRECTORY_URL", value_name = "URL")]
    pub acme_directory_url: Option<String>,

    /// Where the ACME account key and certificates are kept (keep it across restarts).
    /// Default: `acme` (in the working directory; `orbita serve`: in --data-dir).
    #[arg(long, env = "ORBITA_ACME_CACHE_DIR", value_name = "DIR")]
    pub acme_cache_dir: Option<PathBuf>,

    /// PEM roots to trust for the ACME directory's HTTPS (a private CA). Default: the public
    /// Web PKI roots.
    #[arg(long, env = "ORBITA_ACME_CA_FILE", value_name = "FILE")]
    pub acme_ca_file: Option<PathBuf>,

    /// Log filter, e.g. `info` or `orbita_sfu=debug,info`. Default: RUST_LOG, else `info`.
    #[arg(long, env = "ORBITA_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// Log lines as `text` (for people) or `json` (one JSON object per line, for log
    /// collectors). Default: text.
    #[arg(long, env = "ORBITA_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<crate::logging::LogFormat>,
}

/// The settings a TOML file may hold; every key is optional and unknown keys are an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Each field is the setting of the same name in `Settings`.
pub struct FileSettings {
    pub http_addr: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub udp_addr: Option<SocketAddr>,
    pub tcp_addr: Option<TcpAddrSetting>,
    pub udp_port_range: Option<UdpPortRange>,
    pub announce_ips: Option<Vec<IpAddr>>,
    pub workers: Option<usize>,
    pub max_rooms: Option<usize>,
    pub max_participants_per_room: Option<usize>,
    pub max_message_bytes: Option<usize>,
    pub max_chat_chars: Option<usize>,
    pub code_length: Option<usize>,
    pub empty_room_grace_secs: Option<u64>,
    pub unused_room_ttl_secs: Option<u64>,
    pub initial_bitrate_kbps: Option<u64>,
    pub ice_disconnect_grace_secs: Option<u64>,
    pub shutdown_timeout_secs: Option<u64>,
    pub messages_per_second: Option<u32>,
    pub chat_per_second: Option<u32>,
    pub chat_burst: Option<u32>,
    pub chat_bytes_per_second: Option<u32>,
    pub code_miss_delay_ms: Option<u64>,
    pub trust_proxy_headers: Option<bool>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<usize>,
    pub header_read_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub stun_urls: Option<Vec<String>>,
    pub turn_urls: Option<Vec<String>>,
    pub turn_secret: Option<Secret>,
    pub turn_credential_ttl_secs: Option<u64>,
    pub recordings_dir: Option<PathBuf>,
    pub recording_slots: Option<usize>,
    pub record_calls: Option<bool>,
    pub record_roles: Option<Vec<String>>,
    pub record_apps: Option<Vec<String>>,
    pub recording_jobs: Option<usize>,
    pub recording_retention_days: Option<u64>,
    pub recordings_max_bytes: Option<u64>,
    pub files_dir: Option<PathBuf>,
    pub max_file_bytes: Option<u64>,
    pub files_max_bytes: Option<u64>,
    pub geocoder_url: Option<String>,
    pub map_tile_url: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub acme_domains: Option<Vec<String>>,
    pub acme_contact: Option<Vec<String>>,
    pub acme_directory_url: Option<String>,
    pub acme_cache_dir: Option<PathBuf>,
    pub acme_ca_file: Option<PathBuf>,
    pub log: Option<String>,
    pub log_format: Option<crate::logging::LogFormat>,
}

impl FileSettings {
    /// Parse the TOML text of a settings file.
    pub fn parse(text: &str) -> anyhow::Result<FileSettings> {
        Ok(toml::from_str(text)?)
    }

    /// Read and parse a settings file.
    pub fn load(path: &Path) -> anyhow::Result<FileSettings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        FileSettings::parse(&text)
            .with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// The roles `record_roles` may name.
pub const RECORD_ROLES: [&str; 3] = ["agent", "supervisor", "admin"];

impl Settings {
    /// Settings from the command line and environment (`args`) and the config file it names.
    pub fn from_args(args: ServeArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => FileSettings::load(path)?,
            None => FileSettings::default(),
        };
        Settings::resolve(args, file)
    }

    /// Merge command line/environment over file over defaults, then [`validate`](Self::validate).
    pub fn resolve(args: ServeArgs, file: FileSettings) -> anyhow::Result<Settings> {
        let d = Settings::default();
        // `pick!(name)`: the command line/environment value, else the file's, else the default.
        macro_rules! pick {
            ($name:ident) => {
                args.$name.or(file.$name).unwrap_or(d.$name)
            };
        }
        let mut settings = Settings {
            http_addr: pick!(http_addr),
            public_url: args.public_url.or(file.public_url).or(d.public_url),
            udp_addr: pick!(udp_addr),
            tcp_addr: args.tcp_addr.or(file.tcp_addr).map_or(d.tcp_addr, |t| t.0),
            udp_port_range: args.udp_port_range.or(file.udp_port_range),
            announce_ips: pick!(announce_ips),
            workers: pick!(workers),
            max_rooms: pick!(max_rooms),
            max_participants_per_room: pick!(max_participants_per_room),
            max_message_bytes: pick!(max_message_bytes),
            max_chat_chars: pick!(max_chat_chars),
            code_length: pick!(code_length),
            empty_room_grace_secs: pick!(empty_room_grace_secs),
            unused_room_ttl_secs: pick!(unused_room_ttl_secs),
            initial_bitrate_kbps: pick!(initial_bitrate_kbps),
            ice_disconnect_grace_secs: pick!(ice_disconnect_grace_secs),
            shutdown_timeout_secs: pick!(shutdown_timeout_secs),
            messages_per_second: pick!(messages_per_second),
            chat_per_second: pick!(chat_per_second),
            chat_burst: pick!(chat_burst),
            chat_bytes_per_second: pick!(chat_bytes_per_second),
            code_miss_delay_ms: pick!(code_miss_delay_ms),
            trust_proxy_headers: pick!(trust_proxy_headers),
            max_connections: pick!(max_connections),
            max_connections_per_address: pick!(max_connections_per_address),
            header_read_timeout_secs: pick!(header_read_timeout_secs),
            idle_timeout_secs: pick!(idle_timeout_secs),
            stun_urls: pick!(stun_urls),
            turn_urls: pick!(turn_urls),
            turn_secret: args.turn_secret.or(file.turn_secret).or(d.turn_secret),
            turn_credential_ttl_secs: pick!(turn_credential_ttl_secs),
            recordings_dir: args.recordings_dir.or(file.recordings_dir),
            recording_slots: pick!(recording_slots),
            record_calls: pick!(record_calls),
            record_roles: pick!(record_roles),
            record_apps: pick!(record_apps),
            recording_jobs: pick!(recording_jobs),
            recording_retention_days: pick!(recording_retention_days),
            recordings_max_bytes: pick!(recordings_max_bytes),
            files_dir: args.files_dir.or(file.files_dir),
            max_file_bytes: pick!(max_file_bytes),
            files_max_bytes: pick!(files_max_bytes),
            geocoder_url: args.geocoder_url.or(file.geocoder_url),
            map_tile_url: args.map_tile_url.or(file.map_tile_url),
            tls: orbita_tls::TlsSettings {
                tls_cert: args.tls_cert.or(file.tls_cert),
                tls_key: args.tls_key.or(file.tls_key),
                acme_domains: args.acme_domains.or(file.acme_domains).unwrap_or_default(),
                acme_contact: args.acme_contact.or(file.acme_contact).unwrap_or_default(),
                acme_directory_url: args.acme_directory_url.or(file.acme_directory_url),
                acme_cache_dir: args.acme_cache_dir.or(file.acme_cache_dir),
                acme_ca_file: args.acme_ca_file.or(file.acme_ca_file),
            },
            log: args.log.or(file.log).or(d.log),
            log_format: pick!(log_format),
            join_timeout: d.join_timeout,
        };
        if let (Some(range), None) = (settings.udp_port_range, args.udp_addr.or(file.udp_addr)) {
            // Only the range was given: udp_addr's default port stands for the range's first.
            settings.udp_addr.set_port(range.first);
        }
        settings.validate()?;
        Ok(settings)
    }

    /// Check that the settings make sense together; the error says which setting is wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        ensure!(
            (4..=12).contains(&self.code_length),
            "code_length must be between 4 and 12 digits, not {}",
            self.code_length
        );
        ensure!(self.max_rooms >= 1, "max_rooms must be at least 1");
        for role in &self.record_roles {
            ensure!(
                RECORD_ROLES.contains(&role.as_str()),
                "record_roles: {role:?} is not a role (agent, supervisor, admin)"
            );
        }
        ensure!(
            self.record_apps.len() <= 1000,
            "record_apps may name at most 1000 apps"
        );
        ensure!(
            self.max_participants_per_room >= 1,
            "max_participants_per_room must be at least 1"
        );
        ensure!(
            (1024..=TRANSPORT_MAX_MESSAGE_BYTES).contains(&self.max_message_bytes),
            "max_message_bytes must be between 1024 and {TRANSPORT_MAX_MESSAGE_BYTES}, not {}",
            self.max_message_bytes
        );
        ensure!(
            self.max_chat_chars >= 1,
            "max_chat_chars must be at least 1"
        );
        ensure!(
            self.messages_per_second >= 1,
            "messages_per_second must be at least 1"
        );
        self.listen_limits()
            .validate()
            .map_err(anyhow::Error::msg)?;
        ensure!(
            self.chat_per_second >= 1 && self.chat_burst >= 1,
            "chat_per_second and chat_burst must be at least 1"
        );
        ensure!(
            self.chat_bytes_per_second >= 1024,
            "chat_bytes_per_second must be at least 1024"
        );
        ensure!(
            self.initial_bitrate_kbps >= 1,
            "initial_bitrate_kbps must be at least 1"
        );
        if let Some(url) = &self.public_url {
            ensure!(
                (url.starts_with("http://") || url.starts_with("https://"))
                    && url.len() > "https://".len()
                    && !url.contains(char::is_whitespace),
                "public_url must be an http:// or https:// URL, not `{url}`"
            );
        }
        for ip in &self.announce_ips {
            ensure!(
                !ip.is_unspecified() && !ip.is_multicast(),
                "announce_ips: {ip} cannot be announced; give the IP clients reach this host at"
            );
        }
        for url in &self.stun_urls {
            ensure!(
                ice_url_ok(url, &["stun:", "stuns:"]),
                "stun_urls: `{url}` is not a stun: or stuns: URL (e.g. stun:turn.example.org:3478)"
            );
        }
        if let Some(url) = &self.geocoder_url {
            ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "geocoder_url must be an http:// or https:// URL, not `{url}`"
            );
        }
        if let Some(url) = &self.map_tile_url {
            ensure!(
                (url.starts_with("http://") || url.starts_with("https://"))
                    && ["{z}", "{x}", "{y}"].iter().all(|p| url.contains(p)),
                "map_tile_url must be an http(s):// URL with {{z}}, {{x}} and {{y}}, not `{url}`"
            );
        }
        for url in &self.turn_urls {
            ensure!(
                ice_url_ok(url, &["turn:", "turns:"]),
                "turn_urls: `{url}` is not a turn: or turns: URL (e.g. \
                 turn:turn.example.org:3478?transport=udp)"
            );
        }
        let secret = self.turn_secret.as_ref().map_or("", |s| s.0.as_str());
        ensure!(
            self.turn_urls.is_empty() || !secret.is_empty(),
            "turn_urls needs turn_secret (ORBITA_TURN_SECRET): the relays' static-auth-secret"
        );
        ensure!(
            secret.is_empty() || !self.turn_urls.is_empty(),
            "turn_secret is set but turn_urls is empty: name the relays it is for"
        );
        ensure!(
            self.recording_slots <= 1000,
            "recording_slots must be at most 1000, not {}",
            self.recording_slots
        );
        ensure!(
            self.recording_retention_days <= 36_500,
            "recording_retention_days must be at most 36500 (0 keeps recordings for ever), not {}",
            self.recording_retention_days
        );
        ensure!(
            (1..=64).contains(&self.recording_jobs),
            "recording_jobs must be between 1 and 64, not {}",
            self.recording_jobs
        );
        ensure!(
            (60..=7 * 86_400).contains(&self.turn_credential_ttl_secs),
            "turn_credential_ttl_secs must be between 60 and 604800, not {}",
            self.turn_credential_ttl_secs
        );
        if let Some(range) = self.udp_port_range {
            ensure!(
                range.first <= range.last,
                "udp_port_range {range}: the first port must not be above the last"
            );
            ensure!(
                range.port_count() <= UdpPortRange::MAX_PORTS,
                "udp_port_range {range} has {} ports, more than the {} allowed",
                range.port_count(),
                UdpPortRange::MAX_PORTS
            );
            let port = self.udp_addr.port();
            ensure!(
                port == 0 || port == range.first,
                "udp_port_range {range} is set but udp_addr {} names port {port}: media then \
                 uses the range only, so give udp_addr port 0 or {} (or leave udp_addr unset)",
                self.udp_addr,
                range.first
            );
        }
        if self.announce_ips.is_empty() {
            let media = std::iter::once(("udp_addr", self.udp_addr))
                .chain(self.tcp_addr.map(|a| ("tcp_addr", a)));
            for (name, addr) in media {
                if addr.ip().is_unspecified() {
                    bail!(
                        "{name} {addr} binds every interface, so clients cannot be told which \
                         IP to send media to: set announce_ips (ORBITA_ANNOUNCE_IPS, \
                         --announce-ips) to the IP clients reach this host at"
                    );
                }
            }
        }
        self.tls.validate().map_err(anyhow::Error::msg)?;
        Ok(())
    }

    /// The join-link base URL: `public_url` without a trailing slash, or derived from the
    /// address the HTTP server actually bound (`https://` with TLS; with ACME, the first
    /// domain).
    pub fn public_url_for(&self, bound_http: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.trim_end_matches('/').to_string();
        }
        if let Some(host) = self.tls.acme_host() {
            return match bound_http.port() {
                443 => format!("https://{host}"),
                port => format!("https://{host}:{port}"),
            };
        }
        let scheme = if self.tls.enabled() { "https" } else { "http" };
        let ip = if bound_http.ip().is_unspecified() {
            self.announce_ips
                .first()
                .copied()
                .unwrap_or(IpAddr::from([127, 0, 0, 1]))
        } else {
            bound_http.ip()
        };
        format!("{scheme}://{}", SocketAddr::new(ip, bound_http.port()))
    }

    /// [`empty_room_grace_secs`](Self::empty_room_grace_secs) as a duration.
    pub fn empty_room_grace(&self) -> Duration {
        Duration::from_secs(self.empty_room_grace_secs)
    }

    /// [`unused_room_ttl_secs`](Self::unused_room_ttl_secs) as a duration.
    pub fn unused_room_ttl(&self) -> Duration {
        Duration::from_secs(self.unused_room_ttl_secs)
    }

    /// [`shutdown_timeout_secs`](Self::shutdown_timeout_secs) as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// The SFU's configuration derived from these settings.
    pub fn sfu_config(&self) -> orbita_sfu::SfuConfig {
        orbita_sfu::SfuConfig {
            udp_bind: self.udp_addr,
            tcp_bind: self.tcp_addr,
            tcp_max_connections_per_address: self.max_connections_per_address,
            tcp_first_frame_timeout: orbita_sfu::ice_tcp::TCP_FIRST_FRAME_TIMEOUT,
            udp_port_range: self.udp_port_range.map(|r| r.first..=r.last),
            announce_ips: self.announce_ips.clone(),
            workers: self.workers,
            initial_bitrate_bps: self.initial_bitrate_kbps.saturating_mul(1000),
            ice_disconnect_grace: Duration::from_secs(self.ice_disconnect_grace_secs),
            ice_servers: orbita_sfu::IceServers {
                stun_urls: self.stun_urls.clone(),
                turn_urls: self.turn_urls.clone(),
                turn_secret: self.turn_secret.clone().map(|s| s.0).unwrap_or_default(),
                turn_credential_ttl: Duration::from_secs(self.turn_credential_ttl_secs),
            },
        }
    }

    /// The limits of the HTTP listener.
    pub fn listen_limits(&self) -> orbita_listen::Limits {
        orbita_listen::Limits {
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
        }
    }

    /// The limits told to clients at join.
    pub fn limits(&self) -> orbita_protocol::Limits {
        orbita_protocol::Limits {
            max_message_bytes: self.max_message_bytes,
            max_chat_chars: self.max_chat_chars,
            max_participants: self.max_participants_per_room,
            max_file_bytes: self.max_file_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    fn args(flags: &[&str]) -> ServeArgs {
        let argv = std::iter::once("serve").chain(flags.iter().copied());
        ServeArgs::try_parse_from(argv).expect("flags parse")
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = Settings::resolve(args(&[]), FileSettings::default()).unwrap();
        assert_eq!(s.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s.udp_addr, "127.0.0.1:7882".parse().unwrap());
        assert_eq!(s.tcp_addr, Some("127.0.0.1:7881".parse().unwrap()));
        assert_eq!(s.code_length, 4);
        assert_eq!(s.max_rooms, 1000);
        assert_eq!(s.messages_per_second, 50);
        assert_eq!(s.public_url_for(s.http_addr), "http://127.0.0.1:8080");
    }

    #[test]
    fn file_beats_default_and_flag_beats_file() {
        let file = FileSettings::parse(
            r#"
            http_addr = "127.0.0.1:9000"
            max_rooms = 10
            tcp_addr = "off"
            announce_ips = ["192.0.2.7"]
            "#,
        )
        .unwrap();
        let s = Settings::resolve(args(&["--max-rooms", "20"]), file.clone()).unwrap();
        assert_eq!(
            s.http_addr,
            "127.0.0.1:9000".parse().unwrap(),
            "file beats default"
        );
        assert_eq!(s.max_rooms, 20, "flag beats file");
        assert_eq!(s.tcp_addr, None, "`off` disables ICE-TCP");
        assert_eq!(s.announce_ips, vec![IpAddr::from([192, 0, 2, 7])]);
        assert_eq!(s.code_length, 4, "default where neither says");

        let s = Settings::resolve(
            args(&[
                "--tcp-addr",
                "127.0.0.1:1234",
                "--announce-ips",
                "192.0.2.1,192.0.2.2",
            ]),
            file,
        )
        .unwrap();
        assert_eq!(s.tcp_addr, Some("127.0.0.1:1234".parse().unwrap()));
        assert_eq!(s.announce_ips.len(), 2);
    }

    /// The only test that touches the process environment, and the only one that looks at
    /// `max_chat_chars`, so tests running in parallel cannot observe each other.
    #[test]
    fn env_beats_file_and_flag_beats_env() {
        let file = FileSettings::parse("max_chat_chars = 10").unwrap();
        std::env::set_var("ORBITA_MAX_CHAT_CHARS", "20");
        let from_env = Settings::resolve(args(&[]), file.clone());
        let from_flag = Settings::resolve(args(&["--max-chat-chars", "30"]), file.clone());
        std::env::remove_var("ORBITA_MAX_CHAT_CHARS");
        let from_file = Settings::resolve(args(&[]), file);
        assert_eq!(from_file.unwrap().max_chat_chars, 10, "file beats default");
        assert_eq!(from_env.unwrap().max_chat_chars, 20, "env beats file");
        assert_eq!(from_flag.unwrap().max_chat_chars, 30, "flag beats env");
    }

    #[test]
    fn unknown_file_keys_are_rejected_by_name() {
        let err = FileSettings::parse("http_adr = \"127.0.0.1:1\"").unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("http_adr"), "{text}");
        let err = FileSettings::parse("max_rooms = \"many\"").unwrap_err();
        assert!(format!("{err:#}").contains("max_rooms"), "{err:#}");
    }

    #[test]
    fn bad_values_are_rejected_with_the_setting_named() {
        let cases: &[(&[&str], &str)] = &[
            (&["--code-length", "3"], "code_length"),
            (&["--code-length", "13"], "code_length"),
            (&["--max-rooms", "0"], "max_rooms"),
            (&["--max-message-bytes", "100"], "max_message_bytes"),
            (&["--udp-addr", "0.0.0.0:7882"], "announce_ips"),
            (&["--tcp-addr", "[::]:7881"], "announce_ips"),
            (&["--announce-ips", "0.0.0.0"], "announce_ips"),
            (&["--public-url", "ftp://x"], "public_url"),
            (&["--messages-per-second", "0"], "messages_per_second"),
            (&["--max-connections", "0"], "max_connections"),
            (
                &["--header-read-timeout-secs", "0"],
                "header_read_timeout_secs",
            ),
            (&["--idle-timeout-secs", "0"], "idle_timeout_secs"),
        ];
        for (flags, needle) in cases {
            let err = Settings::resolve(args(flags), FileSettings::default())
                .expect_err(&format!("{flags:?} should be refused"));
            assert!(err.to_string().contains(needle), "{flags:?}: {err}");
        }
        // An unspecified bind is fine once an announce IP says where clients reach us.
        let ok = Settings::resolve(
            args(&[
                "--udp-addr",
                "0.0.0.0:7882",
                "--tcp-addr",
                "off",
                "--announce-ips",
                "192.0.2.9",
            ]),
            FileSettings::default(),
        )
        .unwrap();
        assert_eq!(
            ok.public_url_for("0.0.0.0:8080".parse().unwrap()),
            "http://192.0.2.9:8080"
        );
        assert!(ServeArgs::try_parse_from(["serve", "--announce-ips", "not-an-ip"]).is_err());
        assert!(ServeArgs::try_parse_from(["serve", "--tcp-addr", "nowhere"]).is_err());
    }

    #[test]
    fn udp_port_range_is_parsed_and_checked() {
        // Only the range: udp_addr keeps its IP and takes the range's first port.
        let s = Settings::resolve(
            args(&["--udp-port-range", "40000-40099"]),
            FileSettings::default(),
        )
        .unwrap();
        let range = s.udp_port_range.unwrap();
        assert_eq!(
            (range.first, range.last, range.port_count()),
            (40000, 40099, 100)
        );
        assert_eq!(s.udp_addr, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(s.sfu_config().udp_port_range, Some(40000..=40099));
        assert_eq!(range.to_string(), "40000-40099");
        // From the file, with udp_addr port 0 (the IP only); one port is a range too.
        let file = FileSettings::parse(
            "udp_addr = \"0.0.0.0:0\"\nudp_port_range = \"50000\"\nannounce_ips = [\"192.0.2.3\"]",
        )
        .unwrap();
        let s = Settings::resolve(args(&[]), file).unwrap();
        assert_eq!(s.udp_addr, "0.0.0.0:0".parse().unwrap());
        assert_eq!(s.sfu_config().udp_port_range, Some(50000..=50000));
        let s = Settings::resolve(
            args(&[
                "--udp-addr",
                "127.0.0.1:40000",
                "--udp-port-range",
                "40000-40001",
            ]),
            FileSettings::default(),
        )
        .unwrap();
        assert_eq!(s.udp_port_range.unwrap().port_count(), 2);
        // Without a range: one port, as before.
        let s = Settings::resolve(args(&[]), FileSettings::default()).unwrap();
        assert_eq!(
            (s.udp_port_range, s.sfu_config().udp_port_range),
            (None, None)
        );

        for (flags, says) in [
            (
                &["--udp-port-range", "40099-40000"][..],
                "udp_port_range 40099-40000: the first port",
            ),
            (
                &["--udp-port-range", "1000-3000"][..],
                "udp_port_range 1000-3000 has 2001 ports",
            ),
            (
                &[
                    "--udp-addr",
                    "127.0.0.1:7882",
                    "--udp-port-range",
                    "40000-40099",
                ][..],
                "udp_port_range 40000-40099 is set but udp_addr 127.0.0.1:7882 names port 7882",
            ),
            (
                &["--udp-addr", "0.0.0.0:0", "--udp-port-range", "40000-40099"][..],
                "announce_ips",
            ),
        ] {
            let e = Settings::resolve(args(flags), FileSettings::default())
                .expect_err(&format!("{flags:?} should be refused"))
                .to_string();
            assert!(e.contains(says), "{flags:?}: {e}");
        }
        // Syntax errors name the flag or the key.
        for (value, says) in [
            ("0-10", "port 0 is not between 1 and 65535"),
            ("40000-70000", "port 70000 is not between 1 and 65535"),
            ("40000:40099", "is not a port range FIRST-LAST"),
            ("many", "is not a port range FIRST-LAST"),
        ] {
            let e = ServeArgs::try_parse_from(["serve", "--udp-port-range", value])
                .expect_err(value)
                .to_string();
            assert!(
                e.contains("--udp-port-range") && e.contains(says),
                "{value}: {e}"
            );
            let e = FileSettings::parse(&format!("udp_port_range = \"{value}\"")).expect_err(value);
            let e = format!("{e:#}");
            assert!(
                e.contains("udp_port_range") && e.contains(says),
                "{value}: {e}"
            );
        }
    }

    #[test]
    fn turn_settings_are_checked_and_the_secret_never_printed() {
        let resolve = |flags: &[&str], env_secret: Option<&str>| {
            let mut a = args(flags);
            if let Some(secret) = env_secret {
                a.turn_secret = Some(Secret(secret.into()));
            }
            Settings::resolve(a, FileSettings::default())
        };
        let ok = resolve(
            &[
                "--turn-urls",
                "turn:192.0.2.5:3478?transport=udp,turns:turn.example.org:5349",
            ],
            Some("s3cret"),
        )
        .unwrap();
        assert_eq!(ok.turn_urls.len(), 2);
        assert_eq!(ok.turn_credential_ttl_secs, 86_400);
        assert!(!format!("{ok:?}").contains("s3cret"), "{ok:?}");
        let ice = ok.sfu_config().ice_servers;
        assert_eq!(ice.turn_secret, "s3cret");
        assert_eq!(ice.turn_credential_ttl, Duration::from_secs(86_400));
        for (flags, secret, says) in [
            (
                &["--turn-urls", "turn:192.0.2.5:3478"][..],
                None,
                "turn_urls needs turn_secret",
            ),
            (&[][..], Some("s3cret"), "turn_urls is empty"),
            (
                &["--turn-urls", "http://192.0.2.5"][..],
                Some("s"),
                "not a turn: or turns: URL",
            ),
            (
                &["--turn-urls", "turn:"][..],
                Some("s"),
                "not a turn: or turns: URL",
            ),
            (
                &["--stun-urls", "stun.example.org"][..],
                None,
                "not a stun: or stuns: URL",
            ),
            (
                &["--turn-urls", "turn:a", "--turn-credential-ttl-secs", "10"][..],
                Some("s"),
                "turn_credential_ttl_secs",
            ),
        ] {
            let e = resolve(flags, secret).unwrap_err().to_string();
            assert!(e.contains(says), "{flags:?}: {e}");
        }
        // The file may hold the secret too.
        let file =
            FileSettings::parse("turn_urls = [\"turn:192.0.2.5\"]\nturn_secret = \"f\"").unwrap();
        let s = Settings::resolve(args(&[]), file).unwrap();
        assert_eq!(s.turn_secret, Some(Secret("f".into())));
    }

    #[test]
    fn public_url_is_derived_or_trimmed() {
        let mut s = Settings::default();
        assert_eq!(
            s.public_url_for("127.0.0.1:4321".parse().unwrap()),
            "http://127.0.0.1:4321"
        );
        s.announce_ips = vec!["192.0.2.1".parse().unwrap()];
        assert_eq!(
            s.public_url_for("0.0.0.0:80".parse().unwrap()),
            "http://192.0.2.1:80"
        );
        s.public_url = Some("https://video.example.org/".into());
        assert_eq!(
            s.public_url_for("0.0.0.0:80".parse().unwrap()),
            "https://video.example.org"
        );
    }

    /// Every setting's TOML key, plus `config`.
    const KEYS: [&str; 47] = [
        "http_addr",
        "public_url",
        "udp_addr",
        "tcp_addr",
        "udp_port_range",
        "announce_ips",
        "workers",
        "max_rooms",
        "max_participants_per_room",
        "max_message_bytes",
        "max_chat_chars",
        "code_length",
        "empty_room_grace_secs",
        "unused_room_ttl_secs",
        "initial_bitrate_kbps",
        "ice_disconnect_grace_secs",
        "shutdown_timeout_secs",
        "messages_per_second",
        "chat_per_second",
        "chat_burst",
        "chat_bytes_per_second",
        "code_miss_delay_ms",
        "trust_proxy_headers",
        "max_connections",
        "max_connections_per_address",
        "header_read_timeout_secs",
        "idle_timeout_secs",
        "stun_urls",
        "turn_urls",
        "turn_secret",
        "turn_credential_ttl_secs",
        "recordings_dir",
        "recording_slots",
        "record_calls",
        "record_roles",
        "record_apps",
        "recording_jobs",
        "recording_retention_days",
        "recordings_max_bytes",
        "files_dir",
        "max_file_bytes",
        "files_max_bytes",
        "geocoder_url",
        "map_tile_url",
        "log",
        "log_format",
        "config",
    ];

    fn flag_and_env(key: &str) -> (String, String) {
        (
            format!("--{}", key.replace('_', "-")),
            format!("ORBITA_{}", key.to_uppercase()),
        )
    }

    #[test]
    fn help_documents_every_setting_with_its_env_var() {
        let help = ServeArgs::command().render_long_help().to_string();
        for key in KEYS {
            let (flag, env) = flag_and_env(key);
            assert!(help.contains(&flag), "help lacks {flag}");
            assert!(help.contains(&env), "help lacks {env}");
        }
    }

    #[test]
    fn configuration_doc_lists_every_setting_and_its_example_is_valid() {
        let doc = include_str!("../../../docs/configuration.md");
        for key in KEYS {
            let (flag, env) = flag_and_env(key);
            for needle in [format!("`{key}`"), format!("`{flag}`"), format!("`{env}`")] {
                if key == "config" && needle == "`config`" {
                    continue; // The file is not a key of itself.
                }
                assert!(
                    doc.contains(&needle),
                    "docs/configuration.md lacks {needle}"
                );
            }
        }
        let example = doc
            .split("```toml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("a TOML example");
        let file = FileSettings::parse(example).expect("the example parses");
        let settings = Settings::resolve(ServeArgs::default(), file).expect("and is valid");
        assert_eq!(settings.code_length, 6);
    }
}
