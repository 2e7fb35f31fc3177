//! The coordinator's settings and the stage-1 files of the spec: `servers.json`,
//! `configuration.json` and `sessions_planned.json`.

use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

use crate::accounts::{Quota, Role};
use crate::clock::{self, Millis, MINUTE, SECOND};
use crate::verbs::{RcInfo, ServerEntry};

/// Everything the coordinator's logic can be told. Every field has a default
/// ([`Settings::default`]); a TOML or JSON table with these keys deserialises into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// This coordinator's id, unique among the coordinators sharing a database (random when empty).
    pub coordinator_id: String,
    /// The registry's database: `sqlite://FILE`, `postgres://...` or `mysql://...`. Empty:
    /// stage 1 (an in-memory SQLite database seeded from the files below).
    pub database_url: String,
    /// Stage 1: the `servers.json` to read (and re-read every `time_between_updates_seconds`).
    pub servers_file: Option<PathBuf>,
    /// Stage 1: the `configuration.json` to read.
    pub configuration_file: Option<PathBuf>,
    /// Stage 1: where plans are kept (`sessions_planned.json`); read at start, rewritten on change.
    pub plans_file: Option<PathBuf>,
    /// The secret every node proves it knows (HMAC); nodes are refused while it is empty.
    pub cluster_secret: String,
    /// Digits in a session code (4 to 12).
    pub code_length: usize,
    /// At most this share of one length's code space is in use at once (then `CODES_EXHAUSTED`).
    /// Codes grow longer long before (at most 1% of a length is live: `logic::code_length_for`).
    pub max_code_space_fraction: f64,
    /// How often nodes send `HEARTBEAT`.
    pub heartbeat_interval_secs: u64,
    /// A node whose last heartbeat is older than this is marked down and its sessions end.
    pub heartbeat_timeout_secs: u64,
    /// How long a node has to answer `CREATE_SESSION`.
    pub node_reply_timeout_secs: u64,
    /// A session whose node reported no activity for this long ends (`idle`).
    pub session_idle_secs: u64,
    /// The length of a planned slot when `PLAN_SESSION` gives none.
    pub plan_default_minutes: u64,
    /// The shortest slot that may be planned.
    pub plan_min_minutes: u64,
    /// The longest slot that may be planned.
    pub plan_max_minutes: u64,
    /// How far ahead slots may be planned.
    pub plan_horizon_days: u64,
    /// When checking capacity, a session started now (no plan) is assumed to last this long.
    pub unplanned_session_minutes: u64,
    /// How long `EXTEND_SESSION` extends a planned session when it names no `minutes` (held
    /// within `plan_min_minutes..=plan_max_minutes`); also the length `SESSION_ENDING`'s
    /// `extendable` is checked for.
    pub extension_minutes: u64,
    /// How long before its slot's end a planned session may be extended (and its participants
    /// get `SESSION_ENDING`).
    pub extension_window_minutes: u64,
    /// Code attempts per second per client address (`CONNECT_SESSION_WITH_CODE`), bursts of `code_attempt_burst`.
    pub code_attempts_per_second: f64,
    /// Burst of code attempts allowed per address.
    pub code_attempt_burst: u32,
    /// Wrong codes from one address within `code_miss_window_secs` that lock it out.
    pub code_max_misses: u32,
    /// The window in which wrong codes are counted.
    pub code_miss_window_secs: u64,
    /// How long a locked-out address is refused.
    pub code_lockout_secs: u64,
    /// Most entries one `GET_SERVERS` may ask for.
    pub max_servers_per_request: usize,
    /// Sessions a server of servers.json may hold when it neither says (`"max_sessions"`) nor has registered.
    pub default_max_sessions: u32,
    /// Largest client or node message, in bytes.
    pub max_message_bytes: usize,
    /// Client messages per second per connection (bursts of twice that); excess gets `RATE_LIMITED`.
    pub messages_per_second: f64,
    /// Most connections the listener holds open at once (kept below the file-descriptor
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
    /// Guests (no login) may `CREATE_SESSION` (a kiosk or demo install); planning always
    /// needs an account.
    pub guests_may_create: bool,
    /// How long a login session lasts (hours).
    pub session_hours: u64,
    /// Sign-ups per client address per hour.
    pub signup_per_hour: u32,
    /// Failed logins for one e-mail from one client address within `login_lockout_minutes`
    /// that lock that address out of that account; also the failures of an account (from
    /// every address) after which each further attempt waits a growing delay
    /// (`login_delay_max_secs`).
    pub login_max_failures: u32,
    /// The window failed logins are counted in, and how long a lock-out lasts (minutes).
    pub login_lockout_minutes: u64,
    /// Failed logins from one client address (over every account) within
    /// `login_lockout_minutes` that lock that address out of every login (credential stuffing).
    pub login_max_failures_per_address: u32,
    /// The longest delay between attempts on an account that has `login_max_failures`
    /// failures (seconds; the delay starts at 1 s and doubles with each further failure).
    pub login_delay_max_secs: u64,
    /// Password checks that may wait for a hashing thread; beyond, logins are refused at once
    /// (`429 busy`).
    pub login_hash_queue: usize,
    /// Believe `X-Forwarded-Proto` / `X-Forwarded-For` (set only behind a proxy you run):
    /// cookies get `Secure` for `https`; sign-ups and code guesses are counted per forwarded
    /// address (the last `X-Forwarded-For` entry, the one the proxy added).
    pub trust_proxy_headers: bool,
    /// Quota of the `agent` role until an administrator sets another.
    pub quota_agent: Quota,
    /// Quota of the `supervisor` role until an administrator sets another.
    pub quota_supervisor: Quota,
    /// Quota of the `admin` role until an administrator sets another.
    pub quota_admin: Quota,
    /// The recording policy: every session of these apps is recorded.
    pub record_apps: Vec<String>,
    /// The recording policy: every session created or planned by an account of these roles
    /// is recorded (`["agent"]`: the agents' calls with their customers).
    pub record_roles: Vec<Role>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            coordinator_id: String::new(),
            database_url: String::new(),
            servers_file: None,
            configuration_file: None,
            plans_file: None,
            cluster_secret: String::new(),
            code_length: 4,
            max_code_space_fraction: 0.5,
            heartbeat_interval_secs: 5,
            heartbeat_timeout_secs: 15,
            node_reply_timeout_secs: 10,
            session_idle_secs: 600,
            plan_default_minutes: 60,
            plan_min_minutes: 5,
            plan_max_minutes: 24 * 60,
            plan_horizon_days: 366,
            unplanned_session_minutes: 60,
            extension_minutes: 15,
            extension_window_minutes: 10,
            code_attempts_per_second: 1.0,
            code_attempt_burst: 5,
            code_max_misses: 10,
            code_miss_window_secs: 600,
            code_lockout_secs: 900,
            max_servers_per_request: 100,
            default_max_sessions: 1,
            max_message_bytes: 64 * 1024,
            messages_per_second: 20.0,
            max_connections: orbita_listen::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: orbita_listen::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            header_read_timeout_secs: orbita_listen::DEFAULT_HEADER_READ_TIMEOUT.as_secs(),
            idle_timeout_secs: orbita_listen::DEFAULT_IDLE_TIMEOUT.as_secs(),
            guests_may_create: false,
            session_hours: 12,
            signup_per_hour: 10,
            login_max_failures: 10,
            login_lockout_minutes: 15,
            login_max_failures_per_address: 50,
            login_delay_max_secs: 60,
            login_hash_queue: 32,
            trust_proxy_headers: false,
            quota_agent: Quota {
                sessions_per_period: Some(10),
                period_hours: 24,
                max_minutes: Some(120),
            },
            quota_supervisor: Quota {
                sessions_per_period: Some(50),
                period_hours: 24,
                max_minutes: Some(240),
            },
            quota_admin: Quota {
                sessions_per_period: None,
                period_hours: 24,
                max_minutes: None,
            },
            record_apps: Vec::new(),
            record_roles: Vec::new(),
        }
    }
}

