//! The continuous WAL archive as the console watches it: pg-wal's receiver
//! in the leader's `pg_stat_replication` (through the write endpoint), the
//! WAL its slot makes the leader keep, and the archive's folder on disk.
//! Read at most once per [`MAX_AGE`], in the background, and shared by every viewer.

pub mod files;
pub mod retention;
pub mod window;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use model::topology::human_bytes;
use model::wal::{WalArchive, WalArchiveFiles, WalReceiverStatus, SEGMENT_BYTES};
use tokio::sync::Mutex;

use crate::operations::write_probe::ProbeTarget;

/// How long one read of the archive's state serves the Overview.
pub const MAX_AGE: Duration = Duration::from_secs(2);
const QUERY_TIMEOUT: Duration = Duration::from_millis(1500);

/// What the console needs to watch the archive.
#[derive(Clone, Debug)]
pub struct WalArchiveSettings {
    /// `${DEFAULT_DATA_DIR}/wal-archive`: one folder per system identifier.
    pub archive_dir: PathBuf,
    /// The receiver's permanent slot (Patroni `slots`).
    pub slot: String,
    /// The receiver's container, named in the alert.
    pub container: String,
    /// Retained WAL at or above this many bytes raises the alert.
    pub retained_alert_bytes: u64,
}

/// One answer of the leader about the receiver and its slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderView {
    pub system_identifier: String,
    pub slot_exists: bool,
    pub retained_bytes: Option<u64>,
    /// The receiver's `pg_stat_replication.state` ("streaming", "catchup"), if connected.
    pub state: Option<String>,
    /// How far what it received (`write_lsn`; it fsyncs each segment when
    /// complete, and the slot keeps the rest) is behind the leader's WAL.
    pub behind_bytes: Option<u64>,
}

pub struct WalArchiveWatch {
    settings: WalArchiveSettings,
    leader: ProbeTarget,
    client: Mutex<Option<tokio_postgres::Client>>,
    last: std::sync::Mutex<Option<(Instant, WalArchive)>>,
    refreshing: AtomicBool,
}

const LEADER_QUERY: &str = "\
SELECT c.system_identifier::text,
       s.slot_name IS NOT NULL,
       pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn)::bigint,
       r.state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), r.write_lsn)::bigint
FROM pg_control_system() c
LEFT JOIN pg_replication_slots s ON s.slot_name::text = $1
LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid";

impl WalArchiveWatch {
    /// `leader`: the write endpoint with the superuser's credentials.
    pub fn new(settings: WalArchiveSettings, leader: ProbeTarget) -> Arc<Self> {
        Arc::new(WalArchiveWatch {
            settings,
            leader,
            client: Mutex::new(None),
            last: std::sync::Mutex::new(None),
            refreshing: AtomicBool::new(false),
        })
    }

    pub fn settings(&self) -> &WalArchiveSettings {
        &self.settings
    }

    /// The archive's state. Older than [`MAX_AGE`], it is read again in the
    /// background and the previous state is returned meanwhile: a leader that
    /// does not answer (a failover) never holds up the Overview. Only the
    /// very first call waits for a read.
    pub async fn state(self: &Arc<Self>) -> WalArchive {
        let last = self.last.lock().expect("not poisoned").clone();
        match last {
            Some((at, state)) if at.elapsed() < MAX_AGE => state,
            Some((_, state)) => {
                if !self.refreshing.swap(true, Ordering::AcqRel) {
                    let this = self.clone();
                    tokio::spawn(async move {
                        this.refresh().await;
                        this.refreshing.store(false, Ordering::Release);
                    });
                }
                state
            }
            None => self.refresh().await,
        }
    }

    async fn refresh(&self) -> WalArchive {
        let state = self.read().await;
        *self.last.lock().expect("not poisoned") = Some((Instant::now(), state.clone()));
        state
    }

    async fn read(&self) -> WalArchive {
        let leader = match tokio::time::timeout(QUERY_TIMEOUT, self.ask_leader()).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "the leader did not answer within {} ms",
                QUERY_TIMEOUT.as_millis()
            )),
        };
        if leader.is_err() {
            // A connection to a member that stopped leading is of no use.
            *self.client.lock().await = None;
        }
        let sysid = leader.as_ref().ok().map(|l| l.system_identifier.clone());
        let files = match &sysid {
            Some(id) => {
                let dir = self.settings.archive_dir.join(id);
                tokio::task::spawn_blocking(move || files::scan(&dir))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| format!("cannot read the WAL archive: {e}")))
            }
            None => Ok(WalArchiveFiles::default()),
        };
        assemble(&self.settings, leader, files)
    }

    async fn ask_leader(&self) -> Result<LeaderView, String> {
        let mut guard = self.client.lock().await;
        if guard.as_ref().is_none_or(|c| c.is_closed()) {
            let cfg = self.leader.config(
                &self.leader.host,
                self.leader.port,
                Duration::from_secs(1),
                "pg-console-wal-archive",
            );
            let (client, conn) = cfg
                .connect(tokio_postgres::NoTls)
                .await
                .map_err(|e| format!("cannot reach the leader through the write endpoint: {e}"))?;
            tokio::spawn(conn);
            *guard = Some(client);
        }
        let client = guard.as_ref().expect("connected above");
        let row = client
            .query_one(LEADER_QUERY, &[&self.settings.slot])
            .await
            .map_err(|e| format!("the leader could not say how the WAL archive is doing: {e}"))?;
        let bytes = |i: usize| row.get::<_, Option<i64>>(i).map(|v| v.max(0) as u64);
        Ok(LeaderView {
            system_identifier: row.get(0),
            slot_exists: row.get(1),
            retained_bytes: bytes(2),
            state: row.get(3),
            behind_bytes: bytes(4),
        })
    }
}

