//! The outputs of a job, measured: which tone is in which channel when, sizes, frame
//! counts, durations.

use crossbeam_channel::never;
use orbita_mixdown::{run_job, Output, Report};
use orbita_record::{Kind, Role};

use crate::support::*;

fn outputs(report: &Report) -> Vec<Output> {
    report.outputs.iter().map(|o| o.output).collect()
}

fn no_partial_files(dir: &std::path::Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            !name.to_string_lossy().ends_with(".part"),
            "{name:?} left behind"
        );
    }
}

/// The spec's call: the agent (1000 Hz) from 0 s, the customer (440 Hz, and a camera) from
/// 1 s, each 3 s long, in a call of 5 s.
#[test]
fn an_agent_and_a_customer() {
    let tmp = TempDir::new("call");
    let dir = tmp.sub("rec-call");
    sine(&dir.join("agent.webm"), 1000, 3.0);
    sine(&dir.join("customer.webm"), 440, 3.0);
    camera(&dir.join("camera.webm"), 320, 240, 3.0);
    manifest(
        &dir,
        vec![
            track("agent.webm", "a", Role::Agent, Kind::Audio, 0),
            track("customer.webm", "c", Role::Customer, Kind::Audio, 1000),
            track("camera.webm", "c", Role::Customer, Kind::Video, 1000),
        ],
        Some(5000),
    );

    let report = run_job(&dir, &settings(), &never()).unwrap();
    assert_eq!(report.call_ms, 5000);
    assert!(report.end_from_manifest);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(
        outputs(&report),
        [Output::Audio, Output::Video, Output::Merged]
    );
    for output in &report.outputs {
        assert!(output.bytes > 0);
        assert_near(
            output.file.as_str(),
            output.duration_ms.unwrap() as f64,
            5000.0,
            200.0,
        );
    }
    no_partial_files(&dir);

    // audio.m4a: AAC stereo, 5 s.
    let audio = dir.join("audio.m4a");
    let probed = info(&audio);
    assert_eq!(probed.audio, [("aac".to_string(), 2)]);
    assert!(probed.video.is_empty());
    assert_near("audio.m4a duration", probed.duration_s, 5.0, 0.2);
    let (left, right) = (channel(&audio, 0), channel(&audio, 1));
    assert_near("decoded length", left.len() as f64 / 48_000.0, 5.0, 0.2);

    // 0-1 s: the agent alone, in the right channel; the left is silent.
    let l = window(&left, 0.05, 0.95);
    let r = window(&right, 0.05, 0.95);
    assert!(
        rms_db(l) < -60.0,
        "left before the customer: {} dB",
        rms_db(l)
    );
    assert!(
        tone_db(r, 1000.0) > -30.0,
        "agent: {} dB",
        tone_db(r, 1000.0)
    );
    assert!(tone_db(r, 1000.0) - tone_db(r, 440.0) >= 20.0);

    // 1-3 s: both, each in their own channel, the other at least 20 dB weaker.
    let l = window(&left, 1.2, 2.8);
    let r = window(&right, 1.2, 2.8);
    let (l440, l1000) = (tone_db(l, 440.0), tone_db(l, 1000.0));
    let (r440, r1000) = (tone_db(r, 440.0), tone_db(r, 1000.0));
    assert!(
        l440 > -30.0 && l440 - l1000 >= 20.0,
        "left: 440 {l440} dB, 1000 {l1000} dB"
    );
    assert!(
        r1000 > -30.0 && r1000 - r440 >= 20.0,
        "right: 440 {r440} dB, 1000 {r1000} dB"
    );

    // 3-4 s: the customer alone.
    let l = window(&left, 3.2, 3.8);
    let r = window(&right, 3.2, 3.8);
    assert!(tone_db(l, 440.0) > -30.0);
    assert!(rms_db(r) < -60.0, "right after the agent: {} dB", rms_db(r));

    // 4-5 s: nobody.
    assert!(rms_db(window(&left, 4.2, 4.95)) < -60.0);
    assert!(rms_db(window(&right, 4.2, 4.95)) < -60.0);

    // video.mp4: 320x240 H.264, 25 fps for 5 s, black before the camera's start.
    let video = dir.join("video.mp4");
    let probed = info(&video);
    assert_eq!(probed.video, [("h264".to_string(), 320, 240)]);
    assert!(probed.audio.is_empty());
    assert_near("video.mp4 duration", probed.duration_s, 5.0, 0.2);
    assert_near("video.mp4 frames", frames(&video) as f64, 125.0, 12.5);
    let before = luma(&video, 0.5, 1)[0];
    let during = luma(&video, 2.0, 1)[0];
    let after = luma(&video, 4.5, 1)[0];
    assert!(before < 20, "black before the camera: {before}");
    assert!(during > 60, "the camera: {during}");
    assert!(after < 20, "black after the camera: {after}");

    // merged.mp4: both.
    let probed = info(&dir.join("merged.mp4"));
    assert_eq!(probed.video, [("h264".to_string(), 320, 240)]);
    assert_eq!(probed.audio, [("aac".to_string(), 2)]);
    assert_near("merged.mp4 duration", probed.duration_s, 5.0, 0.2);
}

