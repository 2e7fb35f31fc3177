//! Sockets and threads: one UDP socket (or a UDP port range) and one ICE-TCP listener for every
//! peer, readers that route each datagram to its room's worker through [`Demux`], and batched
//! sends.
//!
//! Packet path: a UDP reader thread `recv_from`s a datagram, looks up its connection
//! (ICE ufrag for STUN, else source address) and hands it to the owning worker over that
//! worker's channel, with the index of the local port it came in on. The worker feeds it to the
//! `Rtc`, forwards the media to the room's subscribers and sends everything it produced with one
//! `sendmmsg` per batch and local port.
//!
//! With one port (the default) there is one reader per worker, each blocking on its own socket
//! bound to that port with `SO_REUSEPORT`. With `udp_port_range` every port of the range has one
//! socket; each `Rtc` gets its host candidate on one port of the range (round-robin), so its
//! peer talks to that port and its replies leave from it (str0m's `Transmit::source`). The range
//! sockets are read by `min(workers, ports)` threads, each waiting on its share of the sockets
//! with `epoll`, so a 1024-port range costs no more threads than one port.

use std::collections::HashMap;
use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::ops::RangeInclusive;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use orbita_protocol::{ClientMsg, Limits, Role, ServerMsg};
use orbita_record::RecorderHandle;
use parking_lot::{Mutex, RwLock};
use str0m::net::TcpType;
use str0m::Candidate;
use tracing::{debug, info, warn};

use crate::demux::{Demux, Transport};
use crate::ice_tcp::{tcp_acceptor, TcpRefusals, MAX_TCP_CONNS};
use crate::queues::{DropReason, Drops, WORKER_QUEUE};
use crate::stats::RoomStatus;
use crate::worker::{Worker, WorkerMsg};
use crate::{next_id, RoomId, SfuConfig, SfuStats, UdpPortStats, MAX_UDP_PORTS};
use orbita_caps::ConnectionCaps;

/// Largest datagram we read (UDP MTU-sized packets; anything larger is not WebRTC).
pub const MAX_DATAGRAM: usize = 2048;

/// Traffic counters, updated by the reader and the workers.
#[derive(Default)]
pub(crate) struct Counters {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub rtp_forwarded: AtomicU64,
    pub unmatched: AtomicU64,
    /// Media dropped by full queues, by reason; chat dropped for slow receivers.
    pub drops: Drops,
    pub participants: AtomicU64,
    pub rooms: AtomicU64,
    /// ICE-TCP connections closed at accept, by cap.
    pub tcp_refused: TcpRefusals,
}

