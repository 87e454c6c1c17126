//! Pause or resume automatic failover (Patroni's maintenance mode).

use std::time::Duration;

use futures::future::BoxFuture;
use model::operations::OpRequest;

use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{pass, patronictl, Draft};
use super::wait::wait_for;

/// `pause: true` pauses, `false` resumes.
pub struct SetPause {
    pub pause: bool,
}

impl SetPause {
    fn verb(&self) -> &'static str {
        if self.pause {
            "pause"
        } else {
            "resume"
        }
    }
}

impl Operation for SetPause {
    fn plan(&self, _req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        let pause = self.pause;
        let verb = self.verb();
        let state = match (pause, t.paused) {
            (true, true) => "automatic failover is paused already",
            (false, false) => "automatic failover is not paused",
            (true, false) => "automatic failover is on",
            (false, true) => "automatic failover is paused",
        };
        Draft {
            title: if pause {
                "Pause automatic failover"
            } else {
                "Resume automatic failover"
            }
            .into(),
            steps: vec![
                format!(
                    "ask Patroni to {verb} automatic failover (maintenance mode {})",
                    if pause { "on" } else { "off" }
                ),
                "wait until every member reports it".into(),
            ],
            preconditions: vec![
                pass(t.paused != pause, state),
                pass(t.members.iter().any(|x| x.reachable), "a member answers"),
            ],
            shell: patronictl(t, &format!("{verb} {} --wait", t.cluster)),
            confirm_name: t.cluster.clone(),
        }
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        let RunCtx { svc, job, before, .. } = r;
        Box::pin(async move {
            let pause = self.pause;
            let via = before
                .leader()
                .or_else(|| before.members.iter().find(|x| x.reachable))
                .map(|x| x.name.clone())
                .ok_or("no member answers")?;
            job.step(format!("asking Patroni to {} automatic failover", self.verb()))
                .await;
            svc.admin.set_pause(&via, pause).await.map_err(|e| e.to_string())?;
            job.step("waiting until the cluster reports it").await;
            wait_for(svc, Duration::from_secs(30), |t| t.paused == pause)
                .await
                .map_err(|_| "the cluster did not report the change within 30 s".to_string())?;
            Ok(if pause {
                "maintenance mode on: automatic failover is paused"
            } else {
                "automatic failover resumed"
            }
            .into())
        })
    }
}
