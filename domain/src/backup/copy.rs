//! Copying a replica's data directory with little down-time: a full copy
//! while it runs (recording each file's size and mtime), then, once it is
//! stopped, a second pass that copies only what changed and deletes what
//! disappeared. The result is the same as a cold copy of the stopped
//! directory: a file whose size or mtime differs is copied again, and so is
//! any file modified within `HOT` of its first copy (mtime granularity is
//! coarse, so a write just after reading could leave the mtime unchanged).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::archive::walk;

const HOT: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug)]
struct Stamp {
    len: u64,
    mtime: SystemTime,
    copied_at: SystemTime,
}

/// What the first pass copied.
#[derive(Default)]
pub struct Snapshot {
    files: HashMap<PathBuf, Stamp>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Copied {
    pub files: u64,
    pub bytes: u64,
    pub removed: u64,
}

fn copy_entry(p: &Path, to: &Path, md: &std::fs::Metadata) -> io::Result<u64> {
    if md.file_type().is_symlink() {
        if to.symlink_metadata().is_ok() {
            std::fs::remove_file(to)?;
        }
        std::os::unix::fs::symlink(std::fs::read_link(p)?, to)?;
        Ok(0)
    } else if md.is_dir() {
        std::fs::create_dir_all(to)?;
        std::fs::set_permissions(to, md.permissions())?;
        Ok(0)
    } else if md.is_file() {
        std::fs::copy(p, to)
    } else {
        Ok(0)
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Make `dst` equal to `src` by rewriting only the 256 KiB chunks that
/// differ (a changed relation segment usually differs in a few pages);
/// returns the bytes written.
fn patch_file(src: &Path, dst: &Path) -> io::Result<u64> {
    const CHUNK: usize = 256 * 1024;
    let mut s = File::open(src)?;
    let mut d = std::fs::OpenOptions::new().read(true).write(true).open(dst)?;
    let (mut a, mut b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let (mut off, mut written) = (0u64, 0u64);
    loop {
        let n = read_full(&mut s, &mut a)?;
        if n == 0 {
            break;
        }
        let m = read_full(&mut d, &mut b[..n])?;
        if m != n || a[..n] != b[..n] {
            d.seek(SeekFrom::Start(off))?;
            d.write_all(&a[..n])?;
            written += n as u64;
        }
        off += n as u64;
    }
    d.set_len(off)?;
    d.set_permissions(s.metadata()?.permissions())?;
    Ok(written)
}

/// First pass (the source may be changing): copy everything, note stamps.
/// `progress(bytes, files)` is called after each file.
pub fn copy_running(src: &Path, dst: &Path, mut progress: impl FnMut(u64, u64)) -> io::Result<(Snapshot, Copied)> {
    let _ = std::fs::remove_dir_all(dst);
    std::fs::create_dir_all(dst)?;
    std::fs::set_permissions(dst, std::fs::metadata(src)?.permissions())?;
    let mut snap = Snapshot::default();
    let mut c = Copied::default();
    for p in walk(src)? {
        let rel = p.strip_prefix(src).expect("walk stays under src").to_path_buf();
        // A file PostgreSQL removes mid-walk (WAL recycling, temp files) is fine: pass two settles it.
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let copied_at = SystemTime::now();
        match copy_entry(&p, &dst.join(&rel), &md) {
            Ok(n) if md.is_file() => {
                c.files += 1;
                c.bytes += n;
                snap.files.insert(
                    rel,
                    Stamp {
                        len: md.len(),
                        mtime: md.modified()?,
                        copied_at,
                    },
                );
                progress(c.bytes, c.files);
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok((snap, c))
}

/// Second pass (the source is stopped): copy what changed since `snap`,
/// delete from `dst` what is no longer in `src`.
pub fn copy_changed(src: &Path, dst: &Path, snap: &Snapshot) -> io::Result<Copied> {
    let mut c = Copied::default();
    let mut present = std::collections::HashSet::new();
    for p in walk(src)? {
        let rel = p.strip_prefix(src).expect("walk stays under src").to_path_buf();
        let md = std::fs::symlink_metadata(&p)?;
        present.insert(rel.clone());
        let to = dst.join(&rel);
        let unchanged = md.is_file()
            && snap.files.get(&rel).is_some_and(|s| {
                s.len == md.len() && md.modified().ok() == Some(s.mtime) && s.mtime + HOT < s.copied_at
            });
        let same_kind = to
            .symlink_metadata()
            .is_ok_and(|t| t.file_type() == md.file_type() && !md.file_type().is_symlink());
        if unchanged && same_kind {
            continue;
        }
        if md.is_dir() && same_kind {
            continue;
        }
        if let Ok(t) = to.symlink_metadata() {
            if t.is_dir() && !md.is_dir() {
                std::fs::remove_dir_all(&to)?;
            } else if !t.is_dir() && md.is_dir() {
                std::fs::remove_file(&to)?;
            }
        }
        let n = if md.is_file() && to.symlink_metadata().is_ok_and(|t| t.is_file()) {
            patch_file(&p, &to)?
        } else {
            copy_entry(&p, &to, &md)?
        };
        if md.is_file() {
            c.files += 1;
            c.bytes += n;
        }
    }
    // Remove what the source no longer has (deepest first).
    let mut extra: Vec<PathBuf> = walk(dst)?
        .into_iter()
        .filter(|p| !present.contains(p.strip_prefix(dst).expect("under dst")))
        .collect();
    extra.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in extra {
        let md = std::fs::symlink_metadata(&p)?;
        if md.is_dir() {
            let _ = std::fs::remove_dir_all(&p);
        } else {
            let _ = std::fs::remove_file(&p);
        }
        c.removed += 1;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<(String, Vec<u8>)> = walk(root)
            .unwrap()
            .into_iter()
            .map(|p| {
                let md = std::fs::symlink_metadata(&p).unwrap();
                let content = if md.file_type().is_symlink() {
                    std::fs::read_link(&p).unwrap().to_string_lossy().as_bytes().to_vec()
                } else if md.is_file() {
                    std::fs::read(&p).unwrap()
                } else {
                    b"<dir>".to_vec()
                };
                (p.strip_prefix(root).unwrap().to_string_lossy().to_string(), content)
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn two_passes_equal_a_cold_copy() {
        let root = std::env::temp_dir().join(format!("pgc-copy-{}-{}", std::process::id(), crate::now_ms()));
        let (src, dst) = (root.join("src"), root.join("dst"));
        std::fs::create_dir_all(src.join("base/1")).unwrap();
        std::fs::create_dir_all(src.join("pg_wal")).unwrap();
        std::fs::write(src.join("base/1/cold"), b"unchanged").unwrap();
        std::fs::write(src.join("base/1/hot"), b"before").unwrap();
        std::fs::write(src.join("pg_wal/gone"), b"recycled").unwrap();
        std::fs::write(src.join("global"), b"0000").unwrap();
        std::os::unix::fs::symlink("/elsewhere", src.join("pg_tblspc_link")).unwrap();
        let (snap, first) = copy_running(&src, &dst, |_, _| {}).unwrap();
        assert_eq!(first.files, 4);
        // While "running": same-size rewrite within the same second, a new
        // file, a removed one, a grown one, a re-pointed symlink.
        std::fs::write(src.join("base/1/hot"), b"after!").unwrap();
        std::fs::write(src.join("pg_wal/new"), b"fresh").unwrap();
        std::fs::remove_file(src.join("pg_wal/gone")).unwrap();
        std::fs::write(src.join("global"), b"00001111").unwrap();
        std::fs::remove_file(src.join("pg_tblspc_link")).unwrap();
        std::os::unix::fs::symlink("/moved", src.join("pg_tblspc_link")).unwrap();
        let second = copy_changed(&src, &dst, &snap).unwrap();
        assert_eq!(tree(&src), tree(&dst));
        assert_eq!(second.removed, 1);
        // Everything here is "hot" (just written), so every file is copied again;
        // an old, untouched file is not.
        let old = SystemTime::now() - Duration::from_secs(60);
        let f = std::fs::File::options()
            .write(true)
            .open(src.join("base/1/cold"))
            .unwrap();
        f.set_modified(old).unwrap();
        drop(f);
        let (snap, _) = copy_running(&src, &dst, |_, _| {}).unwrap();
        let third = copy_changed(&src, &dst, &snap).unwrap();
        assert_eq!(tree(&src), tree(&dst));
        assert_eq!(third.files, 3, "{third:?}");
        // A 1 MiB file with one changed byte: one 256 KiB chunk is rewritten.
        let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        std::fs::write(src.join("base/1/big"), &big).unwrap();
        let (snap, _) = copy_running(&src, &dst, |_, _| {}).unwrap();
        let mut changed = big.clone();
        changed[600_000] ^= 0xff;
        changed.truncate(900_000);
        std::fs::write(src.join("base/1/big"), &changed).unwrap();
        let fourth = copy_changed(&src, &dst, &snap).unwrap();
        assert_eq!(tree(&src), tree(&dst));
        assert!(fourth.bytes < 3 * 256 * 1024 + 100, "{fourth:?}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
