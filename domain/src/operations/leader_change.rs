//! A new leader now, with the write gap measured: what a switchover and a
//! failover share once Patroni has been asked.

use std::time::{Duration, Instant};

use super::jobs::JobHandle;
use super::operation::RunResult;
use super::wait::{caught_up, leader_is, wait_for};
use super::write_probe::WriteProbe;
use super::OperationService;

pub(super) enum LeaderChange<'a> {
    /// From a healthy leader, which then follows.
    Switchover { leader: &'a str },
    /// Whatever the leader's state.
    Failover,
}

/// Ask Patroni for `candidate` as leader, wait until it leads and the write
/// endpoint reaches it, and report how long writes were refused.
pub(super) async fn change_leader(
    svc: &OperationService,
    job: &JobHandle,
    change: LeaderChange<'_>,
    candidate: &str,
) -> RunResult {
    let m = candidate;
    let probe = match &svc.probe {
        Some(p) => {
            job.step("probing the write endpoint every 100 ms").await;
            Some(WriteProbe::start(p.clone()))
        }
        None => None,
    };
    let call = match change {
        LeaderChange::Switchover { leader } => {
            job.step(format!("asking Patroni to switch over from {leader} to {m}"))
                .await;
            svc.admin.switchover(leader, leader, m, None).await
        }
        LeaderChange::Failover => {
            let now = svc.patroni.topology().await;
            let via = now
                .members
                .iter()
                .find(|x| x.reachable)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| m.to_string());
            job.step(format!("asking Patroni to fail over to {m}")).await;
            svc.admin.failover(&via, m).await
        }
    };
    let answer = match call {
        Ok(a) => a,
        Err(e) if e.outcome_unknown() => {
            job.step(format!(
                "Patroni did not see the outcome within its own wait ({e}); watching the cluster"
            ))
            .await;
            e.to_string()
        }
        Err(e) => {
            if let Some(p) = probe {
                p.stop().await;
            }
            return Err(e.to_string());
        }
    };
    job.step(format!("waiting until {m} leads and the write endpoint reaches it"))
        .await;
    let led = wait_for(svc, Duration::from_secs(60), |t| leader_is(t, m)).await;
    // The write endpoint must reach the new leader before the probe stops.
    let routed = write_endpoint_reaches(svc, m, Duration::from_secs(30)).await;
    let gap = match probe {
        Some(p) => {
            let (gap, samples) = p.stop().await;
            job.set_write_gap(gap.as_millis() as u64);
            Some((gap, samples))
        }
        None => None,
    };
    if led.is_err() {
        return Err(format!(
            "{m} did not become the leader within 60 s (Patroni said: {answer})"
        ));
    }
    if !routed {
        return Err(format!(
            "{m} leads, but the write endpoint did not reach it within 30 s"
        ));
    }
    let gap_text = gap
        .map(|(g, n)| format!("; writes were refused for {:.1} s ({n} probes)", g.as_secs_f64()))
        .unwrap_or_default();
    if let LeaderChange::Switchover { leader } = change {
        job.step(format!("waiting until {leader} follows as a replica")).await;
        if wait_for(svc, Duration::from_secs(60), |t| caught_up(t, leader))
            .await
            .is_err()
        {
            return Ok(format!(
                "{m} leads{gap_text}; {leader} has not rejoined as a replica yet"
            ));
        }
    }
    Ok(format!("{m} leads{gap_text}"))
}

/// HAProxy's write listener has exactly `m` up, and (with a probe target)
/// a write goes through, within `timeout`.
async fn write_endpoint_reaches(svc: &OperationService, m: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let up = svc
            .haproxy
            .stats()
            .await
            .ok()
            .and_then(|s| s.listener(model::ListenerRole::Write).map(|l| l.up_servers()));
        let probe_ok = match &svc.probe {
            Some(p) => super::write_probe::writable(p).await,
            None => true,
        };
        if up.as_deref() == Some(&[m.to_string()][..]) && probe_ok {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
