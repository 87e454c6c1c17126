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
    pub operations: std::sync::Arc<domain::operations::OperationService>,
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
    let (mut ov, ops) = tokio::join!(ctx.overview.overview(), ctx.audit.recent_operations(20));
    ov.operations = ops.unwrap_or_default();
    ov.busy_members = ctx
        .operations
        .jobs
        .running()
        .into_iter()
        .filter(|j| !j.member.is_empty())
        .map(|j| (j.member, format!("{} by {}", j.title, j.user)))
        .collect();
    Ok(ov)
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
    from: String,
    to: String,
    page: i64,
) -> Result<AuditPage, ServerFnError> {
    use domain::audit::{AuditFilter, ChainStatus};
    let ctx = expect_context::<ServerContext>();
    let none_if_empty = |s: String| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let filter = AuditFilter {
        user: none_if_empty(user),
        action: none_if_empty(action),
        result: none_if_empty(result),
        from_ms: model::time::parse_utc(&from),
        to_ms: model::time::parse_utc(&to),
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

/// Admin actions on users and sessions. Each returns a sentence for the page;
/// the domain layer ends sessions where needed and audits success and failure.
#[cfg(feature = "ssr")]
fn user_admin<T>(
    f: impl for<'a> FnOnce(
        domain::users::UserAdmin<'a>,
        domain::users::Actor,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<T, domain::users::UserError>> + Send + 'a>,
    >,
) -> impl std::future::Future<Output = Result<T, ServerFnError>> {
    async move {
        let c = caller()?;
        let ctx = expect_context::<ServerContext>();
        let actor = domain::users::Actor {
            name: c.name,
            role: c.role.as_str().into(),
            ip: c.ip,
            sid: c.sid,
        };
        let admin = domain::users::UserAdmin {
            users: &ctx.users,
            sessions: &ctx.sessions,
            audit: &ctx.audit,
        };
        f(admin, actor).await.map_err(|e| ServerFnError::new(e.to_string()))
    }
}

#[cfg(feature = "ssr")]
fn parse_role(role: &str) -> Result<model::auth::UserRole, ServerFnError> {
    model::auth::UserRole::parse(role).ok_or_else(|| ServerFnError::new("choose viewer, operator or admin"))
}

#[server(endpoint = "admin_add_user")]
pub async fn admin_add_user(name: String, role: String, password: String) -> Result<String, ServerFnError> {
    let role = parse_role(&role)?;
    let u = user_admin(|a, actor| Box::pin(async move { a.add(&actor, name.trim(), role, &password).await })).await?;
    Ok(format!("Created {} ({}).", u.name, u.role.as_str()))
}

#[server(endpoint = "admin_set_role")]
pub async fn admin_set_role(name: String, role: String) -> Result<String, ServerFnError> {
    let r = parse_role(&role)?;
    let n2 = name.clone();
    let ended = user_admin(|a, actor| Box::pin(async move { a.set_role(&actor, &n2, r).await })).await?;
    Ok(format!("{name} is now {role}; {ended} session(s) ended."))
}

#[server(endpoint = "admin_set_disabled")]
pub async fn admin_set_disabled(name: String, disabled: bool) -> Result<String, ServerFnError> {
    let n2 = name.clone();
    let ended = user_admin(|a, actor| Box::pin(async move { a.set_disabled(&actor, &n2, disabled).await })).await?;
    Ok(format!(
        "{name} {}; {ended} session(s) ended.",
        if disabled { "disabled" } else { "enabled" }
    ))
}

#[server(endpoint = "admin_set_password")]
pub async fn admin_set_password(name: String, password: String) -> Result<String, ServerFnError> {
    let n2 = name.clone();
    let ended = user_admin(|a, actor| Box::pin(async move { a.set_password(&actor, &n2, &password).await })).await?;
    Ok(format!("Password of {name} changed; {ended} session(s) ended."))
}

#[server(endpoint = "admin_revoke_session")]
pub async fn admin_revoke_session(id_prefix: String) -> Result<String, ServerFnError> {
    let p2 = id_prefix.clone();
    let user = user_admin(|a, actor| Box::pin(async move { a.revoke_session(&actor, &p2).await })).await?;
    Ok(format!("Session {id_prefix}… of {user} revoked."))
}

/// Step 1 of an operation: the plan (steps, preconditions, shell command) and a token.
#[server(endpoint = "op_prepare")]
pub async fn op_prepare(
    kind: model::operations::OpKind,
    member: String,
    scheduled_at: String,
    only_if_pending: bool,
    #[server(default)] compression: String,
    #[server(default)] backup_first: bool,
    #[server(default)] allow_only_replica: bool,
) -> Result<model::operations::Plan, ServerFnError> {
    let c = caller()?;
    let ctx = expect_context::<ServerContext>();
    let req = model::operations::OpRequest {
        kind,
        member: member.trim().to_string(),
        scheduled_at: Some(scheduled_at).filter(|s| !s.trim().is_empty()),
        only_if_pending,
        compression: Some(compression).filter(|c| !c.trim().is_empty()),
        backup_first,
        allow_only_replica,
    };
    Ok(ctx.operations.prepare(&c, req).await)
}

/// Step 3: execute a prepared operation; returns the job id to follow.
#[server(endpoint = "op_execute")]
pub async fn op_execute(token: String, typed_name: String, password: String) -> Result<String, ServerFnError> {
    let c = caller()?;
    let ctx = expect_context::<ServerContext>();
    let pw = (!password.is_empty()).then_some(password.as_str());
    let id = ctx
        .operations
        .execute(&c, &token, &typed_name, pw)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))?;
    if pw.is_some() {
        // Re-authenticated (the password was checked): a fresh session id,
        // as at login, so a cookie captured before it is worthless.
        // The job has started either way; a store error is logged, not fatal.
        match leptos_axum::extract::<tower_sessions::Session>().await {
            Ok(session) => {
                if let Err(e) = session.cycle_id().await {
                    leptos::logging::warn!("could not renew the session id after re-authentication: {e}");
                }
            }
            Err(e) => leptos::logging::warn!("no session to renew after re-authentication: {e}"),
        }
    }
    Ok(id)
}

