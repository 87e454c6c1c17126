//! Routing cannot bypass authorization: every page and server function, as
//! listed by the binary itself (`pg-console routes`), × {logged out, viewer,
//! operator, admin} × path spellings an attacker's client sends as is
//! (`..`, `.`, percent-encoded and double-encoded dots and slashes, a
//! trailing slash, mixed case). Before the fix, `/pkg/../audit` and
//! `/pkg/%2e%2e/audit` rendered the audit log's rows to a logged-out client.

use crate::support::*;
use domain::authz::{may, Action, UserRole};

const OPERATOR_PW: &str = "a quiet operator of clusters";
const VIEWER_PW: &str = "just looking at the topology";

/// What a page must never contain when its caller may not see it.
const PROTECTED_MARKERS: &[&str] = &[
    "data-testid=\"audit-row\"",
    "data-testid=\"user-row\"",
    "data-testid=\"session-row\"",
    "data-testid=\"member-row\"",
    "data-testid=\"backup-row\"",
    "data-testid=\"chain-status\"",
    "data-testid=\"maintenance-badge\"",
    "data-testid=\"whoami\"",
];

fn leaks(body: &str) -> Option<&'static str> {
    PROTECTED_MARKERS.iter().copied().find(|m| body.contains(m))
}

/// The routes as the binary lists them: (path, rule) with rule "public" or an action name.
fn routes(app: &TestApp) -> Vec<(String, String)> {
    let out = app.cli(&["routes"], "");
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "a route has no rule:\n{listing}");
    listing
        .lines()
        .map(|l| {
            let (p, r) = l.split_once('\t').unwrap();
            (p.to_string(), r.to_string())
        })
        .collect()
}

