//! Which times a point-in-time restore can reach, and from which backup.
//!
//! A restore to time T replays the archive's WAL from a backup's redo point
//! up to T, so it needs a successful backup whose data is from before T and
//! every segment from that backup's redo point to T. The archive reaches
//! "now" while pg-wal receives (the restore first waits until it has a
//! transaction of its own, written after T), and otherwise the moment pg-wal
//! last wrote. A gap (segments pg-wal never got) cuts every backup older than
//! it off at the moment the archive broke. Pure: the caller reads the catalog,
//! the archive's folder and the receiver's state.

use model::wal::{parse_lsn, WalArchiveFiles, WalGap, SEGMENT_BYTES};

use crate::backup::Manifest;
use crate::datetime::human_utc as utc;

/// When a backup's data is from: its end (a cold snapshot's replica is
/// stopped before the archive is complete, so nothing in it is later).
pub fn consistent_at_ms(m: &Manifest) -> i64 {
    m.started_at_ms + m.phases_ms.iter().map(|(_, ms)| *ms as i64).sum::<i64>()
}

/// Where the archive's WAL ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveEnd {
    /// pg-wal receives: the archive follows the leader.
    Live { now_ms: i64 },
    /// pg-wal does not receive: the archive ends where it last wrote.
    At(i64),
    /// Nothing archived yet.
    Empty,
}

impl ArchiveEnd {
    pub fn of(files: &WalArchiveFiles, receiving: bool, now_ms: i64) -> ArchiveEnd {
        if receiving && files.oldest_lsn.is_some() {
            return ArchiveEnd::Live { now_ms };
        }
        match files.newest_at_ms.max(files.receiving_at_ms) {
            Some(at) => ArchiveEnd::At(at),
            None => ArchiveEnd::Empty,
        }
    }

    fn ms(self) -> Option<i64> {
        match self {
            ArchiveEnd::Live { now_ms } => Some(now_ms),
            ArchiveEnd::At(at) => Some(at),
            ArchiveEnd::Empty => None,
        }
    }

    fn text(self) -> String {
        match self {
            ArchiveEnd::Live { .. } => "now (pg-wal is receiving)".into(),
            ArchiveEnd::At(at) => format!("{} (pg-wal last wrote then; it is not receiving)", utc(at)),
            ArchiveEnd::Empty => "nothing (the archive is empty)".into(),
        }
    }
}

fn segment_start(lsn: u64) -> u64 {
    lsn - lsn % SEGMENT_BYTES
}

/// The first thing that keeps `m`'s replay from going past some time: a
/// gap after its redo point (the time the archive broke; None = at once),
/// or its redo point not archived at all.
fn first_break<'a>(m: &Manifest, files: &'a WalArchiveFiles) -> Option<(Option<i64>, Option<&'a WalGap>)> {
    let redo = segment_start(parse_lsn(&m.redo_lsn)?);
    let oldest = files.oldest_lsn.as_deref().and_then(parse_lsn);
    if oldest.is_none_or(|o| o > redo) {
        return Some((None, None));
    }
    files
        .gaps
        .iter()
        .filter(|g| parse_lsn(&g.to_lsn).is_some_and(|to| to > redo))
        .map(|g| {
            let from = parse_lsn(&g.from_lsn).unwrap_or(0);
            (if from <= redo { None } else { g.after_ms }, Some(g))
        })
        .min_by_key(|(at, _)| at.unwrap_or(i64::MIN))
}

/// The span of times `m` can be restored to: from its data's time to the
/// archive's end or the first break after it (None: not at all).
fn span(m: &Manifest, files: &WalArchiveFiles, end: ArchiveEnd) -> Option<(i64, i64)> {
    let from = consistent_at_ms(m);
    let to = match first_break(m, files) {
        Some((Some(at), _)) => at.min(end.ms()?),
        Some((None, _)) => return None,
        None => end.ms()?,
    };
    (to >= from).then_some((from, to))
}

/// What can be restored: the spans (merged, ascending) over all backups.
pub fn window(backups: &[Manifest], files: &WalArchiveFiles, end: ArchiveEnd) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = backups.iter().filter_map(|m| span(m, files, end)).collect();
    spans.sort();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (from, to) in spans {
        match out.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out
}

/// The window in words, for the plan.
pub fn describe(backups: &[Manifest], files: &WalArchiveFiles, end: ArchiveEnd) -> String {
    let spans = window(backups, files, end);
    if spans.is_empty() {
        return format!(
            "the archive can restore no time yet: it needs a successful backup whose WAL it holds (the archive holds WAL up to {})",
            end.text()
        );
    }
    let last = spans.len() - 1;
    let text: Vec<String> = spans
        .iter()
        .enumerate()
        .map(|(i, (from, to))| {
            let to = if i == last && Some(*to) == end.ms() {
                end.text()
            } else {
                utc(*to)
            };
            format!("from {} to {to}", utc(*from))
        })
        .collect();
    let mut s = format!("the archive can restore any second {}", text.join(", and "));
    for g in &files.gaps {
        s.push_str(&format!(
            "; WAL from {} to {} is missing (pg-wal lost it between {} and {})",
            g.from_lsn,
            g.to_lsn,
            g.after_ms.map(utc).unwrap_or_else(|| "?".into()),
            g.before_ms.map(utc).unwrap_or_else(|| "?".into())
        ));
    }
    s
}

