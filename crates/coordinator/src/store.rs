//! The registry: nodes, their apps, live sessions, plans, codes, participants and the
//! cross-coordinator outbox, in a SQL database through sqlx's `Any` driver.
//!
//! One implementation serves both stages of the spec:
//! * stage 1: an in-memory SQLite database ([`Registry::in_memory`]) seeded from `servers.json`
//!   and `sessions_planned.json` (see [`crate::files`]);
//! * stage 2: SQLite (a file), PostgreSQL or MySQL/MariaDB named by a URL ([`Registry::connect`]),
//!   shared by any number of coordinators.
//!
//! Every statement is written once with `?` placeholders (rewritten to `$n` for PostgreSQL) and
//! uses only types every backend maps the same way (`BIGINT`, `VARCHAR`, `TEXT`); schemas differ
//! only in their migrations (`migrations/{sqlite,postgres,mysql}`). Times are epoch
//! milliseconds supplied by the caller, never the database's clock, so tests run on virtual
//! time. Operations that hand out capacity or codes take the one row of `coord_lock` first
//! (`UPDATE ... SET n = n + 1`), which serialises them across coordinators on every backend;
//! primary keys on codes are the backstop.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Once;
use std::time::Duration;

use rand::Rng;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyPool, Row, Transaction};

use crate::clock::Millis;
use crate::config::{Plan, ServersFileEntry};
use crate::logic;
use crate::verbs::{Heartbeat, RcInfo, Registration, ServerEntry};

mod call_forms;
mod call_settings;
mod calls;
pub use call_forms::SurveyAnswer;
mod plans_admin;
pub use calls::{
    CallFilter, CallParticipant, CallRecord, CallSummary, ChatLine, NewCall, Presence,
    QualityPoint, MAX_CALLS_LISTED,
};
pub use plans_admin::{PlanChangeError, PlanDetails, PlanEntry, PlanFilter, MAX_PLANS_LISTED};

/// A database failure (the text of sqlx's error).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// From sqlx.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// From a migration.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Anything else (bad URL, bad stored JSON).
    #[error("{0}")]
    Other(String),
}

/// Result of the registry.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The database kind behind a [`Registry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (a file, or memory in stage 1).
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Backend {
    /// The backend a URL names.
    pub fn of_url(url: &str) -> Result<Backend> {
        let scheme = url.split(':').next().unwrap_or("");
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(StoreError::Other(format!(
                "database URL {url:?}: the scheme must be sqlite:, postgres: or mysql:"
            ))),
        }
    }

    /// `column` for ORDER BY in byte order, as Rust orders strings (PostgreSQL would use the
    /// database's collation; MySQL tables are `utf8mb4_bin`, SQLite compares bytes).
    pub(crate) fn bytewise(self, column: &str) -> String {
        match self {
            Backend::Postgres => format!("{column} COLLATE \"C\""),
            Backend::Sqlite | Backend::MySql => column.to_string(),
        }
    }

    /// `expr` (an integer SUM: NUMERIC in PostgreSQL, DECIMAL in MySQL) as a 64-bit integer.
    pub(crate) fn as_bigint(self, expr: &str) -> String {
        match self {
            Backend::MySql => format!("CAST({expr} AS SIGNED)"),
            Backend::Sqlite | Backend::Postgres => format!("CAST({expr} AS BIGINT)"),
        }
    }

    /// A statement written with `?` placeholders as this backend wants it (`$1`, `$2`, ...
    /// for PostgreSQL).
    pub(crate) fn sql(self, q: &str) -> String {
        if self != Backend::Postgres {
            return q.to_string();
        }
        let mut out = String::with_capacity(q.len() + 8);
        let mut n = 0;
        for c in q.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        out
    }

    fn migrator(self) -> Migrator {
        macro_rules! per_backend {
            ($file:literal) => {
                match self {
                    Backend::Sqlite => include_str!(concat!("../migrations/sqlite/", $file)),
                    Backend::Postgres => include_str!(concat!("../migrations/postgres/", $file)),
                    Backend::MySql => include_str!(concat!("../migrations/mysql/", $file)),
                }
            };
        }
        // Applied in order; never edit one that has shipped (its checksum is checked).
        let steps = [
            ("registry", per_backend!("0001_registry.sql")),
            ("ending_notice", per_backend!("0002_ending_notice.sql")),
            ("accounts", per_backend!("0003_accounts.sql")),
            ("plan_details", per_backend!("0004_plan_details.sql")),
            ("login_limits", per_backend!("0005_login_limits.sql")),
            ("recording", per_backend!("0006_recording.sql")),
            ("call_records", per_backend!("0007_call_records.sql")),
            ("call_details", per_backend!("0008_call_details.sql")),
            ("call_quality", per_backend!("0009_call_quality.sql")),
            ("call_forms", per_backend!("0010_call_forms.sql")),
            ("call_settings", per_backend!("0011_call_settings.sql")),
        ];
        Migrator {
            migrations: Cow::Owned(
                steps
                    .into_iter()
                    .zip(1..)
                    .map(|((name, sql), version)| {
                        Migration::new(
                            version,
                            Cow::Borrowed(name),
                            MigrationType::Simple,
                            Cow::Borrowed(sql),
                            false,
                        )
                    })
                    .collect(),
            ),
            ignore_missing: false,
            locking: true,
            no_tx: false,
        }
    }
}

/// A registration's web address, kept when it is an `http(s)://` URL of at most 512 bytes
/// (else none: its recordings are not listed through the coordinator).
fn web_address(reg: &Registration) -> String {
    match reg
        .public_url
        .as_deref()
        .map(|u| u.trim().trim_end_matches('/'))
    {
        Some(url)
            if url.len() <= 512
                && (url.starts_with("https://") || url.starts_with("http://"))
                && !url.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            url.to_string()
        }
        _ => String::new(),
    }
}

/// A node as the registry keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    /// Its name (`server_name`).
    pub name: String,
    /// Where clients reach it.
    pub ip: String,
    /// Where clients reach it.
    pub port: String,
    /// Sessions it may hold.
    pub max_sessions: u32,
    /// Registered and heartbeating.
    pub up: bool,
    /// Listed in servers.json.
    pub from_file: bool,
    /// The coordinator holding its link (empty: none yet).
    pub link_owner: String,
    /// Its last heartbeat or registration.
    pub last_seen_ms: Millis,
    /// Sessions it reported.
    pub reported_sessions: u32,
    /// Participants it reported.
    pub reported_participants: u32,
    /// CPU it reported (0..1).
    pub cpu: f64,
}

