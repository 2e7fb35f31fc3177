//! Call records from a real `orbita serve` (docs/calls.md): two bots talk and chat, one leaves
//! and the room empties; the record in the database holds both, their stays, the chat (not a
//! private message) and the end. A server killed with SIGKILL mid-call leaves the record of
//! what happened until then, closed when the server starts again. Connection quality reports
//! reach the agent live and the record.

use std::path::Path;
use std::time::{Duration, Instant};

use orbita_bot::{Bot, BotOptions, BotStats, RoomEventKind};
use orbita_coordinator::store::CallRecord;
use orbita_coordinator::Registry;
use orbita_protocol::{ClientMsg, ErrorCode, QualityReport, QualitySource};
use serde_json::json;

use crate::support::{Proc, TempDir, LOOPBACK_MEDIA_ARGS, MEDIA_TIMEOUT};

/// `orbita serve` (guests may create rooms) on the database in `data`; its address.
fn serve(data: &Path) -> (Proc, String) {
    let mut args = vec![
        "serve".to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--guests-may-create".into(),
        "--empty-room-grace-secs".into(),
        "1".into(),
    ];
    args.extend(LOOPBACK_MEDIA_ARGS.iter().map(|s| s.to_string()));
    let mut server = Proc::start("serve", &args);
    let addr = server.wait_for("listening on http://");
    (server, addr)
}

async fn new_room(addr: &str) -> String {
    let room = crate::recording::create_room(&format!("http://{addr}"), json!({})).await;
    room["code"].as_str().expect("a room code").to_string()
}

async fn join(addr: &str, code: &str, name: &str) -> Bot {
    let mut opts = BotOptions::new(format!("ws://{addr}/ws"), code, name);
    opts.publish_video = false;
    Bot::join(opts).await.expect("joins")
}