/// Traffic of one port of a UDP port range.
#[derive(Default)]
pub(crate) struct PortCounters {
    pub connections: AtomicU64,
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// What every worker shares: the sockets, the routing table, the counters and settings.
///
/// Local UDP ports are known by their index: `udp[i]` is bound to port `udp_first_port + i`
/// (one index, 0, without a port range).
pub(crate) struct Shared {
    pub config: SfuConfig,
    pub demux: Demux,
    /// Per local port, the socket replies leave from.
    pub udp: Vec<UdpSocket>,
    /// The port of `udp[0]`.
    pub udp_first_port: u16,
    /// Per local port, the address str0m knows it by (the first announced IP and the port):
    /// the `destination` of the datagrams received on it.
    pub udp_local: Vec<SocketAddr>,
    pub tcp_local: Option<SocketAddr>,
    /// The ICE-TCP connections open, in total and per address.
    pub tcp_caps: Arc<ConnectionCaps>,
    pub tcp_writers: RwLock<HashMap<SocketAddr, Sender<Vec<u8>>>>,
    /// Per local port, the candidates of a connection on it: UDP on that port and ICE-TCP,
    /// for every announced IP.
    pub candidates: Vec<Vec<Candidate>>,
    /// Per local port of a port range, its traffic (empty with one port).
    pub ports: Vec<PortCounters>,
    /// Round-robin position over the port range.
    next_port: AtomicUsize,
    pub counters: Counters,
    pub stopping: AtomicBool,
}

impl Shared {
    /// The local port (index) for a new connection: round-robin over the range.
    pub(crate) fn pick_port(&self) -> usize {
        if self.udp.len() == 1 {
            return 0;
        }
        let i = self.next_port.fetch_add(1, Ordering::Relaxed) % self.udp.len();
        if let Some(p) = self.ports.get(i) {
            p.connections.fetch_add(1, Ordering::Relaxed);
        }
        i
    }
}

impl Shared {
    /// Shared state for sans-IO tests: one UDP socket on loopback (its address is the one
    /// candidate; nothing is sent through it), no ICE-TCP.
    #[cfg(test)]
    pub(crate) fn for_tests(config: SfuConfig) -> io::Result<Shared> {
        let udp = UdpSocket::bind("127.0.0.1:0")?;
        let local = udp.local_addr()?;
        Ok(Shared {
            config,
            demux: Demux::new(),
            udp: vec![udp],
            udp_first_port: local.port(),
            udp_local: vec![local],
            tcp_local: None,
            tcp_caps: ConnectionCaps::new(MAX_TCP_CONNS, 0),
            tcp_writers: RwLock::new(HashMap::new()),
            candidates: vec![local_candidates(&[local.ip()], local.port(), None)?],
            ports: Vec::new(),
            next_port: AtomicUsize::new(0),
            counters: Counters::default(),
            stopping: AtomicBool::new(false),
        })
    }
}

/// The UDP sockets the reader threads read.
enum Readers {
    /// One port: one socket per reader, all bound to it with `SO_REUSEPORT`.
    OnePort(Vec<UdpSocket>),
    /// A port range: one socket per port, those of [`Shared::udp`], each read by one reader.
    Range,
}

struct WorkerHandle {
    tx: Sender<WorkerMsg>,
    load: Arc<AtomicUsize>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The running network side of the SFU.
pub(crate) struct NetRuntime {
    shared: Arc<Shared>,
    workers: Vec<WorkerHandle>,
    rooms: Mutex<HashMap<RoomId, (usize, Arc<RoomStatus>)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl NetRuntime {
    pub(crate) fn start(config: SfuConfig) -> io::Result<Self> {
        let n_workers = if config.workers == 0 {
            thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            config.workers
        };
        // The reader sockets, and the sockets replies leave from: the socket of the port the
        // peer talks to.
        let (readers, udp) = match &config.udp_port_range {
            None => {
                if config.udp_bind.port() != 0 {
                    // The reader sockets share the port (SO_REUSEPORT); make sure no other
                    // process holds it, which would otherwise silently split the traffic with us.
                    drop(UdpSocket::bind(config.udp_bind)?);
                }
                let udp = bind_udp(config.udp_bind, true)?;
                let udp_local = udp.local_addr()?;
                // One reader per worker, each on its own socket bound to the same port with
                // SO_REUSEPORT: the kernel spreads peers over them by address hash, so
                // receiving scales with cores; each reader still routes by the shared table to
                // the owning worker.
                let send = vec![udp.try_clone()?];
                let mut sockets = vec![udp];
                for _ in 1..n_workers {
                    sockets.push(bind_udp(udp_local, true)?);
                }
                (Readers::OnePort(sockets), send)
            }
            Some(range) => (Readers::Range, bind_range(config.udp_bind, range.clone())?),
        };
        let udp_local = udp[0].local_addr()?;
        let udp_first_port = udp_local.port();
        let ports = (0..udp.len()).map(|i| udp_first_port + i as u16);
        let tcp = config.tcp_bind.map(TcpListener::bind).transpose()?;
        let tcp_local = tcp.as_ref().map(|l| l.local_addr()).transpose()?;
        let ips = announce_ips(&config, udp_local)?;
        let tcp_port = tcp_local.map(|a| a.port());
        let candidates = ports
            .clone()
            .map(|port| local_candidates(&ips, port, tcp_port))
            .collect::<io::Result<Vec<_>>>()?;
        let udp_dests = ports.map(|port| SocketAddr::new(ips[0], port)).collect();
        let tcp_dest = tcp_local.map(|a| SocketAddr::new(ips[0], a.port()));
        let port_counters = match &readers {
            Readers::OnePort(_) => Vec::new(),
            Readers::Range => udp.iter().map(|_| PortCounters::default()).collect(),
        };
        let tcp_caps = ConnectionCaps::new(MAX_TCP_CONNS, config.tcp_max_connections_per_address);
        let shared = Arc::new(Shared {
            config,
            demux: Demux::new(),
            udp,
            udp_first_port,
            udp_local: udp_dests,
            tcp_local: tcp_dest,
            tcp_caps,
            tcp_writers: RwLock::new(HashMap::new()),
            candidates,
            ports: port_counters,
            next_port: AtomicUsize::new(0),
            counters: Counters::default(),
            stopping: AtomicBool::new(false),
        });
        let mut workers = Vec::with_capacity(n_workers);
        for index in 0..n_workers {
            let (tx, rx) = crossbeam_channel::bounded(WORKER_QUEUE);
            let load = Arc::new(AtomicUsize::new(0));
            let worker = Worker::new(index, shared.clone(), rx);
            let thread = thread::Builder::new()
                .name(format!("sfu-worker-{index}"))
                .spawn(move || worker.run())?;
            workers.push(WorkerHandle {
                tx,
                load,
                thread: Mutex::new(Some(thread)),
            });
        }
        let senders: Vec<Sender<WorkerMsg>> = workers.iter().map(|w| w.tx.clone()).collect();
        let mut threads = Vec::new();
        let udp_desc = match &readers {
            Readers::OnePort(sockets) => {
                format!("udp {udp_local} ({} readers)", sockets.len())
            }
            Readers::Range => format!(
                "udp {}:{udp_first_port}-{} ({} ports, {} readers)",
                udp_local.ip(),
                udp_first_port as usize + shared.udp.len() - 1,
                shared.udp.len(),
                n_workers.min(shared.udp.len())
            ),
        };
        match readers {
            Readers::OnePort(sockets) => {
                for (i, socket) in sockets.into_iter().enumerate() {
                    let shared = shared.clone();
                    let senders = senders.clone();
                    threads.push(
                        thread::Builder::new()
                            .name(format!("sfu-udp-read-{i}"))
                            .spawn(move || udp_reader(socket, &shared, &senders))?,
                    );
                }
            }
            Readers::Range => {
                // Port i is read by reader i % n: each waits on its share with epoll.
                let n = n_workers.min(shared.udp.len());
                for r in 0..n {
                    let share: Vec<u16> =
                        (r..shared.udp.len()).step_by(n).map(|i| i as u16).collect();
                    let poller = Poller::new(&shared, &share)?;
                    let shared = shared.clone();
                    let senders = senders.clone();
                    threads.push(
                        thread::Builder::new()
                            .name(format!("sfu-udp-poll-{r}"))
                            .spawn(move || udp_range_reader(poller, share, &shared, &senders))?,
                    );
                }
            }
        }
        if let Some(listener) = tcp {
            let shared = shared.clone();
            threads.push(
                thread::Builder::new()
                    .name("sfu-tcp-accept".into())
                    .spawn(move || tcp_acceptor(listener, shared, senders))?,
            );
        }
        info!("sfu: {udp_desc}, tcp {tcp_local:?}, announcing {ips:?}, {n_workers} workers");
        Ok(NetRuntime {
            shared,
            workers,
            rooms: Mutex::new(HashMap::new()),
            threads: Mutex::new(threads),
        })
    }

    pub(crate) fn udp_addr(&self) -> SocketAddr {
        self.shared.udp[0].local_addr().expect("bound socket")
    }

    pub(crate) fn udp_port_range(&self) -> Option<RangeInclusive<u16>> {
        let first = self.shared.udp_first_port;
        let last = first + (self.shared.udp.len() - 1) as u16;
        self.shared
            .config
            .udp_port_range
            .as_ref()
            .map(|_| first..=last)
    }

    pub(crate) fn udp_port_stats(&self) -> Vec<UdpPortStats> {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let first = self.shared.udp_first_port;
        self.shared
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| UdpPortStats {
                port: first + i as u16,
                connections: get(&p.connections),
                packets_in: get(&p.packets_in),
                packets_out: get(&p.packets_out),
                bytes_in: get(&p.bytes_in),
                bytes_out: get(&p.bytes_out),
            })
            .collect()
    }

