//! Replica snapshot backups (the SOP's section 4): archive, manifest, catalog,
//! verification, and the journal that lets a restarted console bring a
//! replica back when it died mid-backup.

mod after;
pub mod archive;
pub mod base;
pub mod base_files;
mod catalog;
pub mod frames;
pub mod import;
pub mod pg_control;
pub mod restore_test;
pub mod retention;
mod run;
mod service;
mod staging;

pub use service::BackupError;

use std::path::{Path, PathBuf};
use std::time::Duration;

use model::backups::{BackupKind, BackupStatus};
use serde::{Deserialize, Serialize};

use archive::{ArchiveInfo, Compression};
pub use catalog::{catalog, find};
pub use staging::clean_partial;

#[derive(Clone, Debug)]
pub struct BackupSettings {
    pub backups_dir: PathBuf,
    /// Archives made by hand (the SOP's section 4) wait here to be imported.
    pub imports_dir: PathBuf,
    /// `${DEFAULT_DATA_DIR}`: the replica's data is `pg/pgN-data` under it.
    pub stack_data_dir: PathBuf,
    /// Backups are refused while the replica lags more than this.
    pub max_lag_bytes: u64,
    pub retention: retention::Retention,
    /// The WAL archive (pg-wal's), pruned after each backup to what the oldest kept backup needs.
    pub wal_archive_dir: Option<PathBuf>,
    /// Hot base backups log in with it (the stack's replication user).
    pub replication: Option<base::ReplicationLogin>,
}

/// Written beside each archive (`<archive>.manifest.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub status: BackupStatus,
    pub error: String,
    pub cluster: String,
    pub member: String,
    pub started_at_ms: i64,
    pub started_by: String,
    pub compression: Compression,
    pub system_identifier: String,
    pub timeline: u32,
    pub checkpoint_lsn: String,
    pub redo_lsn: String,
    pub postgres_version: Option<String>,
    pub patroni_version: Option<String>,
    pub files: u64,
    pub data_bytes: u64,
    pub archive_bytes: u64,
    pub sha256: String,
    pub phases_ms: Vec<(String, u64)>,
    pub replica_downtime_ms: u64,
    /// Set by "verify": when, and whether the archive still matched.
    pub verified_at_ms: Option<i64>,
    pub verified_ok: Option<bool>,
    /// The last test restore (extract, start an isolated PostgreSQL, read every table).
    #[serde(default)]
    pub restore_test: Option<restore_test::RestoreTest>,
    /// How the archive was made: files and bytes read (and compressed)
    /// while the replica ran; files read again and bytes compressed again
    /// (changed since) while it was stopped.
    /// (Named `copied_while_*` in manifests written before compression
    /// moved to the first pass.)
    #[serde(default, alias = "copied_while_running")]
    pub compressed_while_running: (u64, u64),
    #[serde(default, alias = "copied_while_stopped")]
    pub compressed_while_stopped: (u64, u64),
    /// Recycled WAL segments left out (files, bytes): renamed for reuse,
    /// they hold no WAL of their name.
    #[serde(default)]
    pub recycled_wal_skipped: (u64, u64),
    /// Brought in from the import directory (the file's name there), not taken by the console.
    #[serde(default)]
    pub imported_from: Option<String>,
    /// A cold snapshot (manifests from before hot base backups are) or a hot base backup.
    #[serde(default)]
    pub kind: BackupKind,
    /// A hot base backup is consistent only once replayed this far (its
    /// `backup_manifest`'s WAL end); empty for a cold snapshot, consistent as is.
    #[serde(default)]
    pub consistent_lsn: String,
}

