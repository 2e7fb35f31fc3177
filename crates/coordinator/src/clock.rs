//! Time: milliseconds since the Unix epoch, and the spec's `day/month/year` + `HH:MM` (UTC).
//!
//! Every function of the coordinator takes `now` as an argument, so tests run on virtual time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// One second in [`Millis`].
pub const SECOND: Millis = 1000;
/// One minute in [`Millis`].
pub const MINUTE: Millis = 60 * SECOND;
/// One day in [`Millis`].
pub const DAY: Millis = 24 * 60 * MINUTE;

/// The wall clock now.
pub fn now_ms() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or(0)
}

/// Where a running coordinator reads the time for the requests it serves (HTTP, WebSocket,
/// the node link, the sweep): the wall clock, or in tests a clock moved by hand, so limits
/// that last minutes or hours are tested without waiting.
#[derive(Debug, Clone, Default)]
pub struct Clock(Option<Arc<AtomicI64>>);

impl Clock {
    /// The wall clock ([`now_ms`]).
    pub fn system() -> Clock {
        Clock(None)
    }

    /// A clock that reads `start` until [`Clock::advance`]d or [`Clock::set`].
    pub fn manual(start: Millis) -> Clock {
        Clock(Some(Arc::new(AtomicI64::new(start))))
    }

    /// The time now.
    pub fn now(&self) -> Millis {
        match &self.0 {
            None => now_ms(),
            Some(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock on by `by` (no effect on the wall clock).
    pub fn advance(&self, by: Millis) {
        if let Some(t) = &self.0 {
            t.fetch_add(by, Ordering::SeqCst);
        }
    }

    /// Sets a manual clock to `to` (no effect on the wall clock).
    pub fn set(&self, to: Millis) {
        if let Some(t) = &self.0 {
            t.store(to, Ordering::SeqCst);
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

fn number(s: &str, min_len: usize, max_len: usize) -> Option<i64> {
    if s.len() < min_len || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses the spec's `"day/month/year"` (e.g. `"25/12/2026"`, `"5/1/2027"`) into the epoch
/// milliseconds of that day's 00:00 UTC. Years 2000..=9999.
pub fn parse_date(date: &str) -> Result<Millis, String> {
    let parts: Vec<&str> = date.trim().split('/').collect();
    let [d, m, y] = parts.as_slice() else {
        return Err(format!(
            "date {date:?} is not day/month/year, e.g. 25/12/2026"
        ));
    };
    let (Some(d), Some(m), Some(y)) = (number(d, 1, 2), number(m, 1, 2), number(y, 4, 4)) else {
        return Err(format!(
            "date {date:?} is not day/month/year, e.g. 25/12/2026"
        ));
    };
    if !(2000..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return Err(format!("date {date:?} does not exist"));
    }
    Ok(days_from_civil(y, m, d) * DAY)
}

/// Parses the spec's `"HH:MM"` (00:00 to 23:59) into milliseconds after midnight.
pub fn parse_time(time: &str) -> Result<Millis, String> {
    let Some((h, m)) = time.trim().split_once(':') else {
        return Err(format!("time {time:?} is not HH:MM, e.g. 18:30"));
    };
    let (Some(h), Some(m)) = (number(h, 1, 2), number(m, 2, 2)) else {
        return Err(format!("time {time:?} is not HH:MM, e.g. 18:30"));
    };
    if h > 23 || m > 59 {
        return Err(format!("time {time:?} does not exist (00:00 to 23:59)"));
    }
    Ok(h * 60 * MINUTE + m * MINUTE)
}

/// `(date, time)` strings of an instant, in the spec's format (`"25/12/2026"`, `"18:30"`), UTC.
pub fn format_date_time(at: Millis) -> (String, String) {
    let days = at.div_euclid(DAY);
    let in_day = at.rem_euclid(DAY);
    let (y, m, d) = civil_from_days(days);
    (
        format!("{d:02}/{m:02}/{y:04}"),
        format!(
            "{:02}:{:02}",
            in_day / (60 * MINUTE),
            in_day % (60 * MINUTE) / MINUTE
        ),
    )
}

/// An instant as `"day/month/year HH:MM"` (`"25/12/2026 18:30"`, UTC): the date and time of
/// [`format_date_time`] joined, as the coordinator's answers name slot ends.
pub fn format_instant(at: Millis) -> String {
    let (date, time) = format_date_time(at);
    format!("{date} {time}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_by_hand() {
        let c = Clock::manual(1_000);
        let shared = c.clone();
        assert_eq!(c.now(), 1_000);
        shared.advance(500);
        assert_eq!(c.now(), 1_500);
        c.set(7);
        assert_eq!(shared.now(), 7);
        let wall = Clock::system();
        wall.set(7);
        assert!(wall.now() > 1_600_000_000_000);
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(parse_date("01/01/2000").unwrap(), 946_684_800_000);
        assert_eq!(parse_date("1/1/2000").unwrap(), 946_684_800_000);
        assert_eq!(
            parse_date("29/02/2028").unwrap(),
            days_from_civil(2028, 2, 29) * DAY
        );
        assert!(parse_date("29/02/2027").is_err());
        assert!(parse_date("31/04/2027").is_err());
        assert!(parse_date("2027-01-01").is_err());
        assert!(parse_date("01/13/2027").is_err());
        assert!(parse_date("1/1/27").is_err());
        assert!(parse_date("").is_err());
        assert_eq!(parse_time("00:00").unwrap(), 0);
        assert_eq!(parse_time("23:59").unwrap(), 23 * 3_600_000 + 59 * 60_000);
        assert_eq!(parse_time("9:05").unwrap(), 9 * 3_600_000 + 5 * 60_000);
        for bad in ["24:00", "12:60", "12", "ab:cd", "12:5", "-1:00"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
        let at = parse_date("25/12/2026").unwrap() + parse_time("18:30").unwrap();
        assert_eq!(
            format_date_time(at),
            ("25/12/2026".to_string(), "18:30".to_string())
        );
        assert_eq!(format_instant(at), "25/12/2026 18:30");
        for days in [-1000, 0, 1, 59, 60, 365, 10_957, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
