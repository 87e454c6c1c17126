//! Hot base backup: `pg_basebackup` from a running replica, checked with
//! `pg_verifybackup`, archived beside the cold snapshots. Nothing stops, so
//! a paused cluster, a synchronous standby or the only healthy replica are
//! fine. The steps run in `crate::backup::base`; the plan below says what
//! they do, in the same order.

use futures::future::BoxFuture;
use model::operations::OpRequest;

use super::backup::target_checks;
use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{member, pass, Draft};
use crate::naming::data_dir_name;

/// Which kind of backup fits what: the last line of both backup plans.
pub const WHICH_KIND: &str = "which kind: a hot base backup stops nothing and is where a point-in-time restore starts (a restore replays its WAL first); a cold snapshot stops the replica for seconds, restores as it is, and is the SOP's own tar of the data directory";

pub struct BaseBackup;

impl Operation for BaseBackup {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        let OpRequest::BaseBackup { member: m, compression } = req else {
            unreachable!("the registry sends base backups only")
        };
        let mut pre = Vec::new();
        target_checks(req, ctx, &mut pre, false);
        pre.push(pass(true, format!("{m} keeps running and serving reads throughout")));
        let dir = data_dir_name(m);
        let (host, port) = member(t, m)
            .map(|x| (x.host.clone(), x.port.map_or("5432".into(), |p| p.to_string())))
            .unwrap_or_else(|| ("127.0.0.1".into(), "5432".into()));
        Draft {
            title: format!("Hot base backup of {m}"),
            steps: vec![
                format!("ask {m} for a restartpoint, so the backup starts from a recent redo point"),
                format!("pg_basebackup from {m} over the replication protocol, with the WAL it needs (-X stream) and SHA-256 checksums in its manifest; progress as it copies"),
                "pg_verifybackup: every file and the WAL against the backup's manifest; a damaged copy is not kept".into(),
                format!("archive the copy as {dir}/ ({}): sha256 while writing, fsync, rename, then its manifest", compression.name()),
                WHICH_KIND.into(),
            ],
            preconditions: pre,
            shell: format!(
                "docker exec -u postgres {m} pg_basebackup -h {host} -p {port} -U replicator -D /tmp/{dir} -X stream -c fast --manifest-checksums=SHA256\n\
                 docker exec -u postgres {m} pg_verifybackup /tmp/{dir}\n\
                 docker exec -u postgres {m} tar -C /tmp -czf - {dir} > {}-base.tar.gz",
                crate::naming::backup_name(m)
            ),
            confirm_name: m.clone(),
        }
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        let RunCtx { svc, job, req, before } = r;
        Box::pin(svc.run_base_backup(job, req, before))
    }
}
