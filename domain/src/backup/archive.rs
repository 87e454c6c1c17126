//! Archive files: a tar whose top folder is `pgN-data/`, zstd or gzip
//! (built by `frames`), written to a temporary name, checksummed (sha256)
//! while written, fsynced, then renamed; reading, checking and extracting
//! them; walking and measuring a data directory.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use model::operations::Compression;

/// Files and bytes under `root` that an archive would hold (for progress
/// and free-space checks): recycled WAL segments are not counted.
pub fn measure(root: &Path) -> io::Result<(u64, u64)> {
    let (mut files, mut bytes) = (0, 0);
    for entry in walk(root)? {
        // A running server removes files as we go (WAL recycling, temp files).
        let md = match std::fs::symlink_metadata(&entry) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            r => r?,
        };
        let rel = entry.strip_prefix(root).expect("walk stays under root");
        if md.is_file() && !super::frames::is_recycled_wal(rel, &entry) {
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

/// An archive being written: to `dest.partial`, hashed and counted as it
/// goes; `finish` fsyncs and renames it, `abandon` removes it.
pub struct ArchiveWriter {
    out: HashingWriter<BufWriter<File>>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl ArchiveWriter {
    pub fn create(dest: &Path) -> io::Result<Self> {
        let tmp = dest.with_extension(format!(
            "{}.partial",
            dest.extension().and_then(|e| e.to_str()).unwrap_or("")
        ));
        let file = File::create(&tmp)?;
        Ok(ArchiveWriter {
            out: HashingWriter {
                inner: BufWriter::with_capacity(1 << 20, file),
                hash: Sha256::new(),
                written: 0,
            },
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }

    /// fsync, rename into place, fsync the directory.
    pub fn finish(mut self, files: u64, data_bytes: u64) -> io::Result<ArchiveInfo> {
        let done = (|| -> io::Result<ArchiveInfo> {
            self.out.flush()?;
            let sha256 = hex::encode(self.out.hash.clone().finalize());
            let archive_bytes = self.out.written;
            self.out.inner.get_ref().sync_all()?;
            std::fs::rename(&self.tmp, &self.dest)?;
            if let Some(dir) = self.dest.parent() {
                File::open(dir)?.sync_all()?;
            }
            Ok(ArchiveInfo {
                sha256,
                archive_bytes,
                files,
                data_bytes,
            })
        })();
        if done.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        done
    }
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

/// The tar stream of an archive, decompressed by its extension (`.tar.zst`,
/// else gzip).
pub fn tar_reader(archive: &Path) -> io::Result<Box<dyn Read>> {
    let f = File::open(archive)?;
    Ok(if archive.to_string_lossy().ends_with(".tar.zst") {
        Box::new(zstd::stream::read::Decoder::new(f)?)
    } else {
        // One gzip member per chunk (the console's), or one (plain tar -z): read them all.
        Box::new(flate2::read::MultiGzDecoder::new(f))
    })
}

/// Extract an archive (zstd or gzip by extension) under `into`.
pub fn extract(archive: &Path, into: &Path) -> io::Result<()> {
    let mut t = tar::Archive::new(tar_reader(archive)?);
    t.set_preserve_permissions(true);
    t.unpack(into)
}

/// The PostgreSQL data directory (the folder holding `PG_VERSION`) under
/// `root`, searched breadth-first: at the top for the console's archives,
/// deeper for the SOP's (`tar -czvf pg1-backup.tar.gz ${DEFAULT_DATA_DIR}/pg/pg1-data`
/// stores the whole path).
pub fn find_data_dir(root: &Path) -> Option<PathBuf> {
    let mut level = vec![root.to_path_buf()];
    for _ in 0..12 {
        let mut next = Vec::new();
        for dir in level {
            let Ok(rd) = std::fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    if e.path().join("PG_VERSION").is_file() {
                        return Some(e.path());
                    }
                    next.push(e.path());
                }
            }
        }
        next.sort();
        level = next;
    }
    None
}
