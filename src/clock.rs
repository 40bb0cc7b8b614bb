//! Wall-clock time for footage: parsing the timestamps that name or describe a file (NVR
//! segment names, the container's `creation_time`), as milliseconds since the Unix epoch (UTC).

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The largest year (either side of year 0) a footage time may name: far beyond any real
/// recording, and small enough that no arithmetic on it can overflow.
pub const MAX_YEAR: i64 = 1_000_000;

/// Milliseconds since the epoch of a UTC date and time; `None` when a field is out of range
/// (a year beyond ±[`MAX_YEAR`] included).
pub fn utc_ms(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    millis: u32,
) -> Option<i64> {
    if !(-MAX_YEAR..=MAX_YEAR).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
        || millis > 999
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(
        ((days * 24 + i64::from(hour)) * 60 + i64::from(minute)) * 60_000
            + i64::from(second) * 1000
            + i64::from(millis),
    )
}

/// The current time in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_utc(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        (rem / 60_000) % 60,
        (rem / 1000) % 60,
        rem % 1000
    )
}

/// Parses an ISO 8601 / RFC 3339 UTC time as FFmpeg writes `creation_time`
/// (`2026-11-27T03:00:00.000000Z`), also without fraction or zone (taken as UTC), or with a
/// space instead of `T`, or a date alone.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let t = text.trim();
    let num = |s: &str| s.parse::<u32>().ok();
    let (date, time) = match t.split_once(['T', ' ']) {
        Some((d, t)) => (d, t),
        None => (t, "00:00:00"),
    };
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month = num(d.next()?)?;
    let day = num(d.next()?)?;
    let time = time.trim_end_matches('Z');
    let (time, offset_ms) = match time.rfind(['+', '-']) {
        Some(i) if i >= 5 => {
            let sign = if &time[i..i + 1] == "-" { -1 } else { 1 };
            let (h, m) = time[i + 1..]
                .split_once(':')
                .unwrap_or((&time[i + 1..], "0"));
            (
                &time[..i],
                sign * (i64::from(num(h)?) * 60 + i64::from(num(m)?)) * 60_000,
            )
        }
        _ => (time, 0),
    };
    let mut parts = time.split(':');
    let hour = num(parts.next()?)?;
    let minute = num(parts.next().unwrap_or("0"))?;
    let sec_text = parts.next().unwrap_or("0");
    let (sec, frac) = sec_text.split_once('.').unwrap_or((sec_text, ""));
    let millis = fraction_ms(frac)?;
    Some(utc_ms(year, month, day, hour, minute, num(sec)?, millis)? - offset_ms)
}

/// The milliseconds of a decimal fraction of a second (`"5"` is 500, `"123456"` is 123):
/// ASCII digits only, any number of them (truncated to milliseconds); `None` for anything
/// else. Never slices the text, so no character of user text can split a byte boundary.
fn fraction_ms(frac: &str) -> Option<u32> {
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut digits = frac.bytes().map(|b| u32::from(b - b'0'));
    let mut ms = 0;
    for _ in 0..3 {
        ms = ms * 10 + digits.next().unwrap_or(0);
    }
    Some(ms)
}

/// Finds a wall-clock time in `path` with a pattern of `%Y` (4 digits), `%m %d %H %M %S`
/// (2 digits each) and literal characters, e.g. `%Y-%m-%d/%H-%M-%S` matches
/// `cam1/2026-11-27/03-00-00.mp4`. The rightmost match wins; missing fields are zero.
pub fn time_from_path(pattern: &str, path: &str) -> Option<i64> {
    if pattern.is_empty() {
        return None;
    }
    let bytes = path.as_bytes();
    (0..bytes.len())
        .rev()
        .find_map(|start| match_at(pattern, &bytes[start..]))
}

