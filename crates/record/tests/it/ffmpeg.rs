//! Recordings checked with the real ffmpeg: assets encoded by ffmpeg at test time, packetized
//! into RTP as browsers send them, recorded through a real `Recorder`, and the files decoded
//! and measured by ffprobe and ffmpeg.

use std::time::Duration;

use crate::support::*;
use orbita_record::{Kind, Manifest, RecCodec, TrackEntry};

fn entry(manifest: &Manifest, kind: Kind) -> &TrackEntry {
    manifest
        .tracks
        .iter()
        .find(|t| t.kind == kind)
        .expect("a track of that kind")
}

fn assert_near(what: &str, value: f64, expected: f64, tolerance: f64) {
    assert!(
        (value - expected).abs() <= tolerance,
        "{what}: {value} not within {tolerance} of {expected}"
    );
}

/// A recorded video file: decoded without errors, every frame (within 1), its size, its
/// duration (within 100 ms).
fn check_video(file: &std::path::Path, codec: &str, frames_sent: usize) {
    let probe = probe(file);
    eprintln!("{}: {probe:?} ({frames_sent} frames sent)", file.display());
    assert_eq!(probe.codec, codec);
    assert_eq!((probe.width, probe.height), (640, 360));
    assert!(
        probe.frames.abs_diff(frames_sent as u64) <= 1,
        "{} frames decoded of {frames_sent}",
        probe.frames
    );
    assert_near("duration", probe.duration, frames_sent as f64 / 30.0, 0.1);
    assert_eq!(decode_errors(file), "");
}

/// The video and audio assets' frames, the recording's folder, and what the recorder left.
type Call = (Vec<Vec<u8>>, Vec<Vec<u8>>, std::path::PathBuf, Recorded);

/// Three seconds of one participant's VP8 camera and Opus microphone, recorded into
/// `dir/rec`.
fn a_vp8_and_opus_call(dir: &TempDir) -> Call {
    let video = vpx_asset(dir, "libvpx", 3);
    let audio = opus_asset(dir, 3);
    let out = dir.path("rec");
    let recorded = record(
        &out,
        vec![
            (meta("p1", RecCodec::Vp8), vp8_packets(&video)),
            (meta("p1", RecCodec::Opus), opus_packets(&audio)),
        ],
        Duration::from_millis(3_100),
    );
    (video, audio, out, recorded)
}

#[test]
fn vp8_and_opus_through_a_recorder_decode_with_ffmpeg() {
    let dir = TempDir::new("vp8-opus");
    let (video, audio, out, recorded) = a_vp8_and_opus_call(&dir);
    let manifest = &recorded.manifest;
    assert_eq!(manifest, &Manifest::read(&out).unwrap());
    assert_eq!(
        (manifest.id.as_str(), manifest.room.as_str()),
        ("rec-1", "room-abc")
    );
    let ended = manifest.ended_at_ms.unwrap() - manifest.started_at_ms;
    assert!((3_100..3_200).contains(&ended), "ended at {ended} ms");
    assert_eq!(manifest.dropped_packets, 0);

    let v = entry(manifest, Kind::Video);
    assert_eq!(
        (v.file.as_str(), v.codec),
        ("p1-video-1.webm", RecCodec::Vp8)
    );
    assert_eq!((v.width, v.height), (640, 360));
    assert!(v.start_ms < 100, "video started at {} ms", v.start_ms);
    assert!((3_100..3_200).contains(&v.end_ms.unwrap()));
    check_video(&out.join(&v.file), "vp8", video.len());

    let a = entry(manifest, Kind::Audio);
    assert_eq!(
        (a.file.as_str(), a.codec),
        ("p1-audio-1.webm", RecCodec::Opus)
    );
    assert!(a.start_ms < 100);
    let file = out.join(&a.file);
    let probe = probe(&file);
    eprintln!(
        "{}: {probe:?} ({} packets sent)",
        file.display(),
        audio.len()
    );
    assert_eq!(probe.codec, "opus");
    assert_eq!(probe.frames, audio.len() as u64);
    assert_near("duration", probe.duration, audio.len() as f64 * 0.02, 0.1);
    assert_eq!(decode_errors(&file), "");
    let samples = pcm(&file, &dir.path("tone.pcm"));
    assert_near("decoded seconds", samples.len() as f64 / 48_000.0, 3.0, 0.1);
    let hz = tone_frequency(&samples[24_000..120_000]);
    eprintln!("tone: {hz:.1} Hz");
    assert_near("tone", hz, 440.0, 3.0);
}

#[test]
fn h264_through_a_recorder_decodes_with_ffmpeg() {
    let dir = TempDir::new("h264");
    let video = h264_asset(&dir, 3);
    let out = dir.path("rec");
    let recorded = record(
        &out,
        vec![(meta("p7", RecCodec::H264), h264_packets(&video))],
        Duration::from_millis(3_050),
    );
    let v = entry(&recorded.manifest, Kind::Video);
    assert_eq!(
        (v.file.as_str(), v.codec),
        ("p7-video-1.mkv", RecCodec::H264)
    );
    assert_eq!((v.width, v.height), (640, 360));
    check_video(&out.join(&v.file), "h264", video.len());
}

