//! Cluster operations with one protocol: prepare (a plan with preconditions
//! and a single-use token) → confirm (type the target's name, and the
//! password for the riskiest) → execute (token, name and password checked on
//! the server, preconditions re-checked under the cluster-wide lock, steps
//! streamed and audited).

mod guard;
mod jobs;
pub mod plan;
pub mod reinit_cluster;
mod runner;
pub mod write_probe;

pub use guard::{CatalogLock, Holder, OpLock, TokenBinding, TokenError, TokenStore};
pub use jobs::{JobHandle, Jobs};

use std::sync::Arc;

use model::operations::{OpJob, OpKind, OpRequest, Plan};
use model::Topology;
use sha2::{Digest, Sha256};

use crate::audit::{AuditEntry, AuditLog, AuditResult};
use crate::authz::Caller;
use crate::haproxy::HaproxyClient;
use crate::patroni::admin::PatroniAdmin;
use crate::patroni::PatroniClient;
use crate::users::UserStore;
use write_probe::ProbeTarget;

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("{0}")]
    Token(#[from] TokenError),
    #[error("you typed {typed:?}; type exactly {expected:?} to confirm. Nothing was changed")]
    WrongName { typed: String, expected: String },
    #[error("this operation needs your password: type it to confirm. Nothing was changed")]
    PasswordRequired,
    #[error("the password is wrong, so this confirmation is used up and counts toward your account's lockout. Nothing was changed; prepare the operation again")]
    WrongPassword,
    #[error("too many wrong passwords: your account is locked until {} UTC. Nothing was changed", utc(*.0))]
    Locked(i64),
    #[error("busy: {title} by {user} since {since}. Try again when it has finished")]
    Busy { title: String, user: String, since: String },
    #[error("the cluster changed since you confirmed: was {was}, now {now}. Nothing was changed; prepare the operation again")]
    Changed { was: String, now: String },
    #[error("refused, nothing was changed: {0}")]
    Preconditions(String),
    #[error("{0}")]
    Failed(String),
    #[error("{0}")]
    Internal(String),
}

pub struct OperationService {
    pub cluster_name: String,
    pub patroni: Arc<PatroniClient>,
    pub admin: Arc<PatroniAdmin>,
    pub haproxy: Arc<HaproxyClient>,
    pub audit: Arc<AuditLog>,
    pub users: UserStore,
    pub probe: Option<ProbeTarget>,
    pub tokens: TokenStore,
    pub lock: OpLock,
    /// Verify and delete of finished backups, one at a time (verify queues, bounded).
    pub catalog: CatalogLock,
    pub jobs: Jobs,
    /// How long a confirmation token lives (5 minutes in production).
    pub token_ttl_ms: i64,
    /// Whole-cluster reinitialization; None: not offered.
    pub reinit: Option<reinit_cluster::ReinitSettings>,
    /// Replica backups; None: not offered.
    pub backup: Option<crate::backup::BackupSettings>,
}

pub(crate) fn utc(ms: i64) -> String {
    let s = (ms / 1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02} UTC", s / 3600, (s % 3600) / 60, s % 60)
}

/// A short description of the topology for the audit log.
pub fn topology_summary(t: &Topology) -> serde_json::Value {
    serde_json::json!({
        "leader": t.leader().map(|m| m.name.clone()),
        "paused": t.paused,
        "members": t.members.iter().map(|m| serde_json::json!({
            "name": m.name, "role": m.role.label(), "state": m.state, "timeline": m.timeline, "lag": m.lag_bytes
        })).collect::<Vec<_>>(),
    })
}

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
        let max_lag = match (&req.kind, &self.backup) {
            (OpKind::Backup, Some(b)) => Some(b.max_lag_bytes),
            _ => self.max_lag(&t).await,
        };
        let mut d = plan::draft(req, &t, max_lag, caller.role, crate::now_ms());
        if req.kind == OpKind::ReinitializeCluster {
            match &self.reinit {
                Some(s) => d.preconditions.extend(reinit_cluster::check_data_dir(s)),
                None => d.preconditions.push(model::operations::Precondition {
                    ok: false,
                    text: "cluster reinitialization is not configured (stack_data_dir)".into(),
                }),
            }
        }
        (d, t)
    }

    pub(crate) fn entry(caller: &Caller, action: &str, result: AuditResult, target: &str) -> AuditEntry {
        AuditEntry::new(action, result)
            .user(&caller.name, caller.role.as_str())
            .ip(&caller.ip)
            .session(&caller.sid)
            .target(target)
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
        let needs_password = req.kind.needs_password();
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
            request: req,
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
    pub async fn execute(
        self: &Arc<Self>,
        caller: &Caller,
        token: &str,
        typed_name: &str,
        password: Option<&str>,
    ) -> Result<String, OpError> {
        let result = self.check_and_start(caller, token, typed_name, password).await;
        if let Err(e) = &result {
            self.log(Self::entry(caller, "op_execute", AuditResult::Refused, "").error(&e.to_string()))
                .await;
        }
        result
    }

    async fn check_and_start(
        self: &Arc<Self>,
        caller: &Caller,
        token: &str,
        typed_name: &str,
        password: Option<&str>,
    ) -> Result<String, OpError> {
        let b = self.tokens.peek(token, caller.user_id, &caller.sid, crate::now_ms())?;
        if typed_name != b.confirm_name {
            return Err(OpError::WrongName {
                typed: typed_name.into(),
                expected: b.confirm_name,
            });
        }
        if b.needs_password {
            let password = password.filter(|p| !p.is_empty()).ok_or(OpError::PasswordRequired)?;
            match self.users.step_up(caller.user_id, password).await {
                Ok(_) => {}
                Err(e) => {
                    // A wrong password uses the confirmation up: guessing
                    // needs a new plan each time, and counts toward the lockout.
                    self.tokens.take(token);
                    return Err(match e {
                        crate::users::UserError::WrongPassword => OpError::WrongPassword,
                        crate::users::UserError::Locked(until) => OpError::Locked(until),
                        other => OpError::Internal(other.to_string()),
                    });
                }
            }
        }
        // From here on the token is used up, whatever happens.
        let b = self.tokens.take(token).ok_or(TokenError::Unknown)?;
        let guard = self
            .lock
            .try_acquire(&b.title, &caller.name)
            .map_err(|h| OpError::Busy {
                title: h.title,
                user: h.user,
                since: utc(h.since_ms),
            })?;
        let (d, before) = self.draft(caller, &b.request).await;
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
        let job = self.jobs.start(&d.title, &b.request.member, caller, self.audit.clone());
        let id = job.id.clone();
        self.log(
            job.entry("op_execute", AuditResult::Ok)
                .params(serde_json::json!({ "request": b.request, "before": topology_summary(&before) })),
        )
        .await;
        let svc = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            let outcome = svc.run(&job, &b.request, &before).await;
            let after = svc.patroni.topology().await;
            job.finish(
                outcome,
                serde_json::json!({ "before": topology_summary(&before), "after": topology_summary(&after) }),
            )
            .await;
        });
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
