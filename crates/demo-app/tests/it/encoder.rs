//! The real encoder (ffmpeg + libvpx): IVF output parsed, keyframe flags and sizes checked
//! from the VP8 frame headers, keyframes forced by a new encoder generation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orbita_demo_app::encoder::{locate_ffmpeg, EncodedFrame, EncoderSettings, Vp8Encoder};
use orbita_demo_app::input::InputEvent;
use orbita_demo_app::ivf::parse_vp8_header;
use orbita_demo_app::scene::{render, I420Frame, Scene};

const W: u32 = 320;
const H: u32 = 180;

fn settings(keyframe_interval: u32, spare: bool) -> EncoderSettings {
    EncoderSettings {
        ffmpeg: locate_ffmpeg().expect("ffmpeg is needed for this test (apt-get install ffmpeg)"),
        width: W,
        height: H,
        fps: 15,
        bitrate_kbps: 400,
        keyframe_interval,
        spare,
    }
}

fn frame(n: u64) -> Arc<Vec<u8>> {
    let mut scene = Scene::default();
    scene.apply(&InputEvent::Pointer {
        x: (n as f64 * 0.07) % 1.0,
        y: 0.5,
        buttons: 0,
    });
    let mut f = I420Frame::new(W, H);
    render(&scene, n, &mut f);
    Arc::new(f.data)
}

/// Receive `count` accepted frames (with a deadline).
fn collect(enc: &mut Vp8Encoder, count: usize) -> Vec<EncodedFrame> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = vec![];
    let rx = enc.events().clone();
    while out.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("only {} of {count} frames in 10 s", out.len()));
        if let Some(f) = enc.accept(ev).expect("encoder running") {
            out.push(f);
        }
    }
    out
}

#[test]
fn encodes_vp8_with_keyframes() {
    let mut enc = Vp8Encoder::start(settings(10, true)).unwrap();
    let t0 = Instant::now();
    // Paced like the app (a full queue would drop frames).
    let mut got = vec![];
    for n in 0..24u64 {
        assert!(enc.submit(n, t0, frame(n)), "frame {n} dropped");
        got.extend(collect(&mut enc, 1));
    }
    assert_eq!(
        got.iter().map(|f| f.frame).collect::<Vec<_>>(),
        (0..24).collect::<Vec<_>>(),
        "one output per input, in order"
    );
    for f in &got {
        let h = parse_vp8_header(&f.data).expect("a VP8 frame");
        assert_eq!(h.keyframe, f.keyframe);
        assert!(h.show_frame, "no hidden (alt-ref) frames");
        if h.keyframe {
            assert_eq!((h.width, h.height), (Some(W as u16), Some(H as u16)));
        }
    }
    let keys: Vec<u64> = got.iter().filter(|f| f.keyframe).map(|f| f.frame).collect();
    assert_eq!(
        keys,
        vec![0, 10, 20],
        "a keyframe first, then every -g frames"
    );
    assert_eq!(enc.generation(), 1);

    // Forcing: the next frame is a keyframe from the spare ffmpeg process, twice.
    for (generation, first) in [(2, 24u64), (3, 28)] {
        enc.force_keyframe().unwrap();
        assert_eq!(enc.generation(), generation);
        let t = Instant::now();
        let mut after = vec![];
        for n in first..first + 4 {
            assert!(enc.submit(n, t0, frame(n)));
            after.extend(collect(&mut enc, 1));
        }
        eprintln!("generation {generation}: 4 frames in {:?}", t.elapsed());
        assert_eq!(after[0].frame, first);
        assert!(
            after[0].keyframe,
            "the first frame after force_keyframe is a keyframe"
        );
        assert!(after.iter().all(|f| f.generation == generation));
        assert!(after[1..].iter().all(|f| !f.keyframe));
    }
    enc.stop();
}

#[test]
fn forced_keyframe_without_a_spare() {
    let mut enc = Vp8Encoder::start(settings(100, false)).unwrap();
    let t0 = Instant::now();
    for n in 0..3u64 {
        assert!(enc.submit(n, t0, frame(n)));
        collect(&mut enc, 1);
    }
    enc.force_keyframe().unwrap();
    assert_eq!(enc.generation(), 2);
    assert!(enc.submit(3, t0, frame(3)));
    let f = collect(&mut enc, 1).remove(0);
    assert_eq!((f.frame, f.keyframe, f.generation), (3, true, 2));
}

#[test]
fn a_missing_ffmpeg_is_a_clear_error() {
    let mut s = settings(30, false);
    s.ffmpeg = "/nonexistent/ffmpeg".into();
    let err = Vp8Encoder::start(s)
        .err()
        .expect("cannot start")
        .to_string();
    assert!(err.contains("/nonexistent/ffmpeg"), "{err}");
}
