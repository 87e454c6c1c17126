//! Clock times as the UI and the server's messages show them. Parsing and
//! the rest of date handling live in `domain::datetime` (the `time` crate),
//! on the server: the browser gets instants already as unix milliseconds.

/// `HH:MM:SS UTC` of a unix-ms timestamp (the clock time the UI and the
/// server's messages show).
pub fn clock_utc(ms: i64) -> String {
    let day = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02} UTC", day / 3600, (day % 3600) / 60, day % 60)
}

/// `HH:MM:SS` of a unix-ms timestamp shifted by `offset_min` minutes (a
/// time zone's offset from UTC at that instant).
pub fn clock_at_offset(ms: i64, offset_min: i64) -> String {
    let day = (ms + offset_min * 60_000).div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", day / 3600, (day % 3600) / 60, day % 60)
}

/// A zone's offset from UTC as people write it: `UTC`, `UTC+1`,
/// `UTC+5:30`, `UTC−3` (a minus sign, not a hyphen).
pub fn zone_label(offset_min: i64) -> String {
    let (sign, m) = if offset_min < 0 {
        ('−', -offset_min)
    } else {
        ('+', offset_min)
    };
    match (m / 60, m % 60) {
        (0, 0) => "UTC".into(),
        (h, 0) => format!("UTC{sign}{h}"),
        (h, min) => format!("UTC{sign}{h}:{min:02}"),
    }
}

/// `2026-11-30 21:06:40 UTC` from an ISO 8601 UTC string as browsers and
/// the `time` crate write it (`2026-11-30T21:06:40.000Z`), so that both
/// sides render the same text; None for anything else.
pub fn human_from_iso(iso: &str) -> Option<String> {
    let (date, rest) = iso.split_once('T')?;
    let clock = rest.get(..8)?;
    (date.len() == 10 && rest.ends_with('Z')).then(|| format!("{date} {clock} UTC"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_clocks_and_zone_labels() {
        assert_eq!(clock_at_offset(1_795_900_000_000, 0), "21:06:40");
        assert_eq!(clock_at_offset(1_795_900_000_000, 330), "02:36:40");
        assert_eq!(clock_at_offset(1_795_900_000_000, -180), "18:06:40");
        assert_eq!(zone_label(0), "UTC");
        assert_eq!(zone_label(60), "UTC+1");
        assert_eq!(zone_label(330), "UTC+5:30");
        assert_eq!(zone_label(-180), "UTC−3");
        assert_eq!(zone_label(-570), "UTC−9:30");
        assert_eq!(
            human_from_iso("2026-11-30T21:06:40.000Z").as_deref(),
            Some("2026-11-30 21:06:40 UTC")
        );
        assert_eq!(
            human_from_iso("2026-11-30T21:06:40Z").as_deref(),
            Some("2026-11-30 21:06:40 UTC")
        );
        assert_eq!(human_from_iso("yesterday"), None);
    }

    #[test]
    fn clock() {
        assert_eq!(clock_utc(1_795_900_000_000), "21:06:40 UTC");
        assert_eq!(clock_utc(-1000), "23:59:59 UTC");
    }
}
