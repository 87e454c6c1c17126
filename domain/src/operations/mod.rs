//! Cluster operations with one protocol: prepare (a plan with preconditions
//! and a single-use token) → confirm (type the target's name, and the
//! password for the riskiest) → execute (token, name and password checked on
//! the server, preconditions re-checked under the cluster-wide lock, steps
//! streamed and audited).

mod backup;
mod base_backup;
mod discard_kept;
mod engine;
mod failover;
mod guard;
mod jobs;
mod leader_change;
pub mod operation;
mod pause;
pub mod plan;
#[cfg(test)]
pub(crate) mod plan_tests;
pub mod reinit_cluster;
mod reinit_member;
mod reload;
mod restart;
mod restore_cluster;
mod restore_replay;
mod restore_rollback;
mod restore_run;
mod restore_to_time;
mod row_counts;
mod switchover;
mod wait;
pub mod write_probe;

pub use engine::{Confirmation, MOMENTARY_WAIT};
pub use guard::{CatalogLock, Holder, LockError, OpLock, TokenBinding, TokenError, TokenStore};
pub use jobs::{JobHandle, Jobs};

use std::sync::Arc;

use model::Topology;

use crate::audit::AuditLog;
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
    #[error("too many wrong passwords: your account is locked until {}. Nothing was changed", utc(*.0))]
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
    /// Whole-cluster reinitialization: where the stack's data is.
    pub reinit: reinit_cluster::ReinitSettings,
    /// Replica backups: where they go, and their bounds.
    pub backup: crate::backup::BackupSettings,
    /// The continuous WAL archive (point-in-time recovery), when configured.
    pub wal_archive: Option<Arc<crate::wal_archive::WalArchiveWatch>>,
}

pub(crate) use model::time::clock_utc as utc;

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
