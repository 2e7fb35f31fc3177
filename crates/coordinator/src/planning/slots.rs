//! The candidate slots of a local day (pure: which starts `GET /api/slots` weighs).

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::tz::day_bounds;
use crate::clock::{Millis, MINUTE};

/// One candidate start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The start (UTC epoch ms).
    pub start: Millis,
    /// The current minute (today's first entry: a call can start at once).
    pub now: bool,
}

/// The starts of local day `date` in `tz`, every `step` from the day's first instant (so a
/// 23- or 25-hour DST day has 23 or 25 hours of them), that have not passed at `now` and
/// start no later than `latest`. When the day is today, the current minute comes first.
pub fn day_candidates(
    tz: Tz,
    date: NaiveDate,
    step: Millis,
    now: Millis,
    latest: Millis,
) -> Vec<Candidate> {
    let (day_start, day_end) = day_bounds(tz, date);
    let minute = now - now.rem_euclid(MINUTE);
    let mut out = Vec::new();
    if (day_start..day_end).contains(&minute) && minute <= latest {
        out.push(Candidate {
            start: minute,
            now: true,
        });
    }
    if step <= 0 {
        return out;
    }
    let mut t = day_start;
    while t < day_end && t <= latest {
        if t > minute {
            out.push(Candidate {
                start: t,
                now: false,
            });
        }
        t += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planning::tz::{format_local_time, parse_iso_date, parse_utc, zone};

    fn labels(tz: Tz, c: &[Candidate]) -> Vec<String> {
        c.iter().map(|c| format_local_time(tz, c.start)).collect()
    }

    #[test]
    fn a_future_day_has_every_step() {
        let moscow = zone("Europe/Moscow").unwrap();
        let now = parse_utc("2026-11-20T10:00:00Z").unwrap();
        let c = day_candidates(
            moscow,
            parse_iso_date("2026-11-22").unwrap(),
            30 * MINUTE,
            now,
            Millis::MAX,
        );
        assert_eq!(c.len(), 48);
        assert!(c.iter().all(|c| !c.now));
        assert_eq!(c[0].start, parse_utc("2026-11-21T21:00:00Z").unwrap());
        assert_eq!(labels(moscow, &c)[18], "09:00");
    }

    #[test]
    fn today_starts_with_the_current_minute() {
        let ny = zone("America/New_York").unwrap();
        // 10:17:30 EST.
        let now = parse_utc("2026-11-22T15:17:30Z").unwrap();
        let c = day_candidates(
            ny,
            parse_iso_date("2026-11-22").unwrap(),
            30 * MINUTE,
            now,
            Millis::MAX,
        );
        let l = labels(ny, &c);
        assert_eq!(&l[..3], ["10:17", "10:30", "11:00"]);
        assert!(c[0].now && !c[1].now);
        assert_eq!(l.last().unwrap(), "23:30");
        // A past day has none; the horizon cuts the list.
        assert!(day_candidates(
            ny,
            parse_iso_date("2026-11-21").unwrap(),
            30 * MINUTE,
            now,
            Millis::MAX
        )
        .is_empty());
        let latest = parse_utc("2026-11-22T17:00:00Z").unwrap();
        let c = day_candidates(
            ny,
            parse_iso_date("2026-11-22").unwrap(),
            30 * MINUTE,
            now,
            latest,
        );
        assert_eq!(
            labels(ny, &c),
            ["10:17", "10:30", "11:00", "11:30", "12:00"]
        );
    }

    #[test]
    fn dst_days_have_23_or_25_hours_of_slots() {
        let ny = zone("America/New_York").unwrap();
        let now = parse_utc("2026-01-01T00:00:00Z").unwrap();
        let count = |date: &str| {
            day_candidates(
                ny,
                parse_iso_date(date).unwrap(),
                60 * MINUTE,
                now,
                Millis::MAX,
            )
            .len()
        };
        assert_eq!(count("2026-03-08"), 23);
        assert_eq!(count("2026-11-01"), 25);
        let c = day_candidates(
            ny,
            parse_iso_date("2026-11-01").unwrap(),
            60 * MINUTE,
            now,
            Millis::MAX,
        );
        assert_eq!(&labels(ny, &c)[..4], ["00:00", "01:00", "01:00", "02:00"]);
    }
}
