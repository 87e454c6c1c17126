use serde::{Deserialize, Serialize};

use crate::operations::OpJob;
use crate::{HaproxyStats, HistoryEntry, Topology};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndpointKind {
    Write,
    Read,
}

/// A client-facing endpoint of pg-router.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    pub kind: EndpointKind,
    pub address: String,
    /// A copyable libpq URI without a password.
    pub connection_string: String,
    /// Servers HAProxy currently routes this endpoint to (empty: nowhere).
    pub routes_to: Vec<String>,
    /// False when the HAProxy stats could not be read.
    pub known: bool,
}

/// Everything the Overview page shows, fetched in one call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub topology: Topology,
    pub history: Vec<HistoryEntry>,
    pub history_error: Option<String>,
    pub haproxy: Option<HaproxyStats>,
    pub haproxy_error: Option<String>,
    pub haproxy_stats_url: String,
    pub endpoints: Vec<Endpoint>,
    /// The console's own recent operations (from the audit log), for the history.
    #[serde(default)]
    pub operations: Vec<OperationRecord>,
    /// Members a running console operation acts on (name → "Backup of pg-2 by alice"),
    /// so a replica stopped for a backup is not mistaken for a failure.
    #[serde(default)]
    pub busy_members: std::collections::BTreeMap<String, String>,
    /// The stack's containers as Docker sees them (members, etcd, pg-router,
    /// traefik), sampled at most once a second for all viewers.
    #[serde(default)]
    pub containers: Vec<crate::containers::ContainerState>,
    /// Why the containers are not shown (no access to Docker), if so.
    #[serde(default)]
    pub containers_error: Option<String>,
    /// The continuous WAL archive (pg-wal), when the console is set up to watch it.
    #[serde(default)]
    pub wal_archive: Option<crate::wal::WalArchive>,
}

/// One message of the Overview's live feed (`/ws/overview`): the whole
/// Overview (as JSON) on connect and after a gap, otherwise a merge patch
/// (see [`crate::merge_patch`]) from the version the browser has, `seq - 1`.
/// A feed that ends says why in `error`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedFrame {
    #[serde(default)]
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One finished console operation, as the history shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationRecord {
    pub at_ms: i64,
    pub user: String,
    pub title: String,
    pub ok: bool,
    pub summary: String,
    /// The backup it made, if it made one (a backup's id is its job's).
    #[serde(default)]
    pub backup_id: Option<String>,
}

/// Which members running jobs account for, and by what ("Backup of pg-2
/// by alice"): the member a job acts on, or every member for a job that
/// stops them all. A busy member that does not answer is expected-down.
pub fn busy_members(running: &[OpJob], members: &[String]) -> std::collections::BTreeMap<String, String> {
    let mut busy = std::collections::BTreeMap::new();
    for j in running.iter().filter(|j| j.outcome.is_none()) {
        let what = format!("{} by {}", j.title, j.user);
        if j.stops_every_member {
            for m in members {
                busy.insert(m.clone(), what.clone());
            }
        } else if !j.member.is_empty() {
            busy.insert(j.member.clone(), what);
        }
    }
    busy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_stops_every_member_makes_each_busy() {
        let job = |member: &str, all: bool| OpJob {
            id: "j".into(),
            title: if all { "Restore" } else { "Backup" }.into(),
            member: member.into(),
            stops_every_member: all,
            user: "ann".into(),
            started_at_ms: 0,
            finished_at_ms: None,
            steps: vec![],
            outcome: None,
            write_gap_ms: None,
            progress: None,
        };
        let names: Vec<String> = ["pg-0", "pg-1", "pg-2"].map(String::from).to_vec();
        let one = busy_members(&[job("pg-2", false)], &names);
        assert_eq!(
            one.into_iter().collect::<Vec<_>>(),
            [("pg-2".to_string(), "Backup by ann".to_string())]
        );
        let all = busy_members(&[job("", true)], &names);
        assert_eq!(all.keys().cloned().collect::<Vec<_>>(), names);
        assert!(all.values().all(|v| v == "Restore by ann"));
        // Cluster-wide jobs that stop nothing (pause, discarding kept data) mark no member.
        assert!(busy_members(&[job("", false)], &names).is_empty());
    }
}
