//! The backup as an operation: compress the replica's data directory while
//! it runs, stop it, compress again what changed, start it, write the
//! archive from those frames, write the manifest, wait for catch-up.
//! Whatever fails, the replica is started again and temporary files are
//! removed; a journal entry written before the stop lets a restarted
//! console finish that job if the console itself died.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use model::operations::{OpRequest, Progress};
use model::Topology;

use super::archive::measure;
use super::frames::FrameStore;
use super::pg_control::ControlData;
use super::staging::staging_root;
use super::{journal, pg_control, BackupSettings, Manifest};
use crate::docker::DockerControl;
use crate::operations::{JobHandle, OperationService};

/// How long a backed-up replica may take to catch up before the job says so.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(300);

impl OperationService {
    pub(crate) async fn run_backup(
        &self,
        job: &JobHandle,
        req: &OpRequest,
        before: &Topology,
    ) -> Result<String, String> {
        let mut run = BackupRun::prepare(self, job, req).await?;
        let taken = run.take(before).await;
        crate::remove_tree(run.staging.clone()).await;
        let downtime = match taken {
            Ok(d) => d,
            Err(e) => {
                fail(&mut run.manifest, &run.s.backups_dir, &e).await;
                return Err(e);
            }
        };
        let caught_up = run.catch_up().await?;
        let m = &run.manifest;
        let summary = format!(
            "{} ({} MB, sha256 {}…); {} was down {:.1} s",
            m.archive_name(),
            m.archive_bytes / 1_048_576,
            &m.sha256[..12],
            run.member,
            downtime.as_secs_f64()
        );
        super::after::apply_retention(self, job, &run.s).await;
        super::after::prune_wal_archive(self, job, &run.s).await;
        if caught_up {
            Ok(summary)
        } else {
            Err(format!(
                "{summary}, but it has not caught up within {} s",
                CATCH_UP_TIMEOUT.as_secs()
            ))
        }
    }
}

/// One backup as it runs: what it copies, where to, and its manifest.
struct BackupRun<'a> {
    svc: &'a OperationService,
    job: &'a JobHandle,
    s: BackupSettings,
    member: String,
    /// `pgN-data`, the archive's top folder.
    top: String,
    src: PathBuf,
    /// Where the compressed frames are spilled until the archive is written.
    staging: PathBuf,
    /// What is archived (recycled WAL not counted), for progress.
    bytes: u64,
    docker: DockerControl,
    manifest: Manifest,
}

impl<'a> BackupRun<'a> {
    /// Measure, check free space, and list the backup as running (a console
    /// that dies before the end leaves it for its successor to mark failed).
    async fn prepare(svc: &'a OperationService, job: &'a JobHandle, req: &OpRequest) -> Result<Self, String> {
        let s = svc.backup.clone();
        let OpRequest::Backup {
            member, compression, ..
        } = req.clone()
        else {
            return Err("not a backup request".into());
        };
        let top = crate::naming::data_dir_name(&member);
        let src = s.stack_data_dir.join("pg").join(&top);
        let (files, bytes) = measure_off_thread(&src)
            .await
            .map_err(|e| format!("cannot read {}: {e}", src.display()))?;
        let free = super::free_bytes(&s.backups_dir).unwrap_or(u64::MAX);
        if free < bytes.saturating_mul(2) {
            return Err(format!(
                "not enough free space in {}: {} MB free, about {} MB needed (compressed frames + archive, at worst)",
                s.backups_dir.display(),
                free / 1_048_576,
                bytes * 2 / 1_048_576
            ));
        }
        job.step(format!(
            "{member}'s data directory: {files} files, {} MB to archive (recycled WAL not counted)",
            bytes / 1_048_576
        ))
        .await;
        let docker = DockerControl::connect().await.map_err(|e| e.to_string())?;
        let manifest = Manifest::new(&job.id, &svc.cluster_name, &member, compression, &job.user());
        let staging = staging_root(&s.backups_dir, bytes).join(&job.id);
        manifest
            .save(&s.backups_dir)
            .map_err(|e| format!("cannot write the manifest in {}: {e}", s.backups_dir.display()))?;
        Ok(Self {
            svc,
            job,
            s,
            member,
            top,
            src,
            staging,
            bytes,
            docker,
            manifest,
        })
    }

