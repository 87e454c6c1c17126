//! The WAL archive's retention, tied to the backups kept: replaying WAL
//! starts at a backup's redo point, so a segment that ends before the
//! oldest kept backup's redo point (of the same system identifier) can
//! serve no restore and is deleted. Timeline history files are kept. A
//! system identifier with no successful backup kept is left alone: its
//! first backup will need the WAL from then on, and deleting a cluster's
//! whole archive is not retention's call. Blocking: call it off the async
//! threads.

use std::collections::BTreeMap;
use std::path::Path;

use model::backups::BackupStatus;
use model::wal::{parse_lsn, SEGMENT_BYTES};

use super::files::{segment_of, RECEIVING_DIR};
use crate::backup::Manifest;

/// What one pass removed from one system identifier's folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pruned {
    pub system_identifier: String,
    pub files: u64,
    pub bytes: u64,
    /// Segments before this one were removed: the oldest kept backup's redo point.
    pub before_lsn: String,
    /// That backup.
    pub backup_id: String,
}

impl Pruned {
    /// The job's step and the audit entry's text.
    pub fn describe(&self) -> String {
        format!(
            "WAL archive: removed {} segment file(s), {}, before {}: the oldest backup kept ({}) starts there",
            self.files,
            model::topology::human_bytes(self.bytes),
            self.before_lsn,
            self.backup_id
        )
    }
}

/// The oldest successful backup's redo point per system identifier.
fn oldest_redo(backups: &[Manifest]) -> BTreeMap<String, (u64, String)> {
    let mut oldest: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for m in backups.iter().filter(|m| m.status == BackupStatus::Ok) {
        let Some(redo) = parse_lsn(&m.redo_lsn) else { continue };
        let e = oldest
            .entry(m.system_identifier.clone())
            .or_insert((redo, m.id.clone()));
        if redo < e.0 {
            *e = (redo, m.id.clone());
        }
    }
    oldest
}

/// Deletes, in each system identifier's folder under `root` that has a
/// backup kept, the segments wholly before that backup's redo point.
/// Folders where nothing was removed are not reported.
pub fn prune(root: &Path, backups: &[Manifest]) -> Vec<Result<Pruned, String>> {
    let mut out = Vec::new();
    for (sysid, (redo, backup_id)) in oldest_redo(backups) {
        let dir = root.join(&sysid);
        if sysid.is_empty() || !dir.is_dir() {
            continue;
        }
        let keep_from = redo / SEGMENT_BYTES;
        let r = prune_folder(&dir, keep_from).map_err(|e| format!("WAL archive retention in {}: {e}", dir.display()));
        match r {
            Ok((0, _)) => {}
            Ok((files, bytes)) => out.push(Ok(Pruned {
                system_identifier: sysid,
                files,
                bytes,
                before_lsn: model::topology::format_lsn(redo),
                backup_id,
            })),
            Err(e) => out.push(Err(e)),
        }
    }
    out
}

fn prune_folder(dir: &Path, keep_from: u64) -> std::io::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == RECEIVING_DIR {
            continue;
        }
        let Some((_, segno)) = segment_of(&name) else { continue };
        if segno < keep_from {
            let len = entry.metadata()?.len();
            std::fs::remove_file(entry.path())?;
            files += 1;
            bytes += len;
        }
    }
    if files > 0 {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::archive::Compression;
    use crate::backup::Manifest;

    fn backup(id: &str, sysid: &str, redo: &str, status: BackupStatus) -> Manifest {
        let mut m = Manifest::new(id, "c", "pg-1", Compression::Gzip, "ann");
        m.system_identifier = sysid.into();
        m.redo_lsn = redo.into();
        m.status = status;
        m
    }

    #[test]
    fn segments_before_the_oldest_kept_backup_go_history_and_other_clusters_stay() {
        let root = std::env::temp_dir().join(format!("pgc-walret-{}-{}", std::process::id(), crate::now_ms()));
        let (a, b) = (root.join("111"), root.join("222"));
        for d in [&a, &b, &a.join(RECEIVING_DIR)] {
            std::fs::create_dir_all(d).unwrap();
        }
        for n in [
            "00000001.history.gz",
            "000000010000000100000029.gz",
            "00000001000000010000002A.gz.partial",
            "00000002000000010000002A.gz",
            "00000002000000010000002B.gz",
            "00000002000000010000002C.gz",
        ] {
            std::fs::write(a.join(n), b"x").unwrap();
        }
        std::fs::write(a.join(RECEIVING_DIR).join("000000020000000100000001.gz.partial"), b"x").unwrap();
        std::fs::write(b.join("000000010000000000000001.gz"), b"x").unwrap();
        let backups = [
            backup("new", "111", "1/2C000028", BackupStatus::Ok),
            backup("old", "111", "1/2B0000A0", BackupStatus::Ok),
            backup("failed", "111", "1/10000000", BackupStatus::Failed),
        ];
        let r = prune(&root, &backups);
        assert_eq!(
            r,
            [Ok(Pruned {
                system_identifier: "111".into(),
                files: 3,
                bytes: 3,
                before_lsn: "1/2B0000A0".into(),
                backup_id: "old".into(),
            })]
        );
        let mut left: Vec<String> = std::fs::read_dir(&a)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".receiving",
                "00000001.history.gz",
                "00000002000000010000002B.gz",
                "00000002000000010000002C.gz"
            ]
        );
        assert!(
            b.join("000000010000000000000001.gz").exists(),
            "no backup of 222: its archive stays"
        );
        assert_eq!(
            r[0].as_ref().unwrap().describe(),
            "WAL archive: removed 3 segment file(s), 3 B, before 1/2B0000A0: the oldest backup kept (old) starts there"
        );
        // A second pass has nothing left to remove.
        assert!(prune(&root, &backups).is_empty());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
