use serde::{Deserialize, Serialize};

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
}

/// One finished console operation, as the history shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperationRecord {
    pub at_ms: i64,
    pub user: String,
    pub title: String,
    pub ok: bool,
    pub summary: String,
}
