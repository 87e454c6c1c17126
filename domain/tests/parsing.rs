//! Parsing and merging on JSON/CSV recorded from the real services
//! (scripts/record-fixtures): Patroni 4.1.5 (PyPI), Patroni 3.0.2 (Debian),
//! HAProxy 2.6 (Debian).

use std::collections::BTreeMap;

use domain::haproxy::parse_stats_csv;
use domain::model::{ListenerRole, Role};
use domain::patroni::wire::{parse_history, ClusterResponse, MemberStatus};
use domain::patroni::{merge_topology, Probe};

fn fixture(path: &str) -> String {
    let full = format!("{}/tests/fixtures/{path}", std::env::var("CARGO_MANIFEST_DIR").unwrap());
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn cluster(path: &str) -> ClusterResponse {
    serde_json::from_str(&fixture(path)).unwrap()
}

fn status(path: &str) -> MemberStatus {
    serde_json::from_str(&fixture(path)).unwrap()
}

fn probe(name: &str, port: u16, status: Result<MemberStatus, String>, cluster: Option<ClusterResponse>) -> Probe {
    Probe {
        name: name.into(),
        api_url: format!("http://127.0.0.1:{port}"),
        status,
        cluster,
    }
}

/// Three members answering as in the recorded healthy Patroni 4.1 cluster.
fn healthy_probes() -> Vec<Probe> {
    let c = cluster("patroni-4.1/cluster-healthy.json");
    vec![
        probe(
            "pg-0",
            18008,
            Ok(status("patroni-4.1/patroni-leader.json")),
            Some(c.clone()),
        ),
        probe(
            "pg-1",
            18009,
            Ok(status("patroni-4.1/patroni-replica.json")),
            Some(c.clone()),
        ),
        probe("pg-2", 18010, Ok(status("patroni-4.1/patroni-replica.json")), Some(c)),
    ]
}

#[test]
fn patroni_4_healthy_cluster() {
    let probes = healthy_probes();
    let t = merge_topology("fallback", &probes, &BTreeMap::new(), 1_000);
    assert_eq!(t.cluster, "postgresql-cluster");
    assert_eq!(t.view_from.as_deref(), Some("pg-0"), "the leader's view is preferred");
    let names: Vec<_> = t.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["pg-0", "pg-1", "pg-2"], "leader first");
    assert_eq!(t.members[0].role, Role::Leader);
    assert_eq!(t.members[0].state, "running");
    assert_eq!(t.members[0].host_port(), "127.0.0.1:15432");
    for r in &t.members[1..] {
        assert_eq!(r.role, Role::Replica);
        assert_eq!(r.state, "streaming");
        assert_eq!(r.lag_bytes, Some(0));
        assert_eq!(r.receive_lag_bytes, Some(0));
        assert_eq!(r.timeline, Some(1));
        assert_eq!(r.server_version.as_deref(), Some("15.20"));
        assert_eq!(r.patroni_version.as_deref(), Some("4.1.5"));
    }
    assert!(t.unreachable.is_empty());
    assert!(!t.is_degraded());
    assert!(!t.paused);
}

#[test]
fn a_restarting_members_own_state_wins_over_its_stale_dcs_entry() {
    // A Patroni that was killed leaves its DCS entry ("streaming") behind
    // until it expires; once restarted, its own /patroni says what it does.
    let mut starting: serde_json::Value = serde_json::from_str(&fixture("patroni-4.1/patroni-replica.json")).unwrap();
    starting["state"] = "starting".into();
    starting.as_object_mut().unwrap().remove("replication_state");
    let mut probes = healthy_probes();
    probes[2].status = Ok(serde_json::from_value(starting).unwrap());
    let t = merge_topology("fallback", &probes, &BTreeMap::new(), 1_000);
    let state = |n: &str| t.members.iter().find(|m| m.name == n).unwrap().state.clone();
    assert_eq!(state("pg-1"), "streaming");
    assert_eq!(state("pg-2"), "starting");
    assert!(!t.members.iter().find(|m| m.name == "pg-2").unwrap().caught_up());
}

