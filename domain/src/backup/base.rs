//! Hot base backups: `pg_basebackup` from a running replica over the
//! replication protocol, in a throwaway container of the nodes' image on
//! the host network (`pg-console-basebackup`), with the WAL that makes the
//! copy consistent (`-X stream`) and a backup manifest with SHA-256
//! checksums. `pg_verifybackup` then checks every file and that WAL against
//! that manifest (no network), and the copy is archived like a cold
//! snapshot (`pgN-data/` in a tar.zst or tar.gz, sha256, manifest). Nothing
//! is stopped; on any failure the partial copy is removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use model::backups::BackupKind;
use model::operations::OpRequest;
use model::Topology;

use super::base_files::{parse_label, wal_end};
use super::frames::FrameStore;
use super::run::{fail, measure_off_thread, progress};
use super::staging::staging_root;
use super::{pg_control, Manifest};
use crate::docker::{DockerControl, ScratchNetwork};
use crate::operations::{JobHandle, OperationService};

/// The scratch container's name (one backup at a time: under the cluster lock).
pub const CONTAINER: &str = "pg-console-basebackup";
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The copy's folder inside the container.
const INSIDE: &str = "/backup";
const PASSFILE: &str = ".pgpass";
/// A copy that has not grown for this long is ended.
const STALLED: Duration = Duration::from_secs(300);

/// The login `pg_basebackup` uses (the stack's replication user). The
/// password reaches `pg_basebackup` only through a passfile (mode 600) in
/// the backup's own work folder, deleted as soon as the copy is taken.
#[derive(Clone)]
pub struct ReplicationLogin {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for ReplicationLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReplicationLogin {{ user: {:?}, password: <redacted> }}", self.user)
    }
}

impl OperationService {
    pub(crate) async fn run_base_backup(
        &self,
        job: &JobHandle,
        req: &OpRequest,
        before: &Topology,
    ) -> Result<String, String> {
        let OpRequest::BaseBackup { member, compression } = req.clone() else {
            return Err("not a base backup request".into());
        };
        let s = self.backup.clone();
        let login = s.replication.clone().ok_or(
            "the console has no replication login (PG_REPLICATION_PASSWORD in the stack's secrets file): add it and restart the console",
        )?;
        let docker = DockerControl::connect().await.map_err(|e| e.to_string())?;
        let mut m = Manifest::new(&job.id, &self.cluster_name, &member, compression, &job.user());
        m.kind = BackupKind::Base;
        let x = before.members.iter().find(|x| x.name == member).cloned();
        m.patroni_version = x.as_ref().and_then(|x| x.patroni_version.clone());
        m.postgres_version = x.as_ref().and_then(|x| x.server_version.clone());
        let x = x.ok_or_else(|| format!("{member} is not a member"))?;
        m.save(&s.backups_dir)
            .map_err(|e| format!("cannot write the manifest in {}: {e}", s.backups_dir.display()))?;
        let work = s.backups_dir.join(".staging").join(&job.id);
        let run = BaseRun {
            svc: self,
            job,
            docker: &docker,
            top: crate::naming::data_dir_name(&member),
            member: member.clone(),
            work: work.clone(),
            login,
        };
        let taken = run.take(&x, &mut m).await;
        let _ = docker.remove(CONTAINER).await;
        crate::remove_tree(work).await;
        if let Err(e) = taken {
            fail(&mut m, &s.backups_dir, &e).await;
            return Err(e);
        }
        super::after::apply_retention(self, job, &s).await;
        super::after::prune_wal_archive(self, job, &s).await;
        Ok(format!(
            "{} ({} MB, sha256 {}…), verified with pg_verifybackup; consistent at {} on timeline {}; no container was stopped",
            m.archive_name(),
            m.archive_bytes / 1_048_576,
            &m.sha256[..12],
            m.consistent_lsn,
            m.timeline
        ))
    }
}

/// One base backup as it runs.
struct BaseRun<'a> {
    svc: &'a OperationService,
    job: &'a JobHandle,
    docker: &'a DockerControl,
    member: String,
    /// `pgN-data`: the copy's folder in the work folder and in the archive.
    top: String,
    /// `backups_dir/.staging/<id>`: the copy (bind-mounted into the
    /// container), its passfile, and the compressed frames.
    work: PathBuf,
    login: ReplicationLogin,
}

