//! The coordinator's logic on its registry, with virtual time, run the same on SQLite,
//! PostgreSQL and MariaDB (see tests/common/mod.rs: a database that is down fails the test).

use std::net::IpAddr;

use orbita_coordinator::accounts::{Role, User};
use orbita_coordinator::clock::{self, Millis, MINUTE, SECOND};
use orbita_coordinator::config::{parse_servers, Settings};
use orbita_coordinator::verbs::{
    ClientRequest, EndReason, ErrorCode, FromNode, Heartbeat, Registration, ToClient, ToNode,
};
use orbita_coordinator::{Coordinator, Delivery, Outcome};
use serde_json::json;

use crate::support::{self, register, registration, T0};

on_every_backend!(
    get_servers_pages_the_catalogue,
    the_specs_range_example_answers_up_to_the_limit,
    servers_file_sync_follows_edits,
    create_places_least_loaded_until_busy,
    join_by_code_reaches_the_node,
    codes_are_unique_and_freed,
    code_guessing_is_throttled,
    plans_respect_capacity,
    plans_count_only_servers_that_can_start_them,
    planned_session_starts_in_its_slot_and_ends_with_it,
    unplanned_sessions_leave_room_for_plans,
    heartbeat_timeout_ends_sessions,
    node_refusal_and_silence,
    session_end_bookkeeping,
    coordinators_share_the_registry,
    planned_session_is_extended_when_the_next_slot_is_free,
    extension_is_refused_when_the_next_slot_is_booked,
    only_live_planned_sessions_can_be_extended,
);

fn addr(n: u8) -> IpAddr {
    IpAddr::from([192, 0, 2, n])
}

/// This suite's coordinator: `id`, and guests may create sessions.
async fn coordinator(url: &str, id: &str, tweak: impl FnOnce(&mut Settings)) -> Coordinator {
    support::coordinator(url, |s| {
        s.coordinator_id = id.into();
        s.guests_may_create = true;
        tweak(s)
    })
    .await
}

async fn ask(
    c: &Coordinator,
    user: &str,
    from: IpAddr,
    req: serde_json::Value,
    now: Millis,
) -> Outcome {
    // Guests may create sessions in these tests (guests_may_create); plans need an account.
    let caller = if req["verb"] == "PLAN_SESSION" {
        Some(planner(c).await)
    } else {
        None
    };
    support::ask(c, user, caller.as_ref(), from, req, now).await
}

/// An administrator (no quota) who plans the sessions of these tests.
async fn planner(c: &Coordinator) -> User {
    let accounts = c.accounts();
    if let Some(u) = accounts.user_by_email("planner@example.com").await.unwrap() {
        return u;
    }
    accounts
        .create_user(
            "planner@example.com",
            "Planner",
            "planner-password",
            Role::Admin,
            T0,
        )
        .await
        .unwrap()
}

fn error_code(o: &Outcome) -> ErrorCode {
    match &o.reply {
        Some(ToClient::Error(e)) => e.code,
        other => panic!("expected an ERROR, got {other:?}"),
    }
}

/// The one CREATE_SESSION an outcome asks a node for: (node, code).
fn create_request(o: &Outcome) -> (String, String) {
    assert_eq!(o.reply, None, "{o:?}");
    match o.deliveries.as_slice() {
        [Delivery::Node {
            node,
            msg: ToNode::CreateSession { code, .. },
            ..
        }] => (node.clone(), code.clone()),
        other => panic!("expected one CREATE_SESSION, got {other:?}"),
    }
}

/// Creates a session for `user` and confirms it as its node would; returns (node, code).
async fn create_live(c: &Coordinator, user: &str, rc: &str, now: Millis) -> (String, String) {
    let o = ask(
        c,
        user,
        addr(1),
        json!({"verb":"CREATE_SESSION","rc_name":rc}),
        now,
    )
    .await;
    let (node, code) = create_request(&o);
    let n = c.registry().node(&node).await.unwrap().unwrap();
    let d = c
        .handle_node(
            &node,
            FromNode::ConnectToSession {
                ip: n.ip.clone(),
                port: n.port.clone(),
                code: code.clone(),
                host_key: Some("the-host-key".into()),
            },
            now,
        )
        .await;
    // The node's host key goes to the creator alone (guests who join by code never see it).
    assert_eq!(
        d,
        vec![
            Delivery::Client {
                user_id: user.into(),
                via: c.id().into(),
                msg: ToClient::ConnectToSession {
                    ip: n.ip,
                    port: n.port,
                    code: code.clone(),
                    host_key: Some("the-host-key".into()),
                }
            },
            Delivery::Node {
                node: node.clone(),
                via: c.id().into(),
                msg: ToNode::ConnectUserToSession {
                    code: code.clone(),
                    user_id: user.into()
                }
            }
        ]
    );
    (node, code)
}

fn told_clients(d: &[Delivery]) -> Vec<(String, ToClient)> {
    d.iter()
        .filter_map(|d| match d {
            Delivery::Client { user_id, msg, .. } => Some((user_id.clone(), msg.clone())),
            _ => None,
        })
        .collect()
}

fn told_nodes(d: &[Delivery]) -> Vec<(String, ToNode)> {
    d.iter()
        .filter_map(|d| match d {
            Delivery::Node { node, msg, .. } => Some((node.clone(), msg.clone())),
            _ => None,
        })
        .collect()
}

/// The spec's own example, `"20-213"`, on the default limit (100 entries per request) and a
/// catalogue of 150 apps: entries 20 to 119, in catalogue order.
async fn the_specs_range_example_answers_up_to_the_limit(url: String) {
    let c = coordinator(&url, "A", |_| {}).await;
    assert_eq!(c.settings().max_servers_per_request, 100);
    let file: Vec<_> = (0..150)
        .map(|i| json!({"server_name":"s1","ip":"0.0.0.1","port":"111","rc_info":{"rc_name":format!("App{i:03}"),"info":{}}}))
        .collect();
    c.reload_servers(&parse_servers(&json!(file).to_string()).unwrap())
        .await
        .unwrap();
    let o = ask(
        &c,
        "u",
        addr(1),
        json!({"verb":"GET_SERVERS","range":"20-213"}),
        T0,
    )
    .await;
    let Some(ToClient::ServersFound { servers }) = o.reply else {
        panic!("{o:?}")
    };
    let names: Vec<String> = servers.iter().map(|s| s.rc_info.rc_name.clone()).collect();
    let want: Vec<String> = (20..120).map(|i| format!("App{i:03}")).collect();
    assert_eq!(names, want);
}

async fn get_servers_pages_the_catalogue(url: String) {
    let c = coordinator(&url, "A", |s| s.max_servers_per_request = 3).await;
    let servers = parse_servers(
        &json!([
            {"server_name":"s1","ip":"0.0.0.1","port":"111","rc_info":{"rc_name":"RcA","info":{"description":[{"en":"a"},{"ru":"а"}]}}},
            {"server_name":"s2","ip":"0.0.0.2","port":"222","rc_info":{"rc_name":"RcB","info":{"description":[{"en":"b"}]}}},
            {"server_name":"s1","ip":"0.0.0.1","port":"111","rc_info":{"rc_name":"RcC","info":{}}}
        ])
        .to_string(),
    )
    .unwrap();
    c.reload_servers(&servers).await.unwrap();
    // A registered node's apps come after the file's; a node that is down is not listed.
    register(&c, "zeta", 2, &["RcZ", "RcY"], T0).await;

    let o = ask(
        &c,
        "u",
        addr(1),
        json!({"verb":"GET_SERVERS","range":"0-1"}),
        T0,
    )
    .await;
    let Some(ToClient::ServersFound { servers }) = o.reply else {
        panic!("{o:?}")
    };
    let v = serde_json::to_value(&servers).unwrap();
    assert_eq!(
        v,
        json!([
            {"server_name":"s1","ip":"0.0.0.1","port":"111","rc_info":{"rc_name":"RcA","info":{"description":[{"en":"a"},{"ru":"а"}]}}},
            {"server_name":"s2","ip":"0.0.0.2","port":"222","rc_info":{"rc_name":"RcB","info":{"description":[{"en":"b"}]}}}
        ])
    );
    let o = ask(
        &c,
        "u",
        addr(1),
        json!({"verb":"GET_SERVERS","range":"2-4"}),
        T0,
    )
    .await;
    let Some(ToClient::ServersFound { servers }) = o.reply else {
        panic!("{o:?}")
    };
    let names: Vec<_> = servers
        .iter()
        .map(|s| (s.server_name.as_str(), s.rc_info.rc_name.as_str()))
        .collect();
    assert_eq!(names, [("s1", "RcC"), ("zeta", "RcY"), ("zeta", "RcZ")]);
    assert_eq!(servers[2].rc_info.description("ru"), Some("RcZ по-русски"));

    let o = ask(
        &c,
        "u",
        addr(1),
        json!({"verb":"GET_SERVERS","range":"5-7"}),
        T0,
    )
    .await;
    assert_eq!(o.reply, Some(ToClient::ServersNotFound));
    assert_eq!(
        error_code(
            &ask(
                &c,
                "u",
                addr(1),
                json!({"verb":"GET_SERVERS","range":"4-1"}),
                T0
            )
            .await
        ),
        ErrorCode::BadRange
    );
    // Longer than max_servers_per_request (3): the range's first 3 entries.
    let o = ask(
        &c,
        "u",
        addr(1),
        json!({"verb":"GET_SERVERS","range":"0-3"}),
        T0,
    )
    .await;
    let Some(ToClient::ServersFound { servers }) = o.reply else {
        panic!("{o:?}")
    };
    let names: Vec<_> = servers.iter().map(|s| s.rc_info.rc_name.as_str()).collect();
    assert_eq!(names, ["RcA", "RcB", "RcC"]);

    // The registered node goes down: its apps leave the list; the file's stay.
    c.sweep(T0 + 16 * SECOND).await.unwrap();
    let o = ask(
        &c,
        "u",
        addr(1),
        json!({"verb":"GET_SERVERS","range":"2-4"}),
        T0 + 16 * SECOND,
    )
    .await;
    let Some(ToClient::ServersFound { servers }) = o.reply else {
        panic!("{o:?}")
    };
    assert_eq!(servers.len(), 1);
    c.registry().close().await;
}

