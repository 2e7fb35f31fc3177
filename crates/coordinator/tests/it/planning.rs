//! Planning (docs/accounts.md, "Planning"): time zones, a day's free slots, moving and
//! cancelling plans, ownership, extensions of owned plans, `PLAN_SESSION` with `tz`, and the
//! REST API (`/api/slots`, `/api/plans`), on SQLite, PostgreSQL and MariaDB (see
//! tests/common/mod.rs: a database that is down fails the test). The registry scenarios run
//! on virtual time; the REST ones on the wall clock (the HTTP handlers read it), with slots
//! days ahead.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{Method, StatusCode};
use chrono::{Datelike, Days, NaiveDate, TimeZone};
use orbita_coordinator::accounts::{Quota, Role, User};
use orbita_coordinator::clock::{Millis, MINUTE, SECOND};
use orbita_coordinator::planning::tz::{self as ptz, day_bounds, parse_iso_date};
use orbita_coordinator::planning::{Customer, PlanRequest, Refusal, Scope, Slot};
use orbita_coordinator::verbs::{ErrorCode, ErrorReply, FromNode, ToClient, ToNode};
use orbita_coordinator::{now_ms, Coordinator, Delivery, Outcome};
use serde_json::{json, Value};

use crate::support::api::{Api, Auth, PASSWORD};
use crate::support::{self, register, registration, T0};

on_every_backend!(
    slots_follow_capacity_exactly,
    moving_and_cancelling_free_capacity,
    agents_manage_only_their_own_plans,
    owned_plans_extend_only_into_a_free_next_slot,
    plan_session_takes_a_time_zone_and_checks_the_account,
    rest_plans_and_slots,
    concurrent_bookings_and_moves_never_overbook,
);

fn addr(n: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, n])
}

use support::patient_coordinator as coordinator;

async fn user(c: &Coordinator, email: &str, name: &str, role: Role) -> User {
    c.accounts()
        .create_user(email, name, PASSWORD, role, T0)
        .await
        .unwrap()
}

fn date(s: &str) -> NaiveDate {
    parse_iso_date(s).unwrap()
}

fn request(rc: &str, day: &str, time: &str, zone: &str, minutes: u64) -> PlanRequest {
    PlanRequest {
        rc_name: rc.into(),
        date: date(day),
        time: ptz::parse_hhmm(time).unwrap(),
        tz: ptz::zone(zone).unwrap(),
        duration_minutes: Some(minutes),
        customer: Customer::default(),
        record: false,
    }
}

/// The instant of `"YYYY-MM-DDTHH:MM:SSZ"`.
fn utc(s: &str) -> Millis {
    ptz::parse_utc(s).unwrap()
}

async fn book(c: &Coordinator, who: &User, req: &PlanRequest, now: Millis) -> String {
    match c.book_plan("test", Some(who), req, now).await {
        Ok(e) => e.plan.code,
        Err(r) => panic!("{req:?} refused: {r:?}"),
    }
}

fn code_of(r: &Refusal) -> ErrorCode {
    match r {
        Refusal::Verb(ErrorReply { code, .. }) => *code,
        other => panic!("expected a verb refusal, got {other:?}"),
    }
}

fn error_of(o: &Outcome) -> &ErrorReply {
    match &o.reply {
        Some(ToClient::Error(e)) => e,
        other => panic!("expected an ERROR, got {other:?}"),
    }
}

fn connection_code(o: &Outcome) -> String {
    match &o.reply {
        Some(ToClient::ConnectionCode { code }) => code.clone(),
        other => panic!("expected CONNECTION_CODE, got {other:?}"),
    }
}

async fn ws(c: &Coordinator, caller: Option<&User>, req: Value, now: Millis) -> Outcome {
    support::ask(c, "client", caller, addr(1), req, now).await
}

/// The slot list as `("HH:MM", free)` in `zone`.
fn labelled(zone: &str, slots: &[Slot]) -> Vec<(String, bool)> {
    let z = ptz::zone(zone).unwrap();
    slots
        .iter()
        .map(|s| (ptz::format_local_time(z, s.start), s.free))
        .collect()
}

fn free_at(list: &[(String, bool)], label: &str) -> bool {
    let hits: Vec<bool> = list
        .iter()
        .filter(|(l, _)| l == label)
        .map(|(_, f)| *f)
        .collect();
    assert_eq!(hits.len(), 1, "{label} in {list:?}");
    hits[0]
}

/// Has `user` ask for session `code` at `now` and the node it is placed on confirm it: the
/// session is then live. Returns that node's name.
async fn start_session(c: &Coordinator, user: &str, code: &str, now: Millis) -> String {
    let o = support::ask(
        c,
        user,
        None,
        addr(2),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
        now,
    )
    .await;
    confirm_placed(c, &o, now).await
}

