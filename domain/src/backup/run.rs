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

use super::archive::{measure, Compression};
use super::frames::FrameStore;
use super::{journal, pg_control, retention, BackupSettings, Manifest};
use crate::audit::AuditResult;
use crate::docker::DockerControl;
use crate::operations::{JobHandle, OperationService};

fn data_dir_of(s: &BackupSettings, member: &str) -> (String, PathBuf) {
    let top = crate::naming::data_dir_name(member);
    (top.clone(), s.stack_data_dir.join("pg").join(top))
}

impl OperationService {
    pub(crate) async fn run_backup(
        &self,
        job: &JobHandle,
        req: &OpRequest,
        before: &Topology,
    ) -> Result<String, String> {
        let s = self.backup.clone().ok_or("backups are not configured (backups_dir)")?;
        let m = req.member.clone();
        let compression = Compression::from_request(req.compression.as_deref())?;
        let (top, src) = data_dir_of(&s, &m);
        let (files, bytes) = crate::off_thread({
            let src = src.clone();
            move || measure(&src)
        })
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
            "{m}'s data directory: {files} files, {} MB to archive (recycled WAL not counted)",
            bytes / 1_048_576
        ))
        .await;
        let docker = DockerControl::connect().await.map_err(|e| e.to_string())?;
        let member = before.members.iter().find(|x| x.name == m).cloned();
        let mut manifest = Manifest::new(&job.id, &self.cluster_name, &m, compression, &job.user());
        manifest.patroni_version = member.as_ref().and_then(|x| x.patroni_version.clone());
        manifest.postgres_version = member.as_ref().and_then(|x| x.server_version.clone());
        let staging = staging_root(&s.backups_dir, bytes).join(&job.id);
        // Listed as running from now on; a console that dies before the end
        // leaves this for its successor to mark failed.
        manifest
            .save(&s.backups_dir)
            .map_err(|e| format!("cannot write the manifest in {}: {e}", s.backups_dir.display()))?;

        // While the replica runs: a restartpoint (so its shutdown has little
        // to flush), then every file compressed in chunks; only the chunks
        // that change after that are compressed again while it is stopped.
        if let Some(note) = self.restartpoint(member.as_ref()).await {
            job.step(note).await;
        }
        // The restartpoint recycled WAL segments, which are not archived.
        let bytes = crate::off_thread({
            let src = src.clone();
            move || measure(&src)
        })
        .await
        .map_or(bytes, |(_, b)| b);
        job.step(format!(
            "compressing {top} while {m} runs (what changes is compressed again while it is stopped)"
        ))
        .await;
        let p0 = Instant::now();
        let first = {
            let (src2, spill, publish) = (src.clone(), staging.clone(), job.progress_sink());
            tokio::task::spawn_blocking(move || {
                let (mut last, mut full) = (Instant::now() - Duration::from_secs(1), false);
                FrameStore::precompress(&src2, &spill, compression, |done, f| {
                    // Every 200 ms, and once at 100%.
                    if last.elapsed() >= Duration::from_millis(200) || (done >= bytes && !full) {
                        last = Instant::now();
                        full = done >= bytes;
                        let rate = (done as f64 / p0.elapsed().as_secs_f64().max(0.001)) as u64;
                        publish(Progress {
                            phase: "compressing while the replica runs".into(),
                            bytes_done: done.min(bytes),
                            bytes_total: bytes,
                            files: f,
                            rate_bytes_per_s: rate,
                            eta_s: (rate > 0).then(|| bytes.saturating_sub(done) / rate),
                        });
                    }
                })
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| format!("reading {top} failed: {e}")))
        };
        let (frames, first) = match first {
            Ok(x) => x,
            Err(e) => {
                crate::remove_tree(staging.clone()).await;
                fail(&mut manifest, &s.backups_dir, &e).await;
                return Err(e);
            }
        };
        manifest.phase("compress while running", p0.elapsed());
        manifest.compressed_while_running = (first.files, first.bytes);
        let mut frames = Some(frames);

        if let Err(e) = journal::write(&s.backups_dir, &job.id, &m) {
            let e = format!("cannot write the backup journal, {m} was not stopped: {e}");
            fail(&mut manifest, &s.backups_dir, &e).await;
            return Err(e);
        }
        let stopped_at = Instant::now();
        let settled = async {
            job.step(format!("stopping {m} (clean shutdown, up to 120 s)")).await;
            // PostgreSQL is down (and its data directory final) as soon as the
            // postmaster has removed its pid file after a clean shutdown; the
            // container's Patroni takes a little longer to exit. The changed
            // chunks are compressed meanwhile; the container is started only
            // once it has stopped completely.
            let stopping = {
                let (docker, m) = (docker.clone(), m.clone());
                tokio::spawn(async move { docker.stop(&m, 120).await })
            };
            while !stopping.is_finished() && !pg_is_down(&src) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            manifest.phase("stop", stopped_at.elapsed());
            let control = if stopping.is_finished() {
                None
            } else {
                Some(pg_control::read(&src).map_err(|e| format!("cannot read pg_control: {e}"))?)
            };
            job.step(format!("compressing what changed in {top} while {m} is down"))
                .await;
            let c0 = Instant::now();
            let (src2, mut store) = (src.clone(), frames.take().expect("frames from the first pass"));
            let (store, delta) = tokio::task::spawn_blocking(move || {
                let r = store.settle(&src2);
                (store, r)
            })
            .await
            .map_err(|e| e.to_string())?;
            frames = Some(store);
            // PostgreSQL shut down cleanly and what changed is compressed; the
            // container's Patroni is only tidying up its own exit (about 2 s
            // of Python teardown). It already stopped PostgreSQL and will not
            // start it again, so end it now rather than wait.
            if !stopping.is_finished() && pg_is_down(&src) {
                docker.kill(&m).await.map_err(|e| e.to_string())?;
            }
            stopping.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
            let delta = delta.map_err(|e| format!("reading {top} failed: {e}"))?;
            manifest.phase("compress changes while down", c0.elapsed());
            manifest.compressed_while_stopped = (delta.files, delta.bytes);
            manifest.recycled_wal_skipped = (delta.recycled_wal_files, delta.recycled_wal_bytes);
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
            if s.test_delay_after_stop_ms > 0 {
                tokio::time::sleep(Duration::from_millis(s.test_delay_after_stop_ms)).await;
            }
            Ok::<_, String>(after)
        }
        .await;
        // Whatever happened, the replica runs again.
        job.step(format!("starting {m}")).await;
        let started = docker.start(&m).await;
        let downtime = stopped_at.elapsed();
        if started.is_ok() {
            let _ = journal::remove(&s.backups_dir, &job.id);
        }
        manifest.replica_downtime_ms = downtime.as_millis() as u64;
        let control = match (settled, started) {
            (Ok(c), Ok(())) => c,
            (settled, started) => {
                crate::remove_tree(staging.clone()).await;
                let reason = settled
                    .err()
                    .or(started.err().map(|e| e.to_string()))
                    .unwrap_or_default();
                fail(&mut manifest, &s.backups_dir, &reason).await;
                return Err(reason);
            }
        };
        manifest.system_identifier = control.system_identifier.to_string();
        manifest.timeline = control.timeline;
        manifest.checkpoint_lsn = model::topology::format_lsn(control.checkpoint_lsn);
        manifest.redo_lsn = model::topology::format_lsn(control.redo_lsn);

        job.step(format!(
            "archiving {top} ({:?}); {m} was down {:.1} s",
            compression,
            downtime.as_secs_f64()
        ))
        .await;
        let dest = s.backups_dir.join(manifest.archive_name());
        let a0 = Instant::now();
        let archived = {
            let store = frames.take().expect("frames settled while the replica was down");
            let (dst, top2, jobs) = (dest.clone(), top.clone(), job.progress_sink());
            let test_hold_ms = s.test_delay_in_archive_ms;
            tokio::task::spawn_blocking(move || {
                let start = Instant::now();
                let mut last = Instant::now() - Duration::from_secs(1);
                let mut hold = Duration::from_millis(test_hold_ms);
                store.write_archive(&top2, &dst, |done, f| {
                    if !hold.is_zero() {
                        std::thread::sleep(std::mem::take(&mut hold));
                    }
                    if last.elapsed() >= Duration::from_millis(200) || done == bytes {
                        last = Instant::now();
                        let rate = (done as f64 / start.elapsed().as_secs_f64().max(0.001)) as u64;
                        let eta = (rate > 0).then(|| bytes.saturating_sub(done) / rate);
                        jobs(Progress {
                            phase: "archiving".into(),
                            bytes_done: done,
                            bytes_total: bytes,
                            files: f,
                            rate_bytes_per_s: rate,
                            eta_s: eta,
                        });
                    }
                })
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| format!("archiving failed: {e}")))
        };
        crate::remove_tree(staging.clone()).await;
        let info = match archived {
            Ok(i) => i,
            Err(e) => {
                fail(&mut manifest, &s.backups_dir, &e).await;
                return Err(e);
            }
        };
        manifest.phase("archive", a0.elapsed());
        manifest.complete(info);
        manifest
            .save(&s.backups_dir)
            .map_err(|e| format!("cannot write the manifest: {e}"))?;

        job.step(format!("waiting until {m} streams again with lag ~0 (at most 1 MiB)"))
            .await;
        let w0 = Instant::now();
        let publish = job.progress_sink();
        let caught_up = loop {
            let t = self.patroni.topology().await;
            let member = t
                .members
                .iter()
                .find(|x| x.name == m && x.reachable && x.state == "streaming");
            if let Some(x) = member {
                publish(Progress {
                    phase: format!(
                        "catching up: lag {} bytes",
                        x.lag_bytes.map_or("?".into(), |l| l.to_string())
                    ),
                    bytes_done: 0,
                    bytes_total: 0,
                    files: 0,
                    rate_bytes_per_s: 0,
                    eta_s: None,
                });
                if x.caught_up() {
                    break true;
                }
            }
            if w0.elapsed() > Duration::from_secs(300) {
                break false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        manifest.phase("catch-up", w0.elapsed());
        // The archive is listed (and may be being verified) by now: change only this job's field.
        let phases = manifest.phases_ms.clone();
        super::update(&s.backups_dir, &job.id, |m| m.phases_ms = phases)
            .map_err(|e| format!("cannot write the manifest: {e}"))?;
        let summary = format!(
            "{} ({} MB, sha256 {}…); {m} was down {:.1} s",
            manifest.archive_name(),
            manifest.archive_bytes / 1_048_576,
            &manifest.sha256[..12],
            downtime.as_secs_f64()
        );
        if !s.retention.is_off() {
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
                        .params(
                            serde_json::json!({ "rule": s.retention.describe(), "started_at_ms": old.started_at_ms }),
                        ),
                    Err(err) => job.entry("backup_retention_delete", AuditResult::Failed).error(&err),
                };
                self.log(e).await;
            }
        }
        if caught_up {
            Ok(summary)
        } else {
            Err(format!("{summary}, but it has not caught up within 300 s"))
        }
    }
}

