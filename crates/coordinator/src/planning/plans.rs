//! Planning on the coordinator: book, move, cancel and list plans, and a day's free slots.
//! `PLAN_SESSION` (WebSocket) and `/api/plans`, `/api/slots` (REST) both go through here, so
//! they check the same things and refuse with the same meanings ([`Refusal`]).

use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use rand::rngs::StdRng;
use rand::SeedableRng;
use tracing::{info, warn};

use super::slots::{day_candidates, Candidate};
use super::tz::{self, format_local, local_to_utc};
use crate::accounts::{Role, UseKind, User};
use crate::clock::{Millis, DAY, MINUTE};
use crate::config::Settings;
use crate::store::{PlaceError, PlanChangeError, PlanDetails, PlanEntry, PlanFilter};
use crate::verbs::{ErrorCode, ErrorReply, ToClient};
use crate::{Coordinator, Outcome};

/// Why a planning request was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// As the WebSocket verbs refuse (REST: the code in lower case, see [`Refusal::status`]).
    Verb(ErrorReply),
    /// The time zone is not an IANA name (WebSocket `BAD_FIELD`, REST `400 bad_time_zone`).
    BadTimeZone(String),
    /// A customer field breaks its rule (WebSocket `BAD_FIELD`, REST `400 bad_request`).
    BadField(String),
    /// No such plan, or not one the caller may see (REST `404 not_found`).
    NotFound(String),
    /// The plan's session is running: it can no longer be moved or cancelled (REST
    /// `409 plan_started`).
    PlanStarted(String),
}

impl Refusal {
    fn verb(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal::Verb(ErrorReply {
            code,
            message: message.into(),
            retry_after_seconds: None,
        })
    }

    /// The refusal an [`Outcome`] from the accounts' checks carries.
    fn of_outcome(o: Outcome) -> Refusal {
        match o.reply {
            Some(ToClient::Error(e)) => Refusal::Verb(e),
            other => Refusal::verb(ErrorCode::Internal, format!("unexpected answer {other:?}")),
        }
    }

    /// The WebSocket `ERROR` for it.
    pub fn to_reply(&self) -> ErrorReply {
        let (code, message) = match self {
            Refusal::Verb(e) => return e.clone(),
            Refusal::BadTimeZone(m) | Refusal::BadField(m) => (ErrorCode::BadField, m.clone()),
            // Not produced by the verbs (they neither move nor cancel plans).
            Refusal::NotFound(m) | Refusal::PlanStarted(m) => (ErrorCode::Forbidden, m.clone()),
        };
        ErrorReply {
            code,
            message,
            retry_after_seconds: None,
        }
    }

    /// The REST status and error code for it.
    pub fn status(&self) -> (u16, String) {
        match self {
            Refusal::Verb(ErrorReply { code, .. }) => {
                let status = match code {
                    ErrorCode::SlotTaken => 409,
                    ErrorCode::UnknownRc => 404,
                    ErrorCode::LoginRequired => 401,
                    ErrorCode::Forbidden
                    | ErrorCode::QuotaExceeded
                    | ErrorCode::DurationOverQuota => 403,
                    ErrorCode::CodesExhausted => 503,
                    ErrorCode::Internal => 500,
                    _ => 400,
                };
                (status, code.as_str().to_ascii_lowercase())
            }
            Refusal::BadTimeZone(_) => (400, "bad_time_zone".into()),
            Refusal::BadField(_) => (400, "bad_request".into()),
            Refusal::NotFound(_) => (404, "not_found".into()),
            Refusal::PlanStarted(_) => (409, "plan_started".into()),
        }
    }

    /// The text for people.
    pub fn message(&self) -> &str {
        match self {
            Refusal::Verb(ErrorReply { message: m, .. })
            | Refusal::BadTimeZone(m)
            | Refusal::BadField(m)
            | Refusal::NotFound(m)
            | Refusal::PlanStarted(m) => m,
        }
    }
}

