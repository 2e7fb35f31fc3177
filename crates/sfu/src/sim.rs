//! A simulated network for sans-IO tests of rooms: one worker driven in virtual time and
//! str0m peers as clients (ICE, DTLS, SRTP for real), exchanging datagrams without sockets.
//!
//! Each step advances the clock, lets the clients read their signalling (unless told not to)
//! and write media, hands their datagrams to the worker through the [`Demux`] as the socket
//! readers do, fires the worker's timers and delivers what it sent; the clients' replies leave
//! at the next step (a round trip of at least one step).
//!
//! [`Demux`]: crate::demux::Demux

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orbita_protocol::{ClientMsg, Limits, PcKind, PublishTrack, ServerMsg, TrackSource};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::sync::mpsc;

use crate::demux::{ConnId, Transport};
use crate::net::Shared;
use crate::stats::RoomStatus;
use crate::worker::{Worker, WorkerMsg};
use crate::{RoomId, SfuConfig};

/// Virtual time per step.
pub(crate) const STEP: Duration = Duration::from_millis(10);
/// Signalling queue of each client, as the server's `SINK_CAPACITY`.
pub(crate) const SINK: usize = 256;

/// One client peer connection.
pub(crate) struct ClientPeer {
    pub rtc: Rtc,
    pub addr: SocketAddr,
    pending: Option<SdpPendingOffer>,
    audio: Option<(Mid, Option<Pt>)>,
    rtp_time: u64,
}

/// A participant's client.
pub(crate) struct Client {
    /// Participant id in the room.
    pub id: u64,
    events: mpsc::Receiver<ServerMsg>,
    /// Whether it reads its signalling queue each step.
    pub reading: bool,
    /// Signalling messages read so far.
    pub received: Vec<ServerMsg>,
    pub publisher: Option<ClientPeer>,
    pub subscriber: Option<ClientPeer>,
    /// Media frames (Opus packets) its subscriber connection delivered.
    pub media_frames: usize,
}

impl Client {
    /// Messages waiting unread in its signalling queue.
    pub fn unread(&self) -> usize {
        self.events.len()
    }

    /// Whether the server dropped it (its sink's sender is gone).
    pub fn dropped(&self) -> bool {
        self.events.is_closed() && self.events.is_empty()
    }
}

/// The room, its worker and its clients.
pub(crate) struct Sim {
    pub now: Instant,
    pub shared: Arc<Shared>,
    worker: Worker,
    _tx: crossbeam_channel::Sender<WorkerMsg>,
    pub room: RoomId,
    server: SocketAddr,
    pub clients: Vec<Client>,
    /// Server connections whose timers do not fire and whose incoming datagrams are lost.
    pub stalled: HashSet<ConnId>,
    next_tick: Instant,
    next_id: u64,
    steps: u64,
    /// Datagrams the clients produced outside a step (after an SDP change).
    client_out: Vec<(SocketAddr, Vec<u8>)>,
    /// The latest STUN binding request a client sent (source, datagram).
    pub last_stun: Option<(SocketAddr, Vec<u8>)>,
}

impl Sim {
    /// A worker with one room.
    pub fn new() -> Sim {
        let now = Instant::now();
        let shared = Arc::new(Shared::for_tests(SfuConfig::default()).expect("loopback socket"));
        let (tx, rx) = crossbeam_channel::bounded(16);
        let mut worker = Worker::new(0, shared.clone(), rx);
        let room = 1;
        worker.handle(
            WorkerMsg::CreateRoom {
                room,
                label: "1234".into(),
                status: Arc::new(RoomStatus::new(now)),
            },
            now,
        );
        Sim {
            now,
            server: shared.udp_local[0],
            shared,
            worker,
            _tx: tx,
            room,
            clients: Vec::new(),
            stalled: HashSet::new(),
            next_tick: now,
            next_id: 1,
            steps: 0,
            client_out: Vec::new(),
            last_stun: None,
        }
    }

    /// A participant joins; returns its client's index.
    pub fn join(&mut self, name: &str) -> usize {
        let (sink, events) = mpsc::channel(SINK);
        let id = self.next_id;
        self.next_id += 1;
        let limits = Limits {
            max_message_bytes: 65_536,
            max_chat_chars: 1000,
            max_participants: 100,
            max_file_bytes: 0,
        };
        self.worker.handle(
            WorkerMsg::Join {
                room: self.room,
                id,
                name: name.into(),
                role: orbita_protocol::Role::Participant,
                limits,
                sink,
                ingest: false,
            },
            self.now,
        );
        self.clients.push(Client {
            id,
            events,
            reading: true,
            received: Vec::new(),
            publisher: None,
            subscriber: None,
            media_frames: 0,
        });
        self.clients.len() - 1
    }

