//! Failover: promote a replica whatever the leader's state. With a healthy
//! leader it is a forced failover, which loses what was not replicated:
//! only a role allowed [`Action::ForceFailover`] may.

use futures::future::BoxFuture;
use model::operations::OpRequest;

use super::leader_change::{change_leader, LeaderChange};
use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{candidate_checks, pass, patronictl, Draft};
use crate::authz::Action;

pub struct Failover;

impl Operation for Failover {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        let OpRequest::Failover { candidate: m } = req else {
            unreachable!("the registry sends failovers only")
        };
        let mut pre = vec![match (t.leader(), ctx.may(Action::ForceFailover)) {
            (None, _) => pass(true, "there is no healthy leader"),
            (Some(l), true) => pass(
                true,
                format!(
                    "{} leads, but an admin may force a failover (data since the last replicated WAL is lost)",
                    l.name
                ),
            ),
            (Some(l), false) => pass(
                false,
                format!(
                    "{} leads: use a switchover (only an admin may force a failover)",
                    l.name
                ),
            ),
        }];
        candidate_checks(t, m, None, &mut pre);
        Draft {
            title: format!("Failover to {m}"),
            steps: vec![
                "probe the write endpoint every 100 ms to measure how long writes are refused".into(),
                format!("ask Patroni to fail over to {m}"),
                format!("wait until {m} leads and the write endpoint reaches it"),
            ],
            preconditions: pre,
            shell: patronictl(t, &format!("failover --candidate {m} --force")),
            confirm_name: t.cluster.clone(),
        }
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        let RunCtx { svc, job, req, .. } = r;
        Box::pin(change_leader(
            svc,
            job,
            LeaderChange::Failover,
            req.member().unwrap_or_default(),
        ))
    }
}