impl Manifest {
    pub fn new(id: &str, cluster: &str, member: &str, compression: Compression, by: &str) -> Self {
        Manifest {
            id: id.into(),
            status: BackupStatus::Running,
            error: String::new(),
            cluster: cluster.into(),
            member: member.into(),
            started_at_ms: crate::now_ms(),
            started_by: by.into(),
            compression,
            system_identifier: String::new(),
            timeline: 0,
            checkpoint_lsn: String::new(),
            redo_lsn: String::new(),
            postgres_version: None,
            patroni_version: None,
            files: 0,
            data_bytes: 0,
            archive_bytes: 0,
            sha256: String::new(),
            phases_ms: Vec::new(),
            replica_downtime_ms: 0,
            verified_at_ms: None,
            verified_ok: None,
            restore_test: None,
            compressed_while_running: (0, 0),
            compressed_while_stopped: (0, 0),
            recycled_wal_skipped: (0, 0),
            imported_from: None,
            kind: BackupKind::Snapshot,
            consistent_lsn: String::new(),
        }
    }

    pub fn archive_name(&self) -> String {
        format!(
            "{}-{}-{}.{}",
            crate::naming::backup_name(&self.member),
            self.started_at_ms,
            self.id,
            self.compression.extension()
        )
    }

    fn manifest_path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.manifest.json", self.archive_name()))
    }

    pub fn phase(&mut self, name: &str, d: Duration) {
        self.phases_ms.push((name.into(), d.as_millis() as u64));
    }

    pub fn complete(&mut self, a: ArchiveInfo) {
        self.status = BackupStatus::Ok;
        self.files = a.files;
        self.data_bytes = a.data_bytes;
        self.archive_bytes = a.archive_bytes;
        self.sha256 = a.sha256;
    }

    /// Record the failure (no archive is listed for it) and clean up.
    pub fn fail(&mut self, dir: &Path, reason: &str) {
        self.status = BackupStatus::Failed;
        self.error = reason.into();
        clean_partial(dir, &self.id);
        let _ = self.save(dir);
    }

    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = self.manifest_path(dir).with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).expect("manifest serialises"))?;
        let renamed = std::fs::rename(tmp, self.manifest_path(dir));
        catalog::changed();
        renamed
    }
}

/// Re-read the archive and compare its sha256; records the result.
pub fn verify(dir: &Path, id: &str) -> Result<Manifest, String> {
    let mut m = find(dir, id).ok_or_else(|| format!("no backup {id}"))?;
    if m.status != BackupStatus::Ok {
        return Err(format!("backup {id} {}: there is no archive to verify", m.status));
    }
    let sum = archive::sha256_file(&dir.join(m.archive_name())).map_err(|e| format!("cannot read the archive: {e}"))?;
    m = update(dir, id, |m| {
        m.verified_at_ms = Some(crate::now_ms());
        m.verified_ok = Some(sum == m.sha256);
    })
    .map_err(|e| format!("cannot write the manifest: {e}"))?;
    Ok(m)
}

/// Manifests are written by the backup job, verification and test restores,
/// possibly at the same time: each change is a locked read-modify-write of
/// the manifest on disk, so one never undoes another's fields.
pub fn update(dir: &Path, id: &str, f: impl FnOnce(&mut Manifest)) -> std::io::Result<Manifest> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut m =
        find(dir, id).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("no backup {id}")))?;
    f(&mut m);
    m.save(dir)?;
    Ok(m)
}

/// Free bytes on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    std::fs::create_dir_all(dir).ok()?;
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// "Replica stopped for a backup" records, written before `docker stop`.
pub mod journal {
    use std::path::{Path, PathBuf};

    #[derive(serde::Serialize, serde::Deserialize, Debug, Clone)]
    pub struct Entry {
        pub id: String,
        pub container: String,
        pub at_ms: i64,
    }

    fn dir(backups: &Path) -> PathBuf {
        backups.join(".journal")
    }

    pub fn write(backups: &Path, id: &str, container: &str) -> std::io::Result<()> {
        std::fs::create_dir_all(dir(backups))?;
        let e = Entry {
            id: id.into(),
            container: container.into(),
            at_ms: crate::now_ms(),
        };
        let p = dir(backups).join(format!("{id}.json"));
        std::fs::write(&p, serde_json::to_vec(&e).expect("journal serialises"))?;
        std::fs::File::open(&p)?.sync_all()
    }

