//! Every request with a canonical path (`auth::path` ran first) passes here:
//! the route's rule is looked up (no rule: 404, whoever asks), unsafe
//! requests must be same-origin, the session is validated (idle/absolute
//! timeouts, revocation, role change), and the rule is enforced. The server
//! is the authority; the UI only hides what the user may not do, and every
//! server function checks its own rule again (`app::access::authorize`).

use std::net::SocketAddr;

use app::access::Access;
use app::error::{ApiError, ErrorKind};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use domain::audit::{AuditEntry, AuditResult};
use domain::users::SessionCheck;
use tower_sessions::Session;

use super::rules::{lookup, RouteKind};
use super::{client_ip::client_ip, csrf, CurrentUser, SESSION_KEY};
use crate::state::AppState;

/// An [`ApiError`] as an HTTP response (the status from its kind).
pub fn api_error(e: ApiError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&e).expect("an ApiError serialises"),
    )
        .into_response()
}

/// The answer for a path that is not a route.
pub fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found · pg-console</title>\
             <link rel=\"stylesheet\" href=\"/pkg/pg-console.css\"></head><body><main><p class=\"notice\">\
             Page not found. <a href=\"/\">Go to the Overview</a>.</p></main></body></html>",
        ),
    )
        .into_response()
}

/// `/login?next=…` for a page the caller must log in to see.
fn login_redirect(req: &Request) -> Response {
    let next_path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let next: String = super::path::encode_query_value(next_path);
    Redirect::to(&format!("/login?next={next}")).into_response()
}

pub async fn authenticate(State(st): State<AppState>, session: Session, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let Some((kind, access)) = lookup(&path) else {
        return not_found();
    };
    if kind == RouteKind::Static {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ip = client_ip(req.headers(), peer, &st.trusted_proxies);

    if csrf::needs_check(req.method(), req.headers()) {
        if let Err(reason) = csrf::check(req.headers(), &st.public_origin) {
            st.audit
                .refuse(
                    AuditEntry::new("csrf_refused", AuditResult::Refused)
                        .ip(&ip)
                        .target(&path)
                        .error(&reason),
                )
                .await;
            return api_error(ApiError::forbidden(format!("refused: {reason}")));
        }
    }

    req.extensions_mut().insert(super::login::ClientIp(ip.clone()));
    let caller = current_user(&st, &session, &ip).await;
    if let Some(c) = &caller {
        req.extensions_mut().insert(c.clone());
    }
    let action = match access {
        Access::Public => {
            if path == "/login" && req.method() == Method::GET && caller.is_some() {
                return Redirect::to("/").into_response();
            }
            return next.run(req).await;
        }
        Access::Needs(action) => action,
    };
    let Some(caller) = caller else {
        return if matches!(kind, RouteKind::Page | RouteKind::Http) && req.method() == Method::GET {
            login_redirect(&req)
        } else {
            api_error(ApiError::login_required())
        };
    };
    if !caller.may(action) {
        st.audit
            .refuse(
                entry_for(&caller, "authorization_refused", AuditResult::Refused, &path)
                    .params(serde_json::json!({ "needs": action.name() })),
            )
            .await;
        let msg = format!(
            "refused: your role ({}) may not {}",
            caller.role.as_str(),
            action.name().replace('_', " ")
        );
        return if kind == RouteKind::Page {
            (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                msg,
            )
                .into_response()
        } else {
            api_error(ApiError::new(ErrorKind::Forbidden, msg))
        };
    }
    next.run(req).await
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
        SessionCheck::Valid(info) => {
            renew_if_due(session).await;
            Some(CurrentUser {
                user_id: info.user_id,
                name: info.user_name,
                role: info.role,
                sid,
                ip: ip.to_string(),
            })
        }
        SessionCheck::IdleTimeout(info) => {
            st.audit.record_or_log(ended(&info, "idle timeout")).await;
            let _ = session.flush().await;
            None
        }
        SessionCheck::AbsoluteTimeout(info) => {
            st.audit.record_or_log(ended(&info, "absolute timeout")).await;
            let _ = session.flush().await;
            None
        }
        SessionCheck::Gone => {
            let _ = session.flush().await;
            None
        }
    }
}

/// A valid session's cookie and its tower-sessions record get a new expiry
/// at most every [`super::SESSION_RENEW_EVERY_SECS`], not on every request
/// (a database write per call): marking the session changed makes
/// tower-sessions save it and send the cookie again.
async fn renew_if_due(session: &Session) {
    let now = domain::now_ms() / 1000;
    let renewed: i64 = session.get(RENEWED_AT_KEY).await.ok().flatten().unwrap_or(0);
    if now - renewed >= super::SESSION_RENEW_EVERY_SECS {
        let _ = session.insert(RENEWED_AT_KEY, now).await;
    }
}

/// When the session's record and cookie were last renewed (unix seconds).
const RENEWED_AT_KEY: &str = "pgc_renewed_at";

pub fn entry_for(c: &CurrentUser, action: &str, result: AuditResult, target: &str) -> AuditEntry {
    AuditEntry::new(action, result).by(c).target(target)
}
