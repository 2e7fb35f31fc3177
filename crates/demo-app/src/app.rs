//! The app: WHIP publish, then one loop that renders, encodes, sends and applies input.
//!
//! Threads: the loop (owns the `Rtc`, the scene and the encoder), a UDP reader, an input reader
//! and the encoder's threads ([`crate::encoder`]). They meet in one `crossbeam` select with a
//! deadline (next frame, str0m's timeout, next stats event, at most 50 ms for the stop flag).

use std::io::{BufReader, Read};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use crossbeam_channel::{select, Receiver, TryRecvError};
use serde_json::json;
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::encoder::{locate_ffmpeg, EncoderSettings, Vp8Encoder};
use crate::events::EventSink;
use crate::input::{read_lines, LineResult};
use crate::scene::{render, I420Frame, Scene};
use crate::whip::{self, WhipError};

/// Set to stop the app (it then unpublishes and returns `Ok`).
pub type StopFlag = Arc<AtomicBool>;

/// Forced keyframes at most this often (the SFU throttles its PLIs to 500 ms as well).
const MIN_FORCED_KEYFRAME_GAP: Duration = Duration::from_millis(500);
/// How long ICE may stay disconnected before the app gives up.
const DISCONNECTED_LIMIT: Duration = Duration::from_secs(10);
/// Longest wait in the loop, so the stop flag is seen promptly.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// Most queued datagrams (and encoded frames) handled per loop turn.
const MAX_BATCH: usize = 256;

/// What the loop waits for.
enum Msg {
    Datagram((SocketAddr, Vec<u8>)),
    Encoder(crate::encoder::EncoderEvent),
    Input(LineResult),
}

/// Everything the app needs to run.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The WHIP endpoint (`http://...`).
    pub whip_url: String,
    /// Bearer token for the endpoint (empty: no Authorization header).
    pub whip_token: String,
    /// The session's code (only reported).
    pub session_code: Option<String>,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// Frames between regular keyframes.
    pub keyframe_interval: u32,
    /// Keep a spare encoder process started, for fast keyframes on request.
    pub spare_encoder: bool,
    /// Local address of the UDP socket (the host candidate).
    pub bind_ip: IpAddr,
    /// ffmpeg to use; None: [`locate_ffmpeg`].
    pub ffmpeg: Option<PathBuf>,
    /// How often the `stats` event is written.
    pub stats_interval: Duration,
    /// How long ICE + DTLS may take after the answer.
    pub connect_timeout: Duration,
}

impl AppConfig {
    /// A config with the defaults (640x360, 15 fps, 600 kbit/s, keyframe every 2 s).
    pub fn new(whip_url: impl Into<String>, whip_token: impl Into<String>) -> AppConfig {
        AppConfig {
            whip_url: whip_url.into(),
            whip_token: whip_token.into(),
            session_code: None,
            width: 640,
            height: 360,
            fps: 15,
            bitrate_kbps: 600,
            keyframe_interval: 30,
            spare_encoder: true,
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            ffmpeg: None,
            stats_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(15),
        }
    }

    /// Check sizes and rates.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(16..=3840).contains(&self.width) || !(16..=2160).contains(&self.height) {
            bail!(
                "frame size {}x{} out of range (16x16 to 3840x2160)",
                self.width,
                self.height
            );
        }
        if self.width % 2 != 0 || self.height % 2 != 0 {
            bail!(
                "frame size {}x{}: width and height must be even",
                self.width,
                self.height
            );
        }
        if !(1..=60).contains(&self.fps) {
            bail!("fps {} out of range (1 to 60)", self.fps);
        }
        if !(50..=50_000).contains(&self.bitrate_kbps) {
            bail!(
                "bitrate {} kbit/s out of range (50 to 50000)",
                self.bitrate_kbps
            );
        }
        if self.whip_url.is_empty() {
            bail!("no WHIP URL (ORBITA_WHIP_URL or --whip-url)");
        }
        Ok(())
    }
}

/// Why the app stopped (when it stopped without an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The input (stdin) ended.
    InputClosed,
    /// The stop flag was set (SIGTERM, SIGINT).
    Stopped,
}

impl StopReason {
    fn as_str(self) -> &'static str {
        match self {
            StopReason::InputClosed => "input closed",
            StopReason::Stopped => "stopped",
        }
    }
}

/// Counters, as in the `stats` event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Encoded frames written to the peer connection.
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    pub keyframes: u64,
    pub keyframe_requests: u64,
    /// Frames rendered and given to the encoder.
    pub rendered: u64,
    /// Rendered frames the encoder had no room for.
    pub dropped: u64,
    pub inputs_applied: u64,
    pub inputs_rejected: u64,
}

