//! What the WAL archive holds on disk: pg-wal's folder for one system
//! identifier, `<archive>/<system id>/`, with completed segments
//! (`<24 hex>.gz`), partial segments kept (`<24 hex>.partial`: an old
//! timeline's last, or one that could not be continued), history files,
//! and `.receiving/` with the segment being received (and copies of the
//! history files, which pg_receivewal reads there). Blocking: call it off
//! the async threads.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::UNIX_EPOCH;

use model::topology::format_lsn as lsn_text;
use model::wal::{WalArchiveFiles, WalGap, SEGMENT_BYTES};

/// The folder pg_receivewal writes into, inside a system identifier's folder.
pub const RECEIVING_DIR: &str = ".receiving";

/// A WAL segment file's (timeline, segment number) from its name, with or
/// without `.gz` / `.partial` (16 MB segments: 256 per 4 GB "log" id).
pub fn segment_of(name: &str) -> Option<(u32, u64)> {
    let hex = name.get(..24)?;
    let rest = &name[24..];
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || !matches!(rest, "" | ".gz" | ".partial" | ".gz.partial") {
        return None;
    }
    let tli = u32::from_str_radix(&hex[..8], 16).ok()?;
    let log = u64::from_str_radix(&hex[8..16], 16).ok()?;
    let seg = u64::from_str_radix(&hex[16..], 16).ok()?;
    Some((tli, log * (0x1_0000_0000 / SEGMENT_BYTES) + seg))
}

fn mtime_ms(meta: &std::fs::Metadata) -> Option<i64> {
    let d = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some(d.as_millis() as i64)
}

/// Scans one system identifier's folder. A folder that does not exist yet
/// is an empty archive.
pub fn scan(dir: &Path) -> std::io::Result<WalArchiveFiles> {
    let mut out = WalArchiveFiles::default();
    // Segment number → when it was archived (the newest file of any timeline).
    let mut archived: BTreeMap<u64, Option<i64>> = BTreeMap::new();
    let mut timelines = BTreeSet::new();
    let mut newest: Option<(u64, u32, String, Option<i64>)> = None;
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((tli, segno)) = segment_of(&name) else {
            continue;
        };
        let meta = entry.metadata()?;
        let at = mtime_ms(&meta);
        out.segments += 1;
        out.bytes += meta.len();
        timelines.insert(tli);
        let slot = archived.entry(segno).or_insert(at);
        *slot = (*slot).max(at);
        let complete = !name.ends_with(".partial");
        if complete && newest.as_ref().is_none_or(|n| (segno, tli) > (n.0, n.1)) {
            newest = Some((segno, tli, name, at));
        }
    }
    let receiving = receiving_segment(&dir.join(RECEIVING_DIR))?;
    out.timelines = timelines.into_iter().collect();
    // The segment being received is in the archive too (wal-restore reads it).
    let oldest = archived.keys().next().copied();
    let oldest = match (&receiving, oldest) {
        (Some((_, segno, _)), Some(o)) => Some(o.min(*segno)),
        (Some((_, segno, _)), None) => Some(*segno),
        (None, o) => o,
    };
    out.oldest_lsn = oldest.map(|s| lsn_text(s * SEGMENT_BYTES));
    if let Some((_, _, name, at)) = newest {
        out.newest_segment = Some(name);
        out.newest_at_ms = at;
    }
    // The segment being received continues the archive: a jump to it is a gap too.
    let mut sequence: Vec<(u64, Option<i64>)> = archived.into_iter().collect();
    if let Some((name, segno, at)) = receiving {
        if sequence.last().is_none_or(|(last, _)| *last < segno) {
            sequence.push((segno, at));
        }
        out.receiving_segment = Some(name);
        out.receiving_at_ms = at;
    }
    out.gaps = sequence
        .windows(2)
        .filter(|w| w[1].0 > w[0].0 + 1)
        .map(|w| WalGap {
            from_lsn: lsn_text((w[0].0 + 1) * SEGMENT_BYTES),
            to_lsn: lsn_text(w[1].0 * SEGMENT_BYTES),
            after_ms: w[0].1,
            before_ms: w[1].1,
        })
        .collect();
    Ok(out)
}

