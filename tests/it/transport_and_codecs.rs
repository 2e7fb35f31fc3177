//! A hand-driven str0m client (not the bot) checks what the bot does not exercise:
//! - ICE-TCP: a client whose only candidate is TCP reaches the SFU through its one ICE-TCP
//!   listener (RFC 4571 framing) and its audio is forwarded to a UDP bot;
//! - codecs: H.264 and VP9 are negotiated when the client offers only them.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use orbita_protocol::{
    ClientMsg, MediaKind, PcKind, PublishTrack, ServerMsg, TrackSource, PROTOCOL_VERSION,
};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind as StrKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(ws: &mut Ws, msg: &ClientMsg) {
    ws.send(Message::Text(serde_json::to_string(msg).unwrap().into()))
        .await
        .unwrap();
}

/// The next server message matching `want`, skipping others (events, subscriber offers).
async fn recv_until(ws: &mut Ws, mut want: impl FnMut(&ServerMsg) -> bool) -> ServerMsg {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("server answers")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let msg: ServerMsg = serde_json::from_str(&t).unwrap();
            if let ServerMsg::Error { .. } = msg {
                panic!("server error: {msg:?}");
            }
            if want(&msg) {
                return msg;
            }
        }
    }
}

async fn join_raw(url: &str, code: &str, name: &str) -> (Ws, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    send(
        &mut ws,
        &ClientMsg::Join {
            v: PROTOCOL_VERSION,
            code: code.into(),
            name: name.into(),
            key: None,
            consent: None,
        },
    )
    .await;
    match recv_until(&mut ws, |m| matches!(m, ServerMsg::Joined { .. })).await {
        ServerMsg::Joined { participant_id, .. } => (ws, participant_id),
        _ => unreachable!(),
    }
}

/// Offer `media` on a publisher connection; return the pending offer and the server's answer.
async fn publish_offer(
    ws: &mut Ws,
    rtc: &mut Rtc,
    media: &[(StrKind, TrackSource)],
) -> (SdpPendingOffer, String, Vec<Mid>) {
    let mut api = rtc.sdp_api();
    let mids: Vec<Mid> = media
        .iter()
        .map(|(k, _)| api.add_media(*k, Direction::SendOnly, None, None, None))
        .collect();
    let (offer, pending) = api.apply().expect("an offer");
    let tracks = mids
        .iter()
        .zip(media)
        .map(|(mid, (_, source))| PublishTrack {
            mid: mid.to_string(),
            source: *source,
            layers: vec![],
            muted: false,
        })
        .collect();
    send(
        ws,
        &ClientMsg::Offer {
            pc: PcKind::Publisher,
            sdp: offer.to_sdp_string(),
            tracks,
        },
    )
    .await;
    let answer = match recv_until(ws, |m| matches!(m, ServerMsg::Answer { .. })).await {
        ServerMsg::Answer { sdp, tracks, .. } => {
            assert_eq!(
                tracks.len(),
                media.len(),
                "every offered track is published"
            );
            sdp
        }
        _ => unreachable!(),
    };
    (pending, answer, mids)
}

/// Split one RFC 4571 frame off the front of `buf`, when it is complete.
fn take_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let len = u16::from_be_bytes([*buf.first()?, *buf.get(1)?]) as usize;
    (buf.len() >= 2 + len).then(|| buf.drain(..2 + len).skip(2).collect())
}

