//! Call records (docs/calls.md): every call, each participant with each of their joins and
//! leaves, and the chat, written as the call goes. Every write is idempotent (a node that
//! reconnects may send an event again): a call, a join, a chat line are keyed by what the
//! node gave them. A call whose server died stays open until that server registers again,
//! then [`Registry::close_open_calls`] ends it at its last event.

use sqlx::Row;

use super::{Registry, Result};
use crate::clock::Millis;

/// The most chat lines [`Registry::call`] reads back.
pub const MAX_CHAT_READ: usize = 10_000;
/// The most participants [`Registry::call`] reads back.
pub const MAX_PARTICIPANTS_READ: usize = 1_000;
/// The longest text kept of a chat line, a name or a user agent (longer is cut).
pub const MAX_CHAT_CHARS: usize = 4000;
const MAX_NAME_CHARS: usize = 100;
const MAX_USER_AGENT_CHARS: usize = 512;

/// A call as it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    /// Its id (the node's: unique in the cluster).
    pub id: String,
    /// Its join code.
    pub code: String,
    /// Its app.
    pub rc_name: String,
    /// The node that hosts it.
    pub node: String,
    /// The account that created or planned it.
    pub owner_id: Option<i64>,
    /// When it started.
    pub started_ms: Millis,
}

/// Someone in a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallParticipant {
    /// Their id in the call (the node's).
    pub participant_id: String,
    /// The name they gave.
    pub name: String,
    /// `agent`, `customer` or `participant`.
    pub role: String,
    /// Their account, when logged in.
    pub account_id: Option<i64>,
    /// Their browser's `User-Agent`.
    pub user_agent: String,
}

/// One stay of a participant in the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    /// Who.
    pub participant_id: String,
    /// From.
    pub joined_ms: Millis,
    /// Until (`None`: still there, or the call was cut).
    pub left_ms: Option<Millis>,
}

/// A chat line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// Its number in the call (the node's).
    pub seq: i64,
    /// Who wrote it.
    pub participant_id: String,
    /// When.
    pub sent_ms: Millis,
    /// What.
    pub body: String,
}

/// A call as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// How it started.
    pub call: NewCall,
    /// When it ended (`None`: going on).
    pub ended_ms: Option<Millis>,
    /// Why (`empty`, `ended`, `server_restart`, ...).
    pub end_reason: Option<String>,
    /// Everyone who took part, in order of their first join.
    pub participants: Vec<CallParticipant>,
    /// Every join and leave, in order.
    pub presence: Vec<Presence>,
    /// The chat, in order.
    pub chat: Vec<ChatLine>,
}

/// An insert that may have been made before (an event sent again): its key taken is fine.
fn once(result: std::result::Result<sqlx::any::AnyQueryResult, sqlx::Error>) -> Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A call's start from a row whose first columns are `id, code, rc_name, node_name, owner_id,
/// started_ms`.
fn new_call_of(row: &sqlx::any::AnyRow) -> Result<NewCall> {
    Ok(NewCall {
        id: row.try_get(0)?,
        code: row.try_get(1)?,
        rc_name: row.try_get(2)?,
        node: row.try_get(3)?,
        owner_id: row.try_get(4)?,
        started_ms: row.try_get(5)?,
    })
}