impl OperationService {
    /// Best effort: a CHECKPOINT on the leader (a checkpoint record to
    /// replay), then one on the replica, which makes it a restartpoint, so
    /// the replica's shutdown has little left to write. A note for the job.
    async fn restartpoint(&self, replica: Option<&model::Member>) -> Option<String> {
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
                "restartpoint on {} (CHECKPOINT) in {:.1} s, so its shutdown is short",
                replica.name,
                t0.elapsed().as_secs_f64()
            ),
            Ok(Err(e)) => format!(
                "no restartpoint on {} ({e}); its shutdown may take longer",
                replica.name
            ),
            Err(_) => format!("no restartpoint on {} within 60 s; going on", replica.name),
        })
    }
}

/// No postmaster.pid and pg_control says shut down (in recovery): the data
/// directory is final: what is read now is a consistent cold copy.
fn pg_is_down(data: &Path) -> bool {
    !data.join("postmaster.pid").exists() && pg_control::read(data).is_ok_and(|c| c.is_clean_shutdown())
}

/// In memory (tmpfs) when it fits comfortably.
const SHM_STAGING: &str = "/dev/shm/pg-console-staging";

/// Where the compressed frames are spilled. They are read once more to
/// write the archive and then deleted, so on disk their writeback would only
/// compete with the archive's fsync; they go to tmpfs when it could hold
/// them even if nothing compressed (twice the data free, and the data under
/// a quarter of the available memory), else to `backups_dir/.staging`.
fn staging_root(backups_dir: &Path, data_bytes: u64) -> PathBuf {
    let shm = Path::new(SHM_STAGING);
    let fits = super::free_bytes(shm).is_some_and(|f| f / 2 > data_bytes)
        && mem_available_bytes().is_some_and(|m| m / 4 > data_bytes);
    if fits {
        shm.to_path_buf()
    } else {
        backups_dir.join(".staging")
    }
}

fn mem_available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Remove leftovers of a backup that did not finish.
/// Records the failure and removes what was written, off the async threads.
async fn fail(manifest: &mut Manifest, dir: &Path, reason: &str) {
    let (mut m, dir, reason) = (manifest.clone(), dir.to_path_buf(), reason.to_string());
    *manifest = crate::off_thread(move || {
        m.fail(&dir, &reason);
        m
    })
    .await;
}

pub fn clean_partial(backups_dir: &Path, id: &str) {
    let _ = std::fs::remove_dir_all(backups_dir.join(".staging").join(id));
    let _ = std::fs::remove_dir_all(Path::new(SHM_STAGING).join(id));
    if let Ok(rd) = std::fs::read_dir(backups_dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if n.contains(id) && n.ends_with(".partial") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
