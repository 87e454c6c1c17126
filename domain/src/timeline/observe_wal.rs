//! The WAL archive's changes as timeline events: the receiver stopping and
//! receiving again, falling a segment or more behind and catching up (back
//! at half a segment, so a receiver hovering at the bound does not fill the
//! timeline), and the leader's retained WAL reaching the alert bound and
//! going back under it. A look where the leader could not be asked changes
//! nothing.

use model::timeline::EventKind;
use model::topology::human_bytes;
use model::wal::{WalArchive, WalReceiverStatus, SEGMENT_BYTES};

use super::store::NewEvent;

/// What the previous look saw of the archive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalSeen {
    pub connected: bool,
    pub behind: bool,
    pub alert: bool,
}

impl WalSeen {
    /// This look's view, given the previous one (for the hysteresis of "behind").
    fn of(w: &WalArchive, prev: Option<WalSeen>) -> WalSeen {
        let bytes = w.behind_bytes.unwrap_or(0);
        let connected = w.status != WalReceiverStatus::Stopped;
        let was_behind = prev.is_some_and(|p| p.behind);
        WalSeen {
            connected,
            behind: connected && (bytes >= SEGMENT_BYTES || (was_behind && bytes > SEGMENT_BYTES / 2)),
            alert: w.retained_alert.is_some(),
        }
    }
}

/// Events between the previous look (`None`: this is the first) and `w`;
/// returns what to remember.
pub fn wal_changes(
    prev: Option<WalSeen>,
    w: Option<&WalArchive>,
    now: i64,
    out: &mut Vec<NewEvent>,
) -> Option<WalSeen> {
    let Some(w) = w.filter(|w| w.status != WalReceiverStatus::Unknown) else {
        return prev;
    };
    let cur = WalSeen::of(w, prev);
    let Some(p) = prev else { return Some(cur) };
    let behind = human_bytes(w.behind_bytes.unwrap_or(0));
    let mut push = |what: &str, text: String| {
        out.push(NewEvent {
            at_ms: now,
            kind: EventKind::WalArchive,
            subject: String::new(),
            text,
            link: None,
            key: format!("wal:{what}:{now}"),
        })
    };
    match (p.connected, cur.connected) {
        (true, false) => push(
            "stopped",
            format!("WAL archive stopped receiving: {behind} not archived yet, kept on the leader by the slot"),
        ),
        (false, true) => push("receiving", format!("WAL archive receiving again ({} behind)", behind)),
        _ if cur.behind && !p.behind => push("behind", format!("WAL archive behind by {behind}")),
        _ if !cur.behind && p.behind => push("caught-up", format!("WAL archive caught up ({behind} behind)")),
        _ => {}
    }
    match (p.alert, cur.alert, w.retained_bytes) {
        (false, true, Some(r)) => push(
            "alert",
            format!(
                "alert: the leader keeps {} of WAL for the archive's slot",
                human_bytes(r)
            ),
        ),
        (true, false, r) => push(
            "alert-over",
            format!(
                "the leader's WAL kept for the archive is under the alert bound again ({})",
                human_bytes(r.unwrap_or(0))
            ),
        ),
        _ => {}
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::wal::WalArchiveFiles;

    fn look(status: WalReceiverStatus, behind_mb: u64, alert: bool) -> WalArchive {
        WalArchive {
            status,
            slot_exists: true,
            behind_bytes: Some(behind_mb << 20),
            retained_bytes: Some(behind_mb << 20),
            retained_alert: alert.then(|| "keeps too much".to_string()),
            system_identifier: Some("1".into()),
            files: WalArchiveFiles::default(),
            error: None,
        }
    }

    fn run(looks: &[WalArchive]) -> Vec<String> {
        let (mut seen, mut out) = (None, Vec::new());
        for (i, w) in looks.iter().enumerate() {
            seen = wal_changes(seen, Some(w), i as i64 * 1000, &mut out);
        }
        out.into_iter().map(|e| e.text).collect()
    }

    #[test]
    fn stop_alert_and_catch_up_are_recorded_once_each() {
        use WalReceiverStatus::*;
        let texts = run(&[
            look(Stopped, 40, false), // the first look is the baseline
            look(Receiving, 0, false),
            look(Stopped, 0, false),
            look(Stopped, 48, true),
            look(Stopped, 64, true),
            look(Behind, 40, true),
            look(Unknown, 0, false), // the leader was not asked: nothing changes
            look(Behind, 12, false), // over half a segment: still behind
            look(Receiving, 1, false),
        ]);
        assert_eq!(
            texts,
            [
                "WAL archive receiving again (0 B behind)",
                "WAL archive stopped receiving: 0 B not archived yet, kept on the leader by the slot",
                "alert: the leader keeps 48.0 MB of WAL for the archive's slot",
                "WAL archive receiving again (40.0 MB behind)",
                "the leader's WAL kept for the archive is under the alert bound again (12.0 MB)",
                "WAL archive caught up (1.0 MB behind)",
            ]
        );
    }
}
