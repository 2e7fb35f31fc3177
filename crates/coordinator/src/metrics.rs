//! The coordinator's operations endpoints: `GET /metrics` (Prometheus text format, version
//! 0.0.4, encoded by `prometheus-client`) and `GET /healthz` (can it reach its database?).
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `orbita_coordinator_nodes_up` | gauge | nodes registered and heartbeating (the registry's, so the cluster's) |
//! | `orbita_coordinator_sessions` | gauge | live sessions (the registry's) |
//! | `orbita_coordinator_connections` | gauge | client WebSockets open on this process |
//! | `orbita_coordinator_joins_total` | counter | `CONNECT_TO_SESSION` answers: a client sent to a session's server (by code, or as its creator once the node started it) |
//! | `orbita_coordinator_refusals_total{reason}` | counter | every `ERROR` answer by its `code`, and `SERVERS_BUSY` / `SESSION_NOT_EXIST` |
//! | `orbita_coordinator_password_verifications_total` | counter | passwords checked against their argon2 hash (logins and password changes; refused attempts are not checked) |
//! | `orbita_coordinator_request_duration_seconds{verb}` | histogram | time from a client's message to its answer, by verb ([`CLIENT_VERBS`], else `OTHER`) |
//!
//! The gauges read the registry at scrape time ([`Metrics::refresh`]); the counters and the
//! histogram count as answers go out ([`Metrics::answered`], [`Metrics::observe`]). Every label
//! value is from a fixed set, and every series exists from the start (at 0).

use std::borrow::Cow;
use std::time::Duration;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry as MetricRegistry;
use serde::Deserialize;
use sqlx::Row;

use crate::store::Registry;
use crate::verbs::{ToClient, ALL_ERROR_CODES, CLIENT_VERBS};

/// The `Content-Type` of `/metrics`: the Prometheus text format, version 0.0.4.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The `verb` label of messages that are not a known request (bad JSON, no or unknown verb,
/// too large).
pub const OTHER_VERB: &str = "OTHER";

/// How long `/healthz` and the gauges wait for the database.
pub const DB_TIMEOUT: Duration = Duration::from_secs(2);

/// Refusals that are answers of their own rather than an `ERROR` code.
const REFUSAL_MESSAGES: [&str; 2] = ["SERVERS_BUSY", "SESSION_NOT_EXIST"];

type Label = [(&'static str, &'static str); 1];
type HistogramFamily = Family<Label, Histogram, fn() -> Histogram>;

/// Every `reason` label value: the `ERROR` codes, then `SERVERS_BUSY` and `SESSION_NOT_EXIST`.
pub fn refusal_reasons() -> impl Iterator<Item = &'static str> {
    ALL_ERROR_CODES
        .iter()
        .map(|(_, name)| *name)
        .chain(REFUSAL_MESSAGES)
}

/// The `verb` label of a client's message: its verb when it is one of [`CLIENT_VERBS`], else
/// [`OTHER_VERB`].
pub fn verb_label(text: &str) -> &'static str {
    #[derive(Deserialize)]
    struct Verb<'a> {
        #[serde(borrow)]
        verb: Option<Cow<'a, str>>,
    }
    serde_json::from_str::<Verb>(text)
        .ok()
        .and_then(|v| v.verb)
        .and_then(|verb| CLIENT_VERBS.iter().find(|known| **known == verb))
        .copied()
        .unwrap_or(OTHER_VERB)
}

/// Request latency buckets: 0.25 ms to about 4 s, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.00025, 2.0, 15))
}

/// The coordinator's metrics (one per [`crate::server::Hub`]).
#[derive(Debug)]
pub struct Metrics {
    registry: MetricRegistry,
    nodes_up: Gauge,
    sessions: Gauge,
    connections: Gauge,
    joins: Counter,
    refusals: Family<Label, Counter>,
    password_verifications: Counter,
    durations: HistogramFamily,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at 0.
    pub fn new() -> Metrics {
        Metrics::with_password_verifications(Counter::default())
    }

