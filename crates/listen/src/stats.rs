//! What a listener accepted and refused, and its `/metrics` lines.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::caps::{ConnectionCaps, Refusal};
use crate::deadlines::Expiry;

/// Counters of one listener (shared: [`crate::serve`] counts, the metrics page reads).
#[derive(Debug, Default)]
pub struct ListenerStats {
    accepted: AtomicU64,
    refused_total: AtomicU64,
    refused_per_address: AtomicU64,
    header_timeouts: AtomicU64,
    idle_timeouts: AtomicU64,
    tls_failures: AtomicU64,
    caps: parking_lot::Mutex<Option<Arc<ConnectionCaps>>>,
}

/// A reading of [`ListenerStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerCounts {
    /// Connections open now.
    pub open: u64,
    /// Connections accepted within the caps, since start.
    pub accepted: u64,
    /// Connections closed at accept because `max_connections` were open.
    pub refused_total: u64,
    /// Connections closed at accept because their address had `max_connections_per_address`.
    pub refused_per_address: u64,
    /// Connections closed for not sending a request head (TLS handshake included) in time.
    pub header_timeouts: u64,
    /// Keep-alive connections closed after `idle_timeout` without a request.
    pub idle_timeouts: u64,
    /// TLS handshakes that failed (not counting time-outs).
    pub tls_failures: u64,
}

impl ListenerStats {
    /// New counters, all zero.
    pub fn new() -> Arc<ListenerStats> {
        Arc::new(ListenerStats::default())
    }

    /// The counters now.
    pub fn counts(&self) -> ListenerCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ListenerCounts {
            open: self.caps.lock().as_ref().map_or(0, |c| c.open() as u64),
            accepted: get(&self.accepted),
            refused_total: get(&self.refused_total),
            refused_per_address: get(&self.refused_per_address),
            header_timeouts: get(&self.header_timeouts),
            idle_timeouts: get(&self.idle_timeouts),
            tls_failures: get(&self.tls_failures),
        }
    }

    /// Prometheus text exposition of the counters, each metric named `{prefix}_...` (e.g.
    /// `orbita_http`), for a server's `/metrics` page.
    pub fn prometheus_text(&self, prefix: &str) -> String {
        let c = self.counts();
        let mut out = String::new();
        let mut head = |name: &str, kind: &str, help: &str| {
            out.push_str(&format!(
                "# HELP {prefix}_{name} {help}\n# TYPE {prefix}_{name} {kind}\n"
            ));
        };
        head("connections_open", "gauge", "Connections open now.");
        head(
            "connections_accepted_total",
            "counter",
            "Connections accepted within the caps.",
        );
        head(
            "connections_refused_total",
            "counter",
            "Connections closed at accept, by the cap they hit.",
        );
        head(
            "connections_timed_out_total",
            "counter",
            "Connections closed by a timeout: header_read (no request head in time, TLS handshake included) or idle (keep-alive without a request).",
        );
        head(
            "tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed (time-outs not included).",
        );
        let lines = [
            ("connections_open", String::new(), c.open),
            ("connections_accepted_total", String::new(), c.accepted),
            (
                "connections_refused_total",
                "{cap=\"max_connections\"}".into(),
                c.refused_total,
            ),
            (
                "connections_refused_total",
                "{cap=\"max_connections_per_address\"}".into(),
                c.refused_per_address,
            ),
            (
                "connections_timed_out_total",
                "{timeout=\"header_read\"}".into(),
                c.header_timeouts,
            ),
            (
                "connections_timed_out_total",
                "{timeout=\"idle\"}".into(),
                c.idle_timeouts,
            ),
            (
                "tls_handshake_failures_total",
                String::new(),
                c.tls_failures,
            ),
        ];
        for (name, labels, value) in lines {
            out.push_str(&format!("{prefix}_{name}{labels} {value}\n"));
        }
        out
    }

    pub(crate) fn watch(&self, caps: &Arc<ConnectionCaps>) {
        *self.caps.lock() = Some(Arc::clone(caps));
    }

    pub(crate) fn accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refused(&self, why: Refusal) {
        let counter = match why {
            Refusal::Total => &self.refused_total,
            Refusal::PerAddress => &self.refused_per_address,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn expired(&self, what: Expiry) {
        let counter = match what {
            Expiry::HeaderRead => &self.header_timeouts,
            Expiry::Idle => &self.idle_timeouts,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn tls_failed(&self) {
        self.tls_failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// `app` with the counters of `stats` ([`ListenerStats::prometheus_text`], metrics named
/// `{prefix}_...`) appended to its successful `GET /metrics` answers.
pub fn with_metrics(app: Router, stats: Arc<ListenerStats>, prefix: &'static str) -> Router {
    app.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let stats = Arc::clone(&stats);
            async move {
                let metrics = request.method() == Method::GET && request.uri().path() == "/metrics";
                let response = next.run(request).await;
                if !metrics || !response.status().is_success() {
                    return response;
                }
                let (mut parts, body) = response.into_parts();
                let Ok(text) = axum::body::to_bytes(body, METRICS_PAGE_MAX_BYTES).await else {
                    return StatusCode::INTERNAL_SERVER_ERROR.into_response();
                };
                let mut text = text.to_vec();
                text.extend_from_slice(stats.prometheus_text(prefix).as_bytes());
                parts.headers.remove(header::CONTENT_LENGTH);
                Response::from_parts(parts, Body::from(text))
            }
        },
    ))
}

/// The largest `/metrics` page [`with_metrics`] appends to.
const METRICS_PAGE_MAX_BYTES: usize = 16 << 20;
