//! What `pg_controldata` would say about a cold data directory, read straight
//! from `global/pg_control` (PostgreSQL 15 layout, little-endian).

use std::path::Path;

/// `DBState` values of PostgreSQL's control file.
pub const DB_SHUTDOWNED: u32 = 1;
pub const DB_SHUTDOWNED_IN_RECOVERY: u32 = 2;

#[derive(Clone, Debug, PartialEq)]
pub struct ControlData {
    pub system_identifier: u64,
    pub state: u32,
    /// When the control file was last updated (unix seconds): for a cold
    /// copy, when its server shut down.
    pub time: i64,
    pub checkpoint_lsn: u64,
    pub redo_lsn: u64,
    pub timeline: u32,
}

impl ControlData {
    pub fn state_name(&self) -> &'static str {
        match self.state {
            0 => "starting up",
            DB_SHUTDOWNED => "shut down",
            DB_SHUTDOWNED_IN_RECOVERY => "shut down in recovery",
            3 => "shutting down",
            4 => "in crash recovery",
            5 => "in archive recovery",
            6 => "in production",
            _ => "unknown",
        }
    }

    /// A consistent cold copy: shut down cleanly (as a primary or a standby).
    pub fn is_clean_shutdown(&self) -> bool {
        self.state == DB_SHUTDOWNED || self.state == DB_SHUTDOWNED_IN_RECOVERY
    }
}

pub fn parse(bytes: &[u8]) -> Option<ControlData> {
    let u64_at = |o: usize| bytes.get(o..o + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()));
    let u32_at = |o: usize| bytes.get(o..o + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()));
    Some(ControlData {
        system_identifier: u64_at(0)?,
        state: u32_at(16)?,
        time: u64_at(24)? as i64,
        checkpoint_lsn: u64_at(32)?,
        redo_lsn: u64_at(40)?,
        timeline: u32_at(48)?,
    })
}

pub fn read(data_dir: &Path) -> std::io::Result<ControlData> {
    let bytes = std::fs::read(data_dir.join("global/pg_control"))?;
    parse(&bytes).ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "pg_control is too short"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_fields_we_need() {
        let mut b = vec![0u8; 64];
        b[0..8].copy_from_slice(&7713329997607268389u64.to_le_bytes());
        b[16..20].copy_from_slice(&DB_SHUTDOWNED_IN_RECOVERY.to_le_bytes());
        b[32..40].copy_from_slice(&0x4000060u64.to_le_bytes());
        b[40..48].copy_from_slice(&0x4000028u64.to_le_bytes());
        b[48..52].copy_from_slice(&3u32.to_le_bytes());
        let c = parse(&b).unwrap();
        assert_eq!(c.system_identifier, 7713329997607268389);
        assert!(c.is_clean_shutdown());
        assert_eq!(c.state_name(), "shut down in recovery");
        assert_eq!((c.checkpoint_lsn, c.redo_lsn, c.timeline), (0x4000060, 0x4000028, 3));
        assert!(parse(&b[..20]).is_none());
    }
}