/// The backup to restore to `target_ms`: the newest successful one from
/// before it, if the archive holds every segment from its redo point to
/// the target. Otherwise why not, and what to choose instead.
pub fn choose<'a>(
    backups: &'a [Manifest],
    files: &WalArchiveFiles,
    end: ArchiveEnd,
    target_ms: i64,
) -> Result<&'a Manifest, String> {
    let t = utc(target_ms);
    match end {
        ArchiveEnd::Empty => return Err("the WAL archive is empty: pg-wal has archived nothing yet".into()),
        ArchiveEnd::Live { now_ms } if target_ms > now_ms => {
            return Err(format!("{t} is in the future: choose a time up to now"))
        }
        ArchiveEnd::At(at) if target_ms > at => {
            return Err(format!(
                "the archive's WAL ends at {} (pg-wal is not receiving): choose a time up to then, or start pg-wal and wait until it has caught up",
                utc(at)
            ))
        }
        _ => {}
    }
    let m = backups
        .iter()
        .filter(|m| consistent_at_ms(m) <= target_ms)
        .max_by_key(|m| consistent_at_ms(m))
        .ok_or_else(|| match backups.iter().map(consistent_at_ms).min() {
            Some(first) => format!(
                "no successful backup is from before {t}: the oldest is from {}, so no earlier time can be restored",
                utc(first)
            ),
            None => "there is no successful backup to start from: take one first".into(),
        })?;
    let taken = utc(consistent_at_ms(m));
    match first_break(m, files) {
        Some((None, None)) => Err(match files.oldest_lsn.as_deref() {
            Some(oldest) => format!(
                "the archive does not hold the WAL from {}'s backup of {taken} on (its redo point {} is before the archive's oldest segment {oldest}): pg-wal started after that backup; choose a time after a newer backup",
                m.member, m.redo_lsn
            ),
            None => "the WAL archive holds no segment yet: pg-wal has archived nothing".to_string(),
        }),
        Some((at, Some(g))) if at.is_none_or(|a| target_ms > a) => Err(format!(
            "{t} is past a gap in the archive: WAL from {} to {} is missing (pg-wal lost it between {} and {}), so {}'s backup of {taken} replays only up to {}; choose a time before that, or after a backup taken after {}",
            g.from_lsn,
            g.to_lsn,
            g.after_ms.map(utc).unwrap_or_else(|| "?".into()),
            g.before_ms.map(utc).unwrap_or_else(|| "?".into()),
            m.member,
            at.map(utc).unwrap_or_else(|| format!("its own redo point {}", m.redo_lsn)),
            g.before_ms.map(utc).unwrap_or_else(|| "the gap".into()),
        )),
        _ => Ok(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::archive::Compression;
    use model::backups::BackupStatus;
    use model::topology::format_lsn;

    /// The LSN text of a segment number's start.
    fn segment_lsn(segno: u64) -> String {
        format_lsn(segno * SEGMENT_BYTES)
    }

    const MIN: i64 = 60_000;
    const T0: i64 = 1_764_554_400_000; // 2025-12-01 02:00:00 UTC

    fn backup(id: &str, at: i64, redo_seg: u64) -> Manifest {
        let mut m = Manifest::new(id, "c", "pg-2", Compression::Gzip, "ada");
        m.status = BackupStatus::Ok;
        m.started_at_ms = at - MIN;
        m.phases_ms = vec![("copy".into(), MIN as u64)];
        m.redo_lsn = format_lsn(redo_seg * SEGMENT_BYTES + 0x28);
        m
    }

    fn files(oldest_seg: u64, gaps: Vec<WalGap>) -> WalArchiveFiles {
        WalArchiveFiles {
            oldest_lsn: Some(segment_lsn(oldest_seg)),
            newest_at_ms: Some(T0 + 50 * MIN),
            gaps,
            ..Default::default()
        }
    }

    fn gap(from: u64, to: u64, after: i64, before: i64) -> WalGap {
        WalGap {
            from_lsn: segment_lsn(from),
            to_lsn: segment_lsn(to),
            after_ms: Some(after),
            before_ms: Some(before),
        }
    }

    #[test]
    fn the_newest_backup_before_the_target_is_chosen() {
        let b = [backup("a", T0, 3), backup("b", T0 + 20 * MIN, 9)];
        let f = files(2, Vec::new());
        let live = ArchiveEnd::Live { now_ms: T0 + 60 * MIN };
        assert_eq!(choose(&b, &f, live, T0 + 10 * MIN).unwrap().id, "a");
        assert_eq!(choose(&b, &f, live, T0 + 30 * MIN).unwrap().id, "b");
        assert_eq!(
            choose(&b, &f, live, T0 + 20 * MIN).unwrap().id,
            "b",
            "its own end is restorable"
        );
        assert_eq!(
            choose(&b, &f, live, T0 - MIN).unwrap_err(),
            "no successful backup is from before 2025-12-01 01:59:00 UTC: the oldest is from 2025-12-01 02:00:00 UTC, so no earlier time can be restored"
        );
        assert_eq!(
            choose(&b, &f, live, T0 + 61 * MIN).unwrap_err(),
            "2025-12-01 03:01:00 UTC is in the future: choose a time up to now"
        );
        assert_eq!(window(&b, &f, live), vec![(T0, T0 + 60 * MIN)]);
        assert_eq!(
            describe(&b, &f, live),
            "the archive can restore any second from 2025-12-01 02:00:00 UTC to now (pg-wal is receiving)"
        );
    }

    #[test]
    fn a_stopped_receiver_ends_the_window_where_it_last_wrote() {
        let b = [backup("a", T0, 3)];
        let mut f = files(2, Vec::new());
        f.receiving_at_ms = Some(T0 + 55 * MIN);
        let end = ArchiveEnd::of(&f, false, T0 + 90 * MIN);
        assert_eq!(end, ArchiveEnd::At(T0 + 55 * MIN));
        assert!(choose(&b, &f, end, T0 + 55 * MIN).is_ok());
        assert!(choose(&b, &f, end, T0 + 56 * MIN)
            .unwrap_err()
            .starts_with("the archive's WAL ends at 2025-12-01 02:55:00 UTC (pg-wal is not receiving)"));
        assert_eq!(ArchiveEnd::of(&WalArchiveFiles::default(), true, T0), ArchiveEnd::Empty);
    }

    #[test]
    fn a_gap_cuts_older_backups_off_where_the_archive_broke() {
        // Segments 10..12 missing: the receiver lost them between 02:25 and 02:40.
        let g = gap(10, 13, T0 + 25 * MIN, T0 + 40 * MIN);
        let b = [backup("a", T0, 3), backup("c", T0 + 45 * MIN, 14)];
        let f = files(2, vec![g]);
        let live = ArchiveEnd::Live { now_ms: T0 + 60 * MIN };
        assert_eq!(choose(&b, &f, live, T0 + 25 * MIN).unwrap().id, "a", "up to the break");
        let refused = choose(&b, &f, live, T0 + 30 * MIN).unwrap_err();
        assert_eq!(
            refused,
            "2025-12-01 02:30:00 UTC is past a gap in the archive: WAL from 0/A000000 to 0/D000000 is missing (pg-wal lost it between 2025-12-01 02:25:00 UTC and 2025-12-01 02:40:00 UTC), so pg-2's backup of 2025-12-01 02:00:00 UTC replays only up to 2025-12-01 02:25:00 UTC; choose a time before that, or after a backup taken after 2025-12-01 02:40:00 UTC"
        );
        assert!(
            choose(&b, &f, live, T0 + 42 * MIN).is_err(),
            "inside the gap's aftermath, before c"
        );
        assert_eq!(
            choose(&b, &f, live, T0 + 50 * MIN).unwrap().id,
            "c",
            "a backup after the gap"
        );
        assert_eq!(
            window(&b, &f, live),
            vec![(T0, T0 + 25 * MIN), (T0 + 45 * MIN, T0 + 60 * MIN)]
        );
        assert!(describe(&b, &f, live).starts_with(
            "the archive can restore any second from 2025-12-01 02:00:00 UTC to 2025-12-01 02:25:00 UTC, and from 2025-12-01 02:45:00 UTC to now (pg-wal is receiving); WAL from 0/A000000 to 0/D000000 is missing"
        ));
    }

    #[test]
    fn a_backup_older_than_the_archive_cannot_be_replayed() {
        let b = [backup("old", T0, 1)];
        let f = files(2, Vec::new());
        let live = ArchiveEnd::Live { now_ms: T0 + 60 * MIN };
        assert!(choose(&b, &f, live, T0 + 5 * MIN)
            .unwrap_err()
            .contains("its redo point 0/1000028 is before the archive's oldest segment 0/2000000"));
        assert!(window(&b, &f, live).is_empty());
        // A gap that swallows the backup's own redo segment cuts it off entirely.
        let g = gap(3, 5, T0 - 5 * MIN, T0 + 5 * MIN);
        let b = [backup("a", T0, 3)];
        assert!(choose(&b, &files(2, vec![g]), live, T0 + MIN).is_err());
    }
}
