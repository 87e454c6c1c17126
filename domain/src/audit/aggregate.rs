//! Refusals that a client can cause at will (failed logins, cross-origin
//! requests, requests a role may not make) are written once per source and
//! window, not once each: the first refusal of a (kind, source, target) is
//! written at once, the ones after it within the window are counted and
//! written as one entry when the window ends ("37 refused logins for
//! 'admin' from 10.1.2.3 in 60 s"). Memory is bounded: past `MAX_KEYS`
//! distinct keys, new sources share one overflow key per kind.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{AuditEntry, AuditResult};

pub const MAX_KEYS: usize = 10_000;
const OVERFLOW: &str = "(many sources)";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    action: String,
    source_ip: String,
    target: String,
}

struct Bucket {
    first: AuditEntry,
    started_ms: i64,
    last_ms: i64,
    /// Refusals after the first, not yet written.
    more: u64,
}

pub struct Aggregator {
    window_ms: i64,
    buckets: Mutex<HashMap<Key, Bucket>>,
}

/// What the caller should do with a refusal.
pub enum Admit {
    /// Write this entry now (the first of its window).
    Write(AuditEntry),
    /// Counted; it will be part of an aggregated entry.
    Counted,
}

fn noun(action: &str) -> &'static str {
    match action {
        "login_failed" => "refused logins",
        "login_locked_out" => "logins refused while the account was locked",
        "login_rate_limited" => "rate-limited logins",
        "login_busy" => "logins refused while the console was busy",
        "csrf_refused" => "cross-origin requests refused",
        "authorization_refused" => "requests refused for lack of permission",
        "step_up_failed" => "wrong passwords at confirmation",
        _ => "refusals",
    }
}

impl Aggregator {
    pub fn new(window_ms: i64) -> Self {
        Aggregator {
            window_ms: window_ms.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Admit one refusal at `now_ms`.
    pub fn admit(&self, e: AuditEntry, now_ms: i64) -> Admit {
        let mut map = self.buckets.lock().expect("aggregator poisoned");
        let mut key = Key {
            action: e.action.clone(),
            source_ip: e.source_ip.clone(),
            target: super::limits::cut(&e.target, 64).unwrap_or_else(|| e.target.clone()),
        };
        if !map.contains_key(&key) && map.len() >= MAX_KEYS {
            key.source_ip = OVERFLOW.into();
            key.target = OVERFLOW.into();
        }
        if let Some(b) = map.get_mut(&key) {
            b.more += 1;
            b.last_ms = now_ms;
            return Admit::Counted;
        }
        map.insert(
            key,
            Bucket {
                first: e.clone(),
                started_ms: now_ms,
                last_ms: now_ms,
                more: 0,
            },
        );
        Admit::Write(e)
    }

    /// The aggregated entries of every window that ended by `now_ms` (all
    /// of them when `all`, at shutdown). Ended windows are forgotten.
    pub fn due(&self, now_ms: i64, all: bool) -> Vec<AuditEntry> {
        let mut map = self.buckets.lock().expect("aggregator poisoned");
        let mut out = Vec::new();
        map.retain(|k, b| {
            if !all && now_ms - b.started_ms < self.window_ms {
                return true;
            }
            if b.more > 0 {
                out.push(summary(k, b, now_ms));
            }
            false
        });
        out
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.buckets.lock().expect("aggregator poisoned").len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn summary(k: &Key, b: &Bucket, now_ms: i64) -> AuditEntry {
    let secs = ((now_ms.min(b.last_ms.max(b.started_ms)) - b.started_ms) / 1000).max(1);
    let target = if k.target.is_empty() {
        String::new()
    } else {
        format!(" for '{}'", k.target)
    };
    let text = format!(
        "{} more {}{} from {} in {} s",
        b.more,
        noun(&k.action),
        target,
        k.source_ip,
        secs
    );
    let mut e = AuditEntry::new(&k.action, AuditResult::Refused)
        .ip(&k.source_ip)
        .target(&k.target)
        .error(&text);
    e.user_name = b.first.user_name.clone();
    e.role = b.first.role.clone();
    e.params = serde_json::json!({
        "aggregated": b.more,
        "first_ms": b.started_ms,
        "last_ms": b.last_ms,
        "first_entry_error": b.first.error,
    });
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(ip: &str, user: &str) -> AuditEntry {
        AuditEntry::new("login_failed", AuditResult::Refused)
            .ip(ip)
            .target(user)
    }

    #[test]
    fn one_entry_now_and_one_aggregated_per_window() {
        let a = Aggregator::new(60_000);
        assert!(matches!(a.admit(refusal("10.1.2.3", "admin"), 0), Admit::Write(_)));
        for i in 1..=37 {
            assert!(matches!(
                a.admit(refusal("10.1.2.3", "admin"), i * 1000),
                Admit::Counted
            ));
        }
        // Another source or another account is its own key.
        assert!(matches!(a.admit(refusal("10.1.2.4", "admin"), 1000), Admit::Write(_)));
        assert!(matches!(a.admit(refusal("10.1.2.3", "bob"), 1000), Admit::Write(_)));
        assert!(a.due(59_999, false).is_empty(), "the window has not ended");
        let due = a.due(60_000, false);
        assert_eq!(due.len(), 1, "only the key with refusals after its first");
        assert_eq!(due[0].error, "37 more refused logins for 'admin' from 10.1.2.3 in 37 s");
        assert_eq!(due[0].params["aggregated"], 37);
        assert_eq!(
            a.len(),
            2,
            "the ended window is forgotten, the two younger ones are not"
        );
        assert!(a.due(61_000, false).is_empty(), "nothing more was refused from those");
        assert!(a.is_empty());
        assert!(
            matches!(a.admit(refusal("10.1.2.3", "admin"), 61_000), Admit::Write(_)),
            "a new window"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let a = Aggregator::new(60_000);
        for i in 0..(MAX_KEYS + 500) {
            a.admit(refusal(&format!("10.0.{}.{}", i / 256, i % 256), "admin"), 0);
        }
        assert!(a.len() <= MAX_KEYS + 1, "{}", a.len());
        let due = a.due(0, true);
        assert_eq!(due.len(), 1);
        assert!(due[0].error.contains("(many sources)"), "{}", due[0].error);
    }
}
