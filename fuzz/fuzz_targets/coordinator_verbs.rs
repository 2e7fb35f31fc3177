//! Coordinator verbs: the client and node JSON of `orbita_coordinator::verbs`, handled by a
//! real coordinator (in-memory SQLite registry, one app in its catalogue, one registered
//! node, one agent account).
//!
//! The input is up to [`MAX_LINES`] lines, each one WebSocket text message:
//! - `node <json>`: from the registered node: parsed as `FromNode` (which must round-trip)
//!   and handled (`Coordinator::handle_node`);
//! - `agent <json>`: from a client logged in as the agent;
//! - anything else: from a guest.
//!
//! Client lines go through `Coordinator::handle_client_text` exactly as the coordinator's
//! WebSocket hands them over (size check, `parse_client_request`, the verb's logic with its
//! code-guess throttle, planning calendar and quotas); a request that parses must round-trip;
//! every answer and delivery must serialise. The clock is virtual: each line is one second
//! after the previous one, and each input comes from one of 256 client addresses.

#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicI64, AtomicU8, Ordering};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use orbita_coordinator::accounts::{Role, User};
use orbita_coordinator::config::ServersFileEntry;
use orbita_coordinator::verbs::{parse_client_request, FromNode, RcInfo, Registration};
use orbita_coordinator::{Coordinator, Delivery, Millis, Settings};

/// Most messages taken from one input.
const MAX_LINES: usize = 16;

/// The registered node's name.
const NODE: &str = "node-fuzz";

/// 2026-12-07 00:00 UTC: where the virtual clock starts.
const START: Millis = 1_796_601_600_000;

struct World {
    runtime: tokio::runtime::Runtime,
    coordinator: Coordinator,
    agent: User,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let (coordinator, agent) = runtime.block_on(async {
            let coordinator = Coordinator::open(Settings::default(), START)
                .await
                .expect("an in-memory coordinator");
            let app = RcInfo {
                rc_name: "SomeRC".into(),
                info: serde_json::json!({"description":[{"en":"fuzz"}]}),
            };
            coordinator
                .reload_servers(&[ServersFileEntry {
                    server_name: "files-node".into(),
                    ip: "127.0.0.1".into(),
                    port: "8080".into(),
                    rc_info: app.clone(),
                    max_sessions: Some("2".into()),
                }])
                .await
                .expect("the catalogue loads");
            let reg = Registration {
                server_name: NODE.into(),
                ip: "127.0.0.2".into(),
                port: "8443".into(),
                max_sessions: 4,
                apps: vec![app],
                auth: String::new(),
            };
            coordinator
                .register_node(&reg, START)
                .await
                .expect("the node registers");
            let agent = coordinator
                .accounts()
                .create_user(
                    "agent@fuzz.example",
                    "Agent",
                    "a long fuzzing password",
                    Role::Agent,
                    START,
                )
                .await
                .expect("the agent account");
            (coordinator, agent)
        });
        World {
            runtime,
            coordinator,
            agent,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    static CLOCK: AtomicI64 = AtomicI64::new(START);
    static CLIENT: AtomicU8 = AtomicU8::new(0);
    let w = world();
    let addr = IpAddr::V4(Ipv4Addr::new(
        10,
        9,
        0,
        CLIENT.fetch_add(1, Ordering::Relaxed),
    ));
    w.runtime.block_on(async {
        for line in text.lines().take(MAX_LINES) {
            let now = CLOCK.fetch_add(1000, Ordering::Relaxed);
            if let Some(json) = line.strip_prefix("node ") {
                let Ok(msg) = serde_json::from_str::<FromNode>(json) else {
                    continue;
                };
                let again = serde_json::to_string(&msg).expect("node messages serialise");
                let back: FromNode = serde_json::from_str(&again)
                    .unwrap_or_else(|e| panic!("a node message does not parse back: {e}: {again}"));
                assert_eq!(back, msg, "a node message does not round-trip: {again}");
                for d in w.coordinator.handle_node(NODE, msg, now).await {
                    serialise(&d);
                }
                continue;
            }
            let (caller, json) = match line.strip_prefix("agent ") {
                Some(json) => (Some(&w.agent), json),
                None => (None, line),
            };
            if let Ok(req) = parse_client_request(json) {
                let again = serde_json::to_string(&req).expect("requests serialise");
                assert_eq!(
                    parse_client_request(&again).as_ref().ok(),
                    Some(&req),
                    "a request does not round-trip: {again}"
                );
            }
            let outcome = w
                .coordinator
                .handle_client_text("idfuzz", caller, addr, json, now)
                .await;
            if let Some(reply) = &outcome.reply {
                reply.to_json();
            }
            for d in &outcome.deliveries {
                serialise(d);
            }
        }
    });
});

fn serialise(d: &Delivery) {
    match d {
        Delivery::Client { msg, .. } => drop(msg.to_json()),
        Delivery::Node { msg, .. } => drop(msg.to_json()),
    }
}
