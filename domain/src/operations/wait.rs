//! Waiting for the cluster to reach a state, shared by the operations.

use std::time::{Duration, Instant};

use model::Topology;

use super::OperationService;

/// Poll the topology until `f` holds, or give up after `timeout` (Err holds
/// the last topology seen).
pub(super) async fn wait_for(
    svc: &OperationService,
    timeout: Duration,
    f: impl Fn(&Topology) -> bool,
) -> Result<Topology, Topology> {
    let start = Instant::now();
    loop {
        let t = svc.patroni.topology().await;
        if f(&t) {
            return Ok(t);
        }
        if start.elapsed() > timeout {
            return Err(t);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub(super) fn leader_is(t: &Topology, name: &str) -> bool {
    t.leader().map(|l| l.name == name).unwrap_or(false)
}

/// `name` is a healthy replica ([`model::Member::caught_up`]).
pub(super) fn caught_up(t: &Topology, name: &str) -> bool {
    t.members.iter().any(|m| m.name == name && m.caught_up())
}