#[test]
fn a_patroni_4_replica_running_without_streaming_is_not_streaming() {
    // Patroni 4.1's /patroni says `running` for a replica whether it streams
    // or not; only `replication_state` says it streams (recorded answer,
    // with that field gone as when there is no leader to stream from).
    let mut idle: serde_json::Value = serde_json::from_str(&fixture("patroni-4.1/patroni-replica.json")).unwrap();
    assert_eq!(idle["state"], "running");
    idle.as_object_mut().unwrap().remove("replication_state");
    let mut probes = healthy_probes();
    probes[2].status = Ok(serde_json::from_value(idle).unwrap());
    let t = merge_topology("fallback", &probes, &BTreeMap::new(), 1_000);
    let pg2 = t.members.iter().find(|m| m.name == "pg-2").unwrap();
    assert_eq!(pg2.state, "running");
    assert!(!pg2.streams() && !pg2.caught_up() && pg2.runs());
}

/// pg-2 stopped, pg-1 the leader, as recorded from Patroni 4.1.
fn pg2_stopped_probes() -> Vec<Probe> {
    let c = cluster("patroni-4.1/cluster-pg2-stopped.json");
    vec![
        probe(
            "pg-0",
            18008,
            Ok(status("patroni-4.1/patroni-replica.json")),
            Some(c.clone()),
        ),
        probe("pg-1", 18009, Ok(status("patroni-4.1/patroni-leader.json")), Some(c)),
        probe("pg-2", 18010, Err("connection refused or unreachable".into()), None),
    ]
}

#[test]
fn patroni_4_stopped_member_is_unreachable_with_since() {
    let since = BTreeMap::from([("pg-2".to_string(), 500)]);
    let t = merge_topology("x", &pg2_stopped_probes(), &since, 1_000);
    assert_eq!(t.members[0].name, "pg-1", "new leader first");
    let pg2 = t.members.iter().find(|m| m.name == "pg-2").unwrap();
    assert!(!pg2.reachable);
    assert_eq!(pg2.state, "unreachable");
    assert_eq!(pg2.raw_state.as_deref(), Some("stopped"));
    assert_eq!(pg2.lag_bytes, None, "\"unknown\" lag is None");
    assert_eq!(pg2.unreachable_since_ms, Some(500));
    assert_eq!(t.unreachable.len(), 1);
    assert_eq!(t.unreachable[0].name, "pg-2");
    assert_eq!(t.unreachable[0].since_ms, 500);
    assert!(t.is_degraded());
}

#[test]
fn nothing_answers_gives_a_degraded_topology_not_an_error() {
    let probes = vec![
        probe("pg-0", 18008, Err("timed out".into()), None),
        probe("pg-1", 18009, Err("timed out".into()), None),
    ];
    let t = merge_topology("postgresql-cluster", &probes, &BTreeMap::new(), 7);
    assert_eq!(t.cluster, "postgresql-cluster");
    assert_eq!(t.members.len(), 2);
    assert!(t.members.iter().all(|m| !m.reachable && m.role == Role::Unknown));
    assert_eq!(t.unreachable.len(), 2);
    assert!(t.leader().is_none());
    assert!(t.is_degraded());
}

#[test]
fn patroni_3_shapes_master_running_and_single_lag() {
    let c = cluster("patroni-3.0/cluster-healthy.json");
    let leader = status("patroni-3.0/patroni-leader.json");
    assert_eq!(
        leader.role.as_deref(),
        Some("master"),
        "Patroni 3.0 calls the leader master"
    );
    let replica = status("patroni-3.0/patroni-replica.json");
    let probes = vec![
        probe("pg-0", 28008, Ok(leader), Some(c.clone())),
        probe("pg-1", 28009, Ok(replica), Some(c)),
    ];
    let t = merge_topology("x", &probes, &BTreeMap::new(), 1);
    assert_eq!(t.cluster, "p3-fixtures");
    assert_eq!(t.members[0].role, Role::Leader);
    let r = &t.members[1];
    assert_eq!(r.role, Role::Replica);
    assert_eq!(
        r.raw_state.as_deref(),
        Some("running"),
        "3.0 reports a streaming replica as running"
    );
    assert_eq!(r.state, "streaming", "normalised");
    assert_eq!(r.lag_bytes, Some(0));
    assert_eq!(r.patroni_version.as_deref(), Some("3.0.2"));
}

