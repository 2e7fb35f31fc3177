//! The media side of the load generator: a few shard threads, each owning many participants.
//!
//! A shard is one thread with one `epoll` instance (mio) over the UDP sockets of all its
//! participants (one socket per peer connection, as a browser has), one timer heap for every
//! `str0m::Rtc` and publisher media clock it owns, and a command channel from the signalling
//! tasks. Per wake-up it reads each readable socket with `recvmmsg` (32 datagrams per system
//! call), feeds the datagrams to the connection's `Rtc`, fires the timers that are due, and
//! goes back to sleep. There is no task, lock or allocation per participant on the packet path.
//!
//! Subscriber connections run str0m in RTP mode: str0m still does ICE, DTLS, SRTP
//! decryption and authentication, RTX repair, NACK, receiver reports and transport-wide
//! congestion control feedback, but hands back RTP packets instead of reassembling and
//! depacketizing frames; the shard only counts packets, bytes, sequence gaps and VP8
//! keyframe starts ([`crate::rtp`]). Publisher connections send the bot's pre-encoded VP8 and
//! Opus frames, paced by the bot's [`MediaPacer`], through str0m's packetizer.
//!
//! With `--relay-only` each connection's socket comes with a TURN allocation made by the
//! signalling task ([`Relays`]); its only candidate is the relayed address, everything the
//! `Rtc` sends goes through the bot's sans-I/O [`TurnClient`] (ChannelData to the relay,
//! refreshes on the connection's timer) and what the relay forwards is fed to the `Rtc` as
//! received on the relayed address.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::Context;
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token, Waker};
use orbita_bot::media_file::MediaLibrary;
use orbita_bot::pacer::{MediaPacer, PacedFrame};
use orbita_bot::turn::{TurnClient, TurnEvent};
use orbita_protocol::{
    ClientMsg, LayerInfo, MediaKind as PKind, PcKind, PublishTrack, ServerMsg, TrackSource,
};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::crypto::dtls::DtlsCert;
use str0m::crypto::CryptoProvider;
use str0m::format::Codec;
use str0m::media::{
    Direction, Frequency, MediaKind, MediaTime, Mid, Pt, Rid, Rids, Simulcast, SimulcastLayer,
};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpPacket, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::oneshot;

use crate::rtp::{vp8_starts_keyframe, StreamCounter};

/// Datagrams read per `recvmmsg` call.
const RECV_BATCH: usize = 32;
/// Largest datagram read.
const MAX_DATAGRAM: usize = 2048;
/// Receive buffer asked for each socket (the kernel caps it at `net.core.rmem_max`).
const SOCKET_RCVBUF: libc::c_int = 1 << 20;
/// How often subscriber connections report ingress statistics (jitter).
const STATS_INTERVAL: Duration = Duration::from_secs(1);
/// The token of a shard's waker.
const WAKER: Token = Token(usize::MAX);
/// Simulcast rids of the bot's three layers, highest first.
pub const LAYER_RIDS: [&str; 3] = ["f", "h", "q"];

/// Totals every shard adds to; read by the progress line and the report.
#[derive(Debug, Default)]
pub struct Counters {
    /// RTP packets received by subscriber connections (after str0m's duplicate filter).
    pub rx_packets: AtomicU64,
    /// RTP payload bytes received.
    pub rx_bytes: AtomicU64,
    /// Packets expected (first to highest sequence number of each stream).
    pub rx_expected: AtomicU64,
    /// Video frames received (marker bits).
    pub rx_video_frames: AtomicU64,
    /// VP8 keyframe starts received.
    pub rx_keyframes: AtomicU64,
    /// Participants whose connections are up and (if they receive) media arrived.
    pub ready: AtomicU64,
    /// Participants with a receiving connection whose first media packet arrived.
    pub first_media: AtomicU64,
    /// Publisher connections up.
    pub pub_connected: AtomicU64,
    /// Subscriber connections up.
    pub sub_connected: AtomicU64,
    /// Frames handed to str0m by publishers.
    pub frames_sent: AtomicU64,
    /// Frames str0m refused.
    pub write_errors: AtomicU64,
    /// UDP sends that failed (full socket buffer).
    pub send_errors: AtomicU64,
    /// ICE connections that went to disconnected.
    pub ice_disconnects: AtomicU64,
    /// Largest lateness of a timer, microseconds (how far behind the shards ran).
    pub timer_late_max_us: AtomicU64,
    /// Timers that fired more than 20 ms late.
    pub timers_late: AtomicU64,
    /// Nanoseconds the shards spent working (not waiting in epoll).
    pub busy_ns: AtomicU64,
}

impl Counters {
    fn add(a: &AtomicU64, n: u64) {
        a.fetch_add(n, Ordering::Relaxed);
    }

    /// Read one counter.
    pub fn get(a: &AtomicU64) -> u64 {
        a.load(Ordering::Relaxed)
    }
}

/// What every publisher sends: a subset of the bot's embedded layers, highest first.
#[derive(Debug, Clone)]
pub struct MediaSetup {
    /// The layers to send (highest first) and the Opus packets.
    pub library: MediaLibrary,
    /// The rid of each layer when sending simulcast; `None` for one plain stream.
    pub rids: Option<Vec<String>>,
}

impl MediaSetup {
    /// Layers `top..` of the embedded media (0 = 1280x720, 1 = 640x360, 2 = 320x180) as
    /// simulcast, or layer `top` alone.
    pub fn new(top: usize, simulcast: bool) -> anyhow::Result<MediaSetup> {
        let all = MediaLibrary::embedded().context("the bot's embedded media")?;
        anyhow::ensure!(top < all.layers.len(), "no video layer {top}");
        let layers = if simulcast {
            all.layers[top..].to_vec()
        } else {
            vec![all.layers[top].clone()]
        };
        let rids = simulcast.then(|| {
            LAYER_RIDS[top..top + layers.len()]
                .iter()
                .map(|r| r.to_string())
                .collect()
        });
        Ok(MediaSetup {
            library: MediaLibrary {
                layers,
                opus: all.opus,
            },
            rids,
        })
    }
}

