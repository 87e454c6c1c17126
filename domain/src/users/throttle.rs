//! The per-account login throttle, the same for existing and unknown names
//! (so neither the answer nor its timing tells whether an account exists).
//!
//! - Attempts on one name are serialised (a sharded async lock held from the
//!   lock check to the bookkeeping), so a parallel burst gets no more
//!   guesses than a sequential one, and a right password inside a burst
//!   does not get in once the account is locked.
//! - After [`LOCK_AFTER`] failures within [`FAILURE_MEMORY_MS`] the name is
//!   locked for `first_lock`, doubling with each further failure up to
//!   [`MAX_LOCK_MS`]. Failures older than [`FAILURE_MEMORY_MS`] are
//!   forgotten, so one guess an hour never locks anyone out (ASVS 4.0
//!   V2.2.1: soft lockout, increasing delays, at most ~15 guesses per hour
//!   per account). Attempts while locked are refused without counting, so an
//!   attacker cannot stretch a lock by hammering.
//! - A locked name is answered without computing a hash, existing or not.
//! - At most [`MAX_NAMES`] names are remembered; the least recently seen
//!   are forgotten first.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash as _, Hasher as _};
use std::sync::Mutex;

pub const LOCK_AFTER: usize = 5;
pub const MAX_LOCK_MS: i64 = 15 * 60 * 1000;
pub const FAILURE_MEMORY_MS: i64 = 60 * 60 * 1000;
pub const MAX_NAMES: usize = 100_000;
const SHARDS: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameState {
    /// When the remembered failures happened (oldest first).
    pub failures: VecDeque<i64>,
    pub locked_until_ms: i64,
    pub last_seen_ms: i64,
}

impl NameState {
    fn forget_old(&mut self, now_ms: i64) {
        while self
            .failures
            .front()
            .map(|t| now_ms - t > FAILURE_MEMORY_MS)
            .unwrap_or(false)
        {
            self.failures.pop_front();
        }
    }
}

pub struct Throttle {
    first_lock_ms: i64,
    shards: Vec<tokio::sync::Mutex<()>>,
    names: Mutex<HashMap<String, NameState>>,
}

/// What the throttle decided before the password is looked at.
pub enum Gate {
    /// Locked until then: refuse without checking the password.
    Locked(i64),
    Open,
}

impl Throttle {
    pub fn new(first_lock_ms: i64) -> Self {
        Throttle {
            first_lock_ms: first_lock_ms.max(1),
            shards: (0..SHARDS).map(|_| tokio::sync::Mutex::new(())).collect(),
            names: Mutex::new(HashMap::new()),
        }
    }

    fn key(name: &str) -> String {
        name.to_lowercase()
    }

    /// The lock serialising attempts on `name` (hold it for the whole attempt).
    pub async fn serialise(&self, name: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        Self::key(name).hash(&mut h);
        self.shards[(h.finish() as usize) % SHARDS].lock().await
    }

    /// Seed a name's state (from the database, for existing accounts) the
    /// first time it is seen after a start.
    pub fn seed(&self, name: &str, failures: i64, locked_until_ms: i64, now_ms: i64) {
        let mut map = self.names.lock().expect("throttle poisoned");
        map.entry(Self::key(name)).or_insert_with(|| NameState {
            failures: (0..failures.clamp(0, LOCK_AFTER as i64 + 16)).map(|_| now_ms).collect(),
            locked_until_ms,
            last_seen_ms: now_ms,
        });
    }

    pub fn is_known(&self, name: &str) -> bool {
        self.names
            .lock()
            .expect("throttle poisoned")
            .contains_key(&Self::key(name))
    }

    pub fn gate(&self, name: &str, now_ms: i64) -> Gate {
        let mut map = self.names.lock().expect("throttle poisoned");
        match map.get_mut(&Self::key(name)) {
            Some(s) => {
                s.last_seen_ms = now_ms;
                if s.locked_until_ms > now_ms {
                    Gate::Locked(s.locked_until_ms)
                } else {
                    Gate::Open
                }
            }
            None => Gate::Open,
        }
    }

