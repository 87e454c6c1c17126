//! Per-source-IP limit on failed logins (a sliding window in memory).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct FailureLimiter {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn prune(q: &mut VecDeque<Instant>, window: Duration) {
        while q.front().map(|t| t.elapsed() > window).unwrap_or(false) {
            q.pop_front();
        }
    }

    /// Seconds to wait when `ip` has used up its failures, else None.
    pub fn blocked(&self, ip: &str) -> Option<u64> {
        let mut map = self.failures.lock().expect("limiter poisoned");
        let q = map.get_mut(ip)?;
        Self::prune(q, self.window);
        (q.len() as u32 >= self.max).then(|| {
            let oldest = q.front().copied().unwrap_or_else(Instant::now);
            self.window.saturating_sub(oldest.elapsed()).as_secs().max(1)
        })
    }

    pub fn record_failure(&self, ip: &str) {
        let mut map = self.failures.lock().expect("limiter poisoned");
        let q = map.entry(ip.to_string()).or_default();
        Self::prune(q, self.window);
        q.push_back(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_per_ip() {
        let l = FailureLimiter::new(2, Duration::from_secs(60));
        assert!(l.blocked("1.2.3.4").is_none());
        l.record_failure("1.2.3.4");
        assert!(l.blocked("1.2.3.4").is_none());
        l.record_failure("1.2.3.4");
        assert!(l.blocked("1.2.3.4").is_some());
        assert!(l.blocked("5.6.7.8").is_none(), "other addresses are not affected");
    }
}
