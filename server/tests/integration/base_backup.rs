//! Hot base backups against the real stack: `pg_basebackup` from a running
//! replica under writes stops no container, is checked by `pg_verifybackup`,
//! shows its progress, and restores the cluster as of its end; a restore to
//! a point in time replays the WAL archive from it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::pitr::{discard_kept, leader_now, prepare_to_time, succeeded};
use crate::restore::{healthy, prepare, prepare_caught_up, run, sql, start, started_at};
use crate::support::*;
use crate::wal_archive::wal_until;
use model::backups::{BackupKind, BackupRow};
use model::operations::{OpJob, Plan};
use model::wal::WalReceiverStatus;

/// A row into `base_markers` every 100 ms through the write endpoint, until dropped.
struct Writer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u32>>,
}

impl Writer {
    fn start(env: &std::collections::HashMap<String, String>) -> Self {
        let (env, stop) = (env.clone(), Arc::new(AtomicBool::new(false)));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !stop2.load(Ordering::Relaxed) {
                n += 1;
                psql(
                    &env,
                    &env["WRITE_PORT"],
                    &format!("INSERT INTO base_markers VALUES ('during-{n}')"),
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            n
        });
        Writer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stop; how many rows it wrote.
    fn finish(mut self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Take a hot base backup of `member`, following the job as the browser
/// does; the job and every progress phase seen.
async fn take_base_backup(app: &TestApp, member: &str) -> (Plan, OpJob, Vec<String>) {
    ensure_replica(app, member).await;
    let p = prepare_caught_up(
        app,
        &[("kind", "base_backup"), ("member", member), ("compression", "zstd")],
    )
    .await;
    assert!(p.can_run(), "{:?}", p.preconditions);
    let id = start(app, &p, "").await;
    let mut phases: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let job = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the base backup did not finish in 600 s"
        );
        let (_, t) = post(app, &app.http, "/api/op_status", &[("id", &id)]).await;
        if let Some(job) = serde_json::from_str::<Option<OpJob>>(&t).ok().flatten() {
            if let Some(pr) = &job.progress {
                if phases.last() != Some(&pr.phase) {
                    phases.push(pr.phase.clone());
                }
            }
            if job.outcome.is_some() {
                break job;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    (p, job, phases)
}

async fn catalog(app: &TestApp) -> Vec<BackupRow> {
    let (_, t) = post(app, &app.http, "/api/backups_list", &[]).await;
    serde_json::from_str(&t).unwrap()
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_hot_base_backup_under_writes_stops_nothing_and_restores_as_of_its_end() {
    let _g = lock_stack();
    let env = stack_env();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-1").await;
    sql(
        &app,
        "DROP TABLE IF EXISTS base_markers; DROP TABLE IF EXISTS base_bulk; \
         CREATE TABLE base_markers(marker text primary key, at timestamptz default clock_timestamp()); \
         INSERT INTO base_markers(marker) VALUES ('before'); \
         CREATE TABLE base_bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 600000) g",
    );
    let members = ["pg-0", "pg-1", "pg-2"];
    let started: Vec<String> = members.iter().map(|m| started_at(m)).collect();
    let postmaster = psql(&env, &env["PG1_PORT"], "SELECT pg_postmaster_start_time()");

    let writer = Writer::start(&env);
    let (p, job, phases) = take_base_backup(&app, "pg-1").await;
    let during = writer.finish();
    let outcome = match &job.outcome {
        Some(Ok(o)) => o.clone(),
        other => panic!("the base backup failed: {other:?}\n{job:?}"),
    };
    eprintln!("hot base backup ({during} rows written meanwhile): {outcome}\nprogress: {phases:?}");
    assert!(p
        .steps
        .last()
        .unwrap()
        .starts_with("which kind: a hot base backup stops nothing"));
    assert!(
        p.preconditions
            .iter()
            .any(|x| x.text == "pg-1 keeps running and serving reads throughout"),
        "{:?}",
        p.preconditions
    );
    assert!(
        p.shell.contains("pg_basebackup") && p.shell.contains("pg_verifybackup"),
        "{}",
        p.shell
    );
    assert!(
        outcome.contains("verified with pg_verifybackup") && outcome.contains("no container was stopped"),
        "{outcome}"
    );
    assert!(
        job.steps
            .iter()
            .any(|s| s.text == "pg_verifybackup: backup successfully verified"),
        "{:?}",
        job.steps
    );
    assert!(
        phases
            .iter()
            .any(|ph| ph == "pg_basebackup (the replica keeps running)"),
        "{phases:?}"
    );
    // Nothing stopped or restarted.
    let after: Vec<String> = members.iter().map(|m| started_at(m)).collect();
    assert_eq!(after, started, "no container restarted");
    assert_eq!(
        psql(&env, &env["PG1_PORT"], "SELECT pg_postmaster_start_time()"),
        postmaster
    );
    assert!(during >= 3, "writes went on during the backup ({during})");
    let b = catalog(&app)
        .await
        .into_iter()
        .find(|b| b.id == job.id)
        .expect("listed");
    assert_eq!(
        (b.kind, b.status.as_str(), b.downtime_ms),
        (BackupKind::Base, "ok", 0),
        "{b:?}"
    );
    assert_eq!(
        b.system_identifier,
        sql(&app, "SELECT system_identifier FROM pg_control_system()")
    );
    assert!(!container_running(domain::backup::base::CONTAINER));

    // Later writes and a drop, then the restore: the data as of the backup's end.
    sql(
        &app,
        "INSERT INTO base_markers(marker) VALUES ('after'); DROP TABLE base_bulk",
    );
    let r = prepare(
        &app,
        &[("kind", "restore_cluster"), ("member", ""), ("backup_id", &b.id)],
    )
    .await;
    assert!(r.can_run(), "{:?}", r.preconditions);
    assert!(
        r.steps
            .iter()
            .any(|s| s.starts_with("replay the hot base backup's own WAL until it is consistent")),
        "{:?}",
        r.steps
    );
    let restored = run(&app, &r, ADMIN_PASSWORD).await;
    let said = succeeded(&restored);
    eprintln!("restore from the hot base backup: {said}");
    assert!(
        said.contains("replayed to its consistent point")
            && said.contains("recovery stopping after reaching consistency"),
        "{said}"
    );
    healthy(&app).await;
    assert_eq!(
        sql(&app, "SELECT count(*) FROM base_bulk"),
        "600000",
        "the dropped table is back"
    );
    let markers = sql(&app, "SELECT string_agg(marker, ',' ORDER BY at) FROM base_markers");
    assert!(markers.starts_with("before") && !markers.contains("after"), "{markers}");
    let kept_during = markers.matches("during-").count() as u32;
    assert!(kept_during <= during, "{kept_during} of {during}");
    eprintln!("the restored cluster holds {kept_during} of the {during} rows written during the backup");
    discard_kept(&app).await;
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_restore_to_a_time_replays_the_archive_from_a_hot_base_backup() {
    let _g = lock_stack();
    let env = stack_env();
    let app = spawn_app().await;
    wal_until(&app, "pg-wal receiving", |w| w.status == WalReceiverStatus::Receiving).await;
    sql(
        &app,
        "DROP TABLE IF EXISTS base_markers; \
         CREATE TABLE base_markers(marker text primary key, at timestamptz default clock_timestamp()); \
         INSERT INTO base_markers(marker) VALUES ('before')",
    );
    let (_, job, _) = take_base_backup(&app, "pg-2").await;
    assert!(matches!(job.outcome, Some(Ok(_))), "{job:?}");
    psql(
        &env,
        &env["WRITE_PORT"],
        "INSERT INTO base_markers(marker) VALUES ('t1')",
    );
    std::thread::sleep(Duration::from_millis(1200));
    let target = leader_now(&env);
    std::thread::sleep(Duration::from_millis(1200));
    psql(
        &env,
        &env["WRITE_PORT"],
        "INSERT INTO base_markers(marker) VALUES ('t2')",
    );

    let p = prepare_to_time(&app, &target).await;
    assert!(p.can_run(), "{:?}", p.preconditions);
    let restored = run(&app, &p, ADMIN_PASSWORD).await;
    let said = succeeded(&restored);
    eprintln!("restore to {target} from a hot base backup: {said}");
    assert!(said.contains(&format!("replayed to {target} UTC")), "{said}");
    assert!(
        said.contains("pg-2's backup of"),
        "the hot base backup, the newest before the target: {said}"
    );
    healthy(&app).await;
    assert_eq!(
        sql(&app, "SELECT string_agg(marker, ',' ORDER BY at) FROM base_markers"),
        "before,t1"
    );
    discard_kept(&app).await;
}

/// A real fault mid-copy: `pg_basebackup`'s container is killed while it
/// copies. The backup is marked failed with the reason, nothing partial is
/// left in the backups folder, and the replica never stopped.
#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_base_backup_killed_mid_copy_fails_cleanly_and_the_replica_runs_on() {
    let _g = lock_stack();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    // Enough data that the copy lasts a few seconds.
    sql(
        &app,
        "DROP TABLE IF EXISTS base_bulk; \
         CREATE TABLE base_bulk AS SELECT g, md5(g::text) AS h FROM generate_series(1, 3000000) g",
    );
    let started = started_at("pg-2");
    // Once pg-2 has replayed that much WAL.
    let p = prepare_caught_up(
        &app,
        &[("kind", "base_backup"), ("member", "pg-2"), ("compression", "zstd")],
    )
    .await;
    assert!(p.can_run(), "{:?}", p.preconditions);
    let id = start(&app, &p, "").await;
    let container = domain::backup::base::CONTAINER;
    eventually(Duration::from_secs(60), "pg_basebackup running", || async {
        container_running(container).then_some(())
    })
    .await;
    assert!(docker(&["kill", container]).status.success());
    let job = wait_job(&app, &app.http, &id).await;
    let err = match &job.outcome {
        Some(Err(e)) => e.clone(),
        other => panic!("the killed backup did not fail: {other:?}"),
    };
    eprintln!("killed mid-copy: {err}");
    assert!(
        err.starts_with("pg_basebackup failed (exit 137, killed (SIGKILL)"),
        "{err}"
    );
    let b = catalog(&app)
        .await
        .into_iter()
        .find(|b| b.id == id)
        .expect("listed as failed");
    assert_eq!((b.status.as_str(), b.kind), ("failed", BackupKind::Base), "{b:?}");
    let dir = app.data_dir.join("backups");
    let left: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.contains(&id) && !n.ends_with(".manifest.json"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(!dir.join(".staging").join(&id).exists(), "the work folder is removed");
    assert!(!container_running(container));
    assert_eq!(started_at("pg-2"), started, "pg-2 never stopped");
    ensure_replica(&app, "pg-2").await;
    sql(&app, "DROP TABLE base_bulk");
}

/// At its start a console removes the `pg_basebackup` container its own
/// interrupted backup left (bound to its backups folder), audited; one that
/// copies elsewhere belongs to another console on the same engine (as the
/// deployed console beside these tests) and is left running.
#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_starting_console_removes_its_own_leftover_copy_only() {
    let _g = lock_stack();
    let container = domain::backup::base::CONTAINER;
    let image = String::from_utf8(docker(&["inspect", "-f", "{{.Config.Image}}", "pg-2"]).stdout).unwrap();
    let root = std::env::temp_dir().join(format!("pgc-leftover-{}", std::process::id()));
    let (mine, theirs) = (root.join("mine"), root.join("theirs"));
    let copy_into = |backups: &std::path::Path| {
        let work = backups.join(".staging").join("20261201-000000-pg-2");
        std::fs::create_dir_all(&work).unwrap();
        docker(&["rm", "-f", container]);
        let bind = format!("{}:/backup", work.display());
        let out = docker(&[
            "run",
            "-d",
            "--name",
            container,
            "--network",
            "none",
            "-v",
            &bind,
            "--entrypoint",
            "sleep",
            image.trim(),
            "300",
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    let mine_dir = mine.display().to_string();

    copy_into(&theirs);
    let app = spawn_app_with(&[("PGC_BACKUPS_DIR", &mine_dir)]).await;
    assert!(container_running(container), "another console's copy is left running");
    assert!(!audit_rows(&app, "action=backup_recovered").await.contains(container));
    drop(app);

    copy_into(&mine);
    let app = spawn_app_with(&[("PGC_BACKUPS_DIR", &mine_dir)]).await;
    assert!(
        !container_running(container),
        "its own leftover is removed before it serves"
    );
    let audit = audit_rows(&app, "action=backup_recovered").await;
    assert!(audit.contains("left by an interrupted hot base backup"), "{audit}");
    docker(&["rm", "-f", container]);
    let _ = std::fs::remove_dir_all(&root);
}
