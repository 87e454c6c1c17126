//! Replication lag over time against the real stack: pg-2's WAL receiver is
//! frozen (SIGSTOP) while pgbench writes through HAProxy. pg-2's chart (the
//! hour from memory, the day by the minute) rises over the healthy bound,
//! falls after thawing, and the timeline records both crossings, in order,
//! linked to the member's page. Then: the page itself and bad input.

use std::time::Duration;

use crate::support::*;
use model::lag::{LagHistory, LagSample};
use model::timeline::TimelinePage;
use model::topology::CAUGHT_UP_LAG_BYTES;

async fn lag(app: &TestApp, form: &[(&str, &str)]) -> (u16, String) {
    let (status, body) = post(app, &app.http, "/api/lag_history", form).await;
    (status.as_u16(), body)
}

/// pg-2's samples over `range`, oldest first.
async fn pg2(app: &TestApp, range: &str) -> Vec<LagSample> {
    let (status, body) = lag(app, &[("range", range), ("member", "pg-2")]).await;
    assert_eq!(status, 200, "{body}");
    let h: LagHistory = serde_json::from_str(&body).unwrap();
    assert_eq!(h.threshold_bytes, CAUGHT_UP_LAG_BYTES);
    assert!(h.series.iter().all(|s| s.member == "pg-2"), "{:?}", h.series);
    h.of("pg-2").map(|s| s.samples.clone()).unwrap_or_default()
}

/// Whether the samples rise over the bound and later fall back to half of it.
fn rose_then_fell(s: &[LagSample]) -> bool {
    let over = s
        .iter()
        .position(|x| x.worst().is_some_and(|w| w > CAUGHT_UP_LAG_BYTES));
    over.is_some_and(|i| {
        s[i..]
            .last()
            .and_then(LagSample::worst)
            .is_some_and(|w| w <= CAUGHT_UP_LAG_BYTES / 2)
    })
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_frozen_wal_receiver_rises_on_the_chart_falls_after_thawing_and_both_crossings_are_on_the_timeline() {
    let _g = lock_stack();
    let app = spawn_app_with(&[("PGC_TIMELINE_SAMPLE_SECS", "1")]).await;
    ensure_replica(&app, "pg-2").await;
    let env = stack_env();
    let pw = format!("PGPASSWORD={}", env["PG_SUPERUSER_PASSWORD"]);
    let (host, port) = (env["BIND_ADDR"].clone(), env["WRITE_PORT"].clone());
    let pgbench = |args: &[&str]| {
        let mut a = vec![
            "exec", "-e", &pw, "pg-0", "pgbench", "-h", &host, "-p", &port, "-U", "postgres",
        ];
        a.extend_from_slice(args);
        a.push("postgres");
        docker(&a);
    };
    pgbench(&["-i", "-s", "1", "-q"]);
    ensure_replica(&app, "pg-2").await;
    // The observer has its baseline: pg-2 within the bound.
    eventually(Duration::from_secs(60), "pg-2 within half the bound", || async {
        let s = pg2(&app, "1h").await;
        s.last()
            .and_then(LagSample::worst)
            .filter(|w| *w <= CAUGHT_UP_LAG_BYTES / 2)
    })
    .await;
    let from_ms = domain::now_ms() - 1000;
    let from = domain::datetime::user_utc(from_ms);

    // Frozen under load: 20 s of pgbench at 300 transactions/s.
    let frozen = FrozenReceiver::new("pg-2");
    pgbench(&["-T", "20", "-c", "2", "-R", "300"]);
    let peak = eventually(Duration::from_secs(60), "pg-2's chart over the bound", || async {
        pg2(&app, "1h")
            .await
            .iter()
            .filter_map(LagSample::worst)
            .max()
            .filter(|w| *w > CAUGHT_UP_LAG_BYTES)
    })
    .await;
    drop(frozen);

    // Thawed: it falls, on the hour's chart and the day's.
    eventually(
        Duration::from_secs(90),
        "pg-2's chart back under half the bound",
        || async { rose_then_fell(&pg2(&app, "1h").await).then_some(()) },
    )
    .await;
    let day = pg2(&app, "24h").await;
    let day_peak = day.iter().filter_map(LagSample::worst).max();
    assert!(
        day_peak >= Some(peak),
        "the day's minutes keep the worst ({peak}): {day:?}"
    );
    assert!(
        day.windows(2).all(|w| w[1].at_ms - w[0].at_ms >= 60_000),
        "one point per minute: {day:?}"
    );

    // Both crossings, in order, linked to pg-2's page.
    let events = eventually(Duration::from_secs(60), "both crossings on the timeline", || async {
        let form = [("from", from.as_str()), ("subject", "pg-2"), ("kind", "member")];
        let (_, body) = post(&app, &app.http, "/api/timeline_page", &form).await;
        let mut page: TimelinePage = serde_json::from_str(&body).unwrap();
        page.events.reverse();
        let over = page
            .events
            .iter()
            .position(|e| e.text.contains("is over the healthy bound"))?;
        let back = page
            .events
            .iter()
            .position(|e| e.text.contains("within the healthy bound"))?;
        (over < back).then_some(page.events)
    })
    .await;
    for e in events.iter().filter(|e| e.text.contains("healthy bound")) {
        assert_eq!(e.link.as_deref(), Some("/member?name=pg-2"), "{e:?}");
        assert!(e.text.starts_with("pg-2: lag "), "{e:?}");
    }

    // The member's page draws the chart (rendered on the server).
    let html = app.get_text(&app.http, "/member?name=pg-2").await;
    assert!(
        html.contains("data-testid=\"lag-chart\"") && html.contains("<polyline"),
        "{html}"
    );
    // With no member named, it offers the replicas.
    let html = app.get_text(&app.http, "/member").await;
    assert!(
        html.contains("member-pick") && html.contains("/member?name=pg-2"),
        "{html}"
    );

    // Bad input changes nothing and says what to type.
    let (status, body) = lag(&app, &[("range", "7d")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is not 1h or 24h"), "{body}");
    let (status, body) = lag(&app, &[("member", &"x".repeat(200))]).await;
    assert_eq!(status, 400, "{body}");
    // Every replica when no member is named; never the leader while it
    // leads (a member sampled as a replica before it became the leader, as
    // the switchover at the start may make one, keeps that history).
    let (status, body) = lag(&app, &[]).await;
    assert_eq!(status, 200, "{body}");
    let all: LagHistory = serde_json::from_str(&body).unwrap();
    let leader = app.overview().await.topology.leader().map(|m| m.name.clone()).unwrap();
    assert!(
        all.of("pg-2").is_some()
            && all
                .of(&leader)
                .is_none_or(|s| s.samples.iter().all(|x| x.at_ms < from_ms)),
        "{:?}",
        all.series
    );
    ensure_replica(&app, "pg-2").await;
}
