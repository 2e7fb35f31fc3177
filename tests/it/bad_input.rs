//! Fuzz-style: a WebSocket client sends malformed JSON, wrong types, a 100 kB message, unknown
//! messages, messages out of order and a join with an unknown code to a real server. Each gets
//! an `error` with the right code and the connection stays open; afterwards the same server still
//! serves well-behaved bots.

use std::time::Duration;

use crate::support::*;
use futures_util::SinkExt;
use orbita_protocol::{ErrorCode, ServerMsg};
use tokio_tungstenite::tungstenite::Message;

async fn expect_error(ws: &mut Ws, send: Message, want: ErrorCode) {
    let label = match &send {
        Message::Text(t) => t.chars().take(60).collect::<String>(),
        other => format!("{:?}", other).chars().take(60).collect(),
    };
    ws.send(send).await.expect("send");
    let mut msg = next_server_msg(ws).await;
    // `call_info` follows a successful join: not what this waits for.
    while matches!(msg, ServerMsg::CallInfo { .. }) {
        msg = next_server_msg(ws).await;
    }
    match msg {
        ServerMsg::Error { code, message } => {
            assert_eq!(code, want, "for {label:?}: {message}");
            assert!(!message.is_empty());
        }
        other => panic!("for {label:?} expected an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_errors_and_the_server_keeps_serving() {
    let mut settings = test_settings();
    settings.messages_per_second = 1000;
    let server = start_server(settings).await;
    let code = create_room(&server).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .expect("ws connects");

    let text = |s: &str| Message::Text(s.to_string().into());
    expect_error(&mut ws, text("{not json"), ErrorCode::BadJson).await;
    expect_error(&mut ws, text("[1,2,3]"), ErrorCode::BadJson).await;
    expect_error(&mut ws, text("\"join\""), ErrorCode::BadJson).await;
    expect_error(
        &mut ws,
        text(r#"{"type":"teleport"}"#),
        ErrorCode::BadMessage,
    )
    .await;
    expect_error(&mut ws, text(r#"{"no_type":1}"#), ErrorCode::BadMessage).await;
    expect_error(
        &mut ws,
        text(r#"{"type":"join","v":"1","code":1234,"name":null}"#),
        ErrorCode::BadMessage,
    )
    .await;
    expect_error(
        &mut ws,
        text(r#"{"type":"join","v":1,"code":"1234"}"#),
        ErrorCode::BadMessage,
    )
    .await;
    let big = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(100_000));
    expect_error(&mut ws, Message::Text(big.into()), ErrorCode::TooLarge).await;
    expect_error(
        &mut ws,
        Message::Binary(vec![0u8; 64].into()),
        ErrorCode::BadMessage,
    )
    .await;
    // Out of order: media and chat before joining.
    expect_error(
        &mut ws,
        text(r#"{"type":"chat","text":"hi"}"#),
        ErrorCode::OutOfOrder,
    )
    .await;
    expect_error(
        &mut ws,
        text(r#"{"type":"offer","pc":"publisher","sdp":"v=0"}"#),
        ErrorCode::OutOfOrder,
    )
    .await;
    // Joins that cannot succeed.
    let unknown = if code == "0000" { "0001" } else { "0000" };
    expect_error(
        &mut ws,
        text(&format!(
            r#"{{"type":"join","v":1,"code":"{unknown}","name":"x"}}"#
        )),
        ErrorCode::UnknownCode,
    )
    .await;
    expect_error(
        &mut ws,
        text(&format!(
            r#"{{"type":"join","v":99,"code":"{code}","name":"x"}}"#
        )),
        ErrorCode::UnsupportedVersion,
    )
    .await;
    expect_error(
        &mut ws,
        text(&format!(
            r#"{{"type":"join","v":1,"code":"{code}","name":"   "}}"#
        )),
        ErrorCode::InvalidValue,
    )
    .await;

    // The same connection can still join properly, and then gets errors for bad media input.
    ws.send(text(&format!(
        r#"{{"type":"join","v":1,"code":"{code}","name":"fuzzer"}}"#
    )))
    .await
    .unwrap();
    assert!(matches!(
        next_server_msg(&mut ws).await,
        ServerMsg::Joined { .. }
    ));
    expect_error(
        &mut ws,
        text(r#"{"type":"join","v":1,"code":"1","name":"again"}"#),
        ErrorCode::OutOfOrder,
    )
    .await;
    expect_error(
        &mut ws,
        text(r#"{"type":"offer","pc":"publisher","sdp":"this is not sdp","tracks":[]}"#),
        ErrorCode::SdpError,
    )
    .await;
    expect_error(
        &mut ws,
        text(r#"{"type":"answer","pc":"subscriber","sdp":"v=0"}"#),
        ErrorCode::SdpError,
    )
    .await;
    expect_error(
        &mut ws,
        text(r#"{"type":"offer","pc":"subscriber","sdp":"v=0","tracks":[]}"#),
        ErrorCode::OutOfOrder,
    )
    .await;
    expect_error(
        &mut ws,
        text(r#"{"type":"set_quality","max":"huge"}"#),
        ErrorCode::InvalidValue,
    )
    .await;
    expect_error(
        &mut ws,
        text(r#"{"type":"mute","source":"camera","muted":true}"#),
        ErrorCode::InvalidValue,
    )
    .await;
    expect_error(
        &mut ws,
        text(r#"{"type":"candidate","pc":"publisher","candidate":"candidate:garbage"}"#),
        ErrorCode::InvalidValue,
    )
    .await;
    ws.send(text(r#"{"type":"ping","id":7}"#)).await.unwrap();
    assert_eq!(
        next_server_msg(&mut ws).await,
        ServerMsg::Pong { id: Some(7) }
    );

    // Well-behaved bots are served by the same server, in the same room, next to the fuzzer.
    let a = join_bot(&server, &code, "a").await;
    let b = join_bot(&server, &code, "b").await;
    a.wait_for_media_from(b.participant_id(), MEDIA_TIMEOUT)
        .await
        .expect("a receives b");
    b.wait_for_media_from(a.participant_id(), MEDIA_TIMEOUT)
        .await
        .expect("b receives a");
    a.send_chat("hello after the fuzz").unwrap();
    b.wait_for(
        |s| s.chat.iter().any(|c| c.text == "hello after the fuzz"),
        Duration::from_secs(5),
    )
    .await
    .expect("chat is relayed");
    server.shutdown().await.unwrap();
}

/// A stranger's 10 MiB message before `join` is not read: the connection is dropped with
/// close code 1009 (message too big) once it passes the transport cap (256 KiB with the
/// default 64 KiB `max_message_bytes`); the server serves the next connection as before.
/// The close code the server ends `ws` with (None: it just went away), within 10 s.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match futures_util::StreamExt::next(ws).await {
                Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => break None,
            }
        }
    })
    .await
    .expect("the connection is dropped")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_is_closed_when_it_does_not_join_in_time() {
    let settings = orbita_server::config::Settings {
        join_timeout: Duration::from_secs(1),
        ..test_settings()
    };
    let server = start_server(settings).await;
    let code = create_room(&server).await;
    let (mut silent, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .unwrap();
    // A participant who joined at once stays.
    let bot = join_bot(&server, &code, "stays").await;
    assert_eq!(
        close_code(&mut silent).await,
        Some(1008),
        "policy violation"
    );
    assert_eq!(
        server.registry().participant_count(),
        1,
        "the joined participant is still in"
    );
    drop(bot);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_message_before_join_drops_only_that_connection() {
    let server = start_server(test_settings()).await;
    let code = create_room(&server).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url())
        .await
        .unwrap();
    let huge = format!(r#"{{"type":"chat","text":"{}"}}"#, "x".repeat(10 << 20));
    // The server may close while the client is still writing: either way the socket ends.
    let _ = ws.send(Message::Text(huge.into())).await;
    let ended = close_code(&mut ws).await;
    assert!(matches!(ended, Some(1009) | None), "{ended:?}");

    let bot = join_bot(&server, &code, "next").await;
    assert!(!bot.participant_id().is_empty());
    server.shutdown().await.unwrap();
}
