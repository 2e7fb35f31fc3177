//! TURN relays. Credentials at join: a real server with `turn_urls` and a secret gives each
//! participant its own username `EXPIRY:PARTICIPANT` (expiring `turn_credential_ttl_secs` from
//! now) and the password coturn's `use-auth-secret` expects, `base64(HMAC-SHA1(secret,
//! username))`. The relay itself, with Debian's coturn (`turnserver`) on loopback sharing the
//! server's secret: bots told to relay only (`relay_only`, `orbita bot --relay-only`) call each
//! other through it, `orbita load --relay-only` runs through it, and with a wrong secret the
//! relay's 401 is the bot's error. (The browser test `turn.test.js` does the same in Chromium.)

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::*;
use futures_util::SinkExt;
use orbita_bot::{Bot, BotOptions, BotStats, PcStatus};
use orbita_protocol::{IceServer, ServerMsg};
use orbita_server::config::Secret;
use orbita_sfu::ice_servers::turn_password;
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

async fn join(url: &str, code: &str, name: &str) -> (String, Vec<IceServer>) {
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws");
    let join = serde_json::json!({"type": "join", "v": 1, "code": code, "name": name});
    ws.send(Message::Text(join.to_string().into()))
        .await
        .unwrap();
    match next_server_msg(&mut ws).await {
        ServerMsg::Joined {
            participant_id,
            ice_servers,
            ..
        } => (participant_id, ice_servers),
        other => panic!("expected joined, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_participant_gets_its_own_turn_credentials() {
    let mut settings = test_settings();
    settings.stun_urls = vec!["stun:127.0.0.1:3478".into()];
    settings.turn_urls = vec![
        "turn:127.0.0.1:3478?transport=udp".into(),
        "turns:turn.example.org:5349?transport=tcp".into(),
    ];
    settings.turn_secret = Some(Secret("shared with coturn".into()));
    settings.turn_credential_ttl_secs = 3600;
    let server = start_server(settings).await;
    let code = create_room(&server).await;
    let url = server.ws_url();
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (alice, alice_servers) = join(&url, &code, "Alice").await;
    let (bob, bob_servers) = join(&url, &code, "Bob").await;
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();

    for (who, servers) in [(&alice, &alice_servers), (&bob, &bob_servers)] {
        assert_eq!(servers.len(), 2, "{servers:?}");
        assert_eq!(servers[0].urls, ["stun:127.0.0.1:3478"]);
        assert_eq!(
            (&servers[0].username, &servers[0].credential),
            (&None, &None)
        );
        let turn = &servers[1];
        assert_eq!(turn.urls.len(), 2);
        let username = turn.username.as_deref().expect("a TURN username");
        let (expiry, participant) = username.split_once(':').expect("EXPIRY:PARTICIPANT");
        assert_eq!(participant, who.as_str());
        let expiry: u64 = expiry.parse().unwrap();
        assert!((before + 3600..=after + 3600).contains(&expiry), "{expiry}");
        assert_eq!(
            turn.credential.as_deref(),
            Some(turn_password("shared with coturn", username).as_str())
        );
    }
    assert_ne!(alice_servers[1].credential, bob_servers[1].credential);
    server.shutdown().await.unwrap();
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

fn random_secret() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}

/// Debian's coturn on loopback with TURN REST credentials (`use-auth-secret` and the test's
/// secret), relaying to loopback peers (`allow-loopback-peers`: a test only; production denies
/// internal ranges, docs/configuration.md), logging every session (`-v`) to a file.
struct Coturn {
    /// Killed before `dir` goes (fields drop in this order).
    daemon: Daemon,
    dir: TempDir,
    port: u16,
    relay_ports: RangeInclusive<u16>,
}

impl Coturn {
    async fn start(secret: &str) -> Coturn {
        let mut tried = Vec::new();
        for _ in 0..5 {
            let r = random_u64();
            // The listening port below the kernel's ephemeral ports, the relay ports above
            // them (32768-60999), so neither is taken by some other test's socket.
            let port = 20_000 + (r % 10_000) as u16;
            let min = 61_000 + ((r >> 16) % 45) as u16 * 100;
            let relay_ports = min..=min + 99;
            let dir = TempDir::new(&format!("coturn-{port}"));
            let at = |name: &str| dir.path().join(name).display().to_string();
            let child = Command::new("turnserver")
                .args([
                    "-n".to_string(),
                    "-v".into(),
                    "--listening-ip=127.0.0.1".into(),
                    "--relay-ip=127.0.0.1".into(),
                    format!("--listening-port={port}"),
                    format!("--min-port={}", relay_ports.start()),
                    format!("--max-port={}", relay_ports.end()),
                    "--realm=orbita.test".into(),
                    "--fingerprint".into(),
                    "--use-auth-secret".into(),
                    format!("--static-auth-secret={secret}"),
                    "--allow-loopback-peers".into(),
                    "--no-multicast-peers".into(),
                    "--no-tls".into(),
                    "--no-dtls".into(),
                    "--no-cli".into(),
                    "--simple-log".into(),
                    format!("--log-file={}", at("turn.log")),
                    format!("--pidfile={}", at("turnserver.pid")),
                    format!("--userdb={}", at("turndb")),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("coturn's `turnserver` (Debian package coturn; scripts/test installs it)");
            let mut coturn = Coturn {
                daemon: Daemon::new("coturn", child),
                dir,
                port,
                relay_ports,
            };
            if coturn.answers_stun(Duration::from_secs(20)).await {
                return coturn;
            }
            tried.push(format!("port {port}:\n{}", coturn.log()));
        }
        panic!("coturn did not start:\n{}", tried.join("\n"));
    }

    /// Whether coturn answers a STUN Binding request within `within` (false if it exits).
    async fn answers_stun(&mut self, within: Duration) -> bool {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.daemon.exited().is_some() {
                return false;
            }
            let tid: [u8; 12] = random_u64().to_be_bytes().repeat(2)[..12]
                .try_into()
                .unwrap();
            let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
            request.extend_from_slice(&tid);
            socket
                .send_to(&request, ("127.0.0.1", self.port))
                .await
                .unwrap();
            let mut buf = [0u8; 512];
            let answer =
                tokio::time::timeout(Duration::from_millis(100), socket.recv_from(&mut buf)).await;
            if let Ok(Ok((n, _))) = answer {
                if n >= 20 && buf[..2] == [0x01, 0x01] && buf[8..20] == tid {
                    return true;
                }
            }
        }
        false
    }

    fn url(&self) -> String {
        format!("turn:127.0.0.1:{}?transport=udp", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("turn.log")).unwrap_or_default()
    }

    /// Poll coturn's log until `cond` holds (10 s at most); returns the log.
    async fn wait_log(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if cond(&log) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "coturn's log never showed {what}:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// coturn's "peer usage" of the sessions of `participant` (username `EXPIRY:PARTICIPANT`),
/// logged when an allocation ends: packets and bytes received from and sent to peers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct PeerUsage {
    sessions: u64,
    rp: u64,
    rb: u64,
    sp: u64,
    sb: u64,
}

fn peer_usage(log: &str, participant: &str) -> PeerUsage {
    let user = format!(":{participant}>");
    let mut u = PeerUsage::default();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once(": peer usage: ") else {
            continue;
        };
        if !rest.contains(&user) {
            continue;
        }
        u.sessions += 1;
        for field in rest.split(", ") {
            let Some((k, v)) = field.split_once('=') else {
                continue;
            };
            let v: u64 = v.trim().parse().unwrap_or(0);
            match k {
                "rp" => u.rp += v,
                "rb" => u.rb += v,
                "sp" => u.sp += v,
                "sb" => u.sb += v,
                _ => {}
            }
        }
    }
    u
}

async fn relay_server(coturn: &Coturn, secret: &str) -> orbita_server::RunningServer {
    let mut settings = test_settings();
    settings.turn_urls = vec![coturn.url()];
    settings.turn_secret = Some(Secret(secret.into()));
    start_server(settings).await
}

fn relay_only(o: &mut BotOptions) {
    o.relay_only = true;
}

/// Both connections went through the relay, as str0m's peer stats show (every second).
fn through_relay(s: &BotStats) -> bool {
    [&s.publisher, &s.subscriber].iter().all(|pc| {
        pc.selected_local.is_some()
            && pc
                .relay
                .as_ref()
                .is_some_and(|r| r.bytes_sent > 0 && r.bytes_received > 0)
    })
}

/// Two bots that may only use the relay see and hear each other through coturn, and the
/// media path provably is the relay: each connection's only candidate is a relayed address
/// from coturn's relay ports, str0m sends on the pair (relayed address, the server's media
/// address), nothing arrives from anywhere but coturn, and coturn itself logs the
/// allocations under each participant's name, the channels to the server's media address
/// and, when the bots leave, as many bytes relayed as the bots sent through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_bots_exchange_media_through_coturn() {
    let secret = random_secret();
    let coturn = Coturn::start(&secret).await;
    let server = relay_server(&coturn, &secret).await;
    let code = create_room(&server).await;
    let mut alice = join_bot_with(&server, &code, "Alice", relay_only).await;
    let mut bob = join_bot_with(&server, &code, "Bob", relay_only).await;
    let (alice_id, bob_id) = (
        alice.participant_id().to_string(),
        bob.participant_id().to_string(),
    );
    alice
        .wait_for_media_from(&bob_id, MEDIA_TIMEOUT)
        .await
        .unwrap();
    bob.wait_for_media_from(&alice_id, MEDIA_TIMEOUT)
        .await
        .unwrap();
    let a = alice.wait_for(through_relay, MEDIA_TIMEOUT).await.unwrap();
    let b = bob.wait_for(through_relay, MEDIA_TIMEOUT).await.unwrap();

    let media_addr = server.udp_addr().to_string();
    let turn_addr = format!("127.0.0.1:{}", coturn.port);
    for (who, s) in [("Alice", &a), ("Bob", &b)] {
        for (side, pc) in [("publisher", &s.publisher), ("subscriber", &s.subscriber)] {
            let ctx = format!("{who}'s {side}: {pc:?}");
            let relay = pc.relay.as_ref().unwrap();
            assert_eq!(relay.url, coturn.url(), "{ctx}");
            assert_eq!(relay.server, turn_addr, "{ctx}");
            let relayed: SocketAddr = relay.relayed_addr.parse().unwrap();
            assert_eq!(relayed.ip().to_string(), "127.0.0.1", "{ctx}");
            assert!(coturn.relay_ports.contains(&relayed.port()), "{ctx}");
            assert_ne!(pc.local_addr.as_deref(), Some(relay.relayed_addr.as_str()));
            // The one candidate the bot gave is the relayed address.
            let candidate = pc.local_candidate.as_deref().unwrap();
            assert!(
                candidate.contains(&format!(" {} {} typ relay", relayed.ip(), relayed.port())),
                "{ctx}"
            );
            // str0m's selected pair: from the relayed address to the server's media port.
            assert_eq!(
                pc.selected_local.as_deref(),
                Some(relay.relayed_addr.as_str()),
                "{ctx}"
            );
            assert_eq!(
                pc.selected_remote.as_deref(),
                Some(media_addr.as_str()),
                "{ctx}"
            );
            assert_eq!(relay.foreign_datagrams, 0, "{ctx}");
            assert_eq!(relay.dropped, 0, "{ctx}");
            assert!(pc.connected, "{ctx}");
        }
        assert!(s.warnings.is_empty(), "{who}: {:?}", s.warnings);
    }
    let got = |s: &BotStats, from: &str| {
        let t = &s.by_participant[from];
        (
            t.audio.frames,
            t.video.frames,
            t.video.keyframes,
            t.audio.bytes + t.video.bytes,
        )
    };
    let (a_audio, a_video, a_key, a_bytes) = got(&a, &bob_id);
    let (b_audio, b_video, b_key, b_bytes) = got(&b, &alice_id);
    assert!(a_audio > 0 && a_video > 0 && a_key > 0, "{}", a.report());
    assert!(b_audio > 0 && b_video > 0 && b_key > 0, "{}", b.report());
    let relay_line = |pc: &PcStatus| {
        let r = pc.relay.as_ref().unwrap();
        format!(
            "{} -> {}: sent {} datagrams / {} B, received {} / {} B",
            r.relayed_addr,
            media_addr,
            r.datagrams_sent,
            r.bytes_sent,
            r.datagrams_received,
            r.bytes_received
        )
    };
    println!(
        "turn: Alice got {a_audio} audio + {a_video} video frames ({a_key} keyframes, {a_bytes} B) of Bob through coturn; Bob got {b_audio} + {b_video} ({b_key} keyframes, {b_bytes} B) of Alice"
    );
    for (who, s) in [("Alice", &a), ("Bob", &b)] {
        println!("turn: {who} publisher  {}", relay_line(&s.publisher));
        println!("turn: {who} subscriber {}", relay_line(&s.subscriber));
    }

    // Leaving deletes the allocations (Refresh, lifetime 0); coturn then logs their usage.
    let a = alice.leave().await.unwrap();
    let b = bob.leave().await.unwrap();
    let log = coturn
        .wait_log("the usage of the four allocations", |log| {
            peer_usage(log, &alice_id).sessions == 2 && peer_usage(log, &bob_id).sessions == 2
        })
        .await;
    assert!(
        log.contains(&format!("peer {media_addr} lifetime updated")),
        "channels to the server's media address:\n{log}"
    );
    for (who, id, s) in [("Alice", &alice_id, &a), ("Bob", &bob_id, &b)] {
        let news = log
            .lines()
            .filter(|l| l.contains(": new, realm=<orbita.test>, username=<"))
            .filter(|l| l.contains(&format!(":{id}>")))
            .count();
        assert_eq!(news, 2, "{who}: one allocation per connection:\n{log}");
        let usage = peer_usage(&log, id);
        let sent: u64 = [&s.publisher, &s.subscriber]
            .iter()
            .map(|pc| pc.relay.as_ref().unwrap().bytes_sent)
            .sum();
        let received: u64 = [&s.publisher, &s.subscriber]
            .iter()
            .map(|pc| pc.relay.as_ref().unwrap().bytes_received)
            .sum();
        println!(
            "turn: coturn relayed for {who}: to the server {} packets / {} B (the bot sent {sent} B), from it {} / {} B (the bot read {received} B)",
            usage.sp, usage.sb, usage.rp, usage.rb
        );
        // What the bot sent through the relay went on to the server from it (all of it on an
        // idle loopback; 1% lost to a full socket buffer on a busy machine would still be
        // the relay's doing); what the relay got from the server the bot read (but the last
        // datagrams in flight when it left).
        assert!(
            usage.sb <= sent && usage.sb >= sent - sent / 100,
            "{who}: {usage:?} vs {sent}"
        );
        assert!(
            usage.rb >= received && usage.rb - received < 50_000,
            "{who}: {usage:?} vs {received}"
        );
    }
    server.shutdown().await.unwrap();
}

/// With a secret that is not the relay's, coturn refuses the Allocate with 401, and a
/// relay-only bot fails to join saying so (quickly: a refusal, not a timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_with_a_wrong_secret_fails_with_the_relays_401() {
    let coturn = Coturn::start(&random_secret()).await;
    let server = relay_server(&coturn, "not-the-relays-secret").await;
    let code = create_room(&server).await;
    let mut opts = BotOptions::new(server.ws_url(), &code, "Carol");
    opts.relay_only = true;
    let started = Instant::now();
    let err = format!("{:#}", Bot::join(opts).await.unwrap_err());
    let took = started.elapsed();
    assert_eq!(
        err,
        format!(
            "--relay-only: the TURN server 127.0.0.1:{} refused Allocate: 401 Unauthorized (the \
             relay refused the credentials from `joined`: is the server's turn_secret the \
             relay's static-auth-secret?)",
            coturn.port
        )
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    // coturn's side: it knew no such credentials.
    coturn
        .wait_log("the refused credentials", |log| {
            log.contains("Cannot find credentials of user <")
                && log
                    .lines()
                    .any(|l| l.contains("error 401: Unauthorized") && !l.contains("user <>"))
        })
        .await;
    server.shutdown().await.unwrap();
}

/// `orbita load --relay-only`: every participant joins and receives through coturn, one
/// allocation per connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_relay_only_participants_receive_through_coturn() {
    let secret = random_secret();
    let coturn = Coturn::start(&secret).await;
    let server = relay_server(&coturn, &secret).await;
    let config = orbita_load::LoadConfig {
        url: server.ws_url(),
        rooms: 1,
        publishers: 1,
        subscribers: 2,
        ramp_per_s: 0.0,
        settle: Duration::from_secs(1),
        duration: Duration::from_secs(3),
        relay_only: true,
        progress: false,
        ..orbita_load::LoadConfig::default()
    };
    let report = orbita_load::run(config)
        .await
        .expect("the load run completes");
    println!("{}", report.table());
    let p = &report.participants;
    assert_eq!((p.total, p.joined, p.failed), (3, 3, 0), "{:?}", p.failures);
    let r = &report.received;
    assert_eq!((r.receivers, r.receivers_with_media), (2, 2));
    assert!(r.packets >= 2 * 3 * 50, "{r:?}");
    assert!(report.scenario.relay_only);
    assert!(report.table().contains("relay only"));
    // The publisher's two connections and each subscriber's one, all allocated at coturn and
    // deleted when the run ended.
    let log = coturn
        .wait_log("four allocations used and deleted", |log| {
            log.matches(": peer usage: realm=<orbita.test>").count() == 4
        })
        .await;
    assert_eq!(
        log.matches(": new, realm=<orbita.test>, username=<")
            .count(),
        4,
        "{log}"
    );
    server.shutdown().await.unwrap();
}
