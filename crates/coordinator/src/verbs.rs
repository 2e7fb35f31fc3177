//! The coordinator's JSON messages, exactly as ../shared/spec/coordinator-protocol.md writes them.
//!
//! Two links:
//!
//! * **client <-> coordinator** (the browser's WebSocket): requests are tagged by `"verb"`
//!   ([`ClientRequest`]); answers are tagged by `"msg"`, except `CONNECT_TO_SESSION`, which the
//!   spec tags by `"verb"` ([`ToClient`]).
//! * **node <-> coordinator** (a session server's persistent, authenticated WebSocket):
//!   [`ToNode`] and [`FromNode`], with the spec's `CREATE_SESSION`, `CONNECT_TO_SESSION`,
//!   `CONNECT_USER_TO_SESSION` and `SESSION_CONNECTION_ESTABLISHED`, plus registration,
//!   heartbeats and session-end reports.
//!
//! As in the spec, `ip`, `port` and `code` are JSON strings. Counts that only this crate adds
//! (heartbeat load, `max_sessions` in registration, `retry_after_seconds`) are JSON numbers.
//! docs/coordinator.md shows every message with an example; the tests below check the exact
//! shapes.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One entry of `servers.json`, and of a `SERVERS_FOUND` answer: one app (`rc_name`) offered
/// by one session server.
///
/// `{"server_name":"SomeName1","ip":"0.0.0.0","port":"111","rc_info":{"rc_name":"SomeRC","info":{"description":[{"en":"best RC and ..."},{"ru":"..."}]}}}`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerEntry {
    /// The session server's name (unique in the cluster).
    pub server_name: String,
    /// The address clients reach the server at (a string, as in the spec).
    pub ip: String,
    /// The port clients reach the server at (a string, as in the spec).
    pub port: String,
    /// The app it offers.
    pub rc_info: RcInfo,
}

/// The app part of a [`ServerEntry`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RcInfo {
    /// The app's name (the spec's residential-complex name).
    pub rc_name: String,
    /// Free-form details, kept exactly as given; by the spec
    /// `{"description":[{"en":"..."},{"ru":"..."}]}` (one object per language).
    #[serde(default = "empty_info")]
    pub info: Value,
}

fn empty_info() -> Value {
    Value::Object(Default::default())
}

impl RcInfo {
    /// The description in `lang` (e.g. `"en"`), if `info.description` has one.
    pub fn description(&self, lang: &str) -> Option<&str> {
        self.info
            .get("description")?
            .as_array()?
            .iter()
            .find_map(|d| d.get(lang).and_then(Value::as_str))
    }
}

/// Requests from a client (a browser) to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb")]
pub enum ClientRequest {
    /// `{"verb":"GET_SERVERS","range":"0-20"}`: entries X..=Y (zero-based) of the catalogue.
    #[serde(rename = "GET_SERVERS")]
    GetServers {
        /// `"X-Y"`; the count is Y-X+1.
        range: String,
    },
    /// `{"verb":"PLAN_SESSION","rc_name":"SomeRC","date":"25/12/2026","time":"18:30"}`: book a slot.
    #[serde(rename = "PLAN_SESSION")]
    PlanSession {
        /// The app.
        rc_name: String,
        /// `"day/month/year"` (UTC, or local to `tz`).
        date: String,
        /// `"HH:MM"` (24-hour; UTC, or local to `tz`).
        time: String,
        /// Optional extension: the slot's length in minutes, a string like the spec's numbers
        /// (`"90"`); the `plan_default_minutes` setting when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_minutes: Option<String>,
        /// Optional extension: the IANA time zone `date` and `time` are local to (e.g.
        /// `"Europe/Moscow"`); UTC when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tz: Option<String>,
    },
    /// `{"verb":"CREATE_SESSION","rc_name":"SomeRC"}`: start a session now.
    #[serde(rename = "CREATE_SESSION")]
    CreateSession {
        /// The app.
        rc_name: String,
    },
    /// `{"verb":"CONNECT_SESSION_WITH_CODE","code":"1234"}`: join a session by its code.
    #[serde(rename = "CONNECT_SESSION_WITH_CODE")]
    ConnectSessionWithCode {
        /// The session's code.
        code: String,
    },
    /// `{"verb":"EXTEND_SESSION","code":"1234","minutes":15}`: near the end of its slot, make a
    /// live planned session last longer (if the time after the slot is free).
    #[serde(rename = "EXTEND_SESSION")]
    ExtendSession {
        /// The session's code.
        code: String,
        /// How many minutes to add (a number, or a string like the spec's numbers); the
        /// `extension_minutes` setting when absent.
        #[serde(
            default,
            deserialize_with = "opt_minutes",
            skip_serializing_if = "Option::is_none"
        )]
        minutes: Option<u64>,
    },
}

/// A whole number of minutes given as a JSON number or a string (`15` or `"15"`).
fn opt_minutes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let bad = |v: &Value| D::Error::custom(format!("minutes {v} is not a whole number"));
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_u64().map(Some).ok_or_else(|| bad(&Value::Number(n))),
        Value::String(t) => t
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| bad(&Value::String(t))),
        other => Err(bad(&other)),
    }
}

/// The verbs a client may send, for error messages.
pub const CLIENT_VERBS: [&str; 5] = [
    "GET_SERVERS",
    "PLAN_SESSION",
    "CREATE_SESSION",
    "CONNECT_SESSION_WITH_CODE",
    "EXTEND_SESSION",
];

