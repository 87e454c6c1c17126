//! Point-in-time recovery: "Restore the cluster to 2026-12-01 14:32:05
//! UTC…". The newest successful backup from before that time is checked and
//! extracted beside the running cluster as for a restore from a backup
//! (`restore_cluster.rs`), then the WAL archive is replayed on it up to the
//! target in an isolated PostgreSQL (`crate::restore::replay`), which
//! promotes it to a new timeline; from there the restore's own pipeline
//! (`restore_run.rs`) swaps it in as the leader, rebuilds the replicas and
//! rolls back on failure. The plan shows the window the archive can restore
//! (`crate::wal_archive::window`) and refuses a time outside it, in a gap,
//! or before any backup, with the reason.

use std::path::PathBuf;

use futures::future::BoxFuture;
use model::backups::BackupStatus;
use model::operations::OpRequest;
use model::topology::human_bytes;
use model::wal::{WalArchiveFiles, WalReceiverStatus};

use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{pass, Draft};
use super::restore_cluster::{admin_only, checks, Facts};
use super::OperationService;
use crate::backup::Manifest;
use crate::datetime::human_utc as utc;
use crate::wal_archive::window::{self, consistent_at_ms, ArchiveEnd};

pub struct RestoreToTime;

impl Operation for RestoreToTime {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        Draft {
            title: format!("Restore the cluster {} to {}", t.cluster, target_title(target_text(req))),
            steps: Vec::new(),
            preconditions: vec![admin_only(ctx)],
            shell: "docker compose -f infra/04-data/postgresql-cluster/docker-compose.yml stop && \
                    mv ${DEFAULT_DATA_DIR}/pg ${DEFAULT_DATA_DIR}/pg.old && mv ${DEFAULT_DATA_DIR}/etcd ${DEFAULT_DATA_DIR}/etcd.old && \
                    mkdir -p ${DEFAULT_DATA_DIR}/pg/pg0-data ${DEFAULT_DATA_DIR}/pg/pg2-data ${DEFAULT_DATA_DIR}/etcd && \
                    tar -C ${DEFAULT_DATA_DIR}/pg -xzf pg1-backup.tar.gz && rm ${DEFAULT_DATA_DIR}/pg/pg1-data/standby.signal && \
                    touch ${DEFAULT_DATA_DIR}/pg/pg1-data/recovery.signal && \
                    echo \"restore_command = 'wal-restore /wal-archive/<system id> %f %p'\" \
                    \"recovery_target_time = '<time>'\" \"recovery_target_action = 'promote'\" >> ${DEFAULT_DATA_DIR}/pg/pg1-data/postgresql.conf && \
                    pg_ctl start -D ${DEFAULT_DATA_DIR}/pg/pg1-data (as postgres, until it promotes) && pg_ctl stop && \
                    docker compose -f infra/04-data/postgresql-cluster/docker-compose.yml up -d"
                .to_string(),
            confirm_name: t.cluster.clone(),
        }
    }

    fn local<'a>(&'a self, req: &'a OpRequest, svc: &'a OperationService, d: &'a mut Draft) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let pitr = Pitr::gather(svc, target_text(req)).await;
            d.preconditions.push(pass(true, pitr.window()));
            let members: Vec<String> = svc.patroni.members().iter().map(|m| m.name.clone()).collect();
            match pitr.choice() {
                Ok(m) => {
                    let facts = Facts::gather(svc, &m.id).await;
                    d.steps = steps(&m, &members, pitr.target_ms.unwrap_or_default());
                    d.preconditions.push(pass(
                        true,
                        format!(
                            "{}'s backup of {} (finished {}) is the newest from before the target: the archive's WAL from its redo point {} is replayed up to the target",
                            m.member,
                            utc(m.started_at_ms),
                            utc(consistent_at_ms(&m)),
                            m.redo_lsn
                        ),
                    ));
                    let as_restore = OpRequest::RestoreCluster {
                        backup_id: m.id.clone(),
                        other_system: false,
                    };
                    d.preconditions.extend(checks(&facts, &as_restore, &members));
                }
                Err(why) => d.preconditions.push(pass(false, why)),
            }
        })
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        let RunCtx { svc, job, req, before } = r;
        Box::pin(async move {
            // Chosen again under the lock: a backup or the archive may have changed.
            let pitr = Pitr::gather(svc, target_text(req)).await;
            let m = pitr
                .choice()
                .map_err(|e| format!("refused, nothing was stopped or moved: {e}"))?;
            let to = super::restore_replay::ReplayTo {
                target_ms: pitr.target_ms?,
                archive: pitr.archive.ok_or("the WAL archive is not configured")?,
                archived_until_ms: pitr.files.newest_at_ms.max(pitr.files.receiving_at_ms),
            };
            svc.run_restore(job, &m.id, Some(to), before).await
        })
    }
}

