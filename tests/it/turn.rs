//! TURN credentials at join: a real server with `turn_urls` and a secret gives each participant
//! its own username `EXPIRY:PARTICIPANT` (expiring `turn_credential_ttl_secs` from now) and the
//! password coturn's `use-auth-secret` expects, `base64(HMAC-SHA1(secret, username))`. The
//! relay itself is exercised by the browser test `turn.test.js` against real coturn.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::*;
use futures_util::SinkExt;
use orbita_protocol::{IceServer, ServerMsg};
use orbita_server::config::Secret;
use orbita_sfu::ice_servers::turn_password;
use tokio_tungstenite::tungstenite::Message;

async fn join(url: &str, code: &str, name: &str) -> (String, Vec<IceServer>) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let join = serde_json::json!({"type": "join", "v": 1, "code": code, "name": name});
    ws.send(Message::Text(join.to_string().into()))
        .await
        .unwrap();
    match next_server_msg(&mut ws).await {
        ServerMsg::Joined {
            participant_id,
            ice_servers,
            ..
        } => (participant_id, ice_servers),
        other => panic!("expected joined, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_participant_gets_its_own_turn_credentials() {
    let mut settings = test_settings();
    settings.stun_urls = vec!["stun:127.0.0.1:3478".into()];
    settings.turn_urls = vec![
        "turn:127.0.0.1:3478?transport=udp".into(),
        "turns:turn.example.org:5349?transport=tcp".into(),
    ];
    settings.turn_secret = Some(Secret("shared with coturn".into()));
    settings.turn_credential_ttl_secs = 3600;
    let server = start_server(settings).await;
    let code = create_room(&server).await;
    let url = server.ws_url();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (alice, alice_servers) = join(&url, &code, "Alice").await;
    let (bob, bob_servers) = join(&url, &code, "Bob").await;
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    for (who, servers) in [(&alice, &alice_servers), (&bob, &bob_servers)] {
        assert_eq!(servers.len(), 2, "{servers:?}");
        assert_eq!(servers[0].urls, ["stun:127.0.0.1:3478"]);
        assert_eq!(
            (&servers[0].username, &servers[0].credential),
            (&None, &None)
        );
        let turn = &servers[1];
        assert_eq!(turn.urls.len(), 2);
        let username = turn.username.as_deref().expect("a TURN username");
        let (expiry, participant) = username.split_once(':').expect("EXPIRY:PARTICIPANT");
        assert_eq!(participant, who.as_str());
        let expiry: u64 = expiry.parse().unwrap();
        assert!((before + 3600..=after + 3600).contains(&expiry), "{expiry}");
        assert_eq!(
            turn.credential.as_deref(),
            Some(turn_password("shared with coturn", username).as_str())
        );
    }
    assert_ne!(alice_servers[1].credential, bob_servers[1].credential);
    server.shutdown().await.unwrap();
}
