//! Call records (docs/calls.md): every call, each participant with each of their joins and
//! leaves, and the chat, written as the call goes. Every write is idempotent (a node that
//! reconnects may send an event again): a call, a join, a chat line are keyed by what the
//! node gave them. A call whose server died stays open until that server registers again,
//! then [`Registry::close_open_calls`] ends it at its last event.

use sqlx::Row;

use orbita_protocol::{QualityLimitation, QualityReport};

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
    /// Their browser, from it (`Chrome 131`; empty: unknown).
    pub browser: String,
    /// Their operating system, from it (`Windows 10`; empty: unknown).
    pub os: String,
    /// Their kind of device, from it (`desktop`, `mobile`, `tablet`, ...; empty: unknown).
    pub device: String,
    /// The consent text they accepted before joining (its id; empty: none asked or accepted).
    pub consent_id: String,
    /// The label of their camera, as their browser named it (empty: none or not granted).
    pub camera: String,
    /// The label of their microphone (empty: none or not granted).
    pub microphone: String,
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

/// A participant's connection quality at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityPoint {
    /// Whose.
    pub participant_id: String,
    /// `browser` or `server`.
    pub source: String,
    /// When.
    pub at_ms: Millis,
    /// The figures.
    pub report: QualityReport,
}

/// The most quality points [`Registry::call`] reads back.
pub const MAX_QUALITY_READ: usize = 20_000;

