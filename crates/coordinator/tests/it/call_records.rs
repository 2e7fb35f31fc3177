//! Call records stored as the call goes (docs/calls.md), on SQLite, PostgreSQL and MariaDB: a
//! call with joins, leaves and chat is read back completely; events sent twice are stored
//! once; a call whose server died is closed at its last event when that server returns.

use orbita_coordinator::clock::{Millis, SECOND};
use orbita_coordinator::store::{CallParticipant, ChatLine, NewCall, Presence};
use orbita_coordinator::verbs::{CallEvent, FromNode};
use orbita_coordinator::Registry;

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use orbita_coordinator::accounts::Role;
use orbita_coordinator::now_ms;

use crate::support::api::{bearer, make_user, Api};
use crate::support::{self, register, T0};

on_every_backend!(
    a_call_is_stored_completely_and_read_back,
    a_cut_call_is_closed_when_its_server_comes_back,
    nodes_record_only_their_own_calls,
    the_history_pages_through_calls_and_shows_one_whole,
);

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

fn call(id: &str, node: &str, at: Millis) -> NewCall {
    NewCall {
        id: id.into(),
        code: "4821".into(),
        rc_name: "video-room".into(),
        node: node.into(),
        owner_id: Some(7),
        started_ms: at,
    }
}

fn person(id: &str, name: &str, role: &str, account: Option<i64>) -> CallParticipant {
    CallParticipant {
        participant_id: id.into(),
        name: name.into(),
        role: role.into(),
        account_id: account,
        user_agent: FIREFOX.into(),
        browser: "Firefox 133".into(),
        os: "Linux".into(),
        device: "desktop".into(),
        consent_id: String::new(),
        camera: String::new(),
        microphone: String::new(),
    }
}

fn line(seq: i64, who: &str, at: Millis, body: &str) -> ChatLine {
    ChatLine {
        seq,
        participant_id: who.into(),
        sent_ms: at,
        body: body.into(),
    }
}

fn stay(who: &str, joined: Millis, left: Option<Millis>) -> Presence {
    Presence {
        participant_id: who.into(),
        joined_ms: joined,
        left_ms: left,
    }
}

/// Agent and customer join; the customer drops out and comes back; they chat (one line sent
/// twice, one too long); the call ends when the room empties. Everything reads back, in order.
async fn a_call_is_stored_completely_and_read_back(url: String) {
    let r = Registry::connect(&url).await.unwrap();
    let id = "20301503T120000Z-4821-a1b2";
    let c = call(id, "node-a", T0);
    r.call_started(&c).await.unwrap();
    r.call_started(&c).await.unwrap();
    let agent = person("p1", "Ann", "agent", Some(7));
    let customer = person("p2", "Bob", "customer", None);
    r.call_joined(id, &agent, T0 + SECOND).await.unwrap();
    r.call_joined(id, &customer, T0 + 2 * SECOND).await.unwrap();
    r.call_chat(id, &line(1, "p2", T0 + 3 * SECOND, "Hello, I can see you"))
        .await
        .unwrap();
    r.call_chat(id, &line(1, "p2", T0 + 3 * SECOND, "Hello, I can see you"))
        .await
        .unwrap();
    let long = "я".repeat(5000);
    r.call_chat(id, &line(2, "p1", T0 + 4 * SECOND, &long))
        .await
        .unwrap();
    r.call_left(id, "p2", T0 + 5 * SECOND).await.unwrap();
    // Back with another name: the first join's details stay.
    let renamed = person("p2", "Robert", "customer", None);
    r.call_joined(id, &renamed, T0 + 6 * SECOND).await.unwrap();
    r.call_joined(id, &renamed, T0 + 6 * SECOND).await.unwrap();
    r.call_left(id, "p1", T0 + 8 * SECOND).await.unwrap();
    r.call_ended(id, T0 + 9 * SECOND, "empty").await.unwrap();
    r.call_ended(id, T0 + 20 * SECOND, "ended").await.unwrap();

    let got = r.call(id).await.unwrap().expect("the call is stored");
    assert_eq!(got.call, c);
    assert_eq!(got.ended_ms, Some(T0 + 9 * SECOND), "the first end stays");
    assert_eq!(got.end_reason.as_deref(), Some("empty"));
    assert_eq!(got.participants, [agent, customer]);
    assert_eq!(
        got.presence,
        [
            stay("p1", T0 + SECOND, Some(T0 + 8 * SECOND)),
            stay("p2", T0 + 2 * SECOND, Some(T0 + 5 * SECOND)),
            stay("p2", T0 + 6 * SECOND, Some(T0 + 9 * SECOND)),
        ],
        "the customer's second stay ends with the call"
    );
    assert_eq!(got.chat.len(), 2, "{:?}", got.chat);
    assert_eq!(
        got.chat[0],
        line(1, "p2", T0 + 3 * SECOND, "Hello, I can see you")
    );
    assert_eq!(got.chat[1].body, "я".repeat(4000), "cut at 4000 characters");
    assert_eq!(r.call("no-such-call").await.unwrap(), None);
}

