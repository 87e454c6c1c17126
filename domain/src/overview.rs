//! The Overview page's data: topology, history, HAProxy and endpoints in one call.

use std::sync::Arc;

use model::{Endpoint, EndpointKind, HaproxyStats, ListenerRole, Overview};

use crate::haproxy::HaproxyClient;
use crate::patroni::PatroniClient;

/// How clients reach the cluster through pg-router.
#[derive(Clone, Debug)]
pub struct EndpointSettings {
    pub write_address: String,
    pub read_address: String,
    pub database: String,
    pub user: String,
    pub haproxy_stats_public_url: String,
}

pub struct OverviewService {
    pub patroni: Arc<PatroniClient>,
    pub haproxy: Arc<HaproxyClient>,
    pub endpoints: EndpointSettings,
    pub containers: crate::containers::ContainerWatch,
    /// The continuous WAL archive, when the console can ask the leader about it.
    pub wal_archive: Option<Arc<crate::wal_archive::WalArchiveWatch>>,
}

impl OverviewService {
    /// One read of the cluster: everything the page shows, with Docker's
    /// view of the containers or without it (the timeline follows Docker's
    /// events instead, and its looks must not start resource sampling).
    pub async fn read(&self, with_containers: bool) -> Overview {
        let containers = async {
            match with_containers {
                true => self.containers.states().await,
                false => Ok(Vec::new()),
            }
        };
        let wal_archive = async {
            match &self.wal_archive {
                Some(w) => Some(w.state().await),
                None => None,
            }
        };
        let (topology, history, stats, containers, wal_archive) = tokio::join!(
            self.patroni.topology(),
            self.patroni.history(),
            self.haproxy.stats(),
            containers,
            wal_archive
        );
        let (containers, containers_error) = match containers {
            Ok(c) => (c, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        let (history, history_error) = match history {
            Ok(h) => (h, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let (haproxy, haproxy_error) = match stats {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let endpoints = endpoints(&self.endpoints, haproxy.as_ref());
        Overview {
            topology,
            history,
            history_error,
            haproxy,
            haproxy_error,
            haproxy_stats_url: self.endpoints.haproxy_stats_public_url.clone(),
            endpoints,
            operations: Vec::new(),
            busy_members: Default::default(),
            containers,
            containers_error,
            wal_archive,
        }
    }
}

/// The write and read endpoints with copyable connection strings and where
/// HAProxy routes them now.
pub fn endpoints(s: &EndpointSettings, stats: Option<&HaproxyStats>) -> Vec<Endpoint> {
    let make = |kind: EndpointKind, address: &str, role: ListenerRole, attrs: &str| {
        let routes_to = stats
            .and_then(|st| st.listener(role))
            .map(|l| l.up_servers())
            .unwrap_or_default();
        Endpoint {
            kind,
            address: address.to_string(),
            connection_string: format!(
                "postgresql://{}@{}/{}?target_session_attrs={}",
                s.user, address, s.database, attrs
            ),
            routes_to,
            known: stats.is_some(),
        }
    };
    vec![
        make(EndpointKind::Write, &s.write_address, ListenerRole::Write, "read-write"),
        make(EndpointKind::Read, &s.read_address, ListenerRole::Read, "any"),
    ]
}