/// A call as stored.
#[derive(Debug, Clone, PartialEq)]
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
    /// The recordings made of it: id and start, in order.
    pub recordings: Vec<(String, Millis)>,
    /// The name of the account that created or planned it.
    pub owner_name: Option<String>,
    /// Its people's connection quality, in order of time.
    pub quality: Vec<QualityPoint>,
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
            "INSERT INTO call_participants (call_id, participant_id, name, role, account_id, user_agent, browser, os, device, name_fold, first_joined_ms, consent_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        once(
            sqlx::query(&q)
                .bind(call_id.to_string())
                .bind(p.participant_id.clone())
                .bind(cut(&p.name, MAX_NAME_CHARS))
                .bind(cut(&p.role, 16))
                .bind(p.account_id)
                .bind(cut(&p.user_agent, MAX_USER_AGENT_CHARS))
                .bind(cut(&p.browser, 64))
                .bind(cut(&p.os, 64))
                .bind(cut(&p.device, 16))
                .bind(cut(&p.name, MAX_NAME_CHARS).to_lowercase())
                .bind(at)
                .bind(cut(&p.consent_id, 64))
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

    /// Participant `participant_id` of call `call_id` uses the camera and microphone of these
    /// labels (checked before).
    pub async fn call_devices(
        &self,
        call_id: &str,
        participant_id: &str,
        camera: &str,
        microphone: &str,
    ) -> Result<()> {
        let q = self.sql(
            "UPDATE call_participants SET camera = ?, microphone = ? WHERE call_id = ? AND participant_id = ?",
        );
        sqlx::query(&q)
            .bind(cut(camera, 200))
            .bind(cut(microphone, 200))
            .bind(call_id.to_string())
            .bind(participant_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
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

    /// Recording `recording_id` of call `call_id` started at `at` (again: nothing changes).
    pub async fn call_recording(
        &self,
        call_id: &str,
        recording_id: &str,
        at: Millis,
    ) -> Result<()> {
        let q = self.sql(
            "INSERT INTO call_recordings (call_id, recording_id, started_ms) VALUES (?, ?, ?)",
        );
        once(
            sqlx::query(&q)
                .bind(call_id.to_string())
                .bind(cut(recording_id, 128))
                .bind(at)
                .execute(&self.pool)
                .await,
        )?;
        self.call_event_at(call_id, at).await
    }

    /// `point` of call `call_id` (one of that participant, source and moment stored already:
    /// nothing changes).
    pub async fn call_quality(&self, call_id: &str, point: &QualityPoint) -> Result<()> {
        let q = self.sql(
            "INSERT INTO call_quality (call_id, participant_id, source, at_ms, out_kbps, in_kbps, loss_pct, \
             jitter_ms, rtt_ms, fps_out, fps_in, width, height, limitation) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        );
        let r = &point.report;
        let limitation = r.limitation.map(|l| {
            serde_json::to_value(l)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        });
        once(
            sqlx::query(&q)
                .bind(call_id.to_string())
                .bind(cut(&point.participant_id, 64))
                .bind(cut(&point.source, 8))
                .bind(point.at_ms)
                .bind(r.out_kbps)
                .bind(r.in_kbps)
                .bind(r.loss_pct)
                .bind(r.jitter_ms)
                .bind(r.rtt_ms)
                .bind(r.fps_out)
                .bind(r.fps_in)
                .bind(r.width.map(i64::from))
                .bind(r.height.map(i64::from))
                .bind(limitation)
                .execute(&self.pool)
                .await,
        )?;
        self.call_event_at(call_id, point.at_ms).await
    }

    /// The quality points of call `id`, in order of time (at most [`MAX_QUALITY_READ`]).
    async fn quality_of(&self, id: &str) -> Result<Vec<QualityPoint>> {
        let q = self.sql(&format!(
            "SELECT participant_id, source, at_ms, out_kbps, in_kbps, loss_pct, jitter_ms, rtt_ms, \
             fps_out, fps_in, width, height, limitation FROM call_quality WHERE call_id = ? \
             ORDER BY at_ms, participant_id, source LIMIT {MAX_QUALITY_READ}"
        ));
        let size = |v: Option<i64>| v.and_then(|v| u32::try_from(v).ok());
        sqlx::query(&q)
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let limitation: Option<String> = r.try_get(12)?;
                Ok(QualityPoint {
                    participant_id: r.try_get(0)?,
                    source: r.try_get(1)?,
                    at_ms: r.try_get(2)?,
                    report: QualityReport {
                        out_kbps: r.try_get(3)?,
                        in_kbps: r.try_get(4)?,
                        loss_pct: r.try_get(5)?,
                        jitter_ms: r.try_get(6)?,
                        rtt_ms: r.try_get(7)?,
                        fps_out: r.try_get(8)?,
                        fps_in: r.try_get(9)?,
                        width: size(r.try_get(10)?),
                        height: size(r.try_get(11)?),
                        limitation: limitation.and_then(|l| {
                            serde_json::from_value::<QualityLimitation>(serde_json::Value::String(
                                l,
                            ))
                            .ok()
                        }),
                    },
                })
            })
            .collect()
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

    /// How call `id` started, if it is stored.
    pub async fn call_start(&self, id: &str) -> Result<Option<NewCall>> {
        let q = self.sql(
            "SELECT id, code, rc_name, node_name, owner_id, started_ms FROM call_records WHERE id = ?",
        );
        sqlx::query(&q)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(new_call_of)
            .transpose()
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
            "SELECT c.id, c.code, c.rc_name, c.node_name, c.owner_id, c.started_ms, c.ended_ms, c.end_reason, u.name \
             FROM call_records c LEFT JOIN acc_users u ON u.id = c.owner_id WHERE c.id = ?",
        );
        let Some(row) = sqlx::query(&q)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let call = new_call_of(&row)?;
        let (ended_ms, end_reason, owner_name) =
            (row.try_get(6)?, row.try_get(7)?, row.try_get(8)?);
        let participants = self
            .participants_of(&[id.to_string()])
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
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
        let q = self.sql(
            "SELECT recording_id, started_ms FROM call_recordings WHERE call_id = ? \
             ORDER BY started_ms, recording_id LIMIT 100",
        );
        let recordings = sqlx::query_as(&q)
            .bind(id.to_string())
            .fetch_all(&self.pool)
            .await?;
        let quality = self.quality_of(id).await?;
        Ok(Some(CallRecord {
            call,
            ended_ms,
            end_reason,
            participants,
            presence,
            chat,
            recordings,
            owner_name,
            quality,
        }))
    }

    /// The participants of calls `ids` (at most [`MAX_PARTICIPANTS_READ`] a call on average),
    /// each with their call's id, by call in the order of `ids`, then in order of their first
    /// join.
    pub async fn participants_of(&self, ids: &[String]) -> Result<Vec<(String, CallParticipant)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; ids.len()].join(", ");
        let q = self.sql(&format!(
            "SELECT call_id, participant_id, name, role, account_id, user_agent, browser, os, device, consent_id, camera, microphone \
             FROM call_participants WHERE call_id IN ({marks}) \
             ORDER BY call_id, first_joined_ms, participant_id LIMIT {}",
            MAX_PARTICIPANTS_READ * ids.len()
        ));
        let mut query = sqlx::query(&q);
        for id in ids {
            query = query.bind(id.clone());
        }
        let mut rows = query
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>(0)?,
                    CallParticipant {
                        participant_id: r.try_get(1)?,
                        name: r.try_get(2)?,
                        role: r.try_get(3)?,
                        account_id: r.try_get(4)?,
                        user_agent: r.try_get(5)?,
                        browser: r.try_get(6)?,
                        os: r.try_get(7)?,
                        device: r.try_get(8)?,
                        consent_id: r.try_get(9)?,
                        camera: r.try_get(10)?,
                        microphone: r.try_get(11)?,
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        // In the order of `ids` (stable: each call's participants keep their order).
        let place: std::collections::HashMap<&str, usize> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        rows.sort_by_key(|(call, _)| place.get(call.as_str()).copied());
        Ok(rows)
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
    /// The name of the account that created or planned it.
    pub owner_name: Option<String>,
    /// How many recordings were made of it.
    pub recordings: i64,
    /// The lowest survey rating given (1 to 5), if any.
    pub rating: Option<i64>,
}