/// Every failure a client can be told about in `{"msg":"ERROR","code":...}`. The spec's own
/// failure answers (`SERVERS_NOT_FOUND`, `SERVERS_BUSY`, `SESSION_NOT_EXIST`) are separate
/// [`ToClient`] variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The text is not a JSON object.
    MalformedJson,
    /// The message is larger than `max_message_bytes`.
    MessageTooLarge,
    /// A binary WebSocket message (only text is spoken).
    BinaryNotSupported,
    /// The object has no string `"verb"`.
    MissingVerb,
    /// The verb is not one of [`CLIENT_VERBS`].
    UnknownVerb,
    /// A field is missing or has the wrong type.
    BadField,
    /// `range` is not `"X-Y"` with X <= Y.
    BadRange,
    /// No server offers this `rc_name`.
    UnknownRc,
    /// `date` is not a valid `day/month/year`.
    BadDate,
    /// `time` is not a valid `HH:MM`.
    BadTime,
    /// `duration_minutes` (or `EXTEND_SESSION`'s `minutes`) is not a whole number in the
    /// allowed range.
    BadDuration,
    /// The slot starts in the past.
    SlotInPast,
    /// The slot starts beyond `plan_horizon_days`.
    SlotTooFar,
    /// At some moment of the slot every server of the app is taken (plans and live sessions).
    SlotTaken,
    /// The code is not `code_length` digits.
    BadCode,
    /// The code belongs to a planned session that has not been started (its slot has not
    /// begun; for `EXTEND_SESSION` also: nobody has joined it yet).
    PlanNotStarted,
    /// The session is being started; ask again in a moment.
    SessionStarting,
    /// Too many codes are in use to hand out a new one safely.
    CodesExhausted,
    /// Too many code attempts per second from this address.
    RateLimited,
    /// Too many wrong codes from this address: locked out for a while.
    LockedOut,
    /// The chosen server did not answer in time.
    NodeTimeout,
    /// `EXTEND_SESSION` for a session that did not come from a plan: it has no end to extend.
    SessionNotPlanned,
    /// `EXTEND_SESSION` before the extension window (`extension_window_minutes` before the
    /// slot's end) has opened.
    ExtensionTooEarly,
    /// `EXTEND_SESSION`: at some moment of the asked extension every server of the app is
    /// taken (plans and live sessions).
    NextSlotTaken,
    /// `CREATE_SESSION` / `PLAN_SESSION` from a connection that is not logged in (and guests
    /// may not create sessions).
    LoginRequired,
    /// The account's role may not do this.
    Forbidden,
    /// The account has created or planned as many sessions as its quota allows in the
    /// period (the message names the limit).
    QuotaExceeded,
    /// The session would be longer than the account's (for `EXTEND_SESSION`: the planner's)
    /// `max_minutes` (the message names the limit).
    DurationOverQuota,
    /// The session must be recorded (the recording policy) and no server of the app with
    /// room has a free recorder now; try again later.
    NoFreeRecorder,
    /// A failure of the coordinator itself (e.g. its database).
    Internal,
}

impl ErrorCode {
    /// The wire name, e.g. `"SLOT_TAKEN"`.
    pub fn as_str(self) -> &'static str {
        ALL_ERROR_CODES
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("INTERNAL", |(_, name)| name)
    }
}

/// Every error code with its wire name (for docs and tests).
pub const ALL_ERROR_CODES: [(ErrorCode, &str); 29] = [
    (ErrorCode::MalformedJson, "MALFORMED_JSON"),
    (ErrorCode::MessageTooLarge, "MESSAGE_TOO_LARGE"),
    (ErrorCode::BinaryNotSupported, "BINARY_NOT_SUPPORTED"),
    (ErrorCode::MissingVerb, "MISSING_VERB"),
    (ErrorCode::UnknownVerb, "UNKNOWN_VERB"),
    (ErrorCode::BadField, "BAD_FIELD"),
    (ErrorCode::BadRange, "BAD_RANGE"),
    (ErrorCode::UnknownRc, "UNKNOWN_RC"),
    (ErrorCode::BadDate, "BAD_DATE"),
    (ErrorCode::BadTime, "BAD_TIME"),
    (ErrorCode::BadDuration, "BAD_DURATION"),
    (ErrorCode::SlotInPast, "SLOT_IN_PAST"),
    (ErrorCode::SlotTooFar, "SLOT_TOO_FAR"),
    (ErrorCode::SlotTaken, "SLOT_TAKEN"),
    (ErrorCode::BadCode, "BAD_CODE"),
    (ErrorCode::PlanNotStarted, "PLAN_NOT_STARTED"),
    (ErrorCode::SessionStarting, "SESSION_STARTING"),
    (ErrorCode::CodesExhausted, "CODES_EXHAUSTED"),
    (ErrorCode::RateLimited, "RATE_LIMITED"),
    (ErrorCode::LockedOut, "LOCKED_OUT"),
    (ErrorCode::NodeTimeout, "NODE_TIMEOUT"),
    (ErrorCode::SessionNotPlanned, "SESSION_NOT_PLANNED"),
    (ErrorCode::ExtensionTooEarly, "EXTENSION_TOO_EARLY"),
    (ErrorCode::NextSlotTaken, "NEXT_SLOT_TAKEN"),
    (ErrorCode::LoginRequired, "LOGIN_REQUIRED"),
    (ErrorCode::Forbidden, "FORBIDDEN"),
    (ErrorCode::QuotaExceeded, "QUOTA_EXCEEDED"),
    (ErrorCode::DurationOverQuota, "DURATION_OVER_QUOTA"),
    (ErrorCode::Internal, "INTERNAL"),
];

/// `{"msg":"ERROR","code":"SLOT_TAKEN","message":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// What went wrong, for programs.
    pub code: ErrorCode,
    /// What went wrong, for people (English).
    pub message: String,
    /// When the same request may succeed again (throttling), in whole seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
}

impl ErrorReply {
    /// An error without a retry time.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorReply {
            code,
            message: message.into(),
            retry_after_seconds: None,
        }
    }
}

