//! Where a running backup keeps its compressed frames until the archive is
//! written, and how what a failed one left behind is removed.

use std::path::{Path, PathBuf};

/// In memory (tmpfs) when it fits comfortably.
const SHM_STAGING: &str = "/dev/shm/pg-console-staging";

/// Where the compressed frames are spilled. They are read once more to
/// write the archive and then deleted, so on disk their writeback would only
/// compete with the archive's fsync; they go to tmpfs when it could hold
/// them even if nothing compressed (twice the data free, and the data under
/// a quarter of the available memory), else to `backups_dir/.staging`.
pub(super) fn staging_root(backups_dir: &Path, data_bytes: u64) -> PathBuf {
    let shm = Path::new(SHM_STAGING);
    let fits = super::free_bytes(shm).is_some_and(|f| f / 2 > data_bytes)
        && mem_available_bytes().is_some_and(|m| m / 4 > data_bytes);
    if fits {
        shm.to_path_buf()
    } else {
        backups_dir.join(".staging")
    }
}

fn mem_available_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Remove leftovers of a backup that did not finish.
pub fn clean_partial(backups_dir: &Path, id: &str) {
    let _ = std::fs::remove_dir_all(backups_dir.join(".staging").join(id));
    let _ = std::fs::remove_dir_all(Path::new(SHM_STAGING).join(id));
    if let Ok(rd) = std::fs::read_dir(backups_dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if n.contains(id) && n.ends_with(".partial") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
