//! The login limits as an attacker meets them, over the REST API, on SQLite, PostgreSQL and
//! MariaDB (docs/security.md, "Accounts"): parallel guesses against one account are checked at
//! most as often as the limit allows (counted by the password-verification metric), also
//! through two coordinators sharing the database; a stranger's address is locked out of an
//! account while its owner, from another address, gets in after a short delay that grows
//! with each failure up to its cap; an address failing on many accounts is locked out of all;
//! unknown e-mails are answered exactly as known ones; a full hashing queue refuses at once.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use futures_util::future::join_all;
use orbita_coordinator::clock::{Clock, Millis, MINUTE, SECOND};
use orbita_coordinator::config::Settings;
use orbita_coordinator::server::Hub;
use orbita_coordinator::Coordinator;
use serde_json::json;
use sqlx::Row;

use crate::support::api::{make_user, Answer, Api, Auth, PASSWORD};
use crate::support::{self, T0};

on_every_backend!(
    parallel_guesses_are_checked_at_most_the_limit,
    the_owner_gets_in_while_a_stranger_is_locked_out,
    an_address_failing_on_many_accounts_is_locked_out_of_all,
);

async fn coordinator(
    url: &str,
    clock: &Clock,
    tweak: impl FnOnce(&mut Settings),
) -> Arc<Coordinator> {
    let c = support::coordinator(url, |s| {
        // Addresses from X-Forwarded-For, so one test can play many clients.
        s.trust_proxy_headers = true;
        tweak(s);
    })
    .await;
    Arc::new(c.with_clock(clock.clone()))
}

/// `POST /api/auth/login` from client address `from`.
async fn login_from(api: &Api, email: &str, password: &str, from: &str) -> Answer {
    api.raw(
        Method::POST,
        "/api/auth/login",
        Some(
            json!({"email": email, "password": password, "token": true})
                .to_string()
                .into_bytes(),
        ),
        &Auth::None,
        &[("x-forwarded-for", from)],
    )
    .await
}

fn retry_after(a: &Answer) -> Millis {
    a.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse::<Millis>()
        .unwrap()
        * SECOND
}

fn verifications(c: &Coordinator) -> u64 {
    c.accounts().password_verifications().get()
}