async fn servers_file_sync_follows_edits(url: String) {
    let c = coordinator(&url, "A", |_| {}).await;
    let v1 = parse_servers(
        &json!([
            {"server_name":"s1","ip":"0.0.0.1","port":"111","max_sessions":"3","rc_info":{"rc_name":"RcA","info":{}}},
            {"server_name":"s2","ip":"0.0.0.2","port":"222","rc_info":{"rc_name":"RcB","info":{}}}
        ])
        .to_string(),
    )
    .unwrap();
    c.reload_servers(&v1).await.unwrap();
    let s1 = c.registry().node("s1").await.unwrap().unwrap();
    assert_eq!((s1.max_sessions, s1.up, s1.from_file), (3, false, true));
    assert_eq!(
        c.registry().node("s2").await.unwrap().unwrap().max_sessions,
        1
    );
    // Listed servers are not running yet: creating a session finds none up.
    let o = ask(
        &c,
        "u",
        addr(1),
        json!({"verb":"CREATE_SESSION","rc_name":"RcA"}),
        T0,
    )
    .await;
    assert_eq!(o.reply, Some(ToClient::ServersBusy));
    // s1's node registers: it serves the file's app (and its own).
    let mut reg = registration("s1", 2, &["RcA", "Extra"]);
    reg.ip = "203.0.113.1".into();
    c.register_node(&reg, T0).await.unwrap();
    let (node, _) = create_request(
        &ask(
            &c,
            "u",
            addr(1),
            json!({"verb":"CREATE_SESSION","rc_name":"RcA"}),
            T0,
        )
        .await,
    );
    assert_eq!(node, "s1");
    // Edit: s2 leaves, s3 arrives, s1's port changes (it is up: its registered address stays).
    let v2 = parse_servers(
        &json!([
            {"server_name":"s3","ip":"0.0.0.3","port":"333","rc_info":{"rc_name":"RcC","info":{"description":[{"en":"c"}]}}},
            {"server_name":"s1","ip":"0.0.0.1","port":"999","rc_info":{"rc_name":"RcA","info":{"description":[{"en":"new"}]}}}
        ])
        .to_string(),
    )
    .unwrap();
    c.reload_servers(&v2).await.unwrap();
    assert!(c.registry().node("s2").await.unwrap().is_none());
    assert!(!c.registry().rc_known("RcB").await.unwrap());
    let o = ask(
        &c,
        "u",
        addr(1),
        json!({"verb":"GET_SERVERS","range":"0-9"}),
        T0,
    )
    .await;
    let Some(ToClient::ServersFound { servers }) = o.reply else {
        panic!("{o:?}")
    };
    let got: Vec<_> = servers
        .iter()
        .map(|s| {
            (
                s.server_name.as_str(),
                s.port.as_str(),
                s.rc_info.rc_name.as_str(),
                s.rc_info.description("en"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("s3", "333", "RcC", Some("c")),
            ("s1", reg.port.as_str(), "RcA", Some("new")),
            ("s1", reg.port.as_str(), "Extra", Some("Extra in English")),
        ]
    );
    c.registry().close().await;
}

async fn create_places_least_loaded_until_busy(url: String) {
    let c = coordinator(&url, "A", |_| {}).await;
    register(&c, "a", 2, &["Demo"], T0).await;
    register(&c, "b", 1, &["Demo", "Other"], T0).await;
    register(&c, "c", 5, &["Other"], T0).await;
    assert_eq!(
        error_code(
            &ask(
                &c,
                "u",
                addr(1),
                json!({"verb":"CREATE_SESSION","rc_name":"Nope"}),
                T0
            )
            .await
        ),
        ErrorCode::UnknownRc
    );
    // Both empty: tie broken by participants, then name.
    c.handle_node(
        "a",
        FromNode::Heartbeat(Heartbeat {
            participants: 4,
            ..Default::default()
        }),
        T0,
    )
    .await;
    let (n1, c1) = create_live(&c, "u1", "Demo", T0).await;
    assert_eq!(n1, "b");
    let (n2, c2) = create_live(&c, "u2", "Demo", T0).await;
    assert_eq!(n2, "a");
    // Starting sessions count too.
    let (n3, c3) = create_request(
        &ask(
            &c,
            "u3",
            addr(1),
            json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
            T0,
        )
        .await,
    );
    assert_eq!(n3, "a");
    let o = ask(
        &c,
        "u4",
        addr(1),
        json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
        T0,
    )
    .await;
    assert_eq!(o.reply, Some(ToClient::ServersBusy));
    assert_eq!(o.deliveries, vec![]);
    assert!(c1 != c2 && c2 != c3 && c1 != c3);
    // Another app on other nodes is unaffected (b is full, c has room).
    let (n5, _) = create_request(
        &ask(
            &c,
            "u5",
            addr(1),
            json!({"verb":"CREATE_SESSION","rc_name":"Other"}),
            T0,
        )
        .await,
    );
    assert_eq!(n5, "c");
    // Equal load: by name in byte order, as everywhere (upper case first), on every backend.
    register(&c, "a1", 2, &["Tie"], T0).await;
    register(&c, "Z1", 2, &["Tie"], T0).await;
    let tie = json!({"verb":"CREATE_SESSION","rc_name":"Tie"});
    let (n6, _) = create_request(&ask(&c, "u6", addr(1), tie.clone(), T0).await);
    assert_eq!(n6, "Z1");
    let (n7, _) = create_request(&ask(&c, "u7", addr(1), tie, T0).await);
    assert_eq!(n7, "a1");
    // Ending a session frees its room.
    c.end_session(&c1, EndReason::Ended, None).await.unwrap();
    let (n6, _) = create_request(
        &ask(
            &c,
            "u6",
            addr(1),
            json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
            T0,
        )
        .await,
    );
    assert_eq!(n6, "b");
    c.registry().close().await;
}

async fn join_by_code_reaches_the_node(url: String) {
    let c = coordinator(&url, "A", |_| {}).await;
    let a = register(&c, "a", 1, &["Demo"], T0).await;
    let b = register(&c, "b", 1, &["Demo"], T0).await;
    let (_, code_a) = create_live(&c, "creator-a", "Demo", T0).await;
    let (node_b, code_b) = create_live(&c, "creator-b", "Demo", T0).await;
    assert_eq!(node_b, "b");
    let o = ask(
        &c,
        "guest",
        addr(9),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code_b}),
        T0,
    )
    .await;
    assert_eq!(
        o.reply,
        Some(ToClient::ConnectToSession {
            ip: b.ip.clone(),
            port: b.port.clone(),
            code: code_b.clone(),
            host_key: None
        })
    );
    assert_eq!(
        told_nodes(&o.deliveries),
        vec![(
            "b".to_string(),
            ToNode::ConnectUserToSession {
                code: code_b.clone(),
                user_id: "guest".into()
            }
        )]
    );
    let o = ask(
        &c,
        "guest2",
        addr(9),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code_a}),
        T0,
    )
    .await;
    assert!(matches!(o.reply, Some(ToClient::ConnectToSession { ref ip, .. }) if *ip == a.ip));
    // The node says the guest is connected: the guest is told.
    let d = c
        .handle_node(
            "b",
            FromNode::SessionConnectionEstablished {
                webrtc_connection_data: "https://10.0.0.1:7443".into(),
                code: code_b.clone(),
                user_id: "guest".into(),
            },
            T0,
        )
        .await;
    assert_eq!(
        told_clients(&d),
        vec![(
            "guest".to_string(),
            ToClient::SessionConnectionEstablished {
                webrtc_connection_data: "https://10.0.0.1:7443".into(),
                code: code_b.clone()
            }
        )]
    );
    let parts = c.registry().participants(&code_b).await.unwrap();
    assert_eq!(
        parts.iter().map(|p| p.user_id.as_str()).collect::<Vec<_>>(),
        ["creator-b", "guest"]
    );
    // A code nobody holds, a malformed one.
    let unused = (0..10_000)
        .map(|i| format!("{i:04}"))
        .find(|k| *k != code_a && *k != code_b)
        .unwrap();
    let o = ask(
        &c,
        "x",
        addr(9),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":unused}),
        T0,
    )
    .await;
    assert_eq!(o.reply, Some(ToClient::SessionNotExist));
    assert_eq!(
        error_code(
            &ask(
                &c,
                "x",
                addr(9),
                json!({"verb":"CONNECT_SESSION_WITH_CODE","code":"12"}),
                T0 + 5 * SECOND
            )
            .await
        ),
        ErrorCode::BadCode
    );
    // A session still starting.
    c.end_session(&code_a, EndReason::Ended, None)
        .await
        .unwrap();
    let (_, starting) = create_request(
        &ask(
            &c,
            "c3",
            addr(1),
            json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
            T0,
        )
        .await,
    );
    assert_eq!(
        error_code(
            &ask(
                &c,
                "x",
                addr(8),
                json!({"verb":"CONNECT_SESSION_WITH_CODE","code":starting}),
                T0
            )
            .await
        ),
        ErrorCode::SessionStarting
    );
    c.registry().close().await;
}

