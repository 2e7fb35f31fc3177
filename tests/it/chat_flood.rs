//! A chat flood from one guest, against a real server: the guest sends chat as fast as its
//! socket takes it for a few seconds; the other participants stay connected, keep receiving
//! media, and get at most the guest's chat budget (`chat_burst`, then `chat_per_second`); the
//! guest is told `rate_limited` for the rest.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use orbita_bot::BotStats;
use orbita_protocol::{ClientMsg, ErrorCode, ServerMsg, PROTOCOL_VERSION};
use tokio_tungstenite::tungstenite::Message;

use crate::support::*;

/// How long the guest floods.
const FLOOD: Duration = Duration::from_secs(4);

/// Video frames `viewer` has received from `from`.
fn frames_from(stats: &BotStats, from: &str) -> u64 {
    stats.by_participant.get(from).map_or(0, |p| p.video.frames)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chat_flood_from_one_guest_leaves_the_others_connected_and_receiving() {
    let settings = test_settings();
    let (per_second, burst) = (settings.chat_per_second, settings.chat_burst);
    let server = start_server(settings).await;
    let code = create_room(&server).await;
    let camera = join_bot(&server, &code, "Camera").await;
    let viewer = join_bot_with(&server, &code, "Viewer", |o| {
        o.publish_audio = false;
        o.publish_video = false;
    })
    .await;
    let camera_id = camera.participant_id().to_string();
    viewer
        .wait_for_media_from(&camera_id, MEDIA_TIMEOUT)
        .await
        .expect("the viewer receives the camera");

    // The guest joins over a plain WebSocket.
    let (ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("ws connects");
    let (mut tx, mut rx) = ws.split();
    let join = ClientMsg::Join {
        v: PROTOCOL_VERSION,
        code: code.clone(),
        name: "Flooder".into(),
        key: None,
        consent: None,
    };
    tx.send(Message::Text(serde_json::to_string(&join).unwrap().into()))
        .await
        .unwrap();
    let flooder_id = loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), rx.next())
            .await
            .expect("joined in time")
            .expect("open")
            .expect("readable");
        if let Message::Text(t) = msg {
            if let ServerMsg::Joined { participant_id, .. } = serde_json::from_str(&t).unwrap() {
                break participant_id;
            }
        }
    };
    // What the guest hears back: its refusals and its own chat that went out.
    let (refused, echoed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let reader = {
        let (refused, echoed) = (refused.clone(), echoed.clone());
        tokio::spawn(async move {
            while let Some(Ok(msg)) = rx.next().await {
                let Message::Text(t) = msg else { continue };
                match serde_json::from_str::<ServerMsg>(&t) {
                    Ok(ServerMsg::Error {
                        code: ErrorCode::RateLimited,
                        ..
                    }) => refused.fetch_add(1, Ordering::Relaxed),
                    Ok(ServerMsg::Chat { .. }) => echoed.fetch_add(1, Ordering::Relaxed),
                    _ => 0,
                };
            }
        })
    };

    // The flood: 2 KiB messages, as fast as the socket takes them.
    let before = frames_from(&viewer.stats(), &camera_id);
    let filler = "x".repeat(2000);
    let started = Instant::now();
    let mut sent = 0u64;
    let mut mid_flood = None;
    while started.elapsed() < FLOOD {
        let chat = format!(r#"{{"type":"chat","text":"flood {sent} {filler}"}}"#);
        tx.send(Message::Text(chat.into())).await.expect("send");
        sent += 1;
        if mid_flood.is_none() && started.elapsed() >= FLOOD / 2 {
            mid_flood = Some(frames_from(&viewer.stats(), &camera_id));
        }
    }
    let flood_secs = started.elapsed().as_secs_f64();
    let during = frames_from(&viewer.stats(), &camera_id);
    let mid_flood = mid_flood.expect("a sample half-way");

    // Media kept flowing during the flood, and keeps flowing after it.
    assert!(
        mid_flood > before && during > mid_flood,
        "frames before {before}, half-way {mid_flood}, at the end {during}"
    );
    viewer
        .wait_for(|s| frames_from(s, &camera_id) > during + 30, MEDIA_TIMEOUT)
        .await
        .expect("media after the flood");
    // Something said after the flood arrives: chat itself still works for the others.
    camera.send_chat("after the flood").unwrap();
    viewer
        .wait_for(
            |s| s.chat.iter().any(|c| c.text == "after the flood"),
            Duration::from_secs(10),
        )
        .await
        .expect("the camera's chat arrives");

    // The viewer got at most the guest's budget of its chat, and both others are connected.
    let from_flooder = viewer
        .chat_messages()
        .iter()
        .filter(|c| c.from == flooder_id)
        .count() as u64;
    let allowed = u64::from(burst) + (flood_secs.ceil() as u64 + 1) * u64::from(per_second);
    assert!(
        (1..=allowed).contains(&from_flooder),
        "the viewer got {from_flooder} of {sent} flood messages (allowed {allowed})"
    );
    assert!(viewer.is_running() && camera.is_running());
    assert!(viewer.stats().subscriber.connected && camera.stats().publisher.connected);
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    let refused = refused.load(Ordering::Relaxed);
    assert!(refused > 0, "the flooder was told");
    assert!(
        server.chat_dropped() > 0 && server.chat_dropped() <= refused,
        "chat drops are counted: {}",
        server.chat_dropped()
    );
    eprintln!(
        "chat flood: {sent} messages in {flood_secs:.1} s; {from_flooder} delivered (allowed \
         {allowed}), {} echoed to the flooder, {refused} refused; viewer frames {before} -> \
         {mid_flood} -> {during}",
        echoed.load(Ordering::Relaxed)
    );
    server.shutdown().await.unwrap();
}
