//! Server-function declarations. Bodies are thin: each first checks its own
//! rule in the one table (`access::authorize::<Self>()`, which the server's
//! middleware has also enforced before the body runs), then calls `domain`.
//! Errors are [`ApiError`]s: a kind (hence the HTTP status) and a sentence.

use leptos::prelude::*;
use model::auth::{AdminView, AuditPage, Me};
use model::Overview;

use crate::codec::JsonText;
use crate::error::ApiError;
#[cfg(feature = "ssr")]
use crate::{access::authorize, serve::step_up};

/// What the server provides to server functions (see server/src/router.rs).
#[cfg(feature = "ssr")]
#[derive(Clone)]
pub struct ServerContext {
    pub overview: std::sync::Arc<domain::overview::OverviewService>,
    /// The Overview read now (`read`) or followed (`subscribe`, `/ws/overview`).
    pub feed: std::sync::Arc<domain::overview_feed::OverviewFeed>,
    pub timeline: std::sync::Arc<domain::timeline::Timeline>,
    pub operations: std::sync::Arc<domain::operations::OperationService>,
    pub audit: std::sync::Arc<domain::audit::AuditLog>,
    pub users: domain::users::UserStore,
    pub sessions: domain::users::SessionStore,
}

#[cfg(feature = "ssr")]
fn ctx() -> Result<ServerContext, ApiError> {
    use_context::<ServerContext>().ok_or_else(|| ApiError::internal("the server context is missing"))
}

/// Everything the Overview shows: topology, history, HAProxy, endpoints.
#[server(endpoint = "overview", output = JsonText)]
pub async fn get_overview() -> Result<Overview, ApiError> {
    authorize::<GetOverview>()?;
    Ok(ctx()?.feed.read().await)
}

/// The incident timeline, newest first: at most 500 events matching the
/// filters (member or container, kind, UTC range).
#[server(endpoint = "timeline_page", output = JsonText)]
pub async fn timeline_page(
    #[server(default)] subject: Option<String>,
    #[server(default)] kind: Option<String>,
    #[server(default)] from: Option<String>,
    #[server(default)] to: Option<String>,
) -> Result<model::timeline::TimelinePage, ApiError> {
    authorize::<TimelinePage>()?;
    let ctx = ctx()?;
    let filter = crate::serve::timeline_filter(subject, kind, from, to)?;
    let (events, more) = ctx
        .timeline
        .store
        .page(&filter, 500)
        .await
        .map_err(|e| ApiError::internal(format!("timeline: {e}")))?;
    Ok(model::timeline::TimelinePage {
        events,
        more,
        retention_days: ctx.timeline.retention_days,
    })
}

/// Each replica's receive and replay lag over the last hour (`1h`, the
/// default, from memory) or day (`24h`, by the minute), of one member or
/// every replica.
#[server(endpoint = "lag_history", output = JsonText)]
pub async fn lag_history(
    #[server(default)] range: Option<String>,
    #[server(default)] member: Option<String>,
) -> Result<model::lag::LagHistory, ApiError> {
    authorize::<LagHistory>()?;
    let (range, member) = crate::serve::lag_query(range, member)?;
    ctx()?
        .timeline
        .lag
        .history(range, member.as_deref(), domain::now_ms())
        .await
        .map_err(|e| ApiError::internal(format!("lag history: {e}")))
}

/// Who is logged in, and what the UI may offer them.
#[server(endpoint = "whoami", output = JsonText)]
pub async fn whoami() -> Result<Me, ApiError> {
    let c = authorize::<Whoami>()?;
    Ok(Me {
        name: c.name.clone(),
        role: c.role,
        can_operate: c.may(domain::authz::Action::OperateCluster),
        can_admin: c.may(domain::authz::Action::ManageUsers),
        can_read_logs: c.may(domain::authz::Action::ReadLogs),
    })
}

