//! `orbita load`: many light participants from one process, like `lk load-test` for LiveKit.
//!
//! Rooms of publishers and subscribers join an Orbita server over its real signalling and
//! WebRTC (ICE, DTLS, SRTP); the run prints a progress line every second and ends with a
//! [`LoadReport`]: who joined, join times, what arrived (bitrate, packets, loss, jitter,
//! frames), and the server's CPU, memory and forwarding cost (from /proc and `/metrics`).
//!
//! It is built to be cheaper than the server it loads (see docs/BENCHMARKS.md):
//! - media runs on a few shard threads ([`engine`]), each an epoll loop over the UDP sockets
//!   of many participants with `recvmmsg` batches and one timer heap, not a task per peer;
//! - subscribers run str0m in RTP mode: SRTP is still decrypted and authenticated by str0m,
//!   but frames are neither reassembled nor decoded; packets, bytes, sequence gaps and VP8
//!   keyframe starts are counted from the RTP header and VP8 payload descriptor ([`rtp`]);
//! - publishers send the bot's pre-encoded VP8 and Opus (no encoder);
//! - one DTLS certificate serves every connection;
//! - signalling is one small tokio task per participant that skips room chatter unparsed.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = orbita_load::LoadConfig {
//!     url: "ws://127.0.0.1:8080/ws".into(),
//!     subscribers: 50,
//!     ..orbita_load::LoadConfig::default()
//! };
//! let report = orbita_load::run(config).await?;
//! print!("{}", report.table());
//! # Ok(()) }
//! ```

pub mod cli;
pub mod coordinator;
pub mod engine;
pub mod http;
pub mod procfs;
pub mod report;
pub mod rtp;
pub mod signal;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::sync::watch;

use engine::{Counters, Engine, MediaSetup, PartReport, PeerSpec};
use procfs::ProcSample;
pub use report::LoadReport;
use report::{
    JoinTimes, LoadSelf, Loss, Participants, Percentiles, Published, Received, Scenario,
    ServerReport,
};
use signal::{Plan, SignalCounters, Slot};

/// The bot's video layers a publisher can send.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
pub enum VideoLayer {
    /// 1280x720, ~1.1 Mbit/s (with simulcast: plus 640x360 and 320x180, ~1.7 Mbit/s in all).
    #[value(name = "720p")]
    P720,
    /// 640x360, ~0.4 Mbit/s (with simulcast: plus 320x180).
    #[value(name = "360p")]
    P360,
    /// 320x180, ~0.16 Mbit/s.
    #[value(name = "180p")]
    P180,
}

