//! Running and finished operation jobs; each step is kept for the page and
//! written to the audit log under the job's correlation id.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use model::operations::{JobStep, OpJob, StepState};

use crate::audit::{AuditEntry, AuditLog, AuditResult};
use crate::authz::Caller;

const KEEP: usize = 50;

#[derive(Clone)]
pub struct Jobs {
    inner: Arc<Mutex<VecDeque<OpJob>>>,
    /// Bumped on every change, so followers (websockets) wake without polling.
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs {
            inner: Arc::default(),
            changed: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }
}

impl Jobs {
    /// Wakes on every change of any job.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn get(&self, id: &str) -> Option<OpJob> {
        self.inner
            .lock()
            .expect("jobs poisoned")
            .iter()
            .find(|j| j.id == id)
            .cloned()
    }

    /// The last jobs kept in memory (at most 50), newest first.
    pub fn recent(&self) -> Vec<OpJob> {
        self.inner
            .lock()
            .expect("jobs poisoned")
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    /// Only the jobs still running (asked on every Overview refresh).
    pub fn running(&self) -> Vec<OpJob> {
        self.inner
            .lock()
            .expect("jobs poisoned")
            .iter()
            .filter(|j| j.outcome.is_none())
            .cloned()
            .collect()
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut OpJob)) {
        if let Some(j) = self
            .inner
            .lock()
            .expect("jobs poisoned")
            .iter_mut()
            .find(|j| j.id == id)
        {
            f(j);
        }
        self.bump();
    }

    /// A new running job: `member` is the one acted on ("" for cluster-wide
    /// operations); `stops_every_member` for whole-cluster reinit and restore.
    pub fn start(
        &self,
        title: &str,
        (member, stops_every_member): (&str, bool),
        caller: &Caller,
        audit: Arc<AuditLog>,
    ) -> JobHandle {
        let id = crate::users::random_token()[..16].to_string();
        let mut q = self.inner.lock().expect("jobs poisoned");
        q.push_back(OpJob {
            id: id.clone(),
            title: title.to_string(),
            member: member.to_string(),
            stops_every_member,
            user: caller.name.clone(),
            started_at_ms: crate::now_ms(),
            finished_at_ms: None,
            steps: Vec::new(),
            outcome: None,
            write_gap_ms: None,
            progress: None,
        });
        while q.len() > KEEP {
            q.pop_front();
        }
        drop(q);
        self.bump();
        JobHandle {
            id,
            jobs: self.clone(),
            audit,
            caller: caller.clone(),
            title: title.to_string(),
        }
    }
}

/// The running job's pen: steps, the write gap, the outcome.
pub struct JobHandle {
    pub id: String,
    jobs: Jobs,
    audit: Arc<AuditLog>,
    caller: Caller,
    title: String,
}

impl JobHandle {
    pub fn entry(&self, action: &str, result: AuditResult) -> AuditEntry {
        let mut e = AuditEntry::new(action, result).by(&self.caller).target(&self.title);
        e.correlation_id = self.id.clone();
        e
    }

    async fn log(&self, e: AuditEntry) {
        if let Err(err) = self.audit.record(e).await {
            tracing::error!("cannot write the audit log: {err}");
        }
    }

    /// Close the running step as done and open a new one.
    pub async fn step(&self, text: impl Into<String>) {
        let text = text.into();
        // Within the run's span: the line carries the job's correlation id.
        tracing::info!(user = %self.caller.name, "{}: {text}", self.title);
        let now = crate::now_ms();
        self.jobs.update(&self.id, |j| {
            for s in j.steps.iter_mut().filter(|s| s.state == StepState::Running) {
                s.state = StepState::Done;
            }
            // A bar belongs to the step that published it.
            j.progress = None;
            j.steps.push(JobStep {
                at_ms: now,
                text: text.clone(),
                state: StepState::Running,
            });
        });
        self.log(
            self.entry("op_step", AuditResult::Ok)
                .params(serde_json::json!({ "step": text })),
        )
        .await;
    }

    pub fn user(&self) -> String {
        self.caller.name.clone()
    }

    /// A thread-safe way to publish progress from blocking work.
    pub fn progress_sink(&self) -> impl Fn(model::operations::Progress) + Send + 'static {
        let (jobs, id) = (self.jobs.clone(), self.id.clone());
        move |p| jobs.update(&id, |j| j.progress = Some(p))
    }

    pub fn set_write_gap(&self, ms: u64) {
        self.jobs.update(&self.id, |j| j.write_gap_ms = Some(ms));
    }

    /// Finish: the running step becomes done (or failed), the outcome is set and audited.
    pub async fn finish(&self, outcome: Result<String, String>, params: serde_json::Value) {
        let now = crate::now_ms();
        let mut started = now;
        let failed = outcome.is_err();
        match &outcome {
            Ok(summary) => tracing::info!("{} done: {summary}", self.title),
            Err(reason) => tracing::warn!("{} failed: {reason}", self.title),
        }
        self.jobs.update(&self.id, |j| {
            started = j.started_at_ms;
            for s in j.steps.iter_mut().filter(|s| s.state == StepState::Running) {
                s.state = if failed { StepState::Failed } else { StepState::Done };
            }
            j.finished_at_ms = Some(now);
            j.outcome = Some(outcome.clone());
        });
        let mut e = match &outcome {
            Ok(summary) => self
                .entry("op_result", AuditResult::Ok)
                .params(serde_json::json!({ "summary": summary, "detail": params })),
            Err(reason) => self
                .entry("op_result", AuditResult::Failed)
                .error(reason)
                .params(params),
        };
        e.duration_ms = now - started;
        self.log(e).await;
    }
}
