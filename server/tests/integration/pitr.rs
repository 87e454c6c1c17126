//! Point-in-time recovery through the console against the real stack:
//! "Restore the cluster to a time…" replays a backup with the WAL archive
//! across a switchover and stops at the second asked for; a receiver that
//! lost WAL shows the gap, and a restore past it is refused with the reason.

use std::time::Duration;

use crate::restore::{healthy, kept, prepare, run, sql, take_backup};
use crate::support::*;
use crate::wal_archive::{leader_value, switch_over, wal_until, write_and_switch};
use model::operations::{OpJob, Plan};
use model::wal::WalReceiverStatus;

/// The leader's clock now, as a user types a time (UTC, to the second).
pub(crate) fn leader_now(env: &std::collections::HashMap<String, String>) -> String {
    leader_value(
        env,
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')",
    )
}

pub(crate) async fn prepare_to_time(app: &TestApp, target: &str) -> Plan {
    prepare(
        app,
        &[("kind", "restore_to_time"), ("member", ""), ("target_time", target)],
    )
    .await
}

/// A fresh marker table with the row from before the backup.
fn new_markers(env: &std::collections::HashMap<String, String>) {
    leader_value(
        env,
        "DROP TABLE IF EXISTS pitr_markers; CREATE TABLE pitr_markers(marker text primary key, at timestamptz default clock_timestamp());
         INSERT INTO pitr_markers(marker) VALUES ('before-backup');",
    );
}

/// The job's outcome, which must be a success.
pub(crate) fn succeeded(job: &OpJob) -> String {
    match &job.outcome {
        Some(Ok(o)) => o.clone(),
        other => panic!("the restore failed: {other:?}\n{job:?}"),
    }
}

/// The data from before the restore is kept; discarded here to free the space.
pub(crate) async fn discard_kept(app: &TestApp) {
    let k = kept(app).await;
    let newest = k.iter().max_by_key(|k| k.started_at_ms).expect("kept data");
    assert_eq!(newest.phase.as_str(), "done", "{k:?}");
    let d = prepare(
        app,
        &[("kind", "discard_kept"), ("member", ""), ("kept_id", &newest.id)],
    )
    .await;
    let job = run(app, &d, ADMIN_PASSWORD).await;
    assert!(matches!(job.outcome, Some(Ok(_))), "{job:?}");
}

fn texts(p: &Plan) -> Vec<String> {
    p.preconditions.iter().map(|c| c.text.clone()).collect()
}