/// What one participant does on the media side.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    /// Publish Opus.
    pub audio: bool,
    /// Publish VP8 (the [`MediaSetup`] layers).
    pub video: bool,
    /// Whether media from others is expected (joined means: it arrived).
    pub expects_media: bool,
    /// Address the sockets bind.
    pub bind_ip: IpAddr,
    /// Connect only through the TURN relay of `joined.ice_servers` (the signalling task
    /// allocates, [`Relays`]).
    pub relay_only: bool,
}

impl PeerSpec {
    /// It has a publisher connection.
    pub fn publishes(&self) -> bool {
        self.audio || self.video
    }
}

/// A UDP socket (non-blocking) with a TURN allocation on it (`--relay-only`).
#[derive(Debug)]
pub struct RelayedSocket {
    /// The socket the allocation was made from.
    pub socket: std::net::UdpSocket,
    /// The allocated client; the connection drives it from then on.
    pub client: TurnClient,
}

/// The relays of a participant's connections; none (the default): host candidates.
#[derive(Debug, Default)]
pub struct Relays {
    /// The publisher connection's.
    pub publisher: Option<RelayedSocket>,
    /// The subscriber connection's.
    pub subscriber: Option<RelayedSocket>,
}

/// Commands from the signalling side to a shard.
enum Cmd {
    Add {
        id: usize,
        spec: PeerSpec,
        ws_open: Instant,
        to_ws: UnboundedSender<ClientMsg>,
        /// Boxed: two TURN clients would make every command that large.
        relays: Box<Relays>,
    },
    Signal {
        id: usize,
        msg: ServerMsg,
    },
    Remove {
        id: usize,
    },
    Snapshot {
        reply: oneshot::Sender<Vec<PartReport>>,
    },
    Stop,
}

/// One received stream at snapshot time.
#[derive(Debug, Clone)]
pub struct StreamReport {
    /// Video (else audio).
    pub video: bool,
    /// Its counts.
    pub counter: StreamCounter,
    /// Last interarrival jitter str0m computed for its m-line, milliseconds.
    pub jitter_ms: Option<f64>,
}

/// One participant's media state at snapshot time.
#[derive(Debug, Clone)]
pub struct PartReport {
    /// The participant's index in the run.
    pub id: usize,
    /// It publishes.
    pub publishes: bool,
    /// It is expected to receive media.
    pub expects_media: bool,
    /// WebSocket open to publisher connection up.
    pub pub_connected: Option<Duration>,
    /// WebSocket open to subscriber connection up.
    pub sub_connected: Option<Duration>,
    /// WebSocket open to the first RTP packet received.
    pub first_packet: Option<Duration>,
    /// WebSocket open to the first VP8 keyframe start received.
    pub first_keyframe: Option<Duration>,
    /// Its received streams.
    pub streams: Vec<StreamReport>,
    /// Frames it published.
    pub frames_sent: u64,
    /// Media clock ticks its pacer skipped because the shard fell behind (audio, video).
    pub skipped: (u64, u64),
    /// Keyframe requests (PLI/FIR) it received as a publisher.
    pub keyframe_requests: u64,
    /// Its connections are up and media (if expected) arrived.
    pub ready: bool,
    /// Problems seen (server errors, refused SDP), first few.
    pub problems: Vec<String>,
}

/// Handle to the running shards.
#[derive(Clone)]
pub struct EngineHandle {
    shards: Arc<Vec<(mpsc::Sender<Cmd>, Arc<Waker>)>>,
}

impl EngineHandle {
    fn send(&self, id: usize, cmd: Cmd) {
        let (tx, waker) = &self.shards[id % self.shards.len()];
        if tx.send(cmd).is_ok() {
            let _ = waker.wake();
        }
    }

    /// Hand a joined participant to its shard: it sets up its peer connections (on the
    /// relayed sockets of `relays`, if any) and sends its publisher offer (if it publishes)
    /// through `to_ws`.
    pub fn add(
        &self,
        id: usize,
        spec: PeerSpec,
        ws_open: Instant,
        to_ws: UnboundedSender<ClientMsg>,
        relays: Relays,
    ) {
        self.send(
            id,
            Cmd::Add {
                id,
                spec,
                ws_open,
                to_ws,
                relays: Box::new(relays),
            },
        );
    }

    /// A signalling message for participant `id`.
    pub fn signal(&self, id: usize, msg: ServerMsg) {
        self.send(id, Cmd::Signal { id, msg });
    }

    /// Drop participant `id`'s connections.
    pub fn remove(&self, id: usize) {
        self.send(id, Cmd::Remove { id });
    }

    /// Every participant's state, from all shards.
    pub async fn snapshot(&self) -> Vec<PartReport> {
        let mut replies = Vec::new();
        for (i, _) in self.shards.iter().enumerate() {
            let (reply, rx) = oneshot::channel();
            self.send(i, Cmd::Snapshot { reply });
            replies.push(rx);
        }
        let mut all = Vec::new();
        for rx in replies {
            if let Ok(mut parts) = rx.await {
                all.append(&mut parts);
            }
        }
        all.sort_by_key(|p| p.id);
        all
    }
}

/// The shard threads.
pub struct Engine {
    handle: EngineHandle,
    threads: Vec<JoinHandle<()>>,
}

impl Engine {
    /// Start `threads` shards (at least one).
    pub fn start(
        threads: usize,
        media: Arc<MediaSetup>,
        counters: Arc<Counters>,
    ) -> io::Result<Engine> {
        let provider = crypto_provider();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| io::Error::other("str0m could not make a DTLS certificate"))?;
        let mut shards = Vec::new();
        let mut handles = Vec::new();
        for index in 0..threads.max(1) {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (tx, rx) = mpsc::channel();
            let shard = Shard {
                poll,
                rx,
                ctx: Ctx {
                    media: media.clone(),
                    counters: counters.clone(),
                    provider: provider.clone(),
                    cert: cert.clone(),
                    events: Vec::new(),
                },
                slots: Vec::new(),
                free: Vec::new(),
                by_id: HashMap::new(),
                heap: BinaryHeap::new(),
                scheduled: Vec::new(),
                recv: RecvBatch::new(),
            };
            handles.push(
                thread::Builder::new()
                    .name(format!("load-media-{index}"))
                    .spawn(move || shard.run())?,
            );
            shards.push((tx, waker));
        }
        Ok(Engine {
            handle: EngineHandle {
                shards: Arc::new(shards),
            },
            threads: handles,
        })
    }

    /// A handle for the signalling tasks.
    pub fn handle(&self) -> EngineHandle {
        self.handle.clone()
    }

    /// Stop the shards (their connections are dropped without a goodbye) and wait for them.
    pub fn stop(self) {
        for i in 0..self.handle.shards.len() {
            self.handle.send(i, Cmd::Stop);
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// The crypto provider every `Rtc` uses (per instance, so an in-process server keeps its own).
fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(str0m::crypto::from_feature_flags()))
        .clone()
}