    /// Client `c` sends a signalling message.
    pub fn signal(&mut self, c: usize, msg: ClientMsg) {
        let id = self.clients[c].id;
        let room = self.room;
        self.worker
            .handle(WorkerMsg::Signal { room, id, msg }, self.now);
    }

    /// Client `c` offers one microphone track.
    pub fn publish_audio(&mut self, c: usize) {
        let mut rtc = Rtc::builder().build(self.now);
        let addr = self.client_addr(c, PcKind::Publisher);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        let mut api = rtc.sdp_api();
        let mid = api.add_media(MediaKind::Audio, Direction::SendOnly, None, None, None);
        let (offer, pending) = api.apply().expect("an offer");
        let mut peer = ClientPeer {
            rtc,
            addr,
            pending: Some(pending),
            audio: Some((mid, None)),
            rtp_time: 0,
        };
        peer.drain(&mut self.client_out);
        self.clients[c].publisher = Some(peer);
        let track = PublishTrack {
            mid: mid.to_string(),
            source: TrackSource::Microphone,
            layers: vec![],
            muted: false,
        };
        self.signal(
            c,
            ClientMsg::Offer {
                pc: PcKind::Publisher,
                sdp: offer.to_sdp_string(),
                tracks: vec![track],
            },
        );
    }

    /// The room, as its worker holds it.
    pub fn room_mut(&mut self) -> &mut crate::room::Room {
        self.worker.room_mut(self.room).expect("the room is open")
    }

    /// The server connection of client `c`'s peer `pc`.
    pub fn server_conn(&self, c: usize, pc: PcKind) -> Option<ConnId> {
        let id = self.clients[c].id;
        self.worker
            .conns()
            .iter()
            .find(|(_, v)| v.1 == id && v.2 == pc)
            .map(|(conn, _)| *conn)
    }

