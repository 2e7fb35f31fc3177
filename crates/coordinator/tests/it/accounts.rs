//! Accounts over the REST API and the coordinator's verbs, on SQLite, PostgreSQL and MariaDB
//! (see tests/common/mod.rs: a database that is down fails the test): sign-up, approval,
//! login sessions and their cookie, passwords, rejection, bad inputs, the login lock-out,
//! session expiry, quotas, the first administrator, and WebSocket clients acting as their
//! login.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use futures_util::{SinkExt, StreamExt};
use orbita_coordinator::accounts::{tokens, AccountError, Role, Status, User};
use orbita_coordinator::clock::{Clock, Millis, MINUTE, SECOND};
use orbita_coordinator::config::Settings;
use orbita_coordinator::verbs::{ErrorCode, ErrorReply, FromNode, ToClient, ToNode};
use orbita_coordinator::{now_ms, server, Coordinator, Delivery, Outcome};
use serde_json::{json, Value};
use sqlx::Row;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::api::{make_user, Answer, Api, Auth, PASSWORD};
use crate::support::{self, registration, T0};

on_every_backend!(
    signup_approval_login_password_logout,
    rejection_reason_is_shown_at_login,
    bad_inputs_are_refused_and_change_nothing,
    failed_logins_lock_the_email_out,
    login_sessions_expire,
    admin_manages_roles_and_quotas,
    quotas_limit_creating_and_planning,
    parallel_requests_never_pass_the_quota,
    extension_stays_within_the_planners_limit,
    first_admin_is_created_only_once,
    the_first_run_link_makes_the_administrator_once,
    websocket_acts_as_its_login,
);

async fn coordinator(url: &str, tweak: impl FnOnce(&mut Settings)) -> Arc<Coordinator> {
    Arc::new(support::coordinator(url, tweak).await)
}

fn ip() -> IpAddr {
    IpAddr::from([192, 0, 2, 1])
}

async fn count(c: &Coordinator, q: &str) -> i64 {
    sqlx::query(q)
        .fetch_one(c.registry().pool())
        .await
        .unwrap()
        .try_get::<i64, _>(0)
        .unwrap()
}

async fn signup(api: &Api, email: &str, name: &str) -> Answer {
    api.call(
        Method::POST,
        "/api/auth/signup",
        Some(json!({"email": email, "password": PASSWORD, "name": name, "time_zone": "Europe/Moscow"})),
        &Auth::None,
    )
    .await
}

async fn login(api: &Api, email: &str, password: &str, token: bool) -> Answer {
    api.call(
        Method::POST,
        "/api/auth/login",
        Some(json!({"email": email, "password": password, "token": token})),
        &Auth::None,
    )
    .await
}

