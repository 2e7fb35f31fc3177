//! The ICE-TCP port (RFC 6544, frames per RFC 4571): one listener for every peer, a reader and
//! a writer thread per connection.
//!
//! Limits a stranger meets before naming a live connection: at most [`MAX_TCP_CONNS`]
//! connections, and `SfuConfig::tcp_max_connections_per_address` from one address (IPv4 address
//! or IPv6 /64, by orbita-caps as on the HTTP listeners; 127.0.0.1 and ::1 only in total),
//! refused at accept and counted; the whole first frame within one deadline
//! (`SfuConfig::tcp_first_frame_timeout`, a byte now and then does not extend it), and it must
//! be a STUN request naming a live connection's ufrag. Routed connections silent for
//! [`TCP_IDLE_TIMEOUT`] are closed.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use orbita_caps::Refusal;
use tracing::{debug, warn};

use crate::demux::Transport;
use crate::net::Shared;
use crate::queues::{DropReason, TCP_WRITE_QUEUE};
use crate::worker::WorkerMsg;

/// Most ICE-TCP connections at once.
pub const MAX_TCP_CONNS: usize = 4096;
/// Default `SfuConfig::tcp_first_frame_timeout`: the time an ICE-TCP connection has, from its
/// accept, to deliver its whole first frame.
pub const TCP_FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a routed ICE-TCP connection may stay silent (consent checks come every few seconds).
pub const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// ICE-TCP connections closed at accept, by the cap they met.
#[derive(Default)]
pub(crate) struct TcpRefusals {
    pub total: AtomicU64,
    pub per_address: AtomicU64,
}

