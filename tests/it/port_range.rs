//! `udp_port_range`: media on a range of UDP ports, each connection on one port of it.
//!
//! Two bots join a server whose media runs on a small free range; media flows both ways, and
//! both the bots (their selected ICE pairs) and the server (its per-port counters) show that
//! every connection talked to a port of the range, each connection to its own.

use std::collections::BTreeSet;
use std::net::{SocketAddr, UdpSocket};

use orbita_bot::BotStats;
use orbita_server::cluster::node::start_media_with_routes;
use orbita_server::config::UdpPortRange;
use orbita_server::RunningServer;
use orbita_sfu::Sfu;

use crate::support::*;

/// Ports in the test's range: more than the four connections of two bots (each publishes on one
/// connection and receives on another), so round-robin gives each its own port.
const PORTS: u16 = 6;

/// `n` consecutive UDP ports that are free on 127.0.0.1 now (each probed by binding it), below
/// the kernel's usual ephemeral range where other tests' port-0 sockets land; `attempt` moves
/// the search on after a range was taken between the probe and the server's bind.
fn free_udp_range(n: u16, attempt: u32) -> u16 {
    let seed = std::process::id() * 7 + attempt * 997;
    for i in 0..500u32 {
        let first = 20_000 + ((seed + i * u32::from(n)) % 12_000) as u16;
        let held: Vec<UdpSocket> = (first..first + n)
            .map_while(|port| UdpSocket::bind(("127.0.0.1", port)).ok())
            .collect();
        if held.len() == usize::from(n) {
            return first;
        }
    }
    panic!("no {n} consecutive free UDP ports on 127.0.0.1");
}

/// A real server (and its SFU) whose media runs on a free range of `PORTS` ports.
async fn start_on_a_range() -> (Sfu, RunningServer, u16) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let mut last_error = None;
    for attempt in 0..5 {
        let first = free_udp_range(PORTS, attempt);
        let mut settings = test_settings();
        settings.udp_port_range = Some(UdpPortRange {
            first,
            last: first + PORTS - 1,
        });
        match start_media_with_routes(settings, None).await {
            Ok((sfu, server)) => return (sfu, server, first),
            // Someone took a port of it since the probe: try another range.
            Err(e) => last_error = Some(format!("{e:#}")),
        }
    }
    panic!("the server did not start on a port range: {last_error:?}");
}

/// The server-side ports of the bot's selected ICE pairs: (publisher, subscriber).
fn selected_server_ports(s: &BotStats) -> Option<(u16, u16)> {
    let port = |remote: &Option<String>| {
        remote
            .as_deref()
            .and_then(|a| a.parse::<SocketAddr>().ok())
            .map(|a| a.port())
    };
    Some((
        port(&s.publisher.selected_remote)?,
        port(&s.subscriber.selected_remote)?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_flows_over_a_port_range_with_each_connection_on_its_own_port() {
    let (sfu, server, first) = start_on_a_range().await;
    let last = first + PORTS - 1;
    let range = first..=last;
    assert_eq!(server.udp_port_range(), Some(range.clone()));
    assert_eq!(sfu.udp_port_range(), Some(range.clone()));
    assert_eq!(server.udp_addr(), SocketAddr::from(([127, 0, 0, 1], first)));
    let banner = server.banner();
    assert!(
        banner.contains(&format!("media udp 127.0.0.1:{first}-{last}")),
        "{banner}"
    );

    let code = create_room(&server).await;
    let a = join_bot(&server, &code, "a").await;
    let b = join_bot(&server, &code, "b").await;
    a.wait_for_media_from(b.participant_id(), MEDIA_TIMEOUT)
        .await
        .expect("a receives b's audio and video");
    b.wait_for_media_from(a.participant_id(), MEDIA_TIMEOUT)
        .await
        .expect("b receives a's audio and video");

    // Both ways, in bytes and frames.
    for (bot, from) in [(&a, &b), (&b, &a)] {
        let s = bot.stats();
        let totals = &s.by_participant[from.participant_id()];
        let (audio, video) = (&totals.audio, &totals.video);
        assert!(
            audio.frames > 0 && video.frames > 0 && video.keyframes > 0 && video.bytes > 1000,
            "{} from {}: audio {audio:?}, video {video:?}",
            bot.name(),
            from.name()
        );
    }

    // The bots' selected pairs (reported with their periodic peer stats): every connection
    // talks to a port of the range, each to its own.
    let has_pairs = |s: &BotStats| selected_server_ports(s).is_some();
    let (a_pub, a_sub) =
        selected_server_ports(&a.wait_for(has_pairs, MEDIA_TIMEOUT).await.unwrap()).unwrap();
    let (b_pub, b_sub) =
        selected_server_ports(&b.wait_for(has_pairs, MEDIA_TIMEOUT).await.unwrap()).unwrap();
    let used: BTreeSet<u16> = [a_pub, a_sub, b_pub, b_sub].into();
    assert_eq!(
        used.len(),
        4,
        "four connections on four ports: a {a_pub}/{a_sub}, b {b_pub}/{b_sub}"
    );
    assert!(
        used.iter().all(|p| range.contains(p)),
        "{used:?} in {range:?}"
    );

    // The server's side: traffic in and out on exactly those ports, one connection each.
    let ports = sfu.udp_port_stats();
    assert_eq!(
        ports.iter().map(|p| p.port).collect::<Vec<_>>(),
        range.clone().collect::<Vec<_>>()
    );
    let busy: BTreeSet<u16> = ports
        .iter()
        .filter(|p| p.packets_in > 0 && p.packets_out > 0)
        .map(|p| p.port)
        .collect();
    assert_eq!(busy, used, "{ports:#?}");
    for p in ports.iter().filter(|p| used.contains(&p.port)) {
        assert_eq!(p.connections, 1, "{p:?}");
        assert!(p.bytes_in > 0 && p.bytes_out > 0, "{p:?}");
    }
    let idle = ports.iter().filter(|p| !used.contains(&p.port));
    for p in idle {
        assert_eq!(
            (p.connections, p.packets_in, p.packets_out),
            (0, 0, 0),
            "{p:?}"
        );
    }

    server.shutdown().await.unwrap();
}