    /// Count a failure; returns (failures remembered, locked until if now locked).
    pub fn fail(&self, name: &str, now_ms: i64) -> (usize, Option<i64>) {
        let mut map = self.names.lock().expect("throttle poisoned");
        if map.len() >= MAX_NAMES && !map.contains_key(&Self::key(name)) {
            evict_oldest(&mut map, now_ms);
        }
        let s = map.entry(Self::key(name)).or_default();
        s.last_seen_ms = now_ms;
        s.forget_old(now_ms);
        s.failures.push_back(now_ms);
        // Enough to compute the next lock; older ones add nothing.
        while s.failures.len() > LOCK_AFTER + 16 {
            s.failures.pop_front();
        }
        let n = s.failures.len();
        let lock = (n >= LOCK_AFTER).then(|| {
            let doublings = (n - LOCK_AFTER).min(16) as u32;
            now_ms + self.first_lock_ms.saturating_mul(1 << doublings).min(MAX_LOCK_MS)
        });
        if let Some(until) = lock {
            s.locked_until_ms = until;
        }
        (n, lock)
    }

    /// A successful authentication: forget the failures.
    pub fn succeed(&self, name: &str) {
        self.names.lock().expect("throttle poisoned").remove(&Self::key(name));
    }

    /// An admin cleared the account (new password): forget it.
    pub fn clear(&self, name: &str) {
        self.succeed(name);
    }

    pub fn state(&self, name: &str) -> Option<NameState> {
        self.names
            .lock()
            .expect("throttle poisoned")
            .get(&Self::key(name))
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.names.lock().expect("throttle poisoned").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Forget the least recently seen tenth of the names (those not locked first).
fn evict_oldest(map: &mut HashMap<String, NameState>, now_ms: i64) {
    let mut by_age: Vec<(bool, i64, String)> = map
        .iter()
        .map(|(k, s)| (s.locked_until_ms > now_ms, s.last_seen_ms, k.clone()))
        .collect();
    by_age.sort();
    for (_, _, k) in by_age.into_iter().take(MAX_NAMES / 10) {
        map.remove(&k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_five_doubling_and_capped() {
        let t = Throttle::new(30_000);
        for i in 1..LOCK_AFTER {
            assert_eq!(t.fail("alice", 0), (i, None));
        }
        assert_eq!(t.fail("alice", 0), (5, Some(30_000)));
        assert!(
            matches!(t.gate("Alice", 29_999), Gate::Locked(30_000)),
            "names are case-insensitive"
        );
        assert!(matches!(t.gate("alice", 30_000), Gate::Open));
        assert_eq!(t.fail("alice", 30_000).1, Some(90_000), "doubled");
        for _ in 0..20 {
            t.fail("alice", 100_000);
        }
        let s = t.state("alice").unwrap();
        assert_eq!(s.locked_until_ms, 100_000 + MAX_LOCK_MS, "capped");
    }

    #[test]
    fn failures_decay_so_one_guess_an_hour_never_locks() {
        let t = Throttle::new(30_000);
        for h in 0..48 {
            let (_, lock) = t.fail("bob", h * (FAILURE_MEMORY_MS + 1));
            assert_eq!(lock, None, "hour {h}");
        }
    }

    #[test]
    fn success_forgets_and_unknown_names_behave_the_same() {
        let t = Throttle::new(1000);
        for _ in 0..4 {
            t.fail("carol", 0);
        }
        t.succeed("carol");
        assert_eq!(t.fail("carol", 0), (1, None));
        // A name that has no account is throttled exactly the same way.
        for _ in 0..4 {
            t.fail("nobody-here", 0);
        }
        assert_eq!(t.fail("nobody-here", 0), (5, Some(1000)));
    }

    #[test]
    fn memory_is_bounded() {
        let t = Throttle::new(1000);
        for i in 0..(MAX_NAMES + 10) {
            t.fail(&format!("n{i}"), i as i64);
        }
        assert!(t.len() <= MAX_NAMES, "{}", t.len());
        assert!(t.state(&format!("n{}", MAX_NAMES + 9)).is_some(), "the newest is kept");
        assert!(t.state("n0").is_none(), "the oldest is forgotten");
    }
}