fn cookie_token(a: &Answer) -> String {
    let c = a.cookie().expect("a Set-Cookie");
    c.strip_prefix("orbita_session=")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

async fn me(api: &Api, auth: &Auth) -> Answer {
    api.call(Method::GET, "/api/auth/me", None, auth).await
}

async fn signup_approval_login_password_logout(url: String) {
    let c = coordinator(&url, |_| {}).await;
    let api = Api::new(c.clone());
    make_user(&c, "boss@example.com", Role::Admin).await;
    let admin = Auth::Bearer(api.token("boss@example.com", PASSWORD).await);

    // Sign-up: pending, stored with an argon2id hash, e-mail in lower case.
    let a = signup(&api, "Ann@Example.com", "Ann").await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let user = &a.body["user"];
    assert_eq!(user["email"], "ann@example.com");
    assert_eq!(user["status"], "pending");
    assert_eq!(user["role"], "agent");
    assert_eq!(user["time_zone"], "Europe/Moscow");
    assert_eq!(user["reject_reason"], Value::Null);
    assert!(user["created"].as_str().unwrap().ends_with('Z'));
    let id = user["id"].as_i64().unwrap();
    let row = sqlx::query("SELECT password_hash, status FROM acc_users WHERE id = 2")
        .fetch_one(c.registry().pool())
        .await
        .unwrap();
    assert_eq!(id, 2);
    assert!(row
        .try_get::<String, _>(0)
        .unwrap()
        .starts_with("$argon2id$"));
    assert_eq!(row.try_get::<String, _>(1).unwrap(), "pending");

    // Pending: no login (with the right password), no session stored.
    let a = login(&api, "ann@example.com", PASSWORD, false).await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::FORBIDDEN, "account_pending")
    );
    assert!(a.cookie().is_none());
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM acc_sessions WHERE user_id = 2").await,
        0
    );

    // The administrator sees and approves it.
    let a = api
        .call(Method::GET, "/api/admin/users?status=pending", None, &admin)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let users = a.body["users"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], "ann@example.com");
    assert_eq!(users[0]["quota_override"], Value::Null);
    let a = api
        .call(
            Method::POST,
            &format!("/api/admin/users/{id}/approve"),
            Some(json!({})),
            &admin,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["user"]["status"], "active");
    assert_eq!(a.body["user"]["role"], "agent");

    // Login: the cookie, only the token's SHA-256 stored.
    let a = login(&api, "ANN@example.com", PASSWORD, false).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["user"]["id"], id);
    assert!(a.body.get("token").is_none());
    let set = a.cookie().unwrap();
    let parts: Vec<&str> = set.split("; ").collect();
    assert!(
        parts[0].starts_with("orbita_session=") && parts[0].len() == 15 + 64,
        "{set}"
    );
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(parts.contains(&attr), "{set} lacks {attr}");
    }
    assert!(!parts.contains(&"Secure"), "{set}");
    let cookie_session = cookie_token(&a);
    let stored = |t: &str| {
        format!(
            "SELECT COUNT(*) FROM acc_sessions WHERE token_hash = '{}'",
            t
        )
    };
    assert_eq!(count(&c, &stored(&cookie_session)).await, 0);
    assert_eq!(
        count(&c, &stored(&tokens::token_hash(&cookie_session))).await,
        1
    );

    // Over HTTPS (a trusted proxy says so): Secure.
    let c2 = coordinator(&url, |s| s.trust_proxy_headers = true).await;
    let api2 = Api::new(c2);
    let a = api2
        .raw(
            Method::POST,
            "/api/auth/login",
            Some(
                json!({"email":"ann@example.com","password":PASSWORD})
                    .to_string()
                    .into_bytes(),
            ),
            &Auth::None,
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.cookie().unwrap().ends_with("; Secure"),
        "{:?}",
        a.cookie()
    );
    // Not believed without the setting.
    let a = api
        .raw(
            Method::POST,
            "/api/auth/login",
            Some(
                json!({"email":"ann@example.com","password":PASSWORD})
                    .to_string()
                    .into_bytes(),
            ),
            &Auth::None,
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert!(!a.cookie().unwrap().contains("Secure"));

    // me, with the cookie and with a bearer token.
    let by_cookie = Auth::Cookie(cookie_session.clone());
    let a = me(&api, &by_cookie).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["user"]["email"], "ann@example.com");
    assert_eq!(
        a.body["quota"],
        json!({"sessions_per_period": 10, "period_hours": 24, "max_minutes": 120, "used": 0})
    );
    let a = login(&api, "ann@example.com", PASSWORD, true).await;
    assert!(a.cookie().is_none());
    let by_token = Auth::Bearer(a.body["token"].as_str().unwrap().to_string());
    assert_eq!(me(&api, &by_token).await.status, StatusCode::OK);
    // A cookie sent by a page of another site is not believed.
    let a = api
        .raw(
            Method::GET,
            "/api/auth/me",
            None,
            &by_cookie,
            &[
                ("origin", "https://evil.example"),
                ("host", "orbita.example"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    // Password change: the wrong old password is refused; then other sessions end.
    let a = api
        .call(
            Method::POST,
            "/api/auth/password",
            Some(
                json!({"old_password": "not the password", "new_password": "a brand new password"}),
            ),
            &by_cookie,
        )
        .await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::FORBIDDEN, "bad_credentials")
    );
    let a = api
        .call(
            Method::POST,
            "/api/auth/password",
            Some(json!({"old_password": PASSWORD, "new_password": "short"})),
            &by_cookie,
        )
        .await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::BAD_REQUEST, "weak_password")
    );
    let a = api
        .call(
            Method::POST,
            "/api/auth/password",
            Some(json!({"old_password": PASSWORD, "new_password": "a brand new password"})),
            &by_cookie,
        )
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    assert_eq!(me(&api, &by_token).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&api, &by_cookie).await.status, StatusCode::OK);
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM acc_sessions WHERE user_id = 2").await,
        1
    );
    let a = login(&api, "ann@example.com", PASSWORD, true).await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::UNAUTHORIZED, "bad_credentials")
    );
    assert_eq!(
        login(&api, "ann@example.com", "a brand new password", true)
            .await
            .status,
        StatusCode::OK
    );

    // Logout: the cookie is cleared and its session is gone.
    let a = api
        .call(Method::POST, "/api/auth/logout", None, &by_cookie)
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert!(
        a.cookie().unwrap().contains("Max-Age=0"),
        "{:?}",
        a.cookie()
    );
    assert_eq!(me(&api, &by_cookie).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        count(&c, &stored(&tokens::token_hash(&cookie_session))).await,
        0
    );
    // Logging out without a login is fine too.
    let a = api
        .call(Method::POST, "/api/auth/logout", None, &Auth::None)
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let a = me(&api, &Auth::None).await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::UNAUTHORIZED, "not_logged_in")
    );
}

async fn rejection_reason_is_shown_at_login(url: String) {
    let c = coordinator(&url, |_| {}).await;
    let api = Api::new(c.clone());
    let boss = make_user(&c, "boss@example.com", Role::Admin).await;
    let admin = Auth::Bearer(api.token("boss@example.com", PASSWORD).await);
    let id = signup(&api, "bob@example.com", "Bob").await.body["user"]["id"]
        .as_i64()
        .unwrap();
    let reject = |id: i64, body: Value| {
        let api = &api;
        let admin = admin.clone();
        async move {
            api.call(
                Method::POST,
                &format!("/api/admin/users/{id}/reject"),
                Some(body),
                &admin,
            )
            .await
        }
    };
    for bad in [
        json!({"reason": ""}),
        json!({"reason": "x".repeat(501)}),
        json!({}),
    ] {
        let a = reject(id, bad.clone()).await;
        assert_eq!(
            (a.status, a.error()),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{bad}"
        );
    }
    assert_eq!(
        reject(9999, json!({"reason": "no"})).await.status,
        StatusCode::NOT_FOUND
    );
    let a = reject(boss.id, json!({"reason": "no"})).await;
    assert_eq!((a.status, a.error()), (StatusCode::FORBIDDEN, "forbidden"));
    let a = reject(id, json!({"reason": "Not a member of staff"})).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["user"]["status"], "rejected");
    assert_eq!(a.body["user"]["reject_reason"], "Not a member of staff");

    let a = login(&api, "bob@example.com", PASSWORD, false).await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::FORBIDDEN, "account_rejected")
    );
    assert_eq!(a.body["message"], "Not a member of staff");
    // The reason is only for who knows the password.
    let a = login(&api, "bob@example.com", "not the password", false).await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::UNAUTHORIZED, "bad_credentials")
    );
    let a = api
        .call(
            Method::GET,
            "/api/admin/users?status=rejected",
            None,
            &admin,
        )
        .await;
    assert_eq!(a.body["users"][0]["email"], "bob@example.com");

    // Rejecting an active account ends its sessions.
    let carl = make_user(&c, "carl@example.com", Role::Agent).await;
    let carl_auth = Auth::Bearer(api.token("carl@example.com", PASSWORD).await);
    assert_eq!(me(&api, &carl_auth).await.status, StatusCode::OK);
    assert_eq!(
        reject(carl.id, json!({"reason": "left"})).await.status,
        StatusCode::OK
    );
    assert_eq!(me(&api, &carl_auth).await.status, StatusCode::UNAUTHORIZED);
    // Approving again lets them back in.
    let a = api
        .call(
            Method::POST,
            &format!("/api/admin/users/{}/approve", carl.id),
            Some(json!({"role": "supervisor"})),
            &admin,
        )
        .await;
    assert_eq!(a.body["user"]["role"], "supervisor");
    assert_eq!(a.body["user"]["reject_reason"], Value::Null);
    assert_eq!(
        login(&api, "carl@example.com", PASSWORD, true).await.status,
        StatusCode::OK
    );
}

