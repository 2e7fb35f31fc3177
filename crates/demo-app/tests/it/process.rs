//! The demo app as a process, launched the way a node launches it: environment, stdin input,
//! stdout events, exit on end of stdin or SIGTERM (with the WHIP DELETE), an error exit code
//! when the endpoint refuses.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde_json::Value;

use crate::support::{WhipServer, TOKEN};
use orbita_demo_app::ivf::parse_vp8_header;

struct App {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<Value>,
    stderr: Receiver<String>,
    seen: Vec<Value>,
}

fn launch(env: &[(&str, &str)], args: &[&str]) -> App {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orbita-demo-app"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ORBITA_") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start orbita-demo-app");
    let stdout = child.stdout.take().unwrap();
    let (tx, events) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
            let _ = tx.send(v);
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let (tx, stderr_rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let stdin = child.stdin.take();
    App {
        child,
        stdin,
        events,
        stderr: stderr_rx,
        seen: vec![],
    }
}

impl App {
    fn wait_event(&mut self, name: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ev = self.events.recv_timeout(left).unwrap_or_else(|_| {
                let _ = self.child.kill();
                let stderr = self
                    .stderr
                    .recv_timeout(Duration::from_secs(2))
                    .unwrap_or_default();
                panic!(
                    "no {name:?} event within {within:?}; saw {:#?}\nstderr:\n{stderr}",
                    self.seen
                )
            });
            self.seen.push(ev.clone());
            if ev["event"] == name {
                return ev;
            }
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(line.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Wait for the exit (5 s at most).
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the app did not exit within 5 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn environment_launch_input_and_stdin_close() {
    let server = WhipServer::start();
    let url = server.url("4821");
    let mut app = launch(
        &[
            ("ORBITA_WHIP_URL", url.as_str()),
            ("ORBITA_WHIP_TOKEN", TOKEN),
            ("ORBITA_SESSION_CODE", "4821"),
            ("ORBITA_APP_WIDTH", "320"),
            ("ORBITA_APP_HEIGHT", "180"),
            ("ORBITA_APP_FPS", "15"),
        ],
        &["--stats-interval-ms", "300"],
    );
    let started = app.wait_event("started", Duration::from_secs(10));
    assert_eq!(
        (&started["width"], &started["height"], &started["fps"]),
        (&Value::from(320), &Value::from(180), &Value::from(15))
    );
    assert_eq!(started["session_code"], "4821");
    let published = app.wait_event("published", Duration::from_secs(10));
    assert!(published["whip_resource"]
        .as_str()
        .unwrap()
        .ends_with("/whip/4821/resource/1"));

    let media = server.take_media(0);
    let first = media
        .frames
        .recv_timeout(Duration::from_secs(10))
        .expect("a frame");
    let h = parse_vp8_header(&first.data).unwrap();
    assert!(h.keyframe);
    assert_eq!((h.width, h.height), (Some(320), Some(180)));

    app.send(r#"{"type":"touch","x":0.9,"y":0.1}"#);
    let applied = app.wait_event("input_applied", Duration::from_secs(5));
    assert_eq!(applied["input"]["type"], "touch");
    assert_eq!(applied["cursor"]["x"], 0.9);
    app.send(r#"{"type":"key","key":"ArrowLeft","down":true}"#);
    let applied = app.wait_event("input_applied", Duration::from_secs(5));
    assert!((applied["cursor"]["x"].as_f64().unwrap() - 0.85).abs() < 1e-9);
    app.send("{broken");
    app.wait_event("input_rejected", Duration::from_secs(5));
    let stats = app.wait_event("stats", Duration::from_secs(5));
    assert!(stats["frames"].is_u64() && stats["bytes"].is_u64());

    // Closing stdin ends the app cleanly, with the DELETE.
    drop(app.stdin.take());
    let status = app.wait_exit();
    assert!(status.success(), "{status}");
    let stopped = app.wait_event("stopped", Duration::from_secs(2));
    assert_eq!(stopped["reason"], "input closed");
    assert_eq!(server.deleted(), vec!["/whip/4821/resource/1".to_string()]);
}

#[test]
fn sigterm_stops_cleanly_and_flags_win_over_environment() {
    let server = WhipServer::start();
    let url = server.url("77");
    let mut app = launch(
        &[
            ("ORBITA_WHIP_URL", "http://127.0.0.1:1/nowhere"),
            ("ORBITA_WHIP_TOKEN", TOKEN),
            ("ORBITA_APP_WIDTH", "320"),
            ("ORBITA_APP_HEIGHT", "180"),
        ],
        &[
            "--whip-url",
            &url,
            "--width",
            "256",
            "--height",
            "144",
            "--fps",
            "10",
        ],
    );
    let started = app.wait_event("started", Duration::from_secs(10));
    assert_eq!(
        (&started["width"], &started["height"]),
        (&Value::from(256), &Value::from(144))
    );
    app.wait_event("published", Duration::from_secs(10));
    app.wait_event("connected", Duration::from_secs(10));
    let media = server.take_media(0);
    let first = media
        .frames
        .recv_timeout(Duration::from_secs(10))
        .expect("a frame");
    let h = parse_vp8_header(&first.data).unwrap();
    assert_eq!((h.width, h.height), (Some(256), Some(144)));

    // SAFETY: signalling our own child by its pid.
    assert_eq!(
        unsafe { libc::kill(app.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = app.wait_exit();
    assert!(status.success(), "{status}");
    let stopped = app.wait_event("stopped", Duration::from_secs(2));
    assert_eq!(stopped["reason"], "stopped");
    assert_eq!(server.deleted(), vec!["/whip/77/resource/1".to_string()]);
}

#[test]
fn a_refusal_is_an_error_exit_with_the_body() {
    let server = WhipServer::start();
    *server.shared.refuse.lock().unwrap() = Some((409, "room 12 has a publisher already".into()));
    let url = server.url("12");
    let mut app = launch(&[("ORBITA_WHIP_URL", url.as_str())], &[]);
    let status = app.wait_exit();
    assert!(!status.success(), "{status}");
    let stderr = app.stderr.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        stderr.contains("409") && stderr.contains("room 12 has a publisher already"),
        "{stderr}"
    );
    let error = app.wait_event("error", Duration::from_secs(2));
    assert!(error["error"].as_str().unwrap().contains("409"));
    assert_eq!(
        server.shared.auth_seen.lock().unwrap().as_slice(),
        [String::new()],
        "no token, no Authorization header"
    );

    // Without a WHIP URL at all: a usage error.
    let mut app = launch(&[], &[]);
    let status = app.wait_exit();
    assert!(!status.success());
    let stderr = app.stderr.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(stderr.contains("--whip-url"), "{stderr}");
}