/// Confirms, as its node would, the session an outcome asks a node to create.
async fn confirm_placed(c: &Coordinator, o: &Outcome, now: Millis) -> String {
    let (node, code) = o
        .deliveries
        .iter()
        .find_map(|d| match d {
            Delivery::Node {
                node,
                msg: ToNode::CreateSession { code, .. },
                ..
            } => Some((node.clone(), code.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no CREATE_SESSION in {o:?}"));
    let reg = registration(&node, 1, &[]);
    let d = c
        .handle_node(
            &node,
            FromNode::ConnectToSession {
                ip: reg.ip.clone(),
                port: reg.port.clone(),
                code: code.clone(),
                host_key: None,
            },
            now,
        )
        .await;
    assert!(!d.is_empty(), "{d:?}");
    node
}

// ------------------------------------------------------------------ registry scenarios

async fn slots_follow_capacity_exactly(url: String) {
    let c = coordinator(&url, |_| {}).await;
    register(&c, "a", 1, &["Demo"], T0).await;
    register(&c, "b", 1, &["Demo"], T0).await;
    register(&c, "other", 5, &["Other"], T0).await;
    let agent = user(&c, "agent@example.com", "Agent", Role::Agent).await;
    let admin = user(&c, "admin@example.com", "Admin", Role::Admin).await;

    // Two overlapping plans fill both servers from 10:30 to 11:00 (UTC) on the 16th...
    let p1 = book(
        &c,
        &agent,
        &request("Demo", "2030-03-16", "10:00", "UTC", 60),
        T0,
    )
    .await;
    // ...the second one asked over the WebSocket in Moscow time (UTC+3).
    let o = ws(
        &c,
        Some(&agent),
        json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"16/03/2030","time":"13:30","tz":"Europe/Moscow","duration_minutes":"60"}),
        T0,
    )
    .await;
    let p2 = connection_code(&o);
    let e2 = c.registry().plan_entry(&p2).await.unwrap().unwrap();
    assert_eq!(e2.plan.start_ms, utc("2030-03-16T10:30:00Z"));
    assert_eq!(e2.details.tz, "Europe/Moscow");
    assert_eq!(e2.details.owner_id, Some(agent.id));
    assert_eq!(e2.owner_name.as_deref(), Some("Agent"));
    assert_ne!(p1, p2);

    // A third overlapping one is refused, over the WebSocket and directly.
    let o = ws(
        &c,
        Some(&agent),
        json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"16/03/2030","time":"10:45"}),
        T0,
    )
    .await;
    assert_eq!(error_of(&o).code, ErrorCode::SlotTaken);
    let r = c
        .book_plan(
            "t",
            Some(&agent),
            &request("Demo", "2030-03-16", "10:59", "UTC", 5),
            T0,
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&r), ErrorCode::SlotTaken);
    assert_eq!(r.status(), (409, "slot_taken".to_string()));
    // Another app's servers are not touched.
    book(
        &c,
        &agent,
        &request("Other", "2030-03-16", "10:30", "UTC", 60),
        T0,
    )
    .await;

    // The slot list says the same, in any zone.
    let slots = c
        .day_slots(
            "Demo",
            date("2030-03-16"),
            ptz::zone("UTC").unwrap(),
            Some(60),
            30,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(slots.len(), 48);
    let l = labelled("UTC", &slots);
    for (label, free) in [
        ("09:00", true),
        ("09:30", true),
        ("10:00", false),
        ("10:30", false),
        ("11:00", true),
        ("11:30", true),
    ] {
        assert_eq!(free_at(&l, label), free, "{label}: {l:?}");
    }
    let moscow = c
        .day_slots(
            "Demo",
            date("2030-03-16"),
            ptz::zone("Europe/Moscow").unwrap(),
            Some(60),
            30,
            T0,
        )
        .await
        .unwrap();
    let lm = labelled("Europe/Moscow", &moscow);
    assert!(!free_at(&lm, "13:00") && !free_at(&lm, "13:30") && free_at(&lm, "14:00"));
    // Every slot's answer is what booking it answers: the same rule.
    for s in &slots {
        let t = ptz::format_local_time(ptz::zone("UTC").unwrap(), s.start);
        let got = c
            .book_plan(
                "t",
                Some(&admin),
                &request("Demo", "2030-03-16", &t, "UTC", 60),
                T0,
            )
            .await;
        match got {
            Ok(e) => {
                assert!(s.free, "{t} was listed taken but could be booked");
                c.cancel_plan(&admin, &e.plan.code, T0).await.unwrap();
            }
            Err(r) => {
                assert!(!s.free, "{t} was listed free but refused: {r:?}");
                assert_eq!(code_of(&r), ErrorCode::SlotTaken);
            }
        }
    }
    assert_eq!(c.registry().plans().await.unwrap().len(), 3);

    // Today: the current minute first, and live sessions count too.
    let o = ws(
        &c,
        None,
        json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
        T0,
    )
    .await;
    confirm_placed(&c, &o, T0).await;
    book(
        &c,
        &agent,
        &request("Demo", "2030-03-15", "12:30", "UTC", 60),
        T0,
    )
    .await;
    let today = c
        .day_slots(
            "Demo",
            date("2030-03-15"),
            ptz::zone("UTC").unwrap(),
            Some(60),
            30,
            T0,
        )
        .await
        .unwrap();
    assert!(today[0].now && !today[1].now, "{today:?}");
    let lt = labelled("UTC", &today);
    assert_eq!(lt[0].0, "12:00");
    assert_eq!(lt[1].0, "12:30");
    assert!(!lt[0].1 && !lt[1].1, "{lt:?}");
    assert!(free_at(&lt[1..], "13:00"), "{lt:?}");
    assert_eq!(lt.len(), 24);
    // A past day lists nothing; a bad step is refused.
    assert!(c
        .day_slots(
            "Demo",
            date("2030-03-14"),
            ptz::zone("UTC").unwrap(),
            Some(60),
            30,
            T0
        )
        .await
        .unwrap()
        .is_empty());
    let r = c
        .day_slots(
            "Demo",
            date("2030-03-16"),
            ptz::zone("UTC").unwrap(),
            Some(60),
            1,
            T0,
        )
        .await
        .unwrap_err();
    assert_eq!(r.status().1, "bad_request");
    let r = c
        .day_slots(
            "Nope",
            date("2030-03-16"),
            ptz::zone("UTC").unwrap(),
            Some(60),
            30,
            T0,
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&r), ErrorCode::UnknownRc);
    c.registry().close().await;
}

