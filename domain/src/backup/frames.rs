//! The archive, compressed while the replica still runs.
//!
//! First pass (the replica runs): every file is read in 256 KiB chunks and
//! each chunk is compressed on its own, as a self-contained zstd frame or
//! gzip member, into a spill file, with the chunk's BLAKE3 hash. Second pass
//! (the replica's PostgreSQL has shut down): a file whose size or mtime
//! differs, or that was written within `HOT` of being read (mtime
//! granularity is coarse), is read again, and only its chunks whose hash
//! differs are compressed again; files that disappeared are dropped. The
//! archive is then the tar stream of the stopped directory written as those
//! frames in order, with small frames for the tar headers and padding in
//! between: concatenated zstd frames (gzip members) decompress to the
//! concatenation of their contents, so `tar --zstd -xf` (`tar -xzf`) reads it
//! like any other archive, and it equals a cold copy's.
//!
//! Recycled WAL segments are left out: files in `pg_wal/` that PostgreSQL
//! renamed for reuse, whose first page still belongs to an older segment.
//! They hold no WAL of their name, are never read as WAL, and are recreated
//! or reused as needed (`pg_basebackup` leaves them out too).

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, SystemTime};

use super::archive::{walk, ArchiveInfo, ArchiveWriter, Compression};

/// Unit of compression and of change detection.
pub const CHUNK: usize = 256 * 1024;
const HOT: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Frame {
    hash: [u8; 32],
    raw: u32,
    at: u64,
    len: u32,
}

/// A file as the first pass read it.
struct Seen {
    len: u64,
    mtime: SystemTime,
    read_at: SystemTime,
    frames: Vec<Frame>,
}

enum Entry {
    Dir(PathBuf, Metadata),
    Link(PathBuf, Metadata, PathBuf),
    File(PathBuf, Metadata, u64, Vec<Frame>),
}

/// What a pass read: files and bytes (the second pass: files read again,
/// bytes compressed again), and the recycled WAL segments left out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub files: u64,
    pub bytes: u64,
    pub recycled_wal_files: u64,
    pub recycled_wal_bytes: u64,
}

/// A chunk's frame, keyed by (file, chunk), and whether it is new.
type Done = ((usize, usize), Frame, bool);

impl Pass {
    /// Whether the file is a recycled WAL segment (left out), counted if so.
    fn left_out(&mut self, rel: &Path, path: &Path, md: &Metadata) -> bool {
        let recycled = is_recycled_wal(rel, path);
        if recycled {
            self.recycled_wal_files += 1;
            self.recycled_wal_bytes += md.len();
        }
        recycled
    }
}

struct Work {
    key: (usize, usize),
    data: Vec<u8>,
    old: Option<Frame>,
}

enum Compressor {
    Zstd(Box<zstd::bulk::Compressor<'static>>),
    Gzip,
}

impl Compressor {
    fn new(c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::Zstd => Compressor::Zstd(Box::new(zstd::bulk::Compressor::new(1)?)),
            Compression::Gzip => Compressor::Gzip,
        })
    }

    fn compress(&mut self, data: &[u8]) -> io::Result<Vec<u8>> {
        match self {
            Compressor::Zstd(z) => z.compress(data),
            Compressor::Gzip => {
                let mut e =
                    flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), flate2::Compression::new(6));
                e.write_all(data)?;
                e.finish()
            }
        }
    }
}

