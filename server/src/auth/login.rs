//! POST /login and POST /logout: plain HTML form posts (they work before the
//! wasm has loaded), answered with redirects.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use domain::audit::{AuditEntry, AuditResult};
use domain::users::LoginOutcome;
use serde::Deserialize;
use tower_sessions::Session;

use super::middleware::{audit, entry_for, urlencode};
use super::{CurrentUser, SESSION_KEY};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct LoginForm {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub next: String,
}

/// Only local paths, so the login form cannot be used to redirect elsewhere.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") && !next.starts_with("/login") {
        next
    } else {
        "/"
    }
}

fn back_to_login(error: &str, next: &str, extra: &str) -> Response {
    Redirect::to(&format!(
        "/login?error={error}{extra}&next={}",
        urlencode(safe_next(next))
    ))
    .into_response()
}

pub async fn login(
    State(st): State<AppState>,
    session: Session,
    caller_ip: Option<Extension<ClientIp>>,
    Form(f): Form<LoginForm>,
) -> Response {
    let ip = caller_ip.map(|e| e.0 .0).unwrap_or_else(|| "unknown".into());
    let name = f.username.trim().to_string();
    if let Some(wait) = st.ip_limiter.blocked(&ip) {
        audit(
            &st,
            AuditEntry::new("login_rate_limited", AuditResult::Refused)
                .ip(&ip)
                .target(&name),
        )
        .await;
        return back_to_login("ratelimited", &f.next, &format!("&wait={wait}"));
    }
    match st.users.count().await {
        Ok(0) => {
            audit(
                &st,
                AuditEntry::new("login_failed", AuditResult::Refused)
                    .ip(&ip)
                    .target(&name)
                    .error("no users exist"),
            )
            .await;
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
        Err(e) => {
            tracing::error!("login: {e}");
            return back_to_login("internal", &f.next, "");
        }
    };
    match outcome {
        LoginOutcome::Ok(user) => {
            // A fresh session id at login (no fixation).
            if session.cycle_id().await.is_err() {
                return back_to_login("internal", &f.next, "");
            }
            let ua = String::new();
            let sid = match st.sessions.create(user.id, user.role, &ip, &ua).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("session create: {e}");
                    return back_to_login("internal", &f.next, "");
                }
            };
            if session.insert(SESSION_KEY, &sid).await.is_err() {
                return back_to_login("internal", &f.next, "");
            }
            audit(
                &st,
                AuditEntry::new("login", AuditResult::Ok)
                    .user(&user.name, user.role.as_str())
                    .ip(&ip)
                    .session(&sid),
            )
            .await;
            Redirect::to(safe_next(&f.next)).into_response()
        }
        LoginOutcome::Invalid {
            known_user,
            now_locked_until_ms,
        } => {
            st.ip_limiter.record_failure(&ip);
            let mut e = AuditEntry::new("login_failed", AuditResult::Refused)
                .ip(&ip)
                .target(&name)
                .params(serde_json::json!({ "known_user": known_user }));
            if let Some(until) = now_locked_until_ms {
                e = e.error(&format!("account locked until {until}"));
                audit(&st, e).await;
                audit(
                    &st,
                    AuditEntry::new("account_locked", AuditResult::Ok)
                        .ip(&ip)
                        .target(&name)
                        .params(serde_json::json!({ "until_ms": until })),
                )
                .await;
            } else {
                audit(&st, e).await;
            }
            back_to_login("invalid", &f.next, "")
        }
        LoginOutcome::Locked { until_ms } => {
            st.ip_limiter.record_failure(&ip);
            audit(
                &st,
                AuditEntry::new("login_locked_out", AuditResult::Refused)
                    .ip(&ip)
                    .target(&name)
                    .params(serde_json::json!({ "until_ms": until_ms })),
            )
            .await;
            back_to_login("locked", &f.next, &format!("&until={until_ms}"))
        }
    }
}

/// The client IP computed by the middleware, for handlers.
#[derive(Clone, Debug)]
pub struct ClientIp(pub String);

pub async fn logout(State(st): State<AppState>, session: Session, caller: Option<Extension<CurrentUser>>) -> Response {
    if let Some(Extension(c)) = caller {
        let _ = st.sessions.delete(&c.sid).await;
        audit(&st, entry_for(&c, "logout", AuditResult::Ok, "")).await;
    }
    let _ = session.flush().await;
    Redirect::to("/login?loggedout=1").into_response()
}
