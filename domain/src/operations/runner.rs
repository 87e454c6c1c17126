//! What each operation does once checked, step by step.

use std::time::{Duration, Instant};

use model::operations::{OpKind, OpRequest};
use model::Topology;

use super::jobs::JobHandle;
use super::plan::patroni_time;
use super::write_probe::WriteProbe;
use super::OperationService;

/// Poll the topology until `f` holds, or give up after `timeout`.
async fn wait_for(
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

fn leader_is(t: &Topology, name: &str) -> bool {
    t.leader().map(|l| l.name == name).unwrap_or(false)
}

fn streaming(t: &Topology, name: &str) -> bool {
    t.members.iter().any(|m| m.name == name && m.caught_up())
}

impl OperationService {
    pub(super) async fn run(&self, job: &JobHandle, req: &OpRequest, before: &Topology) -> Result<String, String> {
        let leader = before.leader().map(|m| m.name.clone()).unwrap_or_default();
        let m = req.member.as_str();
        let when = req.scheduled_at.as_deref().filter(|s| !s.trim().is_empty());
        let when = match when.map(|w| patroni_time(w, crate::now_ms())).transpose() {
            Ok(w) => w,
            Err(e) => return Err(e),
        };
        match req.kind {
            OpKind::Switchover if when.is_some() => {
                let at = when.unwrap_or_default();
                job.step(format!("asking Patroni to switch over from {leader} to {m} at {at}"))
                    .await;
                let r = self
                    .admin
                    .switchover(&leader, &leader, m, Some(&at))
                    .await
                    .map_err(|e| e.to_string())?;
                job.step("waiting for Patroni to record the schedule").await;
                wait_for(self, Duration::from_secs(15), |t| t.scheduled_switchover.is_some())
                    .await
                    .map_err(|_| "Patroni accepted but shows no scheduled switchover".to_string())?;
                Ok(format!("switchover to {m} scheduled for {at} ({r})"))
            }
            OpKind::Switchover | OpKind::Failover => self.run_leader_change(job, req.kind, &leader, m).await,
            OpKind::Restart => {
                job.step(format!("asking Patroni on {m} to restart PostgreSQL")).await;
                let r = self
                    .admin
                    .restart(m, req.only_if_pending, when.as_deref())
                    .await
                    .map_err(|e| e.to_string())?;
                if when.is_some() {
                    return Ok(format!("restart of {m} scheduled: {r}"));
                }
                job.step(format!("waiting until {m} runs again")).await;
                wait_for(self, Duration::from_secs(90), |t| {
                    t.members
                        .iter()
                        .any(|x| x.name == m && x.reachable && (x.state == "running" || x.state == "streaming"))
                })
                .await
                .map_err(|_| format!("{m} did not come back within 90 s"))?;
                Ok(format!("{m} restarted ({r})"))
            }
            OpKind::Reload => {
                job.step(format!("asking Patroni on {m} to reload its configuration"))
                    .await;
                let r = self.admin.reload(m).await.map_err(|e| e.to_string())?;
                Ok(format!("{m} reloaded ({r})"))
            }
            OpKind::ReinitializeMember => {
                job.step(format!(
                    "asking Patroni on {m} to rebuild its data directory from {leader}"
                ))
                .await;
                let r = self.admin.reinitialize(m).await.map_err(|e| e.to_string())?;
                job.step(format!("waiting until {m} streams again with lag ~0 (at most 1 MiB)"))
                    .await;
                tokio::time::sleep(Duration::from_secs(2)).await;
                let t = wait_for(self, Duration::from_secs(600), |t| streaming(t, m))
                    .await
                    .map_err(|_| format!("{m} did not stream again within 600 s"))?;
                let lag = t
                    .members
                    .iter()
                    .find(|x| x.name == m)
                    .and_then(|x| x.lag_bytes)
                    .unwrap_or(0);
                Ok(format!("{m} reinitialized and streaming, lag {lag} bytes ({r})"))
            }
            OpKind::ReinitializeCluster => self.run_reinit_cluster(job, req, before).await,
            OpKind::Backup => self.run_backup(job, req, before).await,
            OpKind::Pause | OpKind::Resume => {
                let pause = req.kind == OpKind::Pause;
                let via = before
                    .leader()
                    .or_else(|| before.members.iter().find(|x| x.reachable))
                    .map(|x| x.name.clone());
                let via = via.ok_or("no member answers")?;
                job.step(format!(
                    "asking Patroni to {} automatic failover",
                    if pause { "pause" } else { "resume" }
                ))
                .await;
                self.admin.set_pause(&via, pause).await.map_err(|e| e.to_string())?;
                job.step("waiting until the cluster reports it").await;
                wait_for(self, Duration::from_secs(30), |t| t.paused == pause)
                    .await
                    .map_err(|_| "the cluster did not report the change within 30 s".to_string())?;
                Ok(if pause {
                    "maintenance mode on: automatic failover is paused"
                } else {
                    "automatic failover resumed"
                }
                .into())
            }
        }
    }

    async fn run_leader_change(&self, job: &JobHandle, kind: OpKind, leader: &str, m: &str) -> Result<String, String> {
        let probe = match &self.probe {
            Some(p) => {
                job.step("probing the write endpoint every 100 ms").await;
                Some(WriteProbe::start(p.clone()))
            }
            None => None,
        };
        let call = if kind == OpKind::Switchover {
            job.step(format!("asking Patroni to switch over from {leader} to {m}"))
                .await;
            self.admin.switchover(leader, leader, m, None).await
        } else {
            let before = self.patroni.topology().await;
            let via = before
                .members
                .iter()
                .find(|x| x.reachable)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| m.to_string());
            job.step(format!("asking Patroni to fail over to {m}")).await;
            self.admin.failover(&via, m).await
        };
        let answer = match call {
            Ok(a) => a,
            Err(e) => {
                if let Some(p) = probe {
                    p.stop().await;
                }
                return Err(e.to_string());
            }
        };
        job.step(format!("waiting until {m} leads and the write endpoint reaches it"))
            .await;
        let led = wait_for(self, Duration::from_secs(60), |t| leader_is(t, m)).await;
        // The write endpoint must reach the new leader before the probe stops.
        let mut routed = false;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            let up = self
                .haproxy
                .stats()
                .await
                .ok()
                .and_then(|s| s.listener(model::ListenerRole::Write).map(|l| l.up_servers()));
            let probe_ok = match &self.probe {
                Some(p) => super::write_probe::writable(p).await,
                None => true,
            };
            if up.as_deref() == Some(&[m.to_string()][..]) && probe_ok {
                routed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
        if kind == OpKind::Switchover {
            job.step(format!("waiting until {leader} follows as a replica")).await;
            if wait_for(self, Duration::from_secs(60), |t| streaming(t, leader))
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
}