fn is_page(path: &str) -> bool {
    ![
        "/api/",
        "/ws/",
        "/pkg/",
        "/backups/download/",
        "/logs/",
        "/audit/export.csv",
        "/timeline/export.csv",
        "/logout",
        "/healthz",
        "/auth/",
        "/_pgc/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// Spellings of `path` that must be refused (400) before any rule applies.
fn bad_spellings(path: &str) -> Vec<String> {
    let rest = path.trim_start_matches('/');
    let mut v = vec![
        format!("/./{rest}"),
        format!("/pkg/../{rest}"),
        format!("/a/../{rest}"),
        format!("/pkg/%2e%2e/{rest}"),
        format!("/pkg/%2E%2E/{rest}"),
        format!("/pkg/..%2f{rest}"),
        format!("/pkg/%252e%252e/{rest}"),
        format!("/pkg/..\\{rest}"),
        format!("/%2e/{rest}"),
    ];
    if !rest.is_empty() {
        // (`//` alone is the root with a trailing slash: redirected.)
        v.push(format!("//{rest}"));
    }
    v
}

struct Caller {
    role: Option<UserRole>,
    cookie: Option<String>,
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn no_path_spelling_reaches_a_page_or_function_the_caller_may_not_use() {
    let app = spawn_app().await;
    app.add_user("op", "operator", OPERATOR_PW);
    app.add_user("viewer", "viewer", VIEWER_PW);
    let callers = vec![
        Caller {
            role: None,
            cookie: None,
        },
        Caller {
            role: Some(UserRole::Viewer),
            cookie: Some(login_cookie(&app, "viewer", VIEWER_PW).await),
        },
        Caller {
            role: Some(UserRole::Operator),
            cookie: Some(login_cookie(&app, "op", OPERATOR_PW).await),
        },
        Caller {
            role: Some(UserRole::Admin),
            cookie: Some(login_cookie(&app, "admin", ADMIN_PASSWORD).await),
        },
    ];
    let all = routes(&app);
    let pages: Vec<&(String, String)> = all.iter().filter(|(p, _)| is_page(p)).collect();
    assert!(pages.len() >= 5, "{all:?}");
    for (page, rule) in &pages {
        for c in &callers {
            let who = c.role.map(|r| r.as_str()).unwrap_or("logged out");
            let allowed = rule == "public" || c.role.map(|r| may(r, Action::parse(rule).unwrap())).unwrap_or(false);
            // The page itself, spelled plainly.
            let r = raw_request(&app, "GET", page, c.cookie.as_deref(), "").await;
            match (allowed, c.role) {
                (true, _) if page.as_str() == "/login" && c.role.is_some() => {
                    assert_eq!(r.status, 303, "{page} as {who}")
                }
                (true, _) => assert_eq!(r.status, 200, "{page} as {who}"),
                (false, None) => {
                    assert_eq!(r.status, 303, "{page} as {who}");
                    assert!(r.header("location").unwrap().starts_with("/login?next="), "{page}");
                }
                (false, Some(_)) => assert_eq!(r.status, 403, "{page} as {who}"),
            }
            if !allowed {
                assert_eq!(leaks(&r.body), None, "{page} as {who} leaked");
            }
            // Dot segments and encodings: refused before any rule, for everyone.
            for spelling in bad_spellings(page) {
                let r = raw_request(&app, "GET", &spelling, c.cookie.as_deref(), "").await;
                assert_eq!(r.status, 400, "{spelling} as {who}");
                assert_eq!(leaks(&r.body), None, "{spelling} as {who} leaked");
            }
            // A trailing slash is redirected to the normal form, which then meets the rules.
            if page.as_str() != "/" {
                let r = raw_request(&app, "GET", &format!("{page}/"), c.cookie.as_deref(), "").await;
                assert_eq!(r.status, 308, "{page}/ as {who}");
                assert_eq!(r.header("location"), Some(page.as_str()));
                // Mixed case is another path, and no route: 404, whoever asks.
                let upper = page.to_uppercase();
                let r = raw_request(&app, "GET", &upper, c.cookie.as_deref(), "").await;
                assert_eq!(r.status, 404, "{upper} as {who}");
                assert_eq!(leaks(&r.body), None);
            }
        }
    }
    // Server functions: the same spellings are refused; the plain ones are
    // covered role by role in auth.rs.
    for (path, _) in all.iter().filter(|(p, _)| p.starts_with("/api/")) {
        for c in &callers {
            let name = path.trim_start_matches("/api/");
            for spelling in [
                format!("/api/./{name}"),
                format!("/pkg/../api/{name}"),
                format!("/api/x/../{name}"),
                format!("/api/%2e%2e/api/{name}"),
                format!("/api%2f{name}"),
            ] {
                let r = raw_request(&app, "POST", &spelling, c.cookie.as_deref(), "").await;
                assert_eq!(r.status, 400, "{spelling}");
            }
            let r = raw_request(&app, "POST", &path.to_uppercase(), c.cookie.as_deref(), "").await;
            assert_eq!(r.status, 404, "{}", path.to_uppercase());
            let r = raw_request(&app, "POST", &format!("{path}/"), c.cookie.as_deref(), "").await;
            assert_eq!(r.status, 400, "{path}/ is not redirected for a POST");
        }
    }
    // The plain HTTP downloads: the same spellings are refused before any
    // rule, and another case is another path (404), whoever asks.
    for path in ["/logs/etcd", "/timeline/export.csv", "/audit/export.csv"] {
        for c in &callers {
            for spelling in bad_spellings(path) {
                let r = raw_request(&app, "GET", &spelling, c.cookie.as_deref(), "").await;
                assert_eq!(r.status, 400, "{spelling}");
                assert_eq!(leaks(&r.body), None, "{spelling} leaked");
            }
            let r = raw_request(&app, "GET", &path.to_uppercase(), c.cookie.as_deref(), "").await;
            assert_eq!(r.status, 404, "{}", path.to_uppercase());
        }
    }
    // A page nobody registered is 404 even for an admin, and for nobody at all.
    for c in &callers {
        for p in [
            "/nope",
            "/api/nope",
            "/ws/nope/1",
            "/pkg",
            "/admin/users",
            "/favicon.ico",
        ] {
            let r = raw_request(&app, "GET", p, c.cookie.as_deref(), "").await;
            assert_eq!(r.status, 404, "{p}");
        }
    }
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn the_static_site_is_served_by_its_own_route_only() {
    let app = spawn_app().await;
    let r = raw_request(&app, "GET", "/pkg/pg-console.css", None, "").await;
    assert_eq!(r.status, 200, "the stylesheet is public");
    let r = raw_request(&app, "GET", "/pkg/../Cargo.toml", None, "").await;
    assert_eq!(r.status, 400);
    let r = raw_request(&app, "GET", "/pkg/no-such-file.js", None, "").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn logged_out_pages_show_no_cluster_state() {
    let _stack = lock_stack();
    let app = spawn_app().await;
    // Pause automatic failover so the maintenance badge would show.
    let _paused = Paused::new();
    let cookie = login_cookie(&app, "admin", ADMIN_PASSWORD).await;
    eventually(
        std::time::Duration::from_secs(30),
        "the badge for a logged-in admin",
        || async {
            let r = raw_request(&app, "GET", "/", Some(&cookie), "").await;
            r.body.contains("maintenance-badge").then_some(())
        },
    )
    .await;
    for page in ["/login", "/login?next=/audit", "/login?error=invalid"] {
        let r = raw_request(&app, "GET", page, None, "").await;
        assert_eq!(r.status, 200);
        assert_eq!(leaks(&r.body), None, "{page}");
        assert!(!r.body.contains("MAINTENANCE"), "{page} shows the cluster's state");
    }
}
