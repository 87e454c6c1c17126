//! What an operation will do and whether it may, from the live topology.
//! Pure: unit-tested on recorded topologies.

use model::operations::{OpKind, OpRequest, Precondition};
use model::topology::human_bytes;
use model::{Member, Topology};

use crate::authz::UserRole;

/// The plan before it gets a token.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub title: String,
    pub steps: Vec<String>,
    pub preconditions: Vec<Precondition>,
    pub shell: String,
    pub confirm_name: String,
}

fn pass(ok: bool, text: impl Into<String>) -> Precondition {
    Precondition { ok, text: text.into() }
}

/// `patronictl` inside the first member, as the SOP runs it.
fn patronictl(t: &Topology, args: &str) -> String {
    let node = t
        .members
        .iter()
        .find(|m| m.reachable)
        .or(t.members.first())
        .map(|m| m.name.clone())
        .unwrap_or("pg-0".into());
    let n = node.rsplit('-').next().unwrap_or("0").to_string();
    format!("docker exec {node} patronictl -c /home/postgres/postgres{n}.yml {args}")
}

/// `YYYY-MM-DDTHH:MM` (UTC) → Patroni's ISO 8601 with zone; Err when malformed or past.
pub fn patroni_time(at: &str, now_ms: i64) -> Result<String, String> {
    let ms =
        model::time::parse_utc(at).ok_or_else(|| format!("{at:?} is not a date and time (YYYY-MM-DDTHH:MM, UTC)"))?;
    if ms <= now_ms {
        return Err(format!("{at} UTC is in the past"));
    }
    let s = at.trim().replace(' ', "T");
    let s = if s.len() == 16 { format!("{s}:00") } else { s };
    Ok(format!("{}+00:00", s.trim_end_matches('Z')))
}

/// The streaming replica with the least lag.
pub fn best_replica(t: &Topology) -> Option<String> {
    t.members
        .iter()
        .filter(|m| m.role.is_replica() && m.reachable && m.state == "streaming" && m.lag_bytes.is_some())
        .min_by_key(|m| m.lag_bytes)
        .map(|m| m.name.clone())
}

fn member<'a>(t: &'a Topology, name: &str) -> Option<&'a Member> {
    t.members.iter().find(|m| m.name == name)
}

fn healthy_replica_checks(t: &Topology, name: &str, max_lag: Option<u64>, out: &mut Vec<Precondition>) {
    let Some(m) = member(t, name) else {
        out.push(pass(false, format!("{name} is not a member of {}", t.cluster)));
        return;
    };
    out.push(pass(
        !m.role.is_leader(),
        if m.role.is_leader() {
            format!("{name} is the leader already: choose a replica")
        } else {
            format!("{name} is a replica")
        },
    ));
    out.push(pass(
        m.reachable,
        if m.reachable {
            format!("{name} answers")
        } else {
            format!("{name} does not answer its REST API")
        },
    ));
    let streaming = m.state == "streaming" || (m.state == "running" && m.role.is_replica());
    out.push(pass(streaming, format!("{name} is {}", m.state)));
    match (m.lag_bytes, max_lag) {
        (None, _) => out.push(pass(false, format!("{name}'s replication lag is unknown"))),
        (Some(l), Some(max)) if l > max => out.push(pass(
            false,
            format!(
                "{name} lags {}; maximum_lag_on_failover is {}, so Patroni would refuse it",
                human_bytes(l),
                human_bytes(max)
            ),
        )),
        (Some(l), _) => out.push(pass(true, format!("{name} lags {}", human_bytes(l)))),
    }
    if m.tags.get("nofailover").map(|v| v == "true").unwrap_or(false) {
        out.push(pass(false, format!("{name} is tagged nofailover")));
    }
}

