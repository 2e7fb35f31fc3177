//! `orbita bot`: a WebRTC client on str0m that joins an Orbita room exactly as a browser
//! does, publishes real (pre-encoded) VP8 simulcast video and Opus audio, subscribes to
//! everyone else and reports what it received.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use std::time::Duration;
//! use orbita_bot::{Bot, BotOptions};
//!
//! let alice = Bot::join(BotOptions::new("ws://127.0.0.1:8080/ws", "4821", "alice")).await?;
//! let bob = Bot::join(BotOptions::new("ws://127.0.0.1:8080/ws", "4821", "bob")).await?;
//! let bob_id = bob.participant_id().to_string();
//! let stats = alice
//!     .wait_for(|s| s.received_av_from(&bob_id), Duration::from_secs(10))
//!     .await?;
//! println!("{}", stats.report());
//! # Ok(()) }
//! ```
//!
//! Layout: [`pacer`] (when to send which frame, sans I/O), [`stats`] (what was seen, sans
//! I/O), [`turn`] (a TURN client, sans I/O), [`relay`] (`--relay-only`: picking the relay
//! and allocating on a socket), `peer` (an `Rtc` and its UDP socket, maybe through a relay),
//! `session` (signalling and media logic), `task` (the tokio select loop), [`cli`] (the
//! `orbita bot` command).

pub mod cli;
pub mod media_file;
pub mod pacer;
mod peer;
pub mod relay;
mod session;
pub mod stats;
mod task;
pub mod turn;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use orbita_protocol::{ClientMsg, ErrorCode, ServerMsg, TrackSource, PROTOCOL_VERSION};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

pub use session::LAYER_RIDS;
pub use stats::{
    BotStats, ChatMessage, PcStatus, RelayStatus, RoomEvent, RoomEventKind, TrackStats,
};

use media_file::MediaLibrary;
use peer::PeerSocket;
use session::{Command, Session, Shared};
use stats::Recorder;

/// How long [`Bot::join`] waits for the WebSocket to connect and for `joined`.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How a bot joins and what it publishes.
#[derive(Debug, Clone)]
pub struct BotOptions {
    /// Signalling WebSocket URL, `ws://host:port/ws` (`http://` is accepted as `ws://`).
    pub url: String,
    /// Room join code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Publish the Opus microphone track.
    pub publish_audio: bool,
    /// Publish the VP8 camera track.
    pub publish_video: bool,
    /// Send the camera as three simulcast layers (rids `f`, `h`, `q`) rather than one 720p stream.
    pub simulcast: bool,
    /// Sent as `set_quality` right after joining (`"640x480"`, `"auto"`, ...).
    pub max_quality: Option<String>,
    /// Address the two UDP sockets bind to (and announce as host candidates).
    pub bind_ip: IpAddr,
    /// Reach the server only through the TURN relay of `joined.ice_servers` (the first
    /// `turn:` URL over UDP): each connection allocates a relay and offers only its relayed
    /// address, as a browser with `iceTransportPolicy: "relay"`. [`Bot::join`] fails when the
    /// server offers no relay or the relay refuses the allocation.
    pub relay_only: bool,
    /// The room's host key: join as the call's agent.
    pub key: Option<String>,
    /// Publish the Opus packets of this Ogg Opus file (20 ms frames, looped) instead of the
    /// embedded 440 Hz tone (tests that tell participants apart by their sound).
    pub audio_file: Option<std::path::PathBuf>,
    /// The consent text accepted (its `consent_id` from `GET /api/branding`), for servers
    /// whose organisation asks guests to accept one.
    pub consent: Option<String>,
}

impl Default for BotOptions {
    fn default() -> Self {
        BotOptions {
            url: "ws://127.0.0.1:8080/ws".into(),
            code: String::new(),
            name: "bot".into(),
            publish_audio: true,
            publish_video: true,
            simulcast: true,
            max_quality: None,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            relay_only: false,
            key: None,
            audio_file: None,
            consent: None,
        }
    }
}

impl BotOptions {
    /// Defaults (audio + simulcast video, bound to 127.0.0.1) for this server, room and name.
    pub fn new(url: impl Into<String>, code: impl Into<String>, name: impl Into<String>) -> Self {
        BotOptions {
            url: url.into(),
            code: code.into(),
            name: name.into(),
            ..BotOptions::default()
        }
    }
}

/// The server refused the join (`error` instead of `joined`), e.g. an unknown code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinError {
    /// The server's error code.
    pub code: ErrorCode,
    /// The server's explanation.
    pub message: String,
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The wire name (`unknown_code`), as docs/protocol.md spells it.
        let code = serde_json::to_value(self.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| format!("{:?}", self.code));
        write!(f, "the server refused the join ({code}): {}", self.message)
    }
}