async fn bad_inputs_are_refused_and_change_nothing(url: String) {
    let c = coordinator(&url, |_| {}).await;
    let api = Api::new(c.clone());
    assert_eq!(
        signup(&api, "ann@example.com", "Ann").await.status,
        StatusCode::CREATED
    );
    let a = signup(&api, "ANN@example.com", "Ann again").await;
    assert_eq!((a.status, a.error()), (StatusCode::CONFLICT, "email_taken"));
    let good = json!({"email": "new@example.com", "password": PASSWORD, "name": "New", "time_zone": "Asia/Almaty"});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("email", json!("not-an-email")), "bad_email"),
        (
            with("email", json!(format!("{}@example.com", "a".repeat(250)))),
            "bad_email",
        ),
        (with("password", json!("123456789")), "weak_password"),
        (with("password", json!("x".repeat(129))), "weak_password"),
        (with("name", json!("  ")), "bad_name"),
        (with("name", json!("n".repeat(101))), "bad_name"),
        (
            with("time_zone", json!("Mars/Olympus_Mons")),
            "bad_time_zone",
        ),
        (with("email", json!(7)), "bad_request"),
        (with("extra", json!(1)), "bad_request"),
        (
            json!({"email": "new@example.com", "password": PASSWORD}),
            "bad_request",
        ),
    ];
    for (body, code) in cases {
        let a = api
            .call(
                Method::POST,
                "/api/auth/signup",
                Some(body.clone()),
                &Auth::None,
            )
            .await;
        assert_eq!(
            (a.status, a.error()),
            (StatusCode::BAD_REQUEST, code),
            "{body}: {a:?}"
        );
        assert!(!a.body["message"].as_str().unwrap().is_empty());
    }
    let a = api
        .raw(
            Method::POST,
            "/api/auth/signup",
            Some(b"{oops".to_vec()),
            &Auth::None,
            &[],
        )
        .await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let huge = format!(
        r#"{{"email":"a@b.cd","password":"{}","name":"x"}}"#,
        "p".repeat(70_000)
    );
    let a = api
        .raw(
            Method::POST,
            "/api/auth/signup",
            Some(huge.into_bytes()),
            &Auth::None,
            &[],
        )
        .await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
    // Nothing of that was stored.
    assert_eq!(count(&c, "SELECT COUNT(*) FROM acc_users").await, 1);

    // Unknown API paths and ids answer JSON too; roles are enforced.
    let a = api.call(Method::GET, "/api/nope", None, &Auth::None).await;
    assert_eq!((a.status, a.error()), (StatusCode::NOT_FOUND, "not_found"));
    make_user(&c, "agent@example.com", Role::Agent).await;
    let agent = Auth::Bearer(api.token("agent@example.com", PASSWORD).await);
    let a = api
        .call(Method::GET, "/api/admin/users", None, &agent)
        .await;
    assert_eq!((a.status, a.error()), (StatusCode::FORBIDDEN, "forbidden"));
    let a = api
        .call(Method::GET, "/api/admin/users", None, &Auth::None)
        .await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::UNAUTHORIZED, "not_logged_in")
    );
    make_user(&c, "boss@example.com", Role::Admin).await;
    let admin = Auth::Bearer(api.token("boss@example.com", PASSWORD).await);
    for (method, path, body) in [
        (Method::POST, "/api/admin/users/abc/approve", json!({})),
        (Method::POST, "/api/admin/users/0/approve", json!({})),
        (
            Method::PUT,
            "/api/admin/users/424242",
            json!({"role": "agent"}),
        ),
    ] {
        let a = api.call(method, path, Some(body), &admin).await;
        assert_eq!(
            (a.status, a.error()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{path}"
        );
    }
    for (path, body) in [
        ("/api/admin/users/1/approve", json!({"role": "king"})),
        ("/api/admin/users?status=sleeping", json!(null)),
        ("/api/admin/users?limit=0", json!(null)),
    ] {
        let a = if body.is_null() {
            api.call(Method::GET, path, None, &admin).await
        } else {
            api.call(Method::POST, path, Some(body), &admin).await
        };
        assert_eq!(
            (a.status, a.error()),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{path}: {a:?}"
        );
    }
    // Bad logins.
    let a = login(&api, "agent@example.com", "wrong password!", false).await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::UNAUTHORIZED, "bad_credentials")
    );
    let a = login(&api, "nobody@example.com", PASSWORD, false).await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::UNAUTHORIZED, "bad_credentials")
    );
    // A garbage bearer token is just "not logged in".
    let a = me(&api, &Auth::Bearer("garbage".into())).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Sign-ups per address are limited (10 per hour).
    for i in 1..=9 {
        let a = signup(&api, &format!("user{i}@example.com"), "U").await;
        assert_eq!(a.status, StatusCode::CREATED, "{i}: {a:?}");
    }
    let a = signup(&api, "user10@example.com", "U").await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(a.headers.get("retry-after").is_some());
    assert!(c
        .accounts()
        .user_by_email("user10@example.com")
        .await
        .unwrap()
        .is_none());
}

