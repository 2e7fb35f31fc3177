//! Plans made through accounts: their details (owner, time zone, customer), the plan lists,
//! moving and cancelling plans, and which slots of a day are free.
//!
//! Every capacity question goes through the same rule as `PLAN_SESSION`
//! ([`Registry::slot_has_room`], i.e. [`Registry::bookings`] + [`logic::slot_fits`]); writes
//! take the registry lock like [`Registry::plan_session`].

use rand::Rng;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{PlaceError, Registry, Result, StoreError};
use crate::clock::Millis;
use crate::config::Plan;
use crate::logic;

/// The most plans one list returns.
pub const MAX_PLANS_LISTED: usize = 1000;

/// What a plan made through an account records besides its slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanDetails {
    /// The account that planned it (`None`: a guest, or a plan from `sessions_planned.json`).
    pub owner_id: Option<i64>,
    /// The IANA time zone it was planned in (`"UTC"` for plans without details).
    pub tz: String,
    /// The customer's name.
    pub customer_name: Option<String>,
    /// The customer's phone.
    pub customer_phone: Option<String>,
    /// The customer's e-mail.
    pub customer_email: Option<String>,
    /// A note.
    pub note: Option<String>,
    /// The planner asked for the session to be recorded.
    pub record: bool,
}

/// A plan as the plan lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanEntry {
    /// Its code and slot.
    pub plan: Plan,
    /// Its details (defaults for plans made without them).
    pub details: PlanDetails,
    /// The owner's name, when the owner's account exists.
    pub owner_name: Option<String>,
    /// The owner's e-mail, when the owner's account exists.
    pub owner_email: Option<String>,
    /// A session runs from it (it can no longer be moved or cancelled).
    pub started: bool,
}

/// Which plans [`Registry::list_plans`] returns: those overlapping `[from, to)`, of one owner
/// or everyone's, by start, at most `limit` (capped at [`MAX_PLANS_LISTED`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFilter {
    /// Only this account's plans.
    pub owner_id: Option<i64>,
    /// Window start.
    pub from: Millis,
    /// Window end (exclusive).
    pub to: Millis,
    /// The most plans returned.
    pub limit: usize,
}

/// Why a plan could not be moved or cancelled.
#[derive(Debug, thiserror::Error)]
pub enum PlanChangeError {
    /// No such plan (or its slot is over).
    #[error("no such plan")]
    NotFound,
    /// Its session is running.
    #[error("the plan's session has started")]
    Started,
    /// The new slot has no room.
    #[error("no server has room")]
    Busy,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for PlanChangeError {
    fn from(e: sqlx::Error) -> Self {
        PlanChangeError::Store(e.into())
    }
}

/// `p` plan, `d` details, `u` owner, `s` a session from the plan.
const ENTRY_SELECT: &str = "SELECT p.code, p.rc_name, p.start_ms, p.end_ms, p.planned_by, \
     d.owner_id, d.tz, d.customer_name, d.customer_phone, d.customer_email, d.note, \
     u.name, u.email, s.code, d.record \
     FROM coord_plans p \
     LEFT JOIN plan_details d ON d.code = p.code AND d.created_ms = p.created_ms \
     LEFT JOIN acc_users u ON u.id = d.owner_id \
     LEFT JOIN coord_sessions s ON s.code = p.code";

fn entry_of(row: &AnyRow) -> Result<PlanEntry> {
    let tz: Option<String> = row.try_get(6)?;
    let session: Option<String> = row.try_get(13)?;
    let record: Option<i64> = row.try_get(14)?;
    Ok(PlanEntry {
        plan: super::plan_of(row)?,
        details: PlanDetails {
            owner_id: row.try_get(5)?,
            tz: tz.unwrap_or_else(|| "UTC".into()),
            customer_name: row.try_get(7)?,
            customer_phone: row.try_get(8)?,
            customer_email: row.try_get(9)?,
            note: row.try_get(10)?,
            record: record.unwrap_or(0) != 0,
        },
        owner_name: row.try_get(11)?,
        owner_email: row.try_get(12)?,
        started: session.is_some(),
    })
}

impl Registry {
    /// Whether the planner of `plan` asked for its session to be recorded (`false` for a plan
    /// without details: from `PLAN_SESSION` or `sessions_planned.json`).
    pub async fn plan_asks_recording(&self, plan: &Plan) -> Result<bool> {
        let q = self.sql(
            "SELECT d.record FROM coord_plans p JOIN plan_details d ON d.code = p.code AND d.created_ms = p.created_ms \
             WHERE p.code = ?",
        );
        let record: Option<i64> = sqlx::query_scalar(&q)
            .bind(plan.code.clone())
            .fetch_optional(&self.pool)
            .await?;
        Ok(record.unwrap_or(0) != 0)
    }