/// A job's steps and outcome, as they happen.
#[server(endpoint = "op_status")]
pub async fn op_status(id: String) -> Result<Option<model::operations::OpJob>, ServerFnError> {
    Ok(expect_context::<ServerContext>().operations.job(&id))
}

/// Recent operations (newest first), and the one holding the lock if any.
#[server(endpoint = "op_recent")]
pub async fn op_recent() -> Result<Vec<model::operations::OpJob>, ServerFnError> {
    Ok(expect_context::<ServerContext>().operations.jobs.recent())
}

/// Cancel the scheduled switchover.
#[server(endpoint = "op_cancel_switchover")]
pub async fn op_cancel_switchover() -> Result<String, ServerFnError> {
    let c = caller()?;
    let ctx = expect_context::<ServerContext>();
    ctx.operations
        .cancel_scheduled_switchover(&c)
        .await
        .map_err(|e| ServerFnError::new(e.to_string()))
}

/// Whether automatic failover is paused (shown on every page while it is).
#[server(endpoint = "cluster_paused")]
pub async fn cluster_paused() -> Result<bool, ServerFnError> {
    let ctx = use_context::<ServerContext>().ok_or_else(|| ServerFnError::new("server context missing"))?;
    Ok(ctx
        .overview
        .patroni
        .topology_at_most(std::time::Duration::from_secs(2))
        .await
        .paused)
}

/// The backup catalog, newest first.
#[server(endpoint = "backups_list")]
pub async fn backups_list() -> Result<Vec<model::backups::BackupRow>, ServerFnError> {
    let ctx = expect_context::<ServerContext>();
    let Some(b) = ctx.operations.backup.clone() else {
        return Ok(Vec::new());
    };
    Ok(domain::backup::catalog(&b.backups_dir)
        .into_iter()
        .map(model_row)
        .collect())
}

#[cfg(feature = "ssr")]
fn model_row(m: domain::backup::Manifest) -> model::backups::BackupRow {
    let n = m.member.rsplit('-').next().unwrap_or("0").to_string();
    model::backups::BackupRow {
        restore: format!(
            "docker stop {member}\nmv ${{DEFAULT_DATA_DIR}}/pg/pg{n}-data ${{DEFAULT_DATA_DIR}}/pg/pg{n}-data.old\n\
             tar -C ${{DEFAULT_DATA_DIR}}/pg -x{flag}f {file}\ndocker start {member}",
            member = m.member,
            flag = if m.archive_name().ends_with(".tar.gz") {
                "z"
            } else {
                " --zstd -"
            },
            file = m.archive_name(),
        ),
        archive: m.archive_name(),
        id: m.id,
        status: m.status,
        error: m.error,
        member: m.member,
        started_at_ms: m.started_at_ms,
        started_by: m.started_by,
        compression: format!("{:?}", m.compression).to_lowercase(),
        data_bytes: m.data_bytes,
        archive_bytes: m.archive_bytes,
        duration_ms: m.phases_ms.iter().map(|(_, ms)| ms).sum(),
        downtime_ms: m.replica_downtime_ms,
        sha256: m.sha256,
        system_identifier: m.system_identifier,
        verified_ok: m.verified_ok,
        verified_at_ms: m.verified_at_ms,
        compressed_running_bytes: m.compressed_while_running.1,
        compressed_stopped_bytes: m.compressed_while_stopped.1,
        recycled_wal_bytes: m.recycled_wal_skipped.1,
        restore_test: m.restore_test,
    }
}

/// Re-read an archive and check its sha256, then restore it into an
/// isolated PostgreSQL and read every table (audited).
#[server(endpoint = "backup_verify")]
pub async fn backup_verify(id: String) -> Result<model::backups::BackupRow, ServerFnError> {
    let c = caller()?;
    let ctx = expect_context::<ServerContext>();
    ctx.operations
        .verify_backup(&c, id.trim())
        .await
        .map(model_row)
        .map_err(ServerFnError::new)
}

/// Delete a backup (admins; type its id to confirm; audited).
#[server(endpoint = "backup_delete")]
pub async fn backup_delete(id: String, typed_id: String) -> Result<String, ServerFnError> {
    let c = caller()?;
    let ctx = expect_context::<ServerContext>();
    ctx.operations
        .delete_backup(&c, id.trim(), &typed_id)
        .await
        .map(|m| format!("deleted {}", m.archive_name()))
        .map_err(ServerFnError::new)
}