async fn failed_logins_lock_the_email_out(url: String) {
    // The HTTP handlers read the coordinator's clock: moved by hand here.
    let clock = Clock::manual(T0);
    let c = Arc::new(
        support::coordinator(&url, |_| {})
            .await
            .with_clock(clock.clone()),
    );
    let api = Api::new(c.clone());
    make_user(&c, "ann@example.com", Role::Agent).await;
    for i in 0..10 {
        let a = login(&api, "ann@example.com", "wrong password!", true).await;
        assert_eq!(
            (a.status, a.error()),
            (StatusCode::UNAUTHORIZED, "bad_credentials"),
            "{i}"
        );
        clock.advance(SECOND);
    }
    // Locked: even the right password is refused now, for 15 minutes from the last failure.
    let a = login(&api, "ann@example.com", PASSWORD, true).await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::TOO_MANY_REQUESTS, "locked_out")
    );
    let retry: i64 = a.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry, 15 * 60 - 1);
    // Other e-mails are not affected.
    make_user(&c, "bob@example.com", Role::Agent).await;
    assert_eq!(
        login(&api, "bob@example.com", PASSWORD, true).await.status,
        StatusCode::OK
    );
    // A second before the lock ends it still holds; then the right password works again.
    clock.advance((retry - 1) * SECOND);
    let a = login(&api, "ann@example.com", PASSWORD, true).await;
    assert_eq!(a.error(), "locked_out", "{a:?}");
    assert_eq!(a.headers["retry-after"], "1");
    clock.advance(SECOND);
    let a = login(&api, "ann@example.com", PASSWORD, true).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["user"]["email"], "ann@example.com");
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM acc_login_failures").await,
        0
    );
    // Failures spread wider than the window never lock.
    for i in 0..20 {
        clock.advance(2 * MINUTE);
        let a = login(&api, "ann@example.com", "wrong password!", true).await;
        assert_eq!(a.error(), "bad_credentials", "{i}: {a:?}");
    }
}

async fn login_sessions_expire(url: String) {
    let c = coordinator(&url, |s| s.session_hours = 2).await;
    make_user(&c, "ann@example.com", Role::Agent).await;
    let a = c.accounts();
    let l = a.login("ann@example.com", PASSWORD, T0).await.unwrap();
    assert_eq!(l.expires_ms, T0 + 2 * 60 * MINUTE);
    let at = |t| a.user_from_token(&l.token, t);
    assert_eq!(at(T0).await.unwrap().unwrap().email, "ann@example.com");
    assert!(at(T0 + 2 * 60 * MINUTE - 1).await.unwrap().is_some());
    assert!(at(T0 + 2 * 60 * MINUTE).await.unwrap().is_none());
    // Expired sessions are dropped at the next login.
    a.login("ann@example.com", PASSWORD, T0 + 3 * 60 * MINUTE)
        .await
        .unwrap();
    assert_eq!(count(&c, "SELECT COUNT(*) FROM acc_sessions").await, 1);
}

