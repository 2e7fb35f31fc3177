//! Wall-clock time in IANA time zones (chrono-tz) and the ISO-8601 forms of the REST API.
//!
//! A local date and time becomes one UTC instant: a time the clocks skip (the spring DST gap)
//! is refused, a time they pass twice (autumn) means its earlier instant.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;

use crate::clock::{Millis, DAY, MINUTE};

/// The longest zone name accepted (the longest IANA name has 32 bytes).
pub const MAX_ZONE_LEN: usize = 64;

/// The zone named `name` (IANA, e.g. `"Europe/Moscow"`, `"UTC"`; case as in the database).
pub fn zone(name: &str) -> Result<Tz, String> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_ZONE_LEN {
        return Err(format!(
            "time zone {name:?} is not an IANA time zone name such as Europe/Moscow"
        ));
    }
    name.parse::<Tz>().map_err(|_| {
        format!("time zone {name:?} is not an IANA time zone name such as Europe/Moscow")
    })
}

/// Parses `"YYYY-MM-DD"` (years 2000..=9999).
pub fn parse_iso_date(date: &str) -> Result<NaiveDate, String> {
    let d = date.trim();
    let shaped = d.len() == 10
        && d.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(format!("date {date:?} is not YYYY-MM-DD, e.g. 2026-12-25"));
    }
    let day = NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .map_err(|_| format!("date {date:?} does not exist"))?;
    if !(2000..=9999).contains(&day.year()) {
        return Err(format!("date {date:?}: the year must be 2000 to 9999"));
    }
    Ok(day)
}

/// Parses `"HH:MM"` (00:00 to 23:59, the hour may have one digit).
pub fn parse_hhmm(time: &str) -> Result<NaiveTime, String> {
    let ms = crate::clock::parse_time(time)?;
    let minutes = (ms / MINUTE) as u32;
    NaiveTime::from_hms_opt(minutes / 60, minutes % 60, 0)
        .ok_or_else(|| format!("time {time:?} does not exist (00:00 to 23:59)"))
}

/// The date of a day as [`crate::clock::parse_date`] gives it (epoch ms of 00:00 UTC).
pub fn date_of_day_ms(day: Millis) -> NaiveDate {
    DateTime::from_timestamp_millis(day.div_euclid(DAY) * DAY)
        .map(|d| d.date_naive())
        .unwrap_or_default()
}

/// The UTC instant of local `date` `time` in `tz`: `Err` (with the reason) when the clocks skip
/// that time; the earlier instant when they pass it twice.
pub fn local_to_utc(tz: Tz, date: NaiveDate, time: NaiveTime) -> Result<Millis, String> {
    let local = NaiveDateTime::new(date, time);
    match tz.from_local_datetime(&local).earliest() {
        Some(at) => Ok(at.timestamp_millis()),
        None => Err(format!(
            "{} {} does not exist in {}: the clocks skip it (daylight saving time); pick a later time",
            date.format("%Y-%m-%d"),
            time.format("%H:%M"),
            tz.name()
        )),
    }
}

/// The local wall-clock time of instant `at` in `tz`.
pub fn utc_to_local(tz: Tz, at: Millis) -> NaiveDateTime {
    DateTime::from_timestamp_millis(at)
        .unwrap_or_default()
        .with_timezone(&tz)
        .naive_local()
}

/// `"YYYY-MM-DD HH:MM"` of instant `at` in `tz`.
pub fn format_local(tz: Tz, at: Millis) -> String {
    utc_to_local(tz, at).format("%Y-%m-%d %H:%M").to_string()
}

