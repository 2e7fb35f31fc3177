//! The stored call settings (docs/calls.md, "Branding, consent and feature switches"): one
//! table of `(kind, scope) -> body`: the branding, the logo, the switches per app, every consent
//! text ever set, and the version the media servers compare with theirs.

use sqlx::Row;

use super::{text, Registry, Result};
use crate::call_settings::{consent_id, Branding, CallSettings, Logo, RoleFeatures};
use crate::clock::Millis;

const BRANDING: &str = "branding";
const LOGO: &str = "logo";
const FEATURES: &str = "features";
const CONSENT: &str = "consent";
const VERSION: &str = "version";
/// The scope of the organisation-wide rows.
const ALL: &str = "all";

fn read<T: serde::de::DeserializeOwned>(kind: &str, scope: &str, body: &str) -> Option<T> {
    serde_json::from_str(body)
        .map_err(|e| tracing::warn!(kind, scope, "stored call settings do not read back: {e}"))
        .ok()
}

type Tx<'a> = sqlx::Transaction<'a, sqlx::Any>;

impl Registry {
    /// Everything the media servers need.
    pub async fn call_settings(&self) -> Result<CallSettings> {
        let q = self.sql(
            "SELECT kind, scope, body, updated_ms FROM call_settings WHERE kind <> ? ORDER BY kind, scope LIMIT 1100",
        );
        let rows = sqlx::query(&q)
            .bind(CONSENT.to_string())
            .fetch_all(&self.pool)
            .await?;
        let mut out = CallSettings::default();
        for r in &rows {
            let (kind, scope): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            let body = text(r, 2)?;
            match kind.as_str() {
                BRANDING => out.branding = read(&kind, &scope, &body).unwrap_or_default(),
                LOGO => out.logo = read(&kind, &scope, &body),
                FEATURES => {
                    if let Some(f) = read::<RoleFeatures>(&kind, &scope, &body) {
                        out.features.insert(scope, f);
                    }
                }
                VERSION => out.version = r.try_get(3)?,
                _ => {}
            }
        }
        Ok(out)
    }

    /// When the settings last changed (0: never): a media server with another version is sent
    /// them again.
    pub async fn call_settings_version(&self) -> Result<i64> {
        let q = self.sql("SELECT updated_ms FROM call_settings WHERE kind = ? AND scope = ?");
        let v: Option<i64> = sqlx::query_scalar(&q)
            .bind(VERSION.to_string())
            .bind(ALL.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    async fn put_setting(
        &self,
        tx: &mut Tx<'_>,
        kind: &str,
        scope: &str,
        body: &str,
        now: Millis,
    ) -> Result<()> {
        self.delete_setting(tx, kind, scope).await?;
        let q = self
            .sql("INSERT INTO call_settings (kind, scope, body, updated_ms) VALUES (?, ?, ?, ?)");
        sqlx::query(&q)
            .bind(kind.to_string())
            .bind(scope.to_string())
            .bind(body.to_string())
            .bind(now)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Moves the version on (past the last one, even within the same millisecond) and commits.
    async fn bump_and_commit(&self, mut tx: Tx<'_>, now: Millis) -> Result<i64> {
        let q = self.sql("SELECT updated_ms FROM call_settings WHERE kind = ? AND scope = ?");
        let last: Option<i64> = sqlx::query_scalar(&q)
            .bind(VERSION.to_string())
            .bind(ALL.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        let version = now.max(last.unwrap_or(0) + 1);
        self.put_setting(&mut tx, VERSION, ALL, "{}", version)
            .await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Sets the branding (checked and trimmed before); its consent text is kept for the
    /// records of the calls whose guests accept it. Returns the new version.
    pub async fn set_branding(&self, branding: &Branding, now: Millis) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let body = serde_json::to_string(branding).expect("branding serialises");
        self.put_setting(&mut tx, BRANDING, ALL, &body, now).await?;
        if let Some(id) = branding.consent_id() {
            let body = serde_json::to_string(&branding.consent_text).expect("text serialises");
            self.put_setting(&mut tx, CONSENT, &id, &body, now).await?;
        }
        self.bump_and_commit(tx, now).await
    }

    /// Sets (or with `None` removes) the logo. Returns the new version.
    pub async fn set_logo(&self, logo: Option<&Logo>, now: Millis) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        match logo {
            Some(logo) => {
                let body = serde_json::to_string(logo).expect("logo serialises");
                self.put_setting(&mut tx, LOGO, ALL, &body, now).await?;
            }
            None => {
                self.delete_setting(&mut tx, LOGO, ALL).await?;
            }
        }
        self.bump_and_commit(tx, now).await
    }

    async fn delete_setting(&self, tx: &mut Tx<'_>, kind: &str, scope: &str) -> Result<bool> {
        let q = self.sql("DELETE FROM call_settings WHERE kind = ? AND scope = ?");
        let done = sqlx::query(&q)
            .bind(kind.to_string())
            .bind(scope.to_string())
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Sets the switches of `scope` (an app, or `default`). Returns the new version.
    pub async fn set_features(
        &self,
        scope: &str,
        features: &RoleFeatures,
        now: Millis,
    ) -> Result<i64> {
        let mut tx = self.pool.begin().await?;
        let body = serde_json::to_string(features).expect("switches serialise");
        self.put_setting(&mut tx, FEATURES, scope, &body, now)
            .await?;
        self.bump_and_commit(tx, now).await
    }

    /// How many scopes but `scope` have switches of their own.
    pub async fn other_feature_scopes(&self, scope: &str) -> Result<i64> {
        let q = self.sql("SELECT COUNT(*) FROM call_settings WHERE kind = ? AND scope <> ?");
        Ok(sqlx::query_scalar(&q)
            .bind(FEATURES.to_string())
            .bind(scope.to_string())
            .fetch_one(&self.pool)
            .await?)
    }

    /// Removes the switches of `scope`: the new version, or none when it had none.
    pub async fn delete_features(&self, scope: &str, now: Millis) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        if !self.delete_setting(&mut tx, FEATURES, scope).await? {
            return Ok(None);
        }
        Ok(Some(self.bump_and_commit(tx, now).await?))
    }

    /// The consent text of id `id` (any ever set), when known.
    pub async fn consent_text(&self, id: &str) -> Result<Option<String>> {
        let q = self.sql("SELECT body FROM call_settings WHERE kind = ? AND scope = ?");
        let row = sqlx::query(&q)
            .bind(CONSENT.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            Some(r) => read::<String>(CONSENT, id, &text(&r, 0)?).filter(|t| consent_id(t) == id),
            None => None,
        })
    }
}
