//! Merge what the members answered into one topology.

use std::collections::BTreeMap;

use model::{Member, MemberState, Role, Topology, Unreachable};

use super::wire::{tag_string, ClusterMember, ClusterResponse, MemberStatus};

/// What one configured member answered this refresh.
#[derive(Clone, Debug)]
pub struct Probe {
    pub name: String,
    pub api_url: String,
    pub status: Result<MemberStatus, String>,
    pub cluster: Option<ClusterResponse>,
}

/// Whether this Patroni says `replication_state` on a replica's `/patroni`
/// when it streams (3.1 and later; 3.0.2, recorded, does not).
fn reports_replication_state(version: Option<&str>) -> bool {
    let mut parts = version.unwrap_or("").split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (3, 1)
}

/// A replica's state in words. Its own `/patroni` says `running` whether it
/// streams or not; from 3.1 on, `replication_state: streaming` says that it
/// streams, so a running replica without it does not (no leader to stream
/// from, say). Older versions do not say, and a running replica is taken
/// as streaming.
fn normalise_state(role: &Role, state: &str, replication_state: Option<&str>, patroni: Option<&str>) -> MemberState {
    if role.is_replica() && state == "running" {
        return match replication_state {
            Some(rs) => rs.into(),
            None if reports_replication_state(patroni) => MemberState::Running,
            None => MemberState::Streaming,
        };
    }
    state.into()
}

/// Build the topology. `since` gives, per unreachable member, when it was
/// first seen unreachable (unix ms); `now_ms` stamps the result.
pub fn merge_topology(cluster_name: &str, probes: &[Probe], since: &BTreeMap<String, i64>, now_ms: i64) -> Topology {
    let view = dcs_view(probes);
    let cluster = view.and_then(|p| p.cluster.clone());
    let probe_by_name: BTreeMap<&str, &Probe> = probes.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut members: Vec<Member> = cluster
        .iter()
        .flat_map(|c| &c.members)
        .map(|cm| from_dcs(cm, probe_by_name.get(cm.name.as_str()).copied(), since))
        .collect();
    // Configured members that answer but are not in the DCS view (e.g. no view
    // at all), and configured members that answer nowhere.
    for p in probes {
        if !members.iter().any(|m| m.name == p.name) {
            members.push(match &p.status {
                Ok(s) => from_own_answer(p, s),
                Err(_) => not_answering(p, since),
            });
        }
    }
    let unreachable = probes
        .iter()
        .filter_map(|p| {
            let e = p.status.as_ref().err()?;
            Some(Unreachable {
                name: p.name.clone(),
                api_url: p.api_url.clone(),
                since_ms: since.get(&p.name).copied().unwrap_or(now_ms),
                error: e.clone(),
            })
        })
        .collect();
    members.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    let paused = cluster.as_ref().and_then(|c| c.pause).unwrap_or(false)
        || probes
            .iter()
            .any(|p| p.status.as_ref().ok().and_then(|s| s.pause).unwrap_or(false));
    Topology {
        // Patroni 3.x's /cluster has no scope; /patroni names it.
        cluster: cluster
            .as_ref()
            .and_then(|c| c.scope.clone())
            .or_else(|| {
                probes
                    .iter()
                    .find_map(|p| p.status.as_ref().ok()?.patroni.as_ref()?.scope.clone())
            })
            .unwrap_or_else(|| cluster_name.to_string()),
        members,
        unreachable,
        paused,
        view_from: view.map(|p| p.name.clone()),
        scheduled_switchover: cluster.as_ref().and_then(|c| c.scheduled_switchover.as_ref()).map(|s| {
            model::topology::ScheduledSwitchover {
                at: s.at.clone().unwrap_or_default(),
                from: s.from.clone(),
                to: s.to.clone(),
            }
        }),
        observed_at_ms: now_ms,
    }
}

/// Whose DCS view (`/cluster`) to believe: a member that calls itself
/// leader, else any that gave one.
fn dcs_view(probes: &[Probe]) -> Option<&Probe> {
    probes
        .iter()
        .filter(|p| p.cluster.is_some())
        .find(|p| calls_itself_leader(p))
        .or_else(|| probes.iter().find(|p| p.cluster.is_some()))
}

/// Whether the member's own answer (`/patroni`) says it leads.
pub(super) fn calls_itself_leader(p: &Probe) -> bool {
    p.status
        .as_ref()
        .ok()
        .and_then(|s| s.role.as_deref())
        .is_some_and(|r| Role::parse(r).is_leader())
}

