//! Dates and times, through the `time` crate: Patroni's RFC 3339 timestamps
//! (fractions and offsets) and what users type (a scheduled switchover, the
//! audit filters), always to unix milliseconds in UTC.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

/// An RFC 3339 timestamp (`2026-11-29T22:54:31.918765+00:00`) as unix ms.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// What a user typed, read as UTC: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`,
/// `YYYY-MM-DDTHH:MM:SS`, or the same with a space for the `T` (an HTML
/// `datetime-local` input sends the `T` forms). None when malformed or out of
/// range (years 1970 to 9999).
pub fn parse_user_utc(s: &str) -> Option<i64> {
    let s = s.trim().trim_end_matches('Z').replacen(' ', "T", 1);
    let at = match s.len() {
        10 => Date::parse(&s, format_description!("[year]-[month]-[day]"))
            .ok()?
            .with_time(Time::MIDNIGHT),
        16 => PrimitiveDateTime::parse(&s, format_description!("[year]-[month]-[day]T[hour]:[minute]")).ok()?,
        19 => {
            PrimitiveDateTime::parse(&s, format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]")).ok()?
        }
        _ => return None,
    };
    if !(1970..=9999).contains(&at.year()) {
        return None;
    }
    Some(at.assume_utc().unix_timestamp() * 1000)
}

/// Unix ms as Patroni's API takes a schedule: `2030-01-02T03:04:00+00:00`.
pub fn patroni_schedule(ms: i64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]+00:00"
    ))
    .ok()
}

/// Unix ms as RFC 3339 in UTC.
pub fn format_rfc3339(ms: i64) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    t.format(&Rfc3339).ok()
}

/// Unix ms in UTC through `format`; None when out of range.
fn format_utc(ms: i64, format: &[time::format_description::BorrowedFormatItem<'_>]) -> Option<String> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()?
        .format(format)
        .ok()
}

/// Unix ms as people read it in a plan: `2026-11-30 06:43:27 UTC`.
pub fn human_utc(ms: i64) -> String {
    format_utc(
        ms,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC"),
    )
    .unwrap_or_else(|| format!("{ms} ms"))
}

/// Unix ms as PostgreSQL's `recovery_target_time` takes it (no `Z` or
/// zone abbreviation): `2026-11-30 07:15:02+00`.
pub fn postgres_utc(ms: i64) -> Option<String> {
    format_utc(
        ms,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]+00"),
    )
}

/// Unix ms as a user types a UTC time (what [`parse_user_utc`] reads back):
/// `2026-11-30T07:15:02`.
pub fn user_utc(ms: i64) -> String {
    format_utc(ms, format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]")).unwrap_or_default()
}

/// Unix ms as a compact UTC stamp for folder names: `20261130T071502Z`.
pub fn format_compact(ms: i64) -> String {
    format_utc(ms, format_description!("[year][month][day]T[hour][minute][second]Z")).unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_patroni_timestamps_exactly() {
        // As recorded from Patroni 4.1 and 3.0 (`/history`), and with an offset.
        assert_eq!(
            parse_rfc3339_ms("2026-11-28T21:00:16.544624+00:00"),
            Some(1_795_899_616_544)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-28T21:02:24.164628+00:00"),
            Some(1_795_899_744_164)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-28T22:02:24.164628+01:00"),
            Some(1_795_899_744_164)
        );
        // Two promotions in the same minute keep their order.
        assert!(parse_rfc3339_ms("2026-11-29T22:54:31.918765+00:00") < parse_rfc3339_ms("2026-11-29T22:54:48.1+00:00"));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn reads_what_users_type_as_utc() {
        assert_eq!(parse_user_utc("1970-01-01"), Some(0));
        assert_eq!(parse_user_utc("2026-11-28T21:06:40"), Some(1_795_900_000_000));
        assert_eq!(
            postgres_utc(1_795_900_000_000).as_deref(),
            Some("2026-11-28 21:06:40+00")
        );
        assert_eq!(parse_user_utc("2026-11-28 21:06"), Some(1_795_899_960_000));
        assert_eq!(parse_user_utc("2000-02-29T00:00"), Some(951_782_400_000));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "1969-12-31",
            "10000-01-01",
            "99999999999999999-01-01",
            "9223372036854775807-01-01T00:00",
            "2026-11-28T24:00",
        ] {
            assert_eq!(parse_user_utc(bad), None, "{bad}");
        }
        assert!(parse_user_utc("9999-12-31T23:59:59").is_some());
        assert_eq!(
            patroni_schedule(1_795_899_960_000).as_deref(),
            Some("2026-11-28T21:06:00+00:00")
        );
    }

    /// Random instants (a fixed-seed generator, so a failure repeats) survive
    /// what the console writes and reads back: RFC 3339 to the millisecond,
    /// and the minute form a user types.
    #[test]
    fn round_trips_random_instants() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = (x % 253_402_300_799_000) as i64; // up to 9999-12-31T23:59:59
            let text = format_rfc3339(ms).unwrap();
            assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{text}");
            let minute = ms / 60_000 * 60_000;
            let typed = &format_rfc3339(minute).unwrap()[..16];
            assert_eq!(parse_user_utc(typed), Some(minute), "{typed}");
        }
    }
}
