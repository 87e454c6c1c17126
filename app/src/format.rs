//! Small display helpers shared by pages (no time crates in wasm).

pub use model::time::clock_utc as utc_time;

/// `3 s`, `2 min 5 s`, `1 h 4 min` between two unix-ms timestamps.
pub fn duration_between(from_ms: i64, to_ms: i64) -> String {
    let s = ((to_ms - from_ms).max(0)) / 1000;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(utc_time(0), "00:00:00 UTC");
        assert_eq!(utc_time(3_723_000), "01:02:03 UTC");
        assert_eq!(duration_between(0, 59_999), "59 s");
        assert_eq!(duration_between(0, 125_000), "2 min 5 s");
        assert_eq!(duration_between(0, 3_840_000), "1 h 4 min");
        assert_eq!(duration_between(10, 0), "0 s");
    }
}
