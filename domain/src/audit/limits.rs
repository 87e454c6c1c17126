//! Every audit field that can come from a request is bounded before it is
//! written, so no client (logged out ones included) can grow the log by more
//! than a few KiB per entry. A cut value ends with a marker saying how long
//! it was, and the entry's params list which fields were cut.

use serde_json::Value;

/// The documented maximum length (bytes) of each field.
pub const USER_NAME_MAX: usize = 128;
pub const ROLE_MAX: usize = 16;
pub const SOURCE_IP_MAX: usize = 64;
pub const ACTION_MAX: usize = 64;
pub const TARGET_MAX: usize = 256;
pub const ERROR_MAX: usize = 1024;
/// The params object, serialised as JSON.
pub const PARAMS_MAX: usize = 4096;
/// A user agent, wherever it is kept (sessions, login entries).
pub const USER_AGENT_MAX: usize = 256;

/// `s` cut to at most `max` bytes (at a character boundary) with a marker,
/// or None when it fits.
pub fn cut(s: &str, max: usize) -> Option<String> {
    if s.len() <= max {
        return None;
    }
    let marker = format!("… [cut: {} bytes in all]", s.len());
    let keep = max.saturating_sub(marker.len());
    let mut end = keep.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    Some(format!("{}{marker}", &s[..end]))
}

/// Cut `field` in place; returns whether it was cut.
pub fn bound(field: &mut String, max: usize) -> bool {
    match cut(field, max) {
        Some(c) => {
            *field = c;
            true
        }
        None => false,
    }
}

/// The params JSON within [`PARAMS_MAX`]: long strings inside are cut first;
/// if it is still too long, it is replaced by a preview.
pub fn bound_params(params: &Value) -> (String, bool) {
    let text = params.to_string();
    if text.len() <= PARAMS_MAX {
        return (text, false);
    }
    let shortened = shorten_strings(params.clone(), 256).to_string();
    if shortened.len() <= PARAMS_MAX {
        return (shortened, true);
    }
    let preview = cut(&text, 1024).unwrap_or(text.clone());
    (
        serde_json::json!({ "cut": true, "bytes": text.len(), "preview": preview }).to_string(),
        true,
    )
}

fn shorten_strings(v: Value, max: usize) -> Value {
    match v {
        Value::String(s) => Value::String(cut(&s, max).unwrap_or(s)),
        Value::Array(a) => Value::Array(a.into_iter().map(|x| shorten_strings(x, max)).collect()),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, x)| (k, shorten_strings(x, max))).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_with_a_marker_and_within_bounds() {
        let long = "x".repeat(65_536);
        let c = cut(&long, USER_NAME_MAX).unwrap();
        assert!(c.len() <= USER_NAME_MAX, "{}", c.len());
        assert!(c.ends_with("[cut: 65536 bytes in all]"), "{c}");
        assert_eq!(cut("admin", USER_NAME_MAX), None);
        // Multi-byte characters are never split.
        let wide = "é".repeat(1000);
        let c = cut(&wide, 101).unwrap();
        assert!(c.len() <= 101);
        assert!(c.starts_with('é'));
    }

    #[test]
    fn params_stay_within_bounds() {
        let (t, was_cut) = bound_params(&serde_json::json!({ "a": 1 }));
        assert_eq!((t.as_str(), was_cut), (r#"{"a":1}"#, false));
        let (t, was_cut) = bound_params(&serde_json::json!({ "ua": "y".repeat(100_000) }));
        assert!(was_cut && t.len() <= PARAMS_MAX, "{}", t.len());
        assert!(t.contains("cut: 100000 bytes"), "{t}");
        let many: Vec<String> = (0..5000).map(|i| format!("item{i}")).collect();
        let (t, was_cut) = bound_params(&serde_json::json!({ "list": many }));
        assert!(was_cut && t.len() <= PARAMS_MAX, "{}", t.len());
        assert!(serde_json::from_str::<Value>(&t).unwrap()["cut"] == true);
    }
}