/// What participant code may use of its shard.
struct Ctx {
    media: Arc<MediaSetup>,
    counters: Arc<Counters>,
    provider: Arc<CryptoProvider>,
    /// One DTLS certificate for every connection: making one per `Rtc` costs milliseconds.
    cert: DtlsCert,
    /// Scratch space for the events of one drain.
    events: Vec<Event>,
}

/// Which of a participant's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Publisher = 0,
    Subscriber = 1,
}

impl Side {
    fn of(token: usize) -> Side {
        if token & 1 == 0 {
            Side::Publisher
        } else {
            Side::Subscriber
        }
    }
}

fn token(slot: usize, side: Side) -> usize {
    slot * 2 + side as usize
}

/// A connection's TURN relay (`--relay-only`).
struct PeerRelay {
    client: TurnClient,
    /// The relayed address: the `Rtc`'s only local candidate.
    relayed: SocketAddr,
    /// Relay failures not yet reported.
    problems: Vec<String>,
}

/// An `Rtc` and its UDP socket (maybe through a relay).
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    relay: Option<PeerRelay>,
    next_timeout: Instant,
    candidate: String,
}

impl Peer {
    fn new(
        mut rtc: Rtc,
        ip: IpAddr,
        relay: Option<RelayedSocket>,
        now: Instant,
    ) -> io::Result<Peer> {
        let (std_socket, relay) = match relay {
            Some(r) => (r.socket, Some(r.client)),
            None => (std::net::UdpSocket::bind((ip, 0))?, None),
        };
        std_socket.set_nonblocking(true)?;
        // SAFETY: setsockopt with a valid fd and a c_int option value.
        unsafe {
            libc::setsockopt(
                std_socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                &SOCKET_RCVBUF as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let local = std_socket.local_addr()?;
        let socket = UdpSocket::from_std(std_socket);
        let relay = match relay {
            Some(client) => {
                let relayed = client
                    .relayed_addr()
                    .ok_or_else(|| io::Error::other("the TURN client has no relayed address"))?;
                Some(PeerRelay {
                    client,
                    relayed,
                    problems: vec![],
                })
            }
            None => None,
        };
        let candidate = match &relay {
            Some(r) => Candidate::relayed(r.relayed, local, "udp"),
            None => Candidate::host(local, "udp"),
        }
        .map_err(|e| io::Error::other(e.to_string()))?;
        let candidate = rtc
            .add_local_candidate(candidate)
            .map(|c| c.to_sdp_string())
            .ok_or_else(|| io::Error::other("str0m refused the local candidate"))?;
        let mut peer = Peer {
            rtc,
            socket,
            local,
            relay,
            next_timeout: now,
            candidate,
        };
        let mut ignored = Vec::new();
        peer.drain(&mut ignored, &Counters::default());
        Ok(peer)
    }

    /// Poll str0m until it yields a timeout: send what it wants sent, collect its events.
    fn drain(&mut self, events: &mut Vec<Event>, counters: &Counters) {
        loop {
            if !self.rtc.is_alive() {
                self.next_timeout = Instant::now() + Duration::from_secs(3600);
                self.flush_relay(counters);
                return;
            }
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.next_timeout = t;
                    self.flush_relay(counters);
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    if t.proto != Protocol::Udp {
                        continue;
                    }
                    if let Some(relay) = &mut self.relay {
                        relay
                            .client
                            .send_to(Instant::now(), t.destination, &t.contents);
                    } else if self.socket.send_to(&t.contents, t.destination).is_err() {
                        Counters::add(&counters.send_errors, 1);
                    }
                }
                Ok(Output::Event(e)) => events.push(e),
                Err(e) => {
                    tracing::debug!("str0m poll_output failed, disconnecting: {e}");
                    self.rtc.disconnect();
                }
            }
        }
    }

    /// Send what the TURN client queued, keep its failures, and let its deadline count.
    fn flush_relay(&mut self, counters: &Counters) {
        let Some(relay) = &mut self.relay else {
            return;
        };
        let server = relay.client.server();
        while let Some(datagram) = relay.client.poll_transmit() {
            if self.socket.send_to(&datagram, server).is_err() {
                Counters::add(&counters.send_errors, 1);
            }
        }
        while let Some(event) = relay.client.poll_event() {
            match event {
                TurnEvent::Failed(e) => relay.problems.push(format!("relay lost: {e}")),
                TurnEvent::ChannelFailed { error, .. } => {
                    relay.problems.push(format!("no relay channel: {error}"))
                }
                TurnEvent::Allocated { .. } | TurnEvent::ChannelBound { .. } => {}
            }
        }
        if let Some(t) = relay.client.poll_timeout() {
            self.next_timeout = self.next_timeout.min(t);
        }
    }

    /// Relay failures since the last call.
    fn take_problems(&mut self) -> Vec<String> {
        self.relay
            .as_mut()
            .map(|r| std::mem::take(&mut r.problems))
            .unwrap_or_default()
    }

