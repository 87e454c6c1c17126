//! The incident timeline against the real stack: `docker kill` the leader,
//! and the timeline shows, in order and at the right times, the container's
//! death, HAProxy marking it DOWN, the new leader's promotion, and the old
//! one starting again and streaming as a replica. Then: the filters, the CSV,
//! bad input, and the events surviving a console restart.

use std::time::Duration;

use crate::support::*;
use model::timeline::{EventKind, TimelineEvent, TimelinePage};

async fn timeline(app: &TestApp, form: &[(&str, &str)]) -> (u16, String) {
    let r = app
        .http
        .post(format!("{}/api/timeline_page", app.base))
        .form(form)
        .send()
        .await
        .expect("timeline request");
    (r.status().as_u16(), r.text().await.unwrap())
}

pub(crate) async fn events_since(app: &TestApp, from: &str) -> Vec<TimelineEvent> {
    let (status, body) = timeline(app, &[("from", from)]).await;
    assert_eq!(status, 200, "{body}");
    let page: TimelinePage = serde_json::from_str(&body).unwrap();
    assert_eq!(page.retention_days, 30);
    let mut events = page.events;
    events.reverse();
    events
}

/// Docker's own time of a container's last start or finish (`State.StartedAt`/`FinishedAt`).
fn docker_time(container: &str, field: &str) -> i64 {
    let out = docker(&["inspect", "-f", &format!("{{{{.State.{field}}}}}"), container]);
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    domain::datetime::parse_rfc3339_ms(&text).unwrap_or_else(|| panic!("{field} of {container}: {text:?}"))
}

fn find<'a>(events: &'a [TimelineEvent], what: &str, f: impl Fn(&TimelineEvent) -> bool) -> (usize, &'a TimelineEvent) {
    events.iter().enumerate().find(|(_, e)| f(e)).unwrap_or_else(|| {
        panic!(
            "no {what} on the timeline: {:#?}",
            events.iter().map(|e| &e.text).collect::<Vec<_>>()
        )
    })
}