    /// Books `[start, end)` for `rc_name` exactly as [`Registry::plan_session`] does (same
    /// capacity check, same lock) and stores `details` with it, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn plan_with_details(
        &self,
        rc_name: &str,
        start: Millis,
        end: Millis,
        planned_by: &str,
        details: &PlanDetails,
        unplanned_ms: Millis,
        code_length: usize,
        max_fraction: f64,
        now: Millis,
        rng: &mut (impl Rng + Send),
    ) -> Result<Plan, PlaceError> {
        let mut tx = self.begin().await?;
        if !self
            .slot_has_room(&mut tx, rc_name, start, end, unplanned_ms, now, None)
            .await?
        {
            return Err(PlaceError::Busy);
        }
        let code = self
            .allocate_code(&mut tx, code_length, max_fraction, now, rng)
            .await?;
        let q = self.sql("INSERT INTO coord_plans (code, rc_name, start_ms, end_ms, planned_by, created_ms) VALUES (?, ?, ?, ?, ?, ?)");
        sqlx::query(&q)
            .bind(code.clone())
            .bind(rc_name.to_string())
            .bind(start)
            .bind(end)
            .bind(planned_by.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // Details of plans that expired (the sweep removes only the plan): gone now.
        sqlx::query("DELETE FROM plan_details WHERE code NOT IN (SELECT code FROM coord_plans)")
            .execute(&mut *tx)
            .await?;
        let q = self.sql("DELETE FROM plan_details WHERE code = ?");
        sqlx::query(&q).bind(code.clone()).execute(&mut *tx).await?;
        let q = self.sql(
            "INSERT INTO plan_details (code, owner_id, tz, customer_name, customer_phone, customer_email, note, created_ms, record) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        sqlx::query(&q)
            .bind(code.clone())
            .bind(details.owner_id)
            .bind(details.tz.clone())
            .bind(details.customer_name.clone())
            .bind(details.customer_phone.clone())
            .bind(details.customer_email.clone())
            .bind(details.note.clone())
            .bind(now)
            .bind(i64::from(details.record))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Plan {
            code,
            rc_name: rc_name.to_string(),
            start_ms: start,
            end_ms: end,
            planned_by: planned_by.to_string(),
        })
    }

    /// One plan with its details.
    pub async fn plan_entry(&self, code: &str) -> Result<Option<PlanEntry>> {
        let q = self.sql(&format!("{ENTRY_SELECT} WHERE p.code = ?"));
        let row = sqlx::query(&q)
            .bind(code.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(entry_of).transpose()
    }

    /// Plans overlapping the filter's window (everyone's, or one owner's), by start.
    pub async fn list_plans(&self, filter: &PlanFilter) -> Result<Vec<PlanEntry>> {
        let limit = filter.limit.min(MAX_PLANS_LISTED) as i64;
        let owner = if filter.owner_id.is_some() {
            " AND d.owner_id = ?"
        } else {
            ""
        };
        let q = self.sql(&format!(
            "{ENTRY_SELECT} WHERE p.end_ms > ? AND p.start_ms < ?{owner} ORDER BY p.start_ms, p.code LIMIT ?"
        ));
        let mut query = sqlx::query(&q).bind(filter.from).bind(filter.to);
        if let Some(owner) = filter.owner_id {
            query = query.bind(owner);
        }
        let rows = query.bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(entry_of).collect()
    }

    /// Moves plan `code` to `[start, end)` (and records `tz` as its time zone, when given) if
    /// the servers of its app have room then, the plan itself not counted; atomic under the
    /// registry lock. A plan whose session started, or whose slot is over, stays as it is.
    #[allow(clippy::too_many_arguments)]
    pub async fn move_plan(
        &self,
        code: &str,
        start: Millis,
        end: Millis,
        tz: Option<&str>,
        unplanned_ms: Millis,
        now: Millis,
    ) -> Result<Plan, PlanChangeError> {
        let mut tx = self.begin().await?;
        let plan = self.changeable_plan(&mut tx, code, now).await?;
        // Out of the way while its new slot is weighed (rolled back if that has no room).
        let q = self.sql("UPDATE coord_plans SET start_ms = 0, end_ms = 0 WHERE code = ?");
        sqlx::query(&q)
            .bind(code.to_string())
            .execute(&mut *tx)
            .await?;
        if !self
            .slot_has_room(&mut tx, &plan.rc_name, start, end, unplanned_ms, now, None)
            .await?
        {
            return Err(PlanChangeError::Busy);
        }
        let q = self.sql("UPDATE coord_plans SET start_ms = ?, end_ms = ? WHERE code = ?");
        sqlx::query(&q)
            .bind(start)
            .bind(end)
            .bind(code.to_string())
            .execute(&mut *tx)
            .await?;
        if let Some(tz) = tz {
            let q = self.sql("UPDATE plan_details SET tz = ? WHERE code = ?");
            sqlx::query(&q)
                .bind(tz.to_string())
                .bind(code.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Plan {
            start_ms: start,
            end_ms: end,
            ..plan
        })
    }

    /// Cancels plan `code`: removes it and its details and frees its code. A plan whose session
    /// started, or whose slot is over, stays.
    pub async fn cancel_plan(&self, code: &str, now: Millis) -> Result<Plan, PlanChangeError> {
        let mut tx = self.begin().await?;
        let plan = self.changeable_plan(&mut tx, code, now).await?;
        for q in [
            "DELETE FROM coord_plans WHERE code = ?",
            "DELETE FROM plan_details WHERE code = ?",
        ] {
            let q = self.sql(q);
            sqlx::query(&q)
                .bind(code.to_string())
                .execute(&mut *tx)
                .await?;
        }
        self.free_code_if_unused(&mut tx, code).await?;
        tx.commit().await?;
        Ok(plan)
    }

    /// Plan `code`, if it may still be changed (its slot is not over and no session runs from it).
    async fn changeable_plan(
        &self,
        tx: &mut super::Tx,
        code: &str,
        now: Millis,
    ) -> Result<Plan, PlanChangeError> {
        let q = self.sql(
            "SELECT code, rc_name, start_ms, end_ms, planned_by FROM coord_plans WHERE code = ?",
        );
        let Some(row) = sqlx::query(&q)
            .bind(code.to_string())
            .fetch_optional(&mut **tx)
            .await?
        else {
            return Err(PlanChangeError::NotFound);
        };
        let plan = super::plan_of(&row)?;
        if plan.end_ms <= now {
            return Err(PlanChangeError::NotFound);
        }
        if self
            .count(
                tx,
                "SELECT COUNT(*) FROM coord_sessions WHERE code = ?",
                code,
            )
            .await?
            > 0
        {
            return Err(PlanChangeError::Started);
        }
        Ok(plan)
    }

    /// For each of `starts`, whether a plan of `rc_name` for `[start, start + duration)` would
    /// be accepted now (the check of [`Registry::plan_session`]). The day's plans and sessions
    /// are read once, in one read transaction, whatever the number of starts.
    pub async fn slot_availability(
        &self,
        rc_name: &str,
        starts: &[Millis],
        duration: Millis,
        unplanned_ms: Millis,
        now: Millis,
    ) -> Result<Vec<bool>> {
        let (Some(&first), Some(&last)) = (starts.iter().min(), starts.iter().max()) else {
            return Ok(Vec::new());
        };
        // A read: no registry lock; dropping the transaction rolls it back.
        let mut tx = self.pool.begin().await?;
        let (capacity, booked) = self
            .bookings(
                &mut tx,
                rc_name,
                first,
                last + duration,
                unplanned_ms,
                now,
                None,
            )
            .await?;
        Ok(starts
            .iter()
            .map(|&s| logic::slot_fits(&booked, s, s + duration, capacity))
            .collect())
    }
}
