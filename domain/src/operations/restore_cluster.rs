//! Disaster recovery: restore the whole cluster from a backup in the
//! catalog. The backup is checked (sha256, a test restore, pg_control, the
//! system identifier) and extracted beside the running cluster first, so
//! the cluster is down only for the swap; then the members and etcd stop,
//! their data is moved aside (never deleted, `crate::restore`), the backup
//! becomes its member's data directory, etcd starts empty, that member
//! starts and is promoted by Patroni, the others start empty and rebuild
//! from it, and the row counts the test restore read are compared with what
//! the new leader holds. If any of that fails, the previous data is put back
//! and the old cluster started again.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use model::backups::{BackupStatus, RestorePhase};
use model::operations::{OpRequest, Precondition};
use model::topology::human_bytes;
use model::Topology;

use super::jobs::JobHandle;
use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{pass, Draft};
use super::reinit_cluster::{check_data_dir, healthy, stop_cluster};
use super::OperationService;
use crate::authz::Action;
use crate::backup::Manifest;
use crate::datetime::human_utc as utc;
use crate::docker::DockerControl;
use crate::naming::data_dir_name;
use crate::restore::{swap, Journal};

pub struct RestoreCluster;

impl Operation for RestoreCluster {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        let admin = ctx.may(Action::RestoreCluster);
        let id = backup_id(req);
        Draft {
            title: format!("Restore the cluster {} from backup {id}", t.cluster),
            steps: Vec::new(),
            preconditions: vec![pass(
                admin,
                if admin {
                    "you are an admin"
                } else {
                    "only an admin may restore the cluster"
                },
            )],
            shell: "docker compose -f infra/04-data/postgresql-cluster/docker-compose.yml stop && \
                    mv ${DEFAULT_DATA_DIR}/pg ${DEFAULT_DATA_DIR}/pg.old && mv ${DEFAULT_DATA_DIR}/etcd ${DEFAULT_DATA_DIR}/etcd.old && \
                    mkdir -p ${DEFAULT_DATA_DIR}/pg/pg0-data ${DEFAULT_DATA_DIR}/pg/pg2-data ${DEFAULT_DATA_DIR}/etcd && \
                    tar -C ${DEFAULT_DATA_DIR}/pg -xzf pg1-backup.tar.gz && \
                    docker compose -f infra/04-data/postgresql-cluster/docker-compose.yml up -d etcd pg-1 && \
                    sleep 30 && docker compose -f infra/04-data/postgresql-cluster/docker-compose.yml up -d"
                .to_string(),
            confirm_name: t.cluster.clone(),
        }
    }

    fn local<'a>(&'a self, req: &'a OpRequest, svc: &'a OperationService, d: &'a mut Draft) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let facts = Facts::gather(svc, backup_id(req)).await;
            let members: Vec<String> = svc.patroni.members().iter().map(|m| m.name.clone()).collect();
            if let Some(m) = &facts.backup {
                d.steps = steps(m, &members);
            }
            d.preconditions.extend(checks(&facts, req, &members));
        })
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        let RunCtx { svc, job, req, before } = r;
        Box::pin(svc.run_restore(job, req, before))
    }
}

fn backup_id(req: &OpRequest) -> &str {
    match req {
        OpRequest::RestoreCluster { backup_id, .. } => backup_id,
        _ => "",
    }
}

/// What the plan is drawn from besides the topology.
pub struct Facts {
    pub backup: Option<Manifest>,
    pub current_system: Option<String>,
    /// Each member's data directory and its size now.
    pub current_bytes: Vec<(String, u64)>,
    /// The newest WAL file's modification time in the leader's data.
    pub last_wal_ms: Option<i64>,
    pub free_bytes: Option<u64>,
    pub data_dir: Vec<Precondition>,
    /// A restore whose journal is not finished.
    pub unfinished: Option<Journal>,
    pub kept_root: String,
}

