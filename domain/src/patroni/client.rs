//! HTTP client for Patroni's REST API.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::join_all;
use model::{HistoryEntry, Topology};

use super::merge::{calls_itself_leader, merge_topology, Probe};
use super::wire::{parse_history, ClusterResponse, MemberStatus};

#[derive(Debug, thiserror::Error)]
pub enum PatroniError {
    #[error("no Patroni member answered ({0}); check that the stack is running (`scripts/stack status`)")]
    NoMemberAnswered(String),
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

/// A configured member: its name and the base URL of its REST API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberEndpoint {
    pub name: String,
    pub api_url: String,
}

pub struct PatroniClient {
    cluster_name: String,
    members: Vec<MemberEndpoint>,
    http: reqwest::Client,
    /// When each currently unreachable member was first seen unreachable.
    unreachable_since: Mutex<BTreeMap<String, i64>>,
    /// The last merged topology and when it was taken (for callers that can
    /// live with a slightly older answer instead of six more requests).
    last: Mutex<Option<(std::time::Instant, Topology)>>,
    /// The member that answered `/history` last: asked alone next time.
    history_from: Mutex<Option<usize>>,
    /// The member whose DCS view (`/cluster`) the last topology used.
    cluster_from: Mutex<Option<usize>>,
}

impl PatroniClient {
    /// `timeout` bounds each request (connect + response).
    pub fn new(cluster_name: &str, members: Vec<MemberEndpoint>, timeout: Duration) -> Result<Self, PatroniError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(4)
            .build()
            .map_err(|e| PatroniError::Client(e.to_string()))?;
        Ok(Self {
            cluster_name: cluster_name.to_string(),
            members,
            http,
            unreachable_since: Mutex::new(BTreeMap::new()),
            last: Mutex::new(None),
            history_from: Mutex::new(None),
            cluster_from: Mutex::new(None),
        })
    }

    pub fn members(&self) -> &[MemberEndpoint] {
        &self.members
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, base: &str, path: &str) -> Result<T, String> {
        let url = format!("{}{}", base.trim_end_matches('/'), path);
        let resp = self.http.get(&url).send().await.map_err(|e| describe(&e))?;
        // Patroni answers /patroni with 503 when Postgres is down, with a body.
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| describe(&e))?;
        serde_json::from_slice(&body).map_err(|e| format!("HTTP {status}: unparseable answer: {e}"))
    }

    /// Every member's own answer (`/patroni`), and one DCS view (`/cluster`):
    /// the merge believes the first member that calls itself leader, so the
    /// member whose view was used last is asked for it beside the `/patroni`
    /// requests (6 requests instead of 8 on each Overview read); if it is not
    /// that member any more, or did not answer, the other members that
    /// answered are asked for theirs, and the merge chooses as it did when
    /// every member was asked.
    async fn probes(&self) -> Vec<Probe> {
        let asked = *self.cluster_from.lock().expect("cluster_from poisoned");
        let view = async {
            match asked.and_then(|i| self.members.get(i)) {
                Some(m) => self.get_json::<ClusterResponse>(&m.api_url, "/cluster").await.ok(),
                None => None,
            }
        };
        let (statuses, view) = tokio::join!(
            join_all(
                self.members
                    .iter()
                    .map(|m| self.get_json::<MemberStatus>(&m.api_url, "/patroni"))
            ),
            view
        );
        let mut probes: Vec<Probe> = self
            .members
            .iter()
            .zip(statuses)
            .map(|(m, status)| Probe {
                name: m.name.clone(),
                api_url: m.api_url.clone(),
                status,
                cluster: None,
            })
            .collect();
        if let (Some(i), Some(view)) = (asked, view) {
            probes[i].cluster = Some(view);
        }
        let settled =
            asked.is_some_and(|i| probes[i].cluster.is_some() && first_self_declared_leader(&probes) == Some(i));
        if !settled {
            let others: Vec<usize> = (0..probes.len())
                .filter(|&i| Some(i) != asked && probes[i].status.is_ok())
                .collect();
            let views = join_all(
                others
                    .iter()
                    .map(|&i| self.get_json::<ClusterResponse>(&self.members[i].api_url, "/cluster")),
            )
            .await;
            for (i, v) in others.into_iter().zip(views) {
                probes[i].cluster = v.ok();
            }
        }
        probes
    }

    /// Ask every member in parallel and merge one topology. Never fails:
    /// members that do not answer are reported as unreachable.
    pub async fn topology(&self) -> Topology {
        let probes = self.probes().await;
        let now = crate::now_ms();
        let since = {
            let mut map = self.unreachable_since.lock().expect("unreachable map poisoned");
            for p in &probes {
                if p.status.is_ok() {
                    map.remove(&p.name);
                } else {
                    map.entry(p.name.clone()).or_insert(now);
                }
            }
            map.clone()
        };
        let t = merge_topology(&self.cluster_name, &probes, &since, now);
        *self.cluster_from.lock().expect("cluster_from poisoned") = t
            .view_from
            .as_ref()
            .and_then(|v| probes.iter().position(|p| &p.name == v));
        *self.last.lock().expect("last topology poisoned") = Some((std::time::Instant::now(), t.clone()));
        t
    }

    /// The last topology if it is at most `max_age` old, else a fresh one.
    /// (The live feed's sampler refreshes it each second while tabs follow,
    /// and the timeline every few seconds, so the top bar's pause badge
    /// usually costs no request.)
    pub async fn topology_at_most(&self, max_age: Duration) -> Topology {
        let cached = self.last.lock().expect("last topology poisoned").clone();
        match cached {
            Some((at, t)) if at.elapsed() <= max_age => t,
            _ => self.topology().await,
        }
    }

    /// The database system identifier, from the leader (or any member).
    pub async fn system_identifier(&self) -> Option<String> {
        let t = self.topology().await;
        let mut order: Vec<&MemberEndpoint> = self.members.iter().collect();
        if let Some(l) = t.leader() {
            order.sort_by_key(|m| m.name != l.name);
        }
        for m in order {
            if let Ok(s) = self.get_json::<MemberStatus>(&m.api_url, "/patroni").await {
                if let Some(id) = s.database_system_identifier {
                    return Some(id);
                }
            }
        }
        None
    }

    /// Timeline history (`GET /history`): every member keeps the same one, so
    /// the member that answered last time is asked alone (one request instead
    /// of three on each Overview read); if it does not answer, the others are
    /// asked (it is not asked twice: a hung member costs one timeout) and the
    /// first in order that answers is used, and asked next time.
    pub async fn history(&self) -> Result<Vec<HistoryEntry>, PatroniError> {
        let preferred = *self.history_from.lock().expect("history_from poisoned");
        let mut errors = Vec::new();
        if let Some(m) = preferred.and_then(|i| self.members.get(i)) {
            match self.get_json::<serde_json::Value>(&m.api_url, "/history").await {
                Ok(v) => return Ok(parse_history(&v)),
                Err(e) => errors.push(format!("{}: {e}", m.name)),
            }
        }
        let others: Vec<(usize, &MemberEndpoint)> = self
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != preferred)
            .collect();
        let results = join_all(
            others
                .iter()
                .map(|(_, m)| self.get_json::<serde_json::Value>(&m.api_url, "/history")),
        )
        .await;
        for ((i, m), r) in others.into_iter().zip(results) {
            match r {
                Ok(v) => {
                    *self.history_from.lock().expect("history_from poisoned") = Some(i);
                    return Ok(parse_history(&v));
                }
                Err(e) => errors.push(format!("{}: {e}", m.name)),
            }
        }
        Err(PatroniError::NoMemberAnswered(errors.join("; ")))
    }
}

/// The first member (in configured order) whose own answer says it leads:
/// the one whose DCS view the merge believes.
fn first_self_declared_leader(probes: &[Probe]) -> Option<usize> {
    probes.iter().position(calls_itself_leader)
}

/// A short reason: the innermost cause ("Connection refused (os error 111)")
/// rather than reqwest's generic "error sending request".
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_string();
    }
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let reason = root.to_string();
    if e.is_connect() {
        format!("cannot connect: {reason}")
    } else {
        reason
    }
}
