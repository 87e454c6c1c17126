//! The SOP's section 5 as an operation: stop the nodes and etcd, remove the
//! contents of `${DEFAULT_DATA_DIR}/pg/` and `${DEFAULT_DATA_DIR}/etcd/`
//! (nothing else), start etcd and the nodes, wait for a new healthy cluster.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use model::operations::{OpRequest, Precondition};
use model::Topology;

use super::jobs::JobHandle;
use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{best_replica, pass, Draft};
use super::OperationService;
use crate::authz::Action;
use crate::docker::DockerControl;

pub struct ReinitializeCluster;

impl Operation for ReinitializeCluster {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        let admin = ctx.may(Action::ReinitializeCluster);
        let mut pre = vec![pass(
            admin,
            if admin {
                "you are an admin"
            } else {
                "only an admin may reinitialize the cluster"
            },
        )];
        let mut steps: Vec<String> = Vec::new();
        let backup_first = matches!(req, OpRequest::ReinitializeCluster { backup_first: true });
        if backup_first {
            match best_replica(t) {
                Some(r) => {
                    pre.push(pass(
                        true,
                        format!("{r} is the healthiest replica: it is backed up first"),
                    ));
                    steps.push(format!("back up {r} first (zstd); if that fails, nothing is destroyed"));
                }
                None => pre.push(pass(false, "no healthy replica to back up first")),
            }
        }
        let names: Vec<String> = t.members.iter().map(|x| x.name.clone()).collect();
        steps.extend([
            "stop the replicas, then the leader, then etcd".into(),
            "remove the contents of ${DEFAULT_DATA_DIR}/pg/ and ${DEFAULT_DATA_DIR}/etcd/ (nothing else)".into(),
            format!("start etcd, then {}", names.join(", ")),
            "wait for a leader and healthy replicas, and report the new database system identifier".into(),
            "ALL DATABASE DATA IS DESTROYED; the console's users, audit log and backups are kept".into(),
        ]);
        Draft {
            title: format!("Reinitialize the whole cluster {}", t.cluster),
            steps,
            preconditions: pre,
            shell: "docker compose -f infra/04-data/postgresql-cluster/docker-compose.yml down -v && \
                    sudo rm -rf ${DEFAULT_DATA_DIR}/pg/* ${DEFAULT_DATA_DIR}/etcd/* && \
                    docker compose -f infra/04-data/postgresql-cluster/docker-compose.yml up -d"
                .to_string(),
            confirm_name: t.cluster.clone(),
        }
    }

    fn local<'a>(&'a self, _req: &'a OpRequest, svc: &'a OperationService, d: &'a mut Draft) -> BoxFuture<'a, ()> {
        let s = svc.reinit.clone();
        Box::pin(async move {
            d.preconditions
                .extend(crate::off_thread(move || check_data_dir(&s)).await)
        })
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        let RunCtx { svc, job, req, before } = r;
        Box::pin(svc.run_reinit_cluster(job, req, before))
    }
}

/// Where the stack keeps its data and how its containers are named.
#[derive(Clone, Debug)]
pub struct ReinitSettings {
    /// `${DEFAULT_DATA_DIR}`: holds `pg/pgN-data` and `etcd`.
    pub data_dir: PathBuf,
    pub etcd_container: String,
    /// The console's own data (users, audit log): must not be inside.
    pub console_data_dir: PathBuf,
    /// The console's backups: must not be inside either.
    pub backups_dir: PathBuf,
    /// How long a restored cluster may take to become healthy before the
    /// previous data is put back.
    pub restore_timeout_secs: u64,
}

/// What etcd keeps in its data directory (`etcd/member/{snap,wal}`).
const ETCD_ENTRIES: &[&str] = &["member"];

/// The names in `dir` that `expected` does not accept.
fn names_besides(dir: &Path, expected: impl Fn(&str) -> bool) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| !expected(n))
                .collect()
        })
        .unwrap_or_default()
}

