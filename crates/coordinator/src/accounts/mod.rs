//! Accounts: users, roles, login sessions and quotas (docs/accounts.md), in the registry's
//! database (tables `acc_*`, migration 0003).
//!
//! * [`Accounts`]: sign-up, approval, login sessions (only a token's SHA-256 is stored),
//!   password changes, quota defaults and overrides, the usage that quotas count.
//! * [`login_limits`]: lock-outs and delays of failed logins, as numbers.
//! * [`password`]: argon2id hashing and the input rules (e-mail, name, password).
//! * [`quota`]: a user's effective quota and what is left of it.
//! * [`authorize`]: who may create, plan and extend sessions (on [`crate::Coordinator`]).
//! * [`ended`]: login sessions that end close the WebSockets acting as them.
//! * [`csrf`]: state-changing API requests must be JSON and from this site's pages.
//! * [`http`]: the REST API (`/api/auth/*`, `/api/admin/*`) and the helpers other routes use
//!   ([`http::require`], [`http::ApiError`], [`http::JsonBody`]).
//!
//! Like the rest of the coordinator, every function takes `now` (epoch ms) from its caller.

mod admin;
pub mod authorize;
pub mod csrf;
mod db;
pub mod ended;
pub mod first_run;
pub mod http;
pub mod login_limits;
mod logins;
pub mod password;
pub mod quota;
pub mod tokens;

use std::fmt;
use std::str::FromStr;

use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;
use tokio::sync::Semaphore;

use crate::clock::Millis;
use crate::config::Settings;
use crate::store::{Backend, Registry};

pub use admin::MAX_REASON_CHARS;
pub use authorize::{Grant, UseKind};
pub use login_limits::LOGIN_DELAY_BASE_MS;
pub use logins::{Login, LOCAL_ADDRESS};
pub use quota::{QuotaRefusal, QuotaStatus, Reservation};

/// What an account may do (docs/roles.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including approving accounts and setting quotas.
    Admin,
    /// Creates and plans sessions; sees, moves and cancels everyone's plans.
    Supervisor,
    /// Creates and plans sessions within quota; sees, moves and cancels their own plans.
    Agent,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 3] = [Role::Admin, Role::Supervisor, Role::Agent];

    /// The wire name (`"admin"`, `"supervisor"`, `"agent"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Agent => "agent",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("role {s:?} is not agent, supervisor or admin"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Signed up, waiting for an administrator.
    Pending,
    /// Approved: may log in.
    Active,
    /// Refused (with a reason the applicant sees at login).
    Rejected,
}

impl Status {
    /// The wire name (`"pending"`, `"active"`, `"rejected"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Rejected => "rejected",
        }
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Status, String> {
        [Status::Pending, Status::Active, Status::Rejected]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("status {s:?} is not pending, active or rejected"))
    }
}

/// An account (never its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: i64,
    /// Its e-mail (lower case).
    pub email: String,
    /// Its display name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its state.
    pub status: Status,
    /// Why it was rejected (only when `status` is `Rejected`).
    pub reject_reason: Option<String>,
    /// Its IANA time zone (`"Europe/Moscow"`; `"UTC"` when none was given).
    pub time_zone: String,
    /// When it signed up (epoch ms).
    pub created_ms: Millis,
}

impl User {
    /// The user object of docs/accounts.md: `{"id","email","name","role","status",
    /// "reject_reason","time_zone","created"}` (`created` as UTC ISO-8601).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "role": self.role,
            "status": self.status,
            "reject_reason": self.reject_reason,
            "time_zone": self.time_zone,
            "created": iso_utc(self.created_ms),
        })
    }
}

/// Epoch ms as `"2026-11-22T10:00:00Z"`.
pub fn iso_utc(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Session limits: at most `sessions_per_period` sessions created or planned in the last
/// `period_hours`, each at most `max_minutes` long (`None`: unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Sessions per period (`None`: unlimited).
    pub sessions_per_period: Option<u64>,
    /// The period's length in hours (1 to 8784).
    pub period_hours: u64,
    /// The longest session in minutes (`None`: unlimited).
    pub max_minutes: Option<u64>,
}

/// Largest number a quota field may hold.
pub const QUOTA_MAX_SESSIONS: u64 = 1_000_000;
/// Longest quota period (a leap year).
pub const QUOTA_MAX_PERIOD_HOURS: u64 = 24 * 366;
/// Largest `max_minutes` (a year).
pub const QUOTA_MAX_MINUTES: u64 = 60 * 24 * 366;

