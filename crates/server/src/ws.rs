//! WebSocket signalling (`/ws`): one task per connection.
//!
//! A connection reads client messages, checks them (rate, size, JSON, state), answers `ping`
//! and `leave` itself, turns `join` into a [`MediaBackend::join`](crate::backend::MediaBackend)
//! and hands everything else to the participant. Messages the SFU sends for the participant
//! arrive on a bounded channel and are written to the socket. Bad input is answered with an
//! `error` message; it never closes the connection or touches the room.
//!
//! The connection closes when the client closes it or sends `leave`, when the SFU drops the
//! participant (its channel ends), or at shutdown. Closing drops the participant, which leaves
//! the room, and then its [`Seat`], which updates the room's participant count.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{close_code, CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use orbita_coordinator::accounts::http::client_addr;
use orbita_protocol::{
    parse_client_msg, CallFeatures, ClientMsg, ErrorCode, LocationRefusal, MapPreview,
    PointerAction, Position, QualityReport, QualitySource, Role, ServerMsg, SharedLocation,
    TrackSource, PROTOCOL_VERSION,
};
use tokio::sync::{broadcast, mpsc, watch};

use crate::backend::MediaParticipant;
use crate::call_files::Refused;
use crate::call_log::CallLog;
use crate::chat_limit::ChatLimiter;
use crate::config::TRANSPORT_MAX_MESSAGE_BYTES;
use crate::connections::ConnectionGuard;
use crate::http::ApiError;
use crate::recordings::StartError;
use crate::room_bus::BusMsg;
use crate::rooms::{EnterError, Seat, PLAIN_ROOM_APP};
use crate::serve::SHUTDOWN_REASON;
use crate::state::AppState;
use orbita_coordinator::logic::TokenBucket;

/// Messages the SFU may queue for one participant before it counts as a slow consumer.
pub const SINK_CAPACITY: usize = 256;

/// How long a connection may stay open without joining a room: then it is closed (1008), so a
/// stranger cannot hold connections by opening them and saying nothing.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest display name, in characters (after trimming).
pub const MAX_NAME_CHARS: usize = 64;

/// Before `join`, the largest message a connection may send (a `join` is well under 1 KiB):
/// a stranger's messages stay small until they are in a room.
pub const PRE_JOIN_MAX_MESSAGE_BYTES: usize = 4096;

/// The largest message a signalling connection reads at all (larger: the connection is
/// dropped with close code 1009): four times `max_message_bytes`, at least 256 KiB, at most
/// [`TRANSPORT_MAX_MESSAGE_BYTES`]. A message somewhat over the limit still gets a
/// `too_large` answer, and no connection makes the server hold more than this.
pub fn transport_max_message_bytes(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(4)
        .clamp(256 << 10, TRANSPORT_MAX_MESSAGE_BYTES)
}

/// Location messages (`location`, `location_request`, `location_declined`) one connection may
/// send.
pub const MAX_LOCATION_MESSAGES: u32 = 100;
/// The shortest time between two `location`s of a participant.
pub const LOCATION_INTERVAL: Duration = Duration::from_secs(1);

/// How long a closing connection waits for the client's close frame.
const CLOSE_HANDSHAKE_WAIT: Duration = Duration::from_secs(1);

/// `GET /ws`: upgrade to a signalling connection.
pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let client = client_addr(peer.ip(), &headers, state.settings.trust_proxy_headers);
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::new(
                rejection.status(),
                "websocket_required",
                format!("/ws is the signalling WebSocket: {}", rejection.body_text()),
            )
            .into_response()
        }
    };
    let Some(guard) = state.connections.open() else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is shutting down",
        )
        .into_response();
    };
    let transport_max = transport_max_message_bytes(state.settings.max_message_bytes);
    let user_agent = headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(512)
        .collect();
    // The browser's languages: a shared location's address in them.
    let language = headers
        .get(axum::http::header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 200)
        .map(str::to_string);
    upgrade
        .max_message_size(transport_max)
        .max_frame_size(transport_max)
        .on_upgrade(move |socket| {
            let mut connection = Connection::new(state, guard, client, user_agent);
            connection.language = language;
            connection.run(socket)
        })
}

/// A code as shown in messages: long junk is cut short.
pub(crate) fn shown(code: &str) -> String {
    const MAX: usize = 24;
    match code.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &code[..cut]),
        None => code.to_string(),
    }
}

