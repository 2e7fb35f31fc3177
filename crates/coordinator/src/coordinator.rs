//! The coordinator's logic: client requests and node messages in, answers and deliveries out.
//!
//! [`Coordinator`] does no network I/O and never reads the clock: each call gets `now`, and
//! returns what to send to whom ([`Delivery`]). Its state lives in the [`Registry`] (the
//! database), so several coordinators sharing one database agree; only the code-guessing
//! throttle is per process. The WebSocket server ([`crate::server`]) is a thin shell around it.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tracing::{info, warn};

use crate::accounts::first_run::FirstRun;
use crate::accounts::{Accounts, UseKind, User};
use crate::clock::{self, Clock, Millis};
use crate::config::{self, Plan, ServersFileEntry, Settings};
use crate::logic::{
    self, ceil_secs, random_hex, ExtensionWindow, GuessThrottle, RangeError, ThrottleSettings,
    Throttled,
};
use crate::planning;
use crate::store::{EndedSession, PlaceError, PlaceRequest, Registry, SessionRecord, StoreError};
use crate::verbs::{
    parse_client_request, ClientRequest, EndReason, ErrorCode, ErrorReply, FromNode, Registration,
    ToClient, ToNode,
};

/// A message for a client or a node. `via` is the id of the coordinator holding that client's
/// or node's connection: deliver it yourself when it is yours, else queue it in the registry's
/// outbox for that coordinator ([`Registry::push_outbox`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// To a client.
    Client {
        /// The client's id.
        user_id: String,
        /// The coordinator it talks to.
        via: String,
        /// The message.
        msg: ToClient,
    },
    /// To a node.
    Node {
        /// The node's name.
        node: String,
        /// The coordinator holding its link.
        via: String,
        /// The message.
        msg: ToNode,
    },
}

/// What a client request produced: maybe a direct answer, and messages for others (or for
/// the same client later, e.g. `CONNECT_TO_SESSION` once the node has started the session).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The answer to send back on the same connection now.
    pub reply: Option<ToClient>,
    /// Messages to deliver.
    pub deliveries: Vec<Delivery>,
}

impl Outcome {
    fn reply(msg: ToClient) -> Self {
        Outcome {
            reply: Some(msg),
            deliveries: Vec::new(),
        }
    }
    fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Outcome::reply(ToClient::error(code, message))
    }
}

/// What one [`Coordinator::sweep`] did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sweep {
    /// Nodes marked down (missed heartbeats).
    pub nodes_down: Vec<String>,
    /// Sessions ended (node down, idle, slot over), with their participants.
    pub ended: Vec<(EndedSession, EndReason)>,
    /// Plans whose slot is over.
    pub expired_plans: Vec<Plan>,
    /// Planned sessions that entered their extension window, with whether they could be
    /// extended then (their clients were sent `SESSION_ENDING`).
    pub ending: Vec<(String, bool)>,
    /// Everyone to tell.
    pub deliveries: Vec<Delivery>,
}

/// The coordinator.
pub struct Coordinator {
    settings: Settings,
    id: String,
    registry: Registry,
    accounts: Accounts,
    throttle: Arc<Mutex<GuessThrottle>>,
    plans_file: Option<PathBuf>,
    clock: Clock,
    first_run: FirstRun,
    /// `orbita serve`: whether a code is a live room of the media server in this process (a
    /// plain room, not a coordinator session): asked about it, the coordinator answers
    /// `SESSION_NOT_EXIST` without counting a miss, since the code is right.
    local_rooms: std::sync::OnceLock<LocalRooms>,
    /// The version of the call settings this process last changed (docs/calls.md): its node
    /// links send the new settings at once; other coordinators' links notice within a
    /// heartbeat.
    call_settings_changed: tokio::sync::watch::Sender<i64>,
}