async fn admin_manages_roles_and_quotas(url: String) {
    let c = coordinator(&url, |_| {}).await;
    let api = Api::new(c.clone());
    let boss = make_user(&c, "boss@example.com", Role::Admin).await;
    let admin = Auth::Bearer(api.token("boss@example.com", PASSWORD).await);
    let ann = make_user(&c, "ann@example.com", Role::Agent).await;
    let put = |id: i64, body: Value| {
        let (api, admin) = (&api, admin.clone());
        async move {
            api.call(
                Method::PUT,
                &format!("/api/admin/users/{id}"),
                Some(body),
                &admin,
            )
            .await
        }
    };
    let a = api
        .call(Method::GET, "/api/admin/quotas", None, &admin)
        .await;
    assert_eq!(
        a.body,
        json!({"quotas": {
            "agent": {"sessions_per_period": 10, "period_hours": 24, "max_minutes": 120},
            "supervisor": {"sessions_per_period": 50, "period_hours": 24, "max_minutes": 240},
            "admin": {"sessions_per_period": null, "period_hours": 24, "max_minutes": null}
        }})
    );
    // A per-user quota; a missing field is refused (never read as "unlimited").
    let a = put(
        ann.id,
        json!({"quota": {"sessions_per_period": 3, "period_hours": 12}}),
    )
    .await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::BAD_REQUEST, "bad_request"),
        "{a:?}"
    );
    let a = put(
        ann.id,
        json!({"quota": {"sessions_per_period": 3, "period_hours": 0, "max_minutes": 30}}),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = put(ann.id, json!({"role": "supervisor", "quota": {"sessions_per_period": 3, "period_hours": 12, "max_minutes": null}})).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["user"]["role"], "supervisor");
    let listed = api
        .call(Method::GET, "/api/admin/users?status=active", None, &admin)
        .await;
    let row = listed.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == ann.id)
        .unwrap()
        .clone();
    assert_eq!(
        row["quota_override"],
        json!({"sessions_per_period": 3, "period_hours": 12, "max_minutes": null})
    );
    let ann_auth = Auth::Bearer(api.token("ann@example.com", PASSWORD).await);
    assert_eq!(
        me(&api, &ann_auth).await.body["quota"],
        json!({"sessions_per_period": 3, "period_hours": 12, "max_minutes": null, "used": 0})
    );
    // Role change alone keeps the override; quota null removes it.
    let a = put(ann.id, json!({"quota": null})).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(c.accounts().quota_override(ann.id).await.unwrap().is_none());
    assert_eq!(
        me(&api, &ann_auth).await.body["quota"]["sessions_per_period"],
        50
    );
    // Role defaults: any subset; bad values refused before anything changes.
    let a = api
        .call(
            Method::PUT,
            "/api/admin/quotas",
            Some(json!({"quotas": {"supervisor": {"sessions_per_period": 7, "period_hours": 24, "max_minutes": 60},
                                    "agent": {"sessions_per_period": 1, "period_hours": 99999, "max_minutes": 60}}})),
            &admin,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        me(&api, &ann_auth).await.body["quota"]["sessions_per_period"],
        50
    );
    let a = api
        .call(
            Method::PUT,
            "/api/admin/quotas",
            Some(json!({"quotas": {"supervisor": {"sessions_per_period": 7, "period_hours": 24, "max_minutes": 60}}})),
            &admin,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["quotas"]["supervisor"]["sessions_per_period"], 7);
    assert_eq!(a.body["quotas"]["agent"]["sessions_per_period"], 10);
    assert_eq!(me(&api, &ann_auth).await.body["quota"]["max_minutes"], 60);
    // A quota role that does not exist.
    let a = api
        .call(
            Method::PUT,
            "/api/admin/quotas",
            Some(json!({"quotas": {"king": {"sessions_per_period": 1, "period_hours": 1, "max_minutes": 1}}})),
            &admin,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // An administrator cannot demote themself; promoting others works.
    let a = put(boss.id, json!({"role": "agent"})).await;
    assert_eq!((a.status, a.error()), (StatusCode::FORBIDDEN, "forbidden"));
    let a = put(ann.id, json!({"role": "admin"})).await;
    assert_eq!(a.body["user"]["role"], "admin");
    // The new role applies to the next request of an existing login.
    assert_eq!(
        api.call(Method::GET, "/api/admin/quotas", None, &ann_auth)
            .await
            .status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------- quotas on the verbs

async fn ask(c: &Coordinator, caller: Option<&User>, req: Value, now: Millis) -> Outcome {
    support::ask(c, "u1", caller, ip(), req, now).await
}

fn error_of(o: &Outcome) -> ErrorReply {
    match &o.reply {
        Some(ToClient::Error(e)) => e.clone(),
        other => panic!("expected an ERROR, got {other:?}"),
    }
}

/// The code of the one CREATE_SESSION an outcome asks the node for.
fn placed(o: &Outcome) -> String {
    match o.deliveries.as_slice() {
        [Delivery::Node {
            msg: ToNode::CreateSession { code, .. },
            ..
        }] => code.clone(),
        other => panic!("expected one CREATE_SESSION, got {other:?} ({:?})", o.reply),
    }
}

async fn quotas_limit_creating_and_planning(url: String) {
    let c = coordinator(&url, |_| {}).await;
    c.register_node(&registration("n1", 100, &["Demo"]), T0)
        .await
        .unwrap();
    let ann = make_user(&c, "ann@example.com", Role::Agent).await;
    let create = json!({"verb":"CREATE_SESSION","rc_name":"Demo"});

    // Guests: LOGIN_REQUIRED for both.
    let e = error_of(&ask(&c, None, create.clone(), T0).await);
    assert_eq!(e.code, ErrorCode::LoginRequired);
    let plan = |time: &str, minutes: u64| json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"16/03/2030","time":time,"duration_minutes":minutes.to_string()});
    let e = error_of(&ask(&c, None, plan("10:00", 30), T0).await);
    assert_eq!(e.code, ErrorCode::LoginRequired);

    // An agent: 10 per 24 hours, planned and created alike.
    let mut codes = Vec::new();
    for i in 0..9 {
        let o = ask(&c, Some(&ann), create.clone(), T0 + i * MINUTE).await;
        codes.push(placed(&o));
    }
    let o = ask(&c, Some(&ann), plan("10:00", 30), T0 + 9 * MINUTE).await;
    assert!(
        matches!(o.reply, Some(ToClient::ConnectionCode { .. })),
        "{o:?}"
    );
    let e = error_of(&ask(&c, Some(&ann), create.clone(), T0 + 10 * MINUTE).await);
    assert_eq!(e.code, ErrorCode::QuotaExceeded);
    assert!(
        e.message.contains("10 sessions per 24 hours"),
        "{}",
        e.message
    );
    // The oldest use leaves the period 24 h after T0.
    assert_eq!(e.retry_after_seconds, Some(24 * 3600 - 600));
    let e = error_of(&ask(&c, Some(&ann), plan("11:00", 30), T0 + 10 * MINUTE).await);
    assert_eq!(e.code, ErrorCode::QuotaExceeded);
    let rows = sqlx::query(
        "SELECT kind, code, minutes FROM acc_usage WHERE user_id = ? ORDER BY at_ms, id"
            .replace('?', &ann.id.to_string())
            .as_str(),
    )
    .fetch_all(c.registry().pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0].try_get::<String, _>(0).unwrap(), "create");
    assert_eq!(rows[0].try_get::<String, _>(1).unwrap(), codes[0]);
    assert_eq!(rows[9].try_get::<String, _>(0).unwrap(), "plan");
    assert_eq!(rows[9].try_get::<i64, _>(2).unwrap(), 30);
    let status = c
        .accounts()
        .quota_status(&ann, T0 + 10 * MINUTE)
        .await
        .unwrap();
    assert_eq!(status.used, 10);

    // A per-user override wins over the role's quota (both ways).
    let admin = make_user(&c, "boss@example.com", Role::Admin).await;
    c.accounts()
        .update_user(
            &admin,
            ann.id,
            None,
            Some(Some(orbita_coordinator::accounts::Quota {
                sessions_per_period: Some(12),
                period_hours: 24,
                max_minutes: Some(45),
            })),
        )
        .await
        .unwrap();
    placed(&ask(&c, Some(&ann), create.clone(), T0 + 11 * MINUTE).await);
    placed(&ask(&c, Some(&ann), create.clone(), T0 + 12 * MINUTE).await);
    let e = error_of(&ask(&c, Some(&ann), create.clone(), T0 + 13 * MINUTE).await);
    assert_eq!(e.code, ErrorCode::QuotaExceeded);
    assert!(
        e.message.contains("12 sessions per 24 hours"),
        "{}",
        e.message
    );
    // A day later the first ones have left the period.
    let later = T0 + 24 * 60 * MINUTE + 30 * SECOND_MS;
    placed(&ask(&c, Some(&ann), create.clone(), later).await);

    // Duration over the limit (checked before the count).
    let bob = make_user(&c, "bob@example.com", Role::Agent).await;
    let e = error_of(&ask(&c, Some(&bob), plan("12:00", 121), T0).await);
    assert_eq!(e.code, ErrorCode::DurationOverQuota);
    assert!(e.message.contains("120 minutes"), "{}", e.message);
    let o = ask(&c, Some(&bob), plan("12:00", 120), T0).await;
    assert!(
        matches!(o.reply, Some(ToClient::ConnectionCode { .. })),
        "{o:?}"
    );
    let e = error_of(&ask(&c, Some(&ann), plan("13:00", 46), T0).await);
    assert_eq!(e.code, ErrorCode::DurationOverQuota);
    assert!(e.message.contains("45 minutes"), "{}", e.message);
    // Administrators have no limits by default.
    let o = ask(&c, Some(&admin), plan("14:00", 600), T0).await;
    assert!(
        matches!(o.reply, Some(ToClient::ConnectionCode { .. })),
        "{o:?}"
    );
    // A refused request was not counted.
    assert_eq!(c.accounts().quota_status(&bob, T0).await.unwrap().used, 1);

    // An account rejected while connected can no longer create.
    c.accounts().reject(&admin, bob.id, "gone").await.unwrap();
    let e = error_of(&ask(&c, Some(&bob), create.clone(), T0).await);
    assert_eq!(e.code, ErrorCode::Forbidden);

    // guests_may_create lets guests create (not plan).
    let kiosk = coordinator(&url, |s| {
        s.guests_may_create = true;
        s.coordinator_id = "K".into();
    })
    .await;
    placed(&ask(&kiosk, None, create.clone(), T0).await);
    let e = error_of(&ask(&kiosk, None, plan("15:00", 30), T0).await);
    assert_eq!(e.code, ErrorCode::LoginRequired);
}

