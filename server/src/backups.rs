//! GET /backups/download/{id}: stream a backup archive to the browser
//! (operators and admins: the middleware enforces the route's rule).

use app::error::ApiError;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use domain::audit::AuditResult;

use crate::auth::middleware::{api_error, entry_for};
use crate::auth::CurrentUser;
use crate::state::AppState;

pub async fn download(
    State(st): State<AppState>,
    Extension(caller): Extension<CurrentUser>,
    Path(id): Path<String>,
) -> Response {
    let Some(dir) = st.backups_dir.clone() else {
        return api_error(ApiError::not_found("backups are not configured"));
    };
    let found = {
        let (dir, id) = (dir.clone(), id.clone());
        tokio::task::spawn_blocking(move || domain::backup::find(&dir, &id)).await
    };
    let Some(m) = found
        .ok()
        .flatten()
        .filter(|m| m.status == model::backups::BackupStatus::Ok)
    else {
        return api_error(ApiError::not_found(format!(
            "no finished backup {id}: see the Backups page"
        )));
    };
    let path = dir.join(m.archive_name());
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!("cannot open the archive {}: {e}", path.display());
            return api_error(ApiError::not_found(format!(
                "the archive of backup {id} cannot be read: see the console's log"
            )));
        }
    };
    st.audit
        .record_or_log(entry_for(
            &caller,
            "backup_download",
            AuditResult::Ok,
            &m.archive_name(),
        ))
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