/// [`time_from_path`] for a path whose times are local times in `tz` (`ingest.time_zone`):
/// the UTC instant of that local time (the earlier one when a clock change repeats it, the
/// later side of a gap). `None` also for a year jiff cannot place (beyond ±9999).
pub fn time_from_path_in(pattern: &str, path: &str, tz: &jiff::tz::TimeZone) -> Option<i64> {
    let as_if_utc = time_from_path(pattern, path)?;
    if tz.iana_name() == Some("UTC") || *tz == jiff::tz::TimeZone::UTC {
        return Some(as_if_utc);
    }
    let civil = jiff::Timestamp::from_millisecond(as_if_utc)
        .ok()?
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .datetime();
    tz.to_ambiguous_timestamp(civil)
        .compatible()
        .ok()
        .map(jiff::Timestamp::as_millisecond)
}

/// The time zone named `name` (IANA, e.g. `Europe/Paris`), or the system's local zone when
/// `name` is empty; the error says what to write instead.
pub fn time_zone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(jiff::tz::TimeZone::system());
    }
    jiff::tz::TimeZone::get(name).map_err(|e| {
        format!(
            "unknown time zone {name:?} ({e}): use an IANA name such as Europe/Paris or UTC \
(the names under /usr/share/zoneinfo)"
        )
    })
}

fn match_at(pattern: &str, text: &[u8]) -> Option<i64> {
    let (mut year, mut month, mut day, mut hour, mut minute, mut second) =
        (1970i64, 1u32, 1u32, 0u32, 0u32, 0u32);
    let mut pos = 0;
    let mut chars = pattern.chars();
    let digits = |n: usize, pos: &mut usize| -> Option<u32> {
        let s = text.get(*pos..*pos + n)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *pos += n;
        std::str::from_utf8(s).ok()?.parse().ok()
    };
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next()? {
                'Y' => year = i64::from(digits(4, &mut pos)?),
                'm' => month = digits(2, &mut pos)?,
                'd' => day = digits(2, &mut pos)?,
                'H' => hour = digits(2, &mut pos)?,
                'M' => minute = digits(2, &mut pos)?,
                'S' => second = digits(2, &mut pos)?,
                '%' => {
                    if text.get(pos) != Some(&b'%') {
                        return None;
                    }
                    pos += 1;
                }
                _ => return None,
            }
        } else {
            let mut buf = [0u8; 4];
            let lit = c.encode_utf8(&mut buf).as_bytes();
            if text.get(pos..pos + lit.len())? != lit {
                return None;
            }
            pos += lit.len();
        }
    }
    utc_ms(year, month, day, hour, minute, second, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_convert_both_ways() {
        assert_eq!(utc_ms(1970, 1, 1, 0, 0, 0, 0), Some(0));
        assert_eq!(utc_ms(2026, 11, 27, 3, 0, 0, 0), Some(1_795_748_400_000));
        assert_eq!(format_utc(1_795_748_400_123), "2026-11-27T03:00:00.123Z");
        assert_eq!(format_utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc_ms(2026, 13, 1, 0, 0, 0, 0), None);
    }

    #[test]
    fn creation_times_parse() {
        let t = utc_ms(2026, 11, 27, 3, 0, 0, 0).unwrap();
        assert_eq!(parse_iso8601("2026-11-27T03:00:00.000000Z"), Some(t));
        assert_eq!(parse_iso8601("2026-11-27 03:00:00"), Some(t));
        assert_eq!(parse_iso8601("2026-11-27T04:00:00+01:00"), Some(t));
        assert_eq!(parse_iso8601("2026-11-27T03:00:00.5Z"), Some(t + 500));
        assert_eq!(parse_iso8601("2026-11-27"), Some(t - 3 * 3_600_000));
        assert_eq!(parse_iso8601("yesterday"), None);
    }

    #[test]
    fn nvr_segment_names_give_the_time() {
        let t = utc_ms(2026, 11, 27, 3, 0, 0, 0).unwrap();
        assert_eq!(
            time_from_path(
                "%Y-%m-%d/%H-%M-%S",
                "/srv/footage/cam1/2026-11-27/03-00-00.mp4"
            ),
            Some(t)
        );
        assert_eq!(
            time_from_path("%Y%m%d_%H%M%S", "/srv/cam2/rec_20261127_030000.mkv"),
            Some(t)
        );
        assert_eq!(
            time_from_path("%Y-%m-%d/%H-%M-%S", "/srv/footage/cam1/misc/clip.mp4"),
            None
        );
        assert_eq!(time_from_path("", "/srv/2026-11-27/03-00-00.mp4"), None);
    }

    #[test]
    fn segment_names_are_read_in_the_configured_time_zone() {
        let path = "/srv/footage/cam1/2026-11-27/03-00-00.mp4";
        let pattern = "%Y-%m-%d/%H-%M-%S";
        let t = utc_ms(2026, 11, 27, 3, 0, 0, 0).unwrap();
        let utc = time_zone("UTC").unwrap();
        assert_eq!(time_from_path_in(pattern, path, &utc), Some(t));
        // Paris is UTC+1 in November: 03:00 there is 02:00 UTC.
        let paris = time_zone("Europe/Paris").unwrap();
        assert_eq!(
            time_from_path_in(pattern, path, &paris),
            Some(t - 3_600_000)
        );
        let ny = time_zone("America/New_York").unwrap();
        assert_eq!(
            time_from_path_in(pattern, path, &ny),
            Some(t + 5 * 3_600_000)
        );
        assert!(time_zone("Nowhere/Atlantis").unwrap_err().contains("IANA"));
        time_zone("").unwrap();
    }

    #[test]
    fn hostile_creation_times_are_refused_without_panicking() {
        // A multi-byte fraction (issue 15): slicing it at 3 bytes used to panic a decode worker.
        assert_eq!(parse_iso8601("2024-01-01T00:00:00.éé"), None);
        assert_eq!(parse_iso8601("2024-01-01T00:00:00.1é"), None);
        assert_eq!(parse_iso8601("2024-01-01T00:00:00.é"), None);
        assert_eq!(parse_iso8601("9223372036854775807-01-01"), None);
        let t = utc_ms(2024, 1, 1, 0, 0, 0, 0).unwrap();
        assert_eq!(
            parse_iso8601("2024-01-01T00:00:00.1234567890123Z"),
            Some(t + 123)
        );
        assert_eq!(parse_iso8601("2024-01-01T00:00:00.Z"), Some(t));
    }
}