/// The newest partial segment pg_receivewal is writing, if any.
fn receiving_segment(dir: &Path) -> std::io::Result<Option<(String, u64, Option<i64>)>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut best: Option<(String, u64, Option<i64>)> = None;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((_, segno)) = segment_of(&name) else { continue };
        if best.as_ref().is_none_or(|b| segno > b.1) {
            let at = entry.metadata().ok().as_ref().and_then(mtime_ms);
            best = Some((name, segno, at));
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pgc-wal-{tag}-{}-{}", std::process::id(), crate::now_ms()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn touch(dir: &Path, name: &str, bytes: usize) {
        std::fs::write(dir.join(name), vec![0u8; bytes]).unwrap();
    }

    #[test]
    fn segment_names_as_pg_receivewal_writes_them() {
        assert_eq!(segment_of("0000004B000000010000002C.gz"), Some((0x4B, 0x12C)));
        assert_eq!(segment_of("00000049000000010000002A.gz.partial"), Some((0x49, 0x12A)));
        assert_eq!(segment_of("000000010000000000000003"), Some((1, 3)));
        assert_eq!(segment_of("0000004A.history.gz"), None);
        assert_eq!(segment_of("0000004B000000010000002C.gz.tmp"), None);
        assert_eq!(segment_of("zz00004B000000010000002C.gz"), None);
    }

    /// The layout recorded from pg-wal after a switchover (timeline 0x49 →
    /// 0x4A, whose last segment of 0x49 stays partial) and a restart of the
    /// members (0x4B), then a stop that lost segments 1/2E–1/2F.
    #[test]
    fn timelines_newest_segment_and_gaps() {
        let tmp = scratch("layout");
        let d = tmp.as_path();
        for n in [
            "00000049.history.gz",
            "000000490000000100000029.gz",
            "00000049000000010000002A.gz.partial",
            "0000004A.history.gz",
            "0000004A000000010000002A.gz",
            "0000004B000000010000002B.gz",
            "0000004B000000010000002C.gz",
            "0000004B000000010000002D.gz",
        ] {
            touch(d, n, 100);
        }
        std::fs::create_dir(d.join(RECEIVING_DIR)).unwrap();
        touch(&d.join(RECEIVING_DIR), "0000004B0000000100000030.gz.partial", 50);
        let f = scan(d).unwrap();
        assert_eq!(f.segments, 6);
        assert_eq!(f.bytes, 600);
        assert_eq!(f.timelines, [0x49, 0x4A, 0x4B]);
        assert_eq!(f.oldest_lsn.as_deref(), Some("1/29000000"));
        assert_eq!(f.newest_segment.as_deref(), Some("0000004B000000010000002D.gz"));
        assert_eq!(
            f.receiving_segment.as_deref(),
            Some("0000004B0000000100000030.gz.partial")
        );
        assert_eq!(f.gaps.len(), 1, "{:?}", f.gaps);
        assert_eq!(
            (f.gaps[0].from_lsn.as_str(), f.gaps[0].to_lsn.as_str()),
            ("1/2E000000", "1/30000000")
        );
        assert!(f.gaps[0].after_ms.is_some() && f.gaps[0].before_ms.is_some());
        assert!(f.receiving_at_ms.is_some());
        std::fs::remove_dir_all(d).unwrap();
    }

    /// Right after retention pruned up to a backup's redo point, the
    /// segment being received may be all there is: it is the archive's start.
    #[test]
    fn the_segment_being_received_alone_starts_the_archive() {
        let tmp = scratch("receiving");
        std::fs::create_dir(tmp.join(RECEIVING_DIR)).unwrap();
        touch(&tmp.join(RECEIVING_DIR), "0000000B00000000000000E1.partial", 50);
        let f = scan(&tmp).unwrap();
        assert_eq!(f.oldest_lsn.as_deref(), Some("0/E1000000"));
        assert_eq!(f.segments, 0);
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn a_folder_not_made_yet_is_an_empty_archive() {
        let tmp = scratch("none");
        let f = scan(&tmp.join("7713809362585186343")).unwrap();
        assert_eq!(f, WalArchiveFiles::default());
    }
}
