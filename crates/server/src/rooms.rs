//! Rooms by join code: code generation, participant counts and room end.
//!
//! The registry maps each live join code to its SFU room. A code is random digits, unique
//! among live rooms: `code_length` of them while few rooms are live, more as rooms fill the
//! space ([`code_length_for`]: at most one code in [`CODES_PER_LIVE_ROOM`] of a length is
//! live, so a guess finds a room at most 1% of the time and codes stay as short as that
//! allows); at most `max_rooms` rooms live at once. Guessing is limited per client
//! ([`crate::guesses`]). A room ends (the SFU closes it and the code is free again)
//! `empty_room_grace` after its last participant left, or `unused_room_ttl` after it was made
//! if nobody ever joined. [`spawn_reaper`] checks once a second.
//!
//! Times are passed in as [`Instant`]s so the rules are tested without sleeping.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orbita_coordinator::logic::{random_code, random_hex};
use orbita_sfu::RoomId;
use parking_lot::Mutex;

use crate::backend::MediaBackend;

pub use orbita_coordinator::logic::{
    code_length_for, code_space, CODES_PER_LIVE_ROOM, MAX_CODE_LENGTH,
};

/// The registry's limits and timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRules {
    /// Digits per generated code while few rooms are live (the minimum: [`code_length_for`]).
    pub code_length: usize,
    /// Most live rooms.
    pub max_rooms: usize,
    /// Most participants per room.
    pub max_participants: usize,
    /// How long an empty room lives on after its last participant left.
    pub empty_room_grace: Duration,
    /// How long a never-joined room lives.
    pub unused_room_ttl: Duration,
}

impl RoomRules {
    /// The rules from the server settings.
    pub fn from_settings(s: &crate::Settings) -> RoomRules {
        RoomRules {
            code_length: s.code_length,
            max_rooms: s.max_rooms,
            max_participants: s.max_participants_per_room,
            empty_room_grace: s.empty_room_grace(),
            unused_room_ttl: s.unused_room_ttl(),
        }
    }

    /// The most live rooms: `max_rooms`, and at most one per [`CODES_PER_LIVE_ROOM`] codes of
    /// [`MAX_CODE_LENGTH`] digits.
    pub fn room_capacity(&self) -> usize {
        let most = code_space(MAX_CODE_LENGTH) / CODES_PER_LIVE_ROOM;
        self.max_rooms
            .min(usize::try_from(most).unwrap_or(usize::MAX))
    }
}

/// Whether two secrets are equal, in time that depends only on their lengths.
fn same_secret(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A newly made room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedRoom {
    /// Its join code.
    pub code: String,
    /// Its id in the SFU.
    pub id: RoomId,
    /// The secret that lets its holder publish into the room by WHIP.
    pub publish_token: String,
    /// The secret that makes its holder the call's agent at `join` (given to whoever created
    /// the room or the session).
    pub host_key: String,
}

/// Why no room could be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateError {
    /// As many rooms live as the limits allow.
    AtCapacity {
        /// The limit.
        capacity: usize,
    },
    /// [`RoomRegistry::create_with_code`]: a live room has that code already.
    CodeTaken {
        /// The code asked for.
        code: String,
    },
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreateError::AtCapacity { capacity } => write!(
                f,
                "the server already hosts its maximum of {capacity} rooms; try again later"
            ),
            CreateError::CodeTaken { code } => {
                write!(f, "a live room already has the code {code}")
            }
        }
    }
}

impl std::error::Error for CreateError {}

/// Why a participant could not enter a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnterError {
    /// No live room has the code.
    UnknownCode,
    /// The room has `max_participants` participants.
    Full {
        /// The limit.
        max: usize,
    },
}

/// A public view of one room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    /// Join code.
    pub code: String,
    /// SFU room id.
    pub id: RoomId,
    /// Participants in it now.
    pub participants: usize,
    /// Whether it is to be recorded from its first participant on.
    pub record: bool,
    /// Whether its recording was started by policy (at its first join) already.
    pub auto_recorded: bool,
    /// The account that created it, when one did (its recordings are theirs).
    pub owner: Option<String>,
    /// Its app (a coordinator session's `rc_name`; [`PLAIN_ROOM_APP`] for a room made here).
    pub app: String,
}

