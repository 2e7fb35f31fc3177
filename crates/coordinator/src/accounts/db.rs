//! The SQL of the accounts (tables `acc_*`, migrations `0003_accounts.sql`). Written once with
//! `?` placeholders (rewritten to `$n` for PostgreSQL); quota numbers are stored with `-1`
//! for "unlimited", a reject reason with `''` for "none".

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::ended::{self, Ended};
use super::login_limits::LoginLimits;
use super::{AccResult, AccountError, Accounts, Quota, Role, Status, User};
use crate::clock::Millis;

const USER_COLS: &str =
    "id, email, name, role, status, reject_reason, time_zone, created_ms, password_hash";

/// Login sessions one user may hold at once (the oldest end first).
pub(super) const MAX_SESSIONS_PER_USER: i64 = 50;

fn user_of(row: &AnyRow) -> AccResult<(User, String)> {
    let role: String = row.try_get(3)?;
    let status: String = row.try_get(4)?;
    let reason: String = row.try_get(5)?;
    let bad = |e: String| AccountError::Db(sqlx::Error::Decode(e.into()));
    Ok((
        User {
            id: row.try_get(0)?,
            email: row.try_get(1)?,
            name: row.try_get(2)?,
            role: role.parse().map_err(bad)?,
            status: status.parse().map_err(bad)?,
            reject_reason: (!reason.is_empty()).then_some(reason),
            time_zone: row.try_get(6)?,
            created_ms: row.try_get(7)?,
        },
        row.try_get(8)?,
    ))
}

fn opt(n: Option<u64>) -> i64 {
    n.map_or(-1, |n| n as i64)
}

fn unopt(n: i64) -> Option<u64> {
    (n >= 0).then_some(n as u64)
}

fn quota_of(row: &AnyRow) -> AccResult<Quota> {
    Ok(Quota {
        sessions_per_period: unopt(row.try_get(0)?),
        period_hours: row.try_get::<i64, _>(1)?.max(1) as u64,
        max_minutes: unopt(row.try_get(2)?),
    })
}

impl Accounts {
    /// `?` placeholders as the backend wants them.
    pub(super) fn sql(&self, q: &str) -> String {
        self.backend.sql(q)
    }

    /// A transaction holding the registry-wide lock row (serialises against every other
    /// writer of the registry, on every backend).
    pub(super) async fn locked(&self) -> AccResult<Transaction<'static, Any>> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE coord_lock SET n = n + 1 WHERE name = 'global'")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    /// An account and its password hash, by id.
    pub(super) async fn user_row(&self, id: i64) -> AccResult<Option<(User, String)>> {
        let q = self.sql(&format!("SELECT {USER_COLS} FROM acc_users WHERE id = ?"));
        let row = sqlx::query(&q).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(user_of).transpose()
    }

    /// An account and its password hash, by (normalised) e-mail.
    pub(super) async fn user_row_by_email(&self, email: &str) -> AccResult<Option<(User, String)>> {
        let q = self.sql(&format!(
            "SELECT {USER_COLS} FROM acc_users WHERE email = ?"
        ));
        let row = sqlx::query(&q)
            .bind(email.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_of).transpose()
    }

    /// An account by id.
    pub async fn user(&self, id: i64) -> AccResult<Option<User>> {
        Ok(self.user_row(id).await?.map(|(u, _)| u))
    }

    /// An account by e-mail (any case).
    pub async fn user_by_email(&self, email: &str) -> AccResult<Option<User>> {
        let email = email.trim().to_lowercase();
        Ok(self.user_row_by_email(&email).await?.map(|(u, _)| u))
    }