    fn receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        data: &[u8],
        events: &mut Vec<Event>,
        c: &Counters,
    ) {
        // Through a relay only the relay's datagrams count; what it forwards from a peer is
        // received on the relayed address.
        let (source, destination, data) = match &mut self.relay {
            None => (source, self.local, data),
            Some(relay) if source != relay.client.server() => return,
            Some(relay) => match relay.client.handle_input(now, data) {
                Some((peer, payload)) => (peer, relay.relayed, payload),
                None => return self.drain(events, c),
            },
        };
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::trace!("str0m rejected a datagram: {e}");
        }
        self.drain(events, c);
    }

    fn timeout(&mut self, now: Instant, events: &mut Vec<Event>, c: &Counters) {
        if let Some(relay) = &mut self.relay {
            relay.client.handle_timeout(now);
        }
        let _ = self.rtc.handle_input(Input::Timeout(now));
        self.drain(events, c);
    }

    /// Drop the connection; delete its relay allocation (Refresh, lifetime 0), if any.
    fn close(&mut self, c: &Counters) {
        self.rtc.disconnect();
        if let Some(relay) = &mut self.relay {
            relay.client.close(Instant::now());
        }
        self.flush_relay(c);
    }
}

/// One video layer a publisher may send.
struct PubLayer {
    rid: Option<Rid>,
    active: bool,
}

/// A publisher connection.
struct Publisher {
    peer: Peer,
    pending: Option<SdpPendingOffer>,
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    audio_pt: Option<Pt>,
    video_pt: Option<Pt>,
    layers: Vec<PubLayer>,
    negotiated: bool,
    connected: bool,
    pacer: MediaPacer,
    frames_sent: u64,
    keyframe_requests: u64,
}

/// A received stream.
struct RxStream {
    ssrc: Ssrc,
    video: bool,
    vp8: bool,
    mid: Option<Mid>,
    counter: StreamCounter,
}

/// A participant on a shard.
struct Part {
    id: usize,
    spec: PeerSpec,
    to_ws: UnboundedSender<ClientMsg>,
    ws_open: Instant,
    publisher: Option<Publisher>,
    subscriber: Peer,
    sub_answered: bool,
    sub_video_mids: Vec<Mid>,
    streams: Vec<RxStream>,
    jitter_ms: HashMap<Mid, f64>,
    pub_connected: Option<Instant>,
    sub_connected: Option<Instant>,
    first_packet: Option<Instant>,
    first_keyframe: Option<Instant>,
    ready: bool,
    problems: Vec<String>,
}

fn codec_clock(video: bool) -> f64 {
    if video {
        90_000.0
    } else {
        48_000.0
    }
}

impl Part {
    fn new(
        id: usize,
        spec: PeerSpec,
        ws_open: Instant,
        to_ws: UnboundedSender<ClientMsg>,
        relays: Relays,
        ctx: &mut Ctx,
    ) -> anyhow::Result<Part> {
        let now = Instant::now();
        let sub_rtc = RtcConfig::new()
            .set_crypto_provider(ctx.provider.clone())
            .set_dtls_cert(ctx.cert.clone())
            .set_rtp_mode(true)
            .set_stats_interval(Some(STATS_INTERVAL))
            .build(now);
        let Relays {
            publisher: pub_relay,
            subscriber: sub_relay,
        } = relays;
        let subscriber =
            Peer::new(sub_rtc, spec.bind_ip, sub_relay, now).context("subscriber socket")?;
        let mut publisher = None;
        if spec.publishes() {
            let rtc = RtcConfig::new()
                .set_crypto_provider(ctx.provider.clone())
                .set_dtls_cert(ctx.cert.clone())
                .clear_codecs()
                .enable_opus(true, false)
                .enable_vp8(true)
                .build(now);
            let mut peer =
                Peer::new(rtc, spec.bind_ip, pub_relay, now).context("publisher socket")?;
            let media = &ctx.media;
            let stream_id = format!("orbita-load-{id}");
            let mut api = peer.rtc.sdp_api();
            let audio_mid = spec.audio.then(|| {
                api.add_media(
                    MediaKind::Audio,
                    Direction::SendOnly,
                    Some(stream_id.clone()),
                    None,
                    None,
                )
            });
            let video_mid = spec.video.then(|| {
                let sim = media.rids.as_ref().map(|rids| {
                    let mut s = Simulcast::new();
                    for rid in rids {
                        s.add_send_layer(SimulcastLayer::new(rid));
                    }
                    s
                });
                api.add_media(
                    MediaKind::Video,
                    Direction::SendOnly,
                    Some(stream_id.clone()),
                    None,
                    sim,
                )
            });
            let applied = api.apply();
            peer.drain(&mut ctx.events, &ctx.counters);
            ctx.events.clear();
            let (offer, pending) = applied.context("str0m made no publisher offer")?;
            let mut tracks = vec![];
            if let Some(mid) = audio_mid {
                tracks.push(PublishTrack {
                    mid: mid.to_string(),
                    source: TrackSource::Microphone,
                    layers: vec![],
                    muted: false,
                });
            }
            let mut layers = vec![];
            if let Some(mid) = video_mid {
                let mut infos = vec![];
                for (i, l) in media.library.layers.iter().enumerate() {
                    let rid = media.rids.as_ref().map(|r| r[i].clone());
                    if let Some(rid) = &rid {
                        infos.push(LayerInfo {
                            rid: rid.clone(),
                            width: Some(u32::from(l.width)),
                            height: Some(u32::from(l.height)),
                        });
                    }
                    layers.push(PubLayer {
                        rid: rid.as_deref().map(Rid::from),
                        active: false,
                    });
                }
                tracks.push(PublishTrack {
                    mid: mid.to_string(),
                    source: TrackSource::Camera,
                    layers: infos,
                    muted: false,
                });
            }
            let _ = to_ws.send(ClientMsg::Offer {
                pc: PcKind::Publisher,
                sdp: offer.to_sdp_string(),
                tracks,
            });
            let _ = to_ws.send(ClientMsg::Candidate {
                pc: PcKind::Publisher,
                candidate: peer.candidate.clone(),
            });
            let _ = to_ws.send(ClientMsg::Candidate {
                pc: PcKind::Publisher,
                candidate: String::new(),
            });
            let video_layers = if spec.video {
                media.library.layers.len()
            } else {
                0
            };
            let pacer = MediaPacer::new(
                &media.library,
                now,
                spec.audio,
                video_layers,
                rand::random::<u32>() >> 1,
            );
            publisher = Some(Publisher {
                peer,
                pending: Some(pending),
                audio_mid,
                video_mid,
                audio_pt: None,
                video_pt: None,
                layers,
                negotiated: false,
                connected: false,
                pacer,
                frames_sent: 0,
                keyframe_requests: 0,
            });
        }
        Ok(Part {
            id,
            spec,
            to_ws,
            ws_open,
            publisher,
            subscriber,
            sub_answered: false,
            sub_video_mids: vec![],
            streams: vec![],
            jitter_ms: HashMap::new(),
            pub_connected: None,
            sub_connected: None,
            first_packet: None,
            first_keyframe: None,
            ready: false,
            problems: vec![],
        })
    }