/// The record of room `code`'s one call, once `done` holds for it (polled: the node sends
/// its events to the coordinator, which writes them, a moment after they happen).
async fn record_of(data: &Path, code: &str, done: impl Fn(&CallRecord) -> bool) -> CallRecord {
    let url = format!("sqlite://{}", data.join("orbita.db").display());
    let registry = Registry::connect(&url).await.unwrap();
    let deadline = Instant::now() + MEDIA_TIMEOUT;
    loop {
        let ids = registry.calls_of_code(code).await.unwrap();
        assert!(ids.len() <= 1, "{ids:?}");
        if let Some(id) = ids.first() {
            let record = registry.call(id).await.unwrap().unwrap();
            if done(&record) {
                registry.close().await;
                return record;
            }
            assert!(Instant::now() < deadline, "the record stayed {record:#?}");
        }
        assert!(Instant::now() < deadline, "no record of {code}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_recorded_with_its_people_stays_and_chat() {
    let dir = TempDir::new("call-records");
    let data = dir.path().join("data");
    let (mut server, addr) = serve(&data);
    let code = new_room(&addr).await;
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let ann = join(&addr, &code, "Ann").await;
    let bob = join(&addr, &code, "Bob").await;
    ann.send_chat("Hello Bob, can you hear me?").unwrap();
    ann.send_private_chat(bob.participant_id(), "a private word")
        .unwrap();
    bob.wait_for(|s| s.chat.len() >= 2, MEDIA_TIMEOUT)
        .await
        .expect("Bob reads both");
    let (ann_id, bob_id) = (
        ann.participant_id().to_string(),
        bob.participant_id().to_string(),
    );
    drop(bob);
    drop(ann);

    let record = record_of(&data, &code, |r| r.ended_ms.is_some()).await;
    assert_eq!(record.call.code, code);
    assert_eq!(record.call.rc_name, "video-room");
    assert!(record.call.started_ms >= started - 1000, "{record:?}");
    assert_eq!(record.end_reason.as_deref(), Some("empty"));
    let names: Vec<(&str, &str, &str)> = record
        .participants
        .iter()
        .map(|p| (p.participant_id.as_str(), p.name.as_str(), p.role.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            (ann_id.as_str(), "Ann", "customer"),
            (bob_id.as_str(), "Bob", "customer")
        ]
    );
    assert_eq!(record.presence.len(), 2, "{:?}", record.presence);
    for stay in &record.presence {
        let left = stay.left_ms.expect("each stay ended");
        assert!(left >= stay.joined_ms, "{stay:?}");
        assert!(left <= record.ended_ms.unwrap(), "{stay:?}");
    }
    // The call ended when the room emptied, not a grace period later.
    let last_left = record.presence.iter().filter_map(|p| p.left_ms).max();
    assert_eq!(record.ended_ms, last_left);
    let chat: Vec<(&str, &str)> = record
        .chat
        .iter()
        .map(|c| (c.participant_id.as_str(), c.body.as_str()))
        .collect();
    assert_eq!(chat, [(ann_id.as_str(), "Hello Bob, can you hear me?")]);
    server.stop(Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_by_sigkill_is_closed_when_the_server_starts_again() {
    let dir = TempDir::new("call-records-kill");
    let data = dir.path().join("data");
    let (mut server, addr) = serve(&data);
    let code = new_room(&addr).await;
    let ann = join(&addr, &code, "Ann").await;
    ann.send_chat("still there?").unwrap();
    let before = record_of(&data, &code, |r| r.chat.len() == 1).await;
    assert_eq!(before.ended_ms, None);
    server.kill();
    drop(ann);

    let (mut again, _) = serve(&data);
    let after = record_of(&data, &code, |r| r.ended_ms.is_some()).await;
    assert_eq!(after.end_reason.as_deref(), Some("server_restart"));
    assert_eq!(
        after.ended_ms,
        Some(before.chat[0].sent_ms),
        "closed at its last event"
    );
    assert_eq!(after.presence.len(), 1);
    assert_eq!(after.presence[0].left_ms, after.ended_ms);
    assert_eq!(after.chat, before.chat);
    again.stop(Duration::from_secs(10));
}

/// Whether `stats` holds a `quality` of `who` from `source` that says what they send.
fn told_quality(stats: &BotStats, who: &str, source: QualitySource) -> bool {
    stats.events.iter().any(|e| {
        matches!(&e.kind, RoomEventKind::Quality { participant_id, source: s, out_kbps: Some(_), .. }
            if participant_id == who && *s == source)
    })
}

/// Connection quality: the customer's browser figures (`stats`) reach the agent at once, the
/// server's own view of the customer's connections every 5 s; both go into the call's record.
/// Figures out of range, and a second report within 2 s, are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quality_reports_reach_the_agent_and_the_record() {
    let dir = TempDir::new("call-quality");
    let data = dir.path().join("data");
    let (mut server, addr) = serve(&data);
    let room = crate::recording::create_room(&format!("http://{addr}"), json!({})).await;
    let code = room["code"].as_str().unwrap().to_string();
    let mut opts = BotOptions::new(format!("ws://{addr}/ws"), &code, "Agent");
    opts.publish_video = false;
    opts.key = room["host_key"].as_str().map(str::to_string);
    let agent = Bot::join(opts).await.expect("the agent joins");
    let customer = join(&addr, &code, "Customer").await;
    let who = customer.participant_id().to_string();

    let sent = QualityReport {
        out_kbps: Some(640.5),
        in_kbps: Some(1200.0),
        loss_pct: Some(1.5),
        rtt_ms: Some(40.0),
        fps_out: Some(30.0),
        width: Some(640),
        height: Some(480),
        ..QualityReport::default()
    };
    customer.send(ClientMsg::Stats(sent.clone())).unwrap();
    customer.send(ClientMsg::Stats(sent.clone())).unwrap();
    customer
        .send_raw(r#"{"type":"stats","loss_pct":101}"#)
        .unwrap();
    let refused = customer
        .wait_for(
            |s| {
                s.errors_with(ErrorCode::RateLimited).count() == 1
                    && s.errors_with(ErrorCode::InvalidValue).count() == 1
            },
            MEDIA_TIMEOUT,
        )
        .await
        .expect("a second report in 2 s and a loss of 101 % are refused");
    let messages: Vec<&str> = refused.errors.iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages.iter().any(|m| m.contains("loss_pct")),
        "{messages:?}"
    );
    // The agent sees the customer's figures: the browser's at once, the server's within
    // two of its 5 s rounds (the first gives a counter, the second a rate).
    agent
        .wait_for(
            |s| told_quality(s, &who, QualitySource::Browser),
            MEDIA_TIMEOUT,
        )
        .await
        .expect("the agent is told the customer's browser figures");
    agent
        .wait_for(
            |s| told_quality(s, &who, QualitySource::Server),
            MEDIA_TIMEOUT,
        )
        .await
        .expect("the agent is told the server's view of the customer");
    // The customer hears the server's view of themself, never the agent's figures.
    let own = customer
        .wait_for(
            |s| told_quality(s, &who, QualitySource::Server),
            MEDIA_TIMEOUT,
        )
        .await
        .expect("the customer is told their own connection");
    assert!(!told_quality(
        &own,
        agent.participant_id(),
        QualitySource::Server
    ));

    let record = record_of(&data, &code, |r| {
        r.quality
            .iter()
            .any(|q| q.source == "server" && q.participant_id == who && q.report.out_kbps.is_some())
    })
    .await;
    let browser: Vec<&QualityReport> = record
        .quality
        .iter()
        .filter(|q| q.source == "browser")
        .map(|q| &q.report)
        .collect();
    assert_eq!(browser, [&sent], "one browser report stored, as sent");
    let server_view = record
        .quality
        .iter()
        .find(|q| q.source == "server" && q.participant_id == who && q.report.out_kbps.is_some())
        .expect("a server report with a rate");
    assert!(
        server_view.report.out_kbps.unwrap() > 1.0,
        "{server_view:?}"
    );
    drop(customer);
    drop(agent);
    server.stop(Duration::from_secs(10));
}
