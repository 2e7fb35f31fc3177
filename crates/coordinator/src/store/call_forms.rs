//! The stored forms of calls (docs/calls.md, "Survey and fields"): the definitions per scope,
//! each call's field values, each participant's survey answers and their survey token's hash.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{text, Registry, Result};
use crate::call_forms::{CallForms, DEFAULT_SCOPE};
use crate::clock::Millis;

/// A survey answer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyAnswer {
    /// Who answered.
    pub participant_id: String,
    /// Which question.
    pub question_id: String,
    /// The answer.
    pub value: String,
    /// Its rating (rating questions).
    pub rating: Option<i64>,
    /// When.
    pub answered_ms: Millis,
}

fn parse(scope: &str, survey: &str, fields: &str) -> CallForms {
    let forms = serde_json::from_str(survey).and_then(|survey| {
        Ok(CallForms {
            survey,
            fields: serde_json::from_str(fields)?,
        })
    });
    forms.unwrap_or_else(|e| {
        tracing::warn!(scope, "stored call forms do not read back: {e}");
        CallForms::default()
    })
}

impl Registry {
    /// Rows of `scope, survey, fields` (MySQL's TEXT reaches `Any` as bytes: [`text`]).
    async fn form_rows<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<(String, String, String)>> {
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, text(r, 1)?, text(r, 2)?)))
            .collect()
    }

    /// Every scope's forms, by scope.
    pub async fn all_call_forms(&self) -> Result<BTreeMap<String, CallForms>> {
        let q = self.sql("SELECT scope, survey, fields FROM call_forms ORDER BY scope LIMIT 1000");
        let rows = self.form_rows(sqlx::query(&q)).await?;
        Ok(rows
            .into_iter()
            .map(|(scope, s, f)| {
                let forms = parse(&scope, &s, &f);
                (scope, forms)
            })
            .collect())
    }

    /// Sets the forms of `scope` (checked before).
    pub async fn set_call_forms(&self, scope: &str, forms: &CallForms, now: Millis) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let q = self.sql("DELETE FROM call_forms WHERE scope = ?");
        sqlx::query(&q)
            .bind(scope.to_string())
            .execute(&mut *tx)
            .await?;
        let q = self
            .sql("INSERT INTO call_forms (scope, survey, fields, updated_ms) VALUES (?, ?, ?, ?)");
        sqlx::query(&q)
            .bind(scope.to_string())
            .bind(serde_json::to_string(&forms.survey).expect("forms serialise"))
            .bind(serde_json::to_string(&forms.fields).expect("forms serialise"))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes the forms of `scope`; whether there were some.
    pub async fn delete_call_forms(&self, scope: &str) -> Result<bool> {
        let q = self.sql("DELETE FROM call_forms WHERE scope = ?");
        let done = sqlx::query(&q)
            .bind(scope.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The forms a call of app `rc_name` uses: the app's, else the default, else none.
    pub async fn forms_for_app(&self, rc_name: &str) -> Result<CallForms> {
        let q =
            self.sql("SELECT scope, survey, fields FROM call_forms WHERE scope = ? OR scope = ?");
        let query = sqlx::query(&q)
            .bind(rc_name.to_string())
            .bind(DEFAULT_SCOPE.to_string());
        let rows = self.form_rows(query).await?;
        let pick = rows
            .iter()
            .find(|r| r.0 == rc_name)
            .or_else(|| rows.iter().find(|r| r.0 == DEFAULT_SCOPE));
        Ok(pick
            .map(|(scope, s, f)| parse(scope, s, f))
            .unwrap_or_default())
    }

    /// Sets the field values of call `call_id` (checked before) as `by` left them.
    pub async fn set_field_values(
        &self,
        call_id: &str,
        values: &BTreeMap<String, String>,
        by: i64,
        now: Millis,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let q = self.sql("DELETE FROM call_field_values WHERE call_id = ?");
        sqlx::query(&q)
            .bind(call_id.to_string())
            .execute(&mut *tx)
            .await?;
        let q = self.sql(
            "INSERT INTO call_field_values (call_id, field_id, value, updated_ms, updated_by) VALUES (?, ?, ?, ?, ?)",
        );
        for (id, value) in values.iter().filter(|(_, v)| !v.trim().is_empty()) {
            sqlx::query(&q)
                .bind(call_id.to_string())
                .bind(id.clone())
                .bind(value.trim().to_string())
                .bind(now)
                .bind(by)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The field values of call `call_id`.
    pub async fn field_values(&self, call_id: &str) -> Result<BTreeMap<String, String>> {
        let q =
            self.sql("SELECT field_id, value FROM call_field_values WHERE call_id = ? LIMIT 100");
        let rows: Vec<(String, String)> = sqlx::query_as(&q)
            .bind(call_id.to_string())
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// Keeps the hash of the survey token participant `participant_id` of call `call_id` was
    /// given (their first join's).
    pub async fn set_participant_token(
        &self,
        call_id: &str,
        participant_id: &str,
        hash: &str,
    ) -> Result<()> {
        let q = self.sql(
            "UPDATE call_participants SET token_hash = ? WHERE call_id = ? AND participant_id = ? AND token_hash = ''",
        );
        sqlx::query(&q)
            .bind(hash.to_string())
            .bind(call_id.to_string())
            .bind(participant_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The hash of participant `participant_id`'s survey token, if they have one.
    pub async fn participant_token(
        &self,
        call_id: &str,
        participant_id: &str,
    ) -> Result<Option<String>> {
        let q = self.sql(
            "SELECT token_hash FROM call_participants WHERE call_id = ? AND participant_id = ?",
        );
        let hash: Option<String> = sqlx::query_scalar(&q)
            .bind(call_id.to_string())
            .bind(participant_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(hash.filter(|h| !h.is_empty()))
    }

    /// Stores participant `participant_id`'s `answers` (checked before: question, answer,
    /// rating). `false` (nothing stored) when they answered already.
    pub async fn add_survey_answers(
        &self,
        call_id: &str,
        participant_id: &str,
        answers: &[(String, String, Option<i64>)],
        now: Millis,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let q = self.sql(
            "SELECT COUNT(*) FROM call_survey_answers WHERE call_id = ? AND participant_id = ?",
        );
        let before: i64 = sqlx::query_scalar(&q)
            .bind(call_id.to_string())
            .bind(participant_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
        if before > 0 {
            return Ok(false);
        }
        let q = self.sql(
            "INSERT INTO call_survey_answers (call_id, participant_id, question_id, value, rating, answered_ms) \
             VALUES (?, ?, ?, ?, ?, ?)",
        );
        for (question, value, rating) in answers {
            let inserted = sqlx::query(&q)
                .bind(call_id.to_string())
                .bind(participant_id.to_string())
                .bind(question.clone())
                .bind(value.clone())
                .bind(*rating)
                .bind(now)
                .execute(&mut *tx)
                .await;
            match inserted {
                Ok(_) => {}
                // Another submission at the same moment won.
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit().await?;
        Ok(true)
    }

    /// The survey answers of call `call_id`, by participant and question.
    pub async fn survey_answers(&self, call_id: &str) -> Result<Vec<SurveyAnswer>> {
        let q = self.sql(
            "SELECT participant_id, question_id, value, rating, answered_ms FROM call_survey_answers \
             WHERE call_id = ? ORDER BY answered_ms, participant_id, question_id LIMIT 1000",
        );
        sqlx::query(&q)
            .bind(call_id.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(SurveyAnswer {
                    participant_id: r.try_get(0)?,
                    question_id: r.try_get(1)?,
                    value: r.try_get(2)?,
                    rating: r.try_get(3)?,
                    answered_ms: r.try_get(4)?,
                })
            })
            .collect()
    }
}