async fn failures_stored(c: &Coordinator) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM acc_login_failures")
        .fetch_one(c.registry().pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

async fn parallel_guesses_are_checked_at_most_the_limit(url: String) {
    let clock = Clock::manual(T0);
    // A queue long enough for all 200 at once: the database reservation is what limits them.
    let a = coordinator(&url, &clock, |s| s.login_hash_queue = 1000).await;
    let b = coordinator(&url, &clock, |s| {
        s.coordinator_id = "B".into();
        s.login_hash_queue = 1000;
    })
    .await;
    make_user(
        &a,
        "admin@example.com",
        orbita_coordinator::accounts::Role::Admin,
    )
    .await;
    let (api_a, api_b) = (Api::new(a.clone()), Api::new(b.clone()));
    let guesses = (0..200).map(|i| {
        let api = if i % 2 == 0 { &api_a } else { &api_b };
        async move {
            let guess = format!("guess number {i}");
            login_from(api, "admin@example.com", &guess, "198.51.100.7").await
        }
    });
    let answers = join_all(guesses).await;
    let refused =
        |a: &&Answer| a.status == StatusCode::TOO_MANY_REQUESTS && a.error() == "locked_out";
    let wrong = answers
        .iter()
        .filter(|a| a.error() == "bad_credentials")
        .count();
    assert_eq!(
        answers.iter().filter(refused).count(),
        200 - wrong,
        "{answers:?}"
    );
    let limit = Settings::default().login_max_failures as usize;
    assert_eq!(wrong, limit, "exactly the limit is checked");
    let checked = verifications(&a) + verifications(&b);
    assert_eq!(
        checked, limit as u64,
        "password verifications across both coordinators"
    );
    // The metric says so too.
    let text = Hub::new(a.clone()).metrics_text().await;
    let line = format!(
        "orbita_coordinator_password_verifications_total {}",
        verifications(&a)
    );
    assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    assert_eq!(failures_stored(&a).await, limit as i64);
}

async fn the_owner_gets_in_while_a_stranger_is_locked_out(url: String) {
    let clock = Clock::manual(T0);
    let c = coordinator(&url, &clock, |_| {}).await;
    let api = Api::new(c.clone());
    make_user(
        &c,
        "ann@example.com",
        orbita_coordinator::accounts::Role::Admin,
    )
    .await;
    let stranger = "198.51.100.7";
    let owner = "203.0.113.5";
    // The stranger's 10 guesses, a second apart, against ann and against an unknown e-mail:
    // the same answers, the same lock-out.
    for email in ["ann@example.com", "nobody@example.com"] {
        for i in 0..10 {
            let a = login_from(&api, email, "wrong password!", stranger).await;
            assert_eq!(
                (a.status, a.error()),
                (StatusCode::UNAUTHORIZED, "bad_credentials"),
                "{email} {i}"
            );
            clock.advance(SECOND);
        }
        let a = login_from(&api, email, PASSWORD, stranger).await;
        assert_eq!(
            (a.status, a.error()),
            (StatusCode::TOO_MANY_REQUESTS, "locked_out"),
            "{email}: {a:?}"
        );
        assert_eq!(retry_after(&a), 15 * MINUTE - SECOND, "{email}");
    }
    // ann had 10 failures 10 s ago (the last one 10 s ago): the owner gets in at once.
    let a = login_from(&api, "ann@example.com", PASSWORD, owner).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    // The stranger keeps guessing from fresh addresses: each needs a longer wait after the
    // last failure (1 s, 2 s, 4 s ... at most 60 s); the owner, in between, waits at most that.
    let mut expected = SECOND;
    for n in 0..9 {
        let from = format!("192.0.2.{}", 10 + n);
        let early = login_from(&api, "ann@example.com", "wrong password!", &from).await;
        if n > 0 {
            assert_eq!(
                (early.status, early.error()),
                (StatusCode::TOO_MANY_REQUESTS, "locked_out"),
                "{n}: {early:?}"
            );
            assert_eq!(retry_after(&early), expected, "{n}");
            // The owner asks at the same moment: the same short wait, never a lock-out.
            let a = login_from(&api, "ann@example.com", PASSWORD, owner).await;
            assert_eq!(retry_after(&a), expected, "{n}");
            clock.advance(retry_after(&early));
            let a = login_from(&api, "ann@example.com", "wrong password!", &from).await;
            assert_eq!(a.error(), "bad_credentials", "{n}: {a:?}");
            expected = (expected * 2).min(60 * SECOND);
        } else {
            assert_eq!(early.error(), "bad_credentials", "{early:?}");
            expected = 2 * SECOND;
        }
    }
    assert_eq!(expected, 60 * SECOND, "the delay reached its cap");
    // After the cap's wait the owner gets in; the first stranger is still locked out.
    clock.advance(60 * SECOND);
    let a = login_from(&api, "ann@example.com", PASSWORD, owner).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let a = login_from(&api, "ann@example.com", PASSWORD, stranger).await;
    assert_eq!(a.error(), "locked_out", "{a:?}");
    // When the lock-out ends, the stranger's address may try again.
    clock.advance(15 * MINUTE);
    let a = login_from(&api, "ann@example.com", PASSWORD, stranger).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
}

async fn an_address_failing_on_many_accounts_is_locked_out_of_all(url: String) {
    let clock = Clock::manual(T0);
    let c = coordinator(&url, &clock, |s| s.login_max_failures_per_address = 5).await;
    let api = Api::new(c.clone());
    make_user(
        &c,
        "bob@example.com",
        orbita_coordinator::accounts::Role::Agent,
    )
    .await;
    let stuffer = "198.51.100.66";
    for i in 0..5 {
        let a = login_from(
            &api,
            &format!("user{i}@example.com"),
            "leaked password",
            stuffer,
        )
        .await;
        assert_eq!(a.error(), "bad_credentials", "{i}: {a:?}");
    }
    // Even bob's right password is refused from there, not from elsewhere.
    let a = login_from(&api, "bob@example.com", PASSWORD, stuffer).await;
    assert_eq!(a.error(), "locked_out", "{a:?}");
    assert_eq!(retry_after(&a), 15 * MINUTE);
    let a = login_from(&api, "bob@example.com", PASSWORD, "203.0.113.9").await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
}

#[tokio::test]
async fn a_full_hashing_queue_refuses_at_once() {
    let db = support::db::TestDb::new(support::db::Kind::Sqlite, "hashqueue").await;
    let clock = Clock::manual(T0);
    // No waiting places: only the running hashes.
    let c = coordinator(&db.url, &clock, |s| s.login_hash_queue = 0).await;
    let api = Api::new(c.clone());
    make_user(
        &c,
        "ann@example.com",
        orbita_coordinator::accounts::Role::Agent,
    )
    .await;
    let before = verifications(&c);
    let tries = (0..40).map(|i| {
        let password = if i % 2 == 0 {
            PASSWORD
        } else {
            "wrong password!"
        };
        let api = &api;
        async move {
            let from = format!("192.0.2.{i}");
            login_from(api, "ann@example.com", password, &from).await
        }
    });
    let answers = join_all(tries).await;
    let busy: Vec<&Answer> = answers.iter().filter(|a| a.error() == "busy").collect();
    assert!(!busy.is_empty(), "{answers:?}");
    for a in &busy {
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(a.headers["retry-after"], "1");
    }
    let served = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK || a.error() == "bad_credentials")
        .count();
    assert_eq!(served + busy.len(), 40, "{answers:?}");
    // Refused ones were neither checked nor counted as failures.
    assert_eq!(verifications(&c) - before, served as u64);
    let wrong = answers
        .iter()
        .filter(|a| a.error() == "bad_credentials")
        .count();
    assert_eq!(failures_stored(&c).await, wrong as i64);
    db.cleanup().await;
}