    /// Every metric at 0 but `password_verifications`, the accounts' own counter
    /// ([`crate::accounts::Accounts::password_verifications`]).
    pub fn with_password_verifications(password_verifications: Counter) -> Metrics {
        let m = Metrics {
            registry: MetricRegistry::default(),
            nodes_up: Gauge::default(),
            sessions: Gauge::default(),
            connections: Gauge::default(),
            joins: Counter::default(),
            refusals: Family::default(),
            password_verifications,
            durations: HistogramFamily::new_with_constructor(duration_histogram),
        };
        for reason in refusal_reasons() {
            let _ = m.refusals.get_or_create(&[("reason", reason)]);
        }
        for verb in CLIENT_VERBS.iter().copied().chain([OTHER_VERB]) {
            let _ = m.durations.get_or_create(&[("verb", verb)]);
        }
        let mut registry = MetricRegistry::default();
        // Help texts without a final period: the registry adds one.
        registry.register(
            "orbita_coordinator_nodes_up",
            "Nodes registered and heartbeating (the registry's)",
            m.nodes_up.clone(),
        );
        registry.register(
            "orbita_coordinator_sessions",
            "Live sessions (the registry's)",
            m.sessions.clone(),
        );
        registry.register(
            "orbita_coordinator_connections",
            "Client WebSockets open on this coordinator",
            m.connections.clone(),
        );
        // Counter names without `_total`: the encoder appends it.
        registry.register(
            "orbita_coordinator_joins",
            "Clients sent to a session (CONNECT_TO_SESSION answers)",
            m.joins.clone(),
        );
        registry.register(
            "orbita_coordinator_refusals",
            "Refused requests by reason (the ERROR code, SERVERS_BUSY or SESSION_NOT_EXIST)",
            m.refusals.clone(),
        );
        registry.register(
            "orbita_coordinator_password_verifications",
            "Passwords checked against their hash (logins and password changes)",
            m.password_verifications.clone(),
        );
        registry.register(
            "orbita_coordinator_request_duration_seconds",
            "Time from a client's message to its answer, by verb (OTHER: not a known request)",
            m.durations.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts an answer or notice sent to a client: a join (`CONNECT_TO_SESSION`) or a refusal
    /// (`ERROR`, `SERVERS_BUSY`, `SESSION_NOT_EXIST`); anything else is not counted.
    pub fn answered(&self, msg: &ToClient) {
        let reason = match msg {
            ToClient::ConnectToSession { .. } => {
                self.joins.inc();
                return;
            }
            ToClient::Error(e) => e.code.as_str(),
            ToClient::ServersBusy => REFUSAL_MESSAGES[0],
            ToClient::SessionNotExist => REFUSAL_MESSAGES[1],
            _ => return,
        };
        self.refusals.get_or_create(&[("reason", reason)]).inc();
    }

    /// Records how long the answer to a message with this `verb` label ([`verb_label`]) took.
    pub fn observe(&self, verb: &'static str, elapsed: Duration) {
        self.durations
            .get_or_create(&[("verb", verb)])
            .observe(elapsed.as_secs_f64());
    }

    /// Sets the gauges: `connections` as given, nodes up and live sessions from the registry
    /// (within [`DB_TIMEOUT`]; on failure they keep their last values and the error is
    /// returned).
    pub async fn refresh(&self, store: &Registry, connections: usize) -> Result<(), String> {
        self.connections
            .set(i64::try_from(connections).unwrap_or(i64::MAX));
        let query = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM coord_nodes WHERE status = 'up'), \
             (SELECT COUNT(*) FROM coord_sessions WHERE state = 'live')",
        )
        .fetch_one(store.pool());
        let row = match tokio::time::timeout(DB_TIMEOUT, query).await {
            Ok(Ok(row)) => row,
            Ok(Err(e)) => return Err(format!("the registry: {e}")),
            Err(_) => return Err(format!("the registry did not answer within {DB_TIMEOUT:?}")),
        };
        let count = |i: usize| row.try_get::<i64, _>(i).map_err(|e| e.to_string());
        self.nodes_up.set(count(0)?);
        self.sessions.set(count(1)?);
        Ok(())
    }