async fn moving_and_cancelling_free_capacity(url: String) {
    let dir = std::env::temp_dir().join(format!("orbita-planning-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let plans_file = dir.join("sessions_planned.json");
    let pf = plans_file.clone();
    let c = coordinator(&url, move |s| s.plans_file = Some(pf)).await;
    register(&c, "a", 1, &["Demo"], T0).await;
    register(&c, "b", 1, &["Demo"], T0).await;
    let agent = user(&c, "agent@example.com", "Agent", Role::Agent).await;
    let sup = user(&c, "sup@example.com", "Sup", Role::Supervisor).await;
    let day = "2030-03-16";
    let p1 = book(&c, &agent, &request("Demo", day, "10:00", "UTC", 60), T0).await;
    let p2 = book(&c, &agent, &request("Demo", day, "10:00", "UTC", 60), T0).await;
    let full = request("Demo", day, "10:00", "UTC", 60);
    assert_eq!(
        code_of(&c.book_plan("t", Some(&sup), &full, T0).await.unwrap_err()),
        ErrorCode::SlotTaken
    );
    // The stage-1 plans file follows.
    let text = std::fs::read_to_string(&plans_file).unwrap();
    assert!(text.contains(&p1) && text.contains(&p2), "{text}");

    // Within its own slot: the plan does not count against itself.
    let moved = c
        .move_plan(
            &agent,
            &p1,
            date(day),
            ptz::parse_hhmm("10:15").unwrap(),
            ptz::zone("UTC").unwrap(),
            None,
            T0,
        )
        .await
        .unwrap();
    assert_eq!(moved.plan.start_ms, utc("2030-03-16T10:15:00Z"));
    assert_eq!(moved.plan.end_ms, utc("2030-03-16T11:15:00Z"));
    // Onto a full slot: refused, and nothing changes.
    book(&c, &sup, &request("Demo", day, "14:00", "UTC", 60), T0).await;
    book(&c, &sup, &request("Demo", day, "14:00", "UTC", 60), T0).await;
    let r = c
        .move_plan(
            &agent,
            &p1,
            date(day),
            ptz::parse_hhmm("14:30").unwrap(),
            ptz::zone("UTC").unwrap(),
            None,
            T0,
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&r), ErrorCode::SlotTaken);
    let still = c.registry().plan(&p1).await.unwrap().unwrap();
    assert_eq!(still.start_ms, utc("2030-03-16T10:15:00Z"));
    // Into the past or a DST gap: refused.
    let r = c
        .move_plan(
            &agent,
            &p1,
            date("2030-03-15"),
            ptz::parse_hhmm("11:00").unwrap(),
            ptz::zone("UTC").unwrap(),
            None,
            T0,
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&r), ErrorCode::SlotInPast);
    let r = c
        .move_plan(
            &agent,
            &p1,
            date("2030-03-31"),
            ptz::parse_hhmm("02:30").unwrap(),
            ptz::zone("Europe/Berlin").unwrap(),
            None,
            T0,
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&r), ErrorCode::BadTime);
    // Elsewhere, in another zone and longer: 12:00 in Almaty (UTC+5) is 07:00 UTC.
    let moved = c
        .move_plan(
            &agent,
            &p1,
            date(day),
            ptz::parse_hhmm("12:00").unwrap(),
            ptz::zone("Asia/Almaty").unwrap(),
            Some(90),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(moved.plan.start_ms, utc("2030-03-16T07:00:00Z"));
    assert_eq!(moved.plan.end_ms, utc("2030-03-16T08:30:00Z"));
    assert_eq!(moved.details.tz, "Asia/Almaty");
    let stored = c.registry().plan_entry(&p1).await.unwrap().unwrap();
    assert_eq!(stored.details.tz, "Asia/Almaty");
    assert_eq!(stored.details.owner_id, Some(agent.id));
    assert_eq!(stored.plan.start_ms, utc("2030-03-16T07:00:00Z"));
    // Longer than the agent's 120 minutes: refused.
    let r = c
        .move_plan(
            &agent,
            &p1,
            date(day),
            ptz::parse_hhmm("12:00").unwrap(),
            ptz::zone("Asia/Almaty").unwrap(),
            Some(121),
            T0,
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(&r), ErrorCode::DurationOverQuota);
    // The 10:00 slot has room again.
    let p3 = book(&c, &sup, &full, T0).await;

    // Cancelling frees the slot and the code.
    let codes = c.registry().codes_in_use().await.unwrap();
    c.cancel_plan(&agent, &p2, T0).await.unwrap();
    assert!(c.registry().plan(&p2).await.unwrap().is_none());
    assert!(c.registry().plan_entry(&p2).await.unwrap().is_none());
    assert_eq!(c.registry().codes_in_use().await.unwrap(), codes - 1);
    let text = std::fs::read_to_string(&plans_file).unwrap();
    assert!(
        !text.contains(&format!("\"{p2}\"")) && text.contains(&p3),
        "{text}"
    );
    let p4 = book(&c, &sup, &full, T0).await;
    assert_eq!(
        code_of(&c.book_plan("t", Some(&sup), &full, T0).await.unwrap_err()),
        ErrorCode::SlotTaken
    );
    let r = c.cancel_plan(&agent, &p2, T0).await.unwrap_err();
    assert!(matches!(r, Refusal::NotFound(_)), "{r:?}");
    assert_eq!(r.status(), (404, "not_found".to_string()));

    // A plan whose session runs can be neither moved nor cancelled.
    let now_plan = book(
        &c,
        &agent,
        &request("Demo", "2030-03-15", "12:00", "UTC", 30),
        T0,
    )
    .await;
    start_session(&c, "first", &now_plan, T0 + MINUTE).await;
    let r = c
        .cancel_plan(&agent, &now_plan, T0 + 2 * MINUTE)
        .await
        .unwrap_err();
    assert_eq!(r.status(), (409, "plan_started".to_string()));
    let r = c
        .move_plan(
            &agent,
            &now_plan,
            date(day),
            ptz::parse_hhmm("20:00").unwrap(),
            ptz::zone("UTC").unwrap(),
            None,
            T0 + 2 * MINUTE,
        )
        .await
        .unwrap_err();
    assert_eq!(r.status(), (409, "plan_started".to_string()));
    assert!(c.registry().plan(&now_plan).await.unwrap().is_some());
    let _ = p4;
    c.registry().close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn agents_manage_only_their_own_plans(url: String) {
    let c = coordinator(&url, |_| {}).await;
    register(&c, "a", 3, &["Demo"], T0).await;
    let ann = user(&c, "ann@example.com", "Ann", Role::Agent).await;
    let bob = user(&c, "bob@example.com", "Bob", Role::Agent).await;
    let sup = user(&c, "sup@example.com", "Sup", Role::Supervisor).await;
    let admin = user(&c, "admin@example.com", "Admin", Role::Admin).await;
    let mut req = request("Demo", "2030-03-16", "09:00", "Europe/Moscow", 30);
    req.customer = Customer {
        name: Some("  Carl  ".into()),
        phone: Some("+7 (700) 123-45-67".into()),
        email: Some("Carl@Example.com".into()),
        note: Some("bring the contract".into()),
    };
    let entry = c.book_plan("t", Some(&ann), &req, T0).await.unwrap();
    let code = entry.plan.code.clone();
    assert_eq!(entry.details.customer_name.as_deref(), Some("Carl"));
    assert_eq!(
        entry.details.customer_email.as_deref(),
        Some("carl@example.com")
    );
    let stored = c.registry().plan_entry(&code).await.unwrap().unwrap();
    assert_eq!(stored.details, entry.details);
    assert_eq!(stored.owner_email.as_deref(), Some("ann@example.com"));
    let bobs = book(
        &c,
        &bob,
        &request("Demo", "2030-03-16", "10:00", "UTC", 30),
        T0,
    )
    .await;
    // Bad customer fields: refused, naming the field; nothing is stored.
    for (field, customer) in [
        (
            "customer_phone",
            Customer {
                phone: Some("call me".into()),
                ..Customer::default()
            },
        ),
        (
            "customer_email",
            Customer {
                email: Some("nope".into()),
                ..Customer::default()
            },
        ),
        (
            "customer_name",
            Customer {
                name: Some("x".repeat(101)),
                ..Customer::default()
            },
        ),
        (
            "note",
            Customer {
                note: Some("x".repeat(2001)),
                ..Customer::default()
            },
        ),
    ] {
        let mut r = request("Demo", "2030-03-16", "11:00", "UTC", 30);
        r.customer = customer;
        let e = c.book_plan("t", Some(&ann), &r, T0).await.unwrap_err();
        assert_eq!(e.status(), (400, "bad_request".to_string()));
        assert!(e.message().contains(field), "{e:?}");
    }
    assert_eq!(c.registry().plans().await.unwrap().len(), 2);

    let window = (T0, T0 + 30 * 24 * 60 * MINUTE);
    let codes = |l: Vec<orbita_coordinator::store::PlanEntry>| -> Vec<String> {
        l.into_iter().map(|e| e.plan.code).collect()
    };
    assert_eq!(
        codes(
            c.list_plans(&ann, Scope::Mine, window.0, window.1)
                .await
                .unwrap()
        ),
        std::slice::from_ref(&code)
    );
    assert_eq!(
        codes(
            c.list_plans(&bob, Scope::Mine, window.0, window.1)
                .await
                .unwrap()
        ),
        std::slice::from_ref(&bobs)
    );
    let r = c
        .list_plans(&bob, Scope::All, window.0, window.1)
        .await
        .unwrap_err();
    assert_eq!(r.status(), (403, "forbidden".to_string()));
    let all = c
        .list_plans(&sup, Scope::All, window.0, window.1)
        .await
        .unwrap();
    assert_eq!(codes(all.clone()), [code.clone(), bobs.clone()]);
    assert_eq!(all[0].owner_name.as_deref(), Some("Ann"));
    // The window: plans overlapping it.
    let none = c
        .list_plans(
            &sup,
            Scope::All,
            utc("2030-03-16T06:15:00Z"),
            utc("2030-03-16T10:00:00Z"),
        )
        .await
        .unwrap();
    assert_eq!(codes(none), std::slice::from_ref(&code));

    // Bob can neither see, move nor cancel Ann's plan.
    let at = ptz::parse_hhmm("15:00").unwrap();
    let utc_zone = ptz::zone("UTC").unwrap();
    assert!(matches!(
        c.managed_plan(&bob, &code, T0).await,
        Err(Refusal::NotFound(_))
    ));
    assert!(matches!(
        c.move_plan(&bob, &code, date("2030-03-16"), at, utc_zone, None, T0)
            .await,
        Err(Refusal::NotFound(_))
    ));
    assert!(matches!(
        c.cancel_plan(&bob, &code, T0).await,
        Err(Refusal::NotFound(_))
    ));
    assert!(c.registry().plan(&code).await.unwrap().is_some());
    // A supervisor can move it (the owner stays Ann), an administrator cancel it.
    let moved = c
        .move_plan(&sup, &code, date("2030-03-16"), at, utc_zone, None, T0)
        .await
        .unwrap();
    assert_eq!(moved.plan.start_ms, utc("2030-03-16T15:00:00Z"));
    assert_eq!(moved.details.owner_id, Some(ann.id));
    c.cancel_plan(&admin, &code, T0).await.unwrap();
    assert!(c.registry().plan(&code).await.unwrap().is_none());
    assert!(c
        .list_plans(&ann, Scope::Mine, window.0, window.1)
        .await
        .unwrap()
        .is_empty());
    // Malformed codes are simply unknown.
    for bad in ["", "12a4", "1234567890123456789"] {
        assert!(matches!(
            c.managed_plan(&sup, bad, T0).await,
            Err(Refusal::NotFound(_))
        ));
    }
    c.registry().close().await;
}

async fn owned_plans_extend_only_into_a_free_next_slot(url: String) {
    let c = coordinator(&url, |s| {
        s.quota_agent = Quota {
            sessions_per_period: Some(10),
            period_hours: 24,
            max_minutes: Some(60),
        }
    })
    .await;
    register(&c, "a", 1, &["Demo"], T0).await;
    let agent = user(&c, "agent@example.com", "Agent", Role::Agent).await;
    let sup = user(&c, "sup@example.com", "Sup", Role::Supervisor).await;
    let start = utc("2030-03-15T13:00:00Z");
    let code = book(
        &c,
        &agent,
        &request("Demo", "2030-03-15", "13:00", "UTC", 30),
        T0,
    )
    .await;
    let next = book(
        &c,
        &sup,
        &request("Demo", "2030-03-15", "13:40", "UTC", 30),
        T0,
    )
    .await;
    assert_eq!(start_session(&c, "first", &code, start + MINUTE).await, "a");
    let extend = |minutes: u64, now: Millis| {
        let c = &c;
        let code = code.clone();
        async move {
            support::ask(
                c,
                "first",
                None,
                addr(2),
                json!({"verb":"EXTEND_SESSION","code":code,"minutes":minutes}),
                now,
            )
            .await
        }
    };
    // The next slot is booked from 13:40: 15 minutes do not fit, 10 do.
    let o = extend(15, start + 21 * MINUTE).await;
    assert_eq!(error_of(&o).code, ErrorCode::NextSlotTaken);
    let o = extend(10, start + 22 * MINUTE).await;
    assert!(
        matches!(o.reply, Some(ToClient::SessionExtended { .. })),
        "{o:?}"
    );
    assert_eq!(
        c.registry().plan(&code).await.unwrap().unwrap().end_ms,
        start + 40 * MINUTE
    );
    // That plan cancelled, the next slot is free: granted, up to the owner's 60 minutes.
    c.cancel_plan(&sup, &next, start + 30 * MINUTE)
        .await
        .unwrap();
    let o = extend(15, start + 31 * MINUTE).await;
    assert!(
        matches!(o.reply, Some(ToClient::SessionExtended { .. })),
        "{o:?}"
    );
    let o = extend(15, start + 46 * MINUTE).await;
    let e = error_of(&o);
    assert_eq!(e.code, ErrorCode::DurationOverQuota);
    assert!(e.message.contains("60"), "{}", e.message);
    assert_eq!(
        c.registry().plan(&code).await.unwrap().unwrap().end_ms,
        start + 55 * MINUTE
    );
    let o = extend(5, start + 47 * MINUTE).await;
    assert!(
        matches!(o.reply, Some(ToClient::SessionExtended { .. })),
        "{o:?}"
    );
    c.registry().close().await;
}

async fn plan_session_takes_a_time_zone_and_checks_the_account(url: String) {
    let c = coordinator(&url, |s| {
        s.quota_agent = Quota {
            sessions_per_period: Some(3),
            period_hours: 24,
            max_minutes: Some(60),
        }
    })
    .await;
    register(&c, "a", 5, &["Demo"], T0).await;
    let agent = user(&c, "agent@example.com", "Agent", Role::Agent).await;
    let plan = |date: &str, time: &str, tz: Option<&str>| {
        let mut v = json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":date,"time":time,"duration_minutes":"30"});
        if let Some(tz) = tz {
            v["tz"] = json!(tz);
        }
        v
    };
    // Guests: LOGIN_REQUIRED, whatever the rest says.
    for req in [
        plan("16/03/2030", "10:00", None),
        plan("31/02/2030", "99:00", Some("Mars/Base")),
    ] {
        let o = ws(&c, None, req, T0).await;
        assert_eq!(error_of(&o).code, ErrorCode::LoginRequired);
    }
    // The spring DST gap does not exist; a bad zone is a bad field.
    let o = ws(
        &c,
        Some(&agent),
        plan("10/03/2030", "02:30", Some("America/New_York")),
        T0,
    )
    .await;
    let e = error_of(&o);
    assert_eq!(e.code, ErrorCode::BadTime);
    assert!(
        e.message.contains("does not exist in America/New_York"),
        "{}",
        e.message
    );
    let o = ws(
        &c,
        Some(&agent),
        plan("16/03/2030", "10:00", Some("Mars/Base")),
        T0,
    )
    .await;
    let e = error_of(&o);
    assert_eq!(e.code, ErrorCode::BadField);
    assert!(e.message.contains("IANA"), "{}", e.message);
    assert!(c.registry().plans().await.unwrap().is_empty());
    // The autumn overlap takes the earlier instant (EDT): 01:30 EDT = 05:30 UTC.
    let o = ws(
        &c,
        Some(&agent),
        plan("03/11/2030", "01:30", Some("America/New_York")),
        T0,
    )
    .await;
    let p = c
        .registry()
        .plan(&connection_code(&o))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.start_ms, utc("2030-11-03T05:30:00Z"));
    // Without tz: UTC, as before.
    let o = ws(&c, Some(&agent), plan("16/03/2030", "10:00", None), T0).await;
    let e = c
        .registry()
        .plan_entry(&connection_code(&o))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.plan.start_ms, utc("2030-03-16T10:00:00Z"));
    assert_eq!(e.details.tz, "UTC");
    // Almaty (UTC+5).
    let o = ws(
        &c,
        Some(&agent),
        plan("16/03/2030", "10:00", Some("Asia/Almaty")),
        T0,
    )
    .await;
    let p = c
        .registry()
        .plan(&connection_code(&o))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.start_ms, utc("2030-03-16T05:00:00Z"));
    // Too long for the agent, then over the count.
    let mut long = plan("17/03/2030", "10:00", None);
    long["duration_minutes"] = json!("90");
    let o = ws(&c, Some(&agent), long, T0).await;
    let e = error_of(&o);
    assert_eq!(e.code, ErrorCode::DurationOverQuota);
    assert!(e.message.contains("60"), "{}", e.message);
    let o = ws(&c, Some(&agent), plan("17/03/2030", "10:00", None), T0).await;
    let e = error_of(&o);
    assert_eq!(e.code, ErrorCode::QuotaExceeded);
    assert!(
        e.message.contains('3') && e.message.contains("24"),
        "{}",
        e.message
    );
    assert_eq!(c.registry().plans().await.unwrap().len(), 3);
    // Cancelling does not give the use back.
    let mine = c
        .list_plans(&agent, Scope::Mine, T0, T0 + 400 * 24 * 60 * MINUTE)
        .await
        .unwrap();
    c.cancel_plan(&agent, &mine[0].plan.code, T0).await.unwrap();
    let o = ws(&c, Some(&agent), plan("17/03/2030", "10:00", None), T0).await;
    assert_eq!(error_of(&o).code, ErrorCode::QuotaExceeded);
    // A day later the period has room again.
    let later = T0 + 24 * 60 * MINUTE + SECOND;
    let o = ws(&c, Some(&agent), plan("17/03/2030", "10:00", None), later).await;
    connection_code(&o);
    c.registry().close().await;
}