#[tokio::test]
#[ignore = "needs the real stack: run scripts/test"]
async fn a_killed_leader_is_on_the_timeline_in_order_at_the_right_times() {
    let _g = lock_stack();
    let mut app = spawn_app_with(&[("PGC_TIMELINE_SAMPLE_SECS", "1")]).await;
    let healthy = |ov: &model::Overview| {
        ov.topology.leader().is_some()
            && ov
                .topology
                .members
                .iter()
                .filter(|m| m.state == model::MemberState::Streaming)
                .count()
                == 2
    };
    let ov = eventually(Duration::from_secs(120), "a healthy cluster", || async {
        let ov = app.overview().await;
        healthy(&ov).then_some(ov)
    })
    .await;
    let old = ov.topology.leader().unwrap().name.clone();
    // The observer has its baseline.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let from = domain::datetime::user_utc(domain::now_ms() - 1000);

    let killed = Killed::new(&old);
    let new = eventually(Duration::from_secs(120), "a new leader", || async {
        let ov = app.overview().await;
        ov.topology.leader().map(|m| m.name.clone()).filter(|l| *l != old)
    })
    .await;
    drop(killed);
    eventually(
        Duration::from_secs(120),
        "the old leader streaming as a replica",
        || async {
            let ov = app.overview().await;
            ov.topology
                .members
                .iter()
                .any(|m| m.name == old && m.state == model::MemberState::Streaming)
                .then_some(())
        },
    )
    .await;
    // Patroni writes the new timeline's history entry at a later HA loop
    // (up to loop_wait after the promotion): wait for it, and for the
    // return to be recorded.
    let events = eventually(
        Duration::from_secs(60),
        "the promotion and the return on the timeline",
        || async {
            let events = events_since(&app, &from).await;
            let promoted = events
                .iter()
                .any(|e| e.kind == EventKind::Promotion && e.subject == new);
            let back = events
                .iter()
                .any(|e| e.kind == EventKind::Member && e.subject == old && e.text.ends_with("→ streaming"));
            (promoted && back).then_some(events)
        },
    )
    .await;
    for e in &events {
        eprintln!(
            "{} {:9} {:5} {}",
            domain::datetime::format_rfc3339(e.at_ms).unwrap(),
            e.kind.as_str(),
            e.subject,
            e.text
        );
    }
    let (i_die, die) = find(&events, "death", |e| {
        e.kind == EventKind::Container && e.subject == old && e.text.starts_with(&format!("{old} died"))
    });
    let (i_down, down) = find(&events, "HAProxy DOWN", |e| {
        e.kind == EventKind::Haproxy && e.subject == old && e.text.contains("DOWN in primary")
    });
    let (i_promo, promo) = find(&events, "promotion", |e| {
        e.kind == EventKind::Promotion && e.subject == new
    });
    let (i_start, start) = find(&events, "start", |e| {
        e.kind == EventKind::Container && e.subject == old && e.text == format!("{old} started")
    });
    let (i_back, back) = find(&events, "back as a replica", |e| {
        e.kind == EventKind::Member && e.subject == old && e.text.ends_with("→ streaming")
    });
    assert!(
        i_die < i_down && i_down < i_promo && i_promo < i_start && i_start < i_back,
        "in order: {:#?}",
        events.iter().map(|e| (&e.text, e.at_ms)).collect::<Vec<_>>()
    );
    // At the right times, by Docker's and Patroni's own clocks.
    let finished = docker_time(&old, "FinishedAt");
    assert!(
        (die.at_ms - finished).abs() <= 1000,
        "death at {} vs Docker's {finished}",
        die.at_ms
    );
    let started = docker_time(&old, "StartedAt");
    assert!(
        (start.at_ms - started).abs() <= 1000,
        "start at {} vs Docker's {started}",
        start.at_ms
    );
    let patroni = app
        .overview()
        .await
        .history
        .iter()
        .filter_map(|h| h.at_ms)
        .max()
        .unwrap();
    assert!(
        (promo.at_ms - patroni).abs() <= 1000,
        "promotion at {} vs Patroni's {patroni}",
        promo.at_ms
    );
    assert!(
        down.at_ms >= die.at_ms - 1000 && down.at_ms <= promo.at_ms,
        "HAProxy's DOWN between"
    );
    assert!(back.at_ms >= start.at_ms);
    // The death links to that minute of the container's log.
    let link = die.link.clone().expect("a log link");
    assert!(link.starts_with(&format!("/logs/{old}?since=")), "{link}");
    let r = app.http.get(format!("{}{link}", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200, "the linked log minute downloads");

    // Filters: one member, one kind.
    let (_, body) = timeline(
        &app,
        &[
            ("from", from.as_str()),
            ("subject", old.as_str()),
            ("kind", "container"),
        ],
    )
    .await;
    let only: TimelinePage = serde_json::from_str(&body).unwrap();
    assert!(!only.events.is_empty());
    assert!(only
        .events
        .iter()
        .all(|e| e.subject == old && e.kind == EventKind::Container));
    // Bad input is a 400 that says what to type.
    let (status, body) = timeline(&app, &[("kind", "earthquake")]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("container, haproxy"), "{body}");
    let (status, _) = timeline(&app, &[("from", "yesterday")]).await;
    assert_eq!(status, 400);
    // CSV of the same filter.
    let csv = app
        .http
        .get(format!("{}/timeline/export.csv?from={from}&subject={old}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("time_utc,at_ms,kind,subject,event,link\n"), "{text}");
    assert!(text.contains(&format!("{old} died (exit code")), "{text}");
    // Logged out, the export sends the browser to the login page, and nothing else.
    let r = raw_request(&app, "GET", "/timeline/export.csv", None, "").await;
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().starts_with("/login?next="));
    assert!(!r.body.contains("died"), "no event leaks");

    // Persisted: a restarted console still has them.
    app.restart().await;
    let again = events_since(&app, &from).await;
    assert!(
        again.iter().any(|e| e.id == die.id && e.text == die.text),
        "the death survives a restart"
    );
    let dup = again
        .iter()
        .filter(|e| e.text == die.text && e.at_ms == die.at_ms)
        .count();
    assert_eq!(dup, 1, "Docker's history replayed at start is not recorded twice");

    // What HAProxy saw while the console was down is recovered at its next
    // start, at HAProxy's time: the old leader, a replica again, stopped
    // meanwhile.
    // A DOWN to miss needs an UP first: the old leader, rejoined (maybe
    // rewound and restarted), serves reads again before the console dies.
    eventually(
        Duration::from_secs(120),
        "HAProxy marking it UP as a replica",
        || async { haproxy_up_somewhere(&old).await.then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    app.kill();
    let stopped_at = domain::now_ms();
    let stopped = Stopped::new(&old);
    eventually(Duration::from_secs(60), "HAProxy marking it DOWN", || async {
        haproxy_down(&old).await.then_some(())
    })
    .await;
    app.start_again().await;
    let missed = eventually(Duration::from_secs(30), "the missed DOWN on the timeline", || async {
        events_since(&app, &from).await.into_iter().find(|e| {
            e.kind == EventKind::Haproxy
                && e.subject == old
                && e.text.contains(" DOWN in ")
                && e.text.contains("while the console was down")
        })
    })
    .await;
    assert!(
        missed.at_ms >= stopped_at - 1000 && missed.at_ms <= domain::now_ms(),
        "{missed:?} vs stopped at {stopped_at}"
    );
    drop(stopped);
    ensure_replica(&app, &old).await;
}

/// Whether HAProxy's own stats say `server` is DOWN in every listener.
async fn haproxy_down(server: &str) -> bool {
    haproxy_states(server).await.is_some_and(|up| up.iter().all(|u| !u))
}

/// Whether HAProxy's own stats say `server` is UP in some listener.
async fn haproxy_up_somewhere(server: &str) -> bool {
    haproxy_states(server).await.is_some_and(|up| up.contains(&true))
}

/// `server`'s state (up or not) in each listener, from HAProxy's own stats.
async fn haproxy_states(server: &str) -> Option<Vec<bool>> {
    let env = stack_env();
    let url = format!("http://{}:{}/;csv", env["BIND_ADDR"], env["STATS_PORT"]);
    let text = reqwest::get(url).await.ok()?.text().await.ok()?;
    let stats = domain::haproxy::parse_stats_csv(&text, "primary", "replicas").ok()?;
    let up: Vec<bool> = stats
        .listeners
        .iter()
        .flat_map(|l| l.servers.iter())
        .filter(|s| s.name == server)
        .map(|s| s.is_up())
        .collect();
    (!up.is_empty()).then_some(up)
}
