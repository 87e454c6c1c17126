//! Deleting backups: one by one (admins, typed confirmation, checked by the
//! caller) and by the retention rules after each successful backup.

use std::path::Path;

use model::backups::BackupStatus;

use super::{catalog, clean_partial, Manifest};

/// Keep the newest `keep_last` backups and/or those younger than `keep_days`
/// days; 0 turns a rule off; both off keeps everything. With both on, a
/// backup survives when either rule keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    pub keep_last: u32,
    pub keep_days: u32,
}

impl Retention {
    pub fn is_off(&self) -> bool {
        self.keep_last == 0 && self.keep_days == 0
    }

    pub fn describe(&self) -> String {
        match (self.keep_last, self.keep_days) {
            (0, 0) => "keep every backup".into(),
            (n, 0) => format!("keep the newest {n}"),
            (0, d) => format!("keep those younger than {d} days"),
            (n, d) => format!("keep the newest {n} and those younger than {d} days"),
        }
    }

    /// Ids to delete from `catalog` (newest first), never `protect`.
    /// Failed backups (no archive) count like the others.
    pub fn expired(&self, catalog: &[Manifest], now_ms: i64, protect: &str) -> Vec<String> {
        if self.is_off() {
            return Vec::new();
        }
        let max_age_ms = i64::from(self.keep_days) * 86_400_000;
        catalog
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                let by_count = self.keep_last > 0 && (*i as u32) < self.keep_last;
                let by_age = self.keep_days > 0 && now_ms - m.started_at_ms < max_age_ms;
                m.id != protect && m.status != BackupStatus::Running && !by_count && !by_age
            })
            .map(|(_, m)| m.id.clone())
            .collect()
    }
}

/// Remove a backup's archive and manifest. Refuses a backup still running.
pub fn delete(dir: &Path, id: &str) -> Result<Manifest, String> {
    let m = super::find(dir, id).ok_or_else(|| format!("no backup {id}: it may have been deleted already"))?;
    if m.status == BackupStatus::Running {
        return Err(format!("backup {id} is still running; wait for it to finish"));
    }
    let archive = dir.join(m.archive_name());
    match std::fs::remove_file(&archive) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot delete {}: {e}", archive.display())),
    }
    clean_partial(dir, id);
    let removed = std::fs::remove_file(dir.join(format!("{}.manifest.json", m.archive_name())));
    super::catalog::changed();
    removed.map_err(|e| format!("cannot delete the manifest of {id}: {e}"))?;
    Ok(m)
}

/// Apply `r` to the catalog in `dir`; the deleted backups (or why one could not be).
pub fn apply(dir: &Path, r: Retention, now_ms: i64, protect: &str) -> Vec<Result<Manifest, String>> {
    r.expired(&catalog(dir), now_ms, protect)
        .iter()
        .map(|id| delete(dir, id))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::archive::Compression;

    fn m(id: &str, age_days: i64, now: i64) -> Manifest {
        let mut m = Manifest::new(id, "c", "pg-1", Compression::Zstd, "t");
        m.status = BackupStatus::Ok;
        m.started_at_ms = now - age_days * 86_400_000 - 1;
        m
    }

    #[test]
    fn rules_keep_the_newest_and_the_young_and_never_the_protected() {
        let now = 1_000 * 86_400_000;
        // Newest first, as the catalog lists them.
        let cat: Vec<Manifest> = (0..6).map(|d| m(&format!("b{d}"), d, now)).collect();
        let off = Retention::default();
        assert!(off.expired(&cat, now, "").is_empty());
        let last2 = Retention {
            keep_last: 2,
            keep_days: 0,
        };
        assert_eq!(last2.expired(&cat, now, ""), ["b2", "b3", "b4", "b5"]);
        let days3 = Retention {
            keep_last: 0,
            keep_days: 3,
        };
        assert_eq!(days3.expired(&cat, now, ""), ["b3", "b4", "b5"]);
        let both = Retention {
            keep_last: 4,
            keep_days: 1,
        };
        assert_eq!(both.expired(&cat, now, ""), ["b4", "b5"]);
        assert_eq!(last2.expired(&cat, now, "b5"), ["b2", "b3", "b4"]);
        let mut running = cat.clone();
        running[5].status = BackupStatus::Running;
        assert_eq!(last2.expired(&running, now, ""), ["b2", "b3", "b4"]);
    }

    #[test]
    fn delete_removes_archive_and_manifest() {
        let dir = std::env::temp_dir().join(format!("pgc-retention-{}-{}", std::process::id(), crate::now_ms()));
        let now = crate::now_ms();
        for (i, id) in ["new", "old"].iter().enumerate() {
            let mm = m(id, i as i64, now);
            mm.save(&dir).unwrap();
            std::fs::write(dir.join(mm.archive_name()), b"archive").unwrap();
        }
        let gone = apply(
            &dir,
            Retention {
                keep_last: 1,
                keep_days: 0,
            },
            now,
            "",
        );
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].as_ref().unwrap().id, "old");
        let left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().all(|n| n.contains("-new.")), "{left:?}");
        assert!(delete(&dir, "old").unwrap_err().contains("no backup old"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
