//! Cold copy and archive of a data directory: a raw copy at disk speed (the
//! only part done while the replica is stopped), then a tar whose top folder
//! is `pgN-data/`, symlinks kept as symlinks, compressed with multi-threaded
//! zstd or gzip, checksummed (sha256) while written, fsynced, then renamed.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Zstd,
    Gzip,
}

impl Compression {
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Zstd => "tar.zst",
            Compression::Gzip => "tar.gz",
        }
    }
}

/// Files and bytes under `root` (for progress and free-space checks).
pub fn measure(root: &Path) -> io::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for entry in walk(root)? {
        // A running server removes files as we go (WAL recycling, temp files).
        let md = match std::fs::symlink_metadata(&entry) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            r => r?,
        };
        if md.is_file() {
            files += 1;
            bytes += md.len();
        }
    }
    Ok((files, bytes))
}

/// Every path under `root` (not `root` itself), parents before children.
/// A subdirectory that vanishes while walking (a running server's temp
/// files) is skipped.
pub(super) fn walk(root: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let listing = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir != root => continue,
            r => r?,
        };
        let mut entries: Vec<_> = listing.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            if e.file_type()?.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    Ok(out)
}

/// Copy `src` to `dst` (created), keeping symlinks and permissions.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<(u64, u64)> {
    std::fs::create_dir_all(dst)?;
    std::fs::set_permissions(dst, std::fs::metadata(src)?.permissions())?;
    let (mut files, mut bytes) = (0, 0);
    for p in walk(src)? {
        let rel = p.strip_prefix(src).expect("walk stays under src");
        let to = dst.join(rel);
        let md = std::fs::symlink_metadata(&p)?;
        if md.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&p)?, &to)?;
        } else if md.is_dir() {
            std::fs::create_dir_all(&to)?;
            std::fs::set_permissions(&to, md.permissions())?;
        } else if md.is_file() {
            bytes += std::fs::copy(&p, &to)?;
            files += 1;
        }
    }
    Ok((files, bytes))
}

/// Counts and hashes what passes through.
struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArchiveInfo {
    pub sha256: String,
    pub archive_bytes: u64,
    pub files: u64,
    pub data_bytes: u64,
}

/// Archive `src` as `top/…` into `dest` via `dest.partial`; `progress(bytes, files)`.
/// `remove_before_sync`: a directory (the staging copy) to delete once it has been
/// read, before the archive is fsynced.
pub fn write_archive(
    src: &Path,
    top: &str,
    dest: &Path,
    compression: Compression,
    remove_before_sync: Option<&Path>,
    mut progress: impl FnMut(u64, u64),
) -> io::Result<ArchiveInfo> {
    let tmp = dest.with_extension(format!(
        "{}.partial",
        dest.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    let file = File::create(&tmp)?;
    let hashing = HashingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        hash: Sha256::new(),
        written: 0,
    };
    let result = (|| -> io::Result<(HashingWriter<BufWriter<File>>, u64, u64)> {
        let (files, bytes);
        let hashing = match compression {
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(hashing, 1)?;
                let workers = std::thread::available_parallelism()
                    .map(|n| n.get() as u32)
                    .unwrap_or(2);
                enc.multithread(workers)?;
                let (enc, f, b) = tar_into(enc, src, top, &mut progress)?;
                (files, bytes) = (f, b);
                enc.finish()?
            }
            Compression::Gzip => {
                let enc = flate2::write::GzEncoder::new(hashing, flate2::Compression::new(6));
                let (enc, f, b) = tar_into(enc, src, top, &mut progress)?;
                (files, bytes) = (f, b);
                enc.finish()?
            }
        };
        Ok((hashing, files, bytes))
    })();
    let (mut hashing, files, bytes) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    hashing.flush()?;
    if let Some(dir) = remove_before_sync {
        // The staging copy's dirty pages would otherwise be written back
        // for nothing, and the fsync below would wait for them (ext4).
        let _ = std::fs::remove_dir_all(dir);
    }
    let sha256 = hex::encode(hashing.hash.clone().finalize());
    let archive_bytes = hashing.written;
    let file = hashing.inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, dest)?;
    if let Some(dir) = dest.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(ArchiveInfo {
        sha256,
        archive_bytes,
        files,
        data_bytes: bytes,
    })
}

