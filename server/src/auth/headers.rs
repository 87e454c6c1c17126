//! What every response carries, and the one place a server function's
//! error becomes its HTTP status.
//!
//! - Pages get a Content-Security-Policy with a per-request nonce from the
//!   app's shell (`app::page_csp`); every other answer gets [`DEFAULT_CSP`].
//! - Frames, MIME sniffing and referrers are shut off everywhere; answers
//!   other than the static site are not cached.
//! - A server function that fails answers with its [`ApiError`]'s status
//!   (server_fn marks error bodies with a header and answers 500 for all of
//!   them; the kind in the body says which status it really is).

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use app::error::ApiError;

/// The policy of answers that are not pages (JSON, CSV, downloads, 404s).
pub const DEFAULT_CSP: &str =
    "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A server function's error body is small; anything larger is left as is.
const MAX_ERROR_BODY: usize = 64 * 1024;

fn set_if_absent(res: &mut Response, name: HeaderName, value: &'static str) {
    if !res.headers().contains_key(&name) {
        res.headers_mut().insert(name, HeaderValue::from_static(value));
    }
}

/// Whether a static file's name carries its content's hash
/// (`pg-console.<16 hex>.js`): it never changes, so it is cached for a year.
fn is_hashed_asset(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or("");
    let mut parts = name.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(_), Some(h), Some("js" | "wasm"), None) if h.len() == 16 && h.bytes().all(|b| b.is_ascii_hexdigit())
    )
}

/// Middleware: the security headers of every answer.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let is_static = path.starts_with("/pkg/");
    let mut res = next.run(req).await;
    if is_static && res.status().is_success() {
        let cache = if is_hashed_asset(&path) {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        set_if_absent(&mut res, header::CACHE_CONTROL, cache);
    }
    set_if_absent(&mut res, header::CONTENT_SECURITY_POLICY, DEFAULT_CSP);
    set_if_absent(&mut res, header::X_FRAME_OPTIONS, "DENY");
    set_if_absent(&mut res, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_if_absent(&mut res, header::REFERRER_POLICY, "same-origin");
    set_if_absent(
        &mut res,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    if !is_static {
        set_if_absent(&mut res, header::CACHE_CONTROL, "no-store");
    }
    res
}

/// Middleware: a failed server function answers with its error's status.
pub async fn server_fn_status(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if res.status() != StatusCode::INTERNAL_SERVER_ERROR
        || !res
            .headers()
            .contains_key(leptos::server_fn::error::SERVER_FN_ERROR_HEADER)
    {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = match to_bytes(body, MAX_ERROR_BODY).await {
        Ok(b) => b,
        Err(_) => return Response::from_parts(parts, Body::empty()),
    };
    if let Ok(e) = serde_json::from_slice::<ApiError>(&bytes) {
        parts.status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::is_hashed_asset;

    #[test]
    fn only_hashed_names_are_cached_for_long() {
        assert!(is_hashed_asset("/pkg/pg-console.0123456789abcdef.wasm"));
        // The split front end's loader, route modules and shared chunks.
        assert!(is_hashed_asset("/pkg/__wasm_split.0123456789abcdef.js"));
        assert!(is_hashed_asset(
            "/pkg/split___login_route_view_1234567.0123456789abcdef.wasm"
        ));
        assert!(is_hashed_asset("/pkg/chunk_12.0123456789abcdef.wasm"));
        assert!(!is_hashed_asset("/pkg/__wasm_split.______________________.js"));
        assert!(is_hashed_asset("/pkg/pg-console.0123456789abcdef.js"));
        assert!(!is_hashed_asset("/pkg/pg-console.js"));
        assert!(!is_hashed_asset("/pkg/pg-console.css"));
        assert!(!is_hashed_asset("/pkg/pg-console.0123456789abcdeg.js"));
        assert!(!is_hashed_asset("/pkg/pg-console_bg.wasm"));
    }
}
