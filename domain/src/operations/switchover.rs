//! Switchover: a healthy replica takes over from the healthy leader, now
//! (with the write gap measured) or at a scheduled time (Patroni runs it).

use std::time::Duration;

use futures::future::BoxFuture;
use model::operations::OpRequest;

use super::leader_change::{change_leader, LeaderChange};
use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{candidate_checks, pass, patronictl, Draft};
use super::wait::wait_for;

pub struct Switchover;

impl Operation for Switchover {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        let OpRequest::Switchover { candidate: m, .. } = req else {
            unreachable!("the registry sends switchovers only")
        };
        let leader = t.leader().map(|x| x.name.clone());
        let l = leader.clone().unwrap_or_default();
        let when = ctx.scheduled(req);
        let mut pre = vec![pass(
            leader.is_some(),
            match &leader {
                Some(l) => format!("{l} leads and answers"),
                None => "there is no healthy leader: use a failover".into(),
            },
        )];
        candidate_checks(t, m, ctx.max_lag, &mut pre);
        if let Some(s) = &t.scheduled_switchover {
            pre.push(pass(
                false,
                format!("a switchover is already scheduled for {}: cancel it first", s.at),
            ));
        }
        let steps = match &when {
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
        let sched = when.as_ref().map(|w| format!(" --scheduled {w}")).unwrap_or_default();
        Draft {
            title: format!("Switchover {l} → {m}"),
            steps,
            preconditions: pre,
            shell: patronictl(t, &format!("switchover --leader {l} --candidate {m}{sched} --force")),
            confirm_name: t.cluster.clone(),
        }
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        let RunCtx { svc, job, req, before } = r;
        Box::pin(async move {
            let leader = before.leader().map(|m| m.name.clone()).unwrap_or_default();
            let OpRequest::Switchover { candidate: m, .. } = req else {
                unreachable!("the registry sends switchovers only")
            };
            let Some(at) = super::operation::scheduled(req, crate::now_ms()).transpose()? else {
                return change_leader(svc, job, LeaderChange::Switchover { leader: &leader }, m).await;
            };
            job.step(format!("asking Patroni to switch over from {leader} to {m} at {at}"))
                .await;
            let r = svc
                .admin
                .switchover(&leader, &leader, m, Some(&at))
                .await
                .map_err(|e| e.to_string())?;
            job.step("waiting for Patroni to record the schedule").await;
            wait_for(svc, Duration::from_secs(15), |t| t.scheduled_switchover.is_some())
                .await
                .map_err(|_| "Patroni accepted but shows no scheduled switchover".to_string())?;
            Ok(format!("switchover to {m} scheduled for {at} ({r})"))
        })
    }
}