/// Run the app until `input` ends, `stop` is set, or an error. Events go to `events`.
///
/// Errors: the WHIP endpoint refused or failed (the status and body are in the error), ffmpeg
/// missing or failing, no connection within `connect_timeout`, a connection lost for 10 s.
pub fn run_app(
    config: AppConfig,
    input: impl Read + Send + 'static,
    events: EventSink,
    stop: StopFlag,
) -> anyhow::Result<StopReason> {
    config.validate()?;
    events.emit(json!({
        "event": "started",
        "session_code": config.session_code,
        "width": config.width,
        "height": config.height,
        "fps": config.fps,
    }));
    let result = run_inner(&config, input, &events, &stop);
    match &result {
        Ok(reason) => events.emit(json!({"event": "stopped", "reason": reason.as_str()})),
        Err(e) => events.emit(json!({"event": "error", "error": format!("{e:#}")})),
    }
    result
}

fn run_inner(
    config: &AppConfig,
    input: impl Read + Send + 'static,
    events: &EventSink,
    stop: &StopFlag,
) -> anyhow::Result<StopReason> {
    let ffmpeg = match &config.ffmpeg {
        Some(p) => p.clone(),
        None => locate_ffmpeg()?,
    };

    // The peer connection: one sendonly VP8 video m-line, our UDP socket as host candidate.
    let socket = UdpSocket::bind(SocketAddr::new(config.bind_ip, 0))
        .with_context(|| format!("binding a UDP socket on {}", config.bind_ip))?;
    let local = socket.local_addr()?;
    let rtc_config = RtcConfig::new()
        .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
        .clear_codecs()
        .enable_vp8(true);
    let mut rtc = rtc_config.build(Instant::now());
    let candidate = Candidate::host(local, "udp").context("host candidate")?;
    rtc.add_local_candidate(candidate)
        .context("str0m refused the host candidate")?;
    let stream_id = format!(
        "orbita-demo-{}",
        config.session_code.as_deref().unwrap_or("app")
    );
    let mut api = rtc.sdp_api();
    let mid = api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        Some(stream_id),
        Some("video".into()),
        None,
    );
    let (offer, pending) = api.apply().context("str0m made no offer")?;
    let mut net = Net { socket, local };
    net.drain(&mut rtc, &mut |_| {})?;

    // WHIP.
    tracing::info!("publishing to {}", config.whip_url);
    let session = match whip::publish(&config.whip_url, &config.whip_token, &offer.to_sdp_string())
    {
        Ok(s) => s,
        Err(e) => {
            if let WhipError::Refused { status, body } = &e {
                eprintln!("demo-app: the WHIP endpoint answered {status}:\n{body}");
            }
            return Err(e.into());
        }
    };
    let resource = session.resource.clone();
    let mut publish = Published {
        resource: Some(resource.clone()),
        token: config.whip_token.clone(),
    };
    let answer = str0m::change::SdpAnswer::from_sdp_string(&session.answer)
        .context("the WHIP answer is not valid SDP")?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .context("the WHIP answer was not accepted")?;
    // Accepting the answer is a mutation: drain before anything else touches the Rtc.
    let mut early_events = vec![];
    let mut rtc_timeout = net.drain(&mut rtc, &mut |e| early_events.push(e))?;
    events.emit(json!({"event": "published", "whip_resource": resource}));
    tracing::info!("published, resource {resource}");

    let mut app = Loop {
        config,
        events,
        rtc_mid: mid,
        pt: None,
        scene: Scene::default(),
        encoder: Vp8Encoder::start(EncoderSettings {
            ffmpeg,
            width: config.width,
            height: config.height,
            fps: config.fps,
            bitrate_kbps: config.bitrate_kbps,
            keyframe_interval: config.keyframe_interval,
            spare: config.spare_encoder,
        })?,
        stats: Stats::default(),
        connected_at: None,
        loop_started: None,
        disconnected_since: None,
        next_frame_no: 0,
        keyframe: KeyframeState::default(),
    };
    let result = app.run(
        &mut rtc,
        &mut net,
        &mut rtc_timeout,
        early_events,
        input,
        stop,
    );

    // Leave: DELETE the resource, close the connection, stop the encoder.
    publish.unpublish();
    if rtc.is_alive() {
        // RTCP BYE and DTLS close_notify, then done.
        let _ = rtc.close();
        for _ in 0..16 {
            let _ = net.drain(&mut rtc, &mut |_| {});
            if !rtc.is_alive() {
                break;
            }
            let _ = rtc.handle_input(Input::Timeout(Instant::now()));
        }
        rtc.disconnect();
    }
    app.encoder.stop();
    app.emit_stats();
    result
}

