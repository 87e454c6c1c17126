//! HAProxy's stats behind Traefik (the SOP's `https://pg-haproxy.${DEFAULT_URL}`)
//! are not open to everyone who can reach Traefik: Traefik asks the console
//! first (forwardAuth), and only a signed-in session with viewer or higher
//! gets through. Each session's first stats view is audited.
//!
//! The console's session cookie is host-only (`__Host-`), so the browser
//! never sends it to the stats host. The stats host gets its own cookie:
//! 1. `GET /auth/traefik` (Traefik, for every stats request): the stats
//!    cookie names a live session allowed to view the cluster → 200; else a
//!    redirect to the console's `/auth/stats`.
//! 2. `GET /auth/stats` (the console's host, login required): a one-time code
//!    (60 s) → redirect to the stats host's `/_pgc/grant?code=…`.
//! 3. `GET /_pgc/grant` (routed by Traefik from the stats host to the
//!    console): the code becomes the stats cookie, bound to that session →
//!    redirect to the stats page. The cookie dies with the session.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use domain::audit::AuditResult;
use domain::authz::Action;
use domain::users::SessionCheck;
use serde::Deserialize;

use crate::auth::login::ClientIp;
use crate::auth::middleware::entry_for;
use crate::auth::CurrentUser;
use crate::state::AppState;

const CODE_TTL_MS: i64 = 60_000;
/// Grants remembered at most (the oldest codes and tokens go first).
const MAX_GRANTS: usize = 10_000;

#[derive(Default)]
struct Grants {
    /// One-time code → (session id, expiry).
    codes: HashMap<String, (String, i64)>,
    /// Stats cookie value → session id.
    tokens: HashMap<String, String>,
    /// Sessions whose stats view is audited already.
    viewed: HashSet<String>,
}

pub struct StatsAuth {
    /// The console's public origin (where `/auth/stats` is).
    console_url: String,
    /// The stats page's public origin (where `/_pgc/grant` is routed).
    stats_url: String,
    cookie_name: &'static str,
    secure: bool,
    grants: Mutex<Grants>,
}

impl StatsAuth {
    pub fn new(console_origin: &str, stats_public_url: &str) -> Self {
        let secure = console_origin.starts_with("https://");
        StatsAuth {
            console_url: console_origin.trim_end_matches('/').to_string(),
            stats_url: origin(stats_public_url),
            cookie_name: if secure { "__Host-pgc_stats" } else { "pgc_stats" },
            secure,
            grants: Mutex::new(Grants::default()),
        }
    }

    fn grants(&self) -> std::sync::MutexGuard<'_, Grants> {
        self.grants.lock().expect("stats grants poisoned")
    }

    fn issue_code(&self, sid: &str) -> String {
        let code = domain::users::random_token();
        let now = domain::now_ms();
        let mut g = self.grants();
        g.codes.retain(|_, (_, exp)| *exp > now);
        if g.codes.len() >= MAX_GRANTS {
            g.codes.clear();
        }
        g.codes.insert(code.clone(), (sid.to_string(), now + CODE_TTL_MS));
        code
    }

    /// A code, once and in time, becomes a cookie value bound to its session.
    fn redeem(&self, code: &str) -> Option<String> {
        let mut g = self.grants();
        let (sid, exp) = g.codes.remove(code)?;
        if exp <= domain::now_ms() {
            return None;
        }
        if g.tokens.len() >= MAX_GRANTS {
            g.tokens.clear();
        }
        let token = domain::users::random_token();
        g.tokens.insert(token.clone(), sid);
        Some(token)
    }

    fn session_of(&self, token: &str) -> Option<String> {
        self.grants().tokens.get(token).cloned()
    }

    fn forget(&self, token: &str, sid: &str) {
        let mut g = self.grants();
        g.tokens.remove(token);
        g.viewed.remove(sid);
    }

    /// True the first time a session views the stats.
    fn first_view(&self, sid: &str) -> bool {
        let mut g = self.grants();
        if g.viewed.len() >= MAX_GRANTS {
            g.viewed.clear();
        }
        g.viewed.insert(sid.to_string())
    }

    fn to_console(&self) -> Response {
        Redirect::to(&format!("{}/auth/stats", self.console_url)).into_response()
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    format!("{scheme}://{}", rest.split('/').next().unwrap_or(""))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `GET /auth/traefik`: Traefik's forwardAuth for the stats route.
pub async fn forward_auth(State(st): State<AppState>, ip: Option<Extension<ClientIp>>, headers: HeaderMap) -> Response {
    let stats = &st.stats_auth;
    let Some(token) = cookie(&headers, stats.cookie_name) else {
        return stats.to_console();
    };
    let Some(sid) = stats.session_of(token) else {
        return stats.to_console();
    };
    match st.sessions.check(&sid).await {
        Ok(SessionCheck::Valid(info)) if domain::authz::may(info.role, Action::ViewCluster) => {
            if stats.first_view(&sid) {
                let caller = CurrentUser {
                    user_id: info.user_id,
                    name: info.user_name,
                    role: info.role,
                    sid: sid.clone(),
                    ip: ip.map(|e| e.0 .0).unwrap_or_else(|| "unknown".into()),
                };
                st.audit
                    .record_or_log(entry_for(
                        &caller,
                        "haproxy_stats_view",
                        AuditResult::Ok,
                        &stats.stats_url,
                    ))
                    .await;
            }
            (StatusCode::OK, "ok").into_response()
        }
        _ => {
            stats.forget(token, &sid);
            stats.to_console()
        }
    }
}

/// `GET /auth/stats` (logged in, viewer or higher): send the browser to the
/// stats host with a one-time code.
pub async fn grant(State(st): State<AppState>, Extension(caller): Extension<CurrentUser>) -> Response {
    let code = st.stats_auth.issue_code(&caller.sid);
    Redirect::to(&format!("{}/_pgc/grant?code={code}", st.stats_auth.stats_url)).into_response()
}

#[derive(Deserialize)]
pub struct GrantQuery {
    #[serde(default)]
    code: String,
}

/// `GET /_pgc/grant?code=…` (on the stats host): the code becomes the stats cookie.
pub async fn redeem(State(st): State<AppState>, Query(q): Query<GrantQuery>) -> Response {
    let stats = &st.stats_auth;
    let Some(token) = stats.redeem(&q.code) else {
        return stats.to_console();
    };
    let secure = if stats.secure { "; Secure" } else { "" };
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, "/".to_string()),
            (
                header::SET_COOKIE,
                format!("{}={token}; Path=/; HttpOnly; SameSite=Lax{secure}", stats.cookie_name),
            ),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_single_use_and_tokens_map_to_their_session() {
        let s = StatsAuth::new("https://pg-console.localhost", "https://pg-haproxy.localhost/");
        assert_eq!(s.cookie_name, "__Host-pgc_stats");
        assert_eq!(s.stats_url, "https://pg-haproxy.localhost");
        let code = s.issue_code("sid-1");
        let token = s.redeem(&code).expect("a fresh code");
        assert!(s.redeem(&code).is_none(), "used up");
        assert_eq!(s.session_of(&token).as_deref(), Some("sid-1"));
        assert!(s.first_view("sid-1") && !s.first_view("sid-1"));
        s.forget(&token, "sid-1");
        assert!(s.session_of(&token).is_none());
        assert!(s.redeem("made-up").is_none());
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; __Host-pgc_stats=tok; x__Host-pgc_stats=no".parse().unwrap(),
        );
        assert_eq!(cookie(&h, "__Host-pgc_stats"), Some("tok"));
        assert_eq!(cookie(&h, "pgc_stats"), None);
    }
}