#[test]
fn patroni_3_stopped_member_has_unknown_lag() {
    let c = cluster("patroni-3.0/cluster-member-stopped.json");
    let stopped = c.members.iter().find(|m| m.name == "pg-0").expect("pg-0 listed");
    assert_eq!(stopped.lag_bytes(), None);
}

#[test]
fn history_of_both_generations() {
    for path in ["patroni-4.1/history.json", "patroni-3.0/history.json"] {
        let v: serde_json::Value = serde_json::from_str(&fixture(path)).unwrap();
        let h = parse_history(&v);
        assert_eq!(h.len(), 1, "{path}");
        assert_eq!(h[0].timeline, 1);
        assert!(h[0].lsn > 0);
        assert_eq!(h[0].new_leader.as_deref(), Some("pg-1"), "{path}");
        assert!(h[0].timestamp.is_some());
    }
}

#[test]
fn haproxy_stats_healthy() {
    let s = parse_stats_csv(&fixture("haproxy-2.6/stats-healthy.csv"), "primary", "replicas").unwrap();
    let names: Vec<_> = s.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        ["primary", "replicas"],
        "the stats listener has no servers and is left out"
    );
    let w = s.listener(ListenerRole::Write).unwrap();
    assert_eq!(w.up_servers(), ["pg-0"]);
    assert_eq!(w.servers.len(), 3);
    assert_eq!(w.servers[0].check_status, "L7OK");
    let r = s.listener(ListenerRole::Read).unwrap();
    assert_eq!(r.up_servers(), ["pg-1", "pg-2"]);
    assert!(r.servers.iter().any(|s| s.status == "DOWN" && s.name == "pg-0"));
}

#[test]
fn haproxy_stats_with_a_replica_down() {
    let s = parse_stats_csv(&fixture("haproxy-2.6/stats-pg2-down.csv"), "primary", "replicas").unwrap();
    let r = s.listener(ListenerRole::Read).unwrap();
    assert!(!r.up_servers().contains(&"pg-2".to_string()));
}

#[test]
fn haproxy_garbage_is_a_clear_error() {
    let e = parse_stats_csv("<html>login</html>\n", "primary", "replicas").unwrap_err();
    assert!(e.to_string().contains("pxname"), "{e}");
    assert!(parse_stats_csv("", "primary", "replicas").is_err());
}

/// The recorded answer with its columns reordered (the last first), extra
/// columns appended as newer HAProxy releases do, `check_desc` quoted with
/// a comma inside, CRLF line ends: read by header name, the same stats.
#[test]
fn haproxy_stats_by_column_name_whatever_the_layout() {
    let text = fixture("haproxy-2.6/stats-healthy.csv");
    let original = parse_stats_csv(&text, "primary", "replicas").unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .trim_start_matches("# ")
        .split(',')
        .map(String::from)
        .collect();
    let desc = header.iter().position(|c| c == "check_desc").unwrap();
    let reorder = |mut f: Vec<String>| {
        f.resize(header.len(), String::new());
        f.rotate_right(1);
        f.push("future value".into());
        f.join(",")
    };
    let mut out = vec![format!("# {}", reorder(header.clone()))];
    for line in lines.filter(|l| !l.is_empty()) {
        let mut f: Vec<String> = line.split(',').map(String::from).collect();
        f.resize(header.len(), String::new());
        if !f[desc].is_empty() {
            f[desc] = format!("\"{}, with a comma\"", f[desc]);
        }
        out.push(reorder(f));
    }
    let changed = out.join("\r\n") + "\r\n";
    assert_ne!(changed, text);
    let parsed = parse_stats_csv(&changed, "primary", "replicas").unwrap();
    assert_eq!(parsed, original);
}