/// Messages from the coordinator to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "ToClientWire", try_from = "ToClientWire")]
pub enum ToClient {
    /// `{"msg":"WELCOME","user_id":"id5f2c..."}`: the first message on every connection.
    Welcome {
        /// The client's unique id for this connection.
        user_id: String,
    },
    /// `{"msg":"SERVERS_FOUND","servers":[...]}`.
    ServersFound {
        /// Entries as in servers.json.
        servers: Vec<ServerEntry>,
    },
    /// `{"msg":"SERVERS_NOT_FOUND"}`: nothing in the asked range.
    ServersNotFound,
    /// `{"msg":"CONNECTION_CODE","code":"1234"}`: a plan was stored.
    ConnectionCode {
        /// The code to join with during the slot.
        code: String,
    },
    /// `{"verb":"CONNECT_TO_SESSION","ip":"0.0.0.1","port":"1111","code":"1234"}`.
    ConnectToSession {
        /// The session server's address.
        ip: String,
        /// The session server's port.
        port: String,
        /// The session's code.
        code: String,
        /// An addition to the spec, only in the answer to its creator's `CREATE_SESSION`: the
        /// room's host key, which makes the creator the call's agent at `join` (who may
        /// record). Never sent to anyone else.
        host_key: Option<String>,
    },
    /// `{"msg":"SERVERS_BUSY"}`: no server of that app has room.
    ServersBusy,
    /// `{"msg":"SESSION_NOT_EXIST"}`: no live or planned session has that code.
    SessionNotExist,
    /// `{"msg":"SESSION_CONNECTION_ESTABLISHED","WebRTC_connection_data":"https://...","code":"1234"}`:
    /// the session server is ready for this client (relayed from the node).
    SessionConnectionEstablished {
        /// What the client needs to reach the session's WebRTC server.
        webrtc_connection_data: String,
        /// The session's code.
        code: String,
    },
    /// `{"msg":"SESSION_ENDED","code":"1234","reason":"node_down"}`: a session the client was
    /// sent to has ended.
    SessionEnded {
        /// The session's code.
        code: String,
        /// Why: see [`EndReason`].
        reason: String,
    },
    /// `{"msg":"SESSION_EXTENDED","code":"1234","until":"25/12/2026 19:45"}`: an
    /// `EXTEND_SESSION` was granted (sent to the asker and to the session's participants).
    SessionExtended {
        /// The session's code.
        code: String,
        /// The new end of its slot, `"day/month/year HH:MM"` (UTC), as plans write dates.
        until: String,
    },
    /// `{"msg":"SESSION_ENDING","code":"1234","ends_at":"25/12/2026 19:30","extendable":true}`:
    /// a planned session entered its extension window (sent once per end to its creator and
    /// participants).
    SessionEnding {
        /// The session's code.
        code: String,
        /// The end of its slot, `"day/month/year HH:MM"` (UTC).
        ends_at: String,
        /// Whether the `extension_minutes` after the slot were free at that moment.
        extendable: bool,
    },
    /// `{"msg":"ERROR","code":"...","message":"..."}`.
    Error(ErrorReply),
}

impl ToClient {
    /// An `ERROR` answer.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ToClient::Error(ErrorReply::new(code, message))
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"msg\":\"ERROR\"}"))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ToClientWire {
    Msg(ToClientMsg),
    Verb(ToClientVerb),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "msg")]
enum ToClientMsg {
    #[serde(rename = "WELCOME")]
    Welcome { user_id: String },
    #[serde(rename = "SERVERS_FOUND")]
    ServersFound { servers: Vec<ServerEntry> },
    #[serde(rename = "SERVERS_NOT_FOUND")]
    ServersNotFound,
    #[serde(rename = "CONNECTION_CODE")]
    ConnectionCode { code: String },
    #[serde(rename = "SERVERS_BUSY")]
    ServersBusy,
    #[serde(rename = "SESSION_NOT_EXIST")]
    SessionNotExist,
    #[serde(rename = "SESSION_CONNECTION_ESTABLISHED")]
    SessionConnectionEstablished {
        #[serde(rename = "WebRTC_connection_data")]
        webrtc_connection_data: String,
        code: String,
    },
    #[serde(rename = "SESSION_ENDED")]
    SessionEnded { code: String, reason: String },
    #[serde(rename = "SESSION_EXTENDED")]
    SessionExtended { code: String, until: String },
    #[serde(rename = "SESSION_ENDING")]
    SessionEnding {
        code: String,
        ends_at: String,
        extendable: bool,
    },
    #[serde(rename = "ERROR")]
    Error(ErrorReply),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "verb")]
enum ToClientVerb {
    #[serde(rename = "CONNECT_TO_SESSION")]
    ConnectToSession {
        ip: String,
        port: String,
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host_key: Option<String>,
    },
}

impl From<ToClient> for ToClientWire {
    fn from(m: ToClient) -> Self {
        use ToClientMsg as M;
        ToClientWire::Msg(match m {
            ToClient::Welcome { user_id } => M::Welcome { user_id },
            ToClient::ServersFound { servers } => M::ServersFound { servers },
            ToClient::ServersNotFound => M::ServersNotFound,
            ToClient::ConnectionCode { code } => M::ConnectionCode { code },
            ToClient::ConnectToSession {
                ip,
                port,
                code,
                host_key,
            } => {
                return ToClientWire::Verb(ToClientVerb::ConnectToSession {
                    ip,
                    port,
                    code,
                    host_key,
                })
            }
            ToClient::ServersBusy => M::ServersBusy,
            ToClient::SessionNotExist => M::SessionNotExist,
            ToClient::SessionConnectionEstablished {
                webrtc_connection_data,
                code,
            } => M::SessionConnectionEstablished {
                webrtc_connection_data,
                code,
            },
            ToClient::SessionEnded { code, reason } => M::SessionEnded { code, reason },
            ToClient::SessionExtended { code, until } => M::SessionExtended { code, until },
            ToClient::SessionEnding {
                code,
                ends_at,
                extendable,
            } => M::SessionEnding {
                code,
                ends_at,
                extendable,
            },
            ToClient::Error(e) => M::Error(e),
        })
    }
}

impl From<ToClientWire> for ToClient {
    fn from(w: ToClientWire) -> Self {
        use ToClientMsg as M;
        match w {
            ToClientWire::Verb(ToClientVerb::ConnectToSession {
                ip,
                port,
                code,
                host_key,
            }) => ToClient::ConnectToSession {
                ip,
                port,
                code,
                host_key,
            },
            ToClientWire::Msg(m) => match m {
                M::Welcome { user_id } => ToClient::Welcome { user_id },
                M::ServersFound { servers } => ToClient::ServersFound { servers },
                M::ServersNotFound => ToClient::ServersNotFound,
                M::ConnectionCode { code } => ToClient::ConnectionCode { code },
                M::ServersBusy => ToClient::ServersBusy,
                M::SessionNotExist => ToClient::SessionNotExist,
                M::SessionConnectionEstablished {
                    webrtc_connection_data,
                    code,
                } => ToClient::SessionConnectionEstablished {
                    webrtc_connection_data,
                    code,
                },
                M::SessionEnded { code, reason } => ToClient::SessionEnded { code, reason },
                M::SessionExtended { code, until } => ToClient::SessionExtended { code, until },
                M::SessionEnding {
                    code,
                    ends_at,
                    extendable,
                } => ToClient::SessionEnding {
                    code,
                    ends_at,
                    extendable,
                },
                M::Error(e) => ToClient::Error(e),
            },
        }
    }
}

