//! The app against a test WHIP endpoint (axum + an ICE-lite str0m `Rtc`): handshake, VP8
//! frames with a keyframe first, input that changes the decoded picture, keyframe requests,
//! DELETE at the end, and a refused publish.

use std::io::Read;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use serde_json::Value;

use crate::support::{Control, Received, WhipServer, TOKEN};
use orbita_demo_app::ivf::parse_vp8_header;
use orbita_demo_app::scene::{find_marker, read_counter, I420Frame, MARKER};
use orbita_demo_app::{run_app, AppConfig, EventSink, StopReason};

const W: u32 = 320;
const H: u32 = 180;

/// Input for the app: lines sent over a channel; dropping the sender is end of input.
struct ChannelInput {
    rx: Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl Read for ChannelInput {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.rx.recv() {
                Ok(data) => self.pending = data,
                Err(_) => return Ok(0),
            }
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

fn config(url: String, token: &str) -> AppConfig {
    let mut c = AppConfig::new(url, token);
    c.width = W;
    c.height = H;
    c.fps = 15;
    c.keyframe_interval = 100_000; // keyframes come only from the start and from requests
    c.stats_interval = Duration::from_millis(500);
    c.session_code = Some("4821".into());
    c
}

struct Running {
    input: Option<Sender<Vec<u8>>>,
    events: Receiver<Value>,
    handle: std::thread::JoinHandle<anyhow::Result<StopReason>>,
    seen: Vec<Value>,
}

fn start(config: AppConfig) -> Running {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let (tx, rx) = crossbeam_channel::unbounded();
    let (sink, events) = EventSink::channel();
    let input = ChannelInput {
        rx,
        pending: vec![],
    };
    let stop = Arc::new(AtomicBool::new(false));
    let handle = std::thread::spawn(move || run_app(config, input, sink, stop));
    Running {
        input: Some(tx),
        events,
        handle,
        seen: vec![],
    }
}

impl Running {
    fn send(&self, line: &str) {
        self.input
            .as_ref()
            .unwrap()
            .send(format!("{line}\n").into_bytes())
            .unwrap();
    }

    /// The next event named `name` (earlier ones are kept in `seen`).
    fn wait_event(&mut self, name: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = self.events.recv_timeout(left).unwrap_or_else(|_| {
                panic!("no {name:?} event within {within:?}; saw {:#?}", self.seen)
            });
            self.seen.push(ev.clone());
            if ev["event"] == name {
                return ev;
            }
            assert_ne!(ev["event"], "error", "the app failed: {ev}");
        }
    }
}

/// Receive frames until `pred` holds for the list (10 s at most).
fn frames_until(
    app: &Running,
    rx: &Receiver<Received>,
    got: &mut Vec<Received>,
    what: &str,
    pred: impl Fn(&[Received]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pred(got) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(f) => got.push(f),
            Err(_) => {
                let recent: Vec<Value> = app.events.try_iter().collect();
                let last_rtp = got
                    .last()
                    .map(|f| f.rtp_time.wrapping_sub(got[0].rtp_time) / 6000);
                panic!(
                    "timed out waiting for {what} ({} frames so far, last frame number {last_rtp:?}); \
                     app events since: {recent:#?}",
                    got.len()
                )
            }
        }
    }
}