    pub(crate) fn tcp_addr(&self) -> Option<SocketAddr> {
        self.shared.tcp_local
    }

    pub(crate) fn create_room(&self, label: &str) -> RoomId {
        let room = next_id();
        let worker = self
            .workers
            .iter()
            .enumerate()
            .min_by_key(|(_, w)| w.load.load(Ordering::Relaxed))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let status = Arc::new(RoomStatus::new(std::time::Instant::now()));
        self.rooms.lock().insert(room, (worker, status.clone()));
        self.workers[worker].load.fetch_add(1, Ordering::Relaxed);
        self.send(
            worker,
            WorkerMsg::CreateRoom {
                room,
                label: label.to_string(),
                status,
            },
        );
        room
    }

    pub(crate) fn room_status(&self, room: RoomId) -> Option<Arc<RoomStatus>> {
        self.rooms.lock().get(&room).map(|(_, s)| s.clone())
    }

    pub(crate) fn attach_app(&self, room: RoomId, input: tokio::sync::mpsc::Sender<String>) {
        if let Some(worker) = self.worker_of(room) {
            self.send(worker, WorkerMsg::AttachApp { room, input });
        }
    }

    pub(crate) fn detach_app(&self, room: RoomId, reason: &str) {
        if let Some(worker) = self.worker_of(room) {
            let reason = reason.to_string();
            self.send(worker, WorkerMsg::DetachApp { room, reason });
        }
    }

