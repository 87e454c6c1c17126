//! The run of "restore the cluster from a backup" and "… to a point in time"
//! (their plans are in `restore_cluster.rs` and `restore_to_time.rs`): check
//! the backup, extract it beside the running cluster, replay the WAL archive
//! on it for a point in time (`restore_replay.rs`), stop, swap the data
//! (`crate::restore::swap`), start the restored member, compare row counts,
//! start the others; put the previous data back on any failure
//! (`restore_rollback.rs`).

use std::time::{Duration, Instant};

use model::backups::{BackupKind, RestorePhase};
use model::topology::human_bytes;
use model::topology::MemberState;
use model::Topology;

use super::jobs::JobHandle;
use super::reinit_cluster::{healthy, stop_cluster};
use super::restore_replay::ReplayTo;
use super::OperationService;
use crate::backup::Manifest;
use crate::datetime::human_utc as utc;
use crate::docker::DockerControl;
use crate::naming::data_dir_name;
use crate::restore::{swap, Journal};

/// How often the restored cluster's state is looked at while waiting.
const POLL: Duration = Duration::from_millis(200);

/// The extracted (and maybe replayed) backup, with the row counts the
/// restored leader must hold and who read them.
struct Staged {
    top: std::path::PathBuf,
    rows: Vec<(String, u64)>,
    source: &'static str,
    said: String,
}

/// The row counts the restored leader must hold, and who read them.
type Expected<'a> = (&'a [(String, u64)], &'a str);

/// The counts the backup's test restore read.
fn test_restore_rows(m: &Manifest) -> Vec<(String, u64)> {
    m.restore_test
        .as_ref()
        .map(|r| r.table_rows.clone())
        .unwrap_or_default()
}

/// How long the restored cluster may take to become healthy.
fn timeout(svc: &OperationService) -> Duration {
    Duration::from_secs(svc.reinit.restore_timeout_secs.max(30))
}

/// How long the member to lead may stay down after Patroni first reported
/// that PostgreSQL failed to start. Patroni tries again on every loop, so
/// a data directory PostgreSQL refuses (another major version, a damaged
/// control file) fails again and again: the rollback starts after this,
/// not after the whole timeout.
const START_FAILED_FOR: Duration = Duration::from_secs(15);

/// Since when `member` has been failing to start: the first time Patroni
/// reported "start failed", kept until PostgreSQL runs. (Between two
/// failures Patroni says "starting", or does not answer while it starts.)
fn start_failing_since(t: &Topology, member: &str, since: Option<Instant>, now: Instant) -> Option<Instant> {
    let m = t.members.iter().find(|m| m.name == member)?;
    let failed = m.state == "start failed" || m.raw_state.as_deref() == Some("start failed");
    let runs = matches!(m.state, MemberState::Running | MemberState::Streaming);
    match since {
        _ if runs => None,
        Some(s) => Some(s),
        None => failed.then_some(now),
    }
}

impl OperationService {
    /// Restore backup `id`, replayed to a point in time when `to` says so.
    pub(super) async fn run_restore(
        &self,
        job: &JobHandle,
        id: &str,
        to: Option<ReplayTo>,
        before: &Topology,
    ) -> Result<String, String> {
        let docker = DockerControl::connect().await.map_err(|e| e.to_string())?;
        let m = self.checked_backup(job, &docker, id).await?;
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
            target_ms: to.as_ref().map(|t| t.target_ms),
        };
        self.journal(&j).await?;
        let staged = match self.stage(job, &docker, &m, &j, to.as_ref()).await {
            Ok(s) => s,
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
        let what = format!(
            "restored {}'s backup of {}{}",
            m.member,
            utc(m.started_at_ms),
            staged.said
        );
        let expected = (staged.rows.as_slice(), staged.source);
        match self
            .swap_and_start(job, &docker, &mut j, (&staged.top, expected, &what), before)
            .await
        {
            Ok(summary) => self.finish(&mut j, summary).await,
            Err(e) => Err(self.roll_back(job, &docker, &mut j, &e).await),
        }
    }

    /// Extract the backup beside the running cluster, check its pg_control,
    /// and replay it to the point in time if asked (a hot base backup, to
    /// its consistent point at least): nothing stops meanwhile.
    async fn stage(
        &self,
        job: &JobHandle,
        docker: &DockerControl,
        m: &Manifest,
        j: &Journal,
        to: Option<&ReplayTo>,
    ) -> Result<Staged, String> {
        let data = self.reinit.data_dir.clone();
        let incoming = swap::Layout::new(&data, j.folder(&data)).incoming();
        job.step(format!(
            "extracting the backup into {} beside the running cluster",
            incoming.display()
        ))
        .await;
        let (archive, layout, owner) = (
            self.backup.backups_dir.join(m.archive_name()),
            swap::Layout::new(&data, j.folder(&data)),
            j.owner,
        );
        let hot = m.kind == BackupKind::Base;
        let (top, control) = crate::off_thread(move || swap::stage(&archive, &layout, owner, hot)).await?;
        let sys = control.system_identifier.to_string();
        if sys != m.system_identifier {
            return Err(format!(
                "the archive's pg_control has system identifier {sys}, its manifest says {}",
                m.system_identifier
            ));
        }
        let replayed = match (to, m.kind) {
            (Some(to), _) => Some(self.replay_to(job, docker, (&incoming, &top), &m.member, to).await?),
            (None, BackupKind::Base) => Some(self.replay_to_consistency(job, docker, (&incoming, &top), m).await?),
            (None, BackupKind::Snapshot) => None,
        };
        match replayed {
            Some(r) => Ok(Staged {
                top,
                rows: r.table_rows,
                source: "the replay",
                said: format!(", {}", r.said),
            }),
            None => Ok(Staged {
                top,
                rows: test_restore_rows(m),
                source: "the backup's test restore",
                said: String::new(),
            }),
        }
    }