/// The test: marker rows at T1, a switchover, T2 and T3; a restore
/// to a time between T2 and T3 has T1 and T2 and not T3, with one leader
/// and two streaming replicas, the same system identifier, a new timeline,
/// and pg-wal archiving the restored cluster.
#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_restore_to_a_time_between_t2_and_t3_keeps_t1_and_t2_across_a_switchover() {
    let _g = lock_stack();
    let env = stack_env();
    let app = spawn_app().await;
    wal_until(&app, "pg-wal receiving", |w| w.status == WalReceiverStatus::Receiving).await;
    new_markers(&env);
    let backup = take_backup(&app, "pg-2").await;
    leader_value(&env, "INSERT INTO pitr_markers(marker) VALUES ('t1')");
    switch_over(&app, "pg-2").await;
    leader_value(&env, "INSERT INTO pitr_markers(marker) VALUES ('t2')");
    std::thread::sleep(Duration::from_millis(1200));
    let target = leader_now(&env);
    std::thread::sleep(Duration::from_millis(1200));
    leader_value(&env, "INSERT INTO pitr_markers(marker) VALUES ('t3')");
    // pg-wal reconnects to the new leader after the switchover.
    wal_until(&app, "pg-wal receiving from the new leader", |w| {
        w.status == WalReceiverStatus::Receiving
    })
    .await;
    let before = app.overview().await.topology;
    let timeline = before.leader().and_then(|l| l.timeline).unwrap();
    let sysid = sql(&app, "SELECT system_identifier FROM pg_control_system()");

    let p = prepare_to_time(&app, &target).await;
    assert!(p.can_run(), "{:?}", p.preconditions);
    assert!(p.needs_password && p.confirm_name == before.cluster, "{p:?}");
    assert!(p.title.ends_with(&format!("to {target} UTC")), "{}", p.title);
    let t = texts(&p);
    assert!(
        t.iter()
            .any(|x| x.starts_with("the archive can restore any second from")
                && x.contains("to now (pg-wal is receiving)")),
        "{t:?}"
    );
    assert!(t.iter().any(|x| x.starts_with("pg-2's backup of")), "{t:?}");
    assert!(
        p.steps
            .last()
            .unwrap()
            .starts_with(&format!("WRITES MADE AFTER {target} UTC ARE LOST")),
        "{:?}",
        p.steps
    );
    let job = run(&app, &p, ADMIN_PASSWORD).await;
    let outcome = succeeded(&job);
    eprintln!("restore to {target}: {outcome}");
    assert!(outcome.contains(&format!("replayed to {target} UTC")), "{outcome}");
    assert!(outcome.contains("recovery stopping before commit"), "{outcome}");
    assert!(
        outcome.contains(&backup.id) || outcome.contains("pg-2's backup"),
        "{outcome}"
    );

    healthy(&app).await;
    assert_eq!(
        sql(&app, "SELECT string_agg(marker, ',' ORDER BY at) FROM pitr_markers"),
        "before-backup,t1,t2",
        "restored to {target}"
    );
    assert_eq!(sql(&app, "SELECT system_identifier FROM pg_control_system()"), sysid);
    let after = app.overview().await.topology;
    assert_eq!(after.leader().map(|l| l.name.as_str()), Some("pg-2"));
    assert!(after.leader().and_then(|l| l.timeline).unwrap() > timeline, "{after:?}");
    // pg-wal goes on archiving the restored cluster's new timeline.
    leader_value(
        &env,
        "INSERT INTO pitr_markers(marker) VALUES ('after-restore'); SELECT pg_switch_wal();",
    );
    wal_until(&app, "pg-wal receiving from the restored cluster", |w| {
        w.status == WalReceiverStatus::Receiving && w.slot_exists
    })
    .await;
    assert!(audit_rows(&app, "").await.contains("Restore the cluster"));

    discard_kept(&app).await;
}

/// pg-wal stopped while its slot is dropped and more WAL than
/// `wal_keep_size` is written: the leader removes WAL the archive never got.
/// The Overview shows the gap; a restore to a time past it is refused with
/// the reason, and one to a time before it is still offered.
#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_gap_in_the_archive_is_shown_and_a_restore_past_it_is_refused() {
    let _g = lock_stack();
    let env = stack_env();
    let app = spawn_app().await;
    wal_until(&app, "pg-wal receiving", |w| w.status == WalReceiverStatus::Receiving).await;
    take_backup(&app, "pg-2").await;
    write_and_switch(&env, "before-gap");
    std::thread::sleep(Duration::from_millis(1200));
    let before_gap = leader_now(&env);
    std::thread::sleep(Duration::from_millis(1200));
    // WAL written after that time reaches the archive: it holds that time.
    leader_value(&env, "INSERT INTO wal_archive_test(marker) VALUES ('after-before-gap')");
    // (Between two segments, for a moment, none is being received.)
    let w0 = wal_until(&app, "the last writes archived", |w| {
        w.status == WalReceiverStatus::Receiving && w.behind_bytes == Some(0) && w.files.receiving_segment.is_some()
    })
    .await;
    let resume_at = w0.files.receiving_segment.clone().expect("a segment being received");

    let stopped = Stopped::new("pg-wal");
    wal_until(&app, "pg-wal seen stopped", |w| w.status == WalReceiverStatus::Stopped).await;
    for _ in 0..24 {
        write_and_switch(&env, "lost");
    }
    // Without the slot, a checkpoint removes what pg-wal has not received
    // (beyond wal_keep_size). Patroni then creates its permanent slot again,
    // at the new checkpoint's redo point: the archive has lost that WAL.
    let segment = &resume_at[..24];
    eventually(Duration::from_secs(60), "the WAL pg-wal needs removed", || async {
        leader_value(&env, "SELECT pg_drop_replication_slot('pg_wal_archive') FROM pg_replication_slots WHERE slot_name = 'pg_wal_archive'");
        leader_value(&env, "CHECKPOINT");
        let left = leader_value(&env, &format!("SELECT count(*) FROM pg_ls_waldir() WHERE name = '{segment}'"));
        (left == "0").then_some(())
    })
    .await;
    eventually(Duration::from_secs(60), "Patroni to create the slot again", || async {
        (leader_value(
            &env,
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'pg_wal_archive'",
        ) == "1")
            .then_some(())
    })
    .await;
    drop(stopped);

    let gapped = wal_until(&app, "the gap shown", |w| {
        w.status == WalReceiverStatus::Receiving && w.files.gaps.len() > w0.files.gaps.len()
    })
    .await;
    let gap = gapped.files.gaps.last().unwrap().clone();
    let html = app.get_text(&app.http, "/").await;
    assert!(html.contains("data-testid=\"wal-gap\""), "the Overview shows the gap");

    let past = leader_now(&env);
    let refused = prepare_to_time(&app, &past).await;
    assert!(!refused.can_run(), "{:?}", refused.preconditions);
    let why: Vec<String> = refused
        .preconditions
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.text.clone())
        .collect();
    assert_eq!(why.len(), 1, "{why:?}");
    assert!(
        why[0].starts_with(&format!(
            "{past} UTC is past a gap in the archive: WAL from {} to {} is missing",
            gap.from_lsn, gap.to_lsn
        )),
        "{why:?}"
    );
    assert!(
        texts(&refused)
            .iter()
            .any(|t| t.contains("is missing (pg-wal lost it between")),
        "{:?}",
        refused.preconditions
    );

    let offered = prepare_to_time(&app, &before_gap).await;
    assert!(offered.can_run(), "{:?}", offered.preconditions);
}

