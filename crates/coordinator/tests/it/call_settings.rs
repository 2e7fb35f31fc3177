//! Branding, consent and feature switches (docs/calls.md), on SQLite, PostgreSQL and MariaDB:
//! an administrator sets them (every bad value refused, naming it; a logo checked for size and
//! type), a node linked over a real WebSocket is sent them after it registers and again at
//! once when they change, and the consent text a guest accepted is kept with the call.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use base64::Engine;
use orbita_coordinator::accounts::Role;
use orbita_coordinator::node::{self, NodeConfig};
use orbita_coordinator::verbs::{CallEvent, FromNode, RcInfo, Registration};
use orbita_coordinator::{now_ms, server};
use serde_json::json;
use tokio::net::TcpListener;

use crate::support::api::{bearer, make_user, Api, Auth};
use crate::support::{self, node_settings, SECRET};

on_every_backend!(administrators_set_branding_logo_and_switches_and_nodes_get_them);

/// An 8x8 orange PNG.
pub const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGN4ESuFFTEMLQkAfUZXwbDFdmEAAAAASUVORK5CYII=";

fn png() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(PNG_B64)
        .unwrap()
}

async fn administrators_set_branding_logo_and_switches_and_nodes_get_them(url: String) {
    let c = Arc::new(support::coordinator(&url, |_| {}).await);
    let api = Api::new(c.clone());
    make_user(&c, "agent@example.com", Role::Agent).await;
    make_user(&c, "admin@example.com", Role::Admin).await;
    let (as_agent, as_admin) = (
        bearer(&c, "agent@example.com").await,
        bearer(&c, "admin@example.com").await,
    );

    // A node linked over a real WebSocket gets the settings (none yet) after REGISTERED.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server::serve(listener, c.clone(), None, async move {
        let _ = stopped.await;
    }));
    let mut link = node::connect(&NodeConfig {
        url: format!("ws://{addr}/coordinator/node"),
        secret: SECRET.into(),
        registration: Registration {
            server_name: "a".into(),
            ip: "127.0.0.1".into(),
            port: "7001".into(),
            max_sessions: 2,
            apps: vec![RcInfo {
                rc_name: "Demo".into(),
                info: json!({"description": [{"en": "A demo"}]}),
            }],
            auth: String::new(),
            recording_slots: 0,
            public_url: None,
            calls: Vec::new(),
        },
        tls: None,
    })
    .await
    .unwrap();
    let first = node_settings(&mut link).await;
    assert_eq!(first.branding.company, "");
    assert!(first.features_for("Demo").agent.camera);

    // Branding: every bad value is refused, naming the field; agents may not.
    let branding = json!({
        "company": "  Acme Insurance ",
        "primary_color": "#1A73E8",
        "accent_color": "#0b8043",
        "consent_text": "This call is recorded.\n\nDo you agree?",
        "redirect_url": "https://example.org/thanks"
    });
    let put = |path: &'static str, body: serde_json::Value, auth: Auth| {
        let api = &api;
        async move { api.call(Method::PUT, path, Some(body), &auth).await }
    };
    for (field, bad) in [
        ("primary_color", json!({"primary_color": "blue"})),
        (
            "redirect_url",
            json!({"redirect_url": "javascript:alert(1)"}),
        ),
        ("company", json!({"company": "x".repeat(101)})),
    ] {
        let a = put("/api/settings/branding", bad, as_admin.clone()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{a:?}");
        assert!(
            a.body["message"].as_str().unwrap().starts_with(field),
            "{a:?}"
        );
    }
    let a = put(
        "/api/settings/branding",
        json!({"colour": "#fff"}),
        as_admin.clone(),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::BAD_REQUEST,
        "unknown fields are refused: {a:?}"
    );
    let a = put("/api/settings/branding", branding.clone(), as_agent.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = put("/api/settings/branding", branding.clone(), as_admin.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(a.body["branding"]["company"], "Acme Insurance");
    assert_eq!(a.body["branding"]["primary_color"], "#1a73e8");
    let consent_id = a.body["consent_id"].as_str().unwrap().to_string();
    assert_eq!(consent_id.len(), 64);
    // The node hears at once (this coordinator made the change).
    let s = node_settings(&mut link).await;
    assert_eq!(s.branding.company, "Acme Insurance");
    assert_eq!(
        s.branding.consent_id().as_deref(),
        Some(consent_id.as_str())
    );

    // The logo: sniffed, typed, bounded.
    let upload = |body: Vec<u8>, kind: &'static str, auth: Auth| {
        let api = &api;
        async move {
            api.raw(
                Method::PUT,
                "/api/settings/logo",
                Some(body),
                &auth,
                &[("content-type", kind)],
            )
            .await
        }
    };
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    let a = upload(svg.to_vec(), "image/svg+xml", as_admin.clone()).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{a:?}");
    let a = upload(png(), "image/jpeg", as_admin.clone()).await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{a:?}");
    assert!(
        a.body["message"].as_str().unwrap().contains("image/png"),
        "{a:?}"
    );
    let mut big = png();
    big.resize(256 * 1024 + 1, 0);
    let a = upload(big, "image/png", as_admin.clone()).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{a:?}");
    let a = upload(png(), "image/png", as_agent.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = upload(png(), "image/png", as_admin.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(
        a.body["logo"],
        json!({"type": "image/png", "bytes": png().len()})
    );
    let s = node_settings(&mut link).await;
    assert_eq!(s.logo.as_ref().map(|l| l.data.clone()), Some(png()));

    // Switches: video one way (customer to agent) in the demo app; everything on elsewhere.
    let one_way = json!({"agent": {"camera": false, "record": false}, "customer": {"chat": false}});
    for (path, body, auth, want) in [
        (
            "/api/settings/features/Demo",
            one_way.clone(),
            &as_admin,
            StatusCode::OK,
        ),
        (
            "/api/settings/features/bad%2Fname",
            one_way.clone(),
            &as_admin,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/settings/features/Demo",
            json!({"agent": {"hologram": true}}),
            &as_admin,
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/settings/features/Demo",
            one_way.clone(),
            &as_agent,
            StatusCode::FORBIDDEN,
        ),
    ] {
        let a = api.call(Method::PUT, path, Some(body), auth).await;
        assert_eq!(a.status, want, "{path}: {a:?}");
    }
    let s = node_settings(&mut link).await;
    let demo = s.features_for("Demo");
    assert!(!demo.agent.camera && !demo.agent.record && demo.agent.microphone);
    assert!(!demo.customer.chat && demo.customer.camera);
    assert!(s.features_for("video-room").agent.camera);
    let all = api
        .call(Method::GET, "/api/settings/calls", None, &as_admin)
        .await;
    assert_eq!(
        all.body["features"]["Demo"]["agent"]["camera"], false,
        "{all:?}"
    );
    assert_eq!(
        all.body["branding"]["redirect_url"],
        "https://example.org/thanks"
    );
    assert_eq!(
        api.call(Method::GET, "/api/settings/calls", None, &as_agent)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // The guest's acceptance goes with the call.
    support::register(&c, "b", 2, &["Demo"], now_ms()).await;
    let event = |event: &str| CallEvent {
        call: "call-1".into(),
        at_ms: now_ms() as u64,
        event: event.into(),
        ..CallEvent::default()
    };
    let agent = make_user(&c, "agent2@example.com", Role::Agent).await;
    for e in [
        CallEvent {
            code: Some("4821".into()),
            rc_name: Some("Demo".into()),
            owner: Some(agent.id.to_string()),
            ..event("started")
        },
        CallEvent {
            participant: Some("p2".into()),
            name: Some("Customer".into()),
            role: Some("customer".into()),
            consent: Some(consent_id.clone()),
            ..event("joined")
        },
        CallEvent {
            participant: Some("p2".into()),
            camera: Some("FaceTime HD Camera".into()),
            microphone: Some("MacBook Pro Microphone".into()),
            ..event("devices")
        },
        CallEvent {
            participant: Some("p3".into()),
            name: Some("Agent".into()),
            role: Some("agent".into()),
            ..event("joined")
        },
    ] {
        c.handle_node("b", FromNode::CallEvent(Box::new(e)), now_ms())
            .await;
    }
    let record = api
        .call(Method::GET, "/api/calls/call-1", None, &as_admin)
        .await;
    assert_eq!(record.status, StatusCode::OK, "{record:?}");
    let people = record.body["participants"].as_array().unwrap();
    assert_eq!(people[0]["consent"]["id"], consent_id.as_str());
    assert_eq!(
        people[0]["consent"]["text"],
        "This call is recorded.\n\nDo you agree?"
    );
    assert!(people[1]["consent"].is_null(), "{record:?}");
    // The devices the customer's browser named.
    assert_eq!(people[0]["camera"], "FaceTime HD Camera");
    assert_eq!(people[0]["microphone"], "MacBook Pro Microphone");
    assert_eq!(people[1]["camera"], "");

    // Removing: the logo and the app's switches (a second time: 404).
    let a = api
        .call(Method::DELETE, "/api/settings/logo", None, &as_admin)
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body["logo"].is_null());
    for want in [StatusCode::OK, StatusCode::NOT_FOUND] {
        let a = api
            .call(
                Method::DELETE,
                "/api/settings/features/Demo",
                None,
                &as_admin,
            )
            .await;
        assert_eq!(a.status, want, "{a:?}");
    }
    let mut s = node_settings(&mut link).await;
    while s.logo.is_some() || s.features.contains_key("Demo") {
        s = node_settings(&mut link).await;
    }
    assert!(s.features_for("Demo").agent.camera);

    drop(link);
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}