/// The app of a plain video room (`POST /api/rooms` makes one without the coordinator).
pub const PLAIN_ROOM_APP: &str = "video-room";

#[derive(Debug)]
struct Room {
    id: RoomId,
    publish_token: String,
    host_key: String,
    /// Record from the first participant on (`POST /api/rooms` with `record`).
    record: bool,
    /// The policy's start was tried (once per room).
    auto_recorded: bool,
    /// The account that created it.
    owner: Option<String>,
    /// Its app, when not a plain room.
    app: Option<String>,
    participants: usize,
    /// Publish-only ingests (WHIP: OBS, a session's app). They neither fill the room nor
    /// keep it alive: a room whose people have all left ends even while its app publishes.
    ingests: usize,
    created: Instant,
    /// When the room last became empty; `None` while occupied or never joined.
    empty_since: Option<Instant>,
}

impl Room {
    /// Whether the room has ended by `now`.
    fn expired(&self, now: Instant, rules: &RoomRules) -> bool {
        if self.participants > 0 {
            return false;
        }
        match self.empty_since {
            Some(since) => now.saturating_duration_since(since) >= rules.empty_room_grace,
            None => now.saturating_duration_since(self.created) >= rules.unused_room_ttl,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    rooms: HashMap<String, Room>,
}

/// The live rooms by code. Shared (`Arc`) by the HTTP API, the signalling connections and the
/// reaper.
pub struct RoomRegistry {
    rules: RoomRules,
    backend: Arc<dyn MediaBackend>,
    inner: Mutex<Inner>,
    closed: Mutex<Option<ClosedHook>>,
}

/// Told of each room that closes: its code, and why (`ended`: closed on request; `empty`: its
/// time was up, empty or unused).
pub type ClosedHook = Box<dyn Fn(&str, &str) + Send + Sync>;

impl RoomRegistry {
    /// An empty registry that makes and closes rooms in `backend`.
    pub fn new(rules: RoomRules, backend: Arc<dyn MediaBackend>) -> RoomRegistry {
        RoomRegistry {
            rules,
            backend,
            inner: Mutex::new(Inner::default()),
            closed: Mutex::new(None),
        }
    }

    /// Tell `hook` of every room that closes from now on.
    pub fn on_closed(&self, hook: ClosedHook) {
        *self.closed.lock() = Some(hook);
    }

    fn tell_closed(&self, code: &str, reason: &str) {
        if let Some(hook) = self.closed.lock().as_ref() {
            hook(code, reason);
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &RoomRules {
        &self.rules
    }

    /// Make a room with a fresh code, at `now`.
    pub fn create(&self, now: Instant) -> Result<CreatedRoom, CreateError> {
        let capacity = self.rules.room_capacity();
        let mut inner = self.inner.lock();
        if inner.rooms.len() >= capacity {
            return Err(CreateError::AtCapacity { capacity });
        }
        // At most 1% of the codes of this length are taken, so a draw almost always succeeds.
        let mut rng = rand::rng();
        let length = code_length_for(inner.rooms.len(), self.rules.code_length);
        let code = loop {
            let code = random_code(length, &mut rng);
            if !inner.rooms.contains_key(&code) {
                break code;
            }
        };
        // `Sfu::create_room` only hands the room to a worker, so it is fine under the lock,
        // which keeps the code reserved and the id recorded in one step.
        let id = self.backend.create_room(&code);
        let publish_token = random_hex(16);
        let host_key = random_hex(16);
        inner.rooms.insert(
            code.clone(),
            Room {
                id,
                publish_token: publish_token.clone(),
                host_key: host_key.clone(),
                record: false,
                auto_recorded: false,
                owner: None,
                app: None,
                participants: 0,
                ingests: 0,
                created: now,
                empty_since: None,
            },
        );
        tracing::info!(%code, room = id, "room created");
        Ok(CreatedRoom {
            code,
            id,
            publish_token,
            host_key,
        })
    }

    /// Make a room with the code given (a cluster node: the coordinator chose the code), at
    /// `now`. Refused when a live room has that code or the registry is full.
    pub fn create_with_code(&self, code: &str, now: Instant) -> Result<CreatedRoom, CreateError> {
        let capacity = self.rules.room_capacity();
        let mut inner = self.inner.lock();
        if inner.rooms.contains_key(code) {
            return Err(CreateError::CodeTaken {
                code: code.to_string(),
            });
        }
        if inner.rooms.len() >= capacity {
            return Err(CreateError::AtCapacity { capacity });
        }
        let id = self.backend.create_room(code);
        let publish_token = random_hex(16);
        let host_key = random_hex(16);
        inner.rooms.insert(
            code.to_string(),
            Room {
                id,
                publish_token: publish_token.clone(),
                host_key: host_key.clone(),
                record: false,
                auto_recorded: false,
                owner: None,
                app: None,
                participants: 0,
                ingests: 0,
                created: now,
                empty_since: None,
            },
        );
        tracing::info!(%code, room = id, "room created with a given code");
        Ok(CreatedRoom {
            code: code.to_string(),
            id,
            publish_token,
            host_key,
        })
    }

    /// End the room with this code now (a cluster node: the coordinator ended the session):
    /// close it in the SFU and free its code. Returns its SFU id, `None` when no live room has
    /// the code.
    pub fn close(&self, code: &str) -> Option<RoomId> {
        let room = self.inner.lock().rooms.remove(code)?;
        tracing::info!(%code, room = room.id, "room closed");
        self.backend.close_room(room.id);
        self.tell_closed(code, "ended");
        Some(room.id)
    }

    /// Whether `token` is the WHIP publish token of the live room `code` (constant time).
    pub fn check_publish_token(&self, code: &str, token: &str) -> bool {
        let inner = self.inner.lock();
        inner
            .rooms
            .get(code)
            .is_some_and(|room| same_secret(&room.publish_token, token))
    }

    /// Whether `key` is the host key of the live room `code` (constant time).
    pub fn check_host_key(&self, code: &str, key: &str) -> bool {
        let inner = self.inner.lock();
        inner
            .rooms
            .get(code)
            .is_some_and(|room| same_secret(&room.host_key, key))
    }

    /// The room with this code, if it is live.
    pub fn get(&self, code: &str) -> Option<RoomInfo> {
        let inner = self.inner.lock();
        inner.rooms.get(code).map(|room| RoomInfo {
            code: code.to_string(),
            id: room.id,
            participants: room.participants,
            record: room.record,
            auto_recorded: room.auto_recorded,
            owner: room.owner.clone(),
            app: room
                .app
                .clone()
                .unwrap_or_else(|| PLAIN_ROOM_APP.to_string()),
        })
    }

    /// True the first time it is asked for the live room `code` (the policy's recording start
    /// is tried once per room), false after and for a room that is not live.
    pub fn claim_auto_record(&self, code: &str) -> bool {
        let mut inner = self.inner.lock();
        match inner.rooms.get_mut(code) {
            Some(room) if !room.auto_recorded => {
                room.auto_recorded = true;
                true
            }
            _ => false,
        }
    }

    /// The live room `code` runs the app `rc_name` (a coordinator session).
    pub fn set_app(&self, code: &str, rc_name: &str) {
        if let Some(room) = self.inner.lock().rooms.get_mut(code) {
            room.app = Some(rc_name.to_string());
        }
    }

    /// The live room `code` belongs to the account `owner` (who created it).
    pub fn set_owner(&self, code: &str, owner: String) {
        if let Some(room) = self.inner.lock().rooms.get_mut(code) {
            room.owner = Some(owner);
        }
    }

    /// Record the live room `code` from its first participant on. False when it is not live.
    pub fn set_record(&self, code: &str) -> bool {
        let mut inner = self.inner.lock();
        inner
            .rooms
            .get_mut(code)
            .map(|room| room.record = true)
            .is_some()
    }

    /// Take a place in the room with this code. The place is given back when the returned
    /// [`Seat`] is dropped.
    pub fn enter(self: &Arc<Self>, code: &str) -> Result<Seat, EnterError> {
        let mut inner = self.inner.lock();
        let room = inner.rooms.get_mut(code).ok_or(EnterError::UnknownCode)?;
        if room.participants >= self.rules.max_participants {
            return Err(EnterError::Full {
                max: self.rules.max_participants,
            });
        }
        room.participants += 1;
        room.empty_since = None;
        Ok(Seat {
            registry: Arc::clone(self),
            code: code.to_string(),
            room: room.id,
            ingest: false,
        })
    }

    /// Take an ingest place (a WHIP publisher) in the room with this code: at most `max` per
    /// room; it does not count as a participant, so it neither fills the room nor keeps it
    /// alive once its people have left.
    pub fn enter_ingest(self: &Arc<Self>, code: &str, max: usize) -> Result<Seat, EnterError> {
        let mut inner = self.inner.lock();
        let room = inner.rooms.get_mut(code).ok_or(EnterError::UnknownCode)?;
        if room.ingests >= max {
            return Err(EnterError::Full { max });
        }
        room.ingests += 1;
        Ok(Seat {
            registry: Arc::clone(self),
            code: code.to_string(),
            room: room.id,
            ingest: true,
        })
    }

    /// Give back a place in a room, at `now`.
    fn leave(&self, code: &str, room_id: RoomId, ingest: bool, now: Instant) {
        let mut inner = self.inner.lock();
        if let Some(room) = inner.rooms.get_mut(code).filter(|r| r.id == room_id) {
            if ingest {
                room.ingests = room.ingests.saturating_sub(1);
                return;
            }
            room.participants = room.participants.saturating_sub(1);
            if room.participants == 0 {
                room.empty_since = Some(now);
            }
        }
    }

    /// End the rooms whose time is up at `now`: close them in the SFU and free their codes.
    /// Returns the codes that were freed.
    pub fn reap(&self, now: Instant) -> Vec<String> {
        let ended: Vec<(String, RoomId)> = {
            let mut inner = self.inner.lock();
            let codes: Vec<String> = inner
                .rooms
                .iter()
                .filter(|(_, room)| room.expired(now, &self.rules))
                .map(|(code, _)| code.clone())
                .collect();
            codes
                .into_iter()
                .filter_map(|code| inner.rooms.remove(&code).map(|room| (code, room.id)))
                .collect()
        };
        for (code, id) in &ended {
            tracing::info!(%code, room = id, "room ended");
            self.backend.close_room(*id);
            self.tell_closed(code, "empty");
        }
        ended.into_iter().map(|(code, _)| code).collect()
    }

    /// Live rooms.
    pub fn room_count(&self) -> usize {
        self.inner.lock().rooms.len()
    }

    /// Participants over all rooms.
    pub fn participant_count(&self) -> usize {
        self.inner
            .lock()
            .rooms
            .values()
            .map(|r| r.participants)
            .sum()
    }
}

/// A participant's place in a room; dropping it gives the place back.
#[must_use = "dropping the seat leaves the room at once"]
pub struct Seat {
    registry: Arc<RoomRegistry>,
    code: String,
    room: RoomId,
    ingest: bool,
}

impl Seat {
    /// The room's join code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The room's SFU id.
    pub fn room(&self) -> RoomId {
        self.room
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.registry
            .leave(&self.code, self.room, self.ingest, Instant::now());
    }
}

/// Run [`RoomRegistry::reap`] once a second until the task is aborted.
pub fn spawn_reaper(registry: Arc<RoomRegistry>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let registry = Arc::clone(&registry);
            // Closing rooms calls into the SFU; keep that off the async worker threads.
            let _ = tokio::task::spawn_blocking(move || registry.reap(Instant::now())).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeBackend;
    use std::collections::HashSet;

    fn rules() -> RoomRules {
        RoomRules {
            code_length: 4,
            max_rooms: 1000,
            max_participants: 2,
            empty_room_grace: Duration::from_secs(30),
            unused_room_ttl: Duration::from_secs(3600),
        }
    }

    fn registry(rules: RoomRules) -> (Arc<RoomRegistry>, Arc<FakeBackend>) {
        let backend = Arc::new(FakeBackend::default());
        (Arc::new(RoomRegistry::new(rules, backend.clone())), backend)
    }

    #[test]
    fn codes_are_digits_of_the_configured_length() {
        for len in [4, 7, 12] {
            let (reg, _) = registry(RoomRules {
                code_length: len,
                ..rules()
            });
            let room = reg.create(Instant::now()).unwrap();
            assert_eq!(room.code.len(), len);
            assert!(
                room.code.bytes().all(|b| b.is_ascii_digit()),
                "{}",
                room.code
            );
        }
    }

    #[test]
    fn codes_grow_longer_so_that_at_most_one_in_a_hundred_is_live() {
        assert_eq!(code_length_for(0, 4), 4);
        assert_eq!(code_length_for(99, 4), 4);
        assert_eq!(code_length_for(100, 4), 5);
        assert_eq!(code_length_for(999, 4), 5);
        assert_eq!(code_length_for(1000, 4), 6);
        assert_eq!(code_length_for(0, 6), 6, "never shorter than code_length");
        assert_eq!(code_length_for(usize::MAX, 4), MAX_CODE_LENGTH);
        let (reg, backend) = registry(RoomRules {
            max_rooms: 2000,
            ..rules()
        });
        let now = Instant::now();
        let codes: HashSet<String> = (0..2000).map(|_| reg.create(now).unwrap().code).collect();
        assert_eq!(codes.len(), 2000, "unique");
        let of_length = |len: usize| codes.iter().filter(|c| c.len() == len).count();
        assert_eq!((of_length(4), of_length(5), of_length(6)), (100, 900, 1000));
        for len in 4..=6 {
            assert!(of_length(len) as u64 * CODES_PER_LIVE_ROOM <= code_space(len));
        }
        assert_eq!(
            reg.create(now),
            Err(CreateError::AtCapacity { capacity: 2000 })
        );
        assert_eq!(backend.rooms_created(), 2000);
    }

    #[test]
    fn max_rooms_is_enforced_and_reaping_frees_room() {
        let (reg, _) = registry(RoomRules {
            max_rooms: 2,
            ..rules()
        });
        let t0 = Instant::now();
        reg.create(t0).unwrap();
        reg.create(t0).unwrap();
        assert!(matches!(
            reg.create(t0),
            Err(CreateError::AtCapacity { capacity: 2 })
        ));
        assert_eq!(reg.reap(t0 + Duration::from_secs(3600)).len(), 2);
        assert!(reg.create(t0 + Duration::from_secs(3600)).is_ok());
    }

    #[test]
    fn rooms_fill_up_and_seats_are_given_back() {
        let (reg, _) = registry(rules());
        let code = reg.create(Instant::now()).unwrap().code;
        let a = reg.enter(&code).unwrap();
        let b = reg.enter(&code).unwrap();
        assert_eq!(reg.enter(&code).err(), Some(EnterError::Full { max: 2 }));
        assert_eq!(reg.get(&code).unwrap().participants, 2);
        assert_eq!(reg.participant_count(), 2);
        drop(a);
        assert_eq!(reg.get(&code).unwrap().participants, 1);
        let _c = reg.enter(&code).unwrap();
        drop(b);
        assert_eq!(reg.enter("0000x").err(), Some(EnterError::UnknownCode));
    }

    #[test]
    fn ingest_seats_neither_fill_nor_keep_a_room() {
        let (reg, _) = registry(rules());
        let t0 = Instant::now();
        let room = reg.create(t0).unwrap();
        let app = reg.enter_ingest(&room.code, 1).unwrap();
        assert_eq!(
            reg.enter_ingest(&room.code, 1).err(),
            Some(EnterError::Full { max: 1 })
        );
        // Two people still fit (max_participants is 2) beside the ingest.
        let a = reg.enter(&room.code).unwrap();
        let b = reg.enter(&room.code).unwrap();
        assert_eq!(reg.get(&room.code).unwrap().participants, 2);
        drop((a, b));
        // The people left; the publishing app does not keep the room alive.
        let left = Instant::now();
        assert_eq!(
            reg.reap(left + Duration::from_secs(30)),
            vec![room.code.clone()]
        );
        drop(app);
        assert!(reg.get(&room.code).is_none());
    }

    #[test]
    fn empty_room_ends_after_grace_and_code_is_freed() {
        let (reg, backend) = registry(rules());
        let t0 = Instant::now();
        let room = reg.create(t0).unwrap();
        let seat = reg.enter(&room.code).unwrap();
        // Occupied rooms never end, however old.
        assert!(reg.reap(t0 + Duration::from_secs(100_000)).is_empty());
        drop(seat);
        let left = Instant::now();
        assert!(reg.reap(left + Duration::from_secs(29)).is_empty());
        // Someone rejoining within the grace keeps the room.
        let seat = reg.enter(&room.code).unwrap();
        drop(seat);
        let left = Instant::now();
        assert!(reg.reap(left + Duration::from_secs(29)).is_empty());
        assert_eq!(
            reg.reap(left + Duration::from_secs(30)),
            vec![room.code.clone()]
        );
        assert!(reg.get(&room.code).is_none(), "code is free again");
        assert_eq!(reg.enter(&room.code).err(), Some(EnterError::UnknownCode));
        assert_eq!(backend.rooms_closed(), vec![room.id]);
        assert_eq!(reg.room_count(), 0);
    }

    #[test]
    fn unused_room_ends_after_ttl() {
        let (reg, backend) = registry(rules());
        let t0 = Instant::now();
        let room = reg.create(t0).unwrap();
        assert!(reg.reap(t0 + Duration::from_secs(3599)).is_empty());
        assert_eq!(reg.reap(t0 + Duration::from_secs(3600)), vec![room.code]);
        assert_eq!(backend.rooms_closed(), vec![room.id]);
    }

    #[test]
    fn a_late_seat_of_an_ended_room_does_not_touch_a_new_room_with_its_code() {
        let (reg, _) = registry(RoomRules {
            empty_room_grace: Duration::ZERO,
            ..rules()
        });
        let room = reg.create(Instant::now()).unwrap();
        let seat = reg.enter(&room.code).unwrap();
        // Simulate the code being reused by another room while the old seat lingers.
        reg.leave(&room.code, room.id, false, Instant::now());
        reg.reap(Instant::now());
        reg.inner.lock().rooms.insert(
            room.code.clone(),
            Room {
                id: room.id + 1000,
                publish_token: String::new(),
                host_key: String::new(),
                record: false,
                auto_recorded: false,
                owner: None,
                app: None,
                participants: 1,
                ingests: 0,
                created: Instant::now(),
                empty_since: None,
            },
        );
        drop(seat);
        assert_eq!(reg.get(&room.code).unwrap().participants, 1);
    }

    #[test]
    fn rooms_with_given_codes_refuse_taken_codes_and_close() {
        let (reg, backend) = registry(RoomRules {
            max_rooms: 2,
            ..rules()
        });
        let t0 = Instant::now();
        let a = reg.create_with_code("1234", t0).unwrap();
        assert_eq!(a.code, "1234");
        assert_eq!(a.publish_token.len(), 32);
        assert_eq!(
            reg.create_with_code("1234", t0),
            Err(CreateError::CodeTaken {
                code: "1234".into()
            })
        );
        reg.create_with_code("5678", t0).unwrap();
        assert!(matches!(
            reg.create_with_code("0000", t0),
            Err(CreateError::AtCapacity { capacity: 2 })
        ));
        assert_eq!(reg.close("1234"), Some(a.id));
        assert_eq!(reg.close("1234"), None);
        assert!(reg.get("1234").is_none());
        assert_eq!(backend.rooms_closed(), vec![a.id]);
        reg.create_with_code("1234", t0).unwrap();
    }

    #[test]
    fn capacity_is_capped_by_the_longest_code_space() {
        assert_eq!(code_space(4), 10_000);
        assert_eq!(code_space(12), 1_000_000_000_000);
        let r = RoomRules {
            max_rooms: usize::MAX,
            ..rules()
        };
        assert_eq!(r.room_capacity(), 10_000_000_000);
    }
}