#[test]
fn vp9_through_a_recorder_decodes_with_ffmpeg() {
    let dir = TempDir::new("vp9");
    let video = vpx_asset(&dir, "libvpx-vp9", 3);
    let out = dir.path("rec");
    let recorded = record(
        &out,
        vec![(meta("p3", RecCodec::Vp9), vp9_packets(&video, 640, 360))],
        Duration::from_millis(3_050),
    );
    let v = entry(&recorded.manifest, Kind::Video);
    assert_eq!(
        (v.file.as_str(), v.width, v.height),
        ("p3-video-1.webm", 640, 360)
    );
    check_video(&out.join(&v.file), "vp9", video.len());
}

#[test]
fn a_file_cut_in_its_last_cluster_still_plays_its_complete_clusters() {
    let dir = TempDir::new("cut");
    let (_, _, out, recorded) = a_vp8_and_opus_call(&dir);
    for track in &recorded.manifest.tracks {
        let data = std::fs::read(out.join(&track.file)).unwrap();
        let clusters = clusters(&data);
        assert!(clusters.len() >= 3, "{}: {clusters:?}", track.file);
        // Killed while writing cluster k (the last, and each one before it): half of it made
        // it to the disk.
        for k in 1..clusters.len() {
            let (complete, cut_one) = (&clusters[..k], clusters[k]);
            let complete_frames: usize = complete.iter().map(|c| c.blocks).sum();
            let complete_end = complete[k - 1].last_block_ms as f64 / 1_000.0;
            let cut = dir.path(&format!("cut-{k}-{}", track.file));
            std::fs::write(&cut, &data[..cut_one.offset + cut_one.len / 2]).unwrap();

            let probe = probe(&cut);
            let times = packet_times(&cut);
            let last_time = *times.last().unwrap();
            eprintln!(
                "{} cut in cluster {k} of {}: {} frames decoded ({complete_frames} in the \
                 complete clusters, {} with the cut one), last packet at {last_time} s \
                 (complete clusters end at {complete_end} s)",
                track.file,
                clusters.len(),
                probe.frames,
                complete_frames + cut_one.blocks
            );
            assert!(probe.frames as usize >= complete_frames);
            assert!((probe.frames as usize) < complete_frames + cut_one.blocks);
            assert!(last_time >= complete_end && last_time <= complete_end + 1.5);
        }
    }
}

#[test]
fn an_audio_pause_stays_a_gap_in_the_timestamps() {
    let dir = TempDir::new("pause");
    let audio = opus_asset(&dir, 3);
    let mut packets = opus_packets(&audio[..150]);
    // After 2 s the microphone pauses for 2 s: no packets, and the RTP clock runs on.
    for p in &mut packets[100..] {
        p.at += Duration::from_secs(2);
        p.rtp_ts = p.rtp_ts.wrapping_add(2 * 48_000);
    }
    let out = dir.path("rec");
    let recorded = record(
        &out,
        vec![(meta("p2", RecCodec::Opus), packets)],
        Duration::from_millis(5_100),
    );
    let file = out.join(&entry(&recorded.manifest, Kind::Audio).file);
    let times = packet_times(&file);
    assert_eq!(times.len(), 150);
    let gap = times[100] - times[99];
    eprintln!(
        "pause: packet 99 at {} s, packet 100 at {} s, last at {} s",
        times[99], times[100], times[149]
    );
    assert_near("the gap", gap, 2.02, 0.005);
    assert_near("after the gap", times[100], 4.0, 0.005);
    assert_near("the end", times[149], 4.98, 0.005);
    let steps_elsewhere = times.windows(2).filter(|w| w[1] - w[0] > 0.021).count();
    assert_eq!(steps_elsewhere, 1, "one gap, the pause");
    assert_eq!(decode_errors(&file), "");
}

#[test]
fn a_lost_video_packet_skips_to_the_next_keyframe_and_asks_for_one() {
    let dir = TempDir::new("loss");
    let video = vpx_asset(&dir, "libvpx", 3);
    let mut packets = vp8_packets(&video);
    // Lose the first packet of frame 40: frames 40 to 59 cannot decode until the keyframe
    // at frame 60 (one each second).
    let frame_40 = VIDEO_30FPS.ts_base.wrapping_add(40 * 3_000);
    let lost = packets.iter().position(|p| p.rtp_ts == frame_40).unwrap();
    packets.remove(lost);
    let out = dir.path("rec");
    let recorded = record(
        &out,
        vec![(meta("p5", RecCodec::Vp8), packets)],
        Duration::from_millis(3_050),
    );
    assert_eq!(recorded.keyframe_requested, [true]);
    let file = out.join(&entry(&recorded.manifest, Kind::Video).file);
    let probe = probe(&file);
    let times = packet_times(&file);
    eprintln!("loss: {probe:?}, {} s to {} s", times[39], times[40]);
    assert_eq!(probe.frames, 70);
    assert_eq!(decode_errors(&file), "");
    assert_near("the last frame before the loss", times[39], 1.3, 0.01);
    assert_near("the keyframe after it", times[40], 2.0, 0.01);
    assert_near("duration", probe.duration, 3.0, 0.1);
}
