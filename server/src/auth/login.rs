//! POST /login and POST /logout: plain HTML form posts (they work before the
//! wasm has loaded), answered with redirects, or 429 with Retry-After when
//! the source's budget or the console's hashing capacity is used up.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use domain::audit::{limits, AuditEntry, AuditResult};
use domain::users::{HashError, LoginOutcome, UserError};
use serde::Deserialize;
use tower_sessions::Session;

use super::middleware::entry_for;
use super::{CurrentUser, SESSION_KEY};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub next: String,
}

/// Routes besides pages that a login may return to: the stats grant
/// (HAProxy's stats behind Traefik send logged-out users through it).
const RETURN_ROUTES: &[&str] = &["/auth/stats"];

/// Only a page of this console, or a route of [`RETURN_ROUTES`] (and a query
/// without control characters), so the login form cannot send anyone elsewhere.
pub fn safe_next(next: &str) -> &str {
    let (path, query) = match next.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (next, None),
    };
    let page = matches!(app::access::page(path), Some(app::access::Access::Needs(_))) || RETURN_ROUTES.contains(&path);
    let canonical = super::path::check(path) == super::path::PathCheck::Canonical;
    let clean_query = query
        .map(|q| q.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'))
        .unwrap_or(true);
    if page && canonical && clean_query {
        next
    } else {
        "/"
    }
}

fn back_to_login(error: &str, next: &str, extra: &str) -> Response {
    let next: String = super::path::encode_query_value(safe_next(next));
    Redirect::to(&format!("/login?error={error}{extra}&next={next}")).into_response()
}

/// 429 with Retry-After, and a page a browser can show.
fn too_many(wait_s: u64, why: &str) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, wait_s.to_string())],
        Html(format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Too many attempts · pg-console</title>\
             <link rel=\"stylesheet\" href=\"/pkg/pg-console.css\"></head><body><main><p class=\"banner error\">\
             {why}: try again in {wait_s} s. <a href=\"/login\">Back to the login page</a>.</p></main></body></html>"
        )),
    )
        .into_response()
}

/// The client IP computed by the middleware, for handlers.
#[derive(Clone, Debug)]
pub struct ClientIp(pub String);

pub async fn login(
    State(st): State<AppState>,
    session: Session,
    caller_ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let ip = caller_ip.map(|e| e.0 .0).unwrap_or_else(|| "unknown".into());
    let name = f.username.trim().to_string();
    let refused = |action: &str| AuditEntry::new(action, AuditResult::Refused).ip(&ip).target(&name);
    let attempt = match st.ip_limiter.begin(&ip) {
        Ok(a) => a,
        Err(wait) => {
            st.audit.refuse(refused("login_rate_limited")).await;
            return too_many(wait, "Too many failed logins from your address");
        }
    };
    match st.users.count().await {
        Ok(0) => {
            attempt.forgiven();
            st.audit.refuse(refused("login_failed").error("no users exist")).await;
            return back_to_login("nousers", &f.next, "");
        }
        Err(e) => {
            tracing::error!("user store: {e}");
            return back_to_login("internal", &f.next, "");
        }
        Ok(_) => {}
    }
    let outcome = match st.users.login(&name, &f.password).await {
        Ok(o) => o,
        Err(UserError::Hash(HashError::Busy)) => {
            attempt.forgiven();
            st.audit.refuse(refused("login_busy")).await;
            return too_many(1, "The console is checking many logins at once");
        }
        Err(e) => {
            tracing::error!("login: {e}");
            return back_to_login("internal", &f.next, "");
        }
    };
    match outcome {
        LoginOutcome::Ok(user) => {
            attempt.forgiven();
            let ua = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let ua = limits::cut(ua, limits::USER_AGENT_MAX).unwrap_or_else(|| ua.to_string());
            start_session(&st, &session, &user, &ip, &ua, &f.next).await
        }
        LoginOutcome::Invalid {
            known_user,
            now_locked_until_ms,
        } => {
            attempt.failed();
            st.audit
                .refuse(refused("login_failed").params(serde_json::json!({ "known_user": known_user })))
                .await;
            if let Some(until) = now_locked_until_ms {
                st.audit
                    .record_or_log(
                        AuditEntry::new("account_locked", AuditResult::Ok)
                            .ip(&ip)
                            .target(&name)
                            .params(serde_json::json!({ "until_ms": until, "known_user": known_user })),
                    )
                    .await;
            }
            back_to_login("invalid", &f.next, "")
        }
        LoginOutcome::Locked { until_ms } => {
            attempt.failed();
            st.audit
                .refuse(refused("login_locked_out").params(serde_json::json!({ "until_ms": until_ms })))
                .await;
            back_to_login("locked", &f.next, &format!("&until={until_ms}"))
        }
    }
}

/// A fresh session id (no fixation), the console's session record, the audit entry.
async fn start_session(
    st: &AppState,
    session: &Session,
    user: &domain::users::User,
    ip: &str,
    ua: &str,
    next: &str,
) -> Response {
    if session.cycle_id().await.is_err() {
        return back_to_login("internal", next, "");
    }
    let sid = match st.sessions.create(user.id, user.role, ip, ua).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("session create: {e}");
            return back_to_login("internal", next, "");
        }
    };
    if session.insert(SESSION_KEY, &sid).await.is_err() {
        return back_to_login("internal", next, "");
    }
    st.audit
        .record_or_log(
            AuditEntry::new("login", AuditResult::Ok)
                .user(&user.name, user.role.as_str())
                .ip(ip)
                .session(&sid)
                .params(serde_json::json!({ "user_agent": ua })),
        )
        .await;
    Redirect::to(safe_next(next)).into_response()
}

pub async fn logout(State(st): State<AppState>, session: Session, caller: Option<Extension<CurrentUser>>) -> Response {
    if let Some(Extension(c)) = caller {
        let _ = st.sessions.delete(&c.sid).await;
        st.audit
            .record_or_log(entry_for(&c, "logout", AuditResult::Ok, ""))
            .await;
    }
    let _ = session.flush().await;
    Redirect::to("/login?loggedout=1").into_response()
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_is_only_a_page_of_this_console() {
        for ok in [
            "/",
            "/audit",
            "/backups",
            "/audit?user=a&action=login_failed",
            "/admin",
            "/auth/stats",
        ] {
            assert_eq!(safe_next(ok), ok);
        }
        for bad in [
            "//evil.example",
            "/%09/evil.example",
            "/\t/evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "/login",
            "/nope",
            "/pkg/../audit",
            "/audit?x=\r\nSet-Cookie:a",
            "/audit?x=a\\b",
            "",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe_next(bad), "/", "{bad:?}");
        }
    }
}
