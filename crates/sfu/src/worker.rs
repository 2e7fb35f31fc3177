//! A worker thread: owns a shard of the rooms and every connection in them.
//!
//! It waits on its channel until the earliest connection timer; handles a batch of messages
//! (datagrams routed to it by the readers, control commands from the signalling side); fires
//! the timers that are due; runs the periodic room tick; then sends the batch's datagrams.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use orbita_protocol::{ClientMsg, ErrorCode, Limits, PcKind, Role, ServerMsg};
use orbita_record::RecorderHandle;
use str0m::net::{Protocol, Receive};
use str0m::Input;
use tracing::{debug, info};

use crate::demux::{ConnId, Transport};
use crate::net::{Outbox, Shared};
use crate::room::Room;
use crate::stats::RoomStatus;
use crate::RoomId;

/// Messages a worker handles.
pub(crate) enum WorkerMsg {
    Datagram {
        conn: ConnId,
        transport: Transport,
        /// UDP: the index of the local port it came in on (see [`Shared`]).
        local: u16,
        source: SocketAddr,
        /// Routed by STUN ufrag from an address not recorded for the connection: record it
        /// once the connection has verified the request.
        unconfirmed: bool,
        data: Vec<u8>,
    },
    CreateRoom {
        room: RoomId,
        label: String,
        status: Arc<RoomStatus>,
    },
    AttachApp {
        room: RoomId,
        input: tokio::sync::mpsc::Sender<String>,
    },
    DetachApp {
        room: RoomId,
        reason: String,
    },
    CloseRoom {
        room: RoomId,
    },
    Join {
        room: RoomId,
        id: u64,
        name: String,
        role: Role,
        limits: Limits,
        sink: tokio::sync::mpsc::Sender<ServerMsg>,
        ingest: bool,
    },
    Signal {
        room: RoomId,
        id: u64,
        msg: ClientMsg,
    },
    Leave {
        room: RoomId,
        id: u64,
    },
    StartRecording {
        room: RoomId,
        recorder: RecorderHandle,
    },
    StopRecording {
        room: RoomId,
    },
    Shutdown {
        reason: String,
        done: Sender<()>,
    },
}

/// How often rooms re-choose layers and check ICE grace.
const TICK: Duration = Duration::from_millis(250);
/// Most messages handled before timers and sends get their turn.
const BATCH: usize = 256;

/// Connection timers: a min-heap with at most one live entry per connection.
#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnId)>>,
    scheduled: HashMap<ConnId, Instant>,
}

impl Timers {
    fn schedule(&mut self, conn: ConnId, at: Instant) {
        match self.scheduled.get(&conn) {
            Some(&t) if t <= at => {}
            _ => {
                self.scheduled.insert(conn, at);
                self.heap.push(Reverse((at, conn)));
            }
        }
    }

    fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// The next connection whose timer is due, skipping stale entries.
    fn pop_due(&mut self, now: Instant) -> Option<ConnId> {
        while let Some(&Reverse((t, conn))) = self.heap.peek() {
            if t > now {
                return None;
            }
            self.heap.pop();
            if self.scheduled.get(&conn) == Some(&t) {
                self.scheduled.remove(&conn);
                return Some(conn);
            }
        }
        None
    }

    fn forget(&mut self, conn: ConnId) {
        self.scheduled.remove(&conn);
    }
}

/// What room code may touch of its worker while handling one message.
pub(crate) struct Ctx<'a> {
    pub shared: &'a Shared,
    pub worker: usize,
    pub now: Instant,
    pub out: &'a mut Outbox,
    pub conns: &'a mut HashMap<ConnId, (RoomId, u64, PcKind)>,
    timers: &'a mut Timers,
}