/// A member as the DCS lists it, with its own answer where it gave one.
fn from_dcs(cm: &ClusterMember, probe: Option<&Probe>, since: &BTreeMap<String, i64>) -> Member {
    let status = probe.and_then(|p| p.status.as_ref().ok());
    let role = Role::parse(cm.role.as_deref().unwrap_or(""));
    // The member's own answer is live; its DCS entry can be stale (a
    // Patroni that was killed leaves "streaming" there until the key
    // expires), so its own state wins when it gave one.
    let raw_state = status.and_then(|s| s.state.clone()).or_else(|| cm.state.clone());
    let repl_state = status.and_then(|s| s.replication_state.as_deref());
    let reachable = probe.map(|p| p.status.is_ok()).unwrap_or(true);
    let state = if reachable {
        normalise_state(
            &role,
            raw_state.as_deref().unwrap_or("unknown"),
            repl_state,
            status
                .and_then(|s| s.patroni.as_ref())
                .and_then(|p| p.version.as_deref()),
        )
    } else {
        MemberState::Unreachable
    };
    Member {
        name: cm.name.clone(),
        role,
        state,
        raw_state,
        host: cm.host.clone().unwrap_or_default(),
        port: cm.port,
        api_url: cm
            .api_url
            .clone()
            .or_else(|| probe.map(|p| p.api_url.clone()))
            .unwrap_or_default(),
        timeline: cm.timeline.or_else(|| status.and_then(|s| s.timeline)),
        lag_bytes: cm.lag_bytes(),
        receive_lag_bytes: super::wire::lag_value(cm.receive_lag.as_ref()),
        replay_lag_bytes: super::wire::lag_value(cm.replay_lag.as_ref()),
        pending_restart: cm.pending_restart.unwrap_or(false) || status.and_then(|s| s.pending_restart).unwrap_or(false),
        tags: cm
            .tags
            .as_ref()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), tag_string(v))).collect())
            .unwrap_or_default(),
        reachable,
        unreachable_since_ms: if reachable { None } else { since.get(&cm.name).copied() },
        server_version: status.and_then(|s| s.server_version).map(format_server_version),
        patroni_version: status.and_then(|s| s.patroni.as_ref()).and_then(|p| p.version.clone()),
    }
}

/// A member the DCS view does not list, from its own `/patroni` answer.
fn from_own_answer(p: &Probe, s: &MemberStatus) -> Member {
    let role = Role::parse(s.role.as_deref().unwrap_or(""));
    let raw = s.state.clone();
    let state = normalise_state(
        &role,
        raw.as_deref().unwrap_or("unknown"),
        s.replication_state.as_deref(),
        s.patroni.as_ref().and_then(|p| p.version.as_deref()),
    );
    Member {
        name: p.name.clone(),
        role,
        state,
        raw_state: raw,
        timeline: s.timeline,
        pending_restart: s.pending_restart.unwrap_or(false),
        reachable: true,
        server_version: s.server_version.map(format_server_version),
        patroni_version: s.patroni.as_ref().and_then(|p| p.version.clone()),
        ..not_answering(p, &BTreeMap::new())
    }
}

/// A configured member that answered nowhere.
fn not_answering(p: &Probe, since: &BTreeMap<String, i64>) -> Member {
    Member {
        name: p.name.clone(),
        role: Role::Unknown,
        state: MemberState::Unreachable,
        raw_state: None,
        host: String::new(),
        port: None,
        api_url: p.api_url.clone(),
        timeline: None,
        lag_bytes: None,
        receive_lag_bytes: None,
        replay_lag_bytes: None,
        pending_restart: false,
        tags: BTreeMap::new(),
        reachable: false,
        unreachable_since_ms: since.get(&p.name).copied(),
        server_version: None,
        patroni_version: None,
    }
}

fn order_key(m: &Member) -> (u8, String) {
    let rank = if !m.reachable && m.role == Role::Unknown {
        3
    } else if m.role.is_leader() {
        0
    } else if m.role.is_replica() {
        1
    } else {
        2
    };
    (rank, m.name.clone())
}

/// `150010` → `15.10`
fn format_server_version(v: u64) -> String {
    if v >= 100_000 {
        format!("{}.{}", v / 10_000, v % 10_000)
    } else {
        format!("{}.{}.{}", v / 10_000, (v / 100) % 100, v % 100)
    }
}
