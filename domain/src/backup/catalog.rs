//! The catalog of backups: every manifest in the backups directory, read
//! once and kept until something changes. The Backups page polls it every
//! 2 s; reading every manifest each time would cost a directory walk and a
//! JSON parse per backup per poll. It is read again when this process
//! writes or deletes a manifest ([`changed`]), or when the directory's
//! modification time moves (another process, or a file removed by hand).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use super::Manifest;

static GENERATION: AtomicU64 = AtomicU64::new(0);

struct Cached {
    dir: PathBuf,
    generation: u64,
    modified: Option<SystemTime>,
    manifests: Vec<Manifest>,
}

static CACHE: Mutex<Option<Cached>> = Mutex::new(None);

/// A manifest was written or removed: the next read goes to the disk.
pub(super) fn changed() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Every manifest in `dir`, newest first. Blocking: call it off the async threads.
pub fn catalog(dir: &Path) -> Vec<Manifest> {
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    // Read before the directory, so a change in between reads again next time.
    let generation = GENERATION.load(Ordering::SeqCst);
    let modified = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
    if let Some(c) = cache.as_ref() {
        if c.dir == dir && c.generation == generation && c.modified == modified && modified.is_some() {
            return c.manifests.clone();
        }
    }
    let manifests = read(dir);
    *cache = Some(Cached {
        dir: dir.to_path_buf(),
        generation,
        modified,
        manifests: manifests.clone(),
    });
    manifests
}

fn read(dir: &Path) -> Vec<Manifest> {
    let mut v: Vec<Manifest> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".manifest.json"))
                .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| b.started_at_ms.cmp(&a.started_at_ms));
    v
}

pub fn find(dir: &Path, id: &str) -> Option<Manifest> {
    catalog(dir).into_iter().find(|m| m.id == id)
}