    pub fn remove(backups: &Path, id: &str) -> std::io::Result<()> {
        std::fs::remove_file(dir(backups).join(format!("{id}.json")))
    }

    pub fn pending(backups: &Path) -> Vec<Entry> {
        std::fs::read_dir(dir(backups))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// At startup: mark failed (and clean up) every backup still "running" that
/// has no journal entry: a dead console was archiving it after the replica
/// had been started again. Returns what was done.
pub fn fail_orphaned(s: &BackupSettings) -> Vec<String> {
    let mut done = Vec::new();
    let journaled: Vec<String> = journal::pending(&s.backups_dir).into_iter().map(|e| e.id).collect();
    for mut m in catalog(&s.backups_dir) {
        if m.status == BackupStatus::Running && !journaled.contains(&m.id) {
            m.fail(
                &s.backups_dir,
                "the console stopped during the backup, after the replica had been started again; nothing to recover",
            );
            done.push(format!("marked backup {} failed and removed its partial files", m.id));
        }
    }
    done
}

/// When the console recovers interrupted backups: at its next start (it died
/// with a replica stopped), or as it shuts down (SIGTERM, `docker stop`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    AtStart,
    AtShutdown,
}

/// Start every replica a backup left stopped, mark those backups failed and
/// remove their partial files. Returns what was done.
pub async fn recover_interrupted(
    s: &BackupSettings,
    docker: &crate::docker::DockerControl,
    when: Recovery,
) -> Vec<String> {
    let mut done = Vec::new();
    for e in journal::pending(&s.backups_dir) {
        let started = docker.start(&e.container).await;
        clean_partial(&s.backups_dir, &e.id);
        let mut m = catalog(&s.backups_dir)
            .into_iter()
            .find(|m| m.id == e.id)
            .unwrap_or_else(|| {
                let mut m = Manifest::new(&e.id, "", &e.container, Compression::Zstd, "-");
                m.started_at_ms = e.at_ms;
                m
            });
        m.status = BackupStatus::Failed;
        m.error = match when {
            Recovery::AtStart => {
                "the console stopped during the backup; the replica was started again at the console's next start"
            }
            Recovery::AtShutdown => "the console was shut down during the backup; it started the replica again first",
        }
        .into();
        let _ = m.save(&s.backups_dir);
        match started {
            Ok(()) => {
                let _ = journal::remove(&s.backups_dir, &e.id);
                done.push(format!(
                    "started {} again and marked backup {} failed",
                    e.container, e.id
                ));
            }
            Err(err) => done.push(format!("could not start {} (backup {}): {err}", e.container, e.id)),
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_updates_keep_each_others_fields() {
        let dir = std::env::temp_dir().join(format!("pgc-manifest-{}-{}", std::process::id(), crate::now_ms()));
        let mut m = Manifest::new("u1", "c", "pg-1", Compression::Zstd, "t");
        m.status = BackupStatus::Ok;
        m.save(&dir).unwrap();
        let writer = |field: u8| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                for i in 1..=100 {
                    update(&dir, "u1", |m| match field {
                        0 => m.verified_at_ms = Some(i),
                        _ => m.replica_downtime_ms = i as u64,
                    })
                    .unwrap();
                }
            })
        };
        let (a, b) = (writer(0), writer(1));
        a.join().unwrap();
        b.join().unwrap();
        let m = find(&dir, "u1").unwrap();
        assert_eq!((m.verified_at_ms, m.replica_downtime_ms), (Some(100), 100));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn manifests_written_before_the_rename_still_load() {
        let mut v = serde_json::to_value(Manifest::new("u2", "c", "pg-1", Compression::Zstd, "t")).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("compressed_while_running");
        o.remove("compressed_while_stopped");
        o.insert("copied_while_running".into(), serde_json::json!([10, 2000]));
        o.insert("copied_while_stopped".into(), serde_json::json!([1, 30]));
        let m: Manifest = serde_json::from_value(v).unwrap();
        assert_eq!(
            (m.compressed_while_running, m.compressed_while_stopped),
            ((10, 2000), (1, 30))
        );
    }
}
