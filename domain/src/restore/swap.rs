//! The file moves of a restore, each a `rename` on one file system (so
//! instant, and all or nothing per directory), each safe to run again after
//! a crash: what was moved already is found moved and left alone.
//! Blocking: callers run these off the async threads.

use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::backup::pg_control::{self, ControlData};

/// What etcd keeps in its data directory.
const ETCD_MEMBER: &str = "member";

/// The stack's layout under `${DEFAULT_DATA_DIR}` and the restore's folder.
pub struct Layout {
    /// `${DEFAULT_DATA_DIR}/pg`
    pub pg: PathBuf,
    /// `${DEFAULT_DATA_DIR}/etcd`
    pub etcd: PathBuf,
    /// `${DEFAULT_DATA_DIR}/pg-console-kept/<id>`
    pub kept: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path, kept: PathBuf) -> Self {
        Layout {
            pg: data_dir.join("pg"),
            etcd: data_dir.join("etcd"),
            kept,
        }
    }

    pub fn incoming(&self) -> PathBuf {
        self.kept.join("incoming")
    }

    fn previous(&self) -> PathBuf {
        self.kept.join("previous")
    }

    fn failed(&self) -> PathBuf {
        self.kept.join("failed")
    }
}

/// The owner of a member's data directory (the node image's postgres user).
pub fn owner(dir: &Path) -> io::Result<(u32, u32)> {
    let md = std::fs::metadata(dir)?;
    Ok((md.uid(), md.gid()))
}

/// Extract `archive` into `incoming/`, find its data directory, check that
/// `pg_control` says it was shut down cleanly (a cold snapshot) or that it
/// has its `backup_label` (a hot base backup, `hot`: replayed before use),
/// and give it to `owner`. Returns the data directory's path and what
/// `pg_control` says.
pub fn stage(archive: &Path, l: &Layout, owner: (u32, u32), hot: bool) -> Result<(PathBuf, ControlData), String> {
    let into = l.incoming();
    let _ = std::fs::remove_dir_all(&into);
    std::fs::create_dir_all(&into).map_err(|e| format!("cannot create {}: {e}", into.display()))?;
    crate::backup::archive::extract(archive, &into).map_err(|e| format!("cannot extract the archive: {e}"))?;
    let top = crate::backup::archive::find_data_dir(&into)
        .ok_or("the archive holds no PostgreSQL data directory (no PG_VERSION)")?;
    let control = pg_control::read(&top).map_err(|e| format!("cannot read the archive's pg_control: {e}"))?;
    if hot && !top.join("backup_label").is_file() {
        return Err("the hot base backup has no backup_label: it cannot be replayed to a consistent state".into());
    }
    if !hot && !control.is_clean_shutdown() {
        return Err(format!(
            "the archive's pg_control says {}: it is not a clean shutdown, so it cannot be restored as is",
            control.state_name()
        ));
    }
    std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    give_tree(&top, owner)?;
    Ok((top, control))
}

/// Make `owner` own every entry under `root` (and `root`). Needed when the
/// console runs as root; a console running as that owner has nothing to do.
fn give_tree(root: &Path, (uid, gid): (u32, u32)) -> Result<(), String> {
    let md = std::fs::symlink_metadata(root).map_err(|e| e.to_string())?;
    if md.uid() == uid && md.gid() == gid {
        return Ok(());
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid)).map_err(|e| {
            format!(
                "cannot give {} to uid {uid} (the owner of the data directories): {e}; \
                 run the console as that uid or as root",
                p.display()
            )
        })?;
        if std::fs::symlink_metadata(&p).map(|m| m.is_dir()).unwrap_or(false) {
            for e in std::fs::read_dir(&p).map_err(|e| e.to_string())?.flatten() {
                stack.push(e.path());
            }
        }
    }
    Ok(())
}

fn rename_new(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if to.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists already: not overwriting it", to.display()),
        ));
    }
    std::fs::rename(from, to)
}

