//! Cluster operations: what the user asks, the plan the server answers with,
//! and the job that runs it.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Switchover,
    Failover,
    Restart,
    Reload,
    ReinitializeMember,
    Pause,
    Resume,
    /// The SOP's section 5: destroy all data and bootstrap a new cluster (admin).
    ReinitializeCluster,
    /// The SOP's section 4: a cold snapshot of a replica's data directory.
    Backup,
}

impl OpKind {
    pub fn label(self) -> &'static str {
        match self {
            OpKind::Switchover => "switchover",
            OpKind::Failover => "failover",
            OpKind::Restart => "restart",
            OpKind::Reload => "reload",
            OpKind::ReinitializeMember => "reinitialize member",
            OpKind::Pause => "pause automatic failover",
            OpKind::Resume => "resume automatic failover",
            OpKind::ReinitializeCluster => "reinitialize the whole cluster",
            OpKind::Backup => "replica backup",
        }
    }

    /// Operations that also ask for the user's password.
    pub fn needs_password(self) -> bool {
        matches!(
            self,
            OpKind::Failover | OpKind::ReinitializeMember | OpKind::ReinitializeCluster
        )
    }

    /// Cluster-wide operations are confirmed by typing the cluster's name.
    pub fn cluster_wide(self) -> bool {
        matches!(
            self,
            OpKind::Switchover | OpKind::Failover | OpKind::Pause | OpKind::Resume | OpKind::ReinitializeCluster
        )
    }
}

/// What the user asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OpRequest {
    pub kind: OpKind,
    /// The member acted on (restart, reload, reinitialize) or the candidate
    /// (switchover, failover); empty for pause/resume.
    pub member: String,
    /// Switchover: when (UTC, `YYYY-MM-DDTHH:MM`); restart: likewise.
    pub scheduled_at: Option<String>,
    /// Restart only if a restart is pending.
    pub only_if_pending: bool,
    /// Backup: `zstd` (default) or `gzip` (a .tar.gz the SOP's `tar -xzf` restores).
    #[serde(default)]
    pub compression: Option<String>,
    /// Whole-cluster reinitialization: back up the healthiest replica first.
    #[serde(default)]
    pub backup_first: bool,
    /// Backup: go ahead although the target is the only healthy replica
    /// (the operator confirmed that the leader then serves alone).
    #[serde(default)]
    pub allow_only_replica: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Precondition {
    pub ok: bool,
    pub text: String,
}

/// The server's answer to "prepare": what it will do and whether it may.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub request: OpRequest,
    pub title: String,
    pub steps: Vec<String>,
    pub preconditions: Vec<Precondition>,
    /// The shell command this replaces (for the record, and for those who know the SOP).
    pub shell: String,
    /// What the user must type to confirm (a member or the cluster name).
    pub confirm_name: String,
    pub needs_password: bool,
    /// Single-use, bound to the user, the session, the request and this plan.
    pub token: String,
    pub expires_at_ms: i64,
}

impl Plan {
    pub fn can_run(&self) -> bool {
        self.preconditions.iter().all(|p| p.ok)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepState {
    Running,
    Done,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobStep {
    pub at_ms: i64,
    pub text: String,
    pub state: StepState,
}

/// A running or finished operation, as the page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpJob {
    pub id: String,
    pub title: String,
    /// The member acted on (empty for cluster-wide operations).
    #[serde(default)]
    pub member: String,
    pub user: String,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub steps: Vec<JobStep>,
    /// None while running; Ok(summary) or Err(reason) at the end.
    pub outcome: Option<Result<String, String>>,
    /// Switchover/failover: the longest time writes were refused (ms).
    pub write_gap_ms: Option<u64>,
    /// Backup: archiving progress.
    #[serde(default)]
    pub progress: Option<Progress>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub phase: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
    pub files: u64,
    pub rate_bytes_per_s: u64,
    pub eta_s: Option<u64>,
}

/// One running operation, as the `/ws/jobs` feed announces it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningJob {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub member: String,
    pub user: String,
    pub started_at_ms: i64,
}

/// A message of the `/ws/jobs` feed: the operations running now (sent on
/// connect and whenever that set changes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningJobs {
    pub running: Vec<RunningJob>,
}

impl From<&OpJob> for RunningJob {
    fn from(j: &OpJob) -> Self {
        RunningJob {
            id: j.id.clone(),
            title: j.title.clone(),
            member: j.member.clone(),
            user: j.user.clone(),
            started_at_ms: j.started_at_ms,
        }
    }
}
