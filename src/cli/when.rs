//! Times as people write and read them: `--since 2h`, `--since yesterday`,
//! `--until 2024-05-01T10:00` (local time), and times in tables in the local time zone (or
//! UTC with `--utc`). JSON keeps ISO 8601 in UTC.

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A time argument that names no time.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0:?} is not a time: write a duration ago (90s, 15m, 2h, 3d, 1w, 1h30m), now, today, \
yesterday, a local time (2024-05-01T10:00, 2024-05-01 10:00, 2024-05-01) or a time with \
its offset (2024-05-01T08:00:00Z)"
)]
pub struct BadWhen(pub String);

/// The time zone named `name` (IANA, e.g. `Europe/Paris`), or the system's when `None` or
/// empty.
pub fn time_zone(name: Option<&str>) -> anyhow::Result<TimeZone> {
    crate::clock::time_zone(name.unwrap_or("")).map_err(anyhow::Error::msg)
}

/// Parses a time argument into ms since the epoch; `now_ms` and `tz` resolve relative and
/// local times. Never panics, whatever the text.
pub fn parse_when(text: &str, now_ms: i64, tz: &TimeZone) -> Result<i64, BadWhen> {
    let bad = || BadWhen(text.to_string());
    let t = text.trim();
    if t.is_empty() || t.len() > 64 {
        return Err(bad());
    }
    let now = Timestamp::from_millisecond(now_ms).map_err(|_| bad())?;
    let local_midnight = |days_back: i64| -> Option<i64> {
        let today = now.to_zoned_datetime(tz.clone()).date();
        let day = today.checked_sub(jiff::Span::new().days(days_back)).ok()?;
        let start = tz
            .to_zoned_datetime(day.to_datetime(jiff::civil::Time::midnight()))
            .ok()?;
        Some(start.timestamp().as_millisecond())
    };
    match t.to_ascii_lowercase().as_str() {
        "now" => return Ok(now_ms),
        "today" => return local_midnight(0).ok_or_else(bad),
        "yesterday" => return local_midnight(1).ok_or_else(bad),
        _ => {}
    }
    if let Some(ago) = duration_ms(t) {
        return now_ms.checked_sub(ago).ok_or_else(bad);
    }
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let civil = t
        .parse::<DateTime>()
        .ok()
        .or_else(|| {
            t.parse::<Date>()
                .ok()
                .map(|d| d.to_datetime(jiff::civil::Time::midnight()))
        })
        .ok_or_else(bad)?;
    tz.to_ambiguous_timestamp(civil)
        .compatible()
        .map(Timestamp::as_millisecond)
        .map_err(|_| bad())
}

/// A duration like `90s`, `15m`, `2h`, `3d`, `1w` or `1h30m`, in ms; `None` when the text is
/// not one (or is absurdly long: more than 1000 years).
pub fn duration_ms(text: &str) -> Option<i64> {
    const LIMIT_MS: i64 = 1000 * 366 * 86_400_000;
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut any = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if number.len() >= 12 {
                return None;
            }
            number.push(c);
            continue;
        }
        let unit_ms: i64 = match c {
            's' => 1000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            'w' => 7 * 86_400_000,
            _ => return None,
        };
        let n: i64 = number.parse().ok()?;
        number.clear();
        total = total.checked_add(n.checked_mul(unit_ms)?)?;
        any = true;
    }
    (any && number.is_empty() && total <= LIMIT_MS).then_some(total)
}

/// Formats ms since the epoch for a table: `2024-05-01 10:00:00 CEST` in `tz`.
pub fn format_time(ms: i64, tz: &TimeZone) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => ts
            .to_zoned_datetime(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => crate::clock::format_utc(ms),
    }
}