    /// The restore is done: the journal says so and what it keeps.
    async fn finish(&self, j: &mut Journal, summary: String) -> Result<String, String> {
        let data = self.reinit.data_dir.clone();
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
        self.journal(j).await?;
        Ok(format!(
            "{summary}. The data from before ({}) is kept in {}: discard it from the Backups page when you no longer need it",
            human_bytes(bytes),
            j.folder(&data).display()
        ))
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
        (staged, expected, what): (&std::path::Path, Expected<'_>, &str),
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
        self.start_restored(job, docker, j, expected, what).await
    }

    async fn start_restored(
        &self,
        job: &JobHandle,
        docker: &DockerControl,
        j: &Journal,
        expected: Expected<'_>,
        what: &str,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout(self);
        let etcd = &self.reinit.etcd_container;
        job.step(format!("starting {etcd} (empty) and {}", j.leader)).await;
        // Patroni waits for etcd by itself: no pause between the two.
        docker.start(etcd).await.map_err(|e| e.to_string())?;
        docker.start(&j.leader).await.map_err(|e| e.to_string())?;
        job.step(format!("waiting for Patroni to make {} the leader", j.leader))
            .await;
        let mut failing_since = None;
        loop {
            let t = self.patroni.topology().await;
            if t.leader().is_some_and(|l| l.name == j.leader) && self.writable_now().await {
                break;
            }
            failing_since = start_failing_since(&t, &j.leader, failing_since, Instant::now());
            if failing_since.is_some_and(|s| s.elapsed() >= START_FAILED_FOR) {
                return Err(format!(
                    "PostgreSQL on {} does not start from the restored data: Patroni has reported \"start failed\" for {} s (the reason is in {}'s log, on the Logs page)",
                    j.leader,
                    START_FAILED_FOR.as_secs(),
                    j.leader
                ));
            }
            if Instant::now() > deadline {
                return Err(format!("{} did not become a writable leader in time", j.leader));
            }
            tokio::time::sleep(POLL).await;
        }
        let counted = self.compare_rows(job, expected).await?;
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
                    "{what}: {} leads timeline {}, {} replicas stream, system identifier {sys}, {counted}",
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
            tokio::time::sleep(POLL).await;
        }
    }

    /// The row counts the test restore (or the replay) read, against what the new leader holds.
    async fn compare_rows(&self, job: &JobHandle, (expected, source): Expected<'_>) -> Result<String, String> {
        let Some(target) = &self.probe else {
            return Ok("row counts not compared (the console has no database credentials)".into());
        };
        job.step(format!(
            "comparing the row counts of {} tables with what {source} read",
            expected.len()
        ))
        .await;
        let mismatches = super::row_counts::compare(target, expected).await?;
        if mismatches.is_empty() {
            Ok(format!(
                "the row counts of {} tables match what {source} read",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorded healthy cluster with pg-2 as Patroni reports it now.
    fn pg2(state: &str) -> Topology {
        let mut t = super::super::plan_tests::recorded();
        let m = t.members.iter_mut().find(|m| m.name == "pg-2").unwrap();
        m.state = MemberState::from(state);
        m.raw_state = Some(state.into());
        t
    }

    #[test]
    fn a_start_failure_counts_from_the_first_report_until_postgresql_runs() {
        let (t0, t1) = (Instant::now(), Instant::now() + Duration::from_secs(3));
        assert_eq!(start_failing_since(&pg2("starting"), "pg-2", None, t0), None);
        assert_eq!(start_failing_since(&pg2("start failed"), "pg-2", None, t0), Some(t0));
        // Patroni's next attempt ("starting"), or no answer: still failing since t0.
        assert_eq!(start_failing_since(&pg2("starting"), "pg-2", Some(t0), t1), Some(t0));
        assert_eq!(start_failing_since(&pg2("unreachable"), "pg-2", Some(t0), t1), Some(t0));
        assert_eq!(
            start_failing_since(&pg2("start failed"), "pg-2", Some(t0), t1),
            Some(t0)
        );
        // It runs: no longer failing.
        assert_eq!(start_failing_since(&pg2("running"), "pg-2", Some(t0), t1), None);
        assert_eq!(start_failing_since(&pg2("start failed"), "pg-1", None, t0), None);
    }
}
