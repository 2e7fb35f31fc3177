//! Login sessions that end while connections act as them: logout, a password change (the
//! account's other sessions), rejection, a newer login beyond the per-user limit. Each end is
//! told to this process's open WebSockets ([`Accounts::subscribe_ended`]), which close with
//! [`CLOSE_CODE`] and the reason; a connection also closes at its session's expiry, and
//! re-reads its session every [`SESSION_RECHECK_MS`] (ends told by another coordinator
//! sharing the database, role changes).

use tokio::sync::broadcast;

use super::{tokens, AccResult, Accounts, User};
use crate::clock::Millis;

/// The WebSocket close code of a connection whose login session ended (like HTTP's 401).
pub const CLOSE_CODE: u16 = 4401;

/// How often a WebSocket acting as a login re-reads its session from the database (ms).
pub const SESSION_RECHECK_MS: Millis = 30_000;

/// Ends not yet read that a slow connection may fall behind by (it then re-reads its
/// session from the database).
const ENDED_QUEUE: usize = 1024;

/// Close reason: the session was logged out.
pub const LOGGED_OUT: &str = "logged out";
/// Close reason: the account's password changed (on another session).
pub const PASSWORD_CHANGED: &str = "password changed";
/// Close reason: an administrator rejected the account.
pub const ACCOUNT_REJECTED: &str = "account rejected";
/// Close reason: newer logins pushed this one out (more than the per-user limit).
pub const TOO_MANY_LOGINS: &str = "too many logins";
/// Close reason: the session expired, or is gone from the database.
pub const LOGIN_EXPIRED: &str = "login expired";

/// Login sessions that just ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The one session with this token hash.
    One {
        /// The session's token hash.
        token_hash: String,
        /// Why (one of this module's reasons).
        reason: &'static str,
    },
    /// Every session of a user but `keep`.
    User {
        /// The user.
        user_id: i64,
        /// The token hash of a session that goes on.
        keep: Option<String>,
        /// Why (one of this module's reasons).
        reason: &'static str,
    },
}

impl Ended {
    /// Whether this ends the session `token_hash` of user `user_id`; then why.
    pub fn ends(&self, user_id: i64, token_hash: &str) -> Option<&'static str> {
        match self {
            Ended::One {
                token_hash: h,
                reason,
            } => (h == token_hash).then_some(*reason),
            Ended::User {
                user_id: u,
                keep,
                reason,
            } => (*u == user_id && keep.as_deref() != Some(token_hash)).then_some(*reason),
        }
    }
}

/// A connection's login: who, which session, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginSession {
    /// The account.
    pub user: User,
    /// The session's token hash.
    pub token_hash: String,
    /// When it expires (epoch ms).
    pub expires_ms: Millis,
}

/// The sender of ends ([`Accounts`] holds one).
pub(super) fn channel() -> broadcast::Sender<Ended> {
    broadcast::channel(ENDED_QUEUE).0
}

impl Accounts {
    /// Ends as they happen in this process, for a connection acting as a login.
    pub fn subscribe_ended(&self) -> broadcast::Receiver<Ended> {
        self.ended.subscribe()
    }

    /// Tells the connections (none listening is fine).
    pub(super) fn tell_ended(&self, ended: Ended) {
        let _ = self.ended.send(ended);
    }

    /// The login session of `token` while it lasts and its account is active.
    pub async fn login_session(&self, token: &str, now: Millis) -> AccResult<Option<LoginSession>> {
        if !tokens::well_formed(token) {
            return Ok(None);
        }
        let token_hash = tokens::token_hash(token);
        Ok(self
            .session_row(&token_hash, now)
            .await?
            .map(|(user, expires_ms)| LoginSession {
                user,
                token_hash,
                expires_ms,
            }))
    }

    /// [`Accounts::login_session`] by token hash (a connection re-reading its session).
    pub async fn login_session_by_hash(
        &self,
        token_hash: &str,
        now: Millis,
    ) -> AccResult<Option<LoginSession>> {
        Ok(self
            .session_row(token_hash, now)
            .await?
            .map(|(user, expires_ms)| LoginSession {
                user,
                token_hash: token_hash.to_string(),
                expires_ms,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn which_sessions_an_end_covers() {
        let one = Ended::One {
            token_hash: "h1".into(),
            reason: LOGGED_OUT,
        };
        assert_eq!(one.ends(7, "h1"), Some(LOGGED_OUT));
        assert_eq!(one.ends(7, "h2"), None);
        let all_but = Ended::User {
            user_id: 7,
            keep: Some("h1".into()),
            reason: PASSWORD_CHANGED,
        };
        assert_eq!(all_but.ends(7, "h1"), None);
        assert_eq!(all_but.ends(7, "h2"), Some(PASSWORD_CHANGED));
        assert_eq!(all_but.ends(8, "h2"), None);
        let all = Ended::User {
            user_id: 7,
            keep: None,
            reason: ACCOUNT_REJECTED,
        };
        assert_eq!(all.ends(7, "h1"), Some(ACCOUNT_REJECTED));
    }
}
