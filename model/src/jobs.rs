//! A running or finished operation (a job): its steps, progress and
//! outcome, and what the `/ws/jobs` feed announces.

use serde::{Deserialize, Serialize};

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
    /// The operation stops every member (whole-cluster reinit, restore).
    #[serde(default)]
    pub stops_every_member: bool,
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
