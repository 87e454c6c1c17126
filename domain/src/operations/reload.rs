//! Reload one member's configuration through Patroni.

use futures::future::BoxFuture;
use model::operations::OpRequest;

use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{member_reachable, patronictl, Draft};

pub struct Reload;

impl Operation for Reload {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        let m = req.member().unwrap_or_default();
        let mut pre = Vec::new();
        member_reachable(t, m, &mut pre);
        Draft {
            title: format!("Reload {m}"),
            steps: vec![format!("ask Patroni on {m} to reload its configuration")],
            preconditions: pre,
            shell: patronictl(t, &format!("reload {} {m} --force", t.cluster)),
            confirm_name: m.to_string(),
        }
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        let RunCtx { svc, job, req, .. } = r;
        Box::pin(async move {
            let m = req.member().unwrap_or_default();
            job.step(format!("asking Patroni on {m} to reload its configuration"))
                .await;
            let r = svc.admin.reload(m).await.map_err(|e| e.to_string())?;
            Ok(format!("{m} reloaded ({r})"))
        })
    }
}
