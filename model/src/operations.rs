//! Cluster operations: what the user asks and the plan the server answers
//! with (the job that runs it is in [`crate::jobs`]).

use serde::{Deserialize, Serialize};

pub use crate::jobs::{JobStep, OpJob, Progress, RunningJob, RunningJobs, StepState};

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
    /// A hot base backup of a replica (`pg_basebackup` over the replication
    /// protocol, checked with `pg_verifybackup`): nothing stops.
    BaseBackup,
    /// Disaster recovery: replace the cluster's data with a backup's (admin);
    /// the current data is moved aside, not deleted.
    RestoreCluster,
    /// Point-in-time recovery: the newest backup before a time, replayed
    /// from the WAL archive to that time, becomes the cluster (admin).
    RestoreToTime,
    /// Free the space of the data kept aside by a restore (admin).
    DiscardKept,
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
            OpKind::BaseBackup => "hot base backup",
            OpKind::RestoreCluster => "restore the cluster from a backup",
            OpKind::RestoreToTime => "restore the cluster to a point in time",
            OpKind::DiscardKept => "discard the data kept from before a restore",
        }
    }

    /// Operations that also ask for the user's password.
    pub fn needs_password(self) -> bool {
        matches!(
            self,
            OpKind::Failover
                | OpKind::ReinitializeMember
                | OpKind::ReinitializeCluster
                | OpKind::RestoreCluster
                | OpKind::RestoreToTime
                | OpKind::DiscardKept
        )
    }

    /// Operations that stop every member for a while (their rows show as
    /// expected-down, not failed, while the job runs).
    pub fn stops_every_member(self) -> bool {
        matches!(
            self,
            OpKind::ReinitializeCluster | OpKind::RestoreCluster | OpKind::RestoreToTime
        )
    }

    /// Operations on one member (the others act on the whole cluster, a
    /// backup or kept data).
    pub fn needs_member(self) -> bool {
        !matches!(
            self,
            OpKind::Pause
                | OpKind::Resume
                | OpKind::ReinitializeCluster
                | OpKind::RestoreCluster
                | OpKind::RestoreToTime
                | OpKind::DiscardKept
        )
    }

    /// A backup of a replica, cold or hot.
    pub fn is_backup(self) -> bool {
        matches!(self, OpKind::Backup | OpKind::BaseBackup)
    }

    /// Cluster-wide operations are confirmed by typing the cluster's name.
    pub fn cluster_wide(self) -> bool {
        matches!(
            self,
            OpKind::Switchover
                | OpKind::Failover
                | OpKind::Pause
                | OpKind::Resume
                | OpKind::ReinitializeCluster
                | OpKind::RestoreCluster
                | OpKind::RestoreToTime
        )
    }
}

/// How a backup archive is compressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Multi-threaded, `.tar.zst`.
    #[default]
    Zstd,
    /// `.tar.gz`, which the SOP's plain `tar -xzf` restores.
    Gzip,
}

impl Compression {
    /// What a form asked for: `zstd` (the default when empty) or `gzip`.
    pub fn parse(name: &str) -> Result<Compression, String> {
        match name.trim() {
            "" | "zstd" => Ok(Compression::Zstd),
            "gzip" | "gz" => Ok(Compression::Gzip),
            other => Err(format!("unknown compression {other:?}: choose zstd or gzip")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Compression::Zstd => "tar.zst",
            Compression::Gzip => "tar.gz",
        }
    }
}

/// What the user asks for: one variant per kind, with only its own fields.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpRequest {
    /// `scheduled_at`: when (UTC, `YYYY-MM-DDTHH:MM[:SS]`), or now.
    Switchover {
        candidate: String,
        scheduled_at: Option<String>,
    },
    Failover {
        candidate: String,
    },
    Restart {
        member: String,
        scheduled_at: Option<String>,
        only_if_pending: bool,
    },
    Reload {
        member: String,
    },
    ReinitializeMember {
        member: String,
    },
    Pause,
    Resume,
    /// `backup_first`: back up the healthiest replica first.
    ReinitializeCluster {
        backup_first: bool,
    },
    /// `allow_only_replica`: go ahead although it is the only healthy
    /// replica (the operator confirmed that the leader then serves alone).
    Backup {
        member: String,
        compression: Compression,
        allow_only_replica: bool,
    },
    BaseBackup {
        member: String,
        compression: Compression,
    },
    /// `other_system`: the backup is another cluster's (its system
    /// identifier differs), and the admin chose to restore it anyway.
    RestoreCluster {
        backup_id: String,
        other_system: bool,
    },
    /// `target`: the time to restore to, in UTC as typed
    /// (`YYYY-MM-DD HH:MM:SS`; the plan refuses what does not parse).
    RestoreToTime {
        target: String,
    },
    /// `kept_id`: the folder a restore moved the cluster's data into.
    DiscardKept {
        kept_id: String,
    },
}

