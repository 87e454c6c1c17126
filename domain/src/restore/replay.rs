//! The replay of a restore: a backup extracted beside the running cluster is
//! started in a throwaway container of the nodes' image, with no network.
//! For a point in time, its WAL archive is mounted read-only, with
//! `restore_command` = `wal-restore` (the node image's reader of pg-wal's
//! folder) and `recovery_target_time`: PostgreSQL replays up to the target,
//! across timelines (`recovery_target_timeline = 'latest'`). For a hot base
//! backup restored as of its own time, it replays only the WAL the backup
//! holds, until the copy is consistent (`recovery_target = 'immediate'`).
//! Either way it promotes; the console reads every table there (the counts
//! the restored leader must match), then stops it cleanly. The result is a
//! shut-down primary on a new timeline that the restore moves in as the
//! leader's data directory.
//!
//! Patroni's `postgresql.conf` is edited for the replay (without its
//! addresses, its primary and its empty recovery targets, which PostgreSQL
//! refuses beside a real one: "multiple recovery targets specified") and
//! put back afterwards; Patroni writes it again at every start anyway.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use model::backups::RestoreTest;

use crate::backup::pg_control;
use crate::docker::DockerControl;

/// The scratch container's name (one replay at a time: under the cluster lock).
pub const CONTAINER: &str = "pg-console-replay";
const SOCKET_DIR: &str = "s";
const HBA: &str = "replay_hba.conf";
const SAVED_CONF: &str = "postgresql.conf.pg-console-replay";
/// PostgreSQL's words when the archive has no transaction after the target.
const ENDED_BEFORE_TARGET: &str = "recovery ended before configured recovery target was reached";

/// Where the replay stops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayTarget {
    /// `recovery_target_time`, as PostgreSQL reads it (`YYYY-MM-DD HH:MM:SS+00`).
    Time(String),
    /// As far as the archive goes.
    End,
    /// As soon as the copy is consistent (a hot base backup's own WAL).
    Consistent,
}

/// What to replay: the staged data directory (under `incoming`, which is
/// mounted as `/restore`), the archive folder of its system identifier
/// (None: only the WAL in the copy's `pg_wal`), and where to stop.
#[derive(Clone, Debug)]
pub struct ReplayPlan {
    pub incoming: PathBuf,
    pub data_dir: PathBuf,
    pub archive: Option<PathBuf>,
    pub target: ReplayTarget,
    pub owner: (u32, u32),
    pub image: String,
    pub timeout: Duration,
}

/// What the replay did.
#[derive(Clone, Debug, Default)]
pub struct Replayed {
    /// PostgreSQL's own account of where it stopped ("recovery stopping
    /// before commit of transaction 812, time …"), or that it replayed all.
    pub stopped: String,
    /// The new timeline it promoted to.
    pub timeline: u32,
    /// Every table's count in the replayed copy.
    pub counts: RestoreTest,
}

/// Lines of the replayed copy's postgresql.conf the replay replaces.
const DROPPED: [&str; 13] = [
    "listen_addresses",
    "port",
    "unix_socket_",
    "hba_file",
    "ident_file",
    "cluster_name",
    "primary_",
    "recovery_target",
    "restore_command",
    "archive_",
    "hot_standby",
    "logging_collector",
    "synchronous_standby_names",
];

/// Patroni's postgresql.conf without what the replay replaces, plus the replay's settings.
pub fn replay_conf(patroni_conf: &str, data_dir: &str, target: &ReplayTarget, archive: bool) -> String {
    let mut out: String = patroni_conf
        .lines()
        .filter(|l| !DROPPED.iter().any(|d| l.trim_start().starts_with(d)))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!(
        "# pg-console's point-in-time replay (Patroni writes this file again at its next start)\n\
         listen_addresses = ''\nport = 5432\nunix_socket_directories = '/restore/{SOCKET_DIR}'\n\
         unix_socket_permissions = 0700\nhba_file = '/restore/{HBA}'\nident_file = '{data_dir}/pg_ident.conf'\n\
         cluster_name = 'pg-console-replay'\narchive_mode = off\nhot_standby = on\nlogging_collector = off\n"
    ));
    // Archive recovery wants a restore_command; without an archive, one that
    // finds nothing, so only pg_wal is read.
    out.push_str(if archive {
        "restore_command = 'wal-restore /wal %f %p'\n"
    } else {
        "restore_command = 'false'\n"
    });
    out.push_str(match target {
        ReplayTarget::Time(t) => {
            return out
                + &format!(
            "recovery_target_timeline = 'latest'\nrecovery_target_time = '{t}'\nrecovery_target_action = 'promote'\n"
        )
        }
        ReplayTarget::End => "recovery_target_timeline = 'latest'\n",
        ReplayTarget::Consistent => {
            "recovery_target_timeline = 'current'\nrecovery_target = 'immediate'\nrecovery_target_action = 'promote'\n"
        }
    });
    out
}

