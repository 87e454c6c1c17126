//! Per-source-IP budget of login attempts: failures in a sliding window
//! plus attempts still in flight, so a parallel burst cannot get more
//! attempts through than the budget. Addresses with nothing left in the
//! window are forgotten, and at most `MAX_ADDRESSES` are remembered.
//!
//! Hand-written rather than `governor`: the budget needs reservations that
//! are settled later (an attempt in flight counts until it either fails,
//! and stays counted, or succeeds, and is forgiven), which a token bucket
//! that only takes tokens does not offer.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const MAX_ADDRESSES: usize = 100_000;

#[derive(Default)]
struct Source {
    failures: VecDeque<Instant>,
    in_flight: u32,
}

pub struct FailureLimiter {
    max: u32,
    window: Duration,
    sources: Mutex<HashMap<String, Source>>,
}

/// An admitted attempt. Dropping it without [`Attempt::failed`] forgives it.
pub struct Attempt {
    limiter: Arc<FailureLimiter>,
    ip: String,
    settled: bool,
}

impl Attempt {
    /// The attempt failed: it stays counted for the window.
    pub fn failed(mut self) {
        self.settle(true);
    }

    /// The attempt succeeded (or was never evaluated): forgiven.
    pub fn forgiven(mut self) {
        self.settle(false);
    }

    fn settle(&mut self, failed: bool) {
        if self.settled {
            return;
        }
        self.settled = true;
        let mut map = self.limiter.sources.lock().expect("limiter poisoned");
        if let Some(s) = map.get_mut(&self.ip) {
            s.in_flight = s.in_flight.saturating_sub(1);
            if failed {
                s.failures.push_back(Instant::now());
            }
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.settle(false);
    }
}

impl FailureLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max: max.max(1),
            window,
            sources: Mutex::new(HashMap::new()),
        }
    }

    fn prune(q: &mut VecDeque<Instant>, window: Duration) {
        while q.front().map(|t| t.elapsed() > window).unwrap_or(false) {
            q.pop_front();
        }
    }

    /// Admit an attempt from `ip`, or Err(seconds to wait) when its budget
    /// (failures in the window + attempts in flight) is used up.
    pub fn begin(self: &Arc<Self>, ip: &str) -> Result<Attempt, u64> {
        let mut map = self.sources.lock().expect("limiter poisoned");
        if map.len() >= MAX_ADDRESSES && !map.contains_key(ip) {
            self.forget_idle(&mut map);
        }
        let s = map.entry(ip.to_string()).or_default();
        Self::prune(&mut s.failures, self.window);
        if s.failures.len() as u32 + s.in_flight >= self.max {
            let wait = match s.failures.front() {
                Some(oldest) => self.window.saturating_sub(oldest.elapsed()).as_secs().max(1),
                None => 1,
            };
            return Err(wait);
        }
        s.in_flight += 1;
        Ok(Attempt {
            limiter: self.clone(),
            ip: ip.to_string(),
            settled: false,
        })
    }

    /// Forget addresses with no failures in the window and nothing in flight.
    fn forget_idle(&self, map: &mut HashMap<String, Source>) {
        map.retain(|_, s| {
            Self::prune(&mut s.failures, self.window);
            s.in_flight > 0 || !s.failures.is_empty()
        });
    }

    /// Drop idle addresses (called periodically).
    pub fn sweep(&self) {
        let mut map = self.sources.lock().expect("limiter poisoned");
        self.forget_idle(&mut map);
    }

    #[cfg(test)]
    pub fn addresses(&self) -> usize {
        self.sources.lock().expect("limiter poisoned").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_in_flight_count_against_the_budget() {
        let l = Arc::new(FailureLimiter::new(3, Duration::from_secs(60)));
        let a = l.begin("1.2.3.4").unwrap();
        let b = l.begin("1.2.3.4").unwrap();
        let c = l.begin("1.2.3.4").unwrap();
        assert!(l.begin("1.2.3.4").is_err(), "three in flight use the budget");
        assert!(l.begin("5.6.7.8").is_ok(), "other addresses are not affected");
        a.forgiven();
        let d = l.begin("1.2.3.4").unwrap();
        b.failed();
        c.failed();
        d.failed();
        assert!(l.begin("1.2.3.4").is_err(), "three failures in the window");
    }

    #[test]
    fn idle_addresses_are_forgotten() {
        let l = Arc::new(FailureLimiter::new(3, Duration::from_millis(1)));
        for i in 0..100 {
            l.begin(&format!("10.0.0.{i}")).unwrap().failed();
        }
        assert_eq!(l.addresses(), 100);
        std::thread::sleep(Duration::from_millis(5));
        l.sweep();
        assert_eq!(l.addresses(), 0);
    }
}
