//! A restart loses nothing: `orbita serve` (coordinator and node in one process) is killed with
//! SIGKILL after accounts were made, a login started, a room created and a call planned (both
//! counted against the agent's quota) and quotas changed; started again on the same database,
//! the login still works, the plan and the accounts are there and the quota use is the same.
//! On the embedded SQLite and on PostgreSQL (a schema of its own, made with `psql`).

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::support::{http, orbita_command, Proc, TempDir, LOOPBACK_MEDIA_ARGS};

/// The PostgreSQL the tests use (scripts/test starts one), as the coordinator's storage tests.
fn postgres_url() -> String {
    std::env::var("ORBITA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `psql URL -c SQL`, which must succeed.
fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql runs (scripts/test installs PostgreSQL)");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `orbita serve` on `database` (None: the SQLite file in `data`); its address.
fn serve(data: &Path, database: Option<&str>) -> (Proc, String) {
    let mut args = vec![
        "serve".to_string(),
        "--data-dir".into(),
        data.display().to_string(),
    ];
    if let Some(url) = database {
        args.extend(["--database-url".into(), url.to_string()]);
    }
    args.extend(LOOPBACK_MEDIA_ARGS.iter().map(|s| s.to_string()));
    let mut server = Proc::start("serve", &args);
    let addr = server.wait_for("listening on http://");
    (server, addr)
}

/// `orbita admin create-user` for the first administrator.
fn create_admin(dir: &Path, data: &Path, database: Option<&str>) {
    let password = dir.join("admin-password");
    std::fs::write(&password, "admin-password-1\n").unwrap();
    let mut cmd = orbita_command(&["admin", "--data-dir", data.to_str().unwrap()]);
    if let Some(url) = database {
        cmd.args(["--database-url", url]);
    }
    cmd.args([
        "create-user",
        "--email",
        "root@orbita.test",
        "--password-file",
    ])
    .arg(&password);
    let out = cmd.output().expect("orbita admin runs");
    assert!(
        out.status.success(),
        "orbita admin create-user: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `METHOD path` with a bearer token and an optional JSON body: status and JSON answer.
async fn call(
    http: &reqwest::Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A login's bearer token.
async fn login(http: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let resp = http
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"email": email, "password": password, "token": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "login {email}");
    let v: Value = resp.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
}

/// `who@orbita.test` (password `who-password-1`) signs up: the answer.
async fn signup(http: &reqwest::Client, base: &str, who: &str) -> Value {
    let resp = http
        .post(format!("{base}/api/auth/signup"))
        .json(&json!({"email": format!("{who}@orbita.test"),
            "password": format!("{who}-password-1"), "name": who}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{who} signs up");
    resp.json().await.unwrap()
}

/// `POST /api/rooms` as `token`'s account.
async fn create_room(http: &reqwest::Client, base: &str, token: &str) -> (u16, Value) {
    let post = reqwest::Method::POST;
    call(http, base, post, "/api/rooms", token, Some(json!({}))).await
}

/// What must survive: the agent's `me` (user and quota use), its plans, every account, the
/// role quotas.
async fn state(http: &reqwest::Client, base: &str, agent: &str, admin: &str) -> Value {
    use reqwest::Method;
    let (status, me) = call(http, base, Method::GET, "/api/auth/me", agent, None).await;
    assert_eq!(status, 200, "{me}");
    let (status, plans) = call(http, base, Method::GET, "/api/plans", agent, None).await;
    assert_eq!(status, 200, "{plans}");
    let (status, users) = call(http, base, Method::GET, "/api/admin/users", admin, None).await;
    assert_eq!(status, 200, "{users}");
    let (status, quotas) = call(http, base, Method::GET, "/api/admin/quotas", admin, None).await;
    assert_eq!(status, 200, "{quotas}");
    json!({"me": me, "plans": plans, "users": users, "quotas": quotas})
}

async fn restart_loses_nothing(database: Option<&str>) {
    use reqwest::Method;
    let dir = TempDir::new("restart");
    let data = dir.path().join("data");
    create_admin(dir.path(), &data, database);
    let (mut server, addr) = serve(&data, database);
    let base = format!("http://{addr}");
    let http = http();

    // An agent signs up and is approved; the admin changes the agents' quota.
    let admin = login(&http, &base, "root@orbita.test", "admin-password-1").await;
    let ann = signup(&http, &base, "ann").await;
    let id = ann["user"]["id"].as_i64().unwrap();
    let path = format!("/api/admin/users/{id}/approve");
    let (status, _) = call(&http, &base, Method::POST, &path, &admin, Some(json!({}))).await;
    assert_eq!(status, 200);
    let quota = json!({"quotas": {"agent": {"sessions_per_period": 7, "period_hours": 12, "max_minutes": 90}}});
    let (status, answer) = call(
        &http,
        &base,
        Method::PUT,
        "/api/admin/quotas",
        &admin,
        Some(quota),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    // A pending account too.
    signup(&http, &base, "bob").await;

    // Ann creates a room and plans a call tomorrow: two uses of her quota.
    let agent = login(&http, &base, "ann@orbita.test", "ann-password-1").await;
    let (status, room) = create_room(&http, &base, &agent).await;
    assert_eq!(status, 201, "{room}");
    let tomorrow = time::OffsetDateTime::now_utc().date().next_day().unwrap();
    let plan = json!({"rc_name": "video-room", "date": tomorrow.to_string(), "time": "10:00",
        "tz": "UTC", "duration_minutes": 30, "customer_name": "Carol"});
    let (status, planned) =
        call(&http, &base, Method::POST, "/api/plans", &agent, Some(plan)).await;
    assert_eq!(status, 201, "{planned}");

    let before = state(&http, &base, &agent, &admin).await;
    assert_eq!(before["me"]["quota"]["used"], 2, "{before}");
    assert_eq!(before["me"]["quota"]["sessions_per_period"], 7, "{before}");
    assert_eq!(before["plans"]["plans"][0]["code"], planned["plan"]["code"]);
    assert_eq!(before["users"]["users"].as_array().unwrap().len(), 3);

    // Killed: no shutdown, no flushing.
    server.kill();
    let (mut server, addr) = serve(&data, database);
    let base = format!("http://{addr}");
    // The same logins (their sessions are stored), the same state.
    let after = state(&http, &base, &agent, &admin).await;
    assert_eq!(after, before);
    // The quota use goes on from there: five more sessions, then the limit of 7.
    for n in 3..=7 {
        let (status, answer) = create_room(&http, &base, &agent).await;
        assert_eq!(status, 201, "session {n}: {answer}");
    }
    let (status, answer) = create_room(&http, &base, &agent).await;
    assert_eq!(status, 403, "the 8th session: {answer}");
    assert_eq!(answer["error"], "quota_exceeded", "{answer}");
    server.stop(std::time::Duration::from_secs(15));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_restarts_with_everything_on_sqlite() {
    restart_loses_nothing(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_restarts_with_everything_on_postgresql() {
    let base = postgres_url();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schema = format!("orbita_restart_{}_{nanos}", std::process::id());
    psql(&base, &format!("CREATE SCHEMA {schema}"));
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    restart_loses_nothing(Some(&url)).await;
    psql(&base, &format!("DROP SCHEMA {schema} CASCADE"));
}