async fn codes_are_unique_and_freed(url: String) {
    // 4 digits, at most 0.4% of the space in use: 40 codes.
    let c = coordinator(&url, "A", |s| s.max_code_space_fraction = 0.004).await;
    register(&c, "big", 1000, &["Demo"], T0).await;
    let mut codes = std::collections::HashSet::new();
    for i in 0..40 {
        let (_, code) = create_request(
            &ask(
                &c,
                &format!("u{i}"),
                addr(1),
                json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
                T0,
            )
            .await,
        );
        assert_eq!(code.len(), 4);
        assert!(code.bytes().all(|b| b.is_ascii_digit()));
        assert!(codes.insert(code), "a code was handed out twice");
    }
    assert_eq!(c.registry().codes_in_use().await.unwrap(), 40);
    assert_eq!(
        error_code(
            &ask(
                &c,
                "late",
                addr(1),
                json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
                T0
            )
            .await
        ),
        ErrorCode::CodesExhausted
    );
    // Plans draw from the same space.
    let o = ask(
        &c,
        "p",
        addr(1),
        json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"16/03/2030","time":"10:00"}),
        T0,
    )
    .await;
    assert_eq!(error_code(&o), ErrorCode::CodesExhausted);
    let some = codes.iter().next().unwrap().clone();
    c.registry().abandon_session(&some, None).await.unwrap();
    assert_eq!(c.registry().codes_in_use().await.unwrap(), 39);
    let o = ask(
        &c,
        "p",
        addr(1),
        json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"16/03/2030","time":"10:00"}),
        T0,
    )
    .await;
    let Some(ToClient::ConnectionCode { code }) = o.reply else {
        panic!("{o:?}")
    };
    assert!(!codes.contains(&code) || code == some);
    // A longer code length.
    let c8 = coordinator(&url, "B", |s| s.code_length = 8).await;
    let (_, code) = create_request(
        &ask(
            &c8,
            "u",
            addr(1),
            json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
            T0,
        )
        .await,
    );
    assert_eq!(code.len(), 8);
    c.registry().close().await;
    c8.registry().close().await;
}

async fn code_guessing_is_throttled(url: String) {
    let c = coordinator(&url, "A", |s| {
        s.code_max_misses = 3;
        s.code_miss_window_secs = 60;
        s.code_lockout_secs = 300;
        s.code_attempts_per_second = 1.0;
        s.code_attempt_burst = 2;
    })
    .await;
    register(&c, "a", 5, &["Demo"], T0).await;
    let (_, code) = create_live(&c, "owner", "Demo", T0).await;
    let wrong = if code == "0000" { "0001" } else { "0000" };
    let join = |code: &str| json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code});
    let guesser = addr(66);
    let mut now = T0;
    // Rate limit: a burst of 2, then 1 per second.
    assert_eq!(
        ask(&c, "g", guesser, join(wrong), now).await.reply,
        Some(ToClient::SessionNotExist)
    );
    assert_eq!(
        ask(&c, "g", guesser, join(wrong), now).await.reply,
        Some(ToClient::SessionNotExist)
    );
    let o = ask(&c, "g", guesser, join(&code), now).await;
    assert_eq!(error_code(&o), ErrorCode::RateLimited);
    let Some(ToClient::Error(e)) = o.reply else {
        unreachable!()
    };
    assert_eq!(e.retry_after_seconds, Some(1));
    now += SECOND;
    // Third miss within the window: locked out, even for a right code, from that address only.
    assert_eq!(
        ask(&c, "g", guesser, join(wrong), now).await.reply,
        Some(ToClient::SessionNotExist)
    );
    now += 5 * SECOND;
    let o = ask(&c, "g", guesser, join(&code), now).await;
    assert_eq!(error_code(&o), ErrorCode::LockedOut);
    let Some(ToClient::Error(e)) = o.reply else {
        unreachable!()
    };
    assert_eq!(e.retry_after_seconds, Some(295));
    assert!(matches!(
        ask(&c, "h", addr(67), join(&code), now).await.reply,
        Some(ToClient::ConnectToSession { .. })
    ));
    // After the lock-out the right code works again.
    now = T0 + SECOND + 300 * SECOND;
    assert!(matches!(
        ask(&c, "g", guesser, join(&code), now).await.reply,
        Some(ToClient::ConnectToSession { .. })
    ));
    // Misses spread wider than the window never lock.
    for _ in 0..6 {
        now += 40 * SECOND;
        assert_eq!(
            ask(&c, "g", guesser, join(wrong), now).await.reply,
            Some(ToClient::SessionNotExist)
        );
    }
    c.registry().close().await;
}

/// A server listed only in servers.json (its node never linked) is in the catalogue but can
/// start no session: no plan counts on it (else the customer would meet SERVERS_BUSY at the
/// booked time). Once its node links, its capacity is planned and the plan starts there.
async fn plans_count_only_servers_that_can_start_them(url: String) {
    let c = coordinator(&url, "A", |_| {}).await;
    let file = json!([
        {"server_name":"listed","ip":"0.0.0.1","port":"111","max_sessions":"2","rc_info":{"rc_name":"Demo","info":{}}}
    ]);
    c.reload_servers(&parse_servers(&file.to_string()).unwrap())
        .await
        .unwrap();
    let o = ask(
        &c,
        "u",
        addr(1),
        json!({"verb":"GET_SERVERS","range":"0-9"}),
        T0,
    )
    .await;
    assert!(
        matches!(o.reply, Some(ToClient::ServersFound { ref servers }) if servers.len() == 1),
        "{o:?}"
    );
    let plan = json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"16/03/2030","time":"10:00"});
    let o = ask(&c, "u", addr(1), plan.clone(), T0).await;
    let Some(ToClient::Error(e)) = &o.reply else {
        panic!("{o:?}")
    };
    assert_eq!(e.code, ErrorCode::SlotTaken);
    assert!(e.message.contains("no running server"), "{}", e.message);
    assert!(c.registry().plans().await.unwrap().is_empty());
    let o = ask(
        &c,
        "u",
        addr(1),
        json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
        T0,
    )
    .await;
    assert_eq!(o.reply, Some(ToClient::ServersBusy));

    // Its node links: the plan is taken, and at its time the session starts on that node.
    register(&c, "listed", 2, &["Demo"], T0).await;
    let o = ask(&c, "u", addr(1), plan, T0).await;
    let Some(ToClient::ConnectionCode { code }) = o.reply else {
        panic!("{o:?}")
    };
    let start = clock::parse_date("16/03/2030").unwrap() + clock::parse_time("10:00").unwrap();
    let o = ask(
        &c,
        "v",
        addr(2),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
        start,
    )
    .await;
    assert_eq!(create_request(&o), ("listed".to_string(), code));
}