    pub(crate) fn start_recording(&self, room: RoomId, recorder: RecorderHandle) {
        match self.worker_of(room) {
            Some(worker) => self.send(worker, WorkerMsg::StartRecording { room, recorder }),
            None => recorder.stop(std::time::Instant::now()),
        }
    }

    pub(crate) fn stop_recording(&self, room: RoomId) {
        if let Some(worker) = self.worker_of(room) {
            self.send(worker, WorkerMsg::StopRecording { room });
        }
    }

    pub(crate) fn close_room(&self, room: RoomId) {
        if let Some((worker, _)) = self.rooms.lock().remove(&room) {
            self.workers[worker].load.fetch_sub(1, Ordering::Relaxed);
            self.send(worker, WorkerMsg::CloseRoom { room });
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn join(
        &self,
        room: RoomId,
        id: u64,
        name: String,
        role: Role,
        limits: Limits,
        sink: tokio::sync::mpsc::Sender<ServerMsg>,
        ingest: bool,
    ) {
        let Some(worker) = self.worker_of(room) else {
            let _ = sink.try_send(ServerMsg::error(
                orbita_protocol::ErrorCode::UnknownCode,
                "the room has ended",
            ));
            return;
        };
        self.send(
            worker,
            WorkerMsg::Join {
                room,
                id,
                name,
                role,
                limits,
                sink,
                ingest,
            },
        );
    }

    pub(crate) fn signal(&self, room: RoomId, id: u64, msg: ClientMsg) {
        if let Some(worker) = self.worker_of(room) {
            self.send(worker, WorkerMsg::Signal { room, id, msg });
        }
    }

    pub(crate) fn leave(&self, room: RoomId, id: u64) {
        if let Some(worker) = self.worker_of(room) {
            self.send(worker, WorkerMsg::Leave { room, id });
        }
    }

    pub(crate) fn shutdown(&self, reason: &str, timeout: Duration) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        for w in &self.workers {
            let _ = w.tx.send(WorkerMsg::Shutdown {
                reason: reason.to_string(),
                done: done_tx.clone(),
            });
        }
        let deadline = std::time::Instant::now() + timeout;
        for _ in &self.workers {
            if done_rx.recv_deadline(deadline).is_err() {
                warn!("sfu: a worker did not stop within {timeout:?}");
                break;
            }
        }
        for w in &self.workers {
            if let Some(t) = w.thread.lock().take() {
                if std::time::Instant::now() < deadline {
                    let _ = t.join();
                }
            }
        }
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }

    pub(crate) fn stats(&self) -> SfuStats {
        let c = &self.shared.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SfuStats {
            rooms: get(&c.rooms),
            participants: get(&c.participants),
            packets_in: get(&c.packets_in),
            packets_out: get(&c.packets_out),
            bytes_in: get(&c.bytes_in),
            bytes_out: get(&c.bytes_out),
            rtp_forwarded: get(&c.rtp_forwarded),
            unmatched: get(&c.unmatched),
            dropped_worker_queue: c.drops.get(DropReason::WorkerQueue),
            dropped_send_queue: c.drops.get(DropReason::SendQueue),
            dropped_tcp_write_queue: c.drops.get(DropReason::TcpWriteQueue),
            dropped_chat: get(&c.drops.chat),
            demux_addresses: self.shared.demux.addr_count() as u64,
            ice_tcp_open: self.shared.tcp_caps.open() as u64,
            ice_tcp_refused_total: get(&c.tcp_refused.total),
            ice_tcp_refused_per_address: get(&c.tcp_refused.per_address),
        }
    }

    fn worker_of(&self, room: RoomId) -> Option<usize> {
        self.rooms.lock().get(&room).map(|(w, _)| *w)
    }

    fn send(&self, worker: usize, msg: WorkerMsg) {
        if self.workers[worker].tx.send(msg).is_err() {
            debug!("sfu: worker {worker} has stopped");
        }
    }
}

impl Drop for NetRuntime {
    fn drop(&mut self) {
        self.shutdown("server stopped", Duration::from_secs(2));
    }
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // Room for bursts (a keyframe to hundreds of subscribers) before the kernel drops.
    let _ = socket.set_recv_buffer_size(8 << 20);
    let _ = socket.set_send_buffer_size(8 << 20);
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(socket)
}

/// Bind every port of `range` on `bind`'s IP (without `SO_REUSEPORT`: a port another process
/// holds is an error, not a silent share of its traffic).
fn bind_range(bind: SocketAddr, range: RangeInclusive<u16>) -> io::Result<Vec<UdpSocket>> {
    let (first, last) = (*range.start(), *range.end());
    let invalid = |what: String| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("udp_port_range {first}-{last}: {what}"),
        )
    };
    if first == 0 || first > last {
        return Err(invalid(
            "ports are 1 to 65535 and the first must not be above the last".into(),
        ));
    }
    let n = usize::from(last - first) + 1;
    if n > MAX_UDP_PORTS {
        return Err(invalid(format!(
            "{n} ports is more than the {MAX_UDP_PORTS} allowed"
        )));
    }
    if bind.port() != 0 && bind.port() != first {
        return Err(invalid(format!(
            "the UDP address {bind} names another port; with a range its port must be 0 or {first}"
        )));
    }
    (first..=last)
        .map(|port| {
            let addr = SocketAddr::new(bind.ip(), port);
            bind_udp(addr, false).map_err(|e| {
                io::Error::new(e.kind(), format!("udp_port_range: cannot bind {addr}: {e}"))
            })
        })
        .collect()
}

/// The IPs to announce: the configured ones, else the bound one (which must then be usable).
fn announce_ips(config: &SfuConfig, bound: SocketAddr) -> io::Result<Vec<IpAddr>> {
    if !config.announce_ips.is_empty() {
        return Ok(config.announce_ips.clone());
    }
    if bound.ip().is_unspecified() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "media is bound to an unspecified address: set the announced IP(s)",
        ));
    }
    Ok(vec![bound.ip()])
}

