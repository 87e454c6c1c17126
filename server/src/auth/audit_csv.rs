//! GET /audit/export.csv?user=&action=&result=&from=&to= (admins, by the
//! rule of the route): the filtered rows as CSV, streamed batch by batch, so
//! an export of the whole log never holds it in memory.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use domain::audit::{csv_header, csv_rows, AuditResult};
use futures::StreamExt;
use serde::Deserialize;

use super::middleware::{api_error, entry_for};
use super::CurrentUser;
use crate::state::AppState;

const BATCH: i64 = 1000;

#[derive(Deserialize, Default)]
pub struct FilterQuery {
    pub user: Option<String>,
    pub action: Option<String>,
    pub result: Option<String>,
    /// UTC, `YYYY-MM-DD[THH:MM[:SS]]` (the Audit page's datetime inputs).
    pub from: Option<String>,
    pub to: Option<String>,
}

pub async fn export(
    State(st): State<AppState>,
    Extension(caller): Extension<CurrentUser>,
    Query(q): Query<FilterQuery>,
) -> Response {
    let filter = match app::serve::audit_filter(q.user, q.action, q.result, q.from, q.to) {
        Ok(f) => f,
        Err(e) => return api_error(e),
    };
    st.audit
        .record_or_log(
            entry_for(&caller, "audit_export", AuditResult::Ok, "audit")
                .params(serde_json::json!({ "filter": format!("{filter:?}") })),
        )
        .await;
    let audit = st.audit.clone();
    let rows = futures::stream::unfold(Some(i64::MAX), move |cursor| {
        let (audit, filter) = (audit.clone(), filter.clone());
        async move {
            let before = cursor?;
            match audit.batch_before(&filter, before, BATCH).await {
                Ok(batch) if batch.is_empty() => None,
                Ok(batch) => {
                    let next = (batch.len() as i64 == BATCH)
                        .then(|| batch.last().map(|r| r.id))
                        .flatten();
                    Some((Ok::<_, std::io::Error>(csv_rows(&batch)), next))
                }
                Err(e) => {
                    tracing::error!("audit export: {e}");
                    Some((Err(std::io::Error::other("cannot read the audit log")), None))
                }
            }
        }
    });
    let body = futures::stream::once(async { Ok(csv_header().to_string()) }).chain(rows);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"pg-console-audit.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}