async fn plans_respect_capacity(url: String) {
    let c = coordinator(&url, "A", |_| {}).await;
    register(&c, "a", 1, &["Demo"], T0).await;
    let plan = |date: &str, time: &str| json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":date,"time":time});
    let code_of = |o: Outcome| match o.reply {
        Some(ToClient::ConnectionCode { code }) => code,
        other => panic!("expected CONNECTION_CODE, got {other:?}"),
    };
    let p1 = code_of(ask(&c, "u", addr(1), plan("16/03/2030", "10:00"), T0).await);
    assert_eq!(p1.len(), 4);
    assert_eq!(
        error_code(&ask(&c, "u", addr(1), plan("16/03/2030", "10:30"), T0).await),
        ErrorCode::SlotTaken
    );
    assert_eq!(
        error_code(&ask(&c, "u", addr(1), plan("16/03/2030", "09:01"), T0).await),
        ErrorCode::SlotTaken
    );
    // Touching slots are fine.
    let p2 = code_of(ask(&c, "u", addr(1), plan("16/03/2030", "11:00"), T0).await);
    let p0 = code_of(ask(&c, "u", addr(1), plan("16/03/2030", "09:00"), T0).await);
    assert!(p0 != p1 && p1 != p2);
    // A second server doubles the room.
    register(&c, "b", 1, &["Demo"], T0).await;
    code_of(ask(&c, "u", addr(1), plan("16/03/2030", "10:30"), T0).await);
    assert_eq!(
        error_code(&ask(&c, "u", addr(1), plan("16/03/2030", "10:45"), T0).await),
        ErrorCode::SlotTaken
    );
    // Longer slots, explicit duration.
    let long = json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"17/03/2030","time":"08:00","duration_minutes":"240"});
    code_of(ask(&c, "u", addr(1), long, T0).await);
    let plans = c.registry().plans().await.unwrap();
    assert_eq!(plans.len(), 5);
    let last = plans.last().unwrap();
    assert_eq!(last.end_ms - last.start_ms, 240 * MINUTE);
    assert_eq!(
        clock::format_date_time(last.start_ms),
        ("17/03/2030".into(), "08:00".into())
    );
    // Every malformed plan has its own error.
    let cases = [
        (plan("31/02/2030", "10:00"), ErrorCode::BadDate),
        (plan("2030-03-16", "10:00"), ErrorCode::BadDate),
        (plan("16/03/2030", "25:00"), ErrorCode::BadTime),
        (plan("15/03/2030", "11:00"), ErrorCode::SlotInPast),
        (plan("16/03/2032", "10:00"), ErrorCode::SlotTooFar),
        (
            json!({"verb":"PLAN_SESSION","rc_name":"Nope","date":"16/03/2030","time":"10:00"}),
            ErrorCode::UnknownRc,
        ),
        (
            json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"18/03/2030","time":"10:00","duration_minutes":"2"}),
            ErrorCode::BadDuration,
        ),
        (
            json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"18/03/2030","time":"10:00","duration_minutes":"x"}),
            ErrorCode::BadDuration,
        ),
        (
            json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"18/03/2030"}),
            ErrorCode::BadField,
        ),
    ];
    for (req, want) in cases {
        assert_eq!(
            error_code(&ask(&c, "u", addr(1), req.clone(), T0).await),
            want,
            "{req}"
        );
    }
    // The current minute may still be planned.
    code_of(
        ask(
            &c,
            "u",
            addr(1),
            plan("15/03/2030", "12:00"),
            T0 + 30 * SECOND,
        )
        .await,
    );
    c.registry().close().await;
}

async fn planned_session_starts_in_its_slot_and_ends_with_it(url: String) {
    let c = coordinator(&url, "A", |_| {}).await;
    let a = register(&c, "a", 1, &["Demo"], T0).await;
    let o = ask(&c, "planner", addr(1), json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"15/03/2030","time":"13:00","duration_minutes":"30"}), T0).await;
    let Some(ToClient::ConnectionCode { code }) = o.reply else {
        panic!("{o:?}")
    };
    let start = T0 + 60 * MINUTE;
    let join = json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code});
    // Before the slot.
    let o = ask(&c, "early", addr(2), join.clone(), T0).await;
    let Some(ToClient::Error(e)) = o.reply else {
        panic!("{o:?}")
    };
    assert_eq!(e.code, ErrorCode::PlanNotStarted);
    assert_eq!(e.retry_after_seconds, Some(3600));
    assert!(e.message.contains("15/03/2030 13:00 UTC"), "{}", e.message);
    // In the slot: the first to come starts it on a node, with the plan's code.
    let o = ask(&c, "first", addr(2), join.clone(), start + MINUTE).await;
    let (node, placed) = create_request(&o);
    assert_eq!((node.as_str(), placed.as_str()), ("a", code.as_str()));
    let d = c
        .handle_node(
            "a",
            FromNode::ConnectToSession {
                ip: a.ip.clone(),
                port: a.port.clone(),
                code: code.clone(),
                host_key: None,
            },
            start + MINUTE,
        )
        .await;
    assert_eq!(
        told_clients(&d),
        vec![(
            "first".to_string(),
            ToClient::ConnectToSession {
                ip: a.ip.clone(),
                port: a.port.clone(),
                code: code.clone(),
                host_key: None
            }
        )]
    );
    let o = ask(&c, "second", addr(3), join.clone(), start + 2 * MINUTE).await;
    assert!(matches!(o.reply, Some(ToClient::ConnectToSession { .. })));
    let s = c.registry().session(&code).await.unwrap().unwrap();
    assert_eq!(s.ends_ms, Some(start + 30 * MINUTE));
    // Heartbeats keep it active; at the end of the slot it ends, and so does the plan.
    c.handle_node(
        "a",
        FromNode::Heartbeat(Heartbeat {
            sessions: 1,
            participants: 2,
            cpu: 0.1,
            active: vec![code.clone()],
            ..Heartbeat::default()
        }),
        start + 29 * MINUTE + 50 * SECOND,
    )
    .await;
    let sw = c.sweep(start + 29 * MINUTE + 59 * SECOND).await.unwrap();
    assert!(sw.ended.is_empty(), "{sw:?}");
    let sw = c.sweep(start + 30 * MINUTE).await.unwrap();
    assert_eq!(sw.ended.len(), 1);
    assert_eq!(sw.ended[0].1, EndReason::PlanOver);
    let mut told: Vec<_> = told_clients(&sw.deliveries)
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    told.sort();
    assert_eq!(told, ["first", "second"]);
    assert_eq!(
        told_nodes(&sw.deliveries),
        vec![(
            "a".to_string(),
            ToNode::EndSession {
                code: code.clone(),
                reason: "plan_over".into()
            }
        )]
    );
    assert_eq!(sw.expired_plans.len(), 1);
    assert_eq!(c.registry().codes_in_use().await.unwrap(), 0);
    let o = ask(&c, "late", addr(4), join, start + 31 * MINUTE).await;
    assert_eq!(o.reply, Some(ToClient::SessionNotExist));
    c.registry().close().await;
}

