//! The continuous WAL archive (pg-wal) against the real stack, as the
//! Overview and the timeline show it: segments arrive compressed and whole,
//! the archive follows a switchover onto the new timeline through the
//! permanent slot, and a stopped receiver is shown stopped, with the WAL the
//! leader keeps for it (an alert past the bound), then catches up without a gap.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use model::wal::{WalArchive, WalReceiverStatus};

pub(crate) async fn wal(app: &TestApp) -> WalArchive {
    app.overview()
        .await
        .wal_archive
        .expect("the Overview has the WAL archive")
}

pub(crate) async fn wal_until(app: &TestApp, what: &str, f: impl Fn(&WalArchive) -> bool) -> WalArchive {
    eventually(Duration::from_secs(60), what, || async {
        let w = wal(app).await;
        f(&w).then_some(w)
    })
    .await
}

/// Switches over to a replica other than `not` and waits until the write
/// endpoint routes to it; returns its name.
pub(crate) async fn switch_over(app: &TestApp, not: &str) -> String {
    let ov = app.overview().await;
    let old = ov.topology.leader().unwrap().name.clone();
    let new = ov
        .topology
        .members
        .iter()
        .find(|m| m.role.is_replica() && m.name != not)
        .unwrap()
        .name
        .clone();
    patronictl(&["switchover", "--leader", &old, "--candidate", &new, "--force"]);
    eventually(
        Duration::from_secs(90),
        "the new leader, behind the write endpoint",
        || async {
            let ov = app.overview().await;
            let led = ov.topology.leader().map(|l| l.name == new) == Some(true);
            (led && ov.endpoints.iter().any(|e| e.routes_to == [new.clone()])).then_some(())
        },
    )
    .await;
    new
}

/// Writes a little and closes the current segment, so it is archived.
pub(crate) fn write_and_switch(env: &std::collections::HashMap<String, String>, marker: &str) {
    psql(
        env,
        &env["WRITE_PORT"],
        &format!(
            "CREATE TABLE IF NOT EXISTS wal_archive_test(at timestamptz default now(), marker text);
             INSERT INTO wal_archive_test(marker) VALUES ('{marker}'); SELECT pg_switch_wal();"
        ),
    );
}

fn archive_dir(env: &std::collections::HashMap<String, String>, sysid: &str) -> PathBuf {
    PathBuf::from(&env["DEFAULT_DATA_DIR"]).join("wal-archive").join(sysid)
}

/// The uncompressed size of an archived segment (gzip -dc).
fn segment_size(path: &std::path::Path) -> usize {
    let out = Command::new("gzip").arg("-dc").arg(path).output().expect("gzip");
    assert!(out.status.success(), "{path:?} is not a whole gzip file");
    out.stdout.len()
}

