//! `--relay-only`: which TURN server of `joined.ice_servers` to use, and the thin I/O loop
//! that allocates a relay on a UDP socket with the sans-I/O [`TurnClient`]. After that the
//! peer connection's own loop drives the client (`peer.rs`, and `orbita load`'s engine).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use orbita_protocol::IceServer;
use tokio::net::UdpSocket;

use crate::turn::{TurnClient, TurnConfig, TurnState};

/// The default TURN port (RFC 8656).
pub const DEFAULT_TURN_PORT: u16 = 3478;

/// A TURN server to relay through: the first `turn:` URL over UDP in `joined.ice_servers`.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayServer {
    /// The URL as the server gave it (`turn:turn.example.org:3478?transport=udp`).
    pub url: String,
    /// Host name or IP address.
    pub host: String,
    /// UDP port.
    pub port: u16,
    /// The participant's TURN username (`EXPIRY:PARTICIPANT`).
    pub username: String,
    /// Its password.
    pub credential: String,
}

impl std::fmt::Debug for RelayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayServer")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("credential", &"<hidden>")
            .finish()
    }
}

/// Host and port of a `turn:` URL over UDP (RFC 7065: `turn:host[:port][?transport=udp]`);
/// `None` for `turns:`, `stun:`, TCP and anything unparseable.
pub fn parse_turn_udp_url(url: &str) -> Option<(String, u16)> {
    let rest = url.trim().strip_prefix("turn:")?;
    let (hostport, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    if let Some(q) = query {
        for pair in q.split('&') {
            if let Some(t) = pair.strip_prefix("transport=") {
                if !t.eq_ignore_ascii_case("udp") {
                    return None;
                }
            }
        }
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => DEFAULT_TURN_PORT,
            None => return None,
        };
        (host, port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().ok()?),
            None => (hostport, DEFAULT_TURN_PORT),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return None;
    }
    Some((host.to_string(), port))
}

/// The relay `--relay-only` uses: the first `turn:` URL over UDP that comes with a username
/// and credential. Fails, saying why, when `ice_servers` has none.
pub fn pick_relay(ice_servers: &[IceServer]) -> anyhow::Result<RelayServer> {
    let mut seen = Vec::new();
    for server in ice_servers {
        for url in &server.urls {
            seen.push(url.as_str());
            let Some((host, port)) = parse_turn_udp_url(url) else {
                continue;
            };
            let (Some(username), Some(credential)) = (&server.username, &server.credential) else {
                continue;
            };
            return Ok(RelayServer {
                url: url.clone(),
                host,
                port,
                username: username.clone(),
                credential: credential.clone(),
            });
        }
    }
    if seen.is_empty() {
        bail!(
            "--relay-only: the server offers no TURN relay (`joined` has no ice_servers); \
             give `orbita serve` --turn-urls and ORBITA_TURN_SECRET"
        )
    }
    bail!(
        "--relay-only: the server offers no TURN relay over UDP with credentials (ice_servers: {})",
        seen.join(", ")
    )
}

/// The relay's address, of the same family as `bind_ip` when it has one.
pub async fn resolve(relay: &RelayServer, bind_ip: IpAddr) -> anyhow::Result<SocketAddr> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((relay.host.as_str(), relay.port))
        .await
        .with_context(|| format!("resolving the TURN relay {}", relay.url))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4() == bind_ip.is_ipv4())
        .or(addrs.first())
        .copied()
        .with_context(|| format!("the TURN relay {} resolves to no address", relay.url))
}

