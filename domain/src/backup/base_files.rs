//! What a hot base backup's own files say: `backup_label` (where replay
//! starts, and on which timeline) and `backup_manifest` (the WAL the copy
//! needs to be consistent). Pure parsing of PostgreSQL 15's formats.

/// Where a base backup starts and where it becomes consistent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseBackupLabel {
    /// `START WAL LOCATION`: replay starts at this redo point.
    pub start_lsn: String,
    /// `CHECKPOINT LOCATION`.
    pub checkpoint_lsn: String,
    pub timeline: u32,
    /// `BACKUP FROM`: `standby` or `primary`.
    pub from: String,
}

/// `backup_label`, e.g. `START WAL LOCATION: 0/5000028 (file 000000050000000000000005)`.
pub fn parse_label(text: &str) -> Result<BaseBackupLabel, String> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .map(str::trim)
            .ok_or_else(|| format!("backup_label has no {name}"))
    };
    let lsn_of = |v: &str| v.split_whitespace().next().unwrap_or_default().to_string();
    Ok(BaseBackupLabel {
        start_lsn: lsn_of(field("START WAL LOCATION")?),
        checkpoint_lsn: lsn_of(field("CHECKPOINT LOCATION")?),
        timeline: field("START TIMELINE")?
            .parse()
            .map_err(|e| format!("backup_label's START TIMELINE: {e}"))?,
        from: field("BACKUP FROM").unwrap_or("primary").to_string(),
    })
}

/// The end of the WAL range in `backup_manifest` (`WAL-Ranges`, last entry's
/// `End-LSN`): replay must reach it before the copy is consistent.
pub fn wal_end(manifest_json: &str) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        #[serde(rename = "WAL-Ranges")]
        wal_ranges: Vec<Range>,
    }
    #[derive(serde::Deserialize)]
    struct Range {
        #[serde(rename = "End-LSN")]
        end_lsn: String,
    }
    let m: Manifest =
        serde_json::from_str(manifest_json).map_err(|e| format!("backup_manifest does not parse: {e}"))?;
    m.wal_ranges
        .last()
        .map(|r| r.end_lsn.clone())
        .ok_or_else(|| "backup_manifest lists no WAL range".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by pg_basebackup (PostgreSQL 15) from replica pg-1 of the stack.
    const LABEL: &str = "START WAL LOCATION: 0/31000028 (file 000000130000000000000031)\n\
        CHECKPOINT LOCATION: 0/31000060\nBACKUP METHOD: streamed\nBACKUP FROM: standby\n\
        START TIME: 2026-12-01 06:03:43 UTC\nLABEL: pg-console base backup\nSTART TIMELINE: 19\n";

    #[test]
    fn the_label_says_where_replay_starts() {
        assert_eq!(
            parse_label(LABEL),
            Ok(BaseBackupLabel {
                start_lsn: "0/31000028".into(),
                checkpoint_lsn: "0/31000060".into(),
                timeline: 19,
                from: "standby".into(),
            })
        );
        assert!(parse_label("LABEL: x\n").unwrap_err().contains("START WAL LOCATION"));
    }

    #[test]
    fn the_manifest_says_where_the_copy_is_consistent() {
        // The same backup's manifest, its file list left out.
        let m = r#"{ "PostgreSQL-Backup-Manifest-Version": 1,
            "Files": [],
            "WAL-Ranges": [
            { "Timeline": 19, "Start-LSN": "0/31000028", "End-LSN": "0/33000060" }
            ],
            "Manifest-Checksum": "116046633ae5086293c4b970e8d14b671fabe633e1352796362179359f1b633f"}"#;
        assert_eq!(wal_end(m), Ok("0/33000060".into()));
        assert!(wal_end(r#"{"WAL-Ranges": []}"#).is_err());
        assert!(wal_end("not json").unwrap_err().contains("does not parse"));
    }
}