/// Refuse anything that does not look like the stack's data directory.
pub fn check_data_dir(s: &ReinitSettings) -> Vec<Precondition> {
    let mut out = Vec::new();
    let raw = s.data_dir.as_os_str();
    if raw.is_empty() || s.data_dir == Path::new("/") {
        out.push(pass(
            false,
            format!("the configured data directory {:?} is empty or /: refusing", s.data_dir),
        ));
        return out;
    }
    let Ok(dir) = s.data_dir.canonicalize() else {
        out.push(pass(
            false,
            format!("the data directory {} does not exist", s.data_dir.display()),
        ));
        return out;
    };
    if dir == Path::new("/") || dir.components().count() < 3 {
        out.push(pass(
            false,
            format!(
                "{} is too close to / to be the stack's data directory: refusing",
                dir.display()
            ),
        ));
        return out;
    }
    let pg = dir.join("pg");
    let etcd = dir.join("etcd");
    out.push(pass(
        pg.is_dir() && etcd.is_dir(),
        format!("{} has pg/ and etcd/", dir.display()),
    ));
    let strays = names_besides(&pg, |n| n.starts_with("pg") && n.ends_with("-data"));
    out.push(pass(
        strays.is_empty(),
        if strays.is_empty() {
            "pg/ holds only pgN-data directories".to_string()
        } else {
            format!("pg/ holds other things ({}): refusing", strays.join(", "))
        },
    ));
    let etcd_strays = names_besides(&etcd, |n| ETCD_ENTRIES.contains(&n));
    out.push(pass(
        etcd_strays.is_empty(),
        if etcd_strays.is_empty() {
            "etcd/ holds only etcd's member/ directory".to_string()
        } else {
            format!("etcd/ holds other things ({}): refusing", etcd_strays.join(", "))
        },
    ));
    for (what, path) in [
        ("the console's users and audit log", &s.console_data_dir),
        ("the console's backups", &s.backups_dir),
    ] {
        let p = path.canonicalize().unwrap_or_else(|_| path.clone());
        let inside = p.starts_with(&pg) || p.starts_with(&etcd);
        out.push(pass(
            !inside,
            if inside {
                format!("{what} ({}) lie inside what would be removed: refusing", p.display())
            } else {
                format!("{what} are elsewhere and are kept")
            },
        ));
    }
    out
}

/// Check the data directory again and empty `pg/` and `etcd/`, off the
/// async threads; returns the names removed from `pg/` (recreated empty,
/// since the containers' bind mounts need them).
fn recheck_and_empty(s: &ReinitSettings) -> Result<Vec<String>, String> {
    let failed: Vec<String> = check_data_dir(s)
        .into_iter()
        .filter(|p| !p.ok)
        .map(|p| p.text)
        .collect();
    if !failed.is_empty() {
        return Err(format!("refused just before deleting: {}", failed.join("; ")));
    }
    let dir = s.data_dir.canonicalize().map_err(|e| e.to_string())?;
    let (pg, etcd) = (dir.join("pg"), dir.join("etcd"));
    let removed = empty_dir(&pg).map_err(|e| format!("cannot empty {}: {e}", pg.display()))?;
    empty_dir(&etcd).map_err(|e| format!("cannot empty {}: {e}", etcd.display()))?;
    for name in &removed {
        std::fs::create_dir_all(pg.join(name)).map_err(|e| e.to_string())?;
    }
    Ok(removed)
}

/// Remove everything inside `dir`, keeping `dir`.
fn empty_dir(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        if e.file_type()?.is_dir() {
            std::fs::remove_dir_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
        removed.push(e.file_name().to_string_lossy().to_string());
    }
    Ok(removed)
}

/// Stop the replicas (together), then the leader, then etcd (each with time to
/// shut down cleanly).
pub(super) async fn stop_cluster(
    job: &JobHandle,
    docker: &DockerControl,
    etcd: &str,
    replicas: &[String],
    leader: Option<&str>,
) -> Result<(), String> {
    job.step(format!("stopping the replicas {}", replicas.join(", "))).await;
    // At once: each shuts down on its own, so the wait is the slowest one's.
    let stops = replicas.iter().map(|r| docker.stop(r, 60));
    for r in futures::future::join_all(stops).await {
        r.map_err(|e| e.to_string())?;
    }
    if let Some(l) = leader {
        job.step(format!("stopping the leader {l}")).await;
        docker.stop(l, 60).await.map_err(|e| e.to_string())?;
    }
    job.step(format!("stopping {etcd}")).await;
    docker.stop(etcd, 30).await.map_err(|e| e.to_string())
}

/// A leader and `n - 1` healthy replicas ([`model::Member::caught_up`]).
pub(super) fn healthy(t: &Topology, n: usize) -> bool {
    t.leader().is_some() && t.members.iter().filter(|m| m.caught_up()).count() == n.saturating_sub(1)
}

