//! Restart PostgreSQL on one member through Patroni, now or at a scheduled
//! time, optionally only when a restart is pending.

use std::time::Duration;

use futures::future::BoxFuture;
use model::operations::OpRequest;

use super::operation::{scheduled, Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{member, member_reachable, pass, patronictl, Draft};
use super::wait::wait_for;

pub struct Restart;

/// The member, and whether only a pending restart is wanted.
fn fields(req: &OpRequest) -> (&str, bool) {
    match req {
        OpRequest::Restart {
            member,
            only_if_pending,
            ..
        } => (member, *only_if_pending),
        _ => unreachable!("the registry sends restarts only"),
    }
}

impl Operation for Restart {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        let (m, only_if_pending) = fields(req);
        let when = ctx.scheduled(req);
        let mut pre = Vec::new();
        member_reachable(t, m, &mut pre);
        let mut args = format!("restart {} {m}", t.cluster);
        if only_if_pending {
            let pending = member(t, m).map(|x| x.pending_restart).unwrap_or(false);
            pre.push(pass(
                pending,
                if pending {
                    format!("{m} has a pending restart")
                } else {
                    format!("{m} has no pending restart: nothing to do")
                },
            ));
            args.push_str(" --pending");
        }
        if let Some(w) = &when {
            args.push_str(&format!(" --scheduled {w}"));
        }
        args.push_str(" --force");
        let at = when.as_ref().map(|w| format!(" at {w}")).unwrap_or_default();
        Draft {
            title: format!("Restart {m}"),
            steps: vec![
                format!("ask Patroni on {m} to restart PostgreSQL{at}"),
                format!("wait until {m} runs again"),
            ],
            preconditions: pre,
            shell: patronictl(t, &args),
            confirm_name: m.to_string(),
        }
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        let RunCtx { svc, job, req, .. } = r;
        Box::pin(async move {
            let (m, only_if_pending) = fields(req);
            let when = scheduled(req, crate::now_ms()).transpose()?;
            job.step(format!("asking Patroni on {m} to restart PostgreSQL")).await;
            let r = svc
                .admin
                .restart(m, only_if_pending, when.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            if when.is_some() {
                return Ok(format!("restart of {m} scheduled: {r}"));
            }
            job.step(format!("waiting until {m} runs again")).await;
            wait_for(svc, Duration::from_secs(90), |t| {
                t.members.iter().any(|x| x.name == m && x.runs())
            })
            .await
            .map_err(|_| format!("{m} did not come back within 90 s"))?;
            Ok(format!("{m} restarted ({r})"))
        })
    }
}