/// Which calls a list or an export holds; every condition given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallFilter {
    /// Only those this account created or planned (what an agent may see).
    pub scope: Option<i64>,
    /// Only those this account (an agent) created or planned.
    pub agent: Option<i64>,
    /// Only those that started at or after.
    pub from_ms: Option<Millis>,
    /// Only those that started before.
    pub to_ms: Option<Millis>,
    /// Only those with a customer whose name holds this (any case).
    pub customer: Option<String>,
    /// Only ended calls at least this long.
    pub min_duration_ms: Option<Millis>,
    /// Only ended calls at most this long.
    pub max_duration_ms: Option<Millis>,
    /// Only those recorded (`true`) or not (`false`).
    pub recorded: Option<bool>,
    /// Only those with a survey rating at least this.
    pub min_rating: Option<i64>,
    /// Only those with a survey rating at most this.
    pub max_rating: Option<i64>,
}

/// A bound value of a filter.
enum Bound {
    Int(i64),
    Text(String),
}

impl CallFilter {
    /// The SQL conditions (on `call_records c`) and the values they bind, in order.
    fn conditions(&self) -> (Vec<&'static str>, Vec<Bound>) {
        let (mut sql, mut binds) = (Vec::new(), Vec::new());
        // The conditions on one number each.
        let numbers = [
            ("c.owner_id = ?", self.scope),
            ("c.owner_id = ?", self.agent),
            ("c.started_ms >= ?", self.from_ms),
            ("c.started_ms < ?", self.to_ms),
            (
                "(c.ended_ms IS NOT NULL AND c.ended_ms - c.started_ms >= ?)",
                self.min_duration_ms,
            ),
            (
                "(c.ended_ms IS NOT NULL AND c.ended_ms - c.started_ms <= ?)",
                self.max_duration_ms,
            ),
            (
                "EXISTS (SELECT 1 FROM call_survey_answers a WHERE a.call_id = c.id AND a.rating >= ?)",
                self.min_rating,
            ),
            (
                "EXISTS (SELECT 1 FROM call_survey_answers a WHERE a.call_id = c.id AND a.rating <= ?)",
                self.max_rating,
            ),
        ];
        for (condition, value) in numbers {
            if let Some(value) = value {
                sql.push(condition);
                binds.push(Bound::Int(value));
            }
        }
        if let Some(name) = self
            .customer
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            sql.push(
                "EXISTS (SELECT 1 FROM call_participants p WHERE p.call_id = c.id \
                 AND p.role = 'customer' AND p.name_fold LIKE ? ESCAPE '!')",
            );
            let escaped: String = cut(name, MAX_NAME_CHARS)
                .to_lowercase()
                .chars()
                .flat_map(|ch| match ch {
                    '!' | '%' | '_' => vec!['!', ch],
                    ch => vec![ch],
                })
                .collect();
            binds.push(Bound::Text(format!("%{escaped}%")));
        }
        match self.recorded {
            Some(true) => {
                sql.push("EXISTS (SELECT 1 FROM call_recordings r WHERE r.call_id = c.id)")
            }
            Some(false) => {
                sql.push("NOT EXISTS (SELECT 1 FROM call_recordings r WHERE r.call_id = c.id)")
            }
            None => {}
        }
        (sql, binds)
    }
}

