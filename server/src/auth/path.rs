//! The first thing every request meets: its path must be in canonical form
//! before any rule is looked up or any route is matched. The console's own
//! paths use only unreserved characters, so anything else is refused rather
//! than decoded: no percent-encoding at all (so no `%2e%2e`, `%2f`, double
//! encoding), no backslash, no `.` or `..` segment, no empty segment. A
//! trailing slash on a page is the one spelling that is redirected (GET/HEAD)
//! to its normal form; the redirected request then meets the rules again.
//!
//! With this in place the rule tables and axum's router see the same string,
//! so an exact-match rule lookup cannot disagree with where the request goes.

use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

/// Longest path the console answers (its own are far shorter).
pub const MAX_PATH_LEN: usize = 512;

#[derive(Debug, PartialEq, Eq)]
pub enum PathCheck {
    Canonical,
    /// The same path without its trailing slash(es).
    Redirect(String),
    Refused(&'static str),
}

fn allowed_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/')
}

/// Classify a raw request path (as sent, before any decoding).
pub fn check(path: &str) -> PathCheck {
    if !path.starts_with('/') {
        return PathCheck::Refused("the path must start with /");
    }
    if path.len() > MAX_PATH_LEN {
        return PathCheck::Refused("the path is too long");
    }
    if path.bytes().any(|b| b == b'%') {
        return PathCheck::Refused("percent-encoded characters are not used in this console's paths");
    }
    if !path.bytes().all(allowed_byte) {
        return PathCheck::Refused("the path holds characters this console's paths never use");
    }
    if path == "/" {
        return PathCheck::Canonical;
    }
    let trimmed = path.trim_end_matches('/');
    let body = if trimmed.is_empty() { "/" } else { trimmed };
    for seg in body.split('/').skip(1).filter(|_| body != "/") {
        if seg.is_empty() {
            return PathCheck::Refused("empty path segment (//)");
        }
        if seg == "." || seg == ".." {
            return PathCheck::Refused("dot segments (. or ..) are not allowed");
        }
    }
    if body.len() != path.len() {
        return PathCheck::Redirect(body.to_string());
    }
    PathCheck::Canonical
}

fn refused(why: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("bad request: {why}; use the links in the console"),
    )
        .into_response()
}

/// Everything but unreserved characters and `/` is escaped: a path (with
/// its query) as the value of a query parameter, readable and unambiguous.
const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

pub fn encode_query_value(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, QUERY_VALUE).to_string()
}

/// Middleware: refuse or redirect non-canonical paths before anything else runs.
pub async fn canonical_paths(req: Request, next: Next) -> Response {
    match check(req.uri().path()) {
        PathCheck::Canonical => next.run(req).await,
        PathCheck::Refused(why) => refused(why),
        PathCheck::Redirect(to) if matches!(*req.method(), Method::GET | Method::HEAD) => {
            let to = match req.uri().query() {
                Some(q) => format!("{to}?{q}"),
                None => to,
            };
            Redirect::permanent(&to).into_response()
        }
        PathCheck::Redirect(_) => refused("a trailing slash; send the request to the path without it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_pass() {
        for p in [
            "/",
            "/login",
            "/audit",
            "/api/op_prepare",
            "/pkg/pg-console.js",
            "/ws/jobs/0a1b",
            "/backups/download/20261129T101500Z-pg-2",
            "/favicon.ico",
            "/audit/export.csv",
        ] {
            assert_eq!(check(p), PathCheck::Canonical, "{p}");
        }
    }

    #[test]
    fn dot_segments_and_encodings_are_refused() {
        for p in [
            "/pkg/../audit",
            "/./admin",
            "/a/../audit",
            "/pkg/%2e%2e/audit",
            "/pkg/%2E%2E/audit",
            "/pkg/..%2faudit",
            "/pkg/..%2Faudit",
            "/%2e/admin",
            "/pkg/%252e%252e/audit",
            "/pkg/..\\audit",
            "/pkg/..;/audit",
            "//audit",
            "/api//overview",
            "/..",
            "/.",
            "/audit/.",
            "/audit/..",
            "audit",
            "/admin%00",
            "/admin\u{7f}",
        ] {
            assert!(matches!(check(p), PathCheck::Refused(_)), "{p} must be refused");
        }
        assert!(matches!(check(&format!("/{}", "a".repeat(600))), PathCheck::Refused(_)));
    }

    #[test]
    fn query_values_keep_slashes_and_escape_the_rest() {
        assert_eq!(
            encode_query_value("/audit?user=a b&x=1"),
            "/audit%3Fuser%3Da%20b%26x%3D1"
        );
        assert_eq!(encode_query_value("/"), "/");
    }

    #[test]
    fn a_trailing_slash_redirects_to_the_normal_form() {
        assert_eq!(check("/audit/"), PathCheck::Redirect("/audit".into()));
        assert_eq!(check("/audit//"), PathCheck::Redirect("/audit".into()));
        assert_eq!(check("//"), PathCheck::Redirect("/".into()));
        assert_eq!(check("/api/overview/"), PathCheck::Redirect("/api/overview".into()));
    }
}
