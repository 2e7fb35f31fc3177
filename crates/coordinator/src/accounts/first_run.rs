//! The first run: while no administrator exists, the server prints a one-time link
//! (`/setup?token=...`, 256 random bits) on its own console, and the first person to open it
//! creates the administrator account in the browser (`POST /api/setup`). The token lives only
//! in this process's memory: valid until used (or until the process ends; a restart prints a
//! new one), useless once any administrator exists.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use parking_lot::Mutex;

use super::{AccResult, Accounts, Login};
use crate::clock::Millis;

/// The one-time setup token of this process.
#[derive(Debug, Default)]
pub struct FirstRun {
    token: Mutex<Option<String>>,
}

/// Why `POST /api/setup` did not create the administrator.
#[derive(Debug)]
pub enum SetupError {
    /// An administrator exists (or the link was used): log in instead.
    Done,
    /// The token is not this server's.
    BadToken,
    /// The account was refused (bad e-mail or password) or the database failed.
    Account(super::AccountError),
}

impl FirstRun {
    /// Opens the setup when `accounts` has no administrator; returns the token to print.
    /// An open setup keeps its token.
    pub async fn open(&self, accounts: &Accounts) -> AccResult<Option<String>> {
        if accounts.has_admin().await? {
            *self.token.lock() = None;
            return Ok(None);
        }
        let mut token = self.token.lock();
        Ok(Some(
            token
                .get_or_insert_with(|| crate::logic::random_hex(32))
                .clone(),
        ))
    }

    /// Whether a setup link is open (no administrator was made through it yet).
    pub fn is_open(&self) -> bool {
        self.token.lock().is_some()
    }

    /// Creates the first administrator `email` with `password` if `token` is the open one and
    /// still no administrator exists; the token is then spent. Logged in as them.
    pub async fn finish(
        &self,
        accounts: &Accounts,
        token: &str,
        email: &str,
        password: &str,
        now: Millis,
    ) -> Result<Login, SetupError> {
        let matches = match self.token.lock().as_deref() {
            None => return Err(SetupError::Done),
            Some(open) => verify_slices_are_equal(open.as_bytes(), token.as_bytes()).is_ok(),
        };
        if !matches {
            return Err(SetupError::BadToken);
        }
        let created = accounts
            .ensure_first_admin(email, password, now)
            .await
            .map_err(SetupError::Account)?;
        // Made now, or someone else made one meanwhile: either way the link is spent.
        *self.token.lock() = None;
        if !created {
            return Err(SetupError::Done);
        }
        accounts
            .login(email, password, now)
            .await
            .map_err(SetupError::Account)
    }
}