/// Apps `record_apps` may name.
pub const MAX_RECORD_APPS: usize = 1000;

impl Settings {
    /// Whether a session of `rc_name` must be recorded: its app or its creator's (or
    /// planner's) `role` is in the recording policy, or its plan asked (`asked`).
    pub fn must_record(&self, rc_name: &str, role: Option<Role>, asked: bool) -> bool {
        asked
            || self.record_apps.iter().any(|a| a == rc_name)
            || role.is_some_and(|r| self.record_roles.contains(&r))
    }

    /// Checks ranges; the error names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(4..=12).contains(&self.code_length) {
            return Err("code_length must be 4 to 12".into());
        }
        if !(self.max_code_space_fraction > 0.0 && self.max_code_space_fraction <= 1.0) {
            return Err("max_code_space_fraction must be in (0, 1]".into());
        }
        if self.heartbeat_interval_secs == 0
            || self.heartbeat_timeout_secs <= self.heartbeat_interval_secs
        {
            return Err(
                "heartbeat_timeout_secs must be larger than heartbeat_interval_secs (> 0)".into(),
            );
        }
        if self.plan_min_minutes == 0
            || self.plan_min_minutes > self.plan_max_minutes
            || !(self.plan_min_minutes..=self.plan_max_minutes).contains(&self.plan_default_minutes)
        {
            return Err(
                "plan_default_minutes must lie in plan_min_minutes..=plan_max_minutes (min > 0)"
                    .into(),
            );
        }
        if self.extension_minutes == 0 || self.extension_window_minutes == 0 {
            return Err("extension_minutes and extension_window_minutes must be > 0".into());
        }
        if self.code_attempts_per_second <= 0.0 || self.code_attempt_burst == 0 {
            return Err("code_attempts_per_second and code_attempt_burst must be > 0".into());
        }
        if self.code_max_misses == 0 {
            return Err("code_max_misses must be > 0".into());
        }
        if self.max_servers_per_request == 0 {
            return Err("max_servers_per_request must be > 0".into());
        }
        if self.messages_per_second <= 0.0 {
            return Err("messages_per_second must be > 0".into());
        }
        self.listen_limits().validate()?;
        if self.max_message_bytes < 1024 {
            return Err("max_message_bytes must be at least 1024".into());
        }
        if !(1..=24 * 366).contains(&self.session_hours) {
            return Err("session_hours must be 1 to 8784".into());
        }
        if self.signup_per_hour == 0 || self.login_max_failures == 0 {
            return Err("signup_per_hour and login_max_failures must be > 0".into());
        }
        if self.login_lockout_minutes == 0 {
            return Err("login_lockout_minutes must be > 0".into());
        }
        if self.login_max_failures_per_address == 0 || self.login_delay_max_secs == 0 {
            return Err(
                "login_max_failures_per_address and login_delay_max_secs must be > 0".into(),
            );
        }
        for (role, q) in [
            ("quota_agent", &self.quota_agent),
            ("quota_supervisor", &self.quota_supervisor),
            ("quota_admin", &self.quota_admin),
        ] {
            q.check().map_err(|e| format!("{role}: {e}"))?;
        }
        if self.record_apps.len() > MAX_RECORD_APPS {
            return Err(format!(
                "record_apps may name at most {MAX_RECORD_APPS} apps"
            ));
        }
        Ok(())
    }

    /// The limits of the coordinator's listener.
    pub fn listen_limits(&self) -> orbita_listen::Limits {
        orbita_listen::Limits {
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs),
        }
    }

    pub(crate) fn ms(secs: u64) -> Millis {
        (secs as Millis).saturating_mul(SECOND)
    }
    pub(crate) fn min_ms(minutes: u64) -> Millis {
        (minutes as Millis).saturating_mul(MINUTE)
    }
    /// `extension_minutes`, held within the allowed slot lengths.
    pub(crate) fn default_extension_minutes(&self) -> u64 {
        self.extension_minutes.clamp(
            self.plan_min_minutes,
            self.plan_max_minutes.max(self.plan_min_minutes),
        )
    }
}