/// The state the Overview shows, from the leader's view and the files.
pub fn assemble(
    s: &WalArchiveSettings,
    leader: Result<LeaderView, String>,
    files: Result<WalArchiveFiles, String>,
) -> WalArchive {
    let (files, files_error) = match files {
        Ok(f) => (f, None),
        Err(e) => (WalArchiveFiles::default(), Some(e)),
    };
    let l = match leader {
        Ok(l) => l,
        Err(e) => {
            return WalArchive {
                status: WalReceiverStatus::Unknown,
                slot_exists: false,
                behind_bytes: None,
                retained_bytes: None,
                retained_alert: None,
                system_identifier: None,
                files,
                error: Some(e),
            }
        }
    };
    let (status, behind) = match l.state.as_deref() {
        Some("streaming") if l.behind_bytes.unwrap_or(0) < SEGMENT_BYTES => {
            (WalReceiverStatus::Receiving, l.behind_bytes)
        }
        Some(_) => (WalReceiverStatus::Behind, l.behind_bytes),
        // Stopped: what the slot keeps is what the archive has not received.
        None => (WalReceiverStatus::Stopped, l.retained_bytes),
    };
    let retained_alert = l.retained_bytes.filter(|r| *r >= s.retained_alert_bytes).map(|r| {
        format!(
            "The leader keeps {} of WAL for the archive's slot {} (alert at {}): the WAL archive is {}. \
             Start {} so it catches up, or the leader's disk fills up.",
            human_bytes(r),
            s.slot,
            human_bytes(s.retained_alert_bytes),
            status.label(),
            s.container,
        )
    });
    let error = match (l.slot_exists, files_error) {
        (false, _) => Some(format!(
            "the leader has no replication slot {}: add it to Patroni's permanent slots \
             (scripts/stack up does) so {} can receive",
            s.slot, s.container
        )),
        (true, e) => e,
    };
    WalArchive {
        status,
        slot_exists: l.slot_exists,
        behind_bytes: behind,
        retained_bytes: l.retained_bytes,
        retained_alert,
        system_identifier: Some(l.system_identifier),
        files,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WalArchiveSettings {
        WalArchiveSettings {
            archive_dir: PathBuf::from("/nowhere"),
            slot: "pg_wal_archive".into(),
            container: "pg-wal".into(),
            retained_alert_bytes: 32 * 1024 * 1024,
        }
    }

    fn view(state: Option<&str>, behind: u64, retained: u64) -> LeaderView {
        LeaderView {
            system_identifier: "7713809362585186343".into(),
            slot_exists: true,
            retained_bytes: Some(retained),
            state: state.map(String::from),
            behind_bytes: state.map(|_| behind),
        }
    }

    #[test]
    fn status_from_the_leaders_view() {
        let s = settings();
        let a = assemble(&s, Ok(view(Some("streaming"), 120, 120)), Ok(Default::default()));
        assert_eq!(
            (a.status, a.behind_bytes, a.retained_alert.is_none()),
            (WalReceiverStatus::Receiving, Some(120), true)
        );
        let a = assemble(
            &s,
            Ok(view(Some("streaming"), SEGMENT_BYTES, SEGMENT_BYTES)),
            Ok(Default::default()),
        );
        assert_eq!(a.status, WalReceiverStatus::Behind);
        let a = assemble(&s, Ok(view(Some("catchup"), 10, 10)), Ok(Default::default()));
        assert_eq!(a.status, WalReceiverStatus::Behind);
        // Stopped with 48 MB kept: behind by what the slot keeps, and the alert names the bound and the container.
        let a = assemble(&s, Ok(view(None, 0, 48 << 20)), Ok(Default::default()));
        assert_eq!((a.status, a.behind_bytes), (WalReceiverStatus::Stopped, Some(48 << 20)));
        assert_eq!(
            a.retained_alert.as_deref(),
            Some(
                "The leader keeps 48.0 MB of WAL for the archive's slot pg_wal_archive (alert at 32.0 MB): \
                 the WAL archive is stopped. Start pg-wal so it catches up, or the leader's disk fills up."
            )
        );
    }

    #[test]
    fn no_slot_and_no_leader_say_why() {
        let s = settings();
        let mut v = view(None, 0, 0);
        v.slot_exists = false;
        v.retained_bytes = None;
        let a = assemble(&s, Ok(v), Ok(Default::default()));
        assert!(a.error.unwrap().contains("no replication slot pg_wal_archive"));
        let a = assemble(&s, Err("cannot reach the leader".into()), Ok(Default::default()));
        assert_eq!(
            (a.status, a.error.as_deref()),
            (WalReceiverStatus::Unknown, Some("cannot reach the leader"))
        );
    }
}
