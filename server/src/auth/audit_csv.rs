//! GET /audit/export.csv?user=&action=&result=&from=&to= (admin; the
//! middleware enforces the /audit page rule): the filtered rows as CSV.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use domain::audit::{to_csv, AuditFilter, AuditResult};
use serde::Deserialize;

use super::middleware::{audit, entry_for};
use super::CurrentUser;
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct FilterQuery {
    pub user: Option<String>,
    pub action: Option<String>,
    pub result: Option<String>,
    /// UTC, `YYYY-MM-DD[THH:MM[:SS]]` (the Audit page's datetime inputs).
    pub from: Option<String>,
    pub to: Option<String>,
}

impl FilterQuery {
    pub fn into_filter(self) -> AuditFilter {
        let some = |s: Option<String>| s.filter(|v| !v.trim().is_empty());
        AuditFilter {
            user: some(self.user),
            action: some(self.action),
            result: some(self.result),
            from_ms: self.from.as_deref().and_then(model::time::parse_utc),
            to_ms: self.to.as_deref().and_then(model::time::parse_utc),
        }
    }
}

pub async fn export(
    State(st): State<AppState>,
    Extension(caller): Extension<CurrentUser>,
    Query(q): Query<FilterQuery>,
) -> Response {
    let filter = q.into_filter();
    match st.audit.query(&filter, 1_000_000, 0).await {
        Ok((rows, total)) => {
            audit(
                &st,
                entry_for(&caller, "audit_export", AuditResult::Ok, "audit")
                    .params(serde_json::json!({ "rows": total })),
            )
            .await;
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"pg-console-audit.csv\"",
                    ),
                ],
                to_csv(&rows),
            )
                .into_response()
        }
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read the audit log: {e}"),
        )
            .into_response(),
    }
}