async fn unplanned_sessions_leave_room_for_plans(url: String) {
    let c = coordinator(&url, "A", |s| s.unplanned_session_minutes = 60).await;
    register(&c, "a", 1, &["Demo"], T0).await;
    // A plan starting in 30 minutes holds the only server: no unplanned session now...
    let o = ask(
        &c,
        "p",
        addr(1),
        json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"15/03/2030","time":"12:30"}),
        T0,
    )
    .await;
    assert!(
        matches!(o.reply, Some(ToClient::ConnectionCode { .. })),
        "{o:?}"
    );
    let o = ask(
        &c,
        "u",
        addr(1),
        json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
        T0,
    )
    .await;
    assert_eq!(o.reply, Some(ToClient::ServersBusy));
    // ...but after the plan's slot there is room again.
    let later = T0 + 90 * MINUTE;
    c.sweep(later).await.unwrap();
    c.handle_node("a", FromNode::Heartbeat(Heartbeat::default()), later)
        .await;
    create_live(&c, "u", "Demo", later).await;
    // And a live session blocks planning the slots it is expected to run in.
    let o = ask(
        &c,
        "p",
        addr(1),
        json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"15/03/2030","time":"14:00"}),
        later,
    )
    .await;
    assert_eq!(error_code(&o), ErrorCode::SlotTaken);
    let o = ask(
        &c,
        "p",
        addr(1),
        json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"15/03/2030","time":"15:00"}),
        later,
    )
    .await;
    assert!(
        matches!(o.reply, Some(ToClient::ConnectionCode { .. })),
        "{o:?}"
    );
    c.registry().close().await;
}

async fn heartbeat_timeout_ends_sessions(url: String) {
    let c = coordinator(&url, "A", |s| {
        s.heartbeat_interval_secs = 5;
        s.heartbeat_timeout_secs = 15;
        s.node_reply_timeout_secs = 60;
    })
    .await;
    register(&c, "a", 2, &["Demo"], T0).await;
    register(&c, "b", 2, &["Demo"], T0 + 1).await;
    let (n1, code1) = create_live(&c, "u1", "Demo", T0).await;
    assert_eq!(n1, "a");
    ask(
        &c,
        "u2",
        addr(2),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code1}),
        T0,
    )
    .await;
    // A session still starting on a as well.
    let o = ask(
        &c,
        "u3",
        addr(1),
        json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
        T0,
    )
    .await;
    let (n3, code3) = create_request(&o);
    assert_eq!(n3, "b");
    c.handle_node(
        "b",
        FromNode::ConnectToSession {
            ip: "1".into(),
            port: "2".into(),
            code: code3,
            host_key: None,
        },
        T0,
    )
    .await;
    let o = ask(
        &c,
        "u4",
        addr(1),
        json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
        T0,
    )
    .await;
    let (n4, code4) = create_request(&o);
    assert_eq!(n4, "a");
    // b keeps sending heartbeats; a falls silent.
    for t in [5, 10, 15] {
        c.handle_node(
            "b",
            FromNode::Heartbeat(Heartbeat::default()),
            T0 + t * SECOND,
        )
        .await;
    }
    let sw = c.sweep(T0 + 14 * SECOND).await.unwrap();
    assert!(sw.nodes_down.is_empty());
    let sw = c.sweep(T0 + 15 * SECOND + 1).await.unwrap();
    assert_eq!(sw.nodes_down, ["a"]);
    assert_eq!(sw.ended.len(), 2);
    assert!(sw.ended.iter().all(|(_, r)| *r == EndReason::NodeDown));
    let mut told = told_clients(&sw.deliveries);
    told.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        told,
        vec![
            (
                "u1".to_string(),
                ToClient::SessionEnded {
                    code: code1.clone(),
                    reason: "node_down".into()
                }
            ),
            (
                "u2".to_string(),
                ToClient::SessionEnded {
                    code: code1.clone(),
                    reason: "node_down".into()
                }
            ),
            ("u4".to_string(), ToClient::ServersBusy),
        ]
    );
    assert!(
        told_nodes(&sw.deliveries).is_empty(),
        "a dead node is not told"
    );
    assert!(c.registry().session(&code4).await.unwrap().is_none());
    assert!(!c.registry().node("a").await.unwrap().unwrap().up);
    // New sessions go to b only.
    let (n5, _) = create_request(
        &ask(
            &c,
            "u5",
            addr(1),
            json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
            T0 + 16 * SECOND,
        )
        .await,
    );
    assert_eq!(n5, "b");
    // A second sweep finds nothing more; a's heartbeat brings it back.
    assert!(c.sweep(T0 + 17 * SECOND).await.unwrap().ended.is_empty());
    c.handle_node(
        "a",
        FromNode::Heartbeat(Heartbeat::default()),
        T0 + 18 * SECOND,
    )
    .await;
    assert!(c.registry().node("a").await.unwrap().unwrap().up);
    // An unknown node's heartbeat is refused.
    let d = c
        .handle_node("ghost", FromNode::Heartbeat(Heartbeat::default()), T0)
        .await;
    assert!(
        matches!(told_nodes(&d).as_slice(), [(_, ToNode::Error { code, .. })] if code == "NOT_REGISTERED")
    );
    c.registry().close().await;
}

async fn node_refusal_and_silence(url: String) {
    let c = coordinator(&url, "A", |s| s.node_reply_timeout_secs = 10).await;
    register(&c, "a", 3, &["Demo"], T0).await;
    let (_, code) = create_request(
        &ask(
            &c,
            "u1",
            addr(1),
            json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
            T0,
        )
        .await,
    );
    // Another node cannot answer for a's session.
    let d = c
        .handle_node(
            "b",
            FromNode::CreateSessionFailed {
                code: code.clone(),
                reason: "x".into(),
            },
            T0,
        )
        .await;
    assert!(d.is_empty());
    let d = c
        .handle_node(
            "a",
            FromNode::CreateSessionFailed {
                code: code.clone(),
                reason: "app missing".into(),
            },
            T0,
        )
        .await;
    assert_eq!(
        told_clients(&d),
        vec![("u1".to_string(), ToClient::ServersBusy)]
    );
    assert_eq!(c.registry().codes_in_use().await.unwrap(), 0);
    // A late CONNECT_TO_SESSION for it is answered with END_SESSION.
    let d = c
        .handle_node(
            "a",
            FromNode::ConnectToSession {
                ip: "1".into(),
                port: "2".into(),
                code: code.clone(),
                host_key: None,
            },
            T0,
        )
        .await;
    assert_eq!(
        told_nodes(&d),
        vec![(
            "a".to_string(),
            ToNode::EndSession {
                code,
                reason: "unknown_session".into()
            }
        )]
    );
    // A node that never answers: NODE_TIMEOUT after node_reply_timeout_secs.
    let (_, code2) = create_request(
        &ask(
            &c,
            "u2",
            addr(1),
            json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
            T0,
        )
        .await,
    );
    c.handle_node(
        "a",
        FromNode::Heartbeat(Heartbeat::default()),
        T0 + 9 * SECOND,
    )
    .await;
    assert!(c
        .sweep(T0 + 10 * SECOND)
        .await
        .unwrap()
        .deliveries
        .is_empty());
    let sw = c.sweep(T0 + 10 * SECOND + 1).await.unwrap();
    let told = told_clients(&sw.deliveries);
    assert_eq!(told.len(), 1);
    assert!(
        matches!(&told[0], (u, ToClient::Error(e)) if u == "u2" && e.code == ErrorCode::NodeTimeout)
    );
    assert_eq!(
        told_nodes(&sw.deliveries),
        vec![(
            "a".to_string(),
            ToNode::EndSession {
                code: code2,
                reason: "timeout".into()
            }
        )]
    );
    c.registry().close().await;
}