/// `"HH:MM"` of instant `at` in `tz`.
pub fn format_local_time(tz: Tz, at: Millis) -> String {
    let t = utc_to_local(tz, at);
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// `"2026-11-22T06:00:00Z"` (UTC, whole seconds).
pub fn format_utc(at: Millis) -> String {
    DateTime::from_timestamp_millis(at)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Parses an ISO-8601 instant with an offset (`2026-11-22T06:00:00Z`, `...+03:00`) or a
/// bare date (`2026-11-22`, meaning 00:00 UTC).
pub fn parse_utc(s: &str) -> Result<Millis, String> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Ok(d.timestamp_millis());
    }
    if let Ok(d) = parse_iso_date(s) {
        return Ok(d.and_time(NaiveTime::MIN).and_utc().timestamp_millis());
    }
    Err(format!(
        "{s:?} is not an ISO-8601 instant such as 2026-11-22T06:00:00Z"
    ))
}

/// The local date of instant `at` in `tz`.
pub fn local_date(tz: Tz, at: Millis) -> NaiveDate {
    utc_to_local(tz, at).date()
}

/// The first instant of local `date` in `tz`: its midnight, or the first minute that exists
/// when the clocks skip midnight.
pub fn day_start(tz: Tz, date: NaiveDate) -> Millis {
    for minute in 0..24 * 60 {
        let t = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).unwrap_or(NaiveTime::MIN);
        if let Ok(at) = local_to_utc(tz, date, t) {
            return at;
        }
    }
    // No zone skips a whole day's minutes from midnight; fall back to UTC midnight.
    date.and_time(NaiveTime::MIN).and_utc().timestamp_millis()
}