/// A session as the registry keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Its code.
    pub code: String,
    /// Its app.
    pub rc_name: String,
    /// The node holding it.
    pub node_name: String,
    /// Confirmed by the node (`CONNECT_TO_SESSION`); otherwise starting.
    pub live: bool,
    /// The client that created it (or started its plan).
    pub creator: String,
    /// The coordinator that client talks to.
    pub creator_coordinator: String,
    /// Where clients reach it (empty while starting).
    pub ip: String,
    /// Where clients reach it (empty while starting).
    pub port: String,
    /// When it was created.
    pub created_ms: Millis,
    /// Its last reported activity.
    pub last_activity_ms: Millis,
    /// The end of its planned slot, if it came from a plan.
    pub ends_ms: Option<Millis>,
}

/// Someone sent to a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    /// The client's id.
    pub user_id: String,
    /// The coordinator the client talks to.
    pub coordinator_id: String,
}

/// A session that was ended, with who was in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    /// The session as it was.
    pub session: SessionRecord,
    /// Who was sent to it.
    pub participants: Vec<Participant>,
}

/// What [`Registry::place_session`] needs.
#[derive(Debug, Clone)]
pub struct PlaceRequest {
    /// The app.
    pub rc_name: String,
    /// The client creating it.
    pub creator: String,
    /// The coordinator that client talks to.
    pub creator_coordinator: String,
    /// Starting a planned session: its plan (code and slot). `None`: an unplanned session.
    pub plan: Option<Plan>,
    /// Nodes not to use (they just refused).
    pub exclude: Vec<String>,
    /// How long an unplanned session is assumed to last when checking plans.
    pub unplanned_ms: Millis,
    /// Shortest code length (codes grow longer as more are in use:
    /// [`logic::code_length_for`]).
    pub code_length: usize,
    /// Most codes of one length in use at once, as a fraction of that length's code space.
    pub max_code_space_fraction: f64,
    /// The session must be recorded: only a node with a free recorder slot will do.
    pub record: bool,
}

/// Where a new session went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Its code.
    pub code: String,
    /// The node asked to run it.
    pub node: String,
    /// The coordinator holding that node's link.
    pub link_owner: String,
}

/// Why a session or plan could not be placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// No node of the app has room (or a plan holds the room).
    #[error("no server has room")]
    Busy,
    /// The session must be recorded, and no node with room has a free recorder slot.
    #[error("no server with room has a free recorder")]
    NoFreeRecorder,
    /// Too many codes in use.
    #[error("too many codes in use")]
    CodesExhausted,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PlaceError {
    fn from(e: sqlx::Error) -> Self {
        PlaceError::Store(e.into())
    }
}

/// A queued message for another coordinator to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// `"client"` or `"node"`.
    pub target_kind: String,
    /// The user id or node name.
    pub target: String,
    /// The JSON text.
    pub body: String,
}

const SESSION_COLS: &str = "code, rc_name, node_name, state, creator, creator_coordinator, ip, port, created_ms, last_activity_ms, ends_ms, from_plan";
/// The nodes (as `n`, their app rows as `a`) that serve the app bound as `?` and take sessions
/// now: linked and up. Placement and planning both count only these: a server listed in
/// servers.json whose node is not linked cannot start a session, so plans never count on it.
const APP_NODES_UP: &str = "FROM coord_nodes n JOIN coord_apps a ON a.node_name = n.name \
                            WHERE a.rc_name = ? AND n.status = 'up'";
const NODE_COLS: &str = "name, ip, port, max_sessions, status, from_file, link_owner, last_seen_ms, reported_sessions, reported_participants, cpu_permille";

/// A `TEXT` column: MySQL's TEXT reaches `Any` as a BLOB, the others' as text.
fn text(row: &AnyRow, idx: usize) -> Result<String> {
    match row.try_get::<String, _>(idx) {
        Ok(s) => Ok(s),
        Err(_) => {
            let bytes: Vec<u8> = row.try_get(idx)?;
            String::from_utf8(bytes)
                .map_err(|e| StoreError::Other(format!("stored text is not UTF-8: {e}")))
        }
    }
}

fn session_of(row: &AnyRow) -> Result<SessionRecord> {
    let state: String = row.try_get(3)?;
    let ends: i64 = row.try_get(10)?;
    Ok(SessionRecord {
        code: row.try_get(0)?,
        rc_name: row.try_get(1)?,
        node_name: row.try_get(2)?,
        live: state == "live",
        creator: row.try_get(4)?,
        creator_coordinator: row.try_get(5)?,
        ip: row.try_get(6)?,
        port: row.try_get(7)?,
        created_ms: row.try_get(8)?,
        last_activity_ms: row.try_get(9)?,
        ends_ms: (ends > 0).then_some(ends),
    })
}

fn node_of(row: &AnyRow) -> Result<NodeRecord> {
    let status: String = row.try_get(4)?;
    Ok(NodeRecord {
        name: row.try_get(0)?,
        ip: row.try_get(1)?,
        port: row.try_get(2)?,
        max_sessions: row.try_get::<i64, _>(3)?.clamp(0, u32::MAX as i64) as u32,
        up: status == "up",
        from_file: row.try_get::<i64, _>(5)? != 0,
        link_owner: row.try_get(6)?,
        last_seen_ms: row.try_get(7)?,
        reported_sessions: row.try_get::<i64, _>(8)?.clamp(0, u32::MAX as i64) as u32,
        reported_participants: row.try_get::<i64, _>(9)?.clamp(0, u32::MAX as i64) as u32,
        cpu: row.try_get::<i64, _>(10)? as f64 / 1000.0,
    })
}

fn plan_of(row: &AnyRow) -> Result<Plan> {
    Ok(Plan {
        code: row.try_get(0)?,
        rc_name: row.try_get(1)?,
        start_ms: row.try_get(2)?,
        end_ms: row.try_get(3)?,
        planned_by: row.try_get(4)?,
    })
}

/// The registry. Cheap to clone (a connection pool).
#[derive(Debug, Clone)]
pub struct Registry {
    pool: AnyPool,
    backend: Backend,
}

static DRIVERS: Once = Once::new();

/// A transaction on the registry's database.
type Tx = Transaction<'static, Any>;

