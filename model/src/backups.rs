use serde::{Deserialize, Serialize};

/// Where a backup stands. Written into each manifest as `running`, `ok` or
/// `failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupStatus {
    /// Being taken (or its console died: the next start marks it failed).
    Running,
    /// The archive is complete and listed.
    Ok,
    /// No archive: the manifest says why.
    Failed,
}

impl BackupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Running => "running",
            BackupStatus::Ok => "ok",
            BackupStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a backup was taken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    /// A cold copy of a stopped replica's data directory (the SOP's section 4):
    /// restores as is, without WAL.
    #[default]
    Snapshot,
    /// `pg_basebackup` from a running replica, with the WAL that makes it
    /// consistent: nothing stops; a restore replays that WAL first.
    Base,
}

impl BackupKind {
    pub fn label(self) -> &'static str {
        match self {
            BackupKind::Snapshot => "cold snapshot",
            BackupKind::Base => "hot base backup",
        }
    }
}

/// One backup in the catalog, as the Backups page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BackupRow {
    pub id: String,
    pub archive: String,
    pub status: BackupStatus,
    pub error: String,
    pub member: String,
    pub started_at_ms: i64,
    pub started_by: String,
    pub compression: String,
    pub data_bytes: u64,
    pub archive_bytes: u64,
    pub duration_ms: u64,
    pub downtime_ms: u64,
    pub sha256: String,
    pub system_identifier: String,
    pub verified_ok: Option<bool>,
    pub verified_at_ms: Option<i64>,
    /// The commands that put it back as the replica's data directory.
    pub restore: String,
    /// Bytes read and compressed while the replica ran / compressed again
    /// (changed since) while it was stopped.
    pub compressed_running_bytes: u64,
    pub compressed_stopped_bytes: u64,
    /// Recycled WAL segments left out of the archive (they hold no WAL).
    #[serde(default)]
    pub recycled_wal_bytes: u64,
    /// The last test restore, if any.
    pub restore_test: Option<RestoreTest>,
    /// Imported from the import directory (made by hand with the SOP): the file's name.
    #[serde(default)]
    pub imported_from: Option<String>,
    #[serde(default)]
    pub kind: BackupKind,
}

/// An archive in the import directory, waiting to be imported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportFile {
    pub name: String,
    pub bytes: u64,
    pub modified_ms: i64,
}

/// An isolated PostgreSQL started on an extracted copy: what it found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RestoreTest {
    pub at_ms: i64,
    pub ok: bool,
    pub error: String,
    pub system_identifier: String,
    pub databases: u64,
    pub tables: u64,
    pub rows: u64,
    /// `database.schema.table` and its row count.
    pub table_rows: Vec<(String, u64)>,
    pub duration_ms: u64,
    /// Tables and row counts were left out: the viewer may not read backup contents.
    #[serde(default)]
    pub details_hidden: bool,
}

/// Where a restore stands, as its journal records it (in the folder it
/// keeps the cluster's previous data in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestorePhase {
    /// The backup is being extracted beside the running cluster.
    Staging,
    /// Stopping the members and etcd; nothing moved yet.
    Stopping,
    /// The current data is being moved aside and the backup's moved in.
    Swapping,
    /// The restored cluster is starting.
    Starting,
    /// The restored cluster is healthy and its data checked.
    Done,
    /// The restore failed (or was interrupted) and the previous data is back.
    RolledBack,
    /// The restore failed before anything was stopped.
    Abandoned,
}

impl RestorePhase {
    pub fn as_str(self) -> &'static str {
        match self {
            RestorePhase::Staging => "staging",
            RestorePhase::Stopping => "stopping",
            RestorePhase::Swapping => "swapping",
            RestorePhase::Starting => "starting",
            RestorePhase::Done => "done",
            RestorePhase::RolledBack => "rolled_back",
            RestorePhase::Abandoned => "abandoned",
        }
    }

    /// The restore is over: its folder may be discarded.
    pub fn finished(self) -> bool {
        matches!(
            self,
            RestorePhase::Done | RestorePhase::RolledBack | RestorePhase::Abandoned
        )
    }
}

/// A folder a restore keeps data in (`${DEFAULT_DATA_DIR}/pg-console-kept/<id>`),
/// as the Backups page lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeptData {
    pub id: String,
    pub path: String,
    pub started_at_ms: i64,
    pub started_by: String,
    /// The backup that was restored.
    pub backup_id: String,
    pub phase: RestorePhase,
    /// What happened, in a sentence.
    pub outcome: String,
    /// What the folder holds (the previous cluster's data, or a failed
    /// restore's) and its size, measured when the restore ended.
    pub holds: String,
    pub bytes: u64,
}
