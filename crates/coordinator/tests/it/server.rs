//! The coordinator over real WebSockets on 127.0.0.1: clients speak the spec's JSON, nodes
//! link with the cluster secret; plain and TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use orbita_coordinator::config::Settings;
use orbita_coordinator::node::{self, NodeConfig, NodeLink};
use orbita_coordinator::server;
use orbita_coordinator::verbs::{FromNode, Heartbeat, RcInfo, Registration, ToNode};
use orbita_coordinator::{now_ms, Coordinator};
use serde_json::json;

use crate::support::{client, node_recv, recv, send};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;

const SECRET: &str = "cluster-secret";

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

async fn start(settings: Settings, tls: Option<orbita_tls::ServerTls>) -> Running {
    let coordinator = Arc::new(Coordinator::open(settings, now_ms()).await.unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server::serve(listener, coordinator, tls, async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

fn settings() -> Settings {
    Settings {
        cluster_secret: SECRET.into(),
        heartbeat_interval_secs: 1,
        heartbeat_timeout_secs: 3,
        guests_may_create: true,
        ..Settings::default()
    }
}

fn registration(name: &str, max: u32) -> Registration {
    Registration {
        server_name: name.into(),
        ip: "127.0.0.1".into(),
        port: if name == "a" {
            "7001".into()
        } else {
            "7002".into()
        },
        max_sessions: max,
        apps: vec![RcInfo {
            rc_name: "Demo".into(),
            info: json!({"description":[{"en":"A demo"},{"ru":"Демо"}]}),
        }],
        auth: String::new(),
        recording_slots: 0,
        public_url: None,
        calls: Vec::new(),
    }
}

async fn link(
    url: &str,
    name: &str,
    max: u32,
    secret: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<NodeLink, String> {
    node::connect(&NodeConfig {
        url: url.into(),
        secret: secret.into(),
        registration: registration(name, max),
        tls,
    })
    .await
}

/// Plays the node's part of CREATE_SESSION / CONNECT_USER_TO_SESSION.
async fn node_serves_one(link: &mut NodeLink, port: &str) -> String {
    let ToNode::CreateSession {
        rc_name,
        user_id,
        code,
        ..
    } = node_recv(link).await
    else {
        panic!()
    };
    assert_eq!(rc_name, "Demo");
    assert!(user_id.starts_with("id"));
    link.send(FromNode::ConnectToSession {
        ip: "127.0.0.1".into(),
        port: port.into(),
        code: code.clone(),
        host_key: None,
    })
    .await;
    let ToNode::ConnectUserToSession {
        code: c2,
        user_id: u2,
    } = node_recv(link).await
    else {
        panic!()
    };
    assert_eq!(
        (c2.as_str(), u2.as_str()),
        (code.as_str(), user_id.as_str())
    );
    link.send(FromNode::SessionConnectionEstablished {
        webrtc_connection_data: format!("https://127.0.0.1:{port}"),
        code: code.clone(),
        user_id,
    })
    .await;
    code
}

#[tokio::test]
async fn clients_and_nodes_over_websockets() {
    let srv = start(settings(), None).await;
    let base = format!("ws://{}", srv.addr);
    let node_url = format!("{base}/coordinator/node");
    let client_url = format!("{base}/coordinator");

    // A wrong secret is refused.
    let err = link(&node_url, "a", 1, "wrong", None).await.unwrap_err();
    assert!(err.contains("AUTH_FAILED"), "{err}");

    let mut a = link(&node_url, "a", 1, SECRET, None).await.unwrap();
    assert_eq!(a.heartbeat_interval_seconds, 1);
    assert!(a.sessions.is_empty());

    let (mut c1, _id1) = client(&client_url, None).await;
    let (mut c2, id2) = client(&client_url, None).await;

    // Every failure has its own error; the connection goes on.
    c1.send(Message::Text("{oops".into())).await.unwrap();
    assert_eq!(recv(&mut c1).await["code"], "MALFORMED_JSON");
    send(&mut c1, json!({"verb":"FLY"})).await;
    assert_eq!(recv(&mut c1).await["code"], "UNKNOWN_VERB");
    c1.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    assert_eq!(recv(&mut c1).await["code"], "BINARY_NOT_SUPPORTED");

    send(&mut c1, json!({"verb":"GET_SERVERS","range":"0-20"})).await;
    assert_eq!(
        recv(&mut c1).await,
        json!({"msg":"SERVERS_FOUND","servers":[{"server_name":"a","ip":"127.0.0.1","port":"7001","rc_info":{"rc_name":"Demo","info":{"description":[{"en":"A demo"},{"ru":"Демо"}]}}}]})
    );
    send(&mut c1, json!({"verb":"GET_SERVERS","range":"20-40"})).await;
    assert_eq!(recv(&mut c1).await, json!({"msg":"SERVERS_NOT_FOUND"}));

    // Create: the node is asked, answers, and the client is sent there.
    send(&mut c1, json!({"verb":"CREATE_SESSION","rc_name":"Demo"})).await;
    let code = node_serves_one(&mut a, "7001").await;
    assert_eq!(
        recv(&mut c1).await,
        json!({"verb":"CONNECT_TO_SESSION","ip":"127.0.0.1","port":"7001","code":code})
    );
    assert_eq!(
        recv(&mut c1).await,
        json!({"msg":"SESSION_CONNECTION_ESTABLISHED","WebRTC_connection_data":"https://127.0.0.1:7001","code":code})
    );
    // The only server is full.
    send(&mut c2, json!({"verb":"CREATE_SESSION","rc_name":"Demo"})).await;
    assert_eq!(recv(&mut c2).await, json!({"msg":"SERVERS_BUSY"}));
    // Join by code.
    send(
        &mut c2,
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":code}),
    )
    .await;
    assert_eq!(
        recv(&mut c2).await,
        json!({"verb":"CONNECT_TO_SESSION","ip":"127.0.0.1","port":"7001","code":code})
    );
    let ToNode::ConnectUserToSession { user_id, .. } = node_recv(&mut a).await else {
        panic!()
    };
    assert_eq!(user_id, id2);
    let wrong = if code == "9999" { "9998" } else { "9999" };
    send(
        &mut c2,
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":wrong}),
    )
    .await;
    assert_eq!(recv(&mut c2).await, json!({"msg":"SESSION_NOT_EXIST"}));

    // A second node; the first one dies: its session ends within the heartbeat timeout,
    // participants are told, new sessions go to the second node.
    let mut b = link(&node_url, "b", 1, SECRET, None).await.unwrap();
    let hb = b.sender();
    let beat = tokio::spawn(async move {
        while hb
            .send(FromNode::Heartbeat(Heartbeat::default()))
            .await
            .is_ok()
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    drop(a);
    let started = std::time::Instant::now();
    let ended = recv(&mut c1).await;
    assert_eq!(
        ended,
        json!({"msg":"SESSION_ENDED","code":code,"reason":"node_down"})
    );
    assert_eq!(
        recv(&mut c2).await,
        json!({"msg":"SESSION_ENDED","code":code,"reason":"node_down"})
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    send(&mut c2, json!({"verb":"CREATE_SESSION","rc_name":"Demo"})).await;
    let code_b = node_serves_one(&mut b, "7002").await;
    assert_eq!(
        recv(&mut c2).await,
        json!({"verb":"CONNECT_TO_SESSION","ip":"127.0.0.1","port":"7002","code":code_b})
    );
    beat.abort();
    srv.stop().await;
}

#[tokio::test]
async fn guessing_is_cut_off_over_the_wire() {
    let srv = start(
        Settings {
            code_max_misses: 3,
            code_attempt_burst: 10,
            ..settings()
        },
        None,
    )
    .await;
    let (mut c, _) = client(&format!("ws://{}/coordinator", srv.addr), None).await;
    for _ in 0..3 {
        send(
            &mut c,
            json!({"verb":"CONNECT_SESSION_WITH_CODE","code":"0000"}),
        )
        .await;
        assert_eq!(recv(&mut c).await, json!({"msg":"SESSION_NOT_EXIST"}));
    }
    send(
        &mut c,
        json!({"verb":"CONNECT_SESSION_WITH_CODE","code":"0000"}),
    )
    .await;
    let locked = recv(&mut c).await;
    assert_eq!(locked["code"], "LOCKED_OUT", "{locked}");
    assert_eq!(locked["retry_after_seconds"], 900);
    srv.stop().await;
}

#[tokio::test]
async fn tls_for_clients_and_nodes() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let server_tls =
        orbita_tls::ServerTls::fixed(orbita_tls::server_config(vec![der.clone()], key).unwrap());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let client_tls = Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth(),
    );
    let srv = start(settings(), Some(server_tls)).await;
    let port = srv.addr.port();
    let mut a = link(
        &format!("wss://localhost:{port}/coordinator/node"),
        "a",
        2,
        SECRET,
        Some(client_tls.clone()),
    )
    .await
    .unwrap();
    let (mut c, _) = client(
        &format!("wss://localhost:{port}/coordinator"),
        Some(client_tls.clone()),
    )
    .await;
    // Every answer over TLS tells browsers to stay on HTTPS.
    let (_, upgrade) = tokio_tungstenite::connect_async_tls_with_config(
        format!("wss://localhost:{port}/coordinator"),
        None,
        false,
        Some(Connector::Rustls(client_tls.clone())),
    )
    .await
    .unwrap();
    assert_eq!(
        upgrade
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some(orbita_tls::HSTS_VALUE)
    );
    send(&mut c, json!({"verb":"CREATE_SESSION","rc_name":"Demo"})).await;
    let code = node_serves_one(&mut a, "7001").await;
    assert_eq!(recv(&mut c).await["verb"], "CONNECT_TO_SESSION");
    assert_eq!(recv(&mut c).await["code"], code.as_str());
    // Plain WebSocket to the TLS port does not get through.
    assert!(
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/coordinator"))
            .await
            .is_err()
    );
    srv.stop().await;
}

#[tokio::test]
async fn servers_json_edits_are_picked_up_within_one_period() {
    let dir = std::env::temp_dir().join(format!(
        "orbita-watch-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let servers = dir.join("servers.json");
    let configuration = dir.join("configuration.json");
    let entry = |name: &str, rc: &str| json!({"server_name":name,"ip":"0.0.0.0","port":"111","rc_info":{"rc_name":rc,"info":{"description":[{"en":rc}]}}});
    std::fs::write(&servers, json!([entry("s1", "One")]).to_string()).unwrap();
    std::fs::write(
        &configuration,
        r#"{"ip":"127.0.0.1","port":"0","time_between_updates_seconds":"1"}"#,
    )
    .unwrap();
    let srv = start(
        Settings {
            servers_file: Some(servers.clone()),
            configuration_file: Some(configuration.clone()),
            ..settings()
        },
        None,
    )
    .await;
    let (mut c, _) = client(&format!("ws://{}/coordinator", srv.addr), None).await;
    send(&mut c, json!({"verb":"GET_SERVERS","range":"0-9"})).await;
    assert_eq!(recv(&mut c).await["servers"].as_array().unwrap().len(), 1);
    std::fs::write(
        &servers,
        json!([entry("s1", "One"), entry("s2", "Two")]).to_string(),
    )
    .unwrap();
    let edited = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(&mut c, json!({"verb":"GET_SERVERS","range":"0-9"})).await;
        let found = recv(&mut c).await;
        if found["servers"].as_array().unwrap().len() == 2 {
            assert_eq!(found["servers"][1]["rc_info"]["rc_name"], "Two");
            break;
        }
        // The period is 1 s; the margin is wide because a loaded CI machine can starve the
        // test for seconds. Nothing but the periodic re-read applies the edit.
        assert!(
            edited.elapsed() < Duration::from_secs(15),
            "edit not applied by the periodic re-read"
        );
    }
    srv.stop().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}