/// One page of the audit log (newest first, by key: `before` / `after` an
/// id), filtered; and the chain's state, checked incrementally.
#[server(endpoint = "audit_page", output = JsonText)]
pub async fn fetch_audit_page(
    user: String,
    action: String,
    result: String,
    from: String,
    to: String,
    #[server(default)] before: Option<i64>,
    #[server(default)] after: Option<i64>,
) -> Result<AuditPage, ApiError> {
    authorize::<FetchAuditPage>()?;
    use domain::audit::Cursor;
    let ctx = ctx()?;
    let filter = crate::serve::audit_filter(user, action, result, from, to)?;
    let cursor = match (before, after) {
        (Some(b), _) if b > 0 => Cursor::Before(b),
        (_, Some(a)) if a >= 0 => Cursor::After(a),
        (None, None) => Cursor::Newest,
        _ => return Err(ApiError::bad_input("before and after are row ids (positive numbers)")),
    };
    let per_page = 50;
    let page = ctx
        .audit
        .page(&filter, cursor, per_page)
        .await
        .map_err(ApiError::internal)?;
    let chain = ctx.audit.report(&page.rows).await.map_err(ApiError::internal)?;
    Ok(AuditPage {
        rows: page.rows.into_iter().map(crate::serve::audit_row).collect(),
        has_older: page.has_older,
        has_newer: page.has_newer,
        per_page,
        chain_broken: chain.status.is_broken(),
        chain_status: chain.status.to_string(),
        full_check_at_ms: chain.full_check_at_ms,
        signed_head: chain.signed_head.unwrap_or_default(),
    })
}

/// Users and their sessions (admin).
#[server(endpoint = "admin_users", output = JsonText)]
pub async fn admin_users() -> Result<AdminView, ApiError> {
    authorize::<AdminUsers>()?;
    let ctx = ctx()?;
    let users = ctx.users.list().await?;
    let sessions = ctx.sessions.list(None).await.map_err(ApiError::internal)?;
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

#[cfg(feature = "ssr")]
fn parse_role(role: &str) -> Result<model::auth::UserRole, ApiError> {
    model::auth::UserRole::parse(role).ok_or_else(|| ApiError::bad_input("choose viewer, operator or admin"))
}

#[cfg(feature = "ssr")]
fn admin_of(ctx: &ServerContext) -> domain::users::UserAdmin<'_> {
    domain::users::UserAdmin {
        users: &ctx.users,
        sessions: &ctx.sessions,
        audit: &ctx.audit,
    }
}

#[cfg(feature = "ssr")]
fn actor(c: &domain::authz::Caller) -> domain::users::Actor {
    domain::users::Actor {
        name: c.name.clone(),
        role: c.role.as_str().into(),
        ip: c.ip.clone(),
        sid: c.sid.clone(),
    }
}

/// Add a user; creating an admin needs the acting admin's password.
#[server(endpoint = "admin_add_user", output = JsonText)]
pub async fn admin_add_user(
    name: String,
    role: String,
    password: String,
    #[server(default)] current_password: String,
) -> Result<String, ApiError> {
    let c = authorize::<AdminAddUser>()?;
    let ctx = ctx()?;
    let role = parse_role(&role)?;
    let proof = if role == model::auth::UserRole::Admin {
        Some(step_up(&ctx, &c, &current_password).await?)
    } else {
        None
    };
    let u = admin_of(&ctx)
        .add(&actor(&c), proof.as_ref(), name.trim(), role, &password)
        .await?;
    Ok(format!("Created {} ({}).", u.name, u.role.as_str()))
}

#[server(endpoint = "admin_set_role", output = JsonText)]
pub async fn admin_set_role(
    name: String,
    role: String,
    #[server(default)] current_password: String,
) -> Result<String, ApiError> {
    let c = authorize::<AdminSetRole>()?;
    let ctx = ctx()?;
    let r = parse_role(&role)?;
    let proof = step_up(&ctx, &c, &current_password).await?;
    let ended = admin_of(&ctx).set_role(&actor(&c), &proof, &name, r).await?;
    Ok(format!("{name} is now {role}; {ended} session(s) ended."))
}