    /// The archive, complete with its manifest saved; returns how long the
    /// replica was down. On error the caller cleans up and marks it failed.
    async fn take(&mut self, before: &Topology) -> Result<Duration, String> {
        let member = before.members.iter().find(|x| x.name == self.member).cloned();
        self.manifest.patroni_version = member.as_ref().and_then(|x| x.patroni_version.clone());
        self.manifest.postgres_version = member.as_ref().and_then(|x| x.server_version.clone());
        let frames = self.compress_while_running(member.as_ref()).await?;
        let (frames, control, downtime) = self.cold_copy(frames).await?;
        let m = &mut self.manifest;
        m.replica_downtime_ms = downtime.as_millis() as u64;
        m.system_identifier = control.system_identifier.to_string();
        m.timeline = control.timeline;
        m.checkpoint_lsn = model::topology::format_lsn(control.checkpoint_lsn);
        m.redo_lsn = model::topology::format_lsn(control.redo_lsn);
        self.archive(frames, downtime).await?;
        Ok(downtime)
    }

    /// While the replica runs: a restartpoint (so its shutdown has little
    /// to flush), then every file compressed in chunks; only the chunks
    /// that change after that are compressed again while it is stopped.
    async fn compress_while_running(&mut self, member: Option<&model::Member>) -> Result<FrameStore, String> {
        if let Some(note) = self.svc.restartpoint(member, "so its shutdown is short").await {
            self.job.step(note).await;
        }
        // The restartpoint recycled WAL segments, which are not archived.
        self.bytes = measure_off_thread(&self.src).await.map_or(self.bytes, |(_, b)| b);
        self.job
            .step(format!(
                "compressing {} while {} runs (what changes is compressed again while it is stopped)",
                self.top, self.member
            ))
            .await;
        let p0 = Instant::now();
        let (src, spill, bytes, publish) = (
            self.src.clone(),
            self.staging.clone(),
            self.bytes,
            self.job.progress_sink(),
        );
        let compression = self.manifest.compression;
        let (frames, first) = crate::off_thread(move || {
            let (mut last, mut full) = (Instant::now() - Duration::from_secs(1), false);
            FrameStore::precompress(&src, &spill, compression, |done, f| {
                // Every 200 ms, and once at 100%.
                if last.elapsed() >= Duration::from_millis(200) || (done >= bytes && !full) {
                    last = Instant::now();
                    full = done >= bytes;
                    publish(progress(
                        "compressing while the replica runs",
                        done.min(bytes),
                        bytes,
                        f,
                        p0,
                    ));
                }
            })
        })
        .await
        .map_err(|e| format!("reading {} failed: {e}", self.top))?;
        self.manifest.phase("compress while running", p0.elapsed());
        self.manifest.compressed_while_running = (first.files, first.bytes);
        Ok(frames)
    }

    /// Journal, stop the replica, compress what changed while it is down,
    /// start it again whatever happened. The frames and the pg_control they
    /// are consistent with, and how long the replica was down.
    async fn cold_copy(&mut self, frames: FrameStore) -> Result<(FrameStore, ControlData, Duration), String> {
        let m = self.member.clone();
        journal::write(&self.s.backups_dir, &self.job.id, &m)
            .map_err(|e| format!("cannot write the backup journal, {m} was not stopped: {e}"))?;
        let stopped_at = Instant::now();
        let settled = self.settle_while_down(frames, stopped_at).await;
        // Whatever happened, the replica runs again.
        self.job.step(format!("starting {m}")).await;
        let started = self.docker.start(&m).await;
        let downtime = stopped_at.elapsed();
        if started.is_ok() {
            let _ = journal::remove(&self.s.backups_dir, &self.job.id);
        }
        self.manifest.replica_downtime_ms = downtime.as_millis() as u64;
        match (settled, started) {
            (Ok((frames, control)), Ok(())) => Ok((frames, control, downtime)),
            (Err(e), _) => Err(e),
            (_, Err(e)) => Err(e.to_string()),
        }
    }