impl OpRequest {
    pub fn kind(&self) -> OpKind {
        match self {
            OpRequest::Switchover { .. } => OpKind::Switchover,
            OpRequest::Failover { .. } => OpKind::Failover,
            OpRequest::Restart { .. } => OpKind::Restart,
            OpRequest::Reload { .. } => OpKind::Reload,
            OpRequest::ReinitializeMember { .. } => OpKind::ReinitializeMember,
            OpRequest::Pause => OpKind::Pause,
            OpRequest::Resume => OpKind::Resume,
            OpRequest::ReinitializeCluster { .. } => OpKind::ReinitializeCluster,
            OpRequest::Backup { .. } => OpKind::Backup,
            OpRequest::BaseBackup { .. } => OpKind::BaseBackup,
            OpRequest::RestoreCluster { .. } => OpKind::RestoreCluster,
            OpRequest::RestoreToTime { .. } => OpKind::RestoreToTime,
            OpRequest::DiscardKept { .. } => OpKind::DiscardKept,
        }
    }

    /// The member acted on, or the candidate; None for cluster-wide requests.
    pub fn member(&self) -> Option<&str> {
        match self {
            OpRequest::Switchover { candidate, .. } | OpRequest::Failover { candidate } => Some(candidate),
            OpRequest::Restart { member, .. }
            | OpRequest::Reload { member }
            | OpRequest::ReinitializeMember { member }
            | OpRequest::Backup { member, .. }
            | OpRequest::BaseBackup { member, .. } => Some(member),
            OpRequest::Pause
            | OpRequest::Resume
            | OpRequest::ReinitializeCluster { .. }
            | OpRequest::RestoreCluster { .. }
            | OpRequest::RestoreToTime { .. }
            | OpRequest::DiscardKept { .. } => None,
        }
    }

    pub fn scheduled_at(&self) -> Option<&str> {
        match self {
            OpRequest::Switchover { scheduled_at, .. } | OpRequest::Restart { scheduled_at, .. } => {
                scheduled_at.as_deref()
            }
            _ => None,
        }
    }
}

/// The operation form as the browser sends it (`op_prepare`): every field,
/// most of them empty. [`OpForm::request`] keeps what the kind uses and
/// refuses what it does not.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpForm {
    pub kind: Option<OpKind>,
    pub member: String,
    pub scheduled_at: String,
    pub only_if_pending: bool,
    pub compression: String,
    pub backup_first: bool,
    pub allow_only_replica: bool,
    #[serde(default)]
    pub backup_id: String,
    #[serde(default)]
    pub other_system: bool,
    #[serde(default)]
    pub kept_id: String,
    /// Point-in-time recovery's target, UTC.
    #[serde(default)]
    pub target_time: String,
}

