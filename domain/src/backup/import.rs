//! Archives made by hand with the SOP's section 4 (`docker stop pg-1; tar
//! -czvf pg1-backup.tar.gz ${DEFAULT_DATA_DIR}/pg/pg1-data`), put in the
//! import directory on the host, enter the catalog like the console's own
//! backups: read through once (its pg_control: a clean shutdown, the system
//! identifier, when; its size), copied in beside the others with a
//! manifest, then verified by a test restore like any backup.

use std::io::Read;
use std::path::{Path, PathBuf};

use model::backups::{BackupStatus, ImportFile};

use super::archive::{self, Compression};
use super::pg_control::{self, ControlData};
use super::{BackupSettings, Manifest};

/// What the import directory holds that looks like an archive, newest first.
pub fn list(imports_dir: &Path) -> Vec<ImportFile> {
    let Ok(rd) = std::fs::read_dir(imports_dir) else {
        return Vec::new();
    };
    let mut out: Vec<ImportFile> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            compression_of(&name)?;
            let md = e.metadata().ok().filter(|m| m.is_file())?;
            let modified_ms = md
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_millis() as i64;
            Some(ImportFile {
                name,
                bytes: md.len(),
                modified_ms,
            })
        })
        .collect();
    out.sort_by(|a, b| b.modified_ms.cmp(&a.modified_ms));
    out
}

/// `.tar.gz`/`.tgz` (the SOP's) or `.tar.zst`; None for anything else.
fn compression_of(name: &str) -> Option<Compression> {
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        Some(Compression::Gzip)
    } else if name.ends_with(".tar.zst") {
        Some(Compression::Zstd)
    } else {
        None
    }
}

/// What one pass through the archive found.
struct Inspected {
    /// The data directory's name (`pg1-data`), wherever it sits in the archive.
    data_dir: String,
    control: ControlData,
    files: u64,
    bytes: u64,
}

fn inspect(path: &Path) -> Result<Inspected, String> {
    let mut t = tar::Archive::new(archive::tar_reader(path).map_err(|e| format!("cannot read the archive: {e}"))?);
    let (mut files, mut bytes, mut found) = (0u64, 0u64, None);
    for entry in t.entries().map_err(|e| format!("not a tar archive: {e}"))? {
        let mut e = entry.map_err(|e| format!("the archive is damaged: {e}"))?;
        if e.header().entry_type().is_file() {
            files += 1;
            bytes += e.size();
        }
        let p = e.path().map_err(|e| e.to_string())?.to_path_buf();
        if p.ends_with("global/pg_control") {
            let mut buf = Vec::new();
            e.read_to_end(&mut buf)
                .map_err(|e| format!("the archive is damaged: {e}"))?;
            let dir = p.parent().and_then(Path::parent).and_then(Path::file_name);
            found = Some((dir.map(|d| d.to_string_lossy().to_string()).unwrap_or_default(), buf));
        }
    }
    let (data_dir, buf) = found.ok_or("the archive holds no PostgreSQL data directory (no global/pg_control)")?;
    let control = pg_control::parse(&buf).ok_or("the archive's pg_control is too short")?;
    Ok(Inspected {
        data_dir,
        control,
        files,
        bytes,
    })
}

/// Bring `name` from the import directory into the catalog (not yet
/// test-restored: the caller runs that next). Blocking.
pub fn import(s: &BackupSettings, imports_dir: &Path, name: &str, cluster: &str, by: &str) -> Result<Manifest, String> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(format!("{name:?} is not a file name in the import directory"));
    }
    let compression =
        compression_of(name).ok_or_else(|| format!("{name} is not a .tar.gz, .tgz or .tar.zst archive"))?;
    let src = imports_dir.join(name);
    if !src.is_file() {
        return Err(format!(
            "there is no {name} in the import directory {}",
            imports_dir.display()
        ));
    }
    let found = inspect(&src)?;
    let member = crate::naming::member_of_data_dir(&found.data_dir).ok_or_else(|| {
        format!(
            "the archive's data directory is {:?}: name it pgN-data (as the SOP does) so the console knows whose it is",
            found.data_dir
        )
    })?;
    if !found.control.is_clean_shutdown() {
        return Err(format!(
            "its pg_control says {}: it was not shut down cleanly (stop the container before tar, as the SOP says)",
            found.control.state_name()
        ));
    }
    let id = format!(
        "import-{}",
        crate::datetime::format_compact(crate::now_ms()).to_lowercase()
    );
    let mut m = Manifest::new(&id, cluster, &member, compression, by);
    m.started_at_ms = found.control.time * 1000;
    m.imported_from = Some(name.to_string());
    m.system_identifier = found.control.system_identifier.to_string();
    m.timeline = found.control.timeline;
    m.checkpoint_lsn = model::topology::format_lsn(found.control.checkpoint_lsn);
    m.redo_lsn = model::topology::format_lsn(found.control.redo_lsn);
    m.files = found.files;
    m.data_bytes = found.bytes;
    let dst = s.backups_dir.join(m.archive_name());
    copy_in(&src, &dst)?;
    m.archive_bytes = std::fs::metadata(&dst).map(|md| md.len()).unwrap_or(0);
    m.sha256 = archive::sha256_file(&dst).map_err(|e| format!("cannot read the copy: {e}"))?;
    m.status = BackupStatus::Ok;
    m.save(&s.backups_dir)
        .map_err(|e| format!("cannot write the manifest: {e}"))?;
    Ok(m)
}

/// A hard link when on the same file system, else a copy (to a temporary
/// name, synced, renamed). The original stays in the import directory.
fn copy_in(src: &Path, dst: &Path) -> Result<(), String> {
    if std::fs::hard_link(src, dst).is_ok() {
        return Ok(());
    }
    let tmp: PathBuf = dst.with_extension("partial");
    let r = (|| {
        std::fs::copy(src, &tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, dst)
    })();
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot copy the archive into the backups directory: {e}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_archives_are_offered_and_names_stay_in_the_directory() {
        assert_eq!(compression_of("pg1-backup.tar.gz"), Some(Compression::Gzip));
        assert_eq!(compression_of("x.tar.zst"), Some(Compression::Zstd));
        assert_eq!(compression_of("notes.txt"), None);
        let s = BackupSettings {
            backups_dir: std::env::temp_dir(),
            imports_dir: std::env::temp_dir(),
            stack_data_dir: std::env::temp_dir(),
            max_lag_bytes: 0,
            retention: Default::default(),
            wal_archive_dir: None,
            replication: None,
        };
        for bad in ["../etc/passwd.tar.gz", ".hidden.tar.gz", ""] {
            assert!(import(&s, Path::new("/nonexistent"), bad, "c", "t").is_err(), "{bad}");
        }
    }
}
