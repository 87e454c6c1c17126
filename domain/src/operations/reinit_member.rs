//! Reinitialize one replica: Patroni wipes its data directory and copies it
//! again from the leader.

use std::time::Duration;

use futures::future::BoxFuture;
use model::operations::OpRequest;
use model::topology::human_bytes;

use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{member, pass, patronictl, Draft};
use super::wait::{caught_up, wait_for};

pub struct ReinitializeMember;

impl Operation for ReinitializeMember {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        let m = req.member().unwrap_or_default();
        let leader = t.leader().map(|x| x.name.clone());
        let pre = vec![
            match member(t, m) {
                Some(x) if x.role.is_leader() => {
                    pass(false, format!("{m} is the leader: only a replica can be rebuilt"))
                }
                Some(_) => pass(true, format!("{m} is a replica")),
                None => pass(false, format!("{m} is not a member of {}", t.cluster)),
            },
            pass(
                leader.is_some(),
                match &leader {
                    Some(l) => format!("{l} leads and answers (the copy comes from it)"),
                    None => "there is no healthy leader to copy from".into(),
                },
            ),
        ];
        Draft {
            title: format!("Reinitialize {m}"),
            steps: vec![
                format!("ask Patroni on {m} to wipe its data directory and copy it again from the leader"),
                format!(
                    "wait until {m} streams again, lagging at most {}",
                    human_bytes(model::topology::CAUGHT_UP_LAG_BYTES)
                ),
            ],
            preconditions: pre,
            shell: patronictl(t, &format!("reinit {} {m} --force", t.cluster)),
            confirm_name: m.to_string(),
        }
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        let RunCtx { svc, job, req, before } = r;
        Box::pin(async move {
            let m = req.member().unwrap_or_default();
            let leader = before.leader().map(|x| x.name.clone()).unwrap_or_default();
            job.step(format!(
                "asking Patroni on {m} to rebuild its data directory from {leader}"
            ))
            .await;
            let r = svc.admin.reinitialize(m).await.map_err(|e| e.to_string())?;
            job.step(format!(
                "waiting until {m} streams again, lagging at most {}",
                human_bytes(model::topology::CAUGHT_UP_LAG_BYTES)
            ))
            .await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let t = wait_for(svc, Duration::from_secs(600), |t| caught_up(t, m))
                .await
                .map_err(|_| format!("{m} did not stream again within 600 s"))?;
            let lag = t
                .members
                .iter()
                .find(|x| x.name == m)
                .and_then(|x| x.lag_bytes)
                .unwrap_or(0);
            Ok(format!("{m} reinitialized and streaming, lag {lag} bytes ({r})"))
        })
    }
}
