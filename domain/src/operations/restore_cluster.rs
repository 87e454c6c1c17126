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

use futures::future::BoxFuture;
use model::backups::{BackupKind, BackupStatus};
use model::operations::{OpRequest, Precondition};
use model::topology::human_bytes;

use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{pass, Draft};
use super::reinit_cluster::check_data_dir;
use super::OperationService;
use crate::authz::Action;
use crate::backup::Manifest;
use crate::datetime::human_utc as utc;
use crate::naming::data_dir_name;
use crate::restore::Journal;

pub struct RestoreCluster;

impl Operation for RestoreCluster {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        let id = backup_id(req);
        Draft {
            title: format!("Restore the cluster {} from backup {id}", t.cluster),
            steps: Vec::new(),
            preconditions: vec![admin_only(ctx)],
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
        Box::pin(svc.run_restore(job, backup_id(req), None, before))
    }
}

/// Restores are an admin's: the first precondition of both kinds.
pub(super) fn admin_only(ctx: &PlanCtx) -> Precondition {
    let admin = ctx.may(Action::RestoreCluster);
    pass(
        admin,
        if admin {
            "you are an admin"
        } else {
            "only an admin may restore the cluster"
        },
    )
}

pub(super) fn backup_id(req: &OpRequest) -> &str {
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
    pub(super) async fn gather(svc: &OperationService, id: &str) -> Facts {
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
    let hot = m.kind == BackupKind::Base;
    // A hot base backup holds the data as of its end (what its WAL replays to).
    let taken = utc(if hot {
        crate::wal_archive::window::consistent_at_ms(m)
    } else {
        m.started_at_ms
    });
    let mut steps = vec![
        "check the archive's sha256 and, unless a test restore of it succeeded, test-restore it now".to_string(),
        format!(
            "extract it ({} of data) beside the running cluster and check its pg_control",
            human_bytes(m.data_bytes)
        ),
    ];
    if hot {
        steps.push(format!(
            "replay the hot base backup's own WAL until it is consistent ({}), in an isolated PostgreSQL with no network; it promotes to a new timeline; read every table; stop it cleanly",
            m.consistent_lsn
        ));
    }
    steps.extend([
        "stop the replicas, then the leader, then etcd".into(),
        "move every member's data directory and etcd's data aside to ${DEFAULT_DATA_DIR}/pg-console-kept/ (moved, not deleted)".into(),
        format!("{}'s backup of {taken} becomes {}'s data; etcd starts empty", m.member, m.member),
        format!("start etcd and {}: Patroni makes it the leader of a new timeline", m.member),
        format!(
            "check that the leader holds the row counts the {} read",
            if hot { "replay" } else { "test restore" }
        ),
        format!("start {} empty: they rebuild from {}", others.join(" and "), m.member),
        "wait for one leader and streaming replicas; if the cluster is not healthy in time, put the previous data back and start the old cluster".into(),
        format!("WRITES MADE AFTER {taken} ARE LOST (they stay in the kept data until it is discarded)"),
    ]);
    steps
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
    let taken = utc(m.started_at_ms);
    let size = human_bytes(m.data_bytes);
    let mut out = vec![
        pass(
            m.status == BackupStatus::Ok,
            format!("{}'s backup of {taken} is {} ({size} of data)", m.member, m.status),
        ),
        checked(m),
        member_check(m, members),
        system_check(m, f.current_system.as_deref(), other_system),
        space_check(m, f.free_bytes),
    ];
    let sizes: Vec<String> = f.current_bytes.iter().map(|(_, b)| human_bytes(*b)).collect();
    out.push(pass(
        true,
        format!(
            "the cluster's current data ({}, system identifier {}, last WAL write {}) is moved aside to {}, not deleted",
            sizes.join(" + "),
            f.current_system.as_deref().unwrap_or("unknown"),
            f.last_wal_ms.map(utc).unwrap_or_else(|| "unknown".into()),
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

/// What its sha256 and test restore said so far.
fn checked(m: &Manifest) -> Precondition {
    match (m.verified_ok, &m.restore_test) {
        (Some(false), _) => pass(false, "its sha256 does not match: the archive is corrupted"),
        (_, Some(r)) if !r.ok => pass(
            false,
            format!("its last test restore failed ({}): it cannot be restored", r.error),
        ),
        (_, Some(r)) => pass(
            true,
            format!(
                "a test restore read {} tables and {} rows at {}; the sha256 is checked again before anything stops",
                r.tables,
                r.rows,
                utc(r.at_ms)
            ),
        ),
        (_, None) => pass(
            true,
            "no test restore yet: the sha256 is checked and one is run before anything stops",
        ),
    }
}

fn member_check(m: &Manifest, members: &[String]) -> Precondition {
    if members.contains(&m.member) {
        pass(
            true,
            format!(
                "{} is a member of this cluster, so it can take the backup back",
                m.member
            ),
        )
    } else {
        pass(
            false,
            format!(
                "{} is not a member of this cluster: there is no data directory for its backup",
                m.member
            ),
        )
    }
}

/// The backup's system identifier against the cluster's: another cluster's
/// backup only when the admin chose that explicitly.
fn system_check(m: &Manifest, current: Option<&str>, other_system: bool) -> Precondition {
    let theirs = &m.system_identifier;
    match current {
        Some(cur) if cur == theirs => pass(true, format!("it belongs to this cluster (system identifier {cur})")),
        Some(cur) if other_system => pass(
            true,
            format!("it is another cluster's backup (system identifier {theirs}, this cluster's is {cur}): you chose to restore it anyway"),
        ),
        Some(cur) => pass(
            false,
            format!("it is another cluster's backup (system identifier {theirs}, this cluster's is {cur}): choose “another cluster's backup” to restore it anyway"),
        ),
        None => pass(true, format!("the cluster's system identifier is unknown (is it down?); the backup's is {theirs}")),
    }
}

/// Room for the extracted backup plus 10 % and 64 MiB (the current data is renamed, not copied).
fn space_check(m: &Manifest, free: Option<u64>) -> Precondition {
    let need = m.data_bytes + m.data_bytes / 10 + 64 * 1024 * 1024;
    match free {
        Some(free) => pass(
            free >= need,
            format!(
                "{} free where the data lives; the extracted backup needs {} (the current data is moved, not copied)",
                human_bytes(free),
                human_bytes(need)
            ),
        ),
        None => pass(false, "cannot tell the free space where the data lives"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::archive::Compression;

    fn manifest() -> Manifest {
        let mut m = Manifest::new("b1", "postgresql-cluster", "pg-1", Compression::Zstd, "ada");
        m.status = BackupStatus::Ok;
        m.started_at_ms = 1_764_488_400_000; // 2025-11-30 07:40:00 UTC
        m.system_identifier = "7713809362585186343".into();
        m.data_bytes = 2_100_000_000;
        m
    }

    fn facts(m: Option<Manifest>) -> Facts {
        Facts {
            backup: m,
            current_system: Some("7713809362585186343".into()),
            current_bytes: vec![("pg-0".into(), 2_200_000_000), ("pg-1".into(), 2_100_000_000)],
            last_wal_ms: Some(1_764_490_000_000),
            free_bytes: Some(50_000_000_000),
            data_dir: Vec::new(),
            unfinished: None,
            kept_root: "/srv/data/pg-console-kept".into(),
        }
    }

    fn req(other_system: bool) -> OpRequest {
        OpRequest::RestoreCluster {
            backup_id: "b1".into(),
            other_system,
        }
    }

    #[test]
    fn the_plan_says_what_happens_in_numbers() {
        let members = vec!["pg-0".to_string(), "pg-1".to_string(), "pg-2".to_string()];
        let s = steps(&manifest(), &members);
        assert_eq!(
            s[4],
            "pg-1's backup of 2025-11-30 07:40:00 UTC becomes pg-1's data; etcd starts empty"
        );
        assert_eq!(s[7], "start pg-0 and pg-2 empty: they rebuild from pg-1");
        assert_eq!(
            s[9],
            "WRITES MADE AFTER 2025-11-30 07:40:00 UTC ARE LOST (they stay in the kept data until it is discarded)"
        );
        let c = checks(&facts(Some(manifest())), &req(false), &members);
        assert!(c.iter().all(|p| p.ok), "{c:?}");
        let text: Vec<&str> = c.iter().map(|p| p.text.as_str()).collect();
        assert!(
            text.contains(&"it belongs to this cluster (system identifier 7713809362585186343)"),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("the cluster's current data (2.0 GB + 2.0 GB, system identifier 7713809362585186343, last WAL write 2025-11-30 08:06:40 UTC) is moved aside to /srv/data/pg-console-kept, not deleted")), "{text:?}");
    }

    #[test]
    fn refusals_say_why() {
        let members = vec!["pg-0".to_string(), "pg-1".to_string()];
        let bad = |f: &Facts, r: &OpRequest| -> Vec<String> {
            checks(f, r, &members)
                .into_iter()
                .filter(|p| !p.ok)
                .map(|p| p.text)
                .collect()
        };
        assert_eq!(
            bad(&facts(None), &req(false)),
            ["there is no backup \"b1\": choose one from the catalog"]
        );
        let mut other = facts(Some(manifest()));
        other.current_system = Some("1".into());
        assert!(bad(&other, &req(false))[0].contains("another cluster's backup"));
        assert!(bad(&other, &req(true)).is_empty(), "chosen explicitly");
        let mut full = facts(Some(manifest()));
        full.free_bytes = Some(1_000_000_000);
        assert!(bad(&full, &req(false))[0].contains("free where the data lives"));
        let mut corrupt = Some(manifest());
        corrupt.as_mut().unwrap().verified_ok = Some(false);
        assert_eq!(
            bad(&facts(corrupt), &req(false)),
            ["its sha256 does not match: the archive is corrupted"]
        );
        let mut elsewhere = Some(manifest());
        elsewhere.as_mut().unwrap().member = "pg-7".into();
        assert!(bad(&facts(elsewhere), &req(false))[0].contains("pg-7 is not a member"));
    }
}
