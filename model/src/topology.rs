use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A member's role, normalised across Patroni 3.x (`master`) and 4.x (`primary`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Leader,
    StandbyLeader,
    SyncStandby,
    QuorumStandby,
    Replica,
    /// The member did not answer and the DCS has no entry for it.
    Unknown,
}

impl Role {
    /// Parse any role string Patroni 3.x or 4.x puts in `/cluster` or `/patroni`.
    pub fn parse(s: &str) -> Role {
        match s {
            "leader" | "master" | "primary" => Role::Leader,
            "standby_leader" | "standby-leader" => Role::StandbyLeader,
            "sync_standby" | "sync-standby" => Role::SyncStandby,
            "quorum_standby" | "quorum-standby" => Role::QuorumStandby,
            "replica" | "standby" => Role::Replica,
            _ => Role::Unknown,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Role::Leader => "Leader",
            Role::StandbyLeader => "Standby Leader",
            Role::SyncStandby => "Sync Standby",
            Role::QuorumStandby => "Quorum Standby",
            Role::Replica => "Replica",
            Role::Unknown => "Unknown",
        }
    }

    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader | Role::StandbyLeader)
    }

    pub fn is_replica(&self) -> bool {
        matches!(self, Role::SyncStandby | Role::QuorumStandby | Role::Replica)
    }
}

/// A member's state, normalised from what Patroni reports: `running` (a
/// leader, or a replica whose PostgreSQL runs without streaming),
/// `streaming` (a replica receiving WAL; Patroni 3.x says `running`),
/// `stopped`, `starting`, `unreachable` (its REST API did not answer), or any
/// other state Patroni names, kept as it said it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum MemberState {
    Running,
    Streaming,
    Stopped,
    Starting,
    Unreachable,
    Other(String),
}

impl MemberState {
    pub fn as_str(&self) -> &str {
        match self {
            MemberState::Running => "running",
            MemberState::Streaming => "streaming",
            MemberState::Stopped => "stopped",
            MemberState::Starting => "starting",
            MemberState::Unreachable => "unreachable",
            MemberState::Other(s) => s,
        }
    }
}

impl From<String> for MemberState {
    fn from(s: String) -> Self {
        match s.as_str() {
            "running" => MemberState::Running,
            "streaming" => MemberState::Streaming,
            "stopped" => MemberState::Stopped,
            "starting" => MemberState::Starting,
            "unreachable" => MemberState::Unreachable,
            _ => MemberState::Other(s),
        }
    }
}

impl From<&str> for MemberState {
    fn from(s: &str) -> Self {
        MemberState::from(s.to_string())
    }
}

impl From<MemberState> for String {
    fn from(s: MemberState) -> String {
        s.as_str().to_string()
    }
}

impl std::fmt::Display for MemberState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for MemberState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One cluster member as the console sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub role: Role,
    pub state: MemberState,
    /// The raw state string Patroni reported, if any.
    pub raw_state: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub api_url: String,
    pub timeline: Option<u64>,
    /// Replication lag in bytes; `None` when Patroni says `unknown` or gives none.
    pub lag_bytes: Option<u64>,
    pub receive_lag_bytes: Option<u64>,
    pub replay_lag_bytes: Option<u64>,
    pub pending_restart: bool,
    pub tags: BTreeMap<String, String>,
    /// Whether the member's own REST API answered this refresh.
    pub reachable: bool,
    /// When the member stopped answering (unix ms), if it does not.
    pub unreachable_since_ms: Option<i64>,
    pub server_version: Option<String>,
    pub patroni_version: Option<String>,
}

/// A replica is "caught up" when it streams with at most this much lag
/// (writes may keep going, so exactly 0 cannot be waited for).
pub const CAUGHT_UP_LAG_BYTES: u64 = 1 << 20;

impl Member {
    /// A healthy replica, the one definition used by plans, backups,
    /// reinitialization and the UI: it answers, streams, and lags at most
    /// [`CAUGHT_UP_LAG_BYTES`].
    pub fn caught_up(&self) -> bool {
        self.streams() && self.lag_bytes.is_some_and(|l| l <= CAUGHT_UP_LAG_BYTES)
    }

    /// A replica that answers and streams from the leader, whatever its lag
    /// (plans that bound the lag themselves, e.g. by `maximum_lag_on_failover`).
    pub fn streams(&self) -> bool {
        self.reachable && self.role.is_replica() && self.state == MemberState::Streaming
    }

    /// PostgreSQL runs on it: it answers and leads, or streams.
    pub fn runs(&self) -> bool {
        self.reachable && matches!(self.state, MemberState::Running | MemberState::Streaming)
    }

    pub fn host_port(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

/// A configured member whose REST API did not answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unreachable {
    pub name: String,
    pub api_url: String,
    pub since_ms: i64,
    pub error: String,
}

/// The merged view of the cluster.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Topology {
    pub cluster: String,
    /// Leader first, then replicas by name, then members that answer nowhere.
    pub members: Vec<Member>,
    pub unreachable: Vec<Unreachable>,
    /// Maintenance mode (automatic failover paused).
    pub paused: bool,
    /// The member whose DCS view (`/cluster`) was used, if any answered.
    pub view_from: Option<String>,
    /// A switchover Patroni will perform at a set time.
    pub scheduled_switchover: Option<ScheduledSwitchover>,
    pub observed_at_ms: i64,
}

impl Topology {
    pub fn leader(&self) -> Option<&Member> {
        self.members.iter().find(|m| m.role.is_leader() && m.reachable)
    }

    pub fn is_degraded(&self) -> bool {
        !self.unreachable.is_empty() || self.leader().is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduledSwitchover {
    pub at: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// One line of Patroni's `GET /history` (timeline switches).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The timeline that ended.
    pub timeline: u64,
    /// Where it ended (WAL position in bytes).
    pub lsn: u64,
    pub reason: String,
    /// As Patroni wrote it (RFC 3339, with fraction and offset).
    pub timestamp: Option<String>,
    /// The same instant in unix ms (read on the server), for ordering.
    #[serde(default)]
    pub at_ms: Option<i64>,
    pub new_leader: Option<String>,
}

/// Format a WAL position like PostgreSQL does (`0/3000060`).
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// Human size of a byte count (`0 B`, `14.2 MB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_of_both_patroni_generations() {
        assert_eq!(Role::parse("master"), Role::Leader);
        assert_eq!(Role::parse("primary"), Role::Leader);
        assert_eq!(Role::parse("leader"), Role::Leader);
        assert_eq!(Role::parse("sync_standby"), Role::SyncStandby);
        assert_eq!(Role::parse("replica"), Role::Replica);
        assert_eq!(Role::parse("bogus"), Role::Unknown);
    }

    #[test]
    fn lsn_and_sizes() {
        assert_eq!(format_lsn(0x3000060), "0/3000060");
        assert_eq!(format_lsn((1u64 << 32) + 16), "1/10");
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(14 * 1024 * 1024 + 200 * 1024), "14.2 MB");
    }
}