async fn parallel_requests_never_pass_the_quota(url: String) {
    let c = coordinator(&url, |s| {
        s.quota_agent = orbita_coordinator::accounts::Quota {
            sessions_per_period: Some(3),
            period_hours: 24,
            max_minutes: None,
        };
    })
    .await;
    c.register_node(&registration("n1", 100, &["Demo"]), T0)
        .await
        .unwrap();
    let ann = make_user(&c, "ann@example.com", Role::Agent).await;
    let used = || async { c.accounts().quota_status(&ann, T0).await.unwrap().used };

    // Ten CREATE_SESSIONs at once: exactly three sessions, three uses.
    let asks = (0..10).map(|_| {
        let (c, ann) = (c.clone(), ann.clone());
        tokio::spawn(async move {
            let create = json!({"verb":"CREATE_SESSION","rc_name":"Demo"});
            ask(&c, Some(&ann), create, T0).await
        })
    });
    let outcomes: Vec<Outcome> = futures_util::future::join_all(asks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let codes: Vec<String> = outcomes
        .iter()
        .filter(|o| o.reply.is_none())
        .map(placed)
        .collect();
    assert_eq!(codes.len(), 3, "{outcomes:?}");
    for o in outcomes.iter().filter(|o| o.reply.is_some()) {
        assert_eq!(error_of(o).code, ErrorCode::QuotaExceeded);
    }
    assert_eq!(used().await, 3);
    let stored = count(&c, "SELECT COUNT(*) FROM acc_usage WHERE code LIKE 'r%'").await;
    assert_eq!(stored, 0, "every reservation became its session's code");

    // The node refuses one of them: that creation no longer counts.
    c.handle_node(
        "n1",
        FromNode::CreateSessionFailed {
            code: codes[0].clone(),
            reason: "no room".into(),
        },
        T0 + SECOND_MS,
    )
    .await;
    assert_eq!(used().await, 2);
    let create = json!({"verb":"CREATE_SESSION","rc_name":"Demo"});
    placed(&ask(&c, Some(&ann), create.clone(), T0 + 2 * SECOND_MS).await);
    assert_eq!(used().await, 3);
    let e = error_of(&ask(&c, Some(&ann), create, T0 + 3 * SECOND_MS).await);
    assert_eq!(e.code, ErrorCode::QuotaExceeded);

    // A plan refused after the quota check (unknown app) gives its use back.
    c.accounts()
        .update_user(
            &make_user(&c, "boss@example.com", Role::Admin).await,
            ann.id,
            None,
            Some(Some(orbita_coordinator::accounts::Quota {
                sessions_per_period: Some(4),
                period_hours: 24,
                max_minutes: None,
            })),
        )
        .await
        .unwrap();
    let plan = |rc: &str| json!({"verb":"PLAN_SESSION","rc_name":rc,"date":"16/03/2030","time":"10:00","duration_minutes":"30"});
    let e = error_of(&ask(&c, Some(&ann), plan("Nope"), T0 + 4 * SECOND_MS).await);
    assert_eq!(e.code, ErrorCode::UnknownRc, "{e:?}");
    assert_eq!(used().await, 3);
    let o = ask(&c, Some(&ann), plan("Demo"), T0 + 5 * SECOND_MS).await;
    assert!(
        matches!(o.reply, Some(ToClient::ConnectionCode { .. })),
        "{o:?}"
    );
    assert_eq!(used().await, 4);
}

const SECOND_MS: Millis = 1000;

async fn extension_stays_within_the_planners_limit(url: String) {
    let c = coordinator(&url, |s| s.session_idle_secs = 1_000_000).await;
    let n1 = registration("n1", 5, &["Demo"]);
    c.register_node(&n1, T0).await.unwrap();
    let admin = make_user(&c, "boss@example.com", Role::Admin).await;
    let ann = make_user(&c, "ann@example.com", Role::Agent).await;
    c.accounts()
        .update_user(
            &admin,
            ann.id,
            None,
            Some(Some(orbita_coordinator::accounts::Quota {
                sessions_per_period: Some(10),
                period_hours: 24,
                max_minutes: Some(70),
            })),
        )
        .await
        .unwrap();
    // Ann plans 13:00-14:00 (60 of her 70 minutes).
    let o = ask(
        &c,
        Some(&ann),
        json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"15/03/2030","time":"13:00","duration_minutes":"60"}),
        T0,
    )
    .await;
    let Some(ToClient::ConnectionCode { code }) = o.reply else {
        panic!("{o:?}")
    };
    // A guest starts it in its slot; the node confirms.
    let start = T0 + 60 * MINUTE;
    let o = support::ask(
        &c,
        "guest",
        None,
        ip(),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
        start,
    )
    .await;
    assert_eq!(placed(&o), code);
    c.handle_node(
        "n1",
        FromNode::ConnectToSession {
            ip: n1.ip.clone(),
            port: n1.port.clone(),
            code: code.clone(),
            host_key: None,
        },
        start,
    )
    .await;
    // The guest (anyone with the code) may extend, but not beyond Ann's 70 minutes in all.
    let extend = |minutes: u64| json!({"verb":"EXTEND_SESSION","code":code,"minutes":minutes});
    let at = start + 55 * MINUTE;
    let e = error_of(&support::ask(&c, "guest", None, ip(), extend(15), at).await);
    assert_eq!(e.code, ErrorCode::DurationOverQuota);
    assert!(e.message.contains("70 minutes"), "{}", e.message);
    let o = support::ask(&c, "guest", None, ip(), extend(10), at).await;
    assert!(
        matches!(o.reply, Some(ToClient::SessionExtended { .. })),
        "{o:?}"
    );
    let s = c.registry().session(&code).await.unwrap().unwrap();
    assert_eq!(s.ends_ms, Some(start + 70 * MINUTE));
}

