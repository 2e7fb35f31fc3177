//! Quotas: a user's effective quota (their own override, else their role's, else the
//! settings' default for the role) and what it allows now.

use serde::Serialize;

use super::db::UseRow;
use super::{AccResult, Accounts, Quota, Role, UseKind, User};
use crate::clock::{Millis, MINUTE};

/// A quota and how much of it is used (`GET /api/auth/me`'s `quota`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct QuotaStatus {
    /// Sessions per period (`None`: unlimited).
    pub sessions_per_period: Option<u64>,
    /// The period in hours.
    pub period_hours: u64,
    /// The longest session in minutes (`None`: unlimited).
    pub max_minutes: Option<u64>,
    /// Sessions created or planned in the last `period_hours`.
    pub used: u64,
    /// When the oldest of those leaves the period (epoch ms), if any.
    #[serde(skip)]
    pub frees_at: Option<Millis>,
}

/// Why a quota refuses a session; the message names the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaRefusal {
    /// `used` sessions already in the last `period_hours` (the limit `limit`); another is
    /// possible after `retry_after_ms`.
    Exceeded {
        /// The limit.
        limit: u64,
        /// The period.
        period_hours: u64,
        /// Used so far.
        used: u64,
        /// When another session becomes possible, from now.
        retry_after_ms: Option<Millis>,
    },
    /// The session would last `minutes`, more than `limit`.
    TooLong {
        /// The limit in minutes.
        limit: u64,
        /// The asked length.
        minutes: u64,
    },
}

impl QuotaRefusal {
    /// For people: `"your quota is 10 sessions per 24 hours and you have used 10"`.
    pub fn message(&self) -> String {
        match self {
            QuotaRefusal::Exceeded {
                limit,
                period_hours,
                used,
                ..
            } => format!(
                "your quota is {limit} sessions per {period_hours} hours and you have used {used}"
            ),
            QuotaRefusal::TooLong { limit, minutes } => {
                format!("a session of yours may last at most {limit} minutes ({minutes} asked)")
            }
        }
    }
}

impl QuotaStatus {
    /// Whether one more session of `minutes` (0: no fixed length) fits.
    pub fn allows(&self, minutes: u64, now: Millis) -> Result<(), QuotaRefusal> {
        if let Some(limit) = self.max_minutes {
            if minutes > limit {
                return Err(QuotaRefusal::TooLong { limit, minutes });
            }
        }
        if let Some(limit) = self.sessions_per_period {
            if self.used >= limit {
                return Err(QuotaRefusal::Exceeded {
                    limit,
                    period_hours: self.period_hours,
                    used: self.used,
                    retry_after_ms: self.frees_at.map(|t| (t - now).max(0)),
                });
            }
        }
        Ok(())
    }
}

impl Accounts {
    /// The settings' quota for `role`.
    pub fn default_quota(&self, role: Role) -> Quota {
        match role {
            Role::Agent => self.settings.quota_agent,
            Role::Supervisor => self.settings.quota_supervisor,
            Role::Admin => self.settings.quota_admin,
        }
    }

    /// The quota of `role` (what an administrator set, else the settings' default).
    pub async fn role_quota(&self, role: Role) -> AccResult<Quota> {
        Ok(self
            .stored_role_quota(role)
            .await?
            .unwrap_or_else(|| self.default_quota(role)))
    }

    /// Sets the quota of `role` (checked by the caller with [`Quota::check`]).
    pub async fn set_role_quota(&self, role: Role, quota: &Quota) -> AccResult<()> {
        self.store_role_quota(role, quota).await
    }

    /// A user's quota: their own override, else their role's.
    pub async fn effective_quota(&self, user: &User) -> AccResult<Quota> {
        match self.quota_override(user.id).await? {
            Some(q) => Ok(q),
            None => self.role_quota(user.role).await,
        }
    }

    /// A user's quota and their use of it at `now`.
    pub async fn quota_status(&self, user: &User, now: Millis) -> AccResult<QuotaStatus> {
        let q = self.effective_quota(user).await?;
        let period = period_ms(&q);
        let (used, oldest) = self.usage_since(user.id, now - period).await?;
        Ok(status_of(&q, used, oldest))
    }

    /// Takes one use of `user`'s quota for a session of `minutes` (0: no fixed length) at
    /// `now`, if the quota allows it: the check and the count are one step under the
    /// registry's lock, so parallel requests never go over the quota together. Then
    /// [`Accounts::confirm_use`] with the session's code once it exists, or
    /// [`Accounts::release_use`] if it never comes to be.
    pub async fn reserve_use(
        &self,
        user: &User,
        kind: UseKind,
        minutes: u64,
        now: Millis,
    ) -> AccResult<Result<Reservation, QuotaRefusal>> {
        let q = self.effective_quota(user).await?;
        let period = period_ms(&q);
        // A placeholder code no session has (codes are digits): "r" and 15 hex digits.
        let token = format!("r{:015x}", rand::random::<u64>() >> 4);
        let row = UseRow {
            kind: kind.as_str(),
            code: &token,
            minutes,
            at_ms: now,
        };
        let fits = |used, oldest| status_of(&q, used, oldest).allows(minutes, now);
        Ok(self
            .reserve_usage(user.id, now - period, fits, row)
            .await?
            .map(|()| Reservation {
                user_id: user.id,
                kind,
                token,
                at_ms: now,
            }))
    }

    /// The reserved use now stands for session (or plan) `code`.
    pub async fn confirm_use(&self, r: &Reservation, code: &str) -> AccResult<()> {
        self.set_usage_code(r.user_id, &r.token, code).await
    }

    /// The reserved use is given back (the session never came to be).
    pub async fn release_use(&self, r: &Reservation) -> AccResult<()> {
        self.delete_usage(Some(r.user_id), r.kind.as_str(), &r.token, r.at_ms)
            .await
            .map(drop)
    }

    /// Session `code`, created at `created_ms`, was refused by its node or never confirmed:
    /// its creation no longer counts against its creator's quota.
    pub async fn forget_create(&self, code: &str, created_ms: Millis) -> AccResult<()> {
        self.delete_usage(None, UseKind::Create.as_str(), code, created_ms)
            .await
            .map(drop)
    }
}

/// A use of a user's quota taken by [`Accounts::reserve_use`], until the session exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    user_id: i64,
    kind: UseKind,
    token: String,
    at_ms: Millis,
}

fn period_ms(q: &Quota) -> Millis {
    (q.period_hours as Millis).saturating_mul(60 * MINUTE)
}

fn status_of(q: &Quota, used: u64, oldest: Option<Millis>) -> QuotaStatus {
    QuotaStatus {
        sessions_per_period: q.sessions_per_period,
        period_hours: q.period_hours,
        max_minutes: q.max_minutes,
        used,
        frees_at: oldest.map(|t| t + period_ms(q)),
    }
}
