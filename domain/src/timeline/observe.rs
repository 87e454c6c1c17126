//! What changed between two looks at the cluster, as timeline events.
//! Pure: the recorder feeds it each Overview it reads.
//!
//! - Patroni's timeline history: each promotion once, at Patroni's own time.
//! - HAProxy: a server going UP or DOWN in a listener, at the time HAProxy
//!   says it changed (its `lastchg`, whole seconds).
//! - Members: state changes (streaming → unreachable), role changes, the
//!   leader changing, maintenance mode on and off, at the time they were seen.
//! - A replica's lag crossing the healthy bound ([`CAUGHT_UP_LAG_BYTES`]),
//!   both ways. It is back once its lag is at most half the bound, so a lag
//!   hovering at the bound does not fill the timeline.
//! - The console's own operations, at the time they finished, linked to the
//!   backup they made or else to their audit entries.
//! - The WAL archive stopping, receiving again, falling behind, and its
//!   slot's retained WAL crossing the alert bound ([`super::observe_wal`]).
//!
//! The first look only sets the baseline (no changes are invented at start),
//! except for history and operations, which carry their own times and keys,
//! and HAProxy servers whose last change (HAProxy keeps its time) came after
//! the previous console's last look: those happened while nobody looked.

use std::collections::{BTreeMap, BTreeSet};

use model::timeline::EventKind;
use model::topology::{human_bytes, CAUGHT_UP_LAG_BYTES};
use model::Overview;

use super::store::NewEvent;

/// What the previous look saw.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    started: bool,
    /// Member → (state, role label).
    members: BTreeMap<String, (String, &'static str)>,
    leader: Option<String>,
    paused: bool,
    /// (listener, server) → up.
    servers: BTreeMap<(String, String), bool>,
    promotions: BTreeSet<(u64, i64)>,
    operations: BTreeSet<(i64, String)>,
    /// Replicas whose lag is over the healthy bound.
    lagging: BTreeSet<String>,
    /// The previous console's last look, if known (see [`Observed::resuming`]).
    last_look_ms: Option<i64>,
    /// The WAL archive at the previous look it could be read.
    wal: Option<super::observe_wal::WalSeen>,
}

impl Observed {
    /// An observer that takes over from a console whose last look was at
    /// `last_look_ms`: its first look records HAProxy's changes since then.
    pub fn resuming(last_look_ms: Option<i64>) -> Self {
        Observed {
            last_look_ms,
            ..Observed::default()
        }
    }