async fn concurrent_bookings_and_moves_never_overbook(url: String) {
    // Two coordinators on one registry, as in a cluster.
    let c1 = coordinator(&url, |_| {}).await;
    let c2 = coordinator(&url, |s| s.coordinator_id = "B".into()).await;
    register(&c1, "a", 2, &["Demo"], T0).await;
    let admin = user(&c1, "admin@example.com", "Admin", Role::Admin).await;
    // Six at once for two places: exactly two get one.
    let req = request("Demo", "2030-03-16", "10:00", "UTC", 60);
    let tries = (0..6).map(|i| {
        let c = if i % 2 == 0 { &c1 } else { &c2 };
        let (admin, req) = (&admin, &req);
        async move { c.book_plan("t", Some(admin), req, T0).await }
    });
    let results = futures_util::future::join_all(tries).await;
    let ok: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|e| e.plan.code.clone()))
        .collect();
    assert_eq!(ok.len(), 2, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(code_of(r), ErrorCode::SlotTaken);
    }
    // One place left at 14:00; two plans race for it: one moves, the other stays.
    book(
        &c1,
        &admin,
        &request("Demo", "2030-03-16", "14:00", "UTC", 60),
        T0,
    )
    .await;
    let at = ptz::parse_hhmm("14:00").unwrap();
    let zone = ptz::zone("UTC").unwrap();
    let d = date("2030-03-16");
    let (m1, m2) = tokio::join!(
        c1.move_plan(&admin, &ok[0], d, at, zone, None, T0),
        c2.move_plan(&admin, &ok[1], d, at, zone, None, T0)
    );
    assert!(m1.is_ok() != m2.is_ok(), "{m1:?} {m2:?}");
    let starts: Vec<Millis> = c1
        .registry()
        .plans()
        .await
        .unwrap()
        .iter()
        .map(|p| p.start_ms)
        .collect();
    let at_two = utc("2030-03-16T14:00:00Z");
    assert_eq!(
        starts.iter().filter(|s| **s == at_two).count(),
        2,
        "{starts:?}"
    );
    assert_eq!(starts.len(), 3);
    c2.registry().close().await;
    c1.registry().close().await;
}