/// Evaluate `req` for a caller with `role` against `t`.
pub fn draft(req: &OpRequest, t: &Topology, max_lag: Option<u64>, role: UserRole, now_ms: i64) -> Draft {
    let mut pre = Vec::new();
    let leader = t.leader().map(|m| m.name.clone());
    let cluster = t.cluster.clone();
    let m = req.member.clone();
    let when = req.scheduled_at.as_deref().filter(|s| !s.trim().is_empty());
    let when_iso = when.map(|w| patroni_time(w, now_ms));
    if let Some(Err(e)) = &when_iso {
        pre.push(pass(false, e.clone()));
    }
    let when_iso = when_iso.and_then(Result::ok);
    let member_reachable = |pre: &mut Vec<Precondition>| match member(t, &m) {
        Some(x) if x.reachable => pre.push(pass(true, format!("{m} answers"))),
        Some(_) => pre.push(pass(false, format!("{m} does not answer its REST API"))),
        None => pre.push(pass(false, format!("{m} is not a member of {cluster}"))),
    };
    let (title, steps, shell, confirm) = match req.kind {
        OpKind::Switchover => {
            let l = leader.clone().unwrap_or_default();
            pre.push(pass(
                leader.is_some(),
                match &leader {
                    Some(l) => format!("{l} leads and answers"),
                    None => "there is no healthy leader: use a failover".into(),
                },
            ));
            healthy_replica_checks(t, &m, max_lag, &mut pre);
            if let Some(s) = &t.scheduled_switchover {
                pre.push(pass(
                    false,
                    format!("a switchover is already scheduled for {}: cancel it first", s.at),
                ));
            }
            let sched = when_iso
                .as_ref()
                .map(|w| format!(" --scheduled {w}"))
                .unwrap_or_default();
            let steps = match &when_iso {
                Some(w) => vec![
                    format!("ask Patroni to switch over from {l} to {m} at {w}"),
                    "show the scheduled switchover on the Overview until it runs or is cancelled".into(),
                ],
                None => vec![
                    "probe the write endpoint every 100 ms to measure how long writes are refused".into(),
                    format!("ask Patroni to switch over from {l} to {m}"),
                    format!("wait until {m} leads and the write endpoint reaches it"),
                    format!("wait until {l} follows as a replica"),
                ],
            };
            (
                format!("Switchover {l} → {m}"),
                steps,
                patronictl(t, &format!("switchover --leader {l} --candidate {m}{sched} --force")),
                cluster.clone(),
            )
        }
        OpKind::Failover => {
            match (&leader, role) {
                (None, _) => pre.push(pass(true, "there is no healthy leader")),
                (Some(l), UserRole::Admin) => pre.push(pass(
                    true,
                    format!(
                        "{l} leads, but an admin may force a failover (data since the last replicated WAL is lost)"
                    ),
                )),
                (Some(l), _) => pre.push(pass(
                    false,
                    format!("{l} leads: use a switchover (only an admin may force a failover)"),
                )),
            }
            healthy_replica_checks(t, &m, None, &mut pre);
            (
                format!("Failover to {m}"),
                vec![
                    "probe the write endpoint every 100 ms to measure how long writes are refused".into(),
                    format!("ask Patroni to fail over to {m}"),
                    format!("wait until {m} leads and the write endpoint reaches it"),
                ],
                patronictl(t, &format!("failover --candidate {m} --force")),
                cluster.clone(),
            )
        }
        OpKind::Restart => {
            member_reachable(&mut pre);
            if req.only_if_pending {
                let pending = member(t, &m).map(|x| x.pending_restart).unwrap_or(false);
                pre.push(pass(
                    pending,
                    if pending {
                        format!("{m} has a pending restart")
                    } else {
                        format!("{m} has no pending restart: nothing to do")
                    },
                ));
            }
            let mut args = format!("restart {cluster} {m}");
            if req.only_if_pending {
                args.push_str(" --pending");
            }
            if let Some(w) = &when_iso {
                args.push_str(&format!(" --scheduled {w}"));
            }
            args.push_str(" --force");
            (
                format!("Restart {m}"),
                vec![
                    format!(
                        "ask Patroni on {m} to restart PostgreSQL{}",
                        when_iso.as_ref().map(|w| format!(" at {w}")).unwrap_or_default()
                    ),
                    format!("wait until {m} runs again"),
                ],
                patronictl(t, &args),
                m.clone(),
            )
        }
        OpKind::Reload => {
            member_reachable(&mut pre);
            (
                format!("Reload {m}"),
                vec![format!("ask Patroni on {m} to reload its configuration")],
                patronictl(t, &format!("reload {cluster} {m} --force")),
                m.clone(),
            )
        }
        OpKind::ReinitializeMember => {
            match member(t, &m) {
                Some(x) if x.role.is_leader() => {
                    pre.push(pass(false, format!("{m} is the leader: only a replica can be rebuilt")))
                }
                Some(_) => pre.push(pass(true, format!("{m} is a replica"))),
                None => pre.push(pass(false, format!("{m} is not a member of {cluster}"))),
            }
            pre.push(pass(
                leader.is_some(),
                match &leader {
                    Some(l) => format!("{l} leads and answers (the copy comes from it)"),
                    None => "there is no healthy leader to copy from".into(),
                },
            ));
            (
                format!("Reinitialize {m}"),
                vec![
                    format!("ask Patroni on {m} to wipe its data directory and copy it again from the leader"),
                    format!("wait until {m} streams again with lag 0"),
                ],
                patronictl(t, &format!("reinit {cluster} {m} --force")),
                m.clone(),
            )
        }
        OpKind::Backup => {
            match member(t, &m) {
                None => pre.push(pass(false, format!("{m} is not a member of {cluster}"))),
                Some(x) => {
                    pre.push(pass(
                        x.role.is_replica(),
                        if x.role.is_replica() {
                            format!("{m} is a replica")
                        } else {
                            format!("{m} is the leader: back up a replica, never the leader")
                        },
                    ));
                    if x.role == model::Role::SyncStandby {
                        pre.push(pass(
                            false,
                            format!("{m} is a synchronous standby: stopping it would block commits"),
                        ));
                    }
                    pre.push(pass(
                        x.reachable && x.state == "streaming",
                        format!("{m} is {}", x.state),
                    ));
                    match (x.lag_bytes, max_lag) {
                        (Some(l), Some(max)) if l > max => pre.push(pass(
                            false,
                            format!(
                                "{m} lags {}; the bound for backups is {}: wait until it catches up",
                                human_bytes(l),
                                human_bytes(max)
                            ),
                        )),
                        (Some(l), _) => pre.push(pass(true, format!("{m} lags {}", human_bytes(l)))),
                        (None, _) => pre.push(pass(false, format!("{m}'s replication lag is unknown"))),
                    }
                }
            }
            pre.push(pass(
                !t.paused,
                if t.paused {
                    "the cluster is paused: Patroni would not stop PostgreSQL cleanly; resume automatic failover first"
                        .to_string()
                } else {
                    "automatic failover is on".to_string()
                },
            ));
            let others = t
                .members
                .iter()
                .filter(|x| x.name != m && x.role.is_replica() && x.reachable && x.state == "streaming")
                .count();
            pre.push(pass(
                others > 0 || req.allow_only_replica,
                if others > 0 {
                    format!("{others} other healthy replica(s) keep serving reads meanwhile")
                } else if req.allow_only_replica {
                    format!("{m} is the only healthy replica: you chose to stop it anyway; the leader serves alone meanwhile")
                } else {
                    format!("{m} is the only healthy replica: stopping it leaves the leader alone (tick \"even if it is the only healthy replica\" to go ahead)")
                },
            ));
            let comp = req.compression.clone().unwrap_or_else(|| "zstd".into());
            let n = m.rsplit('-').next().unwrap_or("0");
            (
                format!("Backup of {m}"),
                vec![
                    format!("stop {m} (clean shutdown) and check its data directory is a clean cold copy"),
                    format!("copy pg{n}-data at disk speed while {m} is stopped, then start {m} again"),
                    format!("archive the copy ({comp}, sha256 while writing, fsync, rename) and write its manifest"),
                    format!("wait until {m} streams again with lag 0"),
                ],
                format!(
                    "docker stop {m} && tar -czvf pg{n}-backup.tar.gz ${{DEFAULT_DATA_DIR}}/pg/pg{n}-data && docker start {m}"
                ),
                m.clone(),
            )
        }
        OpKind::ReinitializeCluster => {
            pre.push(pass(
                role == UserRole::Admin,
                if role == UserRole::Admin {
                    "you are an admin".to_string()
                } else {
                    "only an admin may reinitialize the cluster".to_string()
                },
            ));
            let names: Vec<String> = t.members.iter().map(|x| x.name.clone()).collect();
            let mut steps: Vec<String> = Vec::new();
            if req.backup_first {
                match best_replica(t) {
                    Some(r) => {
                        pre.push(pass(
                            true,
                            format!("{r} is the healthiest replica: it is backed up first"),
                        ));
                        steps.push(format!("back up {r} first (zstd); if that fails, nothing is destroyed"));
                    }
                    None => pre.push(pass(false, "no healthy replica to back up first".to_string())),
                }
            }
            (
                format!("Reinitialize the whole cluster {cluster}"),
                steps
                    .into_iter()
                    .chain([
                        "stop the replicas, then the leader, then etcd".into(),
                        "remove the contents of ${DEFAULT_DATA_DIR}/pg/ and ${DEFAULT_DATA_DIR}/etcd/ (nothing else)"
                            .into(),
                        format!("start etcd, then {}", names.join(", ")),
                        "wait for a leader and streaming replicas, and report the new database system identifier"
                            .into(),
                        "ALL DATABASE DATA IS DESTROYED; the console's users, audit log and backups are kept".into(),
                    ])
                    .collect(),
                "docker compose -f infra/04-data/postgresql-cluster/docker-compose.yml down -v && \
                 sudo rm -rf ${DEFAULT_DATA_DIR}/pg/* ${DEFAULT_DATA_DIR}/etcd/* && \
                 docker compose -f infra/04-data/postgresql-cluster/docker-compose.yml up -d"
                    .to_string(),
                cluster.clone(),
            )
        }
        OpKind::Pause | OpKind::Resume => {
            let pause = req.kind == OpKind::Pause;
            pre.push(pass(
                t.paused != pause,
                match (pause, t.paused) {
                    (true, true) => "automatic failover is paused already".to_string(),
                    (false, false) => "automatic failover is not paused".to_string(),
                    (true, false) => "automatic failover is on".to_string(),
                    (false, true) => "automatic failover is paused".to_string(),
                },
            ));
            pre.push(pass(t.members.iter().any(|x| x.reachable), "a member answers"));
            let verb = if pause { "pause" } else { "resume" };
            (
                if pause {
                    "Pause automatic failover".to_string()
                } else {
                    "Resume automatic failover".to_string()
                },
                vec![
                    format!(
                        "ask Patroni to {verb} automatic failover (maintenance mode {})",
                        if pause { "on" } else { "off" }
                    ),
                    "wait until every member reports it".into(),
                ],
                patronictl(t, &format!("{verb} {cluster} --wait")),
                cluster.clone(),
            )
        }
    };
    Draft {
        title,
        steps,
        preconditions: pre,
        shell,
        confirm_name: confirm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patroni::wire::{ClusterResponse, MemberStatus};
    use crate::patroni::{merge_topology, Probe};
    use std::collections::BTreeMap;

    /// The healthy Patroni 4.1 cluster recorded by scripts/record-fixtures (pg-0 leads).
    fn recorded() -> Topology {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/patroni-4.1");
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

    fn req(kind: OpKind, member: &str) -> OpRequest {
        OpRequest {
            kind,
            member: member.into(),
            scheduled_at: None,
            only_if_pending: false,
            compression: None,
            backup_first: false,
            allow_only_replica: false,
        }
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
        let mut anyway = req(OpKind::Backup, "pg-1");
        anyway.allow_only_replica = true;
        let d = draft(&anyway, &alone, None, UserRole::Operator, 0);
        assert!(d.preconditions.iter().all(|p| p.ok), "{:?}", d.preconditions);
        let mut past = req(OpKind::Switchover, "pg-1");
        past.scheduled_at = Some("2000-01-01T00:00".into());
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
        let mut r = req(OpKind::Restart, "pg-2");
        r.only_if_pending = true;
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
}
