//! WHIP ingest: a str0m client publishes Opus into a room by one HTTP POST (as OBS does); a bot
//! in the room receives it; DELETE ends it. Bad requests get the right HTTP status.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;
use orbita_bot::stats::RoomEventKind;
use orbita_protocol::MediaKind;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, Frequency, MediaKind as StrKind, MediaTime};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, RtcConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whip_publisher_reaches_the_room() {
    let server = start_server(test_settings()).await;
    let http = crate::support::http();
    let created: serde_json::Value = http
        .post(format!("http://{}/api/rooms", server.http_addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = created["code"].as_str().unwrap().to_string();
    let whip_url = created["whip_url"].as_str().unwrap().to_string();
    let token = created["whip_token"].as_str().unwrap().to_string();
    assert!(whip_url.ends_with(&format!("/whip/{code}")));
    let viewer = join_bot_with(&server, &code, "viewer", |o| {
        o.publish_audio = false;
        o.publish_video = false;
    })
    .await;

    // The client: one sendonly Opus m-line, a host candidate on its own UDP socket.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let local = socket.local_addr().unwrap();
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .clear_codecs()
        .enable_opus(true, false)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let mut api = rtc.sdp_api();
    let mid = api.add_media(StrKind::Audio, Direction::SendOnly, None, None, None);
    let (offer, pending) = api.apply().unwrap();
    let offer = offer.to_sdp_string();

    // Refusals first: no token, wrong token, unknown room, not SDP.
    let post = |url: String, token: Option<&str>, ctype: &str, body: String| {
        let mut req = http.post(url).header("content-type", ctype).body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        status(
            post(whip_url.clone(), None, "application/sdp", offer.clone())
                .await
                .unwrap()
        ),
        401
    );
    assert_eq!(
        status(
            post(
                whip_url.clone(),
                Some("nope"),
                "application/sdp",
                offer.clone()
            )
            .await
            .unwrap()
        ),
        403
    );
    // Another code of the same shape: change the first digit (never to itself).
    let first = if code.starts_with('0') { '1' } else { '0' };
    let other = format!("http://{}/whip/{first}{}", server.http_addr(), &code[1..]);
    let other_status = status(
        post(other, Some(&token), "application/sdp", offer.clone())
            .await
            .unwrap(),
    );
    assert_eq!(
        other_status, 403,
        "a wrong code answers as a wrong token does"
    );
    assert_eq!(
        status(
            post(whip_url.clone(), Some(&token), "text/plain", offer.clone())
                .await
                .unwrap()
        ),
        415
    );

    let resp = post(whip_url.clone(), Some(&token), "application/sdp", offer)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{:?}", resp.text().await);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("/whip/{code}/")),
        "{location}"
    );
    let answer = resp.text().await.unwrap();
    rtc.sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();

    // Publish 20 ms Opus packets until the viewer has enough.
    let stop = Arc::new(AtomicBool::new(false));
    let stop_client = stop.clone();
    let client = std::thread::spawn(move || -> anyhow::Result<u64> {
        socket.set_read_timeout(Some(Duration::from_millis(5)))?;
        let opus = orbita_bot::media_file::MediaLibrary::embedded()?.opus;
        let mut buf = vec![0u8; 2000];
        let (mut sent, mut connected) = (0u64, false);
        let mut next_audio = Instant::now();
        let deadline = Instant::now() + MEDIA_TIMEOUT;
        while Instant::now() < deadline && !stop_client.load(Ordering::Relaxed) {
            loop {
                match rtc.poll_output()? {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        socket.send_to(&t.contents, t.destination)?;
                    }
                    Output::Event(Event::Connected) => connected = true,
                    Output::Event(_) => {}
                }
            }
            if connected && Instant::now() >= next_audio {
                let w = rtc.writer(mid).expect("negotiated");
                let pt = w.payload_params().next().expect("opus").pt();
                let packet = opus[(sent as usize) % opus.len()].to_vec();
                w.write(
                    pt,
                    Instant::now(),
                    MediaTime::new(sent * 960, Frequency::FORTY_EIGHT_KHZ),
                    packet,
                )?;
                sent += 1;
                next_audio += Duration::from_millis(20);
                continue;
            }
            match socket.recv_from(&mut buf) {
                Ok((n, source)) => {
                    let input = Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: local,
                            contents: buf[..n].try_into()?,
                        },
                    );
                    rtc.handle_input(input)?;
                }
                Err(_) => rtc.handle_input(Input::Timeout(Instant::now()))?,
            }
        }
        Ok(sent)
    });

    let stats = viewer
        .wait_for(
            |s| {
                s.tracks.iter().any(|t| {
                    t.kind == MediaKind::Audio
                        && t.frames >= 50
                        && t.participant_id.starts_with('p')
                })
            },
            MEDIA_TIMEOUT,
        )
        .await;
    stop.store(true, Ordering::Relaxed);
    let sent = client.join().unwrap().expect("client ran");
    let stats = stats.expect("the viewer receives the WHIP publisher's audio");
    assert!(sent >= 50);
    let whip_pid = stats
        .tracks
        .iter()
        .find(|t| t.kind == MediaKind::Audio)
        .unwrap()
        .participant_id
        .clone();
    assert!(stats
        .participants
        .iter()
        .any(|p| p.participant_id == whip_pid && p.name.starts_with("WHIP")));

    // DELETE ends the publisher: the viewer sees it leave; a second DELETE is 404.
    let url = format!("http://{}{location}", server.http_addr());
    assert_eq!(
        http.delete(&url).send().await.unwrap().status().as_u16(),
        200
    );
    let left = RoomEventKind::ParticipantLeft {
        participant_id: whip_pid,
    };
    viewer
        .wait_for(|s| s.has_event(&left), Duration::from_secs(5))
        .await
        .expect("WHIP publisher left");
    assert_eq!(
        http.delete(&url).send().await.unwrap().status().as_u16(),
        404
    );
    server.shutdown().await.unwrap();
}