/// The disaster path: pg-wal is down, so no transaction can be archived
/// after the target, and the archive holds no commit after it. PostgreSQL
/// then ends recovery before reaching the target; everything archived is
/// from before the target, so the console replays all of it instead, and
/// says so.
#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn with_the_receiver_down_a_restore_replays_all_the_archive_holds_before_the_target() {
    let _g = lock_stack();
    let env = stack_env();
    let app = spawn_app().await;
    wal_until(&app, "pg-wal receiving", |w| w.status == WalReceiverStatus::Receiving).await;
    new_markers(&env);
    take_backup(&app, "pg-2").await;
    leader_value(&env, "INSERT INTO pitr_markers(marker) VALUES ('t1')");
    std::thread::sleep(Duration::from_millis(1200));
    let target = leader_now(&env);
    std::thread::sleep(Duration::from_millis(1200));
    // WAL after the target but no commit: the archive reaches past the target.
    leader_value(&env, "CHECKPOINT");
    wal_until(&app, "the checkpoint archived", |w| {
        w.status == WalReceiverStatus::Receiving && w.behind_bytes == Some(0)
    })
    .await;
    let stopped = Stopped::new("pg-wal");
    wal_until(&app, "pg-wal seen stopped", |w| w.status == WalReceiverStatus::Stopped).await;
    // Lost with the receiver down, and after the target anyway.
    leader_value(&env, "INSERT INTO pitr_markers(marker) VALUES ('t2')");

    let p = prepare_to_time(&app, &target).await;
    assert!(p.can_run(), "{:?}", p.preconditions);
    assert!(
        texts(&p)
            .iter()
            .any(|t| t.contains("(pg-wal last wrote then; it is not receiving)")),
        "{:?}",
        p.preconditions
    );
    let job = run(&app, &p, ADMIN_PASSWORD).await;
    let outcome = succeeded(&job);
    eprintln!("restore to {target} with pg-wal down: {outcome}");
    assert!(
        outcome.contains("the archive holds no transaction after the target: all of it was replayed"),
        "{outcome}"
    );
    assert!(
        job.steps
            .iter()
            .any(|s| s.text.starts_with("no transaction could be archived now")),
        "{:?}",
        job.steps
    );
    healthy(&app).await;
    assert_eq!(
        sql(&app, "SELECT string_agg(marker, ',' ORDER BY at) FROM pitr_markers"),
        "before-backup,t1"
    );
    drop(stopped);
    wal_until(&app, "pg-wal receiving from the restored cluster", |w| {
        w.status == WalReceiverStatus::Receiving
    })
    .await;
    discard_kept(&app).await;
}
