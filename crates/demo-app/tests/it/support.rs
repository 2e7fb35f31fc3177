//! A small WHIP endpoint for the tests: axum for HTTP, and per publish one ICE-lite str0m
//! `Rtc` (frame mode, VP8) on its own UDP socket on 127.0.0.1 whose answer lists a UDP host
//! candidate and a passive TCP one (never served), as the Orbita SFU's does.

#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::Router;
use crossbeam_channel::{Receiver, Sender};
use str0m::change::SdpOffer;
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

/// The token the endpoint expects.
pub const TOKEN: &str = "s3cret-token";

/// One frame the endpoint received.
#[derive(Debug, Clone)]
pub struct Received {
    pub data: Vec<u8>,
    pub rtp_time: u64,
    pub contiguous: bool,
}

/// What a test can do with a publish's media.
pub struct Media {
    pub frames: Receiver<Received>,
    pub control: Sender<Control>,
    pub connected: Receiver<()>,
}

pub enum Control {
    RequestKeyframe,
}

#[derive(Default)]
pub struct Shared {
    /// Answer POSTs with this status and body instead.
    pub refuse: Mutex<Option<(u16, String)>>,
    /// Authorization headers seen on POST.
    pub auth_seen: Mutex<Vec<String>>,
    /// Paths DELETEd.
    pub deleted: Mutex<Vec<String>>,
    /// Media of the publishes, in order.
    pub media: Mutex<Vec<Media>>,
}

pub struct WhipServer {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    _rt: tokio::runtime::Runtime,
}

impl WhipServer {
    pub fn start() -> WhipServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/whip/{code}", post(publish))
            .route("/whip/{code}/resource/{id}", delete(unpublish))
            .with_state(shared.clone());
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
        WhipServer {
            addr,
            shared,
            _rt: rt,
        }
    }

    /// The WHIP URL of a session.
    pub fn url(&self, code: &str) -> String {
        format!("http://{}/whip/{code}", self.addr)
    }

    /// The media of the `i`-th publish, waiting up to 10 s for it.
    pub fn take_media(&self, i: usize) -> Media {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let mut media = self.shared.media.lock().unwrap();
                if media.len() > i {
                    // Replace with a dummy so indices stay stable.
                    let (_, frames) = crossbeam_channel::unbounded();
                    let (control, _) = crossbeam_channel::unbounded();
                    let (_, connected) = crossbeam_channel::unbounded();
                    return std::mem::replace(
                        &mut media[i],
                        Media {
                            frames,
                            control,
                            connected,
                        },
                    );
                }
            }
            assert!(Instant::now() < deadline, "no publish within 10 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn deleted(&self) -> Vec<String> {
        self.shared.deleted.lock().unwrap().clone()
    }
}

async fn publish(
    State(shared): State<Arc<Shared>>,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    shared.auth_seen.lock().unwrap().push(auth.clone());
    if let Some((status, body)) = shared.refuse.lock().unwrap().clone() {
        return (StatusCode::from_u16(status).unwrap(), body).into_response();
    }
    if auth != format!("Bearer {TOKEN}") {
        return (StatusCode::UNAUTHORIZED, "bad token").into_response();
    }
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype != "application/sdp" {
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "want application/sdp").into_response();
    }
    match start_media(&body) {
        Ok((answer, media)) => {
            let id = {
                let mut all = shared.media.lock().unwrap();
                all.push(media);
                all.len()
            };
            (
                StatusCode::CREATED,
                [
                    (header::CONTENT_TYPE, "application/sdp".to_string()),
                    // Relative, as many WHIP servers send it.
                    (header::LOCATION, format!("/whip/{code}/resource/{id}")),
                ],
                answer,
            )
                .into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn unpublish(
    State(shared): State<Arc<Shared>>,
    Path((code, id)): Path<(String, String)>,
) -> StatusCode {
    shared
        .deleted
        .lock()
        .unwrap()
        .push(format!("/whip/{code}/resource/{id}"));
    StatusCode::OK
}

fn start_media(offer: &str) -> Result<(String, Media), String> {
    let offer = SdpOffer::from_sdp_string(offer).map_err(|e| format!("bad offer: {e}"))?;
    let socket = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    set_receive_buffer(&socket, 4 << 20);
    let local = socket.local_addr().unwrap();
    let mut rtc = RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .set_ice_lite(true)
        .clear_codecs()
        .enable_vp8(true)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap())
        .unwrap();
    let tcp = Candidate::builder()
        .tcp()
        .host(SocketAddr::new(local.ip(), 9))
        .tcptype(TcpType::Passive)
        .build()
        .unwrap();
    rtc.add_local_candidate(tcp).unwrap();
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| format!("offer not accepted: {e}"))?;
    let (frames_tx, frames) = crossbeam_channel::unbounded();
    let (control, control_rx) = crossbeam_channel::unbounded();
    let (connected_tx, connected) = crossbeam_channel::unbounded();
    std::thread::spawn(move || media_loop(rtc, socket, frames_tx, control_rx, connected_tx));
    Ok((
        answer.to_sdp_string(),
        Media {
            frames,
            control,
            connected,
        },
    ))
}

/// A large receive buffer, so a starved test thread does not lose packets on loopback.
fn set_receive_buffer(socket: &UdpSocket, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on an open socket with a pointer to a c_int of the stated size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

fn media_loop(
    mut rtc: Rtc,
    socket: UdpSocket,
    frames: Sender<Received>,
    control: Receiver<Control>,
    connected: Sender<()>,
) {
    let local = socket.local_addr().unwrap();
    let mut buf = vec![0u8; 2048];
    let mut mid: Option<Mid> = None;
    let give_up = Instant::now() + Duration::from_secs(60);
    while rtc.is_alive() && Instant::now() < give_up {
        // Drain.
        let timeout = loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(t)) => break t,
                Ok(Output::Transmit(t)) => {
                    let _ = socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => {
                        let _ = connected.send(());
                    }
                    Event::MediaAdded(m) => mid = Some(m.mid),
                    Event::MediaData(d) => {
                        let _ = frames.send(Received {
                            data: d.data.to_vec(),
                            rtp_time: d.time.numer(),
                            contiguous: d.contiguous,
                        });
                    }
                    _ => {}
                },
                Err(e) => {
                    eprintln!("test WHIP server: {e}");
                    return;
                }
            }
        };
        // Due timers first: with media arriving all the time, a receive-or-timeout loop
        // would otherwise never drive str0m's timers (RTCP, keyframe requests).
        let now = Instant::now();
        if now >= timeout {
            if rtc.handle_input(Input::Timeout(now)).is_err() {
                return;
            }
            continue;
        }
        if let Ok(Control::RequestKeyframe) = control.try_recv() {
            if let Some(mut w) = mid.and_then(|m| rtc.writer(m)) {
                w.request_keyframe(None, KeyframeRequestKind::Pli).unwrap();
            }
            continue;
        }
        let wait = timeout
            .saturating_duration_since(Instant::now())
            .clamp(Duration::from_millis(1), Duration::from_millis(20));
        socket.set_read_timeout(Some(wait)).unwrap();
        let input = match socket.recv_from(&mut buf) {
            Ok((n, source)) => Input::Receive(
                Instant::now(),
                Receive {
                    proto: Protocol::Udp,
                    source,
                    destination: local,
                    contents: match buf[..n].try_into() {
                        Ok(c) => c,
                        Err(_) => continue,
                    },
                },
            ),
            Err(_) => Input::Timeout(Instant::now()),
        };
        if rtc.handle_input(input).is_err() {
            return;
        }
    }
}