fn tar_into<W: Write>(w: W, src: &Path, top: &str, progress: &mut impl FnMut(u64, u64)) -> io::Result<(W, u64, u64)> {
    let mut b = tar::Builder::new(w);
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Complete);
    b.append_dir(top, src)?;
    let (mut files, mut bytes) = (0u64, 0u64);
    for p in walk(src)? {
        let name = Path::new(top).join(p.strip_prefix(src).expect("under src"));
        let md = std::fs::symlink_metadata(&p)?;
        if md.is_dir() {
            b.append_dir(&name, &p)?;
        } else {
            b.append_path_with_name(&p, &name)?;
            if md.is_file() {
                files += 1;
                bytes += md.len();
                progress(bytes, files);
            }
        }
    }
    let w = b.into_inner()?;
    Ok((w, files, bytes))
}

/// sha256 of a file, re-read from disk.
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Extract an archive (zstd or gzip by extension) under `into`.
pub fn extract(archive: &Path, into: &Path) -> io::Result<()> {
    let f = File::open(archive)?;
    let name = archive.to_string_lossy();
    let reader: Box<dyn Read> = if name.ends_with(".tar.zst") {
        Box::new(zstd::stream::read::Decoder::new(f)?)
    } else {
        Box::new(flate2::read::GzDecoder::new(f))
    };
    let mut t = tar::Archive::new(reader);
    t.set_preserve_permissions(true);
    t.unpack(into)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_roundtrip_keeps_symlinks_and_detects_a_flipped_byte() {
        let root = std::env::temp_dir().join(format!("pgc-archive-{}-{}", std::process::id(), crate::now_ms()));
        let src = root.join("pg1-data");
        std::fs::create_dir_all(src.join("base/1")).unwrap();
        std::fs::write(src.join("PG_VERSION"), "15\n").unwrap();
        std::fs::write(src.join("base/1/1234"), vec![7u8; 100_000]).unwrap();
        std::os::unix::fs::symlink("/elsewhere/wal", src.join("pg_wal_link")).unwrap();
        let staging = root.join("staging/pg1-data");
        assert_eq!(copy_tree(&src, &staging).unwrap(), (2, 100_003));
        assert!(std::fs::symlink_metadata(staging.join("pg_wal_link"))
            .unwrap()
            .file_type()
            .is_symlink());
        for c in [Compression::Zstd, Compression::Gzip] {
            let dest = root.join(format!("b.{}", c.extension()));
            let mut calls = 0;
            let info = write_archive(&staging, "pg1-data", &dest, c, None, |_, _| calls += 1).unwrap();
            assert_eq!((info.files, info.data_bytes, calls), (2, 100_003, 2));
            assert_eq!(sha256_file(&dest).unwrap(), info.sha256);
            assert!(!dest
                .with_extension(format!("{}.partial", dest.extension().unwrap().to_str().unwrap()))
                .exists());
            let out = root.join(format!("out-{}", c.extension()));
            extract(&dest, &out).unwrap();
            assert_eq!(
                std::fs::read_to_string(out.join("pg1-data/PG_VERSION")).unwrap(),
                "15\n"
            );
            assert_eq!(
                std::fs::read_link(out.join("pg1-data/pg_wal_link")).unwrap(),
                Path::new("/elsewhere/wal")
            );
            // One flipped byte changes the checksum.
            let mut bytes = std::fs::read(&dest).unwrap();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&dest, bytes).unwrap();
            assert_ne!(sha256_file(&dest).unwrap(), info.sha256);
        }
        let _ = std::fs::remove_dir_all(root);
    }
}