/// The WHIP resource, deleted once.
struct Published {
    resource: Option<String>,
    token: String,
}

impl Published {
    fn unpublish(&mut self) {
        if let Some(resource) = self.resource.take() {
            match whip::unpublish(&resource, &self.token) {
                Ok(status) => tracing::info!("DELETE {resource}: {status}"),
                Err(e) => tracing::warn!("unpublishing failed: {e:#}"),
            }
        }
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        self.unpublish();
    }
}

/// The UDP edge of the `Rtc`.
struct Net {
    socket: UdpSocket,
    local: SocketAddr,
}

impl Net {
    /// Poll the `Rtc` until it yields a timeout, sending what it transmits; events go to
    /// `on_event`. Returns the timeout.
    fn drain(&mut self, rtc: &mut Rtc, on_event: &mut dyn FnMut(Event)) -> anyhow::Result<Instant> {
        loop {
            if !rtc.is_alive() {
                return Ok(Instant::now() + Duration::from_secs(3600));
            }
            match rtc.poll_output().context("str0m poll_output")? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    if t.proto == Protocol::Udp {
                        if let Err(e) = self.socket.send_to(&t.contents, t.destination) {
                            tracing::debug!("UDP send to {} failed: {e}", t.destination);
                        }
                    }
                }
                Output::Event(e) => on_event(e),
            }
        }
    }

    /// A UDP reader thread; it ends when `done` is set.
    fn spawn_reader(
        &self,
        done: Arc<AtomicBool>,
    ) -> anyhow::Result<Receiver<(SocketAddr, Vec<u8>)>> {
        let socket = self.socket.try_clone()?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let (tx, rx) = crossbeam_channel::bounded(1024);
        std::thread::Builder::new()
            .name("demo-udp".into())
            .spawn(move || {
                let mut buf = vec![0u8; 2048];
                while !done.load(Ordering::Relaxed) {
                    match socket.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            if tx.try_send((from, buf[..n].to_vec())).is_err()
                                && done.load(Ordering::Relaxed)
                            {
                                break;
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock
                                    | std::io::ErrorKind::TimedOut
                                    | std::io::ErrorKind::Interrupted
                            ) => {}
                        Err(e) => {
                            tracing::debug!("UDP receive failed: {e}");
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
            })?;
        Ok(rx)
    }
}

/// Keyframe requests: forced (by a new encoder generation) at most every 500 ms, not while a
/// forced one is still on its way, and not before the first frame (always a keyframe).
#[derive(Debug, Default)]
struct KeyframeState {
    /// A request not yet answered by a keyframe: when it came.
    requested: Option<Instant>,
    /// When we last forced one.
    last_forced: Option<Instant>,
    /// A forced keyframe not yet sent.
    awaiting: bool,
}

struct Loop<'a> {
    config: &'a AppConfig,
    events: &'a EventSink,
    rtc_mid: Mid,
    pt: Option<Pt>,
    scene: Scene,
    encoder: Vp8Encoder,
    stats: Stats,
    connected_at: Option<Instant>,
    /// When the loop first ran (the connect timeout counts from here).
    loop_started: Option<Instant>,
    disconnected_since: Option<Instant>,
    next_frame_no: u64,
    keyframe: KeyframeState,
}

