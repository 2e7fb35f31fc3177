//! Sockets and threads: one UDP socket and one ICE-TCP listener for every peer, a reader that
//! routes each datagram to its room's worker through [`Demux`], and batched sends.
//!
//! Packet path: the UDP reader thread `recv_from`s a datagram, looks up its connection
//! (ICE ufrag for STUN, else source address) and hands it to the owning worker over that
//! worker's channel. The worker feeds it to the `Rtc`, forwards the media to the room's
//! subscribers and sends everything it produced with one `sendmmsg` per batch.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError};
use orbita_protocol::{ClientMsg, Limits, ServerMsg};
use parking_lot::{Mutex, RwLock};
use str0m::net::TcpType;
use str0m::Candidate;
use tracing::{debug, info, warn};

use crate::demux::{Demux, Transport};
use crate::stats::RoomStatus;
use crate::worker::{Worker, WorkerMsg};
use crate::{next_id, RoomId, SfuConfig, SfuStats};

/// Largest datagram we read (UDP MTU-sized packets; anything larger is not WebRTC).
pub const MAX_DATAGRAM: usize = 2048;
/// Most ICE-TCP connections at once.
pub const MAX_TCP_CONNS: usize = 4096;
/// Capacity of a worker's input channel; a full channel drops datagrams (as a full socket
/// buffer would) rather than block the reader.
const WORKER_QUEUE: usize = 16_384;

/// Traffic counters, updated by the reader and the workers.
#[derive(Default)]
pub(crate) struct Counters {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub rtp_forwarded: AtomicU64,
    pub unmatched: AtomicU64,
    pub dropped: AtomicU64,
    pub participants: AtomicU64,
    pub rooms: AtomicU64,
}

