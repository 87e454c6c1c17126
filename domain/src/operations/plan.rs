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
    let node = t.members.iter().find(|m| m.reachable).or(t.members.first()).map(|m| m.name.clone()).unwrap_or("pg-0".into());
    let n = node.rsplit('-').next().unwrap_or("0").to_string();
    format!("docker exec {node} patronictl -c /home/postgres/postgres{n}.yml {args}")
}

/// `YYYY-MM-DDTHH:MM` (UTC) → Patroni's ISO 8601 with zone; Err when malformed or past.
pub fn patroni_time(at: &str, now_ms: i64) -> Result<String, String> {
    let ms = model::time::parse_utc(at).ok_or_else(|| format!("{at:?} is not a date and time (YYYY-MM-DDTHH:MM, UTC)"))?;
    if ms <= now_ms {
        return Err(format!("{at} UTC is in the past"));
    }
    let s = at.trim().replace(' ', "T");
    let s = if s.len() == 16 { format!("{s}:00") } else { s };
    Ok(format!("{}+00:00", s.trim_end_matches('Z')))
}

fn member<'a>(t: &'a Topology, name: &str) -> Option<&'a Member> {
    t.members.iter().find(|m| m.name == name)
}

fn healthy_replica_checks(t: &Topology, name: &str, max_lag: Option<u64>, out: &mut Vec<Precondition>) {
    let Some(m) = member(t, name) else {
        out.push(pass(false, format!("{name} is not a member of {}", t.cluster)));
        return;
    };
    out.push(pass(!m.role.is_leader(), if m.role.is_leader() {
        format!("{name} is the leader already: choose a replica")
    } else {
        format!("{name} is a replica")
    }));
    out.push(pass(m.reachable, if m.reachable {
        format!("{name} answers")
    } else {
        format!("{name} does not answer its REST API")
    }));
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
            pre.push(pass(leader.is_some(), match &leader {
                Some(l) => format!("{l} leads and answers"),
                None => "there is no healthy leader: use a failover".into(),
            }));
            healthy_replica_checks(t, &m, max_lag, &mut pre);
            if let Some(s) = &t.scheduled_switchover {
                pre.push(pass(false, format!("a switchover is already scheduled for {}: cancel it first", s.at)));
            }
            let sched = when_iso.as_ref().map(|w| format!(" --scheduled {w}")).unwrap_or_default();
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
                (Some(l), UserRole::Admin) => {
                    pre.push(pass(true, format!("{l} leads, but an admin may force a failover (data since the last replicated WAL is lost)")))
                }
                (Some(l), _) => {
                    pre.push(pass(false, format!("{l} leads: use a switchover (only an admin may force a failover)")))
                }
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
                pre.push(pass(pending, if pending {
                    format!("{m} has a pending restart")
                } else {
                    format!("{m} has no pending restart: nothing to do")
                }));
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
                    format!("ask Patroni on {m} to restart PostgreSQL{}", when_iso.as_ref().map(|w| format!(" at {w}")).unwrap_or_default()),
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
                Some(x) if x.role.is_leader() => pre.push(pass(false, format!("{m} is the leader: only a replica can be rebuilt"))),
                Some(_) => pre.push(pass(true, format!("{m} is a replica"))),
                None => pre.push(pass(false, format!("{m} is not a member of {cluster}"))),
            }
            pre.push(pass(leader.is_some(), match &leader {
                Some(l) => format!("{l} leads and answers (the copy comes from it)"),
                None => "there is no healthy leader to copy from".into(),
            }));
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
        OpKind::ReinitializeCluster => {
            pre.push(pass(role == UserRole::Admin, if role == UserRole::Admin {
                "you are an admin".to_string()
            } else {
                "only an admin may reinitialize the cluster".to_string()
            }));
            let names: Vec<String> = t.members.iter().map(|x| x.name.clone()).collect();
            (
                format!("Reinitialize the whole cluster {cluster}"),
                vec![
                    "stop the replicas, then the leader, then etcd".into(),
                    "remove the contents of ${DEFAULT_DATA_DIR}/pg/ and ${DEFAULT_DATA_DIR}/etcd/ (nothing else)".into(),
                    format!("start etcd, then {}", names.join(", ")),
                    "wait for a leader and streaming replicas, and report the new database system identifier".into(),
                    "ALL DATABASE DATA IS DESTROYED; the console's users, audit log and backups are kept".into(),
                ],
                "docker compose -f infra/04-data/postgresql-cluster/docker-compose.yml down -v && \
                 sudo rm -rf ${DEFAULT_DATA_DIR}/pg/* ${DEFAULT_DATA_DIR}/etcd/* && \
                 docker compose -f infra/04-data/postgresql-cluster/docker-compose.yml up -d"
                    .to_string(),
                cluster.clone(),
            )
        }
        OpKind::Pause | OpKind::Resume => {
            let pause = req.kind == OpKind::Pause;
            pre.push(pass(t.paused != pause, match (pause, t.paused) {
                (true, true) => "automatic failover is paused already".to_string(),
                (false, false) => "automatic failover is not paused".to_string(),
                (true, false) => "automatic failover is on".to_string(),
                (false, true) => "automatic failover is paused".to_string(),
            }));
            pre.push(pass(t.members.iter().any(|x| x.reachable), "a member answers"));
            let verb = if pause { "pause" } else { "resume" };
            (
                if pause { "Pause automatic failover".to_string() } else { "Resume automatic failover".to_string() },
                vec![
                    format!("ask Patroni to {verb} automatic failover (maintenance mode {})", if pause { "on" } else { "off" }),
                    "wait until every member reports it".into(),
                ],
                patronictl(t, &format!("{verb} {cluster} --wait")),
                cluster.clone(),
            )
        }
    };
    Draft { title, steps, preconditions: pre, shell, confirm_name: confirm }
}