impl OpForm {
    /// The typed request, or a sentence saying which field is wrong.
    pub fn request(self) -> Result<OpRequest, String> {
        let kind = self.kind.ok_or("choose an operation")?;
        self.refuse_unused(kind)?;
        let member = self.member.trim().to_string();
        let when = Some(self.scheduled_at.trim().to_string()).filter(|s| !s.is_empty());
        let (backup_id, kept_id) = (self.backup_id.trim().to_string(), self.kept_id.trim().to_string());
        if kind == OpKind::RestoreCluster && backup_id.is_empty() {
            return Err("choose the backup to restore".into());
        }
        let target = self.target_time.trim().to_string();
        if kind == OpKind::RestoreToTime && target.is_empty() {
            return Err("type the time to restore to (UTC, YYYY-MM-DD HH:MM:SS)".into());
        }
        if kind == OpKind::DiscardKept && kept_id.is_empty() {
            return Err("choose the kept data to discard".into());
        }
        if kind.needs_member() && member.is_empty() {
            return Err(format!("the {} operation needs a member: choose one", kind.label()));
        }
        Ok(match kind {
            OpKind::Switchover => OpRequest::Switchover {
                candidate: member,
                scheduled_at: when,
            },
            OpKind::Failover => OpRequest::Failover { candidate: member },
            OpKind::Restart => OpRequest::Restart {
                member,
                scheduled_at: when,
                only_if_pending: self.only_if_pending,
            },
            OpKind::Reload => OpRequest::Reload { member },
            OpKind::ReinitializeMember => OpRequest::ReinitializeMember { member },
            OpKind::Pause => OpRequest::Pause,
            OpKind::Resume => OpRequest::Resume,
            OpKind::ReinitializeCluster => OpRequest::ReinitializeCluster {
                backup_first: self.backup_first,
            },
            OpKind::Backup => OpRequest::Backup {
                member,
                compression: Compression::parse(&self.compression)?,
                allow_only_replica: self.allow_only_replica,
            },
            OpKind::BaseBackup => OpRequest::BaseBackup {
                member,
                compression: Compression::parse(&self.compression)?,
            },
            OpKind::RestoreCluster => OpRequest::RestoreCluster {
                backup_id,
                other_system: self.other_system,
            },
            OpKind::RestoreToTime => OpRequest::RestoreToTime { target },
            OpKind::DiscardKept => OpRequest::DiscardKept { kept_id },
        })
    }