fn cut(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl Registry {
    /// Call `c` started (again: nothing changes).
    pub async fn call_started(&self, c: &NewCall) -> Result<()> {
        let q = self.sql(
            "INSERT INTO call_records (id, code, rc_name, node_name, owner_id, started_ms, last_event_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        once(
            sqlx::query(&q)
                .bind(c.id.clone())
                .bind(c.code.clone())
                .bind(c.rc_name.clone())
                .bind(c.node.clone())
                .bind(c.owner_id)
                .bind(c.started_ms)
                .bind(c.started_ms)
                .execute(&self.pool)
                .await,
        )
    }

    /// Moves the call's last event to `at` (what a cut call is closed at).
    async fn call_event_at(&self, call_id: &str, at: Millis) -> Result<()> {
        let q = self
            .sql("UPDATE call_records SET last_event_ms = ? WHERE id = ? AND last_event_ms < ?");
        sqlx::query(&q)
            .bind(at)
            .bind(call_id.to_string())
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// `p` joined call `call_id` at `at` (their details are kept from their first join).
    pub async fn call_joined(&self, call_id: &str, p: &CallParticipant, at: Millis) -> Result<()> {
        let q = self.sql(
            "INSERT INTO call_participants (call_id, participant_id, name, role, account_id, user_agent, first_joined_ms) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        once(
            sqlx::query(&q)
                .bind(call_id.to_string())
                .bind(p.participant_id.clone())
                .bind(cut(&p.name, MAX_NAME_CHARS))
                .bind(cut(&p.role, 16))
                .bind(p.account_id)
                .bind(cut(&p.user_agent, MAX_USER_AGENT_CHARS))
                .bind(at)
                .execute(&self.pool)
                .await,
        )?;
        let q = self
            .sql("INSERT INTO call_presence (call_id, participant_id, joined_ms) VALUES (?, ?, ?)");
        once(
            sqlx::query(&q)
                .bind(call_id.to_string())
                .bind(p.participant_id.clone())
                .bind(at)
                .execute(&self.pool)
                .await,
        )?;
        self.call_event_at(call_id, at).await
    }

    /// Participant `participant_id` left call `call_id` at `at`: their open stay ends.
    pub async fn call_left(&self, call_id: &str, participant_id: &str, at: Millis) -> Result<()> {
        let q = self.sql(
            "UPDATE call_presence SET left_ms = ? \
             WHERE call_id = ? AND participant_id = ? AND left_ms IS NULL AND joined_ms <= ?",
        );
        sqlx::query(&q)
            .bind(at)
            .bind(call_id.to_string())
            .bind(participant_id.to_string())
            .bind(at)
            .execute(&self.pool)
            .await?;
        self.call_event_at(call_id, at).await
    }

    /// Chat line `line` of call `call_id` (a line of that `seq` stored already: nothing
    /// changes). Text beyond [`MAX_CHAT_CHARS`] is cut.
    pub async fn call_chat(&self, call_id: &str, line: &ChatLine) -> Result<()> {
        let q = self.sql(
            "INSERT INTO call_chat (call_id, seq, participant_id, sent_ms, body) VALUES (?, ?, ?, ?, ?)",
        );
        once(
            sqlx::query(&q)
                .bind(call_id.to_string())
                .bind(line.seq)
                .bind(line.participant_id.clone())
                .bind(line.sent_ms)
                .bind(cut(&line.body, MAX_CHAT_CHARS))
                .execute(&self.pool)
                .await,
        )?;
        self.call_event_at(call_id, line.sent_ms).await
    }

    /// Call `call_id` ended at `at` for `reason`: so does every stay still open. An ended call
    /// keeps its first end.
    pub async fn call_ended(&self, call_id: &str, at: Millis, reason: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let q =
            self.sql("UPDATE call_presence SET left_ms = ? WHERE call_id = ? AND left_ms IS NULL");
        sqlx::query(&q)
            .bind(at)
            .bind(call_id.to_string())
            .execute(&mut *tx)
            .await?;
        let q = self.sql(
            "UPDATE call_records SET ended_ms = ?, end_reason = ?, last_event_ms = ? \
             WHERE id = ? AND ended_ms IS NULL",
        );
        sqlx::query(&q)
            .bind(at)
            .bind(cut(reason, 32))
            .bind(at)
            .bind(call_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The ids of the calls of room code `code`, oldest first (at most 100).
    pub async fn calls_of_code(&self, code: &str) -> Result<Vec<String>> {
        let q = self
            .sql("SELECT id FROM call_records WHERE code = ? ORDER BY started_ms, id LIMIT 100");
        Ok(sqlx::query_scalar(&q)
            .bind(code.to_string())
            .fetch_all(&self.pool)
            .await?)
    }

    /// The node that holds call `id`, if it is stored.
    pub async fn call_node(&self, id: &str) -> Result<Option<String>> {
        let q = self.sql("SELECT node_name FROM call_records WHERE id = ?");
        Ok(sqlx::query_scalar(&q)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The calls of `node` still open but for those in `live` (it registered again without
    /// them: its server died and restarted): each ends at its last event, `server_restart`.
    /// Returns their ids.
    pub async fn close_open_calls(&self, node: &str, live: &[String]) -> Result<Vec<String>> {
        let q = self.sql(
            "SELECT id, last_event_ms FROM call_records WHERE node_name = ? AND ended_ms IS NULL ORDER BY id",
        );
        let open: Vec<(String, i64)> = sqlx::query_as(&q)
            .bind(node.to_string())
            .fetch_all(&self.pool)
            .await?;
        let open: Vec<(String, i64)> = open
            .into_iter()
            .filter(|(id, _)| !live.contains(id))
            .collect();
        for (id, last) in &open {
            self.call_ended(id, *last, "server_restart").await?;
        }
        Ok(open.into_iter().map(|(id, _)| id).collect())
    }

    /// Call `id` with everything stored of it.
    pub async fn call(&self, id: &str) -> Result<Option<CallRecord>> {
        let q = self.sql(
            "SELECT id, code, rc_name, node_name, owner_id, started_ms, ended_ms, end_reason \
             FROM call_records WHERE id = ?",
        );
        let Some(row) = sqlx::query(&q)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let call = new_call_of(&row)?;
        let (ended_ms, end_reason) = (row.try_get(6)?, row.try_get(7)?);
        let q = self.sql(&format!(
            "SELECT participant_id, name, role, account_id, user_agent FROM call_participants \
             WHERE call_id = ? ORDER BY first_joined_ms, participant_id LIMIT {MAX_PARTICIPANTS_READ}"
        ));
        let participants = sqlx::query(&q)
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(CallParticipant {
                    participant_id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    role: r.try_get(2)?,
                    account_id: r.try_get(3)?,
                    user_agent: r.try_get(4)?,
                })
            })
            .collect::<Result<_>>()?;
        let q = self.sql(
            "SELECT participant_id, joined_ms, left_ms FROM call_presence \
             WHERE call_id = ? ORDER BY joined_ms, participant_id",
        );
        let presence = sqlx::query(&q)
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Presence {
                    participant_id: r.try_get(0)?,
                    joined_ms: r.try_get(1)?,
                    left_ms: r.try_get(2)?,
                })
            })
            .collect::<Result<_>>()?;
        let q = self.sql(&format!(
            "SELECT seq, participant_id, sent_ms, body FROM call_chat \
             WHERE call_id = ? ORDER BY seq LIMIT {MAX_CHAT_READ}"
        ));
        let chat = sqlx::query(&q)
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(ChatLine {
                    seq: r.try_get(0)?,
                    participant_id: r.try_get(1)?,
                    sent_ms: r.try_get(2)?,
                    body: r.try_get(3)?,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Some(CallRecord {
            call,
            ended_ms,
            end_reason,
            participants,
            presence,
            chat,
        }))
    }
}

/// A call in a list of calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSummary {
    /// How it started.
    pub call: NewCall,
    /// When it ended (`None`: going on).
    pub ended_ms: Option<Millis>,
    /// Why.
    pub end_reason: Option<String>,
    /// How many took part.
    pub participants: i64,
}

/// The most calls one list returns.
pub const MAX_CALLS_LISTED: usize = 200;

impl Registry {
    /// The calls of `owner` (`None`: everyone's), newest first, from those that started
    /// before `before` (`(started_ms, id)`, the last of the previous page) on; at most `limit`
    /// (held to [`MAX_CALLS_LISTED`]).
    pub async fn list_calls(
        &self,
        owner: Option<i64>,
        before: Option<(Millis, String)>,
        limit: usize,
    ) -> Result<Vec<CallSummary>> {
        let mut conditions = Vec::new();
        if owner.is_some() {
            conditions.push("c.owner_id = ?");
        }
        if before.is_some() {
            conditions.push("(c.started_ms < ? OR (c.started_ms = ? AND c.id < ?))");
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = limit.clamp(1, MAX_CALLS_LISTED);
        let q = self.sql(&format!(
            "SELECT c.id, c.code, c.rc_name, c.node_name, c.owner_id, c.started_ms, c.ended_ms, c.end_reason, \
             (SELECT COUNT(*) FROM call_participants p WHERE p.call_id = c.id) \
             FROM call_records c {filter} ORDER BY c.started_ms DESC, c.id DESC LIMIT {limit}"
        ));
        let mut query = sqlx::query(&q);
        if let Some(owner) = owner {
            query = query.bind(owner);
        }
        if let Some((ms, id)) = before {
            query = query.bind(ms).bind(ms).bind(id);
        }
        query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(CallSummary {
                    call: new_call_of(r)?,
                    ended_ms: r.try_get(6)?,
                    end_reason: r.try_get(7)?,
                    participants: r.try_get(8)?,
                })
            })
            .collect()
    }
}
