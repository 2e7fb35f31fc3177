//! The call history's filters and exports (docs/calls.md), on SQLite, PostgreSQL and MariaDB:
//! each filter lets through the right calls, within what the caller may see; wrong values
//! get `400` naming the field; the CSV and the Excel workbook (read back with calamine) hold
//! the right rows and typed cells.

use std::io::Cursor;
use std::sync::Arc;

use axum::http::{header, Method, StatusCode};
use calamine::{open_workbook_from_rs, Data, Reader, Xlsx};
use chrono::{TimeZone, Utc};
use orbita_coordinator::accounts::{Role, User};
use orbita_coordinator::clock::{Millis, SECOND};
use orbita_coordinator::store::{CallParticipant, NewCall};
use orbita_coordinator::Coordinator;

use crate::support::api::{bearer, Api, Auth, PASSWORD};
use crate::support::{self};

on_every_backend!(the_history_filters_and_exports_calls);

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1";

async fn account(c: &Coordinator, email: &str, name: &str, role: Role) -> User {
    c.accounts()
        .create_user(email, name, PASSWORD, role, c.now())
        .await
        .unwrap()
}

fn person(id: &str, name: &str, role: &str, ua: &str, account: Option<i64>) -> CallParticipant {
    let d = orbita_coordinator::devices::describe(ua);
    CallParticipant {
        participant_id: id.into(),
        name: name.into(),
        role: role.into(),
        account_id: account,
        user_agent: ua.into(),
        browser: d.browser,
        os: d.os,
        device: d.kind,
        consent_id: String::new(),
        camera: String::new(),
        microphone: String::new(),
    }
}

/// 2026-03-10 at `h`:`m` UTC.
fn march_10(h: u32, m: u32) -> Millis {
    Utc.with_ymd_and_hms(2026, 3, 10, h, m, 0)
        .unwrap()
        .timestamp_millis()
}

/// A call of `owner` from `start`, `length` long (`None`: going on), with an agent and the
/// customer `customer`, recorded or not.
#[allow(clippy::too_many_arguments)]
async fn a_call(
    c: &Coordinator,
    id: &str,
    owner: &User,
    start: Millis,
    length: Option<Millis>,
    customer: &str,
    ua: &str,
    recorded: bool,
) {
    let r = c.registry();
    r.call_started(&NewCall {
        id: id.into(),
        code: "4821".into(),
        rc_name: "video-room".into(),
        node: "node-a".into(),
        owner_id: Some(owner.id),
        started_ms: start,
    })
    .await
    .unwrap();
    r.call_joined(
        id,
        &person("p1", &owner.name, "agent", CHROME, Some(owner.id)),
        start,
    )
    .await
    .unwrap();
    r.call_joined(
        id,
        &person("p2", customer, "customer", ua, None),
        start + SECOND,
    )
    .await
    .unwrap();
    if recorded {
        r.call_recording(id, &format!("{id}-rec"), start + SECOND)
            .await
            .unwrap();
    }
    if let Some(length) = length {
        r.call_ended(id, start + length, "empty").await.unwrap();
    }
}