#[cfg(test)]
mod fuzz {
    //! Property tests of the time parsers: any text gives a time or `None`, never a panic, and
    //! a formatted time parses back to itself.
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,40}") {
            let _ = parse_iso8601(&text);
        }

        #[test]
        fn iso_shaped_noise_never_panics(date in "[0-9-]{0,12}", sep in "[T ]", time in "[0-9:.+Zé-]{0,20}", frac in "\\PC{0,6}") {
            let _ = parse_iso8601(&format!("{date}{sep}{time}.{frac}"));
            let _ = parse_iso8601(&format!("{date}{sep}00:00:00.{frac}"));
        }

        #[test]
        fn formatted_times_round_trip(ms in -62_000_000_000_000i64..250_000_000_000_000) {
            prop_assert_eq!(parse_iso8601(&format_utc(ms)), Some(ms));
        }

        #[test]
        fn fractions_of_any_length_keep_the_milliseconds(ms in 0u32..1000, extra in "[0-9]{0,12}") {
            let t = utc_ms(2024, 1, 1, 0, 0, 0, 0).unwrap();
            let text = format!("2024-01-01T00:00:00.{ms:03}{extra}Z");
            prop_assert_eq!(parse_iso8601(&text), Some(t + i64::from(ms)));
        }

        #[test]
        fn path_patterns_never_panic(pattern in "(%[YmdHMS%xé]|[-/_a-zé0-9]){0,12}", path in "\\PC{0,60}") {
            let _ = time_from_path(&pattern, &path);
            let _ = time_from_path_in(&pattern, &path, &jiff::tz::TimeZone::get("Europe/Paris").unwrap());
        }

        #[test]
        fn path_times_are_found_where_written(ms in 0i64..4_102_444_800_000, prefix in "[a-zé/_]{0,20}", suffix in "[a-z.]{0,8}") {
            let s = ms - ms % 1000;
            let f = format_utc(s); // YYYY-MM-DDTHH:MM:SS.mmmZ
            let path = format!("{prefix}{}/{}-{}-{}{suffix}", &f[..10], &f[11..13], &f[14..16], &f[17..19]);
            prop_assert_eq!(time_from_path("%Y-%m-%d/%H-%M-%S", &path), Some(s));
        }
    }
}