    /// Accounts with `status` (all when `None`), by id, `limit` from `offset`.
    pub async fn users(
        &self,
        status: Option<Status>,
        offset: u64,
        limit: u64,
    ) -> AccResult<Vec<User>> {
        let filter = if status.is_some() {
            "WHERE status = ?"
        } else {
            ""
        };
        let q = self.sql(&format!(
            "SELECT {USER_COLS} FROM acc_users {filter} ORDER BY id LIMIT {limit} OFFSET {offset}"
        ));
        let mut query = sqlx::query(&q);
        if let Some(s) = status {
            query = query.bind(s.as_str().to_string());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(|r| user_of(r).map(|(u, _)| u)).collect()
    }

    /// Stores a new account (e-mail already normalised, password already hashed).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn insert_user(
        &self,
        mut tx: Option<&mut Transaction<'static, Any>>,
        email: &str,
        name: &str,
        password_hash: &str,
        role: Role,
        status: Status,
        time_zone: &str,
        now: Millis,
    ) -> AccResult<User> {
        let q = self.sql(
            "INSERT INTO acc_users (email, name, password_hash, role, status, reject_reason, time_zone, created_ms) \
             VALUES (?, ?, ?, ?, ?, '', ?, ?)",
        );
        let query = sqlx::query(&q)
            .bind(email.to_string())
            .bind(name.to_string())
            .bind(password_hash.to_string())
            .bind(role.as_str().to_string())
            .bind(status.as_str().to_string())
            .bind(time_zone.to_string())
            .bind(now);
        let result = match tx.as_deref_mut() {
            Some(tx) => query.execute(&mut **tx).await,
            None => query.execute(&self.pool).await,
        };
        match result {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(AccountError::EmailTaken)
            }
            Err(e) => return Err(e.into()),
        }
        let q = self.sql("SELECT id FROM acc_users WHERE email = ?");
        let query = sqlx::query_scalar::<_, i64>(&q).bind(email.to_string());
        let id = match tx {
            Some(tx) => query.fetch_one(&mut **tx).await?,
            None => query.fetch_one(&self.pool).await?,
        };
        Ok(User {
            id,
            email: email.to_string(),
            name: name.to_string(),
            role,
            status,
            reject_reason: None,
            time_zone: time_zone.to_string(),
            created_ms: now,
        })
    }

    /// Sets an account's status, role and reject reason; `false` when there is no such account.
    pub(super) async fn set_state(
        &self,
        id: i64,
        status: Status,
        role: Role,
        reason: &str,
    ) -> AccResult<bool> {
        let q =
            self.sql("UPDATE acc_users SET status = ?, role = ?, reject_reason = ? WHERE id = ?");
        Ok(sqlx::query(&q)
            .bind(status.as_str().to_string())
            .bind(role.as_str().to_string())
            .bind(reason.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
    }

    pub(super) async fn set_password_hash(&self, id: i64, hash: &str) -> AccResult<()> {
        let q = self.sql("UPDATE acc_users SET password_hash = ? WHERE id = ?");
        sqlx::query(&q)
            .bind(hash.to_string())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether an active administrator exists.
    pub(super) async fn admin_exists(&self, tx: &mut Transaction<'static, Any>) -> AccResult<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM acc_users WHERE role = 'admin' AND status = 'active'",
        )
        .fetch_one(&mut **tx)
        .await?;
        Ok(n > 0)
    }

    // ------------------------------------------------------------------ login sessions

    /// Stores a login session (and drops expired ones, and the user's oldest beyond
    /// [`MAX_SESSIONS_PER_USER`]).
    pub(super) async fn insert_session(
        &self,
        user_id: i64,
        token_hash: &str,
        now: Millis,
        expires: Millis,
    ) -> AccResult<()> {
        let q = self.sql("DELETE FROM acc_sessions WHERE expires_ms <= ?");
        sqlx::query(&q).bind(now).execute(&self.pool).await?;
        let q = self.sql(
            "INSERT INTO acc_sessions (token_hash, user_id, created_ms, expires_ms) VALUES (?, ?, ?, ?)",
        );
        sqlx::query(&q)
            .bind(token_hash.to_string())
            .bind(user_id)
            .bind(now)
            .bind(expires)
            .execute(&self.pool)
            .await?;
        let q = self.sql(&format!(
            "SELECT token_hash FROM acc_sessions WHERE user_id = ? ORDER BY created_ms DESC, token_hash \
             LIMIT 1000 OFFSET {MAX_SESSIONS_PER_USER}"
        ));
        let extra: Vec<String> = sqlx::query_scalar(&q)
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        for h in extra {
            self.delete_session(&h, ended::TOO_MANY_LOGINS).await?;
        }
        Ok(())
    }

    /// The active account a login session (by token hash) belongs to, while it lasts.
    pub(super) async fn session_user(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> AccResult<Option<User>> {
        Ok(self.session_row(token_hash, now).await?.map(|(u, _)| u))
    }

    /// [`Accounts::session_user`] and when the session expires.
    pub(super) async fn session_row(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> AccResult<Option<(User, Millis)>> {
        let cols: String = USER_COLS
            .split(", ")
            .map(|c| format!("u.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let q = self.sql(&format!(
            "SELECT {cols}, s.expires_ms FROM acc_sessions s JOIN acc_users u ON u.id = s.user_id \
             WHERE s.token_hash = ? AND s.expires_ms > ? AND u.status = 'active'"
        ));
        let row = sqlx::query(&q)
            .bind(token_hash.to_string())
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let (user, _) = user_of(&row)?;
        Ok(Some((user, row.try_get(9)?)))
    }

    /// Ends one login session (and tells its connections: `reason`).
    pub(super) async fn delete_session(
        &self,
        token_hash: &str,
        reason: &'static str,
    ) -> AccResult<()> {
        let q = self.sql("DELETE FROM acc_sessions WHERE token_hash = ?");
        sqlx::query(&q)
            .bind(token_hash.to_string())
            .execute(&self.pool)
            .await?;
        self.tell_ended(Ended::One {
            token_hash: token_hash.to_string(),
            reason,
        });
        Ok(())
    }

    /// Ends a user's login sessions but the one with hash `keep` (and tells their
    /// connections: `reason`); returns how many ended.
    pub(super) async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
        reason: &'static str,
    ) -> AccResult<u64> {
        let q = self.sql("DELETE FROM acc_sessions WHERE user_id = ? AND token_hash <> ?");
        let n = sqlx::query(&q)
            .bind(user_id)
            .bind(keep.unwrap_or("").to_string())
            .execute(&self.pool)
            .await?
            .rows_affected();
        self.tell_ended(Ended::User {
            user_id,
            keep: keep.map(str::to_string),
            reason,
        });
        Ok(n)
    }

    /// Live login sessions of a user.
    pub async fn session_count(&self, user_id: i64, now: Millis) -> AccResult<i64> {
        let q = self.sql("SELECT COUNT(*) FROM acc_sessions WHERE user_id = ? AND expires_ms > ?");
        Ok(sqlx::query_scalar(&q)
            .bind(user_id)
            .bind(now)
            .fetch_one(&self.pool)
            .await?)
    }

    // ------------------------------------------------------------------ login failures

    /// Reserves a login attempt of `email` from `addr` before its password is checked, in one
    /// transaction under the registry lock (so parallel attempts, also on other coordinators
    /// sharing the database, are counted one after the other): refuses it while a lock-out
    /// of that address (for that account, or for every account) is in force, or while the
    /// account's growing delay runs; else stores it as a failure, locking the address out
    /// when that failure reaches a limit. A login that then succeeds takes the failure back
    /// ([`Accounts::attempt_succeeded`]).
    pub(super) async fn reserve_attempt(
        &self,
        email: &str,
        addr: &str,
        now: Millis,
        limits: &LoginLimits,
    ) -> AccResult<()> {
        let mut tx = self.locked().await?;
        // Failures older than the window count for nothing (any e-mail's: the table stays as
        // small as the failures of one window), nor do ended lock-outs.
        let q = self.sql("DELETE FROM acc_login_failures WHERE at_ms <= ?");
        sqlx::query(&q)
            .bind(now - limits.window_ms)
            .execute(&mut *tx)
            .await?;
        let q = self.sql("DELETE FROM acc_login_locks WHERE until_ms <= ?");
        sqlx::query(&q).bind(now).execute(&mut *tx).await?;
        let (pair, whole) = (pair_key(email, addr), address_key(addr));
        let q = self.sql("SELECT MAX(until_ms) FROM acc_login_locks WHERE lock_key IN (?, ?)");
        let until: Option<Millis> = sqlx::query_scalar(&q)
            .bind(pair.clone())
            .bind(whole.clone())
            .fetch_one(&mut *tx)
            .await?;
        if let Some(until) = until {
            tx.commit().await?;
            return Err(AccountError::LockedOut(until - now));
        }
        let q = self.sql("SELECT COUNT(*), MAX(at_ms) FROM acc_login_failures WHERE email = ?");
        let row = sqlx::query(&q)
            .bind(email.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let (failures, last): (i64, Option<Millis>) = (row.try_get(0)?, row.try_get(1)?);
        if let Some(wait) = limits.delay_ms(failures) {
            let ready = last.unwrap_or(now) + wait;
            if now < ready {
                tx.commit().await?;
                return Err(AccountError::Delayed(ready - now));
            }
        }
        let q = self.sql("INSERT INTO acc_login_failures (email, addr, at_ms) VALUES (?, ?, ?)");
        sqlx::query(&q)
            .bind(email.to_string())
            .bind(addr.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // (Two counts: MySQL's SUM is a DECIMAL the Any driver cannot read as an integer.)
        let q = self.sql("SELECT COUNT(*) FROM acc_login_failures WHERE addr = ?");
        let from_addr: i64 = sqlx::query_scalar(&q)
            .bind(addr.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let q = self.sql("SELECT COUNT(*) FROM acc_login_failures WHERE addr = ? AND email = ?");
        let from_pair: i64 = sqlx::query_scalar(&q)
            .bind(addr.to_string())
            .bind(email.to_string())
            .fetch_one(&mut *tx)
            .await?;
        let until = now + limits.lockout_ms;
        if from_pair >= i64::from(limits.max_failures) {
            set_lock(&mut tx, &self.backend, &pair, until).await?;
        }
        if from_addr >= i64::from(limits.max_failures_per_address) {
            set_lock(&mut tx, &self.backend, &whole, until).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// After a right password: forgets the failures of `email` from `addr` (the reserved one
    /// too) and that address's lock-out for that account.
    pub(super) async fn attempt_succeeded(&self, email: &str, addr: &str) -> AccResult<()> {
        let mut tx = self.locked().await?;
        let q = self.sql("DELETE FROM acc_login_failures WHERE email = ? AND addr = ?");
        sqlx::query(&q)
            .bind(email.to_string())
            .bind(addr.to_string())
            .execute(&mut *tx)
            .await?;
        let q = self.sql("DELETE FROM acc_login_locks WHERE lock_key = ?");
        sqlx::query(&q)
            .bind(pair_key(email, addr))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    // ------------------------------------------------------------------ sign-ups per address

    /// Sign-ups from `addr` since `since`, and the oldest of them.
    pub(super) async fn signups_since(
        &self,
        addr: &str,
        since: Millis,
    ) -> AccResult<(i64, Option<Millis>)> {
        let q = self.sql("DELETE FROM acc_signups WHERE at_ms <= ?");
        sqlx::query(&q).bind(since).execute(&self.pool).await?;
        let q = self.sql("SELECT COUNT(*), MIN(at_ms) FROM acc_signups WHERE addr = ?");
        let row = sqlx::query(&q)
            .bind(addr.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }

    pub(super) async fn record_signup(&self, addr: &str, now: Millis) -> AccResult<()> {
        let q = self.sql("INSERT INTO acc_signups (addr, at_ms) VALUES (?, ?)");
        sqlx::query(&q)
            .bind(addr.to_string())
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------------ quotas and usage

    /// The quota an administrator set for `role`, if any.
    pub(super) async fn stored_role_quota(&self, role: Role) -> AccResult<Option<Quota>> {
        let q = self.sql(
            "SELECT sessions_per_period, period_hours, max_minutes FROM acc_role_quotas WHERE role = ?",
        );
        let row = sqlx::query(&q)
            .bind(role.as_str().to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(quota_of).transpose()
    }

    pub(super) async fn store_role_quota(&self, role: Role, quota: &Quota) -> AccResult<()> {
        let mut tx = self.locked().await?;
        let q = self.sql("DELETE FROM acc_role_quotas WHERE role = ?");
        sqlx::query(&q)
            .bind(role.as_str().to_string())
            .execute(&mut *tx)
            .await?;
        let q = self.sql(
            "INSERT INTO acc_role_quotas (role, sessions_per_period, period_hours, max_minutes) VALUES (?, ?, ?, ?)",
        );
        sqlx::query(&q)
            .bind(role.as_str().to_string())
            .bind(opt(quota.sessions_per_period))
            .bind(quota.period_hours as i64)
            .bind(opt(quota.max_minutes))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A user's own quota, if an administrator set one.
    pub async fn quota_override(&self, user_id: i64) -> AccResult<Option<Quota>> {
        let q = self.sql(
            "SELECT sessions_per_period, period_hours, max_minutes FROM acc_quota_overrides WHERE user_id = ?",
        );
        let row = sqlx::query(&q)
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(quota_of).transpose()
    }

    /// Sets (or with `None` removes) a user's own quota.
    pub(super) async fn store_quota_override(
        &self,
        user_id: i64,
        quota: Option<&Quota>,
    ) -> AccResult<()> {
        let mut tx = self.locked().await?;
        let q = self.sql("DELETE FROM acc_quota_overrides WHERE user_id = ?");
        sqlx::query(&q).bind(user_id).execute(&mut *tx).await?;
        if let Some(quota) = quota {
            let q = self.sql(
                "INSERT INTO acc_quota_overrides (user_id, sessions_per_period, period_hours, max_minutes) VALUES (?, ?, ?, ?)",
            );
            sqlx::query(&q)
                .bind(user_id)
                .bind(opt(quota.sessions_per_period))
                .bind(quota.period_hours as i64)
                .bind(opt(quota.max_minutes))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sessions a user created or planned since `since`, and when the oldest of them was.
    pub(super) async fn usage_since(
        &self,
        user_id: i64,
        since: Millis,
    ) -> AccResult<(u64, Option<Millis>)> {
        let mut conn = self.pool.acquire().await?;
        usage_since_on(&mut conn, &self.sql(USAGE_SINCE), user_id, since).await
    }

    /// Under the registry lock: counts `user_id`'s use since `since` and, if `fits` allows
    /// it, stores one more use (`kind`, `minutes`, at `now`) under the placeholder code
    /// `token`. `Err(refusal)` when it does not fit (nothing stored). Parallel requests of
    /// one user are serialised here, so together they never exceed the quota.
    pub(super) async fn reserve_usage<E>(
        &self,
        user_id: i64,
        since: Millis,
        fits: impl FnOnce(u64, Option<Millis>) -> Result<(), E>,
        row: UseRow<'_>,
    ) -> AccResult<Result<(), E>> {
        let UseRow {
            kind,
            code: token,
            minutes,
            at_ms: now,
        } = row;
        let mut tx = self.locked().await?;
        let (used, oldest) =
            usage_since_on(&mut tx, &self.sql(USAGE_SINCE), user_id, since).await?;
        if let Err(e) = fits(used, oldest) {
            tx.rollback().await?;
            return Ok(Err(e));
        }
        let q = self.sql(
            "INSERT INTO acc_usage (user_id, kind, code, minutes, at_ms) VALUES (?, ?, ?, ?, ?)",
        );
        sqlx::query(&q)
            .bind(user_id)
            .bind(kind.to_string())
            .bind(token.to_string())
            .bind(minutes as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // Rows older than the longest possible period count for nothing any more.
        let q = self.sql("DELETE FROM acc_usage WHERE user_id = ? AND at_ms < ?");
        sqlx::query(&q)
            .bind(user_id)
            .bind(now - super::QUOTA_MAX_PERIOD_HOURS as Millis * 3_600_000)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    /// Gives the use stored under placeholder `token` its session's `code`.
    pub(super) async fn set_usage_code(
        &self,
        user_id: i64,
        token: &str,
        code: &str,
    ) -> AccResult<()> {
        let q = self.sql("UPDATE acc_usage SET code = ? WHERE user_id = ? AND code = ?");
        sqlx::query(&q)
            .bind(code.to_string())
            .bind(user_id)
            .bind(token.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes the uses stored with `code` (a placeholder token, or a session's code) of
    /// `kind` from `since` on; `user_id` narrows it to one user.
    pub(super) async fn delete_usage(
        &self,
        user_id: Option<i64>,
        kind: &str,
        code: &str,
        since: Millis,
    ) -> AccResult<u64> {
        let q = self.sql(if user_id.is_some() {
            "DELETE FROM acc_usage WHERE kind = ? AND code = ? AND at_ms >= ? AND user_id = ?"
        } else {
            "DELETE FROM acc_usage WHERE kind = ? AND code = ? AND at_ms >= ?"
        });
        let mut query = sqlx::query(&q)
            .bind(kind.to_string())
            .bind(code.to_string())
            .bind(since);
        if let Some(id) = user_id {
            query = query.bind(id);
        }
        Ok(query.execute(&self.pool).await?.rows_affected())
    }
}

/// The lock key of one address for one account.
fn pair_key(email: &str, addr: &str) -> String {
    format!("ea {email} {addr}")
}

/// The lock key of one address for every account.
fn address_key(addr: &str) -> String {
    format!("a {addr}")
}

/// Sets (or moves) the lock-out `key` to end at `until`, in `tx`.
async fn set_lock(
    tx: &mut Transaction<'static, Any>,
    backend: &crate::store::Backend,
    key: &str,
    until: Millis,
) -> AccResult<()> {
    let q = backend.sql("DELETE FROM acc_login_locks WHERE lock_key = ?");
    sqlx::query(&q)
        .bind(key.to_string())
        .execute(&mut **tx)
        .await?;
    let q = backend.sql("INSERT INTO acc_login_locks (lock_key, until_ms) VALUES (?, ?)");
    sqlx::query(&q)
        .bind(key.to_string())
        .bind(until)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One use of a quota, as stored.
pub(super) struct UseRow<'a> {
    /// `"create"` or `"plan"`.
    pub kind: &'a str,
    /// The session's code, or a reservation's placeholder.
    pub code: &'a str,
    /// The session's length (0: no fixed length).
    pub minutes: u64,
    /// When.
    pub at_ms: Millis,
}

const USAGE_SINCE: &str =
    "SELECT COUNT(*), MIN(at_ms) FROM acc_usage WHERE user_id = ? AND at_ms > ?";

async fn usage_since_on(
    conn: &mut sqlx::AnyConnection,
    q: &str,
    user_id: i64,
    since: Millis,
) -> AccResult<(u64, Option<Millis>)> {
    let row = sqlx::query(q)
        .bind(user_id)
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
    let n: i64 = row.try_get(0)?;
    Ok((n.max(0) as u64, row.try_get(1)?))
}