/// Files for the replay: the edited conf (Patroni's saved beside it), the
/// recovery signal, the private socket directory and its trust-only-local hba.
fn prepare(p: &ReplayPlan, target: &ReplayTarget) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let conf = p.data_dir.join("postgresql.conf");
    let saved = p.data_dir.join(SAVED_CONF);
    if !saved.exists() {
        std::fs::copy(&conf, &saved)?;
    }
    let inside = format!("/restore/{}", relative(p)?);
    std::fs::write(
        &conf,
        replay_conf(&std::fs::read_to_string(&saved)?, &inside, target, p.archive.is_some()),
    )?;
    let _ = std::fs::remove_file(p.data_dir.join("standby.signal"));
    std::fs::write(p.data_dir.join("recovery.signal"), "")?;
    let sock = p.incoming.join(SOCKET_DIR);
    std::fs::create_dir_all(&sock)?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o700))?;
    std::fs::write(p.incoming.join(HBA), "local all all trust\n")?;
    let (uid, gid) = p.owner;
    for f in [
        conf,
        saved,
        p.data_dir.join("recovery.signal"),
        sock,
        p.incoming.join(HBA),
    ] {
        std::os::unix::fs::lchown(&f, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Put Patroni's conf back and remove the replay's own files.
fn tidy(p: &ReplayPlan) -> std::io::Result<()> {
    let saved = p.data_dir.join(SAVED_CONF);
    if saved.exists() {
        std::fs::rename(&saved, p.data_dir.join("postgresql.conf"))?;
    }
    let _ = std::fs::remove_dir_all(p.incoming.join(SOCKET_DIR));
    let _ = std::fs::remove_file(p.incoming.join(HBA));
    Ok(())
}

fn relative(p: &ReplayPlan) -> std::io::Result<String> {
    let rel = p
        .data_dir
        .strip_prefix(&p.incoming)
        .map_err(|_| std::io::Error::other("the data directory is not inside the staging folder"))?
        .to_string_lossy()
        .to_string();
    if !rel.chars().all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c)) {
        return Err(std::io::Error::other(format!(
            "the backup's data directory {rel:?} has characters other than letters, digits and ._/-"
        )));
    }
    Ok(rel)
}

/// Replay, promote, count every table, stop cleanly. Err leaves the staged
/// copy as it is (the caller drops it): nothing of the cluster is touched.
pub async fn replay(docker: &DockerControl, p: &ReplayPlan) -> Result<Replayed, String> {
    let p2 = p.clone();
    let p = &tokio::task::spawn_blocking(move || resolve(p2))
        .await
        .map_err(|e| e.to_string())??;
    let result = replay_inner(docker, p).await;
    let _ = docker.remove(CONTAINER).await;
    let p2 = p.clone();
    let tidied = tokio::task::spawn_blocking(move || tidy(&p2))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| format!("cannot put Patroni's postgresql.conf back: {e}")));
    let out = result?;
    tidied?;
    Ok(out)
}