    fn problem(&mut self, text: String) {
        tracing::debug!("participant {}: {text}", self.id);
        if self.problems.len() < 5 {
            self.problems.push(text);
        }
    }

    fn peer_mut(&mut self, side: Side) -> Option<&mut Peer> {
        match side {
            Side::Publisher => self.publisher.as_mut().map(|p| &mut p.peer),
            Side::Subscriber => Some(&mut self.subscriber),
        }
    }

    /// When this side next needs [`Part::on_timer`].
    fn deadline(&self, side: Side) -> Option<Instant> {
        match side {
            Side::Subscriber => Some(self.subscriber.next_timeout),
            Side::Publisher => self.publisher.as_ref().map(|p| match p.pacer.next_due() {
                Some(d) => d.min(p.peer.next_timeout),
                None => p.peer.next_timeout,
            }),
        }
    }

    fn on_datagram(
        &mut self,
        side: Side,
        now: Instant,
        source: SocketAddr,
        data: &[u8],
        ctx: &mut Ctx,
    ) {
        let mut events = std::mem::take(&mut ctx.events);
        if let Some(peer) = self.peer_mut(side) {
            peer.receive(now, source, data, &mut events, &ctx.counters);
        }
        self.handle_events(side, now, &mut events, ctx);
        ctx.events = events;
    }

    fn on_timer(&mut self, side: Side, now: Instant, ctx: &mut Ctx) {
        let mut events = std::mem::take(&mut ctx.events);
        match side {
            Side::Subscriber => {
                if now >= self.subscriber.next_timeout {
                    self.subscriber.timeout(now, &mut events, &ctx.counters);
                    self.handle_events(side, now, &mut events, ctx);
                }
            }
            Side::Publisher => {
                let Some(p) = &mut self.publisher else {
                    ctx.events = events;
                    return;
                };
                // Bring str0m's clock to `now` before writing media: it stamps packets with
                // the time of its last input.
                let media_due = p.pacer.next_due().is_some_and(|d| now >= d);
                if now >= p.peer.next_timeout || media_due {
                    p.peer.timeout(now, &mut events, &ctx.counters);
                    self.handle_events(side, now, &mut events, ctx);
                }
                if media_due {
                    let frames = self
                        .publisher
                        .as_mut()
                        .map(|p| p.pacer.poll(now))
                        .unwrap_or_default();
                    for frame in frames {
                        self.send_frame(now, frame, &mut events, ctx);
                    }
                }
            }
        }
        ctx.events = events;
    }

    fn send_frame(
        &mut self,
        now: Instant,
        frame: PacedFrame,
        events: &mut Vec<Event>,
        ctx: &mut Ctx,
    ) {
        let Some(p) = &mut self.publisher else {
            return;
        };
        if !p.negotiated || !p.connected {
            return; // str0m drops media written before the connection is up
        }
        let (mid, pt, rid, rtp_time, wallclock, data) = match frame {
            PacedFrame::Audio {
                rtp_time,
                wallclock,
                data,
            } => {
                let (Some(mid), Some(pt)) = (p.audio_mid, p.audio_pt) else {
                    return;
                };
                (
                    mid,
                    pt,
                    None,
                    MediaTime::new(rtp_time, Frequency::FORTY_EIGHT_KHZ),
                    wallclock,
                    data,
                )
            }
            PacedFrame::Video {
                layer,
                rtp_time,
                wallclock,
                data,
                ..
            } => {
                let (Some(mid), Some(pt), Some(l)) = (p.video_mid, p.video_pt, p.layers.get(layer))
                else {
                    return;
                };
                if !l.active {
                    return;
                }
                (
                    mid,
                    pt,
                    l.rid,
                    MediaTime::new(rtp_time, Frequency::NINETY_KHZ),
                    wallclock,
                    data,
                )
            }
        };
        let ok = match p.peer.rtc.writer(mid) {
            Some(w) => {
                let w = match rid {
                    Some(rid) => w.rid(rid),
                    None => w,
                };
                w.write(pt, wallclock, rtp_time, data).is_ok()
            }
            None => false,
        };
        p.peer.drain(events, &ctx.counters);
        if ok {
            p.frames_sent += 1;
            Counters::add(&ctx.counters.frames_sent, 1);
        } else {
            Counters::add(&ctx.counters.write_errors, 1);
        }
        self.handle_events(Side::Publisher, now, events, ctx);
    }

