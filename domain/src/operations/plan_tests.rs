//! Plans on recorded topologies: the rules, and each operation's text
//! pinned, so what the operator reads cannot drift from what the code does.

use model::operations::{OpForm, OpKind, OpRequest, Precondition};
use model::Topology;

use super::plan::{draft, patroni_time, Draft};
use crate::authz::UserRole;
use crate::patroni::wire::{ClusterResponse, MemberStatus};
use crate::patroni::{merge_topology, Probe};
use std::collections::BTreeMap;

/// The healthy Patroni 4.1 cluster recorded by scripts/record-fixtures (pg-0 leads).
pub(crate) fn recorded() -> Topology {
    let dir = format!(
        "{}/tests/fixtures/patroni-4.1",
        std::env::var("CARGO_MANIFEST_DIR").unwrap()
    );
    let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).unwrap();
    let c: ClusterResponse = serde_json::from_str(&read("cluster-healthy.json")).unwrap();
    let leader: MemberStatus = serde_json::from_str(&read("patroni-leader.json")).unwrap();
    let probes = vec![Probe {
        name: "pg-0".into(),
        api_url: "http://x".into(),
        status: Ok(leader),
        cluster: Some(c),
    }];
    merge_topology("postgresql-cluster", &probes, &BTreeMap::new(), 1)
}

fn form(kind: OpKind, member: &str) -> OpForm {
    OpForm {
        kind: Some(kind),
        member: member.into(),
        ..Default::default()
    }
}

fn req(kind: OpKind, member: &str) -> OpRequest {
    form(kind, member).request().unwrap()
}

fn ok(d: &Draft) -> bool {
    d.preconditions.iter().all(|p| p.ok)
}

#[test]
fn switchover_plans() {
    let t = recorded();
    let d = draft(
        &req(OpKind::Switchover, "pg-1"),
        &t,
        Some(1_048_576),
        UserRole::Operator,
        0,
    );
    assert!(ok(&d), "{:?}", d.preconditions);
    assert_eq!(d.confirm_name, "postgresql-cluster");
    assert_eq!(
        d.shell,
        "docker exec pg-0 patronictl -c /home/postgres/postgres0.yml switchover --leader pg-0 --candidate pg-1 --force"
    );
    let d = draft(
        &req(OpKind::Switchover, "pg-0"),
        &t,
        Some(1_048_576),
        UserRole::Operator,
        0,
    );
    assert!(d
        .preconditions
        .iter()
        .any(|p| !p.ok && p.text == "pg-0 is the leader already: choose a replica"));
    let d = draft(&req(OpKind::Switchover, "pg-7"), &t, None, UserRole::Operator, 0);
    assert!(d
        .preconditions
        .iter()
        .any(|p| !p.ok && p.text.contains("is not a member")));
    let mut lagging = t.clone();
    lagging.members[1].lag_bytes = Some(14 * 1024 * 1024);
    let d = draft(
        &req(OpKind::Switchover, "pg-1"),
        &lagging,
        Some(1_048_576),
        UserRole::Operator,
        0,
    );
    assert!(
        d.preconditions.iter().any(|p| !p.ok
            && p.momentary
            && p.text == "pg-1 lags 14.0 MB; maximum_lag_on_failover is 1.0 MB, so Patroni would refuse it"),
        "{:?}",
        d.preconditions
    );
    // A backup of a replica lagging beyond the backup bound is refused
    // (on the real stack too: server/tests/backups.rs freezes a WAL
    // receiver to make one lag).
    let d = draft(
        &req(OpKind::Backup, "pg-1"),
        &lagging,
        Some(16 * 1024 * 1024),
        UserRole::Operator,
        0,
    );
    assert!(d.preconditions.iter().all(|p| p.ok), "{:?}", d.preconditions);
    lagging.members[1].lag_bytes = Some(20 * 1024 * 1024);
    let d = draft(
        &req(OpKind::Backup, "pg-1"),
        &lagging,
        Some(16 * 1024 * 1024),
        UserRole::Operator,
        0,
    );
    assert!(
        d.preconditions
            .iter()
            .any(|p| !p.ok
                && p.text == "pg-1 lags 20.0 MB; the bound for backups is 16.0 MB: wait until it catches up"),
        "{:?}",
        d.preconditions
    );
    // Lag is the only failure: Execute checks again for a few seconds
    // before refusing.
    assert!(Precondition::only_momentary_failures(&d.preconditions));
    // The other replica lags: backing up pg-2 would leave the leader alone,
    // and the refusal says why pg-1 does not count.
    let d = draft(
        &req(OpKind::Backup, "pg-2"),
        &lagging,
        Some(16 * 1024 * 1024),
        UserRole::Operator,
        0,
    );
    assert!(
        d.preconditions.iter().any(|p| !p.ok
            && p.momentary
            && p.text
                .starts_with("pg-2 is the only healthy replica (pg-1 lags 20.0 MB, over the 1.0 MB bound): ")),
        "{:?}",
        d.preconditions
    );
    // The only healthy replica: refused unless the operator confirmed it.
    let mut alone = t.clone();
    alone.members.retain(|m| m.name != "pg-2");
    let d = draft(&req(OpKind::Backup, "pg-1"), &alone, None, UserRole::Operator, 0);
    assert!(
        d.preconditions
            .iter()
            .any(|p| !p.ok && p.text.contains("only healthy replica")),
        "{:?}",
        d.preconditions
    );
    // No other replica streams: nothing will pass by waiting.
    assert!(!Precondition::only_momentary_failures(&d.preconditions));
    let mut anyway = form(OpKind::Backup, "pg-1");
    anyway.allow_only_replica = true;
    let anyway = anyway.request().unwrap();
    let d = draft(&anyway, &alone, None, UserRole::Operator, 0);
    assert!(d.preconditions.iter().all(|p| p.ok), "{:?}", d.preconditions);
    let mut past = form(OpKind::Switchover, "pg-1");
    past.scheduled_at = "2000-01-01T00:00".into();
    let past = past.request().unwrap();
    let d = draft(&past, &t, None, UserRole::Operator, 1_795_900_000_000);
    assert!(d.preconditions.iter().any(|p| !p.ok && p.text.contains("in the past")));
}