/// Node A dies in the middle of a call (its last event: a chat line at 7 s) while node B's
/// call goes on. When A registers again its open call is closed at that last event, with
/// everyone still in it; B's stays open.
async fn a_cut_call_is_closed_when_its_server_comes_back(url: String) {
    let r = Registry::connect(&url).await.unwrap();
    r.call_started(&call("cut", "node-a", T0)).await.unwrap();
    r.call_started(&call("going-on", "node-b", T0))
        .await
        .unwrap();
    r.call_joined(
        "cut",
        &person("p1", "Ann", "agent", Some(7)),
        T0 + 5 * SECOND,
    )
    .await
    .unwrap();
    r.call_chat("cut", &line(1, "p1", T0 + 7 * SECOND, "still there?"))
        .await
        .unwrap();
    // An event arriving late, older than the last: it does not move the end back.
    r.call_left("cut", "nobody", T0 + 6 * SECOND).await.unwrap();

    // A's calls but one it still holds (a reconnect, not a restart) are closed.
    r.call_started(&call("held", "node-a", T0)).await.unwrap();
    let held = ["held".to_string()];
    assert_eq!(r.close_open_calls("node-a", &held).await.unwrap(), ["cut"]);
    assert!(r
        .close_open_calls("node-a", &held)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(r.call("held").await.unwrap().unwrap().ended_ms, None);
    assert_eq!(
        r.call_node("held").await.unwrap().as_deref(),
        Some("node-a")
    );
    let cut = r.call("cut").await.unwrap().unwrap();
    assert_eq!(cut.ended_ms, Some(T0 + 7 * SECOND));
    assert_eq!(cut.end_reason.as_deref(), Some("server_restart"));
    assert_eq!(
        cut.presence,
        [stay("p1", T0 + 5 * SECOND, Some(T0 + 7 * SECOND))]
    );
    let going_on = r.call("going-on").await.unwrap().unwrap();
    assert_eq!(going_on.ended_ms, None);
}

fn event(call: &str, event: &str, at: Millis) -> CallEvent {
    CallEvent {
        call: call.into(),
        at_ms: at as u64,
        event: event.into(),
        ..CallEvent::default()
    }
}

/// `CALL_EVENT`s from the node link: node A's call is stored as A tells it; node B's events
/// about A's call, a malformed id and an unknown event change nothing (and answer nothing).
async fn nodes_record_only_their_own_calls(url: String) {
    let c = support::coordinator(&url, |_| {}).await;
    register(&c, "a", 2, &["Demo"], T0).await;
    register(&c, "b", 2, &["Demo"], T0).await;
    let send = |node: &'static str, e: CallEvent| {
        let c = &c;
        async move {
            let answer = c
                .handle_node(node, FromNode::CallEvent(Box::new(e)), T0)
                .await;
            assert!(answer.is_empty(), "{answer:?}");
        }
    };
    send(
        "a",
        CallEvent {
            code: Some("4821".into()),
            rc_name: Some("Demo".into()),
            owner: Some("7".into()),
            ..event("call-a", "started", T0)
        },
    )
    .await;
    let joined = |who: &str| CallEvent {
        participant: Some(who.into()),
        name: Some(who.into()),
        role: Some("customer".into()),
        user_agent: Some(FIREFOX.into()),
        ..event("call-a", "joined", T0 + SECOND)
    };
    send("a", joined("p1")).await;
    send(
        "a",
        CallEvent {
            account: Some("7".into()),
            role: Some("agent".into()),
            ..joined("p0")
        },
    )
    .await;
    send(
        "a",
        CallEvent {
            recording: Some("20301503T120001Z-4821-beef".into()),
            ..event("call-a", "recording", T0 + SECOND)
        },
    )
    .await;
    send(
        "a",
        CallEvent {
            recording: Some("../x".into()),
            ..event("call-a", "recording", T0 + SECOND)
        },
    )
    .await;
    let quality = orbita_protocol::QualityReport {
        out_kbps: Some(812.5),
        loss_pct: Some(0.25),
        width: Some(1280),
        height: Some(720),
        limitation: Some(orbita_protocol::QualityLimitation::Bandwidth),
        ..Default::default()
    };
    for (source, report) in [
        ("browser", quality.clone()),
        ("browser", quality.clone()),
        ("server", quality.clone()),
        ("martian", quality.clone()),
        (
            "server",
            orbita_protocol::QualityReport {
                loss_pct: Some(250.0),
                ..Default::default()
            },
        ),
    ] {
        send(
            "a",
            CallEvent {
                participant: Some("p1".into()),
                source: Some(source.into()),
                quality: Some(report),
                ..event("call-a", "quality", T0 + 2 * SECOND)
            },
        )
        .await;
    }
    send("b", joined("intruder")).await;
    send("b", event("call-a", "ended", T0 + 2 * SECOND)).await;
    send("a", event("call-a", "teleported", T0 + 2 * SECOND)).await;
    send("a", event("../../etc", "started", T0)).await;

    let r = c.registry();
    let got = r.call("call-a").await.unwrap().unwrap();
    assert_eq!(got.call.node, "a");
    assert_eq!(got.call.owner_id, Some(7));
    assert_eq!(got.ended_ms, None, "B cannot end A's call");
    let who: Vec<&str> = got
        .participants
        .iter()
        .map(|p| p.participant_id.as_str())
        .collect();
    assert_eq!(who, ["p0", "p1"]);
    assert_eq!(got.participants[1].user_agent, FIREFOX);
    // The device, from the user agent; the agent's account.
    assert_eq!(
        (
            got.participants[1].browser.as_str(),
            got.participants[1].os.as_str(),
            got.participants[1].device.as_str()
        ),
        ("Firefox 133", "Linux", "desktop")
    );
    assert_eq!(got.participants[0].account_id, Some(7));
    assert_eq!(got.participants[1].account_id, None);
    // Quality: once per participant, source and moment; an unknown source or a figure out of
    // range is dropped.
    let sources: Vec<(&str, &str)> = got
        .quality
        .iter()
        .map(|q| (q.participant_id.as_str(), q.source.as_str()))
        .collect();
    assert_eq!(sources, [("p1", "browser"), ("p1", "server")]);
    assert_eq!(got.quality[0].report, quality, "every figure reads back");
    assert_eq!(got.quality[0].at_ms, T0 + 2 * SECOND);
    assert_eq!(
        got.recordings,
        [("20301503T120001Z-4821-beef".to_string(), T0 + SECOND)],
        "a malformed recording id is dropped"
    );
    assert_eq!(r.call("../../etc").await.unwrap(), None);
    // A registering again without it (a restart) closes it.
    register(&c, "a", 2, &["Demo"], T0 + 10 * SECOND).await;
    let closed = r.call("call-a").await.unwrap().unwrap();
    assert_eq!(
        closed.ended_ms,
        Some(T0 + 2 * SECOND),
        "at its last event, a quality report"
    );
    assert_eq!(closed.end_reason.as_deref(), Some("server_restart"));
}