impl TcpRefusals {
    fn count(&self, refusal: Refusal) {
        let counter = match refusal {
            Refusal::Total => &self.total,
            Refusal::PerAddress => &self.per_address,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Accept ICE-TCP connections (RFC 6544, framed per RFC 4571), one reader thread each.
///
/// At most [`MAX_TCP_CONNS`] connections, and [`SfuConfig::tcp_max_connections_per_address`]
/// from one address (orbita-caps: IPv4 address or IPv6 /64, loopback only in total); the excess
/// is closed at accept and counted.
pub(crate) fn tcp_acceptor(
    listener: TcpListener,
    shared: Arc<Shared>,
    workers: Vec<Sender<WorkerMsg>>,
) {
    let _ = listener.set_nonblocking(true);
    let caps = &shared.tcp_caps;
    while !shared.stopping.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let permit = match caps.try_open(peer.ip()) {
                    Ok(permit) => permit,
                    Err(refusal) => {
                        debug!("ice-tcp: refusing {peer}: {refusal:?} cap");
                        shared.counters.tcp_refused.count(refusal);
                        continue;
                    }
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                let (shared, workers) = (shared.clone(), workers.clone());
                let _ = thread::Builder::new()
                    .name("sfu-tcp-conn".into())
                    .spawn(move || {
                        if let Err(e) = tcp_conn(stream, peer, &shared, &workers) {
                            debug!("ice-tcp {peer}: {e}");
                        }
                        shared.tcp_writers.write().remove(&peer);
                        drop(permit);
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

/// Fills `buf` from `stream`, failing with `TimedOut` once `deadline` has passed (each read
/// waits at most the time left, so a byte every few seconds does not extend it).
fn read_exact_by(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn tcp_conn(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    workers: &[Sender<WorkerMsg>],
) -> io::Result<()> {
    // The whole first frame must arrive within one deadline and be a STUN request we can route.
    let first_deadline = Instant::now() + shared.config.tcp_first_frame_timeout;
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(TCP_WRITE_QUEUE);
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
        let n = if routed {
            stream.read_exact(&mut len)?;
            let n = u16::from_be_bytes(len) as usize;
            stream.read_exact(&mut buf[..n])?;
            n
        } else {
            read_exact_by(&mut stream, &mut len, first_deadline)?;
            let n = u16::from_be_bytes(len) as usize;
            read_exact_by(&mut stream, &mut buf[..n], first_deadline)?;
            n
        };
        let data = &buf[..n];
        shared.counters.packets_in.fetch_add(1, Ordering::Relaxed);
        shared
            .counters
            .bytes_in
            .fetch_add(n as u64, Ordering::Relaxed);
        let Some(found) = shared.demux.route_for(Transport::Tcp, peer, data) else {
            shared.counters.unmatched.fetch_add(1, Ordering::Relaxed);
            if !routed {
                return Err(io::Error::other("first frame is not a known ICE request"));
            }
            continue;
        };
        if !routed {
            routed = true;
            // Connected peers may idle (consent checks every few seconds); allow for that.
            stream.set_read_timeout(Some(TCP_IDLE_TIMEOUT))?;
        }
        let msg = WorkerMsg::Datagram {
            conn: found.route.conn,
            transport: Transport::Tcp,
            local: 0,
            source: peer,
            unconfirmed: found.unconfirmed,
            data: data.to_vec(),
        };
        if let Err(TrySendError::Full(_)) = workers[found.route.worker].try_send(msg) {
            shared.counters.drops.count(DropReason::WorkerQueue);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use socket2::{Domain, Socket, Type};

    use super::*;
    use crate::{Sfu, SfuConfig, SfuStats};

    fn sfu(per_address: usize, first_frame: Duration) -> Sfu {
        Sfu::start(SfuConfig {
            udp_bind: "127.0.0.1:0".parse().unwrap(),
            tcp_bind: Some("127.0.0.1:0".parse().unwrap()),
            tcp_max_connections_per_address: per_address,
            tcp_first_frame_timeout: first_frame,
            workers: 1,
            ..SfuConfig::default()
        })
        .unwrap()
    }

    /// A connection to `to` from `source` (any 127.x.y.z is this host).
    fn connect_from(source: Ipv4Addr, to: SocketAddr) -> TcpStream {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::new(source.into(), 0).into())
            .unwrap();
        socket.connect(&to.into()).unwrap();
        socket.into()
    }

    /// The SFU's counters once they satisfy `ready` (within 10 s, else the test fails).
    fn wait_for(sfu: &Sfu, what: &str, ready: impl Fn(&SfuStats) -> bool) -> SfuStats {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stats = sfu.stats();
            if ready(&stats) {
                return stats;
            }
            assert!(Instant::now() < deadline, "{what}: {stats:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the server closed `stream`: end of stream or a reset within 10 s (a connection
    /// the server holds open sends nothing, so the read times out: false).
    fn closed_by_server(stream: &mut TcpStream) -> bool {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        match stream.read(&mut [0u8; 1]) {
            Ok(0) => true,
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => true,
            Ok(_) => false,
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ),
                    "{e}"
                );
                false
            }
        }
    }

    /// One address holds its cap of connections; the next from it is closed at accept and
    /// counted, while another address and loopback still get in; once one of its connections
    /// closes, the address gets a place again.
    #[test]
    fn one_address_gets_its_cap_and_no_more() {
        let sfu = sfu(2, Duration::from_secs(60));
        let port = sfu.tcp_addr().unwrap();
        let attacker = Ipv4Addr::new(127, 0, 0, 2);
        let held: Vec<TcpStream> = (0..2).map(|_| connect_from(attacker, port)).collect();
        wait_for(&sfu, "two connections open", |s| s.ice_tcp_open == 2);
        let mut third = connect_from(attacker, port);
        assert!(
            closed_by_server(&mut third),
            "the third is closed at accept"
        );
        let stats = wait_for(&sfu, "one refusal counted", |s| {
            s.ice_tcp_refused_per_address == 1
        });
        assert_eq!((stats.ice_tcp_open, stats.ice_tcp_refused_total), (2, 0));

        let _other = connect_from(Ipv4Addr::new(127, 0, 0, 3), port);
        let _local: Vec<TcpStream> = (0..3)
            .map(|_| connect_from(Ipv4Addr::LOCALHOST, port))
            .collect();
        wait_for(&sfu, "another address and loopback let in", |s| {
            s.ice_tcp_open == 6
        });

        let mut held = held.into_iter();
        drop(held.next());
        wait_for(&sfu, "a closed connection gives its place back", |s| {
            s.ice_tcp_open == 5
        });
        let _again = connect_from(attacker, port);
        let stats = wait_for(&sfu, "the address gets in again", |s| s.ice_tcp_open == 6);
        assert_eq!(stats.ice_tcp_refused_per_address, 1);
        let mut still_held = held.next().unwrap();
        still_held.set_nonblocking(true).unwrap();
        assert_eq!(
            still_held.read(&mut [0u8; 1]).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "the held connection is still open"
        );
    }

    /// A client that sends its first frame a byte at a time cannot hold its connection past
    /// the one deadline for the whole frame (each read's timeout is what is left of it).
    #[test]
    fn a_first_frame_dripped_slowly_is_cut_at_its_deadline() {
        let sfu = sfu(0, Duration::from_millis(300));
        let mut stream = connect_from(Ipv4Addr::LOCALHOST, sfu.tcp_addr().unwrap());
        wait_for(&sfu, "connection open", |s| s.ice_tcp_open == 1);
        stream.write_all(&100u16.to_be_bytes()).unwrap();
        stream.set_nonblocking(true).unwrap();
        let mut sent = 0;
        let closed = loop {
            match stream.read(&mut [0u8; 1]) {
                Ok(0) => break true,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => panic!("unexpected {other:?}"),
            }
            if sent == 100 {
                break false;
            }
            // The attack's pace: one byte every 50 ms (the whole frame would take 5 s).
            if stream.write_all(&[0]).is_err() {
                break true;
            }
            sent += 1;
            thread::sleep(Duration::from_millis(50));
        };
        assert!(closed && sent < 100, "closed after {sent} of 100 bytes");
        wait_for(&sfu, "its place given back", |s| s.ice_tcp_open == 0);
    }
}
