//! The one table of who may reach what: every page and every server function
//! of the app, each mapped to the [`Action`] it performs. The server's
//! middleware looks requests up here before routing them (a path that is
//! not here gets 404), and every server function checks its own entry again
//! through [`authorize`] (defence in depth: a routing mistake alone leaks
//! nothing). The server adds its own plain HTTP routes (login form, CSV
//! export, downloads, websockets) in `server/src/auth/rules.rs`, with the
//! same [`Access`] type.

pub use model::auth::{Access, Action};

/// Every page route of [`crate::App`].
pub const PAGES: &[(&str, Access)] = &[
    ("/", Access::Needs(Action::ViewCluster)),
    ("/login", Access::Public),
    ("/backups", Access::Needs(Action::ViewCluster)),
    ("/audit", Access::Needs(Action::ViewAudit)),
    ("/admin", Access::Needs(Action::ManageUsers)),
    ("/logs", Access::Needs(Action::ReadLogs)),
    ("/timeline", Access::Needs(Action::ViewCluster)),
    ("/member", Access::Needs(Action::ViewCluster)),
];

/// Every server function, by its path.
pub const SERVER_FNS: &[(&str, Action)] = &[
    ("/api/overview", Action::ViewCluster),
    ("/api/timeline_page", Action::ViewCluster),
    ("/api/lag_history", Action::ViewCluster),
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
    ("/api/kept_list", Action::ViewCluster),
    ("/api/imports_list", Action::RestoreCluster),
    ("/api/backup_import", Action::RestoreCluster),
    ("/api/backup_verify", Action::OperateCluster),
    ("/api/backup_delete", Action::DeleteBackup),
];

/// The access rule of a page path (exact match; paths are canonical by then).
pub fn page(path: &str) -> Option<Access> {
    PAGES.iter().find(|(p, _)| *p == path).map(|(_, a)| *a)
}

/// The action of a server function path (exact match).
pub fn server_fn(path: &str) -> Option<Action> {
    SERVER_FNS.iter().find(|(p, _)| *p == path).map(|(_, a)| *a)
}

/// The caller of the current request, if the middleware validated one.
#[cfg(feature = "ssr")]
pub fn caller() -> Option<domain::authz::Caller> {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<domain::authz::Caller>().cloned())
}

/// Check the current caller against the rule of server function `F`, in
/// the function's own body. Deny by default: a function missing from
/// [`SERVER_FNS`] is refused even for admins.
#[cfg(feature = "ssr")]
pub fn authorize<F: leptos::server_fn::ServerFn>() -> Result<domain::authz::Caller, crate::error::ApiError> {
    use crate::error::ApiError;
    let Some(action) = server_fn(F::PATH) else {
        return Err(ApiError::forbidden("refused: this endpoint has no authorization rule"));
    };
    let caller = caller().ok_or_else(ApiError::login_required)?;
    if !caller.may(action) {
        return Err(ApiError::forbidden(format!(
            "refused: your role ({}) may not {}",
            caller.role.as_str(),
            action.name().replace('_', " ")
        )));
    }
    Ok(caller)
}

/// Whether the current caller may perform `action` (for what a function
/// shows, e.g. restore-test details only to those who may read backups).
#[cfg(feature = "ssr")]
pub fn caller_may(action: Action) -> bool {
    caller().map(|c| c.may(action)).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every server function checks its own rule first, whatever the
    /// middleware did: the body's first statement is `authorize::<Self>()`.
    #[test]
    fn every_server_function_authorizes_itself_first() {
        let src = include_str!("api.rs");
        let mut count = 0;
        for chunk in src.split("#[server(endpoint").skip(1) {
            let name = chunk
                .split("pub async fn ")
                .nth(1)
                .and_then(|s| s.split('(').next())
                .expect("a server function");
            let body = chunk
                .split_once(") -> Result<")
                .and_then(|(_, r)| r.split_once("{\n"))
                .expect("a body")
                .1;
            let first = body
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("//"))
                .unwrap();
            let camel: String = name
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect();
            assert!(
                first.contains(&format!("authorize::<{camel}>()")),
                "{name} starts with {first:?}, not authorize::<{camel}>()"
            );
            count += 1;
        }
        assert_eq!(
            count,
            SERVER_FNS.len(),
            "every server function is in the table, and only those"
        );
    }

    #[test]
    fn the_table_has_no_duplicates_and_pages_are_canonical() {
        let mut paths: Vec<&str> = PAGES
            .iter()
            .map(|(p, _)| *p)
            .chain(SERVER_FNS.iter().map(|(p, _)| *p))
            .collect();
        let n = paths.len();
        paths.sort();
        paths.dedup();
        assert_eq!(paths.len(), n);
        for p in paths {
            assert!(
                p == "/" || (p.starts_with('/') && !p.ends_with('/') && !p.contains("//") && !p.contains('.')),
                "{p}"
            );
        }
    }
}