impl Ctx<'_> {
    /// Wake connection `conn` at `at`.
    pub fn schedule(&mut self, conn: ConnId, at: Instant) {
        self.timers.schedule(conn, at);
    }

    /// A connection is gone: unroute it.
    pub fn forget_conn(&mut self, conn: ConnId) {
        self.conns.remove(&conn);
        self.timers.forget(conn);
        self.shared.demux.remove_conn(conn);
    }

    pub fn counters_participants(&self, delta: i64) {
        let c = &self.shared.counters.participants;
        if delta >= 0 {
            c.fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            c.fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    pub fn counters_forwarded(&self, n: u64) {
        if n > 0 {
            self.shared
                .counters
                .rtp_forwarded
                .fetch_add(n, Ordering::Relaxed);
        }
    }
}

pub(crate) struct Worker {
    index: usize,
    shared: Arc<Shared>,
    rx: Receiver<WorkerMsg>,
    rooms: HashMap<RoomId, Room>,
    conns: HashMap<ConnId, (RoomId, u64, PcKind)>,
    timers: Timers,
    pub(crate) out: Outbox,
}

impl Worker {
    pub fn new(index: usize, shared: Arc<Shared>, rx: Receiver<WorkerMsg>) -> Self {
        Worker {
            index,
            out: Outbox::new(&shared),
            shared,
            rx,
            rooms: HashMap::new(),
            conns: HashMap::new(),
            timers: Timers::default(),
        }
    }

    pub fn run(mut self) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            let deadline = self.timers.next().map_or(next_tick, |t| t.min(next_tick));
            match self.rx.recv_deadline(deadline) {
                Ok(msg) => {
                    if !self.handle(msg, Instant::now()) {
                        return;
                    }
                    for _ in 0..BATCH {
                        match self.rx.try_recv() {
                            Ok(msg) => {
                                if !self.handle(msg, Instant::now()) {
                                    return;
                                }
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            self.fire_timers(now);
            if now >= next_tick {
                next_tick = now + TICK;
                self.tick(now);
            }
            if !self.out.is_empty() {
                self.out.flush(&self.shared);
            }
        }
    }

    /// The connections of this worker's rooms: conn -> (room, participant, kind).
    #[cfg(test)]
    pub(crate) fn conns(&self) -> &HashMap<ConnId, (RoomId, u64, PcKind)> {
        &self.conns
    }

    /// A room of this worker.
    #[cfg(test)]
    pub(crate) fn room_mut(&mut self, room: RoomId) -> Option<&mut Room> {
        self.rooms.get_mut(&room)
    }

    /// Split-borrow the worker into a room and the context room code works with.
    fn with_room(&mut self, room: RoomId, now: Instant, f: impl FnOnce(&mut Room, &mut Ctx)) {
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let mut ctx = Ctx {
            shared: &self.shared,
            worker: self.index,
            now,
            out: &mut self.out,
            conns: &mut self.conns,
            timers: &mut self.timers,
        };
        f(r, &mut ctx);
        r.reap(&mut ctx);
    }

    /// Handle one message at `now`; false means stop the thread.
    pub(crate) fn handle(&mut self, msg: WorkerMsg, now: Instant) -> bool {
        match msg {
            WorkerMsg::Datagram {
                conn,
                transport,
                local,
                source,
                unconfirmed,
                data,
            } => {
                let Some(&(room, id, pc)) = self.conns.get(&conn) else {
                    return true;
                };
                let udp_local = &self.shared.udp_local;
                let (proto, destination) = match transport {
                    Transport::Udp => (
                        Protocol::Udp,
                        *udp_local.get(local as usize).unwrap_or(&udp_local[0]),
                    ),
                    Transport::Tcp => {
                        (Protocol::Tcp, self.shared.tcp_local.unwrap_or(udp_local[0]))
                    }
                };
                let Ok(contents) = data.as_slice().try_into() else {
                    return true;
                };
                let input = Input::Receive(
                    now,
                    Receive {
                        proto,
                        source,
                        destination,
                        contents,
                    },
                );
                let learn = unconfirmed.then_some(transport);
                self.with_room(room, now, |r, ctx| r.on_datagram(id, pc, input, learn, ctx));
            }
            WorkerMsg::CreateRoom {
                room,
                label,
                status,
            } => {
                self.shared.counters.rooms.fetch_add(1, Ordering::Relaxed);
                self.rooms.insert(room, Room::new(room, label, status));
            }
            WorkerMsg::AttachApp { room, input } => {
                self.with_room(room, now, |r, _| r.attach_app(input));
            }
            WorkerMsg::DetachApp { room, reason } => {
                self.with_room(room, now, |r, _| r.detach_app(&reason));
            }
            WorkerMsg::CloseRoom { room } => {
                let msg = ServerMsg::error(ErrorCode::Unavailable, "the room has ended");
                self.with_room(room, now, |r, ctx| r.close_all(msg, ctx));
                if let Some(r) = self.rooms.remove(&room) {
                    info!("room {} closed", r.label);
                    self.shared.counters.rooms.fetch_sub(1, Ordering::Relaxed);
                }
            }
            WorkerMsg::Join {
                room,
                id,
                name,
                role,
                limits,
                sink,
                ingest,
            } => {
                if !self.rooms.contains_key(&room) {
                    let _ = sink.try_send(ServerMsg::error(
                        ErrorCode::UnknownCode,
                        "the room has ended",
                    ));
                    return true;
                }
                self.with_room(room, now, |r, ctx| {
                    r.join(id, name, role, limits, sink, ingest, ctx)
                });
            }
            WorkerMsg::Signal { room, id, msg } => {
                self.with_room(room, now, |r, ctx| r.signal(id, msg, ctx));
            }
            WorkerMsg::Leave { room, id } => {
                self.with_room(room, now, |r, ctx| r.leave(id, ctx));
            }
            WorkerMsg::StartRecording { room, recorder } => {
                if self.rooms.contains_key(&room) {
                    self.with_room(room, now, |r, ctx| r.start_recording(recorder, ctx));
                } else {
                    // The room ended meanwhile: the recording ends with nothing in it.
                    recorder.stop(now);
                }
            }
            WorkerMsg::StopRecording { room } => {
                self.with_room(room, now, |r, ctx| r.stop_recording(ctx.now));
            }
            WorkerMsg::Shutdown { reason, done } => {
                let msg = ServerMsg::ServerShutdown { reason };
                let rooms: Vec<RoomId> = self.rooms.keys().copied().collect();
                for room in rooms {
                    let msg = msg.clone();
                    self.with_room(room, now, |r, ctx| r.close_all(msg, ctx));
                }
                self.out.flush(&self.shared);
                self.rooms.clear();
                debug!("worker {} stopped", self.index);
                let _ = done.send(());
                return false;
            }
        }
        true
    }

    fn fire_timers(&mut self, now: Instant) {
        self.fire_timers_except(now, |_| false);
    }

    /// Fire the due timers, skipping those of connections `skip` names (tests stall a
    /// connection that way).
    pub(crate) fn fire_timers_except(&mut self, now: Instant, skip: impl Fn(ConnId) -> bool) {
        while let Some(conn) = self.timers.pop_due(now) {
            if skip(conn) {
                continue;
            }
            let Some(&(room, id, pc)) = self.conns.get(&conn) else {
                continue;
            };
            self.with_room(room, now, |r, ctx| r.on_timeout(id, pc, ctx));
        }
    }

    pub(crate) fn tick(&mut self, now: Instant) {
        let rooms: Vec<RoomId> = self.rooms.keys().copied().collect();
        for room in rooms {
            self.with_room(room, now, |r, ctx| r.tick(ctx));
        }
    }
}
