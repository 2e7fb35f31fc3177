//! The call history's benchmark (docs/BENCHMARKS.md, "Call history"): `BENCH_CALLS` (default
//! 100,000) calls stored, each with an agent and a customer, their stays, a survey rating on a
//! third and a recording on a fifth, on SQLite (a file) and PostgreSQL; then the history's REST
//! API as an administrator: the first page and filtered pages (p50, p99 over repeated
//! queries), paging deep, and the whole list exported as CSV and Excel (rows a second).
//! Ignored in the test run; `scripts/bench-calls` runs it and prints the figures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use orbita_coordinator::accounts::Role;
use orbita_coordinator::now_ms;

use crate::support::api::{bearer, make_user, Api, Auth};
use crate::support::db::{run, Kind};
use crate::support::{self};

const AGENTS: usize = 10;
const NAMES: [&str; 8] = [
    "Олег Петров",
    "Anna Schmidt",
    "Айгүл Нұрланқызы",
    "John Smith",
    "María García",
    "Ivan Ivanov",
    "Li Wei",
    "Fatima Zahra",
];
const DAY_MS: i64 = 24 * 3600 * 1000;

#[tokio::test]
#[ignore = "a benchmark: scripts/bench-calls"]
async fn history_over_many_calls_sqlite() {
    run(Kind::Sqlite, "calls_bench", |u| {
        Box::pin(bench("SQLite", u))
    })
    .await;
}

#[tokio::test]
#[ignore = "a benchmark: scripts/bench-calls"]
async fn history_over_many_calls_postgres() {
    run(Kind::Postgres, "calls_bench", |u| {
        Box::pin(bench("PostgreSQL", u))
    })
    .await;
}