fn timeline_of(segment: &str) -> u32 {
    u32::from_str_radix(&segment[..8], 16).unwrap()
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn the_archive_follows_a_switchover_and_a_stopped_receiver_catches_up() {
    let _g = lock_stack();
    let env = stack_env();
    let app = spawn_app_with(&[("PGC_WAL_RETAINED_ALERT_MB", "40"), ("PGC_TIMELINE_SAMPLE_SECS", "1")]).await;
    ensure_replica(&app, "pg-0").await;
    let from = domain::datetime::user_utc(domain::now_ms() - 1000);
    let w = wal_until(&app, "pg-wal receiving", |w| w.status == WalReceiverStatus::Receiving).await;
    assert!(w.slot_exists && w.error.is_none(), "{w:?}");
    let sysid = w.system_identifier.clone().unwrap();
    let ov = app.overview().await;
    let c = ov
        .containers
        .iter()
        .find(|c| c.name == "pg-wal")
        .expect("pg-wal among the containers");
    assert_eq!(c.status, model::containers::ContainerStatus::Running, "{c:?}");

    // A closed segment is archived whole (16 MB of WAL, gzip), named on the leader's timeline.
    write_and_switch(&env, "before-switchover");
    let before = wal_until(&app, "a new segment archived", |n| {
        n.files.newest_segment != w.files.newest_segment
    })
    .await;
    let newest = before.files.newest_segment.clone().unwrap();
    let path = archive_dir(&env, &sysid).join(&newest);
    assert_eq!(segment_size(&path), 16 * 1024 * 1024, "{newest}");
    let leader_tl = app.overview().await.topology.leader().unwrap().timeline.unwrap() as u32;
    assert_eq!(timeline_of(&newest), leader_tl);

    // A switchover: the receiver follows the new leader on its new timeline.
    switch_over(&app, "").await;
    write_and_switch(&env, "after-switchover");
    let after = wal_until(&app, "a segment of the new timeline", |n| {
        n.status == WalReceiverStatus::Receiving
            && n.files.newest_segment.as_deref().map(timeline_of) == Some(leader_tl + 1)
    })
    .await;
    assert!(after.files.timelines.contains(&(leader_tl + 1)), "{:?}", after.files);
    let history = archive_dir(&env, &sysid).join(format!("{:08X}.history.gz", leader_tl + 1));
    assert!(history.exists(), "{history:?}: the new timeline's history is archived");
    assert_eq!(after.files.gaps, w.files.gaps, "no new gap");

    // Stopped: shown stopped; the leader keeps what it has not received, and past 40 MB says so.
    let stopped = Stopped::new("pg-wal");
    wal_until(&app, "pg-wal seen stopped", |n| n.status == WalReceiverStatus::Stopped).await;
    for i in 0..3 {
        write_and_switch(&env, &format!("while-stopped-{i}"));
    }
    let kept = wal_until(&app, "the alert on retained WAL", |n| n.retained_alert.is_some()).await;
    assert!(kept.retained_bytes.unwrap() >= 40 << 20, "{kept:?}");
    assert_eq!(
        kept.behind_bytes, kept.retained_bytes,
        "stopped: behind by what the slot keeps"
    );
    let html = app.get_text(&app.http, "/").await;
    assert!(
        html.contains("data-testid=\"wal-alert\""),
        "the Overview shows the alert"
    );

    // Started again: it catches up from the slot, with no gap, and the alert goes.
    drop(stopped);
    let back = wal_until(&app, "pg-wal caught up", |n| {
        n.status == WalReceiverStatus::Receiving && n.retained_alert.is_none()
    })
    .await;
    assert_eq!(back.files.gaps, w.files.gaps, "no new gap");
    assert!(
        back.files.segments >= after.files.segments + 3,
        "{:?} then {:?}",
        after.files,
        back.files
    );

    // The timeline has the stop, the alert, and the return, in that order
    // (a switchover also shows as a short stop: the receiver reconnects to the new leader).
    let texts: Vec<String> = eventually(Duration::from_secs(10), "the archive's events", || async {
        let events = crate::timeline::events_since(&app, &from).await;
        let texts: Vec<String> = events
            .into_iter()
            .filter(|e| e.kind == model::timeline::EventKind::WalArchive)
            .map(|e| e.text)
            .collect();
        let alert = texts.iter().rposition(|t| t.starts_with("alert: the leader keeps"))?;
        texts[alert..]
            .iter()
            .any(|t| t.starts_with("WAL archive receiving again"))
            .then_some(texts)
    })
    .await;
    let last = |p: &str| {
        texts
            .iter()
            .rposition(|t| t.starts_with(p))
            .unwrap_or_else(|| panic!("{p}: {texts:?}"))
    };
    assert!(
        last("WAL archive stopped receiving") < last("alert: the leader keeps"),
        "{texts:?}"
    );
    assert!(
        last("alert: the leader keeps") < last("WAL archive receiving again"),
        "{texts:?}"
    );
}

/// `SELECT` through the write endpoint, one value.
pub(crate) fn leader_value(env: &std::collections::HashMap<String, String>, sql: &str) -> String {
    psql(env, &env["WRITE_PORT"], sql)
}

/// Removes the scratch replay's container and folder, whatever the test did.
struct Replay {
    container: &'static str,
    dir: PathBuf,
}

impl Drop for Replay {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", self.container]).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The archive is good for point-in-time recovery, across a timeline: a
/// replica backup, then marker rows at T1, a switchover, T2 and T3 (T3 only
/// in the segment still being received); the backup replayed with the node
/// image's `wal-restore` from the archive to a time between T2 and T3 (in a
/// scratch PostgreSQL with no network) has the T1 and T2 rows and not the T3
/// row. What the console will do for "restore to a time", by hand.
#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_backup_replayed_from_the_archive_stops_at_a_time_past_a_switchover() {
    let _g = lock_stack();
    let env = stack_env();
    let app = spawn_app().await;
    ensure_replica(&app, "pg-2").await;
    leader_value(
        &env,
        "DROP TABLE IF EXISTS pitr_markers; CREATE TABLE pitr_markers(marker text primary key, at timestamptz default clock_timestamp());
         INSERT INTO pitr_markers(marker) VALUES ('before-backup');",
    );
    let plan = crate::backups::prepare_backup(&app, "pg-2", "gzip").await;
    assert!(plan.can_run(), "{:?}", plan.preconditions);
    let id = crate::backups::start(&app, &plan).await;
    let job = wait_job(&app, &app.http, &id).await;
    assert!(matches!(job.outcome, Some(Ok(_))), "{job:?}");
    let row = crate::backups::catalog(&app)
        .await
        .into_iter()
        .find(|r| r.id == id)
        .expect("the backup");
    let archive = crate::backups::backups_dir(&app).join(&row.archive);

    leader_value(&env, "INSERT INTO pitr_markers(marker) VALUES ('t1')");
    switch_over(&app, "pg-2").await;
    leader_value(&env, "INSERT INTO pitr_markers(marker) VALUES ('t2')");
    std::thread::sleep(Duration::from_millis(1500));
    let target = leader_value(&env, "SELECT clock_timestamp()::text");
    std::thread::sleep(Duration::from_millis(1500));
    // T3, left in the segment being received (no switch): the replay reads
    // it from .receiving/. Wait until pg-wal has written past T3's commit.
    let t3 = leader_value(
        &env,
        "INSERT INTO pitr_markers(marker) VALUES ('t3'); SELECT pg_current_wal_lsn();",
    );
    eventually(Duration::from_secs(30), "pg-wal to receive T3", || async {
        let q = format!("SELECT write_lsn >= '{t3}' FROM pg_stat_replication WHERE application_name = 'pg-wal'");
        (leader_value(&env, &q) == "t").then_some(())
    })
    .await;
    let sysid = wal(&app).await.system_identifier.expect("the system identifier");
    // The backup, extracted into a scratch folder beside the data.
    let dir = PathBuf::from(&env["DEFAULT_DATA_DIR"]).join(format!("pitr-test-{}", std::process::id()));
    let replay = Replay {
        container: "pgc-pitr-test",
        dir: dir.clone(),
    };
    let _ = Command::new("docker").args(["rm", "-f", replay.container]).output();
    std::fs::create_dir_all(dir.join("s")).unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", String::from_utf8_lossy(&tar.stderr));
    let top = domain::backup::archive::find_data_dir(&dir).expect("a data directory in the backup");
    let top = top.strip_prefix(&dir).unwrap().display().to_string();
    let _ = std::fs::remove_file(dir.join(&top).join("standby.signal"));
    std::fs::write(dir.join(&top).join("recovery.signal"), "").unwrap();
    // Patroni's postgresql.conf, without what a scratch copy must not use
    // (its addresses, its primary, its empty recovery targets), plus the replay.
    let conf = dir.join(&top).join("postgresql.conf");
    let dropped = [
        "listen_addresses",
        "port",
        "unix_socket_directories",
        "hba_file",
        "ident_file",
        "cluster_name",
        "primary_",
        "recovery_target",
        "restore_command",
        "archive_",
    ];
    let mut text: String = std::fs::read_to_string(&conf)
        .unwrap()
        .lines()
        .filter(|l| !dropped.iter().any(|d| l.trim_start().starts_with(d)))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push_str(&format!(
        "listen_addresses = ''\nport = 5432\nunix_socket_directories = '/restore/s'\n\
         hba_file = '/restore/{top}/pg_hba.conf'\nident_file = '/restore/{top}/pg_ident.conf'\n\
         cluster_name = 'pgc-pitr-test'\narchive_mode = off\n\
         restore_command = 'wal-restore /wal %f %p'\nrecovery_target_time = '{target}'\n\
         recovery_target_timeline = 'latest'\nrecovery_target_action = 'promote'\n"
    ));
    std::fs::write(&conf, text).unwrap();
    let script = format!(
        "chown -R postgres:postgres /restore && chmod 700 /restore/{top} && \
         exec su postgres -s /bin/sh -c 'exec /usr/lib/postgresql/15/bin/postgres -D /restore/{top}'"
    );
    docker(&[
        "run",
        "-d",
        "--name",
        replay.container,
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        "-v",
        &format!("{}:/restore", dir.display()),
        "-v",
        &format!("{}:/wal:ro", archive_dir(&env, &sysid).display()),
        &env["NODE_IMAGE"],
        "-c",
        &script,
    ]);
    let sql = |q: &str| {
        Command::new("docker")
            .args([
                "exec",
                replay.container,
                "psql",
                "-h",
                "/restore/s",
                "-U",
                "postgres",
                "-XAtc",
                q,
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let running = || {
        let out = docker(&["inspect", "-f", "{{.State.Running}}", replay.container]);
        String::from_utf8_lossy(&out.stdout).trim() == "true"
    };
    let ended = eventually(
        Duration::from_secs(120),
        "the replay to reach its target and promote",
        || async {
            match sql("SELECT pg_is_in_recovery()") {
                Some(r) if r == "f" => Some("promoted"),
                _ if !running() => Some("exited"),
                _ => None,
            }
        },
    )
    .await;
    let logs = String::from_utf8_lossy(&docker(&["logs", replay.container]).stderr).to_string();
    assert_eq!(ended, "promoted", "the scratch PostgreSQL said:\n{logs}");
    let markers = sql("SELECT string_agg(marker, ',' ORDER BY at) FROM pitr_markers").unwrap();
    assert_eq!(
        markers, "before-backup,t1,t2",
        "replayed to {target}; the scratch PostgreSQL said:\n{logs}"
    );
    assert!(logs.contains("recovery stopping before commit"), "{logs}");
    drop(replay);
}
