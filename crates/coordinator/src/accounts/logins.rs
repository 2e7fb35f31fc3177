//! Sign-up, login sessions and passwords.

use axum::http::HeaderMap;

use super::password::{self, check_name, check_password, check_time_zone, normalize_email};
use super::tokens;
use super::{AccResult, AccountError, Accounts, Role, Status, User};
use crate::clock::{Millis, MINUTE};
use crate::config::Settings;

/// A new login session: the token to hand to the client (only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    /// Who logged in.
    pub user: User,
    /// The token (64 hex digits) for the cookie or `Authorization: Bearer`.
    pub token: String,
    /// When it expires (epoch ms).
    pub expires_ms: Millis,
}

impl Accounts {
    /// Runs an argon2 job on a blocking thread, at most a few at once.
    async fn hashing<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> AccResult<T> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|e| AccountError::Hash(e.to_string()))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| AccountError::Hash(e.to_string()))
    }

    async fn hash(&self, password: &str) -> AccResult<String> {
        let password = password.to_string();
        self.hashing(move || password::hash(&password)).await?
    }

    async fn verify(&self, password: &str, phc: &str) -> AccResult<bool> {
        let (password, phc) = (password.to_string(), phc.to_string());
        self.hashing(move || password::verify(&password, &phc))
            .await
    }

    /// `POST /api/auth/signup`: a `pending` account, unless `addr` signed up
    /// `signup_per_hour` times in the last hour.
    pub async fn signup(
        &self,
        email: &str,
        password: &str,
        name: &str,
        time_zone: Option<&str>,
        addr: &str,
        now: Millis,
    ) -> AccResult<User> {
        let email = normalize_email(email)?;
        let name = check_name(name)?;
        check_password(password)?;
        let tz = match time_zone {
            Some(tz) => check_time_zone(tz)?,
            None => "UTC".to_string(),
        };
        let hour = 60 * MINUTE;
        let (n, oldest) = self.signups_since(addr, now - hour).await?;
        if n >= i64::from(self.settings.signup_per_hour) {
            return Err(AccountError::RateLimited(
                oldest.map_or(hour, |t| t + hour - now).max(1000),
            ));
        }
        if self.user_row_by_email(&email).await?.is_some() {
            return Err(AccountError::EmailTaken);
        }
        let hash = self.hash(password).await?;
        let user = self
            .insert_user(
                None,
                &email,
                &name,
                &hash,
                Role::Agent,
                Status::Pending,
                &tz,
                now,
            )
            .await?;
        self.record_signup(addr, now).await?;
        Ok(user)
    }

    /// An `active` account made by an operator (`orbita admin create-user`), no approval.
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        password: &str,
        role: Role,
        now: Millis,
    ) -> AccResult<User> {
        let email = normalize_email(email)?;
        let name = check_name(name)?;
        check_password(password)?;
        let hash = self.hash(password).await?;
        self.insert_user(None, &email, &name, &hash, role, Status::Active, "UTC", now)
            .await
    }

    /// Whether an active administrator exists.
    pub async fn has_admin(&self) -> AccResult<bool> {
        let mut tx = self.pool.begin().await?;
        let exists = self.admin_exists(&mut tx).await?;
        tx.commit().await?;
        Ok(exists)
    }

    /// Creates an active administrator `email` (named after the e-mail's local part) only
    /// while no active administrator exists; returns whether it did. Safe when several
    /// coordinators start at once (the registry's lock row serialises them).
    pub async fn ensure_first_admin(
        &self,
        email: &str,
        password: &str,
        now: Millis,
    ) -> AccResult<bool> {
        let email = normalize_email(email)?;
        check_password(password)?;
        let name = check_name(email.split('@').next().unwrap_or("admin"))?;
        let hash = self.hash(password).await?;
        let mut tx = self.locked().await?;
        if self.admin_exists(&mut tx).await? {
            return Ok(false);
        }
        self.insert_user(
            Some(&mut tx),
            &email,
            &name,
            &hash,
            Role::Admin,
            Status::Active,
            "UTC",
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    fn lockout_window(&self) -> Millis {
        Settings::min_ms(self.settings.login_lockout_minutes)
    }

    /// `POST /api/auth/login`: checks the password (the same `BadCredentials` for an unknown
    /// e-mail), counts failures towards the lock-out, and starts a login session.
    pub async fn login(&self, email: &str, password: &str, now: Millis) -> AccResult<Login> {
        let email = normalize_email(email).map_err(|_| AccountError::BadCredentials)?;
        if let Some(until) = self.locked_until(&email, now).await? {
            return Err(AccountError::LockedOut(until - now));
        }
        let row = self.user_row_by_email(&email).await?;
        let phc = row
            .as_ref()
            .map_or_else(|| password::decoy().to_string(), |(_, h)| h.clone());
        let ok = self.verify(password, &phc).await? && row.is_some();
        let Some((user, _)) = row.filter(|_| ok) else {
            self.record_failure(
                &email,
                now,
                self.lockout_window(),
                self.settings.login_max_failures,
                self.lockout_window(),
            )
            .await?;
            return Err(AccountError::BadCredentials);
        };
        self.clear_failures(&email, now).await?;
        match user.status {
            Status::Active => {}
            Status::Pending => return Err(AccountError::Pending),
            Status::Rejected => {
                return Err(AccountError::Rejected(
                    user.reject_reason
                        .clone()
                        .unwrap_or_else(|| "the account was rejected".into()),
                ))
            }
        }
        self.start_session(user, now).await
    }

    async fn start_session(&self, user: User, now: Millis) -> AccResult<Login> {
        let token = tokens::new_token();
        let expires_ms = now + self.session_ms();
        self.insert_session(user.id, &tokens::token_hash(&token), now, expires_ms)
            .await?;
        Ok(Login {
            user,
            token,
            expires_ms,
        })
    }

    /// The active account a token belongs to, while its login session lasts.
    pub async fn user_from_token(&self, token: &str, now: Millis) -> AccResult<Option<User>> {
        if !tokens::well_formed(token) {
            return Ok(None);
        }
        self.session_user(&tokens::token_hash(token), now).await
    }

    /// The token a request carries: `Authorization: Bearer`, else the `orbita_session` cookie
    /// (only when the request is not from a page of another origin).
    pub fn request_token(headers: &HeaderMap) -> Option<&str> {
        tokens::bearer(headers).or_else(|| {
            tokens::same_origin(headers)
                .then(|| tokens::cookie(headers))
                .flatten()
        })
    }

    /// The logged-in account of a request (cookie or Bearer token), if any.
    pub async fn user_from_headers(
        &self,
        headers: &HeaderMap,
        now: Millis,
    ) -> AccResult<Option<User>> {
        match Self::request_token(headers) {
            Some(t) => self.user_from_token(t, now).await,
            None => Ok(None),
        }
    }

    /// Ends the login session of `token` (nothing when there is none).
    pub async fn logout(&self, token: &str) -> AccResult<()> {
        if tokens::well_formed(token) {
            self.delete_session(&tokens::token_hash(token)).await?;
        }
        Ok(())
    }

    /// `POST /api/auth/password`: checks the old password (failures count towards the
    /// lock-out), stores the new one and ends the user's other login sessions (not
    /// `current_token`'s). Returns how many sessions ended.
    pub async fn change_password(
        &self,
        user: &User,
        current_token: Option<&str>,
        old_password: &str,
        new_password: &str,
        now: Millis,
    ) -> AccResult<u64> {
        if let Some(until) = self.locked_until(&user.email, now).await? {
            return Err(AccountError::LockedOut(until - now));
        }
        let Some((_, phc)) = self.user_row(user.id).await? else {
            return Err(AccountError::NotFound);
        };
        if !self.verify(old_password, &phc).await? {
            self.record_failure(
                &user.email,
                now,
                self.lockout_window(),
                self.settings.login_max_failures,
                self.lockout_window(),
            )
            .await?;
            return Err(AccountError::BadCredentials);
        }
        check_password(new_password)?;
        let hash = self.hash(new_password).await?;
        self.set_password_hash(user.id, &hash).await?;
        let keep = current_token.map(tokens::token_hash);
        self.delete_user_sessions(user.id, keep.as_deref()).await
    }
}
