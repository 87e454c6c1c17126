//! Disaster recovery against the real stack: restore the whole cluster from
//! a backup, a restore that fails and puts the previous data back, and a
//! console killed in the middle of a restore.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::*;
use model::backups::{BackupRow, KeptData};
use model::operations::{OpJob, Plan};
use reqwest::StatusCode;

/// Back up `member` (zstd) and return its catalog row.
pub(crate) async fn take_backup(app: &TestApp, member: &str) -> BackupRow {
    ensure_replica(app, member).await;
    let p = prepare_caught_up(app, &[("kind", "backup"), ("member", member), ("compression", "zstd")]).await;
    assert!(p.can_run(), "{:?}", p.preconditions);
    let job = run(app, &p, "").await;
    assert!(matches!(job.outcome, Some(Ok(_))), "{job:?}");
    let (_, t) = post(app, &app.http, "/api/backups_list", &[]).await;
    let rows: Vec<BackupRow> = serde_json::from_str(&t).unwrap();
    rows.into_iter()
        .find(|b| b.status.as_str() == "ok")
        .expect("the backup is listed")
}

pub(crate) async fn prepare(app: &TestApp, form: &[(&str, &str)]) -> Plan {
    let (s, t) = post(app, &app.http, "/api/op_prepare", form).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    serde_json::from_str(&t).unwrap()
}

