//! The bot against a stand-in server: a WebSocket speaking protocol v1 and a frame-mode str0m
//! "SFU" that echoes the bot's own media back to it on its subscriber connection (as if sent
//! by a participant `p-echo`), forwarding one simulcast layer picked by `set_quality` and
//! switching layers on a keyframe, like the real SFU. This exercises the bot's SDP, ICE,
//! DTLS, simulcast sending, keyframe restarts and receive accounting without the real server.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use orbita_bot::{Bot, BotOptions, JoinError};
use orbita_protocol::{
    ClientMsg, ErrorCode, Limits, MaxQuality, MediaKind as PKind, ParticipantInfo, PcKind,
    ServerMsg, SubscribedTrack, TrackInfo, TrackSource,
};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_tungstenite::tungstenite::Message;

const ECHO: &str = "p-echo";

fn rtc() -> Rtc {
    RtcConfig::new()
        .set_crypto_provider(std::sync::Arc::new(str0m::crypto::from_feature_flags()))
        .set_ice_lite(true)
        .build(Instant::now())
}

struct Side {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    timeout: Instant,
}

impl Side {
    async fn new() -> Side {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let mut rtc = rtc();
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut s = Side {
            rtc,
            socket,
            local,
            timeout: Instant::now(),
        };
        s.drain();
        s
    }

    fn drain(&mut self) -> Vec<Event> {
        let mut events = vec![];
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(t) => {
                    self.timeout = t;
                    return events;
                }
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(e) => events.push(e),
            }
        }
    }

    fn receive(&mut self, source: SocketAddr, data: &[u8]) -> Vec<Event> {
        if let Ok(contents) = data.try_into() {
            let input = Input::Receive(
                Instant::now(),
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: self.local,
                    contents,
                },
            );
            let _ = self.rtc.handle_input(input);
        }
        self.drain()
    }

    fn tick(&mut self) -> Vec<Event> {
        let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
        self.drain()
    }
}

fn rid_for(max: &str) -> Rid {
    let q = MaxQuality::parse(max).unwrap_or(MaxQuality::Auto);
    let rid = [("f", 1280, 720), ("h", 640, 360), ("q", 320, 180)]
        .into_iter()
        .find(|(_, w, h)| q.allows(*w, *h))
        .map_or("q", |(r, _, _)| r);
    Rid::from(rid)
}

async fn send(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>, msg: &ServerMsg) {
    ws.send(Message::text(serde_json::to_string(msg).unwrap()))
        .await
        .unwrap();
}