impl Facts {
    async fn gather(svc: &OperationService, id: &str) -> Facts {
        let (backups, data, reinit) = (
            svc.backup.backups_dir.clone(),
            svc.reinit.data_dir.clone(),
            svc.reinit.clone(),
        );
        let members: Vec<String> = svc.patroni.members().iter().map(|m| m.name.clone()).collect();
        let leader = svc.patroni.topology().await.leader().map(|m| m.name.clone());
        let current_system = svc.patroni.system_identifier().await;
        let id = id.to_string();
        crate::off_thread(move || {
            let pg = data.join("pg");
            let last_wal_ms = leader.and_then(|l| newest_mtime_ms(&pg.join(data_dir_name(&l)).join("pg_wal")));
            Facts {
                backup: crate::backup::find(&backups, &id),
                current_system,
                current_bytes: members
                    .iter()
                    .map(|m| (m.clone(), crate::restore::tree_bytes(&pg.join(data_dir_name(m)))))
                    .collect(),
                last_wal_ms,
                free_bytes: crate::backup::free_bytes(&data),
                data_dir: check_data_dir(&reinit),
                unfinished: crate::restore::journals(&data)
                    .into_iter()
                    .find(|j| !j.phase.finished()),
                kept_root: crate::restore::kept_root(&data).display().to_string(),
            }
        })
        .await
    }
}

fn newest_mtime_ms(dir: &std::path::Path) -> Option<i64> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.metadata().ok().filter(|m| m.is_file())?.modified().ok())
        .max()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as i64)
}

/// The steps, from the backup's manifest (stable between the plan and its
/// confirmation, as the confirmation is bound to them).
pub fn steps(m: &Manifest, members: &[String]) -> Vec<String> {
    let others: Vec<&str> = members.iter().map(String::as_str).filter(|n| *n != m.member).collect();
    let taken = utc(m.started_at_ms);
    vec![
        format!("check the archive's sha256 and, unless a test restore of it succeeded, test-restore it now"),
        format!(
            "extract it ({} of data) beside the running cluster and check its pg_control",
            human_bytes(m.data_bytes)
        ),
        "stop the replicas, then the leader, then etcd".into(),
        "move every member's data directory and etcd's data aside to ${DEFAULT_DATA_DIR}/pg-console-kept/ (moved, not deleted)".into(),
        format!("{}'s backup of {taken} becomes {}'s data; etcd starts empty", m.member, m.member),
        format!("start etcd and {}: Patroni makes it the leader of a new timeline", m.member),
        format!("check that the leader holds the row counts the test restore read"),
        format!("start {} empty: they rebuild from {}", others.join(" and "), m.member),
        "wait for one leader and streaming replicas; if the cluster is not healthy in time, put the previous data back and start the old cluster".into(),
        format!("WRITES MADE AFTER {taken} ARE LOST (they stay in the kept data until it is discarded)"),
    ]
}

