//! Every JSON example in docs/coordinator.md is exactly a message (or file) of the kind its place
//! in the document says: parsed as that one type and written back, it is the same JSON (a
//! misspelt, extra or missing field would not survive the round trip). Client requests go
//! through the coordinator's own parser. Every verb and message of the protocol has an example.

use std::collections::BTreeSet;

use orbita_coordinator::config::{FileConfiguration, PlannedFileEntry, ServersFileEntry};
use orbita_coordinator::verbs::{parse_client_request, FromNode, ToClient, ToNode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

const DOC: &str = include_str!("../../../../docs/coordinator.md");

/// What an example shows, from where it stands in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A client's request (a `"verb"` in "Client messages").
    Request,
    /// The coordinator's answer or notice to a client.
    ToClient,
    /// A node link row `| node -> |`.
    FromNode,
    /// A node link row `| -> node |`, or an error the coordinator sends a node.
    ToNode,
    /// `servers.json`.
    ServersFile,
    /// `configuration.json`.
    Configuration,
    /// `sessions_planned.json`.
    PlannedFile,
}

struct Example {
    line: usize,
    kind: Kind,
    text: String,
}

/// The examples: the bodies of ```` ```json ```` blocks (a ```` ```json node-config ```` block is
/// the node's settings file, checked by the server crate) and `{...}` spans in the text, each
/// with the kind its section gives it.
fn examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut section = "";
    let mut block: Option<(usize, String)> = None;
    for (i, line) in DOC.lines().enumerate() {
        let n = i + 1;
        if let Some((start, body)) = block.as_mut() {
            if line.trim_start().starts_with("```") {
                // One value, or one value per line.
                let body = body.trim();
                let values: Vec<&str> = if serde_json::from_str::<Value>(body).is_ok() {
                    vec![body]
                } else {
                    body.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect()
                };
                for text in values {
                    out.push(Example {
                        line: *start,
                        kind: classify(section, "", text),
                        text: text.to_string(),
                    });
                }
                block = None;
            } else {
                body.push_str(line);
                body.push('\n');
            }
            continue;
        }
        if let Some(title) = line.strip_prefix("## ") {
            section = title;
            continue;
        }
        if line.trim() == "```json" {
            block = Some((n, String::new()));
            continue;
        }
        for span in line.split('`').skip(1).step_by(2) {
            if span.starts_with("{\"") && span.ends_with('}') {
                out.push(Example {
                    line: n,
                    kind: classify(section, line, span),
                    text: span.to_string(),
                });
            }
        }
    }
    assert!(block.is_none(), "an unclosed ```json block");
    out
}

fn classify(section: &str, line: &str, text: &str) -> Kind {
    let value: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON: {text}: {e}"));
    match section {
        "Client messages" => match value["verb"].as_str() {
            // The coordinator's answer to CREATE_SESSION / CONNECT_SESSION_WITH_CODE is the
            // spec's one message keyed by "verb".
            Some("CONNECT_TO_SESSION") | None => Kind::ToClient,
            Some(_) => Kind::Request,
        },
        "The node link" if line.starts_with("| node -> |") => Kind::FromNode,
        "The node link" => Kind::ToNode,
        "Registry: both stages" => {
            if value.get("time_between_updates_seconds").is_some() {
                Kind::Configuration
            } else if value[0].get("server_name").is_some() {
                Kind::ServersFile
            } else if value[0].get("code").is_some() {
                Kind::PlannedFile
            } else {
                panic!("an example of no known file in \"Registry\": {text}")
            }
        }
        other => panic!("a JSON example in section {other:?}, which has no message kind: {text}"),
    }
}

/// `text` parsed as `T` and written back is the same JSON.
fn round_trip<T: DeserializeOwned + Serialize>(text: &str) -> Result<(), String> {
    let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let parsed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&parsed).map_err(|e| e.to_string())?;
    if back == value {
        Ok(())
    } else {
        Err(format!("written back as {back}"))
    }
}

fn name(value: &Value) -> String {
    value["verb"]
        .as_str()
        .or(value["msg"].as_str())
        .unwrap_or("")
        .to_string()
}