    async fn settle_while_down(
        &mut self,
        mut frames: FrameStore,
        stopped_at: Instant,
    ) -> Result<(FrameStore, ControlData), String> {
        let (m, src, top) = (self.member.clone(), self.src.clone(), self.top.clone());
        self.job
            .step(format!("stopping {m} (clean shutdown, up to 120 s)"))
            .await;
        // PostgreSQL is down (and its data directory final) as soon as the
        // postmaster has removed its pid file after a clean shutdown; the
        // container's Patroni takes a little longer to exit. The changed
        // chunks are compressed meanwhile; the container is started only
        // once it has stopped completely.
        let stopping = {
            let (docker, m) = (self.docker.clone(), m.clone());
            tokio::spawn(async move { docker.stop(&m, 120).await })
        };
        while !stopping.is_finished() && !pg_is_down(&src) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.manifest.phase("stop", stopped_at.elapsed());
        let control = if stopping.is_finished() {
            None
        } else {
            Some(pg_control::read(&src).map_err(|e| format!("cannot read pg_control: {e}"))?)
        };
        self.job
            .step(format!("compressing what changed in {top} while {m} is down"))
            .await;
        let c0 = Instant::now();
        let src2 = src.clone();
        let (frames, delta) = crate::off_thread(move || {
            let r = frames.settle(&src2);
            (frames, r)
        })
        .await;
        // PostgreSQL shut down cleanly and what changed is compressed; the
        // container's Patroni is only tidying up its own exit (about 2 s
        // of Python teardown). It already stopped PostgreSQL and will not
        // start it again, so end it now rather than wait.
        if !stopping.is_finished() && pg_is_down(&src) {
            self.docker.kill(&m).await.map_err(|e| e.to_string())?;
        }
        stopping.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
        let delta = delta.map_err(|e| format!("reading {top} failed: {e}"))?;
        self.manifest.phase("compress changes while down", c0.elapsed());
        self.manifest.compressed_while_stopped = (delta.files, delta.bytes);
        self.manifest.recycled_wal_skipped = (delta.recycled_wal_files, delta.recycled_wal_bytes);
        // The frames are only good if PostgreSQL had shut down cleanly
        // before it started, and nothing started it again since.
        let after = pg_control::read(&src).map_err(|e| format!("cannot read pg_control: {e}"))?;
        let control = control.unwrap_or(after.clone());
        if !control.is_clean_shutdown() || !after.is_clean_shutdown() || after != control || !pg_is_down(&src) {
            return Err(format!(
                "{m} did not shut down cleanly (pg_control says {}): no backup",
                after.state_name()
            ));
        }
        Ok((frames, after))
    }

    /// The archive from the frames (sha256 while writing, fsync, rename),
    /// then the manifest marked complete.
    async fn archive(&mut self, frames: FrameStore, downtime: Duration) -> Result<(), String> {
        self.job
            .step(format!(
                "archiving {} ({}); {} was down {:.1} s",
                self.top,
                self.manifest.compression.name(),
                self.member,
                downtime.as_secs_f64()
            ))
            .await;
        let a0 = Instant::now();
        let (dst, top, publish) = (
            self.s.backups_dir.join(self.manifest.archive_name()),
            self.top.clone(),
            self.job.progress_sink(),
        );
        let bytes = self.bytes;
        let info = crate::off_thread(move || {
            let mut last = Instant::now() - Duration::from_secs(1);
            frames.write_archive(&top, &dst, |done, f| {
                if last.elapsed() >= Duration::from_millis(200) || done == bytes {
                    last = Instant::now();
                    publish(progress("archiving", done, bytes, f, a0));
                }
            })
        })
        .await
        .map_err(|e| format!("archiving failed: {e}"))?;
        self.manifest.phase("archive", a0.elapsed());
        self.manifest.complete(info);
        self.manifest
            .save(&self.s.backups_dir)
            .map_err(|e| format!("cannot write the manifest: {e}"))
    }