/// The preconditions the facts decide.
pub fn checks(f: &Facts, req: &OpRequest, members: &[String]) -> Vec<Precondition> {
    let other_system = matches!(req, OpRequest::RestoreCluster { other_system: true, .. });
    let Some(m) = &f.backup else {
        return vec![pass(
            false,
            format!("there is no backup {:?}: choose one from the catalog", backup_id(req)),
        )];
    };
    let mut out = vec![pass(
        m.status == BackupStatus::Ok,
        format!(
            "{}'s backup of {} is {} ({} of data)",
            m.member,
            utc(m.started_at_ms),
            m.status,
            human_bytes(m.data_bytes)
        ),
    )];
    out.push(match (m.verified_ok, &m.restore_test) {
        (Some(false), _) => pass(false, "its sha256 does not match: the archive is corrupted"),
        (_, Some(r)) if !r.ok => pass(
            false,
            format!("its last test restore failed ({}): it cannot be restored", r.error),
        ),
        (_, Some(r)) => {
            pass(
                true,
                format!(
            "a test restore read {} tables and {} rows at {}; the sha256 is checked again before anything stops",
            r.tables, r.rows, utc(r.at_ms)
        ),
            )
        }
        (_, None) => pass(
            true,
            "no test restore yet: the sha256 is checked and one is run before anything stops",
        ),
    });
    out.push(pass(
        members.contains(&m.member),
        format!(
            "{} is a member of this cluster, so it can take the backup back",
            m.member
        ),
    ));
    out.push(match &f.current_system {
        Some(cur) if *cur == m.system_identifier => {
            pass(true, format!("it belongs to this cluster (system identifier {cur})"))
        }
        Some(cur) => pass(
            other_system,
            if other_system {
                format!("it is another cluster's backup (system identifier {}, this cluster's is {cur}): you chose to restore it anyway", m.system_identifier)
            } else {
                format!("it is another cluster's backup (system identifier {}, this cluster's is {cur}): choose “another cluster's backup” to restore it anyway", m.system_identifier)
            },
        ),
        None => pass(true, format!("the cluster's system identifier is unknown (is it down?); the backup's is {}", m.system_identifier)),
    });
    let need = m.data_bytes + m.data_bytes / 10 + 64 * 1024 * 1024;
    out.push(match f.free_bytes {
        Some(free) => pass(
            free >= need,
            format!(
                "{} free where the data lives; the extracted backup needs {} (the current data is moved, not copied)",
                human_bytes(free),
                human_bytes(need)
            ),
        ),
        None => pass(false, "cannot tell the free space where the data lives"),
    });
    let sizes: Vec<String> = f.current_bytes.iter().map(|(_, b)| human_bytes(*b)).collect();
    out.push(pass(
        true,
        format!(
            "the cluster's current data ({}, system identifier {}, last WAL write {}) is moved aside to {}, not deleted",
            sizes.join(" + "),
            f.current_system.as_deref().unwrap_or("unknown"),
            f.last_wal_ms.map(|t| format!("{}", utc(t))).unwrap_or_else(|| "unknown".into()),
            f.kept_root
        ),
    ));
    if let Some(j) = &f.unfinished {
        out.push(pass(
            false,
            format!(
                "restore {} is unfinished ({}): let the console finish it first",
                j.id,
                j.phase.as_str()
            ),
        ));
    }
    out.extend(f.data_dir.iter().cloned());
    out
}

/// How long the restored cluster may take to become healthy.
fn timeout(svc: &OperationService) -> Duration {
    Duration::from_secs(svc.reinit.restore_timeout_secs.max(30))
}

impl OperationService {
    async fn run_restore(&self, job: &JobHandle, req: &OpRequest, before: &Topology) -> Result<String, String> {
        let docker = DockerControl::connect().await.map_err(|e| e.to_string())?;
        let m = self.checked_backup(job, &docker, backup_id(req)).await?;
        let data = self.reinit.data_dir.clone();
        let members: Vec<String> = self.patroni.members().iter().map(|x| x.name.clone()).collect();
        let leader_dir = self.reinit.data_dir.join("pg").join(data_dir_name(&m.member));
        let owner = swap::owner(&leader_dir).map_err(|e| format!("cannot read {}: {e}", leader_dir.display()))?;
        let mut j = Journal {
            id: crate::restore::new_id(crate::now_ms()),
            started_at_ms: crate::now_ms(),
            started_by: job.user(),
            backup_id: m.id.clone(),
            leader: m.member.clone(),
            members: members.clone(),
            owner,
            phase: RestorePhase::Staging,
            outcome: String::new(),
            holds: String::new(),
            bytes: 0,
        };
        self.journal(&j).await?;
        let incoming = swap::Layout::new(&data, j.folder(&data)).incoming();
        job.step(format!(
            "extracting the backup into {} beside the running cluster",
            incoming.display()
        ))
        .await;
        let archive = self.backup.backups_dir.join(m.archive_name());
        let l2 = swap::Layout::new(&data, j.folder(&data));
        let staged = crate::off_thread(move || swap::stage(&archive, &l2, owner)).await;
        let staged = match staged.and_then(|(top, control)| {
            let sys = control.system_identifier.to_string();
            if sys != m.system_identifier {
                return Err(format!(
                    "the archive's pg_control has system identifier {sys}, its manifest says {}",
                    m.system_identifier
                ));
            }
            Ok(top)
        }) {
            Ok(top) => top,
            Err(e) => {
                let l2 = swap::Layout::new(&data, j.folder(&data));
                crate::off_thread(move || swap::drop_incoming(&l2)).await;
                j.phase = RestorePhase::Abandoned;
                j.outcome = format!("refused before anything stopped: {e}");
                j.holds = "nothing".into();
                self.journal(&j).await?;
                return Err(format!("{e}. Nothing was stopped or moved"));
            }
        };
        match self.swap_and_start(job, &docker, &mut j, &staged, before).await {
            Ok(summary) => {
                let folder = j.folder(&data);
                let (bytes, holds) = crate::off_thread(move || {
                    let l = swap::Layout::new(&folder, folder.clone());
                    (crate::restore::tree_bytes(&folder), swap::holds(&l))
                })
                .await;
                j.phase = RestorePhase::Done;
                j.outcome = summary.clone();
                j.holds = holds;
                j.bytes = bytes;
                self.journal(&j).await?;
                Ok(format!(
                    "{summary}. The data from before ({}) is kept in {}: discard it from the Backups page when you no longer need it",
                    human_bytes(bytes),
                    j.folder(&data).display()
                ))
            }
            Err(e) => Err(self.roll_back(job, &docker, &mut j, &e).await),
        }
    }