impl Registry {
    /// Connects to `url` (`sqlite://FILE`, `postgres://...`, `mysql://...`) and applies the
    /// migrations. A SQLite file is created when missing.
    pub async fn connect(url: &str) -> Result<Registry> {
        let backend = Backend::of_url(url)?;
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let mut url = url.to_string();
        let mut options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            if url.contains(":memory:") || url.contains("mode=memory") {
                // One connection that never closes: the database lives as long as it does.
                options = options
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None);
            } else {
                if !url.contains("mode=") {
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str("mode=rwc");
                }
                // Write-ahead log: a commit appends to the log instead of rewriting pages and
                // syncing a rollback journal (create/join on a file registry ran at a quarter
                // of the in-memory rate without it); NORMAL sync is still crash-safe in WAL.
                options = options.after_connect(|conn, _meta| {
                    Box::pin(async move {
                        sqlx::query("PRAGMA journal_mode=WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA synchronous=NORMAL")
                            .execute(&mut *conn)
                            .await?;
                        Ok(())
                    })
                });
                // SQLite has one writer at a time anyway; one connection avoids SQLITE_BUSY
                // between this process's own transactions.
                options = options.max_connections(1);
            }
        } else {
            options = options.max_connections(8);
        }
        let pool = options.connect(&url).await?;
        backend.migrator().run(&pool).await?;
        Ok(Registry { pool, backend })
    }

    /// Stage 1: a private in-memory SQLite database.
    pub async fn in_memory() -> Result<Registry> {
        Registry::connect("sqlite::memory:").await
    }

    /// The database kind.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool (for tests and tools).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// `?` placeholders as the backend wants them.
    fn sql(&self, q: &str) -> String {
        self.backend.sql(q)
    }

    /// Begins a transaction and takes the registry-wide lock row first, so every writing
    /// transaction is serialised (and, on SQLite, takes the write lock before it reads: no
    /// lock upgrades, so no `SQLITE_BUSY` deadlocks between coordinators sharing a file).
    async fn begin(&self) -> Result<Tx> {
        let mut tx = self.pool.begin().await?;
        self.lock(&mut tx).await?;
        Ok(tx)
    }

    /// Takes the registry-wide lock row (released at commit or rollback).
    async fn lock(&self, tx: &mut Tx) -> Result<()> {
        let q = self.sql("UPDATE coord_lock SET n = n + 1 WHERE name = 'global'");
        sqlx::query(&q).execute(&mut **tx).await?;
        Ok(())
    }

    async fn count(&self, tx: &mut Tx, q: &str, arg: &str) -> Result<i64> {
        let q = self.sql(q);
        Ok(sqlx::query_scalar::<_, i64>(&q)
            .bind(arg.to_string())
            .fetch_one(&mut **tx)
            .await?)
    }

    // ---------------------------------------------------------------- catalogue

    /// Stage 1: makes the file-listed nodes and apps match `servers.json` (entries in file
    /// order; a repeated `server_name` adds apps to that server). Nodes and apps that left the
    /// file are removed unless the node registered itself.
    pub async fn sync_file_servers(
        &self,
        entries: &[ServersFileEntry],
        default_max_sessions: u32,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        // Apps from the file: replace wholesale.
        let q = self.sql("DELETE FROM coord_apps WHERE from_file = 1");
        sqlx::query(&q).execute(&mut *tx).await?;
        let mut seen_nodes: HashMap<&str, usize> = HashMap::new();
        let mut seen_apps: HashSet<(&str, &str)> = HashSet::new();
        for (pos, e) in entries.iter().enumerate() {
            let first = !seen_nodes.contains_key(e.server_name.as_str());
            seen_nodes.entry(e.server_name.as_str()).or_insert(pos);
            if first {
                let existing = self
                    .count(
                        &mut tx,
                        "SELECT COUNT(*) FROM coord_nodes WHERE name = ?",
                        &e.server_name,
                    )
                    .await?;
                let max: Option<i64> = e
                    .max_sessions
                    .as_deref()
                    .and_then(|m| m.trim().parse().ok());
                if existing == 0 {
                    let q = self.sql(&format!(
                        "INSERT INTO coord_nodes ({NODE_COLS}, file_pos) VALUES (?, ?, ?, ?, 'down', 1, '', 0, 0, 0, 0, ?)"
                    ));
                    sqlx::query(&q)
                        .bind(e.server_name.clone())
                        .bind(e.ip.clone())
                        .bind(e.port.clone())
                        .bind(max.unwrap_or(default_max_sessions as i64))
                        .bind(pos as i64)
                        .execute(&mut *tx)
                        .await?;
                } else {
                    // A node that is up keeps the address and size it registered with.
                    let q = self.sql(
                        "UPDATE coord_nodes SET from_file = 1, file_pos = ?, ip = CASE WHEN status = 'up' THEN ip ELSE ? END, \
                         port = CASE WHEN status = 'up' THEN port ELSE ? END, \
                         max_sessions = CASE WHEN status = 'up' THEN max_sessions ELSE ? END WHERE name = ?",
                    );
                    let q2 = self.sql("SELECT max_sessions FROM coord_nodes WHERE name = ?");
                    let current: i64 = sqlx::query_scalar(&q2)
                        .bind(e.server_name.clone())
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query(&q)
                        .bind(pos as i64)
                        .bind(e.ip.clone())
                        .bind(e.port.clone())
                        .bind(max.unwrap_or(current))
                        .bind(e.server_name.clone())
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if !seen_apps.insert((e.server_name.as_str(), e.rc_info.rc_name.as_str())) {
                continue;
            }
            // A registered app of the same name gives way to the file's.
            let q = self.sql("DELETE FROM coord_apps WHERE node_name = ? AND rc_name = ?");
            sqlx::query(&q)
                .bind(e.server_name.clone())
                .bind(e.rc_info.rc_name.clone())
                .execute(&mut *tx)
                .await?;
            let q = self.sql("INSERT INTO coord_apps (node_name, rc_name, info, from_file, file_pos) VALUES (?, ?, ?, 1, ?)");
            sqlx::query(&q)
                .bind(e.server_name.clone())
                .bind(e.rc_info.rc_name.clone())
                .bind(e.rc_info.info.to_string())
                .bind(pos as i64)
                .execute(&mut *tx)
                .await?;
        }
        // Nodes no longer in the file: forget them unless they registered (then they stay, unlisted).
        let q = self.sql("SELECT name, status FROM coord_nodes WHERE from_file = 1");
        let rows: Vec<(String, String)> = sqlx::query_as(&q).fetch_all(&mut *tx).await?;
        for (name, status) in rows {
            if seen_nodes.contains_key(name.as_str()) {
                continue;
            }
            if status == "up" {
                let q = self.sql("UPDATE coord_nodes SET from_file = 0 WHERE name = ?");
                sqlx::query(&q).bind(name).execute(&mut *tx).await?;
            } else {
                let has_sessions = self
                    .count(
                        &mut tx,
                        "SELECT COUNT(*) FROM coord_sessions WHERE node_name = ?",
                        &name,
                    )
                    .await?;
                if has_sessions == 0 {
                    let q = self.sql("DELETE FROM coord_nodes WHERE name = ?");
                    sqlx::query(&q).bind(name).execute(&mut *tx).await?;
                } else {
                    let q = self.sql("UPDATE coord_nodes SET from_file = 0 WHERE name = ?");
                    sqlx::query(&q).bind(name).execute(&mut *tx).await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// A node (re)registers: it is up, its link is held by `owner`, and its own apps replace
    /// those it registered before (apps servers.json gives it stay). Returns the codes of the
    /// sessions the registry believes it holds.
    pub async fn register_node(
        &self,
        reg: &Registration,
        owner: &str,
        now: Millis,
    ) -> Result<Vec<String>> {
        let mut tx = self.begin().await?;
        let existing = self
            .count(
                &mut tx,
                "SELECT COUNT(*) FROM coord_nodes WHERE name = ?",
                &reg.server_name,
            )
            .await?;
        if existing == 0 {
            let q = self.sql(&format!(
                "INSERT INTO coord_nodes ({NODE_COLS}, file_pos, recording_slots, public_url) VALUES (?, ?, ?, ?, 'up', 0, ?, ?, 0, 0, 0, 0, ?, ?)"
            ));
            sqlx::query(&q)
                .bind(reg.server_name.clone())
                .bind(reg.ip.clone())
                .bind(reg.port.clone())
                .bind(reg.max_sessions as i64)
                .bind(owner.to_string())
                .bind(now)
                .bind(i64::from(reg.recording_slots))
                .bind(web_address(reg))
                .execute(&mut *tx)
                .await?;
        } else {
            let q = self.sql(
                "UPDATE coord_nodes SET ip = ?, port = ?, max_sessions = ?, status = 'up', link_owner = ?, last_seen_ms = ?, recording_slots = ?, public_url = ? WHERE name = ?",
            );
            sqlx::query(&q)
                .bind(reg.ip.clone())
                .bind(reg.port.clone())
                .bind(reg.max_sessions as i64)
                .bind(owner.to_string())
                .bind(now)
                .bind(i64::from(reg.recording_slots))
                .bind(web_address(reg))
                .bind(reg.server_name.clone())
                .execute(&mut *tx)
                .await?;
        }
        let q = self.sql("DELETE FROM coord_apps WHERE node_name = ? AND from_file = 0");
        sqlx::query(&q)
            .bind(reg.server_name.clone())
            .execute(&mut *tx)
            .await?;
        let q = self.sql("SELECT rc_name FROM coord_apps WHERE node_name = ?");
        let file_apps: HashSet<String> = sqlx::query_scalar(&q)
            .bind(reg.server_name.clone())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let mut added = HashSet::new();
        for app in &reg.apps {
            if file_apps.contains(&app.rc_name) || !added.insert(app.rc_name.clone()) {
                continue;
            }
            let q = self.sql("INSERT INTO coord_apps (node_name, rc_name, info, from_file, file_pos) VALUES (?, ?, ?, 0, 0)");
            sqlx::query(&q)
                .bind(reg.server_name.clone())
                .bind(app.rc_name.clone())
                .bind(app.info.to_string())
                .execute(&mut *tx)
                .await?;
        }
        let q = self.sql("SELECT code FROM coord_sessions WHERE node_name = ? ORDER BY code");
        let codes: Vec<String> = sqlx::query_scalar(&q)
            .bind(reg.server_name.clone())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(codes)
    }

    /// A heartbeat: the node is seen (and up again if it had been marked down), its load is
    /// stored, and sessions it names in `active` are marked active. `false` when the node is
    /// unknown.
    pub async fn heartbeat(
        &self,
        node: &str,
        hb: &Heartbeat,
        owner: &str,
        now: Millis,
    ) -> Result<bool> {
        let q = self.sql(
            "UPDATE coord_nodes SET last_seen_ms = ?, status = 'up', link_owner = ?, reported_sessions = ?, reported_participants = ?, cpu_permille = ?, recording_slots = ?, reported_recordings = ? WHERE name = ?",
        );
        let done = sqlx::query(&q)
            .bind(now)
            .bind(owner.to_string())
            .bind(hb.sessions as i64)
            .bind(hb.participants as i64)
            .bind((hb.cpu.clamp(0.0, 1000.0) * 1000.0) as i64)
            .bind(i64::from(hb.recording_slots))
            .bind(i64::from(hb.other_recordings))
            .bind(node.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        self.touch_sessions(node, &hb.active, now).await?;
        Ok(true)
    }

    /// Marks sessions of `node` as active at `now`.
    pub async fn touch_sessions(&self, node: &str, codes: &[String], now: Millis) -> Result<()> {
        for code in codes {
            let q = self.sql(
                "UPDATE coord_sessions SET last_activity_ms = ? WHERE code = ? AND node_name = ?",
            );
            sqlx::query(&q)
                .bind(now)
                .bind(code.clone())
                .bind(node.to_string())
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Catalogue entries `offset..offset+count` (file entries in file order, then registered
    /// nodes by name; apps of nodes that are down are listed only when servers.json lists them).
    pub async fn list_entries(&self, offset: usize, count: usize) -> Result<Vec<ServerEntry>> {
        let q = self.sql(
            "SELECT n.name, n.ip, n.port, a.rc_name, a.info FROM coord_apps a JOIN coord_nodes n ON n.name = a.node_name \
             WHERE a.from_file = 1 OR n.status = 'up' \
             ORDER BY a.from_file DESC, a.file_pos, n.name, a.rc_name LIMIT ? OFFSET ?",
        );
        let rows = sqlx::query(&q)
            .bind(count as i64)
            .bind(offset as i64)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let rc_name: String = row.try_get(3)?;
                let info = serde_json::from_str(&text(row, 4)?)
                    .map_err(|e| StoreError::Other(format!("stored info of {rc_name}: {e}")))?;
                Ok(ServerEntry {
                    server_name: row.try_get(0)?,
                    ip: row.try_get(1)?,
                    port: row.try_get(2)?,
                    rc_info: RcInfo { rc_name, info },
                })
            })
            .collect()
    }

    /// Whether any server (listed or registered, up or not) offers `rc_name`.
    pub async fn rc_known(&self, rc_name: &str) -> Result<bool> {
        let q = self.sql("SELECT COUNT(*) FROM coord_apps WHERE rc_name = ?");
        let n: i64 = sqlx::query_scalar(&q)
            .bind(rc_name.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// One node.
    pub async fn node(&self, name: &str) -> Result<Option<NodeRecord>> {
        let q = self.sql(&format!(
            "SELECT {NODE_COLS} FROM coord_nodes WHERE name = ?"
        ));
        let row = sqlx::query(&q)
            .bind(name.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(node_of).transpose()
    }

    /// The up nodes that gave a web address: `(name, address)`, by name.
    pub async fn node_web_addresses(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query_as(
            "SELECT name, public_url FROM coord_nodes WHERE status = 'up' AND public_url <> '' ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Every node, by name.
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let q = format!("SELECT {NODE_COLS} FROM coord_nodes ORDER BY name");
        let rows = sqlx::query(&q).fetch_all(&self.pool).await?;
        rows.iter().map(node_of).collect()
    }

    // ---------------------------------------------------------------- sessions

    /// The node for a new session of `req.rc_name`: an up one serving the app with room,
    /// fewest sessions (live and starting), then fewest participants (its last heartbeat),
    /// then by name; with `recorder`, only a node with a free recorder slot (its slots are
    /// more than the sessions placed on it that must be recorded plus the other recordings
    /// its last heartbeat reported, those agents started). Chosen by the database (sessions
    /// counted by index coord_sessions_node), so only one row comes back: rows cross from the
    /// database one by one, and a whole node list per request was most of CREATE_SESSION's
    /// cost. `(name, link_owner)`.
    async fn pick_node(
        &self,
        tx: &mut Tx,
        req: &PlaceRequest,
        recorder: bool,
    ) -> Result<Option<(String, String)>> {
        let excluded = if req.exclude.is_empty() {
            String::new()
        } else {
            format!(
                " AND n.name NOT IN ({})",
                vec!["?"; req.exclude.len()].join(", ")
            )
        };
        let recorder = if recorder {
            " AND recording_slots > reported_recordings + recorded"
        } else {
            ""
        };
        let q = self.sql(&format!(
            "SELECT name, link_owner FROM (SELECT n.name, n.max_sessions, n.reported_participants, \
             n.link_owner, n.recording_slots, n.reported_recordings, \
             (SELECT COUNT(*) FROM coord_sessions s WHERE s.node_name = n.name) AS sessions, \
             (SELECT COUNT(*) FROM coord_sessions s WHERE s.node_name = n.name AND s.record = 1) AS recorded \
             {APP_NODES_UP}{excluded}) t \
             WHERE sessions < max_sessions{recorder} ORDER BY sessions, reported_participants, {} LIMIT 1",
            self.backend.bytewise("name")
        ));
        let mut query = sqlx::query_as(&q).bind(req.rc_name.clone());
        for name in &req.exclude {
            query = query.bind(name.clone());
        }
        Ok(query.fetch_optional(&mut **tx).await?)
    }

    /// Picks a node for a new session of `req.rc_name` and reserves a code, in one
    /// transaction under the registry lock. The session is `starting` until the node confirms.
    ///
    /// An unplanned session must leave room for the plans of the next `unplanned_ms`; a
    /// planned one (`req.plan`) uses the room its plan reserved.
    pub async fn place_session(
        &self,
        req: &PlaceRequest,
        now: Millis,
        rng: &mut (impl Rng + Send),
    ) -> Result<Placement, PlaceError> {
        let mut tx = self.begin().await?;
        let chosen = self.pick_node(&mut tx, req, req.record).await?;
        if chosen.is_none() && req.record && self.pick_node(&mut tx, req, false).await?.is_some() {
            return Err(PlaceError::NoFreeRecorder);
        }
        let Some((node, link_owner)) = chosen else {
            return Err(PlaceError::Busy);
        };
        if req.plan.is_none() {
            // Leave room for plans that begin while this session is expected to run: every
            // session on the app's nodes is taken to run all through [now, now + unplanned_ms).
            let q = self.sql(&format!(
                "SELECT (SELECT {} {APP_NODES_UP}), \
                 (SELECT COUNT(*) FROM coord_sessions s WHERE s.node_name IN (SELECT n.name {APP_NODES_UP}))",
                self.backend.as_bigint("COALESCE(SUM(n.max_sessions), 0)")
            ));
            let (capacity, running): (i64, i64) = sqlx::query_as(&q)
                .bind(req.rc_name.clone())
                .bind(req.rc_name.clone())
                .fetch_one(&mut *tx)
                .await?;
            let (from, to) = (now, now + req.unplanned_ms);
            let booked = self.plans_on(&mut tx, &req.rc_name, from, to).await?;
            if !logic::slot_fits_over(
                running.max(0) as u64,
                &booked,
                from,
                to,
                capacity.max(0) as u64,
            ) {
                return Err(PlaceError::Busy);
            }
        }
        let code = match &req.plan {
            Some(p) => p.code.clone(),
            None => {
                self.allocate_code(
                    &mut tx,
                    req.code_length,
                    req.max_code_space_fraction,
                    now,
                    rng,
                )
                .await?
            }
        };
        let q = self.sql(&format!(
            "INSERT INTO coord_sessions ({SESSION_COLS}, record) VALUES (?, ?, ?, 'starting', ?, ?, '', '', ?, ?, ?, ?, ?)"
        ));
        sqlx::query(&q)
            .bind(code.clone())
            .bind(req.rc_name.clone())
            .bind(node.clone())
            .bind(req.creator.clone())
            .bind(req.creator_coordinator.clone())
            .bind(now)
            .bind(now)
            .bind(req.plan.as_ref().map_or(0, |p| p.end_ms))
            .bind(i64::from(req.plan.is_some()))
            .bind(i64::from(req.record))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Placement {
            code,
            node,
            link_owner,
        })
    }

    /// Slots of plans not yet started (a started one is counted as a session) overlapping
    /// `[from, to)` whose app some up node serving `rc_name` serves too: conservative when
    /// nodes serve several apps.
    async fn plans_on(
        &self,
        tx: &mut Tx,
        rc_name: &str,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(Millis, Millis)>> {
        let q = self.sql(&format!(
            "SELECT p.start_ms, p.end_ms FROM coord_plans p WHERE p.end_ms > ? AND p.start_ms < ? \
             AND p.rc_name IN (SELECT a2.rc_name FROM coord_apps a2 WHERE a2.node_name IN (SELECT n.name {APP_NODES_UP})) \
             AND NOT EXISTS (SELECT 1 FROM coord_sessions s WHERE s.code = p.code AND s.from_plan = 1)"
        ));
        Ok(sqlx::query_as(&q)
            .bind(from)
            .bind(to)
            .bind(rc_name.to_string())
            .fetch_all(&mut **tx)
            .await?)
    }

    async fn allocate_code(
        &self,
        tx: &mut Tx,
        min_len: usize,
        max_fraction: f64,
        now: Millis,
        rng: &mut (impl Rng + Send),
    ) -> Result<String, PlaceError> {
        let used: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM coord_codes")
            .fetch_one(&mut **tx)
            .await?;
        let used = usize::try_from(used).unwrap_or(0);
        let len = logic::code_length_for(used, min_len);
        if used as f64 >= logic::code_space(len) as f64 * max_fraction {
            return Err(PlaceError::CodesExhausted);
        }
        for _ in 0..64 {
            let code = logic::random_code(len, rng);
            let taken = self
                .count(tx, "SELECT COUNT(*) FROM coord_codes WHERE code = ?", &code)
                .await?;
            if taken == 0 {
                let q = self.sql("INSERT INTO coord_codes (code, created_ms) VALUES (?, ?)");
                sqlx::query(&q)
                    .bind(code.clone())
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                return Ok(code);
            }
        }
        Err(PlaceError::CodesExhausted)
    }

    /// Deletes `code` from the code table when no session or plan holds it any more.
    async fn free_code_if_unused(&self, tx: &mut Tx, code: &str) -> Result<()> {
        let s = self
            .count(
                tx,
                "SELECT COUNT(*) FROM coord_sessions WHERE code = ?",
                code,
            )
            .await?;
        let p = self
            .count(tx, "SELECT COUNT(*) FROM coord_plans WHERE code = ?", code)
            .await?;
        if s == 0 && p == 0 {
            let q = self.sql("DELETE FROM coord_codes WHERE code = ?");
            sqlx::query(&q)
                .bind(code.to_string())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// The node confirmed a starting session (`CONNECT_TO_SESSION`): it is live at `ip:port`,
    /// and its creator is its first participant. `None` when `node` has no such starting session.
    pub async fn confirm_session(
        &self,
        node: &str,
        code: &str,
        ip: &str,
        port: &str,
        now: Millis,
    ) -> Result<Option<SessionRecord>> {
        let mut tx = self.begin().await?;
        let q = self.sql(
            "UPDATE coord_sessions SET state = 'live', ip = ?, port = ?, last_activity_ms = ? WHERE code = ? AND node_name = ? AND state = 'starting'",
        );
        let done = sqlx::query(&q)
            .bind(ip.to_string())
            .bind(port.to_string())
            .bind(now)
            .bind(code.to_string())
            .bind(node.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let q = self.sql(&format!(
            "SELECT {SESSION_COLS} FROM coord_sessions WHERE code = ?"
        ));
        let row = sqlx::query(&q)
            .bind(code.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let s = session_of(&row)?;
        self.insert_participant(&mut tx, code, &s.creator, &s.creator_coordinator, now)
            .await?;
        tx.commit().await?;
        Ok(Some(s))
    }

    /// Drops a starting session (the node refused or did not answer) and frees its code.
    /// `node`: only if it was placed there. `None` when there was no such starting session.
    pub async fn abandon_session(
        &self,
        code: &str,
        node: Option<&str>,
    ) -> Result<Option<SessionRecord>> {
        let mut tx = self.begin().await?;
        let q = self.sql(&format!(
            "SELECT {SESSION_COLS} FROM coord_sessions WHERE code = ? AND state = 'starting'"
        ));
        let Some(row) = sqlx::query(&q)
            .bind(code.to_string())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let s = session_of(&row)?;
        if node.is_some_and(|n| n != s.node_name) {
            return Ok(None);
        }
        let q = self.sql("DELETE FROM coord_sessions WHERE code = ? AND state = 'starting'");
        let done = sqlx::query(&q)
            .bind(code.to_string())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let q = self.sql("DELETE FROM coord_participants WHERE code = ?");
        sqlx::query(&q)
            .bind(code.to_string())
            .execute(&mut *tx)
            .await?;
        self.free_code_if_unused(&mut tx, code).await?;
        tx.commit().await?;
        Ok(Some(s))
    }

    /// One session.
    pub async fn session(&self, code: &str) -> Result<Option<SessionRecord>> {
        let q = self.sql(&format!(
            "SELECT {SESSION_COLS} FROM coord_sessions WHERE code = ?"
        ));
        let row = sqlx::query(&q)
            .bind(code.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(session_of).transpose()
    }

    /// Every session, by code.
    pub async fn sessions(&self) -> Result<Vec<SessionRecord>> {
        let q = format!("SELECT {SESSION_COLS} FROM coord_sessions ORDER BY code");
        let rows = sqlx::query(&q).fetch_all(&self.pool).await?;
        rows.iter().map(session_of).collect()
    }

    /// Sessions held by `node`.
    pub async fn sessions_on(&self, node: &str) -> Result<Vec<SessionRecord>> {
        let q = self.sql(&format!(
            "SELECT {SESSION_COLS} FROM coord_sessions WHERE node_name = ? ORDER BY code"
        ));
        let rows = sqlx::query(&q)
            .bind(node.to_string())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_of).collect()
    }

    async fn insert_participant(
        &self,
        tx: &mut Tx,
        code: &str,
        user: &str,
        coordinator: &str,
        now: Millis,
    ) -> Result<()> {
        let q = self.sql("SELECT COUNT(*) FROM coord_participants WHERE code = ? AND user_id = ?");
        let n: i64 = sqlx::query_scalar(&q)
            .bind(code.to_string())
            .bind(user.to_string())
            .fetch_one(&mut **tx)
            .await?;
        if n == 0 {
            let q = self.sql("INSERT INTO coord_participants (code, user_id, coordinator_id, joined_ms) VALUES (?, ?, ?, ?)");
            sqlx::query(&q)
                .bind(code.to_string())
                .bind(user.to_string())
                .bind(coordinator.to_string())
                .bind(now)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Records that `user` (talking to `coordinator`) was sent to session `code`.
    pub async fn add_participant(
        &self,
        code: &str,
        user: &str,
        coordinator: &str,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        self.insert_participant(&mut tx, code, user, coordinator, now)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes `user` from `code`; returns how many participants remain, `None` if they were not in it.
    pub async fn remove_participant(&self, code: &str, user: &str) -> Result<Option<u64>> {
        let q = self.sql("DELETE FROM coord_participants WHERE code = ? AND user_id = ?");
        let done = sqlx::query(&q)
            .bind(code.to_string())
            .bind(user.to_string())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        Ok(Some(self.participants(code).await?.len() as u64))
    }

    /// Who was sent to `code`.
    pub async fn participants(&self, code: &str) -> Result<Vec<Participant>> {
        let q = self.sql("SELECT user_id, coordinator_id FROM coord_participants WHERE code = ? ORDER BY joined_ms, user_id");
        let rows: Vec<(String, String)> = sqlx::query_as(&q)
            .bind(code.to_string())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|(user_id, coordinator_id)| Participant {
                user_id,
                coordinator_id,
            })
            .collect())
    }

    /// The coordinator a participant talks to.
    pub async fn participant_coordinator(&self, code: &str, user: &str) -> Result<Option<String>> {
        let q = self
            .sql("SELECT coordinator_id FROM coord_participants WHERE code = ? AND user_id = ?");
        Ok(sqlx::query_scalar(&q)
            .bind(code.to_string())
            .bind(user.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Ends session `code`: removes it and its participants and frees its code (unless its
    /// plan's slot still holds it). `None` when it did not exist (or another coordinator
    /// ended it first).
    pub async fn end_session(&self, code: &str) -> Result<Option<EndedSession>> {
        let mut tx = self.begin().await?;
        let q = self.sql(&format!(
            "SELECT {SESSION_COLS} FROM coord_sessions WHERE code = ?"
        ));
        let Some(row) = sqlx::query(&q)
            .bind(code.to_string())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(None);
        };
        let session = session_of(&row)?;
        let q = self.sql("DELETE FROM coord_sessions WHERE code = ?");
        if sqlx::query(&q)
            .bind(code.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected()
            != 1
        {
            return Ok(None);
        }
        let q = self.sql("SELECT user_id, coordinator_id FROM coord_participants WHERE code = ? ORDER BY joined_ms, user_id");
        let rows: Vec<(String, String)> = sqlx::query_as(&q)
            .bind(code.to_string())
            .fetch_all(&mut *tx)
            .await?;
        let q = self.sql("DELETE FROM coord_participants WHERE code = ?");
        sqlx::query(&q)
            .bind(code.to_string())
            .execute(&mut *tx)
            .await?;
        self.free_code_if_unused(&mut tx, code).await?;
        tx.commit().await?;
        Ok(Some(EndedSession {
            session,
            participants: rows
                .into_iter()
                .map(|(user_id, coordinator_id)| Participant {
                    user_id,
                    coordinator_id,
                })
                .collect(),
        }))
    }

    /// Nodes whose last heartbeat is older than `now - timeout` are marked down; returns their
    /// names (each node is returned by exactly one coordinator, the one whose update won).
    pub async fn mark_silent_nodes_down(
        &self,
        now: Millis,
        timeout: Millis,
    ) -> Result<Vec<String>> {
        let cutoff = now - timeout;
        let q = self.sql("SELECT name FROM coord_nodes WHERE status = 'up' AND last_seen_ms < ?");
        let names: Vec<String> = sqlx::query_scalar(&q)
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?;
        let mut down = Vec::new();
        for name in names {
            let q = self.sql("UPDATE coord_nodes SET status = 'down', link_owner = '' WHERE name = ? AND status = 'up' AND last_seen_ms < ?");
            let done = sqlx::query(&q)
                .bind(name.clone())
                .bind(cutoff)
                .execute(&self.pool)
                .await?;
            if done.rows_affected() == 1 {
                down.push(name);
            }
        }
        Ok(down)
    }

    /// Marks a node down at once (its link closed for good, or an operator said so).
    pub async fn mark_node_down(&self, name: &str) -> Result<bool> {
        let q = self.sql("UPDATE coord_nodes SET status = 'down', link_owner = '' WHERE name = ? AND status = 'up'");
        Ok(sqlx::query(&q)
            .bind(name.to_string())
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    /// Codes of starting sessions created before `cutoff` (their node did not answer).
    pub async fn stale_starting(&self, cutoff: Millis) -> Result<Vec<String>> {
        let q = self.sql("SELECT code FROM coord_sessions WHERE state = 'starting' AND created_ms < ? ORDER BY code");
        Ok(sqlx::query_scalar(&q)
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Codes of live sessions with no activity since `cutoff`.
    pub async fn idle_sessions(&self, cutoff: Millis) -> Result<Vec<String>> {
        let q = self.sql("SELECT code FROM coord_sessions WHERE state = 'live' AND last_activity_ms < ? ORDER BY code");
        Ok(sqlx::query_scalar(&q)
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Codes of sessions whose planned slot ended by `now`.
    pub async fn overdue_sessions(&self, now: Millis) -> Result<Vec<String>> {
        let q = self.sql(
            "SELECT code FROM coord_sessions WHERE ends_ms > 0 AND ends_ms <= ? ORDER BY code",
        );
        Ok(sqlx::query_scalar(&q)
            .bind(now)
            .fetch_all(&self.pool)
            .await?)
    }

    // ---------------------------------------------------------------- plans

    /// Whether one more session of `rc_name` fits at every moment of `[from, to)` on the
    /// servers of the app (up, or listed in servers.json), counting plans not yet started and
    /// sessions (one without a plan is assumed to run `unplanned_ms` from `now`). `except`: a
    /// session (and so its plan) not to count, when asking whether that one may run longer.
    #[allow(clippy::too_many_arguments)]
    async fn slot_has_room(
        &self,
        tx: &mut Tx,
        rc_name: &str,
        from: Millis,
        to: Millis,
        unplanned_ms: Millis,
        now: Millis,
        except: Option<&str>,
    ) -> Result<bool> {
        let (capacity, booked) = self
            .bookings(tx, rc_name, from, to, unplanned_ms, now, except)
            .await?;
        Ok(logic::slot_fits(&booked, from, to, capacity))
    }

    /// What [`Registry::slot_has_room`] weighs: the capacity of `rc_name`'s servers and the
    /// slots booked on them that overlap `[from, to)`. Loaded once, it answers for any slot
    /// inside `[from, to)` (the planning slot list asks for a whole day at once).
    #[allow(clippy::too_many_arguments)]
    async fn bookings(
        &self,
        tx: &mut Tx,
        rc_name: &str,
        from: Millis,
        to: Millis,
        unplanned_ms: Millis,
        now: Millis,
        except: Option<&str>,
    ) -> Result<(u64, Vec<(Millis, Millis)>)> {
        let q = self.sql(&format!("SELECT n.max_sessions {APP_NODES_UP}"));
        let maxes: Vec<i64> = sqlx::query_scalar(&q)
            .bind(rc_name.to_string())
            .fetch_all(&mut **tx)
            .await?;
        let capacity: u64 = maxes.iter().map(|&m| m.max(0) as u64).sum();
        // Started plans are left out here: their sessions are counted below.
        let mut booked = self.plans_on(tx, rc_name, from, to).await?;
        let q = self.sql(&format!(
            "SELECT {SESSION_COLS} FROM coord_sessions WHERE node_name IN \
             (SELECT n.name {APP_NODES_UP})"
        ));
        for row in sqlx::query(&q)
            .bind(rc_name.to_string())
            .fetch_all(&mut **tx)
            .await?
        {
            let s = session_of(&row)?;
            if except != Some(s.code.as_str()) {
                let until = s.ends_ms.unwrap_or(s.created_ms.max(now) + unplanned_ms);
                booked.push((s.created_ms, until));
            }
        }
        Ok((capacity, booked))
    }

    /// Extends live planned session `code`, whose slot ends at `end`, to `new_end` if the
    /// servers of its app have room for it over `[end, new_end)` (as [`Registry::plan_session`]
    /// counts, the session itself left out). Its plan's slot moves too, so the code stays
    /// held and the session ends at `new_end`. `Ok(false)`: no live session `code` ends at
    /// `end` any more (it ended, or was just extended by someone else).
    pub async fn extend_session(
        &self,
        code: &str,
        end: Millis,
        new_end: Millis,
        unplanned_ms: Millis,
        now: Millis,
    ) -> Result<bool, PlaceError> {
        let mut tx = self.begin().await?;
        let q = self.sql(&format!(
            "SELECT {SESSION_COLS} FROM coord_sessions WHERE code = ? AND state = 'live' AND ends_ms = ?"
        ));
        let Some(row) = sqlx::query(&q)
            .bind(code.to_string())
            .bind(end)
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        let session = session_of(&row)?;
        let room = self
            .slot_has_room(
                &mut tx,
                &session.rc_name,
                end,
                new_end,
                unplanned_ms,
                now,
                Some(code),
            )
            .await?;
        if !room {
            return Err(PlaceError::Busy);
        }
        let q = self.sql("UPDATE coord_sessions SET ends_ms = ? WHERE code = ? AND ends_ms = ?");
        sqlx::query(&q)
            .bind(new_end)
            .bind(code.to_string())
            .bind(end)
            .execute(&mut *tx)
            .await?;
        let q = self.sql("UPDATE coord_plans SET end_ms = ? WHERE code = ?");
        sqlx::query(&q)
            .bind(new_end)
            .bind(code.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Whether live planned session `s` could run on until `new_end` (as
    /// [`Registry::extend_session`] would decide now, changing nothing).
    pub async fn could_extend(
        &self,
        s: &SessionRecord,
        new_end: Millis,
        unplanned_ms: Millis,
        now: Millis,
    ) -> Result<bool> {
        let Some(end) = s.ends_ms else {
            return Ok(false);
        };
        // A read: no registry lock; dropping the transaction rolls it back.
        let mut tx = self.pool.begin().await?;
        self.slot_has_room(
            &mut tx,
            &s.rc_name,
            end,
            new_end,
            unplanned_ms,
            now,
            Some(&s.code),
        )
        .await
    }

    /// Live planned sessions whose slot ends in `(now, until]` and whose `SESSION_ENDING` for
    /// that end has not been sent.
    pub async fn sessions_ending(&self, now: Millis, until: Millis) -> Result<Vec<SessionRecord>> {
        let q = self.sql(&format!(
            "SELECT {SESSION_COLS} FROM coord_sessions WHERE state = 'live' AND ends_ms > ? AND ends_ms <= ? \
             AND notice_ends_ms <> ends_ms ORDER BY code"
        ));
        let rows = sqlx::query(&q)
            .bind(now)
            .bind(until)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(session_of).collect()
    }

    /// Records that `SESSION_ENDING` for session `code` ending at `end` is being sent; `false`
    /// when it already was (another coordinator won) or the end moved meanwhile.
    pub async fn claim_ending_notice(&self, code: &str, end: Millis) -> Result<bool> {
        let q = self.sql(
            "UPDATE coord_sessions SET notice_ends_ms = ? WHERE code = ? AND ends_ms = ? AND notice_ends_ms <> ?",
        );
        Ok(sqlx::query(&q)
            .bind(end)
            .bind(code.to_string())
            .bind(end)
            .bind(end)
            .execute(&self.pool)
            .await?
            .rows_affected()
            == 1)
    }

    /// One plan.
    pub async fn plan(&self, code: &str) -> Result<Option<Plan>> {
        let q = self.sql(
            "SELECT code, rc_name, start_ms, end_ms, planned_by FROM coord_plans WHERE code = ?",
        );
        let row = sqlx::query(&q)
            .bind(code.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(plan_of).transpose()
    }

    /// Every plan, by start.
    pub async fn plans(&self) -> Result<Vec<Plan>> {
        let rows = sqlx::query("SELECT code, rc_name, start_ms, end_ms, planned_by FROM coord_plans ORDER BY start_ms, code")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(plan_of).collect()
    }

    /// Stage 1: loads plans read from `sessions_planned.json` (those already known, or whose
    /// code is taken, are skipped; returns how many were added).
    pub async fn import_plans(&self, plans: &[Plan], now: Millis) -> Result<usize> {
        let mut tx = self.begin().await?;
        let mut added = 0;
        for p in plans {
            if p.end_ms <= now {
                continue;
            }
            let taken = self
                .count(
                    &mut tx,
                    "SELECT COUNT(*) FROM coord_codes WHERE code = ?",
                    &p.code,
                )
                .await?;
            if taken > 0 {
                continue;
            }
            let q = self.sql("INSERT INTO coord_codes (code, created_ms) VALUES (?, ?)");
            sqlx::query(&q)
                .bind(p.code.clone())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let q = self.sql("INSERT INTO coord_plans (code, rc_name, start_ms, end_ms, planned_by, created_ms) VALUES (?, ?, ?, ?, ?, ?)");
            sqlx::query(&q)
                .bind(p.code.clone())
                .bind(p.rc_name.clone())
                .bind(p.start_ms)
                .bind(p.end_ms)
                .bind(p.planned_by.clone())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            added += 1;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Removes plans whose slot is over and frees their codes (unless a session still holds
    /// one); returns them.
    pub async fn expire_plans(&self, now: Millis) -> Result<Vec<Plan>> {
        let q = self.sql(
            "SELECT code, rc_name, start_ms, end_ms, planned_by FROM coord_plans WHERE end_ms <= ?",
        );
        let rows = sqlx::query(&q).bind(now).fetch_all(&self.pool).await?;
        let mut gone = Vec::new();
        for row in &rows {
            let plan = plan_of(row)?;
            let mut tx = self.begin().await?;
            let q = self.sql("DELETE FROM coord_plans WHERE code = ?");
            if sqlx::query(&q)
                .bind(plan.code.clone())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1
            {
                self.free_code_if_unused(&mut tx, &plan.code).await?;
                gone.push(plan);
            }
            tx.commit().await?;
        }
        Ok(gone)
    }

    /// Codes in use (live, starting and planned sessions).
    pub async fn codes_in_use(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM coord_codes")
            .fetch_one(&self.pool)
            .await?;
        Ok(n as u64)
    }

    // ---------------------------------------------------------------- outbox

    /// Queues `body` for the coordinator `owner` to deliver to a client or node it holds.
    pub async fn push_outbox(
        &self,
        owner: &str,
        target_kind: &str,
        target: &str,
        body: &str,
        now: Millis,
    ) -> Result<()> {
        let q = self.sql("INSERT INTO coord_outbox (coordinator_id, target_kind, target, body, created_ms) VALUES (?, ?, ?, ?, ?)");
        sqlx::query(&q)
            .bind(owner.to_string())
            .bind(target_kind.to_string())
            .bind(target.to_string())
            .bind(body.to_string())
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Takes (removes and returns, oldest first) up to `limit` messages queued for `owner`.
    pub async fn take_outbox(&self, owner: &str, limit: usize) -> Result<Vec<OutboxItem>> {
        let q = self.sql("SELECT id, target_kind, target, body FROM coord_outbox WHERE coordinator_id = ? ORDER BY id LIMIT ?");
        let rows = sqlx::query(&q)
            .bind(owner.to_string())
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let q = self.sql("DELETE FROM coord_outbox WHERE id = ?");
            if sqlx::query(&q)
                .bind(id)
                .execute(&self.pool)
                .await?
                .rows_affected()
                == 1
            {
                out.push(OutboxItem {
                    target_kind: row.try_get(1)?,
                    target: row.try_get(2)?,
                    body: text(row, 3)?,
                });
            }
        }
        Ok(out)
    }

    /// Drops queued messages older than `cutoff` (their coordinator is gone).
    pub async fn prune_outbox(&self, cutoff: Millis) -> Result<u64> {
        let q = self.sql("DELETE FROM coord_outbox WHERE created_ms < ?");
        Ok(sqlx::query(&q)
            .bind(cutoff)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_for_postgres() {
        assert_eq!(
            Backend::of_url("postgres://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::of_url("mysql://root@h/db").unwrap(),
            Backend::MySql
        );
        assert_eq!(Backend::of_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert!(Backend::of_url("redis://x").is_err());
    }
}