// ------------------------------------------------------------------------- REST scenario

/// A day `days` ahead of today in `zone`, as `YYYY-MM-DD`.
fn days_ahead(zone: &str, days: u64) -> String {
    let z = ptz::zone(zone).unwrap();
    let today = ptz::local_date(z, now_ms());
    today
        .checked_add_days(Days::new(days))
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

fn slot_list(a: &Value) -> Vec<(String, bool)> {
    a["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["start"].as_str().unwrap().to_string(),
                s["free"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn rest_plans_and_slots(url: String) {
    let c = coordinator(&url, |_| {}).await;
    let now = now_ms();
    register(&c, "a", 1, &["Demo"], now).await;
    register(&c, "b", 1, &["Demo"], now).await;
    let ann = user(&c, "ann@example.com", "Ann", Role::Agent).await;
    user(&c, "bob@example.com", "Bob", Role::Agent).await;
    let sup = user(&c, "sup@example.com", "Sup", Role::Supervisor).await;
    let api = Api::new(Arc::new(c));
    let c = api.coordinator.clone();
    let t_ann = Auth::Bearer(api.token("ann@example.com", PASSWORD).await);
    let t_bob = Auth::Bearer(api.token("bob@example.com", PASSWORD).await);
    let t_sup = Auth::Bearer(api.token("sup@example.com", PASSWORD).await);
    let day = days_ahead("Europe/Moscow", 3);
    let plan_body = |time: &str, tz: &str| json!({"rc_name":"Demo","date":day,"time":time,"tz":tz,"duration_minutes":60});

    // Not logged in: 401 everywhere.
    for (m, path) in [
        (Method::GET, format!("/api/slots?rc_name=Demo&date={day}")),
        (Method::GET, "/api/plans".to_string()),
        (Method::POST, "/api/plans".to_string()),
        (Method::PATCH, "/api/plans/1234".to_string()),
        (Method::DELETE, "/api/plans/1234".to_string()),
    ] {
        let a = api
            .call(m.clone(), &path, Some(json!({})), &Auth::None)
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{m} {path}: {a:?}");
        assert_eq!(a.error(), "not_logged_in");
    }

    // Ann books 09:00 Moscow with a customer; the plan comes back in her zone and in UTC.
    let mut body = plan_body("09:00", "Europe/Moscow");
    body["customer_name"] = json!("Bob Customer");
    body["customer_phone"] = json!("+7 (700) 123-45-67");
    body["note"] = json!("first call");
    let a = api
        .call(Method::POST, "/api/plans", Some(body), &t_ann)
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let p1 = a.body["plan"].clone();
    let code1 = p1["code"].as_str().unwrap().to_string();
    assert_eq!(p1["link"], format!("/r/{code1}"));
    assert_eq!(p1["start_local"], format!("{day} 09:00"));
    assert_eq!(p1["start_utc"], format!("{day}T06:00:00Z"));
    assert_eq!(p1["end_utc"], format!("{day}T07:00:00Z"));
    assert_eq!(p1["tz"], "Europe/Moscow");
    assert_eq!(p1["duration_minutes"], 60);
    assert_eq!(
        p1["owner"],
        json!({"id": ann.id, "name": "Ann", "email": "ann@example.com"})
    );
    assert_eq!(p1["customer_name"], "Bob Customer");
    assert_eq!(p1["customer_email"], Value::Null);
    assert_eq!(p1["note"], "first call");
    let stored = c.registry().plan_entry(&code1).await.unwrap().unwrap();
    assert_eq!(stored.details.owner_id, Some(ann.id));
    assert_eq!(
        stored.details.customer_phone.as_deref(),
        Some("+7 (700) 123-45-67")
    );

    // Bob books 09:30: both servers are taken from 09:30 to 10:00; a third is refused.
    let a = api
        .call(
            Method::POST,
            "/api/plans",
            Some(plan_body("09:30", "Europe/Moscow")),
            &t_bob,
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let code2 = a.body["plan"]["code"].as_str().unwrap().to_string();
    let a = api
        .call(
            Method::POST,
            "/api/plans",
            Some(plan_body("09:15", "Europe/Moscow")),
            &t_sup,
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{a:?}");
    assert_eq!(a.error(), "slot_taken");
    assert_eq!(c.registry().plans().await.unwrap().len(), 2);

    // The slot list agrees.
    let slots_path = |tz: &str, d: &str, step: u64| {
        format!("/api/slots?rc_name=Demo&date={d}&tz={tz}&duration_minutes=60&step_minutes={step}")
    };
    let a = api
        .call(
            Method::GET,
            &slots_path("Europe/Moscow", &day, 30),
            None,
            &t_ann,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["tz"], "Europe/Moscow");
    assert_eq!(a.body["date"], day);
    let l = slot_list(&a.body);
    assert_eq!(l.len(), 48);
    for (label, free) in [
        ("08:00", true),
        ("08:30", true),
        ("09:00", false),
        ("09:30", false),
        ("10:00", true),
        ("10:30", true),
    ] {
        assert_eq!(free_at(&l, label), free, "{label}: {l:?}");
    }
    let nine = a.body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["start"] == "09:00")
        .unwrap();
    assert_eq!(nine["start_utc"], format!("{day}T06:00:00Z"));
    // The same instants seen from Almaty (UTC+5): 11:00 and 11:30 taken.
    let a = api
        .call(
            Method::GET,
            &slots_path("Asia/Almaty", &day, 30),
            None,
            &t_sup,
        )
        .await;
    let l = slot_list(&a.body);
    assert!(
        !free_at(&l, "11:00") && !free_at(&l, "11:30") && free_at(&l, "12:00"),
        "{l:?}"
    );
    // DST days in New York have 23 and 25 hourly slots.
    let ny = ptz::zone("America/New_York").unwrap();
    let today_ny = ptz::local_date(ny, now_ms());
    let mut changes = Vec::new();
    for i in 2..300 {
        let d = today_ny.checked_add_days(Days::new(i)).unwrap();
        let (s, e) = day_bounds(ny, d);
        if e - s != 24 * 60 * MINUTE {
            changes.push((d, (e - s) / (60 * MINUTE)));
        }
    }
    assert!(!changes.is_empty());
    for (d, hours) in &changes {
        let a = api
            .call(
                Method::GET,
                &slots_path("America/New_York", &d.format("%Y-%m-%d").to_string(), 60),
                None,
                &t_ann,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        assert_eq!(slot_list(&a.body).len() as i64, *hours, "{d}");
    }
    // Bad slot queries.
    for (path, code) in [
        (
            format!("/api/slots?rc_name=Demo&date={day}&tz=Mars/Base"),
            "bad_time_zone",
        ),
        (
            "/api/slots?rc_name=Demo&date=2026-02-30".to_string(),
            "bad_date",
        ),
        (format!("/api/slots?date={day}"), "bad_request"),
        (
            format!("/api/slots?rc_name=Demo&date={day}&step_minutes=2"),
            "bad_request",
        ),
        (
            format!("/api/slots?rc_name=Demo&date={day}&duration_minutes=1"),
            "bad_duration",
        ),
        (
            format!("/api/slots?rc_name=Demo&date={day}&duration_minutes=x"),
            "bad_request",
        ),
        (format!("/api/slots?rc_name=Nope&date={day}"), "unknown_rc"),
    ] {
        let a = api.call(Method::GET, &path, None, &t_ann).await;
        assert_eq!(a.error(), code, "{path}: {a:?}");
        assert!(a.status.is_client_error(), "{path}: {a:?}");
    }

    // Bad plans: each refused with its code and nothing stored.
    let gap_day = changes
        .iter()
        .find(|(_, h)| *h == 23)
        .map(|(d, _)| d.format("%Y-%m-%d").to_string());
    let mut bad = vec![
        (
            json!({"rc_name":"Demo","date":day,"time":"09:00","tz":"Nowhere/City"}),
            400,
            "bad_time_zone",
        ),
        (
            json!({"rc_name":"Demo","date":"2026/01/01","time":"09:00","tz":"UTC"}),
            400,
            "bad_date",
        ),
        (
            json!({"rc_name":"Demo","date":day,"time":"9h","tz":"UTC"}),
            400,
            "bad_time",
        ),
        (
            json!({"rc_name":"Demo","date":"2020-01-01","time":"09:00","tz":"UTC"}),
            400,
            "slot_in_past",
        ),
        (
            json!({"rc_name":"Demo","date":day,"time":"12:00","tz":"UTC","customer_phone":"call me"}),
            400,
            "bad_request",
        ),
        (
            json!({"rc_name":"Demo","date":day,"time":"12:00","tz":"UTC","customer_email":"a@"}),
            400,
            "bad_request",
        ),
        (
            json!({"rc_name":"Demo","date":day,"time":"12:00","tz":"UTC","surprise":1}),
            400,
            "bad_request",
        ),
        (
            json!({"rc_name":"Demo","date":day,"time":"12:00","tz":"UTC","duration_minutes":121}),
            403,
            "duration_over_quota",
        ),
        (
            json!({"rc_name":"Nope","date":day,"time":"12:00","tz":"UTC"}),
            404,
            "unknown_rc",
        ),
    ];
    if let Some(g) = gap_day {
        bad.push((
            json!({"rc_name":"Demo","date":g,"time":"02:30","tz":"America/New_York"}),
            400,
            "bad_time",
        ));
    }
    for (body, status, code) in bad {
        let a = api
            .call(Method::POST, "/api/plans", Some(body.clone()), &t_ann)
            .await;
        assert_eq!(
            (a.status.as_u16(), a.error()),
            (status, code),
            "{body}: {a:?}"
        );
        assert!(!a.body["message"].as_str().unwrap().is_empty());
    }
    assert_eq!(c.registry().plans().await.unwrap().len(), 2);

    // A plan in New York time round-trips.
    let ny_day = days_ahead("America/New_York", 5);
    let a = api
        .call(Method::POST, "/api/plans", Some(json!({"rc_name":"Demo","date":ny_day,"time":"20:00","tz":"America/New_York","duration_minutes":30})), &t_ann)
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    let code3 = a.body["plan"]["code"].as_str().unwrap().to_string();
    let nd = date(&ny_day);
    let expected = chrono_tz::America::New_York
        .with_ymd_and_hms(nd.year(), nd.month(), nd.day(), 20, 0, 0)
        .earliest()
        .unwrap()
        .with_timezone(&chrono::Utc)
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    assert_eq!(a.body["plan"]["start_utc"], expected);

    // Lists: Ann's own (in each plan's zone), everyone's for the supervisor only.
    let a = api
        .call(Method::GET, "/api/plans?scope=mine", None, &t_ann)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let mine = a.body["plans"].as_array().unwrap();
    let listed: Vec<(&str, &str, &str)> = mine
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap(),
                p["start_local"].as_str().unwrap(),
                p["tz"].as_str().unwrap(),
            )
        })
        .collect();
    let ny_local = format!("{ny_day} 20:00");
    let moscow_local = format!("{day} 09:00");
    let mut want = vec![
        (code1.as_str(), moscow_local.as_str(), "Europe/Moscow"),
        (code3.as_str(), ny_local.as_str(), "America/New_York"),
    ];
    want.sort_by_key(|w| {
        if w.0 == code1 {
            p1["start_utc"].as_str().unwrap().to_string()
        } else {
            expected.clone()
        }
    });
    assert_eq!(listed, want);
    let a = api
        .call(Method::GET, "/api/plans?scope=all", None, &t_ann)
        .await;
    assert_eq!((a.status, a.error()), (StatusCode::FORBIDDEN, "forbidden"));
    let a = api
        .call(Method::GET, "/api/plans?scope=all", None, &t_sup)
        .await;
    assert_eq!(a.body["plans"].as_array().unwrap().len(), 3, "{a:?}");
    let a = api
        .call(Method::GET, "/api/plans?scope=everything", None, &t_sup)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // A window that holds only the Moscow plans.
    let path = format!("/api/plans?scope=all&from={day}T05:00:00Z&to={day}T09:00:00%2B02:00");
    let a = api.call(Method::GET, &path, None, &t_sup).await;
    let codes: Vec<&str> = a.body["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, [code1.as_str(), code2.as_str()], "{a:?}");
    let a = api
        .call(Method::GET, "/api/plans?from=soon", None, &t_sup)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    // Bob cannot move or cancel Ann's plan (it does not exist for him).
    let patch = |time: &str| json!({"date": day, "time": time, "tz": "Europe/Moscow"});
    let a = api
        .call(
            Method::PATCH,
            &format!("/api/plans/{code1}"),
            Some(patch("15:00")),
            &t_bob,
        )
        .await;
    assert_eq!((a.status, a.error()), (StatusCode::NOT_FOUND, "not_found"));
    let a = api
        .call(Method::DELETE, &format!("/api/plans/{code1}"), None, &t_bob)
        .await;
    assert_eq!((a.status, a.error()), (StatusCode::NOT_FOUND, "not_found"));
    // Ann moves hers onto the full 09:30 slot: refused; to 11:00: done.
    let a = api
        .call(
            Method::POST,
            "/api/plans",
            Some(plan_body("12:00", "Europe/Moscow")),
            &t_sup,
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED);
    let a = api
        .call(
            Method::PATCH,
            &format!("/api/plans/{code2}"),
            Some(patch("12:00")),
            &t_bob,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let a = api
        .call(
            Method::PATCH,
            &format!("/api/plans/{code1}"),
            Some(patch("12:30")),
            &t_ann,
        )
        .await;
    assert_eq!(
        (a.status, a.error()),
        (StatusCode::CONFLICT, "slot_taken"),
        "{a:?}"
    );
    let a = api
        .call(
            Method::PATCH,
            &format!("/api/plans/{code1}"),
            Some(json!({"date": day, "time": "11:00"})),
            &t_ann,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["plan"]["start_local"], format!("{day} 11:00"));
    assert_eq!(a.body["plan"]["tz"], "Europe/Moscow");
    assert_eq!(a.body["plan"]["customer_name"], "Bob Customer");
    // The supervisor moves Bob's plan (the owner stays Bob) and cancels Ann's.
    let a = api
        .call(
            Method::PATCH,
            &format!("/api/plans/{code2}"),
            Some(json!({"date": day, "time": "16:00", "tz": "UTC", "duration_minutes": 30})),
            &t_sup,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["plan"]["start_utc"], format!("{day}T16:00:00Z"));
    assert_eq!(a.body["plan"]["start_local"], format!("{day} 16:00"));
    assert_eq!(a.body["plan"]["duration_minutes"], 30);
    assert_eq!(a.body["plan"]["owner"]["name"], "Bob");
    let a = api
        .call(Method::DELETE, &format!("/api/plans/{code1}"), None, &t_sup)
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    assert!(c.registry().plan(&code1).await.unwrap().is_none());
    let a = api
        .call(Method::DELETE, &format!("/api/plans/{code1}"), None, &t_ann)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = api.call(Method::GET, "/api/plans", None, &t_ann).await;
    let left: Vec<&str> = a.body["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    assert_eq!(left, [code3.as_str()]);
    // Ann cancels her own.
    let a = api
        .call(Method::DELETE, &format!("/api/plans/{code3}"), None, &t_ann)
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{a:?}");
    let _ = sup;
    c.registry().close().await;
}