/// Whether a code is a live room of the media server in this process ([`Coordinator::set_local_rooms`]).
pub type LocalRooms = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    /// Opens the registry the settings name (stage 2: `database_url`; stage 1: memory), loads
    /// `servers_file` and `plans_file` when given, and returns the coordinator.
    pub async fn open(settings: Settings, now: Millis) -> Result<Coordinator, String> {
        settings.validate()?;
        let registry = if settings.database_url.is_empty() {
            Registry::in_memory().await
        } else {
            Registry::connect(&settings.database_url).await
        }
        .map_err(|e| e.to_string())?;
        let coordinator = Coordinator::with_registry(settings, registry);
        if let Some(path) = coordinator.settings.servers_file.clone() {
            let entries = config::load_servers(&path)?;
            coordinator
                .reload_servers(&entries)
                .await
                .map_err(|e| e.to_string())?;
        }
        if let Some(path) = coordinator.plans_file.clone() {
            let plans = config::load_plans(&path)?;
            let added = coordinator
                .registry
                .import_plans(&plans, now)
                .await
                .map_err(|e| e.to_string())?;
            info!(added, file = %path.display(), "plans loaded");
        }
        Ok(coordinator)
    }

    /// Tells this process's node links that the call settings changed (to `version`).
    pub fn call_settings_changed(&self, version: i64) {
        self.call_settings_changed.send_replace(version);
    }

    /// Wakes when this process changes the call settings.
    pub fn watch_call_settings(&self) -> tokio::sync::watch::Receiver<i64> {
        self.call_settings_changed.subscribe()
    }

    /// A coordinator over an opened registry (files are not read; see [`Coordinator::open`]).
    pub fn with_registry(mut settings: Settings, registry: Registry) -> Coordinator {
        if settings.coordinator_id.is_empty() {
            settings.coordinator_id = format!("c{}", random_hex(6));
        }
        let throttle = GuessThrottle::new(ThrottleSettings {
            per_second: settings.code_attempts_per_second,
            burst: settings.code_attempt_burst,
            max_misses: settings.code_max_misses,
            window: Settings::ms(settings.code_miss_window_secs),
            lockout: Settings::ms(settings.code_lockout_secs),
        });
        Coordinator {
            id: settings.coordinator_id.clone(),
            plans_file: settings.plans_file.clone(),
            accounts: Accounts::new(&registry, &settings),
            settings,
            registry,
            throttle: Arc::new(Mutex::new(throttle)),
            clock: Clock::system(),
            first_run: FirstRun::default(),
            local_rooms: std::sync::OnceLock::new(),
            call_settings_changed: tokio::sync::watch::channel(0).0,
        }
    }

    /// The code-guessing budget (per client address: misses, lock-out, attempt rate), to share
    /// with a media server in the same process (`orbita serve`), whose room lookups then count
    /// against the same misses. Its times are the coordinator's clock (wall-clock ms).
    pub fn code_guesses(&self) -> Arc<Mutex<GuessThrottle>> {
        Arc::clone(&self.throttle)
    }

    /// Reads the time from `clock` instead of the wall clock (tests move it by hand).
    pub fn with_clock(mut self, clock: Clock) -> Coordinator {
        self.clock = clock;
        self
    }

    /// The time now, for requests served ([`Clock`]; the wall clock unless set otherwise).
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// This coordinator's id (the `via` of deliveries it should make itself).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The first run's one-time setup link (docs/accounts.md, "The first administrator").
    pub fn first_run(&self) -> &FirstRun {
        &self.first_run
    }

    /// The accounts (same database as the registry).
    pub fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    /// A fresh client id (`"id"` + 16 hex digits), unique with overwhelming probability
    /// across coordinators.
    pub fn new_user_id(&self) -> String {
        format!("id{}", random_hex(8))
    }

    /// The first message to a new client.
    pub fn welcome(&self, user_id: &str) -> ToClient {
        ToClient::Welcome {
            user_id: user_id.to_string(),
        }
    }

    fn unplanned_ms(&self) -> Millis {
        Settings::min_ms(self.settings.unplanned_session_minutes)
    }

    /// Stage 1: applies a (re-)read `servers.json`.
    pub async fn reload_servers(&self, entries: &[ServersFileEntry]) -> Result<(), StoreError> {
        self.registry
            .sync_file_servers(entries, self.settings.default_max_sessions)
            .await
    }

    async fn node_via(&self, node: &str) -> String {
        match self.registry.node(node).await {
            Ok(Some(n)) if !n.link_owner.is_empty() => n.link_owner,
            _ => self.id.clone(),
        }
    }

    fn internal(&self, e: impl std::fmt::Display) -> Outcome {
        warn!(error = %e, "coordinator registry failure");
        Outcome::error(
            ErrorCode::Internal,
            "the coordinator could not reach its registry; try again",
        )
    }

    /// A client's text message (parsed here, so every parse failure gets its own `ERROR`).
    /// `caller`: the account the connection logged in as (`None`: a guest).
    pub async fn handle_client_text(
        &self,
        user_id: &str,
        caller: Option<&User>,
        addr: IpAddr,
        text: &str,
        now: Millis,
    ) -> Outcome {
        if text.len() > self.settings.max_message_bytes {
            return Outcome::error(
                ErrorCode::MessageTooLarge,
                format!(
                    "messages are at most {} bytes",
                    self.settings.max_message_bytes
                ),
            );
        }
        match parse_client_request(text) {
            Ok(req) => self.handle_client(user_id, caller, addr, req, now).await,
            Err(e) => Outcome::reply(ToClient::Error(e)),
        }
    }

    /// A client's request. `caller` is the account the connection logged in as (`None`: a
    /// guest); `addr` is the client's IP (for the code-guessing throttle).
    pub async fn handle_client(
        &self,
        user_id: &str,
        caller: Option<&User>,
        addr: IpAddr,
        req: ClientRequest,
        now: Millis,
    ) -> Outcome {
        match req {
            ClientRequest::GetServers { range } => self.get_servers(&range).await,
            ClientRequest::PlanSession {
                rc_name,
                date,
                time,
                duration_minutes,
                tz,
            } => {
                self.plan_session(
                    user_id,
                    caller,
                    &rc_name,
                    &date,
                    &time,
                    tz.as_deref(),
                    duration_minutes.as_deref(),
                    now,
                )
                .await
            }
            ClientRequest::CreateSession { rc_name } => {
                self.create_session(user_id, caller, &rc_name, now).await
            }
            ClientRequest::ConnectSessionWithCode { code } => {
                self.connect_with_code(user_id, addr, &code, now).await
            }
            ClientRequest::ExtendSession { code, minutes } => {
                self.extend_session(user_id, addr, &code, minutes, now)
                    .await
            }
        }
    }

    async fn get_servers(&self, range: &str) -> Outcome {
        let max = self.settings.max_servers_per_request;
        let (offset, count) = match logic::parse_range(range, max) {
            Ok(r) => r,
            Err(RangeError::Malformed) => {
                return Outcome::error(
                    ErrorCode::BadRange,
                    format!("range {range:?} is not \"X-Y\" with X <= Y, e.g. \"0-20\""),
                )
            }
        };
        match self.registry.list_entries(offset, count).await {
            Ok(servers) if servers.is_empty() => Outcome::reply(ToClient::ServersNotFound),
            Ok(servers) => Outcome::reply(ToClient::ServersFound { servers }),
            Err(e) => self.internal(e),
        }
    }

    async fn check_rc(&self, rc_name: &str) -> Result<(), Outcome> {
        match self.registry.rc_known(rc_name).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Outcome::error(
                ErrorCode::UnknownRc,
                format!("no server offers {rc_name:?}"),
            )),
            Err(e) => Err(self.internal(e)),
        }
    }

    /// `CREATE_SESSION`: an account within quota (or a guest with `guests_may_create`);
    /// the session counts against the account's quota once placed.
    async fn create_session(
        &self,
        user_id: &str,
        caller: Option<&User>,
        rc_name: &str,
        now: Millis,
    ) -> Outcome {
        let creator = match self
            .authorize_creator(caller, 0, UseKind::Create, now)
            .await
        {
            Ok(creator) => creator,
            Err(o) => return o,
        };
        if let Err(o) = self.check_rc(rc_name).await {
            return o;
        }
        let owner = creator.as_ref().map(|g| g.user.id.to_string());
        let record =
            self.settings
                .must_record(rc_name, creator.as_ref().map(|g| g.user.role), false);
        let outcome = self.place(user_id, rc_name, None, owner, record, now).await;
        let placed = outcome.deliveries.iter().find_map(|d| match d {
            Delivery::Node {
                msg: ToNode::CreateSession { code, .. },
                ..
            } => Some(code.clone()),
            _ => None,
        });
        match placed {
            Some(code) => self.record_use(creator.as_ref(), &code).await,
            None => self.release_use(creator.as_ref()).await,
        }
        outcome
    }

    /// Places a session (`record`: on a node with a free recorder, which records it from its
    /// first participant on) and asks its node to start it; the client's `CONNECT_TO_SESSION`
    /// follows when the node confirms.
    async fn place(
        &self,
        user_id: &str,
        rc_name: &str,
        plan: Option<Plan>,
        owner: Option<String>,
        record: bool,
        now: Millis,
    ) -> Outcome {
        let req = PlaceRequest {
            rc_name: rc_name.to_string(),
            creator: user_id.to_string(),
            creator_coordinator: self.id.clone(),
            plan,
            exclude: Vec::new(),
            unplanned_ms: self.unplanned_ms(),
            code_length: self.settings.code_length,
            max_code_space_fraction: self.settings.max_code_space_fraction,
            record,
        };
        let mut rng = StdRng::from_rng(&mut rand::rng());
        match self.registry.place_session(&req, now, &mut rng).await {
            Ok(p) => {
                info!(code = %p.code, node = %p.node, rc_name, record, "session placed");
                Outcome {
                    reply: None,
                    deliveries: vec![Delivery::Node {
                        node: p.node,
                        via: if p.link_owner.is_empty() {
                            self.id.clone()
                        } else {
                            p.link_owner
                        },
                        msg: ToNode::CreateSession {
                            rc_name: rc_name.to_string(),
                            user_id: user_id.to_string(),
                            code: p.code,
                            owner,
                            record,
                        },
                    }],
                }
            }
            Err(PlaceError::Busy) => Outcome::reply(ToClient::ServersBusy),
            Err(PlaceError::NoFreeRecorder) => Outcome::error(
                ErrorCode::NoFreeRecorder,
                "this session must be recorded and every recorder of its servers is busy; try again in a few minutes",
            ),
            Err(PlaceError::CodesExhausted) => Outcome::error(
                ErrorCode::CodesExhausted,
                "too many sessions are live or planned; try again later",
            ),
            Err(PlaceError::Store(e)) => self.internal(e),
        }
    }

    /// The start of every request naming a code: the guessing throttle, then the code's shape.
    fn code_attempt<'a>(
        &self,
        addr: IpAddr,
        code: &'a str,
        now: Millis,
    ) -> Result<&'a str, Outcome> {
        if let Err(t) = self.throttle.lock().check(addr, now) {
            return Err(match t {
                Throttled::RateLimited(ms) => Outcome::reply(ToClient::Error(ErrorReply {
                    code: ErrorCode::RateLimited,
                    message: "too many code attempts; slow down".into(),
                    retry_after_seconds: Some(ceil_secs(ms)),
                })),
                Throttled::LockedOut(ms) => Outcome::reply(ToClient::Error(ErrorReply {
                    code: ErrorCode::LockedOut,
                    message: "too many wrong codes from this address; try again later".into(),
                    retry_after_seconds: Some(ceil_secs(ms)),
                })),
            });
        }
        let code = code.trim();
        if !logic::is_valid_code(code, self.settings.code_length) {
            return Err(Outcome::error(
                ErrorCode::BadCode,
                format!(
                    "a code is {} to {} digits",
                    self.settings.code_length,
                    logic::MAX_CODE_LENGTH.max(self.settings.code_length)
                ),
            ));
        }
        Ok(code)
    }

    /// `orbita serve`: tells the coordinator which codes are live rooms of its own media server
    /// (set once; later calls are ignored).
    pub fn set_local_rooms(&self, local_rooms: LocalRooms) {
        let _ = self.local_rooms.set(local_rooms);
    }

    /// A code that matched no session: `SESSION_NOT_EXIST`, and a miss towards the lock-out
    /// unless it is a live room of this process's media server (a right code).
    fn code_missed(&self, code: &str, addr: IpAddr, now: Millis) -> Outcome {
        if self.local_rooms.get().is_some_and(|live| live(code)) {
            return Outcome::reply(ToClient::SessionNotExist);
        }
        if self.throttle.lock().record_miss(addr, now).is_some() {
            warn!(%addr, "code guessing: address locked out");
        }
        Outcome::reply(ToClient::SessionNotExist)
    }

    fn plan_not_started(code: &str, plan: &Plan, now: Millis) -> Outcome {
        let (date, time) = clock::format_date_time(plan.start_ms);
        Outcome::reply(ToClient::Error(ErrorReply {
            code: ErrorCode::PlanNotStarted,
            message: format!("session {code} is planned for {date} {time} UTC"),
            retry_after_seconds: Some(ceil_secs(plan.start_ms - now)),
        }))
    }

    fn session_starting() -> Outcome {
        Outcome::reply(ToClient::Error(ErrorReply {
            code: ErrorCode::SessionStarting,
            message: "the session is starting; ask again in a moment".into(),
            retry_after_seconds: Some(1),
        }))
    }

    async fn connect_with_code(
        &self,
        user_id: &str,
        addr: IpAddr,
        code: &str,
        now: Millis,
    ) -> Outcome {
        let code = match self.code_attempt(addr, code, now) {
            Ok(code) => code,
            Err(o) => return o,
        };
        match self.registry.session(code).await {
            Ok(Some(s)) if s.live => {
                if let Err(e) = self
                    .registry
                    .add_participant(code, user_id, &self.id, now)
                    .await
                {
                    return self.internal(e);
                }
                let ending = match self.ending_notice(&s, now).await {
                    Ok(notice) => notice,
                    Err(e) => return self.internal(e),
                };
                let via = self.node_via(&s.node_name).await;
                let mut deliveries = vec![Delivery::Node {
                    node: s.node_name,
                    via,
                    msg: ToNode::ConnectUserToSession {
                        code: code.to_string(),
                        user_id: user_id.to_string(),
                    },
                }];
                // Someone who comes in the session's last minutes is offered the extension
                // too (the sweep told only those present when the window opened).
                if let Some(msg) = ending {
                    deliveries.push(Delivery::Client {
                        user_id: user_id.to_string(),
                        via: self.id.clone(),
                        msg,
                    });
                }
                return Outcome {
                    reply: Some(ToClient::ConnectToSession {
                        ip: s.ip,
                        port: s.port,
                        code: code.to_string(),
                        host_key: None,
                    }),
                    deliveries,
                };
            }
            Ok(Some(_)) => return Self::session_starting(),
            Ok(None) => {}
            Err(e) => return self.internal(e),
        }
        match self.registry.plan(code).await {
            Ok(Some(p)) if now < p.start_ms => Self::plan_not_started(code, &p, now),
            Ok(Some(p)) if now < p.end_ms => {
                // The first person to come during the slot starts the planned session.
                let rc = p.rc_name.clone();
                // Its recordings are its planner's; the policy looks at the planner's role.
                let owner = p.planned_by.strip_prefix("account:").map(str::to_string);
                let record = match self.plan_must_record(&p, owner.as_deref()).await {
                    Ok(record) => record,
                    Err(e) => return self.internal(e),
                };
                self.place(user_id, &rc, Some(p), owner, record, now).await
            }
            Ok(_) => self.code_missed(code, addr, now),
            Err(e) => self.internal(e),
        }
    }

    /// Whether the planned session `plan` must be recorded: its plan asked, or the policy
    /// names its app or its planner's (account `owner`) role.
    async fn plan_must_record(&self, plan: &Plan, owner: Option<&str>) -> Result<bool, StoreError> {
        let asked = self.registry.plan_asks_recording(plan).await?;
        let role = match owner.and_then(|id| id.parse::<i64>().ok()) {
            Some(id) => self
                .accounts()
                .user(id)
                .await
                .map_err(|e| StoreError::Other(e.to_string()))?
                .map(|u| u.role),
            None => None,
        };
        Ok(self.settings.must_record(&plan.rc_name, role, asked))
    }

    /// `SESSION_ENDING` for a live planned session already in its extension window (for a
    /// client joining it then); `None` outside the window or for an unplanned session.
    async fn ending_notice(
        &self,
        session: &SessionRecord,
        now: Millis,
    ) -> Result<Option<ToClient>, StoreError> {
        let Some(end) = session.ends_ms else {
            return Ok(None);
        };
        let window = Settings::min_ms(self.settings.extension_window_minutes);
        if now >= end || end - now > window {
            return Ok(None);
        }
        let extension = Settings::min_ms(self.settings.default_extension_minutes());
        let extendable = self
            .registry
            .could_extend(session, end + extension, self.unplanned_ms(), now)
            .await?;
        Ok(Some(ToClient::SessionEnding {
            code: session.code.clone(),
            ends_at: clock::format_instant(end),
            extendable,
        }))
    }

    /// `EXTEND_SESSION`: a live planned session in its extension window runs `minutes` longer
    /// if the servers of its app have room then. Anyone who knows the code may ask (the
    /// accounts issue will say who may); asking counts as a code attempt for the throttle.
    async fn extend_session(
        &self,
        user_id: &str,
        addr: IpAddr,
        code: &str,
        minutes: Option<u64>,
        now: Millis,
    ) -> Outcome {
        let code = match self.code_attempt(addr, code, now) {
            Ok(code) => code,
            Err(o) => return o,
        };
        let s = &self.settings;
        let minutes = match minutes {
            None => s.default_extension_minutes(),
            Some(m) if (s.plan_min_minutes..=s.plan_max_minutes).contains(&m) => m,
            Some(m) => {
                return Outcome::error(
                    ErrorCode::BadDuration,
                    format!(
                        "minutes {m} must be a whole number from {} to {}",
                        s.plan_min_minutes, s.plan_max_minutes
                    ),
                )
            }
        };
        let window = Settings::min_ms(s.extension_window_minutes);
        // When another request moves the end (or ends the session) meanwhile, look again.
        for _ in 0..3 {
            let session = match self.registry.session(code).await {
                Ok(Some(session)) => session,
                Ok(None) => return self.extend_without_session(addr, code, now).await,
                Err(e) => return self.internal(e),
            };
            if !session.live {
                return Self::session_starting();
            }
            let Some(end) = session.ends_ms else {
                return Outcome::error(
                    ErrorCode::SessionNotPlanned,
                    format!("session {code} was not planned: it has no end to extend"),
                );
            };
            match logic::extension_window(end, window, now) {
                ExtensionWindow::Open => {}
                ExtensionWindow::OpensAt(at) => {
                    return Outcome::reply(ToClient::Error(ErrorReply {
                        code: ErrorCode::ExtensionTooEarly,
                        message: format!(
                            "session {code} ends at {} UTC; it may be extended from {} UTC",
                            clock::format_instant(end),
                            clock::format_instant(at)
                        ),
                        retry_after_seconds: Some(ceil_secs(at - now)),
                    }))
                }
                // Its slot is over; the sweep is about to end it.
                ExtensionWindow::Over => return Outcome::reply(ToClient::SessionNotExist),
            }
            let new_end = end + Settings::min_ms(minutes);
            if let Err(o) = self.check_extension(code, new_end).await {
                return o;
            }
            match self
                .registry
                .extend_session(code, end, new_end, self.unplanned_ms(), now)
                .await
            {
                Ok(true) => {
                    info!(code, rc_name = %session.rc_name, end, new_end, "session extended");
                    self.save_plans_file().await;
                    return self.extended(user_id, &session, new_end).await;
                }
                Ok(false) => continue,
                Err(PlaceError::Busy) => {
                    return Outcome::error(
                        ErrorCode::NextSlotTaken,
                        format!(
                            "every server of {:?} is booked at some time between {} and {} UTC",
                            session.rc_name,
                            clock::format_instant(end),
                            clock::format_instant(new_end)
                        ),
                    )
                }
                Err(PlaceError::CodesExhausted | PlaceError::NoFreeRecorder) => {
                    return self.internal("no code is allocated")
                }
                Err(PlaceError::Store(e)) => return self.internal(e),
            }
        }
        self.internal(format!("session {code} kept changing while being extended"))
    }

    /// `EXTEND_SESSION` for a code with no session: a plan nobody started yet, or nothing.
    async fn extend_without_session(&self, addr: IpAddr, code: &str, now: Millis) -> Outcome {
        match self.registry.plan(code).await {
            Ok(Some(p)) if now < p.start_ms => Self::plan_not_started(code, &p, now),
            Ok(Some(p)) if now < p.end_ms => Outcome::error(
                ErrorCode::PlanNotStarted,
                format!(
                    "session {code} has not been started: join it with CONNECT_SESSION_WITH_CODE first"
                ),
            ),
            Ok(_) => self.code_missed(code, addr, now),
            Err(e) => self.internal(e),
        }
    }

    /// `SESSION_EXTENDED` for the asker, and for the session's other clients.
    async fn extended(&self, asker: &str, session: &SessionRecord, new_end: Millis) -> Outcome {
        let msg = ToClient::SessionExtended {
            code: session.code.clone(),
            until: clock::format_instant(new_end),
        };
        let deliveries = match self
            .session_clients(session, msg.clone(), Some(asker))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                warn!(error = %e, code = %session.code, "could not tell the session's clients of its extension");
                Vec::new()
            }
        };
        Outcome {
            reply: Some(msg),
            deliveries,
        }
    }

    /// `msg` for a session's creator and participants (each once), but not `except`.
    async fn session_clients(
        &self,
        session: &SessionRecord,
        msg: ToClient,
        except: Option<&str>,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut to: Vec<(String, String)> = self
            .registry
            .participants(&session.code)
            .await?
            .into_iter()
            .map(|p| (p.user_id, p.coordinator_id))
            .collect();
        if !to.iter().any(|(u, _)| *u == session.creator) {
            to.insert(
                0,
                (session.creator.clone(), session.creator_coordinator.clone()),
            );
        }
        Ok(to
            .into_iter()
            .filter(|(u, _)| Some(u.as_str()) != except)
            .map(|(user_id, via)| Delivery::Client {
                user_id,
                via,
                msg: msg.clone(),
            })
            .collect())
    }

    /// `PLAN_SESSION`: books a slot for `caller` through [`crate::planning`] (the same checks
    /// as `POST /api/plans`); `date` and `time` are UTC, or local to `tz`. The answer is the
    /// plan's code.
    #[allow(clippy::too_many_arguments)]
    async fn plan_session(
        &self,
        user_id: &str,
        caller: Option<&crate::accounts::User>,
        rc_name: &str,
        date: &str,
        time: &str,
        tz: Option<&str>,
        duration: Option<&str>,
        now: Millis,
    ) -> Outcome {
        if caller.is_none() {
            // Guests never plan (LOGIN_REQUIRED), whatever else the request says.
            if let Err(o) = self
                .authorize_creator(None, 0, crate::accounts::UseKind::Plan, now)
                .await
            {
                return o;
            }
        }
        let date = match clock::parse_date(date) {
            Ok(d) => planning::tz::date_of_day_ms(d),
            Err(e) => return Outcome::error(ErrorCode::BadDate, e),
        };
        let time = match planning::tz::parse_hhmm(time) {
            Ok(t) => t,
            Err(e) => return Outcome::error(ErrorCode::BadTime, e),
        };
        let zone = match planning::plans::zone_or_refuse(tz.unwrap_or("UTC")) {
            Ok(z) => z,
            Err(r) => return Outcome::reply(ToClient::Error(r.to_reply())),
        };
        let duration_minutes = match duration {
            None => None,
            Some(d) => match d.trim().parse::<u64>() {
                Ok(m) => Some(m),
                Err(_) => {
                    let s = &self.settings;
                    return Outcome::error(
                        ErrorCode::BadDuration,
                        format!(
                            "duration_minutes {d:?} must be a whole number from {} to {}",
                            s.plan_min_minutes, s.plan_max_minutes
                        ),
                    );
                }
            },
        };
        let request = planning::PlanRequest {
            rc_name: rc_name.to_string(),
            date,
            time,
            tz: zone,
            duration_minutes,
            customer: planning::Customer::default(),
            record: false,
        };
        match self.book_plan(user_id, caller, &request, now).await {
            Ok(entry) => Outcome::reply(ToClient::ConnectionCode {
                code: entry.plan.code,
            }),
            Err(r) => Outcome::reply(ToClient::Error(r.to_reply())),
        }
    }

    /// For [`crate::planning`]: how long an unplanned session is assumed to last, the code
    /// length (the shortest) and the most codes of one length in use, as a fraction.
    pub(crate) fn plan_limits(&self) -> (Millis, usize, f64) {
        (
            self.unplanned_ms(),
            self.settings.code_length,
            self.settings.max_code_space_fraction,
        )
    }

    /// For [`crate::planning`]: plans changed (the stage-1 plans file is rewritten).
    pub(crate) async fn plans_changed(&self) {
        self.save_plans_file().await;
    }

    async fn save_plans_file(&self) {
        let Some(path) = &self.plans_file else { return };
        match self.registry.plans().await {
            Ok(plans) => {
                if let Err(e) = config::save_plans(path, &plans) {
                    warn!(error = %e, "could not write the plans file");
                }
            }
            Err(e) => warn!(error = %e, "could not read plans"),
        }
    }

    // ------------------------------------------------------------------ node link

    /// A node that proved the cluster secret registers (see [`crate::auth`]). The answer is
    /// `REGISTERED` with the sessions it should still hold.
    pub async fn register_node(
        &self,
        reg: &Registration,
        now: Millis,
    ) -> Result<ToNode, StoreError> {
        let sessions = self.registry.register_node(reg, &self.id, now).await?;
        info!(node = %reg.server_name, ip = %reg.ip, port = %reg.port, max_sessions = reg.max_sessions, apps = reg.apps.len(), "node registered");
        // Its calls it no longer holds were cut by a restart: their records end.
        let closed = self
            .registry
            .close_open_calls(&reg.server_name, &reg.calls)
            .await?;
        if !closed.is_empty() {
            info!(node = %reg.server_name, calls = closed.len(), "call records cut by the node's restart closed");
        }
        Ok(ToNode::Registered {
            heartbeat_interval_seconds: self.settings.heartbeat_interval_secs,
            sessions,
        })
    }

    /// A message from registered node `node` (on a link this coordinator holds).
    pub async fn handle_node(&self, node: &str, msg: FromNode, now: Millis) -> Vec<Delivery> {
        let result = self.handle_node_inner(node, msg, now).await;
        result.unwrap_or_else(|e| {
            warn!(node, error = %e, "node message failed");
            vec![Delivery::Node {
                node: node.to_string(),
                via: self.id.clone(),
                msg: ToNode::Error {
                    code: "INTERNAL".into(),
                    message: "the coordinator could not reach its registry".into(),
                },
            }]
        })
    }

    async fn handle_node_inner(
        &self,
        node: &str,
        msg: FromNode,
        now: Millis,
    ) -> Result<Vec<Delivery>, StoreError> {
        let to_node = |msg: ToNode| Delivery::Node {
            node: node.to_string(),
            via: self.id.clone(),
            msg,
        };
        match msg {
            FromNode::CallEvent(e) => {
                self.record_call_event(node, *e).await?;
                Ok(Vec::new())
            }
            FromNode::Register(_) => Ok(vec![to_node(ToNode::Error {
                code: "BAD_MESSAGE".into(),
                message: "already registered".into(),
            })]),
            FromNode::Heartbeat(hb) => {
                if self.registry.heartbeat(node, &hb, &self.id, now).await? {
                    Ok(Vec::new())
                } else {
                    Ok(vec![to_node(ToNode::Error {
                        code: "NOT_REGISTERED".into(),
                        message: format!("no node {node:?} is registered"),
                    })])
                }
            }
            FromNode::ConnectToSession {
                ip,
                port,
                code,
                host_key,
            } => {
                match self
                    .registry
                    .confirm_session(node, &code, &ip, &port, now)
                    .await?
                {
                    Some(s) => {
                        info!(code = %code, node, "session live");
                        Ok(vec![
                            Delivery::Client {
                                user_id: s.creator.clone(),
                                via: s.creator_coordinator.clone(),
                                // The creator alone hears the host key.
                                msg: ToClient::ConnectToSession {
                                    ip,
                                    port,
                                    code: code.clone(),
                                    host_key,
                                },
                            },
                            to_node(ToNode::ConnectUserToSession {
                                code,
                                user_id: s.creator,
                            }),
                        ])
                    }
                    None => Ok(vec![to_node(ToNode::EndSession {
                        code,
                        reason: "unknown_session".into(),
                    })]),
                }
            }
            FromNode::CreateSessionFailed { code, reason } => {
                warn!(node, code = %code, reason = %reason, "node refused a session");
                match self.registry.abandon_session(&code, Some(node)).await? {
                    Some(s) => {
                        self.forget_create(&s).await;
                        Ok(vec![Delivery::Client {
                            user_id: s.creator,
                            via: s.creator_coordinator,
                            msg: ToClient::ServersBusy,
                        }])
                    }
                    None => Ok(Vec::new()),
                }
            }
            FromNode::SessionConnectionEstablished {
                webrtc_connection_data,
                code,
                user_id,
            } => match self
                .registry
                .participant_coordinator(&code, &user_id)
                .await?
            {
                Some(via) => Ok(vec![Delivery::Client {
                    user_id,
                    via,
                    msg: ToClient::SessionConnectionEstablished {
                        webrtc_connection_data,
                        code,
                    },
                }]),
                None => Ok(Vec::new()),
            },
            FromNode::ParticipantLeft { code, user_id } => {
                let on_node = self
                    .registry
                    .session(&code)
                    .await?
                    .is_some_and(|s| s.node_name == node);
                if !on_node {
                    return Ok(Vec::new());
                }
                match self.registry.remove_participant(&code, &user_id).await? {
                    Some(0) => self.end_session(&code, EndReason::Empty, None).await,
                    _ => Ok(Vec::new()),
                }
            }
            FromNode::SessionEnded { code, reason } => {
                let on_node = self
                    .registry
                    .session(&code)
                    .await?
                    .is_some_and(|s| s.node_name == node);
                if !on_node {
                    return Ok(Vec::new());
                }
                self.end_session(&code, EndReason::ByNode, Some(reason))
                    .await
            }
        }
    }

    /// Ends session `code` (an operator, the node's report, or the sweep): frees its code
    /// and returns who to tell. `reason_text` overrides the reason's wire name.
    pub async fn end_session(
        &self,
        code: &str,
        reason: EndReason,
        reason_text: Option<String>,
    ) -> Result<Vec<Delivery>, StoreError> {
        Ok(match self.registry.end_session(code).await? {
            Some(ended) => self.ended_deliveries(&ended, reason, reason_text).await,
            None => Vec::new(),
        })
    }

    async fn ended_deliveries(
        &self,
        ended: &EndedSession,
        reason: EndReason,
        reason_text: Option<String>,
    ) -> Vec<Delivery> {
        let s = &ended.session;
        let reason_text = reason_text.unwrap_or_else(|| reason.as_str().to_string());
        info!(code = %s.code, node = %s.node_name, reason = %reason_text, "session ended");
        let mut out = Vec::new();
        if !s.live {
            // Its creator was still waiting for CONNECT_TO_SESSION.
            out.push(Delivery::Client {
                user_id: s.creator.clone(),
                via: s.creator_coordinator.clone(),
                msg: ToClient::ServersBusy,
            });
        }
        for p in &ended.participants {
            out.push(Delivery::Client {
                user_id: p.user_id.clone(),
                via: p.coordinator_id.clone(),
                msg: ToClient::SessionEnded {
                    code: s.code.clone(),
                    reason: reason_text.clone(),
                },
            });
        }
        if !matches!(reason, EndReason::NodeDown | EndReason::ByNode) {
            out.push(Delivery::Node {
                node: s.node_name.clone(),
                via: self.node_via(&s.node_name).await,
                msg: ToNode::EndSession {
                    code: s.code.clone(),
                    reason: reason_text,
                },
            });
        }
        out
    }

    /// The periodic housekeeping (call about once a second): marks nodes that missed
    /// heartbeats down and ends their sessions, drops sessions their node never confirmed,
    /// ends idle sessions and sessions whose planned slot is over, sends `SESSION_ENDING` for
    /// planned sessions entering their extension window, expires past plans, and prunes the
    /// throttle and the outbox.
    pub async fn sweep(&self, now: Millis) -> Result<Sweep, StoreError> {
        let s = &self.settings;
        let mut out = Sweep::default();
        for node in self
            .registry
            .mark_silent_nodes_down(now, Settings::ms(s.heartbeat_timeout_secs))
            .await?
        {
            warn!(node = %node, "node missed its heartbeats: marked down");
            for session in self.registry.sessions_on(&node).await? {
                if let Some(ended) = self.registry.end_session(&session.code).await? {
                    out.deliveries.extend(
                        self.ended_deliveries(&ended, EndReason::NodeDown, None)
                            .await,
                    );
                    out.ended.push((ended, EndReason::NodeDown));
                }
            }
            out.nodes_down.push(node);
        }
        for code in self
            .registry
            .stale_starting(now - Settings::ms(s.node_reply_timeout_secs))
            .await?
        {
            if let Some(session) = self.registry.abandon_session(&code, None).await? {
                self.forget_create(&session).await;
                warn!(code = %code, node = %session.node_name, "node did not answer CREATE_SESSION");
                out.deliveries.push(Delivery::Client {
                    user_id: session.creator.clone(),
                    via: session.creator_coordinator.clone(),
                    msg: ToClient::error(
                        ErrorCode::NodeTimeout,
                        "the server chosen for the session did not answer; try again",
                    ),
                });
                out.deliveries.push(Delivery::Node {
                    via: self.node_via(&session.node_name).await,
                    node: session.node_name,
                    msg: ToNode::EndSession {
                        code,
                        reason: "timeout".into(),
                    },
                });
            }
        }
        let idle = self
            .registry
            .idle_sessions(now - Settings::ms(s.session_idle_secs))
            .await?;
        let overdue = self.registry.overdue_sessions(now).await?;
        for (codes, reason) in [(idle, EndReason::Idle), (overdue, EndReason::PlanOver)] {
            for code in codes {
                if let Some(ended) = self.registry.end_session(&code).await? {
                    out.deliveries
                        .extend(self.ended_deliveries(&ended, reason, None).await);
                    out.ended.push((ended, reason));
                }
            }
        }
        // Planned sessions entering their extension window: their clients are told once per
        // end (a stored mark, so coordinators sharing the registry do not repeat it).
        let window = Settings::min_ms(s.extension_window_minutes);
        let extension = Settings::min_ms(s.default_extension_minutes());
        for session in self.registry.sessions_ending(now, now + window).await? {
            let Some(end) = session.ends_ms else { continue };
            let extendable = self
                .registry
                .could_extend(&session, end + extension, self.unplanned_ms(), now)
                .await?;
            if !self
                .registry
                .claim_ending_notice(&session.code, end)
                .await?
            {
                continue;
            }
            let msg = ToClient::SessionEnding {
                code: session.code.clone(),
                ends_at: clock::format_instant(end),
                extendable,
            };
            out.deliveries
                .extend(self.session_clients(&session, msg, None).await?);
            out.ending.push((session.code.clone(), extendable));
        }
        out.expired_plans = self.registry.expire_plans(now).await?;
        if !out.expired_plans.is_empty() {
            self.save_plans_file().await;
        }
        self.throttle.lock().prune(now);
        self.registry.prune_outbox(now - 60 * clock::SECOND).await?;
        Ok(out)
    }
}