    /// Wait until the replica is healthy again ([`model::Member::caught_up`]),
    /// showing its lag; false after [`CATCH_UP_TIMEOUT`].
    async fn catch_up(&mut self) -> Result<bool, String> {
        let m = self.member.clone();
        self.job
            .step(format!(
                "waiting until {m} streams again, lagging at most {}",
                model::topology::human_bytes(model::topology::CAUGHT_UP_LAG_BYTES)
            ))
            .await;
        let w0 = Instant::now();
        let publish = self.job.progress_sink();
        let caught_up = loop {
            let t = self.svc.patroni.topology().await;
            if let Some(x) = t.members.iter().find(|x| x.name == m && x.streams()) {
                let lag = x.lag_bytes.map_or("?".into(), |l| l.to_string());
                publish(Progress {
                    phase: format!("catching up: lag {lag} bytes"),
                    ..progress("", 0, 0, 0, w0)
                });
                if x.caught_up() {
                    break true;
                }
            }
            if w0.elapsed() > CATCH_UP_TIMEOUT {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        self.manifest.phase("catch-up", w0.elapsed());
        // The archive is listed (and may be being verified) by now: change only this job's field.
        let phases = self.manifest.phases_ms.clone();
        super::update(&self.s.backups_dir, &self.job.id, |m| m.phases_ms = phases)
            .map_err(|e| format!("cannot write the manifest: {e}"))?;
        Ok(caught_up)
    }
}

/// A progress report: `done` of `total` bytes after `files` files, since `since`.
pub(super) fn progress(phase: &str, done: u64, total: u64, files: u64, since: Instant) -> Progress {
    let rate = (done as f64 / since.elapsed().as_secs_f64().max(0.001)) as u64;
    Progress {
        phase: phase.into(),
        bytes_done: done,
        bytes_total: total,
        files,
        rate_bytes_per_s: rate,
        eta_s: (rate > 0).then(|| total.saturating_sub(done) / rate),
    }
}

pub(super) async fn measure_off_thread(src: &Path) -> std::io::Result<(u64, u64)> {
    let src = src.to_path_buf();
    crate::off_thread(move || measure(&src)).await
}

impl OperationService {
    /// Best effort: a CHECKPOINT on the leader (a checkpoint record to
    /// replay), then one on the replica, which makes it a restartpoint: a
    /// cold snapshot's shutdown has little left to write, a hot base backup
    /// starts from a recent redo point. A note for the job, ending in `why`.
    pub(super) async fn restartpoint(&self, replica: Option<&model::Member>, why: &str) -> Option<String> {
        let probe = self.probe.clone()?;
        let replica = replica?;
        let connect = |host: String, port: u16| {
            let probe = probe.clone();
            async move {
                let cfg = probe.config(&host, port, Duration::from_secs(3), "pg-console-backup");
                let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
                tokio::spawn(conn);
                Ok::<_, String>(client)
            }
        };
        let both = async {
            let leader = connect(probe.host.clone(), probe.port).await?;
            leader.batch_execute("CHECKPOINT").await.map_err(|e| e.to_string())?;
            let lsn: String = leader
                .query_one("SELECT pg_current_wal_lsn()::text", &[])
                .await
                .map_err(|e| e.to_string())?
                .get(0);
            // A restartpoint happens at the last checkpoint record replayed:
            // wait (briefly) until the replica has replayed the leader's.
            let replica = connect(replica.host.clone(), replica.port.unwrap_or(5432)).await?;
            for _ in 0..200 {
                let replayed: Option<bool> = replica
                    .query_one("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", &[&lsn])
                    .await
                    .map_err(|e| e.to_string())?
                    .get(0);
                if replayed == Some(true) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            replica.batch_execute("CHECKPOINT").await.map_err(|e| e.to_string())
        };
        let t0 = Instant::now();
        Some(match tokio::time::timeout(Duration::from_secs(60), both).await {
            Ok(Ok(())) => format!(
                "restartpoint on {} (CHECKPOINT) in {:.1} s, {why}",
                replica.name,
                t0.elapsed().as_secs_f64()
            ),
            Ok(Err(e)) => format!("no restartpoint on {} ({e}); going on", replica.name),
            Err(_) => format!("no restartpoint on {} within 60 s; going on", replica.name),
        })
    }
}

/// No postmaster.pid and pg_control says shut down (in recovery): the data
/// directory is final: what is read now is a consistent cold copy.
fn pg_is_down(data: &Path) -> bool {
    !data.join("postmaster.pid").exists() && pg_control::read(data).is_ok_and(|c| c.is_clean_shutdown())
}

/// Records the failure and removes what was written, off the async threads.
pub(super) async fn fail(manifest: &mut Manifest, dir: &Path, reason: &str) {
    let (mut m, dir, reason) = (manifest.clone(), dir.to_path_buf(), reason.to_string());
    *manifest = crate::off_thread(move || {
        m.fail(&dir, &reason);
        m
    })
    .await;
}
