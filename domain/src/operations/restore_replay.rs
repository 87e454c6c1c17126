//! The replay part of a restore's run (`restore_run.rs` drives the rest),
//! in `crate::restore::replay`: for a point in time, make sure the archive
//! holds WAL past the target, then replay the staged backup up to it; for a
//! hot base backup restored as of its own time, replay its own WAL until
//! it is consistent.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::jobs::JobHandle;
use super::OperationService;
use crate::datetime::human_utc as utc;
use crate::docker::DockerControl;
use crate::restore::replay::{self, ReplayPlan, ReplayTarget};

/// How long pg-wal may take to archive the transaction written for the restore.
const SEAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a point-in-time restore goes.
#[derive(Clone, Debug)]
pub struct ReplayTo {
    pub target_ms: i64,
    /// The archive folder of the backup's system identifier.
    pub archive: PathBuf,
    /// When pg-wal last wrote to the archive (its files' times), if ever.
    pub archived_until_ms: Option<i64>,
}

/// What the replay leaves for the rest of the restore.
pub struct ReplayOutcome {
    /// The counts the restored leader must hold.
    pub table_rows: Vec<(String, u64)>,
    /// For the outcome: the target and where PostgreSQL stopped.
    pub said: String,
}

impl OperationService {
    /// Replay the staged data directory `top` (under `incoming`) to the target.
    pub(super) async fn replay_to(
        &self,
        job: &JobHandle,
        docker: &DockerControl,
        (incoming, top): (&Path, &Path),
        member: &str,
        to: &ReplayTo,
    ) -> Result<ReplayOutcome, String> {
        let target = utc(to.target_ms);
        match self.seal_archive(job).await {
            Ok(()) => {}
            Err(e) if to.archived_until_ms.is_some_and(|at| at >= to.target_ms) => {
                job.step(format!(
                    "no transaction could be archived now ({e}); the archive has WAL written after {target} already"
                ))
                .await;
            }
            Err(e) => {
                return Err(format!(
                    "the archive may not hold all WAL up to {target}, and none could be archived now: {e}"
                ))
            }
        }
        let at = crate::datetime::postgres_utc(to.target_ms)
            .map(ReplayTarget::Time)
            .ok_or_else(|| format!("{target} cannot be written as a recovery target"))?;
        job.step(format!(
            "replaying the WAL archive up to {target} in an isolated PostgreSQL ({})",
            replay::CONTAINER
        ))
        .await;
        let plan = self
            .replay_plan(docker, (incoming, top), member, Some(to.archive.clone()), at)
            .await?;
        self.replay_staged(job, docker, &plan, &format!("replayed to {target}"))
            .await
    }

    /// A hot base backup restored as of its own time: replay only the WAL it
    /// holds, until it is consistent, then promote (no WAL archive needed).
    pub(super) async fn replay_to_consistency(
        &self,
        job: &JobHandle,
        docker: &DockerControl,
        (incoming, top): (&Path, &Path),
        m: &crate::backup::Manifest,
    ) -> Result<ReplayOutcome, String> {
        job.step(format!(
            "replaying the backup's own WAL until it is consistent ({}) in an isolated PostgreSQL ({})",
            m.consistent_lsn,
            replay::CONTAINER
        ))
        .await;
        let plan = self
            .replay_plan(docker, (incoming, top), &m.member, None, ReplayTarget::Consistent)
            .await?;
        self.replay_staged(job, docker, &plan, "replayed to its consistent point")
            .await
    }

    async fn replay_plan(
        &self,
        docker: &DockerControl,
        (incoming, top): (&Path, &Path),
        member: &str,
        archive: Option<PathBuf>,
        target: ReplayTarget,
    ) -> Result<ReplayPlan, String> {
        Ok(ReplayPlan {
            incoming: incoming.to_path_buf(),
            data_dir: top.to_path_buf(),
            archive,
            target,
            owner: crate::off_thread({
                let top = top.to_path_buf();
                move || crate::restore::swap::owner(&top)
            })
            .await
            .map_err(|e| format!("cannot read {}: {e}", top.display()))?,
            image: docker.image_of(member).await.map_err(|e| e.to_string())?,
            timeout: Duration::from_secs(self.reinit.restore_timeout_secs.max(60)),
        })
    }

    /// Run the replay; `what` starts the sentence saying where it went.
    async fn replay_staged(
        &self,
        job: &JobHandle,
        docker: &DockerControl,
        plan: &ReplayPlan,
        what: &str,
    ) -> Result<ReplayOutcome, String> {
        let t0 = Instant::now();
        let done = replay::replay(docker, plan).await?;
        let said = format!(
            "{what} in {:.1} s ({}), now timeline {}",
            t0.elapsed().as_secs_f64(),
            done.stopped,
            done.timeline
        );
        job.step(format!(
            "{said}; the replayed copy has {} tables and {} rows",
            done.counts.tables, done.counts.rows
        ))
        .await;
        Ok(ReplayOutcome {
            table_rows: done.counts.table_rows,
            said,
        })
    }

    /// One transaction on the leader, then wait until pg-wal has written it:
    /// the archive holds a commit from after the target, where the replay
    /// stops, and every WAL record before it.
    async fn seal_archive(&self, job: &JobHandle) -> Result<(), String> {
        let probe = self.probe.as_ref().ok_or("the console has no database credentials")?;
        let slot = self
            .wal_archive
            .as_ref()
            .map(|w| w.settings().slot.clone())
            .ok_or("the WAL archive is not watched")?;
        job.step("writing one transaction on the leader and waiting until pg-wal has archived it")
            .await;
        let cfg = probe.config(&probe.host, probe.port, Duration::from_secs(2), "pg-console-pitr");
        let (client, conn) = cfg
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("cannot reach the leader through the write endpoint: {e}"))?;
        tokio::spawn(conn);
        let fail = |e: tokio_postgres::Error| format!("the leader refused: {e}");
        client.query_one("SELECT txid_current()", &[]).await.map_err(fail)?;
        let lsn: String = client
            .query_one("SELECT pg_current_wal_lsn()::text", &[])
            .await
            .map_err(fail)?
            .get(0);
        let deadline = Instant::now() + SEAL_TIMEOUT;
        loop {
            let has: bool = client
                .query_one(
                    "SELECT coalesce(bool_or(r.write_lsn >= $1::text::pg_lsn), false) \
                     FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid \
                     WHERE s.slot_name::text = $2",
                    &[&lsn, &slot],
                )
                .await
                .map_err(fail)?
                .get(0);
            if has {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "pg-wal did not archive WAL {lsn} within {} s (is it receiving?)",
                    SEAL_TIMEOUT.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