/// The first run: no administrator, so the server opens a one-time link; a wrong token and a
/// bad password are refused and spend nothing; the right one makes the administrator, logged
/// in at once; after that the link is spent and no new one opens.
async fn the_first_run_link_makes_the_administrator_once(url: String) {
    let c = coordinator(&url, |_| {}).await;
    let api = Api::new(c.clone());
    let state = || async {
        api.call(Method::GET, "/api/setup", None, &Auth::None)
            .await
            .body
    };
    assert_eq!(state().await, json!({"open": false}));
    let token = c
        .first_run()
        .open(c.accounts())
        .await
        .unwrap()
        .expect("no admin yet");
    assert_eq!(token.len(), 64);
    // Opening again (a second look at the console) keeps the same link.
    assert_eq!(
        c.first_run().open(c.accounts()).await.unwrap(),
        Some(token.clone())
    );
    assert_eq!(state().await, json!({"open": true}));
    let setup = |token: &str, password: &str| json!({"token": token, "email": "root@example.com", "password": password});
    let wrong = "f".repeat(64);
    for (body, status, error) in [
        (
            setup(&wrong, PASSWORD),
            StatusCode::FORBIDDEN,
            "bad_setup_token",
        ),
        (
            setup("", PASSWORD),
            StatusCode::FORBIDDEN,
            "bad_setup_token",
        ),
        (
            setup(&token, "short"),
            StatusCode::BAD_REQUEST,
            "weak_password",
        ),
        (
            json!({"token": token}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        let a = api
            .call(Method::POST, "/api/setup", Some(body), &Auth::None)
            .await;
        assert_eq!((a.status, a.error()), (status, error), "{a:?}");
    }
    assert!(!c.accounts().has_admin().await.unwrap());
    let a = api
        .call(
            Method::POST,
            "/api/setup",
            Some(setup(&token, PASSWORD)),
            &Auth::None,
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    assert_eq!(a.body["user"]["role"], "admin");
    let cookie = a.cookie().expect("logged in");
    let me = api
        .call(
            Method::GET,
            "/api/auth/me",
            None,
            &Auth::Cookie(cookie_token(&a)),
        )
        .await;
    assert_eq!(me.body["user"]["email"], "root@example.com", "{cookie}");
    // Spent: the same link again, or another, gets 410; no new link opens.
    let a = api
        .call(
            Method::POST,
            "/api/setup",
            Some(setup(&token, PASSWORD)),
            &Auth::None,
        )
        .await;
    assert_eq!((a.status, a.error()), (StatusCode::GONE, "setup_done"));
    assert_eq!(state().await, json!({"open": false}));
    assert_eq!(c.first_run().open(c.accounts()).await.unwrap(), None);
    assert_eq!(
        count(&c, "SELECT COUNT(*) FROM acc_users WHERE role = 'admin'").await,
        1
    );
}

async fn first_admin_is_created_only_once(url: String) {
    let c = coordinator(&url, |_| {}).await;
    let a = c.accounts();
    // Bad inputs are refused with the rule.
    assert!(matches!(
        a.ensure_first_admin("not-an-email", PASSWORD, T0).await,
        Err(AccountError::Invalid {
            code: "bad_email",
            ..
        })
    ));
    assert!(matches!(
        a.ensure_first_admin("root@example.com", "short", T0).await,
        Err(AccountError::Invalid {
            code: "weak_password",
            ..
        })
    ));
    assert!(a
        .ensure_first_admin("Root@Example.com", PASSWORD, T0)
        .await
        .unwrap());
    assert!(!a
        .ensure_first_admin("root@example.com", PASSWORD, T0)
        .await
        .unwrap());
    assert!(!a
        .ensure_first_admin("other@example.com", PASSWORD, T0)
        .await
        .unwrap());
    let admins = a.users(Some(Status::Active), 0, 100).await.unwrap();
    assert_eq!(admins.len(), 1);
    assert_eq!(admins[0].email, "root@example.com");
    assert_eq!(admins[0].role, Role::Admin);
    assert!(a
        .user_by_email("other@example.com")
        .await
        .unwrap()
        .is_none());
    // Another coordinator on the same database agrees.
    let c2 = coordinator(&url, |s| s.coordinator_id = "B".into()).await;
    assert!(!c2
        .accounts()
        .ensure_first_admin("third@example.com", PASSWORD, T0)
        .await
        .unwrap());
    assert!(a.login("root@example.com", PASSWORD, T0).await.is_ok());
    // create_user refuses a taken e-mail.
    assert!(matches!(
        a.create_user("ROOT@example.com", "Root", PASSWORD, Role::Agent, T0)
            .await,
        Err(AccountError::EmailTaken)
    ));
}

async fn websocket_acts_as_its_login(url: String) {
    let c = coordinator(&url, |_| {}).await;
    make_user(&c, "ann@example.com", Role::Agent).await;
    let token = c
        .accounts()
        .login("ann@example.com", PASSWORD, now_ms())
        .await
        .unwrap()
        .token;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, c.clone(), None, async move {
        let _ = stopped.await;
    }));
    // CREATE_SESSION of an app nobody offers: a logged-in agent gets past the login check
    // (UNKNOWN_RC), a guest does not (LOGIN_REQUIRED).
    let try_create = |req: tokio_tungstenite::tungstenite::handshake::client::Request| async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        let welcome = ws.next().await.unwrap().unwrap();
        assert!(welcome.to_text().unwrap().contains("WELCOME"));
        ws.send(Message::Text(
            json!({"verb":"CREATE_SESSION","rc_name":"Nothing"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let answer: Value =
            serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
        answer["code"].as_str().unwrap().to_string()
    };
    let base = format!("ws://{addr}/coordinator");
    assert_eq!(
        try_create(base.clone().into_client_request().unwrap()).await,
        "LOGIN_REQUIRED"
    );
    let with_query = format!("{base}?token={token}")
        .into_client_request()
        .unwrap();
    assert_eq!(try_create(with_query).await, "UNKNOWN_RC");
    let mut with_bearer = base.clone().into_client_request().unwrap();
    with_bearer
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    assert_eq!(try_create(with_bearer).await, "UNKNOWN_RC");
    let mut with_cookie = base.clone().into_client_request().unwrap();
    with_cookie
        .headers_mut()
        .insert("cookie", format!("orbita_session={token}").parse().unwrap());
    assert_eq!(try_create(with_cookie).await, "UNKNOWN_RC");
    // A page of another site cannot use the browser's cookie.
    let mut cross = base.clone().into_client_request().unwrap();
    cross
        .headers_mut()
        .insert("cookie", format!("orbita_session={token}").parse().unwrap());
    cross
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    assert_eq!(try_create(cross).await, "LOGIN_REQUIRED");
    let bad = format!("{base}?token={}", "0".repeat(64))
        .into_client_request()
        .unwrap();
    assert_eq!(try_create(bad).await, "LOGIN_REQUIRED");
    // The REST API is served on the same listener.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    s.write_all(
        format!("GET /api/auth/me HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).await.unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("ann@example.com"), "{text}");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
