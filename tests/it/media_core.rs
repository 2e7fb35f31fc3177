//! End to end: bots (real str0m WebRTC clients) in rooms of a real Orbita server on loopback.

use std::time::Duration;

use crate::support::*;
use orbita_bot::stats::RoomEventKind;
use orbita_protocol::MediaKind;

/// Three bots join one room by code: each receives the other two's audio and video (packets
/// and whole VP8 frames, keyframes included); one leaves, the others get the event and its
/// media stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_bots_exchange_media_and_see_a_leave() {
    let server = start_server(test_settings()).await;
    let code = create_room(&server).await;
    let a = join_bot(&server, &code, "alice").await;
    let b = join_bot(&server, &code, "bob").await;
    let mut c = join_bot(&server, &code, "carol").await;
    let bots = [&a, &b, &c];
    let ids: Vec<String> = bots
        .iter()
        .map(|x| x.participant_id().to_string())
        .collect();

    for (i, bot) in bots.iter().enumerate() {
        for (j, other) in ids.iter().enumerate() {
            if i == j {
                continue;
            }
            let stats = bot
                .wait_for(
                    |s| {
                        let audio = s.tracks.iter().any(|t| {
                            &t.participant_id == other
                                && t.kind == MediaKind::Audio
                                && t.frames >= 25
                        });
                        let video = s.tracks.iter().any(|t| {
                            &t.participant_id == other
                                && t.kind == MediaKind::Video
                                && t.frames >= 30
                                && t.keyframes >= 1
                                && t.packets >= 30
                        });
                        audio && video
                    },
                    MEDIA_TIMEOUT,
                )
                .await
                .unwrap_or_else(|e| panic!("{} did not receive {other}'s media: {e}", bot.name()));
            for t in stats.tracks.iter().filter(|t| &t.participant_id == other) {
                assert_eq!(
                    t.stream_resets,
                    0,
                    "{}: one continuous stream per track: {t:?}",
                    bot.name()
                );
                assert!(t.bytes > 1000, "{t:?}");
            }
        }
    }

    // Carol leaves: Alice and Bob get the event and stop receiving her.
    let carol = ids[2].clone();
    c.leave().await.expect("carol leaves");
    for bot in [&a, &b] {
        let left = RoomEventKind::ParticipantLeft {
            participant_id: carol.clone(),
        };
        bot.wait_for(
            |s| s.has_event(&left) && !s.receiving_from(&carol, Duration::from_millis(700)),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("{} still hears carol: {e}", bot.name()));
        // ... and keeps receiving the other one.
        let other = if bot.participant_id() == ids[0] {
            &ids[1]
        } else {
            &ids[0]
        };
        bot.wait_for(
            |s| s.receiving_from(other, Duration::from_millis(500)),
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|e| panic!("{} lost {other} after carol left: {e}", bot.name()));
    }
    server.shutdown().await.unwrap();
}

/// A bot asking for at most 320x240 gets the low simulcast layer; raising its maximum to
/// 1280x720 brings the high layer, starting with a keyframe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulcast_layer_follows_the_requested_maximum() {
    let server = start_server(test_settings()).await;
    let code = create_room(&server).await;
    let publisher = join_bot(&server, &code, "publisher").await;
    let viewer = join_bot_with(&server, &code, "viewer", |o| {
        o.publish_audio = false;
        o.publish_video = false;
        o.max_quality = Some("320x240".into());
    })
    .await;
    let pid = publisher.participant_id().to_string();
    let video_of = |s: &orbita_bot::BotStats| {
        s.tracks
            .iter()
            .find(|t| t.participant_id == pid && t.kind == MediaKind::Video)
            .cloned()
    };

    let low = viewer
        .wait_for(
            |s| {
                video_of(s).is_some_and(|t| t.last_resolution == Some((320, 180)) && t.frames >= 20)
            },
            MEDIA_TIMEOUT,
        )
        .await
        .expect("the low layer arrives");
    let t = video_of(&low).unwrap();
    assert!(
        t.resolutions.iter().all(|r| r.width == 320),
        "only the low layer was forwarded under a 320x240 cap: {:?}",
        t.resolutions
    );

    viewer.set_quality("1280x720").unwrap();
    let high = viewer
        .wait_for(
            |s| video_of(s).is_some_and(|t| t.last_resolution == Some((1280, 720))),
            MEDIA_TIMEOUT,
        )
        .await
        .expect("raising the maximum brings the high layer");
    let t = video_of(&high).unwrap();
    assert_eq!(
        t.stream_resets, 0,
        "the switch keeps one continuous RTP stream: {t:?}"
    );
    let frames_at_switch = t.frames;
    // 30 more frames, still the high layer at the end (the bandwidth estimate may dip for a
    // moment on a loaded machine; the stream stays one continuous RTP stream throughout).
    let after = viewer
        .wait_for(
            |s| {
                video_of(s).is_some_and(|t| {
                    t.frames >= frames_at_switch + 30 && t.last_resolution == Some((1280, 720))
                })
            },
            MEDIA_TIMEOUT,
        )
        .await
        .expect("high layer keeps flowing");
    assert_eq!(video_of(&after).unwrap().stream_resets, 0);

    // And back down: 640x480 gives the middle layer.
    viewer.set_quality("640x480").unwrap();
    viewer
        .wait_for(
            |s| video_of(s).is_some_and(|t| t.last_resolution == Some((640, 360))),
            MEDIA_TIMEOUT,
        )
        .await
        .expect("lowering the maximum brings the middle layer");
    server.shutdown().await.unwrap();
}

/// On shutdown every participant is told the server is going away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_participants() {
    let server = start_server(test_settings()).await;
    let code = create_room(&server).await;
    let a = join_bot(&server, &code, "a").await;
    let b = join_bot(&server, &code, "b").await;
    a.wait_for_media_from(b.participant_id(), MEDIA_TIMEOUT)
        .await
        .expect("media flows");
    server.shutdown().await.unwrap();
    for bot in [&a, &b] {
        bot.wait_for(
            |s| {
                s.events
                    .iter()
                    .any(|e| matches!(e.kind, RoomEventKind::ServerShutdown { .. }))
                    && !s.running
            },
            Duration::from_secs(10),
        )
        .await
        .or_else(|_| {
            // Not yet ended: told of the shutdown is enough.
            let s = bot.stats();
            let told = s
                .events
                .iter()
                .any(|e| matches!(e.kind, RoomEventKind::ServerShutdown { .. }));
            if told {
                Ok(s)
            } else {
                Err(format!("{:?}", s.events))
            }
        })
        .unwrap_or_else(|events| panic!("{} was not told of the shutdown: {events}", bot.name()));
    }
}