    /// A field set that `kind` does not take is an error, not silently dropped.
    fn refuse_unused(&self, kind: OpKind) -> Result<(), String> {
        let schedulable = matches!(kind, OpKind::Switchover | OpKind::Restart);
        let checks = [
            (!self.scheduled_at.trim().is_empty() && !schedulable, "scheduled time"),
            (self.only_if_pending && kind != OpKind::Restart, "\"only if pending\""),
            (!self.compression.trim().is_empty() && !kind.is_backup(), "compression"),
            (
                self.allow_only_replica && kind != OpKind::Backup,
                "\"even if it is the only healthy replica\"",
            ),
            (
                self.backup_first && kind != OpKind::ReinitializeCluster,
                "\"back up first\"",
            ),
            (
                !self.backup_id.trim().is_empty() && kind != OpKind::RestoreCluster,
                "backup",
            ),
            (
                self.other_system && kind != OpKind::RestoreCluster,
                "\"another cluster's backup\"",
            ),
            (
                !self.kept_id.trim().is_empty() && kind != OpKind::DiscardKept,
                "kept data",
            ),
            (
                !self.target_time.trim().is_empty() && kind != OpKind::RestoreToTime,
                "time to restore to",
            ),
            (
                !kind.needs_member() && !self.member.trim().is_empty(),
                "member (it acts on the whole cluster)",
            ),
        ];
        match checks.iter().find(|(set, _)| *set) {
            Some((_, what)) => Err(format!("the {} operation takes no {what}", kind.label())),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Precondition {
    pub ok: bool,
    pub text: String,
    /// A failure that usually passes by itself within seconds: a
    /// streaming replica's lag right after bulk writes. Execute checks
    /// such a failure again for a few seconds before it refuses.
    #[serde(default)]
    pub momentary: bool,
}

/// How long Execute checks momentary failures again before it refuses.
pub const MOMENTARY_WAIT_SECS: u64 = 15;

impl Precondition {
    /// Whether Execute should check again before refusing: something
    /// failed, and every failure is momentary.
    pub fn only_momentary_failures(all: &[Precondition]) -> bool {
        let mut failed = all.iter().filter(|p| !p.ok).peekable();
        failed.peek().is_some() && failed.all(|p| p.momentary)
    }
}

/// The server's answer to "prepare": what it will do and whether it may.
/// It does not echo the request: the token is bound to it on the server,
/// and the browser, which never read it, would carry the decoder of every
/// request kind (a sixth of its JSON code, docs/benchmarks.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn form(kind: OpKind, member: &str) -> OpForm {
        OpForm {
            kind: Some(kind),
            member: member.into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_form_becomes_a_request_with_only_its_own_fields() {
        assert_eq!(
            form(OpKind::Switchover, " pg-1 ").request(),
            Ok(OpRequest::Switchover {
                candidate: "pg-1".into(),
                scheduled_at: None
            })
        );
        let mut b = form(OpKind::Backup, "pg-2");
        b.compression = "gzip".into();
        assert_eq!(
            b.request(),
            Ok(OpRequest::Backup {
                member: "pg-2".into(),
                compression: Compression::Gzip,
                allow_only_replica: false
            })
        );
        let mut hot = form(OpKind::BaseBackup, "pg-1");
        hot.compression = "zstd".into();
        assert_eq!(
            hot.request(),
            Ok(OpRequest::BaseBackup {
                member: "pg-1".into(),
                compression: Compression::Zstd
            })
        );
        let mut hot_alone = form(OpKind::BaseBackup, "pg-1");
        hot_alone.allow_only_replica = true;
        assert!(hot_alone.request().unwrap_err().contains("only healthy replica"));
        assert_eq!(form(OpKind::Pause, "").request(), Ok(OpRequest::Pause));
        let mut bad = form(OpKind::Backup, "pg-2");
        bad.compression = "lz4".into();
        assert_eq!(
            bad.request(),
            Err("unknown compression \"lz4\": choose zstd or gzip".into())
        );
        let mut bad = form(OpKind::Reload, "pg-2");
        bad.compression = "zstd".into();
        assert_eq!(bad.request(), Err("the reload operation takes no compression".into()));
        let mut bad = form(OpKind::Reload, "pg-2");
        bad.scheduled_at = "2030-01-01T00:00".into();
        assert_eq!(
            bad.request(),
            Err("the reload operation takes no scheduled time".into())
        );
        assert_eq!(
            form(OpKind::Restart, "").request(),
            Err("the restart operation needs a member: choose one".into())
        );
        assert!(form(OpKind::Pause, "pg-1").request().is_err());
        assert_eq!(OpForm::default().request(), Err("choose an operation".into()));
        assert_eq!(
            form(OpKind::RestoreCluster, "").request(),
            Err("choose the backup to restore".into())
        );
        let mut r = form(OpKind::RestoreCluster, "");
        r.backup_id = " b1 ".into();
        assert_eq!(
            r.request(),
            Ok(OpRequest::RestoreCluster {
                backup_id: "b1".into(),
                other_system: false
            })
        );
        let mut bad = form(OpKind::Switchover, "pg-1");
        bad.backup_id = "b1".into();
        assert_eq!(bad.request(), Err("the switchover operation takes no backup".into()));
        assert_eq!(
            form(OpKind::RestoreToTime, "").request(),
            Err("type the time to restore to (UTC, YYYY-MM-DD HH:MM:SS)".into())
        );
        let mut pitr = form(OpKind::RestoreToTime, "");
        pitr.target_time = " 2026-12-01 03:20:05 ".into();
        assert_eq!(
            pitr.request(),
            Ok(OpRequest::RestoreToTime {
                target: "2026-12-01 03:20:05".into()
            })
        );
        let mut bad = form(OpKind::RestoreCluster, "");
        bad.backup_id = "b1".into();
        bad.target_time = "2026-12-01 03:20:05".into();
        assert_eq!(
            bad.request(),
            Err("the restore the cluster from a backup operation takes no time to restore to".into())
        );
        let mut bad = form(OpKind::RestoreCluster, "pg-1");
        bad.backup_id = "b1".into();
        assert_eq!(
            bad.request(),
            Err(
                "the restore the cluster from a backup operation takes no member (it acts on the whole cluster)".into()
            )
        );
    }

    #[test]
    fn requests_keep_their_wire_form() {
        let r = OpRequest::Backup {
            member: "pg-2".into(),
            compression: Compression::Zstd,
            allow_only_replica: true,
        };
        let j = serde_json::to_value(&r).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"kind": "backup", "member": "pg-2", "compression": "zstd", "allow_only_replica": true})
        );
        assert_eq!(serde_json::from_value::<OpRequest>(j).unwrap(), r);
    }
}