#[test]
fn haproxy_stats_empty_fields_and_missing_counters() {
    let text = "# pxname,svname,status,scur,check_status,lastchg\nprimary,FRONTEND,OPEN,,,\nprimary,pg-0,UP,,,\nprimary,BACKEND,UP,2,,7\n";
    let s = parse_stats_csv(text, "primary", "replicas").unwrap();
    let w = s.listener(ListenerRole::Write).unwrap();
    assert_eq!(w.status, "UP");
    assert_eq!(
        (w.servers[0].sessions_current, w.servers[0].last_change_secs),
        (0, None)
    );
    assert_eq!(w.servers[0].check_status, "");
}

/// The merged topology agrees with `patronictl list --format json`, recorded
/// at the same moment as cluster-healthy.json.
#[test]
fn merged_topology_matches_recorded_patronictl_list() {
    let c = cluster("patroni-4.1/cluster-healthy.json");
    let probes = vec![probe(
        "pg-0",
        18008,
        Ok(status("patroni-4.1/patroni-leader.json")),
        Some(c),
    )];
    let t = merge_topology("x", &probes, &BTreeMap::new(), 1);
    let list: Vec<serde_json::Value> = serde_json::from_str(&fixture("patroni-4.1/patronictl-list.json")).unwrap();
    assert_eq!(list.len(), t.members.len());
    for row in list {
        let m = t.members.iter().find(|m| m.name == row["Member"]).unwrap();
        assert_eq!(m.host_port(), row["Host"]);
        assert_eq!(m.role.label(), row["Role"]);
        assert_eq!(m.state.as_str(), row["State"]);
        assert_eq!(m.timeline, row["TL"].as_u64());
    }
}

/// The Overview built from recorded answers: healthy, or pg-2 stopped
/// (HAProxy's DOWN, the unreachable banner, a switchover's new leader).
fn recorded_overview(pg2_stopped: bool) -> model::Overview {
    let (topology, csv) = if pg2_stopped {
        let probes = pg2_stopped_probes();
        let since = BTreeMap::from([("pg-2".to_string(), 500)]);
        (
            merge_topology("x", &probes, &since, 2_000),
            "haproxy-2.6/stats-pg2-down.csv",
        )
    } else {
        (
            merge_topology("x", &healthy_probes(), &BTreeMap::new(), 1_000),
            "haproxy-2.6/stats-healthy.csv",
        )
    };
    let stats = parse_stats_csv(&fixture(csv), "primary", "replicas").unwrap();
    model::Overview {
        topology,
        history: parse_history(&serde_json::from_str(&fixture("patroni-4.1/history.json")).unwrap()),
        history_error: None,
        haproxy: Some(stats),
        haproxy_error: pg2_stopped.then(|| "one read failed".to_string()),
        haproxy_stats_url: "https://pg-haproxy.localhost".into(),
        endpoints: Vec::new(),
        operations: Vec::new(),
        busy_members: Default::default(),
        containers: Vec::new(),
        containers_error: None,
        wal_archive: None,
    }
}

