//! Sign-up, login sessions and passwords.

use axum::http::HeaderMap;
use tokio::sync::SemaphorePermit;

use super::ended;
use super::login_limits::LoginLimits;
use super::password::{self, check_name, check_password, check_time_zone, normalize_email};
use super::tokens;
use super::{AccResult, AccountError, Accounts, Role, Status, User};
use crate::clock::{Millis, MINUTE};
use crate::config::Settings;

/// The address [`Accounts::login`] counts attempts against: an operator's own tools (the
/// first-run link, tests), not a network client.
pub const LOCAL_ADDRESS: &str = "local";

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
    /// A place in the hashing queue: at most [`HASHING_SLOTS`](super::HASHING_SLOTS) jobs run
    /// and `login_hash_queue` wait; beyond, [`AccountError::Busy`] at once.
    fn ticket(&self) -> AccResult<SemaphorePermit<'_>> {
        self.admission.try_acquire().map_err(|_| AccountError::Busy)
    }

    /// Runs an argon2 job on a blocking thread, at most a few at once (the caller holds a
    /// [`Accounts::ticket`]).
    async fn hashing<T: Send + 'static>(
        &self,
        _ticket: &SemaphorePermit<'_>,
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
        let ticket = self.ticket()?;
        let password = password.to_string();
        self.hashing(&ticket, move || password::hash(&password))
            .await?
    }

    /// Checks `password` against `phc` (counted in [`Accounts::password_verifications`]).
    async fn verify(
        &self,
        ticket: &SemaphorePermit<'_>,
        password: &str,
        phc: &str,
    ) -> AccResult<bool> {
        let (password, phc) = (password.to_string(), phc.to_string());
        self.verifications.inc();
        self.hashing(ticket, move || password::verify(&password, &phc))
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

    fn limits(&self) -> LoginLimits {
        let s = &self.settings;
        LoginLimits {
            window_ms: Settings::min_ms(s.login_lockout_minutes),
            lockout_ms: Settings::min_ms(s.login_lockout_minutes),
            max_failures: s.login_max_failures,
            max_failures_per_address: s.login_max_failures_per_address,
            max_delay_ms: Settings::ms(s.login_delay_max_secs),
        }
    }

    /// [`Accounts::login_from`] an operator's own address ([`LOCAL_ADDRESS`]).
    pub async fn login(&self, email: &str, password: &str, now: Millis) -> AccResult<Login> {
        self.login_from(email, password, LOCAL_ADDRESS, now).await
    }

    /// `POST /api/auth/login` from client address `addr`: checks the password (an unknown
    /// e-mail takes the same steps and gets the same `BadCredentials`) and starts a login
    /// session. Before the password is checked the attempt is reserved as a failure
    /// ([`Accounts::reserve_attempt`]: lock-outs per address and account, per address, the
    /// account's growing delay), and a right password takes it back; so parallel guesses
    /// are checked at most as often as the limits allow. `Busy` when the hashing queue is
    /// full (nothing counted).
    pub async fn login_from(
        &self,
        email: &str,
        password: &str,
        addr: &str,
        now: Millis,
    ) -> AccResult<Login> {
        let email = normalize_email(email).map_err(|_| AccountError::BadCredentials)?;
        let ticket = self.ticket()?;
        self.reserve_attempt(&email, addr, now, &self.limits())
            .await?;
        let row = self.user_row_by_email(&email).await?;
        let phc = row
            .as_ref()
            .map_or_else(|| password::decoy().to_string(), |(_, h)| h.clone());
        let ok = self.verify(&ticket, password, &phc).await? && row.is_some();
        drop(ticket);
        let Some((user, _)) = row.filter(|_| ok) else {
            return Err(AccountError::BadCredentials);
        };
        self.attempt_succeeded(&email, addr).await?;
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
            self.delete_session(&tokens::token_hash(token), ended::LOGGED_OUT)
                .await?;
        }
        Ok(())
    }

    /// `POST /api/auth/password` from client address `addr`: checks the old password (as a
    /// login attempt: the same limits, failures count), stores the new one and ends the
    /// user's other login sessions (not `current_token`'s). Returns how many ended.
    pub async fn change_password(
        &self,
        user: &User,
        current_token: Option<&str>,
        old_password: &str,
        new_password: &str,
        addr: &str,
        now: Millis,
    ) -> AccResult<u64> {
        let ticket = self.ticket()?;
        self.reserve_attempt(&user.email, addr, now, &self.limits())
            .await?;
        let Some((_, phc)) = self.user_row(user.id).await? else {
            return Err(AccountError::NotFound);
        };
        if !self.verify(&ticket, old_password, &phc).await? {
            return Err(AccountError::BadCredentials);
        }
        drop(ticket);
        self.attempt_succeeded(&user.email, addr).await?;
        check_password(new_password)?;
        let hash = self.hash(new_password).await?;
        self.set_password_hash(user.id, &hash).await?;
        let keep = current_token.map(tokens::token_hash);
        self.delete_user_sessions(user.id, keep.as_deref(), ended::PASSWORD_CHANGED)
            .await
    }
}
