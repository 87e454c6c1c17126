//! Every route the server answers, with its access rule. Pages and server
//! functions come from the app's one table (`app::access`); the server adds
//! its plain HTTP routes, websockets and the static site here. A path that
//! matches nothing here is answered 404 before any handler runs, and the
//! same patterns are registered with axum, so what is looked up here is
//! what gets routed (paths are canonical by then: `auth::path`).

use app::access::{self, Access, Action};

/// What kind of route a path is (decides how refusals are answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    Page,
    ServerFn,
    Http,
    Websocket,
    Static,
}

/// The static site, served by its own route (tower-http's ServeDir).
pub const STATIC_ROUTE: &str = "/pkg/{*file}";

/// The server's own routes besides pages and server functions.
pub const HTTP_ROUTES: &[(&str, Access)] = &[
    ("/logout", Access::Public),
    ("/healthz", Access::Public),
    ("/audit/export.csv", Access::Needs(Action::ViewAudit)),
    ("/backups/download/{id}", Access::Needs(Action::ReadBackupContents)),
    // HAProxy's stats behind Traefik (stats_auth.rs): Traefik's forwardAuth
    // and the stats host's grant check their own session; the grant is issued
    // to logged-in users only.
    ("/auth/traefik", Access::Public),
    ("/auth/stats", Access::Needs(Action::ViewCluster)),
    ("/_pgc/grant", Access::Public),
    (crate::logs::DOWNLOAD_ROUTE, Access::Needs(Action::ReadLogs)),
    (crate::timeline_csv::ROUTE, Access::Needs(Action::ViewCluster)),
];

/// Websocket routes (as registered, `{param}` segments included).
pub const WS_ROUTES: &[(&str, Action)] = &[
    (crate::jobs_ws::JOB_ROUTE, Action::ViewCluster),
    (crate::jobs_ws::FEED_ROUTE, Action::ViewCluster),
    (crate::overview_ws::ROUTE, Action::ViewCluster),
    (crate::logs::TAIL_ROUTE, Action::ReadLogs),
];

/// Whether `path` matches the axum-style `pattern` (`{x}` one segment,
/// `{*x}` the rest, at least one segment).
pub fn matches(pattern: &str, path: &str) -> bool {
    let mut pat = pattern.split('/');
    let mut segs = path.split('/');
    loop {
        match (pat.next(), segs.next()) {
            (None, None) => return true,
            (Some(p), Some(s)) if p.starts_with("{*") => return !s.is_empty(),
            (Some(p), Some(s)) if p.starts_with('{') => {
                if s.is_empty() {
                    return false;
                }
            }
            (Some(p), Some(s)) if p == s => {}
            _ => return false,
        }
    }
}

/// The route kind and access rule of a canonical path; None: not a route (404).
pub fn lookup(path: &str) -> Option<(RouteKind, Access)> {
    if let Some(a) = access::page(path) {
        return Some((RouteKind::Page, a));
    }
    if let Some(a) = access::server_fn(path) {
        return Some((RouteKind::ServerFn, Access::Needs(a)));
    }
    if let Some((_, a)) = HTTP_ROUTES.iter().find(|(p, _)| matches(p, path)) {
        return Some((RouteKind::Http, *a));
    }
    if let Some((_, a)) = WS_ROUTES.iter().find(|(p, _)| matches(p, path)) {
        return Some((RouteKind::Websocket, Access::Needs(*a)));
    }
    matches(STATIC_ROUTE, path).then_some((RouteKind::Static, Access::Public))
}

fn describe(a: Access) -> String {
    match a {
        Access::Public => "public".into(),
        Access::Needs(a) => a.name().into(),
    }
}

/// Every registered route with its rule (None: unruled, which `pg-console
/// routes` reports with exit status 1): the app's pages as Leptos lists
/// them, every registered server function, and the server's own routes.
pub fn all_routes(pages: &[String]) -> Vec<(String, Option<String>)> {
    let mut v: Vec<(String, Option<String>)> = pages
        .iter()
        .map(|p| (p.clone(), access::page(p).map(describe)))
        .collect();
    v.extend(
        leptos::server_fn::axum::server_fn_paths()
            .map(|(path, _method)| (path.to_string(), access::server_fn(path).map(|a| a.name().to_string()))),
    );
    v.extend(HTTP_ROUTES.iter().map(|(p, a)| (p.to_string(), Some(describe(*a)))));
    v.extend(
        WS_ROUTES
            .iter()
            .map(|(p, a)| (p.to_string(), Some(a.name().to_string()))),
    );
    v.push((STATIC_ROUTE.to_string(), Some(describe(Access::Public))));
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.dedup_by(|a, b| a.0 == b.0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_whole_segments() {
        assert!(matches("/ws/jobs/{id}", "/ws/jobs/abc"));
        assert!(!matches("/ws/jobs/{id}", "/ws/jobs/"));
        assert!(!matches("/ws/jobs/{id}", "/ws/jobs/abc/more"));
        assert!(matches("/pkg/{*file}", "/pkg/pg-console.js"));
        assert!(matches("/pkg/{*file}", "/pkg/a/b.js"));
        assert!(!matches("/pkg/{*file}", "/pkg"));
        assert!(!matches("/audit/export.csv", "/audit/export.csv/x"));
    }

    #[test]
    fn unknown_paths_have_no_rule() {
        for p in [
            "/nope",
            "/AUDIT",
            "/Admin",
            "/api/nope",
            "/pkgx/a",
            "/ws/other/1",
            "/favicon.ico",
        ] {
            assert_eq!(lookup(p), None, "{p}");
        }
        assert_eq!(
            lookup("/audit"),
            Some((RouteKind::Page, Access::Needs(Action::ViewAudit)))
        );
        assert_eq!(lookup("/login"), Some((RouteKind::Page, Access::Public)));
        assert_eq!(
            lookup("/backups/download/x"),
            Some((RouteKind::Http, Access::Needs(Action::ReadBackupContents)))
        );
    }
}