    fn handle_events(&mut self, side: Side, now: Instant, events: &mut Vec<Event>, ctx: &mut Ctx) {
        let relay_problems = self
            .peer_mut(side)
            .map(|p| p.take_problems())
            .unwrap_or_default();
        for p in relay_problems {
            self.problem(p);
        }
        for event in events.drain(..) {
            match event {
                Event::RtpPacket(pkt) => self.on_rtp(now, &pkt, &ctx.counters),
                Event::Connected => match side {
                    Side::Publisher => {
                        if let Some(p) = &mut self.publisher {
                            if !p.connected {
                                p.connected = true;
                                // Start every layer at a keyframe.
                                p.pacer.request_keyframe(None);
                            }
                        }
                        if self.pub_connected.is_none() {
                            self.pub_connected = Some(now);
                            Counters::add(&ctx.counters.pub_connected, 1);
                        }
                    }
                    Side::Subscriber => {
                        if self.sub_connected.is_none() {
                            self.sub_connected = Some(now);
                            Counters::add(&ctx.counters.sub_connected, 1);
                        }
                    }
                },
                Event::IceConnectionStateChange(state) => {
                    if state == IceConnectionState::Disconnected {
                        Counters::add(&ctx.counters.ice_disconnects, 1);
                        if let (Side::Publisher, Some(p)) = (side, &mut self.publisher) {
                            p.connected = false;
                        }
                    } else if matches!(
                        state,
                        IceConnectionState::Connected | IceConnectionState::Completed
                    ) {
                        if let (Side::Publisher, Some(p)) = (side, &mut self.publisher) {
                            if self.pub_connected.is_some() && !p.connected {
                                p.connected = true;
                                p.pacer.request_keyframe(None);
                            }
                        }
                    }
                }
                Event::KeyframeRequest(req) => {
                    if let (Side::Publisher, Some(p)) = (side, &mut self.publisher) {
                        if Some(req.mid) == p.video_mid {
                            p.keyframe_requests += 1;
                            let layer = match req.rid {
                                Some(rid) => p.layers.iter().position(|l| l.rid == Some(rid)),
                                None if p.layers.len() == 1 => Some(0),
                                None => None,
                            };
                            p.pacer.request_keyframe(layer);
                        }
                    }
                }
                Event::MediaIngressStats(s) => {
                    let video = self.sub_video_mids.contains(&s.mid);
                    self.jitter_ms
                        .insert(s.mid, f64::from(s.jitter) * 1000.0 / codec_clock(video));
                }
                _ => {}
            }
        }
        self.check_ready(now, &ctx.counters);
    }

    fn check_ready(&mut self, _now: Instant, c: &Counters) {
        if self.ready {
            return;
        }
        let pub_ok = !self.spec.publishes() || self.pub_connected.is_some();
        let rx_ok = !self.spec.expects_media || self.first_packet.is_some();
        if pub_ok && rx_ok {
            self.ready = true;
            Counters::add(&c.ready, 1);
        }
    }

    /// The hot path: count one received RTP packet.
    fn on_rtp(&mut self, now: Instant, pkt: &RtpPacket, c: &Counters) {
        let ssrc = pkt.header.ssrc;
        let i = match self.streams.iter().position(|s| s.ssrc == ssrc) {
            Some(i) => i,
            None => {
                let pt = pkt.header.payload_type;
                let codec = self
                    .subscriber
                    .rtc
                    .codec_config()
                    .find(|p| p.pt() == pt)
                    .map(|p| p.spec().codec);
                let mid = self
                    .subscriber
                    .rtc
                    .direct_api()
                    .stream_rx(&ssrc)
                    .map(|s| s.mid());
                let video = codec.is_some_and(|c| c.is_video());
                if let (true, Some(mid)) = (video, mid) {
                    if !self.sub_video_mids.contains(&mid) {
                        self.sub_video_mids.push(mid);
                    }
                }
                self.streams.push(RxStream {
                    ssrc,
                    video,
                    vp8: codec == Some(Codec::Vp8),
                    mid,
                    counter: StreamCounter::default(),
                });
                self.streams.len() - 1
            }
        };
        let s = &mut self.streams[i];
        let keyframe = s.vp8 && vp8_starts_keyframe(&pkt.payload);
        let frame_end = !s.video || pkt.header.marker;
        let more = s
            .counter
            .on_packet(*pkt.seq_no, pkt.payload.len(), frame_end, keyframe);
        Counters::add(&c.rx_packets, 1);
        Counters::add(&c.rx_bytes, pkt.payload.len() as u64);
        Counters::add(&c.rx_expected, more);
        if s.video && frame_end {
            Counters::add(&c.rx_video_frames, 1);
        }
        if keyframe {
            Counters::add(&c.rx_keyframes, 1);
            if self.first_keyframe.is_none() {
                self.first_keyframe = Some(now);
            }
        }
        if self.first_packet.is_none() {
            self.first_packet = Some(now);
            Counters::add(&c.first_media, 1);
        }
    }

    fn on_signal(&mut self, now: Instant, msg: ServerMsg, ctx: &mut Ctx) {
        let mut events = std::mem::take(&mut ctx.events);
        match msg {
            ServerMsg::Offer {
                pc: PcKind::Subscriber,
                sdp,
                tracks,
            } => {
                match SdpOffer::from_sdp_string(&sdp) {
                    Err(e) => self.problem(format!("subscriber offer is not valid SDP: {e}")),
                    Ok(offer) => {
                        let answer = self.subscriber.rtc.sdp_api().accept_offer(offer);
                        self.subscriber.drain(&mut events, &ctx.counters);
                        match answer {
                            Err(e) => self.problem(format!("subscriber offer refused: {e}")),
                            Ok(answer) => {
                                for t in &tracks {
                                    let mid = Mid::from(t.mid.as_str());
                                    if t.kind == PKind::Video && !self.sub_video_mids.contains(&mid)
                                    {
                                        self.sub_video_mids.push(mid);
                                    }
                                }
                                let _ = self.to_ws.send(ClientMsg::Answer {
                                    pc: PcKind::Subscriber,
                                    sdp: answer.to_sdp_string(),
                                });
                                if !self.sub_answered {
                                    self.sub_answered = true;
                                    let _ = self.to_ws.send(ClientMsg::Candidate {
                                        pc: PcKind::Subscriber,
                                        candidate: self.subscriber.candidate.clone(),
                                    });
                                    let _ = self.to_ws.send(ClientMsg::Candidate {
                                        pc: PcKind::Subscriber,
                                        candidate: String::new(),
                                    });
                                }
                            }
                        }
                    }
                }
                self.handle_events(Side::Subscriber, now, &mut events, ctx);
            }
            ServerMsg::Answer {
                pc: PcKind::Publisher,
                sdp,
                ..
            } => {
                self.on_publisher_answer(&sdp, &mut events, ctx);
                self.handle_events(Side::Publisher, now, &mut events, ctx);
            }
            ServerMsg::Candidate { pc, candidate } => {
                let line = candidate.trim();
                let line = line.strip_prefix("a=").unwrap_or(line);
                if !line.is_empty() {
                    let side = match pc {
                        PcKind::Publisher => Side::Publisher,
                        PcKind::Subscriber => Side::Subscriber,
                    };
                    match Candidate::from_sdp_string(line) {
                        Ok(c) => {
                            if let Some(peer) = self.peer_mut(side) {
                                peer.rtc.add_remote_candidate(c);
                                peer.drain(&mut events, &ctx.counters);
                            }
                            self.handle_events(side, now, &mut events, ctx);
                        }
                        Err(e) => self.problem(format!("bad candidate {line:?}: {e}")),
                    }
                }
            }
            ServerMsg::Error { code, message } => {
                self.problem(format!("server error {code:?}: {message}"));
            }
            _ => {}
        }
        ctx.events = events;
    }