    /// The backup, checked: its sha256 now, and a test restore unless one succeeded.
    async fn checked_backup(&self, job: &JobHandle, docker: &DockerControl, id: &str) -> Result<Manifest, String> {
        let s = self.backup.clone();
        let m = crate::backup::find(&s.backups_dir, id).ok_or_else(|| format!("there is no backup {id}"))?;
        let tested = m.restore_test.as_ref().is_some_and(|r| r.ok);
        let m = if tested {
            job.step("checking the archive's sha256").await;
            let (dir, id2) = (s.backups_dir.clone(), id.to_string());
            crate::off_thread(move || crate::backup::verify(&dir, &id2)).await?
        } else {
            job.step("no successful test restore on record: checking the sha256 and test-restoring it now")
                .await;
            crate::backup::restore_test::verify_and_restore(&s, docker, &m.member, id).await?
        };
        if m.verified_ok != Some(true) {
            return Err(
                "the archive's sha256 does not match its manifest: it is corrupted. Nothing was stopped or moved"
                    .into(),
            );
        }
        match &m.restore_test {
            Some(r) if r.ok => Ok(m),
            Some(r) => Err(format!(
                "the test restore failed ({}). Nothing was stopped or moved",
                r.error
            )),
            None => Err("no test restore result. Nothing was stopped or moved".into()),
        }
    }

    pub(super) async fn journal(&self, j: &Journal) -> Result<(), String> {
        let (j2, data) = (j.clone(), self.reinit.data_dir.clone());
        crate::off_thread(move || j2.save(&data))
            .await
            .map_err(|e| format!("cannot write the restore's journal: {e}"))
    }

    async fn swap_and_start(
        &self,
        job: &JobHandle,
        docker: &DockerControl,
        j: &mut Journal,
        staged: &std::path::Path,
        before: &Topology,
    ) -> Result<String, String> {
        j.phase = RestorePhase::Stopping;
        self.journal(j).await?;
        let leader = before.leader().map(|m| m.name.clone());
        let replicas: Vec<String> = j
            .members
            .iter()
            .filter(|n| Some(*n) != leader.as_ref())
            .cloned()
            .collect();
        stop_cluster(job, docker, &self.reinit.etcd_container, &replicas, leader.as_deref()).await?;

        j.phase = RestorePhase::Swapping;
        self.journal(j).await?;
        let data = self.reinit.data_dir.clone();
        job.step(format!(
            "moving the current data aside to {}",
            j.folder(&data).display()
        ))
        .await;
        let dirs: Vec<String> = j.members.iter().map(|m| data_dir_name(m)).collect();
        let (layout, owner, staged, target) = (
            swap::Layout::new(&data, j.folder(&data)),
            j.owner,
            staged.to_path_buf(),
            data_dir_name(&j.leader),
        );
        crate::off_thread(move || {
            swap::move_aside(&layout, &dirs, owner)?;
            swap::move_in(&layout, &staged, &target)
        })
        .await
        .map_err(|e| format!("cannot move the data: {e}"))?;

        j.phase = RestorePhase::Starting;
        self.journal(j).await?;
        self.start_restored(job, docker, j).await
    }

