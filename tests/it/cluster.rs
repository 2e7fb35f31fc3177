//! The cluster end to end: `orbita coordinator` and two `orbita node`s as separate processes
//! on loopback (kernel-chosen ports), a client on the coordinator's WebSocket, bots in the
//! sessions.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{orbita_command, word_after, Proc, Ws, LOOPBACK_MEDIA_ARGS, MEDIA_TIMEOUT};
use futures_util::{SinkExt, StreamExt};
use orbita_bot::{Bot, BotOptions};
use orbita_protocol::MediaKind;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "test-cluster-secret";
const HEARTBEAT_TIMEOUT_SECS: u64 = 3;
const MAX_MISSES: u32 = 4;
/// How soon a process must exit after SIGTERM.
const STOP_WITHIN: Duration = Duration::from_secs(10);

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "orbita-cluster-test-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn start_coordinator() -> (Proc, String) {
    start_coordinator_with(&[])
}

/// [`start_coordinator`] with more flags.
fn start_coordinator_with(extra: &[&str]) -> (Proc, String) {
    let args: Vec<String> = [
        "coordinator",
        "--listen-addr",
        "127.0.0.1:0",
        "--cluster-secret",
        SECRET,
        "--heartbeat-interval-secs",
        "1",
        "--heartbeat-timeout-secs",
        &HEARTBEAT_TIMEOUT_SECS.to_string(),
        "--code-max-misses",
        &MAX_MISSES.to_string(),
        "--set",
        "code_attempts_per_second=100",
        "--set",
        "code_attempt_burst=100",
        "--set",
        "node_reply_timeout_secs=5",
        // These tests create sessions without accounts (tests/accounts*.rs and the roles
        // matrix cover the logins).
        "--set",
        "guests_may_create=true",
    ]
    .iter()
    .chain(extra)
    .map(|s| s.to_string())
    .collect();
    let mut proc = Proc::start("coordinator", &args);
    let line = proc.wait_line("orbita coordinator listening on");
    let url = word_after(&line, "listening on ").to_string();
    assert!(
        url.starts_with("ws://127.0.0.1:") && url.ends_with("/coordinator"),
        "{line}"
    );
    let base = url.trim_end_matches("/coordinator").to_string();
    (proc, base)
}

/// `orbita` with `first` (the subcommand and its own flags) and loopback media settings with
/// kernel-chosen ports; returns the process and its HTTP address once it listens.
/// A secret of the server's environment that a session's app must not see.
const APP_MUST_NOT_SEE: &str = "turn-secret-apps-must-not-see";

fn start_media_server(name: &str, first: &[&str]) -> (Proc, String) {
    start_media_server_with_env(name, first, &[])
}

/// [`start_media_server`] with more environment variables.
fn start_media_server_with_env(name: &str, first: &[&str], env: &[(&str, &str)]) -> (Proc, String) {
    let args: Vec<&str> = first
        .iter()
        .chain(&LOOPBACK_MEDIA_ARGS)
        .chain(&["--empty-room-grace-secs", "1"])
        .copied()
        .collect();
    let mut cmd = orbita_command(&args);
    cmd.envs(env.iter().copied());
    let mut proc = Proc::spawn(name, cmd);
    let line = proc.wait_line("orbita listening on");
    let addr = word_after(&line, "listening on http://").to_string();
    (proc, addr)
}

/// A node with `max_sessions` for app "demo" (and a plain room app); returns its HTTP port.
fn start_node(
    dir: &std::path::Path,
    name: &str,
    coordinator: &str,
    max_sessions: u32,
) -> (Proc, String) {
    start_node_with(dir, name, coordinator, max_sessions, &[])
}

