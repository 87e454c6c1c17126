//! The one table mapping every server function and websocket to the
//! action it performs. A path missing here is refused with 403 at run time,
//! and `pg-console routes` (used by the tests) lists it as unruled.

use domain::authz::Action;

pub const API_RULES: &[(&str, Action)] = &[
    ("/api/overview", Action::ViewCluster),
    ("/api/whoami", Action::ViewSelf),
    ("/api/audit_page", Action::ViewAudit),
    ("/api/admin_users", Action::ManageUsers),
    ("/api/admin_add_user", Action::ManageUsers),
    ("/api/admin_set_role", Action::ManageUsers),
    ("/api/admin_set_disabled", Action::ManageUsers),
    ("/api/admin_set_password", Action::ManageUsers),
    ("/api/admin_revoke_session", Action::ManageUsers),
    ("/api/op_prepare", Action::OperateCluster),
    ("/api/op_execute", Action::OperateCluster),
    ("/api/op_cancel_switchover", Action::OperateCluster),
    ("/api/op_status", Action::ViewCluster),
    ("/api/op_recent", Action::ViewCluster),
    ("/api/cluster_paused", Action::ViewCluster),
    ("/api/backups_list", Action::ViewCluster),
    ("/api/backup_verify", Action::OperateCluster),
    ("/api/backup_delete", Action::DeleteBackup),
];

/// Websocket routes (as registered, `{param}` segments included).
pub const WS_RULES: &[(&str, Action)] = &[(crate::jobs_ws::JOB_ROUTE, Action::ViewCluster)];

/// The rule of a concrete websocket path (`/ws/jobs/abc` matches `/ws/jobs/{id}`).
pub fn ws_rule(path: &str) -> Option<Action> {
    let segs: Vec<&str> = path.split('/').collect();
    WS_RULES
        .iter()
        .find(|(route, _)| {
            let r: Vec<&str> = route.split('/').collect();
            r.len() == segs.len()
                && r.iter()
                    .zip(&segs)
                    .all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
        })
        .map(|(_, a)| *a)
}

/// Pages that need more than being logged in.
pub const PAGE_RULES: &[(&str, Action)] = &[
    ("/audit", Action::ViewAudit),
    ("/admin", Action::ManageUsers),
    // Archives hold all the data: operators and admins only.
    ("/backups/download", Action::OperateCluster),
];

pub fn api_rule(path: &str) -> Option<Action> {
    API_RULES.iter().find(|(p, _)| *p == path).map(|(_, a)| *a)
}

pub fn page_rule(path: &str) -> Option<Action> {
    PAGE_RULES
        .iter()
        .find(|(p, _)| *p == path || path.starts_with(&format!("{p}/")))
        .map(|(_, a)| *a)
}

/// Every registered server-function path and websocket route with its rule (None: unruled).
pub fn server_fn_routes() -> Vec<(String, Option<Action>)> {
    let mut v: Vec<(String, Option<Action>)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _method)| (path.to_string(), api_rule(path)))
        .collect();
    v.extend(WS_RULES.iter().map(|(p, a)| (p.to_string(), Some(*a))));
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.dedup_by(|a, b| a.0 == b.0);
    v
}