/// Formats an ISO 8601 UTC time from a reply (`start_wall`, `error_at`) for a table, or
/// returns it unchanged when it does not parse.
pub fn format_iso(text: &str, tz: &TimeZone) -> String {
    crate::clock::parse_iso8601(text)
        .map(|ms| format_time(ms, tz))
        .unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn paris() -> TimeZone {
        TimeZone::get("Europe/Paris").unwrap()
    }

    // 2024-05-01T12:00:00Z, a Wednesday; Paris is UTC+2 then.
    const NOON_UTC: i64 = 1_714_564_800_000;

    #[test]
    fn durations_count_back_from_now() {
        let tz = TimeZone::UTC;
        assert_eq!(
            parse_when("2h", NOON_UTC, &tz).unwrap(),
            NOON_UTC - 7_200_000
        );
        assert_eq!(
            parse_when("1h30m", NOON_UTC, &tz).unwrap(),
            NOON_UTC - 5_400_000
        );
        assert_eq!(parse_when("90s", NOON_UTC, &tz).unwrap(), NOON_UTC - 90_000);
        assert_eq!(
            parse_when("1w", NOON_UTC, &tz).unwrap(),
            NOON_UTC - 604_800_000
        );
        assert_eq!(parse_when("now", NOON_UTC, &tz).unwrap(), NOON_UTC);
        for bad in ["", "2", "h", "2x", "-2h", "2h3", "99999999999999h", "1e3s"] {
            assert!(parse_when(bad, NOON_UTC, &tz).is_err(), "{bad}");
        }
    }

    #[test]
    fn days_start_at_local_midnight() {
        // Midnight of 2024-05-01 in Paris is 2024-04-30T22:00:00Z.
        let midnight = 1_714_514_400_000;
        assert_eq!(parse_when("today", NOON_UTC, &paris()).unwrap(), midnight);
        assert_eq!(
            parse_when("Yesterday", NOON_UTC, &paris()).unwrap(),
            midnight - 86_400_000
        );
    }

    #[test]
    fn local_times_are_in_the_zone_and_offsets_win() {
        let tz = paris();
        assert_eq!(parse_when("2024-05-01T14:00", 0, &tz).unwrap(), NOON_UTC);
        assert_eq!(parse_when("2024-05-01 14:00:00", 0, &tz).unwrap(), NOON_UTC);
        assert_eq!(
            parse_when("2024-05-01T12:00:00Z", 0, &tz).unwrap(),
            NOON_UTC
        );
        assert_eq!(
            parse_when("2024-05-01T13:00:00+01:00", 0, &tz).unwrap(),
            NOON_UTC
        );
        assert_eq!(
            parse_when("2024-05-01", 0, &tz).unwrap(),
            NOON_UTC - 14 * 3_600_000
        );
        let e = parse_when("2024-13-01", 0, &tz).unwrap_err();
        assert!(e.to_string().contains("yesterday"), "{e}");
    }

    #[test]
    fn tables_show_local_or_utc_times() {
        assert_eq!(format_time(NOON_UTC, &paris()), "2024-05-01 14:00:00 CEST");
        assert_eq!(
            format_time(NOON_UTC, &TimeZone::UTC),
            "2024-05-01 12:00:00 UTC"
        );
        assert_eq!(
            format_iso("2024-05-01T12:00:00.000Z", &paris()),
            "2024-05-01 14:00:00 CEST"
        );
        assert_eq!(format_iso("garbage", &paris()), "garbage");
    }

    #[test]
    fn time_zones_are_named_or_the_system_s() {
        assert!(time_zone(Some("Mars/Olympus"))
            .unwrap_err()
            .to_string()
            .contains("IANA"));
        assert_eq!(time_zone(Some("UTC")).unwrap().iana_name(), Some("UTC"));
        time_zone(None).unwrap();
    }

    proptest! {
        #[test]
        fn garbage_never_panics(text in "\\PC{0,80}", now in proptest::num::i64::ANY) {
            let _ = parse_when(&text, now, &paris());
            let _ = format_time(now, &paris());
        }

        #[test]
        fn time_shaped_garbage_never_panics(text in "[0-9a-zT:+ .Z-]{0,30}", now in -1i64<<50..1i64<<50) {
            let _ = parse_when(&text, now, &paris());
        }

        #[test]
        fn durations_round_trip(h in 0i64..100_000, m in 0i64..60) {
            prop_assert_eq!(duration_ms(&format!("{h}h{m}m")), Some(h * 3_600_000 + m * 60_000));
        }
    }
}