/// The compressed frames of a data directory, kept in a spill file.
pub struct FrameStore {
    compression: Compression,
    spill: File,
    end: Mutex<u64>,
    seen: HashMap<PathBuf, Seen>,
    settled: Option<(Metadata, Vec<Entry>)>,
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

/// A WAL segment renamed for reuse: its first page header's address is not
/// the start of the segment its name says.
pub fn is_recycled_wal(rel: &Path, path: &Path) -> bool {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if rel.parent() != Some(Path::new("pg_wal")) || name.len() != 24 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let Ok(f) = File::open(path) else { return false };
    let Ok(size) = f.metadata().map(|m| m.len()) else {
        return false;
    };
    if !size.is_power_of_two() || !(1 << 20..=1 << 30).contains(&size) {
        return false;
    }
    let mut h = [0u8; 16];
    if f.read_exact_at(&mut h, 0).is_err() {
        return false;
    }
    let hex = |s: &str| u64::from_str_radix(s, 16).unwrap_or(u64::MAX);
    let (log, seg) = (hex(&name[8..16]), hex(&name[16..24]));
    let start = log
        .saturating_mul((1u64 << 32) / size)
        .saturating_add(seg)
        .saturating_mul(size);
    let pageaddr = u64::from_le_bytes(h[8..16].try_into().expect("8 bytes"));
    pageaddr != start
}

impl FrameStore {
    /// Run `feed` (which sends chunks) against a pool of compressing
    /// workers; returns each chunk's frame and whether it is new.
    fn pool(&self, feed: impl FnOnce(&dyn Fn(Work) -> io::Result<()>) -> io::Result<()>) -> io::Result<Vec<Done>> {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
        let out = Mutex::new(Vec::new());
        let failed: Mutex<Option<io::Error>> = Mutex::new(None);
        let (tx, rx) = mpsc::sync_channel::<Work>(workers * 4);
        let rx = Mutex::new(rx);
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    let mut z = Compressor::new(self.compression)
                        .map_err(|e| *failed.lock().expect("lock") = Some(e))
                        .ok();
                    // After a failure, keep receiving (and dropping) work so
                    // the feeder never blocks on a full channel.
                    while let Ok(w) = rx.lock().expect("lock").recv() {
                        let Some(z) = z.as_mut().filter(|_| failed.lock().expect("lock").is_none()) else {
                            continue;
                        };
                        match self.compress(z, w) {
                            Ok(r) => out.lock().expect("lock").push(r),
                            Err(e) => {
                                failed.lock().expect("lock").get_or_insert(e);
                            }
                        }
                    }
                });
            }
            let fed = feed(&|w| {
                if failed.lock().expect("lock").is_some() {
                    return Err(io::Error::other("compression failed"));
                }
                tx.send(w)
                    .map_err(|_| io::Error::other("the compression workers stopped"))
            });
            drop(tx);
            if let Err(e) = fed {
                failed.lock().expect("lock").get_or_insert(e);
            }
        });
        match failed.into_inner().expect("lock") {
            Some(e) => Err(e),
            None => Ok(out.into_inner().expect("lock")),
        }
    }

    fn compress(&self, z: &mut Compressor, w: Work) -> io::Result<Done> {
        let hash = *blake3::hash(&w.data).as_bytes();
        if let Some(old) = w.old.filter(|o| o.hash == hash && o.raw as usize == w.data.len()) {
            return Ok((w.key, old, false));
        }
        let bytes = z.compress(&w.data)?;
        let at = {
            let mut end = self.end.lock().expect("lock");
            let at = *end;
            *end += bytes.len() as u64;
            at
        };
        self.spill.write_all_at(&bytes, at)?;
        let frame = Frame {
            hash,
            raw: w.data.len() as u32,
            at,
            len: bytes.len() as u32,
        };
        Ok((w.key, frame, true))
    }

    /// Send a file's chunks; returns (bytes read, chunks).
    fn feed_file(
        path: &Path,
        key: usize,
        old: Option<&Seen>,
        send: &dyn Fn(Work) -> io::Result<()>,
        mut each: impl FnMut(u64),
    ) -> io::Result<(u64, usize)> {
        let mut f = File::open(path)?;
        let (mut total, mut i) = (0u64, 0usize);
        loop {
            let mut data = vec![0u8; CHUNK];
            let n = read_full(&mut f, &mut data)?;
            if n == 0 {
                break;
            }
            data.truncate(n);
            let old = old.and_then(|s| s.frames.get(i).copied());
            send(Work {
                key: (key, i),
                data,
                old,
            })?;
            total += n as u64;
            i += 1;
            each(n as u64);
            if n < CHUNK {
                break;
            }
        }
        Ok((total, i))
    }

    /// First pass, while the source may change. The spill file goes in
    /// `spill_dir`; `progress(bytes, files)` after each chunk.
    pub fn precompress(
        src: &Path,
        spill_dir: &Path,
        compression: Compression,
        mut progress: impl FnMut(u64, u64),
    ) -> io::Result<(FrameStore, Pass)> {
        std::fs::create_dir_all(spill_dir)?;
        let spill = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(spill_dir.join("frames"))?;
        let mut store = FrameStore {
            compression,
            spill,
            end: Mutex::new(0),
            seen: HashMap::new(),
            settled: None,
        };
        let mut pass = Pass::default();
        let mut order: Vec<(PathBuf, Seen)> = Vec::new();
        let results = store.pool(|send| {
            for p in walk(src)? {
                let rel = p.strip_prefix(src).expect("walk stays under src").to_path_buf();
                // Files a running server removes mid-walk (WAL recycling, temp
                // files) are fine: the second pass settles them.
                let Ok(md) = std::fs::symlink_metadata(&p) else {
                    continue;
                };
                if !md.is_file() {
                    continue;
                }
                if pass.left_out(&rel, &p, &md) {
                    continue;
                }
                let read_at = SystemTime::now();
                let (files, mut bytes) = (pass.files, pass.bytes);
                let read = Self::feed_file(&p, order.len(), None, send, |n| {
                    bytes += n;
                    progress(bytes, files)
                });
                let (len, chunks) = match read {
                    Ok(x) => x,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                pass.files += 1;
                pass.bytes = bytes;
                let seen = Seen {
                    len: md.len().min(len),
                    mtime: md.modified()?,
                    read_at,
                    frames: vec![Frame::default(); chunks],
                };
                order.push((rel, seen));
            }
            Ok(())
        })?;
        for ((file, chunk), frame, _) in results {
            order[file].1.frames[chunk] = frame;
        }
        store.seen = order.into_iter().collect();
        Ok((store, pass))
    }

    /// Second pass, once the source is stopped: what the archive will hold.
    pub fn settle(&mut self, src: &Path) -> io::Result<Pass> {
        let root = std::fs::symlink_metadata(src)?;
        let mut pass = Pass::default();
        let mut entries: Vec<Entry> = Vec::new();
        let results = self.pool(|send| {
            for p in walk(src)? {
                let rel = p.strip_prefix(src).expect("walk stays under src").to_path_buf();
                let md = std::fs::symlink_metadata(&p)?;
                if md.is_dir() {
                    entries.push(Entry::Dir(rel, md));
                    continue;
                }
                if md.file_type().is_symlink() {
                    let target = std::fs::read_link(&p)?;
                    entries.push(Entry::Link(rel, md, target));
                    continue;
                }
                if !md.is_file() {
                    continue;
                }
                if pass.left_out(&rel, &p, &md) {
                    continue;
                }
                let old = self.seen.get(&rel);
                let unchanged = old.is_some_and(|s| {
                    s.len == md.len()
                        && s.frames.iter().map(|f| f.raw as u64).sum::<u64>() == s.len
                        && md.modified().ok() == Some(s.mtime)
                        && s.mtime + HOT < s.read_at
                });
                if let (true, Some(s)) = (unchanged, old) {
                    entries.push(Entry::File(rel, md, s.len, s.frames.clone()));
                    continue;
                }
                let (len, chunks) = Self::feed_file(&p, entries.len(), old, send, |_| {})?;
                pass.files += 1;
                entries.push(Entry::File(rel, md, len, vec![Frame::default(); chunks]));
            }
            Ok(())
        })?;
        for ((i, chunk), frame, new) in results {
            if new {
                pass.bytes += frame.raw as u64;
            }
            if let Entry::File(_, _, _, frames) = &mut entries[i] {
                frames[chunk] = frame;
            }
        }
        self.settled = Some((root, entries));
        Ok(pass)
    }

    /// Write the settled directory as `top/…` into `dest` (via a temporary
    /// name, checksummed, fsynced, renamed); `progress(bytes, files)`.
    pub fn write_archive(&self, top: &str, dest: &Path, mut progress: impl FnMut(u64, u64)) -> io::Result<ArchiveInfo> {
        let (root, entries) = self
            .settled
            .as_ref()
            .ok_or_else(|| io::Error::other("the second pass has not run"))?;
        let mut out = ArchiveWriter::create(dest)?;
        let result = (|| -> io::Result<(u64, u64)> {
            let mut z = Compressor::new(self.compression)?;
            let mut glue = tar::Builder::new(Vec::new());
            let header = |md: &Metadata| {
                let mut h = tar::Header::new_gnu();
                h.set_metadata_in_mode(md, tar::HeaderMode::Complete);
                h
            };
            glue.append_data(&mut header(root), top, io::empty())?;
            let (mut files, mut bytes) = (0u64, 0u64);
            let mut buf = Vec::new();
            for e in entries {
                match e {
                    Entry::Dir(rel, md) => glue.append_data(&mut header(md), Path::new(top).join(rel), io::empty())?,
                    Entry::Link(rel, md, target) => {
                        let mut h = header(md);
                        h.set_size(0);
                        glue.append_link(&mut h, Path::new(top).join(rel), target)?
                    }
                    Entry::File(rel, md, len, frames) => {
                        let mut h = header(md);
                        h.set_size(*len);
                        glue.append_data(&mut h, Path::new(top).join(rel), io::empty())?;
                        if *len > 0 {
                            out.write_all(&z.compress(&std::mem::take(glue.get_mut()))?)?;
                            for f in frames {
                                buf.resize(f.len as usize, 0);
                                self.spill.read_exact_at(&mut buf, f.at)?;
                                out.write_all(&buf)?;
                            }
                            let pad = (512 - (*len % 512) as usize) % 512;
                            glue.get_mut().extend(std::iter::repeat_n(0u8, pad));
                        }
                        files += 1;
                        bytes += len;
                        progress(bytes, files);
                    }
                }
            }
            out.write_all(&z.compress(&glue.into_inner()?)?)?;
            Ok((files, bytes))
        })();
        match result {
            Ok((files, bytes)) => out.finish(files, bytes),
            Err(e) => {
                out.abandon();
                Err(e)
            }
        }
    }
}

#[cfg(test)]
#[path = "frames_tests.rs"]
mod tests;