/// What every worker shares: the sockets, the routing table, the counters and settings.
pub(crate) struct Shared {
    pub config: SfuConfig,
    pub demux: Demux,
    pub udp: UdpSocket,
    pub udp_local: SocketAddr,
    pub tcp_local: Option<SocketAddr>,
    pub tcp_writers: RwLock<HashMap<SocketAddr, Sender<Vec<u8>>>>,
    pub candidates: Vec<Candidate>,
    pub counters: Counters,
    pub stopping: AtomicBool,
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
        if config.udp_bind.port() != 0 {
            // The reader sockets share the port (SO_REUSEPORT); make sure no other process
            // holds it, which would otherwise silently split the traffic with us.
            drop(UdpSocket::bind(config.udp_bind)?);
        }
        let udp = bind_udp(config.udp_bind)?;
        let udp_local = udp.local_addr()?;
        let tcp = config.tcp_bind.map(TcpListener::bind).transpose()?;
        let tcp_local = tcp.as_ref().map(|l| l.local_addr()).transpose()?;
        let ips = announce_ips(&config, udp_local)?;
        let candidates = local_candidates(&ips, udp_local.port(), tcp_local.map(|a| a.port()))?;
        let udp_dest = SocketAddr::new(ips[0], udp_local.port());
        let tcp_dest = tcp_local.map(|a| SocketAddr::new(ips[0], a.port()));
        let n_workers = if config.workers == 0 {
            thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            config.workers
        };
        let shared = Arc::new(Shared {
            config,
            demux: Demux::new(),
            udp: udp.try_clone()?,
            udp_local: udp_dest,
            tcp_local: tcp_dest,
            tcp_writers: RwLock::new(HashMap::new()),
            candidates,
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
        // One reader per worker, each on its own socket bound to the same port with
        // SO_REUSEPORT: the kernel spreads peers over them by address hash, so receiving scales
        // with cores; each reader still routes by the shared table to the owning worker.
        let mut readers = vec![udp];
        for _ in 1..n_workers {
            readers.push(bind_udp(udp_local)?);
        }
        for (i, socket) in readers.into_iter().enumerate() {
            let shared = shared.clone();
            let senders = senders.clone();
            threads.push(
                thread::Builder::new()
                    .name(format!("sfu-udp-read-{i}"))
                    .spawn(move || udp_reader(socket, &shared, &senders))?,
            );
        }
        if let Some(listener) = tcp {
            let shared = shared.clone();
            threads.push(
                thread::Builder::new()
                    .name("sfu-tcp-accept".into())
                    .spawn(move || tcp_acceptor(listener, shared, senders))?,
            );
        }
        info!("sfu: udp {udp_local}, tcp {tcp_local:?}, announcing {ips:?}, {n_workers} workers");
        Ok(NetRuntime {
            shared,
            workers,
            rooms: Mutex::new(HashMap::new()),
            threads: Mutex::new(threads),
        })
    }

    pub(crate) fn udp_addr(&self) -> SocketAddr {
        self.shared.udp.local_addr().expect("bound socket")
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

    pub(crate) fn close_room(&self, room: RoomId) {
        if let Some((worker, _)) = self.rooms.lock().remove(&room) {
            self.workers[worker].load.fetch_sub(1, Ordering::Relaxed);
            self.send(worker, WorkerMsg::CloseRoom { room });
        }
    }

    pub(crate) fn join(
        &self,
        room: RoomId,
        id: u64,
        name: String,
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

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // Room for bursts (a keyframe to hundreds of subscribers) before the kernel drops.
    let _ = socket.set_recv_buffer_size(8 << 20);
    let _ = socket.set_send_buffer_size(8 << 20);
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(socket)
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

/// The UDP reader: one thread, routing each datagram to its worker.
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
        let data = &buf[..n];
        shared.counters.packets_in.fetch_add(1, Ordering::Relaxed);
        shared
            .counters
            .bytes_in
            .fetch_add(n as u64, Ordering::Relaxed);
        let Some(route) = shared.demux.route(Transport::Udp, source, data) else {
            shared.counters.unmatched.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let msg = WorkerMsg::Datagram {
            conn: route.conn,
            transport: Transport::Udp,
            source,
            data: data.to_vec(),
        };
        if let Err(TrySendError::Full(_)) = workers[route.worker].try_send(msg) {
            shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Accept ICE-TCP connections (RFC 6544, framed per RFC 4571), one reader thread each.
fn tcp_acceptor(listener: TcpListener, shared: Arc<Shared>, workers: Vec<Sender<WorkerMsg>>) {
    let _ = listener.set_nonblocking(true);
    let open = Arc::new(AtomicUsize::new(0));
    while !shared.stopping.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if open.load(Ordering::Relaxed) >= MAX_TCP_CONNS {
                    debug!("ice-tcp: refusing {peer}, at the connection limit");
                    continue;
                }
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                open.fetch_add(1, Ordering::Relaxed);
                let (shared, workers, open) = (shared.clone(), workers.clone(), open.clone());
                let _ = thread::Builder::new()
                    .name("sfu-tcp-conn".into())
                    .spawn(move || {
                        if let Err(e) = tcp_conn(stream, peer, &shared, &workers) {
                            debug!("ice-tcp {peer}: {e}");
                        }
                        shared.tcp_writers.write().remove(&peer);
                        open.fetch_sub(1, Ordering::Relaxed);
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                warn!("ice-tcp accept: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn tcp_conn(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    workers: &[Sender<WorkerMsg>],
) -> io::Result<()> {
    // The first frame must arrive soon and be a STUN request we can route.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(1024);
    let mut writer = stream.try_clone()?;
    thread::Builder::new()
        .name("sfu-tcp-write".into())
        .spawn(move || {
            for frame in rx {
                let len = (frame.len() as u16).to_be_bytes();
                if writer
                    .write_all(&len)
                    .and_then(|_| writer.write_all(&frame))
                    .is_err()
                {
                    break;
                }
            }
            let _ = writer.shutdown(std::net::Shutdown::Both);
        })?;
    shared.tcp_writers.write().insert(peer, tx);
    let mut routed = false;
    let mut len = [0u8; 2];
    let mut buf = vec![0u8; u16::MAX as usize];
    loop {
        if shared.stopping.load(Ordering::Relaxed) {
            return Ok(());
        }
        stream.read_exact(&mut len)?;
        let n = u16::from_be_bytes(len) as usize;
        stream.read_exact(&mut buf[..n])?;
        let data = &buf[..n];
        shared.counters.packets_in.fetch_add(1, Ordering::Relaxed);
        shared
            .counters
            .bytes_in
            .fetch_add(n as u64, Ordering::Relaxed);
        let Some(route) = shared.demux.route(Transport::Tcp, peer, data) else {
            shared.counters.unmatched.fetch_add(1, Ordering::Relaxed);
            if !routed {
                return Err(io::Error::other("first frame is not a known ICE request"));
            }
            continue;
        };
        if !routed {
            routed = true;
            // Connected peers may idle (consent checks every few seconds); allow for that.
            stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        }
        let msg = WorkerMsg::Datagram {
            conn: route.conn,
            transport: Transport::Tcp,
            source: peer,
            data: data.to_vec(),
        };
        if let Err(TrySendError::Full(_)) = workers[route.worker].try_send(msg) {
            shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Datagrams a worker produced during one batch, sent together.
#[derive(Default)]
pub(crate) struct Outbox {
    udp: Vec<(SocketAddr, Vec<u8>)>,
    tcp: Vec<(SocketAddr, Vec<u8>)>,
}

impl Outbox {
    pub(crate) fn push(&mut self, transport: Transport, dest: SocketAddr, data: Vec<u8>) {
        match transport {
            Transport::Udp => self.udp.push((dest, data)),
            Transport::Tcp => self.tcp.push((dest, data)),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.udp.is_empty() && self.tcp.is_empty()
    }

    /// Send everything: UDP with `sendmmsg` (one system call per 64 datagrams), TCP to each
    /// connection's writer.
    pub(crate) fn flush(&mut self, shared: &Shared) {
        let c = &shared.counters;
        let n = (self.udp.len() + self.tcp.len()) as u64;
        let bytes: usize = self.udp.iter().chain(&self.tcp).map(|(_, d)| d.len()).sum();
        c.packets_out.fetch_add(n, Ordering::Relaxed);
        c.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
        if !self.udp.is_empty() {
            send_batch(&shared.udp, &self.udp);
            self.udp.clear();
        }
        if !self.tcp.is_empty() {
            let writers = shared.tcp_writers.read();
            for (dest, data) in self.tcp.drain(..) {
                if let Some(w) = writers.get(&dest) {
                    let _ = w.try_send(data);
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