/// The customer fields of a plan (REST only), checked by [`Customer::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    /// At most 100 characters.
    pub name: Option<String>,
    /// `+`, digits, spaces, `-()`; at most 32 characters.
    pub phone: Option<String>,
    /// As an account's e-mail.
    pub email: Option<String>,
    /// At most 2,000 characters.
    pub note: Option<String>,
}

/// Most characters of a customer's name.
pub const MAX_CUSTOMER_NAME: usize = 100;
/// Most characters of a customer's phone.
pub const MAX_CUSTOMER_PHONE: usize = 32;
/// Most characters of a plan's note.
pub const MAX_NOTE: usize = 2000;

fn trimmed(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Customer {
    /// Trims the fields (blank ones become `None`) and checks them; the error names the field.
    pub fn check(&self) -> Result<Customer, Refusal> {
        let c = Customer {
            name: trimmed(&self.name),
            phone: trimmed(&self.phone),
            email: trimmed(&self.email).map(|e| e.to_lowercase()),
            note: self
                .note
                .as_deref()
                .filter(|n| !n.trim().is_empty())
                .map(str::to_string),
        };
        if let Some(n) = &c.name {
            if n.chars().count() > MAX_CUSTOMER_NAME || n.chars().any(char::is_control) {
                return Err(Refusal::BadField(format!(
                    "customer_name: at most {MAX_CUSTOMER_NAME} characters, no control characters"
                )));
            }
        }
        if let Some(p) = &c.phone {
            let ok = p.chars().count() <= MAX_CUSTOMER_PHONE
                && p.chars().any(|ch| ch.is_ascii_digit())
                && p.chars()
                    .all(|ch| ch.is_ascii_digit() || " +-()".contains(ch));
            if !ok {
                return Err(Refusal::BadField(format!(
                    "customer_phone {p:?}: digits, spaces, + - ( ) only, at most {MAX_CUSTOMER_PHONE} characters"
                )));
            }
        }
        if let Some(e) = &c.email {
            if crate::accounts::password::normalize_email(e).is_err() {
                return Err(Refusal::BadField(format!(
                    "customer_email {e:?} does not look like name@domain"
                )));
            }
        }
        if let Some(n) = &c.note {
            if n.chars().count() > MAX_NOTE {
                return Err(Refusal::BadField(format!(
                    "note: at most {MAX_NOTE} characters"
                )));
            }
        }
        Ok(c)
    }
}

/// A plan to book: its app, local start in `tz`, length, and customer.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The app.
    pub rc_name: String,
    /// The local date.
    pub date: NaiveDate,
    /// The local time.
    pub time: NaiveTime,
    /// The time zone of `date` and `time`.
    pub tz: Tz,
    /// The slot's length (`None`: the `plan_default_minutes` setting).
    pub duration_minutes: Option<u64>,
    /// For whom (checked with [`Customer::check`] when booking).
    pub customer: Customer,
    /// Record the session (besides what the recording policy records anyway).
    pub record: bool,
}

/// One entry of a day's slot list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Its start (UTC epoch ms).
    pub start: Millis,
    /// The current minute (today's first entry).
    pub now: bool,
    /// A plan of the asked length starting then would be accepted now.
    pub free: bool,
}

/// Which plans to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The caller's own.
    Mine,
    /// Everyone's (supervisor, admin).
    All,
}

/// Supervisors and administrators manage everyone's plans; agents their own.
pub fn manages_all(user: &User) -> bool {
    matches!(user.role, Role::Admin | Role::Supervisor)
}

impl Coordinator {
    fn plan_internal(&self, e: impl std::fmt::Display) -> Refusal {
        warn!(error = %e, "planning: registry failure");
        Refusal::verb(
            ErrorCode::Internal,
            "the coordinator could not reach its registry; try again",
        )
    }

    /// `minutes` (or the default) within the allowed slot lengths.
    fn plan_minutes(&self, minutes: Option<u64>) -> Result<u64, Refusal> {
        let s = self.settings();
        match minutes {
            None => Ok(s.plan_default_minutes),
            Some(m) if (s.plan_min_minutes..=s.plan_max_minutes).contains(&m) => Ok(m),
            Some(m) => Err(Refusal::verb(
                ErrorCode::BadDuration,
                format!(
                    "duration_minutes {m} must be a whole number from {} to {}",
                    s.plan_min_minutes, s.plan_max_minutes
                ),
            )),
        }
    }

