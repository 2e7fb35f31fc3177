//! Branding, consent and feature switches on a real `orbita serve` (docs/calls.md): the
//! administrator sets them over REST; the media server serves the branding and the logo to the
//! customer's page; a guest who has not accepted the consent text is refused (whatever the
//! code), one who has joins and their acceptance is in the call's record; with video one way
//! (customer to agent) the server refuses the agent's camera and hand recording, and customers'
//! chat when it is off, while the agent's voice reaches the customer and the customer's
//! picture and voice reach the agent.

use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::SinkExt;
use orbita_bot::{Bot, BotOptions, JoinError};
use orbita_protocol::{ErrorCode, ServerMsg};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{next_server_msg, Ws, MEDIA_TIMEOUT};

/// An 8x8 orange PNG.
const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGN4ESuFFTEMLQkAfUZXwbDFdmEAAAAASUVORK5CYII=";

/// A raw signalling connection that sent `join` (with the host key or a consent): the first
/// answer (`joined` or an error).
async fn raw_join(addr: &str, join: Value) -> (Ws, ServerMsg) {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    ws.send(Message::Text(join.to_string().into()))
        .await
        .unwrap();
    let first = next_server_msg(&mut ws).await;
    (ws, first)
}

/// The JSON answer of `request`.
async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// The next error on `ws` (other messages skipped).
async fn next_error(ws: &mut Ws) -> (ErrorCode, String) {
    loop {
        if let ServerMsg::Error { code, message } = next_server_msg(ws).await {
            return (code, message);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn branding_consent_and_one_way_video_are_served_and_enforced() {
    let (_server, addr, _dir) = crate::cluster::serve_with_admin(&[]);
    let base = format!("http://{addr}");
    let http = crate::support::http();
    let login = json_of(http.post(format!("{base}/api/auth/login")).json(
        &json!({"email": "root@orbita.test", "password": "admin-password-1", "token": true}),
    ))
    .await;
    let admin = login["token"].as_str().unwrap().to_string();

    // Before anything is set: no branding, no consent, everyone may join.
    let before = json_of(http.get(format!("{base}/api/branding"))).await;
    assert_eq!(before["company"], "");
    assert!(before["consent_id"].is_null());

    // The administrator's settings: branding with a consent text, a logo, and video one way
    // in plain rooms (no agent camera, no hand recording, no customer chat).
    let consent_text = "This call may be recorded for quality.\n\nDo you agree?";
    let a = http
        .put(format!("{base}/api/settings/branding"))
        .bearer_auth(&admin)
        .json(&json!({
            "company": "Acme Insurance", "primary_color": "#0b8043",
            "consent_text": consent_text, "redirect_url": "https://example.org/thanks"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status().as_u16(), 200);
    let png = base64::engine::general_purpose::STANDARD
        .decode(PNG_B64)
        .unwrap();
    let a = http
        .put(format!("{base}/api/settings/logo"))
        .bearer_auth(&admin)
        .header("content-type", "image/png")
        .body(png.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(a.status().as_u16(), 200, "{:?}", a.text().await);
    let a = http
        .put(format!("{base}/api/settings/features/video-room"))
        .bearer_auth(&admin)
        .json(&json!({"agent": {"camera": false, "record": false}, "customer": {"chat": false}}))
        .send()
        .await
        .unwrap();
    let settings: Value = a.json().await.unwrap();
    let version = settings["version"].as_i64().unwrap();

    // The media server has them once its coordinator link delivered them (at once, in this
    // process; polled because the link is another task).
    let deadline = Instant::now() + MEDIA_TIMEOUT;
    let branding = loop {
        let b = json_of(http.get(format!("{base}/api/branding"))).await;
        if b["logo"] == format!("/api/branding/logo?v={version}") {
            break b;
        }
        assert!(Instant::now() < deadline, "the media server still has {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(branding["company"], "Acme Insurance");
    assert_eq!(branding["primary_color"], "#0b8043");
    assert_eq!(branding["consent_text"], consent_text);
    assert_eq!(branding["redirect_url"], "https://example.org/thanks");
    let consent = branding["consent_id"].as_str().unwrap().to_string();
    let logo = http
        .get(format!("{base}{}", branding["logo"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(logo.headers()["content-type"], "image/png");
    assert_eq!(logo.bytes().await.unwrap().as_ref(), png.as_slice());

    // The agent's room.
    let room = json_of(http.post(format!("{base}/api/rooms")).bearer_auth(&admin)).await;
    let code = room["code"].as_str().unwrap().to_string();
    let key = room["host_key"].as_str().unwrap().to_string();

    // A guest without the consent is refused before the code is looked at: a right code and a
    // wrong one get the same answer.
    for c in [code.as_str(), "0000"] {
        let err = Bot::join(BotOptions::new(format!("ws://{addr}/ws"), c, "Guest"))
            .await
            .unwrap_err();
        let err = err.downcast::<JoinError>().expect("a join error");
        assert_eq!(err.code, ErrorCode::ConsentRequired, "{err:?}");
    }

    // The agent: told its switches; its camera and hand recording refused.
    let (mut agent_ws, joined) = raw_join(
        &addr,
        json!({"type": "join", "v": 1, "code": code, "name": "Agent", "key": key}),
    )
    .await;
    let ServerMsg::Joined { features, .. } = joined else {
        panic!("{joined:?}")
    };
    assert!(!features.camera && !features.record && features.microphone && features.chat);
    let offer = json!({"type": "offer", "pc": "publisher", "sdp": "v=0\r\n",
                       "tracks": [{"mid": "0", "source": "microphone"}, {"mid": "1", "source": "camera"}]});
    agent_ws
        .send(Message::Text(offer.to_string().into()))
        .await
        .unwrap();
    let (code_of, message) = next_error(&mut agent_ws).await;
    assert_eq!(code_of, ErrorCode::NotAllowed);
    assert!(message.contains("camera"), "{message}");
    agent_ws
        .send(Message::Text(
            json!({"type": "record", "on": true}).to_string().into(),
        ))
        .await
        .unwrap();
    assert_eq!(next_error(&mut agent_ws).await.0, ErrorCode::NotAllowed);
    let a = http
        .post(format!("{base}/api/rooms/{code}/recording"))
        .bearer_auth(&key)
        .json(&json!({"on": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status().as_u16(), 403);
    drop(agent_ws);

    // A customer with the consent joins; chat is off for them.
    let (mut guest_ws, joined) = raw_join(
        &addr,
        json!({"type": "join", "v": 1, "code": code, "name": "Raw guest", "consent": consent}),
    )
    .await;
    let ServerMsg::Joined { features, .. } = joined else {
        panic!("{joined:?}")
    };
    assert!(!features.chat && features.camera);
    guest_ws
        .send(Message::Text(
            json!({"type": "chat", "text": "hello"}).to_string().into(),
        ))
        .await
        .unwrap();
    assert_eq!(next_error(&mut guest_ws).await.0, ErrorCode::NotAllowed);
    // Device labels are checked.
    let long = json!({"type": "devices", "camera": "x".repeat(201)});
    guest_ws
        .send(Message::Text(long.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_error(&mut guest_ws).await.0, ErrorCode::InvalidValue);
    drop(guest_ws);

    // The agent talks (microphone only) and the customer, who accepted, hears them.
    let mut agent = BotOptions::new(format!("ws://{addr}/ws"), &code, "Agent");
    agent.key = Some(key.clone());
    agent.publish_video = false;
    let mut agent = Bot::join(agent).await.expect("the agent joins");
    let mut customer = BotOptions::new(format!("ws://{addr}/ws"), &code, "Customer");
    customer.consent = Some(consent.clone());
    let mut customer = Bot::join(customer).await.expect("the customer joins");
    let agent_id = agent.participant_id().to_string();
    customer
        .wait_for(|s| s.received_audio_from(&agent_id), MEDIA_TIMEOUT)
        .await
        .expect("the agent's voice reaches the customer");
    // Video goes one way: the customer's reaches the agent.
    agent
        .wait_for_media_from(customer.participant_id(), MEDIA_TIMEOUT)
        .await
        .expect("the customer's sound and picture reach the agent");
    // The customer's browser names its devices (kept with the call).
    customer
        .send(orbita_protocol::ClientMsg::Devices {
            camera: Some("Integrated Camera (04f2:b6dd)".into()),
            microphone: Some("Built-in Audio Analog Stereo".into()),
        })
        .unwrap();
    let customer_id = customer.participant_id().to_string();
    customer.leave().await.unwrap();
    agent.leave().await.unwrap();

    // The call's record keeps the customer's acceptance, with the text they accepted.
    let deadline = Instant::now() + MEDIA_TIMEOUT;
    loop {
        let list = json_of(http.get(format!("{base}/api/calls")).bearer_auth(&admin)).await;
        let id = list["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"] == code.as_str())
            .map(|c| c["id"].as_str().unwrap().to_string());
        if let Some(id) = id {
            let record = json_of(
                http.get(format!("{base}/api/calls/{id}"))
                    .bearer_auth(&admin),
            )
            .await;
            let people = record["participants"].as_array().unwrap();
            // Once the devices event is written too (it follows the join).
            let who = people
                .iter()
                .find(|p| p["id"] == customer_id.as_str() && p["camera"] != "");
            if let Some(who) = who {
                assert_eq!(who["consent"]["id"], consent.as_str(), "{record}");
                assert_eq!(who["consent"]["text"], consent_text);
                assert_eq!(who["camera"], "Integrated Camera (04f2:b6dd)", "{record}");
                assert_eq!(who["microphone"], "Built-in Audio Analog Stereo");
                let agent_row = people.iter().find(|p| p["role"] == "agent").unwrap();
                assert!(agent_row["consent"].is_null(), "{record}");
                break;
            }
        }
        assert!(Instant::now() < deadline, "no record of the customer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
