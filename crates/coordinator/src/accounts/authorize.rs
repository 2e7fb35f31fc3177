//! Who may create, plan and extend sessions (docs/roles.md), as the coordinator's verbs and
//! the planning API ask it.

use tracing::warn;

use super::quota::QuotaRefusal;
use super::User;
use crate::clock::{Millis, MINUTE};
use crate::coordinator::{Coordinator, Outcome};
use crate::verbs::{ErrorCode, ErrorReply, ToClient};

/// What a session use is, for the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UseKind {
    /// `CREATE_SESSION`: a session now.
    Create,
    /// `PLAN_SESSION` or `POST /api/plans`: a session booked ahead.
    Plan,
}

impl UseKind {
    /// The stored name (`"create"`, `"plan"`).
    pub fn as_str(self) -> &'static str {
        match self {
            UseKind::Create => "create",
            UseKind::Plan => "plan",
        }
    }
}

fn error(code: ErrorCode, message: impl Into<String>, retry_ms: Option<Millis>) -> Outcome {
    Outcome {
        reply: Some(ToClient::Error(ErrorReply {
            code,
            message: message.into(),
            retry_after_seconds: retry_ms.map(|ms| (ms.max(0) as u64).div_ceil(1000)),
        })),
        deliveries: Vec::new(),
    }
}

fn internal(e: impl std::fmt::Display) -> Outcome {
    warn!(error = %e, "accounts registry failure");
    error(
        ErrorCode::Internal,
        "the coordinator could not reach its registry; try again",
        None,
    )
}

/// A quota refusal as the verbs' `ERROR` (`QUOTA_EXCEEDED` / `DURATION_OVER_QUOTA`).
pub fn refusal_outcome(r: &QuotaRefusal) -> Outcome {
    match r {
        QuotaRefusal::Exceeded { retry_after_ms, .. } => {
            error(ErrorCode::QuotaExceeded, r.message(), *retry_after_ms)
        }
        QuotaRefusal::TooLong { .. } => error(ErrorCode::DurationOverQuota, r.message(), None),
    }
}

impl Coordinator {
    /// May `caller` create (`kind` create) or plan (`plan`) a session of `minutes` (0: no
    /// fixed length) now? A guest (`None`) only creates, and only with `guests_may_create`
    /// (`Ok(None)`: go ahead as a guest); an account is re-read (its role or status may have
    /// changed since it connected), must be active, and within its quota: `Ok(Some(user))`,
    /// then call [`Coordinator::record_use`] once the session exists. Refusals are the verbs'
    /// `ERROR`s: `LOGIN_REQUIRED`, `FORBIDDEN`, `QUOTA_EXCEEDED`, `DURATION_OVER_QUOTA`
    /// (the message names the limit).
    pub async fn authorize_creator(
        &self,
        caller: Option<&User>,
        minutes: u64,
        kind: UseKind,
        now: Millis,
    ) -> Result<Option<User>, Outcome> {
        let Some(caller) = caller else {
            if kind == UseKind::Create && self.settings().guests_may_create {
                return Ok(None);
            }
            let what = match kind {
                UseKind::Create => "create",
                UseKind::Plan => "plan",
            };
            return Err(error(
                ErrorCode::LoginRequired,
                format!("log in to {what} sessions; guests join by code"),
                None,
            ));
        };
        let accounts = self.accounts();
        let user = match accounts.user(caller.id).await {
            Ok(Some(u)) if u.status == super::Status::Active => u,
            Ok(_) => {
                return Err(error(
                    ErrorCode::Forbidden,
                    "this account is not active any more; log in again",
                    None,
                ))
            }
            Err(e) => return Err(internal(e)),
        };
        let status = accounts.quota_status(&user, now).await.map_err(internal)?;
        match status.allows(minutes, now) {
            Ok(()) => Ok(Some(user)),
            Err(r) => Err(refusal_outcome(&r)),
        }
    }

    /// Counts session `code` against `user`'s quota (after [`Coordinator::authorize_creator`]
    /// allowed it and the session or plan exists). A failure is logged, not returned: the
    /// session exists already.
    pub async fn record_use(
        &self,
        user: Option<&User>,
        kind: UseKind,
        code: &str,
        minutes: u64,
        now: Millis,
    ) {
        let Some(user) = user else { return };
        if let Err(e) = self
            .accounts()
            .record_use(user, kind, code, minutes, now)
            .await
        {
            warn!(error = %e, user = user.id, code, "could not record a session against the quota");
        }
    }

    /// `EXTEND_SESSION` of planned session `code` to end at `new_end`: the whole session
    /// (from its plan's start) must stay within its planner's `max_minutes`. Anyone with the
    /// code may ask; plans without an account (files, guests) have no such limit.
    pub async fn check_extension(&self, code: &str, new_end: Millis) -> Result<(), Outcome> {
        let entry = match self.registry().plan_entry(code).await {
            Ok(Some(e)) => e,
            Ok(None) => return Ok(()),
            Err(e) => return Err(internal(e)),
        };
        let Some(owner_id) = entry.details.owner_id else {
            return Ok(());
        };
        let accounts = self.accounts();
        let owner = match accounts.user(owner_id).await {
            Ok(Some(u)) => u,
            Ok(None) => return Ok(()),
            Err(e) => return Err(internal(e)),
        };
        let quota = accounts.effective_quota(&owner).await.map_err(internal)?;
        let total = ((new_end - entry.plan.start_ms).max(0) as u64).div_ceil(MINUTE as u64);
        match quota.max_minutes {
            Some(limit) if total > limit => Err(error(
                ErrorCode::DurationOverQuota,
                format!(
                    "session {code} may last at most {limit} minutes in all (its planner's limit); \
                     extended it would last {total}"
                ),
                None,
            )),
            _ => Ok(()),
        }
    }
}