    /// The UTC start of a local time, if it exists, has not passed (the current minute may
    /// still be booked) and lies within the planning horizon.
    fn plan_start(
        &self,
        date: NaiveDate,
        time: NaiveTime,
        zone: Tz,
        now: Millis,
    ) -> Result<Millis, Refusal> {
        let start =
            local_to_utc(zone, date, time).map_err(|e| Refusal::verb(ErrorCode::BadTime, e))?;
        let local = format!(
            "{} {} ({})",
            date.format("%Y-%m-%d"),
            time.format("%H:%M"),
            zone.name()
        );
        if start < now - now.rem_euclid(MINUTE) {
            return Err(Refusal::verb(
                ErrorCode::SlotInPast,
                format!("{local} has passed"),
            ));
        }
        let days = self.settings().plan_horizon_days;
        if start > now + (days as Millis) * DAY {
            return Err(Refusal::verb(
                ErrorCode::SlotTooFar,
                format!("{local}: slots can be planned at most {days} days ahead"),
            ));
        }
        Ok(start)
    }

    async fn known_rc(&self, rc_name: &str) -> Result<(), Refusal> {
        match self.registry().rc_known(rc_name).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Refusal::verb(
                ErrorCode::UnknownRc,
                format!("no server offers {rc_name:?}"),
            )),
            Err(e) => Err(self.plan_internal(e)),
        }
    }

    /// Books a plan for `caller` (`user_id`: the WebSocket client id, or `"api"`): the slot
    /// must exist in its zone, not have passed, lie within the horizon, fit the caller's quota
    /// and have room on the app's servers; the plan's details (owner, zone, customer) are
    /// stored with it and the use counts against the caller's quota.
    pub async fn book_plan(
        &self,
        user_id: &str,
        caller: Option<&User>,
        req: &PlanRequest,
        now: Millis,
    ) -> Result<PlanEntry, Refusal> {
        if caller.is_none() {
            // Guests never plan: say so before weighing anything else.
            self.authorize_creator(None, 0, UseKind::Plan, now)
                .await
                .map_err(Refusal::of_outcome)?;
        }
        let minutes = self.plan_minutes(req.duration_minutes)?;
        let customer = req.customer.check()?;
        let start = self.plan_start(req.date, req.time, req.tz, now)?;
        let end = start + Settings::min_ms(minutes);
        let owner = self
            .authorize_creator(caller, minutes, UseKind::Plan, now)
            .await
            .map_err(Refusal::of_outcome)?;
        let caller = owner.as_ref().map(|g| &g.user);
        let booked = async {
            self.known_rc(&req.rc_name).await?;
            let details = PlanDetails {
                owner_id: caller.map(|u| u.id),
                tz: req.tz.name().to_string(),
                customer_name: customer.name,
                customer_phone: customer.phone,
                customer_email: customer.email,
                note: customer.note,
                record: req.record,
            };
            let (unplanned_ms, code_length, max_fraction) = self.plan_limits();
            let mut rng = StdRng::from_rng(&mut rand::rng());
            let plan = self
                .registry()
                .plan_with_details(
                    &req.rc_name,
                    start,
                    end,
                    user_id,
                    &details,
                    unplanned_ms,
                    code_length,
                    max_fraction,
                    now,
                    &mut rng,
                )
                .await
                .map_err(|e| match e {
                    PlaceError::Busy | PlaceError::NoFreeRecorder => Refusal::verb(
                        ErrorCode::SlotTaken,
                        format!(
                            "no running server of {:?} has room at some time between {} and {minutes} minutes later ({})",
                            req.rc_name,
                            format_local(req.tz, start),
                            req.tz.name()
                        ),
                    ),
                    PlaceError::CodesExhausted => Refusal::verb(
                        ErrorCode::CodesExhausted,
                        "too many sessions are live or planned; try again later",
                    ),
                    PlaceError::Store(e) => self.plan_internal(e),
                })?;
            info!(code = %plan.code, rc_name = %plan.rc_name, start, end, owner = ?details.owner_id, "session planned");
            Ok::<_, Refusal>((plan, details))
        }
        .await;
        let (plan, details) = match booked {
            Ok(booked) => booked,
            Err(refusal) => {
                self.release_use(owner.as_ref()).await;
                return Err(refusal);
            }
        };
        self.record_use(owner.as_ref(), &plan.code).await;
        self.plans_changed().await;
        Ok(PlanEntry {
            plan,
            owner_name: caller.map(|u| u.name.clone()),
            owner_email: caller.map(|u| u.email.clone()),
            details,
            started: false,
        })
    }

    /// Plan `code` if `caller` may manage it (their own, or any for supervisors and
    /// administrators) and its slot is not over; otherwise `NotFound` (an agent learns nothing
    /// of others' codes).
    pub async fn managed_plan(
        &self,
        caller: &User,
        code: &str,
        now: Millis,
    ) -> Result<PlanEntry, Refusal> {
        let missing = || Refusal::NotFound(format!("you have no plan {code:?}"));
        let valid = code.len() <= 16 && code.bytes().all(|b| b.is_ascii_digit());
        if !valid || code.is_empty() {
            return Err(missing());
        }
        let entry = match self.registry().plan_entry(code).await {
            Ok(Some(e)) => e,
            Ok(None) => return Err(missing()),
            Err(e) => return Err(self.plan_internal(e)),
        };
        if entry.plan.end_ms <= now
            || !(manages_all(caller) || entry.details.owner_id == Some(caller.id))
        {
            return Err(missing());
        }
        Ok(entry)
    }

    fn change_refusal(&self, code: &str, e: PlanChangeError, what: &str) -> Refusal {
        match e {
            PlanChangeError::NotFound => Refusal::NotFound(format!("you have no plan {code:?}")),
            PlanChangeError::Started => Refusal::PlanStarted(format!(
                "plan {code}'s session is running; it can no longer be {what}"
            )),
            PlanChangeError::Busy => Refusal::verb(
                ErrorCode::SlotTaken,
                "no running server of the plan's app has room at some time of the new slot",
            ),
            PlanChangeError::Store(e) => self.plan_internal(e),
        }
    }

    /// Moves plan `code` to local `date` `time` in `zone` (keeping its length unless
    /// `duration_minutes` is given), with the checks of [`Coordinator::book_plan`]; the plan is
    /// not counted against itself and moving does not count against a quota.
    #[allow(clippy::too_many_arguments)]
    pub async fn move_plan(
        &self,
        caller: &User,
        code: &str,
        date: NaiveDate,
        time: NaiveTime,
        zone: Tz,
        duration_minutes: Option<u64>,
        now: Millis,
    ) -> Result<PlanEntry, Refusal> {
        let entry = self.managed_plan(caller, code, now).await?;
        let minutes = match duration_minutes {
            Some(m) => self.plan_minutes(Some(m))?,
            None => ((entry.plan.end_ms - entry.plan.start_ms) / MINUTE).max(0) as u64,
        };
        let start = self.plan_start(date, time, zone, now)?;
        self.check_plan_length(caller, minutes).await?;
        let end = start + Settings::min_ms(minutes);
        let (unplanned_ms, _, _) = self.plan_limits();
        let plan = self
            .registry()
            .move_plan(code, start, end, Some(zone.name()), unplanned_ms, now)
            .await
            .map_err(|e| self.change_refusal(code, e, "moved"))?;
        info!(code, start, end, by = caller.id, "plan moved");
        self.plans_changed().await;
        let mut details = entry.details;
        details.tz = zone.name().to_string();
        Ok(PlanEntry {
            plan,
            details,
            ..entry
        })
    }

    /// A moved plan's length against the mover's `max_minutes` (as booking checks it).
    async fn check_plan_length(&self, caller: &User, minutes: u64) -> Result<(), Refusal> {
        let quota = self
            .accounts()
            .effective_quota(caller)
            .await
            .map_err(|e| self.plan_internal(e))?;
        match quota.max_minutes {
            Some(limit) if minutes > limit => Err(Refusal::verb(
                ErrorCode::DurationOverQuota,
                crate::accounts::QuotaRefusal::TooLong { limit, minutes }.message(),
            )),
            _ => Ok(()),
        }
    }

    /// Cancels plan `code` (its code is freed; the quota use is not given back).
    pub async fn cancel_plan(&self, caller: &User, code: &str, now: Millis) -> Result<(), Refusal> {
        self.managed_plan(caller, code, now).await?;
        self.registry()
            .cancel_plan(code, now)
            .await
            .map_err(|e| self.change_refusal(code, e, "cancelled"))?;
        info!(code, by = caller.id, "plan cancelled");
        self.plans_changed().await;
        Ok(())
    }

    /// Plans overlapping `[from, to)`: the caller's own, or everyone's (`Scope::All`, only
    /// for supervisors and administrators).
    pub async fn list_plans(
        &self,
        caller: &User,
        scope: Scope,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<PlanEntry>, Refusal> {
        if scope == Scope::All && !manages_all(caller) {
            return Err(Refusal::verb(
                ErrorCode::Forbidden,
                "only supervisors and administrators see everyone's plans",
            ));
        }
        let filter = PlanFilter {
            owner_id: (scope == Scope::Mine).then_some(caller.id),
            from,
            to,
            limit: crate::store::MAX_PLANS_LISTED,
        };
        self.registry()
            .list_plans(&filter)
            .await
            .map_err(|e| self.plan_internal(e))
    }

    /// The slots of local day `date` in `zone` for plans of `rc_name` lasting
    /// `duration_minutes`, every `step_minutes` (see [`day_candidates`]), each with whether
    /// it is free now (the check of `PLAN_SESSION`, the day's bookings read once).
    pub async fn day_slots(
        &self,
        rc_name: &str,
        date: NaiveDate,
        zone: Tz,
        duration_minutes: Option<u64>,
        step_minutes: u64,
        now: Millis,
    ) -> Result<Vec<Slot>, Refusal> {
        let minutes = self.plan_minutes(duration_minutes)?;
        if !(MIN_STEP_MINUTES..=MAX_STEP_MINUTES).contains(&step_minutes) {
            return Err(Refusal::BadField(format!(
                "step_minutes {step_minutes} must be {MIN_STEP_MINUTES} to {MAX_STEP_MINUTES}"
            )));
        }
        self.known_rc(rc_name).await?;
        let latest = now + (self.settings().plan_horizon_days as Millis) * DAY;
        let candidates: Vec<Candidate> =
            day_candidates(zone, date, Settings::min_ms(step_minutes), now, latest);
        let starts: Vec<Millis> = candidates.iter().map(|c| c.start).collect();
        let (unplanned_ms, _, _) = self.plan_limits();
        let free = self
            .registry()
            .slot_availability(
                rc_name,
                &starts,
                Settings::min_ms(minutes),
                unplanned_ms,
                now,
            )
            .await
            .map_err(|e| self.plan_internal(e))?;
        Ok(candidates
            .iter()
            .zip(free)
            .map(|(c, free)| Slot {
                start: c.start,
                now: c.now,
                free,
            })
            .collect())
    }
}

/// Smallest `step_minutes` of the slot list.
pub const MIN_STEP_MINUTES: u64 = 5;
/// Largest `step_minutes` of the slot list.
pub const MAX_STEP_MINUTES: u64 = 120;
/// `step_minutes` of the slot list when not given.
pub const DEFAULT_STEP_MINUTES: u64 = 30;

/// The zone named `name`, or `BadTimeZone`.
pub fn zone_or_refuse(name: &str) -> Result<Tz, Refusal> {
    tz::zone(name).map_err(Refusal::BadTimeZone)
}
