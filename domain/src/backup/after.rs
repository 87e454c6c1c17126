//! What every backup does once its archive is listed: the retention rule
//! deletes what it no longer keeps, and the WAL archive drops what the
//! oldest backup kept no longer needs. Each deletion is a step and audited.

use super::{retention, BackupSettings};
use crate::audit::AuditResult;
use crate::operations::{JobHandle, OperationService};

/// Delete what the retention rule no longer keeps (never this job's backup), audited.
pub(super) async fn apply_retention(svc: &OperationService, job: &JobHandle, s: &BackupSettings) {
    if s.retention.is_off() {
        return;
    }
    job.step(format!("retention: {}", s.retention.describe())).await;
    let (dir, r, keep) = (s.backups_dir.clone(), s.retention, job.id.clone());
    let gone = tokio::task::spawn_blocking(move || retention::apply(&dir, r, crate::now_ms(), &keep))
        .await
        .unwrap_or_default();
    for g in gone {
        let e = match g {
            Ok(old) => job
                .entry("backup_retention_delete", AuditResult::Ok)
                .target(&old.archive_name())
                .params(serde_json::json!({ "rule": s.retention.describe(), "started_at_ms": old.started_at_ms })),
            Err(err) => job.entry("backup_retention_delete", AuditResult::Failed).error(&err),
        };
        svc.log(e).await;
    }
}

/// The WAL archive keeps what the oldest backup kept needs
/// ([`crate::wal_archive::retention`]).
pub(super) async fn prune_wal_archive(svc: &OperationService, job: &JobHandle, s: &BackupSettings) {
    let Some(root) = s.wal_archive_dir.clone() else {
        return;
    };
    let dir = s.backups_dir.clone();
    let pruned =
        tokio::task::spawn_blocking(move || crate::wal_archive::retention::prune(&root, &super::catalog(&dir)))
            .await
            .unwrap_or_default();
    for p in pruned {
        let e = match p {
            Ok(p) => {
                let what = p.describe();
                job.step(what.clone()).await;
                job.entry("wal_retention_delete", AuditResult::Ok)
                    .target(&p.system_identifier)
                    .params(serde_json::json!({ "what": what, "files": p.files, "bytes": p.bytes }))
            }
            Err(err) => job.entry("wal_retention_delete", AuditResult::Failed).error(&err),
        };
        svc.log(e).await;
    }
}
