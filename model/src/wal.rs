//! The continuous WAL archive (pg-wal: pg_receivewal on the permanent slot
//! `pg_wal_archive`), as the Overview and the timeline show it.

use serde::{Deserialize, Serialize};

use crate::topology::human_bytes;

/// One WAL segment (16 MB): a receiver less than this behind the leader is
/// keeping up.
pub const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WalReceiverStatus {
    /// Streaming from the leader, less than a segment behind.
    Receiving,
    /// Streaming, but a segment or more behind (catching up).
    Behind,
    /// Not connected to the leader: WAL written now reaches the archive
    /// only when it is back (the slot keeps it on the leader meanwhile).
    Stopped,
    /// The leader could not be asked (no leader, or the write endpoint is away).
    Unknown,
}

impl WalReceiverStatus {
    pub fn label(self) -> &'static str {
        match self {
            WalReceiverStatus::Receiving => "receiving",
            WalReceiverStatus::Behind => "behind",
            WalReceiverStatus::Stopped => "stopped",
            WalReceiverStatus::Unknown => "unknown",
        }
    }
}

/// Segments missing from the archive between two that are there: WAL in
/// this range cannot be replayed, so no restore can reach a time inside it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalGap {
    /// The first missing segment's start, as an LSN ("1/2C000000").
    pub from_lsn: String,
    /// Where WAL is there again (the next archived segment's start).
    pub to_lsn: String,
    /// When the segment before the gap was archived, if known.
    pub after_ms: Option<i64>,
    /// When the segment after the gap was archived, if known.
    pub before_ms: Option<i64>,
}

/// What is on disk for the cluster's system identifier.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalArchiveFiles {
    /// Completed segments (partial ones of an old timeline included).
    pub segments: u64,
    pub bytes: u64,
    /// Timelines that have segments, ascending.
    pub timelines: Vec<u32>,
    /// Start of the oldest archived segment (LSN).
    pub oldest_lsn: Option<String>,
    /// The newest completed segment's file name and when it was archived.
    pub newest_segment: Option<String>,
    pub newest_at_ms: Option<i64>,
    /// The segment being received now (`.partial`), if any, and when
    /// pg-wal last wrote to it.
    pub receiving_segment: Option<String>,
    #[serde(default)]
    pub receiving_at_ms: Option<i64>,
    pub gaps: Vec<WalGap>,
}

/// The WAL archive's state, read from the leader and the archive directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalArchive {
    pub status: WalReceiverStatus,
    /// The slot the receiver uses; false when the leader has no such slot
    /// (the receiver cannot start: see the README, "WAL archive").
    pub slot_exists: bool,
    /// How far the archive is behind the leader's WAL (bytes).
    pub behind_bytes: Option<u64>,
    /// WAL the leader keeps for the slot (bytes).
    pub retained_bytes: Option<u64>,
    /// Set when `retained_bytes` reaches the configured bound: the leader's
    /// disk fills while the receiver does not take the WAL.
    pub retained_alert: Option<String>,
    /// The cluster's system identifier (the archive's folder).
    pub system_identifier: Option<String>,
    pub files: WalArchiveFiles,
    /// Why the leader or the archive could not be read, if so.
    pub error: Option<String>,
}

impl WalArchive {
    /// One line for the Overview: "receiving", "behind by 48.0 MB", "stopped".
    pub fn summary(&self) -> String {
        match (self.status, self.behind_bytes) {
            (WalReceiverStatus::Behind, Some(b)) => format!("behind by {}", human_bytes(b)),
            (WalReceiverStatus::Stopped, Some(b)) if b > 0 => {
                format!("stopped, {} not archived yet", human_bytes(b))
            }
            (s, _) => s.label().to_string(),
        }
    }
}

/// An LSN as PostgreSQL writes it ("1/2C000000"), as a number.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.trim().split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_says_how_far_behind() {
        let mut w = WalArchive {
            status: WalReceiverStatus::Behind,
            slot_exists: true,
            behind_bytes: Some(48 * 1024 * 1024),
            retained_bytes: Some(48 * 1024 * 1024),
            retained_alert: None,
            system_identifier: None,
            files: WalArchiveFiles::default(),
            error: None,
        };
        assert_eq!(w.summary(), "behind by 48.0 MB");
        w.status = WalReceiverStatus::Stopped;
        assert_eq!(w.summary(), "stopped, 48.0 MB not archived yet");
        w.status = WalReceiverStatus::Receiving;
        assert_eq!(w.summary(), "receiving");
        assert_eq!(parse_lsn("1/2C000000"), Some(0x1_2C00_0000));
        assert_eq!(parse_lsn("0/2E8"), Some(0x2E8));
        assert_eq!(parse_lsn("12C000000"), None);
    }
}