fn crypto() -> Arc<str0m::crypto::CryptoProvider> {
    Arc::new(str0m::crypto::from_feature_flags())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h264_and_vp9_are_negotiated_when_offered() {
    let server = start_server(test_settings()).await;
    let code = create_room(&server).await;
    for (codec, name) in [(Codec::H264, "H264"), (Codec::Vp9, "VP9")] {
        let (mut ws, _) = join_raw(&server.ws_url(), &code, name).await;
        let config = RtcConfig::new()
            .set_crypto_provider(crypto())
            .clear_codecs()
            .enable_opus(true, false);
        let config = match codec {
            Codec::H264 => config.enable_h264(true),
            _ => config.enable_vp9(true),
        };
        let mut rtc = config.build(Instant::now());
        rtc.add_local_candidate(Candidate::host("127.0.0.1:9".parse().unwrap(), "udp").unwrap());
        let (_pending, answer, _) =
            publish_offer(&mut ws, &mut rtc, &[(StrKind::Video, TrackSource::Camera)]).await;
        assert!(
            answer.contains(&format!(" {name}/90000")),
            "{name} in the answer:\n{answer}"
        );
        assert!(
            !answer.contains(" VP8/90000"),
            "only what was offered:\n{answer}"
        );
    }
    server.shutdown().await.unwrap();
}

/// A client reachable only over ICE-TCP publishes Opus; a UDP bot in the room receives it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_tcp_client_is_forwarded() {
    let server = start_server(test_settings()).await;
    let code = create_room(&server).await;
    let tcp_addr = server.tcp_addr().expect("ICE-TCP is on");
    let listener = join_bot_with(&server, &code, "listener", |o| {
        o.publish_audio = false;
        o.publish_video = false;
    })
    .await;

    let (mut ws, tcp_pid) = join_raw(&server.ws_url(), &code, "tcp-client").await;
    let now = Instant::now();
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(crypto())
        .clear_codecs()
        .enable_opus(true, false)
        .build(now);
    // An active TCP candidate (port 9 by convention, RFC 6544): the only way this client talks.
    let local: SocketAddr = "127.0.0.1:9".parse().unwrap();
    rtc.add_local_candidate(
        Candidate::builder()
            .tcp()
            .host(local)
            .tcptype(TcpType::Active)
            .build()
            .unwrap(),
    );
    let (pending, answer, mids) = publish_offer(
        &mut ws,
        &mut rtc,
        &[(StrKind::Audio, TrackSource::Microphone)],
    )
    .await;
    assert!(
        answer.contains(" tcp ") && answer.contains("tcptype passive"),
        "{answer}"
    );
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();
    let mid = mids[0];

    // Drive the client on a thread: frames over one TCP connection to the SFU.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_client = stop.clone();
    let client = std::thread::spawn(move || -> anyhow::Result<u64> {
        let mut stream = TcpStream::connect(tcp_addr)?;
        stream.set_read_timeout(Some(Duration::from_millis(5)))?;
        let opus = orbita_bot::media_file::MediaLibrary::embedded()?.opus;
        let mut inbuf: Vec<u8> = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut sent = 0u64;
        let mut next_audio = Instant::now();
        let mut connected = false;
        let deadline = Instant::now() + MEDIA_TIMEOUT;
        while Instant::now() < deadline && !stop_client.load(Ordering::Relaxed) {
            // Drain output.
            loop {
                match rtc.poll_output()? {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        assert_eq!(t.proto, Protocol::Tcp, "only TCP is possible");
                        stream.write_all(&(t.contents.len() as u16).to_be_bytes())?;
                        stream.write_all(&t.contents)?;
                    }
                    Output::Event(Event::Connected) => connected = true,
                    Output::Event(_) => {}
                }
            }
            // One mutation per turn; the drain above runs after each.
            if let Some(frame) = take_frame(&mut inbuf) {
                let input = Input::Receive(
                    Instant::now(),
                    Receive {
                        proto: Protocol::Tcp,
                        source: tcp_addr,
                        destination: local,
                        contents: frame.as_slice().try_into()?,
                    },
                );
                rtc.handle_input(input)?;
                continue;
            }
            // Send 20 ms of Opus when due.
            if connected && Instant::now() >= next_audio {
                let pt = rtc
                    .writer(mid)
                    .and_then(|w| w.payload_params().next().map(|p| p.pt()));
                if let (Some(pt), Some(w)) = (pt, rtc.writer(mid)) {
                    let packet = opus[(sent as usize) % opus.len()].clone();
                    let rtp_time = MediaTime::new(sent * 960, Frequency::FORTY_EIGHT_KHZ);
                    w.write(pt, Instant::now(), rtp_time, packet.to_vec())?;
                    sent += 1;
                }
                next_audio += Duration::from_millis(20);
                continue;
            }
            // Read (RFC 4571 frames: a 16-bit length, then the packet).
            match stream.read(&mut chunk) {
                Ok(0) => anyhow::bail!("the SFU closed the TCP connection"),
                Ok(n) => inbuf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e.into()),
            }
            rtc.handle_input(Input::Timeout(Instant::now()))?;
        }
        Ok(sent)
    });

    let stats = listener
        .wait_for(
            |s| {
                s.tracks.iter().any(|t| {
                    t.participant_id == tcp_pid && t.kind == MediaKind::Audio && t.frames >= 50
                })
            },
            MEDIA_TIMEOUT,
        )
        .await;
    stop.store(true, Ordering::Relaxed);
    let sent = client.join().expect("client thread").expect("client ran");
    let stats = stats.expect("the UDP bot receives the TCP client's audio");
    assert!(
        sent >= 50,
        "the TCP client connected and sent audio ({sent} packets)"
    );
    let t = stats
        .tracks
        .iter()
        .find(|t| t.participant_id == tcp_pid)
        .unwrap();
    assert_eq!(t.lost_packets, 0, "TCP is lossless end to end: {t:?}");
    let metrics = metrics_page(&format!("http://{}", server.http_addr())).await;
    assert!(metrics.contains("orbita_participants"), "{metrics}");
    server.shutdown().await.unwrap();
}