fn empty_data_dir(dir: &Path, (uid, gid): (u32, u32)) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let md = std::fs::metadata(dir)?;
    if md.uid() != uid || md.gid() != gid {
        std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Move every member's data directory and etcd's data into `previous/`,
/// leaving empty directories in their place (the containers' bind mounts
/// need them). Safe to run again: what is in `previous/` already stays.
pub fn move_aside(l: &Layout, data_dirs: &[String], owner: (u32, u32)) -> io::Result<()> {
    for name in data_dirs {
        let (cur, kept) = (l.pg.join(name), l.previous().join("pg").join(name));
        if !kept.exists() && cur.exists() {
            rename_new(&cur, &kept)?;
        }
        empty_data_dir(&cur, owner)?;
    }
    let (cur, kept) = (l.etcd.join(ETCD_MEMBER), l.previous().join("etcd").join(ETCD_MEMBER));
    if !kept.exists() && cur.exists() {
        rename_new(&cur, &kept)?;
    }
    Ok(())
}

/// Put the staged data directory in place of `data_dir` (empty by now).
pub fn move_in(l: &Layout, staged: &Path, data_dir: &str) -> io::Result<()> {
    let target = l.pg.join(data_dir);
    if target.exists() {
        // The empty directory move_aside left: remove_dir refuses a non-empty one.
        std::fs::remove_dir(&target)?;
    }
    rename_new(staged, &target)
}

/// Undo a restore at any point: what the restore put in place goes to
/// `failed/` (an empty directory is simply removed), and what `previous/`
/// holds goes back. Safe to run again.
pub fn roll_back(l: &Layout, data_dirs: &[String]) -> io::Result<()> {
    let mut pairs: Vec<(PathBuf, PathBuf, PathBuf)> = data_dirs
        .iter()
        .map(|n| {
            (
                l.pg.join(n),
                l.previous().join("pg").join(n),
                l.failed().join("pg").join(n),
            )
        })
        .collect();
    pairs.push((
        l.etcd.join(ETCD_MEMBER),
        l.previous().join("etcd").join(ETCD_MEMBER),
        l.failed().join("etcd").join(ETCD_MEMBER),
    ));
    for (cur, kept, failed) in pairs {
        if !kept.exists() {
            continue;
        }
        if cur.exists() {
            let empty = std::fs::read_dir(&cur)?.next().is_none();
            if empty {
                std::fs::remove_dir(&cur)?;
            } else {
                rename_new(&cur, &failed)?;
            }
        }
        rename_new(&kept, &cur)?;
    }
    // What previous/ held is back: its emptied folders go (remove_dir
    // refuses any that still holds something).
    for d in [l.previous().join("pg"), l.previous().join("etcd"), l.previous()] {
        let _ = std::fs::remove_dir(d);
    }
    Ok(())
}

/// What a restore's folder holds now, in words.
pub fn holds(l: &Layout) -> String {
    let holds_some = |p: PathBuf| std::fs::read_dir(p).map(|mut r| r.next().is_some()).unwrap_or(false);
    let mut parts = Vec::new();
    if holds_some(l.previous()) {
        parts.push("the cluster's data from before the restore");
    }
    if holds_some(l.failed()) {
        parts.push("the failed restore's data");
    }
    if holds_some(l.incoming()) {
        parts.push("the extracted backup");
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(" and ")
    }
}

/// Remove what the extraction left when the restore stopped before the swap.
pub fn drop_incoming(l: &Layout) {
    let _ = std::fs::remove_dir_all(l.incoming());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap_or_default()
    }

    #[test]
    fn aside_in_and_back_lose_nothing_and_can_run_twice() {
        let root = std::env::temp_dir().join(format!("pgc-swap-{}-{}", std::process::id(), crate::now_ms()));
        let l = Layout::new(&root, root.join("pg-console-kept/r1"));
        let names = vec!["pg0-data".to_string(), "pg1-data".to_string()];
        file(&l.pg.join("pg0-data/PG_VERSION"), "old0");
        file(&l.pg.join("pg1-data/PG_VERSION"), "old1");
        file(&l.etcd.join("member/wal/0.wal"), "etcd-old");
        file(&l.incoming().join("pg1-data/PG_VERSION"), "restored");
        let me = owner(&l.pg.join("pg0-data")).unwrap();

        move_aside(&l, &names, me).unwrap();
        move_aside(&l, &names, me).unwrap(); // again, as after a crash: nothing lost
        assert!(std::fs::read_dir(l.pg.join("pg0-data")).unwrap().next().is_none());
        assert!(!l.etcd.join("member").exists());
        move_in(&l, &l.incoming().join("pg1-data"), "pg1-data").unwrap();
        assert_eq!(read(&l.pg.join("pg1-data/PG_VERSION")), "restored");
        file(&l.etcd.join("member/wal/0.wal"), "etcd-new");

        roll_back(&l, &names).unwrap();
        roll_back(&l, &names).unwrap();
        assert_eq!(read(&l.pg.join("pg0-data/PG_VERSION")), "old0");
        assert_eq!(read(&l.pg.join("pg1-data/PG_VERSION")), "old1");
        assert_eq!(read(&l.etcd.join("member/wal/0.wal")), "etcd-old");
        assert_eq!(read(&l.kept.join("failed/pg/pg1-data/PG_VERSION")), "restored");
        assert_eq!(read(&l.kept.join("failed/etcd/member/wal/0.wal")), "etcd-new");
        assert!(
            !l.kept.join("failed/pg/pg0-data").exists(),
            "an empty directory is not kept"
        );
        assert_eq!(holds(&l), "the failed restore's data");
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn a_crash_between_the_moves_rolls_back_to_the_previous_data() {
        let root = std::env::temp_dir().join(format!("pgc-swap2-{}-{}", std::process::id(), crate::now_ms()));
        let l = Layout::new(&root, root.join("pg-console-kept/r2"));
        let names = vec!["pg0-data".to_string()];
        file(&l.pg.join("pg0-data/PG_VERSION"), "old0");
        // As if the console died right after the rename, before the empty directory.
        rename_new(&l.pg.join("pg0-data"), &l.kept.join("previous/pg/pg0-data")).unwrap();
        roll_back(&l, &names).unwrap();
        assert_eq!(read(&l.pg.join("pg0-data/PG_VERSION")), "old0");
        let _ = std::fs::remove_dir_all(root);
    }
}