fn ids(body: &serde_json::Value) -> Vec<String> {
    body["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

async fn the_history_filters_and_exports_calls(url: String) {
    let c = Arc::new(support::coordinator(&url, |_| {}).await);
    let api = Api::new(c.clone());
    let ann = account(&c, "ann@example.com", "Ann Agent", Role::Agent).await;
    let bob = account(&c, "bob@example.com", "Bob Agent", Role::Agent).await;
    account(&c, "sue@example.com", "Sue Supervisor", Role::Supervisor).await;
    // Ann's two calls on 10 March (one recorded), Bob's one the next day (going on) and one
    // three days before.
    a_call(
        &c,
        "c1",
        &ann,
        march_10(10, 0),
        Some(90 * SECOND),
        "Олег Петров",
        CHROME,
        true,
    )
    .await;
    a_call(
        &c,
        "c2",
        &ann,
        march_10(12, 0),
        Some(600 * SECOND),
        "Maria",
        IPHONE,
        false,
    )
    .await;
    a_call(
        &c,
        "c3",
        &bob,
        march_10(12, 0) + 86_400_000,
        None,
        "=HYPERLINK(\"http://x\")",
        CHROME,
        false,
    )
    .await;
    a_call(
        &c,
        "c4",
        &bob,
        march_10(9, 0) - 3 * 86_400_000,
        Some(30 * SECOND),
        "maria_k",
        IPHONE,
        false,
    )
    .await;

    let (sue, ann_auth) = (
        bearer(&c, "sue@example.com").await,
        bearer(&c, "ann@example.com").await,
    );
    let list = |query: &'static str, auth: Auth| {
        let api = &api;
        async move {
            let a = api
                .call(Method::GET, &format!("/api/calls?{query}"), None, &auth)
                .await;
            assert_eq!(a.status, StatusCode::OK, "{query}: {a:?}");
            a.body
        }
    };
    let all = list("", sue.clone()).await;
    assert_eq!(ids(&all), ["c3", "c2", "c1", "c4"]);
    let c1 = &all["calls"][2];
    assert_eq!(c1["owner_name"], "Ann Agent");
    assert_eq!(c1["customers"], serde_json::json!(["Олег Петров"]));
    assert_eq!(c1["recordings"], 1);
    assert_eq!(c1["duration_ms"], 90_000);
    for (query, want) in [
        ("from=2026-03-10&to=2026-03-10", vec!["c2", "c1"]),
        ("from=2026-03-11", vec!["c3"]),
        ("to=2026-03-09", vec!["c4"]),
        ("agent=ANN", vec!["c2", "c1"]),
        ("customer=%D0%BE%D0%9B%D0%95%D0%B3", vec!["c1"]), // "оЛЕг": any case, Cyrillic too
        ("customer=a_", vec!["c4"]),                       // `_` is a character, not a wildcard
        ("customer=maria", vec!["c2", "c4"]),
        ("min_duration_s=60", vec!["c2", "c1"]),
        ("max_duration_s=60", vec!["c4"]),
        ("min_duration_s=60&max_duration_s=120", vec!["c1"]),
        ("recorded=yes", vec!["c1"]),
        ("recorded=no", vec!["c3", "c2", "c4"]),
        ("recorded=&customer=&from=", vec!["c3", "c2", "c1", "c4"]),
    ] {
        let query = query.replace("ANN", &ann.id.to_string());
        let a = api
            .call(Method::GET, &format!("/api/calls?{query}"), None, &sue)
            .await;
        assert_eq!(a.status, StatusCode::OK, "{query}: {a:?}");
        assert_eq!(ids(&a.body), want, "{query}");
    }
    // An agent sees their own calls only, whatever they ask for.
    assert_eq!(ids(&list("", ann_auth.clone()).await), ["c2", "c1"]);
    let bobs = format!("/api/calls?agent={}", bob.id);
    let none = api.call(Method::GET, &bobs, None, &ann_auth).await;
    assert_eq!(ids(&none.body), Vec::<String>::new());
    // The agents one may filter by.
    let agents = list_agents(&api, &sue).await;
    assert_eq!(
        agents,
        [
            (ann.id, "Ann Agent".to_string()),
            (bob.id, "Bob Agent".to_string())
        ]
    );
    assert_eq!(
        list_agents(&api, &ann_auth).await,
        [(ann.id, "Ann Agent".to_string())]
    );

    // Wrong values: 400, naming what is wrong.
    for (query, says) in [
        ("from=10.03.2026", "from is a date"),
        ("to=2026-02-30", "to is a date"),
        ("from=2026-03-10&to=2026-03-09", "to comes before from"),
        ("agent=ann", "agent is an account's id"),
        ("min_duration_s=-5", "min_duration_s is a whole number"),
        (
            "min_duration_s=60&max_duration_s=10",
            "max_duration_s is less",
        ),
        ("recorded=maybe", "recorded is yes or no"),
        ("limit=many", "limit is a whole number"),
        ("colour=red", "unknown field"),
    ] {
        let a = api
            .call(Method::GET, &format!("/api/calls?{query}"), None, &sue)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{query}: {a:?}");
        let message = a.body["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{query}: {message}");
    }
    let long = format!("/api/calls?customer={}", "x".repeat(101));
    assert_eq!(
        api.call(Method::GET, &long, None, &sue).await.status,
        StatusCode::BAD_REQUEST
    );
    let (status, _, _) = api.download("/api/calls/export.csv?limit=5", &sue).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = api.download("/api/calls/export.csv", &Auth::None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // CSV: a header and a row a call, times in the account's zone (UTC here), a name that
    // looks like a formula kept as text.
    let (status, headers, csv) = api
        .download("/api/calls/export.csv?from=2026-03-10", &sue)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(headers[header::CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"calls-"));
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let head: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(
        head[..6],
        ["call_id", "code", "app", "started", "ended", "duration_s"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let column = |name: &str| head.iter().position(|h| h == name).unwrap();
    let got: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(got, ["c3", "c2", "c1"]);
    assert_eq!(&rows[2][column("started")], "2026-03-10 10:00:00");
    assert_eq!(&rows[2][column("duration_s")], "90");
    assert_eq!(&rows[2][column("agent")], "Ann Agent");
    assert_eq!(&rows[2][column("customers")], "Олег Петров");
    assert_eq!(&rows[2][column("recordings")], "1");
    assert!(rows[2][column("devices")].contains("Олег Петров: Chrome 131, Windows 10, desktop"));
    assert!(rows[1][column("devices")].contains("Maria: Safari 17, iOS 17.1, mobile"));
    assert_eq!(&rows[0][column("ended")], "", "c3 goes on");
    assert_eq!(&rows[0][column("customers")], "'=HYPERLINK(\"http://x\")");

    // Excel: a sheet of calls and one of participants; dates and durations are typed cells.
    let (status, headers, xlsx) = api.download("/api/calls/export.xlsx", &sue).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(xlsx)).expect("a workbook");
    assert_eq!(book.sheet_names(), ["Calls", "Participants"]);
    let calls = book.worksheet_range("Calls").unwrap();
    assert_eq!(calls.height(), 5, "a header and four calls");
    assert_eq!(calls.get((0, 0)), Some(&Data::String("Call".into())));
    let row_of = |id: &str| {
        (1..calls.height())
            .find(|&r| calls.get((r, 0)) == Some(&Data::String(id.into())))
            .unwrap()
    };
    let r1 = row_of("c1");
    let Some(Data::DateTime(started)) = calls.get((r1, 3)) else {
        panic!("started is a date cell: {:?}", calls.get((r1, 3)));
    };
    assert!(started.is_datetime());
    // 2026-03-10 10:00 is day 46091 and 10/24 since 1899-12-30.
    assert!(
        (started.as_f64() - (46_091.0 + 10.0 / 24.0)).abs() < 1e-6,
        "{started:?}"
    );
    let Some(Data::DateTime(length)) = calls.get((r1, 5)) else {
        panic!("duration is a duration cell: {:?}", calls.get((r1, 5)));
    };
    assert!(length.is_duration(), "{length:?}");
    assert!((length.as_f64() * 86_400.0 - 90.0).abs() < 1e-6);
    assert_eq!(calls.get((r1, 6)), Some(&Data::String("Ann Agent".into())));
    assert_eq!(calls.get((r1, 9)), Some(&Data::Float(1.0)));
    assert_eq!(
        calls.get((row_of("c3"), 4)),
        Some(&Data::Empty),
        "no end yet"
    );
    let people = book.worksheet_range("Participants").unwrap();
    assert_eq!(people.height(), 9, "a header and two people a call");
    let olegs = (1..people.height())
        .find(|&r| people.get((r, 2)) == Some(&Data::String("Олег Петров".into())))
        .unwrap();
    assert_eq!(people.get((olegs, 0)), Some(&Data::String("c1".into())));
    assert_eq!(
        people.get((olegs, 5)),
        Some(&Data::String("Chrome 131".into()))
    );
    assert_eq!(
        people.get((olegs, 7)),
        Some(&Data::String("desktop".into()))
    );
    // An agent's export: their own calls.
    let (_, _, mine) = api.download("/api/calls/export.xlsx", &ann_auth).await;
    let mut mine: Xlsx<_> = open_workbook_from_rs(Cursor::new(mine)).unwrap();
    assert_eq!(mine.worksheet_range("Calls").unwrap().height(), 3);
}

async fn list_agents(api: &Api, auth: &Auth) -> Vec<(i64, String)> {
    let a = api.call(Method::GET, "/api/calls/agents", None, auth).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    a.body["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["id"].as_i64().unwrap(),
                x["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}