/// A number written as a string, as the spec's files do (`"30"`); a bare number is accepted too.
fn string_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        S(String),
        N(serde_json::Number),
    }
    Ok(match Either::deserialize(d)? {
        Either::S(s) => s,
        Either::N(n) => n.to_string(),
    })
}

fn opt_string_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    string_number(d).map(Some)
}

/// `configuration.json`: `{"ip":"0.0.0.2","port":"333","time_between_updates_seconds":"30"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileConfiguration {
    /// The address the coordinator listens on.
    #[serde(deserialize_with = "string_number")]
    pub ip: String,
    /// The port the coordinator listens on.
    #[serde(deserialize_with = "string_number")]
    pub port: String,
    /// How often `servers.json` (and this file) are re-read.
    #[serde(deserialize_with = "string_number")]
    pub time_between_updates_seconds: String,
}

impl FileConfiguration {
    /// Reads and checks the file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let c: FileConfiguration =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        c.update_period_secs()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        c.port
            .parse::<u16>()
            .map_err(|_| format!("{}: port {:?} is not a port number", path.display(), c.port))?;
        Ok(c)
    }

    /// `time_between_updates_seconds` as a number (at least 1).
    pub fn update_period_secs(&self) -> Result<u64, String> {
        match self.time_between_updates_seconds.trim().parse::<u64>() {
            Ok(n) if n >= 1 => Ok(n),
            _ => Err(format!(
                "time_between_updates_seconds {:?} is not a whole number of seconds >= 1",
                self.time_between_updates_seconds
            )),
        }
    }

    /// `ip:port`, for binding.
    pub fn listen_addr(&self) -> String {
        if self.ip.contains(':') {
            format!("[{}]:{}", self.ip, self.port)
        } else {
            format!("{}:{}", self.ip, self.port)
        }
    }
}