/// [`start_node`] with more flags.
fn start_node_with(
    dir: &std::path::Path,
    name: &str,
    coordinator: &str,
    max_sessions: u32,
    extra: &[&str],
) -> (Proc, String) {
    let config = dir.join(format!("{name}.json"));
    std::fs::write(
        &config,
        json!({
            "server_name": name,
            "coordinator_url": format!("{coordinator}/coordinator/node"),
            "cluster_secret": SECRET,
            "max_sessions": max_sessions.to_string(),
            "apps": [
                {"rc_name": "demo", "command": ["sleep", "600"],
                 "info": {"description": [{"en": "a demo"}, {"ru": "демо"}]}}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let mut args = vec!["node", "--node-config", config.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (proc, addr) = start_media_server(name, &args);
    let port = addr.rsplit_once(':').unwrap().1.to_string();
    (proc, port)
}

/// A coordinator client that keeps messages it was not waiting for.
struct Client {
    ws: Ws,
    user_id: String,
    kept: Vec<Value>,
}

impl Client {
    async fn connect(base: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("{base}/coordinator"))
            .await
            .expect("client connects");
        let mut c = Client {
            ws,
            user_id: String::new(),
            kept: Vec::new(),
        };
        let welcome = c
            .wait(|v| v["msg"] == "WELCOME", Duration::from_secs(5))
            .await;
        c.user_id = welcome["user_id"].as_str().unwrap().to_string();
        c
    }

    async fn send(&mut self, v: Value) {
        self.ws
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    /// The first message (kept earlier, or new) that `pred` accepts.
    async fn wait(&mut self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        if let Some(i) = self.kept.iter().position(&pred) {
            return self.kept.remove(i);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("timed out; kept: {:?}", self.kept));
            match next {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    if pred(&v) {
                        return v;
                    }
                    self.kept.push(v);
                }
                Some(Ok(_)) => {}
                other => panic!("client connection ended: {other:?}"),
            }
        }
    }

    /// Send a request and wait for an answer that is not a notice (`SESSION_ENDED`,
    /// `SESSION_CONNECTION_ESTABLISHED`).
    async fn request(&mut self, v: Value) -> Value {
        self.send(v).await;
        self.wait(
            |v| v["msg"] != "SESSION_ENDED" && v["msg"] != "SESSION_CONNECTION_ESTABLISHED",
            Duration::from_secs(15),
        )
        .await
    }
}

async fn join(port: &str, code: &str, name: &str) -> Bot {
    let opts = BotOptions::new(format!("ws://127.0.0.1:{port}/ws"), code, name);
    Bot::join(opts)
        .await
        .unwrap_or_else(|e| panic!("{name} joins {code} on :{port}: {e:#}"))
}

/// Wait until `bot` is told that its call is recorded.
async fn told_recorded(bot: &Bot) {
    let on = orbita_bot::RoomEventKind::Recording {
        state: orbita_protocol::RecordingState::On,
    };
    bot.wait_for(|s| s.has_event(&on), MEDIA_TIMEOUT)
        .await
        .expect("told that the call is recorded");
}

async fn receives_media_from(bot: &Bot, other: &str) {
    bot.wait_for(
        |s| {
            let audio = s
                .tracks
                .iter()
                .any(|t| t.participant_id == other && t.kind == MediaKind::Audio && t.frames >= 10);
            let video = s.tracks.iter().any(|t| {
                t.participant_id == other
                    && t.kind == MediaKind::Video
                    && t.frames >= 10
                    && t.keyframes >= 1
            });
            audio && video
        },
        MEDIA_TIMEOUT,
    )
    .await
    .unwrap_or_else(|e| panic!("{} did not receive {other}'s media: {e}", bot.name()));
}

/// A coordinator and two nodes as processes: placement until `SERVERS_BUSY`, join by code
/// routed to the node holding the session, bots exchanging media there, a session ending when
/// everyone left, a killed node's sessions ending within the heartbeat timeout with new
/// sessions going to the other node, and code guessing cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_and_two_nodes() {
    let dir = temp_dir();
    let (mut coordinator, base) = start_coordinator();
    // With no administrator, the coordinator prints a one-time setup link; its token makes
    // the administrator through the coordinator's own /api/setup, once.
    let line = coordinator.wait_line("No administrator yet");
    let token = word_after(&line, "/setup?token=").to_string();
    assert_eq!(token.len(), 64, "{line}");
    let setup = format!("{}/api/setup", base.replacen("ws://", "http://", 1));
    let body =
        json!({"token": token, "email": "admin@example.com", "password": "a long enough password"});
    let http = crate::support::http();
    let made = http.post(&setup).json(&body).send().await.unwrap();
    assert_eq!(made.status(), 201);
    let again = http.post(&setup).json(&body).send().await.unwrap();
    assert_eq!(again.status(), 410, "the link works once");
    let (mut node_a, port_a) = start_node(&dir, "node-a", &base, 2);
    let (mut node_b, port_b) = start_node(&dir, "node-b", &base, 1);
    let node_of_port: HashMap<String, &str> =
        [(port_a.clone(), "node-a"), (port_b.clone(), "node-b")]
            .into_iter()
            .collect();

    // Both nodes registered: the catalogue lists "demo" on each.
    let mut creator = Client::connect(&base).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = creator
            .request(json!({"verb":"GET_SERVERS","range":"0-9"}))
            .await;
        let names: HashSet<String> = found["servers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s["server_name"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if names.len() == 2 {
            let first = &found["servers"][0];
            assert_eq!(first["rc_info"]["rc_name"], "demo", "{found}");
            assert_eq!(
                first["rc_info"]["info"]["description"][0]["en"], "a demo",
                "{found}"
            );
            assert_eq!(first["ip"], "127.0.0.1", "{found}");
            break;
        }
        assert!(Instant::now() < deadline, "nodes did not register: {found}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Sessions until SERVERS_BUSY: A holds 2, B holds 1.
    let mut sessions: HashMap<String, String> = HashMap::new(); // code -> port
    for _ in 0..3 {
        let answer = creator
            .request(json!({"verb":"CREATE_SESSION","rc_name":"demo"}))
            .await;
        assert_eq!(answer["verb"], "CONNECT_TO_SESSION", "{answer}");
        assert_eq!(answer["ip"], "127.0.0.1", "{answer}");
        let code = answer["code"].as_str().unwrap().to_string();
        assert_eq!(code.len(), 4, "{answer}");
        let port = answer["port"].as_str().unwrap().to_string();
        assert!(node_of_port.contains_key(&port), "{answer}");
        let established = creator
            .wait(
                |v| v["msg"] == "SESSION_CONNECTION_ESTABLISHED" && v["code"] == code.as_str(),
                Duration::from_secs(10),
            )
            .await;
        assert_eq!(
            established["WebRTC_connection_data"],
            format!("http://127.0.0.1:{port}/r/{code}"),
            "{established}"
        );
        sessions.insert(code, port);
    }
    let busy = creator
        .request(json!({"verb":"CREATE_SESSION","rc_name":"demo"}))
        .await;
    assert_eq!(busy, json!({"msg":"SERVERS_BUSY"}));
    let on = |port: &str| sessions.values().filter(|p| p.as_str() == port).count();
    assert_eq!(
        (on(&port_a), on(&port_b)),
        (2, 1),
        "placement: {sessions:?}"
    );

    // Join by code from another client: routed to the node that holds each session.
    let mut joiner = Client::connect(&base).await;
    for (code, port) in &sessions {
        let answer = joiner
            .request(json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}))
            .await;
        assert_eq!(
            answer,
            json!({"verb":"CONNECT_TO_SESSION","ip":"127.0.0.1","port":port,"code":code})
        );
        let established = joiner
            .wait(
                |v| v["msg"] == "SESSION_CONNECTION_ESTABLISHED" && v["code"] == code.as_str(),
                Duration::from_secs(10),
            )
            .await;
        assert_eq!(
            established["WebRTC_connection_data"],
            format!("http://127.0.0.1:{port}/r/{code}")
        );
    }
    let unknown = (0..10_000)
        .map(|n| format!("{n:04}"))
        .find(|c| !sessions.contains_key(c))
        .unwrap();
    assert_eq!(
        joiner
            .request(json!({"verb":"CONNECT_SESSION_WITH_CODE","code":unknown}))
            .await,
        json!({"msg":"SESSION_NOT_EXIST"})
    );

    // Two bots in a session of node A (reached by its code on the address the coordinator
    // gave) exchange media; when both left, the session ends and the clients are told.
    let code_a = sessions
        .iter()
        .find(|(_, p)| **p == port_a)
        .unwrap()
        .0
        .clone();
    let mut alice = join(&port_a, &code_a, "alice").await;
    let mut bob = join(&port_a, &code_a, "bob").await;
    receives_media_from(&alice, bob.participant_id()).await;
    receives_media_from(&bob, alice.participant_id()).await;
    alice.leave().await.unwrap();
    bob.leave().await.unwrap();
    let ended = creator
        .wait(
            |v| v["msg"] == "SESSION_ENDED" && v["code"] == code_a.as_str(),
            Duration::from_secs(15),
        )
        .await;
    assert_eq!(ended["reason"], "empty", "{ended}");
    sessions.remove(&code_a);

    // Node B dies: its session ends within the heartbeat timeout (plus the sweep).
    let code_b = sessions
        .iter()
        .find(|(_, p)| **p == port_b)
        .unwrap()
        .0
        .clone();
    let killed = Instant::now();
    node_b.kill();
    let ended = creator
        .wait(
            |v| v["msg"] == "SESSION_ENDED" && v["code"] == code_b.as_str(),
            Duration::from_secs(HEARTBEAT_TIMEOUT_SECS + 10),
        )
        .await;
    assert_eq!(ended["reason"], "node_down", "{ended}");
    assert!(
        killed.elapsed() <= Duration::from_secs(HEARTBEAT_TIMEOUT_SECS + 3),
        "ended after {:?}",
        killed.elapsed()
    );
    sessions.remove(&code_b);
    assert_eq!(
        joiner
            .request(json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code_b}))
            .await,
        json!({"msg":"SESSION_NOT_EXIST"})
    );

    // New sessions go to node A, until it is full again.
    let answer = creator
        .request(json!({"verb":"CREATE_SESSION","rc_name":"demo"}))
        .await;
    assert_eq!(answer["verb"], "CONNECT_TO_SESSION", "{answer}");
    assert_eq!(answer["port"], port_a.as_str(), "{answer}");
    let new_code = answer["code"].as_str().unwrap().to_string();
    sessions.insert(new_code.clone(), port_a.clone());
    assert_eq!(
        creator
            .request(json!({"verb":"CREATE_SESSION","rc_name":"demo"}))
            .await,
        json!({"msg":"SERVERS_BUSY"})
    );
    // And a bot reaches the new session by its code.
    let mut carol = join(&port_a, &new_code, "carol").await;
    carol.leave().await.unwrap();

    // The session of node A nobody joined lives on.
    let live_a = sessions
        .iter()
        .find(|(c, p)| **p == port_a && **c != new_code)
        .unwrap()
        .0
        .clone();

    // Guessing from one address: MAX_MISSES wrong codes (two were missed above, by the
    // joiner on this address), then locked out, even for a right code.
    let mut guesser = Client::connect(&base).await;
    let wrong: Vec<String> = (0..10_000)
        .map(|n| format!("{n:04}"))
        .filter(|c| !sessions.contains_key(c) && *c != code_a && *c != code_b)
        .take(MAX_MISSES as usize - 2)
        .collect();
    for code in &wrong {
        assert_eq!(
            guesser
                .request(json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}))
                .await,
            json!({"msg":"SESSION_NOT_EXIST"})
        );
    }
    let locked = guesser
        .request(json!({"verb":"CONNECT_SESSION_WITH_CODE","code":live_a}))
        .await;
    assert_eq!(locked["msg"], "ERROR", "{locked}");
    assert_eq!(locked["code"], "LOCKED_OUT", "{locked}");

    // A clean stop of node A ends its session (and its app) and tells the coordinator.
    node_a.stop(STOP_WITHIN);
    let ended = creator
        .wait(
            |v| v["msg"] == "SESSION_ENDED" && v["code"] == live_a.as_str(),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(ended["reason"], "node_shutdown", "{ended}");
    coordinator.stop(STOP_WITHIN);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The processes whose parent is `parent` and whose command line contains `needle`.
fn children_with(parent: u32, needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if ppid == Some(parent) && String::from_utf8_lossy(&cmdline).contains(needle) {
            found.push(pid);
        }
    }
    found
}