/// After a crash: no `ended_at_ms` nor `end_ms`, the camera's file cut in the middle (its
/// header still says 6 s), a broken and an empty file. The job still makes every output,
/// the call as long as the measured tracks.
#[test]
fn a_recording_cut_short_by_a_crash() {
    let tmp = TempDir::new("crash");
    let dir = tmp.sub("rec-crash");
    sine(&dir.join("agent.webm"), 1000, 2.0);
    sine(&dir.join("customer.webm"), 440, 2.0);
    let camera_file = dir.join("camera.webm");
    camera(&camera_file, 320, 240, 6.0);
    let bytes = std::fs::read(&camera_file).unwrap();
    std::fs::write(&camera_file, &bytes[..bytes.len() / 2]).unwrap();
    // What the cut file still holds: 40 ms a frame.
    let camera_ms = frames(&camera_file) * 40;
    assert!((2200..5000).contains(&camera_ms), "{camera_ms} ms left");
    std::fs::write(
        dir.join("broken.webm"),
        b"\x1a\x45\xdf\xa3 not really a webm file",
    )
    .unwrap();
    std::fs::write(dir.join("empty.webm"), b"").unwrap();
    manifest(
        &dir,
        vec![
            track("agent.webm", "a", Role::Agent, Kind::Audio, 0),
            track("customer.webm", "c", Role::Customer, Kind::Audio, 1000),
            track("camera.webm", "c", Role::Customer, Kind::Video, 1000),
            track("broken.webm", "c", Role::Customer, Kind::Audio, 2000),
            track("empty.webm", "a", Role::Agent, Kind::Audio, 2500),
            track("gone.webm", "a", Role::Agent, Kind::Audio, 2600),
        ],
        None,
    );

    let report = run_job(&dir, &settings(), &never()).unwrap();
    assert!(!report.end_from_manifest);
    // The latest end: the camera's (1 s + what is left of it; the audio ends at 3 s), not
    // the 7 s its header would make.
    let expected = (1000 + camera_ms).max(3000) as f64;
    assert_near("call length", report.call_ms as f64, expected, 60.0);
    assert!(report.notes.iter().any(|n| n.contains("cut short")));
    let skipped: Vec<(&str, &str)> = report
        .skipped
        .iter()
        .map(|s| (s.file.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert_eq!(skipped[0].0, "broken.webm");
    assert!(skipped[0].1.contains("Invalid data"), "{skipped:?}");
    assert_eq!(skipped[1], ("empty.webm", "empty file"));
    assert_eq!(skipped[2], ("gone.webm", "missing file"));

    assert_eq!(
        outputs(&report),
        [Output::Audio, Output::Video, Output::Merged]
    );
    let seconds = report.call_ms as f64 / 1000.0;
    for file in ["audio.m4a", "video.mp4", "merged.mp4"] {
        assert_near(file, info(&dir.join(file)).duration_s, seconds, 0.2);
    }
    assert_near(
        "video.mp4 frames",
        frames(&dir.join("video.mp4")) as f64,
        seconds * 25.0,
        seconds * 2.5,
    );
    // Black before the camera's start, the camera to the end of what is left of it.
    let video = dir.join("video.mp4");
    assert!(luma(&video, 0.5, 1)[0] < 20);
    assert!(luma(&video, 1.5, 1)[0] > 60);
    assert!(luma(&video, seconds - 0.3, 1)[0] > 60);
    no_partial_files(&dir);
}

/// A class of three, no agent: a grid, and one audio of everyone.
#[test]
fn three_participants_make_a_grid() {
    let tmp = TempDir::new("grid");
    let dir = tmp.sub("rec-grid");
    sine(&dir.join("p1-mic.webm"), 440, 2.0);
    sine(&dir.join("p2-mic.webm"), 1000, 2.0);
    camera(&dir.join("p1-cam.webm"), 320, 240, 2.0);
    camera(&dir.join("p2-cam.webm"), 320, 240, 2.0);
    camera(&dir.join("p3-cam.webm"), 320, 240, 2.0);
    manifest(
        &dir,
        vec![
            track("p1-mic.webm", "p1", Role::Participant, Kind::Audio, 0),
            track("p1-cam.webm", "p1", Role::Participant, Kind::Video, 0),
            track("p2-mic.webm", "p2", Role::Participant, Kind::Audio, 0),
            track("p2-cam.webm", "p2", Role::Participant, Kind::Video, 500),
            track("p3-cam.webm", "p3", Role::Participant, Kind::Video, 1000),
        ],
        Some(3000),
    );

    let report = run_job(&dir, &settings(), &never()).unwrap();
    assert_eq!(outputs(&report), [Output::Audio, Output::Grid]);
    assert!(!dir.join("video.mp4").exists());

    // Three cells: 2x2 cells of 640x360, one audio stream.
    let grid = dir.join("grid.mp4");
    let probed = info(&grid);
    assert_eq!(probed.video, [("h264".to_string(), 1280, 720)]);
    assert_eq!(probed.audio, [("aac".to_string(), 2)]);
    assert_near("grid.mp4 duration", probed.duration_s, 3.0, 0.2);
    assert_near("grid.mp4 frames", frames(&grid) as f64, 75.0, 7.5);

    // Everyone is heard, in both channels.
    for c in 0..2 {
        let samples = channel(&grid, c);
        let both = window(&samples, 0.3, 1.7);
        assert!(tone_db(both, 440.0) > -30.0, "channel {c}: p1");
        assert!(tone_db(both, 1000.0) > -30.0, "channel {c}: p2");
    }

    // The cells, each at its own start: [p1, p2; p3, empty].
    let early = luma(&grid, 0.25, 2);
    assert!(early[0] > 40 && early[1] < 20 && early[2] < 20, "{early:?}");
    let later = luma(&grid, 1.5, 2);
    assert!(later[0] > 40 && later[1] > 40 && later[2] > 40, "{later:?}");
    assert!(later[3] < 20, "the fourth cell is empty: {later:?}");
}

/// WebRTC changes a camera's resolution with the bandwidth: the video keeps its size and
/// its timeline.
#[test]
fn a_camera_changing_size_mid_track() {
    let tmp = TempDir::new("resize");
    let dir = tmp.sub("rec-resize");
    camera(&tmp.path().join("small.webm"), 320, 240, 1.5);
    camera(&tmp.path().join("large.webm"), 640, 360, 1.5);
    let list = tmp.path().join("list.txt");
    std::fs::write(
        &list,
        format!(
            "file '{}'\nfile '{}'\n",
            tmp.path().join("small.webm").display(),
            tmp.path().join("large.webm").display()
        ),
    )
    .unwrap();
    let camera_file = dir.join("camera.webm");
    ffmpeg(&[
        "-f",
        "concat",
        "-safe",
        "0",
        "-i",
        list.to_str().unwrap(),
        "-c",
        "copy",
        "-f",
        "webm",
        camera_file.to_str().unwrap(),
    ]);
    sine(&dir.join("customer.webm"), 440, 3.0);
    sine(&dir.join("agent.webm"), 1000, 3.0);
    let mut cam = track("camera.webm", "c", Role::Customer, Kind::Video, 0);
    (cam.width, cam.height) = (320, 240);
    manifest(
        &dir,
        vec![
            track("agent.webm", "a", Role::Agent, Kind::Audio, 0),
            track("customer.webm", "c", Role::Customer, Kind::Audio, 0),
            cam,
        ],
        Some(3000),
    );

    let report = run_job(&dir, &settings(), &never()).unwrap();
    assert_eq!(
        outputs(&report),
        [Output::Audio, Output::Video, Output::Merged]
    );
    let video = dir.join("video.mp4");
    let probed = info(&video);
    assert_eq!(probed.video, [("h264".to_string(), 320, 240)]);
    assert_near("duration", probed.duration_s, 3.0, 0.2);
    assert_near("frames", frames(&video) as f64, 75.0, 7.5);
    assert!(luma(&video, 0.7, 1)[0] > 60);
    // The larger pictures, letterboxed: still there.
    assert!(luma(&video, 2.5, 1)[0] > 40);
}

/// A pause (a muted microphone) is a gap in the track's timestamps: it stays a silence of its
/// length, and what follows it stays in its place.
#[test]
fn a_gap_in_a_track_stays_a_gap() {
    let tmp = TempDir::new("gap");
    let dir = tmp.sub("rec-gap");
    // 2 s of tone, its second second shifted 2 s later: tone 0-1 s, nothing 1-3 s, tone 3-4 s.
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=1000:duration=2",
        "-af",
        "asetpts='if(gte(T,1),PTS+2/TB,PTS)'",
        "-c:a",
        "libopus",
        "-f",
        "webm",
        dir.join("agent.webm").to_str().unwrap(),
    ]);
    manifest(
        &dir,
        vec![track("agent.webm", "a", Role::Agent, Kind::Audio, 500)],
        Some(5000),
    );

    let report = run_job(&dir, &settings(), &never()).unwrap();
    assert_eq!(outputs(&report), [Output::Audio]);
    let right = channel(&dir.join("audio.m4a"), 1);
    let level = |from, to| tone_db(window(&right, from, to), 1000.0);
    assert!(rms_db(window(&right, 0.0, 0.45)) < -60.0);
    assert!(level(0.6, 1.4) > -30.0, "before the pause");
    assert!(rms_db(window(&right, 1.6, 3.4)) < -60.0, "the pause");
    assert!(level(3.6, 4.4) > -30.0, "after the pause");
    assert!(rms_db(window(&right, 4.6, 5.0)) < -60.0);
}
