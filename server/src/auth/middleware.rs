//! Every request passes here: CSRF/origin check on unsafe requests, session
//! validation (idle/absolute timeouts, revocation, role change), then the
//! authorization rule of the path. The server is the authority; the UI only
//! hides what the user may not do.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use domain::audit::{AuditEntry, AuditResult};
use domain::authz::{may, Action};
use domain::users::SessionCheck;
use tower_sessions::Session;

use super::{client_ip::client_ip, csrf, rules, CurrentUser, SESSION_KEY};
use crate::state::AppState;

fn is_public(path: &str) -> bool {
    path == "/login"
        || path == "/logout"
        || path == "/healthz"
        || path.starts_with("/pkg/")
        || path == "/favicon.ico"
        || path == "/robots.txt"
}

fn json_error(status: StatusCode, msg: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": msg }).to_string(),
    )
        .into_response()
}

pub async fn authenticate(State(st): State<AppState>, session: Session, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ip = client_ip(req.headers(), peer, &st.trusted_proxies);

    if csrf::needs_check(req.method(), req.headers()) {
        if let Err(reason) = csrf::check(req.headers(), &st.public_origin) {
            audit(
                &st,
                AuditEntry::new("csrf_refused", AuditResult::Refused)
                    .ip(&ip)
                    .target(&path)
                    .error(&reason),
            )
            .await;
            return json_error(StatusCode::FORBIDDEN, &format!("refused: {reason}"));
        }
    }

    req.extensions_mut().insert(super::login::ClientIp(ip.clone()));
    let caller = current_user(&st, &session, &ip).await;
    if let Some(c) = &caller {
        req.extensions_mut().insert(c.clone());
    }
    if is_public(&path) {
        if path == "/login" && req.method() == axum::http::Method::GET && caller.is_some() {
            return Redirect::to("/").into_response();
        }
        return next.run(req).await;
    }
    let is_ws = path.starts_with("/ws/");
    let is_api = is_ws || path.starts_with("/api/");
    let Some(caller) = caller else {
        return if is_api {
            json_error(
                StatusCode::UNAUTHORIZED,
                "login required: your session has ended or you are not logged in",
            )
        } else {
            let next_path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            Redirect::to(&format!("/login?next={}", urlencode(next_path))).into_response()
        };
    };
    let rule = if is_ws {
        rules::ws_rule(&path).ok_or(())
    } else if is_api {
        rules::api_rule(&path).ok_or(())
    } else {
        Ok(rules::page_rule(&path).unwrap_or(Action::ViewSelf))
    };
    match rule {
        Err(()) => {
            audit(
                &st,
                entry_for(&caller, "authorization_refused", AuditResult::Refused, &path).error("no authorization rule"),
            )
            .await;
            json_error(
                StatusCode::FORBIDDEN,
                "refused: this endpoint has no authorization rule",
            )
        }
        Ok(action) if !may(caller.role, action) => {
            audit(
                &st,
                entry_for(&caller, "authorization_refused", AuditResult::Refused, &path)
                    .params(serde_json::json!({ "needs": action.name() })),
            )
            .await;
            let msg = format!(
                "refused: your role ({}) may not {}",
                caller.role.as_str(),
                action.name().replace('_', " ")
            );
            if is_api {
                json_error(StatusCode::FORBIDDEN, &msg)
            } else {
                (
                    StatusCode::FORBIDDEN,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    msg,
                )
                    .into_response()
            }
        }
        Ok(_) => next.run(req).await,
    }
}

/// Validate the session cookie's console session; end it (and say why in
/// the audit log) when it timed out, was revoked, or the user changed.
async fn current_user(st: &AppState, session: &Session, ip: &str) -> Option<CurrentUser> {
    let sid: String = session.get(SESSION_KEY).await.ok().flatten()?;
    let check = st.sessions.check(&sid).await.ok()?;
    let ended = |info: &domain::users::SessionInfo, why: &str| {
        AuditEntry::new("session_ended", AuditResult::Ok)
            .user(&info.user_name, info.role.as_str())
            .ip(ip)
            .session(&sid)
            .params(serde_json::json!({ "reason": why }))
    };
    match check {
        SessionCheck::Valid(info) => Some(CurrentUser {
            user_id: info.user_id,
            name: info.user_name,
            role: info.role,
            sid,
            ip: ip.to_string(),
        }),
        SessionCheck::IdleTimeout(info) => {
            audit(st, ended(&info, "idle timeout")).await;
            let _ = session.flush().await;
            None
        }
        SessionCheck::AbsoluteTimeout(info) => {
            audit(st, ended(&info, "absolute timeout")).await;
            let _ = session.flush().await;
            None
        }
        SessionCheck::Gone => {
            let _ = session.flush().await;
            None
        }
    }
}

pub fn entry_for(c: &CurrentUser, action: &str, result: AuditResult, target: &str) -> AuditEntry {
    AuditEntry::new(action, result)
        .user(&c.name, c.role.as_str())
        .ip(&c.ip)
        .session(&c.sid)
        .target(target)
}

/// Record an audit entry; a failure to write is logged loudly, never hidden.
pub async fn audit(st: &AppState, e: AuditEntry) {
    if let Err(err) = st.audit.record(e).await {
        tracing::error!("cannot write the audit log: {err}");
    }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