/// [`prepare`], planned again for up to 2 minutes until it may run (a
/// test's writes just before may keep a replica over its lag bound for a
/// moment); the last plan, whose failed checks the caller's assertion shows.
pub(crate) async fn prepare_caught_up(app: &TestApp, form: &[(&str, &str)]) -> Plan {
    let t0 = std::time::Instant::now();
    loop {
        let p = prepare(app, form).await;
        if p.can_run() || t0.elapsed() > Duration::from_secs(120) {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn prepare_restore(app: &TestApp, backup_id: &str) -> Plan {
    prepare(
        app,
        &[("kind", "restore_cluster"), ("member", ""), ("backup_id", backup_id)],
    )
    .await
}

/// Confirm (typed name, password) and start; the job id.
pub(crate) async fn start(app: &TestApp, p: &Plan, password: &str) -> String {
    let form = [
        ("token", p.token.as_str()),
        ("typed_name", p.confirm_name.as_str()),
        ("password", password),
    ];
    let (s, t) = post(app, &app.http, "/api/op_execute", &form).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    serde_json::from_str(&t).unwrap()
}

pub(crate) async fn run(app: &TestApp, p: &Plan, password: &str) -> OpJob {
    let id = start(app, p, password).await;
    wait_job(app, &app.http, &id).await
}

pub(crate) async fn kept(app: &TestApp) -> Vec<KeptData> {
    let (s, t) = post(app, &app.http, "/api/kept_list", &[]).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    serde_json::from_str(&t).unwrap()
}

fn kept_root(app: &TestApp) -> PathBuf {
    PathBuf::from(&app.env["DEFAULT_DATA_DIR"]).join("pg-console-kept")
}

/// Through the write endpoint; retried for a while, since HAProxy follows
/// a new leader a few seconds after Patroni.
pub(crate) fn sql(app: &TestApp, q: &str) -> String {
    let pw = format!("PGPASSWORD={}", app.env["PG_SUPERUSER_PASSWORD"]);
    let (host, port) = (&app.env["BIND_ADDR"], &app.env["WRITE_PORT"]);
    for _ in 0..60 {
        let out = std::process::Command::new("docker")
            .args([
                "exec", "-e", &pw, "pg-0", "psql", "-h", host, "-p", port, "-U", "postgres", "-XAtq", "-c", q,
            ])
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    psql(&app.env, port, q)
}

/// One leader and two streaming replicas, as the console sees them.
pub(crate) async fn healthy(app: &TestApp) {
    eventually(
        Duration::from_secs(180),
        "one leader and two streaming replicas",
        || async {
            let t = app.overview().await.topology;
            let streaming = t
                .members
                .iter()
                .filter(|m| m.role.is_replica() && m.caught_up())
                .count();
            (t.leader().is_some() && streaming == 2).then_some(())
        },
    )
    .await;
}

pub(crate) fn started_at(container: &str) -> String {
    let out = docker(&["inspect", "-f", "{{.State.StartedAt}}", container]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn restore_brings_back_the_backup_and_keeps_the_previous_data_until_discarded() {
    let _g = lock_stack();
    let app = spawn_app().await;
    let _ = std::fs::remove_dir_all(kept_root(&app));
    sql(
        &app,
        "drop table if exists pgc_canary; drop table if exists pgc_dropped; \
               create table pgc_canary(x int); insert into pgc_canary select generate_series(1, 137); \
               create table pgc_dropped(x int); insert into pgc_dropped values (1), (2)",
    );
    let backup = take_backup(&app, "pg-1").await;
    sql(
        &app,
        "insert into pgc_canary select generate_series(1000, 1041); drop table pgc_dropped",
    );
    let before = sql(&app, "select system_identifier from pg_control_system()");

    // Operators may not; the plan says what happens, in numbers.
    app.add_user("olga", "operator", "operator password long enough");
    let op = app.login("olga", "operator password long enough").await.unwrap();
    let (_, t) = post(
        &app,
        &op,
        "/api/op_prepare",
        &[("kind", "restore_cluster"), ("member", ""), ("backup_id", &backup.id)],
    )
    .await;
    let p: Plan = serde_json::from_str(&t).unwrap();
    assert!(
        !p.can_run() && p.preconditions.iter().any(|x| x.text.contains("only an admin")),
        "{p:?}"
    );
    let p = prepare_restore(&app, &backup.id).await;
    assert!(p.can_run() && p.needs_password, "{:?}", p.preconditions);
    assert_eq!(p.confirm_name, app.overview().await.topology.cluster);
    let text = format!("{:?} {:?}", p.steps, p.preconditions);
    for expected in [
        "pg-1's backup of",
        "becomes pg-1's data",
        "WRITES MADE AFTER",
        "moved aside",
        &before,
        "not deleted",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    // A wrong typed name changes nothing (and is a 4xx with a sentence).
    let (s, t) = post(
        &app,
        &app.http,
        "/api/op_execute",
        &[
            ("token", &p.token),
            ("typed_name", "nope"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert!(s.is_client_error() && t.contains("type exactly"), "{s} {t}");

    let job = run(&app, &p, ADMIN_PASSWORD).await;
    let outcome = format!("{:?}", job.outcome);
    assert!(matches!(job.outcome, Some(Ok(_))), "{job:?}");
    assert!(
        outcome.contains("row counts of") && outcome.contains("match"),
        "{outcome}"
    );
    healthy(&app).await;
    assert_eq!(
        sql(&app, "select count(*) from pgc_canary"),
        "137",
        "the later rows are gone"
    );
    assert_eq!(
        sql(&app, "select count(*) from pgc_dropped"),
        "2",
        "the dropped table is back"
    );
    assert_eq!(
        sql(&app, "select system_identifier from pg_control_system()"),
        backup.system_identifier
    );
    let t = app.overview().await.topology;
    assert_eq!(t.leader().map(|l| l.name.as_str()), Some("pg-1"));

    // The previous data is kept, listed with its size, until an admin discards it.
    let k = kept(&app).await;
    assert_eq!(k.len(), 1, "{k:?}");
    assert_eq!(k[0].phase.as_str(), "done");
    assert!(k[0].bytes > 10_000_000 && k[0].holds.contains("from before"), "{k:?}");
    let folder = kept_root(&app).join(&k[0].id);
    assert!(folder.join("previous/pg/pg0-data/PG_VERSION").is_file());
    assert!(folder.join("previous/etcd/member").is_dir());
    let d = prepare(&app, &[("kind", "discard_kept"), ("member", ""), ("kept_id", &k[0].id)]).await;
    assert!(d.can_run() && d.needs_password && d.confirm_name == k[0].id, "{d:?}");
    let job = run(&app, &d, ADMIN_PASSWORD).await;
    assert!(matches!(job.outcome, Some(Ok(_))), "{job:?}");
    assert!(!folder.exists());
    assert!(kept(&app).await.is_empty());
    assert!(audit_rows(&app, "").await.contains("Restore the cluster"));
    assert!(app.cli(&["audit", "verify"], "").status.success());
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_failed_restore_changes_nothing_or_puts_the_previous_data_back() {
    let _g = lock_stack();
    // A timeout far longer than the start failure's 15 s: the rollback below
    // must come from Patroni's "start failed", not from the timeout.
    let app = spawn_app_with(&[("PGC_RESTORE_TIMEOUT_SECS", "240")]).await;
    let _ = std::fs::remove_dir_all(kept_root(&app));
    sql(&app, "drop table if exists pgc_canary; create table pgc_canary(x int); insert into pgc_canary select generate_series(1, 10)");
    let backup = take_backup(&app, "pg-2").await;
    sql(&app, "insert into pgc_canary select generate_series(11, 20)");
    let archive = app.data_dir.join("backups").join(&backup.archive);
    let original = std::fs::read(&archive).unwrap();

    // 1. A flipped byte after a good test restore: the sha256 checked again
    // no longer matches; refused before anything stops.
    let (s, t) = post(&app, &app.http, "/api/backup_verify", &[("id", &backup.id)]).await;
    assert!(s == StatusCode::OK && t.contains("\"ok\":true"), "{s} {t}");
    let p = prepare_restore(&app, &backup.id).await;
    assert!(p.can_run(), "{:?}", p.preconditions);
    let mut bad = original.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&archive, &bad).unwrap();
    let started: Vec<String> = ["pg-0", "pg-1", "pg-2", "etcd"].iter().map(|c| started_at(c)).collect();
    let job = run(&app, &p, ADMIN_PASSWORD).await;
    let e = format!("{:?}", job.outcome);
    assert!(matches!(job.outcome, Some(Err(_))) && e.contains("sha256"), "{e}");
    let now: Vec<String> = ["pg-0", "pg-1", "pg-2", "etcd"].iter().map(|c| started_at(c)).collect();
    assert_eq!(started, now, "no container was stopped");
    assert_eq!(sql(&app, "select count(*) from pgc_canary"), "20");

    // 2. An archive that was bad when it was made (its manifest agrees with
    // it): PostgreSQL 15 will not start a data directory that says 14.
    // Patroni reports "start failed" on every try; the restore gives up 15 s
    // after the first, and the previous data comes back.
    std::fs::write(&archive, &original).unwrap();
    let work = app.data_dir.join("repack");
    std::fs::create_dir_all(&work).unwrap();
    let status = std::process::Command::new("tar")
        .args(["--zstd", "-xf", archive.to_str().unwrap(), "-C", work.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(work.join("pg2-data/PG_VERSION"), "14\n").unwrap();
    let status = std::process::Command::new("tar")
        .args([
            "--zstd",
            "-cf",
            archive.to_str().unwrap(),
            "-C",
            work.to_str().unwrap(),
            "pg2-data",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let sum = String::from_utf8(
        std::process::Command::new("sha256sum")
            .arg(&archive)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let manifest = app
        .data_dir
        .join("backups")
        .join(format!("{}.manifest.json", backup.archive));
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    m["sha256"] = sum.split_whitespace().next().unwrap().into();
    m["verified_ok"] = true.into();
    std::fs::write(&manifest, m.to_string()).unwrap();

    let p = prepare_restore(&app, &backup.id).await;
    assert!(p.can_run(), "{:?}", p.preconditions);
    let job = run(&app, &p, ADMIN_PASSWORD).await;
    let e = format!("{:?}", job.outcome);
    assert!(
        matches!(job.outcome, Some(Err(_))) && e.contains("previous data is back"),
        "{e}"
    );
    assert!(e.contains("pg-2 does not start from the restored data"), "{e}");
    healthy(&app).await;
    assert_eq!(
        sql(&app, "select count(*) from pgc_canary"),
        "20",
        "the old cluster, unchanged"
    );
    let k = kept(&app).await;
    assert_eq!(k[0].phase.as_str(), "rolled_back", "{k:?}");
    assert!(k[0].holds.contains("failed restore"), "{k:?}");
    let _ = std::fs::remove_dir_all(kept_root(&app));
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_console_killed_mid_restore_puts_the_previous_data_back_at_its_next_start() {
    let _g = lock_stack();
    let mut app = spawn_app().await;
    let _ = std::fs::remove_dir_all(kept_root(&app));
    sql(&app, "drop table if exists pgc_canary; create table pgc_canary(x int); insert into pgc_canary select generate_series(1, 5)");
    let backup = take_backup(&app, "pg-1").await;
    sql(&app, "insert into pgc_canary select generate_series(6, 9)");
    let p = prepare_restore(&app, &backup.id).await;
    let _id = start(&app, &p, ADMIN_PASSWORD).await;
    let root = kept_root(&app);
    let phase = || {
        std::fs::read_dir(&root)
            .ok()?
            .flatten()
            .find_map(|e| std::fs::read_to_string(e.path().join("restore.json")).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map(|j| j["phase"].as_str().unwrap_or_default().to_string())
    };
    eventually(
        Duration::from_secs(300),
        "the restore to be starting the restored cluster",
        || async { (phase().as_deref() == Some("starting")).then_some(()) },
    )
    .await;
    app.restart().await;
    eventually(
        Duration::from_secs(300),
        "the restarted console to put the previous data back",
        || async { (phase().as_deref() == Some("rolled_back")).then_some(()) },
    )
    .await;
    healthy(&app).await;
    assert_eq!(
        sql(&app, "select count(*) from pgc_canary"),
        "9",
        "the previous data, all of it"
    );
    // The recovery audits once it has seen the old cluster healthy itself,
    // which may be a poll after this test saw it.
    eventually(Duration::from_secs(60), "the recovery audited", || async {
        audit_rows(&app, "action=restore_recovered")
            .await
            .contains("interrupted")
            .then_some(())
    })
    .await;
    let _ = std::fs::remove_dir_all(root);
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_hand_made_sop_archive_is_imported_then_restored() {
    let _g = lock_stack();
    let app = spawn_app().await;
    let _ = std::fs::remove_dir_all(kept_root(&app));
    sql(&app, "drop table if exists pgc_canary; create table pgc_canary(x int); insert into pgc_canary select generate_series(1, 7)");
    ensure_replica(&app, "pg-2").await;
    // The SOP's section 4, verbatim: stop the replica, tar its mapped volume, start it.
    let imports = app.data_dir.join("backups/import");
    std::fs::create_dir_all(&imports).unwrap();
    let data = format!("{}/pg/pg2-data", app.env["DEFAULT_DATA_DIR"]);
    docker(&["stop", "pg-2"]);
    let tar = std::process::Command::new("tar")
        .args(["-czf", imports.join("pg2-backup.tar.gz").to_str().unwrap(), &data])
        .output()
        .unwrap();
    docker(&["start", "pg-2"]);
    assert!(tar.status.success(), "{}", String::from_utf8_lossy(&tar.stderr));
    std::fs::write(imports.join("notes.txt"), "not an archive").unwrap();
    healthy(&app).await;
    sql(&app, "insert into pgc_canary select generate_series(8, 30)");

    // Listed (archives only), refused with a sentence when not an archive, then imported.
    let (s, t) = post(&app, &app.http, "/api/imports_list", &[]).await;
    assert!(
        s == StatusCode::OK && t.contains("pg2-backup.tar.gz") && !t.contains("notes.txt"),
        "{s} {t}"
    );
    for bad in ["notes.txt", "../pg2-backup.tar.gz"] {
        let (s, t) = post(&app, &app.http, "/api/backup_import", &[("name", bad)]).await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{bad}: {t}");
    }
    let (s, t) = post(&app, &app.http, "/api/backup_import", &[("name", "pg2-backup.tar.gz")]).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let row: BackupRow = serde_json::from_str(&t).unwrap();
    assert_eq!(row.member, "pg-2");
    assert_eq!(row.imported_from.as_deref(), Some("pg2-backup.tar.gz"));
    assert!(row.restore_test.as_ref().is_some_and(|r| r.ok), "{row:?}");

    let p = prepare_restore(&app, &row.id).await;
    assert!(p.can_run(), "{:?}", p.preconditions);
    let job = run(&app, &p, ADMIN_PASSWORD).await;
    assert!(matches!(job.outcome, Some(Ok(_))), "{job:?}");
    healthy(&app).await;
    assert_eq!(sql(&app, "select count(*) from pgc_canary"), "7");
    assert!(audit_rows(&app, "action=backup_import")
        .await
        .contains("pg2-backup.tar.gz"));
    let _ = std::fs::remove_dir_all(kept_root(&app));
}
