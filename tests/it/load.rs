//! `orbita load` in a small bounded scenario against a real in-process server: every
//! participant joins and receives media, and nothing is lost.

use std::time::Duration;

use crate::support::*;

/// 2 rooms x (1 publisher + 3 subscribers), 720p simulcast + Opus, 5 s measured: all 8 join,
/// all 6 subscribers receive audio and video (keyframes included) with no loss, and the
/// report carries the server's figures (CPU from /proc, forwarding from /metrics).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_run_everyone_joins_and_receives_without_loss() {
    let server = start_server(test_settings()).await;
    let config = orbita_load::LoadConfig {
        url: server.ws_url(),
        rooms: 2,
        publishers: 1,
        subscribers: 3,
        ramp_per_s: 0.0,
        settle: Duration::from_secs(2),
        duration: Duration::from_secs(5),
        // The server runs in this process: its CPU is (roughly) ours.
        server_pid: Some(std::process::id()),
        progress: false,
        ..orbita_load::LoadConfig::default()
    };
    let report = orbita_load::run(config)
        .await
        .expect("the load run completes");
    println!("{}", report.table());

    let p = &report.participants;
    assert_eq!((p.total, p.publishers, p.subscribers), (8, 2, 6));
    assert_eq!((p.joined, p.failed), (8, 0), "failures: {:?}", p.failures);

    let r = &report.received;
    assert_eq!((r.receivers, r.receivers_with_media), (6, 6));
    // Each subscriber gets ~50 audio and ~30-100 video packets per second (the video layer
    // depends on the server's bandwidth estimate).
    assert!(
        r.packets >= 6 * 5 * 50,
        "too few packets in 5 s: {}",
        r.packets
    );
    assert!(r.bitrate_per_receiver_bps > 100_000.0, "{r:?}");
    assert_eq!(r.loss_run.lost, 0, "no loss on loopback: {:?}", r.loss_run);
    assert_eq!(r.loss_window.lost, 0, "{:?}", r.loss_window);
    assert_eq!(r.receivers_with_loss, 0);
    assert!(
        r.keyframes >= 6,
        "every subscriber saw a keyframe: {}",
        r.keyframes
    );
    assert!(r.video_fps_per_stream > 10.0, "{r:?}");
    let j = &report.join_ms;
    assert_eq!(j.to_first_packet.map(|p| p.n), Some(6));
    assert_eq!(j.to_first_keyframe.map(|p| p.n), Some(6));
    assert!(report.published.frames_sent > 0);

    let s = &report.server;
    // Read from /metrics around the same window as the receivers' counts.
    assert!(s.rtp_forwarded.unwrap_or(0) >= r.packets * 9 / 10, "{s:?}");
    assert!(s.us_per_forwarded_packet.is_some_and(|u| u > 0.0), "{s:?}");
    assert!(report
        .table()
        .contains("participants   8 of 8 joined, 0 failed"));
    server.shutdown().await.unwrap();
}