/// One connection of the stand-in server.
async fn serve(stream: TcpStream) {
    let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
    // join
    let Some(Ok(Message::Text(t))) = ws.next().await else {
        return;
    };
    let ClientMsg::Join { code, .. } = serde_json::from_str(t.as_str()).unwrap() else {
        panic!("first message is not join");
    };
    if code == "0000" {
        send(
            &mut ws,
            &ServerMsg::error(ErrorCode::UnknownCode, "no room 0000"),
        )
        .await;
        return;
    }
    send(
        &mut ws,
        &ServerMsg::Joined {
            v: 1,
            participant_id: "p-bot".into(),
            code,
            participants: vec![ParticipantInfo {
                participant_id: ECHO.into(),
                name: "Echo".into(),
                tracks: vec![],
                ingest: false,
                role: orbita_protocol::Role::Agent,
            }],
            ice_servers: vec![],
            limits: Limits {
                max_message_bytes: 65536,
                max_chat_chars: 2000,
                max_participants: 50,
                max_file_bytes: 0,
            },
            role: orbita_protocol::Role::Customer,
            features: Default::default(),
            recording: orbita_protocol::RecordingState::Off,
        },
    )
    .await;

    // The subscriber offer goes out at once: the server may offer at any time.
    let mut sub = Side::new().await;
    let (sub_audio, sub_video, offer, mut sub_pending) = {
        let mut api = sub.rtc.sdp_api();
        let a = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let v = api.add_media(MediaKind::Video, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        (a, v, offer, Some(pending))
    };
    sub.drain();
    let tracks = vec![
        SubscribedTrack {
            mid: sub_audio.to_string(),
            track_id: "echo-a".into(),
            participant_id: ECHO.into(),
            kind: PKind::Audio,
            source: TrackSource::Microphone,
        },
        SubscribedTrack {
            mid: sub_video.to_string(),
            track_id: "echo-v".into(),
            participant_id: ECHO.into(),
            kind: PKind::Video,
            source: TrackSource::Camera,
        },
    ];
    send(
        &mut ws,
        &ServerMsg::Offer {
            pc: PcKind::Subscriber,
            sdp: offer.to_sdp_string(),
            tracks,
        },
    )
    .await;

    let mut publ: Option<Side> = None;
    let mut pub_video: Option<Mid> = None;
    let mut simulcast = true;
    let mut want = Rid::from("h");
    let mut current: Option<Rid> = None;
    let mut last_kf_request = Instant::now() - Duration::from_secs(10);
    let mut buf_p = vec![0u8; 2048];
    let mut buf_s = vec![0u8; 2048];

    loop {
        let mut deadline = sub.timeout;
        if let Some(p) = &publ {
            deadline = deadline.min(p.timeout);
        }
        let deadline = deadline.min(Instant::now() + Duration::from_millis(100));
        let mut pub_events = vec![];
        let mut sub_events = vec![];
        tokio::select! {
            msg = ws.next() => {
                let Some(Ok(Message::Text(t))) = msg else { return };
                match serde_json::from_str::<ClientMsg>(t.as_str()).unwrap() {
                    ClientMsg::Offer { sdp, tracks, .. } => {
                        let mut side = Side::new().await;
                        let offer = SdpOffer::from_sdp_string(&sdp).unwrap();
                        let answer = side.rtc.sdp_api().accept_offer(offer).unwrap();
                        pub_events = side.drain();
                        if let Some(cam) = tracks.iter().find(|t| t.source == TrackSource::Camera) {
                            if cam.layers.is_empty() {
                                simulcast = false;
                            } else {
                                assert!(answer.to_sdp_string().contains("a=simulcast:recv f;h;q"));
                                assert_eq!(cam.layers.len(), 3);
                            }
                            pub_video = Some(Mid::from(cam.mid.as_str()));
                        }
                        let infos = tracks
                            .iter()
                            .enumerate()
                            .map(|(i, t)| TrackInfo {
                                track_id: format!("bot-{i}"),
                                participant_id: "p-bot".into(),
                                kind: if t.source.is_audio() { PKind::Audio } else { PKind::Video },
                                source: t.source,
                                muted: false,
                                simulcast: !t.layers.is_empty(),
                            })
                            .collect();
                        publ = Some(side);
                        send(&mut ws, &ServerMsg::Answer { pc: PcKind::Publisher, sdp: answer.to_sdp_string(), tracks: infos }).await;
                    }
                    ClientMsg::Answer { sdp, .. } => {
                        let answer = SdpAnswer::from_sdp_string(&sdp).unwrap();
                        let pending: SdpPendingOffer = sub_pending.take().expect("one offer");
                        sub.rtc.sdp_api().accept_answer(pending, answer).unwrap();
                        sub_events = sub.drain();
                    }
                    ClientMsg::Candidate { pc, candidate } if !candidate.is_empty() => {
                        let c = Candidate::from_sdp_string(&candidate).unwrap();
                        let side = if pc == PcKind::Publisher { publ.as_mut().unwrap() } else { &mut sub };
                        side.rtc.add_remote_candidate(c);
                        let ev = side.drain();
                        if pc == PcKind::Publisher { pub_events = ev } else { sub_events = ev }
                    }
                    ClientMsg::SetQuality { max, .. } => want = rid_for(&max),
                    ClientMsg::Chat { text, .. } => {
                        send(&mut ws, &ServerMsg::Chat { from: ECHO.into(), name: "Echo".into(), text, private: false, ts: 1 }).await;
                    }
                    ClientMsg::Leave => {
                        send(&mut ws, &ServerMsg::Left).await;
                        let _ = ws.close(None).await;
                        return;
                    }
                    _ => {}
                }
            }
            r = async { match &publ { Some(p) => p.socket.recv_from(&mut buf_p).await, None => std::future::pending().await } } => {
                let (n, src) = r.unwrap();
                pub_events = publ.as_mut().unwrap().receive(src, &buf_p[..n]);
            }
            r = sub.socket.recv_from(&mut buf_s) => {
                let (n, src) = r.unwrap();
                sub_events = sub.receive(src, &buf_s[..n]);
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                sub_events = sub.tick();
                if let Some(p) = &mut publ { pub_events = p.tick(); }
            }
        }

        // The subscriber asks for a keyframe: pass it on to the forwarded layer.
        let mut request: Option<Rid> = None;
        for e in sub_events {
            if let Event::KeyframeRequest(_) = e {
                request = current.or(Some(want));
            }
        }
        // Forward the publisher's media, switching layers only on a keyframe.
        for e in pub_events {
            let Event::MediaData(data) = e else { continue };
            let mid = if data.params.spec().codec.is_audio() {
                sub_audio
            } else {
                if !simulcast {
                    sub_video
                } else if data.rid != Some(want) {
                    continue;
                } else {
                    if current != Some(want) {
                        if !data.is_keyframe() {
                            if last_kf_request.elapsed() > Duration::from_millis(300) {
                                request = Some(want);
                            }
                            continue;
                        }
                        current = Some(want);
                    }
                    sub_video
                }
            };
            let Some(w) = sub.rtc.writer(mid) else {
                continue;
            };
            let Some(pt) = w.match_params(data.params) else {
                continue;
            };
            let _ = w.write(pt, data.network_time, data.time, data.data.clone());
            sub.drain();
        }
        if let (Some(rid), Some(p), Some(mid)) = (request, publ.as_mut(), pub_video) {
            if let Some(mut w) = p.rtc.writer(mid) {
                let rid = simulcast.then_some(rid);
                let _ = w.request_keyframe(rid, KeyframeRequestKind::Pli);
            }
            p.drain();
            last_kf_request = Instant::now();
        }
    }
}

async fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    });
    format!("ws://{addr}/ws")
}

