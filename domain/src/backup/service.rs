//! What users do with finished backups, audited: verify (sha256 + test
//! restore) and delete (admins, typed confirmation). Both take the catalog
//! lock: a delete never races a verify, and verifies queue (bounded).

use crate::audit::AuditResult;
use crate::authz::{Action, Caller};
use crate::docker::DockerControl;
use crate::operations::{utc, Holder, OperationService};

use super::Manifest;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("there is no backup {0}: see the Backups page")]
    NotFound(String),
    #[error("refused: your role ({0}) may not delete backups")]
    Forbidden(String),
    #[error("refused: type the backup's id ({0}) exactly to delete it; nothing was deleted")]
    WrongId(String),
    #[error("busy: {title} by {user} since {since}. Try again when it has finished")]
    Busy { title: String, user: String, since: String },
    #[error("refused, nothing was imported: {0}")]
    Unusable(String),
    #[error("{0}")]
    Failed(String),
}

impl From<Holder> for BackupError {
    fn from(h: Holder) -> Self {
        BackupError::Busy {
            title: h.title,
            user: h.user,
            since: utc(h.since_ms),
        }
    }
}

impl BackupError {
    fn audit_result(&self) -> AuditResult {
        match self {
            BackupError::Failed(_) | BackupError::Unusable(_) => AuditResult::Failed,
            _ => AuditResult::Refused,
        }
    }
}

impl OperationService {
    async fn find_backup(&self, s: &super::BackupSettings, id: &str) -> Result<Manifest, BackupError> {
        let (dir, id2) = (s.backups_dir.clone(), id.to_string());
        tokio::task::spawn_blocking(move || super::find(&dir, &id2))
            .await
            .map_err(|e| BackupError::Failed(e.to_string()))?
            .ok_or_else(|| BackupError::NotFound(id.to_string()))
    }

    /// Check the archive's sha256, then restore it into an isolated
    /// PostgreSQL and read every table. Ok holds the updated manifest
    /// (whose `verified_ok` / `restore_test` say how it went).
    pub async fn verify_backup(&self, caller: &Caller, id: &str) -> Result<Manifest, BackupError> {
        let r = async {
            let s = self.backup.clone();
            let m = self.find_backup(&s, id).await?;
            let _turn = self
                .catalog
                .acquire_queued(&format!("Verify of backup {id}"), &caller.name)
                .await?;
            let docker = DockerControl::connect()
                .await
                .map_err(|e| BackupError::Failed(e.to_string()))?;
            super::restore_test::verify_and_restore(&s, &docker, &m.member, id)
                .await
                .map_err(BackupError::Failed)
        }
        .await;
        let (result, err, params) = match &r {
            Ok(m) => {
                let rt = m.restore_test.clone().unwrap_or_default();
                let ok = m.verified_ok == Some(true) && rt.ok;
                (
                    if ok { AuditResult::Ok } else { AuditResult::Failed },
                    rt.error.clone(),
                    serde_json::json!({
                        "sha256_ok": m.verified_ok, "restored": rt.ok, "system_identifier": rt.system_identifier,
                        "databases": rt.databases, "tables": rt.tables, "rows": rt.rows, "duration_ms": rt.duration_ms,
                    }),
                )
            }
            Err(e) => (e.audit_result(), e.to_string(), serde_json::Value::Null),
        };
        let target = r.as_ref().map(|m| m.archive_name()).unwrap_or_else(|_| id.to_string());
        self.log(
            Self::entry(caller, "backup_verify", result, &target)
                .params(params)
                .error(&err),
        )
        .await;
        r
    }

    /// Delete one backup; the caller must be allowed to and type its id.
    pub async fn delete_backup(&self, caller: &Caller, id: &str, typed: &str) -> Result<Manifest, BackupError> {
        let r = async {
            if !caller.may(Action::DeleteBackup) {
                return Err(BackupError::Forbidden(caller.role.as_str().into()));
            }
            if typed.trim() != id {
                return Err(BackupError::WrongId(id.into()));
            }
            let s = self.backup.clone();
            self.find_backup(&s, id).await?;
            let _turn = self
                .catalog
                .try_acquire(&format!("Delete of backup {id}"), &caller.name)?;
            let (dir, id) = (s.backups_dir.clone(), id.to_string());
            tokio::task::spawn_blocking(move || super::retention::delete(&dir, &id))
                .await
                .map_err(|e| BackupError::Failed(e.to_string()))?
                .map_err(BackupError::Failed)
        }
        .await;
        let (result, err) = match &r {
            Ok(_) => (AuditResult::Ok, String::new()),
            Err(e) => (e.audit_result(), e.to_string()),
        };
        let target = r.as_ref().map(|m| m.archive_name()).unwrap_or_else(|_| id.to_string());
        self.log(Self::entry(caller, "backup_delete", result, &target).error(&err))
            .await;
        r
    }

    /// Bring an archive from the import directory into the catalog, then
    /// test-restore it like any backup (admins: it can be restored from).
    pub async fn import_backup(&self, caller: &Caller, name: &str) -> Result<Manifest, BackupError> {
        let r = async {
            if !caller.may(Action::RestoreCluster) {
                return Err(BackupError::Forbidden(caller.role.as_str().into()));
            }
            let _turn = self.catalog.try_acquire(&format!("Import of {name}"), &caller.name)?;
            let (s, n, cluster, by) = (
                self.backup.clone(),
                name.to_string(),
                self.cluster_name.clone(),
                caller.name.clone(),
            );
            let m = crate::off_thread(move || super::import::import(&s, &s.imports_dir, &n, &cluster, &by))
                .await
                .map_err(BackupError::Unusable)?;
            let docker = DockerControl::connect()
                .await
                .map_err(|e| BackupError::Failed(e.to_string()))?;
            let image_from = self
                .patroni
                .members()
                .first()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            super::restore_test::verify_and_restore(&self.backup, &docker, &image_from, &m.id)
                .await
                .map_err(BackupError::Failed)
        }
        .await;
        let (result, err) = match &r {
            Ok(m) if m.restore_test.as_ref().is_some_and(|t| t.ok) => (AuditResult::Ok, String::new()),
            Ok(m) => (
                AuditResult::Failed,
                m.restore_test.clone().map(|t| t.error).unwrap_or_default(),
            ),
            Err(e) => (e.audit_result(), e.to_string()),
        };
        let params = r
            .as_ref()
            .map(|m| {
                serde_json::json!({
                    "file": name, "id": m.id, "member": m.member, "system_identifier": m.system_identifier,
                })
            })
            .unwrap_or(serde_json::json!({ "file": name }));
        self.log(
            Self::entry(caller, "backup_import", result, name)
                .params(params)
                .error(&err),
        )
        .await;
        r
    }
}