/// Why a session ended (the `reason` of `SESSION_ENDED` and `END_SESSION`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// Every participant left.
    Empty,
    /// Every participant was inactive for `session_idle_secs`.
    Idle,
    /// The planned slot is over.
    PlanOver,
    /// The node holding it missed its heartbeats.
    NodeDown,
    /// The node ended it (its own reason is passed on).
    ByNode,
    /// An operator or program ended it through the API.
    Ended,
}

impl EndReason {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Empty => "empty",
            EndReason::Idle => "idle",
            EndReason::PlanOver => "plan_over",
            EndReason::NodeDown => "node_down",
            EndReason::ByNode => "ended_by_node",
            EndReason::Ended => "ended",
        }
    }
}

/// Why a client request could not be parsed: the `ERROR` to send back.
pub fn parse_client_request(text: &str) -> Result<ClientRequest, ErrorReply> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ErrorReply::new(ErrorCode::MalformedJson, format!("not valid JSON: {e}")))?;
    let Some(obj) = value.as_object() else {
        return Err(ErrorReply::new(
            ErrorCode::MalformedJson,
            "a request must be a JSON object",
        ));
    };
    let verb = match obj.get("verb") {
        Some(Value::String(v)) => v.clone(),
        Some(_) => {
            return Err(ErrorReply::new(
                ErrorCode::MissingVerb,
                "\"verb\" must be a string",
            ))
        }
        None => {
            return Err(ErrorReply::new(
                ErrorCode::MissingVerb,
                "a request needs a \"verb\"",
            ))
        }
    };
    if !CLIENT_VERBS.contains(&verb.as_str()) {
        return Err(ErrorReply::new(
            ErrorCode::UnknownVerb,
            format!("unknown verb {verb:?}; known: {}", CLIENT_VERBS.join(", ")),
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| ErrorReply::new(ErrorCode::BadField, format!("{verb}: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Node link
// ---------------------------------------------------------------------------------------------

/// One app a node can run, as told at registration: the `rc_info` of servers.json.
pub type AppInfo = RcInfo;

/// `REGISTER_NODE`: the node's first message after the challenge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// The node's name (the spec's `server_name`), unique in the cluster.
    pub server_name: String,
    /// Where clients reach this node (a string, as in the spec).
    pub ip: String,
    /// Where clients reach this node (a string, as in the spec).
    pub port: String,
    /// How many sessions it may hold at once (its `config.json`).
    pub max_sessions: u32,
    /// The apps it runs, with per-language descriptions.
    #[serde(default)]
    pub apps: Vec<AppInfo>,
    /// Hex HMAC-SHA256 of the challenge under the cluster secret (see [`crate::auth`]).
    pub auth: String,
    /// An addition to the spec: the recordings it may make at once (also in each
    /// `HEARTBEAT`); absent: none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recording_slots: u32,
    /// An addition to the spec: the node's web address (`https://node1.example.org`), where
    /// browsers list and download its recordings with a grant of the coordinator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// An addition to the spec: the calls the node still holds (after a reconnect); the
    /// coordinator closes the node's other open call records (a restart cut them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
}

/// `HEARTBEAT`: the node's load, every `heartbeat_interval_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Heartbeat {
    /// Sessions it holds now.
    pub sessions: u32,
    /// Participants over all its sessions.
    pub participants: u32,
    /// CPU use, 0.0 to 1.0 (all cores).
    pub cpu: f64,
    /// Codes of the sessions that had any activity (media, input, messages) since the last
    /// heartbeat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<String>,
    /// An addition to the spec: the recordings it may make at once (its `recording_slots`;
    /// absent: none, so sessions that must be recorded are not placed on it).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recording_slots: u32,
    /// An addition to the spec: the recordings it makes now of sessions the coordinator did
    /// not ask it to record (`CREATE_SESSION` without `record`: an agent started them). The
    /// sessions it was asked to record the coordinator counts itself.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_recordings: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Messages from a node to the coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "FromNodeWire", try_from = "FromNodeWire")]
pub enum FromNode {
    /// `{"verb":"REGISTER_NODE",...}`.
    Register(Registration),
    /// `{"verb":"HEARTBEAT","sessions":1,"participants":3,"cpu":0.25,"active":["1234"]}`.
    Heartbeat(Heartbeat),
    /// `{"verb":"CONNECT_TO_SESSION","ip":"...","port":"...","code":"1234"}`: the answer to
    /// `CREATE_SESSION`: the session is up.
    ConnectToSession {
        /// Where clients reach the session.
        ip: String,
        /// Where clients reach the session.
        port: String,
        /// The code the coordinator gave in `CREATE_SESSION`.
        code: String,
        /// An addition to the spec: the room's host key, relayed to the session's creator
        /// only (it makes them the call's agent at `join`).
        host_key: Option<String>,
    },
    /// `{"msg":"CREATE_SESSION_FAILED","code":"1234","reason":"..."}`.
    CreateSessionFailed {
        /// The code of the `CREATE_SESSION`.
        code: String,
        /// Why (for logs).
        reason: String,
    },
    /// `{"msg":"SESSION_CONNECTION_ESTABLISHED","WebRTC_connection_data":"https://ip:port","code":"1234","user_id":"id123"}`:
    /// the answer to `CONNECT_USER_TO_SESSION`.
    SessionConnectionEstablished {
        /// What the client needs to reach the session's WebRTC server.
        webrtc_connection_data: String,
        /// The session.
        code: String,
        /// The client.
        user_id: String,
    },
    /// `{"msg":"PARTICIPANT_LEFT","code":"1234","user_id":"id123"}`.
    ParticipantLeft {
        /// The session.
        code: String,
        /// Who left.
        user_id: String,
    },
    /// `{"msg":"SESSION_ENDED","code":"1234","reason":"empty"}`: the node ended a session
    /// (everyone left, idle, app crashed, ...).
    SessionEnded {
        /// The session.
        code: String,
        /// Why.
        reason: String,
    },
    /// An addition to the spec: `{"msg":"CALL_EVENT","call":"...","at_ms":...,"event":"joined",
    /// ...}`, what happened in a call, for its record (docs/calls.md).
    CallEvent(Box<CallEvent>),
}

/// What happened in a call (`CALL_EVENT`), for its record: the fields an event needs are
/// those named with it; the others are absent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CallEvent {
    /// The call's id (the node's, unique in the cluster).
    pub call: String,
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// `started` (with `code`, `rc_name`, `owner`), `joined` (`participant`, `name`, `role`,
    /// `user_agent`, `token`, `account` and `consent` when known), `devices` (`participant`,
    /// `camera`, `microphone`: their labels), `left` (`participant`), `chat` (`seq`,
    /// `participant`, `text`), `recording` (`recording`: the id of a recording of the call
    /// that started), `quality` (`participant`, `source`, `quality`), `ended` (`reason`).
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub rc_name: Option<String>,
    /// The account that created or planned the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub participant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[allow(missing_docs)]
    pub reason: Option<String>,
    /// The account of the participant who joined (the agent: the call's owner).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The id of the recording that started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording: Option<String>,
    /// The survey token the participant who joined was given (the coordinator keeps its hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The consent text the participant who joined accepted (its id, docs/calls.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<String>,
    /// The label of the participant's camera (`devices`; empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
    /// The label of the participant's microphone (`devices`; empty: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub microphone: Option<String>,
    /// Who measured a `quality` report: `browser` or `server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A participant's connection quality (`quality`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<orbita_protocol::QualityReport>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum FromNodeWire {
    Verb(FromNodeVerb),
    Msg(FromNodeMsg),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "verb")]
enum FromNodeVerb {
    #[serde(rename = "REGISTER_NODE")]
    Register(Registration),
    #[serde(rename = "HEARTBEAT")]
    Heartbeat(Heartbeat),
    #[serde(rename = "CONNECT_TO_SESSION")]
    ConnectToSession {
        ip: String,
        port: String,
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host_key: Option<String>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "msg")]
enum FromNodeMsg {
    #[serde(rename = "CREATE_SESSION_FAILED")]
    CreateSessionFailed { code: String, reason: String },
    #[serde(rename = "SESSION_CONNECTION_ESTABLISHED")]
    SessionConnectionEstablished {
        #[serde(rename = "WebRTC_connection_data")]
        webrtc_connection_data: String,
        code: String,
        user_id: String,
    },
    #[serde(rename = "PARTICIPANT_LEFT")]
    ParticipantLeft { code: String, user_id: String },
    #[serde(rename = "SESSION_ENDED")]
    SessionEnded { code: String, reason: String },
    #[serde(rename = "CALL_EVENT")]
    CallEvent(Box<CallEvent>),
}

impl From<FromNode> for FromNodeWire {
    fn from(m: FromNode) -> Self {
        use FromNodeMsg as M;
        use FromNodeVerb as V;
        match m {
            FromNode::Register(r) => FromNodeWire::Verb(V::Register(r)),
            FromNode::Heartbeat(h) => FromNodeWire::Verb(V::Heartbeat(h)),
            FromNode::ConnectToSession {
                ip,
                port,
                code,
                host_key,
            } => FromNodeWire::Verb(V::ConnectToSession {
                ip,
                port,
                code,
                host_key,
            }),
            FromNode::CreateSessionFailed { code, reason } => {
                FromNodeWire::Msg(M::CreateSessionFailed { code, reason })
            }
            FromNode::SessionConnectionEstablished {
                webrtc_connection_data,
                code,
                user_id,
            } => FromNodeWire::Msg(M::SessionConnectionEstablished {
                webrtc_connection_data,
                code,
                user_id,
            }),
            FromNode::ParticipantLeft { code, user_id } => {
                FromNodeWire::Msg(M::ParticipantLeft { code, user_id })
            }
            FromNode::SessionEnded { code, reason } => {
                FromNodeWire::Msg(M::SessionEnded { code, reason })
            }
            FromNode::CallEvent(e) => FromNodeWire::Msg(M::CallEvent(e)),
        }
    }
}

impl From<FromNodeWire> for FromNode {
    fn from(w: FromNodeWire) -> Self {
        use FromNodeMsg as M;
        use FromNodeVerb as V;
        match w {
            FromNodeWire::Verb(V::Register(r)) => FromNode::Register(r),
            FromNodeWire::Verb(V::Heartbeat(h)) => FromNode::Heartbeat(h),
            FromNodeWire::Verb(V::ConnectToSession {
                ip,
                port,
                code,
                host_key,
            }) => FromNode::ConnectToSession {
                ip,
                port,
                code,
                host_key,
            },
            FromNodeWire::Msg(M::CreateSessionFailed { code, reason }) => {
                FromNode::CreateSessionFailed { code, reason }
            }
            FromNodeWire::Msg(M::SessionConnectionEstablished {
                webrtc_connection_data,
                code,
                user_id,
            }) => FromNode::SessionConnectionEstablished {
                webrtc_connection_data,
                code,
                user_id,
            },
            FromNodeWire::Msg(M::ParticipantLeft { code, user_id }) => {
                FromNode::ParticipantLeft { code, user_id }
            }
            FromNodeWire::Msg(M::SessionEnded { code, reason }) => {
                FromNode::SessionEnded { code, reason }
            }
            FromNodeWire::Msg(M::CallEvent(e)) => FromNode::CallEvent(e),
        }
    }
}

/// Messages from the coordinator to a node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "ToNodeWire", try_from = "ToNodeWire")]
pub enum ToNode {
    /// `{"msg":"CHALLENGE","nonce":"<64 hex>"}`: the first message on the node link.
    Challenge {
        /// Random, fresh per connection.
        nonce: String,
    },
    /// `{"msg":"REGISTERED","heartbeat_interval_seconds":5,"sessions":["1234"]}`: the node is
    /// in; `sessions` are the codes the coordinator believes it holds (it should end others).
    Registered {
        /// How often to send `HEARTBEAT`.
        heartbeat_interval_seconds: u64,
        /// Live session codes on this node.
        sessions: Vec<String>,
    },
    /// `{"verb":"CREATE_SESSION","rc_name":"SomeRC","user_id":"id123","code":"1234"}`. `code`
    /// (an addition to the spec) is the code the coordinator reserved; the node answers
    /// `CONNECT_TO_SESSION` with it.
    CreateSession {
        /// The app to run.
        rc_name: String,
        /// The creator.
        user_id: String,
        /// The session's code.
        code: String,
        /// An addition to the spec: the account that creates (or planned) the session, when
        /// one does: its recordings are that account's (`owner` in `recording.json`).
        owner: Option<String>,
        /// An addition to the spec: the session must be recorded (the coordinator's recording
        /// policy), from its first participant on; sent only when true.
        record: bool,
    },
    /// `{"verb":"CONNECT_USER_TO_SESSION","code":"1234","user_id":"id123"}`.
    ConnectUserToSession {
        /// The session.
        code: String,
        /// The client that is coming.
        user_id: String,
    },
    /// `{"verb":"END_SESSION","code":"1234","reason":"idle"}`: stop the session and its app.
    EndSession {
        /// The session.
        code: String,
        /// Why (see [`EndReason`]).
        reason: String,
    },
    /// `{"verb":"CALL_SETTINGS","version":...,"features":{...},"branding":{...},"logo":{...}}`
    /// (an addition): the call settings administrators set (docs/calls.md), after
    /// `REGISTERED` and whenever they change.
    CallSettings(Box<crate::call_settings::CallSettings>),
    /// `{"msg":"ERROR","code":"AUTH_FAILED","message":"..."}`: a bad node message; after
    /// `AUTH_FAILED` the link is closed.
    Error {
        /// `AUTH_FAILED`, `BAD_MESSAGE`, `NOT_REGISTERED` or `INTERNAL`.
        code: String,
        /// For logs.
        message: String,
    },
}

impl ToNode {
    /// The JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"msg\":\"ERROR\"}"))
    }
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ToNodeWire {
    Verb(ToNodeVerb),
    Msg(ToNodeMsg),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "verb")]
#[allow(clippy::enum_variant_names)]
enum ToNodeVerb {
    #[serde(rename = "CREATE_SESSION")]
    CreateSession {
        rc_name: String,
        user_id: String,
        code: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        record: bool,
    },
    #[serde(rename = "CONNECT_USER_TO_SESSION")]
    ConnectUserToSession { code: String, user_id: String },
    #[serde(rename = "END_SESSION")]
    EndSession { code: String, reason: String },
    #[serde(rename = "CALL_SETTINGS")]
    CallSettings(Box<crate::call_settings::CallSettings>),
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "msg")]
enum ToNodeMsg {
    #[serde(rename = "CHALLENGE")]
    Challenge { nonce: String },
    #[serde(rename = "REGISTERED")]
    Registered {
        heartbeat_interval_seconds: u64,
        sessions: Vec<String>,
    },
    #[serde(rename = "ERROR")]
    Error { code: String, message: String },
}