#[server(endpoint = "admin_set_disabled", output = JsonText)]
pub async fn admin_set_disabled(
    name: String,
    disabled: bool,
    #[server(default)] current_password: String,
) -> Result<String, ApiError> {
    let c = authorize::<AdminSetDisabled>()?;
    let ctx = ctx()?;
    let proof = step_up(&ctx, &c, &current_password).await?;
    let ended = admin_of(&ctx).set_disabled(&actor(&c), &proof, &name, disabled).await?;
    Ok(format!(
        "{name} {}; {ended} session(s) ended.",
        if disabled { "disabled" } else { "enabled" }
    ))
}

#[server(endpoint = "admin_set_password", output = JsonText)]
pub async fn admin_set_password(
    name: String,
    password: String,
    #[server(default)] current_password: String,
) -> Result<String, ApiError> {
    let c = authorize::<AdminSetPassword>()?;
    let ctx = ctx()?;
    let proof = step_up(&ctx, &c, &current_password).await?;
    let ended = admin_of(&ctx)
        .set_password(&actor(&c), &proof, &name, &password)
        .await?;
    Ok(format!("Password of {name} changed; {ended} session(s) ended."))
}

/// Revoke a session; another user's needs the acting admin's password.
#[server(endpoint = "admin_revoke_session", output = JsonText)]
pub async fn admin_revoke_session(
    id_prefix: String,
    #[server(default)] current_password: String,
) -> Result<String, ApiError> {
    let c = authorize::<AdminRevokeSession>()?;
    let ctx = ctx()?;
    let proof = if current_password.is_empty() {
        None
    } else {
        Some(step_up(&ctx, &c, &current_password).await?)
    };
    let user = admin_of(&ctx)
        .revoke_session(&actor(&c), proof.as_ref(), &id_prefix)
        .await?;
    Ok(format!("Session {id_prefix}… of {user} revoked."))
}

/// Step 1 of an operation: the plan (steps, preconditions, shell command) and a token.
#[server(endpoint = "op_prepare", output = JsonText)]
pub async fn op_prepare(
    kind: model::operations::OpKind,
    member: String,
    #[server(default)] scheduled_at: String,
    #[server(default)] only_if_pending: bool,
    #[server(default)] compression: String,
    #[server(default)] backup_first: bool,
    #[server(default)] allow_only_replica: bool,
    #[server(default)] backup_id: String,
    #[server(default)] other_system: bool,
    #[server(default)] kept_id: String,
    #[server(default)] target_time: String,
) -> Result<model::operations::Plan, ApiError> {
    let c = authorize::<OpPrepare>()?;
    let ctx = ctx()?;
    let form = model::operations::OpForm {
        kind: Some(kind),
        member,
        scheduled_at,
        only_if_pending,
        compression,
        backup_first,
        allow_only_replica,
        backup_id,
        other_system,
        kept_id,
        target_time,
    };
    let req = form.request().map_err(ApiError::bad_input)?;
    Ok(ctx.operations.prepare(&c, req).await)
}

/// Step 3: execute a prepared operation; returns the job id to follow.
#[server(endpoint = "op_execute", output = JsonText)]
pub async fn op_execute(token: String, typed_name: String, password: String) -> Result<String, ApiError> {
    let c = authorize::<OpExecute>()?;
    let ctx = ctx()?;
    let pw = (!password.is_empty()).then_some(password.as_str());
    let confirmation = domain::operations::Confirmation {
        token: &token,
        typed_name: &typed_name,
        password: pw,
    };
    let id = ctx.operations.execute(&c, confirmation).await?;
    if pw.is_some() {
        // Re-authenticated (the password was checked): a fresh session id,
        // as at login, so a cookie captured before it is worthless.
        crate::serve::renew_session().await;
    }
    Ok(id)
}

/// A job's steps and outcome, as they happen.
#[server(endpoint = "op_status", output = JsonText)]
pub async fn op_status(id: String) -> Result<Option<model::operations::OpJob>, ApiError> {
    authorize::<OpStatus>()?;
    Ok(ctx()?.operations.job(&id))
}

