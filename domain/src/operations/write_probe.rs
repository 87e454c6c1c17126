//! Measures how long writes are refused during a switchover: connects to the
//! write endpoint every 100 ms and asks `pg_is_in_recovery()`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct ProbeTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub dbname: String,
}

impl std::fmt::Debug for ProbeTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ProbeTarget {{ {}@{}:{}/{} }}",
            self.user, self.host, self.port, self.dbname
        )
    }
}

/// One attempt: can a client write through the endpoint right now?
impl ProbeTarget {
    /// A connection with these credentials to `host:port` (the write
    /// endpoint, or one member directly).
    pub fn config(&self, host: &str, port: u16, timeout: Duration, application: &str) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(host)
            .port(port)
            .user(&self.user)
            .password(&self.password)
            .dbname(&self.dbname)
            .connect_timeout(timeout)
            .application_name(application);
        cfg
    }
}

pub async fn writable(t: &ProbeTarget) -> bool {
    let cfg = t.config(&t.host, t.port, Duration::from_millis(500), "pg-console-write-probe");
    let attempt = async {
        let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.ok()?;
        let task = tokio::spawn(conn);
        let row = client.query_one("SELECT pg_is_in_recovery()", &[]).await.ok();
        drop(client);
        let _ = task.await;
        row.map(|r| !r.get::<_, bool>(0))
    };
    tokio::time::timeout(Duration::from_millis(900), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// A running probe; `stop` returns the longest stretch writes were refused.
pub struct WriteProbe {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(Instant, bool)>>,
}

impl WriteProbe {
    pub fn start(target: ProbeTarget) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            while !flag.load(Ordering::SeqCst) {
                tick.tick().await;
                let at = Instant::now();
                let ok = writable(&target).await;
                samples.push((at, ok));
            }
            samples
        });
        Self { stop, task }
    }

    /// Stops probing: the longest stretch writes were refused, and how many
    /// probes were made.
    pub async fn stop(self) -> (Duration, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let samples = self.task.await.unwrap_or_default();
        (longest_gap(&samples), samples.len())
    }
}

/// The longest time from a refused sample to the next accepted one.
pub fn longest_gap(samples: &[(Instant, bool)]) -> Duration {
    let mut longest = Duration::ZERO;
    let mut gap_start: Option<Instant> = None;
    for (at, ok) in samples {
        match (ok, gap_start) {
            (false, None) => gap_start = Some(*at),
            (true, Some(s)) => {
                longest = longest.max(at.duration_since(s));
                gap_start = None;
            }
            _ => {}
        }
    }
    if let (Some(s), Some((last, _))) = (gap_start, samples.last()) {
        longest = longest.max(last.duration_since(s));
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_is_the_longest_refused_stretch() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let s = vec![
            (at(0), true),
            (at(100), false),
            (at(200), false),
            (at(300), true),
            (at(400), false),
            (at(450), true),
        ];
        assert_eq!(longest_gap(&s), Duration::from_millis(200));
        assert_eq!(longest_gap(&[(at(0), true)]), Duration::ZERO);
        assert_eq!(
            longest_gap(&[(at(0), false), (at(700), false)]),
            Duration::from_millis(700),
            "still refused at the end"
        );
    }
}
