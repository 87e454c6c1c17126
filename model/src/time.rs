//! UTC date-time text ⇄ unix milliseconds, without a time crate (wasm-safe).

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The years a date may name (anything else is refused, never overflows).
pub const YEARS: std::ops::RangeInclusive<i64> = 1970..=9999;

/// Parse `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM` or `YYYY-MM-DD HH:MM[:SS]` (UTC)
/// into unix milliseconds. Empty, malformed or out-of-range text gives None.
pub fn parse_utc(s: &str) -> Option<i64> {
    let s = s.trim();
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, t),
        None => (s, "00:00"),
    };
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    if d.next().is_some() || !YEARS.contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&da) {
        return None;
    }
    let mut t = time.trim_end_matches('Z').split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi) = (t.next()??, t.next()??);
    let sec = t.next().flatten().unwrap_or(0);
    if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0..60).contains(&sec) {
        return None;
    }
    Some(((days_from_civil(y, mo, da) * 86_400) + h * 3600 + mi * 60 + sec) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_forms() {
        assert_eq!(parse_utc("1970-01-01"), Some(0));
        assert_eq!(parse_utc("2026-11-28T21:06:40"), Some(1_795_900_000_000));
        assert_eq!(parse_utc("2026-11-28 21:06"), Some(1_795_899_960_000));
        assert_eq!(parse_utc("2000-02-29T00:00"), Some(951_782_400_000));
        assert_eq!(parse_utc(""), None);
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(parse_utc("2026-13-01"), None);
        // Out of range: refused, not an overflow (debug builds panic on one).
        assert_eq!(parse_utc("99999999999999999-01-01"), None);
        assert_eq!(parse_utc("9223372036854775807-01-01T00:00"), None);
        assert_eq!(parse_utc("10000-01-01"), None);
        assert_eq!(parse_utc("1969-12-31"), None);
        assert!(parse_utc("9999-12-31T23:59:59").is_some());
    }
}

/// `HH:MM:SS UTC` of a unix-ms timestamp (the clock time the UI and the
/// server's messages show).
pub fn clock_utc(ms: i64) -> String {
    let day = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02} UTC", day / 3600, (day % 3600) / 60, day % 60)
}