impl VideoLayer {
    /// Index into the bot's layers (highest first).
    pub fn index(self) -> usize {
        match self {
            VideoLayer::P720 => 0,
            VideoLayer::P360 => 1,
            VideoLayer::P180 => 2,
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The server's signalling URL (`ws://host:port/ws`); `/api/rooms` and `/metrics` are
    /// on the same host and port.
    pub url: String,
    /// Join these rooms; empty: create `rooms` rooms with `POST /api/rooms`.
    pub codes: Vec<String>,
    /// Rooms to create when `codes` is empty.
    pub rooms: usize,
    /// Publishers per room.
    pub publishers: usize,
    /// Subscribers (receive only) per room.
    pub subscribers: usize,
    /// Publishers send Opus.
    pub audio: bool,
    /// Publishers send VP8.
    pub video: bool,
    /// Video as simulcast (the chosen layer and the ones below it) or one stream.
    pub simulcast: bool,
    /// The (top) video layer.
    pub video_layer: VideoLayer,
    /// What subscribers ask for with `set_quality` (`"auto"`, `"640x480"`, ...).
    pub max_quality: Option<String>,
    /// Joins per second; 0 joins everyone at once. Publishers join first.
    pub ramp_per_s: f64,
    /// Wait after the joins before measuring.
    pub settle: Duration,
    /// Measured time.
    pub duration: Duration,
    /// How long after the last join start a participant may take to get its media.
    pub join_timeout: Duration,
    /// Media shard threads.
    pub media_threads: usize,
    /// Local address of the participants' UDP sockets.
    pub bind_ip: IpAddr,
    /// A local server's process id, for CPU and memory from /proc.
    pub server_pid: Option<u32>,
    /// Connect only through the TURN relay the server gives at join (the first `turn:` URL
    /// over UDP in `joined.ice_servers`): one allocation per connection, only relayed
    /// candidates. A participant whose relay is missing or refuses fails to join.
    pub relay_only: bool,
    /// Print a progress line every second (to stderr).
    pub progress: bool,
}

impl Default for LoadConfig {
    fn default() -> Self {
        LoadConfig {
            url: "ws://127.0.0.1:8080/ws".into(),
            codes: vec![],
            rooms: 1,
            publishers: 1,
            subscribers: 10,
            audio: true,
            video: true,
            simulcast: true,
            video_layer: VideoLayer::P720,
            max_quality: Some("auto".into()),
            ramp_per_s: 50.0,
            settle: Duration::from_secs(3),
            duration: Duration::from_secs(20),
            join_timeout: Duration::from_secs(20),
            media_threads: 1,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            server_pid: None,
            relay_only: false,
            progress: true,
        }
    }
}

impl LoadConfig {
    fn video_label(&self) -> Option<String> {
        if !self.video || self.publishers == 0 {
            return None;
        }
        let sizes = ["1280x720", "640x360", "320x180"];
        let top = self.video_layer.index();
        Some(if self.simulcast {
            format!("{} simulcast", sizes[top..].join("+"))
        } else {
            sizes[top].to_string()
        })
    }
}

/// Everything read at one instant.
struct Sample {
    at: Instant,
    rx_packets: u64,
    rx_bytes: u64,
    rx_expected: u64,
    rx_video_frames: u64,
    frames_sent: u64,
    busy_ns: u64,
    server: Option<ProcSample>,
    me: Option<ProcSample>,
    machine_busy: Option<u64>,
    cpu_busy: Vec<u64>,
    metrics: Option<BTreeMap<String, f64>>,
}

impl Sample {
    async fn take(cfg: &LoadConfig, authority: &str, c: &Counters, with_metrics: bool) -> Sample {
        let metrics = if with_metrics {
            http::metrics(authority).await.ok()
        } else {
            None
        };
        Sample {
            at: Instant::now(),
            rx_packets: Counters::get(&c.rx_packets),
            rx_bytes: Counters::get(&c.rx_bytes),
            rx_expected: Counters::get(&c.rx_expected),
            rx_video_frames: Counters::get(&c.rx_video_frames),
            frames_sent: Counters::get(&c.frames_sent),
            busy_ns: Counters::get(&c.busy_ns),
            server: cfg.server_pid.and_then(|p| ProcSample::take(Some(p)).ok()),
            me: ProcSample::take(None).ok(),
            machine_busy: procfs::machine_busy_ticks(),
            cpu_busy: procfs::per_cpu_busy_ticks(),
            metrics,
        }
    }

    fn metric(&self, name: &str) -> Option<f64> {
        self.metrics.as_ref()?.get(name).copied()
    }
}

/// The progress line.
struct Progress {
    enabled: bool,
    start: Instant,
    last: Option<Sample>,
}

impl Progress {
    fn line(&mut self, now: Sample, total: usize, sig: &SignalCounters, c: &Counters, phase: &str) {
        if let Some(last) = &self.last {
            if self.enabled {
                let secs = now
                    .at
                    .saturating_duration_since(last.at)
                    .as_secs_f64()
                    .max(1e-3);
                let pkts = now.rx_packets - last.rx_packets;
                let loss = Loss::new(now.rx_expected - last.rx_expected, pkts);
                let cores = |a: &Option<ProcSample>, b: &Option<ProcSample>| match (a, b) {
                    (Some(a), Some(b)) => format!("{:.2}", a.cores_since(b)),
                    _ => "-".into(),
                };
                let server = match &now.server {
                    Some(s) => format!(
                        "server {} cores {:.0} MiB",
                        cores(&now.server, &last.server),
                        s.rss_kb as f64 / 1024.0
                    ),
                    None => "server -".into(),
                };
                let fwd = match (
                    now.metric("orbita_rtp_forwarded_total"),
                    last.metric("orbita_rtp_forwarded_total"),
                ) {
                    (Some(a), Some(b)) => format!(" fwd {:.0}/s", (a - b) / secs),
                    _ => String::new(),
                };
                let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
                eprintln!(
                    "[{:>4.0}s {phase}] joined {}/{total} ready {} failed {} dropped {} | rx {:.1} Mbit/s {:.0} pkt/s loss {:.2}% | {server}{fwd} | load {} cores busy {:.0}%",
                    now.at.saturating_duration_since(self.start).as_secs_f64(),
                    get(&sig.joined),
                    get(&c.ready),
                    get(&sig.failed),
                    get(&sig.ended),
                    (now.rx_bytes - last.rx_bytes) as f64 * 8.0 / secs / 1e6,
                    pkts as f64 / secs,
                    loss.fraction * 100.0,
                    cores(&now.me, &last.me),
                    (now.busy_ns - last.busy_ns) as f64 / 1e9 / secs * 100.0,
                );
            }
        }
        self.last = Some(now);
    }
}

/// Run a load scenario and report.
pub async fn run(cfg: LoadConfig) -> anyhow::Result<LoadReport> {
    if cfg.publishers + cfg.subscribers == 0 {
        bail!("nobody to join: --publishers and --subscribers are both 0");
    }
    if cfg.publishers > 0 && !cfg.audio && !cfg.video {
        bail!("publishers must send audio or video");
    }
    let authority = http::http_authority(&cfg.url)?;
    raise_fd_limit();
    let media = Arc::new(MediaSetup::new(cfg.video_layer.index(), cfg.simulcast)?);
    let codes = if cfg.codes.is_empty() {
        let mut codes = Vec::new();
        for _ in 0..cfg.rooms.max(1) {
            codes.push(
                http::create_room(&authority)
                    .await
                    .context("creating a room")?,
            );
        }
        codes
    } else {
        cfg.codes.clone()
    };
    let rooms = codes.len();
    let counters = Arc::new(Counters::default());
    let engine = Engine::start(cfg.media_threads, media, counters.clone())
        .context("starting the media shards")?;
    let sig = Arc::new(SignalCounters::default());
    let snmp_before = procfs::udp_snmp();
    let before = Sample::take(&cfg, &authority, &counters, true).await;

    // Publishers first (room by room), then subscribers spread over the rooms.
    let mut plans = Vec::new();
    for (r, code) in codes.iter().enumerate() {
        for p in 0..cfg.publishers {
            plans.push((code.clone(), format!("load-r{r}-pub{p}"), true));
        }
    }
    for s in 0..cfg.subscribers {
        for (r, code) in codes.iter().enumerate() {
            plans.push((code.clone(), format!("load-r{r}-sub{s}"), false));
        }
    }
    let total = plans.len();
    let n_pub = rooms * cfg.publishers;
    let slots = Arc::new(Mutex::new(vec![Slot::default(); total]));
    let (stop_tx, stop_rx) = watch::channel(false);
    let start = Instant::now();

    let spawner = {
        let (engine, slots, sig, counters, cfg) = (
            engine.handle(),
            slots.clone(),
            sig.clone(),
            counters.clone(),
            cfg.clone(),
        );
        tokio::spawn(async move {
            let mut tasks = Vec::with_capacity(total);
            let mut phase_start = Instant::now();
            let mut phase_index = 0usize;
            for (i, (code, name, publishes)) in plans.into_iter().enumerate() {
                if i == n_pub && n_pub > 0 {
                    // Let the publishers connect so that subscribers' join times measure
                    // joining a live room.
                    let deadline = Instant::now() + cfg.join_timeout;
                    while Counters::get(&counters.ready)
                        + sig.failed.load(Ordering::Relaxed)
                        + sig.ended.load(Ordering::Relaxed)
                        < n_pub as u64
                        && Instant::now() < deadline
                    {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    phase_start = Instant::now();
                    phase_index = 0;
                }
                if cfg.ramp_per_s > 0.0 {
                    let at =
                        phase_start + Duration::from_secs_f64(phase_index as f64 / cfg.ramp_per_s);
                    tokio::time::sleep_until(at.into()).await;
                }
                phase_index += 1;
                let spec = PeerSpec {
                    audio: publishes && cfg.audio,
                    video: publishes && cfg.video,
                    expects_media: if publishes {
                        cfg.publishers > 1
                    } else {
                        cfg.publishers > 0
                    },
                    bind_ip: cfg.bind_ip,
                    relay_only: cfg.relay_only,
                };
                let plan = Plan {
                    id: i,
                    url: cfg.url.clone(),
                    code,
                    name,
                    spec,
                    max_quality: if publishes {
                        None
                    } else {
                        cfg.max_quality.clone()
                    },
                };
                tasks.push(tokio::spawn(signal::participant(
                    plan,
                    engine.clone(),
                    stop_rx.clone(),
                    slots.clone(),
                    sig.clone(),
                )));
            }
            tasks
        })
    };

    let mut progress = Progress {
        enabled: cfg.progress,
        start,
        last: None,
    };
    let tick = Duration::from_secs(1);
    progress.line(
        Sample::take(&cfg, &authority, &counters, true).await,
        total,
        &sig,
        &counters,
        "join",
    );
    // Join phase: until everyone is ready or failed, or the join timeout after the last start.
    let mut spawner = Some(spawner);
    let mut tasks = Vec::new();
    let mut all_started: Option<Instant> = None;
    loop {
        tokio::time::sleep(tick).await;
        if let Some(s) = &spawner {
            if s.is_finished() {
                tasks = spawner
                    .take()
                    .expect("checked")
                    .await
                    .context("the join spawner")?;
                all_started = Some(Instant::now());
            }
        }
        progress.line(
            Sample::take(&cfg, &authority, &counters, true).await,
            total,
            &sig,
            &counters,
            "join",
        );
        let settled = Counters::get(&counters.ready)
            + sig.failed.load(Ordering::Relaxed)
            + sig.ended.load(Ordering::Relaxed);
        if let Some(t) = all_started {
            if settled >= total as u64 || t.elapsed() >= cfg.join_timeout {
                break;
            }
        }
    }
    let settle_end = Instant::now() + cfg.settle;
    while Instant::now() < settle_end {
        tokio::time::sleep(tick.min(settle_end.saturating_duration_since(Instant::now()))).await;
        progress.line(
            Sample::take(&cfg, &authority, &counters, true).await,
            total,
            &sig,
            &counters,
            "settle",
        );
    }

    let w0 = Sample::take(&cfg, &authority, &counters, true).await;
    progress.last = None;
    progress.line(
        Sample::take(&cfg, &authority, &counters, true).await,
        total,
        &sig,
        &counters,
        "measure",
    );
    let end = w0.at + cfg.duration;
    while Instant::now() < end {
        tokio::time::sleep(tick.min(end.saturating_duration_since(Instant::now()))).await;
        progress.line(
            Sample::take(&cfg, &authority, &counters, true).await,
            total,
            &sig,
            &counters,
            "measure",
        );
    }
    let w1 = Sample::take(&cfg, &authority, &counters, true).await;
    let server_drops = cfg
        .server_pid
        .filter(|p| *p != std::process::id())
        .map(|p| procfs::udp_drops(&procfs::socket_inodes(Some(p))));
    let own_drops = procfs::udp_drops(&procfs::socket_inodes(None));
    let snmp_after = procfs::udp_snmp();
    let parts = engine.handle().snapshot().await;
    let slots_final = slots.lock().map(|s| s.clone()).unwrap_or_default();

    // Leave: close every WebSocket, then stop the shards.
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    tokio::task::spawn_blocking(move || engine.stop())
        .await
        .ok();

    let ctx = ReportInputs {
        cfg: &cfg,
        codes,
        n_pub,
        before,
        w0,
        w1,
        parts,
        slots: slots_final,
        counters: &counters,
        server_drops,
        own_drops,
        rcvbuf_errors: snmp_after.1.saturating_sub(snmp_before.1),
    };
    Ok(ctx.build())
}

struct ReportInputs<'a> {
    cfg: &'a LoadConfig,
    codes: Vec<String>,
    n_pub: usize,
    before: Sample,
    w0: Sample,
    w1: Sample,
    parts: Vec<PartReport>,
    slots: Vec<Slot>,
    counters: &'a Counters,
    server_drops: Option<u64>,
    own_drops: u64,
    rcvbuf_errors: u64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl ReportInputs<'_> {
    fn build(self) -> LoadReport {
        let cfg = self.cfg;
        let total = self.slots.len();
        let window_s = self
            .w1
            .at
            .saturating_duration_since(self.w0.at)
            .as_secs_f64()
            .max(1e-3);
        let parts_by_id: BTreeMap<usize, &PartReport> =
            self.parts.iter().map(|p| (p.id, p)).collect();

        // Who joined, and why the others did not.
        let mut failures: BTreeMap<String, usize> = BTreeMap::new();
        let mut joined = 0;
        for (i, slot) in self.slots.iter().enumerate() {
            let reason = if let Some(f) = &slot.failed {
                Some(short_reason(f))
            } else if let Some(e) = &slot.ended {
                Some(format!("dropped by the server: {}", short_reason(e)))
            } else {
                match parts_by_id.get(&i) {
                    None => Some("never started".into()),
                    Some(p) if p.ready => None,
                    Some(p) if p.publishes && p.pub_connected.is_none() => {
                        Some("publisher connection not up".into())
                    }
                    Some(p) if p.expects_media && p.sub_connected.is_none() => {
                        Some("subscriber connection not up".into())
                    }
                    Some(_) => Some("no media received".into()),
                }
            };
            match reason {
                Some(r) => *failures.entry(r).or_insert(0) += 1,
                None => joined += 1,
            }
        }
        let mut problems: BTreeMap<String, usize> = BTreeMap::new();
        for p in &self.parts {
            for pr in &p.problems {
                *problems.entry(pr.clone()).or_insert(0) += 1;
            }
        }

        // Join times.
        let times = |f: &dyn Fn(&PartReport) -> Option<Duration>,
                     who: &dyn Fn(&PartReport) -> bool| {
            Percentiles::of(
                self.parts
                    .iter()
                    .filter(|p| who(p))
                    .filter_map(|p| f(p).map(ms))
                    .collect(),
            )
        };
        let receiver = |p: &PartReport| p.expects_media;
        let join_ms = JoinTimes {
            to_joined: Percentiles::of(
                self.slots
                    .iter()
                    .filter_map(|s| s.joined_after.map(ms))
                    .collect(),
            ),
            to_connected: times(&|p| p.sub_connected, &receiver),
            to_first_packet: times(&|p| p.first_packet, &receiver),
            to_first_keyframe: times(&|p| p.first_keyframe, &receiver),
            publisher_to_connected: times(&|p| p.pub_connected, &|p| p.publishes),
        };

        // Received.
        let receivers = self.parts.iter().filter(|p| p.expects_media).count();
        let receivers_with_media = self
            .parts
            .iter()
            .filter(|p| p.expects_media && p.first_packet.is_some())
            .count();
        let (w0, w1) = (&self.w0, &self.w1);
        let packets = w1.rx_packets - w0.rx_packets;
        let bytes = w1.rx_bytes - w0.rx_bytes;
        let video_streams = self
            .parts
            .iter()
            .flat_map(|p| p.streams.iter())
            .filter(|s| s.video)
            .count();
        let (mut run_expected, mut run_received, mut receivers_with_loss) = (0, 0, 0);
        for p in &self.parts {
            let lost: u64 = p.streams.iter().map(|s| s.counter.lost()).sum();
            run_expected += p.streams.iter().map(|s| s.counter.expected()).sum::<u64>();
            run_received += p.streams.iter().map(|s| s.counter.received).sum::<u64>();
            if lost > 0 {
                receivers_with_loss += 1;
            }
        }
        let jitter = Percentiles::of(
            self.parts
                .iter()
                .flat_map(|p| p.streams.iter())
                .filter_map(|s| s.jitter_ms)
                .collect(),
        );
        let received = Received {
            receivers,
            receivers_with_media,
            packets,
            bytes,
            packets_per_s: packets as f64 / window_s,
            bitrate_bps: bytes as f64 * 8.0 / window_s,
            bitrate_per_receiver_bps: if receivers > 0 {
                bytes as f64 * 8.0 / window_s / receivers as f64
            } else {
                0.0
            },
            video_fps_per_stream: if video_streams > 0 {
                (w1.rx_video_frames - w0.rx_video_frames) as f64 / window_s / video_streams as f64
            } else {
                0.0
            },
            keyframes: Counters::get(&self.counters.rx_keyframes),
            loss_window: Loss::new(w1.rx_expected - w0.rx_expected, packets),
            loss_run: Loss::new(run_expected, run_received),
            receivers_with_loss,
            jitter_ms: jitter,
        };
        let published = Published {
            frames_sent: self.parts.iter().map(|p| p.frames_sent).sum(),
            frames_per_s: (w1.frames_sent - w0.frames_sent) as f64 / window_s,
            frames_skipped: self.parts.iter().map(|p| p.skipped.0 + p.skipped.1).sum(),
            keyframe_requests: self.parts.iter().map(|p| p.keyframe_requests).sum(),
            write_errors: Counters::get(&self.counters.write_errors),
        };

        // The server.
        let delta = |name: &str| Some(w1.metric(name)? - w0.metric(name)?);
        let cpu_seconds = match (&w1.server, &w0.server) {
            (Some(a), Some(b)) => Some(a.cpu_seconds_since(b)),
            _ => None,
        };
        let forwarded = delta("orbita_rtp_forwarded_total");
        let us_per = match (cpu_seconds, forwarded) {
            (Some(c), Some(f)) if f > 0.0 => Some(c * 1e6 / f),
            _ => None,
        };
        let rss_before = self.before.server.as_ref().map(|s| s.rss_kb);
        let rss_after = w1.server.as_ref().map(|s| s.rss_kb);
        let packets_out = delta("orbita_packets_out_total");
        let server = ServerReport {
            pid: cfg.server_pid,
            cpu_cores: match (&w1.server, &w0.server) {
                (Some(a), Some(b)) => Some(a.cores_since(b)),
                _ => None,
            },
            cpu_seconds,
            threads: match (&w1.server, &w0.server) {
                (Some(a), Some(b)) => a.thread_cores_since(b),
                _ => BTreeMap::new(),
            },
            runqueue_wait: match (&w1.server, &w0.server) {
                (Some(a), Some(b)) => Some(a.waited_since(b)),
                _ => None,
            },
            rss_before_kb: rss_before,
            rss_kb: rss_after,
            rss_per_participant_kb: match (rss_before, rss_after) {
                (Some(b), Some(a)) if joined > 0 => Some((a as f64 - b as f64) / joined as f64),
                _ => None,
            },
            udp_drops: self.server_drops,
            rtp_forwarded: forwarded.map(|f| f as u64),
            rtp_forwarded_per_s: forwarded.map(|f| f / window_s),
            packets_out_per_s: packets_out.map(|f| f / window_s),
            us_per_packet_out: match (cpu_seconds, packets_out) {
                (Some(c), Some(o)) if o > 0.0 => Some(c * 1e6 / o),
                _ => None,
            },
            packets_in_per_s: delta("orbita_packets_in_total").map(|f| f / window_s),
            bitrate_out_bps: delta("orbita_bytes_out_total").map(|f| f * 8.0 / window_s),
            unmatched: delta("orbita_unmatched_packets_total").map(|f| f as u64),
            us_per_forwarded_packet: us_per,
            forwarded_per_core_per_s: us_per.map(|u| 1e6 / u),
        };
        // CPU used by everything else on the machine in the window (builds, browsers...).
        let self_cpu = match (&w1.me, &w0.me) {
            (Some(a), Some(b)) => a.cpu_seconds_since(b),
            _ => 0.0,
        };
        let server_cpu = if cfg.server_pid == Some(std::process::id()) {
            0.0
        } else {
            cpu_seconds.unwrap_or(0.0)
        };
        let other_cores = match (w1.machine_busy, w0.machine_busy) {
            (Some(a), Some(b)) => {
                let busy = a.saturating_sub(b) as f64 / procfs::clock_ticks_per_second() as f64;
                Some(((busy - server_cpu - self_cpu) / window_s).max(0.0))
            }
            _ => None,
        };
        let load = LoadSelf {
            cpu_cores: match (&w1.me, &w0.me) {
                (Some(a), Some(b)) => a.cores_since(b),
                _ => 0.0,
            },
            runqueue_wait: match (&w1.me, &w0.me) {
                (Some(a), Some(b)) => a.waited_since(b),
                _ => 0.0,
            },
            rss_kb: w1.me.as_ref().map_or(0, |m| m.rss_kb),
            shard_busy: (w1.busy_ns - w0.busy_ns) as f64 / 1e9 / window_s,
            timer_late_max_ms: Counters::get(&self.counters.timer_late_max_us) as f64 / 1000.0,
            timers_late: Counters::get(&self.counters.timers_late),
            udp_drops: self.own_drops,
            send_errors: Counters::get(&self.counters.send_errors),
            ice_disconnects: Counters::get(&self.counters.ice_disconnects),
        };
        let scenario = Scenario {
            url: cfg.url.clone(),
            codes: self.codes,
            publishers_per_room: cfg.publishers,
            subscribers_per_room: cfg.subscribers,
            audio: cfg.audio && cfg.publishers > 0,
            video: cfg.video_label(),
            max_quality: cfg.max_quality.clone(),
            ramp_per_s: cfg.ramp_per_s,
            settle_s: cfg.settle.as_secs_f64(),
            duration_s: cfg.duration.as_secs_f64(),
            media_threads: cfg.media_threads,
            relay_only: cfg.relay_only,
        };
        LoadReport {
            scenario,
            participants: Participants {
                total,
                publishers: self.n_pub,
                subscribers: total - self.n_pub,
                joined,
                failed: total - joined,
                failures,
            },
            join_ms,
            window_s,
            received,
            published,
            server,
            load,
            kernel_udp_rcvbuf_errors: self.rcvbuf_errors,
            other_cores,
            cpu_busy: w1
                .cpu_busy
                .iter()
                .zip(&w0.cpu_busy)
                .map(|(a, b)| {
                    a.saturating_sub(*b) as f64 / procfs::clock_ticks_per_second() as f64 / window_s
                })
                .collect(),
            problems,
        }
    }
}

/// Every participant (or fake node) holds a WebSocket and sockets of its own: allow as many
/// open files as the hard limit permits. Returns the soft limit then in force (`u64::MAX` when
/// it cannot be read).
pub(crate) fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return u64::MAX;
        }
        if r.rlim_cur < r.rlim_max {
            r.rlim_cur = r.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &r);
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        }
        r.rlim_cur as u64
    }
}

/// A failure reason without per-participant detail, so equal causes group together.
fn short_reason(text: &str) -> String {
    let first = text.lines().next().unwrap_or(text);
    let mut s: String = first.chars().take(120).collect();
    if s.len() < first.len() {
        s.push_str("...");
    }
    s
}
