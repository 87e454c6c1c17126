//! What users do with finished backups, audited: verify (sha256 + test
//! restore) and delete (admins, typed confirmation).

use crate::audit::AuditResult;
use crate::authz::{may, Action, Caller};
use crate::docker::DockerControl;
use crate::operations::OperationService;

use super::Manifest;

impl OperationService {
    fn backups(&self) -> Result<super::BackupSettings, String> {
        self.backup
            .clone()
            .ok_or_else(|| "backups are not configured (backups_dir)".to_string())
    }

    /// Check the archive's sha256, then restore it into an isolated
    /// PostgreSQL and read every table. Ok holds the updated manifest
    /// (whose `verified_ok` / `restore_test` say how it went).
    pub async fn verify_backup(&self, caller: &Caller, id: &str) -> Result<Manifest, String> {
        let s = self.backups()?;
        let r = async {
            let docker = DockerControl::connect().await.map_err(|e| e.to_string())?;
            let member = super::find(&s.backups_dir, id)
                .map(|m| m.member)
                .ok_or_else(|| format!("no backup {id}"))?;
            super::restore_test::verify_and_restore(&s, &docker, &member, id).await
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
            Err(e) => (AuditResult::Failed, e.clone(), serde_json::Value::Null),
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
    pub async fn delete_backup(&self, caller: &Caller, id: &str, typed: &str) -> Result<Manifest, String> {
        let r = async {
            if !may(caller.role, Action::DeleteBackup) {
                return Err(format!(
                    "refused: your role ({}) may not delete backups",
                    caller.role.as_str()
                ));
            }
            if typed.trim() != id {
                return Err(format!(
                    "refused: type the backup's id ({id}) exactly to delete it; nothing was deleted"
                ));
            }
            let s = self.backups()?;
            let (dir, id) = (s.backups_dir.clone(), id.to_string());
            tokio::task::spawn_blocking(move || super::retention::delete(&dir, &id))
                .await
                .map_err(|e| e.to_string())?
        }
        .await;
        let (result, err) = match &r {
            Ok(_) => (AuditResult::Ok, String::new()),
            Err(e) if e.starts_with("refused") => (AuditResult::Refused, e.clone()),
            Err(e) => (AuditResult::Failed, e.clone()),
        };
        let target = r.as_ref().map(|m| m.archive_name()).unwrap_or_else(|_| id.to_string());
        self.log(Self::entry(caller, "backup_delete", result, &target).error(&err))
            .await;
        r
    }
}
