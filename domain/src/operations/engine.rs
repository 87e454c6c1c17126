//! The protocol every operation follows, whatever it does: prepare (the
//! operation's plan, and a single-use token when its preconditions pass) →
//! confirm → execute (token, typed name and password checked, the plan and
//! its preconditions evaluated again under the cluster-wide lock, for a few
//! seconds while only a replica's lag fails them, then the operation runs as
//! a job whose steps are streamed and audited).

use std::sync::Arc;

use model::operations::{OpJob, OpKind, OpRequest, Plan, Precondition};
use model::Topology;
use sha2::{Digest, Sha256};

use super::operation::{operation, RunCtx};
use super::{plan, topology_summary, utc, LockError, OpError, OperationService, TokenBinding, TokenError};
use crate::audit::{AuditEntry, AuditResult};
use crate::authz::Caller;

/// What the user sends to confirm a plan: its token, the name they typed,
/// and their password where the operation asks for it.
#[derive(Clone, Copy)]
pub struct Confirmation<'a> {
    pub token: &'a str,
    pub typed_name: &'a str,
    pub password: Option<&'a str>,
}

/// How long Execute checks momentary failures again before it refuses.
pub const MOMENTARY_WAIT: std::time::Duration = std::time::Duration::from_secs(model::operations::MOMENTARY_WAIT_SECS);

impl OperationService {
    async fn max_lag(&self, t: &Topology) -> Option<u64> {
        let via = t
            .leader()
            .or_else(|| t.members.iter().find(|m| m.reachable))?
            .name
            .clone();
        let cfg = self.admin.dcs_config(&via).await.ok()?;
        Some(
            cfg.get("maximum_lag_on_failover")
                .and_then(|v| v.as_u64())
                .unwrap_or(1_048_576),
        )
    }

    async fn draft(&self, caller: &Caller, req: &OpRequest) -> (plan::Draft, Topology) {
        let t = self.patroni.topology().await;
        let max_lag = match req.kind() {
            OpKind::Backup | OpKind::BaseBackup => Some(self.backup.max_lag_bytes),
            _ => self.max_lag(&t).await,
        };
        let mut d = plan::draft(req, &t, max_lag, caller.role, crate::now_ms());
        operation(req.kind()).local(req, self, &mut d).await;
        (d, t)
    }

    pub(crate) fn entry(caller: &Caller, action: &str, result: AuditResult, target: &str) -> AuditEntry {
        AuditEntry::new(action, result).by(caller).target(target)
    }

    pub(crate) async fn log(&self, e: AuditEntry) {
        if let Err(err) = self.audit.record(e).await {
            tracing::error!("cannot write the audit log: {err}");
        }
    }

    /// What a confirmation is bound to: what the plan does (title, steps,
    /// confirmation name) for this request. Preconditions and the shell
    /// rendering are left out: they may change without changing the plan.
    fn plan_digest(d: &plan::Draft, req: &OpRequest) -> String {
        hex::encode(Sha256::digest(
            serde_json::json!([d.title, d.steps, d.confirm_name, req])
                .to_string()
                .as_bytes(),
        ))
    }

    /// Step 1: the plan, with a token when the preconditions pass.
    pub async fn prepare(&self, caller: &Caller, req: OpRequest) -> Plan {
        let (d, _) = self.draft(caller, &req).await;
        let digest = Self::plan_digest(&d, &req);
        let needs_password = req.kind().needs_password();
        let expires_at_ms = crate::now_ms() + self.token_ttl_ms;
        let can_run = d.preconditions.iter().all(|p| p.ok);
        let token = if can_run {
            self.tokens.issue(TokenBinding {
                user_id: caller.user_id,
                sid: caller.sid.clone(),
                request: req.clone(),
                plan_digest: digest,
                confirm_name: d.confirm_name.clone(),
                needs_password,
                title: d.title.clone(),
                expires_at_ms,
            })
        } else {
            String::new()
        };
        let failed: Vec<&str> = d
            .preconditions
            .iter()
            .filter(|p| !p.ok)
            .map(|p| p.text.as_str())
            .collect();
        let mut e = Self::entry(
            caller,
            "op_prepare",
            if can_run { AuditResult::Ok } else { AuditResult::Refused },
            &d.title,
        )
        .params(serde_json::json!({ "request": req }));
        if !can_run {
            e = e.error(&failed.join("; "));
        }
        self.log(e).await;
        Plan {
            title: d.title,
            steps: d.steps,
            preconditions: d.preconditions,
            shell: d.shell,
            confirm_name: d.confirm_name,
            needs_password,
            token,
            expires_at_ms,
        }
    }

    /// Step 3: check everything on the server, then run under the lock.
    /// Returns the job id; the job's steps stream through [`Self::job`].
    pub async fn execute(self: &Arc<Self>, caller: &Caller, c: Confirmation<'_>) -> Result<String, OpError> {
        let result = self.check_and_start(caller, c).await;
        if let Err(e) = &result {
            self.log(Self::entry(caller, "op_execute", AuditResult::Refused, "").error(&e.to_string()))
                .await;
        }
        result
    }