/// `[start, end)` of local `date` in `tz` (23, 24 or 25 hours around DST changes).
pub fn day_bounds(tz: Tz, date: NaiveDate) -> (Millis, Millis) {
    let next = date.checked_add_days(Days::new(1)).unwrap_or(date);
    (day_start(tz, date), day_start(tz, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_iso_date(s).unwrap()
    }
    fn t(s: &str) -> NaiveTime {
        parse_hhmm(s).unwrap()
    }
    fn utc(s: &str) -> Millis {
        parse_utc(s).unwrap()
    }

    #[test]
    fn zones_by_name() {
        for name in [
            "UTC",
            "Europe/Moscow",
            "Asia/Almaty",
            "America/New_York",
            " Europe/Berlin ",
        ] {
            assert!(zone(name).is_ok(), "{name}");
        }
        for bad in [
            "",
            "Mars/Olympus",
            "Europe/Moscow/x",
            "+03:00",
            &"A".repeat(80),
        ] {
            let e = zone(bad).unwrap_err();
            assert!(e.contains("IANA"), "{e}");
        }
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(
            d("2026-11-22"),
            NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
        );
        for bad in [
            "2026-02-30",
            "26-11-22",
            "2026/11/22",
            "22.11.2026",
            "1999-12-31",
            "",
        ] {
            assert!(parse_iso_date(bad).is_err(), "{bad}");
        }
        assert_eq!(t("9:05"), NaiveTime::from_hms_opt(9, 5, 0).unwrap());
        assert!(parse_hhmm("24:00").is_err());
        assert_eq!(
            date_of_day_ms(crate::clock::parse_date("25/12/2026").unwrap()),
            d("2026-12-25")
        );
        assert_eq!(
            utc("2026-11-22T06:00:00Z"),
            utc("2026-11-22T09:00:00+03:00")
        );
        assert_eq!(utc("2026-11-22"), utc("2026-11-22T00:00:00Z"));
        assert!(parse_utc("yesterday").is_err());
        assert_eq!(
            format_utc(utc("2026-11-22T06:00:00Z")),
            "2026-11-22T06:00:00Z"
        );
    }

    #[test]
    fn round_trips_in_zones() {
        let moscow = zone("Europe/Moscow").unwrap();
        let almaty = zone("Asia/Almaty").unwrap();
        let ny = zone("America/New_York").unwrap();
        let u = zone("UTC").unwrap();
        // Moscow is UTC+3 all year.
        let at = local_to_utc(moscow, d("2026-11-22"), t("09:00")).unwrap();
        assert_eq!(at, utc("2026-11-22T06:00:00Z"));
        assert_eq!(format_local(moscow, at), "2026-11-22 09:00");
        // Almaty: UTC+5 since 2024-03-01 (UTC+6 before).
        let at = local_to_utc(almaty, d("2026-07-01"), t("12:30")).unwrap();
        assert_eq!(at, utc("2026-07-01T07:30:00Z"));
        assert_eq!(format_local(almaty, at), "2026-07-01 12:30");
        let at = local_to_utc(almaty, d("2023-07-01"), t("12:30")).unwrap();
        assert_eq!(at, utc("2023-07-01T06:30:00Z"));
        // New York: EST (UTC-5) in winter, EDT (UTC-4) in summer.
        let winter = local_to_utc(ny, d("2026-01-15"), t("09:00")).unwrap();
        assert_eq!(winter, utc("2026-01-15T14:00:00Z"));
        let summer = local_to_utc(ny, d("2026-07-15"), t("09:00")).unwrap();
        assert_eq!(summer, utc("2026-07-15T13:00:00Z"));
        assert_eq!(format_local(ny, winter), "2026-01-15 09:00");
        assert_eq!(format_local(ny, summer), "2026-07-15 09:00");
        let at = local_to_utc(u, d("2026-03-08"), t("02:30")).unwrap();
        assert_eq!(at, utc("2026-03-08T02:30:00Z"));
        // Every minute of a year in each zone round-trips (skipping the DST gap).
        for tz in [moscow, almaty, ny, u] {
            let mut day = d("2026-01-01");
            while day.year() == 2026 {
                for minute in (0..24 * 60).step_by(17) {
                    let time = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).unwrap();
                    if let Ok(at) = local_to_utc(tz, day, time) {
                        assert_eq!(utc_to_local(tz, at), NaiveDateTime::new(day, time));
                    }
                }
                day = day.succ_opt().unwrap();
            }
        }
    }

    #[test]
    fn dst_gap_is_refused_and_overlap_takes_the_earlier_instant() {
        let ny = zone("America/New_York").unwrap();
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT.
        let e = local_to_utc(ny, d("2026-03-08"), t("02:30")).unwrap_err();
        assert!(e.contains("does not exist in America/New_York"), "{e}");
        assert_eq!(
            local_to_utc(ny, d("2026-03-08"), t("03:00")).unwrap(),
            utc("2026-03-08T07:00:00Z")
        );
        // 2026-11-01: 01:30 happens twice (EDT, then EST): the earlier one.
        assert_eq!(
            local_to_utc(ny, d("2026-11-01"), t("01:30")).unwrap(),
            utc("2026-11-01T05:30:00Z")
        );
        assert_eq!(
            format_local(ny, utc("2026-11-01T06:30:00Z")),
            "2026-11-01 01:30"
        );
        // Day lengths.
        let hours = |date: &str| {
            let (s, e) = day_bounds(ny, d(date));
            (e - s) / (60 * MINUTE)
        };
        assert_eq!(hours("2026-03-08"), 23);
        assert_eq!(hours("2026-11-01"), 25);
        assert_eq!(hours("2026-11-02"), 24);
        let moscow = zone("Europe/Moscow").unwrap();
        assert_eq!(
            day_bounds(moscow, d("2026-11-22")),
            (utc("2026-11-21T21:00:00Z"), utc("2026-11-22T21:00:00Z"))
        );
        assert_eq!(
            local_date(moscow, utc("2026-11-21T21:00:00Z")),
            d("2026-11-22")
        );
        // A zone that skipped midnight: America/Santiago, 2022-09-11 00:00 -> 01:00.
        let santiago = zone("America/Santiago").unwrap();
        assert!(local_to_utc(santiago, d("2022-09-11"), t("00:00")).is_err());
        let start = day_start(santiago, d("2022-09-11"));
        assert_eq!(format_local(santiago, start), "2022-09-11 01:00");
    }
}