/// `GET /api/calls`: an agent's own calls newest first, a page at a time (`next` until the
/// last page), a supervisor's everyone's; `GET /api/calls/{id}`: one call whole; a bad
/// cursor is `400`.
async fn the_history_pages_through_calls_and_shows_one_whole(url: String) {
    let c = Arc::new(support::coordinator(&url, |_| {}).await);
    let api = Api::new(c.clone());
    let agent = make_user(&c, "agent@example.com", Role::Agent).await;
    make_user(&c, "supervisor@example.com", Role::Supervisor).await;
    let r = c.registry();
    // Five of the agent's calls, one of someone else's; two start at the same moment.
    let start = now_ms() - 3_600_000;
    for (i, at) in [0, 60, 60, 120, 180].into_iter().enumerate() {
        let mut call = call(&format!("agent-{i}"), "node-a", start + at * SECOND);
        call.owner_id = Some(agent.id);
        r.call_started(&call).await.unwrap();
    }
    r.call_started(&call("other", "node-a", start + 90 * SECOND))
        .await
        .unwrap();
    r.call_joined(
        "agent-4",
        &person("p1", "Ann", "agent", Some(agent.id)),
        start + 181 * SECOND,
    )
    .await
    .unwrap();
    r.call_chat("agent-4", &line(1, "p1", start + 182 * SECOND, "hello"))
        .await
        .unwrap();
    r.call_ended("agent-4", start + 200 * SECOND, "empty")
        .await
        .unwrap();

    let (as_agent, as_supervisor) = (
        bearer(&c, "agent@example.com").await,
        bearer(&c, "supervisor@example.com").await,
    );
    let mut seen = Vec::new();
    let mut path = "/api/calls?limit=2".to_string();
    loop {
        let page = api.call(Method::GET, &path, None, &as_agent).await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        for call in page.body["calls"].as_array().unwrap() {
            seen.push(call["id"].as_str().unwrap().to_string());
        }
        match page.body["next"].as_str() {
            Some(next) => path = format!("/api/calls?limit=2&before={next}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["agent-4", "agent-3", "agent-2", "agent-1", "agent-0"]
    );
    let all = api
        .call(Method::GET, "/api/calls", None, &as_supervisor)
        .await;
    assert_eq!(all.body["calls"].as_array().unwrap().len(), 6, "{all:?}");
    assert_eq!(all.body["next"], serde_json::Value::Null);

    let whole = api
        .call(Method::GET, "/api/calls/agent-4", None, &as_agent)
        .await;
    assert_eq!(whole.status, StatusCode::OK, "{whole:?}");
    assert_eq!(whole.body["duration_ms"], 20_000);
    assert_eq!(whole.body["end_reason"], "empty");
    assert_eq!(whole.body["participants"][0]["name"], "Ann");
    assert_eq!(whole.body["chat"][0]["text"], "hello");
    let theirs = api
        .call(Method::GET, "/api/calls/other", None, &as_agent)
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    let seen_by_supervisor = api
        .call(Method::GET, "/api/calls/other", None, &as_supervisor)
        .await;
    assert_eq!(seen_by_supervisor.status, StatusCode::OK);
    let bad = api
        .call(Method::GET, "/api/calls?before=yesterday", None, &as_agent)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{bad:?}");
}
