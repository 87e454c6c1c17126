//! Clock times as the UI and the server's messages show them. Parsing and
//! the rest of date handling live in `domain::datetime` (the `time` crate),
//! on the server: the browser gets instants already as unix milliseconds.

/// `HH:MM:SS UTC` of a unix-ms timestamp (the clock time the UI and the
/// server's messages show).
pub fn clock_utc(ms: i64) -> String {
    let day = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02} UTC", day / 3600, (day % 3600) / 60, day % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock() {
        assert_eq!(clock_utc(1_795_900_000_000), "21:06:40 UTC");
        assert_eq!(clock_utc(-1000), "23:59:59 UTC");
    }
}