impl BaseRun<'_> {
    async fn take(&self, x: &model::Member, m: &mut Manifest) -> Result<(), String> {
        let src = self.svc.backup.stack_data_dir.join("pg").join(&self.top);
        let owner = crate::restore::swap::owner(&src).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
        let (_, estimate) = measure_off_thread(&src).await.unwrap_or((0, 0));
        let free = super::free_bytes(&self.svc.backup.backups_dir).unwrap_or(u64::MAX);
        if free < estimate.saturating_mul(2) {
            return Err(format!(
                "not enough free space in {}: {} MB free, about {} MB needed (the copy and its archive)",
                self.svc.backup.backups_dir.display(),
                free / 1_048_576,
                estimate * 2 / 1_048_576
            ));
        }
        // Its time counts: the backup is consistent only after what follows it.
        let r0 = Instant::now();
        if let Some(note) = self
            .svc
            .restartpoint(Some(x), "so the backup starts from a recent redo point")
            .await
        {
            self.job.step(note).await;
        }
        m.phase("restartpoint", r0.elapsed());
        let t0 = Instant::now();
        let work = self.prepare_work(owner).await?;
        self.copy(x, &work, owner, estimate).await?;
        m.phase("pg_basebackup", t0.elapsed());
        let copy = work.join(&self.top);
        let v0 = Instant::now();
        let verified = self.verify(&work, owner).await?;
        m.phase("pg_verifybackup", v0.elapsed());
        self.job.step(format!("pg_verifybackup: {verified}")).await;
        self.describe(&copy, m).await?;
        self.archive(&copy, m).await
    }

    /// The work folder, owned by the data's owner (the container writes as
    /// it), and the passfile in it.
    async fn prepare_work(&self, (uid, gid): (u32, u32)) -> Result<PathBuf, String> {
        let (work, login) = (self.work.clone(), self.login.clone());
        crate::off_thread(move || -> std::io::Result<PathBuf> {
            use std::io::Write;
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let _ = std::fs::remove_dir_all(&work);
            std::fs::create_dir_all(&work)?;
            std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o700))?;
            let pass = work.join(PASSFILE);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&pass)?;
            // host:port:database:user:password, `\` and `:` escaped.
            let esc = |v: &str| v.replace('\\', "\\\\").replace(':', "\\:");
            writeln!(f, "*:*:*:{}:{}", esc(&login.user), esc(&login.password))?;
            for p in [&work, &pass] {
                std::os::unix::fs::lchown(p, Some(uid), Some(gid))?;
            }
            std::fs::canonicalize(&work)
        })
        .await
        .map_err(|e| format!("cannot prepare {}: {e}", self.work.display()))
    }

    /// `pg_basebackup` into `work/pgN-data`, with its progress (the copy's
    /// size against the replica's) published every half second.
    async fn copy(&self, x: &model::Member, work: &Path, (uid, gid): (u32, u32), estimate: u64) -> Result<(), String> {
        let port = x
            .port
            .ok_or_else(|| format!("{} has no known PostgreSQL port", x.name))?;
        self.job
            .step(format!(
                "pg_basebackup from {} ({}:{port}) over the replication protocol, with the WAL it needs (-X stream) and SHA-256 checksums; nothing stops",
                x.name, x.host
            ))
            .await;
        let conn = format!(
            "host={} port={port} user={} passfile={INSIDE}/{PASSFILE} connect_timeout=10 application_name=pg-console-basebackup",
            x.host, self.login.user
        );
        let image = self.docker.image_of(&x.name).await.map_err(|e| e.to_string())?;
        let cmd = vec![
            format!("{PG_BIN}/pg_basebackup"),
            format!("--dbname={conn}"),
            format!("--pgdata={INSIDE}/{}", self.top),
            "--wal-method=stream".into(),
            "--checkpoint=fast".into(),
            "--manifest-checksums=SHA256".into(),
            "--label=pg-console base backup".into(),
            "--no-password".into(),
        ];
        self.docker
            .run_on_network(
                CONTAINER,
                &image,
                &[format!("{}:{INSIDE}", work.display())],
                &format!("{uid}:{gid}"),
                ScratchNetwork::Host,
                cmd,
            )
            .await
            .map_err(|e| e.to_string())?;
        let (copy, publish, t0) = (work.join(&self.top), self.job.progress_sink(), Instant::now());
        let (mut last, mut moved_at) = (0, Instant::now());
        let code = loop {
            if let Some(code) = self.docker.exit_code(CONTAINER).await.map_err(|e| e.to_string())? {
                break code;
            }
            let (files, done) = measure_off_thread(&copy).await.unwrap_or((0, 0));
            if done != last {
                (last, moved_at) = (done, Instant::now());
            } else if moved_at.elapsed() > STALLED {
                let _ = self.docker.remove(CONTAINER).await;
                return Err(format!(
                    "pg_basebackup copied nothing for {} s; it was ended (is {} reachable?)",
                    STALLED.as_secs(),
                    x.name
                ));
            }
            publish(progress(
                "pg_basebackup (the replica keeps running)",
                done.min(estimate),
                estimate,
                files,
                t0,
            ));
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let pass = work.join(PASSFILE);
        let _ = crate::off_thread(move || std::fs::remove_file(pass)).await;
        if code != 0 {
            let logs = self.docker.tail_logs(CONTAINER, 8).await;
            return Err(format!("pg_basebackup failed ({})", exit_reason(code, &logs)));
        }
        Ok(())
    }

    /// `pg_verifybackup` on the copy, in an isolated container (no network):
    /// every file's size and SHA-256 against the backup manifest, and the
    /// WAL parsed from start to end. Its one-line verdict.
    async fn verify(&self, work: &Path, (uid, gid): (u32, u32)) -> Result<String, String> {
        self.job
            .step("pg_verifybackup: every file and the WAL against the backup's manifest")
            .await;
        let image = self.docker.image_of(&self.member).await.map_err(|e| e.to_string())?;
        self.docker
            .run_isolated(
                CONTAINER,
                &image,
                &[format!("{}:{INSIDE}", work.display())],
                &format!("{uid}:{gid}"),
                vec![format!("{PG_BIN}/pg_verifybackup"), format!("{INSIDE}/{}", self.top)],
            )
            .await
            .map_err(|e| e.to_string())?;
        let code = loop {
            if let Some(code) = self.docker.exit_code(CONTAINER).await.map_err(|e| e.to_string())? {
                break code;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let said = self.docker.tail_logs(CONTAINER, 8).await;
        if code != 0 {
            return Err(format!(
                "pg_verifybackup found the copy damaged ({})",
                exit_reason(code, &said)
            ));
        }
        Ok(said
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or("ok")
            .to_string())
    }

    /// The manifest's identity fields from the copy's own files.
    async fn describe(&self, copy: &Path, m: &mut Manifest) -> Result<(), String> {
        let copy = copy.to_path_buf();
        let (label, end, control) = crate::off_thread(move || -> Result<_, String> {
            let read = |f: &str| std::fs::read_to_string(copy.join(f)).map_err(|e| format!("cannot read {f}: {e}"));
            let label = parse_label(&read("backup_label")?)?;
            let end = wal_end(&read("backup_manifest")?)?;
            let control = pg_control::read(&copy).map_err(|e| format!("cannot read the copy's pg_control: {e}"))?;
            Ok((label, end, control))
        })
        .await?;
        m.system_identifier = control.system_identifier.to_string();
        m.timeline = label.timeline;
        m.redo_lsn = label.start_lsn;
        m.checkpoint_lsn = label.checkpoint_lsn;
        m.consistent_lsn = end;
        Ok(())
    }

    /// The copy into the archive: compressed in parallel, then written
    /// (sha256 while writing, fsync, rename); the manifest marked complete.
    async fn archive(&self, copy: &Path, m: &mut Manifest) -> Result<(), String> {
        let (_, bytes) = measure_off_thread(copy).await.map_err(|e| e.to_string())?;
        self.job
            .step(format!(
                "archiving {} ({}, {} MB)",
                self.top,
                m.compression.name(),
                bytes / 1_048_576
            ))
            .await;
        let a0 = Instant::now();
        let dir = self.svc.backup.backups_dir.clone();
        let (src, spill, dst, top, publish, compression) = (
            copy.to_path_buf(),
            staging_root(&dir, bytes).join(&self.job.id),
            dir.join(m.archive_name()),
            self.top.clone(),
            self.job.progress_sink(),
            m.compression,
        );
        let spill2 = spill.clone();
        let info = crate::off_thread(move || -> std::io::Result<_> {
            let mut last = Instant::now() - Duration::from_secs(1);
            let mut each = |phase: &str, done: u64, f: u64| {
                if last.elapsed() >= Duration::from_millis(200) || done == bytes {
                    last = Instant::now();
                    publish(progress(phase, done.min(bytes), bytes, f, a0));
                }
            };
            let (mut frames, _) =
                FrameStore::precompress(&src, &spill2, compression, |d, f| each("compressing", d, f))?;
            frames.settle(&src)?;
            frames.write_archive(&top, &dst, |d, f| each("archiving", d, f))
        })
        .await;
        crate::remove_tree(spill).await;
        let info = info.map_err(|e| format!("archiving failed: {e}"))?;
        m.phase("archive", a0.elapsed());
        m.complete(info);
        m.save(&dir).map_err(|e| format!("cannot write the manifest: {e}"))
    }
}

/// How a tool's container ended, for the job's error: its exit code, what
/// a signal exit means, and its last output lines.
fn exit_reason(code: i64, logs: &str) -> String {
    let signal = match code {
        137 => ", killed (SIGKILL)",
        143 => ", terminated (SIGTERM)",
        _ => "",
    };
    let said: Vec<&str> = logs.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if said.is_empty() {
        format!("exit {code}{signal}, no output")
    } else {
        format!("exit {code}{signal}: {}", said.join(" | "))
    }
}

/// At start or shutdown: remove the base backup's container this console
/// left running (a `pg_basebackup` only reads from its replica: ending it
/// changes nothing there; the backup itself is marked failed by
/// [`super::fail_orphaned`]). Its copy goes to this console's
/// `backups_dir/.staging`: a container bound elsewhere is another console's
/// (a second console on the same engine), and is left alone.
pub async fn remove_leftover(docker: &DockerControl, backups_dir: &Path) -> Option<String> {
    let ours = backups_dir.join(".staging");
    match docker.inspect_if_exists(CONTAINER).await {
        Ok(Some(info)) if copies_into(&info, &ours) => Some(match docker.remove(CONTAINER).await {
            Ok(()) => format!("removed {CONTAINER}, left by an interrupted hot base backup"),
            Err(e) => format!("cannot remove {CONTAINER} (an interrupted hot base backup's): {e}"),
        }),
        _ => None,
    }
}

/// Whether the container's bind mounts include a folder under `staging`.
fn copies_into(info: &bollard::models::ContainerInspectResponse, staging: &Path) -> bool {
    let binds = info.host_config.as_ref().and_then(|h| h.binds.as_ref());
    binds.is_some_and(|b| {
        b.iter()
            .filter_map(|bind| bind.split(':').next())
            .any(|source| Path::new(source).starts_with(staging))
    })
}

#[cfg(test)]
mod tests {
    use super::exit_reason;

    #[test]
    fn only_a_copy_into_this_consoles_staging_is_its_leftover() {
        use bollard::models::{ContainerInspectResponse, HostConfig};
        let with = |binds: &[&str]| ContainerInspectResponse {
            host_config: Some(HostConfig {
                binds: Some(binds.iter().map(|b| b.to_string()).collect()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ours = std::path::Path::new("/srv/backups/.staging");
        assert!(super::copies_into(
            &with(&["/srv/backups/.staging/20261201-1:/backup"]),
            ours
        ));
        assert!(!super::copies_into(
            &with(&["/srv/other/.staging/20261201-1:/backup"]),
            ours
        ));
        assert!(!super::copies_into(&with(&["/srv/backups/.staging-x/1:/backup"]), ours));
        assert!(!super::copies_into(&with(&[]), ours));
        assert!(!super::copies_into(&ContainerInspectResponse::default(), ours));
    }

    #[test]
    fn a_failed_tool_says_how_it_ended() {
        assert_eq!(exit_reason(137, "\n"), "exit 137, killed (SIGKILL), no output");
        assert_eq!(
            exit_reason(
                1,
                "pg_basebackup: error: connection to server failed\npg_basebackup: removing data directory\n"
            ),
            "exit 1: pg_basebackup: error: connection to server failed | pg_basebackup: removing data directory"
        );
    }

    #[test]
    fn the_replication_password_is_not_in_debug_output() {
        let l = super::ReplicationLogin {
            user: "replicator".into(),
            password: "s3cret".into(),
        };
        assert!(!format!("{l:?}").contains("s3cret"));
    }
}
