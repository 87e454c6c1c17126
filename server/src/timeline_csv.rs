//! GET /timeline/export.csv?subject=&kind=&from=&to= (viewers and up, by
//! the route's rule): the filtered timeline as CSV, newest first. Bounded
//! by the retention period; at most [`MAX_ROWS`] rows.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::auth::middleware::api_error;

pub const ROUTE: &str = "/timeline/export.csv";
pub const MAX_ROWS: i64 = 100_000;

#[derive(Deserialize, Default)]
pub struct FilterQuery {
    pub subject: Option<String>,
    pub kind: Option<String>,
    /// UTC, `YYYY-MM-DD[THH:MM[:SS]]`.
    pub from: Option<String>,
    pub to: Option<String>,
}

pub async fn export(State(st): State<crate::state::AppState>, Query(q): Query<FilterQuery>) -> Response {
    let filter = match app::serve::timeline_filter(q.subject, q.kind, q.from, q.to) {
        Ok(f) => f,
        Err(e) => return api_error(e),
    };
    let store = domain::timeline::TimelineStore::new(st.pool.clone());
    match store.page(&filter, MAX_ROWS).await {
        Ok((events, _)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"pg-console-timeline.csv\"",
                ),
            ],
            domain::timeline::csv_of(&events),
        )
            .into_response(),
        Err(e) => api_error(app::error::ApiError::internal(format!("timeline export: {e}"))),
    }
}