/// One object of `servers.json`: a [`ServerEntry`] plus this crate's optional `max_sessions`
/// (a string number, like the spec's other numbers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServersFileEntry {
    /// The server's name.
    pub server_name: String,
    /// Its address.
    #[serde(deserialize_with = "string_number")]
    pub ip: String,
    /// Its port.
    #[serde(deserialize_with = "string_number")]
    pub port: String,
    /// The app it offers.
    pub rc_info: RcInfo,
    /// Extension: how many sessions it may hold (until it registers and says itself).
    #[serde(
        default,
        deserialize_with = "opt_string_number",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_sessions: Option<String>,
}

impl ServersFileEntry {
    /// The spec's entry.
    pub fn entry(&self) -> ServerEntry {
        ServerEntry {
            server_name: self.server_name.clone(),
            ip: self.ip.clone(),
            port: self.port.clone(),
            rc_info: self.rc_info.clone(),
        }
    }
}

/// Reads `servers.json`: a top-level array of [`ServersFileEntry`]. An object may repeat a
/// `server_name` to offer several apps on one server.
pub fn load_servers(path: &Path) -> Result<Vec<ServersFileEntry>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_servers(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses the text of `servers.json`.
pub fn parse_servers(text: &str) -> Result<Vec<ServersFileEntry>, String> {
    let entries: Vec<ServersFileEntry> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    for e in &entries {
        if e.server_name.trim().is_empty() || e.rc_info.rc_name.trim().is_empty() {
            return Err("every entry needs a server_name and an rc_info.rc_name".into());
        }
        if e.server_name.len() > 128 || e.rc_info.rc_name.len() > 128 {
            return Err("server_name and rc_name are at most 128 bytes".into());
        }
        if let Some(m) = &e.max_sessions {
            m.trim().parse::<u32>().map_err(|_| {
                format!(
                    "{}: max_sessions {m:?} is not a whole number",
                    e.server_name
                )
            })?;
        }
    }
    Ok(entries)
}

/// The longest slot a line of `sessions_planned.json` may give, in minutes (366 days): longer
/// is refused as a mistake (a huge number once overflowed the slot's end: found by fuzzing,
/// docs/security.md).
pub const MAX_PLANNED_MINUTES: i64 = 366 * 24 * 60;

/// One object of `sessions_planned.json` (this crate's format; the spec leaves it open):
/// `{"code":"1234","rc_name":"SomeRC","date":"25/12/2026","time":"18:30","duration_minutes":"60","planned_by":"id123"}`.
/// Dates and times are UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedFileEntry {
    /// The join code handed out.
    pub code: String,
    /// The app.
    pub rc_name: String,
    /// `day/month/year`.
    pub date: String,
    /// `HH:MM`.
    pub time: String,
    /// The slot's length.
    #[serde(deserialize_with = "string_number")]
    pub duration_minutes: String,
    /// The client id that planned it.
    #[serde(default)]
    pub planned_by: String,
}

/// A plan, as the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The join code.
    pub code: String,
    /// The app.
    pub rc_name: String,
    /// Slot start (UTC epoch ms).
    pub start_ms: Millis,
    /// Slot end (exclusive).
    pub end_ms: Millis,
    /// Who planned it.
    pub planned_by: String,
}

impl Plan {
    /// As a line of `sessions_planned.json`.
    pub fn to_file_entry(&self) -> PlannedFileEntry {
        let (date, time) = clock::format_date_time(self.start_ms);
        PlannedFileEntry {
            code: self.code.clone(),
            rc_name: self.rc_name.clone(),
            date,
            time,
            duration_minutes: ((self.end_ms - self.start_ms) / MINUTE).to_string(),
            planned_by: self.planned_by.clone(),
        }
    }

    /// From a line of `sessions_planned.json`.
    pub fn from_file_entry(e: &PlannedFileEntry) -> Result<Plan, String> {
        let start = clock::parse_date(&e.date)? + clock::parse_time(&e.time)?;
        let minutes: i64 = e
            .duration_minutes
            .trim()
            .parse()
            .ok()
            .filter(|m| (1..=MAX_PLANNED_MINUTES).contains(m))
            .ok_or_else(|| {
                format!(
                    "duration_minutes {:?} is not a whole number from 1 to {MAX_PLANNED_MINUTES}",
                    e.duration_minutes
                )
            })?;
        if e.code.is_empty() || !e.code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("code {:?} is not digits", e.code));
        }
        Ok(Plan {
            code: e.code.clone(),
            rc_name: e.rc_name.clone(),
            start_ms: start,
            end_ms: start + minutes * MINUTE,
            planned_by: e.planned_by.clone(),
        })
    }
}

