//! GET /backups/download/{id}: stream a backup archive to the browser
//! (authenticated; the middleware enforces the rule for /backups/download).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use domain::audit::AuditResult;

use crate::auth::middleware::{audit, entry_for};
use crate::auth::CurrentUser;
use crate::state::AppState;

pub async fn download(
    State(st): State<AppState>,
    Extension(caller): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Response {
    let Some(dir) = st.backups_dir.clone() else {
        return (StatusCode::NOT_FOUND, "backups are not configured").into_response();
    };
    let Some(m) = domain::backup::find(&dir, &id).filter(|m| m.status == "ok") else {
        return (StatusCode::NOT_FOUND, format!("no finished backup {id}")).into_response();
    };
    let path = dir.join(m.archive_name());
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => return (StatusCode::NOT_FOUND, format!("cannot open the archive: {e}")).into_response(),
    };
    audit(
        &st,
        entry_for(&caller, "backup_download", AuditResult::Ok, &m.archive_name()),
    )
    .await;
    let stream = tokio_util::io::ReaderStream::new(file);
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, m.archive_bytes.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", m.archive_name()),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}
