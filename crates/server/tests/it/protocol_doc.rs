//! docs/protocol.md shows an example of every message, and every example is a valid message of
//! the direction its section says.

use std::collections::BTreeSet;

use orbita_protocol::{parse_client_msg, ServerMsg};
use serde_json::Value;

const DOC: &str = include_str!("../../../../docs/protocol.md");

/// The bodies of the ```json code blocks in `section` (from its `## ` heading to the next).
fn json_blocks<'a>(doc: &'a str, section: &str) -> Vec<&'a str> {
    let start = doc
        .find(&format!("\n## {section}\n"))
        .unwrap_or_else(|| panic!("no section {section:?}"));
    let body = &doc[start + 1..];
    let body = &body[..body[3..].find("\n## ").map_or(body.len(), |end| end + 3)];
    body.split("```json\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap().trim())
        .collect()
}

fn type_of(value: &Value) -> String {
    value["type"].as_str().expect("a type field").to_string()
}

fn names(list: &str) -> BTreeSet<String> {
    list.split_whitespace().map(String::from).collect()
}

#[test]
fn every_client_message_has_a_valid_example() {
    let mut seen = BTreeSet::new();
    for block in json_blocks(DOC, "Client to server") {
        let msg = parse_client_msg(block).unwrap_or_else(|e| panic!("{}: {block}", e.message));
        // Re-serialize: misspelt or extra fields would not survive the round trip.
        let value: Value = serde_json::from_str(block).unwrap();
        assert_eq!(serde_json::to_value(&msg).unwrap(), value, "{block}");
        seen.insert(type_of(&value));
    }
    assert_eq!(
        seen,
        names("answer candidate chat devices file_upload give_control input join leave location location_declined location_request mute offer ping pointer record set_quality stats")
    );
}

#[test]
fn every_server_message_has_a_valid_example() {
    let mut seen = BTreeSet::new();
    for block in json_blocks(DOC, "Server to client") {
        let msg: ServerMsg = serde_json::from_str(block).unwrap_or_else(|e| panic!("{e}: {block}"));
        let value: Value = serde_json::from_str(block).unwrap();
        assert_eq!(serde_json::to_value(&msg).unwrap(), value, "{block}");
        seen.insert(type_of(&value));
    }
    assert_eq!(
        seen,
        names(
            "answer app_stopped call_info candidate chat control error file file_upload joined left location location_declined \
             location_request offer participant_joined pointer \
             participant_left pong quality recording server_shutdown track_muted track_published \
             track_unpublished"
        )
    );
}