    fn on_publisher_answer(&mut self, sdp: &str, events: &mut Vec<Event>, ctx: &mut Ctx) {
        let Some(p) = &mut self.publisher else {
            return self.problem("publisher answer but nothing is published".into());
        };
        let Some(pending) = p.pending.take() else {
            return self.problem("publisher answer without a pending offer".into());
        };
        let answer = match SdpAnswer::from_sdp_string(sdp) {
            Ok(a) => a,
            Err(e) => return self.problem(format!("publisher answer is not valid SDP: {e}")),
        };
        let accepted = p.peer.rtc.sdp_api().accept_answer(pending, answer);
        p.peer.drain(events, &ctx.counters);
        if let Err(e) = accepted {
            return self.problem(format!("publisher answer refused: {e}"));
        }
        let find_pt = |rtc: &mut Rtc, mid: Option<Mid>, codec: Codec| {
            let writer = rtc.writer(mid?)?;
            let pt = writer
                .payload_params()
                .find(|p| p.spec().codec == codec)
                .map(|p| p.pt());
            pt
        };
        p.audio_pt = find_pt(&mut p.peer.rtc, p.audio_mid, Codec::Opus);
        p.video_pt = find_pt(&mut p.peer.rtc, p.video_mid, Codec::Vp8);
        let rids_tx: Option<Vec<Rid>> = p.video_mid.and_then(|m| {
            p.peer.rtc.media(m).map(|media| match media.rids_tx() {
                Rids::Specific(v) => v.clone(),
                Rids::Any => LAYER_RIDS.iter().map(|r| Rid::from(*r)).collect(),
                Rids::None => vec![],
            })
        });
        let video_ok = p.video_pt.is_some();
        for l in &mut p.layers {
            l.active = video_ok
                && match l.rid {
                    Some(rid) => rids_tx.as_ref().is_some_and(|v| v.contains(&rid)),
                    None => true,
                };
        }
        p.negotiated = true;
        let missing_audio = p.audio_mid.is_some() && p.audio_pt.is_none();
        let missing_video = p.video_mid.is_some() && p.video_pt.is_none();
        if missing_audio {
            self.problem("the publisher answer has no Opus".into());
        }
        if missing_video {
            self.problem("the publisher answer has no VP8".into());
        }
    }

    fn report(&self) -> PartReport {
        let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(self.ws_open));
        PartReport {
            id: self.id,
            publishes: self.spec.publishes(),
            expects_media: self.spec.expects_media,
            pub_connected: since(self.pub_connected),
            sub_connected: since(self.sub_connected),
            first_packet: since(self.first_packet),
            first_keyframe: since(self.first_keyframe),
            streams: self
                .streams
                .iter()
                .map(|s| StreamReport {
                    video: s.video,
                    counter: s.counter.clone(),
                    jitter_ms: s.mid.and_then(|m| self.jitter_ms.get(&m).copied()),
                })
                .collect(),
            frames_sent: self.publisher.as_ref().map_or(0, |p| p.frames_sent),
            skipped: self
                .publisher
                .as_ref()
                .map_or((0, 0), |p| p.pacer.skipped()),
            keyframe_requests: self.publisher.as_ref().map_or(0, |p| p.keyframe_requests),
            ready: self.ready,
            problems: self.problems.clone(),
        }
    }

    fn close(&mut self, c: &Counters) {
        if let Some(p) = &mut self.publisher {
            p.peer.close(c);
        }
        self.subscriber.close(c);
    }
}

/// `recvmmsg` buffers.
struct RecvBatch {
    bufs: Vec<[u8; MAX_DATAGRAM]>,
    addrs: Vec<libc::sockaddr_storage>,
    lens: Vec<usize>,
}

impl RecvBatch {
    fn new() -> RecvBatch {
        RecvBatch {
            bufs: vec![[0u8; MAX_DATAGRAM]; RECV_BATCH],
            // SAFETY: sockaddr_storage is plain data; all-zero is valid.
            addrs: vec![unsafe { MaybeUninit::zeroed().assume_init() }; RECV_BATCH],
            lens: vec![0; RECV_BATCH],
        }
    }

    /// Read up to [`RECV_BATCH`] datagrams without blocking.
    fn recv(&mut self, fd: i32) -> io::Result<usize> {
        let mut iovs: [libc::iovec; RECV_BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; RECV_BATCH];
        // SAFETY: mmsghdr is plain data; all-zero is a valid empty value.
        let mut msgs: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..RECV_BATCH {
            iovs[i].iov_base = self.bufs[i].as_mut_ptr() as *mut libc::c_void;
            iovs[i].iov_len = MAX_DATAGRAM;
            msgs[i].msg_hdr.msg_name = &mut self.addrs[i] as *mut _ as *mut libc::c_void;
            msgs[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msgs[i].msg_hdr.msg_iov = &mut iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: every msghdr points at live buffers of the stated sizes.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                RECV_BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        for (len, msg) in self.lens.iter_mut().zip(&msgs[..n as usize]) {
            *len = msg.msg_len as usize;
        }
        Ok(n as usize)
    }

    fn get(&self, i: usize) -> Option<(SocketAddr, &[u8])> {
        let addr = sockaddr_to_std(&self.addrs[i])?;
        Some((addr, &self.bufs[i][..self.lens[i]]))
    }
}

fn sockaddr_to_std(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match s.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says this is a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this is a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// One shard: see the module docs.
struct Shard {
    poll: Poll,
    rx: mpsc::Receiver<Cmd>,
    ctx: Ctx,
    slots: Vec<Option<Part>>,
    free: Vec<usize>,
    by_id: HashMap<usize, usize>,
    heap: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Per token: the earliest live heap entry.
    scheduled: Vec<Option<Instant>>,
    recv: RecvBatch,
}

/// A timer this late counts as the shard falling behind.
const LATE: Duration = Duration::from_millis(20);

impl Shard {
    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = self
                .heap
                .peek()
                .map(|Reverse((t, _))| t.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!("load shard: epoll failed: {e}");
                    return;
                }
            }
            let busy = Instant::now();
            for ev in events.iter() {
                if ev.token() != WAKER {
                    self.on_readable(ev.token().0);
                }
            }
            if !self.commands() {
                return;
            }
            self.fire_timers();
            Counters::add(&self.ctx.counters.busy_ns, busy.elapsed().as_nanos() as u64);
        }
    }

