//! Replica backup: a consistent cold copy of one healthy replica's data
//! directory, taken with the replica down only for what changed while the
//! rest was compressed. The steps run in `crate::backup::run`; the plan
//! below says what they do, in the same order.

use futures::future::BoxFuture;
use model::operations::{OpRequest, Precondition};
use model::topology::human_bytes;

use super::operation::{Operation, PlanCtx, RunCtx, RunResult};
use super::plan::{member, momentary_failure, pass, Draft};
use crate::naming::data_dir_name;

pub struct Backup;

impl Operation for Backup {
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft {
        let t = ctx.topology;
        let OpRequest::Backup {
            member: m,
            compression,
            allow_only_replica,
        } = req
        else {
            unreachable!("the registry sends backups only")
        };
        let mut pre = Vec::new();
        target_checks(req, ctx, &mut pre, true);
        pre.push(pass(
            !t.paused,
            if t.paused {
                "the cluster is paused: Patroni would not stop PostgreSQL cleanly; resume automatic failover first"
            } else {
                "automatic failover is on"
            },
        ));
        let others = t.members.iter().filter(|x| x.name != *m && x.caught_up()).count();
        pre.push(if others > 0 {
            pass(true, format!("{others} other healthy replica(s) keep serving reads meanwhile"))
        } else if *allow_only_replica {
            pass(
                true,
                format!("{m} is the only healthy replica: you chose to stop it anyway; the leader serves alone meanwhile"),
            )
        } else {
            let text = format!("{m} is the only healthy replica{}: stopping it leaves the leader alone (tick \"even if it is the only healthy replica\" to go ahead)", why_others_unhealthy(t, m));
            // Another replica that streams is only lagging: healthy again in moments.
            if t.members.iter().any(|x| x.name != *m && x.streams()) {
                momentary_failure(text)
            } else {
                pass(false, text)
            }
        });
        let dir = data_dir_name(m);
        Draft {
            title: format!("Backup of {m}"),
            steps: vec![
                format!(
                    "ask {m} for a restartpoint, then compress {dir} while {m} keeps running ({})",
                    compression.name()
                ),
                format!("stop {m} (clean shutdown) and compress again only what changed meanwhile, then start {m}"),
                format!("write the archive from those pieces (sha256 while writing, fsync, rename) and its manifest"),
                format!(
                    "wait until {m} streams again, lagging at most {}",
                    human_bytes(model::topology::CAUGHT_UP_LAG_BYTES)
                ),
                super::base_backup::WHICH_KIND.into(),
            ],
            preconditions: pre,
            shell: format!(
                "docker stop {m} && tar -czvf {}.tar.gz ${{DEFAULT_DATA_DIR}}/pg/{dir} && docker start {m}",
                crate::naming::backup_name(m)
            ),
            confirm_name: m.clone(),
        }
    }

    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult> {
        let RunCtx { svc, job, req, before } = r;
        Box::pin(svc.run_backup(job, req, before))
    }
}

/// Why the other replicas do not count as healthy, e.g. " (pg-1 lags
/// 3.0 MB, over the 1.0 MB bound)": under write load that is usually a
/// moment's lag, and the operator can simply try again.
fn why_others_unhealthy(t: &model::topology::Topology, m: &str) -> String {
    let bound = human_bytes(model::topology::CAUGHT_UP_LAG_BYTES);
    let reasons: Vec<String> = t
        .members
        .iter()
        .filter(|x| x.name != m && !x.role.is_leader() && !x.caught_up())
        .map(|x| match x.lag_bytes {
            Some(l) if x.streams() => format!("{} lags {}, over the {bound} bound", x.name, human_bytes(l)),
            _ if !x.reachable => format!("{} does not answer", x.name),
            _ => format!("{} is {}", x.name, x.state),
        })
        .collect();
    if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join("; "))
    }
}

/// The member backed up: a replica (never the leader; nor a synchronous
/// standby when it `stops`: commits would block), streaming, lagging within
/// the backups' bound.
pub(super) fn target_checks(req: &OpRequest, ctx: &PlanCtx, pre: &mut Vec<Precondition>, stops: bool) {
    let m = req.member().unwrap_or_default();
    let Some(x) = member(ctx.topology, m) else {
        pre.push(pass(false, format!("{m} is not a member of {}", ctx.topology.cluster)));
        return;
    };
    pre.push(pass(
        x.role.is_replica(),
        if x.role.is_replica() {
            format!("{m} is a replica")
        } else {
            format!("{m} is the leader: back up a replica, never the leader")
        },
    ));
    if stops && x.role == model::Role::SyncStandby {
        pre.push(pass(
            false,
            format!("{m} is a synchronous standby: stopping it would block commits"),
        ));
    }
    pre.push(pass(x.streams(), format!("{m} is {}", x.state)));
    pre.push(match (x.lag_bytes, ctx.max_lag) {
        (Some(l), Some(max)) if l > max => momentary_failure(format!(
            "{m} lags {}; the bound for backups is {}: wait until it catches up",
            human_bytes(l),
            human_bytes(max)
        )),
        (Some(l), _) => pass(true, format!("{m} lags {}", human_bytes(l))),
        (None, _) => pass(false, format!("{m}'s replication lag is unknown")),
    });
}
