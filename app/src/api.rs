//! Server-function declarations. Bodies only fetch the caller and the domain
//! services from context and call them. Authorization happens before a body
//! runs: the server's middleware maps each endpoint path to an action
//! (server/src/auth/rules.rs) and refuses callers whose role may not.

use leptos::prelude::*;
use model::auth::{AdminView, AuditPage, Me};
use model::Overview;

/// What the server provides to server functions (see server/src/router.rs).
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct ServerContext {
    pub overview: std::sync::Arc<domain::overview::OverviewService>,
    pub audit: std::sync::Arc<domain::audit::AuditLog>,
    pub users: domain::users::UserStore,
    pub sessions: domain::users::SessionStore,
}

/// The authenticated caller, as validated by the server's middleware.
#[cfg(feature = "ssr")]
pub fn caller() -> Result<domain::authz::Caller, ServerFnError> {
    use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<domain::authz::Caller>().cloned())
        .ok_or_else(|| ServerFnError::new("login required"))
}

/// Everything the Overview shows: topology, history, HAProxy, endpoints.
#[server(endpoint = "overview")]
pub async fn get_overview() -> Result<Overview, ServerFnError> {
    let ctx = expect_context::<ServerContext>();
    Ok(ctx.overview.overview().await)
}

/// Who is logged in, and what the UI may offer them.
#[server(endpoint = "whoami")]
pub async fn whoami() -> Result<Me, ServerFnError> {
    use domain::authz::Action;
    let c = caller()?;
    Ok(Me {
        name: c.name.clone(),
        role: c.role,
        can_operate: c.may(Action::OperateCluster),
        can_admin: c.may(Action::ManageUsers),
    })
}

/// One page of the audit log, newest first, filtered; and the chain's status.
#[server(endpoint = "audit_page")]
pub async fn fetch_audit_page(
    user: String,
    action: String,
    result: String,
    page: i64,
) -> Result<AuditPage, ServerFnError> {
    use domain::audit::{AuditFilter, ChainStatus};
    let ctx = expect_context::<ServerContext>();
    let none_if_empty = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let filter = AuditFilter {
        user: none_if_empty(user),
        action: none_if_empty(action),
        result: none_if_empty(result),
        from_ms: None,
        to_ms: None,
    };
    let per_page = 50;
    let page = page.max(1);
    let (rows, total) = ctx.audit.query(&filter, per_page, (page - 1) * per_page).await?;
    let chain = ctx.audit.verify().await?;
    Ok(AuditPage {
        rows: rows
            .into_iter()
            .map(|r| model::auth::AuditRow {
                id: r.id,
                at_ms: r.at_ms,
                user: r.user_name,
                role: r.role,
                source_ip: r.source_ip,
                action: r.action,
                target: r.target,
                params: r.params,
                result: r.result,
                error: r.error,
                correlation_id: r.correlation_id,
                duration_ms: r.duration_ms,
            })
            .collect(),
        total,
        page,
        per_page,
        chain_broken: matches!(chain, ChainStatus::BrokenAt(_)),
        chain_status: chain.to_string(),
    })
}

/// Users and their sessions (admin).
#[server(endpoint = "admin_users")]
pub async fn admin_users() -> Result<AdminView, ServerFnError> {
    let ctx = expect_context::<ServerContext>();
    let users = ctx.users.list().await.map_err(|e| ServerFnError::new(e.to_string()))?;
    let sessions = ctx.sessions.list(None).await?;
    Ok(AdminView {
        users: users
            .into_iter()
            .map(|u| model::auth::UserRow {
                name: u.name,
                role: u.role,
                disabled: u.disabled,
                locked_until_ms: u.locked_until_ms,
                failed_logins: u.failed_logins,
                created_at_ms: u.created_at_ms,
            })
            .collect(),
        sessions: sessions
            .into_iter()
            .map(|s| model::auth::SessionRow {
                id_prefix: s.sid[..16].to_string(),
                user: s.user_name,
                role: s.role,
                source_ip: s.source_ip,
                created_at_ms: s.created_at_ms,
                last_seen_ms: s.last_seen_ms,
            })
            .collect(),
    })
}
