//! Server-side helpers shared by the server functions (and the server's
//! CSV export): step-up re-authentication, session renewal, input parsing,
//! and turning domain records into what the browser is shown.

use domain::audit::{AuditEntry, AuditFilter, AuditResult};
use domain::authz::Caller;
use domain::users::{StepUp, UserError};

use crate::api::ServerContext;
use crate::error::ApiError;

/// Check the password the acting user re-entered. A wrong one counts toward
/// the account's lockout and is audited; a right one renews the session id.
pub async fn step_up(ctx: &ServerContext, c: &Caller, password: &str) -> Result<StepUp, ApiError> {
    if password.is_empty() {
        return Err(UserError::StepUpRequired.into());
    }
    match ctx.users.step_up(c.user_id, password).await {
        Ok(proof) => {
            renew_session().await;
            Ok(proof)
        }
        Err(e) => {
            if matches!(e, UserError::WrongPassword | UserError::Locked(_)) {
                ctx.audit
                    .refuse(
                        AuditEntry::new("step_up_failed", AuditResult::Refused)
                            .by(&c)
                            .target(&c.name)
                            .error(&e.to_string()),
                    )
                    .await;
            }
            Err(e.into())
        }
    }
}

/// A fresh session id after a re-authentication, as at login, so a cookie
/// captured before it is worthless. A store error is logged, not fatal.
pub async fn renew_session() {
    match leptos_axum::extract::<tower_sessions::Session>().await {
        Ok(session) => {
            if let Err(e) = session.cycle_id().await {
                tracing::warn!("could not renew the session id after re-authentication: {e}");
            }
        }
        Err(e) => tracing::warn!("no session to renew after re-authentication: {e}"),
    }
}

/// An audit filter from the Audit page's fields (also the CSV export's
/// query); a date that is not one is a 400.
pub fn audit_filter(
    user: impl Into<Option<String>>,
    action: impl Into<Option<String>>,
    result: impl Into<Option<String>>,
    from: impl Into<Option<String>>,
    to: impl Into<Option<String>>,
) -> Result<AuditFilter, ApiError> {
    let some = |s: Option<String>| s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let date = |field: &str, s: Option<String>| match some(s) {
        None => Ok(None),
        Some(t) => domain::datetime::parse_user_utc(&t).map(Some).ok_or_else(|| {
            ApiError::bad_input(format!(
                "{field}: {:?} is not a date and time (YYYY-MM-DDTHH:MM[:SS], UTC, years 1970 to 9999)",
                t.chars().take(40).collect::<String>()
            ))
        }),
    };
    Ok(AuditFilter {
        user: some(user.into()),
        action: some(action.into()),
        result: some(result.into()),
        from_ms: date("from", from.into())?,
        to_ms: date("to", to.into())?,
    })
}

/// A lag chart's query: a range (`1h` or `24h`; empty is `1h`) and a
/// member name, if one. Bad input is a 400.
pub fn lag_query(
    range: Option<String>,
    member: Option<String>,
) -> Result<(model::lag::LagRange, Option<String>), ApiError> {
    let some = |s: Option<String>| s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let range = match some(range) {
        None => model::lag::LagRange::Hour,
        Some(r) => model::lag::LagRange::parse(&r).ok_or_else(|| {
            ApiError::bad_input(format!(
                "range: {:?} is not 1h or 24h",
                r.chars().take(40).collect::<String>()
            ))
        })?,
    };
    let member = some(member);
    if member.as_ref().is_some_and(|s| s.len() > 128) {
        return Err(ApiError::bad_input("member: a name of at most 128 characters"));
    }
    Ok((range, member))
}

/// The timeline's filters as typed (the page's inputs, the CSV's query):
/// a member or container name, a kind, a UTC range. Bad input is a 400.
pub fn timeline_filter(
    subject: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
) -> Result<domain::timeline::TimelineFilter, ApiError> {
    let some = |s: Option<String>| s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let kind = match some(kind) {
        None => None,
        Some(k) => Some(model::timeline::EventKind::parse(&k).ok_or_else(|| {
            ApiError::bad_input(format!(
                "kind: {:?} is not one of container, haproxy, promotion, member, operation",
                k.chars().take(40).collect::<String>()
            ))
        })?),
    };
    let subject = some(subject);
    if subject.as_ref().is_some_and(|s| s.len() > 128) {
        return Err(ApiError::bad_input("member: a name of at most 128 characters"));
    }
    // The same date rules as the audit filters.
    let range = audit_filter(None, None, None, from, to)?;
    Ok(domain::timeline::TimelineFilter {
        subject,
        kind,
        from_ms: range.from_ms,
        to_ms: range.to_ms,
    })
}

pub fn audit_row(r: domain::audit::AuditRecord) -> model::auth::AuditRow {
    model::auth::AuditRow {
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
    }
}

/// A catalog row; `details`: whether the caller may see what the test
/// restore read (table names, row counts).
pub fn backup_row(m: domain::backup::Manifest, details: bool) -> model::backups::BackupRow {
    let dir = domain::naming::data_dir_name(&m.member);
    let restore_test = m.restore_test.clone().map(|mut r| {
        if !details {
            r.tables = 0;
            r.rows = 0;
            r.table_rows.clear();
            r.details_hidden = true;
        }
        r
    });
    model::backups::BackupRow {
        restore: format!(
            "docker stop {member}\nmv ${{DEFAULT_DATA_DIR}}/pg/{dir} ${{DEFAULT_DATA_DIR}}/pg/{dir}.old\n\
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
        imported_from: m.imported_from.clone(),
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
        restore_test,
        kind: m.kind,
    }
}
