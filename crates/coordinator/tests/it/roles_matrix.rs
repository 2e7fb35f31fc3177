//! docs/roles.md's authorisation matrix, checked: every row's call is made as every caller
//! (guest, agent, supervisor, admin, pending account) against a real coordinator on SQLite,
//! REST calls through the HTTP router, WebSocket verbs through the coordinator with the
//! caller's login, and the outcome must be the cell's.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use base64::Engine;
use orbita_coordinator::accounts::{AccountError, Role, User};
use orbita_coordinator::clock::{format_date_time, MINUTE};
use orbita_coordinator::verbs::{FromNode, ToClient, ToNode};
use orbita_coordinator::{now_ms, Coordinator, Delivery};
use serde_json::{json, Value};

use crate::support::api::{make_user, Api, Auth, PASSWORD};
use crate::support::roles_doc::{roles_table, CALLERS};
use crate::support::{self, registration};

/// The first table of docs/roles.md (the media server's has its own test).
fn matrix() -> Vec<(String, Vec<String>)> {
    let rows = roles_table(include_str!("../../../../docs/roles.md"), "call");
    assert!(rows.len() >= 20, "only {} rows", rows.len());
    rows
}

struct World {
    api: Api,
    kiosk: Arc<Coordinator>,
    users: Vec<(&'static str, User)>,
    owner: User,
    n: AtomicU32,
    day: String,
    ws_day: String,
}

impl World {
    fn c(&self) -> &Coordinator {
        &self.api.coordinator
    }
    fn next(&self) -> u32 {
        self.n.fetch_add(1, Ordering::Relaxed)
    }
    fn user(&self, caller: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|(n, _)| *n == caller)
            .map(|(_, u)| u)
    }
    /// A distinct time of day for each new plan ("HH:MM").
    fn time(&self) -> String {
        let n = self.next();
        format!("{:02}:{:02}", 6 + n / 12, (n % 12) * 5)
    }

    /// The credentials of `caller`: a fresh login for a role; none for a guest; for a pending
    /// account, none after checking that its login is refused.
    async fn auth(&self, caller: &str) -> Auth {
        match caller {
            "guest" => Auth::None,
            "pending" => {
                let r = self
                    .c()
                    .accounts()
                    .login("pending@example.com", PASSWORD, now_ms())
                    .await;
                assert!(matches!(r, Err(AccountError::Pending)), "{r:?}");
                Auth::None
            }
            _ => {
                let email = &self.user(caller).unwrap().email;
                let l = self
                    .c()
                    .accounts()
                    .login(email, PASSWORD, now_ms())
                    .await
                    .unwrap();
                Auth::Bearer(l.token)
            }
        }
    }

    async fn fresh_pending(&self) -> i64 {
        let n = self.next();
        self.c()
            .accounts()
            .signup(
                &format!("applicant{n}@example.com"),
                PASSWORD,
                "Applicant",
                None,
                &format!("matrix-{n}"),
                now_ms(),
            )
            .await
            .unwrap()
            .id
    }