fn local_candidates(ips: &[IpAddr], udp: u16, tcp: Option<u16>) -> io::Result<Vec<Candidate>> {
    let bad =
        |e: str0m::error::IceError| io::Error::new(io::ErrorKind::InvalidInput, e.to_string());
    let mut out = Vec::new();
    for &ip in ips {
        out.push(Candidate::host(SocketAddr::new(ip, udp), "udp").map_err(bad)?);
        if let Some(port) = tcp {
            out.push(
                Candidate::builder()
                    .tcp()
                    .host(SocketAddr::new(ip, port))
                    .tcptype(TcpType::Passive)
                    .build()
                    .map_err(bad)?,
            );
        }
    }
    Ok(out)
}

/// Count a datagram received on local port `local` and hand it to its connection's worker.
#[inline]
fn dispatch(
    shared: &Shared,
    workers: &[Sender<WorkerMsg>],
    local: u16,
    source: SocketAddr,
    data: &[u8],
) {
    shared.counters.packets_in.fetch_add(1, Ordering::Relaxed);
    shared
        .counters
        .bytes_in
        .fetch_add(data.len() as u64, Ordering::Relaxed);
    let Some(routed) = shared.demux.route_for(Transport::Udp, source, data) else {
        shared.counters.unmatched.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let route = routed.route;
    let msg = WorkerMsg::Datagram {
        conn: route.conn,
        transport: Transport::Udp,
        local,
        source,
        unconfirmed: routed.unconfirmed,
        data: data.to_vec(),
    };
    if let Err(TrySendError::Full(_)) = workers[route.worker].try_send(msg) {
        shared.counters.drops.count(DropReason::WorkerQueue);
    }
}

/// The UDP reader of the one port: one thread per socket, routing each datagram to its worker.
fn udp_reader(socket: UdpSocket, shared: &Shared, workers: &[Sender<WorkerMsg>]) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while !shared.stopping.load(Ordering::Relaxed) {
        let (n, source) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => {
                // ICMP errors (port unreachable from a gone peer) surface here; keep going.
                debug!("udp recv: {e}");
                continue;
            }
        };
        dispatch(shared, workers, 0, source, &buf[..n]);
    }
}

