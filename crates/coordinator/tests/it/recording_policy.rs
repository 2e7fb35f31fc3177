//! The recording policy (docs/recording.md, "Who records"): sessions of the apps, or of the
//! accounts' roles, the policy names, and plans that ask for it, are recorded; such a session
//! is placed only on a node with a free recorder slot (its heartbeat's `recording_slots`
//! against the recorded sessions placed on it plus the other recordings it reported), else
//! the client is told `NO_FREE_RECORDER`. On SQLite, PostgreSQL and MariaDB, in virtual time.

use std::net::IpAddr;

use orbita_coordinator::accounts::{Role, User};
use orbita_coordinator::clock::{Millis, MINUTE};
use orbita_coordinator::planning::tz as ptz;
use orbita_coordinator::planning::{Customer, PlanRequest};
use orbita_coordinator::verbs::{ErrorCode, FromNode, Heartbeat, ToClient, ToNode};
use orbita_coordinator::{Coordinator, Delivery, Outcome};
use serde_json::json;

use crate::support::api::PASSWORD;
use crate::support::{self, register, T0};

on_every_backend!(
    recorded_sessions_go_only_to_nodes_with_a_free_recorder,
    the_policy_records_by_app_role_and_plan,
);

use support::patient_coordinator as coordinator;

fn addr() -> IpAddr {
    IpAddr::from([192, 0, 2, 1])
}

/// `node` says it has `slots` recorder slots and makes `recording` recordings (of sessions
/// the coordinator did not ask it to record) now.
async fn recorders(c: &Coordinator, node: &str, slots: u32, recording: u32, now: Millis) {
    let hb = Heartbeat {
        recording_slots: slots,
        other_recordings: recording,
        ..Heartbeat::default()
    };
    let answer = c.handle_node(node, FromNode::Heartbeat(hb), now).await;
    assert!(answer.is_empty(), "{answer:?}");
}

/// The node a `CREATE_SESSION` (or a planned session's start) went to, and whether it is to
/// record the session; `None` when the outcome asks no node.
fn placed(o: &Outcome) -> Option<(String, bool)> {
    o.deliveries.iter().find_map(|d| match d {
        Delivery::Node {
            node,
            msg: ToNode::CreateSession { record, .. },
            ..
        } => Some((node.clone(), *record)),
        _ => None,
    })
}

async fn create(c: &Coordinator, who: Option<&User>, rc: &str, now: Millis) -> Outcome {
    support::ask(
        c,
        "client",
        who,
        addr(),
        json!({"verb":"CREATE_SESSION","rc_name":rc}),
        now,
    )
    .await
}

fn error_code(o: &Outcome) -> ErrorCode {
    match &o.reply {
        Some(ToClient::Error(e)) => e.code,
        _ => panic!("expected an ERROR, got {o:?}"),
    }
}