impl From<ToNode> for ToNodeWire {
    fn from(m: ToNode) -> Self {
        match m {
            ToNode::Challenge { nonce } => ToNodeWire::Msg(ToNodeMsg::Challenge { nonce }),
            ToNode::Registered {
                heartbeat_interval_seconds,
                sessions,
            } => ToNodeWire::Msg(ToNodeMsg::Registered {
                heartbeat_interval_seconds,
                sessions,
            }),
            ToNode::CreateSession {
                rc_name,
                user_id,
                code,
                owner,
                record,
            } => ToNodeWire::Verb(ToNodeVerb::CreateSession {
                rc_name,
                user_id,
                code,
                owner,
                record,
            }),
            ToNode::ConnectUserToSession { code, user_id } => {
                ToNodeWire::Verb(ToNodeVerb::ConnectUserToSession { code, user_id })
            }
            ToNode::EndSession { code, reason } => {
                ToNodeWire::Verb(ToNodeVerb::EndSession { code, reason })
            }
            ToNode::CallSettings(s) => ToNodeWire::Verb(ToNodeVerb::CallSettings(s)),
            ToNode::Error { code, message } => ToNodeWire::Msg(ToNodeMsg::Error { code, message }),
        }
    }
}

impl From<ToNodeWire> for ToNode {
    fn from(w: ToNodeWire) -> Self {
        match w {
            ToNodeWire::Msg(ToNodeMsg::Challenge { nonce }) => ToNode::Challenge { nonce },
            ToNodeWire::Msg(ToNodeMsg::Registered {
                heartbeat_interval_seconds,
                sessions,
            }) => ToNode::Registered {
                heartbeat_interval_seconds,
                sessions,
            },
            ToNodeWire::Msg(ToNodeMsg::Error { code, message }) => ToNode::Error { code, message },
            ToNodeWire::Verb(ToNodeVerb::CreateSession {
                rc_name,
                user_id,
                code,
                owner,
                record,
            }) => ToNode::CreateSession {
                rc_name,
                user_id,
                code,
                owner,
                record,
            },
            ToNodeWire::Verb(ToNodeVerb::ConnectUserToSession { code, user_id }) => {
                ToNode::ConnectUserToSession { code, user_id }
            }
            ToNodeWire::Verb(ToNodeVerb::EndSession { code, reason }) => {
                ToNode::EndSession { code, reason }
            }
            ToNodeWire::Verb(ToNodeVerb::CallSettings(s)) => ToNode::CallSettings(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same(v: &impl Serialize, expected: Value) {
        assert_eq!(serde_json::to_value(v).unwrap(), expected);
    }

    #[test]
    fn client_requests_parse_exactly_as_in_the_spec() {
        assert_eq!(
            parse_client_request(r#"{"verb":"GET_SERVERS","range":"0-20"}"#).unwrap(),
            ClientRequest::GetServers {
                range: "0-20".into()
            }
        );
        assert_eq!(
            parse_client_request(
                r#"{"verb":"PLAN_SESSION","rc_name":"SomeRC","date":"25/12/2026","time":"00:00"}"#
            )
            .unwrap(),
            ClientRequest::PlanSession {
                rc_name: "SomeRC".into(),
                date: "25/12/2026".into(),
                time: "00:00".into(),
                duration_minutes: None,
                tz: None,
            }
        );
        assert_eq!(
            parse_client_request(r#"{"verb":"CREATE_SESSION","rc_name":"SomeRC"}"#).unwrap(),
            ClientRequest::CreateSession {
                rc_name: "SomeRC".into()
            }
        );
        assert_eq!(
            parse_client_request(r#"{"verb":"CONNECT_SESSION_WITH_CODE","code":"1234"}"#).unwrap(),
            ClientRequest::ConnectSessionWithCode {
                code: "1234".into()
            }
        );
        // Serialising gives the same shapes back.
        same(
            &ClientRequest::GetServers {
                range: "20-213".into(),
            },
            json!({"verb":"GET_SERVERS","range":"20-213"}),
        );
        same(
            &ClientRequest::CreateSession {
                rc_name: "SomeRC".into(),
            },
            json!({"verb":"CREATE_SESSION","rc_name":"SomeRC"}),
        );
    }

    #[test]
    fn session_extension_messages_have_their_shapes() {
        assert_eq!(
            parse_client_request(r#"{"verb":"EXTEND_SESSION","code":"1234","minutes":15}"#)
                .unwrap(),
            ClientRequest::ExtendSession {
                code: "1234".into(),
                minutes: Some(15),
            }
        );
        // Minutes may be a string, like the spec's other numbers, or left out.
        assert_eq!(
            parse_client_request(r#"{"verb":"EXTEND_SESSION","code":"1234","minutes":"30"}"#)
                .unwrap(),
            ClientRequest::ExtendSession {
                code: "1234".into(),
                minutes: Some(30),
            }
        );
        assert_eq!(
            parse_client_request(r#"{"verb":"EXTEND_SESSION","code":"1234"}"#).unwrap(),
            ClientRequest::ExtendSession {
                code: "1234".into(),
                minutes: None,
            }
        );
        same(
            &ClientRequest::ExtendSession {
                code: "1234".into(),
                minutes: Some(15),
            },
            json!({"verb":"EXTEND_SESSION","code":"1234","minutes":15}),
        );
        same(
            &ClientRequest::ExtendSession {
                code: "1234".into(),
                minutes: None,
            },
            json!({"verb":"EXTEND_SESSION","code":"1234"}),
        );
        let code = |t: &str| parse_client_request(t).unwrap_err();
        for bad in [
            r#"{"verb":"EXTEND_SESSION","code":"1234","minutes":-5}"#,
            r#"{"verb":"EXTEND_SESSION","code":"1234","minutes":2.5}"#,
            r#"{"verb":"EXTEND_SESSION","code":"1234","minutes":"soon"}"#,
            r#"{"verb":"EXTEND_SESSION","code":"1234","minutes":[15]}"#,
        ] {
            let e = code(bad);
            assert_eq!(e.code, ErrorCode::BadField, "{bad}");
            assert!(e.message.contains("minutes"), "{}", e.message);
        }
        let e = code(r#"{"verb":"EXTEND_SESSION","minutes":15}"#);
        assert_eq!(e.code, ErrorCode::BadField);
        assert!(e.message.contains("code"), "{}", e.message);

        same(
            &ToClient::SessionExtended {
                code: "1234".into(),
                until: "25/12/2026 19:45".into(),
            },
            json!({"msg":"SESSION_EXTENDED","code":"1234","until":"25/12/2026 19:45"}),
        );
        same(
            &ToClient::SessionEnding {
                code: "1234".into(),
                ends_at: "25/12/2026 19:30".into(),
                extendable: true,
            },
            json!({"msg":"SESSION_ENDING","code":"1234","ends_at":"25/12/2026 19:30","extendable":true}),
        );
        for (code, name) in [
            (ErrorCode::SessionNotPlanned, "SESSION_NOT_PLANNED"),
            (ErrorCode::ExtensionTooEarly, "EXTENSION_TOO_EARLY"),
            (ErrorCode::NextSlotTaken, "NEXT_SLOT_TAKEN"),
        ] {
            same(
                &ToClient::error(code, "no"),
                json!({"msg":"ERROR","code":name,"message":"no"}),
            );
        }
        for m in [
            ToClient::SessionExtended {
                code: "0001".into(),
                until: "01/01/2030 00:15".into(),
            },
            ToClient::SessionEnding {
                code: "0001".into(),
                ends_at: "01/01/2030 00:00".into(),
                extendable: false,
            },
        ] {
            let back: ToClient = serde_json::from_str(&m.to_json()).unwrap();
            assert_eq!(back, m);
        }
    }

    #[test]
    fn every_parse_failure_has_its_own_code() {
        let code = |t: &str| parse_client_request(t).unwrap_err().code;
        assert_eq!(code("{not json"), ErrorCode::MalformedJson);
        assert_eq!(code("[1,2]"), ErrorCode::MalformedJson);
        assert_eq!(code(r#"{"range":"0-1"}"#), ErrorCode::MissingVerb);
        assert_eq!(code(r#"{"verb":7}"#), ErrorCode::MissingVerb);
        assert_eq!(
            code(r#"{"verb":"DELETE_EVERYTHING"}"#),
            ErrorCode::UnknownVerb
        );
        assert_eq!(code(r#"{"verb":"GET_SERVERS"}"#), ErrorCode::BadField);
        assert_eq!(
            code(r#"{"verb":"GET_SERVERS","range":5}"#),
            ErrorCode::BadField
        );
        let e = parse_client_request(r#"{"verb":"CREATE_SESSION"}"#).unwrap_err();
        assert!(e.message.contains("rc_name"), "{}", e.message);
    }

    #[test]
    fn answers_have_the_spec_shapes() {
        let entry = ServerEntry {
            server_name: "SomeName1".into(),
            ip: "0.0.0.0".into(),
            port: "111".into(),
            rc_info: RcInfo {
                rc_name: "SomeRC".into(),
                info: json!({"description":[{"en":"best RC and ..."},{"ru":"..."}]}),
            },
        };
        same(
            &ToClient::ServersFound {
                servers: vec![entry.clone()],
            },
            json!({"msg":"SERVERS_FOUND","servers":[{"server_name":"SomeName1","ip":"0.0.0.0","port":"111","rc_info":{"rc_name":"SomeRC","info":{"description":[{"en":"best RC and ..."},{"ru":"..."}]}}}]}),
        );
        assert_eq!(entry.rc_info.description("en"), Some("best RC and ..."));
        assert_eq!(entry.rc_info.description("de"), None);
        same(
            &ToClient::ServersNotFound,
            json!({"msg":"SERVERS_NOT_FOUND"}),
        );
        same(
            &ToClient::ConnectionCode {
                code: "1234".into(),
            },
            json!({"msg":"CONNECTION_CODE","code":"1234"}),
        );
        same(
            &ToClient::ConnectToSession {
                ip: "0.0.0.1".into(),
                port: "1111".into(),
                code: "1234".into(),
                host_key: None,
            },
            json!({"verb":"CONNECT_TO_SESSION","ip":"0.0.0.1","port":"1111","code":"1234"}),
        );
        same(&ToClient::ServersBusy, json!({"msg":"SERVERS_BUSY"}));
        same(
            &ToClient::SessionNotExist,
            json!({"msg":"SESSION_NOT_EXIST"}),
        );
        same(
            &ToClient::Welcome {
                user_id: "id123".into(),
            },
            json!({"msg":"WELCOME","user_id":"id123"}),
        );
        same(
            &ToClient::error(ErrorCode::SlotTaken, "taken"),
            json!({"msg":"ERROR","code":"SLOT_TAKEN","message":"taken"}),
        );
        same(
            &ToClient::Error(ErrorReply {
                code: ErrorCode::LockedOut,
                message: "wait".into(),
                retry_after_seconds: Some(60),
            }),
            json!({"msg":"ERROR","code":"LOCKED_OUT","message":"wait","retry_after_seconds":60}),
        );
        same(
            &ToClient::SessionConnectionEstablished {
                webrtc_connection_data: "https://ip:port".into(),
                code: "1234".into(),
            },
            json!({"msg":"SESSION_CONNECTION_ESTABLISHED","WebRTC_connection_data":"https://ip:port","code":"1234"}),
        );
        // And they parse back (a Rust client can use the same types).
        for m in [
            ToClient::ServersBusy,
            ToClient::ConnectToSession {
                ip: "a".into(),
                port: "1".into(),
                code: "0001".into(),
                host_key: None,
            },
            ToClient::SessionEnded {
                code: "1".into(),
                reason: "idle".into(),
            },
        ] {
            let back: ToClient = serde_json::from_str(&m.to_json()).unwrap();
            assert_eq!(back, m);
        }
    }

    #[test]
    fn error_code_names_match_serde() {
        for (code, name) in ALL_ERROR_CODES {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(name));
            assert_eq!(code.as_str(), name);
        }
    }

    #[test]
    fn node_link_messages_have_the_spec_shapes() {
        same(
            &ToNode::CreateSession {
                rc_name: "SomeRC".into(),
                user_id: "id123".into(),
                code: "1234".into(),
                owner: None,
                record: false,
            },
            json!({"verb":"CREATE_SESSION","rc_name":"SomeRC","user_id":"id123","code":"1234"}),
        );
        // The additions: the owner, and `record` only when true.
        same(
            &ToNode::CreateSession {
                rc_name: "SomeRC".into(),
                user_id: "id123".into(),
                code: "1234".into(),
                owner: Some("7".into()),
                record: true,
            },
            json!({"verb":"CREATE_SESSION","rc_name":"SomeRC","user_id":"id123","code":"1234","owner":"7","record":true}),
        );
        same(
            &ToNode::ConnectUserToSession {
                code: "1234".into(),
                user_id: "id123".into(),
            },
            json!({"verb":"CONNECT_USER_TO_SESSION","code":"1234","user_id":"id123"}),
        );
        let from: FromNode = serde_json::from_value(
            json!({"verb":"CONNECT_TO_SESSION","ip":"0.0.0.1","port":"1111","code":"1234"}),
        )
        .unwrap();
        assert_eq!(
            from,
            FromNode::ConnectToSession {
                ip: "0.0.0.1".into(),
                port: "1111".into(),
                code: "1234".into(),
                host_key: None
            }
        );
        let est: FromNode = serde_json::from_value(json!({"msg":"SESSION_CONNECTION_ESTABLISHED","WebRTC_connection_data":"https://ip:port","code":"1234","user_id":"id123"})).unwrap();
        assert_eq!(
            est,
            FromNode::SessionConnectionEstablished {
                webrtc_connection_data: "https://ip:port".into(),
                code: "1234".into(),
                user_id: "id123".into()
            }
        );
        let reg: FromNode = serde_json::from_value(json!({
            "verb":"REGISTER_NODE","server_name":"node-a","ip":"10.0.0.5","port":"7443",
            "max_sessions":4,"auth":"00",
            "apps":[{"rc_name":"SomeRC","info":{"description":[{"en":"demo"},{"ru":"демо"}]}}]
        }))
        .unwrap();
        let FromNode::Register(reg) = reg else {
            panic!()
        };
        assert_eq!(reg.apps[0].description("ru"), Some("демо"));
        let hb: FromNode = serde_json::from_value(
            json!({"verb":"HEARTBEAT","sessions":1,"participants":3,"cpu":0.25}),
        )
        .unwrap();
        assert_eq!(
            hb,
            FromNode::Heartbeat(Heartbeat {
                sessions: 1,
                participants: 3,
                cpu: 0.25,
                active: vec![],
                recording_slots: 0,
                other_recordings: 0,
            })
        );
        let chat: FromNode = serde_json::from_value(json!({
            "msg":"CALL_EVENT","call":"c1","at_ms":5,"event":"chat","seq":3,"participant":"p2","text":"hi"
        }))
        .unwrap();
        assert_eq!(
            chat,
            FromNode::CallEvent(Box::new(CallEvent {
                call: "c1".into(),
                at_ms: 5,
                event: "chat".into(),
                seq: Some(3),
                participant: Some("p2".into()),
                text: Some("hi".into()),
                ..CallEvent::default()
            }))
        );
        let hb = FromNode::Heartbeat(Heartbeat {
            sessions: 1,
            recording_slots: 4,
            other_recordings: 1,
            ..Heartbeat::default()
        });
        same(
            &hb,
            json!({"verb":"HEARTBEAT","sessions":1,"participants":0,"cpu":0.0,"recording_slots":4,"other_recordings":1}),
        );
        for m in [
            FromNode::SessionEnded {
                code: "1".into(),
                reason: "empty".into(),
            },
            FromNode::ParticipantLeft {
                code: "1".into(),
                user_id: "u".into(),
            },
            FromNode::CreateSessionFailed {
                code: "1".into(),
                reason: "full".into(),
            },
        ] {
            let back: FromNode = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
            assert_eq!(back, m);
        }
        for m in [
            ToNode::Challenge { nonce: "ab".into() },
            ToNode::Registered {
                heartbeat_interval_seconds: 5,
                sessions: vec!["1234".into()],
            },
            ToNode::EndSession {
                code: "1".into(),
                reason: "idle".into(),
            },
            ToNode::Error {
                code: "AUTH_FAILED".into(),
                message: "no".into(),
            },
        ] {
            let back: ToNode = serde_json::from_str(&m.to_json()).unwrap();
            assert_eq!(back, m);
        }
    }
}