async fn replay_inner(docker: &DockerControl, p: &ReplayPlan) -> Result<Replayed, String> {
    let deadline = Instant::now() + p.timeout;
    let mut target = p.target.clone();
    let stopped = loop {
        start(docker, p, &target).await?;
        match wait_promoted(docker, p, deadline).await {
            Ok(()) => break stop_line(&docker.tail_logs(CONTAINER, 400).await, &target),
            // No transaction after the target in the archive: everything it
            // holds is from before the target, so replaying all of it is the
            // target's state. PostgreSQL resumes from its last restartpoint.
            Err(logs) if matches!(target, ReplayTarget::Time(_)) && logs.contains(ENDED_BEFORE_TARGET) => {
                target = ReplayTarget::End;
            }
            Err(logs) => {
                return Err(format!(
                    "the replay failed; its PostgreSQL said: {}",
                    last_lines(&logs, 8)
                ))
            }
        }
    };
    let socket = p.incoming.join(SOCKET_DIR);
    let mut counts = RestoreTest {
        at_ms: crate::now_ms(),
        ..Default::default()
    };
    let dbs = crate::backup::restore_test::databases(&socket).await?;
    for db in dbs {
        crate::backup::restore_test::read_every_table(&db, &socket, &mut counts).await?;
        counts.databases += 1;
    }
    counts.ok = true;
    docker
        .stop(CONTAINER, p.timeout.as_secs().clamp(30, 600) as i32)
        .await
        .map_err(|e| e.to_string())?;
    let dir = p.data_dir.clone();
    let control = tokio::task::spawn_blocking(move || pg_control::read(&dir))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot read the replayed copy's pg_control: {e}"))?;
    if control.state != pg_control::DB_SHUTDOWNED {
        return Err(format!(
            "the replayed copy did not shut down cleanly (pg_control says {})",
            control.state_name()
        ));
    }
    Ok(Replayed {
        stopped,
        timeline: control.timeline,
        counts,
    })
}

/// The plan with its folders resolved (Docker binds want real paths), once.
fn resolve(mut p: ReplayPlan) -> Result<ReplayPlan, String> {
    let real = |dir: &PathBuf| std::fs::canonicalize(dir).map_err(|e| format!("cannot open {}: {e}", dir.display()));
    let incoming = real(&p.incoming)?;
    p.data_dir = incoming.join(
        p.data_dir
            .strip_prefix(&p.incoming)
            .map_err(|_| "the data directory is not inside the staging folder".to_string())?,
    );
    p.incoming = incoming;
    p.archive = p.archive.as_ref().map(real).transpose()?;
    Ok(p)
}

async fn start(docker: &DockerControl, p: &ReplayPlan, target: &ReplayTarget) -> Result<(), String> {
    let (p2, t) = (p.clone(), target.clone());
    tokio::task::spawn_blocking(move || prepare(&p2, &t))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot prepare the replay: {e}"))?;
    let inside = format!("/restore/{}", relative(p).map_err(|e| e.to_string())?);
    let mut binds = vec![format!("{}:/restore", p.incoming.display())];
    if let Some(a) = &p.archive {
        binds.push(format!("{}:/wal:ro", a.display()));
    }
    let (uid, gid) = p.owner;
    docker
        .run_isolated(
            CONTAINER,
            &p.image,
            &binds,
            &format!("{uid}:{gid}"),
            vec!["/usr/lib/postgresql/15/bin/postgres".into(), "-D".into(), inside],
        )
        .await
        .map_err(|e| e.to_string())
}