/// With the app `Rec` recorded by policy: node `b` has one recorder, `a` none. `Rec`
/// sessions go to `b` (though `a` comes first by name) until its slot is taken, then
/// `NO_FREE_RECORDER`; unrecorded sessions go anywhere. `a`'s recorders all busy with
/// recordings it reported keeps it out; one reported free lets it in; a recorded session
/// that ends frees its slot.
async fn recorded_sessions_go_only_to_nodes_with_a_free_recorder(url: String) {
    let c = coordinator(&url, |s| s.record_apps = vec!["Rec".into()]).await;
    register(&c, "a", 5, &["Rec", "Plain"], T0).await;
    register(&c, "b", 5, &["Rec", "Plain"], T0).await;
    let now = T0 + 1000;
    recorders(&c, "b", 1, 0, now).await;

    let first = create(&c, None, "Rec", now).await;
    assert_eq!(placed(&first), Some(("b".into(), true)), "{first:?}");
    let full = create(&c, None, "Rec", now).await;
    assert_eq!(error_code(&full), ErrorCode::NoFreeRecorder, "{full:?}");
    assert_eq!(placed(&full), None);
    // Not recorded: the least loaded node, recorder or not.
    let plain = create(&c, None, "Plain", now).await;
    assert_eq!(placed(&plain), Some(("a".into(), false)), "{plain:?}");

    // `a`'s recorders are busy with recordings its agents started...
    recorders(&c, "a", 2, 2, now).await;
    let busy = create(&c, None, "Rec", now).await;
    assert_eq!(error_code(&busy), ErrorCode::NoFreeRecorder, "{busy:?}");
    // ...until one ends.
    recorders(&c, "a", 2, 1, now + 5000).await;
    let on_a = create(&c, None, "Rec", now + 5000).await;
    assert_eq!(placed(&on_a), Some(("a".into(), true)), "{on_a:?}");
    // `a` has two slots: one busy with its agent's recording, one taken by the session just
    // placed.
    let again = create(&c, None, "Rec", now + 5000).await;
    assert_eq!(error_code(&again), ErrorCode::NoFreeRecorder, "{again:?}");

    // `b`'s recorded session fails to start: its slot is free again.
    let Some(Delivery::Node {
        msg: ToNode::CreateSession { code, .. },
        ..
    }) = first.deliveries.first()
    else {
        panic!("{first:?}")
    };
    c.handle_node(
        "b",
        FromNode::CreateSessionFailed {
            code: code.clone(),
            reason: "test".into(),
        },
        now + 6000,
    )
    .await;
    let on_b = create(&c, None, "Rec", now + 6000).await;
    assert_eq!(placed(&on_b), Some(("b".into(), true)), "{on_b:?}");
}

async fn account(c: &Coordinator, email: &str, role: Role) -> User {
    c.accounts()
        .create_user(email, email, PASSWORD, role, T0)
        .await
        .unwrap()
}

/// A 30-minute plan at 13:00 UTC on T0's day (T0 is 12:00), by `who`, asking for recording
/// or not; returns its code.
async fn plan(c: &Coordinator, who: &User, record: bool) -> String {
    let req = PlanRequest {
        rc_name: "Plain".into(),
        date: ptz::parse_iso_date("2030-03-15").unwrap(),
        time: ptz::parse_hhmm("13:00").unwrap(),
        tz: ptz::zone("UTC").unwrap(),
        duration_minutes: Some(30),
        customer: Customer::default(),
        record,
    };
    let planned_by = format!("account:{}", who.id);
    match c.book_plan(&planned_by, Some(who), &req, T0).await {
        Ok(e) => e.plan.code,
        Err(r) => panic!("refused: {r:?}"),
    }
}

/// The policy names the `agent` role: an agent's session is recorded, an administrator's
/// and a guest's are not; a planned session is recorded when its plan asked or its planner
/// is an agent.
async fn the_policy_records_by_app_role_and_plan(url: String) {
    let c = coordinator(&url, |s| s.record_roles = vec![Role::Agent]).await;
    register(&c, "a", 20, &["Plain"], T0).await;
    recorders(&c, "a", 20, 0, T0).await;
    let agent = account(&c, "agent@example.com", Role::Agent).await;
    let admin = account(&c, "admin@example.com", Role::Admin).await;

    let by_agent = create(&c, Some(&agent), "Plain", T0).await;
    assert_eq!(placed(&by_agent), Some(("a".into(), true)), "{by_agent:?}");
    let by_admin = create(&c, Some(&admin), "Plain", T0).await;
    assert_eq!(placed(&by_admin), Some(("a".into(), false)), "{by_admin:?}");
    let by_guest = create(&c, None, "Plain", T0).await;
    assert_eq!(placed(&by_guest), Some(("a".into(), false)), "{by_guest:?}");

    let asked = plan(&c, &admin, true).await;
    let not_asked = plan(&c, &admin, false).await;
    let agents = plan(&c, &agent, false).await;
    let start = T0 + 60 * MINUTE;
    for (code, recorded) in [(asked, true), (not_asked, false), (agents, true)] {
        let o = support::ask(
            &c,
            "guest",
            None,
            addr(),
            json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
            start,
        )
        .await;
        assert_eq!(placed(&o), Some(("a".into(), recorded)), "{code}: {o:?}");
    }
}
