//! The incident timeline: what happened to the cluster, from every source,
//! on one clock (unix ms), newest first.

use serde::{Deserialize, Serialize};

/// Where an event comes from. The names are what filters and the CSV use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Docker: a container died, started, stopped, was killed, OOM, health.
    Container,
    /// HAProxy marked a server UP or DOWN in a listener.
    Haproxy,
    /// Patroni's timeline history: a member was promoted.
    Promotion,
    /// A change the console observed: a member's state or role, the
    /// leader, maintenance mode.
    Member,
    /// One of the console's own operations finished.
    Operation,
    /// The WAL archive's receiver started or stopped receiving, or fell behind.
    WalArchive,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::Container,
        EventKind::Haproxy,
        EventKind::Promotion,
        EventKind::Member,
        EventKind::Operation,
        EventKind::WalArchive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Container => "container",
            EventKind::Haproxy => "haproxy",
            EventKind::Promotion => "promotion",
            EventKind::Member => "member",
            EventKind::Operation => "operation",
            EventKind::WalArchive => "wal_archive",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One entry of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    pub id: i64,
    pub at_ms: i64,
    pub kind: EventKind,
    /// The member or container it is about ("" for the whole cluster).
    pub subject: String,
    pub text: String,
    /// Where to look next (that minute of the container's log, the audit
    /// entries of the operation), if anywhere.
    pub link: Option<String>,
}

/// A page of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelinePage {
    pub events: Vec<TimelineEvent>,
    /// True when more (older) events match than were sent.
    pub more: bool,
    /// How long events are kept.
    pub retention_days: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", k.as_str()));
        }
        assert_eq!(EventKind::parse("nope"), None);
    }
}
