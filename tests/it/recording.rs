//! Recording calls, end to end against a real server with bots that send known sounds: the
//! customer (the embedded 440 Hz tone and the VP8 test pattern) and the agent (a 1000 Hz tone
//! made here with ffmpeg), then the post-processing's files measured with ffmpeg: the stereo
//! file's left channel carries the customer, the right the agent; the durations match the
//! call; the customer's video decodes to the expected size and frame count. Also: the recorder
//! slots, who may record, and a server killed mid-recording.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use orbita_bot::{Bot, RoomEventKind};
use orbita_protocol::{ClientMsg, ErrorCode, MediaKind, RecordingState};
use serde_json::{json, Value};

use crate::support::{http, join_bot_with, start_server, test_settings, TempDir, MEDIA_TIMEOUT};

/// How long the post-processing of a short call may take on a loaded 2-core machine.
const MIXDOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// A 1000 Hz Opus tone in Ogg (20 ms frames, as the bot sends them), made with ffmpeg.
pub fn tone_ogg(dir: &Path, hz: u32) -> PathBuf {
    let out = dir.join(format!("tone-{hz}.ogg"));
    let status = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("sine=frequency={hz}:sample_rate=48000:duration=3"))
        .args([
            "-c:a",
            "libopus",
            "-b:a",
            "32k",
            "-frame_duration",
            "20",
            "-ac",
            "1",
        ])
        .arg(&out)
        .status()
        .expect("ffmpeg runs (scripts/test installs it)");
    assert!(status.success(), "ffmpeg made the tone");
    out
}

/// `POST /api/rooms` with a body: the answer.
pub(crate) async fn create_room(base: &str, body: Value) -> Value {
    let resp = http()
        .post(format!("{base}/api/rooms"))
        .json(&body)
        .send()
        .await
        .expect("POST /api/rooms");
    assert_eq!(resp.status().as_u16(), 201);
    resp.json().await.expect("JSON")
}

/// `GET /api/rooms/{code}`: what the pre-join page reads.
async fn lookup(base: &str, code: &str) -> Value {
    let answer = http()
        .get(format!("{base}/api/rooms/{code}"))
        .send()
        .await
        .expect("GET /api/rooms/{code}");
    answer.json().await.expect("JSON")
}

/// The power of `hz` in `samples` (Goertzel), normalised by the number of samples.
fn goertzel(samples: &[f64], rate: f64, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / rate;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (samples.len() as f64).powi(2)
}

/// One channel of `file` from `from` for `len` seconds, decoded by ffmpeg to 48 kHz samples.
fn channel(file: &Path, channel: usize, from: f64, len: f64) -> Vec<f64> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args([
        "-hide_banner",
        "-loglevel",
        "error",
        "-ss",
        &from.to_string(),
        "-t",
    ])
    .arg(len.to_string())
    .arg("-i")
    .arg(file)
    .args(["-af", &format!("pan=mono|c0=c{channel}"), "-ar", "48000"])
    .args(["-f", "s16le", "-"]);
    stdout_of(&mut cmd)
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

