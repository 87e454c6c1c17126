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

/// The archive's state once `f` holds; after 60 s, fails with the last
/// state and what pg-wal said.
pub(crate) async fn wal_until(app: &TestApp, what: &str, f: impl Fn(&WalArchive) -> bool) -> WalArchive {
    let t0 = std::time::Instant::now();
    loop {
        let w = wal(app).await;
        if f(&w) {
            return w;
        }
        if t0.elapsed() > Duration::from_secs(60) {
            let logs = Command::new("docker")
                .args(["logs", "--tail", "40", "pg-wal"])
                .output()
                .unwrap();
            panic!(
                "timed out after 60s waiting for {what}; the archive: {w:?}; pg-wal said:\n{}{}",
                String::from_utf8_lossy(&logs.stdout),
                String::from_utf8_lossy(&logs.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
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