impl OperationService {
    async fn run_reinit_cluster(&self, job: &JobHandle, req: &OpRequest, before: &Topology) -> Result<String, String> {
        let s = self.reinit.clone();
        let s2 = s.clone();
        let failed: Vec<String> = crate::off_thread(move || check_data_dir(&s2))
            .await
            .into_iter()
            .filter(|p| !p.ok)
            .map(|p| p.text)
            .collect();
        if !failed.is_empty() {
            return Err(failed.join("; "));
        }
        if matches!(req, OpRequest::ReinitializeCluster { backup_first: true }) {
            let r = best_replica(before).ok_or("no healthy replica to back up first: nothing was destroyed")?;
            let backup = OpRequest::Backup {
                member: r.clone(),
                compression: model::operations::Compression::Zstd,
                allow_only_replica: false,
            };
            let summary = self.run_backup(job, &backup, before).await.map_err(|e| {
                format!("the backup of {r} before reinitialization failed ({e}): nothing was destroyed")
            })?;
            job.step(format!("backed up first: {summary}")).await;
        }
        let docker = DockerControl::connect().await.map_err(|e| e.to_string())?;
        let old_id = self.patroni.system_identifier().await;
        let leader = before.leader().map(|m| m.name.clone());
        let nodes: Vec<String> = self.patroni.members().iter().map(|m| m.name.clone()).collect();
        let replicas: Vec<String> = nodes.iter().filter(|n| Some(*n) != leader.as_ref()).cloned().collect();
        let result = self
            .reinit_steps(job, &docker, &s, &nodes, &replicas, leader.as_deref())
            .await;
        if let Err(e) = result {
            // Never leave the cluster stopped: start what exists again.
            job.step("the reinitialization failed: starting etcd and the nodes again")
                .await;
            let _ = docker.start(&s.etcd_container).await;
            for n in &nodes {
                let _ = docker.start(n).await;
            }
            return Err(e);
        }
        let new_id = self
            .patroni
            .system_identifier()
            .await
            .unwrap_or_else(|| "unknown".into());
        Ok(format!(
            "cluster reinitialized: database system identifier {new_id} (was {})",
            old_id.unwrap_or_else(|| "unknown".into())
        ))
    }

    async fn reinit_steps(
        &self,
        job: &JobHandle,
        docker: &DockerControl,
        s: &ReinitSettings,
        nodes: &[String],
        replicas: &[String],
        leader: Option<&str>,
    ) -> Result<(), String> {
        stop_cluster(job, docker, &s.etcd_container, replicas, leader).await?;

        let dir = s.data_dir.canonicalize().map_err(|e| e.to_string())?;
        let (pg, etcd) = (dir.join("pg"), dir.join("etcd"));
        job.step(format!(
            "removing the contents of {} and {}",
            pg.display(),
            etcd.display()
        ))
        .await;
        let settings = s.clone();
        tokio::task::spawn_blocking(move || recheck_and_empty(&settings))
            .await
            .map_err(|e| e.to_string())??;

        job.step(format!("starting {}", s.etcd_container)).await;
        docker.start(&s.etcd_container).await.map_err(|e| e.to_string())?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        job.step(format!("starting {}", nodes.join(", "))).await;
        for n in nodes {
            docker.start(n).await.map_err(|e| e.to_string())?;
        }
        job.step("waiting for a leader and healthy replicas").await;
        let start = Instant::now();
        loop {
            let t = self.patroni.topology().await;
            if healthy(&t, nodes.len()) {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(240) {
                return Err("the new cluster did not become healthy within 240 s".into());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(data: &Path, console: &Path) -> ReinitSettings {
        ReinitSettings {
            data_dir: data.to_path_buf(),
            etcd_container: "etcd".into(),
            console_data_dir: console.to_path_buf(),
            backups_dir: console.join("backups"),
            restore_timeout_secs: 300,
        }
    }

    #[test]
    fn refuses_paths_that_are_not_the_stacks_data() {
        let root = std::env::temp_dir().join(format!("pgc-reinit-{}", std::process::id()));
        let data = root.join("data");
        std::fs::create_dir_all(data.join("pg/pg0-data")).unwrap();
        std::fs::create_dir_all(data.join("etcd")).unwrap();
        let ok = |s: &ReinitSettings| check_data_dir(s).iter().all(|p| p.ok);
        assert!(ok(&settings(&data, &root.join("console"))));
        assert!(!ok(&settings(Path::new("/"), &root)), "/");
        assert!(!ok(&settings(Path::new(""), &root)), "empty");
        assert!(!ok(&settings(&root.join("missing"), &root)), "missing");
        assert!(!ok(&settings(&data, &data.join("pg/console"))), "console data inside");
        let mut backups_inside = settings(&data, &root.join("console"));
        backups_inside.backups_dir = data.join("etcd/backups");
        assert!(!ok(&backups_inside), "backups inside etcd/");
        std::fs::create_dir_all(data.join("etcd/member/wal")).unwrap();
        assert!(ok(&settings(&data, &root.join("console"))), "etcd's own member/");
        std::fs::write(data.join("etcd/notes.txt"), "x").unwrap();
        assert!(!ok(&settings(&data, &root.join("console"))), "a stray file in etcd/");
        std::fs::remove_file(data.join("etcd/notes.txt")).unwrap();
        std::fs::create_dir_all(data.join("pg/precious")).unwrap();
        assert!(!ok(&settings(&data, &root.join("console"))), "stray directory in pg/");
        let _ = std::fs::remove_dir_all(root);
    }
}