fn target_text(req: &OpRequest) -> &str {
    match req {
        OpRequest::RestoreToTime { target } => target,
        _ => "",
    }
}

/// The target as the plan names it: normalized when it parses ("T" or a
/// space, with or without seconds), as typed otherwise.
fn target_title(typed: &str) -> String {
    match crate::datetime::parse_user_utc(typed) {
        Some(ms) => utc(ms),
        None => format!("{typed:?}"),
    }
}

/// What a point-in-time plan is drawn from: the target, the backups of the
/// archive's cluster, the archive's files and whether pg-wal receives.
pub struct Pitr {
    pub target_ms: Result<i64, String>,
    pub backups: Vec<Manifest>,
    pub files: WalArchiveFiles,
    pub end: ArchiveEnd,
    /// `<wal archive>/<system id>`, the folder replayed from.
    pub archive: Option<PathBuf>,
    pub error: Option<String>,
}

impl Pitr {
    pub async fn gather(svc: &OperationService, target: &str) -> Pitr {
        let target_ms = crate::datetime::parse_user_utc(target)
            .ok_or_else(|| format!("{target:?} is not a time: type it as YYYY-MM-DD HH:MM:SS (UTC)"));
        let state = match &svc.wal_archive {
            Some(w) => Some(w.state().await),
            None => None,
        };
        let receiving = state.as_ref().is_some_and(|s| s.status == WalReceiverStatus::Receiving);
        let mut sysid = state.as_ref().and_then(|s| s.system_identifier.clone());
        if sysid.is_none() {
            sysid = svc.patroni.system_identifier().await;
        }
        let (root, backups_dir) = (svc.backup.wal_archive_dir.clone(), svc.backup.backups_dir.clone());
        let now = crate::now_ms();
        crate::off_thread(move || {
            let all: Vec<Manifest> = crate::backup::catalog(&backups_dir)
                .into_iter()
                .filter(|m| m.status == BackupStatus::Ok)
                .collect();
            // A cluster that is down cannot say its system identifier: the newest backup's then.
            let sysid = sysid.or_else(|| all.first().map(|m| m.system_identifier.clone()));
            let backups: Vec<Manifest> = all
                .into_iter()
                .filter(|m| Some(&m.system_identifier) == sysid.as_ref())
                .collect();
            let Some(root) = root else {
                return Pitr::unavailable(
                    target_ms,
                    backups,
                    "the WAL archive is not configured (wal_archive_dir)",
                );
            };
            let Some(sysid) = sysid else {
                return Pitr::unavailable(
                    target_ms,
                    backups,
                    "the cluster's system identifier is unknown and no backup names one",
                );
            };
            let archive = root.join(&sysid);
            match crate::wal_archive::files::scan(&archive) {
                Ok(files) => Pitr {
                    end: ArchiveEnd::of(&files, receiving, now),
                    target_ms,
                    backups,
                    files,
                    archive: Some(archive),
                    error: None,
                },
                Err(e) => Pitr::unavailable(
                    target_ms,
                    backups,
                    &format!("cannot read the WAL archive {}: {e}", archive.display()),
                ),
            }
        })
        .await
    }

    fn unavailable(target_ms: Result<i64, String>, backups: Vec<Manifest>, why: &str) -> Pitr {
        Pitr {
            target_ms,
            backups,
            files: WalArchiveFiles::default(),
            end: ArchiveEnd::Empty,
            archive: None,
            error: Some(why.to_string()),
        }
    }