/// Allocate a relayed address on `socket` at the relay `server` (resolved) as `relay`'s user:
/// the client's requests go out on the socket, the relay's answers come in, until it is
/// allocated (returned, with its `Allocated` event still queued) or refused (the error says
/// why, e.g. `401 Unauthorized`).
pub async fn allocate(
    socket: &UdpSocket,
    relay: &RelayServer,
    server: SocketAddr,
) -> anyhow::Result<TurnClient> {
    let config = TurnConfig {
        server,
        username: relay.username.clone(),
        password: relay.credential.clone(),
    };
    let mut client = TurnClient::new(config, Instant::now());
    let mut buf = vec![0u8; 2048];
    loop {
        while let Some(datagram) = client.poll_transmit() {
            socket
                .send_to(&datagram, server)
                .await
                .with_context(|| format!("sending to the TURN relay {server}"))?;
        }
        match client.state() {
            TurnState::Allocated => return Ok(client),
            TurnState::Failed(e) => {
                let hint = if e.code() == Some(401) {
                    " (the relay refused the credentials from `joined`: is the server's \
                     turn_secret the relay's static-auth-secret?)"
                } else {
                    ""
                };
                bail!("--relay-only: {e}{hint}")
            }
            TurnState::Allocating | TurnState::Closed => {}
        }
        let deadline = client
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                // Errors (an ICMP unreachable on some systems) end in a timeout, with the
                // retransmissions, rather than here.
                if let Ok((n, from)) = r {
                    if from == server {
                        client.handle_input(Instant::now(), &buf[..n]);
                    }
                }
            }
            _ = tokio::time::sleep_until(deadline.into()) => client.handle_timeout(Instant::now()),
        }
    }
}

/// Bind a UDP socket on `bind_ip` and allocate a relay on it (see [`allocate`]).
pub async fn bind_and_allocate(
    bind_ip: IpAddr,
    relay: &RelayServer,
    server: SocketAddr,
) -> anyhow::Result<(UdpSocket, TurnClient)> {
    let socket = UdpSocket::bind((bind_ip, 0))
        .await
        .with_context(|| format!("binding a UDP socket on {bind_ip}"))?;
    let client = allocate(&socket, relay, server).await?;
    Ok((socket, client))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls_over_udp() {
        let p = |u: &str| parse_turn_udp_url(u);
        assert_eq!(
            p("turn:127.0.0.1:3478?transport=udp"),
            Some(("127.0.0.1".into(), 3478))
        );
        assert_eq!(
            p("turn:turn.example.org"),
            Some(("turn.example.org".into(), 3478))
        );
        assert_eq!(
            p("turn:turn.example.org:443?transport=UDP"),
            Some(("turn.example.org".into(), 443))
        );
        assert_eq!(p("turn:[::1]:5000"), Some(("::1".into(), 5000)));
        assert_eq!(p("turn:[2001:db8::1]"), Some(("2001:db8::1".into(), 3478)));
        assert_eq!(p("turn:turn.example.org:3478?transport=tcp"), None);
        assert_eq!(p("turns:turn.example.org:5349?transport=tcp"), None);
        assert_eq!(p("stun:stun.example.org:3478"), None);
        assert_eq!(p("turn:host:notaport"), None);
        assert_eq!(p("turn:"), None);
        assert_eq!(p("turn:[::1"), None);
    }

    fn server(urls: &[&str], creds: bool) -> IceServer {
        IceServer {
            urls: urls.iter().map(|u| u.to_string()).collect(),
            username: creds.then(|| "1800000000:p1".to_string()),
            credential: creds.then(|| "pw".to_string()),
        }
    }

    #[test]
    fn the_first_udp_turn_url_with_credentials_is_picked() {
        let servers = [
            server(&["stun:127.0.0.1:3478"], false),
            server(
                &[
                    "turns:turn.example.org:5349?transport=tcp",
                    "turn:127.0.0.1:3479?transport=udp",
                    "turn:127.0.0.1:3480",
                ],
                true,
            ),
        ];
        let r = pick_relay(&servers).unwrap();
        assert_eq!(r.url, "turn:127.0.0.1:3479?transport=udp");
        assert_eq!((r.host.as_str(), r.port), ("127.0.0.1", 3479));
        assert_eq!(
            (r.username.as_str(), r.credential.as_str()),
            ("1800000000:p1", "pw")
        );
        assert!(!format!("{r:?}").contains("pw\""), "{r:?}");

        let e = pick_relay(&[]).unwrap_err().to_string();
        assert!(e.contains("offers no TURN relay"), "{e}");
        let e = pick_relay(&[server(&["turns:t.example.org:5349?transport=tcp"], true)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no TURN relay over UDP") && e.contains("turns:t.example.org"),
            "{e}"
        );
        let e = pick_relay(&[server(&["turn:127.0.0.1:3478"], false)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("with credentials"), "{e}");
    }
}