/// What `cmd` (ffmpeg or ffprobe) prints on stdout; it must succeed (else its stderr is shown).
fn stdout_of(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("ffmpeg/ffprobe runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `ffprobe` of one value of `file` (`-show_entries` syntax), as text.
fn probe(file: &Path, entries: &str, stream: Option<&str>) -> String {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error"]);
    if let Some(s) = stream {
        cmd.args(["-select_streams", s, "-count_frames"]);
    }
    cmd.args(["-show_entries", entries, "-of", "default=nw=1:nk=1"])
        .arg(file);
    String::from_utf8_lossy(&stdout_of(&mut cmd))
        .trim()
        .to_string()
}

/// The single recording folder under `root` that has `file`, once it appears.
async fn wait_for_output(root: &Path, file: &str, timeout: Duration) -> PathBuf {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(dirs) = std::fs::read_dir(root) {
            for dir in dirs.flatten() {
                let path = dir.path().join(file);
                if path.is_file() {
                    return path;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no {file} under {} within {timeout:?}",
            root.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Audio frames `bot` received from `participant` so far.
fn audio_frames_from(bot: &Bot, participant: &str) -> u64 {
    bot.stats()
        .tracks_from(participant)
        .filter(|t| t.kind == MediaKind::Audio)
        .map(|t| t.frames)
        .sum()
}

fn heard(bot: &Bot, state: RecordingState) -> bool {
    bot.stats().has_event(&RoomEventKind::Recording { state })
}

/// Wait until every bot of `bots` was told that recording is `state`.
async fn all_hear(bots: &[&Bot], state: RecordingState) {
    for bot in bots {
        bot.wait_for(|_| heard(bot, state), MEDIA_TIMEOUT)
            .await
            .unwrap();
    }
}

/// Let the call go on until `listener` has received `frames` more audio frames (20 ms each)
/// from `speaker`: the call's time, measured by what arrives.
async fn talk(listener: &Bot, speaker: &Bot, frames: u64) {
    let from = audio_frames_from(listener, speaker.participant_id());
    let speaker = speaker.participant_id().to_string();
    listener
        .wait_for(
            |_| audio_frames_from(listener, &speaker) >= from + frames,
            MEDIA_TIMEOUT,
        )
        .await
        .unwrap();
}

/// The agent records a call with a customer: the stereo file puts the customer (440 Hz) left
/// and the agent (1000 Hz) right, the call's length within a second; the customer's video
/// decodes at its size with the expected frames; the merged file has both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recorded_call_puts_the_customer_left_and_the_agent_right() {
    let dir = TempDir::new("recording-stereo");
    let recordings = dir.path().join("recordings");
    let mut settings = test_settings();
    settings.recordings_dir = Some(recordings.clone());
    let server = start_server(settings).await;
    let base = format!("http://{}", server.http_addr());
    let room = create_room(&base, json!({})).await;
    let code = room["code"].as_str().unwrap().to_string();
    let key = room["host_key"].as_str().unwrap().to_string();
    let agent_tone = tone_ogg(dir.path(), 1000);

    let agent = join_bot_with(&server, &code, "Agent", |o| {
        o.key = Some(key.clone());
        o.audio_file = Some(agent_tone.clone());
        o.publish_video = false;
    })
    .await;
    let customer = join_bot_with(&server, &code, "Customer", |o| o.simulcast = false).await;
    agent
        .wait_for_media_from(customer.participant_id(), MEDIA_TIMEOUT)
        .await
        .unwrap();
    customer
        .wait_for(
            |s| s.received_audio_from(agent.participant_id()),
            MEDIA_TIMEOUT,
        )
        .await
        .unwrap();

    // A customer may not record.
    customer.send(ClientMsg::Record { on: true }).unwrap();
    customer
        .wait_for(
            |s| s.errors_with(ErrorCode::NotAllowed).next().is_some(),
            MEDIA_TIMEOUT,
        )
        .await
        .unwrap();

    agent.send(ClientMsg::Record { on: true }).unwrap();
    all_hear(&[&agent, &customer], RecordingState::On).await;
    let started = Instant::now();
    // Five seconds of call.
    talk(&agent, &customer, 250).await;
    agent.send(ClientMsg::Record { on: false }).unwrap();
    all_hear(&[&agent, &customer], RecordingState::Off).await;
    let recorded = started.elapsed().as_secs_f64();

    let merged = wait_for_output(&recordings, "merged.mp4", MIXDOWN_TIMEOUT).await;
    let folder = merged.parent().unwrap().to_path_buf();
    let audio = folder.join("audio.m4a");
    let video = folder.join("video.mp4");
    for file in [&audio, &video, &merged] {
        assert!(file.is_file(), "{} made", file.display());
    }

    // Durations: the call as recorded, within a second.
    let duration: f64 = probe(&audio, "format=duration", None).parse().unwrap();
    assert!(
        (duration - recorded).abs() < 1.0,
        "stereo file {duration:.2} s, recorded {recorded:.2} s"
    );
    // Left: the customer's 440 Hz; right: the agent's 1000 Hz (1.5 s from the middle).
    let mid = (duration / 2.0 - 0.75).max(0.0);
    let (left, right) = (channel(&audio, 0, mid, 1.5), channel(&audio, 1, mid, 1.5));
    let db = |a: f64, b: f64| 10.0 * (a / b.max(1e-12)).log10();
    let (l440, l1000) = (
        goertzel(&left, 48000.0, 440.0),
        goertzel(&left, 48000.0, 1000.0),
    );
    let (r440, r1000) = (
        goertzel(&right, 48000.0, 440.0),
        goertzel(&right, 48000.0, 1000.0),
    );
    assert!(
        db(l440, l1000) > 20.0,
        "left: 440 Hz {l440:.3e} over 1000 Hz {l1000:.3e}"
    );
    assert!(
        db(r1000, r440) > 20.0,
        "right: 1000 Hz {r1000:.3e} over 440 Hz {r440:.3e}"
    );

    // The customer's video: the bot's 1280x720 stream, about as many frames as seconds * fps.
    let size = probe(&video, "stream=width,height", Some("v:0"));
    assert_eq!(size, "1280\n720", "{}", video.display());
    let frames: f64 = probe(&video, "stream=nb_read_frames", Some("v:0"))
        .parse()
        .unwrap();
    let video_secs: f64 = probe(&video, "format=duration", None).parse().unwrap();
    assert!(
        (video_secs - recorded).abs() < 1.0,
        "video {video_secs:.2} s, recorded {recorded:.2} s"
    );
    let rate = probe(&video, "stream=avg_frame_rate", Some("v:0"));
    let (n, d) = rate.split_once('/').unwrap();
    let fps: f64 = n.parse::<f64>().unwrap() / d.parse::<f64>().unwrap();
    let expected = video_secs * fps;
    assert!(
        (frames - expected).abs() <= expected * 0.1,
        "{frames} frames, expected {expected:.0} ({video_secs:.2} s at {fps} fps)"
    );
    // The merged file: the customer's video and the stereo sound.
    let streams = probe(&merged, "stream=codec_type", None);
    assert_eq!(
        streams.lines().collect::<Vec<_>>(),
        ["video", "audio"],
        "{streams}"
    );
    server.shutdown().await.unwrap();
}

/// `POST /api/rooms/{code}/recording` with `key`: status and answer.
async fn set_recording(base: &str, code: &str, key: Option<&str>, on: bool) -> (u16, Value) {
    let mut req = http()
        .post(format!("{base}/api/rooms/{code}/recording"))
        .json(&json!({ "on": on }));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.expect("POST recording");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// With two recorder slots, a third recorded call is told "no free recorder" (over REST and,
/// for a room made to be recorded, in the call right after `joined`) and goes on unrecorded;
/// a slot freed by a stopped recording is taken again. Only the room's host key starts or
/// stops it: a wrong key and an unknown code get the same 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_slots_record_two_calls_and_tell_the_third() {
    let dir = TempDir::new("recording-slots");
    let mut settings = test_settings();
    settings.recordings_dir = Some(dir.path().join("recordings"));
    settings.recording_slots = 2;
    settings.code_miss_delay_ms = 0;
    let server = start_server(settings).await;
    let base = format!("http://{}", server.http_addr());

    let mut rooms = Vec::new();
    for _ in 0..3 {
        let room = create_room(&base, json!({})).await;
        rooms.push((
            room["code"].as_str().unwrap().to_string(),
            room["host_key"].as_str().unwrap().to_string(),
        ));
    }
    let (c0, k0) = (&rooms[0].0, &rooms[0].1);
    let (c1, k1) = (&rooms[1].0, &rooms[1].1);
    let (c2, k2) = (&rooms[2].0, &rooms[2].1);

    // Who may: no key, a wrong key, another room's key, an unknown code.
    assert_eq!(set_recording(&base, c0, None, true).await.0, 401);
    let wrong = set_recording(&base, c0, Some("0123456789abcdef0123456789abcdef"), true).await;
    let other = set_recording(&base, c0, Some(k1), true).await;
    let unknown_code = if c0 == "0000" { "0001" } else { "0000" };
    let unknown = set_recording(&base, unknown_code, Some(k0), true).await;
    assert_eq!(wrong.0, 403);
    assert_eq!(wrong, other);
    assert_eq!(
        wrong, unknown,
        "a wrong key and an unknown code answer alike"
    );

    assert_eq!(
        set_recording(&base, c0, Some(k0), true).await,
        (200, json!({"recording": "on"}))
    );
    assert_eq!(
        set_recording(&base, c1, Some(k1), true).await,
        (200, json!({"recording": "on"}))
    );
    let (status, body) = set_recording(&base, c2, Some(k2), true).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "no_free_recorder");

    // A room made to be recorded: its agent hears why it is not, right after joining.
    let recorded = create_room(&base, json!({"record": true})).await;
    assert_eq!(recorded["record"], true);
    let code = recorded["code"].as_str().unwrap().to_string();
    let lookup = lookup(&base, &code).await;
    assert_eq!(
        lookup["recording"], true,
        "the pre-join page can tell guests: {lookup}"
    );
    let agent = join_bot_with(&server, &code, "Agent", |o| {
        o.key = Some(recorded["host_key"].as_str().unwrap().to_string());
        o.publish_video = false;
    })
    .await;
    agent
        .wait_for(
            |s| s.errors_with(ErrorCode::NoFreeRecorder).next().is_some(),
            MEDIA_TIMEOUT,
        )
        .await
        .unwrap();
    assert!(!heard(&agent, RecordingState::On));

    // A slot comes free once a recording's files are finished.
    assert_eq!(set_recording(&base, c0, Some(k0), false).await.0, 200);
    let deadline = Instant::now() + MEDIA_TIMEOUT;
    loop {
        let (status, body) = set_recording(&base, c2, Some(k2), true).await;
        if status == 200 {
            assert_eq!(body, json!({"recording": "on"}));
            break;
        }
        assert_eq!(body["error"], "no_free_recorder");
        assert!(Instant::now() < deadline, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = http()
        .get(format!("{base}/api/rooms/{c2}/recording"))
        .bearer_auth(k2)
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        body.json::<Value>().await.unwrap(),
        json!({"recording": "on"})
    );
    server.shutdown().await.unwrap();
}

/// The time of the last packet of `file`'s first stream, in seconds (a file cut short by a
/// crash has no duration in its header: its packets tell).
fn last_packet_secs(file: &Path) -> f64 {
    let mut cmd = Command::new("ffprobe");
    cmd.args([
        "-v",
        "error",
        "-select_streams",
        "0",
        "-show_entries",
        "packet=pts_time",
    ])
    .args(["-of", "csv=p=0"])
    .arg(file);
    String::from_utf8_lossy(&stdout_of(&mut cmd))
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .fold(0.0, f64::max)
}

/// `orbita serve` (guests may create rooms) on `data`: the process and its base URL.
fn serve(data: &Path) -> (crate::support::Proc, String) {
    let mut args = vec![
        "serve".to_string(),
        "--data-dir".into(),
        data.display().to_string(),
        "--guests-may-create".into(),
    ];
    args.extend(
        crate::support::LOOPBACK_MEDIA_ARGS
            .iter()
            .map(|s| s.to_string()),
    );
    let mut server = crate::support::Proc::start("serve", &args);
    let addr = server.wait_for("listening on http://");
    (server, format!("http://{addr}"))
}

/// A server killed with SIGKILL mid-recording: what was written plays (ffprobe reads each
/// track file; it lasts as long as was recorded, within 2 s), and the post-processing makes the
/// merged file once the server is started again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recording_cut_by_sigkill_plays_and_is_merged_after_a_restart() {
    let dir = TempDir::new("recording-kill");
    let data = dir.path().join("data");
    let (mut server, base) = serve(&data);
    let room = create_room(&base, json!({"record": true})).await;
    let code = room["code"].as_str().unwrap().to_string();
    let ws = format!("{}/ws", base.replacen("http://", "ws://", 1));
    let join = |name: &str, key: Option<String>| {
        let mut opts = orbita_bot::BotOptions::new(ws.clone(), code.clone(), name);
        // The agent talks; the customer talks and shows the camera.
        opts.publish_video = key.is_none();
        opts.key = key;
        opts.simulcast = false;
        Bot::join(opts)
    };
    let agent = join(
        "Agent",
        Some(room["host_key"].as_str().unwrap().to_string()),
    )
    .await
    .expect("agent joins");
    all_hear(&[&agent], RecordingState::On).await;
    let started = Instant::now();
    let customer = join("Customer", None).await.expect("customer joins");
    agent
        .wait_for_media_from(customer.participant_id(), MEDIA_TIMEOUT)
        .await
        .unwrap();
    talk(&agent, &customer, 200).await;
    server.kill();
    let recorded = started.elapsed().as_secs_f64();
    drop((agent, customer));

    let recordings = data.join("recordings");
    let folders: Vec<PathBuf> = std::fs::read_dir(&recordings)
        .expect("the recordings folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let folder = &folders[0];
    let manifest = orbita_record::Manifest::read(folder).expect("the manifest");
    assert_eq!(manifest.ended_at_ms, None, "cut short");
    // The agent's audio, the customer's audio and video: each plays up to about the kill.
    assert_eq!(manifest.tracks.len(), 3, "{manifest:?}");
    for track in &manifest.tracks {
        let file = folder.join(&track.file);
        let until = track.start_ms as f64 / 1000.0 + last_packet_secs(&file);
        assert!(
            (until - recorded).abs() < 2.0,
            "{}: plays until {until:.2} s of the recording, {recorded:.2} s recorded",
            track.file
        );
    }

    // Started again: the cut recording is post-processed.
    let (mut again, _) = serve(&data);
    let merged = wait_for_output(&recordings, "merged.mp4", MIXDOWN_TIMEOUT).await;
    assert_eq!(merged.parent().unwrap(), folder.as_path());
    let duration: f64 = probe(&merged, "format=duration", None).parse().unwrap();
    assert!(
        (duration - recorded).abs() < 2.0,
        "merged {duration:.2} s, recorded {recorded:.2} s"
    );
    again.stop(Duration::from_secs(10));
}

/// A recording folder as the recorder leaves it, made by hand: its manifest (started and ended
/// `days_ago`) and a track file of `bytes`.
fn old_recording(root: &Path, name: &str, days_ago: u64, bytes: usize) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let at = now_ms - days_ago * 86_400_000;
    let manifest = orbita_record::Manifest {
        version: orbita_record::manifest::MANIFEST_VERSION,
        id: name.into(),
        room: "4821".into(),
        owner: None,
        started_at_ms: at - 60_000,
        ended_at_ms: Some(at),
        tracks: Vec::new(),
        dropped_packets: 0,
    };
    manifest.write(&dir).unwrap();
    std::fs::write(dir.join("p1-audio-1.webm"), vec![0u8; bytes]).unwrap();
    dir
}

/// Retention and quota: at start the server deletes the recording that ended 31 days ago
/// (retention 30 days) and keeps the one of yesterday; with the recordings at their disk
/// quota a new recording is refused (`recording_quota_full`); `/metrics` says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_recordings_are_deleted_and_a_full_quota_refuses_new_ones() {
    let dir = TempDir::new("recording-retention");
    let root = dir.path().join("recordings");
    let old = old_recording(&root, "20261106T080000Z-4821-0001", 31, 1000);
    let recent = old_recording(&root, "20261206T080000Z-4821-0002", 1, 5000);
    let mut settings = test_settings();
    settings.recordings_dir = Some(root.clone());
    settings.recording_retention_days = 30;
    settings.recordings_max_bytes = 5000;
    let server = start_server(settings).await;
    let base = format!("http://{}", server.http_addr());

    let deadline = Instant::now() + MEDIA_TIMEOUT;
    while old.exists() {
        assert!(
            Instant::now() < deadline,
            "the old recording was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        recent.join("recording.json").is_file(),
        "yesterday's is kept"
    );
    let metrics = crate::support::metrics_page(&base).await;
    assert!(
        metrics.contains("\norbita_recordings_deleted_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\norbita_recordings_stored 1\n"),
        "{metrics}"
    );
    let used: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("orbita_recordings_disk_bytes "))
        .and_then(|v| v.parse().ok())
        .expect("the disk gauge");
    assert!(used >= 5000, "{used} bytes counted");

    let room = create_room(&base, json!({})).await;
    let (code, key) = (
        room["code"].as_str().unwrap(),
        room["host_key"].as_str().unwrap(),
    );
    let (status, body) = set_recording(&base, code, Some(key), true).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "recording_quota_full");
    server.shutdown().await.unwrap();
}

/// A room made to be recorded starts recording with its first participant, once: when its
/// agent stops it, the next participant's join does not start it again, and the pre-join
/// lookup stops announcing it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_who_stops_the_policy_recording_is_not_overruled_by_the_next_join() {
    let dir = TempDir::new("recording-policy-once");
    let mut settings = test_settings();
    settings.recordings_dir = Some(dir.path().join("recordings"));
    let server = start_server(settings).await;
    let base = format!("http://{}", server.http_addr());
    let room = create_room(&base, json!({"record": true})).await;
    let code = room["code"].as_str().unwrap().to_string();
    let agent = join_bot_with(&server, &code, "Agent", |o| {
        o.key = Some(room["host_key"].as_str().unwrap().to_string());
        o.publish_video = false;
    })
    .await;
    all_hear(&[&agent], RecordingState::On).await;
    agent.send(ClientMsg::Record { on: false }).unwrap();
    all_hear(&[&agent], RecordingState::Off).await;

    let customer = join_bot_with(&server, &code, "Customer", |o| o.publish_video = false).await;
    // Once the customer's sound reaches the agent, a recording their join started would have
    // been announced long before (the SFU handles its room's messages in order).
    agent
        .wait_for(
            |s| s.received_audio_from(customer.participant_id()),
            MEDIA_TIMEOUT,
        )
        .await
        .unwrap();
    let events = |bot: &Bot| {
        bot.stats()
            .events
            .iter()
            .filter(|e| matches!(e.kind, RoomEventKind::Recording { .. }))
            .count()
    };
    assert_eq!(events(&agent), 2, "on, off, and nothing since");
    assert_eq!(
        events(&customer),
        0,
        "the customer joined an unrecorded call"
    );
    let lookup = lookup(&base, &code).await;
    assert_eq!(lookup["recording"], false, "{lookup}");
    server.shutdown().await.unwrap();
}
