//! What the coordinator's tests share: test databases on every backend ([`db`]), the HTTP
//! routes driven in process ([`api`]), and a coordinator with registered nodes and clients
//! asking it verbs.
#![allow(dead_code)]

pub mod api;
#[macro_use]
pub mod db;
pub mod roles_doc;

use std::net::IpAddr;

use orbita_coordinator::accounts::User;
use orbita_coordinator::clock::Millis;
use orbita_coordinator::config::Settings;
use orbita_coordinator::verbs::{RcInfo, Registration, ToNode};
use orbita_coordinator::{Coordinator, Outcome, Registry};
use serde_json::{json, Value};

/// 2030-03-15 12:00:00 UTC (a Friday).
pub const T0: Millis = 1_899_806_400_000;

/// The cluster secret of the tests' coordinators.
pub const SECRET: &str = "secret";

/// A coordinator ("A", cluster secret [`SECRET`]) on the registry at `url`, its settings
/// changed by `tweak` first.
pub async fn coordinator(url: &str, tweak: impl FnOnce(&mut Settings)) -> Coordinator {
    let mut s = Settings {
        coordinator_id: "A".into(),
        cluster_secret: SECRET.into(),
        ..Settings::default()
    };
    tweak(&mut s);
    s.validate().unwrap();
    let registry = Registry::connect(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    Coordinator::with_registry(s, registry)
}

/// An app with a description in English and Russian.
pub fn app(rc: &str) -> RcInfo {
    RcInfo {
        rc_name: rc.into(),
        info: json!({"description":[{"en":format!("{rc} in English")},{"ru":format!("{rc} по-русски")}]}),
    }
}

/// A node's registration: `max` sessions of `apps`; its address follows from its name.
pub fn registration(name: &str, max: u32, apps: &[&str]) -> Registration {
    Registration {
        server_name: name.into(),
        ip: format!("10.0.0.{}", name.len()),
        port: format!("70{:02}", name.bytes().map(u32::from).sum::<u32>() % 100),
        max_sessions: max,
        apps: apps.iter().map(|a| app(a)).collect(),
        auth: String::new(),
    }
}

/// Registers [`registration`]`(name, max, apps)` at `now`; the coordinator must accept it.
pub async fn register(
    c: &Coordinator,
    name: &str,
    max: u32,
    apps: &[&str],
    now: Millis,
) -> Registration {
    let reg = registration(name, max, apps);
    let answer = c.register_node(&reg, now).await.unwrap();
    assert!(
        matches!(
            answer,
            ToNode::Registered {
                heartbeat_interval_seconds: 5,
                ..
            }
        ),
        "{answer:?}"
    );
    reg
}

/// Client `user` (logged in as `account`, if any) at address `from` sends `req` at `now`.
pub async fn ask(
    c: &Coordinator,
    user: &str,
    account: Option<&User>,
    from: IpAddr,
    req: Value,
    now: Millis,
) -> Outcome {
    c.handle_client_text(user, account, from, &req.to_string(), now)
        .await
}
