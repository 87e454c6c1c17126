//! Unsafe requests (anything but GET/HEAD/OPTIONS, and websocket upgrades)
//! must come from the console's own pages: `Sec-Fetch-Site: same-origin`, or
//! when a browser sends no such header, `Origin` equal to the public origin.

use axum::http::{HeaderMap, Method};

pub fn needs_check(method: &Method, headers: &HeaderMap) -> bool {
    let upgrade = headers
        .get("upgrade")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.eq_ignore_ascii_case("websocket"))
        .unwrap_or(false);
    upgrade || !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Ok, or the reason the request is refused.
pub fn check(headers: &HeaderMap, public_origin: &str) -> Result<(), String> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return if site == "same-origin" {
            Ok(())
        } else {
            Err(format!("cross-site request (Sec-Fetch-Site: {site})"))
        };
    }
    match headers.get("origin").and_then(|v| v.to_str().ok()) {
        Some(o) if o == public_origin => Ok(()),
        Some(o) => Err(format!("request from another origin ({o}); expected {public_origin}")),
        None => Err("request without Origin or Sec-Fetch-Site header".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn origin_rules() {
        let o = "https://console.example";
        assert!(check(&h(&[("sec-fetch-site", "same-origin")]), o).is_ok());
        assert!(
            check(&h(&[("sec-fetch-site", "cross-site"), ("origin", o)]), o).is_err(),
            "Sec-Fetch-Site wins"
        );
        assert!(check(&h(&[("sec-fetch-site", "same-site")]), o).is_err());
        assert!(check(&h(&[("origin", o)]), o).is_ok());
        assert!(check(&h(&[("origin", "https://evil.example")]), o).is_err());
        assert!(check(&h(&[]), o).is_err());
        assert!(needs_check(&Method::POST, &h(&[])));
        assert!(!needs_check(&Method::GET, &h(&[])));
        assert!(needs_check(&Method::GET, &h(&[("upgrade", "websocket")])));
    }
}