/// Reads `sessions_planned.json` (a missing file is no plans).
pub fn load_plans(path: &Path) -> Result<Vec<Plan>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let entries: Vec<PlannedFileEntry> =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    entries
        .iter()
        .map(|e| Plan::from_file_entry(e).map_err(|m| format!("{}: {m}", path.display())))
        .collect()
}

/// Writes `sessions_planned.json` atomically (a temporary file renamed over it).
pub fn save_plans(path: &Path, plans: &[Plan]) -> Result<(), String> {
    let entries: Vec<PlannedFileEntry> = plans.iter().map(Plan::to_file_entry).collect();
    let text = serde_json::to_string_pretty(&entries).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text + "\n").map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_files_parse() {
        let servers = parse_servers(
            r#"[{"server_name":"SomeName1","ip":"0.0.0.0","port":"111","rc_info":{"rc_name":"SomeRC","info":{"description":[{"en":"best RC and ..."},{"ru":"..."}]}}},
                {"server_name":"SomeName2","ip":"0.0.0.1","port":"112","max_sessions":"3","rc_info":{"rc_name":"OtherRC","info":{"description":[{"en":"x"}]}}}]"#,
        )
        .unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0].port, "111");
        assert_eq!(
            servers[0].rc_info.description("en"),
            Some("best RC and ...")
        );
        assert_eq!(servers[1].max_sessions.as_deref(), Some("3"));
        assert_eq!(
            serde_json::to_value(servers[0].entry()).unwrap(),
            serde_json::json!({"server_name":"SomeName1","ip":"0.0.0.0","port":"111","rc_info":{"rc_name":"SomeRC","info":{"description":[{"en":"best RC and ..."},{"ru":"..."}]}}})
        );
        assert!(parse_servers(
            r#"[{"server_name":"","ip":"1","port":"2","rc_info":{"rc_name":"a"}}]"#
        )
        .is_err());
        assert!(parse_servers(r#"{"server_name":"x"}"#).is_err());

        let c: FileConfiguration = serde_json::from_str(
            r#"{"ip":"0.0.0.2","port":"333","time_between_updates_seconds":"30"}"#,
        )
        .unwrap();
        assert_eq!(c.update_period_secs().unwrap(), 30);
        assert_eq!(c.listen_addr(), "0.0.0.2:333");
        let bad: FileConfiguration = serde_json::from_str(
            r#"{"ip":"0.0.0.2","port":"333","time_between_updates_seconds":"soon"}"#,
        )
        .unwrap();
        assert!(bad.update_period_secs().is_err());
    }

    #[test]
    fn plans_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("orbita-plans-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("sessions_planned.json");
        assert!(load_plans(&path).unwrap().is_empty());
        let start = clock::parse_date("25/12/2026").unwrap() + clock::parse_time("18:30").unwrap();
        let plans = vec![Plan {
            code: "0042".into(),
            rc_name: "SomeRC".into(),
            start_ms: start,
            end_ms: start + 90 * MINUTE,
            planned_by: "id1".into(),
        }];
        save_plans(&path, &plans).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"date\": \"25/12/2026\""), "{text}");
        assert!(text.contains("\"duration_minutes\": \"90\""), "{text}");
        assert_eq!(load_plans(&path).unwrap(), plans);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_planned_slot_too_long_is_refused_not_overflowed() {
        // The `settings` fuzz target's input: duration_minutes times a minute overflowed i64
        // (a panic with overflow checks, a wrapped end time without).
        let entry = |minutes: &str| PlannedFileEntry {
            code: "1234".into(),
            rc_name: "SomeRC".into(),
            date: "25/12/2026".into(),
            time: "18:30".into(),
            duration_minutes: minutes.into(),
            planned_by: "x".into(),
        };
        let err = Plan::from_file_entry(&entry("9223372036854775807")).unwrap_err();
        assert!(err.contains("from 1 to 527040"), "{err}");
        assert!(Plan::from_file_entry(&entry("527041")).is_err());
        let year = Plan::from_file_entry(&entry("527040")).unwrap();
        assert_eq!(year.end_ms - year.start_ms, MAX_PLANNED_MINUTES * MINUTE);
    }

    #[test]
    fn default_settings_are_valid() {
        Settings::default().validate().unwrap();
        let s = Settings {
            code_length: 3,
            ..Settings::default()
        };
        assert!(s.validate().unwrap_err().contains("code_length"));
    }
}