    /// The confirmation: the token is the caller's and alive, the typed name
    /// matches, and the password where the operation needs it. A wrong
    /// password uses the confirmation up: guessing needs a new plan each
    /// time, and counts toward the lockout.
    async fn confirm(&self, caller: &Caller, c: Confirmation<'_>) -> Result<(), OpError> {
        let Confirmation {
            token,
            typed_name,
            password,
        } = c;
        let b = self.tokens.peek(token, caller.user_id, &caller.sid, crate::now_ms())?;
        if typed_name != b.confirm_name {
            return Err(OpError::WrongName {
                typed: typed_name.into(),
                expected: b.confirm_name,
            });
        }
        if !b.needs_password {
            return Ok(());
        }
        let password = password.filter(|p| !p.is_empty()).ok_or(OpError::PasswordRequired)?;
        self.users
            .step_up(caller.user_id, password)
            .await
            .map(|_| ())
            .map_err(|e| {
                self.tokens.take(token);
                match e {
                    crate::users::UserError::WrongPassword => OpError::WrongPassword,
                    crate::users::UserError::Locked(until) => OpError::Locked(until),
                    other => OpError::Internal(other.to_string()),
                }
            })
    }

    /// The draft Execute checks, under the lock: drafted again each second,
    /// for up to [`MOMENTARY_WAIT`], while its only failed preconditions are
    /// momentary (a replica's lag right after bulk writes), so that Execute
    /// does not refuse what the plan a moment ago allowed and what passes
    /// again in seconds.
    async fn settled_draft(&self, caller: &Caller, req: &OpRequest) -> (plan::Draft, Topology) {
        let t0 = std::time::Instant::now();
        loop {
            let (d, before) = self.draft(caller, req).await;
            if t0.elapsed() >= MOMENTARY_WAIT || !Precondition::only_momentary_failures(&d.preconditions) {
                return (d, before);
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }

    async fn check_and_start(self: &Arc<Self>, caller: &Caller, c: Confirmation<'_>) -> Result<String, OpError> {
        let token = c.token;
        self.confirm(caller, c).await?;
        // From here on the token is used up, whatever happens.
        let b = self.tokens.take(token).ok_or(TokenError::Unknown)?;
        let guard = self
            .lock
            .try_acquire(&b.title, &caller.name)
            .await
            .map_err(|e| match e {
                LockError::Busy(h) => OpError::Busy {
                    title: h.title,
                    user: h.user,
                    since: utc(h.since_ms),
                },
                file => OpError::Internal(file.to_string()),
            })?;
        let (d, before) = self.settled_draft(caller, &b.request).await;
        if Self::plan_digest(&d, &b.request) != b.plan_digest {
            return Err(OpError::Changed {
                was: b.title.clone(),
                now: if d.title == b.title {
                    format!("{} with other steps ({})", d.title, d.steps.join("; "))
                } else {
                    d.title.clone()
                },
            });
        }
        let failed: Vec<String> = d
            .preconditions
            .iter()
            .filter(|p| !p.ok)
            .map(|p| p.text.clone())
            .collect();
        if !failed.is_empty() {
            return Err(OpError::Preconditions(failed.join("; ")));
        }
        let job = self.jobs.start(
            &d.title,
            (b.request.member().unwrap_or(""), b.request.kind().stops_every_member()),
            caller,
            self.audit.clone(),
        );
        let id = job.id.clone();
        self.log(
            job.entry("op_execute", AuditResult::Ok)
                .params(serde_json::json!({ "request": b.request, "before": topology_summary(&before) })),
        )
        .await;
        let svc = self.clone();
        // Every log line of the run carries the job id, which is the
        // correlation id of its audit entries.
        let span = tracing::info_span!("operation", correlation_id = %id, kind = ?b.request.kind());
        let run_it = async move {
            let _guard = guard;
            let run = RunCtx {
                svc: &svc,
                job: &job,
                req: &b.request,
                before: &before,
            };
            let outcome = operation(b.request.kind()).run(run).await;
            let after = svc.patroni.topology().await;
            job.finish(
                outcome,
                serde_json::json!({
                    "kind": b.request.kind(),
                    "before": topology_summary(&before),
                    "after": topology_summary(&after),
                }),
            )
            .await;
        };
        tokio::spawn(tracing::Instrument::instrument(run_it, span));
        Ok(id)
    }

    pub fn job(&self, id: &str) -> Option<OpJob> {
        self.jobs.get(id)
    }

    /// Cancel the scheduled switchover (not destructive: no typed confirmation).
    pub async fn cancel_scheduled_switchover(&self, caller: &Caller) -> Result<String, OpError> {
        let t = self.patroni.topology().await;
        let r = match (&t.scheduled_switchover, t.members.iter().find(|m| m.reachable)) {
            (None, _) => Err(OpError::Failed("no switchover is scheduled".into())),
            (_, None) => Err(OpError::Failed("no member answers".into())),
            (Some(s), Some(via)) => self
                .admin
                .cancel_scheduled_switchover(&via.name)
                .await
                .map(|_| format!("the switchover scheduled for {} was cancelled", s.at))
                .map_err(|e| OpError::Failed(e.to_string())),
        };
        let (res, err) = match &r {
            Ok(_) => (AuditResult::Ok, String::new()),
            Err(e) => (AuditResult::Failed, e.to_string()),
        };
        self.log(Self::entry(caller, "switchover_cancel", res, &self.cluster_name).error(&err))
            .await;
        r
    }
}