#[test]
fn role_and_state_rules() {
    let t = recorded();
    let d = draft(&req(OpKind::Failover, "pg-1"), &t, None, UserRole::Operator, 0);
    assert!(
        !ok(&d),
        "an operator may not force a failover while a leader is healthy"
    );
    let d = draft(&req(OpKind::Failover, "pg-1"), &t, None, UserRole::Admin, 0);
    assert!(ok(&d), "{:?}", d.preconditions);
    let d = draft(&req(OpKind::ReinitializeCluster, ""), &t, None, UserRole::Operator, 0);
    assert!(d
        .preconditions
        .iter()
        .any(|p| !p.ok && p.text.contains("only an admin")));
    let d = draft(&req(OpKind::Resume, ""), &t, None, UserRole::Operator, 0);
    assert!(!ok(&d), "not paused: nothing to resume");
    let d = draft(&req(OpKind::ReinitializeMember, "pg-0"), &t, None, UserRole::Admin, 0);
    assert!(d
        .preconditions
        .iter()
        .any(|p| !p.ok && p.text.contains("is the leader")));
    let mut r = form(OpKind::Restart, "pg-2");
    r.only_if_pending = true;
    let r = r.request().unwrap();
    let d = draft(&r, &t, None, UserRole::Operator, 0);
    assert!(d
        .preconditions
        .iter()
        .any(|p| !p.ok && p.text.contains("no pending restart")));
    assert!(
        d.shell.ends_with("restart postgresql-cluster pg-2 --pending --force"),
        "{}",
        d.shell
    );
}

#[test]
fn patroni_times() {
    assert_eq!(
        patroni_time("2026-11-28T22:15", 0).unwrap(),
        "2026-11-28T22:15:00+00:00"
    );
    assert!(patroni_time("tomorrow", 0).is_err());
}

/// Every operation's plan as the operator reads it: title, steps,
/// preconditions (✓/✗), the SOP's command and what is typed to confirm.
fn render(d: &Draft) -> String {
    let mut s = format!("# {}\n", d.title);
    for step in &d.steps {
        s += &format!("- {step}\n");
    }
    for p in &d.preconditions {
        s += &format!("{} {}\n", if p.ok { "ok" } else { "NO" }, p.text);
    }
    s += &format!("$ {}\ntype: {}\n", d.shell, d.confirm_name);
    s
}

fn all_plans(t: &Topology, role: UserRole) -> String {
    let mut scheduled = form(OpKind::Switchover, "pg-1");
    scheduled.scheduled_at = "2030-01-02T03:04".into();
    let scheduled = scheduled.request().unwrap();
    let mut gzip = form(OpKind::Backup, "pg-2");
    gzip.compression = "gzip".into();
    let gzip = gzip.request().unwrap();
    let mut first = form(OpKind::ReinitializeCluster, "");
    first.backup_first = true;
    let first = first.request().unwrap();
    let mut pitr = form(OpKind::RestoreToTime, "");
    pitr.target_time = "2030-01-02T03:04:05".into();
    let pitr = pitr.request().unwrap();
    [
        req(OpKind::Switchover, "pg-1"),
        scheduled,
        req(OpKind::Failover, "pg-2"),
        req(OpKind::Restart, "pg-1"),
        req(OpKind::Reload, "pg-2"),
        req(OpKind::Pause, ""),
        req(OpKind::Resume, ""),
        req(OpKind::ReinitializeMember, "pg-1"),
        gzip,
        req(OpKind::BaseBackup, "pg-2"),
        first,
        pitr,
    ]
    .iter()
    .map(|r| render(&draft(r, t, Some(1_048_576), role, 1_795_900_000_000)))
    .collect()
}

#[test]
fn plan_texts_are_pinned() {
    let got = all_plans(&recorded(), UserRole::Operator);
    let want = include_str!("../../tests/fixtures/plans-operator.txt");
    if got != want {
        let out = std::env::temp_dir().join("plans-operator.txt");
        std::fs::write(&out, &got).unwrap();
        panic!(
            "the plans changed: compare {} with domain/tests/fixtures/plans-operator.txt, and copy it there if the change is meant",
            out.display()
        );
    }
}
