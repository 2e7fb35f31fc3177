//! What administrators do to accounts: approve, reject, change roles and quotas.

use super::{AccResult, AccountError, Accounts, Quota, Role, Status, User};

/// Longest reject reason (characters).
pub const MAX_REASON_CHARS: usize = 500;

impl Accounts {
    async fn existing(&self, id: i64) -> AccResult<User> {
        self.user(id).await?.ok_or(AccountError::NotFound)
    }

    fn not_self(by: &User, id: i64, what: &str) -> AccResult<()> {
        if by.id == id {
            return Err(AccountError::Forbidden(format!(
                "administrators cannot {what} themselves"
            )));
        }
        Ok(())
    }

    /// Approves account `id` with `role` (an active account just gets the role). `by` may
    /// not demote themself.
    pub async fn approve(&self, by: &User, id: i64, role: Role) -> AccResult<User> {
        let user = self.existing(id).await?;
        if role != Role::Admin {
            Self::not_self(by, id, "demote")?;
        }
        self.set_state(user.id, Status::Active, role, "").await?;
        self.existing(id).await
    }

    /// Rejects account `id` with `reason` (1 to 500 characters) and ends its login sessions.
    pub async fn reject(&self, by: &User, id: i64, reason: &str) -> AccResult<User> {
        let reason = reason.trim();
        let n = reason.chars().count();
        if n == 0 || n > MAX_REASON_CHARS {
            return Err(AccountError::invalid(
                "bad_request",
                format!("reason must be 1 to {MAX_REASON_CHARS} characters"),
            ));
        }
        if reason.chars().any(|c| c.is_control() && c != '\n') {
            return Err(AccountError::invalid(
                "bad_request",
                "reason must not contain control characters",
            ));
        }
        let user = self.existing(id).await?;
        Self::not_self(by, id, "reject")?;
        self.set_state(user.id, Status::Rejected, user.role, reason)
            .await?;
        self.delete_user_sessions(user.id, None, super::ended::ACCOUNT_REJECTED)
            .await?;
        self.existing(id).await
    }

    /// Changes account `id`'s role (when given) and own quota (`Some(None)` removes it).
    /// `by` may not demote themself.
    pub async fn update_user(
        &self,
        by: &User,
        id: i64,
        role: Option<Role>,
        quota: Option<Option<Quota>>,
    ) -> AccResult<User> {
        let user = self.existing(id).await?;
        if let Some(q) = quota.flatten() {
            q.check()
                .map_err(|e| AccountError::invalid("bad_request", format!("quota: {e}")))?;
        }
        if let Some(role) = role {
            if role != Role::Admin {
                Self::not_self(by, id, "demote")?;
            }
            let reason = user.reject_reason.clone().unwrap_or_default();
            self.set_state(user.id, user.status, role, &reason).await?;
        }
        if let Some(q) = quota {
            self.store_quota_override(user.id, q.as_ref()).await?;
        }
        self.existing(id).await
    }
}
