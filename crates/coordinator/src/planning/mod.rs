//! Planning: sessions booked ahead in a user's time zone, a day's free slots, moving and
//! cancelling plans, and the plans REST API (docs/accounts.md, "Planning").
//!
//! * [`tz`]: local wall-clock time in IANA zones <-> UTC (DST gaps refused, overlaps take
//!   the earlier instant).
//! * [`slots`]: the candidate starts of a local day.
//! * [`plans`]: the operations on the [`crate::Coordinator`] shared by `PLAN_SESSION` and REST.
//! * [`http`]: `GET /api/slots`, `/api/plans` (GET, POST), `/api/plans/{code}` (PATCH, DELETE).

pub mod http;
pub mod plans;
pub mod slots;
pub mod tz;

pub use plans::{Customer, PlanRequest, Refusal, Scope, Slot};
