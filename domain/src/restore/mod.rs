//! Disaster recovery's files: the folder a restore keeps the cluster's data
//! in, its journal, and the moves that swap a backup in and put the data
//! back. The operation that drives them is
//! `operations/restore_cluster.rs`.
//!
//! A restore never deletes the cluster's data: it moves it, by `rename` on
//! the same file system, into `${DEFAULT_DATA_DIR}/pg-console-kept/<id>/`:
//!
//! - `restore.json`: the journal (phase, who, which backup, outcome);
//! - `incoming/`: the backup, extracted beside the running cluster;
//! - `previous/pg/pgN-data`, `previous/etcd/member`: the data from before;
//! - `failed/...`: a failed restore's data, once the previous data is back.
//!
//! Only "Discard the data kept from before the restore" removes a folder.

pub mod replay;
pub mod swap;

use std::path::{Path, PathBuf};

use model::backups::{KeptData, RestorePhase};
use serde::{Deserialize, Serialize};

/// The folder, under `${DEFAULT_DATA_DIR}`, that holds what restores keep.
pub const KEPT_DIR: &str = "pg-console-kept";
const JOURNAL: &str = "restore.json";

pub fn kept_root(data_dir: &Path) -> PathBuf {
    data_dir.join(KEPT_DIR)
}

/// One restore, as written in its folder before each step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub id: String,
    pub started_at_ms: i64,
    pub started_by: String,
    pub backup_id: String,
    /// The member restored as the new leader (`pg-1`).
    pub leader: String,
    /// Every member's container, in start order.
    pub members: Vec<String>,
    /// Owner (uid, gid) of the members' data directories.
    pub owner: (u32, u32),
    pub phase: RestorePhase,
    pub outcome: String,
    pub holds: String,
    pub bytes: u64,
    /// The point in time it replayed to, if it did.
    #[serde(default)]
    pub target_ms: Option<i64>,
}

impl Journal {
    pub fn folder(&self, data_dir: &Path) -> PathBuf {
        kept_root(data_dir).join(&self.id)
    }

    /// Written to a temporary file, synced, then renamed over the journal:
    /// a crash leaves the old or the new journal, never half of one.
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let dir = self.folder(data_dir);
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!("{JOURNAL}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(JOURNAL))?;
        std::fs::File::open(&dir)?.sync_all()
    }

    pub fn view(&self, data_dir: &Path) -> KeptData {
        KeptData {
            id: self.id.clone(),
            path: self.folder(data_dir).display().to_string(),
            started_at_ms: self.started_at_ms,
            started_by: self.started_by.clone(),
            backup_id: self.backup_id.clone(),
            phase: self.phase,
            outcome: self.outcome.clone(),
            holds: self.holds.clone(),
            bytes: self.bytes,
        }
    }
}

/// A folder name from the time: `20261130T071502Z` (sorts by time).
pub fn new_id(now_ms: i64) -> String {
    crate::datetime::format_compact(now_ms)
}

/// Every restore's journal, newest first. Unreadable journals are logged and skipped.
pub fn journals(data_dir: &Path) -> Vec<Journal> {
    let Ok(rd) = std::fs::read_dir(kept_root(data_dir)) else {
        return Vec::new();
    };
    let mut out: Vec<Journal> = rd
        .flatten()
        .filter_map(|e| {
            let p = e.path().join(JOURNAL);
            let bytes = std::fs::read(&p).ok()?;
            serde_json::from_slice(&bytes)
                .map_err(|err| tracing::warn!("cannot read {}: {err}", p.display()))
                .ok()
        })
        .collect();
    out.sort_by(|a, b| b.id.cmp(&a.id));
    out
}

pub fn find(data_dir: &Path, id: &str) -> Option<Journal> {
    journals(data_dir).into_iter().find(|j| j.id == id)
}

/// Bytes of the regular files under `dir` (0 when it does not exist).
pub fn tree_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                _ => {}
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_are_saved_atomically_and_listed_newest_first() {
        let root = std::env::temp_dir().join(format!("pgc-kept-{}-{}", std::process::id(), crate::now_ms()));
        let mut j = Journal {
            id: "20261130T070000Z".into(),
            started_at_ms: 1,
            started_by: "ada".into(),
            backup_id: "b1".into(),
            leader: "pg-1".into(),
            members: vec!["pg-0".into(), "pg-1".into()],
            owner: (100, 102),
            phase: RestorePhase::Staging,
            outcome: String::new(),
            holds: String::new(),
            bytes: 0,
            target_ms: None,
        };
        j.save(&root).unwrap();
        j.id = "20261130T080000Z".into();
        j.phase = RestorePhase::Done;
        j.save(&root).unwrap();
        std::fs::create_dir_all(kept_root(&root).join("not-a-restore")).unwrap();
        let all = journals(&root);
        assert_eq!(
            all.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(),
            ["20261130T080000Z", "20261130T070000Z"]
        );
        assert_eq!(find(&root, "20261130T070000Z").unwrap().phase, RestorePhase::Staging);
        assert!(!kept_root(&root).join("20261130T080000Z/restore.json.tmp").exists());
        let _ = std::fs::remove_dir_all(root);
    }
}
