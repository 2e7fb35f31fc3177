//! Survey and fields (docs/calls.md), on SQLite, PostgreSQL and MariaDB: an administrator
//! defines them (for every app, and for one); a customer answers the survey with the token
//! their media server gave them (once; a wrong token is `404`); the agent fills the fields (a
//! required one must be there); the call shows both, and the history filters by rating.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use orbita_coordinator::accounts::Role;
use orbita_coordinator::now_ms;
use orbita_coordinator::verbs::{CallEvent, FromNode};
use serde_json::json;

use crate::support::api::{bearer, make_user, Api, Auth};
use crate::support::{self, register};

on_every_backend!(a_survey_and_fields_are_defined_answered_and_shown);

fn event(call: &str, event: &str) -> CallEvent {
    CallEvent {
        call: call.into(),
        at_ms: now_ms() as u64,
        event: event.into(),
        ..CallEvent::default()
    }
}

async fn a_survey_and_fields_are_defined_answered_and_shown(url: String) {
    let c = Arc::new(support::coordinator(&url, |_| {}).await);
    let api = Api::new(c.clone());
    let agent = make_user(&c, "agent@example.com", Role::Agent).await;
    make_user(&c, "admin@example.com", Role::Admin).await;
    let (as_agent, as_admin) = (
        bearer(&c, "agent@example.com").await,
        bearer(&c, "admin@example.com").await,
    );
    let put = |path: String, body: serde_json::Value, auth: Auth| {
        let api = &api;
        async move { api.call(Method::PUT, &path, Some(body), &auth).await }
    };

    // The administrator's forms: the default, and the demo app's own survey.
    let default = json!({
        "survey": [
            {"id": "rating", "kind": "rating", "label": "How was the call?", "required": true},
            {"id": "again", "kind": "choice", "label": "Call again?", "choices": ["yes", "no"]}
        ],
        "fields": [
            {"id": "contract", "kind": "text", "label": "Contract number", "required": true},
            {"id": "amount", "kind": "number", "label": "Amount"}
        ]
    });
    let a = put(
        "/api/call-forms/default".into(),
        default.clone(),
        as_admin.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let demo =
        json!({"survey": [{"id": "nps", "kind": "rating", "label": "Would you recommend us?"}]});
    assert_eq!(
        put("/api/call-forms/Demo".into(), demo, as_admin.clone())
            .await
            .status,
        StatusCode::OK
    );
    let bad = json!({"survey": [{"id": "again", "kind": "choice", "label": "Call again?"}]});
    let a = put("/api/call-forms/default".into(), bad, as_admin.clone()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.body["message"].as_str().unwrap().contains("choices"),
        "{a:?}"
    );
    let a = put(
        "/api/call-forms/default".into(),
        default.clone(),
        as_agent.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let all = api
        .call(Method::GET, "/api/call-forms", None, &as_admin)
        .await;
    assert_eq!(
        all.body["forms"]["default"]["fields"][0]["id"], "contract",
        "{all:?}"
    );
    assert_eq!(all.body["forms"]["Demo"]["survey"][0]["id"], "nps");

    // A call of the plain room (default forms) and one of the demo app, told by their node;
    // each customer gets a token at join.
    register(&c, "a", 2, &["Demo"], now_ms()).await;
    let token = "5e".repeat(32);
    for (call, app) in [("call-1", "video-room"), ("call-2", "Demo")] {
        for e in [
            CallEvent {
                code: Some("4821".into()),
                rc_name: Some(app.into()),
                owner: Some(agent.id.to_string()),
                ..event(call, "started")
            },
            CallEvent {
                participant: Some("p2".into()),
                name: Some("Customer".into()),
                role: Some("customer".into()),
                token: Some(token.clone()),
                ..event(call, "joined")
            },
        ] {
            c.handle_node("a", FromNode::CallEvent(Box::new(e)), now_ms())
                .await;
        }
    }
    let survey_of = |call: &'static str, token: String| {
        let api = &api;
        async move {
            api.call(
                Method::GET,
                &format!("/api/calls/{call}/survey?participant=p2&token={token}"),
                None,
                &Auth::None,
            )
            .await
        }
    };
    let own = survey_of("call-1", token.clone()).await;
    assert_eq!(own.status, StatusCode::OK, "{own:?}");
    assert_eq!(own.body["survey"][0]["id"], "rating");
    assert_eq!(own.body["answered"], false);
    let apps = survey_of("call-2", token.clone()).await;
    assert_eq!(apps.body["survey"][0]["id"], "nps", "the app's own survey");
    // A wrong token, someone else, or no such call: all the same 404.
    assert_eq!(
        survey_of("call-1", "00".repeat(32)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        survey_of("call-9", token.clone()).await.status,
        StatusCode::NOT_FOUND
    );
    let other = api
        .call(
            Method::GET,
            &format!("/api/calls/call-1/survey?participant=p3&token={token}"),
            None,
            &Auth::None,
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);

    let answer = |answers: serde_json::Value| {
        let (api, token) = (&api, token.clone());
        async move {
            api.call(
                Method::POST,
                "/api/calls/call-1/survey",
                Some(json!({"participant": "p2", "token": token, "answers": answers})),
                &Auth::None,
            )
            .await
        }
    };
    let a = answer(json!({"again": "yes"})).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body["message"]
        .as_str()
        .unwrap()
        .contains("How was the call? needs an answer"));
    assert_eq!(
        answer(json!({"rating": "6"})).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        answer(json!({"rating": "4", "again": "maybe"}))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        answer(json!({"rating": "4", "again": "yes"})).await.status,
        StatusCode::CREATED
    );
    let twice = answer(json!({"rating": "1"})).await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert_eq!(twice.error(), "already_answered");
    assert_eq!(
        survey_of("call-1", token.clone()).await.body["answered"],
        true
    );

    // The agent fills the fields: the required one must be there, a number must be one.
    let fields = |values: serde_json::Value, auth: Auth| {
        put(
            "/api/calls/call-1/fields".into(),
            json!({"values": values}),
            auth,
        )
    };
    let a = fields(json!({"amount": "12"}), as_agent.clone()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.body["message"]
        .as_str()
        .unwrap()
        .contains("Contract number is required"));
    let a = fields(
        json!({"contract": "A-17", "amount": "lots"}),
        as_agent.clone(),
    )
    .await;
    assert!(
        a.body["message"]
            .as_str()
            .unwrap()
            .contains("Amount must be a number"),
        "{a:?}"
    );
    let a = fields(
        json!({"contract": "A-17", "amount": "12.5"}),
        as_agent.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    make_user(&c, "stranger@example.com", Role::Agent).await;
    let a = fields(
        json!({"contract": "B"}),
        bearer(&c, "stranger@example.com").await,
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "another agent's call");

    // The call shows its forms, the values and the answers; the history filters by rating.
    let whole = api
        .call(Method::GET, "/api/calls/call-1", None, &as_agent)
        .await;
    assert_eq!(
        whole.body["fields"],
        json!({"contract": "A-17", "amount": "12.5"})
    );
    assert_eq!(whole.body["forms"]["fields"][0]["label"], "Contract number");
    let answers = whole.body["survey"].as_array().unwrap();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(answers
        .iter()
        .any(|a| a["question"] == "rating" && a["rating"] == 4));
    let listed = |query: &'static str| {
        let (api, auth) = (&api, as_agent.clone());
        async move {
            let a = api
                .call(Method::GET, &format!("/api/calls?{query}"), None, &auth)
                .await;
            assert_eq!(a.status, StatusCode::OK, "{a:?}");
            a.body["calls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["id"].as_str().unwrap().to_string(), c["rating"].clone()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed("min_rating=4").await,
        [("call-1".to_string(), json!(4))]
    );
    assert!(listed("min_rating=5").await.is_empty());
    assert_eq!(listed("max_rating=4").await.len(), 1);
    let bad = api
        .call(Method::GET, "/api/calls?min_rating=9", None, &as_agent)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // Removing the app's forms: its calls fall back on the default.
    let gone = api
        .call(Method::DELETE, "/api/call-forms/Demo", None, &as_admin)
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_eq!(
        survey_of("call-2", token.clone()).await.body["survey"][0]["id"],
        "rating"
    );
}