#[test]
fn the_live_feed_sends_patches_that_rebuild_each_version_exactly() {
    use domain::overview_feed::next_version;
    use model::overview::FeedFrame;
    let healthy = recorded_overview(false);
    let stopped = recorded_overview(true);
    let v1 = next_version(None, healthy.clone()).unwrap();
    assert_eq!(v1.seq, 1);
    assert!(v1.patch_frame.is_none(), "the first version has nothing to patch");
    let v2 = next_version(Some(&v1), stopped.clone()).unwrap();
    assert_eq!(v2.seq, 2);
    assert!(
        next_version(Some(&v2), stopped.clone()).is_none(),
        "no change, no version"
    );
    // A follower with version 1 gets the patch; a new one (or one that
    // missed a version) the whole; one with version 2 nothing.
    let patch = v2.frame_for(Some(1)).unwrap();
    assert!(
        patch.len() < v2.full_frame.len(),
        "{} vs {}",
        patch.len(),
        v2.full_frame.len()
    );
    assert_eq!(v2.frame_for(None), Some(v2.full_frame.as_str()));
    assert_eq!(v2.frame_for(Some(0)), Some(v2.full_frame.as_str()));
    assert_eq!(v2.frame_for(Some(2)), None);
    // What the browser does: the whole version 1, then the patch.
    let first: FeedFrame = serde_json::from_str(v1.frame_for(None).unwrap()).unwrap();
    let mut doc = first.full.unwrap();
    assert_eq!(serde_json::from_value::<model::Overview>(doc.clone()).unwrap(), healthy);
    let next: FeedFrame = serde_json::from_str(patch).unwrap();
    assert_eq!(next.seq, 2);
    model::merge_patch::apply(&mut doc, &next.patch.unwrap());
    assert_eq!(serde_json::from_value::<model::Overview>(doc.clone()).unwrap(), stopped);
    // And back: the error cleared (a key removed), pg-2 answering again.
    let v3 = next_version(Some(&v2), healthy.clone()).unwrap();
    let back: FeedFrame = serde_json::from_str(v3.frame_for(Some(2)).unwrap()).unwrap();
    model::merge_patch::apply(&mut doc, &back.patch.unwrap());
    assert_eq!(serde_json::from_value::<model::Overview>(doc.clone()).unwrap(), healthy);
    // A second later with one replica's lag changed: a few bytes, not the whole.
    let mut later = healthy.clone();
    later.topology.observed_at_ms += 1000;
    later.topology.members[2].lag_bytes = Some(4096);
    let v4 = next_version(Some(&v3), later.clone()).unwrap();
    let small = v4.frame_for(Some(3)).unwrap();
    assert!(
        small.len() * 10 < v4.full_frame.len(),
        "{small} vs {} bytes",
        v4.full_frame.len()
    );
    let f: FeedFrame = serde_json::from_str(small).unwrap();
    model::merge_patch::apply(&mut doc, &f.patch.unwrap());
    assert_eq!(serde_json::from_value::<model::Overview>(doc).unwrap(), later);
}

#[test]
fn the_timeline_sees_what_changed_between_two_looks() {
    use domain::timeline::observe::Observed;
    use model::timeline::EventKind;
    let mut seen = Observed::default();
    let first = seen.changes(&recorded_overview(false));
    assert!(
        first.iter().all(|e| e.kind == EventKind::Promotion),
        "the first look only sets the baseline (promotions carry their own time): {first:?}"
    );
    assert!(!first.is_empty(), "the recorded history has promotions");
    assert!(
        seen.changes(&recorded_overview(false)).is_empty(),
        "nothing changed, nothing recorded"
    );
    let changes = seen.changes(&recorded_overview(true));
    let texts: Vec<&str> = changes.iter().map(|e| e.text.as_str()).collect();
    assert!(texts.contains(&"pg-2: streaming → unreachable"), "{texts:?}");
    assert!(texts.contains(&"leader changed: pg-0 → pg-1"), "{texts:?}");
    let down = changes
        .iter()
        .find(|e| e.kind == EventKind::Haproxy && e.subject == "pg-2")
        .unwrap_or_else(|| panic!("HAProxy's DOWN of pg-2: {texts:?}"));
    assert!(down.text.starts_with("HAProxy: pg-2 DOWN in replicas"), "{}", down.text);
    assert!(down.at_ms <= 2_000, "at HAProxy's own time of the change, not later");
    // Every event has a distinct key: a second sighting is not a second event.
    let keys: std::collections::BTreeSet<_> = changes.iter().map(|e| &e.key).collect();
    assert_eq!(keys.len(), changes.len());
}
