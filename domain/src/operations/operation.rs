//! What every operation implements, and the registry of operations.
//!
//! An operation is one file (`switchover.rs`, `backup.rs`, ...) with one type
//! implementing [`Operation`]: its plan (title, steps, preconditions, the
//! SOP's shell command) and its run, side by side, so the text shown to the
//! operator sits next to the code that does it. The engine (`engine.rs`)
//! owns everything around them: tokens, the lock, jobs, the audit log.
//! Adding an operation is one new file and one line in [`operation`].

use futures::future::BoxFuture;
use model::operations::{OpKind, OpRequest};
use model::Topology;

use super::jobs::JobHandle;
use super::plan::Draft;
use super::OperationService;
use crate::authz::{may, Action, UserRole};

/// What a plan is made from: the live topology and who asks, when.
pub struct PlanCtx<'a> {
    pub topology: &'a Topology,
    /// The replication lag a candidate may have: Patroni's
    /// `maximum_lag_on_failover`, or the backups' bound for a backup.
    pub max_lag: Option<u64>,
    pub role: UserRole,
    pub now_ms: i64,
}

impl PlanCtx<'_> {
    /// Whether the caller's role allows `action` (the one table, `model::auth`).
    pub fn may(&self, action: Action) -> bool {
        may(self.role, action)
    }

    /// The request's schedule as Patroni wants it: None when not scheduled,
    /// Some(Err) when malformed or past (the engine refuses those for every
    /// kind before the operation plans).
    pub fn scheduled(&self, req: &OpRequest) -> Option<String> {
        scheduled(req, self.now_ms).and_then(Result::ok)
    }
}

/// The request's schedule: None, or Patroni's ISO 8601 form, or why not.
pub fn scheduled(req: &OpRequest, now_ms: i64) -> Option<Result<String, String>> {
    req.scheduled_at()
        .filter(|s| !s.trim().is_empty())
        .map(|w| super::plan::patroni_time(w, now_ms))
}

/// What a run works with: the service (Patroni, Docker, settings), its job
/// (steps, progress), the request and the topology it was checked against.
#[derive(Clone, Copy)]
pub struct RunCtx<'a> {
    pub svc: &'a OperationService,
    pub job: &'a JobHandle,
    pub req: &'a OpRequest,
    pub before: &'a Topology,
}

/// The result of a run: the one-line outcome, or why it failed.
pub type RunResult = Result<String, String>;

pub trait Operation: Sync {
    /// What it will do and whether it may, from the live topology. Pure.
    fn plan(&self, req: &OpRequest, ctx: &PlanCtx) -> Draft;

    /// What needs the machine, not only the topology (files, settings, the
    /// backup catalog): more preconditions, or steps drawn from those facts.
    /// Blocking work in it goes off the async threads.
    fn local<'a>(&'a self, _req: &'a OpRequest, _svc: &'a OperationService, _d: &'a mut Draft) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Does it, step by step, once the engine checked the confirmation and
    /// the preconditions again under the cluster-wide lock.
    fn run<'a>(&'a self, r: RunCtx<'a>) -> BoxFuture<'a, RunResult>;
}

/// The registry: the operation that handles `kind`.
pub fn operation(kind: OpKind) -> &'static dyn Operation {
    use super::*;
    match kind {
        OpKind::Switchover => &switchover::Switchover,
        OpKind::Failover => &failover::Failover,
        OpKind::Restart => &restart::Restart,
        OpKind::Reload => &reload::Reload,
        OpKind::Pause => &pause::SetPause { pause: true },
        OpKind::Resume => &pause::SetPause { pause: false },
        OpKind::ReinitializeMember => &reinit_member::ReinitializeMember,
        OpKind::Backup => &backup::Backup,
        OpKind::BaseBackup => &base_backup::BaseBackup,
        OpKind::ReinitializeCluster => &reinit_cluster::ReinitializeCluster,
        OpKind::RestoreCluster => &restore_cluster::RestoreCluster,
        OpKind::RestoreToTime => &restore_to_time::RestoreToTime,
        OpKind::DiscardKept => &discard_kept::DiscardKept,
    }
}