async fn session_end_bookkeeping(url: String) {
    let c = coordinator(&url, "A", |s| s.session_idle_secs = 300).await;
    register(&c, "a", 3, &["Demo"], T0).await;
    let hb = |codes: Vec<String>| {
        FromNode::Heartbeat(Heartbeat {
            sessions: 2,
            participants: 2,
            cpu: 0.5,
            active: codes,
            ..Heartbeat::default()
        })
    };
    // Everyone leaves: the session ends, the node is told to stop it, the code is free.
    let (_, code) = create_live(&c, "u1", "Demo", T0).await;
    ask(
        &c,
        "u2",
        addr(2),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
        T0,
    )
    .await;
    assert!(c
        .handle_node(
            "a",
            FromNode::ParticipantLeft {
                code: code.clone(),
                user_id: "u1".into()
            },
            T0
        )
        .await
        .is_empty());
    let d = c
        .handle_node(
            "a",
            FromNode::ParticipantLeft {
                code: code.clone(),
                user_id: "u2".into(),
            },
            T0,
        )
        .await;
    assert_eq!(
        told_nodes(&d),
        vec![(
            "a".to_string(),
            ToNode::EndSession {
                code: code.clone(),
                reason: "empty".into()
            }
        )]
    );
    assert!(c.registry().session(&code).await.unwrap().is_none());
    assert_eq!(c.registry().codes_in_use().await.unwrap(), 0);
    // Idle: activity reported in heartbeats keeps one session; the other ends.
    let (_, busy) = create_live(&c, "u3", "Demo", T0).await;
    let (_, quiet) = create_live(&c, "u4", "Demo", T0).await;
    for t in [100, 200, 300] {
        c.handle_node("a", hb(vec![busy.clone()]), T0 + t * SECOND)
            .await;
    }
    let sw = c.sweep(T0 + 301 * SECOND).await.unwrap();
    assert_eq!(sw.ended.len(), 1);
    assert_eq!(
        (sw.ended[0].0.session.code.as_str(), sw.ended[0].1),
        (quiet.as_str(), EndReason::Idle)
    );
    assert_eq!(
        told_clients(&sw.deliveries),
        vec![(
            "u4".to_string(),
            ToClient::SessionEnded {
                code: quiet.clone(),
                reason: "idle".into()
            }
        )]
    );
    assert!(c.registry().session(&busy).await.unwrap().is_some());
    // The node ends a session itself: participants are told with its reason, the node is not.
    let d = c
        .handle_node(
            "a",
            FromNode::SessionEnded {
                code: busy.clone(),
                reason: "app_crashed".into(),
            },
            T0 + 302 * SECOND,
        )
        .await;
    assert_eq!(
        told_clients(&d),
        vec![(
            "u3".to_string(),
            ToClient::SessionEnded {
                code: busy.clone(),
                reason: "app_crashed".into()
            }
        )]
    );
    assert!(told_nodes(&d).is_empty());
    assert_eq!(c.registry().codes_in_use().await.unwrap(), 0);
    c.registry().close().await;
}

async fn coordinators_share_the_registry(url: String) {
    let a = coordinator(&url, "coord-a", |_| {}).await;
    let b = coordinator(&url, "coord-b", |_| {}).await;
    // The node's link is held by b.
    register(&b, "n1", 1, &["Demo"], T0).await;
    // A client of a creates a session: the CREATE_SESSION must go through b.
    let o = ask(
        &a,
        "ua",
        addr(1),
        json!({"verb":"CREATE_SESSION","rc_name":"Demo"}),
        T0,
    )
    .await;
    let Some(Delivery::Node { node, via, msg }) = o.deliveries.first().cloned() else {
        panic!("{o:?}")
    };
    assert_eq!((node.as_str(), via.as_str()), ("n1", "coord-b"));
    let body = msg.to_json();
    a.registry()
        .push_outbox(&via, "node", &node, &body, T0)
        .await
        .unwrap();
    let items = b.registry().take_outbox("coord-b", 10).await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0].target_kind.as_str(), items[0].target.as_str()),
        ("node", "n1")
    );
    let ToNode::CreateSession { code, user_id, .. } = serde_json::from_str(&items[0].body).unwrap()
    else {
        panic!()
    };
    assert_eq!(user_id, "ua");
    assert!(b
        .registry()
        .take_outbox("coord-b", 10)
        .await
        .unwrap()
        .is_empty());
    // The node answers b; the creator's answer is addressed to a.
    let d = b
        .handle_node(
            "n1",
            FromNode::ConnectToSession {
                ip: "10.1.1.1".into(),
                port: "7443".into(),
                code: code.clone(),
                host_key: None,
            },
            T0,
        )
        .await;
    assert!(d.iter().any(|d| matches!(d, Delivery::Client { user_id, via, msg: ToClient::ConnectToSession { .. } } if user_id == "ua" && via == "coord-a")));
    // A client of b joins by the code a's client got.
    let o = ask(
        &b,
        "ub",
        addr(2),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
        T0,
    )
    .await;
    assert_eq!(
        o.reply,
        Some(ToClient::ConnectToSession {
            ip: "10.1.1.1".into(),
            port: "7443".into(),
            code: code.clone(),
            host_key: None
        })
    );
    // Both race for the last place of another app: exactly one wins.
    register(&b, "n2", 1, &["Solo"], T0).await;
    let req = json!({"verb":"CREATE_SESSION","rc_name":"Solo"});
    let (ra, rb) = tokio::join!(
        ask(&a, "x", addr(3), req.clone(), T0),
        ask(&b, "y", addr(4), req.clone(), T0)
    );
    let wins = [&ra, &rb].iter().filter(|o| o.reply.is_none()).count();
    let busy = [&ra, &rb]
        .iter()
        .filter(|o| o.reply == Some(ToClient::ServersBusy))
        .count();
    assert_eq!((wins, busy), (1, 1), "{ra:?} {rb:?}");
    // Plans made through one coordinator are seen by the other.
    let o = ask(
        &a,
        "p",
        addr(5),
        json!({"verb":"PLAN_SESSION","rc_name":"Solo","date":"16/03/2030","time":"10:00"}),
        T0,
    )
    .await;
    assert!(matches!(o.reply, Some(ToClient::ConnectionCode { .. })));
    let o = ask(
        &b,
        "p",
        addr(5),
        json!({"verb":"PLAN_SESSION","rc_name":"Solo","date":"16/03/2030","time":"10:15"}),
        T0,
    )
    .await;
    assert_eq!(error_code(&o), ErrorCode::SlotTaken);
    // Only one coordinator reports a node's death.
    let (sa, sb) = tokio::join!(a.sweep(T0 + 20 * SECOND), b.sweep(T0 + 20 * SECOND));
    let mut down = sa.unwrap().nodes_down;
    down.extend(sb.unwrap().nodes_down);
    down.sort();
    assert_eq!(down, ["n1", "n2"]);
    a.registry().close().await;
    b.registry().close().await;
}