impl std::error::Error for JoinError {}

/// The media the bot publishes, parsed once per process.
fn media() -> anyhow::Result<&'static MediaLibrary> {
    static MEDIA: OnceLock<Result<MediaLibrary, String>> = OnceLock::new();
    MEDIA
        .get_or_init(|| MediaLibrary::embedded().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("embedded media: {e}"))
}

/// A joined bot. Its task runs until [`Bot::leave`], until the server ends the connection,
/// or until the `Bot` is dropped.
pub struct Bot {
    shared: Arc<Shared>,
    commands: mpsc::UnboundedSender<Command>,
    task: Option<JoinHandle<()>>,
    participant_id: String,
    code: String,
    name: String,
}

impl fmt::Debug for Bot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bot")
            .field("participant_id", &self.participant_id)
            .field("code", &self.code)
            .field("name", &self.name)
            .finish()
    }
}

impl Bot {
    /// Connect, join the room and start publishing and subscribing.
    ///
    /// Returns once the server sent `joined`; media flows shortly after (see
    /// [`Bot::wait_for`]). Fails with a [`JoinError`] (downcast the `anyhow::Error`) when the
    /// server answers the join with an `error`, e.g. `unknown_code`. With
    /// [`BotOptions::relay_only`] it first allocates a relay for each connection, and fails
    /// when `joined` offers none or the relay refuses (the error says so, e.g. `401
    /// Unauthorized`).
    pub async fn join(opts: BotOptions) -> anyhow::Result<Bot> {
        let start = Instant::now();
        let embedded = media()?;
        let own;
        let media = match &opts.audio_file {
            Some(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                own = MediaLibrary {
                    layers: embedded.layers.clone(),
                    opus: media_file::read_ogg_opus(&bytes)
                        .with_context(|| format!("parsing {}", path.display()))?,
                };
                &own
            }
            None => embedded,
        };
        let url = match opts.url.strip_prefix("http://") {
            Some(rest) => format!("ws://{rest}"),
            None => opts.url.clone(),
        };

        let (mut ws, _) =
            tokio::time::timeout(JOIN_TIMEOUT, tokio_tungstenite::connect_async(&url))
                .await
                .with_context(|| format!("timed out connecting to {url}"))?
                .with_context(|| format!("connecting to {url}"))?;
        let join = ClientMsg::Join {
            v: PROTOCOL_VERSION,
            code: opts.code.clone(),
            name: opts.name.clone(),
            key: opts.key.clone(),
            consent: opts.consent.clone(),
        };
        ws.send(Message::text(serde_json::to_string(&join)?))
            .await
            .context("sending join")?;

        let joined = tokio::time::timeout(JOIN_TIMEOUT, async {
            loop {
                let text = match ws.next().await {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(f))) => {
                        bail!("the server closed the connection before `joined`: {f:?}")
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => bail!("WebSocket error before `joined`: {e}"),
                    None => bail!("the server closed the connection before `joined`"),
                };
                match serde_json::from_str::<ServerMsg>(text.as_str()) {
                    Ok(msg @ ServerMsg::Joined { .. }) => return Ok(msg),
                    Ok(ServerMsg::Error { code, message }) => {
                        return Err(JoinError { code, message }.into())
                    }
                    Ok(ServerMsg::ServerShutdown { reason }) => {
                        bail!("the server is shutting down: {reason}")
                    }
                    Ok(other) => tracing::debug!("bot: ignoring {other:?} before `joined`"),
                    Err(e) => bail!("unparseable message before `joined` ({e}): {text}"),
                }
            }
        })
        .await
        .context("timed out waiting for `joined`")??;

        let ServerMsg::Joined {
            participant_id,
            code,
            participants,
            ice_servers,
            recording,
            ..
        } = joined
        else {
            unreachable!("only `joined` leaves the loop");
        };

        let publishes = opts.publish_audio || opts.publish_video;
        let (pub_socket, sub_socket) = if opts.relay_only {
            // One allocation per connection (each its own socket), as a browser makes.
            let relay = relay::pick_relay(&ice_servers)?;
            let server = relay::resolve(&relay, opts.bind_ip).await?;
            let allocate = || async {
                let (socket, client) =
                    relay::bind_and_allocate(opts.bind_ip, &relay, server).await?;
                anyhow::Ok(PeerSocket {
                    socket,
                    relay: Some((client, relay.url.clone())),
                })
            };
            let (publisher, subscriber) = tokio::try_join!(
                async {
                    match publishes {
                        true => allocate().await.map(Some),
                        false => Ok(None),
                    }
                },
                allocate()
            )?;
            (publisher, subscriber)
        } else {
            let bind = || async {
                UdpSocket::bind((opts.bind_ip, 0))
                    .await
                    .map(PeerSocket::direct)
                    .with_context(|| format!("binding a UDP socket on {}", opts.bind_ip))
            };
            let publisher = match publishes {
                true => Some(bind().await?),
                false => None,
            };
            (publisher, bind().await?)
        };

