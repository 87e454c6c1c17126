//! The point-in-time part of a restore's run (`restore_run.rs` drives the
//! rest): make sure the archive holds WAL past the target, then replay the
//! staged backup up to it (`crate::restore::replay`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::jobs::JobHandle;
use super::OperationService;
use crate::datetime::human_utc as utc;
use crate::docker::DockerControl;
use crate::restore::replay::{self, ReplayPlan};

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
        job.step(format!(
            "replaying the WAL archive up to {target} in an isolated PostgreSQL ({})",
            replay::CONTAINER
        ))
        .await;
        let plan = ReplayPlan {
            incoming: incoming.to_path_buf(),
            data_dir: top.to_path_buf(),
            archive: to.archive.clone(),
            target: crate::datetime::postgres_utc(to.target_ms),
            owner: crate::off_thread({
                let top = top.to_path_buf();
                move || crate::restore::swap::owner(&top)
            })
            .await
            .map_err(|e| format!("cannot read {}: {e}", top.display()))?,
            image: docker.image_of(member).await.map_err(|e| e.to_string())?,
            timeout: Duration::from_secs(self.reinit.restore_timeout_secs.max(60)),
        };
        let t0 = Instant::now();
        let done = replay::replay(docker, &plan).await?;
        let said = format!(
            "replayed to {target} in {:.1} s ({}), now timeline {}",
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