    /// A plan booked over the API by `auth`; its code.
    async fn plan_by(&self, auth: &Auth) -> String {
        let a = self
            .api
            .call(
                Method::POST,
                "/api/plans",
                Some(json!({"rc_name":"Demo","date":self.day,"time":self.time(),"tz":"UTC","duration_minutes":30})),
                auth,
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
        a.body["plan"]["code"].as_str().unwrap().to_string()
    }

    /// A call of the owner's, as its node told it; its id.
    async fn owners_call(&self) -> String {
        let id = format!("matrix-call-{}", self.next());
        let call = orbita_coordinator::store::NewCall {
            id: id.clone(),
            code: "4821".into(),
            rc_name: "Demo".into(),
            node: "node-a".into(),
            owner_id: Some(self.owner.id),
            started_ms: now_ms(),
        };
        self.c().registry().call_started(&call).await.unwrap();
        id
    }

    async fn admin_auth(&self) -> Auth {
        self.auth("admin").await
    }

    async fn owner_auth(&self) -> Auth {
        let l = self
            .c()
            .accounts()
            .login(&self.owner.email, PASSWORD, now_ms())
            .await
            .unwrap();
        Auth::Bearer(l.token)
    }

    /// A REST call as `caller`: its HTTP status.
    async fn rest(&self, call: &str, caller: &str) -> String {
        let auth = self.auth(caller).await;
        let (method, path, body) = match call {
            "`POST /api/auth/signup`" => {
                let n = self.next();
                (
                    Method::POST,
                    "/api/auth/signup".to_string(),
                    Some(
                        json!({"email": format!("signup{n}@example.com"), "password": PASSWORD, "name": "S"}),
                    ),
                )
            }
            "`POST /api/auth/login`" => {
                let email = match caller {
                    "guest" => "nobody@example.com".to_string(),
                    "pending" => "pending@example.com".to_string(),
                    role => self.user(role).unwrap().email.clone(),
                };
                (
                    Method::POST,
                    "/api/auth/login".to_string(),
                    Some(json!({"email": email, "password": PASSWORD, "token": true})),
                )
            }
            "`POST /api/auth/logout`" => (Method::POST, "/api/auth/logout".into(), None),
            "`GET /api/auth/me`" => (Method::GET, "/api/auth/me".into(), None),
            "`POST /api/auth/password`" => (
                Method::POST,
                "/api/auth/password".into(),
                Some(json!({"old_password": PASSWORD, "new_password": PASSWORD})),
            ),
            "`GET /api/admin/users`" => (Method::GET, "/api/admin/users".into(), None),
            "`POST /api/admin/users/{id}/approve`" => (
                Method::POST,
                format!("/api/admin/users/{}/approve", self.fresh_pending().await),
                Some(json!({"role": "agent"})),
            ),
            "`POST /api/admin/users/{id}/reject`" => (
                Method::POST,
                format!("/api/admin/users/{}/reject", self.fresh_pending().await),
                Some(json!({"reason": "not staff"})),
            ),
            "`PUT /api/admin/users/{id}`" => (
                Method::PUT,
                format!("/api/admin/users/{}", self.fresh_pending().await),
                Some(json!({"quota": null})),
            ),
            "`GET /api/admin/quotas`" => (Method::GET, "/api/admin/quotas".into(), None),
            "`PUT /api/admin/quotas`" => (
                Method::PUT,
                "/api/admin/quotas".into(),
                Some(
                    json!({"quotas": {"agent": {"sessions_per_period": 10, "period_hours": 24, "max_minutes": 120}}}),
                ),
            ),
            "`GET /api/slots`" => (
                Method::GET,
                format!(
                    "/api/slots?rc_name=Demo&date={}&tz=UTC&duration_minutes=30",
                    self.day
                ),
                None,
            ),
            "`POST /api/plans`" => (
                Method::POST,
                "/api/plans".into(),
                Some(
                    json!({"rc_name":"Demo","date":self.day,"time":self.time(),"tz":"UTC","duration_minutes":30}),
                ),
            ),
            "`GET /api/setup`" => (Method::GET, "/api/setup".into(), None),
            "`POST /api/setup` (an administrator exists)" => (
                Method::POST,
                "/api/setup".into(),
                Some(
                    json!({"token": "0".repeat(64), "email": "new-admin@example.com", "password": PASSWORD}),
                ),
            ),
            "`GET /api/plans?scope=mine`" => (Method::GET, "/api/plans?scope=mine".into(), None),
            "`GET /api/plans?scope=all`" => (Method::GET, "/api/plans?scope=all".into(), None),
            "`GET /api/call-forms`" => (Method::GET, "/api/call-forms".into(), None),
            "`PUT /api/call-forms/{scope}`" => (
                Method::PUT,
                format!("/api/call-forms/app-{}", self.next()),
                Some(json!({"survey": [{"id": "r", "kind": "rating", "label": "How was it?"}]})),
            ),
            "`DELETE /api/call-forms/{scope}`" => {
                let scope = format!("app-{}", self.next());
                let forms = serde_json::from_value(
                    json!({"fields": [{"id": "f", "kind": "text", "label": "F"}]}),
                )
                .unwrap();
                self.c()
                    .registry()
                    .set_call_forms(&scope, &forms, now_ms())
                    .await
                    .unwrap();
                (Method::DELETE, format!("/api/call-forms/{scope}"), None)
            }
            "`PUT /api/calls/{id}/fields` (someone else's call)" => {
                let id = self.owners_call().await;
                (
                    Method::PUT,
                    format!("/api/calls/{id}/fields"),
                    Some(json!({"values": {}})),
                )
            }
            "`GET /api/calls/{id}/survey` (with the participant's token)"
            | "`POST /api/calls/{id}/survey` (with the participant's token)" => {
                // A call whose participant was given a token, of an app with a survey.
                let id = self.owners_call().await;
                let r = self.c().registry();
                let forms = serde_json::from_value(
                    json!({"survey": [{"id": "r", "kind": "rating", "label": "How was it?"}]}),
                )
                .unwrap();
                r.set_call_forms("Demo", &forms, now_ms()).await.unwrap();
                let who = orbita_coordinator::store::CallParticipant {
                    participant_id: "p1".into(),
                    name: "Customer".into(),
                    role: "customer".into(),
                    account_id: None,
                    user_agent: String::new(),
                    browser: String::new(),
                    os: String::new(),
                    device: String::new(),
                    consent_id: String::new(),
                    camera: String::new(),
                    microphone: String::new(),
                };
                r.call_joined(&id, &who, now_ms()).await.unwrap();
                let token = "ab".repeat(32);
                let hash = orbita_coordinator::accounts::tokens::token_hash(&token);
                r.set_participant_token(&id, "p1", &hash).await.unwrap();
                if call.starts_with("`GET") {
                    (
                        Method::GET,
                        format!("/api/calls/{id}/survey?participant=p1&token={token}"),
                        None,
                    )
                } else {
                    (
                        Method::POST,
                        format!("/api/calls/{id}/survey"),
                        Some(json!({"participant": "p1", "token": token, "answers": {"r": "5"}})),
                    )
                }
            }
            "`GET /api/settings/calls`" => (Method::GET, "/api/settings/calls".into(), None),
            "`PUT /api/settings/branding`" => (
                Method::PUT,
                "/api/settings/branding".into(),
                Some(json!({"company": "Acme", "primary_color": "#1a73e8"})),
            ),
            "`PUT /api/settings/logo`" => {
                // The picture itself is the body.
                let png = base64::engine::general_purpose::STANDARD
                    .decode(crate::call_settings::PNG_B64)
                    .unwrap();
                let a = self
                    .api
                    .raw(
                        Method::PUT,
                        "/api/settings/logo",
                        Some(png),
                        &auth,
                        &[("content-type", "image/png")],
                    )
                    .await;
                if !a.status.is_success() {
                    assert!(a.body["error"].is_string(), "{call} as {caller}: {a:?}");
                }
                return a.status.as_u16().to_string();
            }
            "`DELETE /api/settings/logo`" => (Method::DELETE, "/api/settings/logo".into(), None),
            "`PUT /api/settings/features/{scope}`" => (
                Method::PUT,
                format!("/api/settings/features/app-{}", self.next()),
                Some(json!({"agent": {"camera": false}})),
            ),
            "`DELETE /api/settings/features/{scope}`" => {
                let scope = format!("app-{}", self.next());
                self.c()
                    .registry()
                    .set_features(&scope, &Default::default(), now_ms())
                    .await
                    .unwrap();
                (
                    Method::DELETE,
                    format!("/api/settings/features/{scope}"),
                    None,
                )
            }
            "`GET /api/calls`" => (Method::GET, "/api/calls".into(), None),
            "`GET /api/calls/agents`" => (Method::GET, "/api/calls/agents".into(), None),
            "`GET /api/calls/export.csv`" | "`GET /api/calls/export.xlsx`" => {
                // A download, not JSON (but for a refusal).
                let path = call.trim_start_matches("`GET ").trim_end_matches('`');
                let (status, _, body) = self.api.download(path, &auth).await;
                if !status.is_success() {
                    let error: Value = serde_json::from_slice(&body).unwrap();
                    assert!(error["error"].is_string(), "{call} as {caller}: {error}");
                }
                return status.as_u16().to_string();
            }
            "`GET /api/calls/{id}` (someone else's call)" => {
                let id = self.owners_call().await;
                (Method::GET, format!("/api/calls/{id}"), None)
            }
            "`PATCH /api/plans/{code}` (own plan)" | "`DELETE /api/plans/{code}` (own plan)" => {
                // A guest's or pending account's "own" plan: one an administrator made.
                let maker = match &auth {
                    Auth::None => self.admin_auth().await,
                    a => a.clone(),
                };
                let code = self.plan_by(&maker).await;
                self.plan_change(call, &code)
            }
            "`PATCH /api/plans/{code}` (someone else's plan)"
            | "`DELETE /api/plans/{code}` (someone else's plan)" => {
                let code = self.plan_by(&self.owner_auth().await).await;
                self.plan_change(call, &code)
            }
            other => panic!("docs/roles.md row {other} has no call in this test"),
        };
        let a = self.api.call(method, &path, body, &auth).await;
        if a.status.is_client_error() || a.status.is_server_error() {
            assert!(a.body["error"].is_string(), "{call} as {caller}: {a:?}");
        }
        a.status.as_u16().to_string()
    }

    fn plan_change(&self, call: &str, code: &str) -> (Method, String, Option<Value>) {
        if call.starts_with("`PATCH") {
            (
                Method::PATCH,
                format!("/api/plans/{code}"),
                Some(json!({"date": self.day, "time": self.time(), "tz": "UTC"})),
            )
        } else {
            (Method::DELETE, format!("/api/plans/{code}"), None)
        }
    }

    /// A WebSocket verb as `caller`: `ok` or the `ERROR` code.
    async fn verb(&self, call: &str, caller: &str) -> String {
        let caller_user = match caller {
            "guest" | "pending" => {
                self.auth(caller).await;
                None
            }
            role => Some(self.user(role).unwrap().clone()),
        };
        let who = caller_user.as_ref();
        let n = self.next();
        let ip = std::net::IpAddr::from([198, 51, 100, (n % 250) as u8 + 1]);
        let (target, req): (&Coordinator, Value) = match call {
            "`GET_SERVERS`" => (self.c(), json!({"verb":"GET_SERVERS","range":"0-10"})),
            "`CREATE_SESSION`" => (self.c(), json!({"verb":"CREATE_SESSION","rc_name":"Demo"})),
            "`CREATE_SESSION` (with `guests_may_create`)" => (
                &*self.kiosk,
                json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
            ),
            "`PLAN_SESSION`" => (
                self.c(),
                json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":self.ws_day,"time":self.time(),"duration_minutes":"30"}),
            ),
            "`CONNECT_SESSION_WITH_CODE`" => {
                let code = self.live_session(false).await;
                (
                    self.c(),
                    json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
                )
            }
            "`EXTEND_SESSION`" => {
                let code = self.live_session(true).await;
                (
                    self.c(),
                    json!({"verb":"EXTEND_SESSION","code":code,"minutes":5}),
                )
            }
            other => panic!("docs/roles.md row {other} has no verb in this test"),
        };
        let outcome = support::ask(target, &format!("client{n}"), who, ip, req, now_ms()).await;
        let ok = match (&outcome.reply, call) {
            (Some(ToClient::Error(e)), _) => return e.code.as_str().to_string(),
            (Some(ToClient::ServersFound { .. }), "`GET_SERVERS`") => true,
            (Some(ToClient::ConnectionCode { .. }), "`PLAN_SESSION`") => true,
            (Some(ToClient::ConnectToSession { .. }), "`CONNECT_SESSION_WITH_CODE`") => true,
            (Some(ToClient::SessionExtended { .. }), "`EXTEND_SESSION`") => true,
            (None, c) if c.starts_with("`CREATE_SESSION`") => outcome.deliveries.iter().any(|d| {
                matches!(
                    d,
                    Delivery::Node {
                        msg: ToNode::CreateSession { .. },
                        ..
                    }
                )
            }),
            _ => false,
        };
        if ok {
            "ok".into()
        } else {
            format!("{outcome:?}")
        }
    }

    /// A live session: created by the administrator, or (`planned`) planned by them to start
    /// this minute for 5 minutes (so it is already in its extension window) and started.
    async fn live_session(&self, planned: bool) -> String {
        let c = self.c();
        let admin = self.user("admin").unwrap();
        let now = now_ms();
        let o = if planned {
            let (date, time) = format_date_time(now);
            let o = support::ask(c, "planner", Some(admin), std::net::IpAddr::from([203, 0, 113, 1]), json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":date,"time":time,"duration_minutes":"5"}), now).await;
            let Some(ToClient::ConnectionCode { code }) = o.reply else {
                panic!("{o:?}")
            };
            support::ask(
                c,
                "starter",
                None,
                std::net::IpAddr::from([203, 0, 113, 2]),
                json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
                now,
            )
            .await
        } else {
            support::ask(
                c,
                "creator",
                Some(admin),
                std::net::IpAddr::from([203, 0, 113, 3]),
                json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
                now,
            )
            .await
        };
        let code = o
            .deliveries
            .iter()
            .find_map(|d| match d {
                Delivery::Node {
                    msg: ToNode::CreateSession { code, .. },
                    ..
                } => Some(code.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{o:?}"));
        let n1 = registration("n1", 500, &["Demo"]);
        c.handle_node(
            &n1.server_name,
            FromNode::ConnectToSession {
                ip: n1.ip,
                port: n1.port,
                code: code.clone(),
                host_key: None,
            },
            now,
        )
        .await;
        code
    }
}

#[tokio::test]
async fn docs_roles_matrix_holds() {
    let db = support::db::TestDb::new(support::db::Kind::Sqlite, "roles_matrix").await;
    let open = |guests: bool, id: &'static str| {
        let url = db.url.clone();
        async move {
            Arc::new(
                support::coordinator(&url, |s| {
                    s.coordinator_id = id.into();
                    s.guests_may_create = guests;
                })
                .await,
            )
        }
    };
    let c = open(false, "A").await;
    let kiosk = open(true, "K").await;
    c.register_node(&registration("n1", 500, &["Demo"]), now_ms())
        .await
        .unwrap();
    let mut users = Vec::new();
    for (name, role) in [
        ("agent", Role::Agent),
        ("supervisor", Role::Supervisor),
        ("admin", Role::Admin),
    ] {
        users.push((
            name,
            make_user(&c, &format!("{name}@example.com"), role).await,
        ));
    }
    let owner = make_user(&c, "owner@example.com", Role::Supervisor).await;
    c.accounts()
        .signup(
            "pending@example.com",
            PASSWORD,
            "Pending",
            None,
            "matrix",
            now_ms(),
        )
        .await
        .unwrap();
    let day = |days: i64| {
        chrono::DateTime::from_timestamp_millis(now_ms() + days * 24 * 60 * MINUTE).unwrap()
    };
    let world = World {
        api: Api::new(c.clone()),
        kiosk,
        users,
        owner,
        n: AtomicU32::new(0),
        day: day(2).format("%Y-%m-%d").to_string(),
        ws_day: day(3).format("%d/%m/%Y").to_string(),
    };
    let mut failures = Vec::new();
    let rows = matrix();
    for (call, cells) in &rows {
        for (caller, want) in CALLERS.iter().zip(cells) {
            let got = if call.contains(" /api/") {
                world.rest(call, caller).await
            } else {
                world.verb(call, caller).await
            };
            if &got != want {
                failures.push(format!("{call} as {caller}: docs say {want}, got {got}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "docs/roles.md is wrong:\n{}",
        failures.join("\n")
    );
    // Every endpoint of the routers is in the table.
    for needed in [
        "/api/auth/signup",
        "/api/auth/login",
        "/api/auth/logout",
        "/api/auth/me",
        "/api/auth/password",
        "GET /api/admin/users`",
        "/approve",
        "/reject",
        "PUT /api/admin/users/{id}",
        "GET /api/admin/quotas",
        "PUT /api/admin/quotas",
        "/api/slots",
        "POST /api/plans",
        "GET /api/plans",
        "PATCH /api/plans",
        "DELETE /api/plans",
        "`GET_SERVERS`",
        "`CREATE_SESSION`",
        "`PLAN_SESSION`",
        "`CONNECT_SESSION_WITH_CODE`",
        "`EXTEND_SESSION`",
    ] {
        assert!(
            rows.iter().any(|(call, _)| call.contains(needed)),
            "docs/roles.md has no row for {needed}"
        );
    }
    db.cleanup().await;
}
