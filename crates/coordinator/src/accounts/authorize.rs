//! Who may create, plan and extend sessions (docs/roles.md), as the coordinator's verbs and
//! the planning API ask it.

use tracing::warn;

use super::quota::{QuotaRefusal, Reservation};
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

/// Leave to create or plan one session: who, and the use of their quota held for it.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The account, as re-read.
    pub user: User,
    reservation: Reservation,
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
    /// changed since it connected), must be active, and within its quota: `Ok(Some(grant))`
    /// holds one use of that quota, so parallel requests cannot pass it together; then
    /// [`Coordinator::record_use`] once the session exists, or [`Coordinator::release_use`]
    /// if it does not come to be. Refusals are the verbs' `ERROR`s: `LOGIN_REQUIRED`,
    /// `FORBIDDEN`, `QUOTA_EXCEEDED`, `DURATION_OVER_QUOTA` (the message names the limit).
    pub async fn authorize_creator(
        &self,
        caller: Option<&User>,
        minutes: u64,
        kind: UseKind,
        now: Millis,
    ) -> Result<Option<Grant>, Outcome> {
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
        match accounts.reserve_use(&user, kind, minutes, now).await {
            Ok(Ok(reservation)) => Ok(Some(Grant { user, reservation })),
            Ok(Err(r)) => Err(refusal_outcome(&r)),
            Err(e) => Err(internal(e)),
        }
    }

    /// The session (or plan) `code` that `grant` allowed exists: the use held for it now
    /// stands for `code`. A failure is logged, not returned: the session exists already.
    pub async fn record_use(&self, grant: Option<&Grant>, code: &str) {
        let Some(g) = grant else { return };
        if let Err(e) = self.accounts().confirm_use(&g.reservation, code).await {
            warn!(error = %e, user = g.user.id, code, "could not record a session against the quota");
        }
    }

    /// The session that `grant` allowed did not come to be: the use held for it is given
    /// back. A failure is logged.
    pub async fn release_use(&self, grant: Option<&Grant>) {
        let Some(g) = grant else { return };
        if let Err(e) = self.accounts().release_use(&g.reservation).await {
            warn!(error = %e, user = g.user.id, "could not give back a use of the quota");
        }
    }

    /// Session `s` was refused by its node or never confirmed: its creation stops counting
    /// against its creator's quota. A failure is logged.
    pub async fn forget_create(&self, s: &crate::store::SessionRecord) {
        if let Err(e) = self.accounts().forget_create(&s.code, s.created_ms).await {
            warn!(error = %e, code = %s.code, "could not give back a use of the quota");
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