impl Quota {
    /// Checks ranges; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        if self
            .sessions_per_period
            .is_some_and(|n| n > QUOTA_MAX_SESSIONS)
        {
            return Err(format!(
                "sessions_per_period must be 0 to {QUOTA_MAX_SESSIONS} or null (unlimited)"
            ));
        }
        if !(1..=QUOTA_MAX_PERIOD_HOURS).contains(&self.period_hours) {
            return Err(format!(
                "period_hours must be 1 to {QUOTA_MAX_PERIOD_HOURS}"
            ));
        }
        if self
            .max_minutes
            .is_some_and(|m| !(1..=QUOTA_MAX_MINUTES).contains(&m))
        {
            return Err(format!(
                "max_minutes must be 1 to {QUOTA_MAX_MINUTES} or null (unlimited)"
            ));
        }
        Ok(())
    }
}

/// Why an account operation failed (the REST API maps each to a status and code).
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// An input breaks a rule: `code` is the API's error code (`bad_email`, `weak_password`,
    /// `bad_name`, `bad_time_zone`, `bad_request`), `message` says which and why.
    #[error("{message}")]
    Invalid {
        /// The API's error code.
        code: &'static str,
        /// For people.
        message: String,
    },
    /// Another account has that e-mail.
    #[error("an account with this e-mail already exists")]
    EmailTaken,
    /// Unknown e-mail or wrong password (one answer for both).
    #[error("wrong e-mail or password")]
    BadCredentials,
    /// The account waits for approval.
    #[error("the account waits for an administrator's approval")]
    Pending,
    /// The account was rejected; the reason.
    #[error("{0}")]
    Rejected(String),
    /// Too many failed logins from this address (for this e-mail, or for any); retry after
    /// this many ms.
    #[error("too many failed logins from your address; try again later")]
    LockedOut(Millis),
    /// This account had many failed logins lately: each attempt waits a growing delay;
    /// retry after this many ms.
    #[error("this account had many failed logins lately: wait a moment before the next try")]
    Delayed(Millis),
    /// Too many password checks are waiting: retry in a second.
    #[error("the server is checking many passwords right now; try again in a second")]
    Busy,
    /// Too many sign-ups from this address; retry after this many ms.
    #[error("too many sign-ups from this address; try again later")]
    RateLimited(Millis),
    /// No such account.
    #[error("no such account")]
    NotFound,
    /// Not allowed (e.g. an administrator demoting themself).
    #[error("{0}")]
    Forbidden(String),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// Hashing failed (should not happen).
    #[error("password hashing: {0}")]
    Hash(String),
}

impl AccountError {
    fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        AccountError::Invalid {
            code,
            message: message.into(),
        }
    }
}

/// Result of account operations.
pub type AccResult<T> = Result<T, AccountError>;

/// Concurrent password hashes (each takes ~19 MiB and a core for tens of ms); up to
/// `login_hash_queue` more wait for one.
pub const HASHING_SLOTS: usize = 4;

/// The accounts, over the registry's connection pool.
pub struct Accounts {
    pool: AnyPool,
    backend: Backend,
    settings: Settings,
    hashing: Semaphore,
    /// Places in the hashing queue: running plus waiting jobs.
    admission: Semaphore,
    /// Password verifications run (logins and password changes).
    verifications: Counter,
    /// Login sessions that ended, for the connections acting as them.
    ended: tokio::sync::broadcast::Sender<ended::Ended>,
}

impl fmt::Debug for Accounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// Accounts in `registry`'s database, with the limits of `settings`.
    pub fn new(registry: &Registry, settings: &Settings) -> Accounts {
        Accounts {
            pool: registry.pool().clone(),
            backend: registry.backend(),
            settings: settings.clone(),
            hashing: Semaphore::new(HASHING_SLOTS),
            admission: Semaphore::new(HASHING_SLOTS.saturating_add(settings.login_hash_queue)),
            verifications: Counter::default(),
            ended: ended::channel(),
        }
    }

    /// The counter of password verifications run (logins and password changes), as the
    /// metric `orbita_coordinator_password_verifications_total` exports it.
    pub fn password_verifications(&self) -> &Counter {
        &self.verifications
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// How long a login session lasts, in ms.
    pub fn session_ms(&self) -> Millis {
        Settings::ms(self.settings.session_hours.saturating_mul(3600))
    }
}