    async fn start_restored(&self, job: &JobHandle, docker: &DockerControl, j: &Journal) -> Result<String, String> {
        let deadline = Instant::now() + timeout(self);
        let etcd = &self.reinit.etcd_container;
        job.step(format!("starting {etcd} (empty) and {}", j.leader)).await;
        docker.start(etcd).await.map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        docker.start(&j.leader).await.map_err(|e| e.to_string())?;
        job.step(format!("waiting for Patroni to make {} the leader", j.leader))
            .await;
        loop {
            let t = self.patroni.topology().await;
            if t.leader().is_some_and(|l| l.name == j.leader) && self.writable_now().await {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not become a writable leader in time", j.leader));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let m = crate::backup::find(&self.backup.backups_dir, &j.backup_id).ok_or("the backup's manifest vanished")?;
        let counted = self.compare_rows(job, &m).await?;
        let others: Vec<&String> = j.members.iter().filter(|n| **n != j.leader).collect();
        job.step(format!(
            "starting {} empty: they rebuild from {}",
            others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            j.leader
        ))
        .await;
        for n in &others {
            docker.start(n).await.map_err(|e| e.to_string())?;
        }
        job.step("waiting for one leader and streaming replicas").await;
        loop {
            let t = self.patroni.topology().await;
            if healthy(&t, j.members.len()) {
                let sys = self
                    .patroni
                    .system_identifier()
                    .await
                    .unwrap_or_else(|| "unknown".into());
                return Ok(format!(
                    "restored {}'s backup of {}: {} leads timeline {}, {} replicas stream, system identifier {sys}, {counted}",
                    m.member,
                    utc(m.started_at_ms),
                    j.leader,
                    t.leader().and_then(|l| l.timeline).unwrap_or_default(),
                    j.members.len() - 1
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the restored cluster did not become healthy within {} s",
                    timeout(self).as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The row counts the test restore read, against what the new leader holds.
    async fn compare_rows(&self, job: &JobHandle, m: &Manifest) -> Result<String, String> {
        let Some(target) = &self.probe else {
            return Ok("row counts not compared (the console has no database credentials)".into());
        };
        let expected = m
            .restore_test
            .as_ref()
            .map(|r| r.table_rows.clone())
            .unwrap_or_default();
        job.step(format!(
            "comparing the row counts of {} tables with the test restore's",
            expected.len()
        ))
        .await;
        let mismatches = super::row_counts::compare(target, &expected).await?;
        if mismatches.is_empty() {
            Ok(format!(
                "the row counts of {} tables match the backup's",
                expected.len()
            ))
        } else {
            Err(format!(
                "the restored data differs from the backup: {}",
                mismatches.join("; ")
            ))
        }
    }

    /// Put the previous data back and start the old cluster; the error to report.
    async fn roll_back(&self, job: &JobHandle, docker: &DockerControl, j: &mut Journal, why: &str) -> String {
        job.step(format!("the restore failed ({why}): putting the previous data back"))
            .await;
        let outcome = match self.put_back(Some(job), docker, j).await {
            Ok(()) => format!("the restore failed ({why}); the previous data is back and the old cluster was started again"),
            Err(e) => format!(
                "the restore failed ({why}) and so did putting the previous data back ({e}): nothing was deleted; the previous data is in {}",
                j.folder(&self.reinit.data_dir).display()
            ),
        };
        j.outcome = outcome.clone();
        if let Err(e) = self.journal(j).await {
            tracing::error!("{e}");
        }
        outcome
    }

    /// Whether the write endpoint takes writes now (true without credentials:
    /// then Patroni's view alone decides).
    async fn writable_now(&self) -> bool {
        match &self.probe {
            Some(p) => super::write_probe::writable(p).await,
            None => true,
        }
    }
}
