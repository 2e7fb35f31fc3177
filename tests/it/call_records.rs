//! Call records from a real `orbita serve` (docs/calls.md): two bots talk and chat, one leaves
//! and the room empties; the record in the database holds both, their stays, the chat (not a
//! private message) and the end. A server killed with SIGKILL mid-call leaves the record of
//! what happened until then, closed when the server starts again.

use std::path::Path;
use std::time::{Duration, Instant};

use orbita_bot::{Bot, BotOptions};
use orbita_coordinator::store::CallRecord;
use orbita_coordinator::Registry;
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