/// A participant's side of a joined connection. Fields drop in order: the participant leaves
/// the room before its seat is given back.
struct Joined {
    participant: Box<dyn MediaParticipant>,
    seat: Seat,
    events: mpsc::Receiver<ServerMsg>,
    /// The participant's role (the host key makes the agent).
    role: Role,
    /// Sent right after the SFU's `joined` (a recording the policy wanted could not start).
    after_joined: Option<ServerMsg>,
    /// Sent right after the SFU's `joined`: the call's id and the survey token.
    call_info: Option<ServerMsg>,
    /// Told when the participant leaves (the call's record).
    call_log: Arc<CallLog>,
    /// When the participant's last `stats` was taken.
    last_stats: Option<Instant>,
    /// How many `devices` the participant sent.
    devices_sent: u32,
    /// What the participant may do (the switches of the call's app for their role, as they
    /// were when they joined; told in `joined`).
    features: CallFeatures,
    /// The call's messages from outside the SFU.
    bus: broadcast::Receiver<Arc<BusMsg>>,
    /// The participant's display name.
    name: String,
    /// The call's id.
    call_id: String,
    /// Locations shared, requested and declined by the participant, and when the last
    /// location was.
    location_messages: u32,
    last_location: Option<Instant>,
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.call_log
            .left(self.seat.code(), &self.participant.id().to_string());
    }
}

/// What to do after a client message.
enum Action {
    /// Nothing to send.
    None,
    /// Send this to the client.
    Reply(ServerMsg),
    /// Wait, then send this (a wrong code, answered late: [`crate::guesses`]).
    Delayed(Duration, ServerMsg),
    /// Send these, in order.
    Replies(Vec<ServerMsg>),
    /// Leave the room, send `left` and close.
    Leave,
}

/// What woke the connection loop.
enum Step {
    /// A WebSocket message (or the end of the socket).
    Incoming(Option<Result<Message, axum::Error>>),
    /// A message from the SFU, or `None` when the SFU dropped the participant.
    Event(Option<ServerMsg>),
    /// A message for the call from outside the SFU (a finished file).
    Bus(Result<Arc<BusMsg>, broadcast::error::RecvError>),
    /// Shutdown asks the connection to close.
    Close,
}

/// Why the connection loop ended.
enum End {
    /// The client closed or the socket failed: nothing more to send.
    ClientGone,
    /// Close with this code and reason.
    Close(u16, &'static str),
}

/// One signalling connection.
struct Connection {
    state: AppState,
    /// The client's address (code-guessing lock-out).
    peer: IpAddr,
    bucket: TokenBucket,
    /// The participant's chat budget (on the same clock as `bucket`).
    chat: ChatLimiter,
    /// When the connection opened: the bucket's time is milliseconds since then.
    opened: Instant,
    joined: Option<Joined>,
    /// The browser's `User-Agent` (the call's record).
    user_agent: String,
    /// The browser's `Accept-Language` (a shared location's address).
    language: Option<String>,
    close_requested: watch::Receiver<bool>,
    /// Whether `server_shutdown` was sent (so shutdown does not send it twice).
    told_shutdown: bool,
    _guard: ConnectionGuard,
}

impl Connection {
    fn new(
        state: AppState,
        guard: ConnectionGuard,
        peer: IpAddr,
        user_agent: String,
    ) -> Connection {
        let rate = state.settings.messages_per_second;
        let s = &state.settings;
        Connection {
            peer,
            bucket: TokenBucket::new(f64::from(rate), f64::from(rate.saturating_mul(2).max(1)), 0),
            chat: ChatLimiter::new(s.chat_per_second, s.chat_burst, s.chat_bytes_per_second, 0),
            opened: Instant::now(),
            joined: None,
            user_agent,
            language: None,
            close_requested: state.connections.close_requested(),
            told_shutdown: false,
            state,
            _guard: guard,
        }
    }

    async fn run(mut self, mut socket: WebSocket) {
        tracing::debug!("signalling connection opened");
        let end = self.serve(&mut socket).await;
        // Leave the room before saying goodbye, so the count is right when the client looks.
        let participant = self.joined.take().map(|j| j.participant.id());
        if let End::Close(code, reason) = end {
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            if socket.send(Message::Close(Some(frame))).await.is_ok() {
                // Let the client answer the close so it sees a clean close, not a reset.
                let _ = tokio::time::timeout(CLOSE_HANDSHAKE_WAIT, async {
                    while let Some(Ok(msg)) = socket.recv().await {
                        if matches!(msg, Message::Close(_)) {
                            break;
                        }
                    }
                })
                .await;
            }
        }
        tracing::debug!(participant, "signalling connection closed");
    }