        let mut recorder = Recorder::new(start, &opts.name, &code);
        recorder.joined(&participant_id, &code, participants);
        if recording == orbita_protocol::RecordingState::On {
            recorder.recording(start, recording);
        }
        let shared = Arc::new(Shared::new(recorder));

        let session = Session::new(&opts, shared.clone(), media, pub_socket, sub_socket)?;
        let (commands, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(task::run(session, ws, rx, shared.clone()));

        Ok(Bot {
            shared,
            commands,
            task: Some(task),
            participant_id,
            code,
            name: opts.name,
        })
    }

    /// The bot's participant id.
    pub fn participant_id(&self) -> &str {
        &self.participant_id
    }

    /// The room code (as the server confirmed it).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A snapshot of everything the bot knows now.
    pub fn stats(&self) -> BotStats {
        self.shared.rec().snapshot(Instant::now())
    }

    /// The chat messages received so far.
    pub fn chat_messages(&self) -> Vec<ChatMessage> {
        self.shared.rec().chat_messages()
    }

    /// Whether the bot's task still runs.
    pub fn is_running(&self) -> bool {
        self.shared.rec().running()
    }

    fn command(&self, cmd: Command) -> anyhow::Result<()> {
        self.commands
            .send(cmd)
            .map_err(|_| anyhow::anyhow!("the bot has stopped"))
    }

    /// Send any protocol message.
    pub fn send(&self, msg: ClientMsg) -> anyhow::Result<()> {
        self.command(Command::Send(msg))
    }

    /// Send `text` on the WebSocket as-is (for tests of the server's input handling).
    pub fn send_raw(&self, text: impl Into<String>) -> anyhow::Result<()> {
        self.command(Command::Raw(text.into()))
    }

    /// Ask for at most this resolution on every video track (`"640x480"`, `"auto"`, ...).
    pub fn set_quality(&self, max: &str) -> anyhow::Result<()> {
        self.send(ClientMsg::SetQuality {
            max: max.to_string(),
            track_id: None,
        })
    }

    /// Ask for at most this resolution on one track.
    pub fn set_track_quality(&self, track_id: &str, max: &str) -> anyhow::Result<()> {
        self.send(ClientMsg::SetQuality {
            max: max.to_string(),
            track_id: Some(track_id.to_string()),
        })
    }

    /// Send a chat message to the room.
    pub fn send_chat(&self, text: &str) -> anyhow::Result<()> {
        self.send(ClientMsg::Chat {
            text: text.to_string(),
            to: None,
        })
    }

    /// Send a chat message to one participant.
    pub fn send_private_chat(&self, to: &str, text: &str) -> anyhow::Result<()> {
        self.send(ClientMsg::Chat {
            text: text.to_string(),
            to: Some(to.to_string()),
        })
    }

    /// Mute or unmute one of the bot's sources: sends `mute` and stops (or resumes, from a
    /// keyframe) sending that media.
    pub fn set_muted(&self, source: TrackSource, muted: bool) -> anyhow::Result<()> {
        self.command(Command::SetMuted(source, muted))
    }

    /// Wait until `cond` holds for the stats, polling every 20 ms. Fails after `timeout`, or
    /// as soon as the bot stops with the condition unmet; the error shows the last report.
    pub async fn wait_for<F>(&self, cond: F, timeout: Duration) -> anyhow::Result<BotStats>
    where
        F: Fn(&BotStats) -> bool,
    {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if cond(&stats) {
                return Ok(stats);
            }
            if !stats.running {
                bail!(
                    "bot {:?} stopped ({}) before the condition held:\n{}",
                    self.name,
                    stats.ended.as_deref().unwrap_or("?"),
                    stats.report()
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "bot {:?}: condition not met within {:?}:\n{}",
                    self.name,
                    timeout,
                    stats.report()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until whole audio and video frames (with a keyframe) arrived from `participant_id`.
    pub async fn wait_for_media_from(
        &self,
        participant_id: &str,
        timeout: Duration,
    ) -> anyhow::Result<BotStats> {
        self.wait_for(|s| s.received_av_from(participant_id), timeout)
            .await
    }

    /// Leave: send `leave`, wait (up to 3 s) for `left` or the connection to close, close
    /// both peer connections and stop the task. Returns the final stats.
    pub async fn leave(&mut self) -> anyhow::Result<BotStats> {
        let Some(mut task) = self.task.take() else {
            return Ok(self.stats());
        };
        let _ = self.commands.send(Command::Leave);
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
            self.shared.rec().ended("left (task aborted)");
        }
        Ok(self.stats())
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
