//! Every JSON example in docs/coordinator.md parses as the message (or file) it shows.

use orbita_coordinator::config::{FileConfiguration, PlannedFileEntry, ServersFileEntry};
use orbita_coordinator::verbs::{ClientRequest, FromNode, ToClient, ToNode};
use serde_json::Value;

fn known(v: &Value) -> bool {
    serde_json::from_value::<ClientRequest>(v.clone()).is_ok()
        || serde_json::from_value::<ToClient>(v.clone()).is_ok()
        || serde_json::from_value::<FromNode>(v.clone()).is_ok()
        || serde_json::from_value::<ToNode>(v.clone()).is_ok()
        || serde_json::from_value::<Vec<ServersFileEntry>>(v.clone()).is_ok()
        || serde_json::from_value::<Vec<PlannedFileEntry>>(v.clone()).is_ok()
        || serde_json::from_value::<FileConfiguration>(v.clone()).is_ok()
}

#[test]
fn every_example_in_the_doc_parses() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/coordinator.md"
    ))
    .unwrap();
    let mut examples: Vec<String> = Vec::new();
    // ```json blocks: one value, or one value per line.
    let mut rest = doc.as_str();
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").unwrap();
        let block = body[..end].trim();
        if serde_json::from_str::<Value>(block).is_ok() {
            examples.push(block.to_string());
        } else {
            examples.extend(
                block
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty()),
            );
        }
        rest = &body[end + 3..];
    }
    // `{...}` in tables and text.
    for part in doc.split('`').skip(1).step_by(2) {
        if part.starts_with("{\"") && part.ends_with('}') {
            examples.push(part.to_string());
        }
    }
    assert!(
        examples.len() >= 30,
        "only {} examples found",
        examples.len()
    );
    for e in &examples {
        let v: Value = serde_json::from_str(e).unwrap_or_else(|err| panic!("not JSON: {e}: {err}"));
        assert!(
            known(&v),
            "docs/coordinator.md example is no known message: {e}"
        );
    }
}