/// An epoll instance watching a reader's share of the port range's sockets (their indexes in
/// [`Shared::udp`]) for input; an event's data is the position in the share.
struct Poller {
    fd: OwnedFd,
}

impl Poller {
    fn new(shared: &Shared, share: &[u16]) -> io::Result<Poller> {
        // SAFETY: plain system call; a non-negative result is a new descriptor we own.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let poller = Poller {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        };
        for (k, &i) in share.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: k as u64,
            };
            // SAFETY: both descriptors are open; `ev` is a valid event for the call.
            let r = unsafe {
                libc::epoll_ctl(
                    poller.fd.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    shared.udp[i as usize].as_raw_fd(),
                    &mut ev,
                )
            };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(poller)
    }
}

/// A UDP reader of a port range: waits on its share of the range's sockets with epoll, then
/// reads each ready socket without blocking (up to a burst, level-triggered epoll brings it
/// back for the rest) and routes each datagram to its worker with its local port index.
fn udp_range_reader(
    poller: Poller,
    share: Vec<u16>,
    shared: &Shared,
    workers: &[Sender<WorkerMsg>],
) {
    const EVENTS: usize = 64;
    /// Datagrams read from one ready socket before the others get their turn.
    const BURST: usize = 64;
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; EVENTS];
    let mut buf = vec![MaybeUninit::<u8>::uninit(); MAX_DATAGRAM];
    while !shared.stopping.load(Ordering::Relaxed) {
        // SAFETY: `events` has room for EVENTS entries; the epoll descriptor is open.
        let n = unsafe {
            libc::epoll_wait(
                poller.fd.as_raw_fd(),
                events.as_mut_ptr(),
                EVENTS as libc::c_int,
                200,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                warn!("udp epoll_wait: {err}");
                thread::sleep(Duration::from_millis(50));
            }
            continue;
        }
        for ev in &events[..n as usize] {
            let k = { ev.u64 } as usize;
            let Some(&local) = share.get(k) else {
                continue;
            };
            let socket = socket2::SockRef::from(&shared.udp[local as usize]);
            for _ in 0..BURST {
                match socket.recv_from_with_flags(&mut buf, libc::MSG_DONTWAIT) {
                    Ok((len, from)) => {
                        let Some(source) = from.as_socket() else {
                            continue;
                        };
                        // SAFETY: the kernel wrote (initialised) the first `len` bytes.
                        let data =
                            unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), len) };
                        if let Some(p) = shared.ports.get(local as usize) {
                            p.packets_in.fetch_add(1, Ordering::Relaxed);
                            p.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
                        }
                        dispatch(shared, workers, local, source, data);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // ICMP errors (port unreachable from a gone peer) surface here.
                        debug!("udp recv: {e}");
                    }
                }
            }
        }
    }
}

/// Datagrams a worker produced during one batch, sent together.
///
/// UDP datagrams are grouped by the local port they must leave from (the index of its socket,
/// from str0m's `Transmit::source`: the port minus the first port, no hashing); `udp_used`
/// lists the groups that have any, so a flush touches only those.
pub(crate) struct Outbox {
    udp: Vec<Vec<(SocketAddr, Vec<u8>)>>,
    udp_used: Vec<u16>,
    udp_first_port: u16,
    tcp: Vec<(SocketAddr, Vec<u8>)>,
}

impl Outbox {
    /// An empty outbox for `shared`'s sockets.
    pub(crate) fn new(shared: &Shared) -> Outbox {
        Outbox {
            udp: shared.udp.iter().map(|_| Vec::new()).collect(),
            udp_used: Vec::new(),
            udp_first_port: shared.udp_first_port,
            tcp: Vec::new(),
        }
    }