fn names(list: &str) -> BTreeSet<String> {
    list.split_whitespace().map(String::from).collect()
}

#[test]
fn every_example_in_the_doc_round_trips_as_its_message() {
    let examples = examples();
    assert!(
        examples.len() >= 35,
        "only {} examples found",
        examples.len()
    );
    let mut seen: [BTreeSet<String>; 4] = Default::default();
    let mut files = BTreeSet::new();
    for e in &examples {
        let value: Value = serde_json::from_str(&e.text).unwrap();
        let result = match e.kind {
            Kind::Request => match parse_client_request(&e.text) {
                Ok(req) => {
                    let back = serde_json::to_value(&req).unwrap();
                    if back == value {
                        Ok(())
                    } else {
                        Err(format!("written back as {back}"))
                    }
                }
                Err(err) => Err(format!("{}: {}", err.code.as_str(), err.message)),
            },
            Kind::ToClient => round_trip::<ToClient>(&e.text),
            Kind::FromNode => round_trip::<FromNode>(&e.text),
            Kind::ToNode => round_trip::<ToNode>(&e.text),
            Kind::ServersFile => round_trip::<Vec<ServersFileEntry>>(&e.text),
            Kind::Configuration => round_trip::<FileConfiguration>(&e.text),
            Kind::PlannedFile => round_trip::<Vec<PlannedFileEntry>>(&e.text),
        };
        if let Err(why) = result {
            panic!(
                "docs/coordinator.md line {}: not a {:?}: {}\n  {why}",
                e.line, e.kind, e.text
            );
        }
        match e.kind {
            Kind::Request => seen[0].insert(name(&value)),
            Kind::ToClient => seen[1].insert(name(&value)),
            Kind::FromNode => seen[2].insert(name(&value)),
            Kind::ToNode => seen[3].insert(name(&value)),
            other => files.insert(format!("{other:?}")),
        };
    }
    assert_eq!(
        seen[0],
        names("CONNECT_SESSION_WITH_CODE CREATE_SESSION EXTEND_SESSION GET_SERVERS PLAN_SESSION"),
        "client requests with an example"
    );
    assert_eq!(
        seen[1],
        names(
            "CONNECTION_CODE CONNECT_TO_SESSION ERROR SERVERS_BUSY SERVERS_FOUND SERVERS_NOT_FOUND \
             SESSION_CONNECTION_ESTABLISHED SESSION_ENDED SESSION_ENDING SESSION_EXTENDED \
             SESSION_NOT_EXIST WELCOME"
        ),
        "client messages with an example"
    );
    assert_eq!(
        seen[2],
        names(
            "CALL_EVENT CONNECT_TO_SESSION CREATE_SESSION_FAILED HEARTBEAT PARTICIPANT_LEFT \
             SESSION_CONNECTION_ESTABLISHED SESSION_ENDED"
        ),
        "node messages with an example"
    );
    assert_eq!(
        seen[3],
        names("CALL_SETTINGS CONNECT_USER_TO_SESSION CREATE_SESSION END_SESSION ERROR"),
        "messages to nodes with an example"
    );
    assert_eq!(
        files,
        names("Configuration PlannedFile ServersFile"),
        "files with an example"
    );
}

/// A wrong example is caught: the check above is not one that anything passes.
#[test]
fn a_wrong_example_fails_the_round_trip() {
    // An extra field, a misspelt field, a field of the wrong type, the wrong direction.
    assert!(round_trip::<ToClient>(r#"{"msg":"SERVERS_BUSY","extra":1}"#).is_err());
    assert!(round_trip::<ToClient>(r#"{"msg":"CONNECTION_CODE","cod":"1234"}"#).is_err());
    assert!(round_trip::<ToNode>(r#"{"verb":"END_SESSION","code":1234,"reason":"idle"}"#).is_err());
    assert!(
        round_trip::<FromNode>(r#"{"verb":"END_SESSION","code":"1234","reason":"idle"}"#).is_err()
    );
    assert!(parse_client_request(r#"{"verb":"GET_SERVERS","rang":"0-20"}"#).is_err());
    assert!(round_trip::<ToClient>(r#"{"msg":"SERVERS_BUSY"}"#).is_ok());
}