/// Until the replayed copy runs as a primary; Err with its logs if it exits.
async fn wait_promoted(docker: &DockerControl, p: &ReplayPlan, deadline: Instant) -> Result<(), String> {
    let socket = p.incoming.join(SOCKET_DIR);
    loop {
        if let Ok(c) = crate::backup::restore_test::connect(&socket, "postgres").await {
            if let Ok(row) = c.query_one("SELECT pg_is_in_recovery()", &[]).await {
                if !row.get::<_, bool>(0) {
                    return Ok(());
                }
            }
        }
        if !docker.is_running(CONTAINER).await.unwrap_or(false) {
            return Err(docker.tail_logs(CONTAINER, 60).await);
        }
        if Instant::now() > deadline {
            let logs = docker.tail_logs(CONTAINER, 8).await;
            return Err(format!(
                "did not reach its target within {} s: {logs}",
                p.timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Where recovery stopped, in PostgreSQL's words.
fn stop_line(logs: &str, target: &ReplayTarget) -> String {
    let said = |needle: &str| {
        logs.lines().rev().find(|l| l.contains(needle)).map(|l| {
            l.split_once(needle)
                .map(|(_, rest)| format!("{needle}{rest}"))
                .unwrap_or_default()
        })
    };
    match (
        target,
        said("recovery stopping"),
        said("last completed transaction was at log time"),
    ) {
        (ReplayTarget::Time(_) | ReplayTarget::Consistent, Some(s), _) => s,
        (_, _, Some(last)) => {
            format!("the archive holds no transaction after the target: all of it was replayed ({last})")
        }
        _ => "all of the archive was replayed".into(),
    }
}

fn last_lines(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATRONI_CONF: &str = "include 'postgresql.base.conf'\n\ncluster_name = 'postgresql-cluster'\nhot_standby = 'on'\n\
        listen_addresses = '127.0.0.1'\nport = '15432'\nunix_socket_directories = '/var/run/postgresql'\nwal_keep_size = '256MB'\n\
        hba_file = '/home/postgres/data/pg_hba.conf'\nident_file = '/home/postgres/data/pg_ident.conf'\n\n\
        primary_conninfo = 'dbname=postgres user=replicator passfile=/tmp/pgpass0 host=127.0.0.1 port=15434'\n\
        primary_slot_name = 'pg_0'\nrecovery_target = ''\nrecovery_target_lsn = ''\nrecovery_target_name = ''\n\
        recovery_target_time = ''\nrecovery_target_timeline = 'latest'\nrecovery_target_xid = ''\n";

    #[test]
    fn the_replay_keeps_patronis_settings_but_not_its_addresses_or_empty_targets() {
        let at = ReplayTarget::Time("2026-12-01 03:20:05+00".into());
        let c = replay_conf(PATRONI_CONF, "/restore/pg2-data", &at, true);
        assert!(c.starts_with("include 'postgresql.base.conf'\n"), "{c}");
        assert!(c.contains("wal_keep_size = '256MB'"));
        for gone in [
            "127.0.0.1",
            "pg_0",
            "recovery_target = ''",
            "recovery_target_xid",
            "postgresql-cluster",
            "/var/run",
        ] {
            assert!(!c.contains(gone), "{gone} in {c}");
        }
        assert_eq!(c.matches("recovery_target_time =").count(), 1);
        assert!(c.contains("recovery_target_time = '2026-12-01 03:20:05+00'\nrecovery_target_action = 'promote'\n"));
        assert!(c.contains("restore_command = 'wal-restore /wal %f %p'"));
        assert!(c.contains("ident_file = '/restore/pg2-data/pg_ident.conf'"));
        let all = replay_conf(PATRONI_CONF, "/restore/pg2-data", &ReplayTarget::End, true);
        assert!(!all.contains("recovery_target_time =") && !all.contains("recovery_target_action"));
        let own = replay_conf(PATRONI_CONF, "/restore/pg2-data", &ReplayTarget::Consistent, false);
        assert_eq!(own.matches("recovery_target").count(), 3, "{own}");
        assert!(own.contains("recovery_target = 'immediate'\nrecovery_target_action = 'promote'\n"));
        assert!(own.contains("recovery_target_timeline = 'current'"));
        assert!(own.contains("restore_command = 'false'") && !own.contains("/wal"));
    }

    #[test]
    fn where_it_stopped_is_said_in_postgresqls_words() {
        let logs = "2026-12-01 LOG:  starting point-in-time recovery to 2026-12-01 03:20:05+00\n\
            2026-12-01 LOG:  recovery stopping before commit of transaction 812, time 2026-12-01 03:20:06.5+00\n\
            2026-12-01 LOG:  redo done at 0/5000110\n\
            2026-12-01 LOG:  last completed transaction was at log time 2026-12-01 03:20:03.1+00\n";
        assert_eq!(
            stop_line(logs, &ReplayTarget::Time("2026-12-01 03:20:05+00".into())),
            "recovery stopping before commit of transaction 812, time 2026-12-01 03:20:06.5+00"
        );
        assert_eq!(
            stop_line(logs, &ReplayTarget::End),
            "the archive holds no transaction after the target: all of it was replayed (last completed transaction was at log time 2026-12-01 03:20:03.1+00)"
        );
    }
}