    /// Queue `data` for `dest`, to leave from local address `source` (UDP: the socket of that
    /// port; a port that is not ours falls back to the first socket).
    pub(crate) fn push(
        &mut self,
        transport: Transport,
        source: SocketAddr,
        dest: SocketAddr,
        data: Vec<u8>,
    ) {
        match transport {
            Transport::Udp => {
                let mut i = 0;
                if self.udp.len() > 1 {
                    let k = source.port().wrapping_sub(self.udp_first_port) as usize;
                    if k < self.udp.len() {
                        i = k;
                    }
                }
                let group = &mut self.udp[i];
                if group.is_empty() {
                    self.udp_used.push(i as u16);
                }
                group.push((dest, data));
            }
            Transport::Tcp => self.tcp.push((dest, data)),
        }
    }

    /// Take what is queued (tests deliver it themselves): (transport, destination, datagram).
    #[cfg(test)]
    pub(crate) fn take(&mut self) -> Vec<(Transport, SocketAddr, Vec<u8>)> {
        let mut all = Vec::new();
        for &i in &self.udp_used {
            all.extend(
                self.udp[i as usize]
                    .drain(..)
                    .map(|(d, data)| (Transport::Udp, d, data)),
            );
        }
        self.udp_used.clear();
        all.extend(
            self.tcp
                .drain(..)
                .map(|(d, data)| (Transport::Tcp, d, data)),
        );
        all
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.udp_used.is_empty() && self.tcp.is_empty()
    }

    /// Send everything: UDP with `sendmmsg` (one system call per 64 datagrams) from each
    /// datagram's local port, TCP to each connection's writer.
    pub(crate) fn flush(&mut self, shared: &Shared) {
        let c = &shared.counters;
        let mut n = self.tcp.len() as u64;
        let mut bytes: usize = self.tcp.iter().map(|(_, d)| d.len()).sum();
        for &i in &self.udp_used {
            let group = &mut self.udp[i as usize];
            let group_bytes: usize = group.iter().map(|(_, d)| d.len()).sum();
            n += group.len() as u64;
            bytes += group_bytes;
            if let Some(p) = shared.ports.get(i as usize) {
                p.packets_out
                    .fetch_add(group.len() as u64, Ordering::Relaxed);
                p.bytes_out.fetch_add(group_bytes as u64, Ordering::Relaxed);
            }
            send_batch(&shared.udp[i as usize], group);
            group.clear();
        }
        self.udp_used.clear();
        c.packets_out.fetch_add(n, Ordering::Relaxed);
        c.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
        if !self.tcp.is_empty() {
            let writers = shared.tcp_writers.read();
            for (dest, data) in self.tcp.drain(..) {
                if let Some(w) = writers.get(&dest) {
                    if let Err(TrySendError::Full(_)) = w.try_send(data) {
                        c.drops.count(DropReason::TcpWriteQueue);
                    }
                }
            }
        }
    }
}

/// Send datagrams with `sendmmsg(2)`, 64 at a time.
fn send_batch(socket: &UdpSocket, batch: &[(SocketAddr, Vec<u8>)]) {
    const CHUNK: usize = 64;
    let fd = socket.as_raw_fd();
    for chunk in batch.chunks(CHUNK) {
        let addrs: Vec<socket2::SockAddr> = chunk.iter().map(|(a, _)| (*a).into()).collect();
        let mut iovs: Vec<libc::iovec> = chunk
            .iter()
            .map(|(_, d)| libc::iovec {
                iov_base: d.as_ptr() as *mut libc::c_void,
                iov_len: d.len(),
            })
            .collect();
        let mut msgs: Vec<libc::mmsghdr> = (0..chunk.len())
            .map(|i| {
                // SAFETY: mmsghdr is a plain C struct; all-zero is a valid empty value.
                let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                m.msg_hdr.msg_name = addrs[i].as_ptr() as *mut libc::c_void;
                m.msg_hdr.msg_namelen = addrs[i].len();
                m.msg_hdr.msg_iov = &mut iovs[i];
                m.msg_hdr.msg_iovlen = 1;
                m
            })
            .collect();
        let mut sent = 0;
        while sent < msgs.len() {
            // SAFETY: msgs[sent..] point at iovs/addrs, which outlive this call.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    msgs.as_mut_ptr().add(sent),
                    (msgs.len() - sent) as libc::c_uint,
                    0,
                )
            };
            if r < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // One datagram failed (e.g. unreachable destination): skip it, send the rest.
                debug!("sendmmsg: {err}");
                sent += 1;
            } else {
                sent += r as usize;
            }
        }
    }
}