#[tokio::test]
async fn stage_one_opens_from_files() {
    let dir = std::env::temp_dir().join(format!(
        "orbita-stage1-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let servers = dir.join("servers.json");
    let plans = dir.join("sessions_planned.json");
    std::fs::write(
        &servers,
        r#"[{"server_name":"SomeName1","ip":"0.0.0.0","port":"111","rc_info":{"rc_name":"SomeRC","info":{"description":[{"en":"best RC and ..."},{"ru":"..."}]}}}]"#,
    )
    .unwrap();
    std::fs::write(
        &plans,
        r#"[{"code":"0042","rc_name":"SomeRC","date":"16/03/2030","time":"10:00","duration_minutes":"60","planned_by":"id1"},
            {"code":"0043","rc_name":"SomeRC","date":"01/01/2020","time":"10:00","duration_minutes":"60","planned_by":"id1"}]"#,
    )
    .unwrap();
    let settings = Settings {
        coordinator_id: "A".into(),
        servers_file: Some(servers.clone()),
        plans_file: Some(plans.clone()),
        guests_may_create: true,
        ..Settings::default()
    };
    let c = Coordinator::open(settings, T0).await.unwrap();
    let planner = planner(&c).await;
    let o = c
        .handle_client(
            "u",
            None,
            addr(1),
            ClientRequest::GetServers {
                range: "0-20".into(),
            },
            T0,
        )
        .await;
    assert_eq!(
        serde_json::to_value(o.reply.unwrap()).unwrap(),
        json!({"msg":"SERVERS_FOUND","servers":[{"server_name":"SomeName1","ip":"0.0.0.0","port":"111","rc_info":{"rc_name":"SomeRC","info":{"description":[{"en":"best RC and ..."},{"ru":"..."}]}}}]})
    );
    // The past plan was dropped; the future one holds its code.
    let kept = c.registry().plans().await.unwrap();
    assert_eq!(
        kept.iter().map(|p| p.code.as_str()).collect::<Vec<_>>(),
        ["0042"]
    );
    // The listed server's node links (plans count only on servers that can start them); a
    // new plan is written back to the file.
    register(&c, "SomeName1", 1, &["SomeRC"], T0).await;
    let o = c
        .handle_client_text(
            "u",
            Some(&planner),
            addr(1),
            r#"{"verb":"PLAN_SESSION","rc_name":"SomeRC","date":"16/03/2030","time":"11:00"}"#,
            T0,
        )
        .await;
    let Some(ToClient::ConnectionCode { code }) = o.reply else {
        panic!("{o:?}")
    };
    let text = std::fs::read_to_string(&plans).unwrap();
    assert!(
        text.contains(&format!("\"code\": \"{code}\"")) && text.contains("\"0042\""),
        "{text}"
    );
    let o = c
        .handle_client_text(
            "u",
            Some(&planner),
            addr(1),
            r#"{"verb":"PLAN_SESSION","rc_name":"SomeRC","date":"16/03/2030","time":"10:30"}"#,
            T0,
        )
        .await;
    assert_eq!(error_code(&o), ErrorCode::SlotTaken);
    // Parse failures reach the client as their own errors.
    for (text, want) in [
        ("{oops", ErrorCode::MalformedJson),
        (r#"{"verb":"NOPE"}"#, ErrorCode::UnknownVerb),
        (r#"{"no":"verb"}"#, ErrorCode::MissingVerb),
    ] {
        assert_eq!(
            error_code(
                &c.handle_client_text("u", Some(&planner), addr(1), text, T0)
                    .await
            ),
            want
        );
    }
    let big = format!(
        r#"{{"verb":"GET_SERVERS","range":"{}"}}"#,
        "9".repeat(70_000)
    );
    assert_eq!(
        error_code(&c.handle_client_text("u", None, addr(1), &big, T0).await),
        ErrorCode::MessageTooLarge
    );
    // An extension is written back too: plan 0042 (16/03 10:00, an hour) is started on the
    // server, now registered with room for two (the plan at 11:00 holds one), and extended.
    let node = register(&c, "SomeName1", 2, &["SomeRC"], T0).await;
    let at = T0 + 22 * 60 * MINUTE + MINUTE; // 16/03/2030 10:01
    let o = c
        .handle_client_text(
            "first",
            None,
            addr(2),
            r#"{"verb":"CONNECT_SESSION_WITH_CODE","code":"0042"}"#,
            at,
        )
        .await;
    let (on, placed) = create_request(&o);
    assert_eq!((on.as_str(), placed.as_str()), ("SomeName1", "0042"));
    c.handle_node(
        "SomeName1",
        FromNode::ConnectToSession {
            ip: node.ip.clone(),
            port: node.port.clone(),
            code: "0042".into(),
            host_key: None,
        },
        at,
    )
    .await;
    let o = c
        .handle_client_text(
            "first",
            None,
            addr(2),
            r#"{"verb":"EXTEND_SESSION","code":"0042","minutes":"15"}"#,
            at + 54 * MINUTE,
        )
        .await;
    assert_eq!(
        o.reply,
        Some(ToClient::SessionExtended {
            code: "0042".into(),
            until: "16/03/2030 11:15".into()
        })
    );
    let written = orbita_coordinator::config::load_plans(&plans).unwrap();
    let p = written.iter().find(|p| p.code == "0042").unwrap();
    assert_eq!(p.end_ms - p.start_ms, 75 * MINUTE);
    assert!(text_has(&plans, "\"duration_minutes\": \"75\""));
    std::fs::remove_dir_all(&dir).unwrap();
}

// ------------------------------------------------------------------ extending planned sessions

/// No heartbeat timeouts or idle ends: scenarios that sweep over an hour of virtual time.
fn no_timeouts(s: &mut Settings) {
    s.heartbeat_timeout_secs = 24 * 3600;
    s.session_idle_secs = 24 * 3600;
}

/// Plans `Demo` on 15/03/2030 at `time` for `minutes`, and has `user` start it at `at` on
/// `node` (which confirms); returns the code.
async fn start_plan(
    c: &Coordinator,
    node: &Registration,
    time: &str,
    minutes: u64,
    user: &str,
    at: Millis,
) -> String {
    let code = plan_demo(c, time, minutes).await;
    let o = ask(
        c,
        user,
        addr(2),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
        at,
    )
    .await;
    let (placed_on, placed) = create_request(&o);
    assert_eq!(
        (placed_on.as_str(), placed.as_str()),
        (node.server_name.as_str(), code.as_str())
    );
    let d = c
        .handle_node(
            &node.server_name,
            FromNode::ConnectToSession {
                ip: node.ip.clone(),
                port: node.port.clone(),
                code: code.clone(),
                host_key: None,
            },
            at,
        )
        .await;
    assert_eq!(told_clients(&d).len(), 1, "{d:?}");
    code
}

/// A plan of `Demo` on 15/03/2030 (asked at T0); its code.
async fn plan_demo(c: &Coordinator, time: &str, minutes: u64) -> String {
    let o = ask(
        c,
        "planner",
        addr(1),
        json!({"verb":"PLAN_SESSION","rc_name":"Demo","date":"15/03/2030","time":time,"duration_minutes":minutes.to_string()}),
        T0,
    )
    .await;
    match o.reply {
        Some(ToClient::ConnectionCode { code }) => code,
        other => panic!("expected CONNECTION_CODE, got {other:?}"),
    }
}

async fn extend(
    c: &Coordinator,
    user: &str,
    code: &str,
    minutes: Option<u64>,
    now: Millis,
) -> Outcome {
    let req = match minutes {
        Some(m) => json!({"verb":"EXTEND_SESSION","code":code,"minutes":m}),
        None => json!({"verb":"EXTEND_SESSION","code":code}),
    };
    ask(c, user, addr(7), req, now).await
}

fn error_of(o: &Outcome) -> &orbita_coordinator::verbs::ErrorReply {
    match &o.reply {
        Some(ToClient::Error(e)) => e,
        other => panic!("expected an ERROR, got {other:?}"),
    }
}

fn extended(code: &str, until: &str) -> ToClient {
    ToClient::SessionExtended {
        code: code.into(),
        until: until.into(),
    }
}

fn ending(code: &str, ends_at: &str, extendable: bool) -> ToClient {
    ToClient::SessionEnding {
        code: code.into(),
        ends_at: ends_at.into(),
        extendable,
    }
}

async fn planned_session_is_extended_when_the_next_slot_is_free(url: String) {
    let c = coordinator(&url, "A", no_timeouts).await;
    let other = coordinator(&url, "B", no_timeouts).await;
    let a = register(&c, "a", 1, &["Demo"], T0).await;
    let start = T0 + 60 * MINUTE; // 13:00, slot until 13:30
    let code = start_plan(&c, &a, "13:00", 30, "first", start + MINUTE).await;
    let o = ask(
        &c,
        "second",
        addr(3),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
        start + 2 * MINUTE,
    )
    .await;
    assert!(
        matches!(o.reply, Some(ToClient::ConnectToSession { .. })),
        "{o:?}"
    );

    // Before the window (10 minutes before the end): refused, saying when it opens.
    let o = extend(&c, "second", &code, Some(15), start + 10 * MINUTE).await;
    let e = error_of(&o);
    assert_eq!(e.code, ErrorCode::ExtensionTooEarly);
    assert_eq!(e.retry_after_seconds, Some(600));
    assert!(
        e.message.contains("15/03/2030 13:20 UTC") && e.message.contains("15/03/2030 13:30 UTC"),
        "{}",
        e.message
    );

    // Entering the window: SESSION_ENDING, once, to everyone in the session.
    let sw = c.sweep(start + 20 * MINUTE - SECOND).await.unwrap();
    assert!(sw.ending.is_empty() && sw.deliveries.is_empty(), "{sw:?}");
    let sw = c.sweep(start + 20 * MINUTE).await.unwrap();
    assert_eq!(sw.ending, vec![(code.clone(), true)]);
    assert_eq!(
        told_clients(&sw.deliveries),
        vec![
            ("first".to_string(), ending(&code, "15/03/2030 13:30", true)),
            (
                "second".to_string(),
                ending(&code, "15/03/2030 13:30", true)
            ),
        ]
    );
    // Not again: neither from this coordinator nor from another sharing the registry.
    for co in [&other, &c] {
        let sw = co.sweep(start + 21 * MINUTE).await.unwrap();
        assert!(sw.ending.is_empty() && sw.deliveries.is_empty(), "{sw:?}");
    }
    // Someone who comes in the window is offered it with their CONNECT_TO_SESSION (the sweep
    // told only those present when it opened).
    let o = ask(
        &c,
        "late",
        addr(4),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
        start + 22 * MINUTE,
    )
    .await;
    assert!(
        matches!(o.reply, Some(ToClient::ConnectToSession { .. })),
        "{o:?}"
    );
    assert_eq!(
        told_clients(&o.deliveries),
        vec![("late".to_string(), ending(&code, "15/03/2030 13:30", true))]
    );

    // Granted: on the only server, the session does not count against itself.
    let o = extend(&c, "second", &code, Some(15), start + 25 * MINUTE).await;
    assert_eq!(o.reply, Some(extended(&code, "15/03/2030 13:45")));
    assert_eq!(
        told_clients(&o.deliveries),
        vec![
            ("first".to_string(), extended(&code, "15/03/2030 13:45")),
            ("late".to_string(), extended(&code, "15/03/2030 13:45")),
        ]
    );
    let s = c.registry().session(&code).await.unwrap().unwrap();
    assert_eq!(s.ends_ms, Some(start + 45 * MINUTE));
    let p = c.registry().plan(&code).await.unwrap().unwrap();
    assert_eq!((p.start_ms, p.end_ms), (start, start + 45 * MINUTE));

    // The old end passes: nothing ends, the plan stays.
    let sw = c.sweep(start + 30 * MINUTE).await.unwrap();
    assert!(sw.ended.is_empty() && sw.expired_plans.is_empty(), "{sw:?}");
    // The new end's window: told again.
    let sw = c.sweep(start + 35 * MINUTE).await.unwrap();
    assert_eq!(sw.ending, vec![(code.clone(), true)]);
    assert_eq!(told_clients(&sw.deliveries).len(), 3);
    // Without `minutes`: extension_minutes (15).
    let o = extend(&c, "first", &code, None, start + 40 * MINUTE).await;
    assert_eq!(o.reply, Some(extended(&code, "15/03/2030 14:00")));
    assert_eq!(
        told_clients(&o.deliveries),
        vec![
            ("second".to_string(), extended(&code, "15/03/2030 14:00")),
            ("late".to_string(), extended(&code, "15/03/2030 14:00")),
        ]
    );

    // It ends at the new end (plan_over), and only then.
    let sw = c.sweep(start + 60 * MINUTE - SECOND).await.unwrap();
    assert!(sw.ended.is_empty(), "{sw:?}");
    assert_eq!(sw.ending, vec![(code.clone(), true)]);
    let sw = c.sweep(start + 60 * MINUTE).await.unwrap();
    assert_eq!(sw.ended.len(), 1);
    assert_eq!(sw.ended[0].1, EndReason::PlanOver);
    assert_eq!(
        told_clients(&sw.deliveries),
        ["first", "second", "late"].map(|u| (
            u.to_string(),
            ToClient::SessionEnded {
                code: code.clone(),
                reason: "plan_over".into()
            }
        ))
    );
    assert_eq!(sw.expired_plans.len(), 1);
    assert_eq!(c.registry().codes_in_use().await.unwrap(), 0);
    let o = extend(&c, "first", &code, None, start + 61 * MINUTE).await;
    assert_eq!(o.reply, Some(ToClient::SessionNotExist));
    c.registry().close().await;
    other.registry().close().await;
}

async fn extension_is_refused_when_the_next_slot_is_booked(url: String) {
    let c = coordinator(&url, "A", no_timeouts).await;
    let a = register(&c, "a", 1, &["Demo"], T0).await;
    let start = T0 + 60 * MINUTE; // 13:00, slot until 13:30
    let code = start_plan(&c, &a, "13:00", 30, "first", start + MINUTE).await;
    // Another plan holds the only server from 13:40.
    plan_demo(&c, "13:40", 30).await;

    // The notice says the default extension (15 minutes) would not fit.
    let sw = c.sweep(start + 20 * MINUTE).await.unwrap();
    assert_eq!(sw.ending, vec![(code.clone(), false)]);
    assert_eq!(
        told_clients(&sw.deliveries),
        vec![(
            "first".to_string(),
            ending(&code, "15/03/2030 13:30", false)
        )]
    );
    // 15 minutes: refused, and nothing changes; 10 (up to the other plan) fit.
    let o = extend(&c, "first", &code, Some(15), start + 21 * MINUTE).await;
    let e = error_of(&o);
    assert_eq!(e.code, ErrorCode::NextSlotTaken);
    assert!(
        e.message.contains("13:30") && e.message.contains("13:45"),
        "{}",
        e.message
    );
    assert!(o.deliveries.is_empty());
    assert_eq!(
        c.registry().session(&code).await.unwrap().unwrap().ends_ms,
        Some(start + 30 * MINUTE)
    );
    let o = extend(&c, "first", &code, Some(10), start + 22 * MINUTE).await;
    assert_eq!(o.reply, Some(extended(&code, "15/03/2030 13:40")));
    // The new end's window opens at 13:30.
    let o = extend(&c, "first", &code, Some(5), start + 23 * MINUTE).await;
    let e = error_of(&o);
    assert_eq!(e.code, ErrorCode::ExtensionTooEarly);
    assert!(e.message.contains("15/03/2030 13:30 UTC"), "{}", e.message);

    // A second server makes room beside the other plan...
    register(&c, "b", 1, &["Demo"], T0).await;
    let o = extend(&c, "first", &code, Some(15), start + 31 * MINUTE).await;
    assert_eq!(o.reply, Some(extended(&code, "15/03/2030 13:55")));
    // ...until a third plan takes it: both servers are booked from 13:55.
    plan_demo(&c, "13:55", 30).await;
    let o = extend(&c, "first", &code, Some(15), start + 45 * MINUTE).await;
    assert_eq!(error_of(&o).code, ErrorCode::NextSlotTaken);
    assert_eq!(
        c.registry().plan(&code).await.unwrap().unwrap().end_ms,
        start + 55 * MINUTE
    );
    c.registry().close().await;
}

async fn only_live_planned_sessions_can_be_extended(url: String) {
    let c = coordinator(&url, "A", |_| {}).await;
    register(&c, "a", 2, &["Demo"], T0).await;
    // An unplanned session has no end to extend.
    let (_, unplanned) = create_live(&c, "u", "Demo", T0).await;
    let o = extend(&c, "u", &unplanned, None, T0).await;
    assert_eq!(error_of(&o).code, ErrorCode::SessionNotPlanned);
    assert_eq!(
        c.registry()
            .session(&unplanned)
            .await
            .unwrap()
            .unwrap()
            .ends_ms,
        None
    );
    // A plan whose slot has not begun, then one nobody has started yet.
    let planned = plan_demo(&c, "12:30", 30).await;
    let e = error_of(&extend(&c, "u", &planned, None, T0 + SECOND).await).clone();
    assert_eq!(
        (e.code, e.retry_after_seconds),
        (ErrorCode::PlanNotStarted, Some(1799))
    );
    let e = error_of(&extend(&c, "u", &planned, None, T0 + 31 * MINUTE).await).clone();
    assert_eq!(
        (e.code, e.retry_after_seconds),
        (ErrorCode::PlanNotStarted, None)
    );
    assert!(
        e.message.contains("CONNECT_SESSION_WITH_CODE"),
        "{}",
        e.message
    );
    // Started but not yet confirmed by its node.
    let o = ask(
        &c,
        "v",
        addr(2),
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":planned}),
        T0 + 52 * MINUTE,
    )
    .await;
    create_request(&o);
    let o = extend(&c, "v", &planned, None, T0 + 52 * MINUTE).await;
    assert_eq!(error_of(&o).code, ErrorCode::SessionStarting);
    // A code nobody holds; malformed codes and lengths.
    let unused = (0..10_000)
        .map(|i| format!("{i:04}"))
        .find(|k| *k != unplanned && *k != planned)
        .unwrap();
    let t = T0 + 53 * MINUTE;
    assert_eq!(
        extend(&c, "x", &unused, None, t).await.reply,
        Some(ToClient::SessionNotExist)
    );
    assert_eq!(
        error_of(&extend(&c, "x", "12", None, t + SECOND).await).code,
        ErrorCode::BadCode
    );
    for (i, minutes) in [2, 24 * 60 + 1].into_iter().enumerate() {
        let o = extend(
            &c,
            "x",
            &planned,
            Some(minutes),
            t + (2 + i as i64) * SECOND,
        )
        .await;
        let e = error_of(&o);
        assert_eq!(e.code, ErrorCode::BadDuration);
        assert!(e.message.contains("5 to 1440"), "{}", e.message);
    }
    let o = ask(
        &c,
        "x",
        addr(7),
        json!({"verb":"EXTEND_SESSION","code":planned,"minutes":"soon"}),
        t + 5 * SECOND,
    )
    .await;
    assert_eq!(error_code(&o), ErrorCode::BadField);
    c.registry().close().await;
}

fn text_has(path: &std::path::Path, needle: &str) -> bool {
    std::fs::read_to_string(path).unwrap().contains(needle)
}