#[tokio::test]
async fn relay_only_without_a_relay_is_a_clear_join_failure() {
    // The stand-in server's `joined` lists no ICE servers.
    let url = server().await;
    let mut opts = BotOptions::new(&url, "4821", "bot");
    opts.relay_only = true;
    let err = Bot::join(opts).await.unwrap_err().to_string();
    assert_eq!(
        err,
        "--relay-only: the server offers no TURN relay (`joined` has no ice_servers); \
         give `orbita serve` --turn-urls and ORBITA_TURN_SECRET"
    );
}

#[tokio::test]
async fn unknown_code_is_a_join_error() {
    let url = server().await;
    let err = Bot::join(BotOptions::new(&url, "0000", "bot"))
        .await
        .unwrap_err();
    let join = err.downcast_ref::<JoinError>().expect("a JoinError");
    assert_eq!(join.code, ErrorCode::UnknownCode);
    assert_eq!(
        err.to_string(),
        "the server refused the join (unknown_code): no room 0000"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_simulcast_and_receives_the_echo() {
    let url = server().await;
    let mut bot = Bot::join(BotOptions::new(&url, "4821", "loop"))
        .await
        .unwrap();
    assert_eq!(bot.participant_id(), "p-bot");

    // The echo of the "h" layer: 640x360 keyframes, plus audio.
    let s = bot
        .wait_for(
            |s| {
                s.received_av_from(ECHO)
                    && s.track("echo-v").and_then(|t| t.last_resolution) == Some((640, 360))
                    && s.track("echo-a").is_some_and(|t| t.frames >= 25)
            },
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    println!("{}", s.report());
    assert!(s.publisher.connected && s.subscriber.connected);
    assert_eq!(s.published.len(), 2);
    for key in ["audio", "video/f", "video/h", "video/q"] {
        let sent = s.sent.iter().find(|x| x.key == key).unwrap();
        assert!(sent.active && sent.frames > 0, "{key}: {sent:?}");
    }
    let audio = s.track("echo-a").unwrap();
    assert_eq!(audio.codec.as_deref(), Some("opus"));
    assert!(audio.packets >= audio.frames && audio.bytes > 0);
    let video = s.track("echo-v").unwrap();
    assert_eq!(video.codec.as_deref(), Some("vp8"));
    assert!(
        video.packets > video.frames,
        "720p/360p frames span several packets"
    );
    assert!(video.first_keyframe_ms.is_some() && video.first_packet_ms.is_some());

    // Raise the cap: the stand-in asks the bot for a keyframe on "f" and switches on it.
    bot.set_quality("1280x720").unwrap();
    let s = bot
        .wait_for(
            |s| s.track("echo-v").and_then(|t| t.last_resolution) == Some((1280, 720)),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let f = s.sent.iter().find(|x| x.key == "video/f").unwrap();
    assert!(f.keyframe_requests >= 1, "{f:?}");
    let v = s.track("echo-v").unwrap();
    assert_eq!(v.resolutions.len(), 2, "{:?}", v.resolutions);

    bot.send_chat("hello").unwrap();
    let s = bot
        .wait_for(
            |s| s.chat.iter().any(|c| c.text == "hello"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(s.chat[0].from, ECHO);
    assert_eq!(bot.chat_messages().len(), 1);

    let s = bot.leave().await.unwrap();
    assert!(!s.running);
    assert_eq!(s.ended.as_deref(), Some("left"));
    assert!(bot.send_chat("too late").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_loops_for_seconds_without_loss() {
    let url = server().await;
    let mut opts = BotOptions::new(&url, "4821", "long");
    opts.max_quality = Some("320x240".into());
    let mut bot = Bot::join(opts).await.unwrap();
    // 4 s: past the end of the 3 s files, so the loop (and its timestamps) is exercised.
    let s = bot
        .wait_for(
            |s| s.track("echo-v").is_some_and(|t| t.frames >= 120),
            Duration::from_secs(15),
        )
        .await
        .unwrap();
    println!("{}", s.report());
    let v = s.track("echo-v").unwrap();
    let a = s.track("echo-a").unwrap();
    assert_eq!(v.last_resolution, Some((320, 180)), "the capped layer");
    assert_eq!((v.lost_packets, v.stream_resets), (0, 0), "{v:?}");
    assert_eq!((a.lost_packets, a.stream_resets), (0, 0), "{a:?}");
    assert!(v.keyframes >= 4, "a keyframe every second: {v:?}");
    assert!(
        v.rtp_packets > 0 && a.rtp_packets > 0,
        "str0m ingress stats arrive"
    );
    assert!(
        s.sent.iter().all(|x| x.rtp_packets > 0),
        "egress stats: {:?}",
        s.sent
    );
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    bot.leave().await.unwrap();
}

#[tokio::test]
async fn cli_runs_for_its_duration_and_reports() {
    let url = server().await;
    let args = orbita_bot::cli::BotArgs {
        url,
        code: "4821".into(),
        name: "cli".into(),
        no_audio: false,
        no_video: false,
        no_simulcast: true,
        max_quality: None,
        duration: 1,
        json: true,
        bind_ip: "127.0.0.1".parse().unwrap(),
        relay_only: false,
        key: None,
        audio_file: None,
        consent: None,
    };
    let mut out = Vec::new();
    orbita_bot::cli::run_to(args, &mut out).await.unwrap();
    // The JSON report: the echo participant's audio and video were received, frames and
    // keyframes counted, nothing lost, and it stayed the 1 s it was told to.
    let report: serde_json::Value = serde_json::from_slice(&out).expect("a JSON report");
    assert_eq!(report["code"], "4821", "{report}");
    assert_eq!(report["name"], "cli", "{report}");
    assert_eq!(report["running"], false, "{report}");
    assert!(report["elapsed_ms"].as_u64().unwrap() >= 1000, "{report}");
    for (track, kind) in [("echo-v", "video"), ("echo-a", "audio")] {
        let t = report["tracks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["track_id"] == track)
            .unwrap_or_else(|| panic!("no {track} in {report}"));
        assert_eq!(t["participant_id"], ECHO, "{t}");
        assert_eq!(t["kind"], kind, "{t}");
        assert!(t["frames"].as_u64().unwrap() > 0, "{t}");
        assert!(t["bytes"].as_u64().unwrap() > 0, "{t}");
        assert_eq!(t["lost_packets"], 0, "{t}");
    }
    assert!(report["errors"].as_array().unwrap().is_empty(), "{report}");

    let mut args_err = orbita_bot::cli::BotArgs {
        url: server().await,
        code: "0000".into(),
        name: "cli".into(),
        no_audio: true,
        no_video: true,
        no_simulcast: false,
        max_quality: None,
        duration: 1,
        json: false,
        bind_ip: "127.0.0.1".parse().unwrap(),
        relay_only: false,
        key: None,
        audio_file: None,
        consent: None,
    };
    let mut out = Vec::new();
    let err = orbita_bot::cli::run_to(args_err.clone(), &mut out)
        .await
        .unwrap_err();
    assert!(out.is_empty(), "no report without a join");
    assert!(format!("{err:#}").contains("unknown_code"), "{err:#}");
    args_err.url = "ws://127.0.0.1:9/ws".into();
    assert!(orbita_bot::cli::run(args_err).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn muting_stops_and_unmuting_resumes_with_a_keyframe() {
    let url = server().await;
    let mut bot = Bot::join(BotOptions::new(&url, "4821", "mute"))
        .await
        .unwrap();
    bot.wait_for(|s| s.received_av_from(ECHO), Duration::from_secs(15))
        .await
        .unwrap();
    bot.set_muted(TrackSource::Camera, true).unwrap();
    let s = bot
        .wait_for(
            |s| {
                s.track("echo-v")
                    .and_then(|t| t.age_ms)
                    .is_some_and(|a| a > 500)
            },
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert!(
        s.track("echo-a").unwrap().age_ms.unwrap() < 200,
        "audio goes on"
    );
    let (frames, keyframes) = {
        let v = s.track("echo-v").unwrap();
        (v.frames, v.keyframes)
    };
    bot.set_muted(TrackSource::Camera, false).unwrap();
    let s = bot
        .wait_for(
            |s| s.track("echo-v").is_some_and(|t| t.frames > frames),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let v = s.track("echo-v").unwrap();
    assert!(
        v.keyframes > keyframes,
        "the first frame after unmuting is a keyframe"
    );
    assert_eq!(v.lost_packets, 0);
    bot.leave().await.unwrap();
}