/// The operations this console ran since it started, newest first (the last
/// 50, running ones included).
#[server(endpoint = "op_recent", output = JsonText)]
pub async fn op_recent() -> Result<Vec<model::operations::OpJob>, ApiError> {
    authorize::<OpRecent>()?;
    Ok(ctx()?.operations.jobs.recent())
}

/// Cancel the scheduled switchover.
#[server(endpoint = "op_cancel_switchover", output = JsonText)]
pub async fn op_cancel_switchover() -> Result<String, ApiError> {
    let c = authorize::<OpCancelSwitchover>()?;
    Ok(ctx()?.operations.cancel_scheduled_switchover(&c).await?)
}

/// Whether automatic failover is paused (shown on every page while it is).
#[server(endpoint = "cluster_paused", output = JsonText)]
pub async fn cluster_paused() -> Result<bool, ApiError> {
    authorize::<ClusterPaused>()?;
    Ok(ctx()?
        .overview
        .patroni
        .topology_at_most(std::time::Duration::from_secs(2))
        .await
        .paused)
}

/// The backup catalog, newest first. What test restores read (table names,
/// row counts) only for those who may read backup contents.
#[server(endpoint = "backups_list", output = JsonText)]
pub async fn backups_list() -> Result<Vec<model::backups::BackupRow>, ApiError> {
    let c = authorize::<BackupsList>()?;
    let ctx = ctx()?;
    let b = ctx.operations.backup.clone();
    let details = c.may(domain::authz::Action::ReadBackupContents);
    let catalog = tokio::task::spawn_blocking(move || domain::backup::catalog(&b.backups_dir))
        .await
        .map_err(ApiError::internal)?;
    Ok(catalog
        .into_iter()
        .map(|m| crate::serve::backup_row(m, details))
        .collect())
}

/// What restores keep (the cluster's data from before them, or a failed
/// restore's), newest first: the Backups page lists it with its size.
#[server(endpoint = "kept_list", output = JsonText)]
pub async fn kept_list() -> Result<Vec<model::backups::KeptData>, ApiError> {
    authorize::<KeptList>()?;
    let data = ctx()?.operations.reinit.data_dir.clone();
    tokio::task::spawn_blocking(move || domain::restore::journals(&data).iter().map(|j| j.view(&data)).collect())
        .await
        .map_err(ApiError::internal)
}

/// The archives waiting in the import directory (made by hand with the SOP).
#[server(endpoint = "imports_list", output = JsonText)]
pub async fn imports_list() -> Result<Vec<model::backups::ImportFile>, ApiError> {
    authorize::<ImportsList>()?;
    let dir = ctx()?.operations.backup.imports_dir.clone();
    tokio::task::spawn_blocking(move || domain::backup::import::list(&dir))
        .await
        .map_err(ApiError::internal)
}

/// Import an archive from the import directory into the catalog, then
/// test-restore it (admins; audited).
#[server(endpoint = "backup_import", output = JsonText)]
pub async fn backup_import(name: String) -> Result<model::backups::BackupRow, ApiError> {
    let c = authorize::<BackupImport>()?;
    let m = ctx()?.operations.import_backup(&c, name.trim()).await?;
    Ok(crate::serve::backup_row(m, true))
}

/// Re-read an archive and check its sha256, then restore it into an
/// isolated PostgreSQL and read every table (audited).
#[server(endpoint = "backup_verify", output = JsonText)]
pub async fn backup_verify(id: String) -> Result<model::backups::BackupRow, ApiError> {
    let c = authorize::<BackupVerify>()?;
    let m = ctx()?.operations.verify_backup(&c, id.trim()).await?;
    Ok(crate::serve::backup_row(m, true))
}

/// Delete a backup (admins; type its id to confirm; audited).
#[server(endpoint = "backup_delete", output = JsonText)]
pub async fn backup_delete(id: String, typed_id: String) -> Result<String, ApiError> {
    let c = authorize::<BackupDelete>()?;
    let m = ctx()?.operations.delete_backup(&c, id.trim(), &typed_id).await?;
    Ok(format!("deleted {}", m.archive_name()))
}