    /// Every address is on loopback: 127.0.0.(2 + client):(5000 + peer).
    fn client_addr(&self, c: usize, pc: PcKind) -> SocketAddr {
        let port = if pc == PcKind::Publisher { 5000 } else { 5001 };
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + c as u8)), port)
    }

    /// Run `n` steps; publishers send one Opus packet per 20 ms when `media` is on.
    pub fn run(&mut self, n: usize, media: bool) {
        for _ in 0..n {
            self.step(media);
        }
    }

    fn step(&mut self, media: bool) {
        self.now += STEP;
        self.steps += 1;
        let now = self.now;
        let audio_due = media && self.steps.is_multiple_of(2);
        for c in 0..self.clients.len() {
            self.read_signalling(c);
        }
        // Client side: media out, timers, datagrams to the server.
        let mut to_server = std::mem::take(&mut self.client_out);
        for client in &mut self.clients {
            for peer in [client.publisher.as_mut(), client.subscriber.as_mut()]
                .into_iter()
                .flatten()
            {
                if audio_due {
                    peer.write_audio(now);
                    client.media_frames += peer.drain(&mut to_server);
                }
                let _ = peer.rtc.handle_input(Input::Timeout(now));
                client.media_frames += peer.drain(&mut to_server);
            }
        }
        for (source, data) in to_server {
            if crate::demux::stun_server_ufrag(&data).is_some() {
                self.last_stun = Some((source, data.clone()));
            }
            let Some(routed) = self.shared.demux.route_for(Transport::Udp, source, &data) else {
                continue;
            };
            if self.stalled.contains(&routed.route.conn) {
                continue;
            }
            let msg = WorkerMsg::Datagram {
                conn: routed.route.conn,
                transport: Transport::Udp,
                local: 0,
                source,
                unconfirmed: routed.unconfirmed,
                data,
            };
            self.worker.handle(msg, now);
        }
        // Server side: timers, the room tick, datagrams to the clients.
        let stalled = self.stalled.clone();
        self.worker
            .fire_timers_except(now, |conn| stalled.contains(&conn));
        if now >= self.next_tick {
            self.worker.tick(now);
            self.next_tick = now + Duration::from_millis(250);
        }
        self.deliver();
    }

    /// A datagram from `source` reaches the media port (as a socket reader hands it on).
    pub fn inject(&mut self, source: SocketAddr, data: Vec<u8>) {
        if let Some(routed) = self.shared.demux.route_for(Transport::Udp, source, &data) {
            let msg = WorkerMsg::Datagram {
                conn: routed.route.conn,
                transport: Transport::Udp,
                local: 0,
                source,
                unconfirmed: routed.unconfirmed,
                data,
            };
            self.worker.handle(msg, self.now);
        }
        self.deliver();
    }

    /// Hand what the worker sent to the clients it was sent to.
    fn deliver(&mut self) {
        let now = self.now;
        let server = self.server;
        let mut media = vec![0usize; self.clients.len()];
        let mut by_addr: HashMap<SocketAddr, &mut ClientPeer> = HashMap::new();
        let mut counts: HashMap<SocketAddr, usize> = HashMap::new();
        for (i, client) in self.clients.iter_mut().enumerate() {
            for peer in [client.publisher.as_mut(), client.subscriber.as_mut()]
                .into_iter()
                .flatten()
            {
                counts.insert(peer.addr, i);
                by_addr.insert(peer.addr, peer);
            }
        }
        let mut replies = Vec::new();
        for (_, dest, data) in self.worker.out.take() {
            let Some(peer) = by_addr.get_mut(&dest) else {
                continue;
            };
            let Ok(contents) = data.as_slice().try_into() else {
                continue;
            };
            let input = Input::Receive(
                now,
                Receive {
                    proto: Protocol::Udp,
                    source: server,
                    destination: dest,
                    contents,
                },
            );
            let _ = peer.rtc.handle_input(input);
            media[counts[&dest]] += peer.drain(&mut replies);
        }
        drop(by_addr);
        for (client, n) in self.clients.iter_mut().zip(media) {
            client.media_frames += n;
        }
        // Replies (STUN answers, DTLS, RTCP) leave at the next step: the network has one step
        // of latency (a round trip of zero would make str0m's estimator poll without end).
        self.client_out.extend(replies);
    }

    /// Client `c` reads its signalling queue (if it reads) and answers what needs answers.
    fn read_signalling(&mut self, c: usize) {
        if !self.clients[c].reading {
            return;
        }
        while let Ok(msg) = self.clients[c].events.try_recv() {
            match &msg {
                ServerMsg::Answer {
                    pc: PcKind::Publisher,
                    sdp,
                    ..
                } => {
                    let peer = self.clients[c].publisher.as_mut().expect("offered");
                    let answer = SdpAnswer::from_sdp_string(sdp).expect("answer parses");
                    let pending = peer.pending.take().expect("pending offer");
                    peer.rtc
                        .sdp_api()
                        .accept_answer(pending, answer)
                        .expect("answer accepted");
                    peer.drain(&mut self.client_out);
                }
                ServerMsg::Offer {
                    pc: PcKind::Subscriber,
                    sdp,
                    ..
                } => {
                    let addr = self.client_addr(c, PcKind::Subscriber);
                    let now = self.now;
                    let peer = self.clients[c].subscriber.get_or_insert_with(|| {
                        let mut rtc = Rtc::builder().build(now);
                        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
                        ClientPeer {
                            rtc,
                            addr,
                            pending: None,
                            audio: None,
                            rtp_time: 0,
                        }
                    });
                    let offer = SdpOffer::from_sdp_string(sdp).expect("offer parses");
                    let answer = peer.rtc.sdp_api().accept_offer(offer).expect("accepted");
                    peer.drain(&mut self.client_out);
                    let sdp = answer.to_sdp_string();
                    self.signal(
                        c,
                        ClientMsg::Answer {
                            pc: PcKind::Subscriber,
                            sdp,
                        },
                    );
                }
                _ => {}
            }
            self.clients[c].received.push(msg);
        }
    }
}

impl ClientPeer {
    /// Write one 20 ms Opus packet, once the connection is up.
    fn write_audio(&mut self, now: Instant) {
        let Some((mid, pt)) = self.audio else {
            return;
        };
        if !self.rtc.is_connected() {
            return;
        }
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let pt = pt.or_else(|| {
            writer
                .payload_params()
                .find(|p| p.spec().codec == Codec::Opus)
                .map(|p| p.pt())
        });
        self.audio = Some((mid, pt));
        let Some(pt) = pt else {
            return;
        };
        let writer = self.rtc.writer(mid).expect("checked");
        let time = MediaTime::new(self.rtp_time, Frequency::FORTY_EIGHT_KHZ);
        self.rtp_time += 960;
        writer
            .write(pt, now, time, vec![0xfc_u8; 80])
            .expect("audio written");
    }

    /// Poll until the next timeout: datagrams into `out` (from this peer's address), returns the
    /// media frames received.
    fn drain(&mut self, out: &mut Vec<(SocketAddr, Vec<u8>)>) -> usize {
        let mut frames = 0;
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(_)) | Err(_) => return frames,
                Ok(Output::Transmit(t)) => out.push((t.source, t.contents.into())),
                Ok(Output::Event(Event::MediaData(_))) => frames += 1,
                Ok(Output::Event(_)) => {}
            }
        }
    }
}