/// Decode VP8 frames with ffmpeg into I420 pictures.
fn decode(frames: &[Received]) -> Vec<I420Frame> {
    let mut ivf = b"DKIF".to_vec();
    ivf.extend_from_slice(&0u16.to_le_bytes());
    ivf.extend_from_slice(&32u16.to_le_bytes());
    ivf.extend_from_slice(b"VP80");
    ivf.extend_from_slice(&(W as u16).to_le_bytes());
    ivf.extend_from_slice(&(H as u16).to_le_bytes());
    ivf.extend_from_slice(&90_000u32.to_le_bytes());
    ivf.extend_from_slice(&1u32.to_le_bytes());
    ivf.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    ivf.extend_from_slice(&0u32.to_le_bytes());
    for f in frames {
        ivf.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        ivf.extend_from_slice(&f.rtp_time.to_le_bytes());
        ivf.extend_from_slice(&f.data);
    }
    let dir = std::env::temp_dir().join(format!("orbita-demo-app-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("received.ivf");
    std::fs::write(&path, &ivf).unwrap();
    let ffmpeg = orbita_demo_app::encoder::locate_ffmpeg().unwrap();
    let out = std::process::Command::new(ffmpeg)
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(&path)
        .args([
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-fps_mode",
            "passthrough",
            "-",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "ffmpeg decode failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let len = I420Frame::len_for(W, H);
    out.stdout
        .chunks_exact(len)
        .map(|c| I420Frame {
            width: W,
            height: H,
            data: c.to_vec(),
        })
        .collect()
}

#[test]
fn publishes_vp8_and_reacts_to_input() {
    let server = WhipServer::start();
    let mut app = start(config(server.url("4821"), TOKEN));

    let started = app.wait_event("started", Duration::from_secs(5));
    assert_eq!(started["session_code"], "4821");
    let published = app.wait_event("published", Duration::from_secs(10));
    let resource = published["whip_resource"].as_str().unwrap().to_string();
    assert_eq!(
        resource,
        format!("http://{}/whip/4821/resource/1", server.addr),
        "relative Location resolved against the WHIP URL"
    );
    assert_eq!(
        server.shared.auth_seen.lock().unwrap().as_slice(),
        [format!("Bearer {TOKEN}")]
    );
    let media = server.take_media(0);
    media
        .connected
        .recv_timeout(Duration::from_secs(10))
        .expect("ICE + DTLS connected");
    app.wait_event("connected", Duration::from_secs(5));

    // Frames arrive, a keyframe first, 320x180.
    let mut got = vec![];
    frames_until(&app, &media.frames, &mut got, "5 frames", |g| g.len() >= 5);
    let first = parse_vp8_header(&got[0].data).expect("VP8");
    assert!(first.keyframe, "the first frame is a keyframe");
    assert_eq!(
        (first.width, first.height),
        (Some(W as u16), Some(H as u16))
    );
    assert!(got[1..]
        .iter()
        .all(|f| !parse_vp8_header(&f.data).unwrap().keyframe));
    // RTP time advances by 90000/15 per frame.
    assert_eq!(got[1].rtp_time.wrapping_sub(got[0].rtp_time), 6000);

    // Input: bad lines are reported, good ones applied.
    app.send("this is not json");
    let rejected = app.wait_event("input_rejected", Duration::from_secs(5));
    assert!(rejected["error"]
        .as_str()
        .unwrap()
        .contains("not an input event"));
    app.send(r#"{"type":"pointer","x":0.2,"y":0.3,"buttons":0}"#);
    let a = app.wait_event("input_applied", Duration::from_secs(5));
    assert_eq!(a["input"]["type"], "pointer");
    assert_eq!(a["input"]["x"], 0.2);
    let frame_a = a["frame"].as_u64().unwrap();
    // Frame numbers from RTP time (frame 0 was the first sent): a loaded machine may drop
    // frames before the encoder, so counting received frames would not do.
    let first_rtp = got[0].rtp_time;
    let last_no = move |g: &[Received]| (g.last().unwrap().rtp_time - first_rtp) / 6000;
    frames_until(&app, &media.frames, &mut got, "frames after input A", |g| {
        last_no(g) > frame_a + 5
    });
    app.send(r#"{"type":"pointer","x":0.8,"y":0.7,"buttons":0}"#);
    let b = app.wait_event("input_applied", Duration::from_secs(5));
    let frame_b = b["frame"].as_u64().unwrap();
    assert!(frame_b > frame_a);
    assert_eq!(b["cursor"]["x"], 0.8);
    frames_until(&app, &media.frames, &mut got, "frames after input B", |g| {
        last_no(g) > frame_b + 5
    });

    // A keyframe request (PLI) is answered with a keyframe.
    let before = got.len();
    media.control.send(Control::RequestKeyframe).unwrap();
    frames_until(&app, &media.frames, &mut got, "a requested keyframe", |g| {
        g[before..]
            .iter()
            .any(|f| parse_vp8_header(&f.data).unwrap().keyframe)
    });
    frames_until(&app, &media.frames, &mut got, "frames after it", |g| {
        g.len() >= before + 8
    });

    // Stats count what was sent.
    let stats = loop {
        // Events queue up: skip the stats written before these frames were sent.
        let stats = app.wait_event("stats", Duration::from_secs(3));
        if stats["frames"].as_u64().unwrap() >= got.len() as u64 {
            break stats;
        }
    };
    assert!(stats["frames"].as_u64().unwrap() >= 10, "{stats}");
    assert!(stats["bytes"].as_u64().unwrap() > 1000, "{stats}");
    assert!(stats["keyframe_requests"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["keyframes"].as_u64().unwrap() >= 2, "{stats}");

    // The decoded pictures show the cursor where the input put it, from the frame the
    // input_applied event named.
    // Loopback loses nothing unless the machine is starved (a full socket buffer): then
    // only frames from a keyframe after the loss on are decodable.
    let mut decodable = vec![];
    let mut ok = true;
    for f in &got {
        if !f.contiguous {
            ok = false;
        }
        if parse_vp8_header(&f.data).unwrap().keyframe {
            ok = true;
        }
        if ok {
            decodable.push(f.clone());
        }
    }
    let lossy = decodable.len() < got.len();
    if lossy {
        let gaps: Vec<usize> = (0..got.len()).filter(|&i| !got[i].contiguous).collect();
        eprintln!("non-contiguous frames at {gaps:?}");
        eprintln!(
            "{} of {} frames lost or undecodable",
            got.len() - decodable.len(),
            got.len()
        );
    }
    let pictures = decode(&decodable);
    assert_eq!(pictures.len(), decodable.len(), "every frame decodes");
    let mut checked = (0, 0);
    for p in &pictures {
        let n = read_counter(p);
        let expect = if n > frame_b {
            Some((0.8, 0.7))
        } else if n > frame_a && n < frame_b {
            Some((0.2, 0.3))
        } else {
            None
        };
        let Some((x, y)) = expect else { continue };
        let (mx, my) =
            find_marker(p, MARKER).unwrap_or_else(|| panic!("no marker in decoded frame {n}"));
        let (ex, ey) = (x * f64::from(W - 1), y * f64::from(H - 1));
        assert!(
            (mx - ex).abs() < 8.0 && (my - ey).abs() < 8.0,
            "frame {n}: marker at ({mx:.0}, {my:.0}), expected ({ex:.0}, {ey:.0})"
        );
        if x < 0.5 {
            checked.0 += 1;
        } else {
            checked.1 += 1;
        }
    }
    if lossy {
        // The requested keyframe comes after input B: at least those frames decode.
        assert!(checked.1 >= 3, "checked {checked:?} frames");
    } else {
        assert!(
            checked.0 >= 3 && checked.1 >= 3,
            "checked {checked:?} frames"
        );
    }
    // The counter read back matches the order frames were sent in.
    let counters: Vec<u64> = pictures.iter().map(read_counter).collect();
    assert!(counters.windows(2).all(|w| w[1] > w[0]), "{counters:?}");

    // End of input: clean stop, DELETE of the resource.
    drop(app.input.take());
    let stopped = app.wait_event("stopped", Duration::from_secs(5));
    assert_eq!(stopped["reason"], "input closed");
    let reason = app.handle.join().unwrap().unwrap();
    assert_eq!(reason, StopReason::InputClosed);
    assert_eq!(server.deleted(), vec!["/whip/4821/resource/1".to_string()]);
}

#[test]
fn a_refused_publish_is_an_error_with_the_body() {
    let server = WhipServer::start();
    *server.shared.refuse.lock().unwrap() = Some((403, "session 4821 is over".into()));
    let mut app = start(config(server.url("4821"), TOKEN));
    let err = app.wait_event("error", Duration::from_secs(10));
    let text = err["error"].as_str().unwrap();
    assert!(
        text.contains("403") && text.contains("session 4821 is over"),
        "{text}"
    );
    let result = app.handle.join().unwrap();
    let e = result.expect_err("refusal is an error");
    assert!(format!("{e:#}").contains("403"));
    assert!(server.deleted().is_empty(), "nothing to delete");

    // A wrong token is refused by this endpoint too.
    let server = WhipServer::start();
    let app = start(config(server.url("1"), "wrong"));
    let e = app.handle.join().unwrap().expect_err("401");
    assert!(format!("{e:#}").contains("401"), "{e:#}");
}