    /// Compare `ov` with the previous look; remember it for the next.
    pub fn changes(&mut self, ov: &Overview) -> Vec<NewEvent> {
        let now = ov.topology.observed_at_ms;
        let mut out = Vec::new();
        self.history(ov, &mut out);
        self.operations(ov, &mut out);
        let members: BTreeMap<String, (String, &'static str)> = ov
            .topology
            .members
            .iter()
            .map(|m| (m.name.clone(), (m.state.as_str().to_string(), m.role.label())))
            .collect();
        let leader = ov.topology.leader().map(|m| m.name.clone());
        let servers: BTreeMap<(String, String), (bool, i64, String)> = ov
            .haproxy
            .iter()
            .flat_map(|s| s.listeners.iter())
            .flat_map(|l| {
                l.servers.iter().map(move |s| {
                    let changed_at = now - s.last_change_secs.map_or(0, |c| c as i64 * 1000);
                    (
                        (l.name.clone(), s.name.clone()),
                        (s.is_up(), changed_at, s.check_status.clone()),
                    )
                })
            })
            .collect();
        let started = self.started;
        self.lag_crossings(ov, started, &mut out);
        self.wal = super::observe_wal::wal_changes(self.wal, ov.wal_archive.as_ref(), now, &mut out);
        if started {
            self.member_changes(&members, now, &mut out);
            if leader != self.leader {
                out.push(event(
                    now,
                    EventKind::Member,
                    leader.as_deref().unwrap_or(""),
                    match (&self.leader, &leader) {
                        (Some(a), Some(b)) => format!("leader changed: {a} → {b}"),
                        (None, Some(b)) => format!("{b} is the leader"),
                        (Some(a), None) => format!("no leader (was {a}): writes are not possible"),
                        (None, None) => unreachable!("differs"),
                    },
                    format!("leader:{}:{now}", leader.as_deref().unwrap_or("-")),
                ));
            }
            if ov.topology.paused != self.paused {
                let text = if ov.topology.paused {
                    "maintenance mode: automatic failover paused"
                } else {
                    "automatic failover resumed"
                };
                out.push(event(
                    now,
                    EventKind::Member,
                    "",
                    text.into(),
                    format!("paused:{}:{now}", ov.topology.paused),
                ));
            }
            self.haproxy_changes(&servers, now, &mut out);
        } else if let Some(last) = self.last_look_ms {
            missed_haproxy_changes(&servers, last, now, &mut out);
        }
        self.started = true;
        self.members = members;
        self.leader = leader;
        self.paused = ov.topology.paused;
        self.servers = servers.into_iter().map(|(k, (up, _, _))| (k, up)).collect();
        out
    }

    /// Servers that went UP or DOWN in a listener, at HAProxy's time.
    fn haproxy_changes(
        &self,
        servers: &BTreeMap<(String, String), (bool, i64, String)>,
        now: i64,
        out: &mut Vec<NewEvent>,
    ) {
        for ((listener, server), (up, at, check)) in servers {
            if self
                .servers
                .get(&(listener.clone(), server.clone()))
                .is_some_and(|was| was != up)
            {
                let word = if *up { "UP" } else { "DOWN" };
                out.push(event(
                    (*at).min(now),
                    EventKind::Haproxy,
                    server,
                    format!("HAProxy: {server} {word} in {listener} ({check})"),
                    format!("haproxy:{listener}:{server}:{word}:{}", at / 1000),
                ));
            }
        }
    }

    fn member_changes(&self, members: &BTreeMap<String, (String, &'static str)>, now: i64, out: &mut Vec<NewEvent>) {
        for (name, (state, role)) in members {
            let Some((was_state, was_role)) = self.members.get(name) else {
                continue;
            };
            let mut parts = Vec::new();
            if was_state != state {
                parts.push(format!("{was_state} → {state}"));
            }
            // "Unknown" is what a member that does not answer has: its state says that already.
            if was_role != role && *was_role != "Unknown" && *role != "Unknown" {
                parts.push(format!("{was_role} → {role}"));
            }
            if !parts.is_empty() {
                out.push(event(
                    now,
                    EventKind::Member,
                    name,
                    format!("{name}: {}", parts.join(", ")),
                    format!("member:{name}:{state}:{role}:{now}"),
                ));
            }
        }
    }

    /// Replicas whose lag went over the healthy bound, or came back to
    /// half of it (only while they stream: a member that stops answering
    /// is a member change, and keeps its side of the bound).
    fn lag_crossings(&mut self, ov: &Overview, started: bool, out: &mut Vec<NewEvent>) {
        let now = ov.topology.observed_at_ms;
        let bound = human_bytes(CAUGHT_UP_LAG_BYTES);
        for m in ov.topology.members.iter().filter(|m| m.streams()) {
            let Some(lag) = m.lag_bytes else { continue };
            let was = self.lagging.contains(&m.name);
            let text = if !was && lag > CAUGHT_UP_LAG_BYTES {
                self.lagging.insert(m.name.clone());
                format!(
                    "{}: lag {} is over the healthy bound ({bound})",
                    m.name,
                    human_bytes(lag)
                )
            } else if was && lag <= CAUGHT_UP_LAG_BYTES / 2 {
                self.lagging.remove(&m.name);
                format!(
                    "{}: lag back to {}, within the healthy bound ({bound})",
                    m.name,
                    human_bytes(lag)
                )
            } else {
                continue;
            };
            if started {
                let side = if was { "back" } else { "over" };
                let mut e = event(
                    now,
                    EventKind::Member,
                    &m.name,
                    text,
                    format!("lag:{}:{side}:{now}", m.name),
                );
                e.link = Some(format!("/member?name={}", m.name));
                out.push(e);
            }
        }
        // Members gone from the cluster are forgotten.
        self.lagging
            .retain(|n| ov.topology.members.iter().any(|m| &m.name == n));
    }

    /// Each promotion once: by its timeline and Patroni's time of it, since
    /// a reinitialized or restored cluster numbers its timelines again.
    fn history(&mut self, ov: &Overview, out: &mut Vec<NewEvent>) {
        for h in &ov.history {
            let Some(at) = h.at_ms else { continue };
            if !self.promotions.insert((h.timeline, at)) {
                continue;
            }
            let who = h.new_leader.clone().unwrap_or_default();
            let text = match who.as_str() {
                "" => format!("timeline {} began ({})", h.timeline + 1, h.reason),
                w => format!("{w} promoted: timeline {} began ({})", h.timeline + 1, h.reason),
            };
            out.push(event(
                at,
                EventKind::Promotion,
                &who,
                text,
                promotion_key(h.timeline, at),
            ));
        }
    }

    fn operations(&mut self, ov: &Overview, out: &mut Vec<NewEvent>) {
        for o in &ov.operations {
            if !self.operations.insert((o.at_ms, o.title.clone())) {
                continue;
            }
            let outcome = if o.ok { "done" } else { "failed" };
            let mut e = event(
                o.at_ms,
                EventKind::Operation,
                "",
                format!("{} by {} {outcome}: {}", o.title, o.user, o.summary),
                format!("op:{}:{}", o.at_ms, o.title),
            );
            // A backup links to itself in the catalog; the rest to their audit entries.
            e.link = Some(match &o.backup_id {
                Some(id) => format!("/backups#backup-{id}"),
                None => format!(
                    "/audit?action=op_result&from={}&to={}",
                    crate::datetime::user_utc(o.at_ms - 1000),
                    crate::datetime::user_utc(o.at_ms + 1000)
                ),
            });
            out.push(e);
        }
    }
}

/// HAProxy servers whose current state began after `last_look` (plus a
/// second: HAProxy counts whole seconds, and what the last look saw is
/// recorded already): each one's newest change, at HAProxy's time.
fn missed_haproxy_changes(
    servers: &BTreeMap<(String, String), (bool, i64, String)>,
    last_look: i64,
    now: i64,
    out: &mut Vec<NewEvent>,
) {
    for ((listener, server), (up, at, check)) in servers {
        if *at > last_look + 1000 && *at <= now {
            let word = if *up { "UP" } else { "DOWN" };
            out.push(event(
                *at,
                EventKind::Haproxy,
                server,
                format!("HAProxy: {server} {word} in {listener} ({check}; while the console was down)"),
                format!("haproxy:{listener}:{server}:{word}:{}", at / 1000),
            ));
        }
    }
}

/// A promotion's row key (unique in the timeline table).
fn promotion_key(timeline: u64, at_ms: i64) -> String {
    format!("promotion:{timeline}:{at_ms}")
}

fn event(at_ms: i64, kind: EventKind, subject: &str, text: String, key: String) -> NewEvent {
    NewEvent {
        at_ms,
        kind,
        subject: subject.to_string(),
        text,
        link: None,
        key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(at_ms: i64, pg1_lag: u64) -> Overview {
        let mut topology = crate::operations::plan_tests::recorded();
        topology.observed_at_ms = at_ms;
        for m in &mut topology.members {
            if m.name == "pg-1" {
                m.lag_bytes = Some(pg1_lag);
            }
        }
        Overview {
            topology,
            history: vec![],
            history_error: None,
            haproxy: None,
            haproxy_error: None,
            haproxy_stats_url: String::new(),
            endpoints: vec![],
            operations: vec![],
            busy_members: Default::default(),
            containers: vec![],
            containers_error: None,
            wal_archive: None,
        }
    }

    /// Over the bound, then back under half of it: two events, linked to
    /// the member's chart; hovering in between adds nothing.
    #[test]
    fn lag_crossings_are_recorded_both_ways_once() {
        let mut seen = Observed::default();
        let texts = |seen: &mut Observed, at, lag| -> Vec<(String, Option<String>)> {
            seen.changes(&look(at, lag))
                .into_iter()
                .map(|e| (e.text, e.link))
                .collect()
        };
        assert!(texts(&mut seen, 1, 0).is_empty());
        let over = texts(&mut seen, 2, 3 << 20);
        assert_eq!(
            over,
            vec![(
                "pg-1: lag 3.0 MB is over the healthy bound (1.0 MB)".to_string(),
                Some("/member?name=pg-1".to_string())
            )]
        );
        assert!(
            texts(&mut seen, 3, 900 << 10).is_empty(),
            "under the bound, over half of it"
        );
        assert!(texts(&mut seen, 4, 5 << 20).is_empty(), "still over");
        let back = texts(&mut seen, 5, 12 << 10);
        assert_eq!(
            back[0].0,
            "pg-1: lag back to 12.0 kB, within the healthy bound (1.0 MB)"
        );
        assert!(texts(&mut seen, 6, 0).is_empty());
    }

    fn with_haproxy(mut ov: Overview, servers: &[(&str, &str, u64)]) -> Overview {
        let servers = servers
            .iter()
            .map(|(name, status, secs)| model::HaproxyServer {
                name: name.to_string(),
                status: status.to_string(),
                check_status: "L4OK".into(),
                check_duration_ms: None,
                last_check: String::new(),
                sessions_current: 0,
                sessions_total: 0,
                bytes_in: 0,
                bytes_out: 0,
                last_change_secs: Some(*secs),
            })
            .collect();
        ov.haproxy = Some(model::HaproxyStats {
            listeners: vec![model::HaproxyListener {
                name: "replicas".into(),
                role: model::ListenerRole::Read,
                status: "OPEN".into(),
                sessions_current: 0,
                sessions_total: 0,
                bytes_in: 0,
                bytes_out: 0,
                servers,
            }],
        });
        ov
    }

    /// A console that starts after another's last look at 100 s records,
    /// at HAProxy's time, each server's change since (pg-2 went DOWN at
    /// 130 s), not the ones before it (pg-1 at 50 s) or at that look.
    #[test]
    fn the_first_look_recovers_haproxy_changes_since_the_last_console_looked() {
        let ov = with_haproxy(
            look(200_000, 0),
            &[("pg-1", "UP", 150), ("pg-2", "DOWN", 70), ("pg-0", "UP", 100)],
        );
        let mut seen = Observed::resuming(Some(100_000));
        let got: Vec<(i64, String)> = seen.changes(&ov).into_iter().map(|e| (e.at_ms, e.text)).collect();
        assert_eq!(
            got,
            vec![(
                130_000,
                "HAProxy: pg-2 DOWN in replicas (L4OK; while the console was down)".to_string()
            )]
        );
        // Without a previous look (a first start), nothing is invented.
        assert!(Observed::default().changes(&ov).is_empty());
    }

    fn promoted(timeline: u64, at_ms: i64, who: &str) -> model::HistoryEntry {
        model::HistoryEntry {
            timeline,
            lsn: 0,
            reason: "no recovery target specified".into(),
            timestamp: None,
            at_ms: Some(at_ms),
            new_leader: Some(who.into()),
        }
    }

    /// A cluster reinitialized (or restored) numbers its timelines from 1
    /// again: its promotions are new ones, not the old cluster's.
    #[test]
    fn promotions_of_a_reinitialized_cluster_are_recorded_though_their_timelines_were_seen() {
        let mut seen = Observed::default();
        let mut ov = look(1, 0);
        ov.history = vec![promoted(1, 1_000, "pg-1"), promoted(2, 2_000, "pg-0")];
        let first: Vec<String> = seen.changes(&ov).into_iter().map(|e| e.key).collect();
        assert_eq!(first, ["promotion:1:1000", "promotion:2:2000"]);
        assert!(seen.changes(&ov).is_empty(), "each once");
        ov.history = vec![promoted(1, 9_000, "pg-2")];
        let after: Vec<String> = seen.changes(&ov).into_iter().map(|e| e.text).collect();
        assert_eq!(
            after,
            ["pg-2 promoted: timeline 2 began (no recovery target specified)"]
        );
    }

    /// A replica already lagging when the console starts is the baseline.
    #[test]
    fn the_first_look_invents_no_crossing() {
        let mut seen = Observed::default();
        assert!(seen.changes(&look(1, 9 << 20)).is_empty());
        assert_eq!(seen.changes(&look(2, 0)).len(), 1);
    }
}