    /// The connection's main loop.
    async fn serve(&mut self, socket: &mut WebSocket) -> End {
        let join_by = tokio::time::Instant::now() + self.state.settings.join_timeout;
        loop {
            let step = tokio::select! {
                incoming = socket.recv() => Step::Incoming(incoming),
                _ = tokio::time::sleep_until(join_by), if self.joined.is_none() => {
                    return End::Close(close_code::POLICY, "no join in time");
                }
                step = next_for_call(&mut self.joined) => step,
                _ = wait_true(&mut self.close_requested) => Step::Close,
            };
            let action = match step {
                Step::Incoming(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => {
                    return End::ClientGone
                }
                Step::Incoming(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Step::Incoming(Some(Ok(Message::Binary(_)))) => {
                    self.admit(0).unwrap_or_else(|| {
                        Action::Reply(ServerMsg::error(
                            ErrorCode::BadMessage,
                            "binary messages are not part of the protocol; send JSON text",
                        ))
                    })
                }
                Step::Incoming(Some(Ok(Message::Text(text)))) => match self.admit(text.len()) {
                    Some(refusal) => refusal,
                    None => self.on_text(text.as_str()),
                },
                Step::Event(Some(msg)) => {
                    self.told_shutdown |= matches!(msg, ServerMsg::ServerShutdown { .. });
                    self.note_own_quality(&msg);
                    let mut msg = msg;
                    if let (ServerMsg::Joined { features, .. }, Some(joined)) =
                        (&mut msg, self.joined.as_ref())
                    {
                        *features = joined.features;
                    }
                    let after: Vec<ServerMsg> = match (&msg, self.joined.as_mut()) {
                        (ServerMsg::Joined { .. }, Some(joined)) => joined
                            .call_info
                            .take()
                            .into_iter()
                            .chain(joined.after_joined.take())
                            .collect(),
                        _ => Vec::new(),
                    };
                    if after.is_empty() {
                        Action::Reply(msg)
                    } else {
                        Action::Replies(std::iter::once(msg).chain(after).collect())
                    }
                }
                Step::Bus(Ok(message)) => match &self.joined {
                    Some(joined) if message.is_for(&joined.participant.id()) => {
                        Action::Reply(message.msg.clone())
                    }
                    _ => Action::None,
                },
                Step::Bus(Err(broadcast::error::RecvError::Lagged(lost))) => {
                    tracing::warn!(lost, "a slow connection lost call messages");
                    Action::None
                }
                Step::Bus(Err(broadcast::error::RecvError::Closed)) => {
                    // The call ended; the SFU's end of the room follows.
                    if let Some(joined) = &mut self.joined {
                        joined.bus = broadcast::channel(1).1;
                    }
                    Action::None
                }
                // The SFU dropped the participant (room closed, ICE failed, shutdown).
                Step::Event(None) if self.told_shutdown => {
                    return End::Close(close_code::AWAY, SHUTDOWN_REASON)
                }
                Step::Event(None) => {
                    return End::Close(close_code::NORMAL, "removed from the room")
                }
                Step::Close => return self.say_goodbye(socket).await,
            };
            match action {
                Action::None => {}
                Action::Reply(msg) => {
                    if send(socket, &msg).await.is_err() {
                        return End::ClientGone;
                    }
                }
                Action::Replies(msgs) => {
                    for msg in &msgs {
                        if send(socket, msg).await.is_err() {
                            return End::ClientGone;
                        }
                    }
                }
                Action::Delayed(delay, msg) => {
                    tokio::time::sleep(delay).await;
                    if send(socket, &msg).await.is_err() {
                        return End::ClientGone;
                    }
                }
                Action::Leave => {
                    // Dropping the participant leaves the room; then say so.
                    self.joined = None;
                    if send(socket, &ServerMsg::Left).await.is_err() {
                        return End::ClientGone;
                    }
                    return End::Close(close_code::NORMAL, "left");
                }
            }
        }
    }

    /// At shutdown: pass on what the SFU queued, make sure the client heard
    /// `server_shutdown`, and close.
    async fn say_goodbye(&mut self, socket: &mut WebSocket) -> End {
        if let Some(joined) = &mut self.joined {
            while let Ok(msg) = joined.events.try_recv() {
                self.told_shutdown |= matches!(msg, ServerMsg::ServerShutdown { .. });
                if send(socket, &msg).await.is_err() {
                    return End::ClientGone;
                }
            }
        }
        if !self.told_shutdown {
            let msg = ServerMsg::ServerShutdown {
                reason: SHUTDOWN_REASON.into(),
            };
            if send(socket, &msg).await.is_err() {
                return End::ClientGone;
            }
            self.told_shutdown = true;
        }
        End::Close(close_code::AWAY, SHUTDOWN_REASON)
    }

    /// Milliseconds since the connection opened (the rate limits' clock).
    fn now(&self) -> i64 {
        i64::try_from(self.opened.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// Rate and size checks every data message passes first; `Some` is the refusal.
    fn admit(&mut self, bytes: usize) -> Option<Action> {
        let now = self.now();
        if self.bucket.take(now).is_err() {
            let rate = self.state.settings.messages_per_second;
            return Some(Action::Reply(ServerMsg::error(
                ErrorCode::RateLimited,
                format!("more than {rate} messages per second; message dropped"),
            )));
        }
        let limit = self.state.settings.max_message_bytes;
        if self.joined.is_none() && bytes > PRE_JOIN_MAX_MESSAGE_BYTES.min(limit) {
            let limit = PRE_JOIN_MAX_MESSAGE_BYTES.min(limit);
            return Some(Action::Reply(ServerMsg::error(
                ErrorCode::TooLarge,
                format!("message is {bytes} bytes; before `join` the limit is {limit}"),
            )));
        }
        (bytes > limit).then(|| {
            Action::Reply(ServerMsg::error(
                ErrorCode::TooLarge,
                format!("message is {bytes} bytes; the limit is {limit}"),
            ))
        })
    }

    /// Handle one text message that passed [`admit`](Self::admit).
    fn on_text(&mut self, text: &str) -> Action {
        let msg = match parse_client_msg(text) {
            Ok(msg) => msg,
            Err(e) => return Action::Reply(ServerMsg::error(e.code, e.message)),
        };
        let Some(joined) = &self.joined else {
            return match msg {
                ClientMsg::Ping { id } => Action::Reply(ServerMsg::Pong { id }),
                ClientMsg::Join {
                    v,
                    code,
                    name,
                    key,
                    consent,
                } => self.join(v, &code, &name, key.as_deref(), consent.as_deref()),
                other => Action::Reply(ServerMsg::error(
                    ErrorCode::OutOfOrder,
                    format!("`{}` before `join`; join a room first", type_name(&other)),
                )),
            };
        };
        let max_chat_chars = self.state.settings.max_chat_chars;
        match msg {
            ClientMsg::Ping { id } => Action::Reply(ServerMsg::Pong { id }),
            ClientMsg::Join { .. } => Action::Reply(ServerMsg::error(
                ErrorCode::OutOfOrder,
                format!(
                    "already joined room {}; one join per connection",
                    joined.seat.code()
                ),
            )),
            ClientMsg::Leave => Action::Leave,
            ClientMsg::Offer { tracks, .. }
                if tracks
                    .iter()
                    .any(|t| !joined.features.may_publish(t.source)) =>
            {
                let off = tracks
                    .iter()
                    .find(|t| !joined.features.may_publish(t.source))
                    .map_or("that", |t| source_name(t.source));
                Action::Reply(switched_off(joined.role, &format!("publishing a {off}")))
            }
            ClientMsg::Chat { .. } if !joined.features.chat => {
                Action::Reply(switched_off(joined.role, "chat"))
            }
            ClientMsg::FileUpload { .. } if !joined.features.files => {
                Action::Reply(switched_off(joined.role, "sending files"))
            }
            ClientMsg::FileUpload {
                name,
                size,
                to,
                screenshot,
            } => self.on_file_upload(&name, size, to, screenshot),
            ClientMsg::Location {
                lat,
                lon,
                accuracy_m,
                to,
            } => self.on_location(
                Position {
                    lat,
                    lon,
                    accuracy_m,
                },
                to,
            ),
            ClientMsg::LocationRequest { to } => self.on_location_request(to),
            ClientMsg::Pointer {
                to,
                source,
                action,
                x,
                y,
            } => self.on_pointer(to, source, action, x, y),
            ClientMsg::LocationDeclined { to, reason } => self.on_location_declined(to, reason),
            ClientMsg::Record { .. } if joined.role == Role::Agent && !joined.features.record => {
                Action::Reply(switched_off(joined.role, "recording by hand"))
            }
            ClientMsg::Record { on } => self.on_record(on),
            ClientMsg::Stats(report) => self.on_stats(report),
            ClientMsg::Devices { camera, microphone } => self.on_devices(camera, microphone),
            ClientMsg::Chat { text, .. } if text.chars().count() > max_chat_chars => {
                Action::Reply(ServerMsg::error(
                    ErrorCode::TooLarge,
                    format!(
                        "chat text is {} characters; the limit is {max_chat_chars}",
                        text.chars().count()
                    ),
                ))
            }
            ClientMsg::Chat { text, to } => {
                // Per-participant chat budget: a flood is dropped here, before it reaches the
                // other participants' queues; only the sender is told.
                let now = self.now();
                if let Err(refused) = self.chat.admit(text.len(), now) {
                    self.state
                        .chat_dropped
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Action::Reply(ServerMsg::error(
                        ErrorCode::RateLimited,
                        refused.to_string(),
                    ));
                }
                if to.is_none() {
                    // What everyone read goes into the call's record.
                    self.state.call_log.chat(
                        joined.seat.code(),
                        &joined.participant.id().to_string(),
                        &text,
                    );
                }
                joined.participant.handle(ClientMsg::Chat { text, to });
                Action::None
            }
            msg => {
                joined.participant.handle(msg);
                Action::None
            }
        }
    }

    /// The server's view of this participant's connection (`quality` about themself) goes
    /// into the call's record.
    fn note_own_quality(&self, msg: &ServerMsg) {
        let ServerMsg::Quality {
            participant,
            source: QualitySource::Server,
            report,
        } = msg
        else {
            return;
        };
        if let Some(joined) = &self.joined {
            if *participant == joined.participant.id() {
                self.state.call_log.quality(
                    joined.seat.code(),
                    participant,
                    QualitySource::Server,
                    report,
                );
            }
        }
    }

    /// `file_upload`: where to upload a file for the call's chat, or why not.
    fn on_file_upload(
        &mut self,
        name: &str,
        size: u64,
        to: Option<String>,
        screenshot: bool,
    ) -> Action {
        let Some(joined) = &self.joined else {
            return Action::None;
        };
        let me = joined.participant.id();
        let started = self
            .state
            .files
            .start(joined.seat.code(), &me, &joined.name, name, size, to);
        let started = started.and_then(|id| {
            if screenshot {
                self.state
                    .files
                    .mark_screenshot(&id)
                    .map_err(|e| Refused::Io(e.to_string()))?;
            }
            Ok(id)
        });
        match started {
            Ok(id) => Action::Reply(ServerMsg::FileUpload {
                url: format!("/api/uploads/{id}"),
                id,
                name: name.to_string(),
                size,
            }),
            Err(refused) => {
                let code = match refused {
                    Refused::TooLarge { .. } => ErrorCode::TooLarge,
                    Refused::QuotaFull { .. } => ErrorCode::QuotaFull,
                    Refused::TooMany | Refused::TooManyOpen => ErrorCode::RateLimited,
                    Refused::Empty | Refused::BadName => ErrorCode::InvalidValue,
                    Refused::Off | Refused::NoCall => ErrorCode::NotAllowed,
                    // A disk that cannot take the file: as full, for the person.
                    Refused::Io(_) => ErrorCode::QuotaFull,
                };
                Action::Reply(ServerMsg::error(code, refused.to_string()))
            }
        }
    }

    /// Counts one of the participant's location messages: the refusal past
    /// [`MAX_LOCATION_MESSAGES`].
    fn count_location_message(&mut self) -> Option<Action> {
        let joined = self.joined.as_mut()?;
        if joined.location_messages >= MAX_LOCATION_MESSAGES {
            return Some(Action::Reply(ServerMsg::error(
                ErrorCode::RateLimited,
                format!("at most {MAX_LOCATION_MESSAGES} location messages a connection"),
            )));
        }
        joined.location_messages += 1;
        None
    }

    /// `location`: checked, then (once the address and map tile are known, when the server
    /// has those services) told to the call, and kept as the call's location.
    fn on_location(&mut self, position: Position, to: Option<String>) -> Action {
        if let Err(e) = position.check() {
            return Action::Reply(ServerMsg::error(ErrorCode::InvalidValue, e));
        }
        let now = Instant::now();
        if let Some(joined) = &self.joined {
            if joined
                .last_location
                .is_some_and(|t| now.duration_since(t) < LOCATION_INTERVAL)
            {
                return Action::Reply(ServerMsg::error(
                    ErrorCode::RateLimited,
                    "one location a second at most",
                ));
            }
        }
        if let Some(refused) = self.count_location_message() {
            return refused;
        }
        let Some(joined) = self.joined.as_mut() else {
            return Action::None;
        };
        joined.last_location = Some(now);
        let state = self.state.clone();
        let language = self.language.clone();
        let (code, me, name, call_id) = (
            joined.seat.code().to_string(),
            joined.participant.id(),
            joined.name.clone(),
            joined.call_id.clone(),
        );
        tokio::spawn(async move {
            let Position {
                lat,
                lon,
                accuracy_m,
            } = position;
            let (address, tile) = tokio::join!(
                state.geo.address(lat, lon, language),
                state.geo.tile(lat, lon)
            );
            let files = Arc::clone(&state.files);
            let preview = match tile {
                Some((bytes, x, y)) => {
                    let (code, me, name) = (code.clone(), me.clone(), name.clone());
                    let file_name = if bytes.starts_with(b"\x89PNG") {
                        "map.png"
                    } else {
                        "map.jpg"
                    };
                    tokio::task::spawn_blocking(move || {
                        files.store(&code, &me, &name, file_name, &bytes)
                    })
                    .await
                    .ok()
                    .flatten()
                    .and_then(|meta| meta.shared())
                    .map(|file| MapPreview { file, x, y })
                }
                None => None,
            };
            let location = SharedLocation {
                lat,
                lon,
                accuracy_m,
                map_url: crate::call_locations::map_url(lat, lon),
                address,
                preview,
            };
            state.files.set_location(&code, position);
            if to.is_none() {
                state.call_log.chat(
                    &code,
                    &me,
                    &format!(
                        "[location] {lat:.6}, {lon:.6} ±{accuracy_m:.0} m{} {}",
                        location
                            .address
                            .as_ref()
                            .map(|a| format!(" — {a}"))
                            .unwrap_or_default(),
                        location.map_url
                    ),
                );
            }
            state.bus.send(
                &call_id,
                BusMsg {
                    from: me.clone(),
                    echo: true,
                    to: to.clone(),
                    msg: ServerMsg::Location {
                        from: me,
                        name,
                        location: Box::new(location),
                        private: to.is_some(),
                        ts: crate::recording_store::now_ms(),
                    },
                },
            );
        });
        Action::None
    }

    /// `pointer`: passed on to the participant whose video it is on (the message rate limit
    /// bounds it).
    fn on_pointer(
        &mut self,
        to: String,
        source: TrackSource,
        action: PointerAction,
        x: f64,
        y: f64,
    ) -> Action {
        let Some(joined) = &self.joined else {
            return Action::None;
        };
        if !(x.is_finite() && y.is_finite() && (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y))
        {
            return Action::Reply(ServerMsg::error(
                ErrorCode::InvalidValue,
                "a pointer's x and y are fractions of the frame, 0 to 1",
            ));
        }
        let me = joined.participant.id();
        if to == me {
            return Action::Reply(ServerMsg::error(
                ErrorCode::InvalidValue,
                "point at someone else's video",
            ));
        }
        self.tell(to, |from, _| ServerMsg::Pointer {
            from,
            source,
            action,
            x,
            y,
        });
        Action::None
    }

    /// `location_request`: the agent asks a participant for their location.
    fn on_location_request(&mut self, to: String) -> Action {
        match &self.joined {
            Some(joined) if joined.role != Role::Agent => {
                return Action::Reply(ServerMsg::error(
                    ErrorCode::NotAllowed,
                    "only the call's agent may ask for a location",
                ))
            }
            Some(joined) if joined.participant.id() == to => {
                return Action::Reply(ServerMsg::error(
                    ErrorCode::InvalidValue,
                    "ask someone else for their location",
                ))
            }
            Some(_) => {}
            None => return Action::None,
        }
        if let Some(refused) = self.count_location_message() {
            return refused;
        }
        self.tell(to, |from, name| ServerMsg::LocationRequest { from, name });
        Action::None
    }

    /// Tells participant `to` of the call (only them) what `msg` makes of our id and name.
    fn tell(&self, to: String, msg: impl FnOnce(String, String) -> ServerMsg) {
        let Some(joined) = &self.joined else { return };
        let me = joined.participant.id();
        self.state.bus.send(
            &joined.call_id,
            BusMsg {
                from: me.clone(),
                echo: false,
                to: Some(to),
                msg: msg(me, joined.name.clone()),
            },
        );
    }

    /// `location_declined`: the answer to a request, without the location.
    fn on_location_declined(&mut self, to: String, reason: LocationRefusal) -> Action {
        if let Some(refused) = self.count_location_message() {
            return refused;
        }
        self.tell(to, |from, name| ServerMsg::LocationDeclined {
            from,
            name,
            reason,
        });
        Action::None
    }

    /// `record`: the agent starts or stops recording the call.
    fn on_record(&mut self, on: bool) -> Action {
        let Some(joined) = &self.joined else {
            return Action::None;
        };
        if joined.role != Role::Agent {
            return Action::Reply(ServerMsg::error(
                ErrorCode::NotAllowed,
                "only the call's agent may start or stop recording",
            ));
        }
        let (code, room) = (joined.seat.code().to_string(), joined.seat.room());
        let recordings = &self.state.recordings;
        if !on {
            recordings.stop(&code);
            return Action::None;
        }
        let owner = self.state.registry.get(&code).and_then(|r| r.owner);
        match recordings.start(&code, room, owner) {
            // The SFU tells everyone (`recording`).
            Ok(_) => Action::None,
            Err(e) => Action::Reply(recording_refused(&e)),
        }
    }

    /// Check a `join` and enter the room. The SFU answers with `joined` through the sink.
    fn join(
        &mut self,
        v: u32,
        code: &str,
        name: &str,
        key: Option<&str>,
        consent: Option<&str>,
    ) -> Action {
        let refuse =
            |code: ErrorCode, message: String| Action::Reply(ServerMsg::error(code, message));
        if self.state.connections.is_refusing() {
            return refuse(ErrorCode::Unavailable, "the server is shutting down".into());
        }
        if v != PROTOCOL_VERSION {
            return refuse(
                ErrorCode::UnsupportedVersion,
                format!(
                    "protocol version {v} is not supported; this server speaks {PROTOCOL_VERSION}"
                ),
            );
        }
        let name = name.trim();
        let chars = name.chars().count();
        if !(1..=MAX_NAME_CHARS).contains(&chars) || name.chars().any(char::is_control) {
            return refuse(
                ErrorCode::InvalidValue,
                format!("name must be 1 to {MAX_NAME_CHARS} characters without control characters"),
            );
        }
        // Asked of every guest before the code is looked at, so it tells nothing about codes.
        let consent_id = self.state.call_settings.consent_id();
        if let Some(id) = &consent_id {
            if key.is_none() && consent != Some(id.as_str()) {
                return refuse(
                    ErrorCode::ConsentRequired,
                    "accept the consent text first (GET /api/branding: join with its consent_id)"
                        .into(),
                );
            }
        }
        let consent = consent_id.filter(|id| consent == Some(id.as_str()));
        let code = code.trim();
        let registry = &self.state.registry;
        let entered = self.state.guesses.attempt(
            self.peer,
            || registry.enter(code),
            |entered| matches!(entered, Err(EnterError::UnknownCode)),
        );
        let (entered, delay) = match entered {
            Ok(entered) => entered,
            Err(locked) => {
                return refuse(
                    ErrorCode::RateLimited,
                    crate::guesses::locked_out_message(locked.retry_after_secs),
                )
            }
        };
        let seat = match entered {
            Ok(seat) => seat,
            Err(EnterError::UnknownCode) => {
                // Held back from the third wrong code on (right codes never wait).
                return Action::Delayed(
                    delay,
                    ServerMsg::error(
                        ErrorCode::UnknownCode,
                        format!("no room has code {}", shown(code)),
                    ),
                );
            }
            Err(EnterError::Full { max }) => {
                return refuse(
                    ErrorCode::RoomFull,
                    format!("room {code} is full ({max} participants)"),
                )
            }
        };
        let role = match key {
            // The code is right (the seat is taken), so this tells nothing about codes.
            Some(key) if !registry.check_host_key(code, key) => {
                return refuse(
                    ErrorCode::InvalidValue,
                    "the host key is not this room's; join without it as a guest".into(),
                );
            }
            Some(_) => Role::Agent,
            None => Role::Customer,
        };
        let (sink, events) = mpsc::channel(SINK_CAPACITY);
        let participant = self.state.backend.join(
            seat.room(),
            name.to_string(),
            role,
            self.state.settings.limits(),
            sink,
        );
        tracing::info!(code, participant = participant.id(), ?role, "joined");
        let info = registry.get(code);
        let (wanted, owner) = info
            .as_ref()
            .map_or((false, None), |r| (r.record, r.owner.clone()));
        let role_name = match role {
            Role::Agent => "agent",
            Role::Customer => "customer",
            Role::Participant => "participant",
        };
        let app = info.as_ref().map_or(PLAIN_ROOM_APP, |r| r.app.as_str());
        let features = self.state.call_settings.features(app, role);
        let (call_id, token) = self.state.call_log.joined(
            code,
            app,
            owner.clone(),
            &participant.id().to_string(),
            name,
            role_name,
            &self.user_agent,
            consent,
        );
        // The call's entry (its key, its place, its bus's end) is kept even with files off;
        // the key is told only when files are on.
        let files_key = self.state.files.joined(code, &call_id);
        let files_key = (self.state.files.max_file_bytes() > 0).then_some(files_key);
        let bus = self.state.bus.subscribe(&call_id);
        let call_id_kept = call_id.clone();
        let recordings = &self.state.recordings;
        let refused =
            if recordings.records_from_the_start(wanted) && registry.claim_auto_record(code) {
                recordings.start(code, seat.room(), owner).err()
            } else {
                None
            };
        self.joined = Some(Joined {
            participant,
            seat,
            events,
            role,
            // The agent hears why the call is not recorded (everyone hears when it is).
            after_joined: refused
                .filter(|_| role == Role::Agent)
                .map(|e| recording_refused(&e)),
            call_info: Some(ServerMsg::CallInfo {
                call_id,
                token,
                files_key,
            }),
            call_log: Arc::clone(&self.state.call_log),
            last_stats: None,
            devices_sent: 0,
            features,
            bus,
            name: name.to_string(),
            call_id: call_id_kept,
            location_messages: 0,
            last_location: None,
        });
        Action::None
    }

    /// `devices`: the labels of the participant's camera and microphone, checked, for the
    /// call's record (at most [`MAX_DEVICES_MESSAGES`] a connection).
    fn on_devices(&mut self, camera: Option<String>, microphone: Option<String>) -> Action {
        let Some(joined) = self.joined.as_mut() else {
            return Action::None;
        };
        if [&camera, &microphone]
            .into_iter()
            .flatten()
            .any(|l| !orbita_protocol::valid_device_label(l))
        {
            return Action::Reply(ServerMsg::error(
                ErrorCode::InvalidValue,
                format!(
                    "a device label is at most {} characters, without control characters",
                    orbita_protocol::MAX_DEVICE_LABEL_CHARS
                ),
            ));
        }
        if joined.devices_sent >= MAX_DEVICES_MESSAGES {
            return Action::Reply(ServerMsg::error(
                ErrorCode::RateLimited,
                format!(
                    "at most {MAX_DEVICES_MESSAGES} `devices` a connection; this one is dropped"
                ),
            ));
        }
        joined.devices_sent += 1;
        let id = joined.participant.id().to_string();
        self.state.call_log.devices(
            joined.seat.code(),
            &id,
            camera.as_deref().unwrap_or_default(),
            microphone.as_deref().unwrap_or_default(),
        );
        Action::None
    }

    /// `stats`: the browser's view of its connection, checked, at most one every
    /// [`STATS_EVERY`]; stored with the call and passed to the SFU (for the agents).
    fn on_stats(&mut self, report: QualityReport) -> Action {
        let now = Instant::now();
        let Some(joined) = self.joined.as_mut() else {
            return Action::None;
        };
        if let Err(e) = report.check() {
            return Action::Reply(ServerMsg::error(ErrorCode::InvalidValue, e));
        }
        if joined
            .last_stats
            .is_some_and(|last| now.duration_since(last) < STATS_EVERY)
        {
            return Action::Reply(ServerMsg::error(
                ErrorCode::RateLimited,
                format!(
                    "stats at most one every {} s; this one is dropped",
                    STATS_EVERY.as_secs()
                ),
            ));
        }
        joined.last_stats = Some(now);
        let id = joined.participant.id();
        self.state
            .call_log
            .quality(joined.seat.code(), &id, QualitySource::Browser, &report);
        joined.participant.handle(ClientMsg::Stats(report));
        Action::None
    }
}

/// The refusal of something the call's switches turn off for `role` (docs/calls.md).
fn switched_off(role: Role, what: &str) -> ServerMsg {
    let whose = match role {
        Role::Agent => "the agent",
        Role::Customer | Role::Participant => "customers",
    };
    ServerMsg::error(
        ErrorCode::NotAllowed,
        format!("{what} is switched off for {whose} in this call (set by the administrators)"),
    )
}

/// A source as people say it.
fn source_name(source: TrackSource) -> &'static str {
    match source {
        TrackSource::Camera => "camera",
        TrackSource::Microphone => "microphone",
        TrackSource::Screen => "screen",
        TrackSource::ScreenAudio => "screen's sound",
    }
}

/// The most `devices` a participant sends in a call (a device switch sends one).
pub const MAX_DEVICES_MESSAGES: u32 = 50;

/// The shortest time between two `stats` of a participant.
pub const STATS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// The error a participant hears when recording could not start.
fn recording_refused(e: &StartError) -> ServerMsg {
    let code = match e {
        StartError::NoFreeRecorder { .. } => ErrorCode::NoFreeRecorder,
        StartError::Off | StartError::QuotaFull { .. } | StartError::Io(_) => {
            ErrorCode::RecordingUnavailable
        }
    };
    ServerMsg::error(code, e.to_string())
}

/// The next message the SFU sent for the participant; pending forever before join.
/// The next message for the joined participant: from the SFU or the call's bus.
async fn next_for_call(joined: &mut Option<Joined>) -> Step {
    match joined {
        Some(joined) => tokio::select! {
            event = joined.events.recv() => Step::Event(event),
            message = joined.bus.recv() => Step::Bus(message),
        },
        None => std::future::pending().await,
    }
}

/// Resolve once the flag is `true` (or its sender is gone).
async fn wait_true(flag: &mut watch::Receiver<bool>) {
    let _ = flag.wait_for(|&set| set).await;
}

async fn send(socket: &mut WebSocket, msg: &ServerMsg) -> Result<(), axum::Error> {
    let text = serde_json::to_string(msg).expect("server messages always serialize");
    socket.send(Message::Text(text.into())).await
}

/// The wire `type` of a client message, for error messages.
fn type_name(msg: &ClientMsg) -> &'static str {
    match msg {
        ClientMsg::Join { .. } => "join",
        ClientMsg::Offer { .. } => "offer",
        ClientMsg::Answer { .. } => "answer",
        ClientMsg::Candidate { .. } => "candidate",
        ClientMsg::Mute { .. } => "mute",
        ClientMsg::SetQuality { .. } => "set_quality",
        ClientMsg::Chat { .. } => "chat",
        ClientMsg::Ping { .. } => "ping",
        ClientMsg::Leave => "leave",
        ClientMsg::Input { .. } => "input",
        ClientMsg::GiveControl { .. } => "give_control",
        ClientMsg::Record { .. } => "record",
        ClientMsg::Stats(_) => "stats",
        ClientMsg::Devices { .. } => "devices",
        ClientMsg::FileUpload { .. } => "file_upload",
        ClientMsg::Location { .. } => "location",
        ClientMsg::LocationRequest { .. } => "location_request",
        ClientMsg::Pointer { .. } => "pointer",
        ClientMsg::LocationDeclined { .. } => "location_declined",
    }
}