/// The next `input_applied` event of the demo app on the server's stdout, if one comes
/// within `timeout`.
fn next_input_applied(server: &mut Proc, timeout: Duration) -> Option<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = server.lines.recv_timeout(left).ok()?;
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["event"] == "input_applied" {
                return Some(v);
            }
        }
    }
}

async fn control_is(bot: &Bot, holder: &str) {
    bot.wait_for(|s| s.control_holder() == Some(holder), MEDIA_TIMEOUT)
        .await
        .unwrap_or_else(|e| panic!("{}: control never went to {holder}: {e}", bot.name()));
}

/// `orbita serve` (coordinator and node in one process) with its default catalogue: the home
/// page's verbs list the apps; CREATE_SESSION for the demo app launches it; a bot sees its
/// video; only the controller's input reaches the app; control is handed over; everyone
/// leaving ends the session and stops the app process; a crashed app ends its session and
/// the participants are told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_in_one_app_session() {
    let data = std::env::temp_dir().join(format!("orbita-cluster-serve-{}", std::process::id()));
    let data_dir = data.display().to_string();
    // The server holds a secret (its TURN relays'), which its apps must not inherit.
    let (mut server, addr) = start_media_server_with_env(
        "serve",
        &[
            "serve",
            "--guests-may-create",
            "--data-dir",
            &data_dir,
            "--turn-urls",
            "turn:127.0.0.1:3478",
        ],
        &[("ORBITA_TURN_SECRET", APP_MUST_NOT_SEE)],
    );
    let port = addr.rsplit_once(':').unwrap().1.to_string();
    let base = format!("ws://{addr}");

    // The catalogue, as the home page asks for it.
    let mut client = Client::connect(&base).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let apps: Vec<Value> = loop {
        let found = client
            .request(json!({"verb":"GET_SERVERS","range":"0-9"}))
            .await;
        if let Some(list) = found["servers"].as_array().filter(|l| l.len() == 2) {
            break list.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the local node did not register: {found}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let names: Vec<&str> = apps
        .iter()
        .map(|a| a["rc_info"]["rc_name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"demo") && names.contains(&"video-room"),
        "{apps:?}"
    );
    let demo = apps
        .iter()
        .find(|a| a["rc_info"]["rc_name"] == "demo")
        .unwrap();
    let descriptions = &demo["rc_info"]["info"]["description"];
    for (i, lang) in ["en", "ru", "kk"].iter().enumerate() {
        assert!(
            descriptions[i][lang]
                .as_str()
                .is_some_and(|d| !d.is_empty()),
            "{demo}"
        );
    }

    // Start the demo app's session; its creator joins first and holds control.
    let answer = client
        .request(json!({"verb":"CREATE_SESSION","rc_name":"demo"}))
        .await;
    assert_eq!(answer["verb"], "CONNECT_TO_SESSION", "{answer}");
    assert_eq!(answer["port"], port.as_str(), "{answer}");
    let code = answer["code"].as_str().unwrap().to_string();
    let app_pids = children_with(server.id(), "demo-app");
    assert_eq!(app_pids.len(), 1, "one demo app process: {app_pids:?}");
    // The app's environment: what a program needs and its session, none of the server's.
    let environ = std::fs::read(format!("/proc/{}/environ", app_pids[0])).unwrap();
    let vars: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    let keys: Vec<&str> = vars.iter().filter_map(|v| v.split('=').next()).collect();
    for key in [
        "PATH",
        "ORBITA_WHIP_URL",
        "ORBITA_WHIP_TOKEN",
        "ORBITA_SESSION_CODE",
    ] {
        assert!(keys.contains(&key), "{key} missing: {keys:?}");
    }
    let app_vars = [
        "ORBITA_WHIP_URL",
        "ORBITA_WHIP_TOKEN",
        "ORBITA_SESSION_CODE",
        "ORBITA_RC_NAME",
    ];
    for key in &keys {
        assert!(
            orbita_server::cluster::node::app_inherits(key) || app_vars.contains(key),
            "the app inherited {key}: {keys:?}"
        );
    }
    assert!(
        !vars.iter().any(|v| v.contains(APP_MUST_NOT_SEE)),
        "the app sees the server's secret"
    );
    let viewer = |name: &str| {
        let mut o = BotOptions::new(format!("ws://{addr}/ws"), &code, name);
        o.publish_audio = false;
        o.publish_video = false;
        o
    };
    let alice = Bot::join(viewer("alice")).await.expect("alice joins");
    let alice_id = alice.participant_id().to_string();
    control_is(&alice, &alice_id).await;
    // The app's video reaches her: frames and keyframes from the one publisher (the app).
    alice
        .wait_for(
            |s| {
                s.tracks
                    .iter()
                    .any(|t| t.kind == MediaKind::Video && t.frames >= 15 && t.keyframes >= 1)
            },
            MEDIA_TIMEOUT,
        )
        .await
        .expect("alice receives the app's video");

    // The controller's pointer reaches the app, which says which frame shows it.
    alice
        .send(orbita_protocol::ClientMsg::Input {
            event: json!({"type":"pointer","x":0.25,"y":0.5,"buttons":1}),
        })
        .unwrap();
    let applied = next_input_applied(&mut server, Duration::from_secs(10))
        .expect("the app applied alice's input");
    assert_eq!(applied["input"]["x"], 0.25, "{applied}");
    assert_eq!(applied["cursor"]["x"], 0.25, "{applied}");

    // Bob does not hold control: his input is refused and never reaches the app.
    let bob = Bot::join(viewer("bob")).await.expect("bob joins");
    let bob_id = bob.participant_id().to_string();
    control_is(&bob, &alice_id).await;
    bob.send(orbita_protocol::ClientMsg::Input {
        event: json!({"type":"pointer","x":0.9,"y":0.9}),
    })
    .unwrap();
    bob.wait_for(
        |s| {
            s.errors_with(orbita_protocol::ErrorCode::NotAllowed)
                .count()
                >= 1
        },
        Duration::from_secs(5),
    )
    .await
    .expect("bob's input is refused");
    assert!(
        next_input_applied(&mut server, Duration::from_secs(1)).is_none(),
        "a non-controller's input reached the app"
    );

    // Alice hands control to Bob: both see it; now his input counts and hers does not.
    alice
        .send(orbita_protocol::ClientMsg::GiveControl { to: bob_id.clone() })
        .unwrap();
    control_is(&alice, &bob_id).await;
    control_is(&bob, &bob_id).await;
    bob.send(orbita_protocol::ClientMsg::Input {
        event: json!({"type":"key","key":"ArrowLeft","down":true}),
    })
    .unwrap();
    let applied = next_input_applied(&mut server, Duration::from_secs(10))
        .expect("the app applied bob's input");
    assert_eq!(applied["input"]["key"], "ArrowLeft", "{applied}");
    alice
        .send(orbita_protocol::ClientMsg::Input {
            event: json!({"type":"pointer","x":0.1,"y":0.1}),
        })
        .unwrap();
    alice
        .wait_for(
            |s| {
                s.errors_with(orbita_protocol::ErrorCode::NotAllowed)
                    .count()
                    >= 1
            },
            Duration::from_secs(5),
        )
        .await
        .expect("alice's input is refused once she gave control away");

    // Everyone leaves: the session ends (1 s grace), its app process stops, its code is free.
    for mut bot in [alice, bob] {
        bot.leave().await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while !children_with(server.id(), "demo-app").is_empty() {
        assert!(Instant::now() < deadline, "the app outlived its session");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The node's SESSION_ENDED reaches the coordinator over the node link, behind the call
    // events of the same moment (the leaves, the call's end): the code stops working once the
    // coordinator has it, not at the instant the app process is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let gone = client
            .request(json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}))
            .await;
        if gone == json!({"msg":"SESSION_NOT_EXIST"}) {
            break;
        }
        assert_eq!(gone["verb"], "CONNECT_TO_SESSION", "{gone}");
        assert!(
            Instant::now() < deadline,
            "the ended session's code still works: {gone}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A crashed app: the participant is told and the session ends.
    let answer = client
        .request(json!({"verb":"CREATE_SESSION","rc_name":"demo"}))
        .await;
    let code = answer["code"].as_str().unwrap().to_string();
    let mut carol = Bot::join(BotOptions {
        publish_audio: false,
        publish_video: false,
        ..BotOptions::new(format!("ws://{addr}/ws"), &code, "carol")
    })
    .await
    .expect("carol joins");
    let pids = children_with(server.id(), "demo-app");
    assert_eq!(pids.len(), 1, "{pids:?}");
    unsafe {
        libc::kill(pids[0] as libc::pid_t, libc::SIGKILL);
    }
    carol
        .wait_for(
            |s| {
                s.events
                    .iter()
                    .any(|e| matches!(e.kind, orbita_bot::stats::RoomEventKind::AppStopped { .. }))
            },
            Duration::from_secs(10),
        )
        .await
        .expect("carol is told the app stopped");
    let ended = client
        .wait(
            |v| v["msg"] == "SESSION_ENDED" && v["code"] == code.as_str(),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(ended["reason"], "app_crashed", "{ended}");
    let _ = carol.leave().await;
    server.stop(STOP_WITHIN);
    let _ = std::fs::remove_dir_all(&data);
}

// ------------------------------------------------------------------ media server roles

#[path = "../../crates/coordinator/tests/it/support/roles_doc.rs"]
mod roles_doc;
use roles_doc::{roles_table, CALLERS as ROLE_CALLERS};

/// The media server's table of docs/roles.md.
fn media_server_matrix() -> Vec<(String, Vec<String>)> {
    let rows = roles_table(include_str!("../../docs/roles.md"), "media server call");
    assert!(
        rows.len() >= 4,
        "the media server table of docs/roles.md: {rows:?}"
    );
    rows
}

/// `orbita serve` on a fresh data directory whose first administrator was made with
/// `orbita admin create-user`; returns it, its address and the administrator's password.
pub(crate) fn serve_with_admin(extra: &[&str]) -> (Proc, String, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "orbita-roles-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let password_file = dir.join("admin-password");
    std::fs::write(&password_file, "admin-password-1\n").unwrap();
    let data = dir.join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_orbita"))
        .args(["admin", "--data-dir"])
        .arg(&data)
        .args([
            "create-user",
            "--email",
            "root@orbita.test",
            "--password-file",
        ])
        .arg(&password_file)
        .output()
        .expect("orbita admin runs");
    assert!(
        out.status.success(),
        "orbita admin create-user: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data_dir = data.display().to_string();
    let mut args = vec!["serve", "--data-dir", &data_dir];
    args.extend_from_slice(extra);
    let (server, addr) = start_media_server("serve", &args);
    (server, addr, dir)
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Bearer tokens of the five callers (None: no login) on a server made by
/// [`serve_with_admin`]: accounts signed up through the API and approved by the admin.
async fn role_tokens(http: &reqwest::Client, base: &str) -> Vec<Option<String>> {
    let login = |email: &str, password: &str| {
        http.post(format!("{base}/api/auth/login"))
            .json(&json!({"email": email, "password": password, "token": true}))
            .send()
    };
    let answer = login("root@orbita.test", "admin-password-1").await.unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    let admin: Value = answer.json().await.unwrap();
    let admin = admin["token"].as_str().expect("a token").to_string();
    let mut tokens = vec![None];
    for who in ["agent", "supervisor", "pending"] {
        let email = format!("{who}@orbita.test");
        let password = format!("{who}-password-1");
        let answer = http
            .post(format!("{base}/api/auth/signup"))
            .json(&json!({"email": email, "password": password, "name": who}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 201, "{:?}", answer.text().await);
        let user: Value = answer.json().await.unwrap();
        if who == "pending" {
            let answer = login(&email, &password).await.unwrap();
            assert_eq!(
                answer.status().as_u16(),
                403,
                "a pending account cannot log in"
            );
            continue;
        }
        let id = user["user"]["id"].as_i64().expect("the new user's id");
        let answer = http
            .post(format!("{base}/api/admin/users/{id}/approve"))
            .bearer_auth(&admin)
            .json(&json!({"role": who}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200, "{:?}", answer.text().await);
        let answer = login(&email, &password).await.unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        let v: Value = answer.json().await.unwrap();
        tokens.push(Some(v["token"].as_str().unwrap().to_string()));
    }
    tokens.push(Some(admin));
    // Order of ROLE_CALLERS: guest, agent, supervisor, admin, pending (no login).
    vec![
        tokens[0].clone(),
        tokens[1].clone(),
        tokens[2].clone(),
        tokens[3].clone(),
        None,
    ]
}

/// A `join` on the media server's WebSocket as `token`'s account (or none): "ok" when joined,
/// else the error code.
async fn ws_join(addr: &str, code: &str, token: Option<&str>) -> String {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let join = json!({"type": "join", "v": 1, "code": code, "name": "matrix"});
    ws.send(Message::Text(join.to_string().into()))
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("an answer to join")
            .expect("open")
            .expect("readable");
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        match v["type"].as_str() {
            Some("joined") => return "ok".into(),
            Some("error") => return v["code"].as_str().unwrap_or("error").to_string(),
            _ => continue,
        }
    }
}

/// The HTTP status of `request`, sent with `token` as the bearer token, or without one.
async fn status_as(request: reqwest::RequestBuilder, token: Option<&str>) -> String {
    let request = match token {
        Some(t) => request.bearer_auth(t),
        None => request,
    };
    request.send().await.unwrap().status().as_u16().to_string()
}

/// `GET url` as `token`'s login: the JSON answer.
async fn get_json(http: &reqwest::Client, url: String, token: &str) -> Value {
    let answer = http.get(url).bearer_auth(token).send().await.unwrap();
    answer.json().await.unwrap()
}

/// The account id of `token`'s login.
async fn account_id(http: &reqwest::Client, base: &str, token: &str) -> String {
    let me = get_json(http, format!("{base}/api/auth/me"), token).await;
    me["user"]["id"]
        .as_i64()
        .expect("an account id")
        .to_string()
}

/// A finished recording in `folder` (its manifest, owned by `owner`, and a `merged.mp4`).
fn fake_recording(folder: &std::path::Path, id: &str, owner: &str) {
    std::fs::create_dir_all(folder).unwrap();
    let manifest = json!({
        "version": 1, "id": id, "room": "4821", "owner": owner,
        "started_at_ms": 1_796_600_000_000u64, "ended_at_ms": 1_796_600_060_000u64, "tracks": []
    });
    std::fs::write(folder.join("recording.json"), manifest.to_string()).unwrap();
    std::fs::write(
        folder.join("merged.mp4"),
        b"not really a video, but bytes to download",
    )
    .unwrap();
}

/// docs/roles.md's media server table, cell by cell, against two real `orbita serve`s (accounts
/// on; and with `--guests-may-create`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_server_roles_matrix() {
    let rows = media_server_matrix();
    let http = crate::support::http();
    let (server, addr, dir) = serve_with_admin(&[]);
    let (open_server, open_addr, open_dir) = serve_with_admin(&["--guests-may-create"]);
    let base = format!("http://{addr}");
    let open_base = format!("http://{open_addr}");
    let tokens = role_tokens(&http, &base).await;
    let open_tokens = role_tokens(&http, &open_base).await;

    // A room to look up and join, made by the administrator.
    let answer = http
        .post(format!("{base}/api/rooms"))
        .bearer_auth(tokens[3].as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let room: Value = answer.json().await.unwrap();
    let code = room["code"].as_str().expect("a room code").to_string();

    for (call, cells) in &rows {
        for (i, want) in cells.iter().enumerate() {
            let caller = ROLE_CALLERS[i];
            let got = match call.as_str() {
                "`POST /api/rooms`" | "`POST /api/rooms` (with `--guests-may-create`)" => {
                    let (base, token) = if call.contains("guests-may-create") {
                        (&open_base, &open_tokens[i])
                    } else {
                        (&base, &tokens[i])
                    };
                    status_as(http.post(format!("{base}/api/rooms")), token.as_deref()).await
                }
                "`GET /api/rooms/{code}`" => {
                    status_as(
                        http.get(format!("{base}/api/rooms/{code}")),
                        tokens[i].as_deref(),
                    )
                    .await
                }
                "WebSocket `/ws` `join` by code" => {
                    ws_join(&addr, &code, tokens[i].as_deref()).await
                }
                "`GET /api/branding`" => {
                    status_as(
                        http.get(format!("{base}/api/branding")),
                        tokens[i].as_deref(),
                    )
                    .await
                }
                "`GET /api/branding/logo` (none set)" => {
                    status_as(
                        http.get(format!("{base}/api/branding/logo")),
                        tokens[i].as_deref(),
                    )
                    .await
                }
                "`GET /api/recordings`" => {
                    status_as(
                        http.get(format!("{base}/api/recordings")),
                        tokens[i].as_deref(),
                    )
                    .await
                }
                "`GET /api/recordings/grant` (the coordinator's)" => {
                    status_as(
                        http.get(format!("{base}/api/recordings/grant")),
                        tokens[i].as_deref(),
                    )
                    .await
                }
                "`GET /api/recordings` with the caller's grant instead of a login" => {
                    let grant = match &tokens[i] {
                        Some(t) => get_json(&http, format!("{base}/api/recordings/grant"), t).await
                            ["grant"]
                            .as_str()
                            .map(str::to_string),
                        None => None,
                    };
                    status_as(http.get(format!("{base}/api/recordings")), grant.as_deref()).await
                }
                call if call.starts_with("`GET /api/recordings/{id}/merged.mp4`") => {
                    // A recording as the recorder leaves it, owned by the caller (or by an
                    // account that is nobody's here).
                    let owner = match (&tokens[i], call.contains("someone else")) {
                        (Some(t), false) => account_id(&http, &base, t).await,
                        _ => "999999".to_string(),
                    };
                    let id = format!("20261207T080000Z-{i}{}", owner.len());
                    let folder = dir.join("data").join("recordings").join(&id);
                    fake_recording(&folder, &id, &owner);
                    let url = format!("{base}/api/recordings/{id}/merged.mp4");
                    let status = status_as(http.get(url), tokens[i].as_deref()).await;
                    let _ = std::fs::remove_dir_all(&folder);
                    status
                }
                other => panic!("docs/roles.md: no check for the media server call {other}"),
            };
            assert_eq!(&got, want, "{call} as {caller}");
        }
    }
    drop(server);
    drop(open_server);
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(open_dir);
}

/// The recordings' list shows an agent their own calls' recordings only, a supervisor every
/// one; a download streams with ranges (206, `Content-Range`) as an attachment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_are_listed_to_their_owner_and_downloaded_by_range() {
    let http = crate::support::http();
    let (server, addr, dir) = serve_with_admin(&[]);
    let base = format!("http://{addr}");
    let tokens = role_tokens(&http, &base).await;
    let (agent, supervisor) = (tokens[1].clone().unwrap(), tokens[2].clone().unwrap());
    let agent_id = account_id(&http, &base, &agent).await;
    let root = dir.join("data").join("recordings");
    fake_recording(
        &root.join("20261207T080000Z-4821-aaaa"),
        "20261207T080000Z-4821-aaaa",
        &agent_id,
    );
    fake_recording(
        &root.join("20261207T090000Z-5555-bbbb"),
        "20261207T090000Z-5555-bbbb",
        "999999",
    );

    let ids = |token: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let list = get_json(&http, format!("{base}/api/recordings"), &token).await;
            list["recordings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids(agent.clone()).await, ["20261207T080000Z-4821-aaaa"]);
    assert_eq!(
        ids(supervisor.clone()).await,
        ["20261207T090000Z-5555-bbbb", "20261207T080000Z-4821-aaaa"],
        "newest first"
    );
    // The disk they take is shown to administrators alone (no quota: `max_bytes` null).
    let admin = tokens[3].clone().unwrap();
    let usage = get_json(&http, format!("{base}/api/recordings"), &admin).await["usage"].clone();
    assert_eq!(usage["max_bytes"], Value::Null, "{usage}");
    assert_eq!(usage["slots"], 4, "{usage}");
    assert!(usage["bytes"].is_u64(), "{usage}");
    for token in [&agent, &supervisor] {
        let list = get_json(&http, format!("{base}/api/recordings"), token).await;
        assert_eq!(list.get("usage"), None, "{list}");
    }

    let answer = http
        .get(format!(
            "{base}/api/recordings/20261207T080000Z-4821-aaaa/merged.mp4"
        ))
        .bearer_auth(&agent)
        .header("range", "bytes=4-9")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 206);
    let headers = answer.headers().clone();
    assert_eq!(headers["content-range"], "bytes 4-9/41");
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(answer.bytes().await.unwrap().as_ref(), b"really");
    // Not a download: the manifest, a track file, a path out of the folder.
    for path in [
        "20261207T080000Z-4821-aaaa/recording.json",
        "20261207T080000Z-4821-aaaa/p1-audio-1.webm",
        "..%2F..%2Fetc/merged.mp4",
    ] {
        let status = http
            .get(format!("{base}/api/recordings/{path}"))
            .bearer_auth(&agent)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 404, "{path}");
    }

    // With the coordinator's grant instead of a login (how the page reads each node's list):
    // the node's address, the same list, a download by `?grant=`, any origin allowed.
    let where_ = get_json(&http, format!("{base}/api/recordings/grant"), &agent).await;
    let nodes = where_["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{where_}");
    let url = nodes[0]["url"].as_str().unwrap().to_string();
    assert_eq!(url, base, "{where_}");
    let grant = where_["grant"].as_str().unwrap().to_string();
    let listed = http
        .get(format!("{url}/api/recordings"))
        .bearer_auth(&grant)
        .header("origin", "https://front.example.org")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.headers()["access-control-allow-origin"], "*");
    let listed: Value = listed.json().await.unwrap();
    let ids: Vec<&str> = listed["recordings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["20261207T080000Z-4821-aaaa"]);
    let preflight = http
        .request(reqwest::Method::OPTIONS, format!("{url}/api/recordings"))
        .header("origin", "https://front.example.org")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status().as_u16(), 204);
    assert!(preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("authorization"));
    let answer = http
        .get(format!(
            "{url}/api/recordings/20261207T080000Z-4821-aaaa/merged.mp4?grant={grant}"
        ))
        .header("range", "bytes=4-9")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 206);
    assert_eq!(answer.bytes().await.unwrap().as_ref(), b"really");
    // Someone else's, by the agent's grant: as if it did not exist.
    let theirs = http
        .get(format!(
            "{url}/api/recordings/20261207T090000Z-5555-bbbb/merged.mp4?grant={grant}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status().as_u16(), 404);
    // A grant widened to every recording keeps its old signature: refused, as is a cut one.
    let (payload, mac) = grant.strip_prefix("g1.").unwrap().split_once('.').unwrap();
    let json = String::from_utf8(
        (0..payload.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&payload[i..i + 2], 16).unwrap())
            .collect(),
    )
    .unwrap();
    let wider: String = json
        .replace("\"all\":false", "\"all\":true")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_ne!(wider, payload);
    for bad in [
        format!("g1.{wider}.{mac}"),
        grant[..grant.len() - 2].to_string(),
    ] {
        let refused = http
            .get(format!("{url}/api/recordings"))
            .bearer_auth(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 401);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "bad_grant", "{body}");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// The recording policy of `orbita serve --record-roles agent`: a room an agent creates is
/// announced as recorded and is recorded from its first participant on, as the agent's; an
/// administrator's room is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recording_policy_records_the_rooms_of_its_roles() {
    let http = crate::support::http();
    let (server, addr, dir) = serve_with_admin(&["--record-roles", "agent"]);
    let base = format!("http://{addr}");
    let tokens = role_tokens(&http, &base).await;
    let (agent, admin) = (tokens[1].clone().unwrap(), tokens[3].clone().unwrap());
    let agent_id = account_id(&http, &base, &agent).await;
    let create = |token: String| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let answer = http
                .post(format!("{base}/api/rooms"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), 201);
            answer.json::<Value>().await.unwrap()
        }
    };
    let agents = create(agent.clone()).await;
    let admins = create(admin).await;
    assert_eq!(agents["record"], true, "{agents}");
    assert_eq!(admins["record"], false, "{admins}");
    for (room, recorded) in [(&agents, true), (&admins, false)] {
        let code = room["code"].as_str().unwrap();
        let page = get_json(&http, format!("{base}/api/rooms/{code}"), &agent).await;
        assert_eq!(page["recording"], recorded, "{code}: {page}");
    }

    // The first participant starts the agent's recording; its manifest names the agent.
    let code = agents["code"].as_str().unwrap();
    let mut opts = BotOptions::new(format!("ws://{addr}/ws"), code, "Customer");
    opts.publish_video = false;
    let customer = Bot::join(opts).await.expect("the customer joins");
    told_recorded(&customer).await;
    let root = dir.join("data").join("recordings");
    let folders: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(folders[0].join("recording.json")).unwrap()).unwrap();
    assert_eq!(manifest["room"], code);
    assert_eq!(manifest["owner"], agent_id.as_str());

    // The agent comes with the room's host key: the call's record names their account, and
    // the recording made of it.
    let mut opts = BotOptions::new(format!("ws://{addr}/ws"), code, "Agent");
    opts.publish_video = false;
    opts.key = agents["host_key"].as_str().map(str::to_string);
    let agent_bot = Bot::join(opts).await.expect("the agent joins");
    let recording_id = folders[0]
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let deadline = std::time::Instant::now() + crate::support::MEDIA_TIMEOUT;
    let call = loop {
        let calls = get_json(&http, format!("{base}/api/calls"), &agent).await;
        let id = calls["calls"][0]["id"].as_str().map(str::to_string);
        if let Some(id) = id {
            let call = get_json(&http, format!("{base}/api/calls/{id}"), &agent).await;
            if call["participants"].as_array().map_or(0, Vec::len) == 2
                && call["recordings"].as_array().map_or(0, Vec::len) == 1
            {
                break call;
            }
        }
        assert!(std::time::Instant::now() < deadline, "{calls}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(call["code"], code);
    assert_eq!(call["recordings"][0]["id"], recording_id.as_str());
    let people = call["participants"].as_array().unwrap();
    assert_eq!(people[0]["role"], "customer");
    assert_eq!(people[0]["account_id"], Value::Null);
    assert_eq!(people[1]["role"], "agent");
    assert_eq!(people[1]["account_id"].to_string(), agent_id.as_str());
    drop(agent_bot);
    drop(customer);
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// A cluster whose policy records every session of "demo": node A has no recorder, node B
/// has. Recorded sessions go to B even while A has room; once B is full, the next one is
/// refused `NO_FREE_RECORDER` rather than placed unrecorded on A. B records the call from its
/// first participant on, and the coordinator's administrator lists it from B with a grant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_records_on_the_node_with_a_free_recorder_and_lists_it_with_a_grant() {
    let dir = temp_dir();
    let (mut coordinator, base) = start_coordinator_with(&["--set", "record_apps=[\"demo\"]"]);
    let line = coordinator.wait_line("No administrator yet");
    let token = word_after(&line, "/setup?token=").to_string();
    let http_base = base.replacen("ws://", "http://", 1);
    let http = crate::support::http();
    let admin =
        json!({"token": token, "email": "admin@example.com", "password": "a long enough password"});
    let made = http
        .post(format!("{http_base}/api/setup"))
        .json(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), 201);
    let recordings_b = dir.join("recordings-b");
    let (mut node_a, port_a) =
        start_node_with(&dir, "node-a", &base, 2, &["--recording-slots", "0"]);
    let (mut node_b, port_b) = start_node_with(
        &dir,
        "node-b",
        &base,
        2,
        &["--recordings-dir", recordings_b.to_str().unwrap()],
    );

    let mut creator = Client::connect(&base).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = creator
            .request(json!({"verb":"GET_SERVERS","range":"0-9"}))
            .await;
        if found["servers"].as_array().is_some_and(|a| a.len() == 2) {
            break;
        }
        assert!(Instant::now() < deadline, "nodes did not register: {found}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut codes = Vec::new();
    for _ in 0..2 {
        let answer = creator
            .request(json!({"verb":"CREATE_SESSION","rc_name":"demo"}))
            .await;
        assert_eq!(answer["verb"], "CONNECT_TO_SESSION", "{answer}");
        assert_eq!(answer["port"], port_b.as_str(), "recorded: on B ({answer})");
        codes.push(answer["code"].as_str().unwrap().to_string());
    }
    let refused = creator
        .request(json!({"verb":"CREATE_SESSION","rc_name":"demo"}))
        .await;
    assert_eq!(refused["msg"], "ERROR", "{refused}");
    assert_eq!(
        refused["code"], "NO_FREE_RECORDER",
        "A ({port_a}) has room but no recorder: {refused}"
    );

    // B records the call from its first participant on.
    let mut customer = join(&port_b, &codes[0], "Customer").await;
    told_recorded(&customer).await;

    // The administrator, logged in at the coordinator, lists it from B with a grant.
    let login = http
        .post(format!("{http_base}/api/auth/login"))
        .json(&json!({"email": "admin@example.com", "password": "a long enough password", "token": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let login: Value = login.json().await.unwrap();
    let where_ = get_json(
        &http,
        format!("{http_base}/api/recordings/grant"),
        login["token"].as_str().unwrap(),
    )
    .await;
    let urls: Vec<&str> = where_["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["url"].as_str().unwrap())
        .collect();
    let url_b = format!("http://127.0.0.1:{port_b}");
    assert_eq!(
        urls,
        [format!("http://127.0.0.1:{port_a}"), url_b.clone()],
        "{where_}"
    );
    let listed: Value = http
        .get(format!("{url_b}/api/recordings"))
        .bearer_auth(where_["grant"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recordings = listed["recordings"].as_array().unwrap();
    assert_eq!(recordings.len(), 1, "{listed}");
    assert_eq!(recordings[0]["room"], codes[0].as_str(), "{listed}");
    assert_eq!(recordings[0]["state"], "recording", "{listed}");

    let _ = customer.leave().await;
    node_a.stop(Duration::from_secs(10));
    node_b.stop(Duration::from_secs(10));
    coordinator.stop(Duration::from_secs(10));
    let _ = std::fs::remove_dir_all(dir);
}