/// The most calls one list returns.
pub const MAX_CALLS_LISTED: usize = 500;

impl Registry {
    /// The calls `filter` lets through, newest first, from those that started before `before`
    /// (`(started_ms, id)`, the last of the previous page) on; at most `limit` (held to
    /// [`MAX_CALLS_LISTED`]).
    pub async fn list_calls(
        &self,
        filter: &CallFilter,
        before: Option<(Millis, String)>,
        limit: usize,
    ) -> Result<Vec<CallSummary>> {
        let (mut conditions, mut binds) = filter.conditions();
        if let Some((ms, id)) = before {
            // The first condition alone is a range of the (started_ms, id) index, so a deep
            // page starts where the cursor is instead of filtering every call before it.
            conditions.push("c.started_ms <= ? AND (c.started_ms < ? OR c.id < ?)");
            binds.extend([Bound::Int(ms), Bound::Int(ms), Bound::Text(id)]);
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = limit.clamp(1, MAX_CALLS_LISTED);
        let q = self.sql(&format!(
            "SELECT c.id, c.code, c.rc_name, c.node_name, c.owner_id, c.started_ms, c.ended_ms, c.end_reason, \
             (SELECT COUNT(*) FROM call_participants p WHERE p.call_id = c.id), u.name, \
             (SELECT COUNT(*) FROM call_recordings r WHERE r.call_id = c.id), \
             (SELECT MIN(a.rating) FROM call_survey_answers a WHERE a.call_id = c.id) \
             FROM call_records c LEFT JOIN acc_users u ON u.id = c.owner_id \
             {filter} ORDER BY c.started_ms DESC, c.id DESC LIMIT {limit}"
        ));
        let mut query = sqlx::query(&q);
        for bound in binds {
            query = match bound {
                Bound::Int(v) => query.bind(v),
                Bound::Text(v) => query.bind(v),
            };
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
                    owner_name: r.try_get(9)?,
                    recordings: r.try_get(10)?,
                    rating: r.try_get(11)?,
                })
            })
            .collect()
    }
}

/// The most accounts [`Registry::call_owners`] returns.
pub const MAX_CALL_OWNERS: usize = 1000;

impl Registry {
    /// The accounts that created or planned calls, by name: id and name.
    pub async fn call_owners(&self) -> Result<Vec<(i64, String)>> {
        let q = self.sql(&format!(
            "SELECT u.id, u.name FROM acc_users u WHERE EXISTS \
             (SELECT 1 FROM call_records c WHERE c.owner_id = u.id) \
             ORDER BY u.name, u.id LIMIT {MAX_CALL_OWNERS}"
        ));
        Ok(sqlx::query_as(&q).fetch_all(&self.pool).await?)
    }
}