impl Loop<'_> {
    fn run(
        &mut self,
        rtc: &mut Rtc,
        net: &mut Net,
        rtc_timeout: &mut Instant,
        mut pending_events: Vec<Event>,
        input: impl Read + Send + 'static,
        stop: &StopFlag,
    ) -> anyhow::Result<StopReason> {
        let done = Arc::new(AtomicBool::new(false));
        let _done_guard = SetOnDrop(done.clone());
        let net_rx = net.spawn_reader(done.clone())?;
        let input_rx = spawn_input_reader(input)?;
        let enc_rx = self.encoder.events().clone();

        let start = Instant::now();
        let frame_interval = Duration::from_secs_f64(1.0 / f64::from(self.config.fps));
        let mut next_frame = start;
        let mut next_stats = start + self.config.stats_interval;

        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(StopReason::Stopped);
            }
            let now = Instant::now();

            // str0m's timers.
            if now >= *rtc_timeout {
                rtc.handle_input(Input::Timeout(now))
                    .context("str0m timeout")?;
                *rtc_timeout = net.drain(rtc, &mut |e| pending_events.push(e))?;
            }
            for e in pending_events.drain(..) {
                self.on_rtc_event(e, now);
            }
            self.check_connection(rtc, now)?;

            // Keyframe requests.
            self.maybe_force_keyframe(now)?;

            // Render and submit a frame.
            if self.connected_at.is_some() && now >= next_frame {
                self.render_and_submit(now);
                next_frame += frame_interval;
                if next_frame + frame_interval * 2 < now {
                    next_frame = now + frame_interval; // far behind: skip ahead
                }
            }

            if now >= next_stats {
                self.emit_stats();
                next_stats += self.config.stats_interval;
                if next_stats < now {
                    next_stats = now + self.config.stats_interval;
                }
            }

            let mut deadline = (*rtc_timeout).min(next_stats).min(now + MAX_WAIT);
            if self.connected_at.is_some() {
                deadline = deadline.min(next_frame);
            }
            let wait = deadline.saturating_duration_since(Instant::now());

            // Wait for the first message (or the deadline), then take everything else that is
            // already queued, so a slow render (a loaded machine) cannot let a backlog of
            // encoded frames or datagrams build up behind it.
            let mut first = None;
            select! {
                recv(net_rx) -> msg => {
                    let Ok(d) = msg else { bail!("the UDP reader stopped") };
                    first = Some(Msg::Datagram(d));
                }
                recv(input_rx) -> msg => match msg {
                    Ok(line) => first = Some(Msg::Input(line)),
                    Err(_) => return Ok(StopReason::InputClosed),
                },
                recv(enc_rx) -> msg => {
                    first = Some(Msg::Encoder(msg.expect("the encoder holds a sender")));
                }
                default(wait) => {}
            }
            let queued_datagrams = net_rx.try_iter().take(MAX_BATCH).map(Msg::Datagram);
            let queued_frames = enc_rx.try_iter().take(MAX_BATCH).map(Msg::Encoder);
            let batch: Vec<Msg> = first
                .into_iter()
                .chain(queued_datagrams)
                .chain(queued_frames)
                .collect();
            for msg in batch {
                match msg {
                    Msg::Datagram((from, data)) => {
                        let Ok(contents) = data.as_slice().try_into() else {
                            continue;
                        };
                        let input = Input::Receive(
                            Instant::now(),
                            Receive {
                                proto: Protocol::Udp,
                                source: from,
                                destination: net.local,
                                contents,
                            },
                        );
                        if let Err(e) = rtc.handle_input(input) {
                            tracing::debug!("str0m rejected a datagram from {from}: {e}");
                        }
                        *rtc_timeout = net.drain(rtc, &mut |e| pending_events.push(e))?;
                    }
                    Msg::Encoder(ev) => {
                        if let Some(frame) = self.encoder.accept(ev)? {
                            self.send_frame(rtc, frame);
                            *rtc_timeout = net.drain(rtc, &mut |e| pending_events.push(e))?;
                        }
                    }
                    Msg::Input(line) => self.on_input(line),
                }
            }
            // Input lines apply before the next frame is rendered.
            loop {
                match input_rx.try_recv() {
                    Ok(line) => self.on_input(line),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Ok(StopReason::InputClosed),
                }
            }
        }
    }

    fn on_rtc_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Connected => {
                tracing::info!("connected");
                if self.connected_at.is_none() {
                    self.connected_at = Some(now);
                    self.events.emit(json!({"event": "connected"}));
                }
            }
            Event::IceConnectionStateChange(state) => {
                tracing::debug!("ICE {state:?}");
                if state == IceConnectionState::Disconnected {
                    self.disconnected_since.get_or_insert(now);
                } else {
                    self.disconnected_since = None;
                }
            }
            Event::KeyframeRequest(req) => {
                tracing::debug!("keyframe request ({:?})", req.kind);
                self.stats.keyframe_requests += 1;
                self.keyframe.requested.get_or_insert(now);
            }
            _ => {}
        }
    }

    fn check_connection(&mut self, rtc: &Rtc, now: Instant) -> anyhow::Result<()> {
        if !rtc.is_alive() {
            bail!("the peer connection closed");
        }
        if self.connected_at.is_none() {
            let started = *self.loop_started.get_or_insert(now);
            if now.duration_since(started) > self.config.connect_timeout {
                bail!(
                    "no connection to the server's media address within {} s",
                    self.config.connect_timeout.as_secs()
                );
            }
        }
        if let Some(since) = self.disconnected_since {
            if now.duration_since(since) > DISCONNECTED_LIMIT {
                bail!(
                    "the connection was lost for {} s",
                    DISCONNECTED_LIMIT.as_secs()
                );
            }
        }
        Ok(())
    }

    fn maybe_force_keyframe(&mut self, now: Instant) -> anyhow::Result<()> {
        let k = &mut self.keyframe;
        if k.requested.is_none() || k.awaiting || self.connected_at.is_none() {
            return Ok(());
        }
        if self.stats.frames == 0 {
            // Nothing sent yet: the encoder's first frame is a keyframe anyway.
            return Ok(());
        }
        if k.last_forced
            .is_some_and(|t| now.duration_since(t) < MIN_FORCED_KEYFRAME_GAP)
        {
            return Ok(());
        }
        tracing::debug!("forcing a keyframe (new encoder generation)");
        self.encoder.force_keyframe()?;
        k.last_forced = Some(now);
        k.awaiting = true;
        k.requested = None;
        Ok(())
    }

    fn render_and_submit(&mut self, now: Instant) {
        let mut frame = I420Frame::new(self.config.width, self.config.height);
        let n = self.next_frame_no;
        render(&self.scene, n, &mut frame);
        self.next_frame_no += 1;
        self.stats.rendered += 1;
        // A full encoder queue drops the frame (counted by the encoder).
        self.encoder.submit(n, now, Arc::new(frame.data));
    }

    fn send_frame(&mut self, rtc: &mut Rtc, frame: crate::encoder::EncodedFrame) {
        if frame.keyframe {
            // Any keyframe sent answers the requests received so far.
            if self.keyframe.awaiting {
                if let Some(t) = self.keyframe.last_forced {
                    tracing::debug!("forced keyframe ready after {:?}", t.elapsed());
                }
            }
            self.keyframe.awaiting = false;
            self.keyframe.requested = None;
        }
        if frame.frame == u64::MAX {
            return;
        }
        if self.pt.is_none() {
            self.pt = rtc.writer(self.rtc_mid).and_then(|w| {
                w.payload_params()
                    .find(|p| p.spec().codec == Codec::Vp8)
                    .map(|p| p.pt())
            });
        }
        let (Some(pt), Some(writer)) = (self.pt, rtc.writer(self.rtc_mid)) else {
            tracing::warn!("the answer accepted no VP8: nothing to send");
            return;
        };
        let rtp_time = MediaTime::from_90khz(frame.frame * 90_000 / u64::from(self.config.fps));
        let len = frame.data.len() as u64;
        let keyframe = frame.keyframe;
        match writer.write(pt, frame.captured, rtp_time, frame.data) {
            Ok(()) => {
                self.stats.frames += 1;
                self.stats.bytes += len;
                if keyframe {
                    self.stats.keyframes += 1;
                }
            }
            Err(e) => tracing::warn!("writing a frame failed: {e}"),
        }
    }

    fn on_input(&mut self, line: LineResult) {
        match line {
            LineResult::Event(input) => {
                self.scene.apply(&input);
                self.stats.inputs_applied += 1;
                self.events.emit(json!({
                    "event": "input_applied",
                    "input": input,
                    "frame": self.next_frame_no,
                    "cursor": {"x": self.scene.cursor_x, "y": self.scene.cursor_y},
                }));
            }
            LineResult::Rejected { error, line } => {
                self.stats.inputs_rejected += 1;
                tracing::warn!("ignoring input line: {error}: {line}");
                self.events.emit(json!({
                    "event": "input_rejected",
                    "error": error,
                    "line": line,
                }));
            }
        }
    }

    fn emit_stats(&mut self) {
        self.stats.dropped = self.encoder.dropped();
        let s = self.stats;
        self.events.emit(json!({
            "event": "stats",
            "frames": s.frames,
            "bytes": s.bytes,
            "keyframes": s.keyframes,
            "keyframe_requests": s.keyframe_requests,
            "rendered": s.rendered,
            "dropped": s.dropped,
            "inputs_applied": s.inputs_applied,
            "inputs_rejected": s.inputs_rejected,
            "encoder_generation": self.encoder.generation(),
            "connected": self.connected_at.is_some(),
        }));
    }
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The input reader thread: lines as they come; the channel closes at end of input.
fn spawn_input_reader(input: impl Read + Send + 'static) -> anyhow::Result<Receiver<LineResult>> {
    let (tx, rx) = crossbeam_channel::bounded(256);
    std::thread::Builder::new()
        .name("demo-input".into())
        .spawn(move || {
            let result = read_lines(BufReader::new(input), |line| tx.send(line).is_ok());
            if let Err(e) = result {
                tracing::warn!("reading input failed: {e}");
            }
        })?;
    Ok(rx)
}