    /// The window the archive can restore, in words.
    pub fn window(&self) -> String {
        match &self.error {
            Some(e) => format!("the archive can restore no time: {e}"),
            None => window::describe(&self.backups, &self.files, self.end),
        }
    }

    /// The backup to restore, or why the target cannot be reached.
    pub fn choice(&self) -> Result<Manifest, String> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let target = self.target_ms.clone()?;
        window::choose(&self.backups, &self.files, self.end, target).cloned()
    }
}

/// The steps, from the chosen backup and the target.
pub fn steps(m: &Manifest, members: &[String], target_ms: i64) -> Vec<String> {
    let others: Vec<&str> = members.iter().map(String::as_str).filter(|n| *n != m.member).collect();
    let (taken, target) = (utc(m.started_at_ms), utc(target_ms));
    vec![
        "check the archive's sha256 and, unless a test restore of it succeeded, test-restore it now".into(),
        format!("write one transaction on the leader and wait until pg-wal has it, so the archive holds WAL past {target} (skipped when the cluster is down)"),
        format!(
            "extract {}'s backup of {taken} ({} of data) beside the running cluster and check its pg_control",
            m.member,
            human_bytes(m.data_bytes)
        ),
        format!("replay the WAL archive on it up to {target}, in an isolated PostgreSQL with no network; it promotes to a new timeline; read every table; stop it cleanly"),
        "stop the replicas, then the leader, then etcd".into(),
        "move every member's data directory and etcd's data aside to ${DEFAULT_DATA_DIR}/pg-console-kept/ (moved, not deleted)".into(),
        format!("the replayed copy becomes {}'s data; etcd starts empty", m.member),
        format!("start etcd and {}: Patroni makes it the leader", m.member),
        "check that the leader holds the row counts the replay read".into(),
        format!("start {} empty: they rebuild from {}", others.join(" and "), m.member),
        "wait for one leader and streaming replicas; if the cluster is not healthy in time, put the previous data back and start the old cluster".into(),
        format!("WRITES MADE AFTER {target} ARE LOST (they stay in the kept data until it is discarded)"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::archive::Compression;

    #[test]
    fn the_plan_names_the_backup_the_target_and_what_is_lost() {
        let mut m = Manifest::new("b1", "postgresql-cluster", "pg-2", Compression::Gzip, "ada");
        m.started_at_ms = 1_764_488_400_000; // 2025-11-30 07:40:00 UTC
        m.phases_ms = vec![("copy".into(), 5_000)];
        m.data_bytes = 2_100_000_000;
        let members = vec!["pg-0".to_string(), "pg-1".to_string(), "pg-2".to_string()];
        let s = steps(&m, &members, 1_764_490_325_000);
        assert_eq!(
            s[2],
            "extract pg-2's backup of 2025-11-30 07:40:00 UTC (2.0 GB of data) beside the running cluster and check its pg_control"
        );
        assert_eq!(
            s[3],
            "replay the WAL archive on it up to 2025-11-30 08:12:05 UTC, in an isolated PostgreSQL with no network; it promotes to a new timeline; read every table; stop it cleanly"
        );
        assert_eq!(s[9], "start pg-0 and pg-1 empty: they rebuild from pg-2");
        assert_eq!(
            s[11],
            "WRITES MADE AFTER 2025-11-30 08:12:05 UTC ARE LOST (they stay in the kept data until it is discarded)"
        );
    }

    #[test]
    fn a_malformed_time_is_refused_with_the_format() {
        let p = Pitr::unavailable(
            Err("\"noon\" is not a time: type it as YYYY-MM-DD HH:MM:SS (UTC)".into()),
            Vec::new(),
            "x",
        );
        assert_eq!(p.choice().unwrap_err(), "x");
        let p = Pitr {
            error: None,
            ..Pitr::unavailable(
                Err("\"noon\" is not a time: type it as YYYY-MM-DD HH:MM:SS (UTC)".into()),
                Vec::new(),
                "",
            )
        };
        assert_eq!(
            p.choice().unwrap_err(),
            "\"noon\" is not a time: type it as YYYY-MM-DD HH:MM:SS (UTC)"
        );
    }
}