    fn schedule(&mut self, token: usize, at: Instant) {
        if self.scheduled.len() <= token {
            self.scheduled.resize(token + 1, None);
        }
        match self.scheduled[token] {
            Some(t) if t <= at => {}
            _ => {
                self.scheduled[token] = Some(at);
                self.heap.push(Reverse((at, token)));
            }
        }
    }

    /// Schedule both connections of the participant in `slot`.
    fn reschedule(&mut self, slot: usize, now: Instant) {
        let floor = now + Duration::from_millis(1);
        for side in [Side::Publisher, Side::Subscriber] {
            let at = self.slots[slot].as_ref().and_then(|p| p.deadline(side));
            if let Some(at) = at {
                self.schedule(token(slot, side), at.max(floor));
            }
        }
    }

    fn on_readable(&mut self, tok: usize) {
        let (slot, side) = (tok / 2, Side::of(tok));
        loop {
            let Some(part) = self.slots.get_mut(slot).and_then(|s| s.as_mut()) else {
                return;
            };
            let Some(fd) = part.peer_mut(side).map(|p| p.socket.as_raw_fd()) else {
                return;
            };
            let n = match self.recv.recv(fd) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // ICMP errors (port unreachable) surface here: keep reading.
                    tracing::trace!("recvmmsg: {e}");
                    continue;
                }
            };
            let now = Instant::now();
            for i in 0..n {
                if let Some((source, data)) = self.recv.get(i) {
                    part.on_datagram(side, now, source, data, &mut self.ctx);
                }
            }
            if n < RECV_BATCH {
                break;
            }
        }
        self.reschedule(slot, Instant::now());
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((t, tok))) = self.heap.peek() {
            if t > now {
                break;
            }
            self.heap.pop();
            if self.scheduled.get(tok).copied().flatten() != Some(t) {
                continue; // stale
            }
            self.scheduled[tok] = None;
            let (slot, side) = (tok / 2, Side::of(tok));
            let Some(part) = self.slots.get_mut(slot).and_then(|s| s.as_mut()) else {
                continue;
            };
            let due = part.deadline(side).is_some_and(|d| d <= now);
            if due {
                let late = now.saturating_duration_since(t);
                let c = &self.ctx.counters;
                c.timer_late_max_us
                    .fetch_max(late.as_micros() as u64, Ordering::Relaxed);
                if late > LATE {
                    Counters::add(&c.timers_late, 1);
                }
                part.on_timer(side, now, &mut self.ctx);
            }
            self.reschedule(slot, now);
        }
    }

    /// Handle queued commands; false means stop.
    fn commands(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(Cmd::Add {
                    id,
                    spec,
                    ws_open,
                    to_ws,
                    relays,
                }) => {
                    if let Err(e) = self.add(id, spec, ws_open, to_ws, *relays) {
                        tracing::warn!("participant {id}: {e:#}");
                    }
                }
                Ok(Cmd::Signal { id, msg }) => {
                    if let Some(&slot) = self.by_id.get(&id) {
                        let now = Instant::now();
                        if let Some(part) = self.slots[slot].as_mut() {
                            part.on_signal(now, msg, &mut self.ctx);
                        }
                        self.reschedule(slot, now);
                    }
                }
                Ok(Cmd::Remove { id }) => {
                    if let Some(slot) = self.by_id.remove(&id) {
                        if let Some(mut part) = self.slots[slot].take() {
                            part.close(&self.ctx.counters);
                            let _ = self.poll.registry().deregister(&mut part.subscriber.socket);
                            if let Some(p) = &mut part.publisher {
                                let _ = self.poll.registry().deregister(&mut p.peer.socket);
                            }
                        }
                        for side in [Side::Publisher, Side::Subscriber] {
                            if let Some(s) = self.scheduled.get_mut(token(slot, side)) {
                                *s = None;
                            }
                        }
                        self.free.push(slot);
                    }
                }
                Ok(Cmd::Snapshot { reply }) => {
                    let parts = self.slots.iter().flatten().map(Part::report).collect();
                    let _ = reply.send(parts);
                }
                Ok(Cmd::Stop) | Err(mpsc::TryRecvError::Disconnected) => {
                    for part in self.slots.iter_mut().flatten() {
                        part.close(&self.ctx.counters);
                    }
                    return false;
                }
                Err(mpsc::TryRecvError::Empty) => return true,
            }
        }
    }

    fn add(
        &mut self,
        id: usize,
        spec: PeerSpec,
        ws_open: Instant,
        to_ws: UnboundedSender<ClientMsg>,
        relays: Relays,
    ) -> anyhow::Result<()> {
        let mut part = Part::new(id, spec, ws_open, to_ws, relays, &mut self.ctx)?;
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        let registry = self.poll.registry();
        registry.register(
            &mut part.subscriber.socket,
            Token(token(slot, Side::Subscriber)),
            Interest::READABLE,
        )?;
        if let Some(p) = &mut part.publisher {
            registry.register(
                &mut p.peer.socket,
                Token(token(slot, Side::Publisher)),
                Interest::READABLE,
            )?;
        }
        self.slots[slot] = Some(part);
        self.by_id.insert(id, slot);
        self.reschedule(slot, Instant::now());
        Ok(())
    }
}