    /// The metrics in the Prometheus text format (serve with [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// `/healthz`: whether the registry's database answers a trivial query within
/// [`DB_TIMEOUT`]; the error says why not, in a few words.
pub async fn health(store: &Registry) -> Result<(), String> {
    let query = sqlx::query("SELECT 1").execute(store.pool());
    match tokio::time::timeout(DB_TIMEOUT, query).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("database unreachable: {e}")),
        Err(_) => Err(format!(
            "database did not answer within {} s",
            DB_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verbs::{ErrorCode, ErrorReply};

    #[test]
    fn verbs_are_labelled_from_a_fixed_set() {
        for verb in CLIENT_VERBS {
            let text = format!(r#"{{"verb":"{verb}","x":[1,{{"y":2}}]}}"#);
            assert_eq!(verb_label(&text), verb);
        }
        assert_eq!(
            verb_label(r#"{"code":"1","verb":"CONNECT_SESSION\u005fWITH_CODE"}"#),
            "CONNECT_SESSION_WITH_CODE"
        );
        for other in [
            "{oops",
            "[]",
            "{}",
            r#"{"verb":7}"#,
            r#"{"verb":"FLY"}"#,
            r#"{"verb":"get_servers"}"#,
        ] {
            assert_eq!(verb_label(other), OTHER_VERB, "{other}");
        }
    }

    #[test]
    fn answers_count_joins_and_refusals_by_reason() {
        let m = Metrics::new();
        m.answered(&ToClient::ConnectToSession {
            ip: "127.0.0.1".into(),
            port: "1".into(),
            code: "1234".into(),
            host_key: None,
        });
        m.answered(&ToClient::ServersBusy);
        m.answered(&ToClient::SessionNotExist);
        m.answered(&ToClient::SessionNotExist);
        m.answered(&ToClient::Error(ErrorReply::new(ErrorCode::BadCode, "x")));
        m.answered(&ToClient::ServersNotFound);
        m.observe("GET_SERVERS", Duration::from_millis(3));
        let text = m.encode();
        for line in [
            "# TYPE orbita_coordinator_joins_total counter",
            "orbita_coordinator_joins_total 1",
            "orbita_coordinator_refusals_total{reason=\"SERVERS_BUSY\"} 1",
            "orbita_coordinator_refusals_total{reason=\"SESSION_NOT_EXIST\"} 2",
            "orbita_coordinator_refusals_total{reason=\"BAD_CODE\"} 1",
            "orbita_coordinator_refusals_total{reason=\"INTERNAL\"} 0",
            "# TYPE orbita_coordinator_request_duration_seconds histogram",
            "orbita_coordinator_request_duration_seconds_bucket{verb=\"GET_SERVERS\",le=\"0.002\"} 0",
            "orbita_coordinator_request_duration_seconds_bucket{verb=\"GET_SERVERS\",le=\"0.004\"} 1",
            "orbita_coordinator_request_duration_seconds_bucket{verb=\"GET_SERVERS\",le=\"+Inf\"} 1",
            "orbita_coordinator_request_duration_seconds_count{verb=\"GET_SERVERS\"} 1",
            "orbita_coordinator_request_duration_seconds_count{verb=\"OTHER\"} 0",
            "# TYPE orbita_coordinator_nodes_up gauge",
            "orbita_coordinator_connections 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        // One series per reason, none for other answers.
        let reasons = text
            .lines()
            .filter(|l| l.starts_with("orbita_coordinator_refusals_total{"))
            .count();
        assert_eq!(reasons, refusal_reasons().count());
    }

    #[tokio::test]
    async fn gauges_and_health_read_the_registry() {
        let store = Registry::in_memory().await.unwrap();
        let m = Metrics::new();
        m.refresh(&store, 3).await.unwrap();
        let text = m.encode();
        for line in [
            "orbita_coordinator_nodes_up 0",
            "orbita_coordinator_sessions 0",
            "orbita_coordinator_connections 3",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
        assert_eq!(health(&store).await, Ok(()));
        store.close().await;
        let e = health(&store).await.unwrap_err();
        assert!(e.starts_with("database unreachable"), "{e}");
        assert!(m.refresh(&store, 0).await.is_err());
    }
}