fn calls_wanted() -> usize {
    std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Stores `n` calls of `agents`, newest `now`, in multi-row inserts.
async fn fill(pool: &sqlx::AnyPool, postgres: bool, n: usize, agents: &[i64], now: i64) {
    let mark = |i: usize| {
        if postgres {
            format!("${i}")
        } else {
            "?".into()
        }
    };
    let rows = |count: usize, width: usize| -> String {
        (0..count)
            .map(|r| {
                let cells: Vec<String> = (1..=width).map(|c| mark(r * width + c)).collect();
                format!("({})", cells.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    const BATCH: usize = 500;
    let span = 365 * DAY_MS;
    for start in (0..n).step_by(BATCH) {
        let count = BATCH.min(n - start);
        let mut tx = pool.begin().await.unwrap();
        let q = format!(
            "INSERT INTO call_records (id, code, rc_name, node_name, owner_id, started_ms, ended_ms, end_reason, last_event_ms) VALUES {}",
            rows(count, 9)
        );
        let mut query = sqlx::query(&q);
        for i in start..start + count {
            let started = now - span + (i as i64 * span / n as i64);
            let ended = started + 60_000 + (i as i64 % 1800) * 1000;
            query = query
                .bind(format!("bench-{i:07}"))
                .bind(format!("{:04}", i % 10_000))
                .bind("video-room")
                .bind("node-a")
                .bind(agents[i % agents.len()])
                .bind(started)
                .bind(ended)
                .bind("empty")
                .bind(ended);
        }
        query.execute(&mut *tx).await.unwrap();
        let q = format!(
            "INSERT INTO call_participants (call_id, participant_id, name, role, account_id, user_agent, first_joined_ms, browser, os, device, name_fold) VALUES {}",
            rows(count * 2, 11)
        );
        let mut query = sqlx::query(&q);
        for i in start..start + count {
            let started = now - span + (i as i64 * span / n as i64);
            let customer = format!("{} {}", NAMES[i % NAMES.len()], i % 977);
            for (p, name, role, account) in [
                (
                    "p1",
                    format!("Agent {}", i % agents.len()),
                    "agent",
                    Some(agents[i % agents.len()]),
                ),
                ("p2", customer, "customer", None),
            ] {
                query = query
                    .bind(format!("bench-{i:07}"))
                    .bind(p)
                    .bind(name.clone())
                    .bind(role)
                    .bind(account)
                    .bind("Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36")
                    .bind(started)
                    .bind("Chrome 131")
                    .bind("Linux")
                    .bind("desktop")
                    .bind(name.to_lowercase());
            }
        }
        query.execute(&mut *tx).await.unwrap();
        let q = format!(
            "INSERT INTO call_presence (call_id, participant_id, joined_ms, left_ms) VALUES {}",
            rows(count * 2, 4)
        );
        let mut query = sqlx::query(&q);
        for i in start..start + count {
            let started = now - span + (i as i64 * span / n as i64);
            for p in ["p1", "p2"] {
                query = query
                    .bind(format!("bench-{i:07}"))
                    .bind(p)
                    .bind(started)
                    .bind(started + 60_000);
            }
        }
        query.execute(&mut *tx).await.unwrap();
        let rated: Vec<usize> = (start..start + count).filter(|i| i % 3 == 0).collect();
        if !rated.is_empty() {
            let q = format!(
                "INSERT INTO call_survey_answers (call_id, participant_id, question_id, value, rating, answered_ms) VALUES {}",
                rows(rated.len(), 6)
            );
            let mut query = sqlx::query(&q);
            for i in &rated {
                let rating = (*i % 5) as i64 + 1;
                query = query
                    .bind(format!("bench-{i:07}"))
                    .bind("p2")
                    .bind("rating")
                    .bind(rating.to_string())
                    .bind(rating)
                    .bind(now);
            }
            query.execute(&mut *tx).await.unwrap();
        }
        let recorded: Vec<usize> = (start..start + count).filter(|i| i % 5 == 0).collect();
        if !recorded.is_empty() {
            let q = format!(
                "INSERT INTO call_recordings (call_id, recording_id, started_ms) VALUES {}",
                rows(recorded.len(), 3)
            );
            let mut query = sqlx::query(&q);
            for i in &recorded {
                query = query
                    .bind(format!("bench-{i:07}"))
                    .bind(format!("rec-{i:07}"))
                    .bind(now);
            }
            query.execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// `reps` times `GET path`: (p50, p99) in ms, and the last answer's number of calls.
async fn timed(api: &Api, auth: &Auth, path: &str, reps: usize) -> (f64, f64, usize) {
    let mut times = Vec::with_capacity(reps);
    let mut listed = 0;
    for _ in 0..reps {
        let t = Instant::now();
        let a = api.call(Method::GET, path, None, auth).await;
        times.push(t.elapsed());
        assert_eq!(a.status, StatusCode::OK, "{path}: {a:?}");
        listed = a.body["calls"].as_array().map_or(0, Vec::len);
    }
    times.sort();
    (percentile(&times, 0.5), percentile(&times, 0.99), listed)
}

async fn bench(backend: &'static str, url: String) {
    let n = calls_wanted();
    let c = Arc::new(support::coordinator(&url, |_| {}).await);
    let api = Api::new(c.clone());
    make_user(&c, "admin@example.com", Role::Admin).await;
    let admin = bearer(&c, "admin@example.com").await;
    let mut agents = Vec::new();
    for i in 0..AGENTS {
        agents.push(
            make_user(&c, &format!("agent{i}@example.com"), Role::Agent)
                .await
                .id,
        );
    }
    let now = now_ms();
    let t = Instant::now();
    fill(
        c.registry().pool(),
        backend == "PostgreSQL",
        n,
        &agents,
        now,
    )
    .await;
    if backend == "PostgreSQL" {
        // What autovacuum does soon after a large change: the planner's statistics.
        sqlx::query("ANALYZE")
            .execute(c.registry().pool())
            .await
            .unwrap();
    }
    let filled = t.elapsed();
    println!(
        "| {backend} | storing {n} calls (2 people, 2 stays each; ratings, recordings) | {:.1} s |",
        filled.as_secs_f64()
    );

    let month_ago = now - 30 * DAY_MS;
    let reps = 100;
    let queries = [
        (
            "first page of 50, no filter",
            "/api/calls?limit=50".to_string(),
        ),
        (
            "customer name contains \"петров\"",
            "/api/calls?limit=50&customer=%D0%BF%D0%B5%D1%82%D1%80%D0%BE%D0%B2".into(),
        ),
        (
            "one agent, last 30 days",
            format!("/api/calls?limit=50&agent={}&from={month_ago}", agents[3]),
        ),
        (
            "rating at least 4",
            "/api/calls?limit=50&min_rating=4".into(),
        ),
        (
            "recorded, 10 to 20 minutes",
            "/api/calls?limit=50&recorded=yes&min_duration_s=600&max_duration_s=1200".into(),
        ),
        (
            "customer name matching nothing",
            "/api/calls?limit=50&customer=nobody-at-all".into(),
        ),
    ];
    for (what, path) in &queries {
        let (p50, p99, listed) = timed(&api, &admin, path, reps).await;
        println!(
            "| {backend} | list: {what} ({listed} listed) | p50 {p50:.1} ms, p99 {p99:.1} ms |"
        );
    }

    // Paging 40 pages deep by the cursor.
    let mut next: Option<String> = None;
    let mut times = Vec::new();
    for _ in 0..40 {
        let path = match &next {
            Some(cursor) => format!("/api/calls?limit=50&before={cursor}"),
            None => "/api/calls?limit=50".into(),
        };
        let t = Instant::now();
        let a = api.call(Method::GET, &path, None, &admin).await;
        times.push(t.elapsed());
        next = a.body["next"].as_str().map(str::to_string);
    }
    times.sort();
    println!(
        "| {backend} | list: 40 pages deep by the cursor | p50 {:.1} ms, p99 {:.1} ms |",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );

    for (what, path) in [
        ("CSV", "/api/calls/export.csv"),
        ("Excel", "/api/calls/export.xlsx"),
    ] {
        let t = Instant::now();
        let (status, _, bytes) = api.download(path, &admin).await;
        let took = t.elapsed().as_secs_f64();
        assert_eq!(status, StatusCode::OK);
        println!(
            "| {backend} | export {what}: {n} calls ({:.1} MB) | {took:.1} s, {:.0} calls/s |",
            bytes.len() as f64 / 1e6,
            n as f64 / took
        );
    }
}
