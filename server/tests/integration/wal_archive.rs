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

/// Writes a marker row through the write endpoint.
fn write_marker(env: &std::collections::HashMap<String, String>, marker: &str) {
    psql(
        env,
        &env["WRITE_PORT"],
        &format!(
            "CREATE TABLE IF NOT EXISTS wal_archive_test(at timestamptz default now(), marker text);
             INSERT INTO wal_archive_test(marker) VALUES ('{marker}')"
        ),
    );
}

/// Writes a little and closes the current segment, so it is archived.
pub(crate) fn write_and_switch(env: &std::collections::HashMap<String, String>, marker: &str) {
    write_marker(env, marker);
    psql(env, &env["WRITE_PORT"], "SELECT pg_switch_wal()");
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

/// A history file of `member`'s `pg_wal`, moved aside until dropped.
struct HistoryAside {
    member: String,
    name: String,
}

impl HistoryAside {
    fn new(member: &str, timeline: u32) -> Self {
        let name = format!("{timeline:08X}.history");
        let script = format!("f=/home/postgres/data/pg_wal/{name}; if [ -f $f ]; then mv $f /tmp/{name}; fi");
        assert!(docker(&["exec", member, "sh", "-c", &script]).status.success());
        HistoryAside {
            member: member.into(),
            name,
        }
    }
}

impl Drop for HistoryAside {
    fn drop(&mut self) {
        let n = &self.name;
        let script = format!("if [ -f /tmp/{n} ]; then mv /tmp/{n} /home/postgres/data/pg_wal/{n}; fi");
        let _ = Command::new("docker")
            .args(["exec", &self.member, "sh", "-c", &script])
            .output();
    }
}

/// pg-wal stopped across a switchover resumes its partial segment of the
/// old timeline, with that timeline's history file it keeps, even when the
/// new leader lacks the file (a member rebuilt from another has only the
/// history files of later timelines; pg_receivewal would ask it, be refused,
/// and start over and over).
#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_receiver_stopped_across_a_switchover_resumes_without_the_leaders_old_history_file() {
    let _g = lock_stack();
    let env = stack_env();
    let app = spawn_app().await;
    let w = wal_until(&app, "pg-wal receiving", |w| w.status == WalReceiverStatus::Receiving).await;
    let leader_tl = || async { app.overview().await.topology.leader().unwrap().timeline.unwrap() as u32 };
    if leader_tl().await == 1 {
        // Timeline 1 has no history file: move to the next one.
        switch_over(&app, "").await;
        write_and_switch(&env, "onto-timeline-2");
        wal_until(&app, "pg-wal on timeline 2", |n| {
            n.status == WalReceiverStatus::Receiving && n.files.newest_segment.as_deref().map(timeline_of) == Some(2)
        })
        .await;
    }
    let tl = leader_tl().await;
    // pg-wal holds a partial segment of timeline tl when it stops (with none,
    // it would start from the slot's position on the new timeline).
    let receiving = archive_dir(&env, w.system_identifier.as_deref().unwrap()).join(".receiving");
    write_marker(&env, "partial");
    eventually(
        Duration::from_secs(30),
        "a partial segment of the leader's timeline",
        || async {
            let prefix = format!("{tl:08X}");
            std::fs::read_dir(&receiving)
                .ok()?
                .flatten()
                .any(|e| {
                    let n = e.file_name().to_string_lossy().to_string();
                    n.starts_with(&prefix) && n.ends_with(".partial")
                })
                .then_some(())
        },
    )
    .await;
    let since = domain::now_ms() / 1000;
    let stopped = Stopped::new("pg-wal");
    let new = switch_over(&app, "").await;
    let _aside = HistoryAside::new(&new, tl);
    drop(stopped);
    write_and_switch(&env, "after-resume");
    let back = wal_until(&app, "pg-wal receiving on the new timeline", |n| {
        n.status == WalReceiverStatus::Receiving && n.files.newest_segment.as_deref().map(timeline_of) == Some(tl + 1)
    })
    .await;
    assert_eq!(back.files.gaps, w.files.gaps, "no new gap");
    let logs = Command::new("docker")
        .args(["logs", "--since", &since.to_string(), "pg-wal"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&logs.stderr).to_string() + &String::from_utf8_lossy(&logs.stdout);
    let resumed = format!("(timeline {tl})");
    assert!(
        said.lines()
            .any(|l| l.contains("starting log streaming at") && l.ends_with(&resumed))
            && !said.contains("cannot continue the partial segment"),
        "the partial segment of timeline {tl} was continued, not given up: {said}"
    );
}

/// `SELECT` through the write endpoint, one value.
pub(crate) fn leader_value(env: &std::collections::HashMap<String, String>, sql: &str) -> String {
    psql(env, &env["WRITE_PORT"], sql)
}
