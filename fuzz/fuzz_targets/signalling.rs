//! Signalling JSON: client messages as `/ws` parses them, handled by a real SFU room; server
//! messages round-tripped.
//!
//! The input is up to [`MAX_LINES`] lines, each one WebSocket text message. Every line is
//! parsed as the server parses client messages (`parse_client_msg`); a parsed message must
//! serialise and parse back to itself. Parsed messages other than `join` and `leave` (which
//! the connection handles itself) go to participant A of a room on the shared SFU (with
//! participant B and an app attached), exactly as `ws.rs` hands them over; `$A` and `$B` in a
//! line stand for A's and B's participant ids, so `to` fields can name someone real. Every
//! line is also read as a server message, which must round-trip too.

#![no_main]

use libfuzzer_sys::fuzz_target;
use orbita_fuzz::sfu_session::Session;
use orbita_protocol::{parse_client_msg, ClientMsg, ServerMsg};

/// Most messages taken from one input.
const MAX_LINES: usize = 32;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut session = Session::new();
    let b = session.join("B", false);
    let a = session.join("A", false);
    let (id_a, id_b) = (session.id_of(a), session.id_of(b));
    let mut sent = 0;
    for line in text.lines().take(MAX_LINES) {
        let line = line.replace("$A", &id_a).replace("$B", &id_b);
        server_round_trip(&line);
        let Ok(msg) = parse_client_msg(&line) else {
            continue;
        };
        let again = serde_json::to_string(&msg).expect("client messages serialise");
        assert_eq!(
            parse_client_msg(&again).as_ref(),
            Ok(&msg),
            "a client message does not round-trip: {again}"
        );
        match msg {
            ClientMsg::Join { .. } | ClientMsg::Leave => {}
            msg => {
                session.send(a, msg);
                sent += 1;
            }
        }
    }
    if sent > 0 {
        session.settle(a);
    }
});

/// A server message, if the line is one, serialises and parses back to itself.
fn server_round_trip(line: &str) {
    if let Ok(msg) = serde_json::from_str::<ServerMsg>(line) {
        let again = serde_json::to_string(&msg).expect("server messages serialise");
        let back: ServerMsg = serde_json::from_str(&again)
            .unwrap_or_else(|e| panic!("a server message does not parse back: {e}: {again}"));
        assert_eq!(back, msg, "a server message does not round-trip: {again}");
    }
}
